//! Restoring an archive into a directory.

use std::io::Read;
use std::path::Path;

use super::check::{check_directory_target, check_entry_path};
use super::{damaged, refused};
use crate::error::EngineError;

/// Unpacks the tar stream `decoder` into `dst`, keeping modes and mtimes; answers the
/// number of entries written.
///
/// # Errors
/// A target that is not empty (without `overwrite`), a damaged archive, or an entry that
/// would land outside `dst`.
pub fn unpack(decoder: impl Read, dst: &Path, overwrite: bool) -> Result<u64, EngineError> {
    check_directory_target(dst, overwrite)?;
    std::fs::create_dir_all(dst).map_err(|e| refused(format!("cannot create {}: {e}", dst.display())))?;
    let mut archive = tar::Archive::new(decoder);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(overwrite);
    archive.set_unpack_xattrs(false);
    let mut count = 0u64;
    let mut directories = Vec::new();
    for entry in archive.entries().map_err(|e| damaged(e.to_string()))? {
        let mut entry = entry.map_err(|e| damaged(format!("archive is damaged: {e}")))?;
        let path = entry.path().map_err(|e| damaged(e.to_string()))?.into_owned();
        check_entry_path(&path)?;
        if entry.header().entry_type().is_dir() {
            // Directory times are set last, after their contents are written.
            directories.push((path.clone(), entry.header().mtime().unwrap_or(0)));
        }
        // unpack_in also refuses entries that would land outside `dst` through a
        // symlink an earlier entry created.
        let inside = entry
            .unpack_in(dst)
            .map_err(|e| refused(format!("cannot restore '{}': {e}", path.display())))?;
        if !inside {
            return Err(refused(format!(
                "archive entry '{}' would escape the target through a link; refused",
                path.display()
            )));
        }
        count += 1;
    }
    for (path, mtime) in directories.into_iter().rev() {
        let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        if let Ok(f) = std::fs::File::open(dst.join(&path)) {
            let _ = f.set_modified(t);
        }
    }
    Ok(count)
}
