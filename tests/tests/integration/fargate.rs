//! `"runner": "fargate"`: the execution is claimed like any other, handed to an ECS task
//! by `RunTask` (sent through the real SDK to a recording endpoint), and performed by the
//! runner binary started as a plain process, as Fargate starts it.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::backups::{describe, make_tree};
use crate::helpers::{binary, Options, TestApp};
use crate::recorder::{Recorded, Recorder};

const TARGET: &str = "AmazonEC2ContainerServiceV20141113.RunTask";

fn fargate_app_options(ecs: &Recorder) -> Options {
    let env = [
        ("AWS_ENDPOINT_URL_ECS", ecs.url.as_str()),
        ("CAIRN_FARGATE_CLUSTER", "cairn-test"),
        ("CAIRN_FARGATE_TASK_DEFINITION", "cairn-test-runner:7"),
        ("CAIRN_FARGATE_SUBNETS", "subnet-a,subnet-b"),
        ("CAIRN_FARGATE_SECURITY_GROUPS", "sg-1"),
    ];
    Options {
        extra_env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..Options::default()
    }
}

/// Checks that `request` is the RunTask of `execution` with the configured task.
fn assert_run_task(request: &Recorded, execution: &str) {
    assert_eq!(request.target, TARGET);
    let b = &request.body;
    assert_eq!(b["cluster"], "cairn-test");
    assert_eq!(b["taskDefinition"], "cairn-test-runner:7");
    assert_eq!(b["launchType"], "FARGATE");
    assert_eq!(b["count"], 1);
    assert_eq!(b["clientToken"], execution, "a repeated dispatch starts no second task");
    assert_eq!(
        b["networkConfiguration"],
        json!({"awsvpcConfiguration": {"subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-1"], "assignPublicIp": "DISABLED"}})
    );
    assert_eq!(
        b["overrides"],
        json!({"containerOverrides": [{"name": "runner", "environment": [{"name": "CAIRN_EXECUTION_ID", "value": execution}]}]})
    );
}

/// Runs the runner binary outside Lambda with `CAIRN_EXECUTION_ID`, as the task does.
fn run_task(app: &TestApp, execution: &str) -> std::process::Output {
    Command::new(binary("cairn-runner"))
        .envs(app.env())
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("CAIRN_EXECUTION_ID", execution)
        .output()
        .expect("run the runner")
}

/// Waits for the `n`th RunTask, checks it is `execution`'s, runs the task, and answers
/// the execution's end.
async fn perform_as_task(app: &TestApp, ecs: &Recorder, n: usize, execution: &str) -> Value {
    let requests = ecs.wait_for(n, Duration::from_secs(30)).await;
    assert_run_task(&requests[n - 1], execution);
    let claimed = app.execution(execution).await;
    assert_eq!(claimed["status"], "Running", "claimed for the task before it starts: {claimed:#}");
    let out = run_task(app, execution);
    let ended = app.execution(execution).await;
    assert_eq!(out.status.code(), Some(0), "{ended:#}\n{}", String::from_utf8_lossy(&out.stderr));
    ended
}

#[tokio::test]
async fn a_fargate_job_runs_in_its_task_and_restores_byte_for_byte() {
    let answer = json!({"tasks": [{"taskArn": "arn:aws:ecs:us-east-1:000000000000:task/cairn-test/0123456789abcdef"}], "failures": []});
    let ecs = Recorder::start(answer);
    let app = TestApp::spawn_with(fargate_app_options(&ecs)).await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    std::fs::remove_file(src.join("scratch.tmp")).unwrap();
    let spec = json!({"name": "long", "runner": "fargate", "items": [{"name": "tree", "source": {"kind": "directory", "path": src}}]});
    let job = app.create_job(spec).await;
    let (_, stored) = app.get(&format!("/api/jobs/{job}")).await;
    assert_eq!(stored["data"]["runner"], "fargate");

    let backup = app.run_job(&job).await;
    let ended = perform_as_task(&app, &ecs, 1, &backup).await;
    assert_eq!(ended["status"], "Success", "{ended:#}");

    // The restore runs where its backup ran: in a task of its own.
    let dst = work.path().join("restored");
    let (status, resp) = app
        .post(
            &format!("/api/executions/{backup}/restore"),
            Some(json!({"target": {"kind": "directory", "path": dst}})),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let restore = resp["executionId"].as_str().unwrap().to_owned();
    let restored = perform_as_task(&app, &ecs, 2, &restore).await;
    assert_eq!(restored["status"], "Success", "{restored:#}");
    assert_eq!(describe(&dst), describe(&src), "content, modes, mtimes and symlinks");

    // A finished execution is not performed again: the task refuses it.
    let again = run_task(&app, &backup);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("not waiting for this task"));
}

#[tokio::test]
async fn a_failed_task_start_fails_the_execution_and_without_fargate_the_job_is_refused() {
    let refusal = json!({"tasks": [], "failures": [{"arn": "arn:aws:ecs:us-east-1:000000000000:container-instance/x", "reason": "RESOURCE:MEMORY", "detail": "no capacity"}]});
    let ecs = Recorder::start(refusal);
    let app = TestApp::spawn_with(fargate_app_options(&ecs)).await;
    let spec = json!({"name": "long", "runner": "fargate", "items": [{"name": "cfg", "source": {"kind": "config"}}]});
    let job = app.create_job(spec.clone()).await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(30)).await;
    assert_eq!(e["status"], "Failed");
    let error = e["error"].as_str().unwrap();
    assert!(
        error.contains("could not start the Fargate task") && error.contains("RESOURCE:MEMORY"),
        "{error}"
    );
    // Its slot is free again: a Lambda job runs.
    let quick = app
        .create_job(json!({"name": "quick", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let next = app.run_job(&quick).await;
    assert_eq!(app.wait_for_end(&next, Duration::from_secs(30)).await["status"], "Success");

    // A deployment without the task refuses such a job when it is stored.
    let plain = TestApp::spawn().await;
    let d = plain.create_destination("backups").await;
    let mut spec = spec;
    spec["destinations"] = json!([d]);
    let (status, body) = plain.post("/api/jobs", Some(spec)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("RunnerImageUri"), "{body}");
}
