//! `cairn`: the operator CLI. It talks to DynamoDB and S3 with the operator's AWS
//! credentials (no API key needed), and serves the API locally (`cairn serve`, `cairn dev`).
//!
//! # Layout
//! - `commands/`: one module per command group, with its subcommands.
//! - `output`: tables for people, one JSON document with `--output json`.
//! - `serve`: the local HTTP server, routed as template.yaml routes API Gateway.

mod commands;
mod output;
mod serve;

use anyhow::Context;
use cairn_shared::config::Config;
use cairn_shared::wiring::App;
use clap::{Parser, Subcommand};

use commands::{backups, destinations, executions, hooks, jobs, keys, local, schedule, settings};
use output::Output;

#[derive(Debug, Parser)]
#[command(name = "cairn", version, about = "Cairn: serverless backup orchestration")]
struct Cli {
    /// Output format: human-readable text, or one JSON document.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the tables and the default bucket (idempotent).
    Init,
    /// API keys.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// Backup jobs.
    #[command(subcommand)]
    Jobs(jobs::JobsCmd),
    /// S3 destinations.
    #[command(subcommand)]
    Destinations(destinations::DestinationsCmd),
    /// Hooks run before and after tasks.
    #[command(subcommand)]
    Hooks(hooks::HooksCmd),
    /// Executions (runs of jobs).
    #[command(subcommand)]
    Executions(executions::ExecutionsCmd),
    /// System settings.
    #[command(subcommand)]
    Settings(settings::SettingsCmd),
    /// Stored backups.
    #[command(subcommand)]
    Backups(backups::BackupsCmd),
    /// Schedules.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCmd),
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

fn main() {
    let cli = Cli::parse();
    if let Command::Dev { .. } = cli.command {
        // Before any thread exists: point the SDK at the local endpoint unless told otherwise.
        local::dev_environment();
    }
    match cli.command {
        Command::Serve { .. } | Command::Dev { .. } => cairn_shared::telemetry::init(),
        _ => cairn_shared::telemetry::init_with_default("warn,aws_config=off,aws_smithy_runtime=off"),
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let output = cli.output;
    match runtime.block_on(run(cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            output.error(&e);
            std::process::exit(1);
        }
    }
}

/// Whether this command is a server, whose runner performs what it queues. Other commands
/// leave queued work to a runner that outlives them (`jobs run --wait` performs its own
/// execution and nothing else).
fn is_server(command: &Command) -> bool {
    matches!(command, Command::Serve { .. } | Command::Dev { .. })
}

/// Runs the command; answers the process's exit code.
async fn run(cli: Cli) -> anyhow::Result<i32> {
    let config = Config::from_env().context("configuration")?;
    let out = cli.output;
    if let Command::Dev { .. } = cli.command {
        local::ensure_local_endpoint()?;
    }
    let local_runner = config.runner_function.is_none();
    let mut app = App::build(config).await;
    if local_runner && !is_server(&cli.command) {
        app.service.dispatcher = std::sync::Arc::new(local::LeaveQueued);
    }
    let svc = &app.service;
    let done = match cli.command {
        Command::Jobs(cmd) => return jobs::run(svc, local_runner.then(|| app.runner.clone()), cmd, out).await,
        Command::Executions(cmd) => return executions::run(svc, cmd, out).await,
        Command::Init => local::init(&app, out).await,
        Command::Keys(cmd) => keys::run(svc, cmd, out).await,
        Command::Hooks(cmd) => hooks::run(svc, cmd, out).await,
        Command::Destinations(cmd) => destinations::run(svc, cmd, out).await,
        Command::Settings(cmd) => settings::run(svc, cmd, out).await,
        Command::Backups(cmd) => backups::run(&app, cmd, out).await,
        Command::Schedule(cmd) => schedule::run(svc, cmd, out).await,
        Command::Serve { port, host } => local::serve(app, &host, port).await,
        Command::Dev { port } => local::dev(app, port).await,
    };
    done.map(|()| 0)
}
