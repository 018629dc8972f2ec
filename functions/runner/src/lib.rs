//! The `runner` function: performs queued executions (dispatched by the run function's
//! asynchronous invoke), the periodic sweep and the schedule tick (EventBridge rules
//! every minute, with constant input `{"action": "sweep"}` / `{"action": "tick"}`).

use std::sync::Arc;

use cairn_shared::runner::{Runner, RunnerEvent};
use cairn_shared::services::CairnService;
use lambda_runtime::{Error, LambdaEvent};
use serde_json::{json, Value};

/// Handles one invocation. EventBridge scheduled events carry `{"action": "sweep"}` as
/// their constant input; dispatches carry `{"action": "execute", "executionId": ...}`.
///
/// # Errors
/// A payload that is neither: it is logged and rejected (asynchronous invokes are not
/// retried forever: the function's retry setting is 0 for malformed events in template.yaml).
pub async fn handler(runner: &Arc<Runner>, service: &CairnService, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let parsed: RunnerEvent = serde_json::from_value(event.payload.clone()).map_err(|e| {
        tracing::error!(error = %e, "malformed runner event");
        format!("malformed runner event: {e}")
    })?;
    match parsed {
        RunnerEvent::Execute { execution_id } => runner.drain(Some(&execution_id)).await,
        RunnerEvent::Sweep => runner.sweep().await,
        RunnerEvent::Tick => {
            let started = service.schedule_tick(chrono::Utc::now()).await.map_err(|e| e.to_string())?;
            return Ok(json!({"ok": true, "started": started}));
        }
    }
    Ok(json!({"ok": true}))
}
