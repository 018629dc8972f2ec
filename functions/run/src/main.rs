//! Lambda entry point of the `run` function: wiring only.

use cairn_shared::config::Config;
use cairn_shared::wiring::ApiApp;
use lambda_runtime::{service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    cairn_shared::telemetry::init();
    let config = Config::from_env().map_err(|e| format!("configuration: {e}"))?;
    let app = ApiApp::build(config).await;
    let api = &app.http;
    lambda_runtime::run(service_fn(|event| cairn_run::handle_event(api, event))).await
}
