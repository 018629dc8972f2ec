//! Handing queued work to a runner.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// What the runner is invoked with: the payload of a dispatch, and of the EventBridge
/// rules that run the sweep and the schedule tick.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum RunnerEvent {
    /// Work on the queue; `executionId` is the one just queued.
    #[serde(rename_all = "camelCase")]
    Execute { execution_id: String },
    /// The periodic sweep.
    Sweep,
    /// The schedule tick (every minute).
    Tick,
}

/// Hands a queued execution to a runner: an asynchronous Lambda invoke in AWS, a task in
/// the same process under `cairn serve`.
#[async_trait]
pub trait Dispatcher: Send + Sync {
    /// # Errors
    /// The runner could not be reached; the execution stays Pending for the sweep.
    async fn dispatch(&self, execution_id: &str) -> Result<(), StoreError>;
}
