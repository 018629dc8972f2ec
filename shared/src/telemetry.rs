//! Tracing set-up shared by every binary.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global tracing subscriber: JSON lines in Lambda (where
/// `AWS_LAMBDA_FUNCTION_NAME` is set by the runtime), human-readable text elsewhere.
/// The level comes from `RUST_LOG` (default `info`). Logs go to stderr, in colour only
/// when that is a terminal (a log file gets no escape codes).
pub fn init() {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // Installing twice (tests) is harmless: the second call is ignored.
    let _ = if in_lambda {
        builder.json().with_current_span(false).without_time().try_init()
    } else {
        builder.with_target(false).try_init()
    };
}
