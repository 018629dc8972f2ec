//! Rate limits per client IP, shared through DynamoDB, exact at the boundary.

use chrono::Timelike;
use futures::future::join_all;

use crate::helpers::{Options, TestApp};

/// Fixed one-minute windows: start a burst early enough in a minute to stay inside it
/// (40 s of room: on a loaded two-core machine 50 requests through moto can take 15 s).
async fn wait_for_window_start() {
    let second = chrono::Utc::now().second();
    if second > 20 {
        tokio::time::sleep(std::time::Duration::from_secs(u64::from(61 - second))).await;
    }
}

#[tokio::test]
async fn write_limit_is_exact_under_50_parallel_requests() {
    let app = TestApp::spawn_with(Options {
        rate_limit_write: 20,
        ..Options::default()
    })
    .await;
    wait_for_window_start().await;
    let requests = (0..50).map(|_| app.req(reqwest::Method::POST, "/api/jobs/no-such-job/run").send());
    let responses = join_all(requests).await;
    let mut limited = 0;
    let mut passed = 0;
    for r in responses {
        let r = r.unwrap();
        match r.status().as_u16() {
            429 => {
                limited += 1;
                let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=60).contains(&retry));
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["success"], false);
                assert!(body["error"].as_str().unwrap().contains("Rate limit"));
            }
            404 => passed += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((passed, limited), (20, 30));
}

#[tokio::test]
async fn get_limit_is_separate_from_the_write_limit() {
    let app = TestApp::spawn_with(Options {
        rate_limit_get: 30,
        rate_limit_write: 5,
        ..Options::default()
    })
    .await;
    wait_for_window_start().await;
    let gets = join_all((0..50).map(|_| app.req(reqwest::Method::GET, "/api/jobs").send())).await;
    let ok = gets.iter().filter(|r| r.as_ref().unwrap().status() == 200).count();
    let limited = gets.iter().filter(|r| r.as_ref().unwrap().status() == 429).count();
    assert_eq!((ok, limited), (30, 20));
    // Writes still have their own budget.
    let (status, _) = app.post("/api/jobs/none/run", None).await;
    assert_eq!(status, 404);
}
