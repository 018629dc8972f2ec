//! An incremental job's items: each a snapshot in every destination's restic repository,
//! and retention there (forget, then prune at most once a day under a DynamoDB claim).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::backup::BackupTask;
use super::lease::RunState;
use super::Runner;
use crate::domain::job::SecretRef;
use crate::domain::{Destination, Execution, Item, Job, LogLevel, Manifest, ManifestItem, RestoreTarget, SnapshotRecord, Source};
use crate::engine::repository::snapshot::{self, SnapshotOwner, StoredSnapshot};
use crate::engine::repository::{self, maintain, pipe, read, RepositoryAccess};
use crate::engine::sources::{self, kind_name, SourceContext};
use crate::engine::verify::read_manifest;
use crate::engine::EngineError;
use crate::time;

/// The file name a stream item has in its snapshot: its object name without `.zst`.
fn stream_name(item: &Item) -> String {
    let object = sources::object_name(&item.name, &item.source);
    object.strip_suffix(".zst").unwrap_or(&object).to_owned()
}

impl Runner {
    /// A destination's repository, its password read from the destination's secret.
    ///
    /// # Errors
    /// The destination has no repository password, or its secret is not there.
    pub(super) fn repository_of(&self, d: &Destination, secrets: &HashMap<String, String>) -> Result<RepositoryAccess, EngineError> {
        let spec = d.repository.as_ref().ok_or_else(|| {
            EngineError::Repository(format!(
                "destination '{}' has no repository password: add \"repository\": {{\"passwordSecret\": \"cairn/...\"}} to it",
                d.name
            ))
        })?;
        let named = spec
            .password()
            .map_err(|e| EngineError::Repository(format!("destination '{}': {}", d.name, e.reason)))?;
        let password = match named {
            SecretRef::Env(var) => std::env::var(var)
                .map_err(|_| EngineError::Repository(format!("destination '{}': {var} is not set on the runner", d.name)))?,
            SecretRef::Manager(name) => secrets
                .get(name)
                .cloned()
                .ok_or_else(|| EngineError::Repository(format!("destination '{}': the secret {name} was not read", d.name)))?,
        };
        Ok(RepositoryAccess {
            store: self.store_of(d),
            bucket: d.bucket.clone(),
            root: d.repository_root(),
            destination: d.name.clone(),
            password,
        })
    }

    /// Backs one item up as a snapshot in every destination's repository, in turn (a dump
    /// runs once per destination).
    pub(super) async fn snapshot_item(
        &self,
        task: &BackupTask,
        execution: &Execution,
        state: &Arc<RunState>,
        item: &Item,
        config_document: Option<Vec<u8>>,
    ) -> Result<ManifestItem, EngineError> {
        let owner = SnapshotOwner {
            job_id: task.job.id.clone(),
            item: item.name.clone(),
            execution_id: execution.id.clone(),
        };
        let mut records = Vec::new();
        let mut total = 0;
        for d in &task.destinations {
            let access = self.repository_of(d, &task.secrets)?;
            let ctx = SourceContext {
                raw_dumps: true,
                ..SourceContext::new(
                    state.signals.clone(),
                    self.objects.default_store(),
                    config_document.clone(),
                    task.secrets.clone(),
                )
            };
            let stored = match snapshot_one(access, owner.clone(), item.clone(), ctx).await {
                Ok(stored) => stored,
                Err(e) => {
                    // The item failed: what it stored in the destinations before goes too.
                    self.forget_records(task, &records, state).await;
                    return Err(e);
                }
            };
            let record = record_of(d, item, stored);
            state.log(LogLevel::Info, format!("Item '{}': {}", item.name, describe_record(&record)));
            total = record.bytes_total;
            records.push(record.snapshot);
        }
        let first = records.first().map(|r| r.path.clone()).unwrap_or_default();
        Ok(ManifestItem {
            input_bytes: total,
            stored_bytes: records.first().map_or(0, |r| r.bytes_added),
            snapshots: records,
            ..ManifestItem::described(&item.name, kind_name(&item.source), item.source.is_archive(), first)
        })
    }

