//! The operations of Cairn, shared by the HTTP API and the CLI. Authentication and
//! transport live in [`super::http`]; here every input is already parsed.

use std::sync::Arc;

use serde_json::{json, Value};
use tracing::{info, warn};

use crate::error::{ApiError, StoreError};
use crate::model::{
    new_id, ApiKey, Destination, DestinationSpec, Execution, ExecutionStatus, ExecutionType, FieldError, Hook, HookRules, HookSpec, Job,
    JobSpec, LogEntry, LogLevel, NewKey, Permission, RestoreRequest, Settings, Stage, Trigger,
};
use crate::store::{BackupReader, HookRepository};
use crate::store::{
    CancelOutcome, CreateOutcome, DestinationRepository, Dispatcher, ExecutionPage, ExecutionQuery, ExecutionStore, JobRepository,
    KeyStore, SettingsStore,
};
use crate::time;

/// How long an `Idempotency-Key` keeps answering the same execution.
pub const IDEMPOTENCY_WINDOW_SECS: i64 = 600;

/// The stores and dispatcher every operation works with.
#[derive(Clone)]
pub struct CairnService {
    pub jobs: Arc<dyn JobRepository>,
    pub destinations: Arc<dyn DestinationRepository>,
    pub keys: Arc<dyn KeyStore>,
    pub executions: Arc<dyn ExecutionStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub hooks: Arc<dyn HookRepository>,
    pub dispatcher: Arc<dyn Dispatcher>,
    /// Where hook scripts may live: checked when a hook is created or changed.
    pub hook_rules: HookRules,
    pub backups: Arc<dyn BackupReader>,
    /// The longest a download URL may live.
    pub download_max_seconds: u64,
}

/// `POST /api/executions/{id}/download`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DownloadRequest {
    /// Items to download (default: every item).
    #[serde(default)]
    pub items: Option<Vec<String>>,
    /// Seconds the URLs stay valid (default 900).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for CairnService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CairnService").finish_non_exhaustive()
    }
}

/// When a job's schedule fires next, from now.
fn next_run(job: &Job) -> Result<Option<String>, ApiError> {
    job.schedule
        .as_ref()
        .map(|s| crate::schedule::next_after(s, time::now()).map(time::iso))
        .transpose()
        .map_err(ApiError::from)
}

fn hook_not_found() -> ApiError {
    ApiError::NotFound("Hook not found".into())
}

/// The result of triggering a job.
#[derive(Debug, Clone)]
pub struct Triggered {
    pub execution_id: String,
    /// `false` when an idempotency key answered an earlier execution.
    pub created: bool,
}

impl CairnService {
    async fn check_destinations(&self, spec: &JobSpec) -> Result<(), ApiError> {
        for (i, id) in spec.destinations.iter().enumerate() {
            if self.destinations.get_destination(id).await?.is_none() {
                return Err(FieldError::new(format!("destinations[{i}]"), format!("no destination with id '{id}'")).into());
            }
        }
        Ok(())
    }

    /// Validates and stores a new job.
    ///
    /// # Errors
    /// 400 naming the invalid field (including unknown destinations).
    pub async fn create_job(&self, spec: JobSpec) -> Result<Job, ApiError> {
        spec.validate()?;
        self.check_destinations(&spec).await?;
        let mut job = Job::from_spec(new_id(), spec, &time::iso(time::now()));
        job.next_run_at = next_run(&job)?;
        self.jobs.create_job(&job).await?;
        info!(job_id = %job.id, name = %job.name, "job created");
        Ok(job)
    }

    /// Replaces a job's definition, keeping its id and creation time.
    ///
    /// # Errors
    /// 404 for an unknown job, 400 for an invalid spec.
    pub async fn update_job(&self, id: &str, spec: JobSpec) -> Result<Job, ApiError> {
        spec.validate()?;
        let existing = self.get_job(id).await?;
        self.check_destinations(&spec).await?;
        let mut job = Job::from_spec(existing.id, spec, &time::iso(time::now()));
        job.created_at = existing.created_at;
        job.next_run_at = next_run(&job)?;
        if !self.jobs.replace_job(&job).await? {
            return Err(ApiError::job_not_found());
        }
        Ok(job)
    }

