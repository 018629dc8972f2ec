//! Stored backups: restores (queued like any execution) and downloads (presigned URLs,
//! recorded as a Download execution with its hooks).

use std::sync::Mutex;

use serde::Deserialize;

use super::{CairnService, ServiceError, Triggered};
use crate::domain::destination::{split_backup_path, REPOSITORY_FOLDER};
use crate::domain::{
    new_id, Execution, ExecutionStatus, ExecutionType, FieldError, Hook, HookPosition, LogEntry, LogLevel, Manifest, ManifestItem,
    RestoreRequest, Stage, Trigger, MANIFEST_NAME,
};
use crate::engine::verify::read_manifest;
use crate::hooks::{item_id, HookCall, HookRunner};
use crate::ports::ObjectStore;
use crate::time;

/// What a download asks for (`POST /api/executions/{id}/download`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DownloadRequest {
    /// Items to download (default: every item).
    #[serde(default)]
    pub items: Option<Vec<String>>,
    /// Seconds the URLs stay valid (default 900).
    #[serde(default)]
    pub expires_in: Option<u64>,
}

impl CairnService {
    /// The backup execution `id`, if it can be restored or downloaded.
    async fn restorable(&self, id: &str) -> Result<(Execution, String), ServiceError> {
        let e = self
            .executions
            .get_execution(id)
            .await?
            .ok_or_else(ServiceError::execution_not_found)?;
        if e.execution_type != ExecutionType::Backup {
            return Err(ServiceError::Conflict(format!(
                "Execution {id} is a {:?}, not a backup",
                e.execution_type
            )));
        }
        if !matches!(e.status, ExecutionStatus::Success | ExecutionStatus::Partial) {
            return Err(ServiceError::Conflict(format!(
                "Execution {id} stored no complete backup (status {})",
                e.status.as_str()
            )));
        }
        if let Some(p) = &e.pruned {
            return Err(ServiceError::Conflict(format!("Backup {id} no longer exists: {p}")));
        }
        let path = e
            .path
            .clone()
            .ok_or_else(|| ServiceError::Conflict(format!("Execution {id} recorded no backup location")))?;
        Ok((e, path))
    }

