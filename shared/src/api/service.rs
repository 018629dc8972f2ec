//! The operations of Cairn, shared by the HTTP API and the CLI. Authentication and
//! transport live in [`super::http`]; here every input is already parsed.

use std::sync::Arc;

use serde_json::{json, Value};
use tracing::{info, warn};

use crate::error::{ApiError, StoreError};
use crate::model::{
    new_id, ApiKey, Destination, DestinationSpec, Execution, ExecutionType, FieldError, Hook, HookRules, HookSpec, Job, JobSpec, LogEntry,
    LogLevel, NewKey, Permission, Settings, Stage, Trigger,
};
use crate::store::HookRepository;
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
}

impl std::fmt::Debug for CairnService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CairnService").finish_non_exhaustive()
    }
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
        let job = Job::from_spec(new_id(), spec, &time::iso(time::now()));
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
            ExecutionType::Backup,
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
