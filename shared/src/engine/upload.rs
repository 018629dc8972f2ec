//! One item's backup: producer thread → zstd → [`PartSink`] → multipart uploads to every
//! destination, with retries, abort on any failure, and verification of what S3 stored.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart, StorageClass};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use super::compress::compress_into;
use super::sink::{crc64nvme_text, Part, PartSink, StreamSummary};
use super::sources::SourceContext;
use super::{EngineError, Signals};
use crate::model::Source;

/// Parts uploaded at once per item (each to every destination). With the channel's two
/// buffered parts and the one being filled, memory stays under (4 + 2 + 1) × part size.
const PARTS_IN_FLIGHT: usize = 4;
const PART_ATTEMPTS: u32 = 4;

/// Where one item's object goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    pub key: String,
    pub storage_class: Option<String>,
}

/// One stored copy.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub bucket: String,
    pub key: String,
    pub etag: String,
}

/// A finished item.
#[derive(Debug, Clone)]
pub struct ItemBackup {
    pub summary: StreamSummary,
    pub input_bytes: u64,
    /// Entries that could not be read (the item is then Partial).
    pub problems: Vec<String>,
    pub objects: Vec<StoredObject>,
}

/// A log line the engine wants in the execution's log: (is_warning, message).
pub type EngineLog = Arc<dyn Fn(bool, String) + Send + Sync>;

fn upload_err(t: &Target, e: impl std::fmt::Display) -> EngineError {
    EngineError::Upload {
        bucket: t.bucket.clone(),
        key: t.key.clone(),
        message: e.to_string(),
    }
}

/// Backs one source up to every target.
///
/// # Errors
/// Source, upload, verification failures and cancellation; in every case the multipart
/// uploads started here are aborted, so no partial object remains.
pub async fn backup_item(
    source: Source,
    level: i32,
    part_size: usize,
    recipients: Option<Arc<Vec<age::x25519::Recipient>>>,
    targets: Vec<Target>,
    ctx: SourceContext,
    log: EngineLog,
) -> Result<ItemBackup, EngineError> {
    let mut uploads: Vec<(Target, String)> = Vec::new();
    for t in &targets {
        let mut req = t
            .client
            .create_multipart_upload()
            .bucket(&t.bucket)
            .key(&t.key)
            .content_type("application/zstd")
            // A full-object CRC64NVME: S3 checks every part and the whole object on
            // completion, and returns the checksum on HEAD for verification.
            .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
            .checksum_type(ChecksumType::FullObject);
        if let Some(sc) = &t.storage_class {
            req = req.storage_class(StorageClass::from(sc.as_str()));
        }
        match req.send().await {
            Ok(out) => uploads.push((t.clone(), out.upload_id().unwrap_or_default().to_owned())),
            Err(e) => {
                abort_all(&uploads, &log).await;
                return Err(upload_err(t, crate::adapters::sdk_error_text(e)));
            }
        }
    }
    let result = stream_and_complete(source, level, part_size, recipients, &uploads, ctx.clone(), log.clone()).await;
    match result {
        Ok(item) => Ok(item),
        Err(e) => {
            abort_all(&uploads, &log).await;
            Err(if ctx.signals.cancelled() { EngineError::Cancelled } else { e })
        }
    }
}

