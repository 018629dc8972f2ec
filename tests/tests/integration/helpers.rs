//! Test harness: starts `cairn serve` on a free port with its own tables and bucket,
//! drives the CLI, and speaks HTTP.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const ENDPOINT: &str = "http://127.0.0.1:4566";

/// The project's root (the workspace).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A binary of the workspace, built next to this test binary (`cargo build --bins` first).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

static ENDPOINT_READY: Mutex<bool> = Mutex::new(false);

/// One of the seed documents (`../shared/seeds/NAME` beside the project, or in
/// `CAIRN_SEEDS_DIR`), or `None` in a clone that has neither: tests that run the seed's
/// published clients then skip, saying so on one line (`scripts/test.sh` says it too).
pub fn seed_document(name: &str, test: &str) -> Option<String> {
    let dir = std::env::var_os("CAIRN_SEEDS_DIR").map_or_else(|| project_root().join("../shared/seeds"), PathBuf::from);
    match std::fs::read_to_string(dir.join(name)) {
        Ok(text) => Some(text),
        Err(_) => {
            eprintln!(
                "skipped {test}: the seed document {name} is not in {} (set CAIRN_SEEDS_DIR to run it)",
                dir.display()
            );
            None
        }
    }
}

/// Brings up the local AWS endpoint once per test process.
pub fn ensure_endpoint() {
    let mut ready = ENDPOINT_READY.lock().unwrap_or_else(|e| e.into_inner());
    if *ready {
        return;
    }
    if TcpStream::connect("127.0.0.1:4566").is_err() {
        let status = Command::new("bash")
            .arg(project_root().join("localstack/start.sh"))
            .env("CAIRN_SKIP_INIT", "1")
            .status()
            .expect("run localstack/start.sh");
        assert!(status.success(), "localstack/start.sh failed");
    }
    *ready = true;
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Settings of one test's Cairn.
#[derive(Debug, Clone)]
pub struct Options {
    pub rate_limit_get: u32,
    pub rate_limit_write: u32,
    pub lease_seconds: u32,
    pub sweep_seconds: u32,
    pub extra_env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            rate_limit_get: 100_000,
            rate_limit_write: 100_000,
            lease_seconds: 30,
            sweep_seconds: 60,
            extra_env: vec![],
        }
    }
}

/// One running `cairn serve` with its own tables and bucket.
pub struct TestApp {
    pub base_url: String,
    pub prefix: String,
    pub bucket: String,
    pub admin_key: String,
    pub http: reqwest::Client,
    pub options: Options,
    pub port: u16,
    server: Option<Child>,
    pub log_path: PathBuf,
    /// The operator's commands (CAIRN_COMMANDS_DIR): `echo`, `bash`, `false`, `head`.
    pub commands_dir: PathBuf,
    _dir: tempfile::TempDir,
}

