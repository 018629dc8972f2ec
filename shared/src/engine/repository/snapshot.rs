//! An item backed up as a snapshot: a directory file by file (unchanged files, by size,
//! mtime, ctime and inode against the parent snapshot, are not read again), anything else
//! as one stream whose content-defined chunks deduplicate against every earlier run.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustic_core::repofile::{Metadata, Node, NodeType, SnapshotFile};
use rustic_core::{
    BackupOptions, IndexedIds, LocalSource, ReadSource, ReadSourceEntry, ReadSourceOpen, Repository, RusticResult, SnapshotOptions,
};

use super::backend::StoreBackend;
use super::{failed, hex, stream_tree, OpenRepository};
use crate::engine::{EngineError, Signals};

/// Who a snapshot belongs to: its tags are `cairn`, `job:<id>`, `item:<name>`,
/// `execution:<id>`.
#[derive(Debug, Clone)]
pub struct SnapshotOwner {
    pub job_id: String,
    pub item: String,
    pub execution_id: String,
}

/// The host every Cairn snapshot names (runners come and go; the job is what groups them).
pub const HOST: &str = "cairn";

impl SnapshotOwner {
    fn tags(&self) -> String {
        format!("cairn,job:{},item:{},execution:{}", self.job_id, self.item, self.execution_id)
    }

    /// Whether `snap` is an earlier snapshot of this job's item.
    fn owns(&self, snap: &SnapshotFile) -> bool {
        let tags = &snap.tags;
        tags.contains("cairn") && tags.contains(&format!("job:{}", self.job_id)) && tags.contains(&format!("item:{}", self.item))
    }

    fn snapshot(&self) -> Result<SnapshotFile, EngineError> {
        let mut options = SnapshotOptions::default().add_tags(&self.tags()).map_err(failed)?;
        options.host = Some(HOST.to_owned());
        options.to_snapshot().map_err(failed)
    }
}

/// What a snapshot stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub id: String,
    pub parent: Option<String>,
    pub files: u64,
    /// Bytes of the source read by this run (a directory's unchanged files are not read).
    pub bytes_read: u64,
    /// Bytes of the source in total.
    pub bytes_total: u64,
    /// Bytes this run added to the repository (compressed, encrypted, packed).
    pub bytes_added: u64,
}

impl StoredSnapshot {
    fn of(snap: &SnapshotFile, bytes_read: u64) -> Self {
        let summary = snap.summary.clone().unwrap_or_default();
        Self {
            id: hex(&snap.id),
            parent: snap.parent.map(|p| hex(&p)),
            files: summary.total_files_processed,
            bytes_read,
            bytes_total: summary.total_bytes_processed,
            bytes_added: summary.data_added_packed,
        }
    }
}

/// The newest snapshot of this job's item with the same paths, the parent of the next.
fn parent_of<S: IndexedIds>(repo: &Repository<S>, owner: &SnapshotOwner, path: &Path) -> Result<Option<SnapshotFile>, EngineError> {
    let wanted = path.to_string_lossy().into_owned();
    let snapshots = repo.get_all_snapshots().map_err(failed)?;
    Ok(snapshots
        .into_iter()
        .filter(|s| owner.owns(s) && s.paths.iter().any(|p| *p == wanted))
        .max_by(|a, b| a.time.cmp(&b.time)))
}

/// Cairn's include and exclude globs as rustic's: includes are whitelist globs (they
/// select files, never directories), excludes are `!` globs. Globs with a slash are
/// anchored at the item's root, as Cairn's are; rustic matches them on absolute paths.
pub fn globs(root: &Path, include: &[String], exclude: &[String]) -> Vec<String> {
    let root = root.to_string_lossy();
    let anchored = |g: &str| {
        if g.contains('/') && !g.starts_with("**") {
            format!("{}/{}", root.trim_end_matches('/'), g.trim_start_matches('/'))
        } else {
            g.to_owned()
        }
    };
    include
        .iter()
        .map(|g| anchored(g))
        .chain(exclude.iter().map(|g| format!("!{}", anchored(g))))
        .collect()
}

/// Backs up the directory `root` as a file-level snapshot whose parent is the previous
/// snapshot of the same job and item.
///
/// # Errors
/// [`EngineError::Repository`] with rustic_core's reason, [`EngineError::Cancelled`].
pub fn directory(
    repo: OpenRepository,
    owner: &SnapshotOwner,
    root: &Path,
    include: &[String],
    exclude: &[String],
    signals: &Arc<Signals>,
) -> Result<StoredSnapshot, EngineError> {
    if !root.is_dir() {
        return Err(EngineError::SourceFailed(format!("{} is not a directory", root.display())));
    }
    let repo = repo.to_indexed_ids().map_err(failed)?;
    let parent = parent_of(&repo, owner, root)?;
    let mut options = BackupOptions::default();
    if let Some(p) = &parent {
        options.parent_opts.parents = vec![hex(&p.id)];
    } else {
        options.parent_opts.force = true;
    }
    options.excludes.globs = globs(root, include, exclude);
    let paths = [root.to_path_buf()];
    let local = LocalSource::new(options.ignore_save_opts, &options.excludes, &options.ignore_filter_opts, &paths).map_err(failed)?;
    let source = Counted::new(local, signals);
    let snap = repo.archive(&options, &source, owner.snapshot()?, &paths);
    let snap = cancelled_or(signals, snap)?;
    Ok(StoredSnapshot::of(&snap, source.read()))
}

fn cancelled_or<T>(signals: &Signals, result: RusticResult<T>) -> Result<T, EngineError> {
    match result {
        Err(_) if signals.cancelled() => Err(EngineError::Cancelled),
        other => other.map_err(failed),
    }
}

