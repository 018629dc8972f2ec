//! Incremental jobs: snapshots in a restic repository per destination, deduplicated
//! across runs, restored through the API, and readable by Debian's stock `restic`.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::backups::{describe, make_tree, Postgres};
use crate::helpers::{Options, TestApp, ENDPOINT};

const PASSWORD: &str = "correct horse battery staple";

fn options() -> Options {
    Options {
        extra_env: vec![
            ("CAIRN_SECRET_REPO".into(), PASSWORD.into()),
            ("CAIRN_SECRET_WRONG".into(), "not the password".into()),
            // Every retention that forgot something prunes: the tests need to see it.
            ("CAIRN_PRUNE_INTERVAL_HOURS".into(), "0".into()),
        ],
        ..Options::default()
    }
}

async fn repository_destination(app: &TestApp, prefix: &str, password_env: &str) -> String {
    let (status, body) = app
        .post(
            "/api/destinations",
            Some(
                json!({"name": format!("repo {password_env}"), "bucket": app.bucket, "prefix": prefix,
                        "repository": {"passwordEnv": password_env}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().to_owned()
}

async fn run_to_end(app: &TestApp, job: &str) -> Value {
    let id = app.run_job(job).await;
    app.wait_for_end(&id, Duration::from_secs(120)).await
}

async fn restore(app: &TestApp, backup: &str, body: Value) -> Value {
    let (status, resp) = app.post(&format!("/api/executions/{backup}/restore"), Some(body)).await;
    assert_eq!(status, 200, "{resp}");
    let id = resp["executionId"].as_str().unwrap().to_owned();
    app.wait_for_end(&id, Duration::from_secs(120)).await
}

/// Debian's restic on the same repository, with no Cairn in between.
fn restic(app: &TestApp, prefix: &str, args: &[&str]) -> std::process::Output {
    Command::new("restic")
        .arg("-r")
        .arg(format!("s3:{ENDPOINT}/{}/{prefix}/repository", app.bucket))
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("RESTIC_CACHE_DIR", std::env::temp_dir().join("cairn-restic-cache"))
        .output()
        .expect("restic (scripts/install-test-deps.sh installs Debian's)")
}

fn restic_ok(app: &TestApp, prefix: &str, args: &[&str]) -> String {
    let out = restic(app, prefix, args);
    assert!(
        out.status.success(),
        "restic {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn snapshots(app: &TestApp, prefix: &str) -> Vec<Value> {
    serde_json::from_str(&restic_ok(app, prefix, &["snapshots", "--json"])).expect("restic snapshots --json")
}

/// Bytes that do not compress (xorshift), so sizes stored say what was deduplicated.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn size_of(e: &Value) -> u64 {
    e["size"].as_u64().unwrap_or_else(|| panic!("no size: {e:#}"))
}

#[tokio::test]
async fn a_directory_backed_up_three_times_deduplicates_restores_each_run_and_opens_in_restic() {
    let app = TestApp::spawn_with(options()).await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("site");
    make_tree(&src);
    fs::write(src.join("noise.bin"), noise(8 << 20, 1)).unwrap();
    let destination = repository_destination(&app, "inc", "CAIRN_SECRET_REPO").await;
    let job = app
        .create_job(json!({"name": "site", "incremental": true, "destinations": [destination],
            "items": [{"name": "tree", "source": {"kind": "directory", "path": src, "exclude": ["*.tmp"]}}]}))
        .await;
    let mut runs = Vec::new();
    let mut wants = Vec::new();
    for round in 0..3 {
        if round == 2 {
            // 1% of the files changed and one large file grown by 1 MiB.
            fs::write(src.join("docs/readme.txt"), b"changed\n").unwrap();
            let mut grown = fs::OpenOptions::new().append(true).open(src.join("noise.bin")).unwrap();
            grown.write_all(&noise(1 << 20, 2)).unwrap();
        }
        let e = run_to_end(&app, &job).await;
        assert_eq!(e["status"], "Success", "{e:#}");
        let mut want = describe(&src);
        want.remove("scratch.tmp");
        wants.push(want);
        runs.push(e);
    }
    let path = format!("s3://{}/inc/repository", app.bucket);
    assert!(runs.iter().all(|e| e["path"] == path.as_str()), "path is the repository");
    let (first, second, third) = (size_of(&runs[0]), size_of(&runs[1]), size_of(&runs[2]));
    assert!(
        first > 8_000_000,
        "the first run stores the tree (8 MiB of it incompressible): {first}"
    );
    assert!(second < first / 100, "nothing changed: {second} of {first}");
    // Content-defined chunks average 1 MiB (512 KiB to 8 MiB): a grown file re-stores its
    // last chunk beside the new bytes, so 1 MiB appended costs 1 to 3 MiB here.
    assert!(third < first / 3, "1 MiB appended: {third} of {first}");

    for (e, want) in runs.iter().zip(&wants) {
        let dst = work.path().join(format!("restored-{}", e["id"].as_str().unwrap()));
        let r = restore(
            &app,
            e["id"].as_str().unwrap(),
            json!({"target": {"kind": "directory", "path": dst}}),
        )
        .await;
        assert_eq!(r["status"], "Success", "{r:#}");
        assert_eq!(&describe(&dst), want, "run {} restores as it was", e["id"]);
    }

    let listed = snapshots(&app, "inc");
    assert_eq!(listed.len(), 3, "{listed:#?}");
    for (snap, e) in listed.iter().zip(&runs) {
        let tags: Vec<&str> = snap["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        for tag in [
            "cairn",
            &format!("job:{job}"),
            "item:tree",
            &format!("execution:{}", e["id"].as_str().unwrap()),
        ] {
            assert!(tags.contains(&tag), "{tag} in {tags:?}");
        }
    }
    let out = work.path().join("by-restic");
    restic_ok(&app, "inc", &["restore", "latest", "--target", out.to_str().unwrap()]);
    let by_restic = out.join(src.strip_prefix("/").unwrap());
    assert_eq!(describe(&by_restic), wants[2], "restic restores what Cairn backed up");
    restic_ok(&app, "inc", &["check", "--read-data"]);
    let last = runs[2]["id"].as_str().unwrap();
    let verified = app
        .cli(&["backups", "verify", last, "--read-data"])
        .expect("cairn backups verify --read-data");
    assert_eq!(verified["ok"], true, "{verified:#}");
    assert_eq!(verified["snapshots"][0]["item"], "tree", "{verified:#}");

    // Nothing to download: the answer says how to restore instead.
    let (status, body) = app
        .post(
            &format!("/api/executions/{}/download", runs[2]["id"].as_str().unwrap()),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap_or(&body.to_string()).contains("restore"), "{body}");

    // Every pack damaged: the restore fails and writes nothing; verify says so too.
    for key in app.object_keys("inc/repository/data/").await {
        let mut bytes = app.object_bytes(&key).await;
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x55;
        app.put_object(&key, bytes).await;
    }
    let dst = work.path().join("from-damaged");
    let r = restore(&app, last, json!({"target": {"kind": "directory", "path": dst}})).await;
    assert_eq!(r["status"], "Failed", "{r:#}");
    assert!(r["error"].as_str().unwrap().contains("nothing was written"), "{r:#}");
    assert!(!dst.exists(), "no target written");
    assert!(
        app.cli(&["backups", "verify", last, "--read-data"]).is_err(),
        "verify finds the damage"
    );
}

#[tokio::test]
async fn a_postgres_dump_backed_up_twice_adds_little_and_restores_as_a_stream() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE prod");
    // pg_dump writes tables by name: accounts (which changes) before events (which does not).
    pg.psql(
        "prod",
        "CREATE TABLE accounts AS SELECT g AS id, g * 100 AS balance FROM generate_series(1, 20000) g",
    );
    pg.psql(
        "prod",
        "CREATE TABLE events AS SELECT g AS id, md5(g::text) AS digest FROM generate_series(1, 1500000) g",
    );
    let mut options = options();
    options.extra_env.push(("CAIRN_SECRET_TEST_PG".into(), pg.password.clone()));
    let app = TestApp::spawn_with(options).await;
    let destination = repository_destination(&app, "db", "CAIRN_SECRET_REPO").await;
    let url = |db: &str| format!("postgres://postgres@127.0.0.1:{}/{db}", pg.port);
    let job = app
        .create_job(json!({"name": "prod", "incremental": true, "destinations": [destination],
            "items": [{"name": "prod", "source": {"kind": "postgres", "url": url("prod"), "format": "plain", "passwordEnv": "CAIRN_SECRET_TEST_PG"}}]}))
        .await;
    let first = run_to_end(&app, &job).await;
    assert_eq!(first["status"], "Success", "{first:#}");
    pg.psql("prod", "INSERT INTO accounts SELECT g, g FROM generate_series(20001, 21000) g");
    let second = run_to_end(&app, &job).await;
    assert_eq!(second["status"], "Success", "{second:#}");
    let (a, b) = (size_of(&first), size_of(&second));
    assert!(a > 1_000_000, "{a}");
    // The rows inserted change the chunks around them, and the rest of this 60 MB dump
    // deduplicates. Content-defined chunks average 1 MiB but reach 8 MiB, and where they
    // fall depends on the repository's random polynomial: typically 1-2 MB is added, at
    // worst two 8 MiB chunks (about a quarter of the first run's size).
    assert!(b < a / 3, "a dump 0.1% larger adds little: {b} of {a}");

    let r = restore(
        &app,
        second["id"].as_str().unwrap(),
        json!({"items": [{"name": "prod", "target": {"kind": "postgres", "url": url("restored"), "passwordEnv": "CAIRN_SECRET_TEST_PG"}}]}),
    )
    .await;
    assert_eq!(r["status"], "Success", "{r:#}");
    let q = "SELECT count(*), md5(string_agg(digest, '' ORDER BY id)) FROM events";
    assert_eq!(pg.psql("restored", q), pg.psql("prod", q));
    let q = "SELECT count(*), sum(balance) FROM accounts";
    assert_eq!(pg.psql("restored", q), pg.psql("prod", q));

    // Stock restic restores the dump as the file it is (its size recorded, not 0).
    let work = tempfile::tempdir().unwrap();
    restic_ok(&app, "db", &["restore", "latest", "--target", work.path().to_str().unwrap()]);
    let dump = fs::read_to_string(work.path().join("prod.sql")).unwrap();
    assert!(
        dump.contains("COPY public.events"),
        "a plain dump: {}",
        &dump[..200.min(dump.len())]
    );
    assert!(dump.contains("\n21000\t21000\n"), "the second run's rows");
}

#[tokio::test]
async fn a_wrong_repository_password_fails_the_run_and_changes_nothing() {
    let app = TestApp::spawn_with(options()).await;
    let work = tempfile::tempdir().unwrap();
    fs::write(work.path().join("a.txt"), b"a").unwrap();
    let right = repository_destination(&app, "shared", "CAIRN_SECRET_REPO").await;
    let wrong = repository_destination(&app, "shared", "CAIRN_SECRET_WRONG").await;
    let item = json!([{"name": "files", "source": {"kind": "directory", "path": work.path()}}]);
    let good = app
        .create_job(json!({"name": "good", "incremental": true, "destinations": [right], "items": item}))
        .await;
    assert_eq!(run_to_end(&app, &good).await["status"], "Success");
    let before = app.object_keys("shared/repository/").await;
    let bad = app
        .create_job(json!({"name": "bad", "incremental": true, "destinations": [wrong], "items": item}))
        .await;
    let e = run_to_end(&app, &bad).await;
    assert_eq!(e["status"], "Failed", "{e:#}");
    let error = e["error"].as_str().unwrap();
    assert!(
        error.contains("does not open its repository") && error.contains("repo CAIRN_SECRET_WRONG"),
        "{error}"
    );
    assert!(
        !error.contains("not the password") && !app.server_log().contains("not the password"),
        "the password is never shown"
    );
    assert_eq!(
        app.object_keys("shared/repository/").await,
        before,
        "nothing written, nothing initialised again"
    );

    // A destination without a repository password cannot take an incremental job.
    let plain = app.create_destination("plain").await;
    let (status, body) = app
        .post(
            "/api/jobs",
            Some(json!({"name": "x", "incremental": true, "destinations": [plain], "items": item})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("repository"), "{body}");
}

#[tokio::test]
async fn retention_keeps_two_snapshots_prunes_and_a_backup_beside_the_prune_restores() {
    let app = TestApp::spawn_with(options()).await;
    let work = tempfile::tempdir().unwrap();
    let (a, b) = (work.path().join("a"), work.path().join("b"));
    fs::create_dir_all(&a).unwrap();
    make_tree(&b);
    let destination = repository_destination(&app, "kept", "CAIRN_SECRET_REPO").await;
    let pruned_job = app
        .create_job(
            json!({"name": "kept", "incremental": true, "destinations": [destination], "retention": {"keepLast": 2},
            "items": [{"name": "a", "source": {"kind": "directory", "path": a}}]}),
        )
        .await;
    let beside = app
        .create_job(json!({"name": "beside", "incremental": true, "destinations": [destination],
            "items": [{"name": "b", "source": {"kind": "directory", "path": b}}]}))
        .await;
    let mut runs = Vec::new();
    for round in 0..3u64 {
        // Different data each run, so forgetting a run leaves data to prune.
        fs::write(a.join("data.bin"), noise(2_000_000, 10 + round)).unwrap();
        runs.push(run_to_end(&app, &pruned_job).await);
    }
    assert!(runs.iter().all(|e| e["status"] == "Success"), "{runs:#?}");
    let kept: Vec<Value> = snapshots(&app, "kept");
    assert_eq!(kept.len(), 2, "keepLast 2: {kept:#?}");
    let (_, first) = app.get(&format!("/api/executions/{}", runs[0]["id"].as_str().unwrap())).await;
    assert!(first.to_string().contains("Deleted by retention"), "{first}");
    let log = app.server_log();
    assert!(log.contains("Retention: pruned"), "the repository was pruned");
    restic_ok(&app, "kept", &["check"]);

    // Another job's backup running while the next prune does: nothing of it is lost.
    fs::write(a.join("data.bin"), b"fourth").unwrap();
    let (x, y) = (app.run_job(&pruned_job).await, app.run_job(&beside).await);
    let (x, y) = (
        app.wait_for_end(&x, Duration::from_secs(120)).await,
        app.wait_for_end(&y, Duration::from_secs(120)).await,
    );
    assert_eq!(
        (x["status"].as_str(), y["status"].as_str()),
        (Some("Success"), Some("Success")),
        "{x:#} {y:#}"
    );
    let dst = work.path().join("restored-b");
    let r = restore(
        &app,
        y["id"].as_str().unwrap(),
        json!({"target": {"kind": "directory", "path": dst}}),
    )
    .await;
    assert_eq!(r["status"], "Success", "{r:#}");
    assert_eq!(describe(&dst), describe(&b));
    restic_ok(&app, "kept", &["check", "--read-data"]);
    assert!(Path::new(&dst).join("big.bin").exists());
}
