//! Reading snapshots back: a directory snapshot as a tar stream, a stream snapshot as its
//! one file, each blob's SHA-256 checked as it is read (rustic_core's own restore checks
//! only the MAC). Cairn's restore stages either stream exactly as it stages a full
//! backup's, so nothing is written to a target whose item failed.

use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use rustic_core::repofile::{BlobType, Node, NodeType, SnapshotFile};
use rustic_core::{BlobId, CheckOptions, IndexedFull, LsOptions, Repository};
use sha2::{Digest, Sha256};

use super::pipe::spawn_producer;
use super::{describe, failed, OpenRepository};
use crate::domain::{ManifestItem, RestoreTarget, SnapshotRecord};
use crate::engine::restore::stage;
use crate::engine::sources::SourceContext;
use crate::engine::{EngineError, Signals};

fn snapshot<S: IndexedFull>(repo: &Repository<S>, id: &str) -> Result<SnapshotFile, EngineError> {
    repo.get_snapshot_from_str(id, |_| true)
        .map_err(|e| EngineError::Damaged(format!("snapshot {id} is not in the repository ({})", describe(&e))))
}

/// A file's content, blob by blob, each checked against its id (the SHA-256 of its
/// plaintext) before a byte of it is handed on.
struct BlobReader<'a, S> {
    repo: &'a Repository<S>,
    blobs: std::vec::IntoIter<BlobId>,
    current: io::Cursor<bytes::Bytes>,
    signals: &'a Signals,
}

impl<S: IndexedFull> Read for BlobReader<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            if self.signals.cancelled() {
                return Err(Signals::cancelled_error());
            }
            let Some(id) = self.blobs.next() else { return Ok(0) };
            let data = self
                .repo
                .get_blob_cached(&id, BlobType::Data)
                .map_err(|e| io::Error::other(format!("blob {id}: {}", describe(&e))))?;
            let hash = hex::encode(Sha256::digest(&data));
            if hash != super::hex(&id) {
                return Err(io::Error::other(format!("blob {id} is damaged: its content hashes to {hash}")));
            }
            // The restore's progress, as a full restore counts the object's bytes.
            self.signals
                .input_bytes
                .fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
            self.current = io::Cursor::new(data);
        }
    }
}

fn content_of<'a, S: IndexedFull>(repo: &'a Repository<S>, node: &Node, signals: &'a Signals) -> BlobReader<'a, S> {
    let blobs: Vec<BlobId> = node.content.iter().flatten().map(|d| BlobId::from(**d)).collect();
    BlobReader {
        repo,
        blobs: blobs.into_iter(),
        current: io::Cursor::new(bytes::Bytes::new()),
        signals,
    }
}

/// A path inside a snapshot, refused if it could leave the target.
fn relative(path: &Path) -> Result<PathBuf, EngineError> {
    if path.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(path.to_path_buf())
    } else {
        Err(EngineError::Damaged(format!(
            "the snapshot names an unsafe path {}",
            path.display()
        )))
    }
}

fn header_for(node: &Node, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    // Modes are Go's in restic's format: the permission bits are where Unix has them (its
    // setuid, setgid and sticky bits are elsewhere and are not restored, as before).
    h.set_mode(node.meta.mode.unwrap_or(if node.is_dir() { 0o755 } else { 0o644 }) & 0o777);
    h.set_mtime(node.meta.mtime.map_or(0, |t| u64::try_from(t.as_second()).unwrap_or(0)));
    h.set_uid(node.meta.uid.map_or(0, u64::from));
    h.set_gid(node.meta.gid.map_or(0, u64::from));
    h
}

/// Writes the tree under `root` (a path of the snapshot, as it was backed up) of snapshot
/// `id` as a tar stream into `out`: directories, files and links with their modes and
/// mtimes, as Cairn's full backups archive them. Devices, fifos and sockets are skipped.
///
/// # Errors
/// A missing or damaged blob (the stream then fails, never ends short), cancel.
pub fn tar_of(repo: OpenRepository, id: &str, root: &str, out: impl Write, signals: &Signals) -> Result<u64, EngineError> {
    let repo = repo.to_indexed().map_err(failed)?;
    let snap = snapshot(&repo, id)?;
    let node = repo.node_from_snapshot_and_path(&snap, root).map_err(failed)?;
    let mut options = LsOptions::default();
    options.recursive = true;
    let mut tar = tar::Builder::new(out);
    let mut entries = 0;
    for listed in repo.ls(&node, &options).map_err(failed)? {
        let (path, node) = listed.map_err(failed)?;
        if path.as_os_str().is_empty() {
            continue; // the root itself: the target is its directory
        }
        let path = relative(&path)?;
        match &node.node_type {
            NodeType::Dir => tar.append_data(&mut header_for(&node, tar::EntryType::Directory, 0), &path, io::empty())?,
            NodeType::File => {
                let mut h = header_for(&node, tar::EntryType::Regular, node.meta.size);
                tar.append_data(&mut h, &path, content_of(&repo, &node, signals))?;
            }
            NodeType::Symlink { .. } => {
                let mut h = header_for(&node, tar::EntryType::Symlink, 0);
                let target = node.node_type.to_link().to_path_buf();
                tar.append_link(&mut h, &path, target)?;
            }
            _ => continue,
        }
        entries += 1;
    }
    tar.finish()?;
    Ok(entries)
}

