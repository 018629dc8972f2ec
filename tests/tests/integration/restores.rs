//! Restore, download and clone over HTTP, their integrity checks, encryption, and the
//! seed's hook arguments for each.

use std::fs;
use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::Digest;

use crate::backups::{describe, make_tree, Postgres};
use crate::helpers::{key_of, Options, TestApp};
use crate::hooks::{create_hook, HookDir};

async fn backup_of(app: &TestApp, spec: Value) -> (String, String, Value) {
    let job = app.create_job(spec).await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(60)).await;
    assert_eq!(e["status"], "Success", "{e:#}");
    (job, id, e)
}

async fn restore(app: &TestApp, backup: &str, body: Value) -> Value {
    let (status, resp) = app.post(&format!("/api/executions/{backup}/restore"), Some(body)).await;
    assert_eq!(status, 200, "{resp}");
    let id = resp["executionId"].as_str().unwrap().to_owned();
    let e = app.wait_for_end(&id, Duration::from_secs(60)).await;
    assert_eq!(e["type"], "Restore");
    e
}

#[tokio::test]
async fn a_directory_backup_restores_into_a_new_directory_equal_to_the_source() {
    let app = TestApp::spawn().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    fs::remove_file(src.join("scratch.tmp")).unwrap();
    let (_, backup, _) = backup_of(
        &app,
        json!({"name": "files", "items": [{"name": "tree", "source": {"kind": "directory", "path": src}}]}),
    )
    .await;
    let dst = work.path().join("restored");
    let e = restore(&app, &backup, json!({"target": {"kind": "directory", "path": dst}})).await;
    assert_eq!(e["status"], "Success", "{e:#}");
    let (want, got) = (describe(&src), describe(&dst));
    assert_eq!(got, want, "content, modes, mtimes and symlinks");
    // Into a directory that is not empty: refused before anything is written.
    fs::create_dir(work.path().join("busy")).unwrap();
    fs::write(work.path().join("busy/keep.txt"), "mine").unwrap();
    let e = restore(
        &app,
        &backup,
        json!({"items": [{"name": "tree", "target": {"kind": "directory", "path": work.path().join("busy")}}]}),
    )
    .await;
    assert_eq!(e["status"], "Failed");
    assert!(e["error"].as_str().unwrap().contains("not empty"), "{e:#}");
    assert_eq!(fs::read_dir(work.path().join("busy")).unwrap().count(), 1);
    // Unknown items and non-backups are refused up front.
    let (status, body) = app
        .post(
            &format!("/api/executions/{backup}/restore"),
            Some(json!({"items": [{"name": "nope", "target": {"kind": "directory", "path": "/tmp/x"}}]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app
        .post(
            &format!("/api/executions/{}/restore", e["id"].as_str().unwrap()),
            Some(json!({"target": {"kind": "directory", "path": "/tmp/x"}})),
        )
        .await;
    assert_eq!(status, 409);
}

/// A restore reads each object once, into a staging copy beside the target: an object
/// damaged halfway (or cut short) fails its item and leaves the target as it was.
#[tokio::test]
async fn a_restore_whose_object_is_damaged_halfway_writes_nothing_into_the_target() {
    let app = TestApp::spawn().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    fs::write(src.join("big.txt"), "every line the same, so it compresses\n".repeat(200_000)).unwrap();
    let (_, backup, e) = backup_of(
        &app,
        json!({"name": "files", "items": [{"name": "tree", "source": {"kind": "directory", "path": src}}]}),
    )
    .await;
    let folder = key_of(e["path"].as_str().unwrap(), &app.bucket);
    let key = format!("{folder}tree.tar.zst");
    let intact = app.object_bytes(&key).await;
    let dst = work.path().join("restored");
    fs::create_dir(&dst).unwrap();
    fs::write(dst.join("kept.txt"), "before").unwrap();
    let mut halfway = intact.clone();
    let middle = halfway.len() / 2;
    halfway[middle] ^= 0x5a;
    let mut cut = intact.clone();
    cut.truncate(intact.len() - 100);
    for damaged in [halfway, cut] {
        app.put_object(&key, damaged).await;
        let r = restore(
            &app,
            &backup,
            json!({"target": {"kind": "directory", "path": dst, "overwrite": true}}),
        )
        .await;
        assert_eq!(r["status"], "Failed", "{r}");
        let error = r["error"].as_str().unwrap();
        assert!(error.contains("nothing was written to the target"), "{error}");
        let left: Vec<_> = fs::read_dir(&dst).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("kept.txt")], "the target changed");
        assert_eq!(fs::read_to_string(dst.join("kept.txt")).unwrap(), "before");
        let staged = fs::read_dir(work.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with(".cairn"));
        assert_eq!(staged.count(), 0, "a staging copy was left");
    }
    // Intact again, the same restore goes through, over the target.
    app.put_object(&key, intact).await;
    let r = restore(
        &app,
        &backup,
        json!({"target": {"kind": "directory", "path": dst, "overwrite": true}}),
    )
    .await;
    assert_eq!(r["status"], "Success", "{r}");
    assert_eq!(fs::read_to_string(dst.join("kept.txt")).unwrap(), "before");
    assert_eq!(fs::read(dst.join("big.txt")).unwrap(), fs::read(src.join("big.txt")).unwrap());
}

#[tokio::test]
async fn a_backup_without_its_manifest_is_refused_as_incomplete() {
    let app = TestApp::spawn().await;
    let (_, backup, e) = backup_of(
        &app,
        json!({"name": "cfg", "items": [{"name": "cfg", "source": {"kind": "config"}}]}),
    )
    .await;
    let folder = key_of(e["path"].as_str().unwrap(), &app.bucket);
    app.s3()
        .await
        .delete_object()
        .bucket(&app.bucket)
        .key(format!("{folder}manifest.json"))
        .send()
        .await
        .unwrap();
    let r = restore(
        &app,
        &backup,
        json!({"target": {"kind": "directory", "path": "/tmp/cairn-never-created"}}),
    )
    .await;
    assert_eq!(r["status"], "Failed");
    assert!(r["error"].as_str().unwrap().contains("incomplete"), "{r:#}");
    let (status, body) = app.post(&format!("/api/executions/{backup}/download"), None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("incomplete"));
}

/// A tar entry named `../escape.txt`, written byte by byte (tar libraries refuse to).
fn crafted_archive() -> Vec<u8> {
    let mut tar = Vec::new();
    let mut header = [0u8; 512];
    let name = b"../escape.txt";
    header[..name.len()].copy_from_slice(name);
    header[100..107].copy_from_slice(b"0000644");
    header[108..115].copy_from_slice(b"0000000");
    header[116..123].copy_from_slice(b"0000000");
    header[124..135].copy_from_slice(b"00000000005");
    header[136..147].copy_from_slice(b"00000000000");
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    tar.extend_from_slice(&header);
    let mut data = [0u8; 512];
    data[..5].copy_from_slice(b"owned");
    tar.extend_from_slice(&data);
    tar.extend_from_slice(&[0u8; 1024]);
    zstd::encode_all(tar.as_slice(), 3).unwrap()
}

#[tokio::test]
async fn an_archive_crafted_with_dotdot_entries_is_refused() {
    let app = TestApp::spawn().await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a.txt"), "a").unwrap();
    let (_, backup, e) = backup_of(
        &app,
        json!({"name": "files", "items": [{"name": "tree", "source": {"kind": "directory", "path": src}}]}),
    )
    .await;
    // Replace the object and make the manifest agree with it, as an attacker with write
    // access to the bucket could.
    let folder = key_of(e["path"].as_str().unwrap(), &app.bucket);
    let evil = crafted_archive();
    app.put_object(&format!("{folder}tree.tar.zst"), evil.clone()).await;
    let mut manifest: Value = serde_json::from_slice(&app.object_bytes(&format!("{folder}manifest.json")).await).unwrap();
    manifest["items"][0]["sha256"] = json!(hex::encode(sha2::Sha256::digest(&evil)));
    manifest["items"][0]["storedBytes"] = json!(evil.len());
    app.put_object(&format!("{folder}manifest.json"), serde_json::to_vec(&manifest).unwrap())
        .await;
    let dst = work.path().join("inner/restored");
    let r = restore(&app, &backup, json!({"target": {"kind": "directory", "path": dst}})).await;
    assert_eq!(r["status"], "Failed");
    assert!(r["error"].as_str().unwrap().contains("would escape"), "{r:#}");
    assert!(!work.path().join("inner/escape.txt").exists());
    assert!(!dst.exists(), "nothing written");
}

#[tokio::test]
async fn download_urls_fetch_the_exact_bytes_the_manifest_records() {
    let hooks = HookDir::new();
    let app = TestApp::spawn_with(hooks.options()).await;
    for (name, position) in [("pre-download", "pre"), ("post-download", "post")] {
        let Some(script) = hooks.seed_bash(name) else { return };
        create_hook(
            &app,
            json!({"name": name, "position": position, "type": "download", "script": script}),
        )
        .await;
    }
    let (job, backup, e) = backup_of(&app, json!({"name": "two", "items": [{"name": "cfg", "source": {"kind": "config"}}, {"name": "out", "source": {"kind": "command", "argv": ["echo", "hello"]}}]})).await;
    let (status, body) = app
        .post(&format!("/api/executions/{backup}/download"), Some(json!({"expiresIn": 300})))
        .await;
    assert_eq!(status, 200, "{body}");
    let folder = key_of(e["path"].as_str().unwrap(), &app.bucket);
    let manifest: Value = serde_json::from_slice(&app.object_bytes(&format!("{folder}manifest.json")).await).unwrap();
    let items = body["data"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        let bytes = reqwest::get(item["url"].as_str().unwrap()).await.unwrap().bytes().await.unwrap();
        let recorded = manifest["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == item["item"])
            .unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), recorded["sha256"].as_str().unwrap());
        assert_eq!(bytes.len() as u64, recorded["storedBytes"].as_u64().unwrap());
    }
    let m = reqwest::get(body["data"]["manifest"]["url"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&m).unwrap(), manifest);
    let download = app.execution(body["executionId"].as_str().unwrap()).await;
    assert_eq!(
        (download["type"].clone(), download["status"].clone()),
        (json!("Download"), json!("Success"))
    );
    assert_eq!(download["jobId"], job.as_str());
    // The seed's two arguments: account (item) id, empty for a whole backup, and the log id.
    assert_eq!(
        hooks.calls("pre-download"),
        vec![vec![String::new(), download["id"].as_str().unwrap().to_owned()]]
    );
    assert_eq!(hooks.calls("post-download").len(), 1);
    // One item: its id is $1.
    let (_, body) = app
        .post(&format!("/api/executions/{backup}/download"), Some(json!({"items": ["out"]})))
        .await;
    assert_eq!(body["data"]["items"].as_array().unwrap().len(), 1);
    assert_eq!(hooks.calls("pre-download")[1][0].len(), 12);
    // Validity is bounded.
    let (status, _) = app
        .post(&format!("/api/executions/{backup}/download"), Some(json!({"expiresIn": 999_999})))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_failing_pre_download_hook_refuses_the_download() {
    let hooks = HookDir::new();
    let app = TestApp::spawn_with(hooks.options()).await;
    let script = hooks.install("deny", "#!/bin/bash\necho 'downloads are closed'\nexit 1\n");
    create_hook(
        &app,
        json!({"name": "deny", "position": "pre", "type": "download", "script": script}),
    )
    .await;
    let (_, backup, _) = backup_of(
        &app,
        json!({"name": "cfg", "items": [{"name": "cfg", "source": {"kind": "config"}}]}),
    )
    .await;
    let (status, body) = app.post(&format!("/api/executions/{backup}/download"), None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("'deny'"), "{body}");
    assert!(!body.to_string().contains("X-Amz-Signature"), "no URL handed out");
    let (_, list) = app.get("/api/executions?status=Failed").await;
    let refused = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "Download")
        .expect("the refusal is recorded")
        .clone();
    let logs = app.execution(refused["id"].as_str().unwrap()).await["logs"].to_string();
    assert!(logs.contains("downloads are closed"));
}

#[tokio::test]
async fn encrypted_backups_store_no_plaintext_and_restore_with_the_identity() {
    let identity = age::x25519::Identity::generate();
    let secret_line = {
        use age::secrecy::ExposeSecret;
        identity.to_string().expose_secret().to_owned()
    };
    let app = TestApp::spawn_with(Options {
        extra_env: vec![("CAIRN_SECRET_TEST_AGE_IDENTITY".into(), secret_line.clone())],
        ..Options::default()
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("diary.txt"), "the quick brown fox keeps a secret diary\n".repeat(1000)).unwrap();
    let recipient = identity.to_public().to_string();
    let (_, backup, e) = backup_of(
        &app,
        json!({"name": "sealed", "encryption": {"recipients": [recipient]}, "items": [{"name": "tree", "source": {"kind": "directory", "path": src}}]}),
    )
    .await;
    let folder = key_of(e["path"].as_str().unwrap(), &app.bucket);
    let stored = app.object_bytes(&format!("{folder}tree.tar.zst")).await;
    assert!(stored.starts_with(b"age-encryption.org/v1"), "an age file");
    assert!(zstd::decode_all(stored.as_slice()).is_err(), "not readable without the identity");
    // Without an identity: refused, nothing written.
    let dst = work.path().join("restored");
    let r = restore(&app, &backup, json!({"target": {"kind": "directory", "path": dst}})).await;
    assert_eq!(r["status"], "Failed");
    assert!(r["error"].as_str().unwrap().contains("encrypted"), "{r:#}");
    assert!(!dst.exists());
    // With the identity from the runner's environment.
    let r = restore(
        &app,
        &backup,
        json!({"target": {"kind": "directory", "path": dst}, "decryption": {"identityEnv": "CAIRN_SECRET_TEST_AGE_IDENTITY"}}),
    )
    .await;
    assert_eq!(r["status"], "Success", "{r:#}");
    assert_eq!(fs::read(dst.join("diary.txt")).unwrap(), fs::read(src.join("diary.txt")).unwrap());
    // And from a file.
    let idfile = work.path().join("key.txt");
    let mut f = fs::File::create(&idfile).unwrap();
    writeln!(f, "# created: test\n{secret_line}").unwrap();
    let dst2 = work.path().join("restored2");
    let r = restore(
        &app,
        &backup,
        json!({"target": {"kind": "directory", "path": dst2}, "decryption": {"identityFile": idfile}}),
    )
    .await;
    assert_eq!(r["status"], "Success");
    assert!(!app.server_log().contains(&secret_line), "key material never logged");
    assert!(!r["logs"].to_string().contains("AGE-SECRET-KEY"));
}

#[tokio::test]
async fn postgres_backup_restore_and_clone_give_identical_rows_with_the_seed_hook_arguments() {
    let pg = Postgres::start();
    pg.psql("postgres", "CREATE DATABASE prod");
    pg.psql("prod", "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance bigint)");
    pg.psql(
        "prod",
        "INSERT INTO accounts SELECT g, 'owner ' || g, g * 100 FROM generate_series(1, 2000) g",
    );
    // Some 12 MB of dump, more than a restore client is held short of.
    pg.psql(
        "prod",
        "CREATE TABLE events AS SELECT g AS id, md5(g::text) AS digest FROM generate_series(1, 300000) g",
    );
    let hooks = HookDir::new();
    let mut options = hooks.options();
    options.extra_env.push(("CAIRN_SECRET_TEST_PG".into(), pg.password.clone()));
    let app = TestApp::spawn_with(options).await;
    for (name, position, ty) in [
        ("pre-restore", "pre", "restore"),
        ("post-restore", "post", "restore"),
        ("pre-clone", "pre", "clone"),
        ("post-clone", "post", "clone"),
        ("pre-clone-item", "pre", "clone_item"),
        ("post-clone-item", "post", "clone_item"),
    ] {
        let Some(script) = hooks.seed_bash(name) else { return };
        create_hook(&app, json!({"name": name, "position": position, "type": ty, "script": script})).await;
    }
    let url = |db: &str| format!("postgres://postgres@127.0.0.1:{}/{db}", pg.port);
    let q = "SELECT * FROM accounts ORDER BY id";
    let original = pg.psql("prod", q);

    // Backup, then restore into a database that does not exist yet.
    let (job, backup, backed_up) =
        backup_of(&app, json!({"name": "prod db", "items": [{"name": "prod", "source": {"kind": "postgres", "url": url("prod"), "passwordEnv": "CAIRN_SECRET_TEST_PG"}}]})).await;
    let r = restore(
        &app,
        &backup,
        json!({"items": [{"name": "prod", "target": {"kind": "postgres", "url": url("restored"), "passwordEnv": "CAIRN_SECRET_TEST_PG"}}]}),
    )
    .await;
    assert_eq!(r["status"], "Success", "{r:#}");
    assert_eq!(pg.psql("restored", q), original);
    let pre = hooks.calls("pre-restore");
    assert_eq!(pre.len(), 1);
    assert_eq!(pre[0].len(), 7);
    assert_eq!(pre[0][..2], ["1".to_owned(), "2".to_owned()], "type and contains (PostgreSQL)");
    assert_eq!(pre[0][2].len(), 12, "item id of the one item restored");
    assert_eq!(pre[0][3], "prod");
    assert_eq!(pre[0][4], "prod");
    assert_eq!(pre[0][6], r["id"].as_str().unwrap());
    let post = hooks.calls("post-restore");
    assert_eq!(post[0].len(), 9);
    assert_eq!(post[0][7], "100");
    assert_eq!(post[0][8], r["id"].as_str().unwrap());
    let _ = job;

    // Damaged halfway, the dump restores nothing: its transaction is rolled back and the
    // database it created dropped.
    let folder = key_of(backed_up["path"].as_str().unwrap(), &app.bucket);
    let key = app.object_keys(&folder).await.into_iter().find(|k| k.ends_with(".zst")).unwrap();
    let mut damaged = app.object_bytes(&key).await;
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x5a;
    app.put_object(&key, damaged).await;
    let r = restore(
        &app,
        &backup,
        json!({"items": [{"name": "prod", "target": {"kind": "postgres", "url": url("damaged"), "passwordEnv": "CAIRN_SECRET_TEST_PG"}}]}),
    )
    .await;
    assert_eq!(r["status"], "Failed", "{r:#}");
    assert!(r["error"].as_str().unwrap().contains("nothing was written"), "{r:#}");
    assert_eq!(
        pg.psql("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'damaged'")
            .trim(),
        "0"
    );

    // Clone prod into staging without storing a backup.
    let clone_job = app
        .create_job(
            json!({"name": "prod to staging", "type": "clone", "destinations": [], "items": [{"name": "db",
            "source": {"kind": "postgres", "url": url("prod"), "passwordEnv": "CAIRN_SECRET_TEST_PG"},
            "target": {"kind": "postgres", "url": url("staging"), "passwordEnv": "CAIRN_SECRET_TEST_PG"}}]}),
        )
        .await;
    let c = app.run_job(&clone_job).await;
    let ce = app.wait_for_end(&c, Duration::from_secs(60)).await;
    assert_eq!(
        (ce["type"].clone(), ce["status"].clone()),
        (json!("Clone"), json!("Success")),
        "{ce:#}"
    );
    assert_eq!(pg.psql("staging", q), original);
    assert!(
        app.object_keys(&format!("backups/{clone_job}/")).await.is_empty(),
        "a clone stores nothing"
    );
    let pre = hooks.calls("pre-clone");
    assert_eq!(pre.len(), 1);
    assert_eq!(pre[0].len(), 7);
    assert_eq!(pre[0][0], clone_job);
    assert_eq!(pre[0][1], "prod to staging");
    assert_eq!(pre[0][6], c);
    let post = hooks.calls("post-clone");
    assert_eq!(post[0].len(), 9);
    assert_eq!(post[0][7], "100");
    let item_pre = hooks.calls("pre-clone-item");
    assert_eq!(item_pre[0].len(), 4);
    assert_eq!(item_pre[0][2], "db");
    let item_post = hooks.calls("post-clone-item");
    assert_eq!(item_post[0].len(), 5);
    assert_eq!(item_post[0][3], "100", "status is $4");
    assert_eq!(item_post[0][4], format!("{c}/db"), "log id is $5");
    assert!(!app.server_log().contains(&pg.password));
}

/// What is stored under `prefix` in the test bucket: name below the prefix → bytes.
async fn objects_under(app: &TestApp, prefix: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for key in app.object_keys(prefix).await {
        out.insert(key.strip_prefix(prefix).unwrap().to_owned(), app.object_bytes(&key).await);
    }
    out
}

/// An S3 prefix is archived with every object below it (nothing beside it), the archive
/// holds their exact bytes, and a restore into another prefix recreates them.
#[tokio::test]
async fn an_s3_prefix_backs_up_and_restores_into_another_prefix() {
    let app = TestApp::spawn().await;
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let put = [
        ("data/readme.txt", b"hello from s3\n".to_vec()),
        ("data/nested/deeper/values.csv", b"a,b\n1,2\n".to_vec()),
        ("data/empty", Vec::new()),
        ("data/big.bin", big),
        ("datadog/beside.txt", b"not below data/".to_vec()),
    ];
    for (key, bytes) in put {
        app.put_object(key, bytes).await;
    }
    let source = objects_under(&app, "data/").await;
    assert_eq!(source.len(), 4, "{:?}", source.keys());
    let (_, backup, e) = backup_of(
        &app,
        json!({"name": "bucket", "items": [{"name": "objects", "source": {"kind": "s3", "bucket": app.bucket, "prefix": "data/"}}]}),
    )
    .await;

    // By hand: the archive's entries are the objects below the prefix, byte for byte.
    let folder = key_of(e["path"].as_str().unwrap(), &app.bucket);
    let archive = app.object_bytes(&format!("{folder}objects.tar.zst")).await;
    let tar_bytes = zstd::decode_all(archive.as_slice()).unwrap();
    let mut entries = std::collections::BTreeMap::new();
    for entry in tar::Archive::new(tar_bytes.as_slice()).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
        entries.insert(name, bytes);
    }
    assert_eq!(entries, source);

    let e = restore(
        &app,
        &backup,
        json!({"target": {"kind": "s3", "bucket": app.bucket, "prefix": "restored/"}}),
    )
    .await;
    assert_eq!(e["status"], "Success", "{e:#}");
    assert_eq!(objects_under(&app, "restored/").await, source);
}
