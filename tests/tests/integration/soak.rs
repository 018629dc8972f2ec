//! The soak (not in the default run: `bash scripts/soak.sh`): many executions under
//! `cairn serve` with `maxConcurrentJobs` 3, a share of every S3 and DynamoDB operation on
//! the run path failing (through `fault-proxy`), and random cancels. At the end every
//! execution ended, the running counter is back to 0, no multipart upload is left, and
//! every Success restores equal to its source. Prints its figures.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::backups::{describe, make_tree};
use crate::faults::FaultProxy;
use crate::helpers::{Options, TestApp};

/// The operations faulted, each at the soak's share.
const FAULTED: &[(&str, &str)] = &[
    ("CreateMultipartUpload", "503"),
    ("UploadPart", "503"),
    ("CompleteMultipartUpload", "500"),
    ("HeadObject", "503"),
    ("GetObject", "reset"),
    ("PutObject", "500"),
    ("GetItem", "500"),
    ("PutItem", "500"),
    ("UpdateItem", "500"),
    ("Query", "503"),
    ("TransactWriteItems", "500"),
    ("BatchWriteItem", "reset"),
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// xorshift: the cancels are random but the same from run to run.
struct Dice(u64);

impl Dice {
    fn roll(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test]
#[ignore = "the soak runs for minutes: bash scripts/soak.sh"]
async fn soak() {
    let executions: usize = env_or("SOAK_EXECUTIONS", 300);
    let share: f64 = env_or("SOAK_FAULT_SHARE", 0.05);
    let cancel_share: u64 = env_or("SOAK_CANCEL_PERCENT", 10);
    let faults: Vec<String> = FAULTED.iter().map(|(op, kind)| format!("{op}={share}:{kind}")).collect();
    let proxy = FaultProxy::start(&faults.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let app = TestApp::spawn_with(Options {
        lease_seconds: 10,
        sweep_seconds: 5,
        extra_env: vec![
            ("AWS_ENDPOINT_URL".into(), proxy.url.clone()),
            ("CAIRN_PART_SIZE_MIB".into(), "5".into()),
        ],
        ..Options::default()
    })
    .await;
    app.cli(&["settings", "set", "max-concurrent-jobs", "3"]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    std::fs::write(
        src.join("parts.bin"),
        (0..12_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let job = app
        .create_job(json!({"name": "soak", "items": [{"name": "tree", "source": {"kind": "directory", "path": src}}]}))
        .await;

    let started = Instant::now();
    let mut dice = Dice(0x2545_F491_4F6C_DD1D);
    let mut ids = Vec::new();
    let mut cancels = 0;
    for _ in 0..executions {
        ids.push(app.run_job(&job).await);
        if dice.roll() % 100 < cancel_share {
            let victim = &ids[usize::try_from(dice.roll()).unwrap_or(0) % ids.len()];
            let _ = app.post(&format!("/api/executions/{victim}/cancel"), None).await;
            cancels += 1;
        }
    }
    let mut ended: BTreeMap<String, Value> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(env_or("SOAK_MINUTES", 40) * 60);
    while ended.len() < ids.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} executions never ended",
            ids.len() - ended.len(),
            ids.len()
        );
        let waiting: Vec<&String> = ids.iter().filter(|id| !ended.contains_key(*id)).collect();
        for id in waiting {
            let (status, body) = app.get(&format!("/api/executions/{id}")).await;
            if status == 200 && !matches!(body["data"]["status"].as_str(), Some("Pending" | "Running")) {
                ended.insert(id.clone(), body["data"].clone());
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let backups_took = started.elapsed();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for e in ended.values() {
        *by_status.entry(e["status"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
    }

    // Every slot given back, no upload left open.
    assert_eq!(app.running_slots().await, 0, "the running counter is not back to 0");
    let s3 = app.s3().await;
    let open = s3.list_multipart_uploads().bucket(&app.bucket).send().await.unwrap();
    assert!(open.uploads().is_empty(), "{} multipart uploads left", open.uploads().len());

    // Every Success restores equal to its source (through the same faults).
    let expected = describe(&src);
    let successes: Vec<&String> = ended.iter().filter(|(_, e)| e["status"] == "Success").map(|(id, _)| id).collect();
    for (n, id) in successes.iter().enumerate() {
        let dst = work.path().join(format!("restored-{n}"));
        let (status, body) = app
            .post(
                &format!("/api/executions/{id}/restore"),
                Some(json!({"target": {"kind": "directory", "path": dst}})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let r = app
            .wait_for_end(body["executionId"].as_str().unwrap(), Duration::from_secs(300))
            .await;
        assert_eq!(r["status"], "Success", "the restore of {id}: {r:#}");
        assert_eq!(describe(&dst), expected, "the restore of {id} differs");
        std::fs::remove_dir_all(&dst).unwrap();
    }
    assert_eq!(
        app.running_slots().await,
        0,
        "the running counter is not back to 0 after the restores"
    );

    let stats = proxy.stats().await;
    let injected: u64 = stats.as_object().unwrap().values().map(|s| s["faults"].as_u64().unwrap_or(0)).sum();
    let requests: u64 = stats
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["requests"].as_u64().unwrap_or(0))
        .sum();
    println!(
        "soak: {executions} executions, maxConcurrentJobs 3, {:.0}% of {} operations faulted, {cancels} cancels requested",
        share * 100.0,
        FAULTED.len()
    );
    println!("soak: all ended in {:.0} s: {by_status:?}", backups_took.as_secs_f64());
    println!(
        "soak: {} successes restored equal to the source; running counter 0; no multipart upload left",
        successes.len()
    );
    println!("soak: {injected} faults injected in {requests} requests through the proxy");
    for (op, _) in FAULTED {
        println!("soak:   {op}: {} faults / {} requests", stats[op]["faults"], stats[op]["requests"]);
    }
    assert!(
        by_status.get("Success").copied().unwrap_or(0) > executions / 2,
        "most runs should succeed: {by_status:?}"
    );
}
