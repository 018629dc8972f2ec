//! `cairn backups`: verify, restore and download stored backups.

use std::path::PathBuf;

use anyhow::bail;
use cairn_shared::domain::destination::{manifest_folder, split_backup_path};
use cairn_shared::domain::{RestoreRequest, Trigger};
use cairn_shared::engine::verify::{read_manifest, verify_backup, ItemCheck};
use cairn_shared::http::views;
use cairn_shared::ports::{DestinationRepository, ExecutionStore, JobRepository};
use cairn_shared::services::DownloadRequest;
use cairn_shared::wiring::App;
use clap::Subcommand;
use serde_json::json;

use super::{parse, read_input, service_err};
use crate::output::{table, Output};

#[derive(Debug, Subcommand)]
pub enum BackupsCmd {
    /// Re-read a backup: every object's SHA-256 and size against its manifest, and the
    /// contents of every archive.
    Verify {
        execution_id: String,
        /// Incremental backups: also read every pack their snapshots use and check each
        /// blob decrypts to its hash (without it: every tree and blob is present).
        #[arg(long)]
        read_data: bool,
    },
    /// Queue a restore of a backup: a JSON request from --file, or one directory target.
    Restore {
        execution_id: String,
        #[arg(long, conflicts_with_all = ["to_dir", "item"])]
        file: Option<PathBuf>,
        /// Restore into this directory (each item into a subdirectory named after it when
        /// the backup has several).
        #[arg(long)]
        to_dir: Option<String>,
        /// Only this item.
        #[arg(long)]
        item: Option<String>,
        #[arg(long)]
        overwrite: bool,
    },
    /// Presigned URLs for a backup's objects and manifest.
    Download {
        execution_id: String,
        #[arg(long, default_value_t = 900)]
        expires_in: u64,
    },
}

pub async fn run(app: &App, cmd: BackupsCmd, out: Output) -> anyhow::Result<()> {
    match cmd {
        BackupsCmd::Verify { execution_id, read_data } => verify(app, &execution_id, read_data, out).await,
        BackupsCmd::Restore {
            execution_id,
            file,
            to_dir,
            item,
            overwrite,
        } => {
            let body = match (file, to_dir) {
                (Some(f), _) => read_input(&f)?,
                (None, Some(dir)) => {
                    let target = json!({"kind": "directory", "path": dir, "overwrite": overwrite});
                    match item {
                        Some(name) => serde_json::to_vec(&json!({"items": [{"name": name, "target": target}]}))?,
                        None => serde_json::to_vec(&json!({"target": target}))?,
                    }
                }
                (None, None) => bail!("give --file REQUEST.json or --to-dir DIRECTORY"),
            };
            let request: RestoreRequest = parse(&body)?;
            let t = app
                .service
                .start_restore(&execution_id, request, Trigger::Cli)
                .await
                .map_err(service_err)?;
            out.emit(&json!({"executionId": t.execution_id}), || {
                format!(
                    "queued restore {id}\nfollow it with: cairn executions wait {id}",
                    id = t.execution_id
                )
            });
            Ok(())
        }
        BackupsCmd::Download { execution_id, expires_in } => {
            let request = DownloadRequest {
                items: None,
                expires_in: Some(expires_in),
            };
            let d = app
                .service
                .download(&execution_id, request, Trigger::Cli)
                .await
                .map_err(service_err)?;
            out.emit(&views::download(&d), || {
                table(
                    ["ITEM", "SIZE", "URL"],
                    d.items.iter().map(|i| [i.item.clone(), i.size.to_string(), i.url.clone()]),
                )
            });
            Ok(())
        }
    }
}