    /// Forgets snapshots a run made and will not keep (it was cancelled, or its manifest
    /// could not be written), so no snapshot outlives the execution that reports it.
    pub(super) async fn forget_snapshots(&self, task: &BackupTask, stored: &[ManifestItem], state: &RunState) {
        let records: Vec<SnapshotRecord> = stored.iter().flat_map(|m| m.snapshots.iter().cloned()).collect();
        self.forget_records(task, &records, state).await;
    }

    async fn forget_records(&self, task: &BackupTask, records: &[SnapshotRecord], state: &RunState) {
        for d in &task.destinations {
            let ids: Vec<String> = records.iter().filter(|r| r.destination_id == d.id).map(|r| r.id.clone()).collect();
            if ids.is_empty() {
                continue;
            }
            match self.forget_in(d, &task.secrets, ids).await {
                Ok(n) => state.log(
                    LogLevel::Info,
                    format!("Forgot {n} snapshot(s) of this run in {}", d.repository_path()),
                ),
                Err(e) => state.log(
                    LogLevel::Warning,
                    format!("Could not forget this run's snapshots in {}: {e}", d.repository_path()),
                ),
            }
        }
    }

    async fn forget_in(&self, d: &Destination, secrets: &HashMap<String, String>, ids: Vec<String>) -> Result<usize, EngineError> {
        let access = self.repository_of(d, secrets)?;
        let runtime = tokio::runtime::Handle::current();
        blocking(move || {
            let backend = access.backend(runtime);
            let repo = repository::open(&access, &backend, false)?;
            maintain::forget(&repo, &ids)
        })
        .await
    }

    /// Retention of an incremental backup: forgets the snapshots its manifest lists in
    /// destination `d`. Answers whether they are gone (or there were none).
    pub(super) async fn forget_backup(
        &self,
        d: &Destination,
        job_id: &str,
        id: &str,
        secrets: &HashMap<String, String>,
        state: &RunState,
    ) -> bool {
        let store = self.store_of(d);
        let folder = d.object_key(job_id, id, "");
        let manifest = match read_manifest(store.as_ref(), &d.bucket, folder.trim_end_matches('/')).await {
            Ok(m) => m,
            // No manifest: nothing of it was ever reported; its folder goes as usual.
            Err(_) => return true,
        };
        let ids: Vec<String> = manifest
            .items
            .iter()
            .flat_map(|m| &m.snapshots)
            .filter(|r| r.destination_id == d.id)
            .map(|r| r.id.clone())
            .collect();
        if ids.is_empty() {
            return true;
        }
        match self.forget_in(d, secrets, ids).await {
            Ok(n) => {
                state.log(
                    LogLevel::Info,
                    format!("Retention: forgot {n} snapshot(s) of backup {id} in {}", d.repository_path()),
                );
                true
            }
            Err(e) => {
                state.log(
                    LogLevel::Warning,
                    format!(
                        "Retention: could not forget backup {id}'s snapshots in {}: {e}",
                        d.repository_path()
                    ),
                );
                false
            }
        }
    }