/// The commands the tests' jobs run, installed as an operator would: small wrappers in
/// the commands directory (a link to /bin would resolve outside it and be refused).
fn install_commands(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("commands dir");
    for name in ["echo", "bash", "false", "head"] {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\nexec /usr/bin/env {name} \"$@\"\n")).expect("command");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        ensure_endpoint();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let prefix = format!("t{}", &id[..12]);
        let bucket = format!("cairn-t{}", &id[..12]);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut app = Self {
            base_url: String::new(),
            prefix,
            bucket,
            admin_key: String::new(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client"),
            options,
            port: 0,
            server: None,
            log_path: dir.path().join("serve.log"),
            commands_dir: dir.path().join("commands"),
            _dir: dir,
        };
        install_commands(&app.commands_dir);
        app.cli(&["init"]).expect("cairn init");
        let key = app
            .cli(&["keys", "create", "--name", "test admin", "--permissions", "all"])
            .expect("admin key");
        app.admin_key = key["key"].as_str().expect("key text").to_owned();
        app.start_server().await;
        app
    }

    /// The environment every Cairn process of this test gets.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("AWS_ENDPOINT_URL", ENDPOINT.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("CAIRN_TABLE_PREFIX", self.prefix.clone()),
            ("CAIRN_BUCKET", self.bucket.clone()),
            ("CAIRN_RATE_LIMIT_GET", self.options.rate_limit_get.to_string()),
            ("CAIRN_RATE_LIMIT_WRITE", self.options.rate_limit_write.to_string()),
            ("CAIRN_LEASE_SECONDS", self.options.lease_seconds.to_string()),
            ("CAIRN_SWEEP_SECONDS", self.options.sweep_seconds.to_string()),
            // The operator's policy for the tests' temporary directories.
            ("CAIRN_COMMANDS_DIR", self.commands_dir.display().to_string()),
            ("CAIRN_SOURCE_DIRS", std::env::temp_dir().display().to_string()),
            ("CAIRN_RESTORE_DIRS", std::env::temp_dir().display().to_string()),
            ("CAIRN_SECRETS_DIR", std::env::temp_dir().display().to_string()),
            ("RUST_LOG", "info".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        env.extend(self.options.extra_env.iter().cloned());
        env
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        for var in [
            "AWS_PROFILE",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "CAIRN_RUNNER_FUNCTION",
            "AWS_SESSION_TOKEN",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.env());
        cmd
    }

    /// Starts (or restarts) `cairn serve` and waits for it to answer.
    pub async fn start_server(&mut self) {
        self.port = free_port();
        self.base_url = format!("http://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("log file");
        let child = self
            .command(&binary("cairn"))
            .args(["serve", "--port", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start cairn serve");
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(format!("{}/api/health", self.base_url)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cairn serve did not come up; log:\n{}", self.server_log());
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill_server(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Runs `cairn ARGS` as a person would (text output), with this test's environment.
    pub fn cli_text(&self, args: &[&str]) -> std::process::Output {
        self.command(&binary("cairn")).args(args).output().expect("run cairn")
    }

    /// Runs `cairn --output json ARGS` and parses its one JSON document.
    pub fn cli(&self, args: &[&str]) -> Result<Value, String> {
        let out = self
            .command(&binary("cairn"))
            .arg("--output")
            .arg("json")
            .args(args)
            .output()
            .expect("run cairn");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let value: Value = serde_json::from_str(&stdout).map_err(|e| {
            format!(
                "cairn {args:?}: not one JSON document ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        if out.status.success() {
            Ok(value)
        } else {
            Err(value["error"].as_str().unwrap_or(&stdout).to_owned())
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A request with the admin key.
    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path)).bearer_auth(&self.admin_key)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.req(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut r = self.req(reqwest::Method::POST, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        send(r).await
    }

    pub async fn create_destination(&self, prefix: &str) -> String {
        let (status, body) = self
            .post(
                "/api/destinations",
                Some(json!({"name": "primary", "bucket": self.bucket, "prefix": prefix})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["data"]["id"].as_str().expect("destination id").to_owned()
    }

    /// Creates a job from `spec` (destinations filled in when absent).
    pub async fn create_job(&self, mut spec: Value) -> String {
        if spec.get("destinations").is_none() {
            let d = self.create_destination("backups").await;
            spec["destinations"] = json!([d]);
        }
        let (status, body) = self.post("/api/jobs", Some(spec)).await;
        assert_eq!(status, 201, "{body}");
        body["data"]["id"].as_str().expect("job id").to_owned()
    }

    pub async fn run_job(&self, job_id: &str) -> String {
        let (status, body) = self.post(&format!("/api/jobs/{job_id}/run"), None).await;
        assert_eq!(status, 200, "{body}");
        body["executionId"].as_str().expect("execution id").to_owned()
    }

    pub async fn execution(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/executions/{id}?includeLogs=true")).await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    /// Polls until the execution ends; panics after `timeout`.
    pub async fn wait_for_end(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let e = self.execution(id).await;
            if !matches!(e["status"].as_str(), Some("Pending" | "Running")) {
                // moto applies an UpdateItem's SET actions one at a time, so a read can
                // catch the end half written (status set, error not yet); real DynamoDB
                // is atomic. A second read shortly after sees the whole write.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return self.execution(id).await;
            }
            assert!(
                Instant::now() < deadline,
                "execution {id} did not end in {timeout:?}: {e:#}\nserver log:\n{}",
                self.server_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until `pred` holds for the execution.
    pub async fn wait_until(&self, id: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let e = self.execution(id).await;
            if pred(&e) {
                return e;
            }
            assert!(Instant::now() < deadline, "execution {id} never reached the state: {e:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(ENDPOINT)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests"))
            .load()
            .await;
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&conf).force_path_style(true).build())
    }

    /// The slots taken in the control table: 0 once every execution ended.
    pub async fn running_slots(&self) -> i64 {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(ENDPOINT)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests"))
            .load()
            .await;
        let item = aws_sdk_dynamodb::Client::new(&conf)
            .get_item()
            .table_name(format!("{}-control", self.prefix))
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("slots".into()))
            .consistent_read(true)
            .send()
            .await
            .expect("read the slot counter");
        item.item()
            .and_then(|i| i.get("running"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// Every object key under `prefix` in the test's bucket.
    pub async fn object_keys(&self, prefix: &str) -> Vec<String> {
        let out = self
            .s3()
            .await
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .send()
            .await
            .expect("list objects");
        out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
    }

    pub async fn object_bytes(&self, key: &str) -> Vec<u8> {
        let got = self
            .s3()
            .await
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .expect("get object");
        got.body.collect().await.expect("body").into_bytes().to_vec()
    }

    /// Writes an object into the test bucket directly (to damage or seed it).
    pub async fn put_object(&self, key: &str, bytes: Vec<u8>) {
        self.s3()
            .await
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(bytes.into())
            .send()
            .await
            .expect("put object");
    }
}

/// Sends and parses a JSON response.
pub async fn send(r: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = r.send().await.expect("request");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, body)
}

/// The key of an object inside an s3:// path of the test bucket.
pub fn key_of(path: &str, bucket: &str) -> String {
    path.trim_start_matches("s3://")
        .trim_start_matches(bucket)
        .trim_start_matches('/')
        .to_owned()
}

/// Runs `program args` and returns stdout; panics with stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `bench-s3` (an S3 endpoint that keeps objects in memory and implements no bucket
/// settings, like s3s-fs) on a free port with `flags`, answering once it is up; killed
/// with the returned child.
/// s3s-fs 0.14.1, a third-party S3 server keeping objects as files under `root`, on a free
/// port; answers it and its endpoint. `scripts/install-test-deps.sh` builds it into
/// `.tools/s3s-fs` (`CAIRN_S3S_FS` names another binary).
pub async fn spawn_s3s_fs(root: &std::path::Path) -> (Child, String) {
    let binary = std::env::var("CAIRN_S3S_FS").unwrap_or_else(|_| format!("{}/../.tools/s3s-fs/bin/s3s-fs", env!("CARGO_MANIFEST_DIR")));
    let port = free_port();
    let mut child = Command::new(&binary)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            "test",
            "--secret-key",
            "test",
        ])
        .arg(root)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary} ({e}): scripts/install-test-deps.sh builds it"));
    let endpoint = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{endpoint}/")).await.is_ok() {
            return (child, endpoint);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("s3s-fs did not come up on {endpoint}");
}

pub async fn spawn_bench_s3(flags: &[&str]) -> (Child, String) {
    let port = free_port();
    let mut child = Command::new(binary("bench-s3"))
        .arg("--port")
        .arg(port.to_string())
        .args(flags)
        .spawn()
        .expect("start bench-s3");
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if http.get(format!("{endpoint}/")).send().await.is_ok() {
            return (child, endpoint);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("bench-s3 did not come up on {endpoint}");
}
