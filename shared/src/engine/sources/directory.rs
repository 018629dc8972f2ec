//! A directory tree as a tar archive: modes, mtimes and links kept, links never followed.

use std::fs;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};
use tar::{EntryType, Header, HeaderMode};
use walkdir::WalkDir;

use super::{append_entry, ArchiveSink, SourceContext, FILE_READ_SIZE};
use crate::domain::Source;
use crate::error::EngineError;

/// The total size of a directory source's files, for progress; `None` for other sources.
/// The same entries as [`archive`] reads, found with `read_dir` so that each is
/// described relative to its directory (no lookup of its whole path), as it runs beside
/// the backup.
pub fn known_size(source: &Source) -> Option<u64> {
    let Source::Directory { path, include, exclude } = source else {
        return None;
    };
    let (inc, exc) = (globs(include).ok()?, globs(exclude).ok()?);
    let root = Path::new(path);
    let mut total = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else {
                continue;
            };
            if is_excluded(root, &path, &exc) {
                continue;
            }
            if ft.is_dir() {
                dirs.push(path);
            } else if ft.is_file() && is_included(root, &path, &inc) {
                total += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    Some(total)
}

fn globs(patterns: &[String]) -> Result<GlobSet, EngineError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| EngineError::InvalidSource(format!("bad glob {p:?}: {e}")))?);
    }
    b.build().map_err(|e| EngineError::InvalidSource(e.to_string()))
}

fn is_excluded(root: &Path, path: &Path, exclude: &GlobSet) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    !exclude.is_empty() && (exclude.is_match(rel) || path.file_name().is_some_and(|n| exclude.is_match(n)))
}

fn is_included(root: &Path, path: &Path, include: &GlobSet) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    include.is_empty() || include.is_match(rel) || path.file_name().is_some_and(|n| include.is_match(n))
}

/// Archives the tree under `root` into `out`.
///
/// # Errors
/// The root cannot be read or is not a directory; entries that cannot be read are
/// recorded as problems instead.
pub fn archive<W: ArchiveSink>(root: &Path, include: &[String], exclude: &[String], out: W, ctx: &SourceContext) -> Result<W, EngineError> {
    let root_meta = fs::metadata(root).map_err(|e| EngineError::SourceFailed(format!("cannot read directory {}: {e}", root.display())))?;
    if !root_meta.is_dir() {
        return Err(EngineError::SourceFailed(format!("{} is not a directory", root.display())));
    }
    let (inc, exc) = (globs(include)?, globs(exclude)?);
    let mut b = tar::Builder::new(out);
    b.mode(HeaderMode::Complete);
    b.follow_symlinks(false);
    let walker = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !is_excluded(root, e.path(), &exc));
    let mut buf = vec![0u8; FILE_READ_SIZE];
    for entry in walker {
        if ctx.signals.cancelled() {
            return Err(EngineError::Cancelled);
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().map(|p| p.display().to_string()).unwrap_or_default();
                ctx.problem(format!("cannot read {path}: {e}"));
                continue;
            }
        };
        let (path, ft) = (entry.path(), entry.file_type());
        let rel = path.strip_prefix(root).unwrap_or(path);
        if ft.is_file() {
            if is_included(root, path, &inc) {
                append_file(&mut b, path, rel, &mut buf, ctx)?;
            }
        } else if !ft.is_symlink() || is_included(root, path, &inc) {
            append_other(&mut b, path, rel, ft, ctx)?;
        }
    }
    Ok(b.into_inner()?)
}

/// Appends a regular file, opened first and described by its descriptor: one path
/// lookup, and the header's size is that of the file read. A file that cannot be opened
/// or is no longer regular is recorded as a problem.
fn append_file<W: ArchiveSink>(b: &mut tar::Builder<W>, path: &Path, rel: &Path, buf: &mut [u8], ctx: &SourceContext) -> io::Result<()> {
    let opened = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .and_then(|f| Ok((f.metadata()?, f)));
    let (meta, file) = match opened {
        Ok((m, f)) if m.is_file() => (m, f),
        Ok(_) => {
            ctx.problem(format!("skipped {}: no longer a regular file", path.display()));
            return Ok(());
        }
        Err(e) => {
            ctx.problem(format!("cannot open {}: {e}", path.display()));
            return Ok(());
        }
    };
    let mut h = Header::new_gnu();
    h.set_metadata_in_mode(&meta, HeaderMode::Complete);
    if append_entry(b, &mut h, rel, file, buf, &ctx.signals)? {
        ctx.problem(format!("{} shrank while it was read; the archived copy is padded", path.display()));
    }
    Ok(())
}

