//! Restoring an archive into an S3 prefix: each file entry becomes one object, uploaded in
//! parts of at most [`PART_SIZE`] so memory stays bounded whatever the entry's size. The
//! uploads are staged: left open until the item is known intact, then completed (or
//! aborted, writing nothing).

use std::io::Read;

use bytes::Bytes;

use super::check::check_entry_path;
use super::damaged;
use super::staging::Staged;
use crate::engine::sources::SourceContext;
use crate::error::EngineError;
use crate::ports::{PartUpload, UploadOptions, UploadedPart};

/// The size of the parts restored objects are uploaded in.
const PART_SIZE: u64 = 8 << 20;

/// Uploads each file entry of the tar stream `decoder` as an object under
/// `s3://bucket/prefix/`, leaving the uploads open; answers them and the number of objects.
///
/// # Errors
/// A damaged archive, an escaping entry path, or a failed upload; every upload is aborted.
pub fn stage(decoder: impl Read, bucket: &str, prefix: &str, ctx: &SourceContext) -> Result<(Box<dyn Staged>, u64), EngineError> {
    let mut staged = StagedObjects {
        bucket: bucket.to_owned(),
        uploads: Vec::new(),
        ctx: ctx.clone(),
    };
    let mut archive = tar::Archive::new(decoder);
    let prefix = prefix.trim_matches('/');
    let mut each = || -> Result<(), EngineError> {
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
            staged.upload(entry, key)?;
        }
        Ok(())
    };
    match each() {
        Ok(()) => {
            let count = staged.uploads.len() as u64;
            Ok((Box::new(staged), count))
        }
        Err(e) => {
            Box::new(staged).discard();
            Err(e)
        }
    }
}

/// One object's upload, open until the commit.
struct OpenObject {
    key: String,
    upload_id: String,
    parts: Vec<UploadedPart>,
}

/// The open uploads of a restore into S3.
struct StagedObjects {
    bucket: String,
    uploads: Vec<OpenObject>,
    ctx: SourceContext,
}

impl StagedObjects {
    /// Uploads one entry's parts; the upload stays open (aborted by a discard).
    fn upload(&mut self, mut entry: impl Read, key: String) -> Result<(), EngineError> {
        let (store, rt) = (&self.ctx.objects, &self.ctx.runtime);
        let options = UploadOptions {
            content_type: "application/octet-stream".into(),
            ..UploadOptions::default()
        };
        let upload_id = rt.block_on(store.create_multipart(&self.bucket, &key, &options))?;
        self.uploads.push(OpenObject {
            key,
            upload_id,
            parts: Vec::new(),
        });
        let open = self.uploads.last_mut().expect("just pushed");
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
            open.parts
                .push(rt.block_on(store.upload_part(&self.bucket, &open.key, &open.upload_id, part))?);
            if last {
                break;
            }
        }
        Ok(())
    }
}

impl Staged for StagedObjects {
    fn commit(self: Box<Self>) -> Result<Option<String>, EngineError> {
        let (store, rt) = (&self.ctx.objects, &self.ctx.runtime);
        let total = self.uploads.len();
        let mut uploads = self.uploads.into_iter();
        let mut done = 0;
        while let Some(u) = uploads.next() {
            if let Err(e) = rt.block_on(store.complete_multipart(&self.bucket, &u.key, &u.upload_id, u.parts, None)) {
                let _ = rt.block_on(store.abort_multipart(&self.bucket, &u.key, &u.upload_id));
                for rest in uploads {
                    let _ = rt.block_on(store.abort_multipart(&self.bucket, &rest.key, &rest.upload_id));
                }
                return Err(EngineError::Target(format!(
                    "{done} of {total} objects were written to s3://{}/ before this failed: {e}",
                    self.bucket
                )));
            }
            done += 1;
        }
        Ok(None)
    }

    fn discard(self: Box<Self>) {
        let (store, rt) = (&self.ctx.objects, &self.ctx.runtime);
        for u in &self.uploads {
            let _ = rt.block_on(store.abort_multipart(&self.bucket, &u.key, &u.upload_id));
        }
    }
}
