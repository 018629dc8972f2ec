//! A backup: every item streamed to every destination, the manifest written last, then
//! retention.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::json;

use super::lease::{RunState, DATA_END};
use super::outcome::{describe_items, Outcome};
use super::task::{Task, TaskHooks};
use super::Runner;
use crate::domain::policy::secrets_of_items;
use crate::domain::{
    ApiKey, Destination, Execution, ExecutionStatus, HookType, Item, ItemResult, Job, LogLevel, Manifest, ManifestItem, Source, Stage,
    Verification, MANIFEST_NAME,
};
use crate::engine::integrity;
use crate::engine::sources::{self, kind_name, SourceContext};
use crate::engine::target::{EngineLog, Target};
use crate::engine::upload::{backup_item, ItemBackup};
use crate::engine::EngineError;
use crate::error::{ObjectStoreError, StoreError};
use crate::hooks::{item_id, HookCall};
use crate::time;

/// A loaded backup.
pub(super) struct BackupTask {
    pub(super) job: Job,
    pub(super) destinations: Vec<Destination>,
    hooks: TaskHooks,
    /// The Secrets Manager secrets the items (and, incremental, the repositories) name.
    pub(super) secrets: Arc<HashMap<String, String>>,
    log_id: String,
}

/// What every item of one backup shares.
struct ItemPlan {
    recipients: Option<Arc<Vec<age::x25519::Recipient>>>,
    config_document: Option<Vec<u8>>,
}

impl Runner {
    pub(super) async fn load_backup(&self, execution: &Execution, job: Option<Job>, state: &RunState) -> Result<BackupTask, Outcome> {
        let job = self.confined(self.job_of(execution, job).await?)?;
        // Both read the store: at once, since every round trip delays the first byte.
        let (destinations, hooks) = tokio::join!(self.destinations_of(&job), self.hooks_for(&job, state));
        let (destinations, mut hooks) = (self.with_verification(destinations?, state).await, hooks);
        let mut secret_names = secrets_of_items(&job.items);
        if job.incremental {
            secret_names.extend(destinations.iter().filter_map(Destination::repository_secret));
        }
        let secrets = self.read_secrets(secret_names, &mut hooks).await?;
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
        Ok(BackupTask {
            job,
            destinations,
            hooks,
            secrets,
            log_id: execution.id.clone(),
        })
    }
}

impl Runner {
    /// The destinations, each knowing how its uploads are verified: a destination's first
    /// backup probes its store once and remembers the answer on it. A probe that fails
    /// leaves the destination unprobed (its objects are read back this time).
    async fn with_verification(&self, mut destinations: Vec<Destination>, state: &RunState) -> Vec<Destination> {
        for d in destinations.iter_mut().filter(|d| d.verification.is_none()) {
            let probed = integrity::probe(self.store_of(d).as_ref(), &d.bucket, &d.prefix).await;
            match probed {
                Ok(probed) => {
                    if let Some(warning) = probed.misreports {
                        state.log(LogLevel::Warning, format!("Destination '{}': {warning}", d.name));
                    }
                    state.log(
                        LogLevel::Info,
                        format!(
                            "Destination '{}': its store is verified by {} from now on",
                            d.name,
                            probed.verification.describe()
                        ),
                    );
                    if let Err(e) = self.stores.destinations.record_verification(&d.id, probed.verification).await {
                        state.log(
                            LogLevel::Warning,
                            format!("Destination '{}': could not remember how it is verified: {e}", d.name),
                        );
                    }
                    d.verification = Some(probed.verification);
                }
                Err(e) => state.log(
                    LogLevel::Warning,
                    format!(
                        "Destination '{}': probing its store failed ({e}); its objects are read back to verify them",
                        d.name
                    ),
                ),
            }
        }
        destinations
    }
}

#[async_trait]
impl Task for BackupTask {
    const NOUN: &'static str = "Backup";

    fn hooks(&self) -> &TaskHooks {
        &self.hooks
    }

    fn pre_call(&self, start: i64) -> HookCall {
        HookCall::backup_pre(&self.job, start, &self.log_id)
    }

