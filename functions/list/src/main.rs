//! Lambda entry point of the `list` function: wiring only.

use cairn_shared::config::Config;
use cairn_shared::wiring::ApiApp;
use lambda_http::{service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    cairn_shared::telemetry::init();
    let config = Config::from_env().map_err(|e| format!("configuration: {e}"))?;
    let app = ApiApp::build(config).await;
    let api = &app.http;
    lambda_http::run(service_fn(|request| cairn_list::handler(api, request))).await
}
