//! Lambda entry point of the `runner` function: wiring only.

// The runner's future (backup, hooks, retention) nests deeply enough to need more room.
#![recursion_limit = "256"]

use cairn_shared::config::Config;
use cairn_shared::wiring::App;
use lambda_runtime::{service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    cairn_shared::telemetry::init();
    let config = Config::from_env().map_err(|e| format!("configuration: {e}"))?;
    let app = App::build(config).await;
    let (runner, service) = (&app.runner, &app.service);
    lambda_runtime::run(service_fn(|event| cairn_runner::handler(runner, service, event))).await
}