    fn post_call(&self, start: i64, end: i64, status: u32) -> HookCall {
        HookCall::backup_post(&self.job, start, end, status, &self.log_id)
    }

    async fn body(&self, runner: &Runner, execution: &Execution, state: &Arc<RunState>) -> Outcome {
        let plan = match runner.plan(&self.job).await {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        let mut results = Vec::new();
        let mut stored = Vec::new();
        for (index, item) in self.job.items.iter().enumerate() {
            if state.cancelled() {
                results.push(ItemResult::cancelled(item.name.clone(), "cancelled before it started".into()));
                continue;
            }
            let (result, manifest_item) = runner.back_up_one(self, execution, state, &plan, index, item).await;
            results.push(result);
            stored.extend(manifest_item);
        }
        runner.seal(self, execution, state, results, stored).await
    }
}

impl Runner {
    /// What the items share, read once: the encryption recipients and, for config
    /// sources, the configuration document.
    async fn plan(&self, job: &Job) -> Result<ItemPlan, Outcome> {
        let config_document = if job.items.iter().any(|i| matches!(i.source, Source::Config {})) {
            let doc = self.config_document().await;
            Some(doc.map_err(|e| Outcome::failed(format!("cannot export the configuration: {e}")))?)
        } else {
            None
        };
        // Validated at job creation; a job stored before a recipient became invalid fails here.
        let recipients = job
            .encryption
            .as_ref()
            .map(|e| crate::domain::job::parse_recipients(&e.recipients))
            .transpose()
            .map_err(|e| Outcome::failed(format!("encryption: {}", e.reason)))?;
        Ok(ItemPlan {
            recipients: recipients.map(Arc::new),
            config_document,
        })
    }

    /// Cairn's own configuration: jobs, destinations, key metadata (never hashes), settings.
    async fn config_document(&self) -> Result<Vec<u8>, StoreError> {
        let jobs = self.stores.jobs.list_jobs().await?;
        let destinations = self.stores.destinations.list_destinations().await?;
        let keys: Vec<_> = self.stores.keys.list_keys().await?.iter().map(ApiKey::metadata).collect();
        let settings = self.stores.settings.settings().await?;
        let doc =
            json!({"exportedAt": time::iso(time::now()), "jobs": jobs, "destinations": destinations, "keys": keys, "settings": settings});
        Ok(serde_json::to_vec_pretty(&doc).unwrap_or_default())
    }

    /// One item: its pre hooks, its stream, its post hooks.
    #[tracing::instrument(skip_all, fields(item = %item.name))]
    async fn back_up_one(
        &self,
        task: &BackupTask,
        execution: &Execution,
        state: &Arc<RunState>,
        plan: &ItemPlan,
        index: usize,
        item: &Item,
    ) -> (ItemResult, Option<ManifestItem>) {
        state.start_item(index);
        let job = &task.job;
        let (hook_id, log_id) = (item_id(&job.id, &item.name), format!("{}/{}", execution.id, item.name));
        let pre = HookCall::item_pre(HookType::BackupItem, &job.id, &hook_id, &item.name, &log_id);
        let (result, stored) = match self.run_hooks(&task.hooks, &pre, state).await {
            Err(failed) => {
                state.log(LogLevel::Error, format!("Item '{}' failed: {failed}", item.name));
                (ItemResult::failed(item.name.clone(), failed.summary), None)
            }
            Ok(()) if job.incremental => {
                state.advance(Stage::Dumping, 0);
                state.data_progress();
                let sizer = measure_beside(state, index, item);
                let stored = self.snapshot_item(task, execution, state, item, plan.config_document.clone()).await;
                sizer.abort();
                snapshot_result(state, item, stored)
            }
            Ok(()) => {
                state.advance(Stage::Dumping, 0);
                state.data_progress();
                let streamed = self.stream_item(task, execution, state, plan, index, item).await;
                item_result(state, job, item, streamed)
            }
        };
        let post = HookCall::item_post(
            HookType::BackupItem,
            &job.id,
            &hook_id,
            &item.name,
            result.status.hook_code(),
            &log_id,
        );
        let _ = self.run_hooks(&task.hooks, &post, state).await;
        state.end_item(index);
        (result, stored)
    }