    fn check_item_names<'a>(e: &Execution, names: impl Iterator<Item = &'a str>) -> Result<(), ServiceError> {
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
    pub async fn start_restore(&self, id: &str, request: RestoreRequest, trigger: Trigger) -> Result<Triggered, ServiceError> {
        request.validate()?;
        self.policy.check_restore(&request)?;
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
        // A restore runs where its backup ran: a backup too long for Lambda restores long too.
        execution.runner = source.runner;
        execution.path = Some(path);
        execution.parameters = Some(serde_json::to_string(&request).unwrap_or_default());
        self.queue(&execution, &format!("Restore of backup {id} queued")).await?;
        Ok(Triggered {
            execution_id: execution.id,
            created: true,
        })
    }

    /// Presigned URLs for a backup's objects and manifest, recorded as a Download
    /// execution with its pre/post download hooks (a failing pre hook refuses it).
    ///
    /// # Errors
    /// 404, 409 (not a backup, incomplete, refused by a hook), 400.
    pub async fn download(&self, id: &str, request: DownloadRequest, trigger: Trigger) -> Result<Download, ServiceError> {
        let (source, path) = self.restorable(id).await?;
        if let Some(items) = &request.items {
            Self::check_item_names(&source, items.iter().map(String::as_str))?;
        }
        let seconds = request.expires_in.unwrap_or(900);
        if seconds == 0 || seconds > self.download_max_seconds {
            return Err(FieldError::new("expiresIn", format!("must be between 1 and {} seconds", self.download_max_seconds)).into());
        }
        let (bucket, folder) =
            split_backup_path(&path).ok_or_else(|| ServiceError::Conflict(format!("unexpected backup location {path}")))?;
        if folder == REPOSITORY_FOLDER || folder.ends_with(&format!("/{REPOSITORY_FOLDER}")) {
            return Err(ServiceError::Conflict(format!(
                "Backup {id} is incremental: its items are snapshots in the restic repository {path}, not objects to download. \
                 Restore it with POST /api/executions/{id}/restore, or read it with restic (restic -r s3:<endpoint>/{bucket}/{folder} restore)"
            )));
        }
        let store = self.objects.default_store();
        let manifest = read_manifest(store.as_ref(), bucket, folder)
            .await
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
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
        execution.path = Some(path.clone());
        let selected: Vec<&ManifestItem> = manifest
            .items
            .iter()
            .filter(|i| request.items.as_ref().is_none_or(|names| names.contains(&i.name)))
            .collect();
        execution.size = Some(selected.iter().map(|i| i.stored_bytes).sum());
        let hooks = self.download_hooks(&source.job_id, &manifest).await?;
        let item_hook_id = match selected.as_slice() {
            [one] if request.items.is_some() => item_id(&manifest.job.id, &one.name),
            _ => String::new(),
        };
        let log = DownloadLog::default();
        let runner = HookRunner {
            rules: self.hook_rules.clone(),
        };
        let pre = HookCall::download(HookPosition::Pre, &item_hook_id, &execution.id);
        let presigned = match runner.run_all(&hooks, &pre, &[], |l, m| log.push(l, m)).await {
            Err(refused) => Err(DownloadFailed::Refused(refused)),
            Ok(()) => presign(store.as_ref(), bucket, folder, &selected, seconds).await,
        };
        if let Ok((urls, _)) = &presigned {
            log.push(LogLevel::Info, format!("Presigned {} URL(s) valid for {seconds} s", urls.len() + 1));
        }
        let post = HookCall::download(HookPosition::Post, &item_hook_id, &execution.id);
        let _ = runner.run_all(&hooks, &post, &[], |l, m| log.push(l, m)).await;
        self.record_download(execution, presigned, seconds, started, log).await
    }

    /// The download hooks that apply to the backup's job (its manifest's copy when the job
    /// was deleted since).
    async fn download_hooks(&self, job_id: &str, manifest: &Manifest) -> Result<Vec<Hook>, ServiceError> {
        let job = self.jobs.get_job(job_id).await?.unwrap_or_else(|| manifest.job.clone());
        if !job.hooks_enabled {
            return Ok(Vec::new());
        }
        let all = self.hooks.list_hooks().await?;
        Ok(all.into_iter().filter(|h| h.enabled && h.applies_to(&job.id)).collect())
    }

    /// Stores the ended Download execution and its log; answers the URLs, or the refusal.
    async fn record_download(
        &self,
        mut execution: Execution,
        presigned: Result<(Vec<DownloadUrl>, String), DownloadFailed>,
        seconds: u64,
        started: chrono::DateTime<chrono::Utc>,
        log: DownloadLog,
    ) -> Result<Download, ServiceError> {
        let ended = time::now();
        let ok = presigned.is_ok();
        execution.status = if ok { ExecutionStatus::Success } else { ExecutionStatus::Failed };
        execution.stage = if ok { Stage::Completed } else { Stage::Failed };
        execution.progress = if ok { 100 } else { 0 };
        execution.ended_at = Some(time::iso(ended));
        execution.duration = u64::try_from((ended - started).num_milliseconds()).ok();
        execution.error = presigned.as_ref().err().map(ToString::to_string);
        self.executions.record_finished(&execution).await?;
        let entries = log.0.into_inner().unwrap_or_default();
        if !entries.is_empty() {
            self.executions.append_logs(&execution.id, &entries).await?;
        }
        let (items, manifest_url) = presigned.map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let lifetime = chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(900));
        Ok(Download {
            execution_id: execution.id,
            expires_at: time::iso(started + lifetime),
            items,
            manifest_url,
        })
    }
}

/// Why a download handed out no URLs.
#[derive(Debug, thiserror::Error)]
enum DownloadFailed {
    #[error("Download refused: {0}")]
    Refused(crate::hooks::PreHookFailed),
    #[error("cannot presign: {0}")]
    Presign(#[from] crate::error::ObjectStoreError),
}

/// A download's URLs.
#[derive(Debug, Clone)]
pub struct Download {
    /// The Download execution that records it.
    pub execution_id: String,
    pub expires_at: String,
    pub items: Vec<DownloadUrl>,
    pub manifest_url: String,
}

/// One item's presigned URL.
#[derive(Debug, Clone)]
pub struct DownloadUrl {
    pub item: String,
    pub object: String,
    pub size: u64,
    pub sha256: String,
    pub url: String,
}

/// The download's log, written with the execution.
#[derive(Debug, Default)]
struct DownloadLog(Mutex<Vec<LogEntry>>);

impl DownloadLog {
    fn push(&self, level: LogLevel, message: String) {
        if let Ok(mut l) = self.0.lock() {
            l.push(LogEntry {
                timestamp: time::iso(time::now()),
                level,
                stage: Stage::Initializing,
                message,
            });
        }
    }
}

/// Presigned URLs for the selected items and the manifest.
async fn presign(
    store: &dyn ObjectStore,
    bucket: &str,
    folder: &str,
    selected: &[&ManifestItem],
    seconds: u64,
) -> Result<(Vec<DownloadUrl>, String), DownloadFailed> {
    let mut urls = Vec::new();
    for item in selected {
        let url = store.presign_get(bucket, &format!("{folder}/{}", item.object), seconds).await?;
        urls.push(DownloadUrl {
            item: item.name.clone(),
            object: item.object.clone(),
            size: item.stored_bytes,
            sha256: item.sha256.clone(),
            url,
        });
    }
    let manifest = store.presign_get(bucket, &format!("{folder}/{MANIFEST_NAME}"), seconds).await?;
    Ok((urls, manifest))
}
