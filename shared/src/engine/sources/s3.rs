//! An S3 prefix as a tar archive: every object under it, named relative to it.

use tar::{EntryType, Header};

use super::{append_entry, ArchiveSink, SourceContext, FILE_READ_SIZE};
use crate::engine::io::BodyReader;
use crate::error::EngineError;

/// Archives every object under `s3://bucket/prefix` into `out`.
///
/// # Errors
/// A listing or an object that cannot be read.
pub fn archive<W: ArchiveSink>(bucket: &str, prefix: &str, out: W, ctx: &SourceContext) -> Result<W, EngineError> {
    let mut b = tar::Builder::new(out);
    let mut buf = vec![0u8; FILE_READ_SIZE];
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .runtime
            .block_on(ctx.objects.list(bucket, prefix, token.take()))
            .map_err(|e| EngineError::SourceFailed(format!("cannot list s3://{bucket}/{prefix}: {e}")))?;
        for obj in &page.objects {
            let key = obj.key.as_str();
            let name = key.strip_prefix(prefix).unwrap_or(key).trim_start_matches('/');
            if name.is_empty() || name.ends_with('/') {
                continue;
            }
            if name.split('/').any(|seg| seg == ".." || seg == ".") {
                ctx.problem(format!("skipped s3://{bucket}/{key}: its name has '.' or '..' segments"));
                continue;
            }
            let body = ctx
                .runtime
                .block_on(ctx.objects.get(bucket, key, None))
                .map_err(|e| EngineError::SourceFailed(format!("cannot read s3://{bucket}/{key}: {e}")))?;
            let mut h = Header::new_gnu();
            h.set_size(body.size.unwrap_or(obj.size));
            h.set_mode(0o644);
            h.set_mtime(u64::try_from(obj.modified).unwrap_or(0));
            h.set_entry_type(EntryType::Regular);
            let body = BodyReader::new(body, ctx.runtime.clone());
            if append_entry(&mut b, &mut h, name, body, &mut buf, &ctx.signals)? {
                ctx.problem(format!("s3://{bucket}/{key} ended early; the archived copy is padded"));
            }
        }
        match page.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    Ok(b.into_inner()?)
}
