//! Hooks: the seed's samples installed into a temporary hooks directory, receiving
//! exactly the seed's arguments around every backup; failures, timeouts and the rules
//! on where scripts may live.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{seed_document, Options, TestApp};

pub struct HookDir {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    out: PathBuf,
}

/// A sample from JetBackup's published hooks page, or `None` (the test skips) where the
/// page is not available.
fn seed_sample(start: &str, end: &str, hook: &str) -> Option<String> {
    let seed = seed_document("jetbackup-hooks.txt", &format!("the test of hook '{hook}'"))?;
    let from = seed.find(start).expect("sample start");
    let to = from + seed[from..].find(end).expect("sample end") + end.len();
    Some(seed[from..to].to_owned())
}

impl HookDir {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hooks");
        let out = tmp.path().join("out");
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(&out).unwrap();
        Self { _tmp: tmp, dir, out }
    }

    /// Installs the seed's bash sample, writing to `out/<name>.txt` instead of /root/testFile.
    pub fn seed_bash(&self, name: &str) -> Option<String> {
        let sample = seed_sample("#!/bin/bash\n# Hook Args are passed into $@", "\ndone\n", name)?;
        let target = self.out.join(format!("{name}.txt"));
        Some(self.install(name, &sample.replace("/root/testFile", target.to_str().unwrap())))
    }

    /// Installs the seed's Python sample (run through /usr/bin/python3), writing to `out/<name>.txt`.
    fn seed_python(&self, name: &str) -> Option<String> {
        let sample = seed_sample("#!/usr/bin/python\n#Python sample", "f.close()\n", name)?
            // The published page lost the loop body's indentation, which Python needs.
            .replace("len(sys.argv)):\nf.write", "len(sys.argv)):\n    f.write");
        let target = self.out.join(format!("{name}.txt"));
        let path = self.dir.join(format!("{name}.py"));
        fs::write(&path, sample.replace("/root/PythonTestFile", target.to_str().unwrap())).unwrap();
        Some(format!("/usr/bin/python3 {}", path.display()))
    }

    pub fn install(&self, name: &str, body: &str) -> String {
        let path = self.dir.join(format!("{name}.sh"));
        fs::write(&path, body).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    /// Each invocation the seed's bash sample recorded: the list of its arguments.
    pub fn calls(&self, name: &str) -> Vec<Vec<String>> {
        let text = fs::read_to_string(self.out.join(format!("{name}.txt"))).unwrap_or_default();
        let mut calls = Vec::new();
        for line in text.lines() {
            if line.starts_with("Printing Hook Parameters") {
                calls.push(Vec::new());
            } else if let Some(rest) = line.strip_prefix("Arg ") {
                let (_, value) = rest.split_once(": ").unwrap_or((rest, ""));
                calls.last_mut().expect("header first").push(value.to_owned());
            }
        }
        calls
    }

    pub fn options(&self) -> Options {
        Options {
            extra_env: vec![("CAIRN_HOOKS_DIR".into(), self.dir.display().to_string())],
            ..Options::default()
        }
    }
}

pub async fn create_hook(app: &TestApp, spec: Value) -> String {
    let (status, body) = app.post("/api/hooks", Some(spec)).await;
    assert_eq!(status, 201, "{body}");
    body["data"]["id"].as_str().unwrap().to_owned()
}

fn epoch(iso: &Value) -> String {
    chrono::DateTime::parse_from_rfc3339(iso.as_str().unwrap())
        .unwrap()
        .timestamp()
        .to_string()
}