    /// Prunes each destination's repository, unless it was pruned within the interval or
    /// another runner is pruning it now.
    pub(super) async fn prune_repositories(
        &self,
        destinations: &[Destination],
        secrets: &HashMap<String, String>,
        execution: &Execution,
        state: &RunState,
    ) {
        let interval = i64::try_from(self.config.prune_interval_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
        for d in destinations {
            let now = time::now().timestamp();
            let claimed = self
                .stores
                .destinations
                .claim_prune(&d.id, &execution.id, now, now.saturating_sub(interval), now + PRUNE_CLAIM_SECONDS)
                .await;
            match claimed {
                Ok(true) => {}
                Ok(false) => {
                    state.log(
                        LogLevel::Info,
                        format!(
                            "Retention: {} was pruned recently or is being pruned; not pruned now",
                            d.repository_path()
                        ),
                    );
                    continue;
                }
                Err(e) => {
                    state.log(
                        LogLevel::Warning,
                        format!("Retention: cannot claim the prune of {}: {e}", d.repository_path()),
                    );
                    continue;
                }
            }
            let pruned = self.prune_one(d, secrets).await;
            match &pruned {
                Ok(p) => state.log(
                    LogLevel::Info,
                    format!(
                        "Retention: pruned {}: {} unused pack(s) marked for deletion, {} deleted, {} taken back",
                        d.repository_path(),
                        p.packs_marked,
                        p.packs_deleted,
                        p.packs_recovered
                    ),
                ),
                Err(e) => state.log(
                    LogLevel::Warning,
                    format!("Retention: prune of {} failed: {e}", d.repository_path()),
                ),
            }
            let finished = time::now().timestamp();
            if let Err(e) = self
                .stores
                .destinations
                .finish_prune(&d.id, &execution.id, finished, pruned.is_ok())
                .await
            {
                state.log(
                    LogLevel::Warning,
                    format!("Retention: cannot release the prune of {}: {e}", d.repository_path()),
                );
            }
        }
    }

    /// Restores an item's snapshot from the first of the job's destinations that holds one.
    pub(super) async fn restore_snapshot(
        &self,
        job: &Job,
        secrets: &Arc<HashMap<String, String>>,
        state: &RunState,
        item: &ManifestItem,
        target: &RestoreTarget,
    ) -> Result<(u64, Option<String>), EngineError> {
        let destinations = self.destinations_of(job).await.unwrap_or_default();
        let (d, record) = destinations
            .iter()
            .find_map(|d| item.snapshots.iter().find(|r| r.destination_id == d.id).map(|r| (d, r.clone())))
            .ok_or_else(|| {
                EngineError::Repository(format!(
                    "no destination of job '{}' holds item '{}''s snapshot any more",
                    job.name, item.name
                ))
            })?;
        let access = self.repository_of(d, secrets)?;
        state.log(
            LogLevel::Info,
            format!(
                "Item '{}': restoring snapshot {} from {}",
                item.name,
                &record.id[..8.min(record.id.len())],
                record.repository
            ),
        );
        let ctx = SourceContext::new(state.signals.clone(), self.objects.default_store(), None, secrets.clone());
        let (item, target, runtime) = (item.clone(), target.clone(), tokio::runtime::Handle::current());
        blocking(move || {
            let backend = access.backend(runtime);
            let repo = repository::open(&access, &backend, false)?;
            read::restore_snapshot(repo, &record, &item, &target, &ctx)
        })
        .await
    }

    async fn prune_one(&self, d: &Destination, secrets: &HashMap<String, String>) -> Result<maintain::Pruned, EngineError> {
        let access = self.repository_of(d, secrets)?;
        let runtime = tokio::runtime::Handle::current();
        blocking(move || {
            let backend = access.backend(runtime);
            let repo = repository::open(&access, &backend, false)?;
            maintain::prune(&repo)
        })
        .await
    }
}

/// What `cairn backups verify` found of one item's snapshot.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotCheck {
    pub item: String,
    pub snapshot: String,
    pub repository: String,
    /// Whether every pack the snapshot uses was read and each blob decrypted to its hash.
    pub read_data: bool,
    pub problems: Vec<String>,
}

