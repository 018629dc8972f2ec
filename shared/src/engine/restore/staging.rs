//! Where a restored item waits until it is known intact: each target kind writes into a
//! staging copy while the object streams, and the copy is moved into place only once the
//! object's SHA-256 and size match the manifest (or removed, leaving the target as it was).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::refused;
use crate::error::EngineError;

/// An item written to its staging copy.
pub trait Staged: Send {
    /// Moves the staged copy into place; answers a note for the log, if any.
    ///
    /// # Errors
    /// Moving failed (what was already moved is named).
    fn commit(self: Box<Self>) -> Result<Option<String>, EngineError>;

    /// Removes the staged copy; the target stays as it was.
    fn discard(self: Box<Self>);
}

/// An archive unpacked into a hidden directory beside its target (same file system, so
/// moving it into place is a rename).
#[derive(Debug)]
pub struct StagedDirectory {
    staging: PathBuf,
    target: PathBuf,
}

impl StagedDirectory {
    /// A new, empty staging directory inside `target`'s parent.
    ///
    /// # Errors
    /// The target has no parent, or the parent cannot be written.
    pub fn beside(target: &Path) -> Result<Self, EngineError> {
        let parent = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .ok_or_else(|| refused(format!("target {} has no parent directory to stage in", target.display())))?;
        fs::create_dir_all(parent).map_err(|e| refused(format!("cannot create {}: {e}", parent.display())))?;
        let name = target.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let staging = parent.join(format!(".cairn-restore-{name}-{}", uuid::Uuid::new_v4().simple()));
        fs::create_dir(&staging).map_err(|e| refused(format!("cannot stage in {}: {e}", parent.display())))?;
        Ok(Self {
            staging,
            target: target.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.staging
    }
}

impl Staged for StagedDirectory {
    fn commit(self: Box<Self>) -> Result<Option<String>, EngineError> {
        let fail = |e: io::Error| refused(format!("cannot move the restored files into {}: {e}", self.target.display()));
        match fs::read_dir(&self.target).map(|mut entries| entries.next().is_none()) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fail(e)),
            Ok(true) => fs::remove_dir(&self.target).map_err(fail)?,
            // Not empty (the restore said overwrite): entries of the archive replace
            // theirs, the others stay.
            Ok(false) => {
                merge(&self.staging, &self.target).map_err(fail)?;
                fs::remove_dir_all(&self.staging).map_err(fail)?;
                return Ok(None);
            }
        }
        fs::rename(&self.staging, &self.target).map_err(fail)?;
        Ok(None)
    }

    fn discard(self: Box<Self>) {
        let _ = fs::remove_dir_all(&self.staging);
    }
}

impl Drop for StagedDirectory {
    /// A staging copy never outlives its restore, whatever stopped it.
    fn drop(&mut self) {
        if self.staging.exists() {
            let _ = fs::remove_dir_all(&self.staging);
        }
    }
}

/// Moves every entry of `from` into `into`: directories into directories (recursively,
/// keeping the archive's times), anything else replacing what is there.
fn merge(from: &Path, into: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (src, dst) = (entry.path(), into.join(entry.file_name()));
        let src_is_dir = entry.file_type()?.is_dir();
        match fs::symlink_metadata(&dst) {
            Ok(m) if m.is_dir() && src_is_dir => {
                // Read before the merge: moving the entries out changes it.
                let modified = fs::metadata(&src)?.modified()?;
                merge(&src, &dst)?;
                fs::File::open(&dst)?.set_modified(modified)?;
                continue;
            }
            Ok(m) if m.is_dir() => fs::remove_dir_all(&dst)?,
            Ok(_) => fs::remove_file(&dst)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        fs::rename(&src, &dst)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_into_a_full_directory_replaces_the_archives_entries_and_keeps_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("t");
        fs::create_dir_all(target.join("d")).unwrap();
        fs::write(target.join("d/old.txt"), "old").unwrap();
        fs::write(target.join("kept.txt"), "kept").unwrap();
        fs::write(target.join("a.txt"), "before").unwrap();
        let staged = StagedDirectory::beside(&target).unwrap();
        fs::create_dir_all(staged.path().join("d")).unwrap();
        fs::write(staged.path().join("d/new.txt"), "new").unwrap();
        fs::write(staged.path().join("a.txt"), "after").unwrap();
        let archived = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        fs::File::open(staged.path().join("d")).unwrap().set_modified(archived).unwrap();
        Box::new(staged).commit().unwrap();
        assert_eq!(fs::read_to_string(target.join("a.txt")).unwrap(), "after");
        assert_eq!(fs::read_to_string(target.join("d/new.txt")).unwrap(), "new");
        assert_eq!(fs::read_to_string(target.join("d/old.txt")).unwrap(), "old");
        assert_eq!(fs::read_to_string(target.join("kept.txt")).unwrap(), "kept");
        let archived = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        assert_eq!(
            fs::metadata(target.join("d")).unwrap().modified().unwrap(),
            archived,
            "the archive's time of d"
        );
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1, "the staging directory is left");
    }

    #[test]
    fn a_discarded_stage_leaves_nothing_and_the_target_untouched() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("t");
        let staged = StagedDirectory::beside(&target).unwrap();
        fs::write(staged.path().join("x"), "x").unwrap();
        Box::new(staged).discard();
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
