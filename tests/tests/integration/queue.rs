//! The queue: maxConcurrentJobs under concurrent triggers, FIFO, cancel, and the sweep
//! after a runner dies.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::json;

use crate::helpers::{Options, TestApp};

/// A job whose one item takes about `seconds` and writes a little output.
fn slow_job(name: &str, seconds: f32) -> serde_json::Value {
    json!({"name": name, "items": [{"name": "slow", "source": {"kind": "command", "argv": ["bash", "-c", format!("sleep {seconds}; head -c 100000 /dev/urandom")]}}]})
}

#[tokio::test]
async fn twenty_concurrent_triggers_never_run_more_than_max_concurrent_jobs() {
    let app = TestApp::spawn().await;
    app.cli(&["settings", "set", "max-concurrent-jobs", "2"]).unwrap();
    let job = app.create_job(slow_job("burst", 0.4)).await;
    let path = format!("/api/jobs/{job}/run");
    let triggers = (0..20).map(|_| app.post(&path, None));
    let ids: Vec<String> = join_all(triggers)
        .await
        .into_iter()
        .map(|(s, b)| {
            assert_eq!(s, 200, "{b}");
            b["executionId"].as_str().unwrap().to_owned()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, page) = app.get(&format!("/api/executions?jobId={job}&limit=100")).await;
        let statuses: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_str().unwrap().to_owned())
            .collect();
        if statuses.len() == 20 && statuses.iter().all(|s| s == "Success") {
            break;
        }
        assert!(
            !statuses.iter().any(|s| s == "Failed" || s == "Partial"),
            "{statuses:?}\n{}",
            app.server_log()
        );
        assert!(Instant::now() < deadline, "not all ended: {statuses:?}\n{}", app.server_log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A listing is not a snapshot (neither is a DynamoDB index query), so the limit is
    // checked on what each execution recorded: at no instant were more than two between
    // their start and their end.
    let mut edges = Vec::new();
    for id in &ids {
        let e = app.execution(id).await;
        edges.push((e["startedAt"].as_str().unwrap().to_owned(), 1i32));
        edges.push((e["endedAt"].as_str().unwrap().to_owned(), -1i32));
    }
    // Ends sort before starts at the same millisecond: a slot freed is a slot taken.
    edges.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut running = 0;
    let mut max_running = 0;
    for (_, delta) in &edges {
        running += delta;
        max_running = max_running.max(running);
    }
    assert!(max_running <= 2, "{max_running} ran at once: {edges:?}");
    assert_eq!(max_running, 2, "both slots were used");
    // FIFO: executions started in the order they were queued.
    let mut started = Vec::new();
    for id in &ids {
        let e = app.execution(id).await;
        started.push((e["startedAt"].as_str().unwrap().to_owned(), id.clone()));
    }
    let (_, page) = app.get(&format!("/api/executions?jobId={job}&limit=100")).await;
    let mut queued_order: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    queued_order.reverse();
    let mut by_start = started.clone();
    by_start.sort();
    let start_order: Vec<String> = by_start.into_iter().map(|(_, id)| id).collect();
    // Two slots: an execution starts no later than two places after its queue position.
    for (pos, id) in start_order.iter().enumerate() {
        let qpos = queued_order.iter().position(|q| q == id).unwrap();
        assert!(pos.abs_diff(qpos) <= 2, "execution {id} queued {qpos} started {pos}");
    }
}

#[tokio::test]
async fn cancel_works_while_pending_and_while_running() {
    let app = TestApp::spawn().await;
    let job = app.create_job(slow_job("long", 30.0)).await;
    let running = app.run_job(&job).await;
    app.wait_until(&running, Duration::from_secs(20), |e| e["status"] == "Running")
        .await;
    let pending = app.run_job(&job).await;
    let e = app.execution(&pending).await;
    assert_eq!(e["status"], "Pending");
    assert_eq!(e["queuePosition"], 1);

    let (status, body) = app.post(&format!("/api/executions/{pending}/cancel"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "Cancelled");

    let asked = Instant::now();
    let (status, _) = app.post(&format!("/api/executions/{running}/cancel"), None).await;
    assert_eq!(status, 200);
    let ended = app.wait_for_end(&running, Duration::from_secs(15)).await;
    assert_eq!(ended["status"], "Cancelled", "{ended:#}");
    // Well before the job's 30 s: the heartbeat learns of the cancel within a second; the
    // rest is the local endpoint's speed, which a loaded two-core machine halves.
    assert!(asked.elapsed() < Duration::from_secs(10), "cancel took {:?}", asked.elapsed());
    let folder = format!("backups/{job}/{running}/");
    assert!(app.object_keys(&folder).await.is_empty(), "a cancelled backup leaves nothing");
    let (status, body) = app.post(&format!("/api/executions/{running}/cancel"), None).await;
    assert_eq!(status, 409, "{body}");
    // The slot was freed: the next run goes through.
    let fast = app
        .create_job(json!({"name": "fast", "items": [{"name": "c", "source": {"kind": "config"}}]}))
        .await;
    let next = app.run_job(&fast).await;
    assert_eq!(app.wait_for_end(&next, Duration::from_secs(30)).await["status"], "Success");
}

#[tokio::test]
async fn killing_the_runner_mid_upload_leaves_no_manifest_and_the_sweep_fails_it() {
    let mut app = TestApp::spawn_with(Options {
        lease_seconds: 3,
        sweep_seconds: 1,
        ..Options::default()
    })
    .await;
    let job = app
        .create_job(json!({"name": "big", "items": [{"name": "stream", "source": {"kind": "command", "argv": ["bash", "-c", "head -c 12000000 /dev/urandom; sleep 60"]}}]}))
        .await;
    let id = app.run_job(&job).await;
    // Wait until at least one part reached S3 (stage Uploading), then crash the server.
    app.wait_until(&id, Duration::from_secs(30), |e| e["stage"] == "Uploading").await;
    app.kill_server();
    app.start_server().await;
    let ended = app.wait_for_end(&id, Duration::from_secs(30)).await;
    assert_eq!(ended["status"], "Failed");
    assert!(ended["error"].as_str().unwrap().contains("Never finished"), "{ended:#}");
    let keys = app.object_keys(&format!("backups/{job}/{id}/")).await;
    assert!(!keys.iter().any(|k| k.ends_with("manifest.json")), "{keys:?}");
    // The slot the dead runner held is free again.
    let fast = app
        .create_job(json!({"name": "after", "items": [{"name": "c", "source": {"kind": "config"}}]}))
        .await;
    let next = app.run_job(&fast).await;
    assert_eq!(app.wait_for_end(&next, Duration::from_secs(30)).await["status"], "Success");
}
