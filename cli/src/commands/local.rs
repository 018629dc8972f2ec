//! Local use: `cairn init`, `cairn serve` and `cairn dev`, and the timers that stand in
//! for template.yaml's EventBridge rules.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use cairn_shared::adapters::tables;
use cairn_shared::domain::Permission;
use cairn_shared::error::StoreError;
use cairn_shared::ports::Dispatcher;
use cairn_shared::wiring::App;
use serde_json::json;

use super::service_err;
use crate::output::Output;

/// Creates the tables and the default bucket, idempotently.
pub async fn init(app: &App, out: Output) -> anyhow::Result<()> {
    let created = tables::create_tables(&app.clients.dynamodb, &app.config.table_prefix).await?;
    let bucket = tables::create_bucket(&app.clients.s3, &app.config.bucket).await?;
    let unsupported: Vec<_> = bucket
        .unsupported
        .iter()
        .map(|(setting, answer)| json!({"setting": setting, "answer": answer}))
        .collect();
    let v = json!({
        "tablesCreated": created, "tablePrefix": app.config.table_prefix,
        "bucket": app.config.bucket, "bucketCreated": bucket.created,
        "bucketSettingsApplied": bucket.applied, "bucketSettingsUnsupported": unsupported,
    });
    out.emit(&v, || {
        let mut text = format!(
            "tables ready (prefix '{}', {} created); bucket '{}' {}",
            app.config.table_prefix,
            created.len(),
            app.config.bucket,
            if bucket.created { "created" } else { "ready (left as it was)" }
        );
        if !bucket.applied.is_empty() {
            text.push_str(&format!("\napplied: {}", bucket.applied.join(", ")));
        }
        text
    });
    warn_unsupported(&bucket);
    Ok(())
}

/// One warning per bucket setting the store does not implement.
fn warn_unsupported(bucket: &tables::BucketSetup) {
    for (setting, answer) in &bucket.unsupported {
        eprintln!("warning: the store does not implement the bucket's {setting} ({answer}); backups work without it, set it by other means if you need it");
    }
}

/// Serves the whole API on `host:port`, with the runner in-process.
pub async fn serve(app: App, host: &str, port: u16) -> anyhow::Result<()> {
    let app = Arc::new(app);
    let listener = bind(host, port).await?;
    print_policy(&app);
    start_background_timers(&app);
    crate::serve::serve(app, listener).await
}

/// The local endpoint (started if nothing answers), tables, bucket, an admin key, and
/// the API on 127.0.0.1.
pub async fn dev(app: App, port: u16) -> anyhow::Result<()> {
    tables::create_tables(&app.clients.dynamodb, &app.config.table_prefix).await?;
    warn_unsupported(&tables::create_bucket(&app.clients.s3, &app.config.bucket).await?);
    let key = app
        .service
        .create_key("dev admin".into(), Permission::ALL.to_vec(), None, None)
        .await
        .map_err(service_err)?;
    let listener = bind("127.0.0.1", port).await?;
    eprintln!(
        "Cairn dev server on http://127.0.0.1:{port} (AWS endpoint {}); web console: http://127.0.0.1:{port}/",
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
    );
    print_policy(&app);
    eprintln!("For the CLI in another shell:");
    for var in [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "CAIRN_TABLE_PREFIX",
        "CAIRN_BUCKET",
    ] {
        if let Ok(value) = std::env::var(var) {
            eprintln!("  export {var}={value}");
        }
    }
    eprintln!("Admin key (all permissions), shown once:");
    println!("{}", key.secret);
    let app = Arc::new(app);
    start_background_timers(&app);
    crate::serve::serve(app, listener).await
}