/// Verifies the backup an execution made, from the location it recorded, in the store of
/// the job's destination there.
async fn verify(app: &App, execution_id: &str, read_data: bool, out: Output) -> anyhow::Result<()> {
    let e = app
        .store
        .get_execution(execution_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("Execution not found"))?;
    let path = e
        .path
        .clone()
        .ok_or_else(|| anyhow::anyhow!("execution {execution_id} stored no backup (status {})", e.status.as_str()))?;
    let (bucket, folder) =
        manifest_folder(&path, &e.job_id, execution_id).ok_or_else(|| anyhow::anyhow!("unexpected backup path {path}"))?;
    if split_backup_path(&path).is_some_and(|(_, f)| f != folder) {
        return verify_snapshots(app, &e.job_id, execution_id, (bucket, &folder), read_data, out).await;
    }
    let folder = folder.as_str();
    let destination = match app.store.get_job(&e.job_id).await? {
        Some(job) => match job.destinations.first() {
            Some(d) => app.store.get_destination(d).await?.filter(|d| d.bucket == bucket),
            None => None,
        },
        None => None,
    };
    let store = destination.map_or_else(|| app.objects.default_store(), |d| app.objects.at(&d.location()));
    let (manifest, checks) = verify_backup(store, bucket, folder).await?;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("item '{}': {}", c.name, c.error.as_deref().unwrap_or("")))
        .collect();
    if !failed.is_empty() {
        bail!("backup {execution_id} failed verification: {}", failed.join("; "));
    }
    let report = json!({"executionId": execution_id, "ok": true, "manifestStatus": manifest.status, "items": checks});
    out.emit(&report, || verify_text(execution_id, &checks));
    Ok(())
}

/// Verifies an incremental backup: its manifest, then its snapshots in every repository.
async fn verify_snapshots(
    app: &App,
    job_id: &str,
    execution_id: &str,
    at: (&str, &str),
    read_data: bool,
    out: Output,
) -> anyhow::Result<()> {
    let job = app.store.get_job(job_id).await?;
    let mut destinations = Vec::new();
    for id in job.iter().flat_map(|j| &j.destinations) {
        destinations.extend(app.store.get_destination(id).await?);
    }
    let store = destinations
        .iter()
        .find(|d| d.bucket == at.0)
        .map_or_else(|| app.objects.default_store(), |d| app.objects.at(&d.location()));
    let manifest = read_manifest(store.as_ref(), at.0, at.1).await?;
    let job = job.unwrap_or_else(|| manifest.job.clone());
    let checks = app.runner.check_snapshots(&job, &manifest, read_data).await?;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.problems.is_empty())
        .map(|c| format!("item '{}' snapshot {}: {}", c.item, c.snapshot, c.problems.join("; ")))
        .collect();
    if checks.is_empty() {
        bail!("backup {execution_id}: no destination of job '{}' holds its snapshots", job.name);
    }
    if !failed.is_empty() {
        bail!("backup {execution_id} failed verification: {}", failed.join("; "));
    }
    let report = json!({"executionId": execution_id, "ok": true, "manifestStatus": manifest.status, "snapshots": checks});
    out.emit(&report, || {
        let what = if read_data {
            "every blob decrypts to its hash"
        } else {
            "every tree and blob is present"
        };
        let lines: Vec<String> = checks
            .iter()
            .map(|c| {
                format!(
                    "  {}: snapshot {} in {}",
                    c.item,
                    &c.snapshot[..8.min(c.snapshot.len())],
                    c.repository
                )
            })
            .collect();
        format!("backup {execution_id}: {what}\n{}\n", lines.join("\n"))
    });
    Ok(())
}

/// Each item's checksum and size, then each archive's entries.
fn verify_text(execution_id: &str, checks: &[ItemCheck]) -> String {
    let mut text = format!("backup {execution_id}: every object matches its manifest\n");
    let rows = checks
        .iter()
        .map(|c| [c.name.clone(), c.bytes.to_string(), c.sha256.clone(), c.entries.len().to_string()]);
    text.push_str(&table(["ITEM", "BYTES", "SHA-256", "ENTRIES"], rows));
    for c in checks.iter().filter(|c| !c.entries.is_empty()) {
        text.push_str(&format!("\n\n{}:\n", c.name));
        let entries = c.entries.iter().map(|(path, size)| [path.clone(), size.to_string()]);
        text.push_str(&table(["PATH", "SIZE"], entries));
    }
    text
}
