//! The `runner` function: performs queued executions (dispatched by the run function's
//! asynchronous invoke), the periodic sweep and the schedule tick (EventBridge rules
//! every minute, with constant input `{"action": "sweep"}` / `{"action": "tick"}`).
//! Outside Lambda (a Fargate task) the same binary performs one execution: see
//! [`one_execution`].

use std::sync::Arc;

use cairn_shared::domain::ExecutionStatus;
use cairn_shared::runner::{Deadline, Runner, RunnerEvent};
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
    // Work is claimed only while it fits before the invocation's deadline.
    let deadline = Some(Deadline::from_epoch_millis(event.context.deadline));
    match parsed {
        RunnerEvent::Execute { execution_id } => runner.drain(Some(&execution_id), deadline).await,
        RunnerEvent::Sweep => runner.sweep(deadline).await,
        RunnerEvent::Tick => {
            let started = service.schedule_tick(chrono::Utc::now()).await.map_err(|e| e.to_string())?;
            return Ok(json!({"ok": true, "started": started}));
        }
    }
    Ok(json!({"ok": true}))
}

/// The execution a run outside Lambda performs: `bootstrap execute ID`, or
/// `CAIRN_EXECUTION_ID` (what the Fargate task's container override sets).
///
/// # Errors
/// Neither names one, or the arguments are not understood: the message says what to run.
pub fn one_execution(args: &[String], from_env: Option<String>) -> Result<String, String> {
    match args {
        [] => from_env.ok_or_else(|| {
            "not under Lambda (AWS_LAMBDA_RUNTIME_API is unset) and no execution named: run `bootstrap execute ID` or set CAIRN_EXECUTION_ID".to_owned()
        }),
        [verb, id] if verb == "execute" && !id.trim().is_empty() => Ok(id.clone()),
        _ => Err(format!("unexpected arguments {args:?}: the only command is `bootstrap execute ID`")),
    }
}

/// The process's exit code for a finished execution: 0 for Success and Partial (the
/// backup exists), 1 otherwise.
pub fn exit_code(status: ExecutionStatus) -> u8 {
    match status {
        ExecutionStatus::Success | ExecutionStatus::Partial => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_execution_comes_from_the_arguments_or_the_environment() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(one_execution(&args(&["execute", "e1"]), Some("e2".into())), Ok("e1".into()));
        assert_eq!(one_execution(&[], Some("e2".into())), Ok("e2".into()));
        assert!(one_execution(&[], None).unwrap_err().contains("CAIRN_EXECUTION_ID"));
        assert!(one_execution(&args(&["run", "e1"]), None)
            .unwrap_err()
            .contains("bootstrap execute ID"));
        assert_eq!((exit_code(ExecutionStatus::Partial), exit_code(ExecutionStatus::Cancelled)), (0, 1));
    }
}
