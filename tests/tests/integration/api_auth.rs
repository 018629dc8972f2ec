//! Keys: 401 reasons, 403 naming the permission, keys stored hashed, lastUsedAt.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{send, TestApp};

#[tokio::test]
async fn when_the_key_is_missing_should_return_401_saying_so() {
    let app = TestApp::spawn().await;
    let (status, body) = send(app.http.get(app.url("/api/jobs"))).await;
    assert_eq!(status, 401);
    assert_eq!(body["success"], false);
    assert!(body["error"].as_str().unwrap().contains("Missing API key"), "{body}");
}

#[tokio::test]
async fn when_the_key_is_unknown_should_return_401_invalid() {
    let app = TestApp::spawn().await;
    let fake = format!("cairn_{}", "0".repeat(64));
    let (status, body) = send(app.http.get(app.url("/api/jobs")).bearer_auth(fake)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "Invalid API key");
    let (status, body) = send(app.http.get(app.url("/api/jobs")).header("authorization", "Basic abc")).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn when_the_key_is_disabled_should_return_401_disabled_and_work_again_once_enabled() {
    let app = TestApp::spawn().await;
    let k = app.cli(&["keys", "create", "--name", "ci", "--permissions", "jobs:read"]).unwrap();
    let (id, secret) = (k["id"].as_str().unwrap(), k["key"].as_str().unwrap());
    assert_eq!(send(app.http.get(app.url("/api/jobs")).bearer_auth(secret)).await.0, 200);
    app.cli(&["keys", "disable", id]).unwrap();
    let (status, body) = send(app.http.get(app.url("/api/jobs")).bearer_auth(secret)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "API key is disabled");
    app.cli(&["keys", "enable", id]).unwrap();
    assert_eq!(send(app.http.get(app.url("/api/jobs")).bearer_auth(secret)).await.0, 200);
}

#[tokio::test]
async fn when_key_is_expired_should_return_401() {
    let app = TestApp::spawn().await;
    let k = app
        .cli(&[
            "keys",
            "create",
            "--name",
            "short",
            "--permissions",
            "jobs:read",
            "--expires-in",
            "2s",
        ])
        .unwrap();
    let secret = k["key"].as_str().unwrap();
    assert!(k["expiresAt"].is_string());
    assert_eq!(send(app.http.get(app.url("/api/jobs")).bearer_auth(secret)).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, body) = send(app.http.get(app.url("/api/jobs")).bearer_auth(secret)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "API key has expired");
}

#[tokio::test]
async fn when_a_permission_is_missing_should_return_403_naming_it() {
    let app = TestApp::spawn().await;
    let k = app
        .cli(&["keys", "create", "--name", "reader", "--permissions", "jobs:read,history:read"])
        .unwrap();
    let secret = k["key"].as_str().unwrap();
    let job = app
        .create_job(json!({"name": "j", "items": [{"name": "c", "source": {"kind": "config"}}]}))
        .await;
    let (status, body) = send(app.http.post(app.url(&format!("/api/jobs/{job}/run"))).bearer_auth(secret)).await;
    assert_eq!(status, 403);
    assert_eq!(body["error"], "API key lacks the 'jobs:execute' permission");
    let (status, body) = send(
        app.http
            .post(app.url("/api/keys"))
            .bearer_auth(secret)
            .json(&json!({"name": "x", "permissions": ["jobs:read"]})),
    )
    .await;
    assert_eq!(status, 403);
    assert!(body["error"].as_str().unwrap().contains("keys:write"));
}

#[tokio::test]
async fn keys_created_over_the_api_are_shown_once_and_listed_without_secrets() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .post(
            "/api/keys",
            Some(json!({"name": "pipeline", "permissions": ["jobs:execute", "history:read"], "expiresIn": "30d"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["data"]["key"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("cairn_") && secret.len() >= 6 + 40,
        "at least 160 bits: {secret}"
    );
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    // The key works, and using it records lastUsedAt.
    assert_eq!(
        send(app.http.get(app.url("/api/executions?limit=1")).bearer_auth(&secret)).await.0,
        200
    );
    let (_, list) = app.get("/api/keys").await;
    let text = list.to_string();
    assert!(!text.contains(&secret), "a listing must never show the key");
    assert!(!text.contains("keyHash"), "a listing must never show the hash");
    let listed = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(listed["lastUsedAt"].is_string(), "{listed}");
    assert_eq!(listed["permissions"], json!(["jobs:execute", "history:read"]));
    // Unknown permissions are refused by name.
    let (status, body) = app
        .post("/api/keys", Some(json!({"name": "bad", "permissions": ["jobs:destroy"]})))
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("jobs:destroy"));
    // Disable and delete over the API.
    assert_eq!(app.post(&format!("/api/keys/{id}/disable"), None).await.0, 200);
    assert_eq!(
        send(app.http.get(app.url("/api/executions?limit=1")).bearer_auth(&secret)).await.0,
        401
    );
    assert_eq!(send(app.req(reqwest::Method::DELETE, &format!("/api/keys/{id}"))).await.0, 200);
    assert_eq!(send(app.req(reqwest::Method::DELETE, &format!("/api/keys/{id}"))).await.0, 404);
}

#[tokio::test]
async fn the_key_table_holds_only_hashes() {
    let app = TestApp::spawn().await;
    let k = app.cli(&["keys", "create", "--name", "audit", "--permissions", "all"]).unwrap();
    let secret = k["key"].as_str().unwrap();
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(crate::helpers::ENDPOINT)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await;
    let ddb = aws_sdk_dynamodb::Client::new(&conf);
    let scan = ddb.scan().table_name(format!("{}-keys", app.prefix)).send().await.unwrap();
    let dump = format!("{:?}", scan.items());
    assert!(!dump.contains(secret), "the key itself must never be stored");
    assert!(dump.contains(&hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()))));
}
