//! A restore: the backup's manifest read, then each selected item streamed once into a
//! staging copy of its target and moved into place only when its SHA-256 and size match
//! the manifest (see [`crate::engine::restore`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;

use super::lease::{RunState, DATA_START};
use super::outcome::Outcome;
use super::task::{Task, TaskHooks};
use super::Runner;
use crate::domain::destination::manifest_folder;
use crate::domain::policy::secrets_of_restore;
use crate::domain::{Destination, Execution, ItemResult, Job, LogLevel, ManifestItem, RestoreRequest, RestoreTarget, Stage};
use crate::engine::crypto::{self, Identities};
use crate::engine::io::{BodyReader, CountingReader};
use crate::engine::restore::{check_directory_target, restore_checked};
use crate::engine::sources::SourceContext;
use crate::engine::verify::read_manifest;
use crate::engine::EngineError;
use crate::hooks::{item_id, HookCall};
use crate::ports::ObjectStore;

/// A loaded restore.
pub(super) struct RestoreTask {
    job: Job,
    hooks: TaskHooks,
    /// The Secrets Manager secrets the targets and the decryption name.
    secrets: Arc<HashMap<String, String>>,
    store: Arc<dyn ObjectStore>,
    bucket: String,
    folder: String,
    selected: Vec<(ManifestItem, RestoreTarget)>,
    request: RestoreRequest,
    /// The hooks' item id and name: set when the request names exactly one item.
    item: (String, String),
    log_id: String,
    path: Option<String>,
}

impl RestoreTask {
    fn names(&self) -> Vec<String> {
        self.selected.iter().map(|(i, _)| i.name.clone()).collect()
    }
}

impl Runner {
    pub(super) async fn load_restore(&self, execution: &Execution, state: &RunState) -> Result<RestoreTask, Outcome> {
        let request: RestoreRequest = match execution.parameters.as_deref().map(serde_json::from_str) {
            Some(Ok(r)) => r,
            _ => return Err(Outcome::failed("the restore request is missing or malformed")),
        };
        if let Err(e) = self.config.policy.check_restore(&request) {
            let why = crate::error::ServiceError::from(e);
            return Err(Outcome::failed(format!("the restore no longer fits the operator's policy: {why}")));
        }
        let source_id = execution.source_execution_id.as_deref().unwrap_or_default();
        let (bucket, folder) = execution
            .path
            .as_deref()
            .and_then(|p| manifest_folder(p, &execution.job_id, source_id))
            .ok_or_else(|| Outcome::failed("the backup's location is unknown"))?;
        let (bucket, folder) = (bucket, folder.as_str());
        let job = self.stores.jobs.get_job(&execution.job_id).await.ok().flatten();
        let store = self.store_of_bucket(job.as_ref(), bucket).await;
        let manifest = read_manifest(store.as_ref(), bucket, folder)
            .await
            .map_err(|e| Outcome::failed(e.to_string()))?;
        let job = job.unwrap_or_else(|| manifest.job.clone());
        if let Some(missing) = request
            .items
            .iter()
            .flatten()
            .find(|i| !manifest.items.iter().any(|m| m.name == i.name))
        {
            return Err(Outcome::failed(format!("the backup's manifest has no item '{}'", missing.name)));
        }
        let selected: Vec<(ManifestItem, RestoreTarget)> = manifest
            .items
            .iter()
            .filter_map(|i| request.target_of(&i.name).map(|t| (i.clone(), t.clone())))
            .collect();
        let item = match selected.as_slice() {
            [(one, _)] if request.items.is_some() => (item_id(&job.id, &one.name), one.name.clone()),
            _ => (String::new(), String::new()),
        };
        let mut hooks = self.hooks_for(&job, state).await;
        let mut secret_names = secrets_of_restore(&request);
        let snapshots = selected.iter().flat_map(|(i, _)| &i.snapshots);
        let destinations = self.destinations_of(&job).await.unwrap_or_default();
        secret_names.extend(
            destinations
                .iter()
                .filter(|d| snapshots.clone().any(|r| r.destination_id == d.id))
                .filter_map(Destination::repository_secret),
        );
        let secrets = self.read_secrets(secret_names, &mut hooks).await?;
        let task = RestoreTask {
            job,
            hooks,
            secrets,
            store,
            bucket: bucket.to_owned(),
            folder: folder.to_owned(),
            selected,
            request,
            item,
            log_id: execution.id.clone(),
            path: execution.path.clone(),
        };
        let names = task.names();
        state.log(
            LogLevel::Info,
            format!(
                "Restore of {} item(s) from s3://{bucket}/{folder}/: {}",
                names.len(),
                names.join(", ")
            ),
        );
        Ok(task)
    }

    /// The store of the job's destination in `bucket`, or the default store.
    async fn store_of_bucket(&self, job: Option<&Job>, bucket: &str) -> Arc<dyn ObjectStore> {
        let destinations = match job {
            Some(j) => self.destinations_of(j).await.unwrap_or_default(),
            None => Vec::new(),
        };
        match destinations.iter().find(|d| d.bucket == bucket) {
            Some(d) => self.store_of(d),
            None => self.objects.default_store(),
        }
    }

