//! Administration: destinations, API keys, hooks and settings.

use tracing::info;

use super::{CairnService, ServiceError};
use crate::domain::{new_id, ApiKey, Destination, DestinationSpec, FieldError, Hook, HookSpec, NewKey, Permission, Settings};
use crate::time;

/// The longest a key may live: five years.
pub const MAX_KEY_LIFETIME_SECS: i64 = 5 * 365 * 86_400;

/// When a key made at `now` to live `seconds` expires.
fn expiry(now: chrono::DateTime<chrono::Utc>, seconds: i64) -> Result<String, ServiceError> {
    let too_long = || FieldError::new("expiresIn", "must be at most 5 years (1825d)");
    if seconds > MAX_KEY_LIFETIME_SECS {
        return Err(too_long().into());
    }
    let lifetime = chrono::Duration::try_seconds(seconds).ok_or_else(too_long)?;
    let at = now.checked_add_signed(lifetime).ok_or_else(too_long)?;
    Ok(time::iso(at))
}

fn hook_not_found() -> ServiceError {
    ServiceError::NotFound("Hook not found".into())
}

impl CairnService {
    /// A hook may name only jobs that exist.
    async fn check_hook_jobs(&self, spec: &HookSpec) -> Result<(), ServiceError> {
        for (i, id) in spec.jobs.iter().flatten().enumerate() {
            if self.jobs.get_job(id).await?.is_none() {
                return Err(FieldError::new(format!("jobs[{i}]"), format!("no job with id '{id}'")).into());
            }
        }
        Ok(())
    }

    /// # Errors
    /// 400 naming the invalid field.
    pub async fn create_destination(&self, spec: DestinationSpec) -> Result<Destination, ServiceError> {
        spec.validate()?;
        self.policy.check_destination(&spec)?;
        let d = Destination::from_spec(new_id(), spec, &time::iso(time::now()));
        self.destinations.create_destination(&d).await?;
        Ok(d)
    }

    /// # Errors
    /// Store failures.
    pub async fn list_destinations(&self) -> Result<Vec<Destination>, ServiceError> {
        Ok(self.destinations.list_destinations().await?)
    }

    /// Deletes a destination no job uses.
    ///
    /// # Errors
    /// 404 when unknown, 409 while a job still names it.
    pub async fn delete_destination(&self, id: &str) -> Result<(), ServiceError> {
        if let Some(job) = self
            .jobs
            .list_jobs()
            .await?
            .into_iter()
            .find(|j| j.destinations.iter().any(|d| d == id))
        {
            return Err(ServiceError::Conflict(format!(
                "Destination is used by job '{}' ({})",
                job.name, job.id
            )));
        }
        if self.destinations.delete_destination(id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound("Destination not found".into()))
        }
    }

    /// Creates a key; the returned secret is shown once and never stored.
    ///
    /// # Errors
    /// 400 for a bad name or expiry.
    pub async fn create_key(
        &self,
        name: String,
        permissions: Vec<Permission>,
        expires_in_secs: Option<i64>,
        granted_by: Option<&ApiKey>,
    ) -> Result<NewKey, ServiceError> {
        if permissions.is_empty() {
            return Err(FieldError::new("permissions", "at least one permission is required").into());
        }
        // A key grants only what it holds itself, so only a key with every permission
        // grants every permission. (The CLI, with the operator's AWS credentials, grants any.)
        if let Some(creator) = granted_by {
            if let Some(missing) = permissions.iter().find(|p| !creator.has(**p)) {
                return Err(ServiceError::Forbidden(missing.as_str()));
            }
        }
        let now = time::now();
        let expires_at = expires_in_secs.map(|s| expiry(now, s)).transpose()?;
        let key = NewKey::generate(new_id(), name, permissions, expires_at, &time::iso(now))?;
        self.keys.create_key(&key.stored).await?;
        info!(key_id = %key.stored.id, name = %key.stored.name, "API key created");
        Ok(key)
    }

    /// # Errors
    /// Store failures.
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, ServiceError> {
        Ok(self.keys.list_keys().await?)
    }

    /// # Errors
    /// 404 when unknown.
    pub async fn set_key_enabled(&self, id: &str, enabled: bool) -> Result<ApiKey, ServiceError> {
        if !self.keys.set_key_enabled(id, enabled).await? {
            return Err(ServiceError::NotFound("Key not found".into()));
        }
        self.keys
            .key_by_id(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound("Key not found".into()))
    }

    /// # Errors
    /// 404 when unknown.
    pub async fn delete_key(&self, id: &str) -> Result<(), ServiceError> {
        if self.keys.delete_key(id).await? {
            Ok(())
        } else {
            Err(ServiceError::NotFound("Key not found".into()))
        }
    }

    /// Validates (the script must resolve inside the hooks directory) and stores a hook.
    ///
    /// # Errors
    /// 400 naming the field and why.
    pub async fn create_hook(&self, spec: HookSpec) -> Result<Hook, ServiceError> {
        spec.validate(&self.hook_rules)?;
        self.check_hook_jobs(&spec).await?;
        let hook = Hook::from_spec(new_id(), spec, &time::iso(time::now()));
        self.hooks.create_hook(&hook).await?;
        info!(hook_id = %hook.id, name = %hook.name, script = %hook.script, "hook created");
        Ok(hook)
    }

    /// # Errors
    /// 404 when unknown, 400 for an invalid spec.
    pub async fn update_hook(&self, id: &str, spec: HookSpec) -> Result<Hook, ServiceError> {
        let existing = self.get_hook(id).await?;
        spec.validate(&self.hook_rules)?;
        self.check_hook_jobs(&spec).await?;
        let mut hook = Hook::from_spec(existing.id, spec, &time::iso(time::now()));
        hook.created_at = existing.created_at;
        if !self.hooks.replace_hook(&hook).await? {
            return Err(hook_not_found());
        }
        Ok(hook)
    }

    /// # Errors
    /// 404 when unknown.
    pub async fn get_hook(&self, id: &str) -> Result<Hook, ServiceError> {
        self.hooks.get_hook(id).await?.ok_or_else(hook_not_found)
    }

    /// # Errors
    /// Store failures.
    pub async fn list_hooks(&self) -> Result<Vec<Hook>, ServiceError> {
        Ok(self.hooks.list_hooks().await?)
    }

    /// # Errors
    /// 404 when unknown.
    pub async fn set_hook_enabled(&self, id: &str, enabled: bool) -> Result<Hook, ServiceError> {
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
    pub async fn delete_hook(&self, id: &str) -> Result<(), ServiceError> {
        if self.hooks.delete_hook(id).await? {
            Ok(())
        } else {
            Err(hook_not_found())
        }
    }

    /// # Errors
    /// Store failures.
    pub async fn settings(&self) -> Result<Settings, ServiceError> {
        Ok(self.settings.settings().await?)
    }

    /// # Errors
    /// 400 for zero or more than 100.
    pub async fn set_max_concurrent_jobs(&self, n: u32) -> Result<Settings, ServiceError> {
        if !(1..=100).contains(&n) {
            return Err(FieldError::new("maxConcurrentJobs", "must be between 1 and 100").into());
        }
        let mut s = self.settings.settings().await?;
        s.max_concurrent_jobs = n;
        self.settings.put_settings(&s).await?;
        Ok(s)
    }
}
