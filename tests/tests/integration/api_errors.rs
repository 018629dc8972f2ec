//! Bad input: every error is a clear JSON 4xx, and nothing partial is written.

use serde_json::json;

use crate::helpers::{send, TestApp};

async fn job_count(app: &TestApp) -> usize {
    app.get("/api/jobs").await.1["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn when_the_body_is_malformed_json_should_return_400_and_write_nothing() {
    let app = TestApp::spawn().await;
    let (status, body) = send(
        app.req(reqwest::Method::POST, "/api/jobs")
            .header("content-type", "application/json")
            .body("{\"name\": "),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["success"], false);
    assert!(body["error"].as_str().unwrap().starts_with("Malformed JSON"), "{body}");
    assert_eq!(job_count(&app).await, 0);
}

#[tokio::test]
async fn when_a_field_is_unknown_or_mistyped_should_name_it() {
    let app = TestApp::spawn().await;
    let d = app.create_destination("x").await;
    let (status, body) = app
        .post(
            "/api/jobs",
            Some(json!({"name": "j", "items": [], "destinations": [d], "colour": "red"})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("colour"), "{body}");
    let (status, body) = app
        .post(
            "/api/jobs",
            Some(json!({"name": "j", "items": [{"name": "a", "source": {"kind": "directory", "path": 5}}], "destinations": [d]})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("items[0].source"), "{body}");
    let (status, body) = app
        .post(
            "/api/jobs",
            Some(json!({"name": "j", "items": [{"name": "a", "source": {"kind": "config"}}], "destinations": ["nope"]})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("destinations[0]"), "{body}");
    let (status, body) = app
        .post("/api/jobs", Some(json!({"name": "j", "items": [{"name": "db", "source": {"kind": "postgres", "url": "postgres://u:pw@h/db"}}], "destinations": [d]})))
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("passwordEnv"), "{body}");
    assert!(!body.to_string().contains("pw@"), "the secret is not echoed");
    assert_eq!(job_count(&app).await, 0);
}

#[tokio::test]
async fn when_the_body_is_too_large_should_return_413() {
    let app = TestApp::spawn().await;
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(300 * 1024));
    let (status, body) = send(
        app.req(reqwest::Method::POST, "/api/jobs")
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    assert_eq!(status, 413);
    assert!(body["error"].as_str().unwrap().contains("too large"), "{body}");
    assert_eq!(job_count(&app).await, 0);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_404_and_405() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/api/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(body["success"], false);
    let resp = app.req(reqwest::Method::PATCH, "/api/jobs/abc").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "GET, PUT, DELETE");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("PATCH"));
}

#[tokio::test]
async fn when_the_job_is_unknown_should_return_404_job_not_found() {
    let app = TestApp::spawn().await;
    let (status, body) = app.post("/api/jobs/does-not-exist/run", None).await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"success": false, "error": "Job not found"}));
    let (status, body) = app.get("/api/executions/does-not-exist").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "Execution not found");
}

#[tokio::test]
async fn query_parameters_are_validated() {
    let app = TestApp::spawn().await;
    for (path, word) in [
        ("/api/executions?status=Done", "status"),
        ("/api/executions?limit=0", "limit"),
        ("/api/executions?limit=abc", "limit"),
        ("/api/executions?cursor=garbage", "cursor"),
        ("/api/executions/x?includeLogs=maybe", "includeLogs"),
    ] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains(word), "{path}: {body}");
    }
}

#[tokio::test]
async fn when_the_body_is_a_json_array_should_return_400_and_create_nothing() {
    let app = TestApp::spawn().await;
    let (status, body) = send(
        app.req(reqwest::Method::POST, "/api/destinations")
            .header("content-type", "application/json")
            .body(r#"["primary", "some-bucket", "p"]"#),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("must be a JSON object"), "{body}");
    assert_eq!(app.get("/api/destinations").await.1["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn when_a_cursor_is_crafted_should_return_400_not_500() {
    use base64::Engine;
    let app = TestApp::spawn().await;
    let crafted = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"id":"x","listPartition":"executions"}"#);
    let (status, body) = app.get(&format!("/api/executions?cursor={crafted}")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("cursor"), "{body}");
}

#[tokio::test]
async fn when_an_idempotency_key_is_not_ascii_should_return_400_and_queue_nothing() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "j", "items": [{"name": "c", "source": {"kind": "config"}}]}))
        .await;
    let value = reqwest::header::HeaderValue::from_bytes("déjà-vu".as_bytes()).unwrap();
    let (status, body) = send(
        app.req(reqwest::Method::POST, &format!("/api/jobs/{job}/run"))
            .header("idempotency-key", value),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("Idempotency-Key"), "{body}");
    let listed = app.get(&format!("/api/executions?jobId={job}")).await.1;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "{listed}");
}
