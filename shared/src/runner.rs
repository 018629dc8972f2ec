//! The runner: claims queued executions (FIFO, never more than `maxConcurrentJobs` at
//! once), performs them with a heartbeat that renews its lease, writes progress and logs
//! and notices cancels, and the periodic sweep that fails executions whose runner died.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::Notify;
use tracing::{error, info, instrument, warn};

use crate::adapters::AwsClients;
use crate::config::Config;
use crate::engine::manifest::{Manifest, ManifestItem, MANIFEST_NAME};
use crate::engine::retention::{self, Candidate};
use crate::engine::sources::{self, SourceContext};
use crate::engine::upload::{self, backup_item, EngineLog, Target};
use crate::engine::{EngineError, Signals};
use crate::error::StoreError;
use crate::hooks::{HookCall, HookRunner};
use crate::model::{ApiKey, Destination, Execution, ExecutionStatus, ExecutionType, ItemResult, Job, LogEntry, LogLevel, Source, Stage};
use crate::model::{Hook, HookType, RestoreRequest, RestoreTarget};
use crate::store::HookRepository;
use crate::store::{
    ClaimOutcome, Completion, DestinationRepository, Dispatcher, ExecutionQuery, ExecutionStore, JobRepository, KeyStore, RenewOutcome,
    SettingsStore,
};
use crate::time;

/// What the runner function is invoked with.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// Performs queued executions.
pub struct Runner {
    stores: RunnerStores,
    clients: AwsClients,
    config: Config,
    /// This process's identity in leases.
    owner: String,
    /// A process's writes to the slot counter (claims, completions, the sweep's verdicts)
    /// go one at a time: DynamoDB's conditions keep processes apart, and this keeps a
    /// process's own drainers from contending for the slot item (and keeps moto, whose
    /// failed transactions restore whole tables, from undoing concurrent writes).
    slot_lock: tokio::sync::Mutex<()>,
    hook_runner: HookRunner,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("owner", &self.owner).finish_non_exhaustive()
    }
}

/// When an execution was claimed (epoch seconds), for the hooks' start argument.
fn started_epoch(execution: &Execution) -> i64 {
    execution
        .started_at
        .as_deref()
        .and_then(time::parse_iso)
        .unwrap_or_else(time::now)
        .timestamp()
}

/// An execution this runner claimed, with its job when that was read beside the claim.
struct Claimed {
    execution: Execution,
    job: Option<Job>,
}

/// What a task came to, before post hooks and the final write.
struct Outcome {
    status: ExecutionStatus,
    size: Option<u64>,
    path: Option<String>,
    error: Option<String>,
    items: Vec<ItemResult>,
}

impl Outcome {
    fn new(status: ExecutionStatus, size: Option<u64>, path: Option<String>, error: Option<String>, items: Vec<ItemResult>) -> Self {
        Self {
            status,
            size,
            path,
            error,
            items,
        }
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

/// Progress points: 0-10 before the data, 10-90 while items stream, then verification,
/// retention and post hooks.
const DATA_START: u8 = 10;
const DATA_END: u8 = 90;

/// What the heartbeat and the work share while an execution runs.
struct RunState {
    execution_id: String,
    signals: Arc<Signals>,
    logs: Mutex<Vec<LogEntry>>,
    stage: Mutex<Stage>,
    progress: AtomicU8,
    items_total: AtomicUsize,
    item_index: AtomicUsize,
    /// Source bytes of the current item when known (directories), 0 otherwise.
    item_bytes: AtomicU64,
    cancel_requested: AtomicBool,
    lease_lost: AtomicBool,
}

impl RunState {
    fn new(execution_id: &str) -> Self {
        Self {
            execution_id: execution_id.to_owned(),
            signals: Signals::new(),
            logs: Mutex::new(Vec::new()),
            stage: Mutex::new(Stage::Initializing),
            progress: AtomicU8::new(0),
            items_total: AtomicUsize::new(1),
            item_index: AtomicUsize::new(0),
            item_bytes: AtomicU64::new(0),
            cancel_requested: AtomicBool::new(false),
            lease_lost: AtomicBool::new(false),
        }
    }

    fn log(&self, level: LogLevel, message: impl Into<String>) {
        let message = message.into();
        let stage = *self.stage.lock().expect("stage lock");
        match level {
            LogLevel::Info => {
                info!(execution_id = %self.execution_id, stage = stage.as_str(), "{message}")
            }
            LogLevel::Warning => {
                warn!(execution_id = %self.execution_id, stage = stage.as_str(), "{message}")
            }
            LogLevel::Error => {
                error!(execution_id = %self.execution_id, stage = stage.as_str(), "{message}")
            }
        }
        self.logs.lock().expect("log lock").push(LogEntry {
            timestamp: time::iso(time::now()),
            level,
            stage,
            message,
        });
    }

    /// Moves to `stage` (never backwards) and raises progress to at least `progress`.
    fn advance(&self, stage: Stage, progress: u8) {
        let mut s = self.stage.lock().expect("stage lock");
        if stage > *s {
            *s = stage;
        }
        self.progress.fetch_max(progress, Ordering::Relaxed);
    }

    /// Progress from the bytes read of the current item, where its size is known.
    fn data_progress(&self) {
        let total_items = self.items_total.load(Ordering::Relaxed).max(1) as u64;
        let index = self.item_index.load(Ordering::Relaxed) as u64;
        let item_bytes = self.item_bytes.load(Ordering::Relaxed);
        let read = self.signals.input_bytes.load(Ordering::Relaxed).min(item_bytes);
        let within = (read * 1000).checked_div(item_bytes).unwrap_or(0);
        let span = u64::from(DATA_END - DATA_START);
        let p = u64::from(DATA_START) + span * (index * 1000 + within) / (total_items * 1000);
        self.progress
            .fetch_max(u8::try_from(p.min(u64::from(DATA_END))).unwrap_or(DATA_END), Ordering::Relaxed);
        if self.signals.uploaded_bytes.load(Ordering::Relaxed) > 0 {
            self.advance(Stage::Uploading, 0);
        }
    }
}

impl Runner {
    pub fn new(stores: RunnerStores, clients: AwsClients, config: Config) -> Self {
        let hook_runner = HookRunner {
            rules: config.hook_rules(),
        };
        Self {
            stores,
            clients,
            config,
            owner: format!("runner-{}", uuid::Uuid::new_v4()),
            slot_lock: tokio::sync::Mutex::new(()),
            hook_runner,
        }
    }

    /// Claims and performs Pending executions, oldest first, until none can be claimed
    /// (the queue is empty or every slot is taken).
    ///
    /// One drainer fills every free slot: it claims until no slot is left, performs the
    /// claimed executions concurrently, and claims again each time one ends. It returns
    /// when nothing it started is running and nothing more can be claimed (so a Lambda
    /// invocation never leaves work behind when it returns).
    pub async fn drain(self: &Arc<Self>, mut hint: Option<&str>) {
        let mut running = tokio::task::JoinSet::new();
        loop {
            loop {
                match self.claim_next(hint).await {
                    Ok(Some(Claimed { execution, job })) => {
                        // Claimed: no need to look for it any more.
                        if hint == Some(execution.id.as_str()) {
                            hint = None;
                        }
                        let runner = self.clone();
                        running.spawn(async move { runner.perform(execution, job).await });
                    }
                    Ok(None) => break,
                    Err(e) => {
                        error!(error = %e, "could not claim work; the sweep will retry");
                        break;
                    }
                }
            }
            if running.join_next().await.is_none() {
                return;
            }
        }
    }

    /// Claims the oldest Pending execution that can run now (or the hinted one).
    async fn claim_next(&self, hint: Option<&str>) -> Result<Option<Claimed>, StoreError> {
        let _one_at_a_time = self.slot_lock.lock().await;
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
            let mut job = None;
            for attempt in 0..5u64 {
                let now = time::now();
                let lease = now.timestamp() + i64::try_from(self.config.lease_seconds).unwrap_or(30);
                let started = time::iso(now);
                let claim = self.stores.executions.claim(&c.id, &self.owner, lease, max, &started);
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
                    ClaimOutcome::Claimed(e) => return Ok(Some(Claimed { execution: *e, job })),
                    ClaimOutcome::NoSlot => return Ok(None),
                    ClaimOutcome::NotPending => break,
                    ClaimOutcome::Contended => {
                        tokio::time::sleep(Duration::from_millis(20 + rand::random::<u64>() % 80 * (attempt + 1))).await
                    }
                }
            }
        }
        Ok(None)
    }

