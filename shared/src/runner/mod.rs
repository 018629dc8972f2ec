//! The runner: claims queued executions (oldest first, never more than
//! `maxConcurrentJobs` at once), performs them with a heartbeat that renews its lease,
//! writes progress and logs and notices cancels; and the periodic sweep that fails
//! executions whose runner died.
//!
//! # Layout
//! - [`drain`]: claiming and draining the queue.
//! - [`deadline`]: Lambda's time limit (claim what fits, hand on the rest, stop cleanly).
//! - [`fargate`]: handing executions to a Fargate task, and performing one there.
//! - [`lease`]: what a running execution shares with its heartbeat, and the heartbeat.
//! - [`task`]: the one skeleton (load, pre hooks, body, post hooks, completion) that
//!   [`backup`], [`restore`] and [`clone`] plug into.
//! - [`incremental`]: an incremental job's items as snapshots in each destination's
//!   repository, and retention there (forget, prune under a claim).
//! - [`retention`]: deleting the backups a job's retention no longer keeps.
//! - [`sweep`]: failing executions whose lease expired.
//! - [`outcome`]: what a task came to, and the terminal state written from it.
//! - [`metrics`]: the CloudWatch Embedded Metric Format line of each finished execution.
//!
//! Everything goes through [`crate::ports`]: the runner calls no SDK.

mod backup;
mod clone;
mod deadline;
mod drain;
mod fargate;
pub mod incremental;
mod lease;
mod metrics;
mod outcome;
mod restore;
mod retention;
mod sweep;
mod task;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::Notify;
use tracing::{error, info, instrument, warn};

pub use self::deadline::Deadline;
pub use self::fargate::fargate_owner;
pub use crate::ports::RunnerEvent;

use self::lease::{flush_logs, heartbeat, RunState};
use self::outcome::{completion, Outcome};
use self::task::TaskHooks;
use crate::config::Config;
use crate::domain::FieldError;
use crate::domain::{Destination, Execution, ExecutionType, Job, LogLevel, Source};
use crate::error::{ServiceError, StoreError};
use crate::hooks::{HookCall, HookRunner, PreHookFailed};
use crate::ports::{
    DestinationRepository, Dispatcher, ExecutionStore, HookRepository, JobRepository, KeyStore, ObjectStore, ObjectStores, SecretStore,
    SettingsStore, StateStore,
};

/// The stores the runner reads and writes.
#[derive(Clone)]
pub struct RunnerStores {
    pub jobs: Arc<dyn JobRepository>,
    pub destinations: Arc<dyn DestinationRepository>,
    pub keys: Arc<dyn KeyStore>,
    pub executions: Arc<dyn ExecutionStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub hooks: Arc<dyn HookRepository>,
}

impl RunnerStores {
    /// Every store from one object that implements them all.
    pub fn of<S: StateStore + 'static>(store: &Arc<S>) -> Self {
        Self {
            jobs: store.clone(),
            destinations: store.clone(),
            keys: store.clone(),
            executions: store.clone(),
            settings: store.clone(),
            hooks: store.clone(),
        }
    }
}

/// Performs queued executions.
pub struct Runner {
    stores: RunnerStores,
    objects: Arc<dyn ObjectStores>,
    secrets: Arc<dyn SecretStore>,
    config: Config,
    /// This process's identity in leases.
    owner: String,
    hook_runner: HookRunner,
    /// Where the queue goes when this Lambda invocation runs out of time: a fresh one.
    successor: Option<Arc<dyn Dispatcher>>,
    /// Starts the Fargate task of a `"runner": "fargate"` execution.
    fargate: Option<Arc<dyn Dispatcher>>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("owner", &self.owner).finish_non_exhaustive()
    }
}

impl Runner {
    pub fn new(stores: RunnerStores, objects: Arc<dyn ObjectStores>, secrets: Arc<dyn SecretStore>, config: Config) -> Self {
        let hook_runner = HookRunner {
            rules: config.hook_rules(),
        };
        Self {
            stores,
            objects,
            secrets,
            config,
            owner: format!("runner-{}", uuid::Uuid::new_v4()),
            hook_runner,
            successor: None,
            fargate: None,
        }
    }

    /// Hands the queue to `successor` when an invocation runs short of time.
    #[must_use]
    pub fn with_successor(mut self, successor: Arc<dyn Dispatcher>) -> Self {
        self.successor = Some(successor);
        self
    }

    /// Starts Fargate executions' tasks through `launcher`.
    #[must_use]
    pub fn with_fargate(mut self, launcher: Arc<dyn Dispatcher>) -> Self {
        self.fargate = Some(launcher);
        self
    }

    /// Claims and renews as `owner` (a Fargate task as [`fargate_owner`]).
    #[must_use]
    pub fn with_owner(mut self, owner: String) -> Self {
        self.owner = owner;
        self
    }

