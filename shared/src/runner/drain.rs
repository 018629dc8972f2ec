//! Claiming and draining the queue.

use std::sync::Arc;
use std::time::Duration;

use tracing::error;

use super::deadline::Deadline;
use super::Runner;
use crate::domain::{Execution, ExecutionStatus, ExecutionType, Job, RunnerKind};
use crate::error::StoreError;
use crate::ports::ClaimOutcome;
use crate::time;

/// How many times a contended claim of one execution is tried.
const CLAIM_ATTEMPTS: u64 = 5;

/// An execution this runner claimed, with its job when that was read beside the claim.
pub(super) struct Claimed {
    pub execution: Execution,
    pub job: Option<Job>,
}

impl Runner {
    /// Claims and performs Pending executions, oldest first, until none can be claimed
    /// (the queue is empty or every slot is taken) or, in Lambda, too little of the
    /// invocation is left to start another (then a fresh invocation gets the queue).
    ///
    /// One drainer fills every free slot: it claims until no slot is left, performs the
    /// claimed executions concurrently, and claims again each time one ends. It returns
    /// when nothing it started is running and nothing more can be claimed (so a Lambda
    /// invocation never leaves work behind when it returns). Executions of
    /// `"runner": "fargate"` jobs are claimed the same way, so the cap counts them, and
    /// handed to their own Fargate task.
    pub async fn drain(self: &Arc<Self>, mut hint: Option<&str>, deadline: Option<Deadline>) {
        let mut running = tokio::task::JoinSet::new();
        let mut out_of_time = false;
        loop {
            while !out_of_time {
                if !self.time_for_more(deadline) {
                    out_of_time = true;
                    break;
                }
                match self.claim_next(hint).await {
                    Ok(Some(Claimed { execution, job })) => {
                        // Claimed: no need to look for it any more.
                        if hint == Some(execution.id.as_str()) {
                            hint = None;
                        }
                        let runner = self.clone();
                        running.spawn(async move { runner.start(execution, job, deadline).await });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        error!(error = %e, "could not claim work; the sweep will retry");
                        break;
                    }
                }
            }
            if running.join_next().await.is_none() {
                break;
            }
        }
        if out_of_time {
            self.hand_on_the_queue().await;
        }
    }

    /// Performs a claimed execution here, or hands it to its Fargate task.
    async fn start(&self, execution: Execution, job: Option<Job>, deadline: Option<Deadline>) {
        if execution.runner == RunnerKind::Fargate {
            self.hand_to_fargate(execution).await;
        } else {
            self.perform(execution, job, deadline).await;
        }
    }

    /// Claims the oldest Pending execution that can run now (or the hinted one).
    pub(super) async fn claim_next(&self, hint: Option<&str>) -> Result<Option<Claimed>, StoreError> {
        let max = self.stores.settings.settings().await?.max_concurrent_jobs;
        let mut candidates = self.stores.executions.oldest_pending(10).await?;
        if let Some(h) = hint {
            // Index reads may lag behind the write that queued the hinted execution.
            if !candidates.iter().any(|c| c.id == h) {
                if let Some(e) = self.stores.executions.get_execution(h).await? {
                    if e.status == ExecutionStatus::Pending {
                        candidates.push(e);
                        candidates.sort_by(|a, b| a.queued_at.cmp(&b.queued_at));
                    }
                }
            }
        }
        for c in candidates {
            match self.try_claim(&c, max).await? {
                Attempt::Claimed(claimed) => return Ok(Some(*claimed)),
                Attempt::NoSlot => return Ok(None),
                Attempt::Skip => {}
            }
        }
        Ok(None)
    }

    /// Tries to claim `c`, retrying while concurrent transactions contend.
    pub(super) async fn try_claim(&self, c: &Execution, max: u32) -> Result<Attempt, StoreError> {
        let mut job = None;
        for attempt in 0..CLAIM_ATTEMPTS {
            let now = time::now();
            let (owner, lease_seconds) = self.claimant(c);
            let lease = now.timestamp() + i64::try_from(lease_seconds).unwrap_or(30);
            let started = time::iso(now);
            let claim = self.stores.executions.claim(&c.id, &owner, lease, max, &started);
            let outcome = if attempt == 0 && matches!(c.execution_type, ExecutionType::Backup | ExecutionType::Clone) {
                // The job is read beside the claim, not after it: one round trip fewer
                // before the run's first byte. (A failed read is retried by the run.)
                let (outcome, read) = tokio::join!(claim, self.stores.jobs.get_job(&c.job_id));
                job = read.ok().flatten();
                outcome?
            } else {
                claim.await?
            };
            match outcome {
                ClaimOutcome::Claimed(e) => return Ok(Attempt::Claimed(Box::new(Claimed { execution: *e, job }))),
                ClaimOutcome::NoSlot => return Ok(Attempt::NoSlot),
                ClaimOutcome::NotPending => return Ok(Attempt::Skip),
                ClaimOutcome::Contended => tokio::time::sleep(Duration::from_millis(20 + rand::random::<u64>() % 80 * (attempt + 1))).await,
            }
        }
        Ok(Attempt::Skip)
    }
}

/// What one claim attempt came to.
pub(super) enum Attempt {
    Claimed(Box<Claimed>),
    /// Every slot is taken: stop claiming.
    NoSlot,
    /// Claimed or cancelled by somebody else, or still contended: try the next.
    Skip,
}