/// Writes the one file of stream snapshot `id` into `out`; answers its size.
///
/// # Errors
/// A missing or damaged blob, a snapshot that is not one file, cancel.
pub fn file_of(repo: OpenRepository, id: &str, mut out: impl Write, signals: &Signals) -> Result<u64, EngineError> {
    let repo = repo.to_indexed().map_err(failed)?;
    let snap = snapshot(&repo, id)?;
    let tree = repo.get_tree(&snap.tree).map_err(failed)?;
    let [node] = &tree.nodes[..] else {
        return Err(EngineError::Damaged(format!(
            "snapshot {id} holds {} entries, not one stream",
            tree.nodes.len()
        )));
    };
    let written = io::copy(&mut content_of(&repo, node, signals), &mut out)?;
    out.flush()?;
    Ok(written)
}

/// What a verify found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub snapshots: usize,
    pub problems: Vec<String>,
}

/// Checks that every tree and blob the snapshots `ids` reference is in the index and its
/// pack is present; with `read_data`, reads every pack they use and checks each blob
/// decrypts to its hash.
///
/// # Errors
/// The repository could not be read at all.
pub fn check(repo: OpenRepository, ids: &[String], read_data: bool) -> Result<Checked, EngineError> {
    let repo = repo.to_indexed().map_err(failed)?;
    let mut trees = Vec::new();
    for id in ids {
        trees.push(snapshot(&repo, id)?.tree);
    }
    let mut options = CheckOptions::default();
    options.read_data = read_data;
    let results = repo.check_with_trees(options, trees).map_err(failed)?;
    let problems = results
        .0
        .iter()
        // rustic_core 0.13 does not export the level's type; its Debug name is the level.
        .filter(|(level, _)| format!("{level:?}") == "Error")
        .map(|(_, e)| e.to_string())
        .collect();
    Ok(Checked {
        snapshots: ids.len(),
        problems,
    })
}

/// Restores an item's snapshot into `target` as a full backup's object is restored: its
/// tar stream (a directory) or its file (a stream) is staged, and committed only when
/// every blob read checked out; otherwise nothing is written to the target.
///
/// # Errors
/// A damaged or missing blob, a target that refuses the data, cancel.
pub fn restore_snapshot(
    repo: OpenRepository,
    record: &SnapshotRecord,
    item: &ManifestItem,
    target: &RestoreTarget,
    ctx: &SourceContext,
) -> Result<(u64, Option<String>), EngineError> {
    let (id, path, signals) = (record.id.clone(), record.path.clone(), ctx.signals.clone());
    let whole_tree = item.kind == "directory";
    let mut reader = spawn_producer("cairn-snapshot", move |out| {
        let written = if whole_tree {
            tar_of(repo, &id, &path, out, &signals)
        } else {
            file_of(repo, &id, out, &signals)
        };
        written.map(drop)
    })?;
    let producer_error = reader.error.clone();
    let reason = |e: EngineError| producer_error.lock().ok().and_then(|mut slot| slot.take()).unwrap_or(e);
    let (staged, count) = stage(&mut reader, item, target, ctx).map_err(|e| untouched(reason(e)))?;
    // Read to the end: a failure after the tar's end marker still fails the item.
    if let Err(e) = io::copy(&mut reader, &mut io::sink()) {
        staged.discard();
        return Err(untouched(reason(EngineError::Io(e))));
    }
    let note = staged.commit()?;
    Ok((count, note))
}

/// A failure before the commit, saying that the target was left as it was.
fn untouched(e: EngineError) -> EngineError {
    const UNTOUCHED: &str = "nothing was written to the target";
    match e {
        EngineError::Cancelled => EngineError::Cancelled,
        EngineError::Target(m) => EngineError::Target(format!("{m}; {UNTOUCHED}")),
        other => EngineError::Damaged(format!("{other}; {UNTOUCHED}")),
    }
}