    /// Runs one claimed execution to its end, with a heartbeat beside it.
    #[instrument(skip_all, fields(execution_id = %execution.id, job_id = %execution.job_id))]
    async fn perform(&self, execution: Execution, job: Option<Job>, deadline: Option<Deadline>) {
        let state = Arc::new(RunState::new(&execution.id));
        let watch = self.watch_deadline(deadline, &state);
        let stop = Arc::new(Notify::new());
        let beat = heartbeat(
            self.stores.executions.clone(),
            self.owner.clone(),
            self.config.lease_seconds,
            state.clone(),
            stop.clone(),
        );
        let heartbeat = tokio::spawn(beat);
        state.advance(crate::domain::Stage::Initializing, 2);
        let completion = match execution.execution_type {
            ExecutionType::Backup => {
                self.run_task(&execution, &state, self.load_backup(&execution, job, &state).await)
                    .await
            }
            ExecutionType::Restore => self.run_task(&execution, &state, self.load_restore(&execution, &state).await).await,
            ExecutionType::Clone => {
                self.run_task(&execution, &state, self.load_clone(&execution, job, &state).await)
                    .await
            }
            other => {
                let message = format!("{other:?} executions are not performed by the runner");
                completion(&execution, &state, "Execution", Outcome::failed(message))
            }
        };
        if let Some(w) = watch {
            w.abort();
        }
        stop.notify_one();
        let _ = heartbeat.await;
        flush_logs(self.stores.executions.as_ref(), &state).await;
        if state.lease_lost.load(Ordering::Relaxed) {
            warn!("lease lost; the execution was failed by the sweep and is left as it is");
            return;
        }
        match self.stores.executions.complete(&execution.id, &self.owner, &completion).await {
            Ok(true) => {
                info!(status = completion.status.as_str(), "execution finished");
                if self.config.emf_metrics {
                    metrics::publish(&execution, &completion, state.bytes_read());
                }
            }
            Ok(false) => warn!("could not record the end: the lease was lost"),
            Err(e) => error!(error = %e, "could not record the end; the sweep will fail the execution"),
        }
    }

    /// The job an execution runs: `read` when it was read with the claim.
    async fn job_of(&self, execution: &Execution, read: Option<Job>) -> Result<Job, Outcome> {
        if let Some(job) = read {
            return Ok(job);
        }
        match self.stores.jobs.get_job(&execution.job_id).await {
            Ok(Some(j)) => Ok(j),
            Ok(None) => Err(Outcome::failed("Job was deleted before it ran")),
            Err(e) => Err(Outcome::failed(format!("cannot read the job: {e}"))),
        }
    }

    /// The job as it may run now: the operator's policy checked again right before the
    /// runner acts (a path or a link may have changed since the job was stored), with each
    /// command's program resolved to the file that will run.
    fn confined(&self, mut job: Job) -> Result<Job, Outcome> {
        let refused = |e: FieldError| Outcome::failed(format!("the job no longer fits the operator's policy: {}", ServiceError::from(e)));
        job.items = self.config.policy.check_items(&job.items).map_err(refused)?;
        Ok(job)
    }

    /// Reads the Secrets Manager secrets a task names, right before it runs; adds their
    /// values to what hooks' output must not show.
    async fn read_secrets(&self, names: Vec<String>, hooks: &mut TaskHooks) -> Result<Arc<HashMap<String, String>>, Outcome> {
        let mut values = HashMap::new();
        for name in names {
            if values.contains_key(&name) {
                continue;
            }
            let value = self.secrets.secret_value(&name).await.map_err(|e| Outcome::failed(e.to_string()))?;
            hooks.secrets.push(value.clone());
            values.insert(name, value);
        }
        Ok(Arc::new(values))
    }

    /// The job's destinations, in its order.
    async fn destinations_of(&self, job: &Job) -> Result<Vec<Destination>, Outcome> {
        let mut out = Vec::new();
        for id in &job.destinations {
            match self.stores.destinations.get_destination(id).await {
                Ok(Some(d)) => out.push(d),
                Ok(None) => return Err(Outcome::failed(format!("destination {id} no longer exists"))),
                Err(e) => return Err(Outcome::failed(e.to_string())),
            }
        }
        Ok(out)
    }

    /// The object store a destination lives in.
    fn store_of(&self, d: &Destination) -> Arc<dyn ObjectStore> {
        self.objects.at(&d.location())
    }

    /// The enabled hooks that apply to `job`, by name (none when the job disables hooks),
    /// and the secrets their output must not show.
    async fn hooks_for(&self, job: &Job, state: &RunState) -> TaskHooks {
        let secrets = secrets_of(job);
        if !job.hooks_enabled {
            return TaskHooks {
                hooks: Vec::new(),
                secrets,
            };
        }
        let hooks = match self.stores.hooks.list_hooks().await {
            Ok(all) => all.into_iter().filter(|h| h.enabled && h.applies_to(&job.id)).collect(),
            Err(e) => {
                state.log(LogLevel::Warning, format!("could not read the hooks; none will run: {e}"));
                Vec::new()
            }
        };
        TaskHooks { hooks, secrets }
    }

    /// Runs the hooks matching `call`'s type and position, logging each into the
    /// execution's log; answers why when a pre hook fails the task.
    async fn run_hooks(&self, hooks: &TaskHooks, call: &HookCall, state: &RunState) -> Result<(), PreHookFailed> {
        self.hook_runner
            .run_all(&hooks.hooks, call, &hooks.secrets, |level, message| state.log(level, message))
            .await
    }
}

/// Values hooks must never echo into logs: the passwords a job's sources name, and the
/// runner's own AWS secrets.
fn secrets_of(job: &Job) -> Vec<String> {
    let mut vars: Vec<&str> = job
        .items
        .iter()
        .filter_map(|i| match &i.source {
            Source::Postgres { password_env, .. } | Source::Mysql { password_env, .. } => password_env.as_deref(),
            _ => None,
        })
        .collect();
    vars.extend(["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]);
    vars.into_iter()
        .filter_map(|v| std::env::var(v).ok())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Dispatches to a runner in the same process (under `cairn serve`).
#[derive(Debug, Clone)]
pub struct InProcessDispatcher {
    pub runner: Arc<Runner>,
}

#[async_trait::async_trait]
impl Dispatcher for InProcessDispatcher {
    async fn dispatch(&self, execution_id: &str) -> Result<(), StoreError> {
        let runner = self.runner.clone();
        let hint = execution_id.to_owned();
        tokio::spawn(async move { runner.drain(Some(&hint), None).await });
        Ok(())
    }
}

#[cfg(test)]
mod tests;
