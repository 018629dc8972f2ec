//! Restoring an archive into an S3 prefix: each file entry becomes one object, uploaded in
//! parts of at most [`PART_SIZE`] so memory stays bounded whatever the entry's size.

use std::io::Read;

use bytes::Bytes;

use super::check::check_entry_path;
use super::damaged;
use crate::engine::sources::SourceContext;
use crate::error::EngineError;
use crate::ports::{PartUpload, UploadOptions};

/// The size of the parts restored objects are uploaded in.
const PART_SIZE: u64 = 8 << 20;

/// Writes each file entry of the tar stream `decoder` as an object under
/// `s3://bucket/prefix/`; answers the number of objects written.
///
/// # Errors
/// A damaged archive, an escaping entry path, or a failed upload (which is aborted).
pub fn unpack(decoder: impl Read, bucket: &str, prefix: &str, ctx: &SourceContext) -> Result<u64, EngineError> {
    let mut archive = tar::Archive::new(decoder);
    let mut count = 0;
    let prefix = prefix.trim_matches('/');
    for entry in archive.entries().map_err(|e| damaged(e.to_string()))? {
        let entry = entry.map_err(|e| damaged(format!("archive is damaged: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|e| damaged(e.to_string()))?.into_owned();
        check_entry_path(&path)?;
        let key = if prefix.is_empty() {
            path.display().to_string()
        } else {
            format!("{prefix}/{}", path.display())
        };
        upload_entry(entry, bucket, &key, ctx)?;
        count += 1;
    }
    Ok(count)
}

/// Uploads one entry as a multipart upload, aborting it if anything fails.
fn upload_entry(mut entry: impl Read, bucket: &str, key: &str, ctx: &SourceContext) -> Result<(), EngineError> {
    let (store, rt) = (&ctx.objects, &ctx.runtime);
    let options = UploadOptions {
        content_type: "application/octet-stream".into(),
        ..UploadOptions::default()
    };
    let upload_id = rt.block_on(store.create_multipart(bucket, key, &options))?;
    let mut upload = || -> Result<(), EngineError> {
        let mut parts = Vec::new();
        for number in 1.. {
            let mut buf = Vec::with_capacity(8 << 20);
            (&mut entry).take(PART_SIZE).read_to_end(&mut buf)?;
            if buf.is_empty() && number > 1 {
                break;
            }
            let last = (buf.len() as u64) < PART_SIZE;
            let part = PartUpload {
                number,
                data: Bytes::from(buf),
                crc64nvme: None,
                content_md5: None,
            };
            parts.push(rt.block_on(store.upload_part(bucket, key, &upload_id, part))?);
            if last {
                break;
            }
        }
        rt.block_on(store.complete_multipart(bucket, key, &upload_id, parts, None))?;
        Ok(())
    };
    let result = upload();
    if result.is_err() {
        let _ = rt.block_on(store.abort_multipart(bucket, key, &upload_id));
    }
    result
}
