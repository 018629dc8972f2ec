//! Schedules: exactly one execution per slot across concurrent ticks, disabled jobs
//! skipped, next run and last execution shown, bad cron refused.

use std::process::Command;

use chrono::{Duration, Utc};
use serde_json::json;

use crate::helpers::{binary, TestApp};

fn tick(app: &TestApp, at: &str) -> std::process::Child {
    Command::new(binary("cairn"))
        .envs(app.env())
        .args(["--output", "json", "schedule", "tick", "--at", at])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn started(child: std::process::Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["started"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn concurrent_ticks_trigger_each_slot_exactly_once() {
    let app = TestApp::spawn().await;
    let job = app.create_job(json!({"name": "every minute", "schedule": {"cron": "* * * * *", "timezone": "UTC"}, "items": [{"name": "cfg", "source": {"kind": "config"}}]})).await;
    let (_, listed) = app.get("/api/jobs").await;
    let next = listed["data"][0]["nextRunAt"].as_str().unwrap().to_owned();
    assert!(listed["data"][0]["lastExecution"].is_null());
    let slot = chrono::DateTime::parse_from_rfc3339(&next).unwrap().with_timezone(&Utc);
    assert!(slot > Utc::now() && slot <= Utc::now() + Duration::seconds(61), "{next}");

    // Before the slot: nothing.
    let early = (slot - Duration::seconds(5)).to_rfc3339();
    assert!(started(tick(&app, &early)).is_empty());
    // Two ticks at the slot, at once: one execution.
    let at = (slot + Duration::seconds(2)).to_rfc3339();
    let (a, b) = (tick(&app, &at), tick(&app, &at));
    let mut all = started(a);
    all.extend(started(b));
    assert_eq!(all.len(), 1, "{all:?}");
    let e = app.execution(&all[0]).await;
    assert_eq!(e["trigger"], json!({"kind": "Scheduler"}));
    // The same slot again (a late, overlapping tick): nothing.
    assert!(started(tick(&app, &at)).is_empty());
    // A tick far late fires once, not once per missed slot.
    let late = (slot + Duration::minutes(5)).to_rfc3339();
    let (a, b) = (tick(&app, &late), tick(&app, &late));
    assert_eq!(started(a).len() + started(b).len(), 1);
    let (_, listed) = app.get(&format!("/api/jobs/{job}")).await;
    assert!(listed["data"]["lastExecution"]["id"].is_string());
    assert!(listed["data"]["nextRunAt"].as_str().unwrap() > next.as_str());

    // Disabled: the slot passes without a run.
    app.post(&format!("/api/jobs/{job}/disable"), None).await;
    let later = (slot + Duration::minutes(9)).to_rfc3339();
    assert!(started(tick(&app, &later)).is_empty());
}

#[tokio::test]
async fn invalid_cron_or_time_zone_is_a_clear_400() {
    let app = TestApp::spawn().await;
    let d = app.create_destination("p").await;
    for (schedule, field) in [
        (json!({"cron": "0 3 * *", "timezone": "UTC"}), "schedule.cron"),
        (json!({"cron": "0 25 * * *", "timezone": "UTC"}), "schedule.cron"),
        (json!({"cron": "0 3 * * *", "timezone": "Nowhere/City"}), "schedule.timezone"),
    ] {
        let (status, body) = app
            .post(
                "/api/jobs",
                Some(
                    json!({"name": "x", "destinations": [d], "schedule": schedule, "items": [{"name": "c", "source": {"kind": "config"}}]}),
                ),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(body["error"].as_str().unwrap().contains(field), "{body}");
    }
}