    /// Fails Running executions whose lease expired (their runner died), then works on
    /// whatever is queued (re-dispatching work whose dispatch was lost).
    pub async fn sweep(self: &Arc<Self>) {
        let now = time::now();
        match self.stores.executions.expired_running(now.timestamp()).await {
            Ok(expired) => {
                for e in expired {
                    self.fail_never_finished(&e).await;
                }
            }
            Err(err) => error!(error = %err, "sweep could not list expired executions"),
        }
        self.drain(None).await;
    }

    async fn fail_never_finished(&self, e: &Execution) {
        let expired_at = e
            .lease_expires_at
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(time::iso)
            .unwrap_or_default();
        let now = time::now();
        let started = e.started_at.as_deref().and_then(time::parse_iso).unwrap_or(now);
        let message =
            format!("Never finished: the runner stopped renewing its lease (expired {expired_at}); the backup is incomplete (status 104)");
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
        let failed = {
            let _one_at_a_time = self.slot_lock.lock().await;
            self.stores.executions.fail_expired(&e.id, &completion).await
        };
        match failed {
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
            Err(err) => {
                error!(execution_id = %e.id, error = %err, "could not fail an expired execution")
            }
        }
    }

    /// Post-backup hooks for an execution whose runner died: status 104.
    async fn post_hooks_never_finished(&self, e: &Execution) {
        let Ok(Some(job)) = self.stores.jobs.get_job(&e.job_id).await else {
            return;
        };
        let state = RunState::new(&e.id);
        *state.stage.lock().expect("stage lock") = Stage::PostHooks;
        let hooks = self.hooks_for(&job, &state).await;
        let start = started_epoch(e);
        let post = HookCall::backup_post(&job, start, time::now().timestamp(), 104, &e.id);
        let _ = self.run_hooks(&hooks, &post, &state, &secrets_of(&job)).await;
        flush_logs(self.stores.executions.as_ref(), &state).await;
    }

    /// Aborts multipart uploads a dead runner left under the execution's folders.
    async fn abort_leftover_uploads(&self, e: &Execution) {
        let Ok(Some(job)) = self.stores.jobs.get_job(&e.job_id).await else {
            return;
        };
        for d in self.destinations_of(&job).await.unwrap_or_default() {
            let client = self.clients.s3_for(d.endpoint.as_deref(), d.region.as_deref());
            let prefix = d.object_key(&job.id, &e.id, "");
            let Ok(list) = client.list_multipart_uploads().bucket(&d.bucket).prefix(&prefix).send().await else {
                continue;
            };
            for u in list.uploads() {
                if let (Some(key), Some(id)) = (u.key(), u.upload_id()) {
                    let _ = client
                        .abort_multipart_upload()
                        .bucket(&d.bucket)
                        .key(key)
                        .upload_id(id)
                        .send()
                        .await;
                }
            }
        }
    }

    /// The job an execution runs: `read` when it was read with the claim.
    async fn job_of(&self, execution: &Execution, read: Option<Job>) -> Result<Job, String> {
        if let Some(job) = read {
            return Ok(job);
        }
        match self.stores.jobs.get_job(&execution.job_id).await {
            Ok(Some(j)) => Ok(j),
            Ok(None) => Err("Job was deleted before it ran".into()),
            Err(e) => Err(format!("cannot read the job: {e}")),
        }
    }

