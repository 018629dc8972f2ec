//! Faults on the way to the store, injected by `fault-proxy` (tests/src/bin) between
//! `cairn serve` and the local endpoint: transient ones are survived, a store that stays
//! down fails the run cleanly with the operation named and nothing left behind.

use std::fs;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::{json, Value};

use crate::backups::{describe, make_tree};
use crate::helpers::{binary, free_port, Options, TestApp, ENDPOINT};

/// The proxy, killed when dropped.
pub struct FaultProxy {
    child: Child,
    pub url: String,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl FaultProxy {
    /// A proxy in front of the local endpoint.
    pub async fn start(faults: &[&str]) -> Self {
        Self::before(ENDPOINT, faults).await
    }

    /// A proxy in front of `upstream`.
    pub async fn before(upstream: &str, faults: &[&str]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(binary("fault-proxy"));
        cmd.args(["--port", &port.to_string(), "--upstream", upstream]);
        for f in faults {
            cmd.args(["--fault", f]);
        }
        let proxy = Self {
            child: cmd.spawn().expect("start fault-proxy"),
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if reqwest::get(format!("{}/__proxy/stats", proxy.url)).await.is_ok() {
                return proxy;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fault-proxy did not come up");
    }

    /// `{"UploadPart": {"requests": n, "faults": m}, ...}`.
    pub async fn stats(&self) -> Value {
        reqwest::get(format!("{}/__proxy/stats", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A server whose every AWS call goes through `proxy`, with 5 MiB parts.
async fn app_behind(proxy: &FaultProxy) -> TestApp {
    TestApp::spawn_with(Options {
        extra_env: vec![
            ("AWS_ENDPOINT_URL".into(), proxy.url.clone()),
            ("CAIRN_PART_SIZE_MIB".into(), "5".into()),
        ],
        ..Options::default()
    })
    .await
}

/// The test tree plus 40 MB that does not compress: about ten parts.
fn source_tree(root: &Path) {
    make_tree(root);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..40_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    fs::write(root.join("noise.bin"), noise).unwrap();
}

#[tokio::test]
async fn with_a_tenth_of_uploadparts_slowed_down_and_some_updateitems_failing_a_backup_succeeds_and_restores() {
    // Log writes also lose a connection now and then.
    let proxy = FaultProxy::start(&["UploadPart=0.1:503", "UpdateItem=0.05:500", "BatchWriteItem=0.25:reset"]).await;
    let app = app_behind(&proxy).await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    source_tree(&src);
    let job = app
        .create_job(json!({"name": "through faults", "items": [{"name": "tree", "source": {"kind": "directory", "path": src}}]}))
        .await;
    let backup = app.wait_for_end(&app.run_job(&job).await, Duration::from_secs(120)).await;
    assert_eq!(backup["status"], "Success", "{backup:#}");

    let dst = work.path().join("restored");
    let (status, body) = app
        .post(
            &format!("/api/executions/{}/restore", backup["id"].as_str().unwrap()),
            Some(json!({"target": {"kind": "directory", "path": dst}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let restore = app
        .wait_for_end(body["executionId"].as_str().unwrap(), Duration::from_secs(120))
        .await;
    assert_eq!(restore["status"], "Success", "{restore:#}");
    assert_eq!(describe(&dst), describe(&src));

    let stats = proxy.stats().await;
    assert!(
        stats["UploadPart"]["faults"].as_u64().unwrap() >= 1,
        "no UploadPart was faulted: {stats}"
    );
    assert!(
        stats["UpdateItem"]["faults"].as_u64().unwrap() >= 1,
        "no UpdateItem was faulted: {stats}"
    );
    assert!(
        stats["BatchWriteItem"]["faults"].as_u64().unwrap() >= 1,
        "no connection was reset: {stats}"
    );
    // Every log line survived the resets.
    let logged = backup["logs"].as_array().unwrap();
    assert!(
        logged
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("completed successfully")),
        "{backup:#}"
    );
}

#[tokio::test]
async fn a_complete_that_always_fails_fails_the_run_naming_it_and_leaves_nothing() {
    let proxy = FaultProxy::start(&["CompleteMultipartUpload=1:500"]).await;
    let app = app_behind(&proxy).await;
    let job = app
        .create_job(json!({"name": "never completes", "items": [{"name": "out", "source": {"kind": "command", "argv": ["head", "-c", "7000000", "/dev/urandom"]}}]}))
        .await;
    let e = app.wait_for_end(&app.run_job(&job).await, Duration::from_secs(120)).await;
    assert_eq!(e["status"], "Failed", "{e:#}");
    let error = e["error"].as_str().unwrap();
    assert!(
        error.contains("CompleteMultipartUpload of s3://") && error.contains("500 InternalError") && error.contains("after 4 attempts"),
        "{error}"
    );
    // Every attempt reached the store (the SDK's retries: four for the destination's
    // probe, which then fails with a warning, four for the item), and both uploads were
    // aborted.
    let stats = proxy.stats().await;
    assert_eq!(stats["CompleteMultipartUpload"]["requests"], 8, "{stats}");
    assert_eq!(stats["AbortMultipartUpload"]["requests"], 2, "{stats}");
    assert!(e["logs"].to_string().contains("probing its store failed"), "{e:#}");
    let s3 = app.s3().await;
    let open = s3.list_multipart_uploads().bucket(&app.bucket).send().await.unwrap();
    assert!(open.uploads().is_empty(), "uploads left: {:?}", open.uploads());
    let folder = format!("backups/{job}/{}/", e["id"].as_str().unwrap());
    assert!(app.object_keys(&folder).await.is_empty(), "objects left under {folder}");

    // Its slot was freed: the next run is claimed and ends too.
    let next = app.wait_for_end(&app.run_job(&job).await, Duration::from_secs(120)).await;
    assert_eq!(next["status"], "Failed", "{next:#}");
}

/// Claims (TransactWriteItems), queue and sweep reads (Query), reads of the job (GetItem)
/// faulted, and a tenth of the parts' answers stalled past the read timeout: every run of
/// a queue of three still succeeds, and every slot is given back.
#[tokio::test]
async fn with_claims_queries_and_reads_faulted_and_parts_stalled_a_queue_of_runs_succeeds_and_frees_its_slots() {
    let proxy = FaultProxy::start(&[
        "TransactWriteItems=0.3:500",
        "Query=0.2:503",
        "GetItem=0.1:reset",
        "UploadPart=0.1:delay:5000",
    ])
    .await;
    let app = TestApp::spawn_with(Options {
        extra_env: vec![
            ("AWS_ENDPOINT_URL".into(), proxy.url.clone()),
            ("CAIRN_PART_SIZE_MIB".into(), "5".into()),
            ("CAIRN_AWS_READ_TIMEOUT_SECONDS".into(), "2".into()),
        ],
        ..Options::default()
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    source_tree(&src);
    let job = app
        .create_job(json!({"name": "queued through faults", "items": [{"name": "tree", "source": {"kind": "directory", "path": src}}]}))
        .await;
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(app.run_job(&job).await);
    }
    for id in &runs {
        let e = app.wait_for_end(id, Duration::from_secs(180)).await;
        assert_eq!(e["status"], "Success", "{e:#}");
    }
    let stats = proxy.stats().await;
    for op in ["TransactWriteItems", "Query", "GetItem", "UploadPart"] {
        assert!(stats[op]["faults"].as_u64().unwrap_or(0) >= 1, "no {op} was faulted: {stats}");
    }
    assert_eq!(app.running_slots().await, 0, "a slot was not given back");
}
