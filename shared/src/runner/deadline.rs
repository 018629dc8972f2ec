//! Lambda's time limit: claim only what fits in the invocation, hand the rest of the queue
//! to a fresh invocation, and stop cleanly what is still running shortly before the end.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use super::lease::RunState;
use super::outcome::Outcome;
use super::Runner;
use crate::domain::{ExecutionStatus, LogLevel};
use crate::units::human_bytes;

/// When the invocation that is running this code ends (Lambda's
/// `Lambda-Runtime-Deadline-Ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(SystemTime);

impl Deadline {
    /// From milliseconds since the Unix epoch, as the Runtime API gives it.
    pub fn from_epoch_millis(ms: u64) -> Self {
        Self(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// What is left of the invocation (zero once it is past).
    pub fn remaining(self) -> Duration {
        self.0.duration_since(SystemTime::now()).unwrap_or_default()
    }
}

impl Runner {
    /// Whether there is time to start another execution before `deadline`.
    pub(super) fn time_for_more(&self, deadline: Option<Deadline>) -> bool {
        deadline.is_none_or(|d| d.remaining() >= Duration::from_secs(self.config.min_remaining_seconds))
    }

    /// Hands the queue to a fresh invocation of the runner Lambda when work is still
    /// waiting: when this invocation stopped claiming for lack of time, and when a Fargate
    /// task ended (freeing its slot).
    pub(super) async fn hand_on_the_queue(&self) {
        let Some(successor) = &self.successor else {
            return;
        };
        let waiting = match self.stores.executions.oldest_pending(1).await {
            Ok(w) => w,
            Err(e) => return warn!(error = %e, "could not look at the queue before the time limit; the sweep will"),
        };
        if let Some(next) = waiting.first() {
            match successor.dispatch(&next.id).await {
                Ok(()) => info!(execution_id = %next.id, "time limit near: the rest of the queue goes to a fresh invocation"),
                Err(e) => warn!(error = %e, "could not hand the queue on; the sweep will pick it up"),
            }
        }
    }

    /// Stops the execution behind `state` shortly before `deadline` (as a cancel does:
    /// uploads aborted, nothing kept), marking why, so its outcome says so.
    pub(super) fn watch_deadline(&self, deadline: Option<Deadline>, state: &Arc<RunState>) -> Option<tokio::task::JoinHandle<()>> {
        let deadline = deadline?;
        let margin = Duration::from_secs(self.config.stop_before_deadline_seconds);
        let state = state.clone();
        Some(tokio::spawn(async move {
            tokio::time::sleep(deadline.remaining().saturating_sub(margin)).await;
            state.time_limit_reached.store(true, Ordering::Relaxed);
            state.log(LogLevel::Error, "Stopping: the Lambda time limit is near");
            state.signals.cancel.store(true, Ordering::Relaxed);
        }))
    }
}

/// The outcome of a task the time limit stopped: Failed (post hooks get 102), saying how
/// far it came and what to do. A Success or Partial stays as it is: it finished before the
/// stop took hold, and its data is complete.
pub(super) fn time_limit_outcome(state: &RunState, outcome: Outcome) -> Outcome {
    let stopped = matches!(outcome.status, ExecutionStatus::Cancelled | ExecutionStatus::Failed);
    if !state.time_limit_reached.load(Ordering::Relaxed) || !stopped {
        return outcome;
    }
    let message = format!(
        "stopped at the Lambda time limit after {} read; give the job \"runner\": \"fargate\"",
        human_bytes(state.bytes_read())
    );
    Outcome::failed_with(message, outcome.items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_in_the_past_leaves_nothing() {
        assert_eq!(Deadline::from_epoch_millis(1_000).remaining(), Duration::ZERO);
        let soon = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() + 60_000;
        let left = Deadline::from_epoch_millis(u64::try_from(soon).unwrap()).remaining();
        assert!(left > Duration::from_secs(50) && left <= Duration::from_secs(60), "{left:?}");
    }

    #[test]
    fn bytes_read_counts_every_item_however_it_ended() {
        let state = RunState::new("e1");
        state.signals.input_bytes.store(1000, Ordering::Relaxed);
        assert_eq!(state.take_item_bytes(), 1000, "a clone's item");
        state.signals.input_bytes.store(200, Ordering::Relaxed);
        state.end_item(1);
        state.signals.input_bytes.store(30, Ordering::Relaxed);
        assert_eq!(state.bytes_read(), 1230, "two ended items and the current one");
    }

    #[test]
    fn only_a_task_the_time_limit_stopped_changes_its_outcome() {
        let state = RunState::new("e1");
        state.signals.input_bytes.store(3 * 1024 * 1024, Ordering::Relaxed);
        let cancelled = Outcome::cancelled(Vec::new());
        assert_eq!(time_limit_outcome(&state, cancelled.clone()).status, cancelled.status);
        state.time_limit_reached.store(true, Ordering::Relaxed);
        let finished = Outcome::from_items(Vec::new(), 10, false);
        assert_eq!(
            time_limit_outcome(&state, finished).status,
            ExecutionStatus::Success,
            "finished in time"
        );
        let stopped = time_limit_outcome(&state, cancelled);
        assert_eq!(stopped.status, ExecutionStatus::Failed);
        assert_eq!(
            stopped.error.as_deref(),
            Some("stopped at the Lambda time limit after 3.0 MiB read; give the job \"runner\": \"fargate\"")
        );
    }
}
