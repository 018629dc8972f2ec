//! `cairn`: the operator CLI. It talks to DynamoDB and S3 with the operator's AWS
//! credentials (no API key needed), and serves the API locally (`cairn serve`, `cairn dev`).

mod serve;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use cairn_shared::adapters::tables;
use cairn_shared::config::Config;
use cairn_shared::error::ApiError;
use cairn_shared::model::key::parse_duration_seconds;
use cairn_shared::model::RestoreRequest;
use cairn_shared::model::{parse_json_body, ApiKey, DestinationSpec, ExecutionStatus, HookSpec, JobSpec, Permission, Trigger};
use cairn_shared::store::{DestinationRepository, ExecutionQuery, ExecutionStore, JobRepository};
use cairn_shared::wiring::App;
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

#[derive(Debug, Parser)]
#[command(name = "cairn", version, about = "Cairn: serverless backup orchestration")]
struct Cli {
    /// Output format: human-readable text, or one JSON document.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the tables and the default bucket (idempotent).
    Init,
    /// API keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Backup jobs.
    #[command(subcommand)]
    Jobs(JobsCmd),
    /// S3 destinations.
    #[command(subcommand)]
    Destinations(DestinationsCmd),
    /// Hooks run before and after tasks.
    #[command(subcommand)]
    Hooks(HooksCmd),
    /// Executions (runs of jobs).
    #[command(subcommand)]
    Executions(ExecutionsCmd),
    /// System settings.
    #[command(subcommand)]
    Settings(SettingsCmd),
    /// Stored backups.
    #[command(subcommand)]
    Backups(BackupsCmd),
    /// Schedules.
    #[command(subcommand)]
    Schedule(ScheduleCmd),
    /// Serve the whole HTTP API locally, routed as template.yaml routes it.
    Serve {
        #[arg(long, default_value_t = 3000)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
    },
    /// Bring up the local AWS endpoint if needed, create resources and an admin key, and serve.
    Dev {
        #[arg(long, default_value_t = 3000)]
        port: u16,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Create a key; it is printed once and never stored.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated permissions, or `all`.
        #[arg(long)]
        permissions: String,
        /// Lifetime such as 30d, 12h, 90m.
        #[arg(long)]
        expires_in: Option<String>,
    },
    List,
    Enable {
        id: String,
    },
    Disable {
        id: String,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum JobsCmd {
    /// Create a job from a JSON file (`-` for standard input).
    Create {
        #[arg(long)]
        file: PathBuf,
    },
    List,
    Show {
        id: String,
    },
    /// Replace a job's definition from a JSON file.
    Update {
        id: String,
        #[arg(long)]
        file: PathBuf,
    },
    Delete {
        id: String,
    },
    Enable {
        id: String,
    },
    Disable {
        id: String,
    },
    /// Queue a run of the job now.
    Run {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum HooksCmd {
    /// Create a hook from flags, or from a JSON file with --file.
    Create {
        #[arg(long, conflicts_with_all = ["name", "position", "hook_type", "script"])]
        file: Option<PathBuf>,
        #[arg(long)]
        name: Option<String>,
        /// pre or post
        #[arg(long)]
        position: Option<String>,
        /// backup, backup_item, clone, clone_item, restore, download
        #[arg(long = "type")]
        hook_type: Option<String>,
        /// An executable under CAIRN_HOOKS_DIR, or "INTERPRETER SCRIPT".
        #[arg(long)]
        script: Option<String>,
        #[arg(long)]
        timeout: Option<u64>,
        /// fail or continue
        #[arg(long)]
        on_error: Option<String>,
        /// Comma-separated job ids (default: every job).
        #[arg(long)]
        jobs: Option<String>,
        #[arg(long)]
        disabled: bool,
    },
    List,
    Show {
        id: String,
    },
    /// Replace a hook's definition from a JSON file.
    Update {
        id: String,
        #[arg(long)]
        file: PathBuf,
    },
    Enable {
        id: String,
    },
    Disable {
        id: String,
    },
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum DestinationsCmd {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        bucket: String,
        #[arg(long, default_value = "")]
        prefix: String,
        #[arg(long)]
        endpoint: Option<String>,
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        storage_class: Option<String>,
    },
    List,
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ExecutionsCmd {
    Show {
        id: String,
        #[arg(long)]
        logs: bool,
    },
    List {
        #[arg(long)]
        job: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    Cancel {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum BackupsCmd {
    /// Re-read a backup: every object's SHA-256 and size against its manifest, and the
    /// contents of every archive.
    Verify { execution_id: String },
    /// Queue a restore of a backup: a JSON request from --file, or one directory target.
    Restore {
        execution_id: String,
        #[arg(long, conflicts_with_all = ["to_dir", "item"])]
        file: Option<PathBuf>,
        /// Restore into this directory (each item into a subdirectory named after it when
        /// the backup has several).
        #[arg(long)]
        to_dir: Option<String>,
        /// Only this item.
        #[arg(long)]
        item: Option<String>,
        #[arg(long)]
        overwrite: bool,
    },
    /// Presigned URLs for a backup's objects and manifest.
    Download {
        execution_id: String,
        #[arg(long, default_value_t = 900)]
        expires_in: u64,
    },
}

#[derive(Debug, Subcommand)]
enum ScheduleCmd {
    /// Run one schedule tick now (or as if at --at, an ISO 8601 time): what the
    /// EventBridge rule does every minute.
    Tick {
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SettingsCmd {
    Show,
    /// `cairn settings set max-concurrent-jobs N`
    Set {
        name: SettingName,
        value: u32,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SettingName {
    MaxConcurrentJobs,
}

fn main() {
    let cli = Cli::parse();
    if let Command::Dev { .. } = cli.command {
        // Before any thread exists: point the SDK at the local endpoint unless told otherwise.
        dev_environment();
    }
    cairn_shared::telemetry::init();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let output = cli.output;
    if let Err(e) = runtime.block_on(run(cli)) {
        if output == Output::Json {
            println!("{}", json!({"success": false, "error": format!("{e:#}")}));
        } else {
            eprintln!("error: {e:#}");
        }
        std::process::exit(1);
    }
}

fn dev_environment() {
    let defaults = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ];
    for (k, v) in defaults {
        if std::env::var_os(k).is_none() {
            std::env::set_var(k, v);
        }
    }
}

/// Prints `value` as JSON, or `text` for humans.
fn emit(output: Output, value: &Value, text: impl FnOnce() -> String) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
        Output::Text => println!("{}", text()),
    }
}

fn api_err(e: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn read_input(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    }
}

fn key_line(k: &ApiKey) -> String {
    let perms: Vec<&str> = k.permissions.iter().map(|p| p.as_str()).collect();
    format!(
        "{}  {}  {}  [{}]{}",
        k.id,
        k.name,
        if k.enabled { "enabled" } else { "disabled" },
        perms.join(","),
        k.expires_at.as_deref().map(|e| format!("  expires {e}")).unwrap_or_default()
    )
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env().context("configuration")?;
    let out = cli.output;
    match cli.command {
        Command::Init => {
            let app = App::build(config).await;
            let created = tables::create_tables(&app.clients.dynamodb, &app.config.table_prefix).await?;
            let bucket_created = tables::create_bucket(&app.clients.s3, &app.config.bucket).await?;
            let v = json!({"tablesCreated": created, "bucket": app.config.bucket, "bucketCreated": bucket_created, "tablePrefix": app.config.table_prefix});
            emit(out, &v, || {
                format!(
                    "tables ready (prefix '{}', {} created); bucket '{}' ready",
                    app.config.table_prefix,
                    created.len(),
                    app.config.bucket
                )
            });
        }
        Command::Keys(cmd) => {
            let app = App::build(config).await;
            let svc = &app.service;
            match cmd {
                KeysCmd::Create {
                    name,
                    permissions,
                    expires_in,
                } => {
                    let perms = Permission::parse_list(&permissions).map_err(|e| api_err(e.into()))?;
                    let expires = expires_in
                        .as_deref()
                        .map(parse_duration_seconds)
                        .transpose()
                        .map_err(|e| api_err(e.into()))?;
                    let k = svc.create_key(name, perms, expires).await.map_err(api_err)?;
                    let v = json!({"id": k.stored.id, "key": k.secret, "name": k.stored.name, "permissions": k.stored.permissions, "expiresAt": k.stored.expires_at});
                    emit(out, &v, || {
                        format!(
                            "Created key {} ('{}'). Store it now; it is not shown again:\n{}",
                            k.stored.id, k.stored.name, k.secret
                        )
                    });
                }
                KeysCmd::List => {
                    let keys = svc.list_keys().await.map_err(api_err)?;
                    let v = Value::Array(keys.iter().map(ApiKey::to_api).collect());
                    emit(out, &v, || keys.iter().map(key_line).collect::<Vec<_>>().join("\n"));
                }
                KeysCmd::Enable { id } => {
                    let k = svc.set_key_enabled(&id, true).await.map_err(api_err)?;
                    emit(out, &k.to_api(), || key_line(&k));
                }
                KeysCmd::Disable { id } => {
                    let k = svc.set_key_enabled(&id, false).await.map_err(api_err)?;
                    emit(out, &k.to_api(), || key_line(&k));
                }
                KeysCmd::Delete { id } => {
                    svc.delete_key(&id).await.map_err(api_err)?;
                    emit(out, &json!({"deleted": id}), || format!("deleted key {id}"));
                }
            }
        }
        Command::Jobs(cmd) => {
            let app = App::build(config).await;
            let svc = &app.service;
            let job_text =
                |j: &cairn_shared::model::Job| format!("{}  {}  {}", j.id, j.name, if j.enabled { "enabled" } else { "disabled" });
            match cmd {
                JobsCmd::Create { file } => {
                    let spec: JobSpec = parse_json_body(&read_input(&file)?).map_err(api_err)?;
                    let j = svc.create_job(spec).await.map_err(api_err)?;
                    emit(out, &serde_json::to_value(&j)?, || format!("created job {}", job_text(&j)));
                }
                JobsCmd::List => {
                    let jobs = svc.list_jobs().await.map_err(api_err)?;
                    emit(out, &serde_json::to_value(&jobs)?, || {
                        jobs.iter().map(job_text).collect::<Vec<_>>().join("\n")
                    });
                }
                JobsCmd::Show { id } => {
                    let j = svc.get_job(&id).await.map_err(api_err)?;
                    let v = serde_json::to_value(&j)?;
                    emit(out, &v, || serde_json::to_string_pretty(&v).unwrap_or_default());
                }
                JobsCmd::Update { id, file } => {
                    let spec: JobSpec = parse_json_body(&read_input(&file)?).map_err(api_err)?;
                    let j = svc.update_job(&id, spec).await.map_err(api_err)?;
                    emit(out, &serde_json::to_value(&j)?, || format!("updated job {}", job_text(&j)));
                }
                JobsCmd::Delete { id } => {
                    svc.delete_job(&id).await.map_err(api_err)?;
                    emit(out, &json!({"deleted": id}), || format!("deleted job {id}"));
                }
                JobsCmd::Enable { id } => {
                    let j = svc.set_job_enabled(&id, true).await.map_err(api_err)?;
                    emit(out, &serde_json::to_value(&j)?, || job_text(&j));
                }
                JobsCmd::Disable { id } => {
                    let j = svc.set_job_enabled(&id, false).await.map_err(api_err)?;
                    emit(out, &serde_json::to_value(&j)?, || job_text(&j));
                }
                JobsCmd::Run { id } => {
                    let t = svc.run_job(&id, Trigger::Cli, None).await.map_err(api_err)?;
                    emit(out, &json!({"executionId": t.execution_id}), || {
                        format!("queued execution {}", t.execution_id)
                    });
                }
            }
        }
        Command::Hooks(cmd) => {
            let app = App::build(config).await;
            let svc = &app.service;
            let hook_text = |h: &cairn_shared::model::Hook| {
                format!(
                    "{}  {}  {} {}  {}  {}",
                    h.id,
                    h.name,
                    serde_json::to_value(h.position).unwrap_or_default().as_str().unwrap_or(""),
                    h.hook_type.as_str(),
                    h.script,
                    if h.enabled { "enabled" } else { "disabled" }
                )
            };
            match cmd {
                HooksCmd::Create {
                    file,
                    name,
                    position,
                    hook_type,
                    script,
                    timeout,
                    on_error,
                    jobs,
                    disabled,
                } => {
                    let body = match file {
                        Some(f) => read_input(&f)?,
                        None => {
                            let mut v = json!({
                                "name": name.ok_or_else(|| anyhow::anyhow!("--name is required"))?,
                                "position": position.ok_or_else(|| anyhow::anyhow!("--position is required (pre or post)"))?,
                                "type": hook_type.ok_or_else(|| anyhow::anyhow!("--type is required"))?,
                                "script": script.ok_or_else(|| anyhow::anyhow!("--script is required"))?,
                                "enabled": !disabled,
                            });
                            if let Some(t) = timeout {
                                v["timeout"] = json!(t);
                            }
                            if let Some(o) = on_error {
                                v["onError"] = json!(o);
                            }
                            if let Some(j) = jobs {
                                v["jobs"] = json!(j.split(',').map(str::trim).filter(|s| !s.is_empty()).collect::<Vec<_>>());
                            }
                            serde_json::to_vec(&v)?
                        }
                    };
                    let spec: HookSpec = parse_json_body(&body).map_err(api_err)?;
                    let h = svc.create_hook(spec).await.map_err(api_err)?;
                    emit(out, &serde_json::to_value(&h)?, || format!("created hook {}", hook_text(&h)));
                }
                HooksCmd::List => {
                    let hooks = svc.list_hooks().await.map_err(api_err)?;
                    emit(out, &serde_json::to_value(&hooks)?, || {
                        hooks.iter().map(hook_text).collect::<Vec<_>>().join("\n")
                    });
                }
                HooksCmd::Show { id } => {
                    let v = serde_json::to_value(svc.get_hook(&id).await.map_err(api_err)?)?;
                    emit(out, &v, || serde_json::to_string_pretty(&v).unwrap_or_default());
                }
                HooksCmd::Update { id, file } => {
                    let spec: HookSpec = parse_json_body(&read_input(&file)?).map_err(api_err)?;
                    let h = svc.update_hook(&id, spec).await.map_err(api_err)?;
                    emit(out, &serde_json::to_value(&h)?, || format!("updated hook {}", hook_text(&h)));
                }
                HooksCmd::Enable { id } => {
                    let h = svc.set_hook_enabled(&id, true).await.map_err(api_err)?;
                    emit(out, &serde_json::to_value(&h)?, || hook_text(&h));
                }
                HooksCmd::Disable { id } => {
                    let h = svc.set_hook_enabled(&id, false).await.map_err(api_err)?;
                    emit(out, &serde_json::to_value(&h)?, || hook_text(&h));
                }
                HooksCmd::Delete { id } => {
                    svc.delete_hook(&id).await.map_err(api_err)?;
                    emit(out, &json!({"deleted": id}), || format!("deleted hook {id}"));
                }
            }
        }
        Command::Destinations(cmd) => {
            let app = App::build(config).await;
            let svc = &app.service;
            match cmd {
                DestinationsCmd::Create {
                    name,
                    bucket,
                    prefix,
                    endpoint,
                    region,
                    storage_class,
                } => {
                    let d = svc
                        .create_destination(DestinationSpec {
                            name,
                            bucket,
                            prefix,
                            endpoint,
                            region,
                            storage_class,
                        })
                        .await
                        .map_err(api_err)?;
                    emit(out, &serde_json::to_value(&d)?, || {
                        format!("created destination {}  {}  s3://{}/{}", d.id, d.name, d.bucket, d.prefix)
                    });
                }
                DestinationsCmd::List => {
                    let all = svc.list_destinations().await.map_err(api_err)?;
                    emit(out, &serde_json::to_value(&all)?, || {
                        all.iter()
                            .map(|d| format!("{}  {}  s3://{}/{}", d.id, d.name, d.bucket, d.prefix))
                            .collect::<Vec<_>>()
                            .join("\n")
                    });
                }
                DestinationsCmd::Delete { id } => {
                    svc.delete_destination(&id).await.map_err(api_err)?;
                    emit(out, &json!({"deleted": id}), || format!("deleted destination {id}"));
                }
            }
        }
        Command::Executions(cmd) => {
            let app = App::build(config).await;
            let svc = &app.service;
            match cmd {
                ExecutionsCmd::Show { id, logs } => {
                    let v = svc.get_execution(&id, logs).await.map_err(api_err)?;
                    emit(out, &v, || serde_json::to_string_pretty(&v).unwrap_or_default());
                }
                ExecutionsCmd::List { job, status, limit } => {
                    let status = status
                        .map(|s| ExecutionStatus::parse(&s).ok_or_else(|| anyhow::anyhow!("unknown status '{s}'")))
                        .transpose()?;
                    let page = svc
                        .list_executions(&ExecutionQuery {
                            job_id: job,
                            status,
                            limit,
                            cursor: None,
                        })
                        .await
                        .map_err(api_err)?;
                    let v: Vec<Value> = page.executions.iter().map(|e| e.to_api()).collect();
                    emit(out, &Value::Array(v), || {
                        page.executions
                            .iter()
                            .map(|e| format!("{}  {}  {}  {}%  {}", e.id, e.job_name, e.status.as_str(), e.progress, e.queued_at))
                            .collect::<Vec<_>>()
                            .join("\n")
                    });
                }
                ExecutionsCmd::Cancel { id } => {
                    let e = svc.cancel_execution(&id).await.map_err(api_err)?;
                    emit(out, &e.to_api(), || {
                        format!(
                            "{}: {}",
                            e.id,
                            if e.status == ExecutionStatus::Cancelled {
                                "cancelled"
                            } else {
                                "cancel requested"
                            }
                        )
                    });
                }
            }
        }
        Command::Settings(cmd) => {
            let app = App::build(config).await;
            let svc = &app.service;
            let s = match cmd {
                SettingsCmd::Show => svc.settings().await.map_err(api_err)?,
                SettingsCmd::Set {
                    name: SettingName::MaxConcurrentJobs,
                    value,
                } => svc.set_max_concurrent_jobs(value).await.map_err(api_err)?,
            };
            emit(out, &serde_json::to_value(s)?, || {
                format!("max-concurrent-jobs = {}", s.max_concurrent_jobs)
            });
        }
        Command::Backups(BackupsCmd::Verify { execution_id }) => {
            let app = App::build(config).await;
            let report = verify(&app, &execution_id).await?;
            let failed: Vec<String> = report["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["ok"] != true)
                .map(|i| format!("item '{}': {}", i["name"].as_str().unwrap_or(""), i["error"].as_str().unwrap_or("")))
                .collect();
            if !failed.is_empty() {
                bail!("backup {execution_id} failed verification: {}", failed.join("; "));
            }
            emit(out, &report, || {
                let mut lines = vec![format!("backup {execution_id}: every object matches its manifest")];
                for i in report["items"].as_array().into_iter().flatten() {
                    lines.push(format!(
                        "  {}  {} bytes  sha256 {}  {} entries",
                        i["name"].as_str().unwrap_or(""),
                        i["bytes"],
                        i["sha256"].as_str().unwrap_or(""),
                        i["entries"].as_array().map_or(0, Vec::len)
                    ));
                }
                lines.join("\n")
            });
        }
        Command::Backups(BackupsCmd::Restore {
            execution_id,
            file,
            to_dir,
            item,
            overwrite,
        }) => {
            let app = App::build(config).await;
            let body = match (file, to_dir) {
                (Some(f), _) => read_input(&f)?,
                (None, Some(dir)) => {
                    let target = json!({"kind": "directory", "path": dir, "overwrite": overwrite});
                    match item {
                        Some(name) => serde_json::to_vec(&json!({"items": [{"name": name, "target": target}]}))?,
                        None => serde_json::to_vec(&json!({"target": target}))?,
                    }
                }
                (None, None) => bail!("give --file REQUEST.json or --to-dir DIRECTORY"),
            };
            let request: RestoreRequest = parse_json_body(&body).map_err(api_err)?;
            let t = app
                .service
                .start_restore(&execution_id, request, Trigger::Cli)
                .await
                .map_err(api_err)?;
            emit(out, &json!({"executionId": t.execution_id}), || {
                format!("queued restore {}", t.execution_id)
            });
        }
        Command::Backups(BackupsCmd::Download { execution_id, expires_in }) => {
            let app = App::build(config).await;
            let request = cairn_shared::api::service::DownloadRequest {
                items: None,
                expires_in: Some(expires_in),
            };
            let v = app.service.download(&execution_id, request, Trigger::Cli).await.map_err(api_err)?;
            emit(out, &v, || {
                v["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| format!("{}  {}", i["item"].as_str().unwrap_or(""), i["url"].as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        Command::Schedule(ScheduleCmd::Tick { at }) => {
            let app = App::build(config).await;
            let now = match at {
                Some(a) => cairn_shared::time::parse_iso(&a)
                    .ok_or_else(|| anyhow::anyhow!("--at must be an ISO 8601 time such as 2026-01-15T03:00:00Z"))?,
                None => cairn_shared::time::now(),
            };
            let started = app.service.schedule_tick(now).await.map_err(api_err)?;
            emit(out, &json!({"started": started}), || {
                format!("{} scheduled run(s) started", started.len())
            });
        }
        Command::Serve { port, host } => {
            let app = Arc::new(App::build(config).await);
            let listener = bind(&host, port).await?;
            start_background_timers(&app);
            serve::serve(app, listener).await?;
        }
        Command::Dev { port } => {
            ensure_local_endpoint()?;
            let app = Arc::new(App::build(config).await);
            tables::create_tables(&app.clients.dynamodb, &app.config.table_prefix).await?;
            tables::create_bucket(&app.clients.s3, &app.config.bucket).await?;
            let key = app
                .service
                .create_key("dev admin".into(), Permission::ALL.to_vec(), None)
                .await
                .map_err(api_err)?;
            let listener = bind("127.0.0.1", port).await?;
            eprintln!(
                "Cairn dev server on http://127.0.0.1:{port} (AWS endpoint {})",
                std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
            );
            eprintln!("Admin key (all permissions), shown once:");
            println!("{}", key.secret);
            start_background_timers(&app);
            serve::serve(app, listener).await?;
        }
    }
    Ok(())
}

/// Verifies the backup an execution made, from the location it recorded.
async fn verify(app: &App, execution_id: &str) -> anyhow::Result<Value> {
    let e = app
        .store
        .get_execution(execution_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("Execution not found"))?;
    let path = e
        .path
        .clone()
        .ok_or_else(|| anyhow::anyhow!("execution {execution_id} stored no backup (status {})", e.status.as_str()))?;
    let rest = path
        .strip_prefix("s3://")
        .ok_or_else(|| anyhow::anyhow!("unexpected backup path {path}"))?;
    let (bucket, folder) = rest
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("unexpected backup path {path}"))?;
    let destination = match app.store.get_job(&e.job_id).await? {
        Some(job) => match job.destinations.first() {
            Some(d) => app.store.get_destination(d).await?.filter(|d| d.bucket == bucket),
            None => None,
        },
        None => None,
    };
    let s3 = destination.map_or_else(
        || app.clients.s3.clone(),
        |d| app.clients.s3_for(d.endpoint.as_deref(), d.region.as_deref()),
    );
    let (manifest, checks) = cairn_shared::engine::verify::verify_backup(&s3, bucket, folder.trim_end_matches('/')).await?;
    Ok(json!({
        "executionId": execution_id,
        "ok": checks.iter().all(|c| c.ok),
        "manifestStatus": manifest.status,
        "items": checks,
    }))
}

async fn bind(host: &str, port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port} (is another server running there?)"))
}

/// Under `cairn serve`, the EventBridge rules of template.yaml are timers: the sweep
/// (`CAIRN_SWEEP_SECONDS`, default 60) and the schedule tick (`CAIRN_TICK_SECONDS`,
/// default 60).
fn start_background_timers(app: &Arc<App>) {
    let seconds = |var: &str| {
        std::env::var(var)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|s| *s > 0)
            .unwrap_or(60)
    };
    let runner = app.runner.clone();
    let every = std::time::Duration::from_secs(seconds("CAIRN_SWEEP_SECONDS"));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            runner.sweep().await;
        }
    });
    let service = app.service.clone();
    let every = std::time::Duration::from_secs(seconds("CAIRN_TICK_SECONDS"));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = service.schedule_tick(cairn_shared::time::now()).await {
                tracing::error!(error = %e, "schedule tick failed");
            }
        }
    });
}

/// Starts the project's local endpoint (localstack/start.sh) when nothing answers on
/// AWS_ENDPOINT_URL.
fn ensure_local_endpoint() -> anyhow::Result<()> {
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
    let status = std::process::Command::new("bash")
        .arg(&script)
        .env("CAIRN_SKIP_INIT", "1")
        .status()?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(())
}
