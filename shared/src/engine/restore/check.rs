//! The checks made before a restore writes anything: the object's SHA-256 and size
//! against its manifest, every archive entry's path, and the target directory itself.

use std::io::{self, Read};
use std::path::{Component, Path};

use super::{damaged, refused};
use crate::domain::ManifestItem;
use crate::engine::io::Tee;
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

/// Pass one: hash and size of the stored object, and every tar entry's path, before
/// anything is written. `decrypt` turns the stored stream into the compressed one.
///
/// # Errors
/// Names what did not match.
pub fn verify_before_apply(
    object: impl Read,
    item: &ManifestItem,
    decrypt: impl FnOnce(Box<dyn Read + '_>) -> Result<Box<dyn Read + '_>, EngineError>,
) -> Result<(), EngineError> {
    let mut tee = Tee::new(object);
    {
        let plain = decrypt(Box::new(&mut tee))?;
        let decoder = zstd::stream::read::Decoder::new(plain)?;
        if item.format == "tar" {
            check_archive(decoder)?;
        } else {
            let mut d = decoder;
            io::copy(&mut d, &mut io::sink()).map_err(|e| damaged(format!("stream is damaged: {e}")))?;
        }
    }
    io::copy(&mut tee, &mut io::sink())?;
    let (sha, bytes) = tee.finish();
    if sha != item.sha256 {
        return Err(damaged(format!("SHA-256 {sha} differs from the manifest's {}", item.sha256)));
    }
    if bytes != item.stored_bytes {
        return Err(damaged(format!("size {bytes} differs from the manifest's {}", item.stored_bytes)));
    }
    Ok(())
}

/// Reads a whole tar archive, checking every entry's path and hard-link target, and that
/// no entry lies under a symlink an earlier entry makes (`lnk -> /var`, then `lnk/x`):
/// all of it before a single entry is written.
fn check_archive(decoder: impl Read) -> Result<(), EngineError> {
    let mut archive = tar::Archive::new(decoder);
    let mut links: Vec<std::path::PathBuf> = Vec::new();
    for entry in archive.entries().map_err(|e| damaged(format!("archive is damaged: {e}")))? {
        let entry = entry.map_err(|e| damaged(format!("archive is damaged: {e}")))?;
        let path = entry.path().map_err(|e| damaged(e.to_string()))?.into_owned();
        check_entry_path(&path)?;
        let path = normalized(&path);
        if let Some(link) = links.iter().find(|l| path.starts_with(l) && path != **l) {
            return Err(refused(format!(
                "archive entry '{}' lies under the link '{}' an earlier entry makes; the archive is refused",
                path.display(),
                link.display()
            )));
        }
        if entry.header().entry_type().is_symlink() {
            links.push(path);
        }
        if let Ok(Some(link)) = entry.link_name() {
            if entry.header().entry_type().is_hard_link() {
                check_entry_path(&link)?;
            }
        }
    }
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| damaged(format!("archive is damaged: {e}")))?;
    Ok(())
}

/// An entry path without `.` components, to compare entries.
fn normalized(path: &Path) -> std::path::PathBuf {
    path.components().filter(|c| !matches!(c, Component::CurDir)).collect()
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
    fn an_entry_under_an_earlier_link_is_refused_before_anything_is_written() {
        let e = check_archive(archive_with_link_then_entry_below_it().as_slice()).unwrap_err();
        assert!(e.to_string().contains("under the link 'lnk'"), "{e}");
    }

    #[test]
    fn escaping_entry_paths_are_refused() {
        assert!(check_entry_path(Path::new("a/b.txt")).is_ok());
        assert!(check_entry_path(Path::new("./a")).is_ok());
        assert!(check_entry_path(Path::new("../etc/passwd")).is_err());
        assert!(check_entry_path(Path::new("a/../../x")).is_err());
        assert!(check_entry_path(Path::new("/etc/passwd")).is_err());
    }
}
