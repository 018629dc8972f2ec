//! Entry point of the `runner`: wiring only. Under Lambda it serves invocations; outside
//! (a Fargate task) it performs the one execution it was started for and exits by its
//! status.

// The runner's future (backup, hooks, retention) nests deeply enough to need more room.
#![recursion_limit = "256"]

use std::process::ExitCode;

use cairn_runner::{exit_code, one_execution};
use cairn_shared::config::Config;
use cairn_shared::wiring::App;
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> ExitCode {
    cairn_shared::telemetry::init();
    let mut config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => return fail(&format!("configuration: {e}")),
    };
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        let app = App::build(config).await;
        let (runner, service) = (&app.runner, &app.service);
        return match lambda_runtime::run(service_fn(|event| cairn_runner::handler(runner, service, event))).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(&e.to_string()),
        };
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let id = match one_execution(&args, config.execution_id.clone()) {
        Ok(id) => id,
        Err(e) => return fail(&e),
    };
    config.execution_id = Some(id.clone());
    let app = App::build(config).await;
    match app.runner.execute_one(&id).await {
        Ok(status) => {
            tracing::info!(execution_id = %id, status = status.as_str(), "execution ended");
            ExitCode::from(exit_code(status))
        }
        Err(e) => fail(&e.to_string()),
    }
}

/// Logs `message` and answers the exit code of a run that could not do its work.
fn fail(message: &str) -> ExitCode {
    tracing::error!("{message}");
    eprintln!("cairn runner: {message}");
    ExitCode::from(2)
}
