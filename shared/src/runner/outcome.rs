//! What a task came to: its status, size, location, error and items, and the terminal
//! state written from it.

use crate::domain::{Execution, ExecutionStatus, ItemResult, LogLevel, Stage};
use crate::ports::Completion;
use crate::time;

use super::lease::RunState;

/// What a task came to, before post hooks and the final write.
#[derive(Debug, Clone)]
pub(super) struct Outcome {
    pub status: ExecutionStatus,
    pub size: Option<u64>,
    pub path: Option<String>,
    pub error: Option<String>,
    pub items: Vec<ItemResult>,
}

impl Outcome {
    /// Failed before any item ran.
    pub fn failed(error: impl Into<String>) -> Self {
        Self::failed_with(error, Vec::new())
    }

    /// Failed, with the items that ran.
    pub fn failed_with(error: impl Into<String>, items: Vec<ItemResult>) -> Self {
        Self {
            status: ExecutionStatus::Failed,
            size: None,
            path: None,
            error: Some(error.into()),
            items,
        }
    }

    /// Cancelled by request, with the items that ran; nothing is kept.
    pub fn cancelled(items: Vec<ItemResult>) -> Self {
        Self {
            status: ExecutionStatus::Cancelled,
            size: None,
            path: None,
            error: Some("Cancelled by request".into()),
            items,
        }
    }

    /// The status of a task from its items' results, with one error line naming every
    /// item that did not succeed: all succeeded is Success, none is Failed, some is
    /// Partial; a cancel is Cancelled whatever the items say.
    pub fn from_items(items: Vec<ItemResult>, size: u64, cancelled: bool) -> Self {
        let failed: Vec<&ItemResult> = items.iter().filter(|r| r.status != ExecutionStatus::Success).collect();
        let status = if cancelled {
            ExecutionStatus::Cancelled
        } else if failed.is_empty() {
            ExecutionStatus::Success
        } else if failed.len() == items.len() {
            ExecutionStatus::Failed
        } else {
            ExecutionStatus::Partial
        };
        let error = (!failed.is_empty()).then(|| describe_items(&failed, " failed: "));
        Self {
            status,
            size: Some(size),
            path: None,
            error,
            items,
        }
    }
}

/// `item 'a' failed: why; item 'b' failed: why`, with `joint` (` failed: `) between
/// each name and its error.
pub(super) fn describe_items(items: &[&ItemResult], joint: &str) -> String {
    items
        .iter()
        .map(|r| format!("item '{}'{joint}{}", r.name, r.error.as_deref().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The terminal state of `execution` from `outcome`; logs the end in words that name the
/// task (`Restore completed successfully`).
pub(super) fn completion(execution: &Execution, state: &RunState, noun: &str, outcome: Outcome) -> Completion {
    let now = time::now();
    let started = execution.started_at.as_deref().and_then(time::parse_iso).unwrap_or(now);
    let stage = match outcome.status {
        ExecutionStatus::Success | ExecutionStatus::Partial => Stage::Completed,
        ExecutionStatus::Cancelled => Stage::Cancelled,
        _ => Stage::Failed,
    };
    state.set_stage(stage);
    let error = outcome.error.as_deref();
    match outcome.status {
        ExecutionStatus::Success => state.log(LogLevel::Info, format!("{noun} completed successfully")),
        ExecutionStatus::Partial => state.log(LogLevel::Warning, format!("{noun} partially completed: {}", error.unwrap_or(""))),
        ExecutionStatus::Cancelled => state.log(LogLevel::Warning, format!("{noun} cancelled")),
        _ => state.log(LogLevel::Error, format!("{noun} failed: {}", error.unwrap_or("unknown error"))),
    }
    Completion {
        status: outcome.status,
        stage,
        ended_at: time::iso(now),
        duration_ms: u64::try_from((now - started).num_milliseconds()).unwrap_or(0),
        size: outcome.size,
        path: outcome.path,
        error: outcome.error,
        items: outcome.items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_decide_the_status_and_the_error_names_each_failure() {
        let ok = ItemResult::succeeded("a".into(), 1);
        let bad = ItemResult::failed("b".into(), "gone".into());
        assert_eq!(Outcome::from_items(vec![ok.clone()], 1, false).status, ExecutionStatus::Success);
        let partial = Outcome::from_items(vec![ok.clone(), bad.clone()], 1, false);
        assert_eq!(partial.status, ExecutionStatus::Partial);
        assert_eq!(partial.error.as_deref(), Some("item 'b' failed: gone"));
        assert_eq!(Outcome::from_items(vec![bad], 0, false).status, ExecutionStatus::Failed);
        assert_eq!(Outcome::from_items(vec![ok], 1, true).status, ExecutionStatus::Cancelled);
    }
}