impl Runner {
    /// Checks an incremental backup's snapshots in every destination that holds them:
    /// every tree and blob present; with `read_data`, every blob decrypts to its hash.
    ///
    /// # Errors
    /// A repository that cannot be opened (its password, its store).
    pub async fn check_snapshots(&self, job: &Job, manifest: &Manifest, read_data: bool) -> Result<Vec<SnapshotCheck>, EngineError> {
        let destinations = self
            .destinations_of(job)
            .await
            .map_err(|o| EngineError::Repository(o.error.unwrap_or_default()))?;
        let mut checks = Vec::new();
        for d in &destinations {
            let mut secrets = HashMap::new();
            if let Some(name) = d.repository_secret() {
                let value = self
                    .secrets
                    .secret_value(&name)
                    .await
                    .map_err(|e| EngineError::Repository(e.to_string()))?;
                secrets.insert(name, value);
            }
            let records: Vec<(String, SnapshotRecord)> = manifest
                .items
                .iter()
                .flat_map(|m| m.snapshots.iter().map(|r| (m.name.clone(), r.clone())))
                .filter(|(_, r)| r.destination_id == d.id)
                .collect();
            if records.is_empty() {
                continue;
            }
            let access = self.repository_of(d, &secrets)?;
            let runtime = tokio::runtime::Handle::current();
            let found = blocking(move || {
                let backend = access.backend(runtime);
                let mut out = Vec::new();
                for (item, record) in records {
                    let repo = repository::open(&access, &backend, false)?;
                    let checked = read::check(repo, std::slice::from_ref(&record.id), read_data)?;
                    out.push(SnapshotCheck {
                        item,
                        snapshot: record.id,
                        repository: record.repository,
                        read_data,
                        problems: checked.problems,
                    });
                }
                Ok(out)
            })
            .await?;
            checks.extend(found);
        }
        Ok(checks)
    }
}

/// What a snapshot stored, as the manifest records it, and the source's whole size.
struct Recorded {
    snapshot: SnapshotRecord,
    bytes_total: u64,
}

fn record_of(d: &Destination, item: &Item, stored: StoredSnapshot) -> Recorded {
    let path = match &item.source {
        Source::Directory { path, .. } => path.clone(),
        _ => stream_name(item),
    };
    Recorded {
        bytes_total: stored.bytes_total,
        snapshot: SnapshotRecord {
            destination_id: d.id.clone(),
            repository: d.repository_path(),
            id: stored.id,
            parent: stored.parent,
            path,
            files: stored.files,
            bytes_read: stored.bytes_read,
            bytes_added: stored.bytes_added,
        },
    }
}

/// The log line of a snapshot: short ids, as `restic snapshots` shows them.
fn describe_record(r: &Recorded) -> String {
    let s = &r.snapshot;
    let short = |id: &str| id.chars().take(8).collect::<String>();
    let parent = s.parent.as_deref().map_or(String::new(), |p| format!(", parent {}", short(p)));
    format!(
        "snapshot {} in {} ({} files, {} bytes read of {}, {} bytes added{parent})",
        short(&s.id),
        s.repository,
        s.files,
        s.bytes_read,
        r.bytes_total,
        s.bytes_added
    )
}

/// How long a prune's claim lasts: a runner that dies while pruning blocks the next prune
/// of that repository this long, never a backup.
const PRUNE_CLAIM_SECONDS: i64 = 6 * 3600;

/// Runs rustic_core's blocking work off the runtime's workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T, EngineError> + Send + 'static) -> Result<T, EngineError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(EngineError::Repository(format!("the repository task stopped: {e}"))))
}

/// One item into one repository, on a blocking thread: a directory read by rustic_core, any
/// other source produced into a pipe on a thread of its own.
async fn snapshot_one(
    access: RepositoryAccess,
    owner: SnapshotOwner,
    item: Item,
    ctx: SourceContext,
) -> Result<StoredSnapshot, EngineError> {
    let runtime = tokio::runtime::Handle::current();
    blocking(move || {
        let backend = access.backend(runtime);
        let repo = repository::open(&access, &backend, true)?;
        let signals = ctx.signals.clone();
        if let Source::Directory { path, include, exclude } = &item.source {
            return snapshot::directory(repo, &owner, Path::new(path), include, exclude, &signals);
        }
        let source = item.source.clone();
        let reader = pipe::spawn_producer("cairn-producer", move |w| sources::produce(&source, w, &ctx).map(drop))?;
        let producer_error = reader.error.clone();
        snapshot::stream(repo, &backend, &owner, &stream_name(&item), reader, &signals)
            .map_err(|e| producer_error.lock().ok().and_then(|mut slot| slot.take()).unwrap_or(e))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_named_as_its_object_without_zst() {
        let item = Item {
            name: "db".into(),
            source: Source::Command {
                argv: vec!["/bin/echo".into()],
                timeout_seconds: None,
            },
            target: None,
        };
        assert_eq!(stream_name(&item), "db.out");
    }
}
