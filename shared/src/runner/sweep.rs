//! The periodic sweep: fails Running executions whose lease expired (their runner died),
//! then works on whatever is queued.

use std::sync::Arc;

use tracing::{error, warn};

use super::lease::{flush_logs, RunState};
use super::task::started_epoch;
use super::Runner;
use crate::domain::{Execution, ExecutionStatus, LogEntry, LogLevel, Stage};
use crate::hooks::HookCall;
use crate::ports::Completion;
use crate::time;

/// JetBackup's status for a task that never finished.
const NEVER_FINISHED: u32 = 104;

impl Runner {
    /// Fails Running executions whose lease expired, then drains the queue (which also
    /// re-dispatches work whose dispatch was lost).
    pub async fn sweep(self: &Arc<Self>, deadline: Option<super::Deadline>) {
        match self.stores.executions.expired_running(time::now().timestamp()).await {
            Ok(expired) => {
                for e in expired {
                    self.fail_never_finished(&e).await;
                }
            }
            Err(err) => error!(error = %err, "sweep could not list expired executions"),
        }
        self.drain(None, deadline).await;
    }

    async fn fail_never_finished(&self, e: &Execution) {
        let expired_at = e
            .lease_expires_at
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(time::iso)
            .unwrap_or_default();
        let now = time::now();
        let started = e.started_at.as_deref().and_then(time::parse_iso).unwrap_or(now);
        let who = if e.owner.as_deref().is_some_and(|o| o == super::fargate_owner(&e.id)) {
            "its Fargate task did not start in time or stopped renewing its lease (see the task's log group)"
        } else {
            "the runner stopped renewing its lease"
        };
        let message = format!("Never finished: {who} (expired {expired_at}); the backup is incomplete (status {NEVER_FINISHED})");
        let completion = Completion {
            status: ExecutionStatus::Failed,
            stage: Stage::Failed,
            ended_at: time::iso(now),
            duration_ms: u64::try_from((now - started).num_milliseconds()).unwrap_or(0),
            size: None,
            path: None,
            error: Some(message.clone()),
            items: e.items.clone(),
        };
        match self.stores.executions.fail_expired(&e.id, &completion).await {
            Ok(true) => {
                warn!(execution_id = %e.id, "failed an execution whose lease expired");
                let entry = LogEntry {
                    timestamp: time::iso(now),
                    level: LogLevel::Error,
                    stage: Stage::Failed,
                    message,
                };
                if let Err(err) = self.stores.executions.append_logs(&e.id, &[entry]).await {
                    warn!(execution_id = %e.id, error = %err, "could not log the sweep's verdict");
                }
                self.abort_leftover_uploads(e).await;
                self.post_hooks_never_finished(e).await;
            }
            Ok(false) => {}
            Err(err) => error!(execution_id = %e.id, error = %err, "could not fail an expired execution"),
        }
    }

    /// Post-backup hooks for an execution whose runner died: status 104.
    async fn post_hooks_never_finished(&self, e: &Execution) {
        let Ok(Some(job)) = self.stores.jobs.get_job(&e.job_id).await else {
            return;
        };
        let state = RunState::new(&e.id);
        state.set_stage(Stage::PostHooks);
        let hooks = self.hooks_for(&job, &state).await;
        let post = HookCall::backup_post(&job, started_epoch(e), time::now().timestamp(), NEVER_FINISHED, &e.id);
        let _ = self.run_hooks(&hooks, &post, &state).await;
        flush_logs(self.stores.executions.as_ref(), &state).await;
    }

    /// Aborts multipart uploads a dead runner left under the execution's folders.
    async fn abort_leftover_uploads(&self, e: &Execution) {
        let Ok(Some(job)) = self.stores.jobs.get_job(&e.job_id).await else {
            return;
        };
        for d in self.destinations_of(&job).await.unwrap_or_default() {
            let store = self.store_of(&d);
            let prefix = d.object_key(&job.id, &e.id, "");
            let Ok(open) = store.open_uploads(&d.bucket, &prefix).await else {
                continue;
            };
            for u in open {
                let _ = store.abort_multipart(&d.bucket, &u.key, &u.upload_id).await;
            }
        }
    }
}
