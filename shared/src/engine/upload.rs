//! One item's backup: producer thread → zstd → [`PartSink`] → multipart uploads to every
//! destination, with retries, verification of what the store kept, and nothing left on
//! any failure (open uploads aborted, completed objects deleted).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use super::compress::compress_into;
use super::integrity::{multipart_etag, part_md5, verify_object};
use super::sink::{crc64nvme_text, Part, PartSink, StreamSummary};
use super::sources::SourceContext;
use super::target::{EngineLog, StoredObject, Target};
use super::{EngineError, Signals};
use crate::domain::{Source, Verification};
use crate::error::ObjectStoreError;
use crate::ports::{PartUpload, UploadOptions, UploadedPart};

/// Parts uploaded at once per item (each to every destination). With the channel's two
/// buffered parts and the one being filled, memory stays under (4 + 2 + 1) × part size.
const PARTS_IN_FLIGHT: usize = 4;
const PART_ATTEMPTS: u32 = 4;

/// A finished item.
#[derive(Debug, Clone)]
pub struct ItemBackup {
    pub summary: StreamSummary,
    pub input_bytes: u64,
    /// Entries that could not be read (the item is then Partial).
    pub problems: Vec<String>,
    pub objects: Vec<StoredObject>,
}

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
/// Source, upload, verification failures and cancellation; in every case nothing of the
/// item remains: open uploads are aborted and completed objects deleted.
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
    let options = |t: &Target| UploadOptions {
        content_type: "application/zstd".into(),
        storage_class: t.storage_class.clone(),
        // A full-object CRC64NVME: S3 checks every part and the whole object on
        // completion, and returns the checksum on HEAD for verification.
        full_object_crc64nvme: true,
    };
    for t in &targets {
        match t.store.create_multipart(&t.bucket, &t.key, &options(t)).await {
            Ok(upload_id) => uploads.push((t.clone(), upload_id)),
            Err(e) => {
                abort_all(&uploads, &log).await;
                return Err(upload_err(t, e));
            }
        }
    }
    let streamed = match stream_parts(source, level, part_size, recipients, &uploads, ctx.clone(), log.clone()).await {
        Ok(streamed) => streamed,
        Err(e) => {
            abort_all(&uploads, &log).await;
            return Err(if ctx.signals.cancelled() { EngineError::Cancelled } else { e });
        }
    };
    let objects = complete_all(&uploads, streamed.parts, &streamed.summary, &log).await?;
    let problems = ctx.problems.lock().map(|p| p.clone()).unwrap_or_default();
    Ok(ItemBackup {
        summary: streamed.summary,
        input_bytes: ctx.signals.input_bytes.load(Ordering::Relaxed),
        problems,
        objects,
    })
}

/// What streaming an item left: its summary, and the parts each upload accepted.
struct Streamed {
    summary: StreamSummary,
    parts: Vec<Vec<UploadedPart>>,
}

/// Completes every upload in turn. On a failure nothing of the item stays: uploads not
/// yet completed are aborted, and objects already completed (a completed upload cannot be
/// aborted) are deleted.
async fn complete_all(
    uploads: &[(Target, String)],
    parts: Vec<Vec<UploadedPart>>,
    summary: &StreamSummary,
    log: &EngineLog,
) -> Result<Vec<StoredObject>, EngineError> {
    let mut objects = Vec::new();
    for (i, ((t, upload_id), parts)) in uploads.iter().zip(parts).enumerate() {
        match complete(t, upload_id, parts, summary, log).await {
            Ok(object) => objects.push(object),
            Err((e, stored)) => {
                let (done, open) = uploads.split_at(i + usize::from(stored));
                delete_all(done, log).await;
                abort_all(open, log).await;
                return Err(e);
            }
        }
    }
    Ok(objects)
}

