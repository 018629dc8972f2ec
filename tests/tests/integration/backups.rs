//! Backups end to end: restored by hand with zstd and tar, PostgreSQL round trip,
//! partial failures, verification and retention.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::helpers::{key_of, run, spawn_bench_s3, Options, TestApp};

/// What a tree looks like: per relative path, (kind, mode, mtime, content or link target).
pub fn describe(root: &Path) -> BTreeMap<String, (char, u32, i64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.insert(rel, ('l', 0, 0, fs::read_link(&path).unwrap().display().to_string().into_bytes()));
            } else if meta.is_dir() {
                out.insert(rel, ('d', mode, 0, vec![]));
                stack.push(path);
            } else {
                out.insert(rel, ('f', mode, meta.mtime(), fs::read(&path).unwrap()));
            }
        }
    }
    out
}

pub fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("docs/deep/er")).unwrap();
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::write(root.join("docs/readme.txt"), b"hello cairn\n").unwrap();
    fs::write(root.join("docs/deep/er/empty"), b"").unwrap();
    // Over 8 MiB: on more than one core, the archive is compressed as several frames.
    let big: Vec<u8> = (0..10_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    fs::write(root.join("big.bin"), &big).unwrap();
    fs::write(root.join("bin/run.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("bin/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(root.join("secret.key"), b"s3cr3t").unwrap();
    fs::set_permissions(root.join("secret.key"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("scratch.tmp"), b"excluded").unwrap();
    symlink("docs/readme.txt", root.join("link-relative")).unwrap();
    symlink("/etc/hostname", root.join("link-absolute")).unwrap();
    let long = "a".repeat(120);
    fs::write(root.join("docs").join(format!("{long}.txt")), b"long name").unwrap();
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    fs::File::options()
        .write(true)
        .open(root.join("docs/readme.txt"))
        .unwrap()
        .set_modified(past)
        .unwrap();
}

async fn download(app: &TestApp, key: &str, to: &Path) {
    fs::write(to, app.object_bytes(key).await).unwrap();
}

#[tokio::test]
async fn a_directory_backup_restored_by_hand_equals_the_source() {
    let app = TestApp::spawn().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    let job = app
        .create_job(json!({"name": "files", "items": [{"name": "tree", "source": {"kind": "directory", "path": src, "exclude": ["*.tmp"]}}], "retention": {"keepLast": 3}}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(60)).await;
    assert_eq!(e["status"], "Success", "{e:#}");
    assert_eq!(e["progress"], 100);
    assert_eq!(e["stage"], "Completed");
    assert!(e["duration"].as_u64().is_some() && e["endedAt"].is_string());
    let folder = key_of(e["path"].as_str().unwrap(), &app.bucket);
    assert_eq!(folder, format!("backups/{job}/{id}/"));
    // Stages appear in the logs in DESIGN.md's order.
    let stages: Vec<String> = e["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["stage"].as_str().unwrap().to_owned())
        .collect();
    let order = [
        "Queued",
        "Initializing",
        "Running pre-hooks",
        "Dumping",
        "Uploading",
        "Verifying",
        "Applying retention",
        "Running post-hooks",
        "Completed",
    ];
    let positions: Vec<usize> = stages
        .iter()
        .map(|s| order.iter().position(|o| o == s).unwrap_or_else(|| panic!("unknown stage {s}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{stages:?}");
    assert!(stages.contains(&"Completed".to_owned()));

    let keys = app.object_keys(&folder).await;
    assert!(keys.contains(&format!("{folder}manifest.json")), "{keys:?}");
    let manifest: serde_json::Value = serde_json::from_slice(&app.object_bytes(&format!("{folder}manifest.json")).await).unwrap();
    let archive = work.path().join("tree.tar.zst");
    download(&app, &format!("{folder}tree.tar.zst"), &archive).await;
    let bytes = fs::read(&archive).unwrap();
    assert_eq!(
        manifest["items"][0]["sha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    assert_eq!(e["size"], bytes.len() as u64);

    let restored = work.path().join("restored");
    fs::create_dir(&restored).unwrap();
    run(
        "zstd",
        &[
            "-q",
            "-d",
            archive.to_str().unwrap(),
            "-o",
            work.path().join("tree.tar").to_str().unwrap(),
        ],
    );
    run(
        "tar",
        &[
            "-xpf",
            work.path().join("tree.tar").to_str().unwrap(),
            "-C",
            restored.to_str().unwrap(),
        ],
    );
    let mut want = describe(&src);
    want.remove("scratch.tmp");
    let got = describe(&restored);
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (path, w) in &want {
        let g = &got[path];
        assert_eq!(g.0, w.0, "{path}: kind");
        assert_eq!(g.3, w.3, "{path}: content or link target");
        if w.0 == 'f' {
            assert_eq!(g.1, w.1, "{path}: mode");
            assert_eq!(g.2, w.2, "{path}: mtime");
        }
    }

    // `cairn backups verify` re-reads every object and lists the archive.
    let v = app.cli(&["backups", "verify", &id]).unwrap();
    assert_eq!(v["ok"], true, "{v:#}");
    let entries: Vec<String> = v["items"][0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x[0].as_str().unwrap().to_owned())
        .collect();
    assert!(entries.contains(&"docs/readme.txt".to_owned()), "{entries:?}");
}

#[tokio::test]
async fn verify_reports_a_corrupted_object() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "cfg", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(30)).await;
    let folder = key_of(e["path"].as_str().unwrap(), &app.bucket);
    let key = format!("{folder}cfg.tar.zst");
    let mut bytes = app.object_bytes(&key).await;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    app.put_object(&key, bytes).await;
    let err = app.cli(&["backups", "verify", &id]).unwrap_err();
    assert!(err.contains("cfg"), "{err}");
}

#[tokio::test]
async fn one_failing_item_makes_the_run_partial_and_says_which() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "mixed", "items": [
            {"name": "good", "source": {"kind": "command", "argv": ["echo", "dump"]}},
            {"name": "bad", "source": {"kind": "command", "argv": ["bash", "-c", "echo boom >&2; exit 3"]}}
        ]}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(30)).await;
    assert_eq!(e["status"], "Partial", "{e:#}");
    let error = e["error"].as_str().unwrap();
    assert!(
        error.contains("item 'bad'") && error.contains("status 3") && error.contains("boom"),
        "{error}"
    );
    assert!(!error.contains('\n'));
    let folder = key_of(e["path"].as_str().unwrap(), &app.bucket);
    let manifest: serde_json::Value = serde_json::from_slice(&app.object_bytes(&format!("{folder}manifest.json")).await).unwrap();
    assert_eq!(manifest["items"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["status"], "Partial");
    let dump = zstd::decode_all(app.object_bytes(&format!("{folder}good.out.zst")).await.as_slice()).unwrap();
    assert_eq!(dump, b"dump\n");

    // All items failing: Failed, and no manifest.
    let job = app
        .create_job(json!({"name": "all bad", "items": [{"name": "bad", "source": {"kind": "command", "argv": ["false"]}}]}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(30)).await;
    assert_eq!(e["status"], "Failed");
    assert!(app.object_keys(&format!("backups/{job}/{id}/")).await.is_empty());
}

#[tokio::test]
async fn retention_keeps_the_last_n_and_says_so_on_the_deleted_ones() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "kept", "items": [{"name": "c", "source": {"kind": "config"}}], "retention": {"keepLast": 2}}))
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = app.run_job(&job).await;
        assert_eq!(app.wait_for_end(&id, Duration::from_secs(30)).await["status"], "Success");
        ids.push(id);
    }
    assert!(
        app.object_keys(&format!("backups/{job}/{}/", ids[0])).await.is_empty(),
        "oldest deleted"
    );
    for id in &ids[1..] {
        assert!(!app.object_keys(&format!("backups/{job}/{id}/")).await.is_empty());
    }
    let first = app.execution(&ids[0]).await;
    assert!(first["pruned"].as_str().unwrap().contains("retention"), "{first:#}");
    assert!(first["logs"].as_array().unwrap().iter().any(|l| l["stage"] == "Applying retention"));
}

/// A throwaway PostgreSQL server on loopback, run as the `postgres` user.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    pub password: String,
}

