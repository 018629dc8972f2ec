//! Jobs: create, change, enable, delete, read with their last execution; and the schedule
//! tick that runs each scheduled slot once.

use tracing::{info, warn};

use super::{CairnService, ServiceError};
use crate::domain::{new_id, Execution, FieldError, Job, JobSpec, Trigger};
use crate::ports::ExecutionQuery;
use crate::time;

/// A job with its last execution, as `GET /api/jobs` shows it.
#[derive(Debug, Clone)]
pub struct JobSummary {
    pub job: Job,
    pub last_execution: Option<Execution>,
}

/// When a job's schedule fires next, from now.
fn next_run(job: &Job) -> Result<Option<String>, ServiceError> {
    job.schedule
        .as_ref()
        .map(|s| crate::domain::schedule::next_after(s, time::now()).map(time::iso))
        .transpose()
        .map_err(ServiceError::from)
}

impl CairnService {
    async fn check_destinations(&self, spec: &JobSpec) -> Result<(), ServiceError> {
        for (i, id) in spec.destinations.iter().enumerate() {
            let Some(d) = self.destinations.get_destination(id).await? else {
                return Err(FieldError::new(format!("destinations[{i}]"), format!("no destination with id '{id}'")).into());
            };
            if spec.incremental && d.repository.is_none() {
                return Err(FieldError::new(
                    format!("destinations[{i}]"),
                    format!(
                        "destination '{}' has no repository password, which incremental jobs need: create a destination with \
                         \"repository\": {{\"passwordSecret\": \"cairn/...\"}} (or \"passwordEnv\": \"CAIRN_SECRET_...\")",
                        d.name
                    ),
                )
                .into());
            }
        }
        Ok(())
    }

    /// Validates and stores a new job.
    ///
    /// # Errors
    /// 400 naming the invalid field (including unknown destinations).
    pub async fn create_job(&self, spec: JobSpec) -> Result<Job, ServiceError> {
        spec.validate()?;
        self.policy.check_items(&spec.items)?;
        self.policy.check_runner(spec.runner)?;
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
    pub async fn update_job(&self, id: &str, spec: JobSpec) -> Result<Job, ServiceError> {
        spec.validate()?;
        self.policy.check_items(&spec.items)?;
        self.policy.check_runner(spec.runner)?;
        let existing = self.get_job(id).await?;
        self.check_destinations(&spec).await?;
        let mut job = Job::from_spec(existing.id, spec, &time::iso(time::now()));
        job.created_at = existing.created_at;
        job.next_run_at = next_run(&job)?;
        if !self.jobs.replace_job(&job).await? {
            return Err(ServiceError::job_not_found());
        }
        Ok(job)
    }

    /// # Errors
    /// 404 `Job not found`.
    pub async fn get_job(&self, id: &str) -> Result<Job, ServiceError> {
        self.jobs.get_job(id).await?.ok_or_else(ServiceError::job_not_found)
    }

    /// # Errors
    /// Store failures.
    pub async fn list_jobs(&self) -> Result<Vec<Job>, ServiceError> {
        Ok(self.jobs.list_jobs().await?)
    }

    /// A job with its last execution.
    ///
    /// # Errors
    /// Store failures.
    pub async fn job_summary(&self, job: Job) -> Result<JobSummary, ServiceError> {
        let q = ExecutionQuery {
            job_id: Some(job.id.clone()),
            status: None,
            limit: 1,
            cursor: None,
        };
        let last = self.executions.list_executions(&q).await?;
        Ok(JobSummary {
            job,
            last_execution: last.executions.into_iter().next(),
        })
    }

    /// One schedule tick at `now`: every enabled job whose next run time has come is
    /// triggered once (trigger `Scheduler`), and its next run time moved past `now` by a
    /// conditional write, so overlapping or late ticks never trigger a slot twice.
    /// Disabled jobs have their time moved on without a run.
    ///
    /// # Errors
    /// Store failures while listing jobs; a failure on one job is logged and skipped.
    pub async fn schedule_tick(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<String>, ServiceError> {
        let mut started = Vec::new();
        for job in self.jobs.list_jobs().await? {
            let Some(schedule) = &job.schedule else { continue };
            let due = match job.next_run_at.as_deref().and_then(time::parse_iso) {
                Some(t) => t <= now,
                None => false,
            };
            let next = match crate::domain::schedule::next_after(schedule, now) {
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
    pub async fn delete_job(&self, id: &str) -> Result<(), ServiceError> {
        if self.jobs.delete_job(id).await? {
            info!(job_id = %id, "job deleted");
            Ok(())
        } else {
            Err(ServiceError::job_not_found())
        }
    }

    /// # Errors
    /// 404 `Job not found`.
    pub async fn set_job_enabled(&self, id: &str, enabled: bool) -> Result<Job, ServiceError> {
        let mut job = self.get_job(id).await?;
        job.enabled = enabled;
        if enabled {
            // Slots missed while disabled are not made up.
            job.next_run_at = next_run(&job)?;
        }
        job.updated_at = time::iso(time::now());
        if !self.jobs.replace_job(&job).await? {
            return Err(ServiceError::job_not_found());
        }
        Ok(job)
    }
}
