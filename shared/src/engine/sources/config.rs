//! Cairn's own configuration (jobs, destinations, key metadata, settings; never key
//! hashes) as a one-file tar archive.

use tar::{EntryType, Header};

use super::{ArchiveSink, SourceContext};
use crate::engine::io::CountingReader;
use crate::error::EngineError;

/// Archives the context's configuration document as `cairn-config.json`.
///
/// # Errors
/// Writing the archive failed.
pub fn archive<W: ArchiveSink>(out: W, ctx: &SourceContext) -> Result<W, EngineError> {
    let doc = ctx.config_document.clone().unwrap_or_default();
    let mut b = tar::Builder::new(out);
    let mut h = Header::new_gnu();
    h.set_size(doc.len() as u64);
    h.set_mode(0o600);
    h.set_mtime(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0));
    h.set_entry_type(EntryType::Regular);
    let data = CountingReader {
        inner: doc.as_slice(),
        signals: ctx.signals.clone(),
    };
    b.append_data(&mut h, "cairn-config.json", data)?;
    Ok(b.into_inner()?)
}
