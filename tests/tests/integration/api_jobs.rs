//! Jobs, destinations and executions over the API: CRUD, disabled jobs, idempotency, listing.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{send, TestApp};

fn config_job(name: &str) -> serde_json::Value {
    json!({"name": name, "items": [{"name": "cfg", "source": {"kind": "config"}}]})
}

#[tokio::test]
async fn jobs_can_be_created_read_updated_disabled_and_deleted() {
    let app = TestApp::spawn().await;
    let id = app.create_job(config_job("first")).await;
    let (status, body) = app.get(&format!("/api/jobs/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["name"], "first");
    assert_eq!(body["data"]["enabled"], true);
    assert_eq!(body["data"]["compression"], json!({"algorithm": "zstd", "level": 3}));

    let mut spec = config_job("renamed");
    spec["destinations"] = body["data"]["destinations"].clone();
    let (status, body) = send(app.req(reqwest::Method::PUT, &format!("/api/jobs/{id}")).json(&spec)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["name"], "renamed");

    let (status, body) = app.post(&format!("/api/jobs/{id}/disable"), None).await;
    assert_eq!((status, body["data"]["enabled"].clone()), (200, json!(false)));
    let (status, body) = app.post(&format!("/api/jobs/{id}/run"), None).await;
    assert_eq!(status, 409, "running a disabled job is a conflict: {body}");
    assert!(body["error"].as_str().unwrap().contains("disabled"));

    let (_, list) = app.get("/api/jobs").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(send(app.req(reqwest::Method::DELETE, &format!("/api/jobs/{id}"))).await.0, 200);
    assert_eq!(app.get(&format!("/api/jobs/{id}")).await.0, 404);
}

#[tokio::test]
async fn a_destination_in_use_cannot_be_deleted() {
    let app = TestApp::spawn().await;
    let d = app.create_destination("p").await;
    let mut spec = config_job("j");
    spec["destinations"] = json!([d]);
    let job = app.create_job(spec).await;
    let (status, body) = send(app.req(reqwest::Method::DELETE, &format!("/api/destinations/{d}"))).await;
    assert_eq!(status, 409, "{body}");
    send(app.req(reqwest::Method::DELETE, &format!("/api/jobs/{job}"))).await;
    assert_eq!(
        send(app.req(reqwest::Method::DELETE, &format!("/api/destinations/{d}"))).await.0,
        200
    );
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_execution() {
    let app = TestApp::spawn().await;
    let job = app.create_job(config_job("idem")).await;
    let path = format!("/api/jobs/{job}/run");
    let first = send(app.req(reqwest::Method::POST, &path).header("Idempotency-Key", "deploy-42")).await;
    let again = send(app.req(reqwest::Method::POST, &path).header("Idempotency-Key", "deploy-42")).await;
    let other = send(app.req(reqwest::Method::POST, &path).header("Idempotency-Key", "deploy-43")).await;
    assert_eq!(first.0, 200);
    assert_eq!(first.1["executionId"], again.1["executionId"]);
    assert_ne!(first.1["executionId"], other.1["executionId"]);
    let (status, _) = send(app.req(reqwest::Method::POST, &path).header("Idempotency-Key", "has space")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn executions_are_listed_with_filters_and_cursor_paging() {
    let app = TestApp::spawn().await;
    let a = app.create_job(config_job("a")).await;
    let b = app.create_job(config_job("b")).await;
    let mut ids_a = Vec::new();
    for _ in 0..5 {
        ids_a.push(app.run_job(&a).await);
    }
    let id_b = app.run_job(&b).await;
    for id in ids_a.iter().chain(std::iter::once(&id_b)) {
        app.wait_for_end(id, Duration::from_secs(60)).await;
    }
    // Page through job a's executions two at a time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/executions?jobId={a}&limit=2&cursor={c}"),
            None => format!("/api/executions?jobId={a}&limit=2"),
        };
        let (status, page) = app.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.iter().collect::<HashSet<_>>(), ids_a.iter().collect::<HashSet<_>>());
    let mut newest_first = ids_a.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "newest first");
    let (_, succ) = app.get("/api/executions?status=Success&limit=100").await;
    assert_eq!(succ["data"].as_array().unwrap().len(), 6);
    let (_, failed) = app.get("/api/executions?status=Failed").await;
    assert_eq!(failed["data"].as_array().unwrap().len(), 0);
    let (_, all) = app.get("/api/executions?limit=100").await;
    assert_eq!(all["data"][0]["id"], id_b.as_str());
}
