//! The function binaries under a Lambda runtime emulator, answering real API Gateway v2
//! and EventBridge events from the fixtures.

use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{binary, project_root, TestApp};

/// Runs `function`'s binary under the emulator with the fixtures (placeholders
/// substituted) and answers the responses.
fn invoke(app: &TestApp, function: &str, fixtures: &[&str], subs: &[(&str, &str)]) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, f) in fixtures.iter().enumerate() {
        let mut text = std::fs::read_to_string(project_root().join("tests/fixtures").join(f)).unwrap();
        for (k, v) in subs {
            text = text.replace(k, v);
        }
        let p = dir.path().join(format!("{i}.json"));
        std::fs::write(&p, text).unwrap();
        paths.push(p);
    }
    let out = Command::new(binary("lambda-emulator"))
        .args(&paths)
        .arg("--")
        .arg(binary(&format!("cairn-{function}")))
        .envs(app.env())
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("cairn-{function}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let responses = report["responses"].as_array().unwrap().clone();
    assert_eq!(
        responses.len(),
        fixtures.len(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    responses
        .iter()
        .map(|r| {
            assert_eq!(r["kind"], "response", "{r}");
            r["body"].clone()
        })
        .collect()
}

fn body(resp: &Value) -> Value {
    serde_json::from_str(resp["body"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn run_poll_and_list_binaries_answer_api_gateway_v2_events() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "from lambda", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let key = app.admin_key.clone();
    let run = invoke(&app, "run", &["apigw-run.json"], &[("JOB_ID", &job), ("API_KEY", &key)]);
    assert_eq!(run[0]["statusCode"], 200, "{}", run[0]);
    let execution = body(&run[0])["executionId"].as_str().unwrap().to_owned();
    let e = app.execution(&execution).await;
    assert_eq!(e["trigger"], json!({"kind": "Api", "key": "test admin"}));

    let poll = invoke(
        &app,
        "poll",
        &["apigw-poll.json"],
        &[("EXECUTION_ID", &execution), ("API_KEY", &key)],
    );
    assert_eq!(poll[0]["statusCode"], 200);
    let polled = body(&poll[0]);
    assert_eq!(polled["data"]["id"], execution.as_str());
    assert!(polled["data"]["logs"].is_array(), "includeLogs from the query string");

    let list = invoke(&app, "list", &["apigw-list.json"], &[("API_KEY", &key)]);
    assert_eq!(list[0]["statusCode"], 200);
    assert_eq!(body(&list[0])["data"][0]["id"], job.as_str());
    let denied = invoke(&app, "list", &["apigw-list.json"], &[("API_KEY", "cairn_wrong")]);
    assert_eq!(denied[0]["statusCode"], 401);
}

#[tokio::test]
async fn an_eventbridge_event_starts_a_run_and_a_malformed_one_is_rejected() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "nightly", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let out = invoke(
        &app,
        "run",
        &["eventbridge-run.json", "eventbridge-malformed.json"],
        &[("JOB_ID", &job)],
    );
    assert_eq!(out[0]["success"], true, "{}", out[0]);
    let execution = out[0]["executionId"].as_str().unwrap();
    let e = app.execution(execution).await;
    assert_eq!(e["trigger"], json!({"kind": "EventBridge", "rule": "nightly-app-backup"}));
    assert_eq!(out[1]["success"], false);
    assert!(out[1]["error"].as_str().unwrap().contains("jobId"));
}
