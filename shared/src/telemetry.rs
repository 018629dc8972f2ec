//! Tracing set-up shared by every binary.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global tracing subscriber: JSON lines in Lambda (where
/// `AWS_LAMBDA_FUNCTION_NAME` is set by the runtime), human-readable text elsewhere.
/// The level comes from `RUST_LOG` (default `info`). Logs go to stderr, in colour only
/// when that is a terminal (a log file gets no escape codes).
pub fn init() {
    init_with_default("info");
}

/// [`init`] with another filter where `RUST_LOG` is unset: the CLI's one-shot commands
/// show warnings only, and none of the SDK's own (its credential and region probing
/// warns on every machine that is not in AWS; the command's error says what is missing).
pub fn init_with_default(default: &str) {
    use std::io::IsTerminal;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
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
