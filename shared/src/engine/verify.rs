//! Re-reading a backup: every object's SHA-256 and size against the manifest, and a
//! listing of each archive's contents.

use std::io::Read;

use super::manifest::{Manifest, MANIFEST_NAME};
use super::EngineError;

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

/// Reads `manifest.json` under `folder` (`<prefix>/<job>/<execution>`).
///
/// # Errors
/// A missing manifest means the backup is incomplete.
pub async fn read_manifest(s3: &aws_sdk_s3::Client, bucket: &str, folder: &str) -> Result<Manifest, EngineError> {
    let key = format!("{folder}/{MANIFEST_NAME}");
    let got = s3.get_object().bucket(bucket).key(&key).send().await.map_err(|e| {
        EngineError::Source(format!(
            "backup is incomplete: s3://{bucket}/{key} cannot be read ({})",
            crate::adapters::sdk_error_text(e)
        ))
    })?;
    let bytes = got
        .body
        .collect()
        .await
        .map_err(|e| EngineError::Source(e.to_string()))?
        .into_bytes();
    serde_json::from_slice(&bytes).map_err(|e| EngineError::Source(format!("manifest is malformed: {e}")))
}

/// Streams every item once, checking SHA-256 and size, and lists tar contents.
///
/// # Errors
/// Only for an unreadable manifest; item failures are reported per item.
pub async fn verify_backup(s3: &aws_sdk_s3::Client, bucket: &str, folder: &str) -> Result<(Manifest, Vec<ItemCheck>), EngineError> {
    let manifest = read_manifest(s3, bucket, folder).await?;
    let mut checks = Vec::new();
    for item in &manifest.items {
        let key = format!("{folder}/{}", item.object);
        let check = match s3.get_object().bucket(bucket).key(&key).send().await {
            Err(e) => ItemCheck {
                name: item.name.clone(),
                ok: false,
                sha256: String::new(),
                bytes: 0,
                error: Some(crate::adapters::sdk_error_text(e)),
                entries: vec![],
            },
            Ok(got) => {
                let is_tar = item.format == "tar";
                let encrypted = item.encrypted;
                let runtime = tokio::runtime::Handle::current();
                let body = got.body;
                tokio::task::spawn_blocking(move || check_stream(body, runtime, is_tar, encrypted))
                    .await
                    .map_err(|e| EngineError::Source(e.to_string()))?
                    .map_or_else(
                        |e| ItemCheck {
                            name: item.name.clone(),
                            ok: false,
                            sha256: String::new(),
                            bytes: 0,
                            error: Some(e),
                            entries: vec![],
                        },
                        |(sha, bytes, entries)| {
                            let mut error = None;
                            if sha != item.sha256 {
                                error = Some(format!("SHA-256 {sha} differs from the manifest's {}", item.sha256));
                            } else if bytes != item.stored_bytes {
                                error = Some(format!("size {bytes} differs from the manifest's {}", item.stored_bytes));
                            }
                            ItemCheck {
                                name: item.name.clone(),
                                ok: error.is_none(),
                                sha256: sha,
                                bytes,
                                error,
                                entries,
                            }
                        },
                    )
            }
        };
        checks.push(check);
    }
    Ok((manifest, checks))
}

/// SHA-256, size, and (for tar) the archive's entries.
type StreamCheck = (String, u64, Vec<(String, u64)>);

/// Tees the object through SHA-256 while decompressing (and listing, for tar).
fn check_stream(
    body: aws_sdk_s3::primitives::ByteStream,
    runtime: tokio::runtime::Handle,
    is_tar: bool,
    encrypted: bool,
) -> Result<StreamCheck, String> {
    let mut tee = super::restore::Tee::new(BodyReader::new(body, runtime));
    let mut entries = Vec::new();
    if !encrypted {
        let decoder = zstd::stream::read::Decoder::new(&mut tee).map_err(|e| e.to_string())?;
        if is_tar {
            let mut archive = tar::Archive::new(decoder);
            for entry in archive.entries().map_err(|e| e.to_string())? {
                let entry = entry.map_err(|e| format!("archive is damaged: {e}"))?;
                entries.push((entry.path().map_err(|e| e.to_string())?.display().to_string(), entry.size()));
            }
            let mut rest = archive.into_inner();
            std::io::copy(&mut rest, &mut std::io::sink()).map_err(|e| e.to_string())?;
        } else {
            let mut d = decoder;
            std::io::copy(&mut d, &mut std::io::sink()).map_err(|e| format!("stream is damaged: {e}"))?;
        }
    }
    // Read whatever the decoder did not need (trailing bytes still count for the checksum).
    std::io::copy(&mut tee, &mut std::io::sink()).map_err(|e| e.to_string())?;
    let (sha, bytes) = tee.finish();
    Ok((sha, bytes, entries))
}

/// Blocking `Read` over an S3 body.
pub struct BodyReader {
    body: aws_sdk_s3::primitives::ByteStream,
    pending: bytes::Bytes,
    runtime: tokio::runtime::Handle,
}

impl BodyReader {
    pub fn new(body: aws_sdk_s3::primitives::ByteStream, runtime: tokio::runtime::Handle) -> Self {
        Self {
            body,
            pending: bytes::Bytes::new(),
            runtime,
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pending.is_empty() {
            match self.runtime.block_on(self.body.next()) {
                Some(Ok(b)) => self.pending = b,
                Some(Err(e)) => return Err(std::io::Error::other(e.to_string())),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}