    async fn destinations_of(&self, job: &Job) -> Result<Vec<Destination>, String> {
        let mut out = Vec::new();
        for id in &job.destinations {
            match self.stores.destinations.get_destination(id).await {
                Ok(Some(d)) => out.push(d),
                Ok(None) => return Err(format!("destination {id} no longer exists")),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(out)
    }

    /// Runs one claimed execution to its end, with a heartbeat beside it.
    #[instrument(skip(self, execution), fields(execution_id = %execution.id, job_id = %execution.job_id))]
    async fn perform(&self, execution: Execution, job: Option<Job>) {
        let state = Arc::new(RunState::new(&execution.id));
        let stop = Arc::new(Notify::new());
        let heartbeat = tokio::spawn(heartbeat(
            self.stores.executions.clone(),
            self.owner.clone(),
            self.config.lease_seconds,
            state.clone(),
            stop.clone(),
        ));
        let completion = match execution.execution_type {
            ExecutionType::Backup => self.backup(&execution, &state, job).await,
            ExecutionType::Restore => self.restore(&execution, &state).await,
            ExecutionType::Clone => self.clone_job(&execution, &state, job).await,
            other => self.finish(
                &execution,
                &state,
                ExecutionStatus::Failed,
                None,
                None,
                Some(format!("{other:?} executions are not supported by this runner yet")),
                vec![],
            ),
        };
        stop.notify_one();
        let _ = heartbeat.await;
        flush_logs(self.stores.executions.as_ref(), &state).await;
        if state.lease_lost.load(Ordering::Relaxed) {
            warn!("lease lost; the execution was failed by the sweep and is left as it is");
            return;
        }
        let completed = {
            let _one_at_a_time = self.slot_lock.lock().await;
            self.stores.executions.complete(&execution.id, &self.owner, &completion).await
        };
        match completed {
            Ok(true) => info!(status = completion.status.as_str(), "execution finished"),
            Ok(false) => warn!("could not record the end: the lease was lost"),
            Err(e) => {
                error!(error = %e, "could not record the end; the sweep will fail the execution")
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        execution: &Execution,
        state: &RunState,
        status: ExecutionStatus,
        size: Option<u64>,
        path: Option<String>,
        error: Option<String>,
        items: Vec<ItemResult>,
    ) -> Completion {
        let now = time::now();
        let started = execution.started_at.as_deref().and_then(time::parse_iso).unwrap_or(now);
        let stage = match status {
            ExecutionStatus::Success | ExecutionStatus::Partial => Stage::Completed,
            ExecutionStatus::Cancelled => Stage::Cancelled,
            _ => Stage::Failed,
        };
        *state.stage.lock().expect("stage lock") = stage;
        match status {
            ExecutionStatus::Success => state.log(LogLevel::Info, "Backup completed successfully"),
            ExecutionStatus::Partial => state.log(
                LogLevel::Warning,
                format!("Backup partially completed: {}", error.as_deref().unwrap_or("")),
            ),
            ExecutionStatus::Cancelled => state.log(LogLevel::Warning, "Backup cancelled"),
            _ => state.log(
                LogLevel::Error,
                format!("Backup failed: {}", error.as_deref().unwrap_or("unknown error")),
            ),
        }
        *state.stage.lock().expect("stage lock") = stage;
        Completion {
            status,
            stage,
            ended_at: time::iso(now),
            duration_ms: u64::try_from((now - started).num_milliseconds()).unwrap_or(0),
            size,
            path,
            error,
            items,
        }
    }

    async fn config_document(&self) -> Result<Vec<u8>, StoreError> {
        let jobs = self.stores.jobs.list_jobs().await?;
        let destinations = self.stores.destinations.list_destinations().await?;
        let keys: Vec<_> = self.stores.keys.list_keys().await?.iter().map(ApiKey::to_api).collect();
        let settings = self.stores.settings.settings().await?;
        let doc =
            json!({"exportedAt": time::iso(time::now()), "jobs": jobs, "destinations": destinations, "keys": keys, "settings": settings});
        Ok(serde_json::to_vec_pretty(&doc).unwrap_or_default())
    }

    async fn backup(&self, execution: &Execution, state: &Arc<RunState>, job: Option<Job>) -> Completion {
        state.advance(Stage::Initializing, 2);
        let job = match self.job_of(execution, job).await {
            Ok(j) => j,
            Err(message) => return self.finish(execution, state, ExecutionStatus::Failed, None, None, Some(message), vec![]),
        };
        // Both read the store: at once, since every round trip delays the first byte.
        let (destinations, hooks) = tokio::join!(self.destinations_of(&job), self.hooks_for(&job, state));
        let destinations = match destinations {
            Ok(d) => d,
            Err(e) => return self.finish(execution, state, ExecutionStatus::Failed, None, None, Some(e), vec![]),
        };
        state.items_total.store(job.items.len(), Ordering::Relaxed);
        state.log(
            LogLevel::Info,
            format!(
                "Backup of job '{}' started: {} item(s) to {} destination(s), zstd level {}",
                job.name,
                job.items.len(),
                destinations.len(),
                job.compression.level
            ),
        );
        let secrets = secrets_of(&job);
        let start = started_epoch(execution);
        state.advance(Stage::PreHooks, 5);
        let pre = HookCall::backup_pre(&job, start, &execution.id);
        let outcome = match self.run_hooks(&hooks, &pre, state, &secrets).await {
            Err(message) => {
                state.log(LogLevel::Error, format!("Backup stopped before touching anything: {message}"));
                Outcome::new(ExecutionStatus::Failed, None, None, Some(message), vec![])
            }
            Ok(()) => self.backup_items(execution, state, &job, &destinations, &hooks, &secrets).await,
        };
        state.advance(Stage::PostHooks, 98);
        let post = HookCall::backup_post(&job, start, time::now().timestamp(), outcome.status.hook_code(), &execution.id);
        // Post hooks only warn; their failure never changes the outcome.
        let _ = self.run_hooks(&hooks, &post, state, &secrets).await;
        self.finish(
            execution,
            state,
            outcome.status,
            outcome.size,
            outcome.path,
            outcome.error,
            outcome.items,
        )
    }

    /// The items of a backup, after the pre hooks succeeded: stream each, write the
    /// manifest, apply retention.
    async fn backup_items(
        &self,
        execution: &Execution,
        state: &Arc<RunState>,
        job: &Job,
        destinations: &[Destination],
        hooks: &[Hook],
        secrets: &[String],
    ) -> Outcome {
        let config_document = if job.items.iter().any(|i| matches!(i.source, Source::Config {})) {
            match self.config_document().await {
                Ok(d) => Some(d),
                Err(e) => {
                    return Outcome::new(
                        ExecutionStatus::Failed,
                        None,
                        None,
                        Some(format!("cannot export the configuration: {e}")),
                        vec![],
                    )
                }
            }
        } else {
            None
        };

        // Validated at job creation; a job stored before a recipient became invalid fails here.
        let recipients = match job
            .encryption
            .as_ref()
            .map(|e| crate::engine::crypto::parse_recipients(&e.recipients))
            .transpose()
        {
            Ok(r) => r.map(Arc::new),
            Err(e) => return Outcome::new(ExecutionStatus::Failed, None, None, Some(format!("encryption: {e}")), vec![]),
        };
        let mut results: Vec<ItemResult> = Vec::new();
        let mut manifest_items = Vec::new();
        let mut stored_total = 0u64;
        for (index, item) in job.items.iter().enumerate() {
            if state.signals.cancelled() {
                results.push(ItemResult::cancelled(item.name.clone(), "cancelled before it started".into()));
                continue;
            }
            state.item_index.store(index, Ordering::Relaxed);
            let item_hook_id = crate::hooks::item_id(&job.id, &item.name);
            let item_log_id = format!("{}/{}", execution.id, item.name);
            let item_pre = HookCall::item_pre(HookType::BackupItem, &job.id, &item_hook_id, &item.name, &item_log_id);
            if let Err(message) = self.run_hooks(hooks, &item_pre, state, secrets).await {
                state.log(LogLevel::Error, format!("Item '{}' failed: {message}", item.name));
                results.push(ItemResult::failed(item.name.clone(), message));
                let item_post = HookCall::item_post(
                    HookType::BackupItem,
                    &job.id,
                    &item_hook_id,
                    &item.name,
                    ExecutionStatus::Failed.hook_code(),
                    &item_log_id,
                );
                let _ = self.run_hooks(hooks, &item_post, state, secrets).await;
                continue;
            }
            state.advance(Stage::Dumping, 0);
            state.data_progress();
            let source = item.source.clone();
            state.item_bytes.store(0, Ordering::Relaxed);
            state.signals.input_bytes.store(0, Ordering::Relaxed);
            // The item's size (for progress by bytes) is measured beside the backup, not
            // before it: walking a large tree first would delay every byte.
            let sizer = {
                let (size_source, state, name) = (source.clone(), state.clone(), item.name.clone());
                tokio::spawn(async move {
                    let known = tokio::task::spawn_blocking(move || sources::known_size(&size_source))
                        .await
                        .ok()
                        .flatten();
                    if let Some(bytes) = known {
                        if state.item_index.load(Ordering::Relaxed) == index {
                            state.item_bytes.store(bytes, Ordering::Relaxed);
                            state.log(LogLevel::Info, format!("Item '{name}': {bytes} bytes to read"));
                        }
                    }
                })
            };
            let object = sources::object_name(&item.name, &source);
            let targets: Vec<Target> = destinations
                .iter()
                .map(|d| Target {
                    client: self.clients.s3_for(d.endpoint.as_deref(), d.region.as_deref()),
                    bucket: d.bucket.clone(),
                    key: d.object_key(&job.id, &execution.id, &object),
                    storage_class: d.storage_class.clone(),
                })
                .collect();
            state.log(
                LogLevel::Info,
                format!("Item '{}': streaming {} source", item.name, kind_name(&source)),
            );
            let ctx = SourceContext {
                signals: state.signals.clone(),
                problems: upload::new_problems(),
                runtime: tokio::runtime::Handle::current(),
                s3: self.clients.s3.clone(),
                config_document: config_document.clone(),
            };
            let log_state = state.clone();
            let log: EngineLog =
                Arc::new(move |warning, message| log_state.log(if warning { LogLevel::Warning } else { LogLevel::Info }, message));
            let outcome = backup_item(
                source.clone(),
                job.compression.level,
                self.config.part_size_mib * 1024 * 1024,
                recipients.clone(),
                targets,
                ctx,
                log,
            )
            .await;
            sizer.abort();
            match outcome {
                Ok(b) => {
                    let ratio = if b.input_bytes > 0 {
                        b.summary.bytes as f64 / b.input_bytes as f64
                    } else {
                        0.0
                    };
                    for o in &b.objects {
                        state.log(
                            LogLevel::Info,
                            format!(
                                "Item '{}': stored s3://{}/{} ({} bytes from {} read, ratio {ratio:.3}); size and checksum verified",
                                item.name, o.bucket, o.key, b.summary.bytes, b.input_bytes
                            ),
                        );
                    }
                    for p in b.problems.iter().take(20) {
                        state.log(LogLevel::Warning, format!("Item '{}': {p}", item.name));
                    }
                    let (status, error) = if b.problems.is_empty() {
                        (ExecutionStatus::Success, None)
                    } else {
                        (
                            ExecutionStatus::Partial,
                            Some(format!("{} entries could not be read (first: {})", b.problems.len(), b.problems[0])),
                        )
                    };
                    stored_total += b.summary.bytes;
                    results.push(ItemResult {
                        name: item.name.clone(),
                        status,
                        size: Some(b.summary.bytes),
                        error,
                    });
                    manifest_items.push(ManifestItem {
                        name: item.name.clone(),
                        kind: kind_name(&source).to_owned(),
                        format: if source.is_archive() { "tar".into() } else { "stream".into() },
                        compression: "zstd".into(),
                        object: object.clone(),
                        input_bytes: b.input_bytes,
                        stored_bytes: b.summary.bytes,
                        sha256: b.summary.sha256.clone(),
                        parts: b.summary.parts,
                        crc64nvme: b.summary.crc64nvme.clone(),
                        etag: b.objects.first().map(|o| o.etag.clone()).unwrap_or_default(),
                        encrypted: job.encryption.is_some(),
                        problems: b.problems.clone(),
                    });
                }
                Err(EngineError::Cancelled) => {
                    state.log(
                        LogLevel::Warning,
                        format!("Item '{}': cancelled; its upload was aborted", item.name),
                    );
                    results.push(ItemResult::cancelled(item.name.clone(), "cancelled".into()));
                }
                Err(e) => {
                    state.log(LogLevel::Error, format!("Item '{}' failed: {e}", item.name));
                    results.push(ItemResult::failed(item.name.clone(), e.to_string()));
                }
            }
            let item_status = results.last().map_or(ExecutionStatus::Failed, |r| r.status);
            let item_post = HookCall::item_post(
                HookType::BackupItem,
                &job.id,
                &item_hook_id,
                &item.name,
                item_status.hook_code(),
                &item_log_id,
            );
            let _ = self.run_hooks(hooks, &item_post, state, secrets).await;
            state.item_index.store(index + 1, Ordering::Relaxed);
            state.item_bytes.store(0, Ordering::Relaxed);
            state.data_progress();
        }

        let folder = |d: &Destination| d.object_key(&job.id, &execution.id, "").trim_end_matches('/').to_owned();
        if state.signals.cancelled() {
            self.delete_folders(destinations, job, &execution.id, state).await;
            return Outcome::new(ExecutionStatus::Cancelled, None, None, Some("Cancelled by request".into()), results);
        }
        state.advance(Stage::Verifying, DATA_END);
        let failed: Vec<&ItemResult> = results.iter().filter(|r| r.status == ExecutionStatus::Failed).collect();
        let error_line = (!failed.is_empty()).then(|| {
            failed
                .iter()
                .map(|r| format!("item '{}' failed: {}", r.name, r.error.as_deref().unwrap_or("unknown error")))
                .collect::<Vec<_>>()
                .join("; ")
        });
        let partial_items: Vec<&ItemResult> = results.iter().filter(|r| r.status == ExecutionStatus::Partial).collect();
        if manifest_items.is_empty() {
            return Outcome::new(
                ExecutionStatus::Failed,
                None,
                None,
                error_line.or_else(|| Some("no item was backed up".into())),
                results,
            );
        }
        let status = if failed.is_empty() && partial_items.is_empty() {
            ExecutionStatus::Success
        } else {
            ExecutionStatus::Partial
        };
        let manifest = Manifest {
            format_version: 1,
            execution_id: execution.id.clone(),
            job_id: job.id.clone(),
            job_name: job.name.clone(),
            created_at: time::iso(time::now()),
            status,
            items: manifest_items,
            failed_items: failed
                .iter()
                .map(|r| (r.name.clone(), r.error.clone().unwrap_or_default()))
                .collect(),
            job: job.clone(),
        };
        let body = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        for d in destinations {
            let key = format!("{}/{MANIFEST_NAME}", folder(d));
            let client = self.clients.s3_for(d.endpoint.as_deref(), d.region.as_deref());
            if let Err(e) = client
                .put_object()
                .bucket(&d.bucket)
                .key(&key)
                .content_type("application/json")
                .body(body.clone().into())
                .send()
                .await
            {
                let msg = format!("could not write s3://{}/{key}: {}", d.bucket, crate::adapters::sdk_error_text(e));
                return Outcome::new(ExecutionStatus::Failed, None, None, Some(msg), results);
            }
            state.log(LogLevel::Info, format!("Manifest written to s3://{}/{key}", d.bucket));
        }
        state.advance(Stage::Retention, 95);
        if let Some(policy) = &job.retention {
            self.apply_retention(job, execution, policy, destinations, state).await;
        }
        let first = &destinations[0];
        let path = format!("s3://{}/{}/", first.bucket, folder(first));
        let error = match (&error_line, partial_items.is_empty()) {
            (Some(e), _) => Some(e.clone()),
            (None, false) => Some(
                partial_items
                    .iter()
                    .map(|r| format!("item '{}': {}", r.name, r.error.as_deref().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            (None, true) => None,
        };
        Outcome::new(status, Some(stored_total), Some(path), error, results)
    }

    /// A restore: read the manifest, run the restore pre hooks, check every selected
    /// object (checksum, size, entry paths) before writing anything, then apply each
    /// item to its target; post hooks whatever the outcome.
    async fn restore(&self, execution: &Execution, state: &Arc<RunState>) -> Completion {
        let fail = |message: String| self.finish(execution, state, ExecutionStatus::Failed, None, None, Some(message), vec![]);
        state.advance(Stage::Initializing, 2);
        let request: RestoreRequest = match execution.parameters.as_deref().map(serde_json::from_str) {
            Some(Ok(r)) => r,
            _ => return fail("the restore request is missing or malformed".into()),
        };
        let Some((bucket, folder)) = execution.path.as_deref().and_then(crate::adapters::s3::split_path) else {
            return fail("the backup's location is unknown".into());
        };
        let job = self.stores.jobs.get_job(&execution.job_id).await.ok().flatten();
        let destination = match &job {
            Some(j) => self
                .destinations_of(j)
                .await
                .unwrap_or_default()
                .into_iter()
                .find(|d| d.bucket == bucket),
            None => None,
        };
        let s3 = destination.as_ref().map_or_else(
            || self.clients.s3.clone(),
            |d| self.clients.s3_for(d.endpoint.as_deref(), d.region.as_deref()),
        );
        let manifest = match crate::engine::verify::read_manifest(&s3, bucket, folder).await {
            Ok(m) => m,
            Err(e) => return fail(e.to_string()),
        };
        let job = job.unwrap_or_else(|| manifest.job.clone());
        let selected: Vec<(ManifestItem, RestoreTarget)> = manifest
            .items
            .iter()
            .filter_map(|i| request.target_of(&i.name).map(|t| (i.clone(), t.clone())))
            .collect();
        if let Some(missing) = request
            .items
            .iter()
            .flatten()
            .find(|i| !manifest.items.iter().any(|m| m.name == i.name))
        {
            return fail(format!("the backup's manifest has no item '{}'", missing.name));
        }
        let names: Vec<String> = selected.iter().map(|(i, _)| i.name.clone()).collect();
        state.log(
            LogLevel::Info,
            format!(
                "Restore of {} item(s) from s3://{bucket}/{folder}/: {}",
                names.len(),
                names.join(", ")
            ),
        );
        let hooks = self.hooks_for(&job, state).await;
        let secrets = secrets_of(&job);
        let (item_id, item_name) = match selected.as_slice() {
            [(one, _)] if request.items.is_some() => (crate::hooks::item_id(&job.id, &one.name), one.name.clone()),
            _ => (String::new(), String::new()),
        };
        let start = started_epoch(execution);
        state.advance(Stage::PreHooks, 5);
        let pre = HookCall::restore_pre(&job, &item_id, &item_name, &names, start, &execution.id);
        let outcome = match self.run_hooks(&hooks, &pre, state, &secrets).await {
            Err(message) => Outcome::new(ExecutionStatus::Failed, None, None, Some(message), vec![]),
            Ok(()) => self.restore_items(state, &s3, bucket, folder, &selected, &request).await,
        };
        state.advance(Stage::PostHooks, 98);
        let post = HookCall::restore_post(
            &job,
            &item_id,
            &item_name,
            &names,
            start,
            time::now().timestamp(),
            outcome.status.hook_code(),
            &execution.id,
        );
        let _ = self.run_hooks(&hooks, &post, state, &secrets).await;
        self.finish(
            execution,
            state,
            outcome.status,
            outcome.size,
            execution.path.clone(),
            outcome.error,
            outcome.items,
        )
    }

    async fn restore_items(
        &self,
        state: &Arc<RunState>,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        folder: &str,
        selected: &[(ManifestItem, RestoreTarget)],
        request: &RestoreRequest,
    ) -> Outcome {
        let failed = |message: String| Outcome::new(ExecutionStatus::Failed, None, None, Some(message), vec![]);
        for (item, target) in selected {
            if let RestoreTarget::Directory { path, overwrite } = target {
                if let Err(e) = crate::engine::restore::check_directory_target(std::path::Path::new(path), *overwrite) {
                    return failed(format!("item '{}': {e}", item.name));
                }
            }
        }
        let identity = match crate::engine::crypto::identity_for(request.decryption.as_ref()) {
            Ok(i) => i,
            Err(e) => return failed(e),
        };
        state.advance(Stage::Verifying, 10);
        let total = selected.len().max(1);
        for (n, (item, _)) in selected.iter().enumerate() {
            if item.encrypted && identity.is_none() {
                return failed(format!(
                    "item '{}' is encrypted: give decryption.identityFile or decryption.identityEnv",
                    item.name
                ));
            }
            let reader = match self.object_reader(s3, bucket, &format!("{folder}/{}", item.object)).await {
                Ok(r) => r,
                Err(e) => return failed(format!("item '{}' cannot be read: {e}", item.name)),
            };
            let (item_c, identity_c) = (item.clone(), identity.clone());
            let checked = tokio::task::spawn_blocking(move || {
                crate::engine::restore::verify_before_apply(reader, &item_c, |r| {
                    crate::engine::crypto::decrypting(r, item_c.encrypted, identity_c.as_ref())
                })
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            if let Err(e) = checked {
                return failed(format!("item '{}' failed its checksum before anything was written: {e}", item.name));
            }
            state.log(LogLevel::Info, format!("Item '{}': SHA-256 and size match the manifest", item.name));
            state
                .progress
                .fetch_max(u8::try_from(10 + 40 * (n + 1) / total).unwrap_or(50), Ordering::Relaxed);
        }
        state.advance(Stage::Restoring, 50);
        let mut results = Vec::new();
        let mut size = 0;
        for (n, (item, target)) in selected.iter().enumerate() {
            if state.signals.cancelled() {
                results.push(ItemResult::cancelled(item.name.clone(), "cancelled".into()));
                continue;
            }
            let reader = match self.object_reader(s3, bucket, &format!("{folder}/{}", item.object)).await {
                Ok(r) => r,
                Err(e) => {
                    results.push(ItemResult::failed(item.name.clone(), e));
                    continue;
                }
            };
            let ctx = SourceContext {
                signals: state.signals.clone(),
                problems: upload::new_problems(),
                runtime: tokio::runtime::Handle::current(),
                s3: self.clients.s3.clone(),
                config_document: None,
            };
            let (item_c, target_c, identity_c) = (item.clone(), target.clone(), identity.clone());
            let applied = tokio::task::spawn_blocking(move || {
                let plain = crate::engine::crypto::decrypting(Box::new(reader), item_c.encrypted, identity_c.as_ref())?;
                crate::engine::restore::apply(plain, &item_c, &target_c, &ctx)
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            match applied {
                Ok(count) => {
                    state.log(
                        LogLevel::Info,
                        format!(
                            "Item '{}' restored to {} ({count} entries/bytes)",
                            item.name,
                            describe_target(target)
                        ),
                    );
                    size += item.stored_bytes;
                    results.push(ItemResult::succeeded(item.name.clone(), item.stored_bytes));
                }
                Err(e) => {
                    state.log(LogLevel::Error, format!("Item '{}' failed: {e}", item.name));
                    results.push(ItemResult::failed(item.name.clone(), e));
                }
            }
            state
                .progress
                .fetch_max(u8::try_from(50 + 45 * (n + 1) / total).unwrap_or(95), Ordering::Relaxed);
        }
        let (status, error) = overall(&results, state.signals.cancelled());
        Outcome::new(status, Some(size), None, error, results)
    }

    /// A clone: each item's source streamed straight into its target, no backup stored,
    /// with clone and clone_item hooks.
    async fn clone_job(&self, execution: &Execution, state: &Arc<RunState>, job: Option<Job>) -> Completion {
        state.advance(Stage::Initializing, 2);
        let job = match self.job_of(execution, job).await {
            Ok(j) => j,
            Err(message) => return self.finish(execution, state, ExecutionStatus::Failed, None, None, Some(message), vec![]),
        };
        state.items_total.store(job.items.len(), Ordering::Relaxed);
        state.log(
            LogLevel::Info,
            format!("Clone of job '{}' started: {} item(s)", job.name, job.items.len()),
        );
        let hooks = self.hooks_for(&job, state).await;
        let secrets = secrets_of(&job);
        let start = started_epoch(execution);
        state.advance(Stage::PreHooks, 5);
        let pre = HookCall::clone_pre(&job, start, &execution.id);
        let outcome = match self.run_hooks(&hooks, &pre, state, &secrets).await {
            Err(message) => Outcome::new(ExecutionStatus::Failed, None, None, Some(message), vec![]),
            Ok(()) => self.clone_items(execution, state, &job, &hooks, &secrets).await,
        };
        state.advance(Stage::PostHooks, 98);
        let post = HookCall::clone_post(&job, start, time::now().timestamp(), outcome.status.hook_code(), &execution.id);
        let _ = self.run_hooks(&hooks, &post, state, &secrets).await;
        self.finish(execution, state, outcome.status, outcome.size, None, outcome.error, outcome.items)
    }

    async fn clone_items(&self, execution: &Execution, state: &Arc<RunState>, job: &Job, hooks: &[Hook], secrets: &[String]) -> Outcome {
        state.advance(Stage::Restoring, 10);
        let mut results = Vec::new();
        let mut moved = 0;
        for (index, item) in job.items.iter().enumerate() {
            state.item_index.store(index, Ordering::Relaxed);
            if state.signals.cancelled() {
                results.push(ItemResult::cancelled(item.name.clone(), "cancelled".into()));
                continue;
            }
            let item_hook_id = crate::hooks::item_id(&job.id, &item.name);
            let log_id = format!("{}/{}", execution.id, item.name);
            let pre = HookCall::item_pre(HookType::CloneItem, &job.id, &item_hook_id, &item.name, &log_id);
            let result = match (self.run_hooks(hooks, &pre, state, secrets).await, &item.target) {
                (Err(message), _) => Err(message),
                (Ok(()), None) => Err("the item has no target".to_owned()),
                (Ok(()), Some(target)) => self.clone_item(state, &item.name, &item.source, target).await,
            };
            let status = match result {
                Ok(bytes) => {
                    moved += bytes;
                    state.log(LogLevel::Info, format!("Item '{}' cloned ({bytes} bytes streamed)", item.name));
                    results.push(ItemResult::succeeded(item.name.clone(), bytes));
                    ExecutionStatus::Success
                }
                Err(e) => {
                    state.log(LogLevel::Error, format!("Item '{}' failed: {e}", item.name));
                    results.push(ItemResult::failed(item.name.clone(), e));
                    ExecutionStatus::Failed
                }
            };
            let post = HookCall::item_post(HookType::CloneItem, &job.id, &item_hook_id, &item.name, status.hook_code(), &log_id);
            let _ = self.run_hooks(hooks, &post, state, secrets).await;
            state.item_index.store(index + 1, Ordering::Relaxed);
            state.data_progress();
        }
        let (status, error) = overall(&results, state.signals.cancelled());
        Outcome::new(status, Some(moved), None, error, results)
    }

    /// Streams one source into one target through a pipe: the producer on one thread,
    /// the restore client on another.
    async fn clone_item(&self, state: &Arc<RunState>, name: &str, source: &Source, target: &RestoreTarget) -> Result<u64, String> {
        if let RestoreTarget::Directory { path, overwrite } = target {
            crate::engine::restore::check_directory_target(std::path::Path::new(path), *overwrite)?;
        }
        let described = ManifestItem {
            name: name.to_owned(),
            kind: kind_name(source).to_owned(),
            format: if source.is_archive() { "tar".into() } else { "stream".into() },
            compression: "none".into(),
            object: sources::object_name(name, source),
            input_bytes: 0,
            stored_bytes: 0,
            sha256: String::new(),
            parts: 0,
            crc64nvme: String::new(),
            etag: String::new(),
            encrypted: false,
            problems: vec![],
        };
        let ctx = SourceContext {
            signals: state.signals.clone(),
            problems: upload::new_problems(),
            runtime: tokio::runtime::Handle::current(),
            s3: self.clients.s3.clone(),
            config_document: None,
        };
        let (reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
        let (source, pctx) = (source.clone(), ctx.clone());
        let producer = tokio::task::spawn_blocking(move || sources::produce(&source, writer, &pctx).map(drop));
        let target = target.clone();
        let applier = tokio::task::spawn_blocking(move || crate::engine::restore::apply_uncompressed(reader, &described, &target, &ctx));
        let (produced, applied) = tokio::join!(producer, applier);
        let produced = produced.map_err(|e| e.to_string())?.map_err(|e| format!("source: {e}"));
        let applied = applied.map_err(|e| e.to_string())?.map_err(|e| format!("target: {e}"));
        match (produced, applied) {
            (Ok(()), Ok(_)) => Ok(state.signals.input_bytes.swap(0, Ordering::Relaxed)),
            (Err(p), Err(a)) => Err(format!("{p}; {a}")),
            (Err(e), Ok(_)) | (Ok(()), Err(e)) => Err(e),
        }
    }

    /// A blocking reader over an S3 object, for the restore passes.
    async fn object_reader(&self, s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<crate::engine::verify::BodyReader, String> {
        let got = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(crate::adapters::sdk_error_text)?;
        Ok(crate::engine::verify::BodyReader::new(got.body, tokio::runtime::Handle::current()))
    }

    /// The enabled hooks that apply to `job`, by name; none when the job disables hooks.
    async fn hooks_for(&self, job: &Job, state: &RunState) -> Vec<Hook> {
        if !job.hooks_enabled {
            return Vec::new();
        }
        match self.stores.hooks.list_hooks().await {
            Ok(all) => all.into_iter().filter(|h| h.enabled && h.applies_to(&job.id)).collect(),
            Err(e) => {
                state.log(LogLevel::Warning, format!("could not read the hooks; none will run: {e}"));
                Vec::new()
            }
        }
    }

    /// Runs the hooks matching `call`'s type and position, logging each into the
    /// execution's log; answers why when a pre hook fails the task.
    async fn run_hooks(&self, hooks: &[Hook], call: &HookCall, state: &RunState, secrets: &[String]) -> Result<(), String> {
        self.hook_runner
            .run_all(hooks, call, secrets, |level, message| state.log(level, message))
            .await
    }

    async fn delete_folders(&self, destinations: &[Destination], job: &Job, execution_id: &str, state: &RunState) {
        for d in destinations {
            let client = self.clients.s3_for(d.endpoint.as_deref(), d.region.as_deref());
            let prefix = d.object_key(&job.id, execution_id, "");
            if let Err(e) = delete_prefix(&client, &d.bucket, &prefix).await {
                state.log(LogLevel::Warning, format!("could not delete s3://{}/{prefix}: {e}", d.bucket));
            }
        }
    }

    async fn apply_retention(
        &self,
        job: &Job,
        current: &Execution,
        policy: &crate::model::Retention,
        destinations: &[Destination],
        state: &RunState,
    ) {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let q = ExecutionQuery {
                job_id: Some(job.id.clone()),
                status: None,
                limit: 100,
                cursor,
            };
            match self.stores.executions.list_executions(&q).await {
                Ok(page) => {
                    all.extend(page.executions);
                    cursor = page.next_cursor;
                    if cursor.is_none() {
                        break;
                    }
                }
                Err(e) => {
                    state.log(LogLevel::Warning, format!("Retention skipped: cannot list earlier backups: {e}"));
                    return;
                }
            }
        }
        let mut candidates: Vec<Candidate> = all
            .iter()
            .filter(|e| {
                e.execution_type == ExecutionType::Backup
                    && matches!(e.status, ExecutionStatus::Success | ExecutionStatus::Partial)
                    && e.pruned.is_none()
                    && e.id != current.id
            })
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
            let mut ok = true;
            for d in destinations {
                let client = self.clients.s3_for(d.endpoint.as_deref(), d.region.as_deref());
                let prefix = d.object_key(&job.id, id, "");
                if let Err(e) = delete_prefix(&client, &d.bucket, &prefix).await {
                    ok = false;
                    state.log(
                        LogLevel::Warning,
                        format!("Retention: could not delete s3://{}/{prefix}: {e}", d.bucket),
                    );
                }
            }
            if ok {
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
        state.log(
            LogLevel::Info,
            format!(
                "Retention: kept {} backup(s), deleted {}",
                candidates.len() - doomed.len(),
                doomed.len()
            ),
        );
    }
}

/// The status of a restore or clone from its items' results, and the one-line error
/// naming every item that did not succeed.
fn overall(results: &[ItemResult], cancelled: bool) -> (ExecutionStatus, Option<String>) {
    let failed: Vec<&ItemResult> = results.iter().filter(|r| r.status != ExecutionStatus::Success).collect();
    let status = if cancelled {
        ExecutionStatus::Cancelled
    } else if failed.is_empty() {
        ExecutionStatus::Success
    } else if failed.len() == results.len() {
        ExecutionStatus::Failed
    } else {
        ExecutionStatus::Partial
    };
    let error = (!failed.is_empty()).then(|| {
        failed
            .iter()
            .map(|r| format!("item '{}' failed: {}", r.name, r.error.as_deref().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("; ")
    });
    (status, error)
}

fn describe_target(t: &RestoreTarget) -> String {
    match t {
        RestoreTarget::Directory { path, .. } => path.clone(),
        RestoreTarget::Postgres { url, .. } | RestoreTarget::Mysql { url, .. } => url.clone(),
        RestoreTarget::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
    }
}

fn kind_name(source: &Source) -> &'static str {
    match source {
        Source::Directory { .. } => "directory",
        Source::Postgres { .. } => "postgres",
        Source::Mysql { .. } => "mysql",
        Source::Command { .. } => "command",
        Source::S3 { .. } => "s3",
        Source::Config {} => "config",
    }
}

/// Deletes every object under `prefix`.
async fn delete_prefix(client: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<(), String> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let mut token = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(crate::adapters::sdk_error_text)?;
        let ids: Vec<ObjectIdentifier> = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        if !ids.is_empty() {
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| e.to_string())?;
            client
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(crate::adapters::sdk_error_text)?;
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => return Ok(()),
        }
    }
}

async fn flush_logs(store: &dyn ExecutionStore, state: &RunState) {
    let batch: Vec<LogEntry> = std::mem::take(&mut *state.logs.lock().expect("log lock"));
    if batch.is_empty() {
        return;
    }
    if let Err(e) = store.append_logs(&state.execution_id, &batch).await {
        warn!(execution_id = %state.execution_id, error = %e, "could not write log entries; retrying at the next beat");
        let mut logs = state.logs.lock().expect("log lock");
        let newer = std::mem::take(&mut *logs);
        *logs = batch;
        logs.extend(newer);
    }
}

/// Every second: write logs, renew the lease with progress and stage, and learn of cancels.
async fn heartbeat(store: Arc<dyn ExecutionStore>, owner: String, lease_seconds: u64, state: Arc<RunState>, stop: Arc<Notify>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            _ = tick.tick() => {}
        }
        state.data_progress();
        flush_logs(store.as_ref(), &state).await;
        let stage = *state.stage.lock().expect("stage lock");
        let progress = state.progress.load(Ordering::Relaxed).min(99);
        let lease = time::now().timestamp() + i64::try_from(lease_seconds).unwrap_or(30);
        match store.renew(&state.execution_id, &owner, progress, stage, lease).await {
            Ok(RenewOutcome::Continue) => {}
            Ok(RenewOutcome::CancelRequested) => {
                if !state.cancel_requested.swap(true, Ordering::Relaxed) {
                    state.log(LogLevel::Warning, "Cancel requested; stopping");
                    state.signals.cancel.store(true, Ordering::Relaxed);
                }
            }
            Ok(RenewOutcome::LeaseLost) => {
                state.lease_lost.store(true, Ordering::Relaxed);
                state.signals.cancel.store(true, Ordering::Relaxed);
                warn!(execution_id = %state.execution_id, "lease lost; stopping");
                return;
            }
            Err(e) => {
                warn!(execution_id = %state.execution_id, error = %e, "could not renew the lease")
            }
        }
    }
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
        tokio::spawn(async move { runner.drain(Some(&hint)).await });
        Ok(())
    }
}