/// Points the SDK at the local endpoint unless told otherwise. Called before any thread
/// exists.
pub fn dev_environment() {
    // One port for both: AWS_ENDPOINT_URL when set, else CAIRN_LOCAL_PORT (start.sh's), else 4566.
    let port = std::env::var("CAIRN_LOCAL_PORT").unwrap_or_else(|_| "4566".into());
    let endpoint = format!("http://127.0.0.1:{port}");
    let defaults = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    for (k, v) in defaults {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
    // The operator's policy, where unset: sources and restores under the directory `cairn
    // dev` was started in, commands from ./commands when it exists.
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut policy = vec![("CAIRN_SOURCE_DIRS", here.clone()), ("CAIRN_RESTORE_DIRS", here.clone())];
    if here.join("commands").is_dir() {
        policy.push(("CAIRN_COMMANDS_DIR", here.join("commands")));
    }
    for (k, v) in policy {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
}

/// The policy a server runs with, for the operator to see.
fn print_policy(app: &App) {
    eprintln!("Policy (what API keys may choose among; set these variables to change it):");
    for (name, value) in app.config.policy.describe() {
        eprintln!("  {name}={value}");
    }
    eprintln!("  CAIRN_HOOKS_DIR={}", app.config.hooks_dir.display());
}

async fn bind(host: &str, port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port} (is another server running there?)"))
}

/// Leaves a queued execution for a runner that outlives this command: the CLI's own
/// process ends as soon as it has printed, and a run it started in-process would die with
/// it. A `cairn serve` on the same tables takes it within `CAIRN_QUEUE_POLL_SECONDS`.
pub struct LeaveQueued;

#[async_trait::async_trait]
impl Dispatcher for LeaveQueued {
    async fn dispatch(&self, _execution_id: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Under `cairn serve`, the EventBridge rules of template.yaml are timers: the sweep
/// (`CAIRN_SWEEP_SECONDS`, default 60) and the schedule tick (`CAIRN_TICK_SECONDS`,
/// default 60). With the runner in this process, a third one watches the queue
/// (`CAIRN_QUEUE_POLL_SECONDS`, default 2), so work queued by another process (`cairn jobs
/// run`) starts at once.
fn start_background_timers(app: &Arc<App>) {
    // Only where this process is the runner: with CAIRN_RUNNER_FUNCTION set, the runner
    // Lambda performs the work and this server only dispatches.
    if app.config.runner_function.is_none() {
        let runner = app.runner.clone();
        every("CAIRN_QUEUE_POLL_SECONDS", 2, move || {
            let runner = runner.clone();
            async move { runner.drain(None, None).await }
        });
    }
    let runner = app.runner.clone();
    every("CAIRN_SWEEP_SECONDS", 60, move || {
        let runner = runner.clone();
        async move { runner.sweep(None).await }
    });
    let service = app.service.clone();
    every("CAIRN_TICK_SECONDS", 60, move || {
        let service = service.clone();
        async move {
            if let Err(e) = service.schedule_tick(cairn_shared::time::now()).await {
                tracing::error!(error = %e, "schedule tick failed");
            }
        }
    });
}

/// Runs `task` now and then every `$var` seconds (`default` when unset or not a positive
/// number), each run after the last has finished.
fn every<F, Fut>(var: &str, default: u64, task: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let seconds = std::env::var(var)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(default);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(seconds));
        loop {
            tick.tick().await;
            task().await;
        }
    });
}

/// Starts the project's local endpoint (localstack/start.sh) when nothing answers on
/// AWS_ENDPOINT_URL, on that URL's port.
pub fn ensure_local_endpoint() -> anyhow::Result<()> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    let hostport = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    if std::net::TcpStream::connect(hostport).is_ok() {
        return Ok(());
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../localstack/start.sh");
    if !script.exists() {
        bail!(
            "nothing answers on {endpoint} and {} is missing; start an S3/DynamoDB endpoint there",
            script.display()
        );
    }
    eprintln!("starting the local AWS endpoint with {}", script.display());
    let port = hostport.rsplit(':').next().filter(|p| p.parse::<u16>().is_ok()).unwrap_or("4566");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .env("CAIRN_SKIP_INIT", "1")
        .env("CAIRN_LOCAL_PORT", port)
        .status()?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(())
}
