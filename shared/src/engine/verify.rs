//! Reading a backup back: its manifest, and every object's SHA-256 and size against the
//! manifest, with a listing of each archive's contents.

use std::io::Read;
use std::sync::Arc;

use super::io::{BodyReader, Tee};
use crate::domain::{Manifest, ManifestItem, MANIFEST_NAME};
use crate::error::EngineError;
use crate::ports::ObjectStore;

/// One item's verification.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemCheck {
    pub name: String,
    pub ok: bool,
    pub sha256: String,
    pub bytes: u64,
    pub error: Option<String>,
    /// Archive entries (for tar items): path and size.
    pub entries: Vec<(String, u64)>,
}

impl ItemCheck {
    fn failed(name: &str, error: String) -> Self {
        Self {
            name: name.to_owned(),
            ok: false,
            sha256: String::new(),
            bytes: 0,
            error: Some(error),
            entries: vec![],
        }
    }

    /// Compares what was read with what the manifest recorded.
    fn of(item: &ManifestItem, (sha256, bytes, entries): StreamCheck) -> Self {
        let error = if sha256 != item.sha256 {
            Some(format!("SHA-256 {sha256} differs from the manifest's {}", item.sha256))
        } else if bytes != item.stored_bytes {
            Some(format!("size {bytes} differs from the manifest's {}", item.stored_bytes))
        } else {
            None
        };
        Self {
            name: item.name.clone(),
            ok: error.is_none(),
            sha256,
            bytes,
            error,
            entries,
        }
    }
}

/// Reads `manifest.json` under `folder` (`<prefix>/<job>/<execution>`).
///
/// # Errors
/// [`EngineError::Damaged`]: a missing manifest means the backup is incomplete.
pub async fn read_manifest(store: &dyn ObjectStore, bucket: &str, folder: &str) -> Result<Manifest, EngineError> {
    let key = format!("{folder}/{MANIFEST_NAME}");
    let incomplete =
        |e: crate::error::ObjectStoreError| EngineError::Damaged(format!("backup is incomplete: s3://{bucket}/{key} cannot be read ({e})"));
    let body = store.get(bucket, &key, None).await.map_err(incomplete)?;
    let bytes = body.collect().await.map_err(incomplete)?;
    serde_json::from_slice(&bytes).map_err(|e| EngineError::Damaged(format!("manifest is malformed: {e}")))
}

/// Streams every item once, checking SHA-256 and size, and lists tar contents.
///
/// # Errors
/// Only for an unreadable manifest; item failures are reported per item.
pub async fn verify_backup(store: Arc<dyn ObjectStore>, bucket: &str, folder: &str) -> Result<(Manifest, Vec<ItemCheck>), EngineError> {
    let manifest = read_manifest(store.as_ref(), bucket, folder).await?;
    let mut checks = Vec::new();
    for item in &manifest.items {
        let key = format!("{folder}/{}", item.object);
        let check = match store.get(bucket, &key, None).await {
            Err(e) => ItemCheck::failed(&item.name, e.to_string()),
            Ok(body) => {
                let (is_tar, encrypted) = (item.format == "tar", item.encrypted);
                let reader = BodyReader::new(body, tokio::runtime::Handle::current());
                let read = tokio::task::spawn_blocking(move || check_stream(reader, is_tar, encrypted))
                    .await
                    .map_err(|e| EngineError::Damaged(format!("the check stopped: {e}")))?;
                read.map_or_else(|e| ItemCheck::failed(&item.name, e.to_string()), |r| ItemCheck::of(item, r))
            }
        };
        checks.push(check);
    }
    Ok((manifest, checks))
}

/// SHA-256, size, and (for tar) the archive's entries.
type StreamCheck = (String, u64, Vec<(String, u64)>);

/// Tees the object through SHA-256 while decompressing (and listing, for tar).
fn check_stream(body: impl Read, is_tar: bool, encrypted: bool) -> Result<StreamCheck, EngineError> {
    let mut tee = Tee::new(body);
    let mut entries = Vec::new();
    if !encrypted {
        let decoder = zstd::stream::read::Decoder::new(&mut tee)?;
        if is_tar {
            let mut archive = tar::Archive::new(decoder);
            for entry in archive.entries()? {
                let entry = entry.map_err(|e| EngineError::Damaged(format!("archive is damaged: {e}")))?;
                entries.push((entry.path()?.display().to_string(), entry.size()));
            }
            let mut rest = archive.into_inner();
            std::io::copy(&mut rest, &mut std::io::sink())?;
        } else {
            let mut d = decoder;
            std::io::copy(&mut d, &mut std::io::sink()).map_err(|e| EngineError::Damaged(format!("stream is damaged: {e}")))?;
        }
    }
    // Read whatever the decoder did not need (trailing bytes still count for the checksum).
    std::io::copy(&mut tee, &mut std::io::sink())?;
    let (sha, bytes) = tee.finish();
    Ok((sha, bytes, entries))
}