impl Postgres {
    pub fn start() -> Self {
        let bin = fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server packages (scripts/test.sh installs them)")
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())
            .expect("initdb");
        let dir = tempfile::Builder::new().prefix("cairn-pg").tempdir_in("/tmp").unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let data = dir.path().join("data");
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let pwfile = dir.path().join("pw");
        fs::write(&pwfile, &password).unwrap();
        fs::set_permissions(&pwfile, fs::Permissions::from_mode(0o644)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let as_postgres = |args: &[&str]| {
            let out = Command::new("runuser")
                .arg("-u")
                .arg("postgres")
                .arg("--")
                .args(args)
                .output()
                .expect("runuser");
            assert!(
                out.status.success(),
                "{args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        as_postgres(&[
            bin.join("initdb").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            &format!("--pwfile={}", pwfile.display()),
        ]);
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", dir.path().display());
        as_postgres(&[
            bin.join("pg_ctl").to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            dir.path().join("log").to_str().unwrap(),
            "-w",
            "start",
        ]);
        Self { dir, bin, port, password }
    }

    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", &self.password)
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
    }
}

#[tokio::test]
async fn a_postgres_backup_restores_into_a_fresh_database_with_identical_rows() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE app");
    pg.psql(
        "app",
        "CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2), placed timestamptz DEFAULT now())",
    );
    pg.psql(
        "app",
        "INSERT INTO orders (customer, total) SELECT 'customer ' || g, g * 1.25 FROM generate_series(1, 5000) g",
    );
    let app = TestApp::spawn_with(Options {
        extra_env: vec![("CAIRN_SECRET_TEST_PG_PASSWORD".into(), pg.password.clone())],
        ..Options::default()
    })
    .await;
    let url = format!("postgres://postgres@127.0.0.1:{}/app", pg.port);
    let job = app.create_job(json!({"name": "db", "items": [{"name": "app-db", "source": {"kind": "postgres", "url": url, "passwordEnv": "CAIRN_SECRET_TEST_PG_PASSWORD"}}]})).await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(60)).await;
    assert_eq!(e["status"], "Success", "{e:#}");
    let folder = key_of(e["path"].as_str().unwrap(), &app.bucket);
    let work = tempfile::tempdir().unwrap();
    let dump = work.path().join("app.dump");
    fs::write(
        &dump,
        zstd::decode_all(app.object_bytes(&format!("{folder}app-db.dump.zst")).await.as_slice()).unwrap(),
    )
    .unwrap();
    pg.psql("postgres", "CREATE DATABASE restored");
    let out = Command::new("pg_restore")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "restored",
            "--no-owner",
            dump.to_str().unwrap(),
        ])
        .env("PGPASSWORD", &pg.password)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let q = "SELECT id, customer, total, placed FROM orders ORDER BY id";
    let original = pg.psql("app", q);
    assert_eq!(original.lines().count(), 5000);
    assert_eq!(pg.psql("restored", q), original);
    // The password is never in the logs, the API, or the job.
    let everything = format!("{e}{}{}", app.server_log(), app.get(&format!("/api/jobs/{job}")).await.1);
    assert!(!everything.contains(&pg.password), "password leaked");
}