    /// A blocking reader over one of the backup's objects.
    async fn object_reader(&self, task: &RestoreTask, item: &ManifestItem) -> Result<BodyReader, EngineError> {
        let key = format!("{}/{}", task.folder, item.object);
        let body = task.store.get(&task.bucket, &key, None).await?;
        Ok(BodyReader::new(body, tokio::runtime::Handle::current()))
    }

    /// One item, in one pass: streamed into a staging copy of its target while its
    /// SHA-256 and size are checked, moved into place only when they match.
    #[tracing::instrument(skip_all, fields(item = %item.name))]
    async fn restore_one(
        &self,
        task: &RestoreTask,
        state: &RunState,
        item: &ManifestItem,
        target: &RestoreTarget,
        identity: Option<&Identities>,
    ) -> ItemResult {
        if item.is_snapshot() {
            let restored = self.restore_snapshot(&task.job, &task.secrets, state, item, target).await;
            return restored_result(state, item, target, restored);
        }
        let reader = match self.object_reader(task, item).await {
            // Counted as it is read: the heartbeat's progress.
            Ok(r) => CountingReader {
                inner: r,
                signals: state.signals.clone(),
            },
            Err(e) => {
                state.log(LogLevel::Error, format!("Item '{}' cannot be read: {e}", item.name));
                return ItemResult::failed(item.name.clone(), e.to_string());
            }
        };
        let ctx = SourceContext::new(state.signals.clone(), self.objects.default_store(), None, task.secrets.clone());
        let (item_c, target_c, identity_c) = (item.clone(), target.clone(), identity.cloned());
        let restored = tokio::task::spawn_blocking(move || {
            restore_checked(reader, &item_c, &target_c, &ctx, |r| {
                crypto::decrypting(r, item_c.encrypted, identity_c.as_ref())
            })
        })
        .await
        .unwrap_or_else(|e| Err(EngineError::Target(format!("the restore stopped: {e}"))));
        restored_result(state, item, target, restored)
    }
}

/// An item's restore, logged.
fn restored_result(
    state: &RunState,
    item: &ManifestItem,
    target: &RestoreTarget,
    restored: Result<(u64, Option<String>), EngineError>,
) -> ItemResult {
    match restored {
        Ok((count, note)) => {
            let checked = if item.is_snapshot() {
                "every blob's SHA-256 matches its id"
            } else {
                "SHA-256 and size match the manifest"
            };
            let to = target.describe();
            state.log(
                LogLevel::Info,
                format!("Item '{}': {checked}; restored to {to} ({count} entries/bytes)", item.name),
            );
            if let Some(note) = note {
                state.log(LogLevel::Info, format!("Item '{}': {note}", item.name));
            }
            ItemResult::succeeded(item.name.clone(), item.stored_bytes)
        }
        Err(e) => {
            state.log(LogLevel::Error, format!("Item '{}' failed: {e}", item.name));
            ItemResult::failed(item.name.clone(), e.to_string())
        }
    }
}

#[async_trait]
impl Task for RestoreTask {
    const NOUN: &'static str = "Restore";

    fn hooks(&self) -> &TaskHooks {
        &self.hooks
    }

    fn pre_call(&self, start: i64) -> HookCall {
        HookCall::restore_pre(&self.job, &self.item.0, &self.item.1, &self.names(), start, &self.log_id)
    }

    fn post_call(&self, start: i64, end: i64, status: u32) -> HookCall {
        HookCall::restore_post(
            &self.job,
            &self.item.0,
            &self.item.1,
            &self.names(),
            start,
            end,
            status,
            &self.log_id,
        )
    }

    async fn body(&self, runner: &Runner, _execution: &Execution, state: &Arc<RunState>) -> Outcome {
        let mut outcome = restore_items(self, runner, state).await;
        outcome.path.clone_from(&self.path);
        outcome
    }
}

/// Checks every target, then restores each item.
async fn restore_items(task: &RestoreTask, runner: &Runner, state: &Arc<RunState>) -> Outcome {
    for (item, target) in &task.selected {
        if let RestoreTarget::Directory { path, overwrite } = target {
            if let Err(e) = check_directory_target(std::path::Path::new(path), *overwrite) {
                return Outcome::failed(format!("item '{}': {e}", item.name));
            }
        }
    }
    let identity = match crypto::identity_for(task.request.decryption.as_ref(), &task.secrets) {
        Ok(i) => i,
        Err(e) => return Outcome::failed(e.to_string()),
    };
    if let Some((item, _)) = task.selected.iter().find(|(i, _)| i.encrypted && identity.is_none()) {
        return Outcome::failed(format!(
            "item '{}' is encrypted: give decryption.identityFile or decryption.identityEnv",
            item.name
        ));
    }
    state.advance(Stage::Restoring, DATA_START);
    state.items_total.store(task.selected.len(), Ordering::Relaxed);
    let mut results = Vec::new();
    let mut size = 0;
    for (n, (item, target)) in task.selected.iter().enumerate() {
        if state.cancelled() {
            results.push(ItemResult::cancelled(item.name.clone(), "cancelled".into()));
            continue;
        }
        state.start_item(n);
        state.item_bytes.store(item.stored_bytes, Ordering::Relaxed);
        let result = runner.restore_one(task, state, item, target, identity.as_ref()).await;
        state.end_item(n);
        size += result.size.unwrap_or(0);
        results.push(result);
    }
    Outcome::from_items(results, size, state.cancelled())
}