    /// # Errors
    /// 404 `Job not found`.
    pub async fn get_job(&self, id: &str) -> Result<Job, ApiError> {
        self.jobs.get_job(id).await?.ok_or_else(ApiError::job_not_found)
    }

    /// # Errors
    /// Store failures.
    pub async fn list_jobs(&self) -> Result<Vec<Job>, ApiError> {
        Ok(self.jobs.list_jobs().await?)
    }

    /// A job as `GET /api/jobs` shows it: with `nextRunAt` and its last execution.
    ///
    /// # Errors
    /// Store failures.
    pub async fn job_view(&self, job: &Job) -> Result<Value, ApiError> {
        let mut v = serde_json::to_value(job).unwrap_or_default();
        let last = self
            .executions
            .list_executions(&ExecutionQuery {
                job_id: Some(job.id.clone()),
                status: None,
                limit: 1,
                cursor: None,
            })
            .await?;
        v["nextRunAt"] = json!(job.next_run_at);
        v["lastExecution"] = last.executions.first().map_or(
            Value::Null,
            |e| json!({"id": e.id, "status": e.status, "queuedAt": e.queued_at, "endedAt": e.ended_at, "trigger": e.trigger}),
        );
        Ok(v)
    }

    /// One schedule tick at `now`: every enabled job whose next run time has come is
    /// triggered once (trigger `Scheduler`), and its next run time moved past `now` by a
    /// conditional write, so overlapping or late ticks never trigger a slot twice.
    /// Disabled jobs have their time moved on without a run.
    ///
    /// # Errors
    /// Store failures while listing jobs; a failure on one job is logged and skipped.
    pub async fn schedule_tick(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<String>, ApiError> {
        let mut started = Vec::new();
        for job in self.jobs.list_jobs().await? {
            let Some(schedule) = &job.schedule else { continue };
            let due = match job.next_run_at.as_deref().and_then(time::parse_iso) {
                Some(t) => t <= now,
                None => false,
            };
            let next = match crate::schedule::next_after(schedule, now) {
                Ok(n) => time::iso(n),
                Err(e) => {
                    warn!(job_id = %job.id, error = %e.reason, "schedule cannot be evaluated");
                    continue;
                }
            };
            if job.next_run_at.is_none() {
                self.jobs.advance_schedule(&job.id, None, &next).await?;
                continue;
            }
            if !due || !self.jobs.advance_schedule(&job.id, job.next_run_at.as_deref(), &next).await? {
                continue;
            }
            if !job.enabled {
                info!(job_id = %job.id, "scheduled slot skipped: the job is disabled");
                continue;
            }
            match self.run_job(&job.id, Trigger::Scheduler, None).await {
                Ok(t) => started.push(t.execution_id),
                Err(e) => warn!(job_id = %job.id, error = %e, "scheduled run failed to start"),
            }
        }
        Ok(started)
    }

    /// # Errors
    /// 404 `Job not found`.
    pub async fn delete_job(&self, id: &str) -> Result<(), ApiError> {
        if self.jobs.delete_job(id).await? {
            info!(job_id = %id, "job deleted");
            Ok(())
        } else {
            Err(ApiError::job_not_found())
        }
    }

    /// # Errors
    /// 404 `Job not found`.
    pub async fn set_job_enabled(&self, id: &str, enabled: bool) -> Result<Job, ApiError> {
        let mut job = self.get_job(id).await?;
        job.enabled = enabled;
        if enabled {
            // Slots missed while disabled are not made up.
            job.next_run_at = next_run(&job)?;
        }
        job.updated_at = time::iso(time::now());
        if !self.jobs.replace_job(&job).await? {
            return Err(ApiError::job_not_found());
        }
        Ok(job)
    }

    /// # Errors
    /// 400 naming the invalid field.
    pub async fn create_destination(&self, spec: DestinationSpec) -> Result<Destination, ApiError> {
        spec.validate()?;
        let d = Destination::from_spec(new_id(), spec, &time::iso(time::now()));
        self.destinations.create_destination(&d).await?;
        Ok(d)
    }

    /// # Errors
    /// Store failures.
    pub async fn list_destinations(&self) -> Result<Vec<Destination>, ApiError> {
        Ok(self.destinations.list_destinations().await?)
    }

    /// Deletes a destination no job uses.
    ///
    /// # Errors
    /// 404 when unknown, 409 while a job still names it.
    pub async fn delete_destination(&self, id: &str) -> Result<(), ApiError> {
        if let Some(job) = self
            .jobs
            .list_jobs()
            .await?
            .into_iter()
            .find(|j| j.destinations.iter().any(|d| d == id))
        {
            return Err(ApiError::Conflict(format!(
                "Destination is used by job '{}' ({})",
                job.name, job.id
            )));
        }
        if self.destinations.delete_destination(id).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound("Destination not found".into()))
        }
    }

    /// Creates a key; the returned secret is shown once and never stored.
    ///
    /// # Errors
    /// 400 for a bad name or expiry.
    pub async fn create_key(&self, name: String, permissions: Vec<Permission>, expires_in_secs: Option<i64>) -> Result<NewKey, ApiError> {
        if permissions.is_empty() {
            return Err(FieldError::new("permissions", "at least one permission is required").into());
        }
        let now = time::now();
        let expires_at = expires_in_secs.map(|s| time::iso(now + chrono::Duration::seconds(s)));
        let key = NewKey::generate(new_id(), name, permissions, expires_at, &time::iso(now))?;
        self.keys.create_key(&key.stored).await?;
        info!(key_id = %key.stored.id, name = %key.stored.name, "API key created");
        Ok(key)
    }

    /// # Errors
    /// Store failures.
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, ApiError> {
        Ok(self.keys.list_keys().await?)
    }

    /// # Errors
    /// 404 when unknown.
    pub async fn set_key_enabled(&self, id: &str, enabled: bool) -> Result<ApiKey, ApiError> {
        if !self.keys.set_key_enabled(id, enabled).await? {
            return Err(ApiError::NotFound("Key not found".into()));
        }
        self.keys
            .key_by_id(id)
            .await?
            .ok_or_else(|| ApiError::NotFound("Key not found".into()))
    }

    /// # Errors
    /// 404 when unknown.
    pub async fn delete_key(&self, id: &str) -> Result<(), ApiError> {
        if self.keys.delete_key(id).await? {
            Ok(())
        } else {
            Err(ApiError::NotFound("Key not found".into()))
        }
    }

    /// Queues a backup of `job_id` and dispatches it to a runner.
    ///
    /// # Errors
    /// 404 `Job not found`, 409 when the job is disabled.
    pub async fn run_job(&self, job_id: &str, trigger: Trigger, idempotency_key: Option<&str>) -> Result<Triggered, ApiError> {
        let job = self.get_job(job_id).await?;
        if !job.enabled {
            return Err(ApiError::Conflict(format!("Job '{}' is disabled; enable it to run it", job.name)));
        }
        let now = time::now();
        let execution = Execution::pending(
            new_id(),
            job.id.clone(),
            job.name.clone(),
            if job.job_type == crate::model::JobType::Clone {
                ExecutionType::Clone
            } else {
                ExecutionType::Backup
            },
            trigger.clone(),
            &time::iso(now),
        );
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

    /// The seed's execution shape, with `logs` when asked and `queuePosition` while Pending.
    ///
    /// # Errors
    /// 404 `Execution not found`.
    pub async fn get_execution(&self, id: &str, include_logs: bool) -> Result<Value, ApiError> {
        let e = self.executions.get_execution(id).await?.ok_or_else(ApiError::execution_not_found)?;
        let mut v = e.to_api();
        if e.status == crate::model::ExecutionStatus::Pending {
            v["queuePosition"] = json!(self.executions.queue_position(&e).await?);
        }
        if include_logs {
            v["logs"] = serde_json::to_value(self.executions.logs(id).await?).unwrap_or_default();
        }
        Ok(v)
    }

    /// # Errors
    /// 400 for a cursor this API did not issue.
    pub async fn list_executions(&self, q: &ExecutionQuery) -> Result<ExecutionPage, ApiError> {
        self.executions.list_executions(q).await.map_err(|e| match e {
            StoreError::Malformed(m) if m == crate::adapters::dynamo::BAD_CURSOR => {
                ApiError::BadRequest(format!("Invalid query parameter 'cursor': {m}"))
            }
            other => other.into(),
        })
    }

    /// Cancels a Pending execution at once, or asks a Running one to stop.
    ///
    /// # Errors
    /// 404 when unknown, 409 when it already ended.
    pub async fn cancel_execution(&self, id: &str) -> Result<Execution, ApiError> {
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
            CancelOutcome::AlreadyEnded(e) => Err(ApiError::Conflict(format!(
                "Execution already ended with status {}",
                e.status.as_str()
            ))),
            CancelOutcome::NotFound => Err(ApiError::execution_not_found()),
        }
    }

    /// Validates (the script must resolve inside the hooks directory) and stores a hook.
    ///
    /// # Errors
    /// 400 naming the field and why.
    pub async fn create_hook(&self, spec: HookSpec) -> Result<Hook, ApiError> {
        spec.validate(&self.hook_rules)?;
        let hook = Hook::from_spec(new_id(), spec, &time::iso(time::now()));
        self.hooks.create_hook(&hook).await?;
        info!(hook_id = %hook.id, name = %hook.name, script = %hook.script, "hook created");
        Ok(hook)
    }

    /// # Errors
    /// 404 when unknown, 400 for an invalid spec.
    pub async fn update_hook(&self, id: &str, spec: HookSpec) -> Result<Hook, ApiError> {
        let existing = self.get_hook(id).await?;
        spec.validate(&self.hook_rules)?;
        let mut hook = Hook::from_spec(existing.id, spec, &time::iso(time::now()));
        hook.created_at = existing.created_at;
        if !self.hooks.replace_hook(&hook).await? {
            return Err(hook_not_found());
        }
        Ok(hook)
    }

    /// # Errors
    /// 404 when unknown.
    pub async fn get_hook(&self, id: &str) -> Result<Hook, ApiError> {
        self.hooks.get_hook(id).await?.ok_or_else(hook_not_found)
    }

    /// # Errors
    /// Store failures.
    pub async fn list_hooks(&self) -> Result<Vec<Hook>, ApiError> {
        Ok(self.hooks.list_hooks().await?)
    }

    /// # Errors
    /// 404 when unknown.
    pub async fn set_hook_enabled(&self, id: &str, enabled: bool) -> Result<Hook, ApiError> {
        let mut hook = self.get_hook(id).await?;
        hook.enabled = enabled;
        hook.updated_at = time::iso(time::now());
        if !self.hooks.replace_hook(&hook).await? {
            return Err(hook_not_found());
        }
        Ok(hook)
    }

    /// # Errors
    /// 404 when unknown.
    pub async fn delete_hook(&self, id: &str) -> Result<(), ApiError> {
        if self.hooks.delete_hook(id).await? {
            Ok(())
        } else {
            Err(hook_not_found())
        }
    }

    /// The backup execution `id`, if it can be restored or downloaded.
    async fn restorable(&self, id: &str) -> Result<(Execution, String), ApiError> {
        let e = self.executions.get_execution(id).await?.ok_or_else(ApiError::execution_not_found)?;
        if e.execution_type != ExecutionType::Backup {
            return Err(ApiError::Conflict(format!(
                "Execution {id} is a {:?}, not a backup",
                e.execution_type
            )));
        }
        if !matches!(e.status, ExecutionStatus::Success | ExecutionStatus::Partial) {
            return Err(ApiError::Conflict(format!(
                "Execution {id} stored no complete backup (status {})",
                e.status.as_str()
            )));
        }
        if let Some(p) = &e.pruned {
            return Err(ApiError::Conflict(format!("Backup {id} no longer exists: {p}")));
        }
        let path = e
            .path
            .clone()
            .ok_or_else(|| ApiError::Conflict(format!("Execution {id} recorded no backup location")))?;
        Ok((e, path))
    }

    fn check_item_names<'a>(e: &Execution, names: impl Iterator<Item = &'a str>) -> Result<(), ApiError> {
        for (i, name) in names.enumerate() {
            let stored = e
                .items
                .iter()
                .any(|it| it.name == name && matches!(it.status, ExecutionStatus::Success | ExecutionStatus::Partial));
            if !stored {
                return Err(FieldError::new(format!("items[{i}]"), format!("the backup holds no item '{name}'")).into());
            }
        }
        Ok(())
    }

    /// Queues a restore of backup `id`.
    ///
    /// # Errors
    /// 404 unknown execution, 409 not a restorable backup, 400 bad request.
    pub async fn start_restore(&self, id: &str, request: RestoreRequest, trigger: Trigger) -> Result<Triggered, ApiError> {
        request.validate()?;
        let (source, path) = self.restorable(id).await?;
        if let Some(items) = &request.items {
            Self::check_item_names(&source, items.iter().map(|i| i.name.as_str()))?;
        }
        let now = time::now();
        let mut execution = Execution::pending(
            new_id(),
            source.job_id.clone(),
            source.job_name.clone(),
            ExecutionType::Restore,
            trigger,
            &time::iso(now),
        );
        execution.source_execution_id = Some(source.id.clone());
        execution.path = Some(path);
        execution.parameters = Some(serde_json::to_string(&request).unwrap_or_default());
        self.queue(&execution, &format!("Restore of backup {id} queued")).await?;
        Ok(Triggered {
            execution_id: execution.id,
            created: true,
        })
    }

    async fn queue(&self, execution: &Execution, message: &str) -> Result<(), ApiError> {
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

    /// Presigned URLs for a backup's objects and manifest, recorded as a Download
    /// execution with its pre/post download hooks (a failing pre hook refuses it).
    ///
    /// # Errors
    /// 404, 409 (not a backup, incomplete, refused by a hook), 400.
    pub async fn download(&self, id: &str, request: DownloadRequest, trigger: Trigger) -> Result<Value, ApiError> {
        let (source, path) = self.restorable(id).await?;
        if let Some(items) = &request.items {
            Self::check_item_names(&source, items.iter().map(String::as_str))?;
        }
        let seconds = request.expires_in.unwrap_or(900);
        if seconds == 0 || seconds > self.download_max_seconds {
            return Err(FieldError::new("expiresIn", format!("must be between 1 and {} seconds", self.download_max_seconds)).into());
        }
        let (bucket, folder) =
            crate::adapters::s3::split_path(&path).ok_or_else(|| ApiError::Conflict(format!("unexpected backup location {path}")))?;
        let manifest = self.backups.manifest(bucket, folder).await.map_err(ApiError::Conflict)?;
        let started = time::now();
        let mut execution = Execution::pending(
            new_id(),
            source.job_id.clone(),
            source.job_name.clone(),
            ExecutionType::Download,
            trigger,
            &time::iso(started),
        );
        execution.source_execution_id = Some(source.id.clone());
        execution.started_at = Some(time::iso(started));
        let logs = std::sync::Mutex::new(Vec::<LogEntry>::new());
        let log = |level: LogLevel, message: String| {
            if let Ok(mut l) = logs.lock() {
                l.push(LogEntry {
                    timestamp: time::iso(time::now()),
                    level,
                    stage: Stage::Initializing,
                    message,
                });
            }
        };
        let job = self.jobs.get_job(&source.job_id).await?.unwrap_or_else(|| manifest.job.clone());
        let hooks: Vec<Hook> = if job.hooks_enabled {
            self.hooks
                .list_hooks()
                .await?
                .into_iter()
                .filter(|h| h.enabled && h.applies_to(&job.id))
                .collect()
        } else {
            Vec::new()
        };
        let selected: Vec<&crate::engine::manifest::ManifestItem> = manifest
            .items
            .iter()
            .filter(|i| request.items.as_ref().is_none_or(|names| names.contains(&i.name)))
            .collect();
        let item_id = match selected.as_slice() {
            [one] if request.items.is_some() => crate::hooks::item_id(&job.id, &one.name),
            _ => String::new(),
        };
        let runner = crate::hooks::HookRunner {
            rules: self.hook_rules.clone(),
        };
        let pre = crate::hooks::HookCall::download(crate::model::HookPosition::Pre, &item_id, &execution.id);
        let refused = runner.run_all(&hooks, &pre, &[], log).await.err();
        let mut urls = Vec::new();
        let mut failure = refused.as_ref().map(|r| format!("Download refused: {r}"));
        if failure.is_none() {
            for item in &selected {
                match self
                    .backups
                    .presign_get(bucket, &format!("{folder}/{}", item.object), seconds)
                    .await
                {
                    Ok(url) => urls.push(
                        json!({"item": item.name, "object": item.object, "size": item.stored_bytes, "sha256": item.sha256, "url": url}),
                    ),
                    Err(e) => {
                        failure = Some(format!("cannot presign {}: {e}", item.object));
                        break;
                    }
                }
            }
        }
        let manifest_url = match &failure {
            None => match self
                .backups
                .presign_get(bucket, &format!("{folder}/{}", crate::engine::manifest::MANIFEST_NAME), seconds)
                .await
            {
                Ok(u) => Some(u),
                Err(e) => {
                    failure = Some(format!("cannot presign the manifest: {e}"));
                    None
                }
            },
            Some(_) => None,
        };
        if failure.is_none() {
            log(LogLevel::Info, format!("Presigned {} URL(s) valid for {seconds} s", urls.len() + 1));
        }
        let post = crate::hooks::HookCall::download(crate::model::HookPosition::Post, &item_id, &execution.id);
        let _ = runner.run_all(&hooks, &post, &[], log).await;
        let ended = time::now();
        execution.status = if failure.is_some() {
            ExecutionStatus::Failed
        } else {
            ExecutionStatus::Success
        };
        execution.stage = if failure.is_some() { Stage::Failed } else { Stage::Completed };
        execution.progress = if failure.is_some() { 0 } else { 100 };
        execution.ended_at = Some(time::iso(ended));
        execution.duration = u64::try_from((ended - started).num_milliseconds()).ok();
        execution.path = Some(path.clone());
        execution.size = Some(selected.iter().map(|i| i.stored_bytes).sum());
        execution.error = failure.clone();
        self.executions.record_finished(&execution).await?;
        let entries = logs.into_inner().unwrap_or_default();
        if !entries.is_empty() {
            self.executions.append_logs(&execution.id, &entries).await?;
        }
        if let Some(f) = failure {
            return Err(ApiError::Conflict(f));
        }
        let expires_at = time::iso(started + chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(900)));
        Ok(json!({"executionId": execution.id, "expiresAt": expires_at, "items": urls, "manifest": {"url": manifest_url}}))
    }

    /// # Errors
    /// Store failures.
    pub async fn settings(&self) -> Result<Settings, ApiError> {
        Ok(self.settings.settings().await?)
    }

    /// # Errors
    /// 400 for zero or more than 100.
    pub async fn set_max_concurrent_jobs(&self, n: u32) -> Result<Settings, ApiError> {
        if !(1..=100).contains(&n) {
            return Err(FieldError::new("maxConcurrentJobs", "must be between 1 and 100").into());
        }
        let mut s = self.settings.settings().await?;
        s.max_concurrent_jobs = n;
        self.settings.put_settings(&s).await?;
        Ok(s)
    }
}