    /// Streams one item's source to every destination.
    async fn stream_item(
        &self,
        task: &BackupTask,
        execution: &Execution,
        state: &Arc<RunState>,
        plan: &ItemPlan,
        index: usize,
        item: &Item,
    ) -> Result<ItemBackup, EngineError> {
        let sizer = measure_beside(state, index, item);
        let object = sources::object_name(&item.name, &item.source);
        let targets: Vec<Target> = task
            .destinations
            .iter()
            .map(|d| Target {
                store: self.store_of(d),
                bucket: d.bucket.clone(),
                key: d.object_key(&task.job.id, &execution.id, &object),
                storage_class: d.storage_class.clone(),
                verification: d.verification.unwrap_or(Verification::ReadBack),
            })
            .collect();
        state.log(
            LogLevel::Info,
            format!("Item '{}': streaming {} source", item.name, kind_name(&item.source)),
        );
        let ctx = SourceContext::new(
            state.signals.clone(),
            self.objects.default_store(),
            plan.config_document.clone(),
            task.secrets.clone(),
        );
        let log_state = state.clone();
        let log: EngineLog =
            Arc::new(move |warning, message| log_state.log(if warning { LogLevel::Warning } else { LogLevel::Info }, message));
        let level = task.job.compression.level;
        let part_size = self.config.part_size_mib * 1024 * 1024;
        let outcome = backup_item(item.source.clone(), level, part_size, plan.recipients.clone(), targets, ctx, log).await;
        sizer.abort();
        outcome
    }

    /// After the items: a cancelled run deletes what it stored; otherwise the manifest is
    /// written last, then retention applies.
    async fn seal(
        &self,
        task: &BackupTask,
        execution: &Execution,
        state: &RunState,
        results: Vec<ItemResult>,
        stored: Vec<ManifestItem>,
    ) -> Outcome {
        let job = &task.job;
        if state.cancelled() {
            self.forget_snapshots(task, &stored, state).await;
            self.delete_folders(&task.destinations, job, &execution.id, state).await;
            return Outcome::cancelled(results);
        }
        state.advance(Stage::Verifying, DATA_END);
        let failed: Vec<&ItemResult> = results.iter().filter(|r| r.status == ExecutionStatus::Failed).collect();
        let partial: Vec<&ItemResult> = results.iter().filter(|r| r.status == ExecutionStatus::Partial).collect();
        let error_line = (!failed.is_empty()).then(|| describe_items(&failed, " failed: "));
        if stored.is_empty() {
            return Outcome::failed_with(error_line.unwrap_or_else(|| "no item was backed up".into()), results);
        }
        let status = if failed.is_empty() && partial.is_empty() {
            ExecutionStatus::Success
        } else {
            ExecutionStatus::Partial
        };
        let failed_items = failed
            .iter()
            .map(|r| (r.name.clone(), r.error.clone().unwrap_or_default()))
            .collect();
        let stored_total = stored.iter().map(|m| m.stored_bytes).sum();
        let manifest = Manifest {
            format_version: 1,
            execution_id: execution.id.clone(),
            job_id: job.id.clone(),
            job_name: job.name.clone(),
            created_at: time::iso(time::now()),
            status,
            items: stored,
            failed_items,
            job: job.clone(),
        };
        if let Err(e) = self.write_manifest(task, execution, &manifest, state).await {
            self.forget_snapshots(task, &manifest.items, state).await;
            return Outcome::failed_with(format!("the manifest could not be written: {e}"), results);
        }
        state.advance(Stage::Retention, 95);
        if let Some(policy) = &job.retention {
            self.apply_retention(job, execution, policy, &task.destinations, &task.secrets, state)
                .await;
        }
        let first = &task.destinations[0];
        let path = if job.incremental {
            first.repository_path()
        } else {
            first.backup_path(&job.id, &execution.id)
        };
        let error = error_line.or_else(|| (!partial.is_empty()).then(|| describe_items(&partial, ": ")));
        Outcome {
            status,
            size: Some(stored_total),
            path: Some(path),
            error,
            items: results,
        }
    }