async fn stream_and_complete(
    source: Source,
    level: i32,
    part_size: usize,
    recipients: Option<Arc<Vec<age::x25519::Recipient>>>,
    uploads: &[(Target, String)],
    ctx: SourceContext,
    log: EngineLog,
) -> Result<ItemBackup, EngineError> {
    let signals = ctx.signals.clone();
    let problems = ctx.problems.clone();
    let (tx, mut rx) = mpsc::channel::<Part>(2);
    let producer_signals = signals.clone();
    let producer = tokio::task::spawn_blocking(move || -> Result<StreamSummary, EngineError> {
        let sink = PartSink::new(tx, part_size, producer_signals);
        let sink = match recipients {
            Some(r) => {
                let sealed = crate::engine::crypto::encrypting(sink, &r).map_err(EngineError::Source)?;
                compress_into(&source, level, sealed, &ctx)?.finish()?
            }
            None => compress_into(&source, level, sink, &ctx)?,
        };
        Ok(sink.finish()?)
    });

    let mut completed: Vec<Vec<CompletedPart>> = vec![Vec::new(); uploads.len()];
    let mut in_flight = FuturesUnordered::new();
    let mut upload_error: Option<EngineError> = None;
    let mut receiving = true;
    while receiving || !in_flight.is_empty() {
        tokio::select! {
            part = rx.recv(), if receiving && in_flight.len() < PARTS_IN_FLIGHT && upload_error.is_none() => {
                match part {
                    Some(part) => {
                        let part = Arc::new(part);
                        for (i, (t, upload_id)) in uploads.iter().enumerate() {
                            let (t, upload_id, part, log, signals) = (t.clone(), upload_id.clone(), part.clone(), log.clone(), signals.clone());
                            in_flight.push(async move { (i, upload_part(&t, &upload_id, &part, &log, &signals).await) });
                        }
                    }
                    None => receiving = false,
                }
            }
            Some((i, result)) = in_flight.next(), if !in_flight.is_empty() => {
                match result {
                    Ok((cp, len)) => {
                        completed[i].push(cp);
                        if i == 0 {
                            signals.uploaded_bytes.fetch_add(len, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        if upload_error.is_none() {
                            upload_error = Some(e);
                        }
                        // Stop taking parts: the producer sees a closed channel and stops.
                        receiving = false;
                        rx.close();
                    }
                }
            }
        }
    }
    drop(rx);
    let produced = producer.await.map_err(|e| EngineError::Source(format!("producer panicked: {e}")))?;
    if let Some(e) = upload_error {
        return Err(e);
    }
    let summary = produced?;
    let mut objects = Vec::new();
    for ((t, upload_id), mut parts) in uploads.iter().zip(completed) {
        parts.sort_by_key(|p| p.part_number());
        if parts.len() != usize::try_from(summary.parts).unwrap_or(0) {
            return Err(upload_err(t, format!("{} of {} parts uploaded", parts.len(), summary.parts)));
        }
        t.client
            .complete_multipart_upload()
            .bucket(&t.bucket)
            .key(&t.key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .checksum_type(ChecksumType::FullObject)
            .checksum_crc64_nvme(&summary.crc64nvme)
            .send()
            .await
            .map_err(|e| upload_err(t, crate::adapters::sdk_error_text(e)))?;
        objects.push(verify_object(t, &summary).await?);
    }
    let problems = problems.lock().map(|p| p.clone()).unwrap_or_default();
    Ok(ItemBackup {
        summary,
        input_bytes: signals.input_bytes.load(Ordering::Relaxed),
        problems,
        objects,
    })
}

async fn upload_part(
    t: &Target,
    upload_id: &str,
    part: &Part,
    log: &EngineLog,
    signals: &Signals,
) -> Result<(CompletedPart, u64), EngineError> {
    let crc = crc64nvme_text(part.crc64nvme);
    let mut attempt = 1;
    loop {
        if signals.cancelled() {
            return Err(EngineError::Cancelled);
        }
        let result = t
            .client
            .upload_part()
            .bucket(&t.bucket)
            .key(&t.key)
            .upload_id(upload_id)
            .part_number(part.number)
            .checksum_crc64_nvme(&crc)
            .body(ByteStream::from(part.data.clone()))
            // The part's CRC64NVME (checked by S3) protects the payload; signing it too
            // would hash every byte a second time.
            .customize()
            .disable_payload_signing()
            .send()
            .await;
        match result {
            Ok(out) => {
                let cp = CompletedPart::builder()
                    .part_number(part.number)
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .checksum_crc64_nvme(&crc)
                    .build();
                return Ok((cp, part.data.len() as u64));
            }
            Err(e) if attempt < PART_ATTEMPTS => {
                let msg = crate::adapters::sdk_error_text(e);
                log(
                    true,
                    format!(
                        "retrying part {} of s3://{}/{} (attempt {} of {PART_ATTEMPTS}): {msg}",
                        part.number,
                        t.bucket,
                        t.key,
                        attempt + 1
                    ),
                );
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(upload_err(t, crate::adapters::sdk_error_text(e))),
        }
    }
}

/// Checks what S3 stored: its size, and its full-object CRC64NVME against the one
/// streamed. A store that keeps no checksums (some S3-compatible servers) is checked by
/// re-reading the object and comparing its SHA-256 instead.
async fn verify_object(t: &Target, summary: &StreamSummary) -> Result<StoredObject, EngineError> {
    let verr = |message: String| EngineError::Verify {
        bucket: t.bucket.clone(),
        key: t.key.clone(),
        message,
    };
    let head = t
        .client
        .head_object()
        .bucket(&t.bucket)
        .key(&t.key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .map_err(|e| verr(crate::adapters::sdk_error_text(e)))?;
    let size = u64::try_from(head.content_length().unwrap_or(-1)).unwrap_or(u64::MAX);
    if size != summary.bytes {
        return Err(verr(format!(
            "stored size {size} differs from the {} bytes streamed",
            summary.bytes
        )));
    }
    match head.checksum_crc64_nvme() {
        Some(stored) if stored != summary.crc64nvme => {
            return Err(verr(format!(
                "stored checksum (CRC64NVME {stored}) differs from the streamed one ({})",
                summary.crc64nvme
            )));
        }
        Some(_) => {}
        None => {
            let (sha256, bytes) = reread(t).await.map_err(verr)?;
            if sha256 != summary.sha256 || bytes != summary.bytes {
                return Err(verr(format!(
                    "re-read gives SHA-256 {sha256} over {bytes} bytes, the stream was {} over {}",
                    summary.sha256, summary.bytes
                )));
            }
        }
    }
    Ok(StoredObject {
        bucket: t.bucket.clone(),
        key: t.key.clone(),
        etag: head.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
    })
}

/// SHA-256 and size of an object, read back from the store.
async fn reread(t: &Target) -> Result<(String, u64), String> {
    let got = t
        .client
        .get_object()
        .bucket(&t.bucket)
        .key(&t.key)
        .send()
        .await
        .map_err(crate::adapters::sdk_error_text)?;
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut tee = super::restore::Tee::new(super::verify::BodyReader::new(got.body, runtime));
        std::io::copy(&mut tee, &mut std::io::sink()).map_err(|e| format!("re-reading failed: {e}"))?;
        Ok(tee.finish())
    })
    .await
    .map_err(|e| format!("re-reading failed: {e}"))?
}

async fn abort_all(uploads: &[(Target, String)], log: &EngineLog) {
    for (t, upload_id) in uploads {
        if let Err(e) = t
            .client
            .abort_multipart_upload()
            .bucket(&t.bucket)
            .key(&t.key)
            .upload_id(upload_id)
            .send()
            .await
        {
            log(
                true,
                format!(
                    "could not abort the upload of s3://{}/{}: {}",
                    t.bucket,
                    t.key,
                    crate::adapters::sdk_error_text(e)
                ),
            );
        }
    }
}

/// A shared list for producers' problems.
pub fn new_problems() -> Arc<Mutex<Vec<String>>> {
    Arc::new(Mutex::new(Vec::new()))
}
