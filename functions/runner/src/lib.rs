//! The `runner` function: performs queued executions (dispatched by the run function's
//! asynchronous invoke) and runs the periodic sweep (an EventBridge rule every minute).

use cairn_shared::runner::{Runner, RunnerEvent};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{json, Value};

/// Handles one invocation. EventBridge scheduled events carry `{"action": "sweep"}` as
/// their constant input; dispatches carry `{"action": "execute", "executionId": ...}`.
///
/// # Errors
/// A payload that is neither: it is logged and rejected (asynchronous invokes are not
/// retried forever: the function's retry setting is 0 for malformed events in template.yaml).
pub async fn handler(runner: &Runner, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let parsed: RunnerEvent = serde_json::from_value(event.payload.clone()).map_err(|e| {
        tracing::error!(error = %e, "malformed runner event");
        format!("malformed runner event: {e}")
    })?;
    match parsed {
        RunnerEvent::Execute { execution_id } => runner.drain(Some(&execution_id)).await,
        RunnerEvent::Sweep => runner.sweep().await,
    }
    Ok(json!({"ok": true}))
}