    /// Writes `manifest.json` into every destination's folder of this execution.
    async fn write_manifest(
        &self,
        task: &BackupTask,
        execution: &Execution,
        manifest: &Manifest,
        state: &RunState,
    ) -> Result<(), ObjectStoreError> {
        let body = Bytes::from(serde_json::to_vec_pretty(manifest).unwrap_or_default());
        for d in &task.destinations {
            let key = d.object_key(&task.job.id, &execution.id, MANIFEST_NAME);
            self.store_of(d).put(&d.bucket, &key, body.clone(), "application/json").await?;
            state.log(LogLevel::Info, format!("Manifest written to s3://{}/{key}", d.bucket));
        }
        Ok(())
    }

    /// Deletes what a cancelled run stored.
    async fn delete_folders(&self, destinations: &[Destination], job: &Job, execution_id: &str, state: &RunState) {
        for d in destinations {
            let prefix = d.object_key(&job.id, execution_id, "");
            if let Err(e) = self.store_of(d).delete_prefix(&d.bucket, &prefix).await {
                state.log(LogLevel::Warning, format!("could not delete s3://{}/{prefix}: {e}", d.bucket));
            }
        }
    }
}

/// Measures the item's size (for progress by bytes) beside the backup, not before it:
/// walking a large tree first would delay every byte.
fn measure_beside(state: &Arc<RunState>, index: usize, item: &Item) -> tokio::task::JoinHandle<()> {
    let (source, state, name) = (item.source.clone(), state.clone(), item.name.clone());
    tokio::spawn(async move {
        let known = tokio::task::spawn_blocking(move || sources::known_size(&source))
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
}

/// The item's result and, when it was stored, its manifest entry; logged.
fn item_result(state: &RunState, job: &Job, item: &Item, streamed: Result<ItemBackup, EngineError>) -> (ItemResult, Option<ManifestItem>) {
    let b = match streamed {
        Ok(b) => b,
        Err(EngineError::Cancelled) => {
            state.log(
                LogLevel::Warning,
                format!("Item '{}': cancelled; its upload was aborted", item.name),
            );
            return (ItemResult::cancelled(item.name.clone(), "cancelled".into()), None);
        }
        Err(e) => {
            state.log(LogLevel::Error, format!("Item '{}' failed: {e}", item.name));
            return (ItemResult::failed(item.name.clone(), e.to_string()), None);
        }
    };
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
    let (status, error) = match b.problems.first() {
        None => (ExecutionStatus::Success, None),
        Some(first) => (
            ExecutionStatus::Partial,
            Some(format!("{} entries could not be read (first: {first})", b.problems.len())),
        ),
    };
    let result = ItemResult {
        name: item.name.clone(),
        status,
        size: Some(b.summary.bytes),
        error,
    };
    (result, Some(manifest_item(item, job.encryption.is_some(), b)))
}

/// An incremental item's result and manifest entry; logged.
fn snapshot_result(state: &RunState, item: &Item, stored: Result<ManifestItem, EngineError>) -> (ItemResult, Option<ManifestItem>) {
    match stored {
        Ok(m) => (ItemResult::succeeded(item.name.clone(), m.stored_bytes), Some(m)),
        Err(EngineError::Cancelled) => {
            state.log(LogLevel::Warning, format!("Item '{}': cancelled", item.name));
            (ItemResult::cancelled(item.name.clone(), "cancelled".into()), None)
        }
        Err(e) => {
            state.log(LogLevel::Error, format!("Item '{}' failed: {e}", item.name));
            (ItemResult::failed(item.name.clone(), e.to_string()), None)
        }
    }
}

/// The manifest entry of a stored item.
fn manifest_item(item: &Item, encrypted: bool, b: ItemBackup) -> ManifestItem {
    let object = sources::object_name(&item.name, &item.source);
    ManifestItem {
        input_bytes: b.input_bytes,
        stored_bytes: b.summary.bytes,
        sha256: b.summary.sha256,
        parts: b.summary.parts,
        crc64nvme: b.summary.crc64nvme,
        etag: b.objects.first().map(|o| o.etag.clone()).unwrap_or_default(),
        encrypted,
        problems: b.problems,
        ..ManifestItem::described(&item.name, kind_name(&item.source), item.source.is_archive(), object)
    }
}
