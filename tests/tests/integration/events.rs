//! Execution events: each status change reaches an EventBridge rule on `source: cairn`
//! (here with an SQS target, which the local endpoint delivers to), in order, with the
//! poll shape as `detail`; with the events endpoint down, backups still succeed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{Options, TestApp, ENDPOINT};

async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(ENDPOINT)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await
}

/// A queue fed by a new rule that matches every Cairn event, as a user would set one up.
async fn subscribe(name: &str) -> (aws_sdk_sqs::Client, String) {
    let conf = sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let events = aws_sdk_eventbridge::Client::new(&conf);
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue arn")
        .clone();
    events
        .put_rule()
        .name(name)
        .event_pattern(json!({"source": ["cairn"], "detail-type": ["Cairn Execution State Change"]}).to_string())
        .send()
        .await
        .expect("put rule");
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(arn)
        .build()
        .expect("target");
    events.put_targets().rule(name).targets(target).send().await.expect("put targets");
    (sqs, url)
}

/// Every event for `ids` received until each has ended, by execution, in arrival order.
async fn events_until_ended(sqs: &aws_sdk_sqs::Client, url: &str, ids: &[&str]) -> HashMap<String, Vec<Value>> {
    let mut by_id: HashMap<String, Vec<Value>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ended = |events: &Vec<Value>| {
        events
            .last()
            .is_some_and(|e| matches!(e["detail"]["status"].as_str(), Some("Success" | "Failed" | "Partial" | "Cancelled")))
    };
    while !ids.iter().all(|id| by_id.get(*id).is_some_and(ended)) {
        assert!(Instant::now() < deadline, "not every execution's events arrived: {by_id:#?}");
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            let event: Value = serde_json::from_str(m.body().unwrap_or("")).expect("event JSON");
            let id = event["detail"]["id"].as_str().unwrap_or("").to_owned();
            if ids.contains(&id.as_str()) {
                by_id.entry(id).or_default().push(event);
            }
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
    by_id
}

fn statuses(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["detail"]["status"].as_str().unwrap_or("?")).collect()
}

#[tokio::test]
async fn a_backup_a_failure_and_a_cancel_each_publish_their_state_changes_in_order() {
    let app = TestApp::spawn().await;
    let (sqs, url) = subscribe(&format!("cairn-events-{}", app.prefix)).await;
    let ok = app
        .create_job(json!({"name": "fine", "items": [{"name": "c", "source": {"kind": "config"}}]}))
        .await;
    let bad = app
        .create_job(json!({"name": "broken", "items": [{"name": "f", "source": {"kind": "command", "argv": ["false"]}}]}))
        .await;
    let slow = app
        .create_job(json!({"name": "slow", "items": [{"name": "s", "source": {"kind": "command", "argv": ["bash", "-c", "sleep 30"]}}]}))
        .await;
    let success = app.run_job(&ok).await;
    let failure = app.run_job(&bad).await;
    let cancelled = app.run_job(&slow).await;
    app.wait_until(&cancelled, Duration::from_secs(20), |e| e["status"] == "Running")
        .await;
    let (status, body) = app.post(&format!("/api/executions/{cancelled}/cancel"), None).await;
    assert_eq!(status, 200, "{body}");

    let events = events_until_ended(&sqs, &url, &[&success, &failure, &cancelled]).await;
    assert_eq!(statuses(&events[&success]), ["Pending", "Running", "Success"]);
    assert_eq!(statuses(&events[&failure]), ["Pending", "Running", "Failed"]);
    assert_eq!(statuses(&events[&cancelled]), ["Pending", "Running", "Cancelled"]);
    for (id, evs) in &events {
        for e in evs {
            assert_eq!(e["source"], "cairn");
            assert_eq!(e["detail-type"], "Cairn Execution State Change");
        }
        // The last event's detail is exactly what a poll answers (less queuePosition and logs).
        let (status, polled) = app.get(&format!("/api/executions/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(evs.last().unwrap()["detail"], polled["data"], "execution {id}");
    }
    assert!(events[&failure].last().unwrap()["detail"]["error"].is_string());
    // The queued event says where it waited, as a poll does while Pending.
    assert!(
        events[&success][0]["detail"]["queuePosition"].as_u64().is_some_and(|p| p >= 1),
        "{:#}",
        events[&success][0]
    );
}

#[tokio::test]
async fn with_the_events_endpoint_down_a_backup_still_succeeds() {
    let app = TestApp::spawn_with(Options {
        // Nothing listens on port 9: every PutEvents fails at once.
        extra_env: vec![("AWS_ENDPOINT_URL_EVENTBRIDGE".into(), "http://127.0.0.1:9".into())],
        ..Options::default()
    })
    .await;
    let job = app
        .create_job(json!({"name": "fine", "items": [{"name": "c", "source": {"kind": "config"}}]}))
        .await;
    let started = Instant::now();
    let id = app.run_job(&job).await;
    let end = app.wait_for_end(&id, Duration::from_secs(30)).await;
    assert_eq!(end["status"], "Success", "{end:#}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "publishing held the run up: {:?}",
        started.elapsed()
    );
    let log = app.server_log();
    assert!(
        log.contains("could not publish the execution event"),
        "no warning in the log:\n{log}"
    );
}