/// Each destination's store is probed once and verified its way: one that keeps no
/// checksums but answers S3's ETags through Content-MD5 and the multipart ETag (no GET
/// of a backup, counted by a proxy in front of it), one that damages what it stores fails
/// the run, one that misreports checksums is named and the run succeeds.
#[tokio::test]
async fn each_store_is_verified_the_way_its_probe_found_and_damage_fails_the_run() {
    // Each store, and how the backup must end.
    #[derive(PartialEq)]
    enum Store {
        KeepsNoChecksums,
        Damages,
        Misreports,
    }
    let stores = [
        spawn_bench_s3(&["--no-checksums"]).await,
        spawn_bench_s3(&["--no-checksums", "--corrupt"]).await,
        spawn_bench_s3(&["--misreport"]).await,
    ];
    // Counts the GETs the first store is sent.
    let proxy = crate::faults::FaultProxy::before(&stores[0].1, &[]).await;
    let endpoints = [proxy.url.clone(), stores[1].1.clone(), stores[2].1.clone()];
    let app = TestApp::spawn_with(Options {
        extra_env: vec![("CAIRN_ALLOWED_ENDPOINTS".into(), endpoints.join(","))],
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    make_tree(&dir.path().join("src"));
    let kinds = [Store::KeepsNoChecksums, Store::Damages, Store::Misreports];
    for (((mut store, _), endpoint), kind) in stores.into_iter().zip(endpoints).zip(kinds) {
        let created = reqwest::Client::new().put(format!("{endpoint}/other")).send().await.unwrap();
        assert!(created.status().is_success(), "bench-s3 made no bucket");
        let (status, body) = app
            .post(
                "/api/destinations",
                Some(json!({"name": "other", "bucket": "other", "prefix": "b", "endpoint": endpoint})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let dest = body["data"]["id"].as_str().unwrap().to_owned();
        let job = app
            .create_job(json!({
                "name": "elsewhere",
                "destinations": [dest],
                "items": [{"name": "tree", "source": {"kind": "directory", "path": dir.path().join("src")}}]
            }))
            .await;
        let e = app.wait_for_end(&app.run_job(&job).await, Duration::from_secs(60)).await;
        let logs = e["logs"].to_string();
        match kind {
            Store::Damages => {
                assert_eq!(e["status"], "Failed", "{e}");
                assert!(logs.contains("does not keep what it is sent"), "the probe saw no damage: {logs}");
                let error = e["error"].as_str().unwrap();
                assert!(
                    error.contains("verification of s3://other/") && error.contains("re-read gives SHA-256"),
                    "{error}"
                );
                assert!(!logs.contains("could not abort"), "a completed upload is never aborted: {logs}");
                let listing = reqwest::get(format!("{endpoint}/other?list-type=2"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                assert!(!listing.contains("<Key>"), "the damaged object was left behind: {listing}");
            }
            Store::KeepsNoChecksums => {
                assert_eq!(e["status"], "Success", "{e}");
                assert!(
                    logs.contains("verified by Content-MD5 on every part and the multipart ETag"),
                    "{logs}"
                );
                // The probe's one read, and none of the backup; a second run probes no more.
                assert_eq!(proxy.stats().await["GetObject"]["requests"], 1, "{}", proxy.stats().await);
                let again = app.wait_for_end(&app.run_job(&job).await, Duration::from_secs(60)).await;
                assert_eq!(again["status"], "Success", "{again}");
                assert!(!again["logs"].to_string().contains("from now on"), "probed twice: {again}");
                assert_eq!(proxy.stats().await["GetObject"]["requests"], 1, "{}", proxy.stats().await);
                assert!(proxy.stats().await["UploadPart"]["requests"].as_u64().unwrap() >= 3);
                let (_, all) = app.get("/api/destinations").await;
                let d = all["data"].as_array().unwrap().iter().find(|d| d["id"] == dest.as_str()).unwrap();
                assert_eq!(d["verification"], "contentMd5", "{d}");
            }
            Store::Misreports => {
                // The probe's read shows the bytes are right: the run succeeds and the
                // store is named.
                assert_eq!(e["status"], "Success", "{e}");
                assert!(logs.contains("misreports checksums") && logs.contains("s3://other/"), "{logs}");
            }
        }
        store.kill().unwrap();
        store.wait().unwrap();
    }
}

/// A throwaway MariaDB server on loopback, run as the `mysql` user, with a `cairn` account
/// that has a password.
pub struct Mariadb {
    dir: tempfile::TempDir,
    server: std::process::Child,
    pub port: u16,
    pub password: String,
}

impl Mariadb {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("cairn-maria").tempdir_in("/tmp").unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let out = Command::new("runuser")
            .args(["-u", "mysql", "--", "mariadb-install-db", "--no-defaults", "--skip-test-db"])
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=socket")
            .output()
            .expect("mariadb-install-db (scripts/install-test-deps.sh installs it)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let server = Command::new("runuser")
            .args(["-u", "mysql", "--", "mariadbd", "--no-defaults", "--bind-address=127.0.0.1"])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .arg(format!("--log-error={}", dir.path().join("log").display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mariadbd");
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let server = Self {
            dir,
            server,
            port,
            password,
        };
        let mut up = false;
        for _ in 0..200 {
            if server.admin(&["ping"]) {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            up,
            "mariadbd did not start: {}",
            fs::read_to_string(server.dir.path().join("log")).unwrap_or_default()
        );
        server.root_sql(&format!(
            "CREATE USER 'cairn'@'127.0.0.1' IDENTIFIED BY '{}'; GRANT ALL ON *.* TO 'cairn'@'127.0.0.1'",
            server.password
        ));
        server
    }

    fn admin(&self, args: &[&str]) -> bool {
        Command::new("mysqladmin")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.dir.path().join("sock").display()))
            .args(["-u", "root"])
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn root_sql(&self, sql: &str) {
        let out = Command::new("mysql")
            .arg("--no-defaults")
            .arg(format!("--socket={}", self.dir.path().join("sock").display()))
            .args(["-u", "root", "-e", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs `sql` in `db` as `cairn` over TCP; the rows, tab-separated.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("mysql")
            .args([
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-P",
                &self.port.to_string(),
                "-u",
                "cairn",
                "-N",
                "-B",
                db,
                "-e",
                sql,
            ])
            .env("MYSQL_PWD", &self.password)
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Mariadb {
    fn drop(&mut self) {
        if !self.admin(&["shutdown"]) {
            let _ = self.server.kill();
        }
        let _ = self.server.wait();
    }
}

/// A MariaDB database dumped with mysqldump restores through the API into a database
/// that did not exist, with identical rows; the password appears nowhere.
#[tokio::test]
async fn a_mysql_backup_restores_into_a_new_database_with_identical_rows() {
    let db = Mariadb::start();
    db.sql("mysql", "CREATE DATABASE app");
    db.sql(
        "app",
        "CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(64) NOT NULL, total DECIMAL(10,2), note TEXT)",
    );
    db.sql(
        "app",
        "INSERT INTO orders (customer, total, note) SELECT CONCAT('customer ', seq), seq * 1.25, REPEAT('x', seq % 50) FROM seq_1_to_3000",
    );
    let app = TestApp::spawn_with(Options {
        extra_env: vec![("CAIRN_SECRET_TEST_MYSQL_PASSWORD".into(), db.password.clone())],
        ..Options::default()
    })
    .await;
    let url = |name: &str| format!("mysql://cairn@127.0.0.1:{}/{name}", db.port);
    let job = app
        .create_job(json!({"name": "mysql", "items": [{"name": "app-db", "source": {"kind": "mysql", "url": url("app"), "passwordEnv": "CAIRN_SECRET_TEST_MYSQL_PASSWORD"}}]}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(60)).await;
    assert_eq!(e["status"], "Success", "{e:#}");
    let folder = key_of(e["path"].as_str().unwrap(), &app.bucket);
    let dump = zstd::decode_all(app.object_bytes(&format!("{folder}app-db.sql.zst")).await.as_slice()).unwrap();
    assert!(String::from_utf8_lossy(&dump).contains("CREATE TABLE `orders`"));

    let (status, resp) = app
        .post(
            &format!("/api/executions/{id}/restore"),
            Some(json!({"target": {"kind": "mysql", "url": url("restored"), "passwordEnv": "CAIRN_SECRET_TEST_MYSQL_PASSWORD"}})),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let restore = app
        .wait_for_end(resp["executionId"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(restore["status"], "Success", "{restore:#}");
    let q = "SELECT id, customer, total, note FROM orders ORDER BY id";
    let original = db.sql("app", q);
    assert_eq!(original.lines().count(), 3000);
    assert_eq!(db.sql("restored", q), original);
    let everything = format!("{e}{restore}{}{}", app.server_log(), app.get(&format!("/api/jobs/{job}")).await.1);
    assert!(!everything.contains(&db.password), "password leaked");
}

/// s3s-fs, a third-party S3 server that implements no bucket settings and keeps no
/// CRC64NVME: `cairn init` makes its bucket with a warning per setting, and a backup to
/// it is verified without reading it back and restores.
#[tokio::test]
async fn s3s_fs_takes_init_with_warnings_and_a_backup_that_restores() {
    let root = tempfile::tempdir().unwrap();
    let (mut store, endpoint) = crate::helpers::spawn_s3s_fs(root.path()).await;
    let app = TestApp::spawn_with(Options {
        extra_env: vec![("CAIRN_ALLOWED_ENDPOINTS".into(), endpoint.clone())],
        ..Options::default()
    })
    .await;
    let out = std::process::Command::new(crate::helpers::binary("cairn"))
        .envs(app.env())
        .env("AWS_ENDPOINT_URL_S3", &endpoint)
        .env("CAIRN_BUCKET", "third-party")
        .args(["--output", "json", "init"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bucketCreated"], true, "{report}");
    assert!(stderr.contains("does not implement the bucket's versioning"), "{stderr}");

    let (status, body) = app
        .post(
            "/api/destinations",
            Some(json!({"name": "s3s", "bucket": "third-party", "prefix": "b", "endpoint": endpoint})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    let job = app
        .create_job(json!({"name": "to s3s-fs", "destinations": [body["data"]["id"]],
            "items": [{"name": "tree", "source": {"kind": "directory", "path": src}}]}))
        .await;
    let e = app.wait_for_end(&app.run_job(&job).await, Duration::from_secs(60)).await;
    assert_eq!(e["status"], "Success", "{e:#}");
    assert!(e["logs"].to_string().contains("verified by Content-MD5"), "{e:#}");
    let dst = work.path().join("restored");
    let (status, body) = app
        .post(
            &format!("/api/executions/{}/restore", e["id"].as_str().unwrap()),
            Some(json!({"target": {"kind": "directory", "path": dst}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let r = app
        .wait_for_end(body["executionId"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    store.kill().unwrap();
    store.wait().unwrap();
    assert_eq!(r["status"], "Success", "{r:#}");
    assert_eq!(describe(&dst), describe(&src));
}

#[tokio::test]
async fn init_on_a_store_without_bucket_settings_warns_naming_each_and_succeeds() {
    let app = TestApp::spawn().await;
    let (mut store, endpoint) = spawn_bench_s3(&[]).await;
    let out = std::process::Command::new(crate::helpers::binary("cairn"))
        .envs(app.env())
        .env("AWS_ENDPOINT_URL_S3", &endpoint)
        .env("CAIRN_BUCKET", "fresh-bucket")
        .args(["--output", "json", "init"])
        .output()
        .unwrap();
    store.kill().unwrap();
    store.wait().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bucketCreated"], true, "{report}");
    let unsupported: Vec<&str> = report["bucketSettingsUnsupported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["setting"].as_str().unwrap())
        .collect();
    assert_eq!(
        unsupported,
        ["versioning", "encryption", "public-access block", "lifecycle"],
        "{report}"
    );
    for setting in unsupported {
        assert!(
            stderr.contains(&format!("does not implement the bucket's {setting} (NotImplemented")),
            "{stderr}"
        );
    }
    // On the local endpoint (moto), which implements them all, every setting is applied.
    let out = std::process::Command::new(crate::helpers::binary("cairn"))
        .envs(app.env())
        .env("CAIRN_BUCKET", format!("{}-fresh", app.bucket))
        .args(["--output", "json", "init"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["bucketSettingsApplied"],
        json!(["versioning", "encryption", "public-access block", "lifecycle"]),
        "{report}"
    );
    assert_eq!(report["bucketSettingsUnsupported"], json!([]), "{report}");
}
