//! The function binaries under a Lambda runtime emulator, answering real API Gateway v2
//! and EventBridge events from the fixtures.

use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{binary, project_root, TestApp};
use crate::hooks::{create_hook, HookDir};

/// Runs `function`'s binary under the emulator with the fixtures (placeholders
/// substituted) and answers the responses.
fn invoke(app: &TestApp, function: &str, fixtures: &[&str], subs: &[(&str, &str)]) -> Vec<Value> {
    let events: Vec<Value> = fixtures
        .iter()
        .map(|f| {
            let mut text = std::fs::read_to_string(project_root().join("tests/fixtures").join(f)).unwrap();
            for (k, v) in subs {
                text = text.replace(k, v);
            }
            serde_json::from_str(&text).unwrap()
        })
        .collect();
    let report = emulate(app, function, &events, &[]);
    report["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["kind"], "response", "{r}");
            r["body"].clone()
        })
        .collect()
}

/// Runs `function`'s binary under the emulator with `events` and `env` beside the test's
/// environment, and answers the emulator's report (responses, and the Invokes the
/// function sent).
fn emulate(app: &TestApp, function: &str, events: &[Value], env: &[(&str, &str)]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let p = dir.path().join(format!("{i}.json"));
        std::fs::write(&p, event.to_string()).unwrap();
        paths.push(p);
    }
    let out = Command::new(binary("lambda-emulator"))
        .args(&paths)
        .arg("--")
        .arg(binary(&format!("cairn-{function}")))
        .envs(app.env())
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("cairn-{function}"))
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["stderr"] = Value::String(String::from_utf8_lossy(&out.stderr).into_owned());
    assert_eq!(
        report["responses"].as_array().map(Vec::len),
        Some(events.len()),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    report
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

/// A job whose one command item reads `seconds` of nothing before its data.
fn command_job(name: &str, script: &str) -> Value {
    json!({"name": name, "items": [{"name": "out", "source": {"kind": "command", "argv": ["bash", "-c", script]}}]})
}

#[tokio::test]
async fn the_runner_claims_only_what_fits_before_the_lambda_deadline_and_hands_on_the_rest() {
    // The API's own dispatches go nowhere (no such function), and its sweep waits an hour:
    // only the emulated runner below works on the queue.
    let hooks = HookDir::new();
    let mut options = hooks.options();
    options.sweep_seconds = 3600;
    options
        .extra_env
        .push(("CAIRN_RUNNER_FUNCTION".into(), "cairn-not-deployed".into()));
    let app = TestApp::spawn_with(options).await;
    let statuses = tempfile::tempdir().unwrap();
    let record = statuses.path().join("post.txt");
    let script = hooks.install(
        "post",
        &format!("#!/bin/sh\necho \"$CAIRN_JOB_ID $CAIRN_STATUS\" >> {}\n", record.display()),
    );
    create_hook(
        &app,
        json!({"name": "post", "position": "post", "type": "backup", "script": script}),
    )
    .await;
    let quick = app.create_job(command_job("quick", "head -c 100000 /dev/urandom")).await;
    let slow = app.create_job(command_job("slow", "head -c 3000000 /dev/urandom; sleep 120")).await;
    let first = app.run_job(&quick).await;
    let cut_off = app.run_job(&slow).await;
    let left = app.run_job(&slow).await;

    // A 20 s invocation: claims need 12 s left, work stops 4 s before the end.
    let event = json!({"action": "execute", "executionId": first});
    let report = emulate(
        &app,
        "runner",
        &[event],
        &[
            ("LAMBDA_EMULATOR_DEADLINE_MS", "20000"),
            ("CAIRN_MIN_REMAINING_SECONDS", "12"),
            ("CAIRN_STOP_BEFORE_DEADLINE_SECONDS", "4"),
            ("CAIRN_RUNNER_FUNCTION", "cairn-runner"),
        ],
    );
    let log = report["stderr"].as_str().unwrap_or_default().to_owned();
    assert_eq!(app.execution(&first).await["status"], "Success", "{report:#}\n{log}");
    let stopped = app.execution(&cut_off).await;
    assert_eq!(stopped["status"], "Failed", "{stopped:#}");
    let error = stopped["error"].as_str().unwrap();
    assert!(error.starts_with("stopped at the Lambda time limit after "), "{error}");
    assert!(error.ends_with("read; give the job \"runner\": \"fargate\""), "{error}");
    assert!(!error.contains("Never finished"), "{error}");
    // One CloudWatch EMF document per finished execution, on the runner's stdout.
    let documents: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{') && l.contains("\"_aws\":"))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = documents.iter().map(|d| d["executionId"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.as_str(), cut_off.as_str()], "{log}");
    let emf = &documents[1];
    assert_eq!(emf["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Cairn");
    assert_eq!(
        (&emf["JobName"], &emf["Type"], &emf["Failed"], &emf["Success"]),
        (&json!("slow"), &json!("Backup"), &json!(1), &json!(0))
    );
    assert!(emf["BytesRead"].as_u64().unwrap() >= 3_000_000, "{emf}");
    let posted = std::fs::read_to_string(&record).unwrap();
    assert_eq!(posted, format!("{quick} 100\n{slow} 102\n"), "post hooks: Success, then Failed");
    assert_eq!(
        app.execution(&left).await["status"],
        "Pending",
        "not claimed without the time for it"
    );
    // The rest of the queue went to a fresh asynchronous invocation of the runner.
    assert_eq!(
        report["invokes"],
        json!([{"function": "cairn-runner", "invocationType": "Event", "payload": {"action": "execute", "executionId": left}}]),
        "{report:#}"
    );
    // Nothing partial stays: no upload open, no object of the stopped run.
    let uploads = app.s3().await.list_multipart_uploads().bucket(&app.bucket).send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
    assert!(app.object_keys(&format!("backups/{slow}/{cut_off}/")).await.is_empty());
    // The slot is free: the fresh invocation claims the execution left behind at once.
    let (status, _) = app.post(&format!("/api/executions/{left}/cancel"), None).await;
    assert_eq!(status, 200);
    let next = app.run_job(&quick).await;
    let event = json!({"action": "execute", "executionId": next});
    emulate(&app, "runner", &[event], &[("CAIRN_MIN_REMAINING_SECONDS", "12")]);
    assert_eq!(app.execution(&next).await["status"], "Success");
}
