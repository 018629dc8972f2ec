//! The operator's policy, tried as an outside tester would: an API key chooses among what
//! the operator allowed and never brings code, paths, hosts or secrets of its own.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{key_of, Options, TestApp};

/// `POST /api/jobs` with one item of `source`; answers status and body.
async fn try_job(app: &TestApp, source: Value) -> (u16, Value) {
    let d = app.create_destination("backups").await;
    app.post(
        "/api/jobs",
        Some(json!({"name": "probe", "items": [{"name": "x", "source": source}], "destinations": [d]})),
    )
    .await
}

fn error_of(body: &Value) -> String {
    body["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn commands_outside_the_commands_dir_are_refused_and_name_the_variable() {
    let app = TestApp::spawn().await;
    let outside = tempfile::tempdir().unwrap();
    let script = outside.path().join("evil.sh");
    fs::write(&script, "#!/bin/sh\nid\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let link = app.commands_dir.join("sneaky");
    symlink(&script, &link).unwrap();
    let dotdot = format!("{}/../{}", app.commands_dir.display(), "commands/../../evil.sh");
    for argv in [
        json!(["/bin/sh", "-c", "id"]),
        json!([script.display().to_string()]),
        json!([link.display().to_string()]),
        json!(["sneaky"]),
        json!([dotdot]),
        json!(["../bash"]),
    ] {
        let (status, body) = try_job(&app, json!({"kind": "command", "argv": argv})).await;
        assert_eq!(status, 400, "{argv}: {body}");
        let e = error_of(&body);
        assert!(
            e.contains("items[0].source.argv[0]") && e.contains("not an allowed command") && e.contains("CAIRN_COMMANDS_DIR"),
            "{argv}: {e}"
        );
    }
}

#[tokio::test]
async fn a_command_runs_with_no_aws_credentials_in_its_environment() {
    let app = TestApp::spawn().await;
    let printenv = app.commands_dir.join("printenv");
    fs::write(&printenv, "#!/bin/sh\nexec /usr/bin/env\n").unwrap();
    fs::set_permissions(&printenv, fs::Permissions::from_mode(0o755)).unwrap();
    let job = app
        .create_job(json!({"name": "env", "items": [{"name": "env", "source": {"kind": "command", "argv": ["printenv"]}}]}))
        .await;
    let e = app.wait_for_end(&app.run_job(&job).await, Duration::from_secs(60)).await;
    assert_eq!(e["status"], "Success", "{e}");
    let key = format!("{}env.out.zst", key_of(e["path"].as_str().unwrap(), &app.bucket));
    let stored = zstd::stream::decode_all(app.object_bytes(&key).await.as_slice()).unwrap();
    let text = String::from_utf8_lossy(&stored);
    assert!(text.contains("PATH="), "the command ran: {text}");
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "CAIRN_TABLE_PREFIX",
    ] {
        assert!(!text.contains(var), "{var} reached the command: {text}");
    }
}

#[tokio::test]
async fn directory_sources_outside_the_source_dirs_are_refused_through_dotdot_and_links() {
    let app = TestApp::spawn().await;
    let inside = tempfile::tempdir().unwrap();
    symlink("/etc", inside.path().join("etc-link")).unwrap();
    let tmp = std::env::temp_dir().display().to_string();
    for path in [
        "/etc".to_owned(),
        "/proc/self".to_owned(),
        format!("{tmp}/../etc"),
        inside.path().join("etc-link").display().to_string(),
    ] {
        let (status, body) = try_job(&app, json!({"kind": "directory", "path": path})).await;
        assert_eq!(status, 400, "{path}: {body}");
        let e = error_of(&body);
        assert!(
            e.contains("items[0].source.path") && e.contains("outside CAIRN_SOURCE_DIRS"),
            "{path}: {e}"
        );
    }
    let (status, body) = try_job(&app, json!({"kind": "directory", "path": inside.path().display().to_string()})).await;
    assert_eq!(status, 201, "a directory inside is accepted: {body}");
}

#[tokio::test]
async fn secrets_come_only_from_cairn_secret_variables() {
    let app = TestApp::spawn().await;
    let (status, body) = try_job(
        &app,
        json!({"kind": "postgres", "url": "postgres://x@attacker.example:5432/db", "passwordEnv": "AWS_SECRET_ACCESS_KEY"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let e = error_of(&body);
    assert!(e.contains("passwordEnv") && e.contains("CAIRN_SECRET_"), "{e}");
}

#[tokio::test]
async fn database_hosts_and_client_file_parameters_are_refused_when_the_operator_lists_hosts() {
    let app = TestApp::spawn_with(Options {
        extra_env: vec![("CAIRN_DATABASE_HOSTS".into(), "db.internal:5432,*.rds.amazonaws.com".into())],
        ..Options::default()
    })
    .await;
    let (status, body) = try_job(&app, json!({"kind": "postgres", "url": "postgres://x@attacker.example:5432/db"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("CAIRN_DATABASE_HOSTS"), "{body}");
    let (status, body) = try_job(
        &app,
        json!({"kind": "postgres", "url": "postgres://x@db.internal:5432/db?passfile=/etc/shadow"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(error_of(&body).contains("'passfile' is not allowed"), "{body}");
    let (status, body) = try_job(&app, json!({"kind": "mysql", "url": "mysql://x@prod.abc.rds.amazonaws.com/db"})).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn restores_never_target_the_hooks_dir_or_outside_the_restore_dirs() {
    let hooks = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_with(Options {
        extra_env: vec![("CAIRN_HOOKS_DIR".into(), hooks.path().display().to_string())],
        ..Options::default()
    })
    .await;
    let job = app
        .create_job(json!({"name": "cfg", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let backup = app.wait_for_end(&app.run_job(&job).await, Duration::from_secs(60)).await;
    assert_eq!(backup["status"], "Success", "{backup}");
    let id = backup["id"].as_str().unwrap();
    let into_hooks = hooks.path().join("planted").display().to_string();
    for (path, rule) in [
        (into_hooks, "CAIRN_HOOKS_DIR"),
        (app.commands_dir.join("x").display().to_string(), "CAIRN_COMMANDS_DIR"),
        ("/etc/cron.d".to_owned(), "outside CAIRN_RESTORE_DIRS"),
    ] {
        let (status, body) = app
            .post(
                &format!("/api/executions/{id}/restore"),
                Some(json!({"target": {"kind": "directory", "path": path, "overwrite": true}})),
            )
            .await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(error_of(&body).contains(rule), "{path}: {body}");
    }
    assert_eq!(
        fs::read_dir(hooks.path()).unwrap().count(),
        0,
        "nothing was written into the hooks directory"
    );
}

#[tokio::test]
async fn a_link_planted_in_a_restore_target_is_not_followed() {
    let app = TestApp::spawn().await;
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("a")).unwrap();
    fs::write(src.path().join("a/x"), b"payload").unwrap();
    let job = app
        .create_job(
            json!({"name": "tree", "items": [{"name": "tree", "source": {"kind": "directory", "path": src.path().display().to_string()}}]}),
        )
        .await;
    let backup = app.wait_for_end(&app.run_job(&job).await, Duration::from_secs(60)).await;
    assert_eq!(backup["status"], "Success", "{backup}");
    let outside = tempfile::tempdir().unwrap();
    let target = tempfile::tempdir().unwrap();
    symlink(outside.path(), target.path().join("a")).unwrap();
    let (status, body) = app
        .post(
            &format!("/api/executions/{}/restore", backup["id"].as_str().unwrap()),
            Some(json!({"target": {"kind": "directory", "path": target.path().display().to_string(), "overwrite": true}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let e = app
        .wait_for_end(body["executionId"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    // The archive's directory `a` replaces the planted link (overwrite): the restore
    // writes into its staging copy and moves entries into place, never through a link.
    assert_eq!(e["status"], "Success", "{e}");
    assert!(!outside.path().join("x").exists(), "something was written through the planted link");
    assert!(
        fs::symlink_metadata(target.path().join("a")).unwrap().is_dir(),
        "the link is still there"
    );
    assert_eq!(fs::read(target.path().join("a/x")).unwrap(), b"payload");
}

#[tokio::test]
async fn a_keys_write_key_cannot_mint_more_than_it_holds() {
    let app = TestApp::spawn().await;
    let minter = app
        .cli(&["keys", "create", "--name", "minter", "--permissions", "keys:write"])
        .unwrap();
    let token = minter["key"].as_str().unwrap();
    for perms in [json!(["all"]), json!(["jobs:write"]), json!(["keys:write", "backups:restore"])] {
        let r = app
            .http
            .post(app.url("/api/keys"))
            .bearer_auth(token)
            .json(&json!({"name": "escalated", "permissions": perms}));
        let (status, body) = crate::helpers::send(r).await;
        assert_eq!(status, 403, "{perms}: {body}");
        assert!(error_of(&body).contains("lacks the"), "{body}");
    }
    let r = app
        .http
        .post(app.url("/api/keys"))
        .bearer_auth(token)
        .json(&json!({"name": "same", "permissions": ["keys:write"]}));
    assert_eq!(crate::helpers::send(r).await.0, 201, "a key may grant what it holds");
}

#[tokio::test]
async fn destinations_need_their_own_permission_and_a_listed_endpoint() {
    let app = TestApp::spawn_with(Options {
        extra_env: vec![("CAIRN_ALLOWED_ENDPOINTS".into(), "https://minio.internal:9000".into())],
        ..Options::default()
    })
    .await;
    let writer = app
        .cli(&["keys", "create", "--name", "jobs", "--permissions", "jobs:write,jobs:read"])
        .unwrap();
    let body = json!({"name": "d", "bucket": "some-bucket", "prefix": "p"});
    let r = app
        .http
        .post(app.url("/api/destinations"))
        .bearer_auth(writer["key"].as_str().unwrap())
        .json(&body);
    let (status, answer) = crate::helpers::send(r).await;
    assert_eq!(status, 403, "{answer}");
    assert!(error_of(&answer).contains("destinations:write"), "{answer}");
    let (status, answer) = app
        .post(
            "/api/destinations",
            Some(json!({"name": "d", "bucket": "some-bucket", "endpoint": "http://attacker.example:9000"})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(error_of(&answer).contains("CAIRN_ALLOWED_ENDPOINTS"), "{answer}");
    let (status, answer) = app
        .post(
            "/api/destinations",
            Some(json!({"name": "d", "bucket": "some-bucket", "endpoint": "https://minio.internal:9000"})),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
}

#[tokio::test]
async fn absurd_key_lifetimes_are_a_400_and_the_server_lives_on() {
    let app = TestApp::spawn().await;
    for expires in ["9223372036854775807s", "10000000000000s", "106751991167d", "1826d"] {
        let (status, body) = app
            .post(
                "/api/keys",
                Some(json!({"name": "k", "permissions": ["jobs:read"], "expiresIn": expires})),
            )
            .await;
        assert_eq!(status, 400, "{expires}: {body}");
        assert!(error_of(&body).contains("expiresIn"), "{expires}: {body}");
    }
    assert_eq!(app.get("/api/health").await.0, 200, "the server is still up");
}

/// A Secrets Manager client on the local endpoint.
async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(crate::helpers::ENDPOINT)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "tests",
        ))
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&conf)
}

#[tokio::test]
async fn a_database_password_from_secrets_manager_backs_up_and_restores_and_never_shows() {
    let pg = crate::backups::Postgres::start();
    pg.psql("postgres", "CREATE DATABASE app");
    pg.psql(
        "app",
        "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'row ' || g FROM generate_series(1, 300) g",
    );
    let name = format!("cairn/test-pg-{}", uuid::Uuid::new_v4().simple());
    secrets_client()
        .await
        .create_secret()
        .name(&name)
        .secret_string(&pg.password)
        .send()
        .await
        .unwrap();
    let app = TestApp::spawn().await;
    let url = |db: &str| format!("postgres://postgres@127.0.0.1:{}/{db}", pg.port);
    let (status, body) = try_job(
        &app,
        json!({"kind": "postgres", "url": url("app"), "passwordSecret": "other/secret"}),
    )
    .await;
    assert_eq!(status, 400, "secrets outside cairn/ are refused: {body}");
    assert!(error_of(&body).contains("passwordSecret"), "{body}");
    let job = app
        .create_job(
            json!({"name": "db", "items": [{"name": "app", "source": {"kind": "postgres", "url": url("app"), "passwordSecret": name}}]}),
        )
        .await;
    let backup = app.wait_for_end(&app.run_job(&job).await, Duration::from_secs(60)).await;
    assert_eq!(backup["status"], "Success", "{backup}");
    let (status, body) = app
        .post(
            &format!("/api/executions/{}/restore", backup["id"].as_str().unwrap()),
            Some(json!({"target": {"kind": "postgres", "url": url("restored"), "passwordSecret": name}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let restore = app
        .wait_for_end(body["executionId"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(restore["status"], "Success", "{restore}");
    let q = "SELECT id, v FROM t ORDER BY id";
    assert_eq!(pg.psql("restored", q), pg.psql("app", q));
    let logs = app
        .get(&format!("/api/executions/{}?includeLogs=true", backup["id"].as_str().unwrap()))
        .await
        .1;
    let everything = format!(
        "{logs}{restore}{}{}",
        app.server_log(),
        app.get(&format!("/api/jobs/{job}")).await.1
    );
    assert!(!everything.contains(&pg.password), "the password leaked");
}

#[tokio::test]
async fn a_missing_secret_fails_the_run_before_any_read_naming_the_secret() {
    let app = TestApp::spawn().await;
    let job = app
        .create_job(json!({"name": "db", "items": [{"name": "app", "source": {"kind": "postgres", "url": "postgres://u@127.0.0.1:1/db", "passwordSecret": "cairn/does-not-exist"}}]}))
        .await;
    let e = app.wait_for_end(&app.run_job(&job).await, Duration::from_secs(60)).await;
    assert_eq!(e["status"], "Failed", "{e}");
    assert!(e["error"].as_str().unwrap().contains("cairn/does-not-exist"), "{e}");
}
