//! The checks of what a restore writes: every archive entry's path, and the target
//! directory itself.

use std::io;
use std::path::{Component, Path};

use super::refused;
use crate::error::EngineError;

/// Refuses archive paths that could leave the target: absolute, `..`, or empty.
///
/// # Errors
/// Names the entry.
pub fn check_entry_path(path: &Path) -> Result<(), EngineError> {
    if path.as_os_str().is_empty() {
        return Err(refused("an archive entry has an empty name"));
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => {
                return Err(refused(format!(
                    "archive entry '{}' would escape the target; the archive is refused",
                    path.display()
                )))
            }
        }
    }
    Ok(())
}

/// Checks a directory target before anything is written to any item.
///
/// # Errors
/// When it exists, is not empty and `overwrite` is off, or cannot be read.
pub fn check_directory_target(path: &Path, overwrite: bool) -> Result<(), EngineError> {
    match std::fs::read_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(refused(format!("target {} cannot be read: {e}", path.display()))),
        Ok(mut entries) => {
            if !overwrite && entries.next().is_some() {
                Err(refused(format!(
                    "target directory {} is not empty; pass overwrite: true to restore over it",
                    path.display()
                )))
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_entry_paths_are_refused() {
        assert!(check_entry_path(Path::new("a/b.txt")).is_ok());
        assert!(check_entry_path(Path::new("./a")).is_ok());
        assert!(check_entry_path(Path::new("../etc/passwd")).is_err());
        assert!(check_entry_path(Path::new("a/../../x")).is_err());
        assert!(check_entry_path(Path::new("/etc/passwd")).is_err());
    }
}
