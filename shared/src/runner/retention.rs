//! Retention: after a backup, the job's earlier backups its policy no longer keeps are
//! deleted from every destination and marked as pruned.

use std::collections::HashMap;

use super::lease::RunState;
use super::Runner;
use crate::domain::retention::{self, Candidate};
use crate::domain::{Destination, Execution, ExecutionStatus, ExecutionType, Job, LogEntry, LogLevel, Retention, Stage};
use crate::error::StoreError;
use crate::ports::ExecutionQuery;
use crate::time;

impl Runner {
    pub(super) async fn apply_retention(
        &self,
        job: &Job,
        current: &Execution,
        policy: &Retention,
        destinations: &[Destination],
        secrets: &HashMap<String, String>,
        state: &RunState,
    ) {
        let earlier = match self.stored_backups(job, current).await {
            Ok(e) => e,
            Err(e) => {
                state.log(LogLevel::Warning, format!("Retention skipped: cannot list earlier backups: {e}"));
                return;
            }
        };
        let mut candidates: Vec<Candidate> = earlier
            .iter()
            .filter_map(|e| time::parse_iso(&e.queued_at).map(|at| Candidate { id: e.id.clone(), at }))
            .collect();
        candidates.push(Candidate {
            id: current.id.clone(),
            at: time::parse_iso(&current.queued_at).unwrap_or_else(time::now),
        });
        let doomed = retention::to_delete(policy, &candidates);
        if doomed.is_empty() {
            state.log(LogLevel::Info, format!("Retention: keeping all {} backup(s)", candidates.len()));
            return;
        }
        for id in &doomed {
            self.delete_backup(job, id, current, destinations, secrets, state).await;
        }
        if job.incremental {
            self.prune_repositories(destinations, secrets, current, state).await;
        }
        let kept = candidates.len() - doomed.len();
        state.log(
            LogLevel::Info,
            format!("Retention: kept {kept} backup(s), deleted {}", doomed.len()),
        );
    }

    /// The job's other backups that still hold data.
    async fn stored_backups(&self, job: &Job, current: &Execution) -> Result<Vec<Execution>, StoreError> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let q = ExecutionQuery {
                job_id: Some(job.id.clone()),
                status: None,
                limit: 100,
                cursor,
            };
            let page = self.stores.executions.list_executions(&q).await?;
            all.extend(page.executions.into_iter().filter(|e| {
                e.execution_type == ExecutionType::Backup
                    && matches!(e.status, ExecutionStatus::Success | ExecutionStatus::Partial)
                    && e.pruned.is_none()
                    && e.id != current.id
            }));
            cursor = page.next_cursor;
            if cursor.is_none() {
                return Ok(all);
            }
        }
    }

    /// Deletes backup `id` from every destination; marks it pruned (in its own log too)
    /// only when every copy is gone.
    async fn delete_backup(
        &self,
        job: &Job,
        id: &str,
        current: &Execution,
        destinations: &[Destination],
        secrets: &HashMap<String, String>,
        state: &RunState,
    ) {
        let mut deleted = true;
        for d in destinations {
            // Its snapshots are forgotten first: when that fails, the manifest stays and the
            // next retention tries again, so no snapshot is left without its manifest.
            if job.incremental && !self.forget_backup(d, &job.id, id, secrets, state).await {
                deleted = false;
                continue;
            }
            let prefix = d.object_key(&job.id, id, "");
            if let Err(e) = self.store_of(d).delete_prefix(&d.bucket, &prefix).await {
                deleted = false;
                state.log(
                    LogLevel::Warning,
                    format!("Retention: could not delete s3://{}/{prefix}: {e}", d.bucket),
                );
            }
        }
        if !deleted {
            return;
        }
        let note = format!("Deleted by retention after execution {} at {}", current.id, time::iso(time::now()));
        if let Err(e) = self.stores.executions.mark_pruned(id, &note).await {
            state.log(
                LogLevel::Warning,
                format!("Retention: deleted backup {id} but could not mark it: {e}"),
            );
        }
        let entry = LogEntry {
            timestamp: time::iso(time::now()),
            level: LogLevel::Info,
            stage: Stage::Retention,
            message: note,
        };
        let _ = self.stores.executions.append_logs(id, &[entry]).await;
        state.log(LogLevel::Info, format!("Retention: deleted backup {id}"));
    }
}
