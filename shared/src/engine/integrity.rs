//! Checking that a store kept exactly what was uploaded, without reading it back where the
//! store allows: S3 keeps a full-object CRC64NVME; most S3-compatible stores answer S3's
//! multipart ETag (the MD5 of the parts' MD5s); the rest are read back once.
//!
//! [`probe`] finds out which a destination's store does, with one small object, on the
//! destination's first backup; [`verify_object`] checks each uploaded object that way.

use base64::Engine;
use bytes::Bytes;
use md5::{Digest, Md5};

use super::io::{BodyReader, Tee};
use super::sink::{crc64nvme_text, StreamSummary};
use super::target::{EngineLog, StoredObject, Target};
use super::EngineError;
use crate::domain::Verification;
use crate::error::ObjectStoreError;
use crate::ports::{ObjectStore, PartUpload, UploadOptions, UploadedPart};

/// A part's MD5 as `Content-MD5` wants it (base64), and as S3's part ETag is (hex).
pub fn part_md5(data: &[u8]) -> (String, String) {
    let md5 = Md5::digest(data);
    (base64::engine::general_purpose::STANDARD.encode(md5), hex::encode(md5))
}

/// S3's ETag of a multipart object from its parts' ETags (hex MD5s): the MD5 of the
/// parts' binary MD5s, a dash, and the number of parts. `None` when a part's ETag is no MD5.
pub fn multipart_etag(parts: &[UploadedPart]) -> Option<String> {
    let mut md5s = Vec::with_capacity(parts.len() * 16);
    for p in parts {
        let md5 = hex::decode(p.etag.as_deref()?.trim_matches('"')).ok()?;
        if md5.len() != 16 {
            return None;
        }
        md5s.extend_from_slice(&md5);
    }
    Some(format!("{}-{}", hex::encode(Md5::digest(&md5s)), parts.len()))
}

/// What probing a store found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    pub verification: Verification,
    /// Set when the store answers a checksum that differs from the bytes it keeps.
    pub misreports: Option<String>,
}

/// Uploads a small object under `prefix` as a one-part multipart upload, with every
/// checksum Cairn can send, reads it back, and sees which checksums the store answers
/// truthfully; deletes it after.
///
/// # Errors
/// The store refused the probe, or changed its bytes.
pub async fn probe(store: &dyn ObjectStore, bucket: &str, prefix: &str) -> Result<Probed, EngineError> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let key = if prefix.is_empty() {
        format!(".cairn-probe-{id}")
    } else {
        format!("{prefix}/.cairn-probe-{id}")
    };
    let data = Bytes::from(format!("Cairn checks what this store keeps: {id}\n").repeat(64));
    let result = probe_with(store, bucket, &key, &data).await;
    // Gone whatever happened; a probe that was never stored is no loss.
    let _ = store.delete(bucket, &key).await;
    result
}

async fn probe_with(store: &dyn ObjectStore, bucket: &str, key: &str, data: &Bytes) -> Result<Probed, EngineError> {
    let options = UploadOptions {
        content_type: "text/plain".into(),
        storage_class: None,
        full_object_crc64nvme: true,
    };
    let crc = crc64nvme_text(crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, data));
    let (md5, md5_hex) = part_md5(data);
    let upload_id = store.create_multipart(bucket, key, &options).await?;
    let part = PartUpload {
        number: 1,
        data: data.clone(),
        crc64nvme: Some(crc.clone()),
        content_md5: Some(md5),
    };
    let sent = async {
        let uploaded = store.upload_part(bucket, key, &upload_id, part).await?;
        let parts = vec![uploaded];
        let etag = store.complete_multipart(bucket, key, &upload_id, parts.clone(), Some(&crc)).await?;
        Ok::<_, ObjectStoreError>((parts, etag))
    }
    .await;
    let (parts, completion_etag) = match sent {
        Ok(sent) => sent,
        Err(e) => {
            let _ = store.abort_multipart(bucket, key, &upload_id).await;
            return Err(e.into());
        }
    };
    let head = store.head(bucket, key).await?;
    let etag_is_md5 = parts[0].etag.as_deref().map(|e| e.trim_matches('"')) == Some(md5_hex.as_str())
        && multipart_etag(&parts).is_some_and(|expected| completion_etag.as_deref().unwrap_or(&head.etag) == expected);
    // Once per destination, the bytes themselves: a store that damages what it keeps
    // would vouch for it by any checksum it computed on receipt.
    let (sha, bytes) = reread(store, bucket, key).await?;
    if sha != hex::encode(sha2::Sha256::digest(data)) || bytes != data.len() as u64 || head.size != bytes {
        return Err(EngineError::Damaged(format!(
            "the store changed the probe object s3://{bucket}/{key}: it does not keep what it is sent"
        )));
    }
    let crc_kept = head.crc64nvme.as_deref() == Some(crc.as_str());
    let misreports = match &head.crc64nvme {
        Some(reported) if !crc_kept => Some(format!(
            "the store of s3://{bucket}/ reports CRC64NVME {reported} for an object whose bytes give {crc}: \
             that store misreports checksums, so Cairn verifies its uploads another way"
        )),
        _ => None,
    };
    let verification = if crc_kept {
        Verification::Crc64nvme
    } else if etag_is_md5 {
        Verification::ContentMd5
    } else {
        Verification::ReadBack
    };
    Ok(Probed { verification, misreports })
}

