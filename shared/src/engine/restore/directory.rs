//! Restoring an archive into a directory.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

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

/// Unpacks the tar stream `decoder` into the empty directory `dst`. Every path is checked
/// before it is written (no absolute or `..` path, nothing under a link an earlier entry
/// made), so no entry is resolved through the file system on the way in: `dst` is fresh
/// and every link in it is the archive's own.
fn unpack(decoder: impl Read, dst: &Path) -> Result<u64, EngineError> {
    let mut archive = tar::Archive::new(decoder);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    let mut tree = Tree {
        root: dst.to_owned(),
        made: HashSet::from([PathBuf::new()]),
        links: HashSet::new(),
        directories: Vec::new(),
        buf: vec![0; 256 << 10],
    };
    let mut count = 0u64;
    for entry in archive.entries().map_err(|e| damaged(e.to_string()))? {
        let mut entry = entry.map_err(|e| damaged(format!("archive is damaged: {e}")))?;
        let path = entry.path().map_err(|e| damaged(e.to_string()))?.into_owned();
        tree.write(&mut entry, &path)
            .map_err(|e| refused(format!("cannot restore '{}': {e}", path.display())))?;
        count += 1;
    }
    tree.set_directory_times();
    Ok(count)
}

/// What an unpack has written so far.
struct Tree {
    root: PathBuf,
    /// Directories that exist (made by an entry or as a parent), relative to the root.
    made: HashSet<PathBuf>,
    /// Symbolic links the archive made: nothing may be written beneath one.
    links: HashSet<PathBuf>,
    /// Directories and their times, set once their contents are written.
    directories: Vec<(PathBuf, u64)>,
    buf: Vec<u8>,
}

impl Tree {
    /// Writes one entry at `path` (relative), after checking where it lands.
    fn write<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, path: &Path) -> Result<(), EngineError> {
        let path = self.checked(path)?;
        let dst = self.root.join(&path);
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = header.mtime().unwrap_or(0);
        if let Some(parent) = path.parent() {
            self.make_dirs(parent)?;
        }
        if kind.is_dir() {
            if self.made.insert(path.clone()) {
                fs::create_dir(&dst)?;
            }
            fs::set_permissions(&dst, fs::Permissions::from_mode(mode))?;
            self.directories.push((path, mtime));
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let mut file = fs::OpenOptions::new().write(true).create_new(true).open(&dst)?;
            copy_with(entry, &mut file, &mut self.buf)?;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime))?;
        } else if kind.is_symlink() {
            let target = entry.link_name()?.ok_or_else(|| damaged("a symbolic link without a target"))?;
            std::os::unix::fs::symlink(&*target, &dst)?;
            self.links.insert(path);
        } else if kind.is_hard_link() {
            let target = entry.link_name()?.ok_or_else(|| damaged("a hard link without a target"))?;
            let target = self.checked(&target)?;
            fs::hard_link(self.root.join(target), &dst)?;
        } else if !(kind.is_pax_global_extensions() || kind.is_pax_local_extensions() || kind.is_gnu_longname() || kind.is_gnu_longlink()) {
            // Devices and FIFOs: tar's own writer, at a path checked above.
            entry.unpack(&dst)?;
        }
        Ok(())
    }

    /// `path` without `.` components, refused if it is absolute, climbs out with `..`, or
    /// lies beneath a link the archive made.
    fn checked(&self, path: &Path) -> Result<PathBuf, EngineError> {
        check_entry_path(path)?;
        let path: PathBuf = path.components().filter(|c| !matches!(c, Component::CurDir)).collect();
        if let Some(link) = path.ancestors().skip(1).find(|a| self.links.contains(*a)) {
            return Err(refused(format!(
                "archive entry '{}' lies under the link '{}' an earlier entry makes; the archive is refused",
                path.display(),
                link.display()
            )));
        }
        Ok(path)
    }

    /// Makes `dir` (relative) and its parents, once each.
    fn make_dirs(&mut self, dir: &Path) -> Result<(), EngineError> {
        if dir.as_os_str().is_empty() || self.made.contains(dir) {
            return Ok(());
        }
        fs::create_dir_all(self.root.join(dir))?;
        for a in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
            self.made.insert(a.to_owned());
        }
        Ok(())
    }

    /// Directory times, deepest first, once nothing more is written inside them.
    fn set_directory_times(&mut self) {
        for (path, mtime) in self.directories.drain(..).rev() {
            if let Ok(f) = fs::File::open(self.root.join(&path)) {
                let _ = f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(mtime));
            }
        }
    }
}

/// Copies with a buffer large enough that a file costs few reads of the decoder.
fn copy_with(from: &mut impl Read, to: &mut impl Write, buf: &mut [u8]) -> std::io::Result<u64> {
    let mut n = 0;
    loop {
        match from.read(buf) {
            Ok(0) => return Ok(n),
            Ok(got) => {
                to.write_all(&buf[..got])?;
                n += got as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
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
        assert!(e.to_string().contains("under the link 'lnk'"), "{e}");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0, "something was written");
    }
}