/// Appends a directory or a symlink (stored as a link, never followed); anything else
/// (sockets, devices) is recorded as a problem.
fn append_other<W: ArchiveSink>(b: &mut tar::Builder<W>, path: &Path, rel: &Path, ft: fs::FileType, ctx: &SourceContext) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => {
            ctx.problem(format!("cannot stat {}: {e}", path.display()));
            return Ok(());
        }
    };
    let mut h = Header::new_gnu();
    h.set_metadata_in_mode(&meta, HeaderMode::Complete);
    h.set_size(0);
    if ft.is_dir() {
        h.set_entry_type(EntryType::Directory);
        b.append_data(&mut h, rel, io::empty())
    } else if ft.is_symlink() {
        match fs::read_link(path) {
            Ok(target) => {
                h.set_entry_type(EntryType::Symlink);
                b.append_link(&mut h, rel, target)
            }
            Err(e) => {
                ctx.problem(format!("cannot read link {}: {e}", path.display()));
                Ok(())
            }
        }
    } else {
        ctx.problem(format!("skipped {}: not a regular file, directory or symlink", path.display()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::engine::sources::produce;
    use crate::engine::sources::tests::context;
    use crate::engine::Signals;

    #[test]
    fn a_directory_archive_reads_back_with_every_name_size_and_link() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{}/{}.txt", "d".repeat(60), "n".repeat(80));
        let files: Vec<(String, Vec<u8>)> = vec![
            ("empty".into(), vec![]),
            ("odd".into(), (0..1001u32).map(|i| (i % 251) as u8).collect()),
            ("block".into(), vec![7; 512]),
            (
                "big".into(),
                (0..(FILE_READ_SIZE as u32 * 2 + 3)).map(|i| (i % 253) as u8).collect(),
            ),
            (long.clone(), b"far down".to_vec()),
        ];
        for (name, data) in &files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, data).unwrap();
        }
        std::os::unix::fs::symlink("odd", dir.path().join("link")).unwrap();
        let (_rt, ctx) = context(Signals::new());

        let tar = archive(dir.path(), &[], &[], Vec::new(), &ctx).unwrap();

        let mut seen = std::collections::BTreeMap::new();
        let mut archive = tar::Archive::new(tar.as_slice());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            if entry.header().entry_type() == EntryType::Symlink {
                seen.insert(name, entry.link_name().unwrap().unwrap().display().to_string().into_bytes());
            } else if entry.header().entry_type() == EntryType::Regular {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                seen.insert(name, data);
            }
        }
        for (name, data) in &files {
            assert_eq!(seen.get(name), Some(data), "{name}");
        }
        assert_eq!(seen.get("link").map(Vec::as_slice), Some(&b"odd"[..]));
        assert_eq!(seen.len(), files.len() + 1);
        assert!(ctx.problems.lock().unwrap().is_empty());
    }

    #[test]
    fn the_known_size_is_that_of_the_files_the_archive_holds() {
        let dir = tempfile::tempdir().unwrap();
        for (name, len) in [
            ("a.txt", 10),
            ("sub/b.txt", 2000),
            ("sub/deep/c.log", 300),
            ("skip/d.txt", 5000),
            ("e.tmp", 70),
        ] {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, vec![b'x'; len]).unwrap();
        }
        std::os::unix::fs::symlink("sub/b.txt", dir.path().join("link")).unwrap();
        let source = |include: &[&str], exclude: &[&str]| Source::Directory {
            path: dir.path().display().to_string(),
            include: include.iter().map(|s| (*s).to_owned()).collect(),
            exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
        };
        let (_rt, ctx) = context(Signals::new());
        for (include, exclude) in [(&[][..], &[][..]), (&[], &["skip", "*.tmp"]), (&["*.txt"], &["skip"])] {
            let tar = produce(&source(include, exclude), Vec::new(), &ctx).unwrap();
            let archived: u64 = tar::Archive::new(tar.as_slice())
                .entries()
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| e.header().entry_type() == EntryType::Regular)
                .map(|e| e.header().size().unwrap())
                .sum();
            assert_eq!(known_size(&source(include, exclude)), Some(archived), "{include:?} {exclude:?}");
        }
        assert_eq!(known_size(&source(&[], &[])), Some(7380));
    }

    /// Sets the cancel signal on the first write, as a cancel arriving mid-archive would.
    struct CancelOnWrite(Arc<Signals>);

    impl ArchiveSink for CancelOnWrite {}

    impl Write for CancelOnWrite {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.cancel.store(true, Ordering::Relaxed);
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_cancel_mid_file_stops_the_archive_instead_of_retrying_the_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), vec![1u8; 3 * FILE_READ_SIZE]).unwrap();
        let signals = Signals::new();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let root = dir.path().to_owned();
        std::thread::spawn(move || {
            let (_rt, ctx) = context(signals.clone());
            let result = archive(&root, &[], &[], CancelOnWrite(signals), &ctx).map(|_| ());
            let _ = done_tx.send(result.map_err(|e| e.to_string()));
        });
        let result = done_rx.recv_timeout(Duration::from_secs(10)).expect("the archive did not stop");
        assert_eq!(result.unwrap_err(), "I/O error: cancelled");
    }
}
