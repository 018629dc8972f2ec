//! The runner.
use serde::{Deserialize, Serialize};

/// What the runner function is invoked with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum RunnerEvent {
    /// Work on the queue; `executionId` is the one just queued.
    #[serde(rename_all = "camelCase")]
    Execute { execution_id: String },
    /// The periodic sweep.
    Sweep,
}

/// Performs queued executions.
#[derive(Debug, Clone)]
pub struct Runner {}

impl Runner {
    /// Claims and performs Pending executions until none can be claimed.
    pub async fn drain(&self, _hint: Option<&str>) {}

    /// Re-dispatches lost Pending work and fails expired Running executions.
    pub async fn sweep(&self) {}
}

/// Dispatches to a runner in the same process (under `cairn serve`).
#[derive(Debug, Clone)]
pub struct InProcessDispatcher {
    pub runner: std::sync::Arc<Runner>,
}

#[async_trait::async_trait]
impl crate::store::Dispatcher for InProcessDispatcher {
    async fn dispatch(&self, execution_id: &str) -> Result<(), crate::error::StoreError> {
        let runner = self.runner.clone();
        let hint = execution_id.to_owned();
        tokio::spawn(async move { runner.drain(Some(&hint)).await });
        Ok(())
    }
}