/// Checks what the store kept, the destination's way (see [`Verification`]): its size
/// always; then its CRC64NVME, or its multipart ETag (`expected_etag`, computed from the
/// parts sent, against `stored_etag`, the one the completion answered), or its bytes.
/// A checksum or ETag that disagrees is followed by one read of the object: intact bytes
/// mean the store misreports (a warning names it), damaged ones fail.
///
/// # Errors
/// Names what did not match.
pub async fn verify_object(
    t: &Target,
    summary: &StreamSummary,
    expected_etag: Option<String>,
    stored_etag: Option<String>,
    log: &EngineLog,
) -> Result<StoredObject, EngineError> {
    let verr = |message: String| EngineError::Verify {
        bucket: t.bucket.clone(),
        key: t.key.clone(),
        message,
    };
    let head = t.store.head(&t.bucket, &t.key).await.map_err(|e| verr(e.to_string()))?;
    if head.size != summary.bytes {
        return Err(verr(format!(
            "stored size {} differs from the {} bytes streamed",
            head.size, summary.bytes
        )));
    }
    let stored_etag = stored_etag.unwrap_or_else(|| head.etag.clone());
    // What the store said that disagrees, if it did; `None` when its word suffices.
    let disagreement = match t.verification {
        Verification::Crc64nvme => match head.crc64nvme {
            Some(stored) if stored == summary.crc64nvme => None,
            Some(stored) => Some(Some(format!("CRC64NVME {stored}, not the {} streamed", summary.crc64nvme))),
            None => Some(None),
        },
        Verification::ContentMd5 => match expected_etag {
            Some(expected) if expected == stored_etag => None,
            Some(expected) => Some(Some(format!("ETag {stored_etag}, not the {expected} of the parts sent"))),
            None => Some(None),
        },
        Verification::ReadBack => Some(None),
    };
    if let Some(reported) = disagreement {
        let (sha256, bytes) = reread(t.store.as_ref(), &t.bucket, &t.key).await.map_err(|e| verr(e.to_string()))?;
        if sha256 != summary.sha256 || bytes != summary.bytes {
            return Err(verr(format!(
                "re-read gives SHA-256 {sha256} over {bytes} bytes, the stream was {} over {}",
                summary.sha256, summary.bytes
            )));
        }
        if let Some(reported) = reported {
            log(
                true,
                format!(
                    "the store of s3://{}/{} reports {reported}, yet the object reads back intact: \
                     that store misreports checksums, so its objects are verified by reading them back",
                    t.bucket, t.key
                ),
            );
        }
    }
    Ok(StoredObject {
        bucket: t.bucket.clone(),
        key: t.key.clone(),
        etag: stored_etag,
    })
}

