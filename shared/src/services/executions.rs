//! Executions: queueing runs of jobs (with idempotency keys), reading and listing them,
//! and cancelling.

use tracing::{info, warn};

use super::{CairnService, ServiceError, IDEMPOTENCY_WINDOW_SECS};
use crate::domain::{new_id, Execution, ExecutionStatus, ExecutionType, JobType, LogEntry, LogLevel, Stage, Trigger};
use crate::error::StoreError;
use crate::ports::{CancelOutcome, CreateOutcome, ExecutionPage, ExecutionQuery};
use crate::time;

/// The result of triggering a job.
#[derive(Debug, Clone)]
pub struct Triggered {
    pub execution_id: String,
    /// `false` when an idempotency key answered an earlier execution.
    pub created: bool,
}

/// An execution as `GET /api/executions/{id}` shows it.
#[derive(Debug, Clone)]
pub struct ExecutionDetail {
    pub execution: Execution,
    /// While Pending: the 1-based place in the queue.
    pub queue_position: Option<u64>,
    /// When asked for.
    pub logs: Option<Vec<crate::domain::LogEntry>>,
}

impl CairnService {
    /// Queues a backup of `job_id` and dispatches it to a runner.
    ///
    /// # Errors
    /// 404 `Job not found`, 409 when the job is disabled.
    pub async fn run_job(&self, job_id: &str, trigger: Trigger, idempotency_key: Option<&str>) -> Result<Triggered, ServiceError> {
        let job = self.get_job(job_id).await?;
        if !job.enabled {
            return Err(ServiceError::Conflict(format!(
                "Job '{}' is disabled; enable it to run it",
                job.name
            )));
        }
        let now = time::now();
        let mut execution = Execution::pending(
            new_id(),
            job.id.clone(),
            job.name.clone(),
            if job.job_type == JobType::Clone {
                ExecutionType::Clone
            } else {
                ExecutionType::Backup
            },
            trigger.clone(),
            &time::iso(now),
        );
        execution.runner = job.runner;
        let idem = idempotency_key.map(|k| (k, now.timestamp() + IDEMPOTENCY_WINDOW_SECS));
        match self.executions.create_pending(&execution, idem).await? {
            CreateOutcome::Existing(id) => {
                info!(execution_id = %id, job_id = %job.id, "idempotent repeat answered with the earlier execution");
                return Ok(Triggered {
                    execution_id: id,
                    created: false,
                });
            }
            CreateOutcome::Created => {}
        }
        let who = match &trigger {
            Trigger::Api { key } => format!("API key '{key}'"),
            Trigger::Scheduler => "the scheduler".into(),
            Trigger::EventBridge { rule } => format!("EventBridge rule '{rule}'"),
            Trigger::Cli => "the CLI".into(),
        };
        let entry = LogEntry {
            timestamp: execution.queued_at.clone(),
            level: LogLevel::Info,
            stage: Stage::Queued,
            message: format!("Queued by {who}"),
        };
        if let Err(e) = self.executions.append_logs(&execution.id, &[entry]).await {
            warn!(execution_id = %execution.id, error = %e, "could not write the queue log entry");
        }
        info!(execution_id = %execution.id, job_id = %job.id, "execution queued");
        if let Err(e) = self.dispatcher.dispatch(&execution.id).await {
            // The execution is safely Pending; the sweep re-dispatches it within a minute.
            warn!(execution_id = %execution.id, error = %e, "dispatch failed; the sweep will pick the execution up");
        }
        Ok(Triggered {
            execution_id: execution.id,
            created: true,
        })
    }

    /// An execution, with its place in the queue while Pending, and its logs when asked.
    ///
    /// # Errors
    /// 404 `Execution not found`.
    pub async fn get_execution(&self, id: &str, include_logs: bool) -> Result<ExecutionDetail, ServiceError> {
        let execution = self
            .executions
            .get_execution(id)
            .await?
            .ok_or_else(ServiceError::execution_not_found)?;
        let queue_position = match execution.status {
            ExecutionStatus::Pending => Some(self.executions.queue_position(&execution).await?),
            _ => None,
        };
        let logs = match include_logs {
            true => Some(self.executions.logs(id).await?),
            false => None,
        };
        Ok(ExecutionDetail {
            execution,
            queue_position,
            logs,
        })
    }

    /// # Errors
    /// 400 for a cursor this API did not issue.
    pub async fn list_executions(&self, q: &ExecutionQuery) -> Result<ExecutionPage, ServiceError> {
        self.executions.list_executions(q).await.map_err(|e| match e {
            StoreError::BadCursor => ServiceError::Invalid(format!("Invalid query parameter 'cursor': {e}")),
            other => other.into(),
        })
    }

    /// Cancels a Pending execution at once, or asks a Running one to stop.
    ///
    /// # Errors
    /// 404 when unknown, 409 when it already ended.
    pub async fn cancel_execution(&self, id: &str) -> Result<Execution, ServiceError> {
        match self.executions.request_cancel(id, &time::iso(time::now())).await? {
            CancelOutcome::Cancelled(e) => {
                let entry = LogEntry {
                    timestamp: time::iso(time::now()),
                    level: LogLevel::Warning,
                    stage: Stage::Cancelled,
                    message: "Cancelled while queued".into(),
                };
                if let Err(err) = self.executions.append_logs(id, &[entry]).await {
                    warn!(execution_id = %id, error = %err, "could not write the cancel log entry");
                }
                Ok(*e)
            }
            CancelOutcome::Requested(e) => Ok(*e),
            CancelOutcome::AlreadyEnded(e) => Err(ServiceError::Conflict(format!(
                "Execution already ended with status {}",
                e.status.as_str()
            ))),
            CancelOutcome::NotFound => Err(ServiceError::execution_not_found()),
        }
    }

    pub(super) async fn queue(&self, execution: &Execution, message: &str) -> Result<(), ServiceError> {
        self.executions.create_pending(execution, None).await?;
        let entry = LogEntry {
            timestamp: execution.queued_at.clone(),
            level: LogLevel::Info,
            stage: Stage::Queued,
            message: message.to_owned(),
        };
        if let Err(e) = self.executions.append_logs(&execution.id, &[entry]).await {
            warn!(execution_id = %execution.id, error = %e, "could not write the queue log entry");
        }
        if let Err(e) = self.dispatcher.dispatch(&execution.id).await {
            warn!(execution_id = %execution.id, error = %e, "dispatch failed; the sweep will pick the execution up");
        }
        Ok(())
    }
}
