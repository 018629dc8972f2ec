//! Restoring an archive into a directory.

use std::io::Read;
use std::path::Path;

use super::check::{check_directory_target, check_entry_path};
use super::staging::{Staged, StagedDirectory};
use super::{damaged, refused};
use crate::error::EngineError;

/// Unpacks the tar stream `decoder` into a staging directory beside `dst`, keeping modes
/// and mtimes; answers it and the number of entries written. Moved into place by its commit.
///
/// # Errors
/// A target that is not empty (without `overwrite`), a damaged archive, or an entry that
/// would land outside the target. Nothing is left of the staging copy then.
pub fn stage(decoder: impl Read, dst: &Path, overwrite: bool) -> Result<(Box<dyn Staged>, u64), EngineError> {
    check_directory_target(dst, overwrite)?;
    let staged = StagedDirectory::beside(dst)?;
    let count = unpack(decoder, staged.path())?;
    Ok((Box::new(staged), count))
}

/// Unpacks the tar stream `decoder` into the empty directory `dst`.
fn unpack(decoder: impl Read, dst: &Path) -> Result<u64, EngineError> {
    let mut archive = tar::Archive::new(decoder);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn archive_with_link_then_entry_below_it() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "lnk", "/var").unwrap();
        let mut f = tar::Header::new_gnu();
        f.set_size(2);
        f.set_mode(0o644);
        b.append_data(&mut f, "./lnk/x", &b"hi"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn an_entry_under_an_earlier_link_is_refused_and_nothing_is_written() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("t");
        let Err(e) = stage(archive_with_link_then_entry_below_it().as_slice(), &target, false) else {
            panic!("the archive was staged");
        };
        assert!(e.to_string().contains("lnk/x"), "{e}");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0, "something was written");
    }
}