#[tokio::test]
async fn every_backup_hook_receives_exactly_the_seed_arguments() {
    let hooks = HookDir::new();
    let app = TestApp::spawn_with(hooks.options()).await;
    for (name, position, ty) in [
        ("pre-backup", "pre", "backup"),
        ("post-backup", "post", "backup"),
        ("pre-item", "pre", "backup_item"),
        ("post-item", "post", "backup_item"),
    ] {
        let Some(script) = hooks.seed_bash(name) else { return };
        create_hook(&app, json!({"name": name, "position": position, "type": ty, "script": script})).await;
    }
    let Some(python) = hooks.seed_python("python-post") else { return };
    create_hook(
        &app,
        json!({"name": "python-post", "position": "post", "type": "backup", "script": python}),
    )
    .await;

    let d1 = app.create_destination("one").await;
    let d2 = app.create_destination("two").await;
    let job = app
        .create_job(json!({"name": "Nightly app", "destinations": [d1, d2], "items": [
            {"name": "cfg", "source": {"kind": "config"}},
            {"name": "dump", "source": {"kind": "command", "argv": ["echo", "data"]}}
        ]}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(60)).await;
    assert_eq!(e["status"], "Success", "{e:#}");
    let (start, end) = (epoch(&e["startedAt"]), epoch(&e["endedAt"]));

    let pre = hooks.calls("pre-backup");
    assert_eq!(
        pre,
        vec![vec![
            job.clone(),
            "Nightly app".into(),
            "1".into(),
            "40".into(),
            "6".into(),
            format!("{d1},{d2}"),
            start.clone(),
            id.clone()
        ]]
    );
    let post = hooks.calls("post-backup");
    assert_eq!(post.len(), 1);
    assert_eq!(post[0].len(), 10);
    assert_eq!(post[0][..7], pre[0][..7]);
    let post_end: i64 = post[0][7].parse().unwrap();
    assert!((post_end - end.parse::<i64>().unwrap()).abs() <= 1, "end {post_end} vs {end}");
    assert_eq!(post[0][8], "100");
    assert_eq!(post[0][9], id);

    let item_pre = hooks.calls("pre-item");
    assert_eq!(item_pre.len(), 2);
    for (call, item) in item_pre.iter().zip(["cfg", "dump"]) {
        assert_eq!(call.len(), 4);
        assert_eq!(call[0], job);
        assert_eq!(call[1].len(), 12, "item id");
        assert_eq!(call[2], item);
        assert_eq!(call[3], format!("{id}/{item}"));
    }
    let item_post = hooks.calls("post-item");
    assert_eq!(item_post.len(), 2);
    for (call, pre_call) in item_post.iter().zip(&item_pre) {
        assert_eq!(call.len(), 5);
        assert_eq!(call[..3], pre_call[..3]);
        assert_eq!(call[3], "100");
        assert_eq!(call[4], pre_call[3]);
    }

    // The Python sample, run through its interpreter, saw the same ten arguments.
    let py = fs::read_to_string(hooks.out.join("python-post.txt")).unwrap();
    let py_args: Vec<&str> = py.lines().filter_map(|l| l.split_once(": ").map(|(_, v)| v)).collect();
    assert_eq!(py_args, post[0].iter().map(String::as_str).collect::<Vec<_>>());

    // Each hook's run is in the logs of the stage it ran in.
    let logs = e["logs"].as_array().unwrap();
    let find = |needle: &str| {
        logs.iter()
            .find(|l| l["message"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no log with {needle}: {logs:#?}"))
    };
    assert_eq!(
        find("pre-backup hook 'pre-backup' exited with status 0")["stage"],
        "Running pre-hooks"
    );
    assert_eq!(
        find("post-backup hook 'post-backup' exited with status 0")["stage"],
        "Running post-hooks"
    );
}

#[tokio::test]
async fn hooks_get_the_values_as_environment_and_json_in_a_minimal_environment() {
    let hooks = HookDir::new();
    let app = TestApp::spawn_with(Options {
        extra_env: vec![
            ("CAIRN_HOOKS_DIR".into(), hooks.dir.display().to_string()),
            ("CAIRN_SECRET_TEST_SECRET".into(), "sup3r-s3cret-value".into()),
        ],
        ..Options::default()
    })
    .await;
    let out = hooks.out.display().to_string();
    let script = hooks.install(
        "inspect",
        &format!("#!/bin/bash\nenv | sort > {out}/env.txt\ncat > {out}/stdin.json\npwd > {out}/cwd.txt\necho \"password is sup3r-s3cret-value\"\n"),
    );
    create_hook(
        &app,
        json!({"name": "inspect", "position": "pre", "type": "backup", "script": script}),
    )
    .await;
    let job = app
        .create_job(json!({"name": "env", "items": [{"name": "db", "source": {"kind": "postgres", "url": "postgres://u@127.0.0.1:1/db", "passwordEnv": "CAIRN_SECRET_TEST_SECRET"}}]}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(60)).await;
    let env = fs::read_to_string(hooks.out.join("env.txt")).unwrap();
    assert!(env.contains(&format!("CAIRN_JOB_ID={job}")), "{env}");
    assert!(env.contains(&format!("CAIRN_LOG_ID={id}")));
    assert!(env.contains("CAIRN_HOOK_POSITION=pre") && env.contains("CAIRN_HOOK_TYPE=backup"));
    assert!(env.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert!(
        !env.contains("AWS_SECRET_ACCESS_KEY") && !env.contains("AWS_ACCESS_KEY_ID"),
        "no AWS credentials: {env}"
    );
    assert!(
        !env.contains("sup3r-s3cret-value"),
        "the runner's secrets stay out of the hook's environment"
    );
    let stdin: Value = serde_json::from_str(&fs::read_to_string(hooks.out.join("stdin.json")).unwrap()).unwrap();
    assert_eq!(stdin["args"][0], job.as_str());
    assert_eq!(stdin["args"].as_array().unwrap().len(), 8);
    assert_eq!(stdin["context"]["logId"], id.as_str());
    let cwd = fs::read_to_string(hooks.out.join("cwd.txt")).unwrap();
    assert!(cwd.contains("cairn-hook-"), "a working directory of its own: {cwd}");
    assert!(!Path::new(cwd.trim()).exists(), "removed afterwards");
    let logs = e["logs"].to_string();
    assert!(logs.contains("password is [redacted]"), "{logs}");
    assert!(!logs.contains("sup3r-s3cret-value"));
}

#[tokio::test]
async fn a_failing_pre_hook_stops_the_backup_before_any_s3_write() {
    let hooks = HookDir::new();
    let app = TestApp::spawn_with(hooks.options()).await;
    let failing = hooks.install("refuse", "#!/bin/bash\necho 'maintenance window' >&2\nexit 3\n");
    create_hook(
        &app,
        json!({"name": "refuse", "position": "pre", "type": "backup", "script": failing}),
    )
    .await;
    let Some(post) = hooks.seed_bash("post") else { return };
    create_hook(&app, json!({"name": "post", "position": "post", "type": "backup", "script": post})).await;
    let job = app
        .create_job(json!({"name": "guarded", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(30)).await;
    assert_eq!(e["status"], "Failed");
    let error = e["error"].as_str().unwrap();
    assert!(error.contains("'refuse'") && error.contains("status 3"), "{error}");
    assert!(
        app.object_keys(&format!("backups/{job}/")).await.is_empty(),
        "nothing written to S3"
    );
    assert!(e["logs"].to_string().contains("maintenance window"), "the hook's output is logged");
    let post_calls = hooks.calls("post");
    assert_eq!(post_calls.len(), 1, "post hooks run whatever the outcome");
    assert_eq!(post_calls[0][8], "102");

    // With onError: continue the same hook only warns.
    let (_, list) = app.get("/api/hooks").await;
    let refuse = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "refuse")
        .unwrap()
        .clone();
    let mut spec = json!({"name": "refuse", "position": "pre", "type": "backup", "script": refuse["script"], "onError": "continue"});
    let (status, body) = crate::helpers::send(
        app.req(reqwest::Method::PUT, &format!("/api/hooks/{}", refuse["id"].as_str().unwrap()))
            .json(&spec),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(30)).await;
    assert_eq!(e["status"], "Success", "{e:#}");
    spec["onError"] = json!("fail");
    let _ = spec;
}

#[tokio::test]
async fn a_failing_item_pre_hook_fails_only_its_item() {
    let hooks = HookDir::new();
    let app = TestApp::spawn_with(hooks.options()).await;
    let script = hooks.install("skip-db", "#!/bin/bash\n[ \"$3\" = db ] && exit 7\nexit 0\n");
    create_hook(
        &app,
        json!({"name": "skip-db", "position": "pre", "type": "backup_item", "script": script}),
    )
    .await;
    let job = app
        .create_job(json!({"name": "items", "items": [{"name": "cfg", "source": {"kind": "config"}}, {"name": "db", "source": {"kind": "command", "argv": ["echo", "x"]}}]}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(30)).await;
    assert_eq!(e["status"], "Partial", "{e:#}");
    assert!(e["error"].as_str().unwrap().contains("item 'db'") && e["error"].as_str().unwrap().contains("status 7"));
    let keys = app.object_keys(&format!("backups/{job}/{id}/")).await;
    assert!(
        keys.iter().any(|k| k.ends_with("cfg.tar.zst")) && !keys.iter().any(|k| k.contains("db.")),
        "{keys:?}"
    );
}

#[tokio::test]
async fn a_failing_post_hook_leaves_the_backup_successful_with_a_warning() {
    let hooks = HookDir::new();
    let app = TestApp::spawn_with(hooks.options()).await;
    let script = hooks.install("notify", "#!/bin/bash\necho 'webhook unreachable'\nexit 1\n");
    create_hook(
        &app,
        json!({"name": "notify", "position": "post", "type": "backup", "script": script}),
    )
    .await;
    let job = app
        .create_job(json!({"name": "ok", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(30)).await;
    assert_eq!(e["status"], "Success");
    let warning = e["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["message"].as_str().unwrap().contains("'notify' exited with status 1"))
        .unwrap()
        .clone();
    assert_eq!(warning["level"], "warning");
    assert_eq!(warning["stage"], "Running post-hooks");
}

#[tokio::test]
async fn a_hook_past_its_timeout_is_killed_with_its_children() {
    let hooks = HookDir::new();
    let app = TestApp::spawn_with(hooks.options()).await;
    let pidfile = hooks.out.join("child.pid");
    let script = hooks.install(
        "hang",
        &format!("#!/bin/bash\nsleep 300 &\necho $! > {}\nsleep 300\n", pidfile.display()),
    );
    create_hook(
        &app,
        json!({"name": "hang", "position": "pre", "type": "backup", "script": script, "timeout": 1}),
    )
    .await;
    let job = app
        .create_job(json!({"name": "slow hook", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(30)).await;
    assert_eq!(e["status"], "Failed");
    assert!(e["error"].as_str().unwrap().contains("timed out after 1 s"), "{e:#}");
    let child: i32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), None).is_ok()
        && !fs::read_to_string(format!("/proc/{child}/stat"))
            .unwrap_or_default()
            .contains(") Z ");
    assert!(!alive, "the hook's child {child} survived");
}

#[tokio::test]
async fn hook_output_is_capped_at_64_kib_and_marked() {
    let hooks = HookDir::new();
    let app = TestApp::spawn_with(hooks.options()).await;
    let script = hooks.install("chatty", "#!/bin/bash\nhead -c 200000 /dev/zero | tr '\\0' 'x'\n");
    create_hook(
        &app,
        json!({"name": "chatty", "position": "post", "type": "backup", "script": script}),
    )
    .await;
    let job = app
        .create_job(json!({"name": "chatty", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let id = app.run_job(&job).await;
    let e = app.wait_for_end(&id, Duration::from_secs(30)).await;
    let output = e["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["message"].as_str().unwrap().contains("'chatty' output"))
        .unwrap()
        .clone();
    let message = output["message"].as_str().unwrap();
    assert!(message.contains("truncated at 64 KiB"));
    assert!(message.len() < 64 * 1024 + 200);
}

#[tokio::test]
async fn scripts_outside_the_hooks_dir_relative_or_not_executable_are_refused() {
    let hooks = HookDir::new();
    let app = TestApp::spawn_with(hooks.options()).await;
    let outside = hooks.out.join("evil.sh");
    fs::write(&outside, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&outside, fs::Permissions::from_mode(0o755)).unwrap();
    let plain = hooks.dir.join("plain.sh");
    fs::write(&plain, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
    let dotdot = format!("{}/../out/evil.sh", hooks.dir.display());
    for (script, reason) in [
        (outside.display().to_string(), "not an allowed hook script"),
        ("hooks/plain.sh".to_owned(), "absolute path"),
        (plain.display().to_string(), "not an executable"),
        (dotdot, "not an allowed hook script"),
        ("/bin/sh -c id".to_owned(), "absolute path"),
        (format!("/usr/bin/env {}", plain.display()), "neither inside"),
    ] {
        let (status, body) = app
            .post(
                "/api/hooks",
                Some(json!({"name": "x", "position": "pre", "type": "backup", "script": script})),
            )
            .await;
        assert_eq!(status, 400, "{script}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("'script'") && error.contains(reason), "{script}: {error}");
    }
    assert_eq!(app.get("/api/hooks").await.1["data"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn disabled_hooks_and_hooks_for_other_jobs_do_not_run() {
    let hooks = HookDir::new();
    let app = TestApp::spawn_with(hooks.options()).await;
    let Some(a) = hooks.seed_bash("disabled") else { return };
    let hook = create_hook(&app, json!({"name": "disabled", "position": "pre", "type": "backup", "script": a})).await;
    assert_eq!(app.post(&format!("/api/hooks/{hook}/disable"), None).await.0, 200);
    let Some(b) = hooks.seed_bash("other-job") else { return };
    let (status, body) = app
        .post(
            "/api/hooks",
            Some(json!({"name": "other-job", "position": "pre", "type": "backup", "script": b, "jobs": ["no-such-job"]})),
        )
        .await;
    assert_eq!(status, 400, "a hook naming a job that does not exist is refused: {body}");
    assert!(body["error"].as_str().unwrap().contains("jobs[0]"), "{body}");
    let other = app
        .create_job(json!({"name": "other", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    create_hook(
        &app,
        json!({"name": "other-job", "position": "pre", "type": "backup", "script": b, "jobs": [other]}),
    )
    .await;
    // Managed from the CLI too.
    let Some(c) = hooks.seed_bash("cli") else { return };
    let created = app
        .cli(&[
            "hooks",
            "create",
            "--name",
            "cli",
            "--position",
            "post",
            "--type",
            "backup",
            "--script",
            &c,
        ])
        .unwrap();
    assert_eq!(created["onError"], "continue", "post hooks default to continue");
    let job = app
        .create_job(json!({"name": "j", "items": [{"name": "cfg", "source": {"kind": "config"}}]}))
        .await;
    let id = app.run_job(&job).await;
    assert_eq!(app.wait_for_end(&id, Duration::from_secs(30)).await["status"], "Success");
    assert!(hooks.calls("disabled").is_empty());
    assert!(hooks.calls("other-job").is_empty());
    assert_eq!(hooks.calls("cli").len(), 1);
    let listed = app.cli(&["hooks", "list"]).unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["cli", "disabled", "other-job"], "by name");
}