/// A stream as the one file `name` of a snapshot.
struct StreamSource<R> {
    name: PathBuf,
    reader: Mutex<Option<R>>,
}

/// Opens the stream once.
struct StreamOpen<R>(R);

impl<R: Read + Send + 'static> ReadSourceOpen for StreamOpen<R> {
    type Reader = R;

    fn open(self) -> RusticResult<R> {
        Ok(self.0)
    }
}

impl<R: Read + Send + 'static> ReadSource for StreamSource<R> {
    type Open = StreamOpen<R>;
    type Iter = std::option::IntoIter<RusticResult<ReadSourceEntry<StreamOpen<R>>>>;

    fn size(&self) -> RusticResult<Option<u64>> {
        Ok(None)
    }

    fn entries(&self) -> Self::Iter {
        let reader = self.reader.lock().ok().and_then(|mut r| r.take());
        let meta = Metadata {
            // restic's (Go's) mode: permission bits, no file-type bits for a regular file.
            mode: Some(0o600),
            mtime: Some(jiff_now()),
            ..Metadata::default()
        };
        let node = Node::new_node(self.name.as_os_str(), NodeType::File, meta);
        let entry = ReadSourceEntry {
            path: self.name.clone(),
            node,
            open: reader.map(StreamOpen),
        };
        Some(Ok(entry)).into_iter()
    }
}

fn jiff_now() -> rustic_core::jiff::Timestamp {
    rustic_core::jiff::Timestamp::now()
}

/// Backs up what `reader` yields as the one file `name` of a snapshot. The reader should
/// fail (not end) when its producer failed: a stream that ends is taken as complete.
///
/// # Errors
/// [`EngineError::Repository`] with rustic_core's reason (which carries the reader's
/// error), [`EngineError::Cancelled`].
pub fn stream<R: Read + Send + 'static>(
    repo: OpenRepository,
    backend: &StoreBackend,
    owner: &SnapshotOwner,
    name: &str,
    reader: R,
    signals: &Arc<Signals>,
) -> Result<StoredSnapshot, EngineError> {
    let repo = repo.to_indexed_ids().map_err(failed)?;
    let mut options = BackupOptions::default();
    options.parent_opts.force = true;
    let source = Counted::new(
        StreamSource {
            name: PathBuf::from(name),
            reader: Mutex::new(Some(reader)),
        },
        signals,
    );
    let snap = repo.archive(&options, &source, owner.snapshot()?, &[PathBuf::from(name)]);
    let snap = cancelled_or(signals, snap)?;
    let size = snap.summary.as_ref().map_or(0, |s| s.total_bytes_processed);
    // The index read before the run does not have the tree the run wrote: read it again.
    let repo = repo.drop_index().to_indexed_ids().map_err(failed)?;
    let tree = repo.get_tree(&snap.tree).map_err(failed)?;
    let fixed = stream_tree::resize_stream(backend, &repo.key(), &snap, tree, size)?;
    Ok(StoredSnapshot::of(&fixed, source.read()))
}

/// A source whose files' readers count what they read into the item's progress, and
/// fail once the run is cancelled (rustic_core has no cancel of its own).
struct Counted<S> {
    inner: S,
    signals: Arc<Signals>,
    read: Arc<AtomicU64>,
}

impl<S> Counted<S> {
    fn new(inner: S, signals: &Arc<Signals>) -> Self {
        Self {
            inner,
            signals: signals.clone(),
            read: Arc::default(),
        }
    }

    fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

struct CountedOpen<O> {
    inner: O,
    signals: Arc<Signals>,
    read: Arc<AtomicU64>,
}

struct CountedReader<R> {
    inner: R,
    signals: Arc<Signals>,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for CountedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.signals.cancelled() {
            return Err(Signals::cancelled_error());
        }
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        self.signals.input_bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<O: ReadSourceOpen> ReadSourceOpen for CountedOpen<O> {
    type Reader = CountedReader<O::Reader>;

    fn open(self) -> RusticResult<Self::Reader> {
        Ok(CountedReader {
            inner: self.inner.open()?,
            signals: self.signals,
            read: self.read,
        })
    }
}

impl<S: ReadSource> ReadSource for Counted<S>
where
    S::Iter: 'static,
{
    type Open = CountedOpen<S::Open>;
    type Iter = CountedEntries<S::Iter>;

    fn size(&self) -> RusticResult<Option<u64>> {
        self.inner.size()
    }

    fn entries(&self) -> Self::Iter {
        CountedEntries {
            inner: self.inner.entries(),
            signals: self.signals.clone(),
            read: self.read.clone(),
        }
    }
}

struct CountedEntries<I> {
    inner: I,
    signals: Arc<Signals>,
    read: Arc<AtomicU64>,
}

impl<O, I: Iterator<Item = RusticResult<ReadSourceEntry<O>>>> Iterator for CountedEntries<I> {
    type Item = RusticResult<ReadSourceEntry<CountedOpen<O>>>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = self.inner.next()?;
        Some(entry.map(|e| ReadSourceEntry {
            path: e.path,
            node: e.node,
            open: e.open.map(|inner| CountedOpen {
                inner,
                signals: self.signals.clone(),
                read: self.read.clone(),
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_keep_cairns_meaning() {
        let g = globs(
            Path::new("/data/site"),
            &["*.txt".into(), "docs/*.md".into()],
            &["skip".into(), "/cache/tmp".into()],
        );
        assert_eq!(g, vec!["*.txt", "/data/site/docs/*.md", "!skip", "!/data/site/cache/tmp"]);
    }
}
