//! Incremental backups: each item a snapshot in a deduplicating, encrypted repository in
//! restic's repository format (version 2), one per destination at `<prefix>/repository/`,
//! written and read with rustic_core over Cairn's object store, so stock `restic` or
//! `rustic` can list, check and restore it without Cairn.
//!
//! # Layout
//! - [`backend`]: restic's file layout on [`crate::ports::ObjectStore`].
//! - [`snapshot`]: backing an item up as a snapshot: a directory file by file, with the
//!   previous snapshot of the same job and item as parent; anything else as one stream.
//! - `stream_tree`: the corrected size of a stream's file node (a rustic_core gap).
//! - [`read`]: restoring a snapshot into a directory (staged, as full restores are), or
//!   streaming its one file to a writer; verifying a snapshot's blobs.
//! - [`maintain`]: forgetting snapshots and pruning unreferenced data.
//!
//! rustic_core is synchronous and calls the store from its own threads: everything here
//! runs on a blocking thread.

pub mod backend;
pub mod maintain;
pub mod pipe;
pub mod read;
pub mod snapshot;
mod stream_tree;

use std::sync::Arc;

use rustic_core::{ConfigOptions, Credentials, KeyOptions, OpenStatus, Repository, RepositoryBackends, RepositoryOptions, RusticError};

use self::backend::StoreBackend;
use crate::engine::EngineError;
use crate::ports::ObjectStore;

/// An opened repository.
pub type OpenRepository = Repository<OpenStatus>;

/// Where a destination's repository is and how it opens. The password is read by the
/// runner from the destination's secret and is never logged or shown.
#[derive(Clone)]
pub struct RepositoryAccess {
    pub store: Arc<dyn ObjectStore>,
    pub bucket: String,
    /// The key prefix, `<prefix>/repository`.
    pub root: String,
    /// The destination's name, for errors.
    pub destination: String,
    pub password: String,
}

impl std::fmt::Debug for RepositoryAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepositoryAccess")
            .field("location", &self.location())
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

impl RepositoryAccess {
    /// `s3://bucket/<prefix>/repository`.
    pub fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.root)
    }

    /// The backend on the current runtime (call from a blocking thread of it).
    pub fn backend(&self, runtime: tokio::runtime::Handle) -> StoreBackend {
        StoreBackend::new(self.store.clone(), &self.bucket, &self.root, runtime)
    }
}

/// An id in full (64 hex digits), as restic names files and snapshots; rustic_core's
/// `Display` shortens it to 8.
pub fn hex(id: &rustic_core::Id) -> String {
    id.to_hex().as_str().to_owned()
}

/// A rustic_core error as one line (its guidance with the context filled in, and the cause).
pub fn describe(e: &RusticError) -> String {
    let line = e.display_log();
    line.strip_prefix("Error: ").unwrap_or(&line).to_owned()
}

/// A rustic_core error as Cairn's.
pub(crate) fn failed(e: Box<RusticError>) -> EngineError {
    EngineError::Repository(describe(&e))
}

/// Opens the repository; with `create`, initialises it first when it has no config yet.
/// A repository that exists is never initialised again: a wrong password is an error
/// that names the destination and changes nothing.
///
/// # Errors
/// [`EngineError::Repository`]: wrong password, no repository (without `create`), or the
/// store failed.
pub fn open(access: &RepositoryAccess, backend: &StoreBackend, create: bool) -> Result<OpenRepository, EngineError> {
    let mut options = RepositoryOptions::default();
    // Nothing is cached between runs: Lambda and Fargate start with an empty disk.
    options.no_cache = true;
    let backends = RepositoryBackends::new(Arc::new(backend.clone()), None);
    let failed = |e: Box<RusticError>| EngineError::Repository(format!("repository {}: {}", access.location(), describe(&e)));
    let repo = Repository::new(&options, &backends).map_err(failed)?;
    let credentials = Credentials::password(&access.password);
    if repo.config_id().map_err(failed)?.is_none() {
        if !create {
            return Err(EngineError::Repository(format!(
                "destination '{}' has no repository at {} yet: its first incremental backup creates it",
                access.destination,
                access.location()
            )));
        }
        return repo
            .init(&credentials, &KeyOptions::default(), &ConfigOptions::default())
            .map_err(failed);
    }
    repo.open(&credentials).map_err(|e| {
        if e.is_incorrect_password() {
            EngineError::Repository(format!(
                "the password of destination '{}' does not open its repository at {}; nothing was written. \
                 Set the destination's repository secret to the password the repository was created with",
                access.destination,
                access.location()
            ))
        } else {
            failed(e)
        }
    })
}