/// The item's stream: what the producer thread made of the source, and the parts each
/// upload accepted.
async fn stream_parts(
    source: Source,
    level: i32,
    part_size: usize,
    recipients: Option<Arc<Vec<age::x25519::Recipient>>>,
    uploads: &[(Target, String)],
    ctx: SourceContext,
    log: EngineLog,
) -> Result<Streamed, EngineError> {
    let signals = ctx.signals.clone();
    let (tx, rx) = mpsc::channel::<Part>(2);
    let producer = tokio::task::spawn_blocking(move || -> Result<StreamSummary, EngineError> {
        let sink = PartSink::new(tx, part_size, ctx.signals.clone());
        let sink = match recipients {
            Some(r) => compress_into(&source, level, super::crypto::encrypting(sink, &r)?, &ctx)?.finish()?,
            None => compress_into(&source, level, sink, &ctx)?,
        };
        Ok(sink.finish()?)
    });
    let uploaded = upload_parts(rx, uploads, &log, &signals).await;
    let produced = producer
        .await
        .map_err(|e| EngineError::SourceFailed(format!("the producer stopped: {e}")))?;
    let parts = uploaded?;
    let summary = produced?;
    Ok(Streamed { summary, parts })
}

/// Uploads every part the producer sends to every upload, at most [`PARTS_IN_FLIGHT`] at
/// once; answers each upload's accepted parts. On the first failure it stops taking parts
/// (the producer then sees a closed channel and stops).
async fn upload_parts(
    mut rx: mpsc::Receiver<Part>,
    uploads: &[(Target, String)],
    log: &EngineLog,
    signals: &Arc<Signals>,
) -> Result<Vec<Vec<UploadedPart>>, EngineError> {
    let mut completed: Vec<Vec<UploadedPart>> = vec![Vec::new(); uploads.len()];
    let mut in_flight = FuturesUnordered::new();
    let mut upload_error: Option<EngineError> = None;
    let mut receiving = true;
    while receiving || !in_flight.is_empty() {
        tokio::select! {
            part = rx.recv(), if receiving && in_flight.len() < PARTS_IN_FLIGHT && upload_error.is_none() => {
                let Some(part) = part else {
                    receiving = false;
                    continue;
                };
                let part = Arc::new(part);
                for (i, (t, upload_id)) in uploads.iter().enumerate() {
                    let (t, upload_id, part, log, signals) = (t.clone(), upload_id.clone(), part.clone(), log.clone(), signals.clone());
                    in_flight.push(async move { (i, upload_part(&t, &upload_id, &part, &log, &signals).await) });
                }
            }
            Some((i, result)) = in_flight.next(), if !in_flight.is_empty() => match result {
                Ok((uploaded, len)) => {
                    completed[i].push(uploaded);
                    if i == 0 {
                        signals.uploaded_bytes.fetch_add(len, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    upload_error.get_or_insert(e);
                    receiving = false;
                    rx.close();
                }
            },
        }
    }
    upload_error.map_or(Ok(completed), Err)
}

/// Completes one upload from its parts, then checks what the store kept. A failure says
/// whether the object was stored (completed, then found wrong) or the upload is still open.
async fn complete(
    t: &Target,
    upload_id: &str,
    mut parts: Vec<UploadedPart>,
    summary: &StreamSummary,
    log: &EngineLog,
) -> Result<StoredObject, (EngineError, bool)> {
    parts.sort_by_key(|p| p.number);
    if parts.len() != usize::try_from(summary.parts).unwrap_or(0) {
        return Err((upload_err(t, format!("{} of {} parts uploaded", parts.len(), summary.parts)), false));
    }
    let expected_etag = multipart_etag(&parts);
    let stored_etag = t
        .store
        .complete_multipart(&t.bucket, &t.key, upload_id, parts, Some(&summary.crc64nvme))
        .await
        .map_err(|e| (upload_err(t, e), false))?;
    verify_object(t, summary, expected_etag, stored_etag, log)
        .await
        .map_err(|e| (e, true))
}

async fn upload_part(
    t: &Target,
    upload_id: &str,
    part: &Part,
    log: &EngineLog,
    signals: &Signals,
) -> Result<(UploadedPart, u64), EngineError> {
    let crc = crc64nvme_text(part.crc64nvme);
    // Off the async threads: 8 MiB take the CPU a few milliseconds.
    let md5 = match t.verification {
        Verification::ContentMd5 => {
            let data = part.data.clone();
            Some(
                tokio::task::spawn_blocking(move || part_md5(&data))
                    .await
                    .map_err(|e| upload_err(t, e))?,
            )
        }
        _ => None,
    };
    let mut attempt = 1;
    loop {
        if signals.cancelled() {
            return Err(EngineError::Cancelled);
        }
        let sent = PartUpload {
            number: part.number,
            data: part.data.clone(),
            crc64nvme: Some(crc.clone()),
            content_md5: md5.as_ref().map(|(b64, _)| b64.clone()),
        };
        let answered = t.store.upload_part(&t.bucket, &t.key, upload_id, sent).await;
        match answered.and_then(|uploaded| part_as_sent(t, uploaded, md5.as_ref().map(|(_, hex)| hex.as_str()))) {
            Ok(uploaded) => return Ok((uploaded, part.data.len() as u64)),
            Err(e) if attempt < PART_ATTEMPTS => {
                log(
                    true,
                    format!(
                        "retrying part {} of s3://{}/{} (attempt {} of {PART_ATTEMPTS}): {e}",
                        part.number,
                        t.bucket,
                        t.key,
                        attempt + 1
                    ),
                );
                tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(upload_err(t, e)),
        }
    }
}

/// The store's answer to a part sent with its MD5: its ETag must be that MD5, or the
/// object's ETag could not vouch for it.
fn part_as_sent(t: &Target, uploaded: UploadedPart, md5_hex: Option<&str>) -> Result<UploadedPart, ObjectStoreError> {
    match (md5_hex, uploaded.etag.as_deref().map(|e| e.trim_matches('"'))) {
        (Some(expected), answered) if answered != Some(expected) => Err(ObjectStoreError::failed(
            "UploadPart",
            &t.bucket,
            &t.key,
            format!(
                "part {} was answered ETag {}, not its MD5 {expected}",
                uploaded.number,
                answered.unwrap_or("(none)")
            ),
        )),
        _ => Ok(uploaded),
    }
}

/// Deletes the objects of completed uploads.
async fn delete_all(uploads: &[(Target, String)], log: &EngineLog) {
    for (t, _) in uploads {
        if let Err(e) = t.store.delete(&t.bucket, &t.key).await {
            log(
                true,
                format!("could not delete s3://{}/{} of the failed item: {e}", t.bucket, t.key),
            );
        }
    }
}

async fn abort_all(uploads: &[(Target, String)], log: &EngineLog) {
    for (t, upload_id) in uploads {
        if let Err(e) = t.store.abort_multipart(&t.bucket, &t.key, upload_id).await {
            log(true, format!("could not abort the upload of s3://{}/{}: {e}", t.bucket, t.key));
        }
    }
}

/// A shared list for producers' problems.
pub fn new_problems() -> Arc<Mutex<Vec<String>>> {
    Arc::new(Mutex::new(Vec::new()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::ports::memory::{MemoryObjects, Quirks};
    use crate::ports::ObjectStore;

    #[tokio::test]
    async fn an_object_found_wrong_after_completion_is_deleted_and_no_abort_is_tried() {
        // Keeps objects faithfully but reports a byte more on HEAD, so every completed
        // object looks damaged.
        let memory = MemoryObjects::with_quirks(Quirks {
            misreports_size: true,
            ..Quirks::default()
        });
        let store: Arc<dyn ObjectStore> = Arc::new(memory.clone());
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let seen = warnings.clone();
        let log: EngineLog = Arc::new(move |warning, message| {
            if warning {
                seen.lock().unwrap().push(message);
            }
        });
        let ctx = SourceContext::new(
            Signals::new(),
            store.clone(),
            Some(br#"{"jobs": []}"#.to_vec()),
            Arc::new(HashMap::new()),
        );
        let target = Target {
            store,
            bucket: "b".into(),
            key: "job/e1/config.tar.zst".into(),
            storage_class: None,
            verification: Verification::Crc64nvme,
        };
        let err = backup_item(Source::Config {}, 3, 5 << 20, None, vec![target], ctx, log)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("stored size"), "{err}");
        assert!(memory.keys("b").is_empty(), "the damaged object was left behind");
        assert!(memory.open_uploads("b", "").await.unwrap().is_empty());
        assert!(warnings.lock().unwrap().is_empty(), "{:?}", warnings.lock().unwrap());
    }
}
