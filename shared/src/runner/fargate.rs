//! Executions of `"runner": "fargate"` jobs, for work longer than Lambda's 15 minutes.
//!
//! A drainer claims them like any other (so `maxConcurrentJobs` counts them and the queue
//! keeps its order), under an owner the task will know, and hands each to an ECS task
//! started for it. The task runs the same binary outside Lambda: it performs that one
//! execution, renewing the claim the drainer took, and exits by its status.

use std::sync::Arc;

use tracing::{info, warn};

use super::drain::Attempt;
use super::lease::{flush_logs, RunState};
use super::outcome::{completion, Outcome};
use super::Runner;
use crate::domain::{Execution, ExecutionStatus, LogLevel, RunnerKind};
use crate::error::TaskError;

/// The lease owner of a Fargate execution, known both to the drainer that claims it and
/// to the task that performs it.
pub fn fargate_owner(execution_id: &str) -> String {
    format!("fargate-{execution_id}")
}

impl Runner {
    /// Who claims `c`, and for how long: a Fargate execution's first lease must outlast
    /// its task's start (the task renews it from then on).
    pub(super) fn claimant(&self, c: &Execution) -> (String, u64) {
        match (c.runner, &self.config.fargate) {
            (RunnerKind::Fargate, Some(task)) => (fargate_owner(&c.id), task.start_seconds),
            _ => (self.owner.clone(), self.config.lease_seconds),
        }
    }

    /// Starts the Fargate task of a claimed execution; if it cannot be started, the
    /// execution fails saying why (and frees its slot).
    pub(super) async fn hand_to_fargate(&self, execution: Execution) {
        let Some(launcher) = self.fargate.as_ref().filter(|_| self.config.fargate.is_some()) else {
            let why = "the job asks for \"runner\": \"fargate\", but this deployment has no Fargate task (CAIRN_FARGATE_CLUSTER is unset): deploy template.yaml with VpcSubnets and RunnerImageUri, or set the job's runner to \"lambda\"";
            return self.fail_unstarted(&execution, &self.owner, why.into()).await;
        };
        let owner = fargate_owner(&execution.id);
        match launcher.dispatch(&execution.id).await {
            Ok(()) => {
                info!(execution_id = %execution.id, "handed to a Fargate task");
                let state = RunState::new(&execution.id);
                state.log(
                    LogLevel::Info,
                    "Started a Fargate task for this execution; it begins when the task is up",
                );
                flush_logs(self.stores.executions.as_ref(), &state).await;
            }
            Err(e) => {
                self.fail_unstarted(&execution, &owner, format!("could not start the Fargate task: {e}"))
                    .await
            }
        }
    }

    /// Ends a claimed execution that never started as Failed, with `why`.
    async fn fail_unstarted(&self, execution: &Execution, owner: &str, why: String) {
        let state = RunState::new(&execution.id);
        let noun = format!("{:?}", execution.execution_type);
        let done = completion(execution, &state, &noun, Outcome::failed(why));
        flush_logs(self.stores.executions.as_ref(), &state).await;
        if let Err(e) = self.stores.executions.complete(&execution.id, owner, &done).await {
            warn!(execution_id = %execution.id, error = %e, "could not record the failure; the sweep will fail the execution");
        }
    }

    /// Performs the one execution `id` (what a Fargate task is started for) and answers
    /// its final status. The execution is normally Running under this task's owner (a
    /// drainer claimed it); a Pending one (a task started by hand) is claimed first.
    ///
    /// # Errors
    /// The execution does not exist, is not waiting for this task, or no slot is free.
    pub async fn execute_one(self: &Arc<Self>, id: &str) -> Result<ExecutionStatus, TaskError> {
        let execution = self.stores.executions.get_execution(id).await?;
        let execution = execution.ok_or_else(|| TaskError::NotFound(id.to_owned()))?;
        let claimed = match execution.status {
            ExecutionStatus::Running if execution.owner.as_deref() == Some(self.owner.as_str()) => execution,
            ExecutionStatus::Pending => self.claim_for_task(&execution).await?,
            other => {
                return Err(TaskError::NotWaiting {
                    id: id.to_owned(),
                    status: other.as_str(),
                    owner: execution.owner.unwrap_or_else(|| "nobody".into()),
                })
            }
        };
        self.perform(claimed, None, None).await;
        // Its slot is free now: queued work need not wait for the next sweep.
        self.hand_on_the_queue().await;
        let ended = self.stores.executions.get_execution(id).await?;
        Ok(ended.map_or(ExecutionStatus::Failed, |e| e.status))
    }

    async fn claim_for_task(&self, execution: &Execution) -> Result<Execution, TaskError> {
        let max = self.stores.settings.settings().await?.max_concurrent_jobs;
        let id = execution.id.clone();
        match self.try_claim(execution, max).await? {
            Attempt::Claimed(claimed) => Ok(claimed.execution),
            Attempt::NoSlot => Err(TaskError::NoSlot { id, max }),
            Attempt::Skip => Err(TaskError::Taken(id)),
        }
    }
}