/// SHA-256 and size of an object, read back from the store.
async fn reread(store: &dyn ObjectStore, bucket: &str, key: &str) -> Result<(String, u64), EngineError> {
    let body = store.get(bucket, key, None).await?;
    let reader = BodyReader::new(body, tokio::runtime::Handle::current());
    tokio::task::spawn_blocking(move || {
        let mut tee = Tee::new(reader);
        std::io::copy(&mut tee, &mut std::io::sink())?;
        Ok(tee.finish())
    })
    .await
    .map_err(|e| EngineError::Damaged(format!("re-reading stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::domain::Source;
    use crate::engine::sources::SourceContext;
    use crate::engine::upload::backup_item;
    use crate::engine::Signals;
    use crate::ports::memory::{MemoryObjects, Quirks};

    async fn probed(quirks: Quirks) -> (Probed, MemoryObjects) {
        let store = MemoryObjects::with_quirks(quirks);
        let probed = probe(&store, "b", "backups").await.unwrap();
        assert!(store.keys("b").is_empty(), "the probe object was left behind");
        (probed, store)
    }

    #[tokio::test]
    async fn a_probe_finds_what_the_store_keeps() {
        let no_crc = Quirks {
            keeps_no_checksums: true,
            ..Quirks::default()
        };
        assert_eq!(probed(Quirks::default()).await.0.verification, Verification::Crc64nvme);
        let damaging = MemoryObjects::with_quirks(Quirks {
            misreports_size: true,
            ..Quirks::default()
        });
        let e = probe(&damaging, "b", "").await.unwrap_err().to_string();
        assert!(e.contains("does not keep what it is sent"), "{e}");
        assert_eq!(probed(no_crc).await.0.verification, Verification::ContentMd5);
        let opaque = Quirks {
            opaque_etags: true,
            ..no_crc
        };
        assert_eq!(probed(opaque).await.0.verification, Verification::ReadBack);
        let (misreporting, store) = probed(Quirks {
            misreports_checksums: true,
            ..Quirks::default()
        })
        .await;
        assert_eq!(misreporting.verification, Verification::ContentMd5);
        assert!(misreporting.misreports.unwrap().contains("misreports checksums"));
        assert_eq!(store.gets(), 1, "the probe is read back once");
    }

    /// Backs a config document up to `store`, verified `verification`'s way; answers the
    /// warnings logged and the result.
    async fn back_up(store: &MemoryObjects, verification: Verification) -> (Result<(), EngineError>, Vec<String>) {
        let arc: Arc<dyn ObjectStore> = Arc::new(store.clone());
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let seen = warnings.clone();
        let log: EngineLog = Arc::new(move |warning, message| {
            if warning {
                seen.lock().unwrap().push(message);
            }
        });
        let document = serde_json::to_vec(&serde_json::json!({"jobs": (0..20_000).collect::<Vec<_>>()})).unwrap();
        let ctx = SourceContext::new(Signals::new(), arc.clone(), Some(document), Arc::new(HashMap::new()));
        let target = Target {
            store: arc,
            bucket: "b".into(),
            key: "j/e/config.tar.zst".into(),
            storage_class: None,
            verification,
        };
        let done = backup_item(Source::Config {}, 3, 5 << 20, None, vec![target], ctx, log).await;
        let warnings = warnings.lock().unwrap().clone();
        (done.map(drop), warnings)
    }

    #[tokio::test]
    async fn content_md5_and_the_multipart_etag_verify_without_reading_back() {
        let store = MemoryObjects::with_quirks(Quirks {
            keeps_no_checksums: true,
            ..Quirks::default()
        });
        let (done, warnings) = back_up(&store, Verification::ContentMd5).await;
        done.unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(store.gets(), 0, "the object was read back");
        assert_eq!(store.keys("b"), vec!["j/e/config.tar.zst".to_owned()]);
    }

    #[tokio::test]
    async fn a_checksum_that_disagrees_is_followed_by_one_read_and_a_warning() {
        let store = MemoryObjects::with_quirks(Quirks {
            misreports_checksums: true,
            ..Quirks::default()
        });
        let (done, warnings) = back_up(&store, Verification::Crc64nvme).await;
        done.unwrap();
        assert_eq!(store.gets(), 1);
        assert!(warnings.len() == 1 && warnings[0].contains("misreports checksums"), "{warnings:?}");
    }

    #[tokio::test]
    async fn where_etags_are_no_md5s_a_part_sent_with_its_md5_fails_naming_it() {
        let store = MemoryObjects::with_quirks(Quirks {
            keeps_no_checksums: true,
            opaque_etags: true,
            ..Quirks::default()
        });
        let (done, _) = back_up(&store, Verification::ContentMd5).await;
        let e = done.unwrap_err().to_string();
        assert!(e.contains("not its MD5"), "{e}");
        assert!(store.keys("b").is_empty());
    }
}
