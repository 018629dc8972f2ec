//! The streaming backup engine: a source is read once, archived (tar, for trees) or taken
//! as a stream (dumps), compressed with zstd, hashed with SHA-256 and cut into parts that
//! are uploaded to every destination as multipart uploads. Memory is bounded by a few
//! part buffers whatever the size of the backup.
//!
//! # Layout
//! - [`sink`]: the `Write` end: hashing, counting and cutting the compressed stream into parts.
//! - [`sources`]: the producers (directory, dump commands, S3 prefix, config), run on a
//!   blocking thread.
//! - [`compress`]: zstd between the producer and the sink: frames compressed side by side by
//!   one thread per core (one thread on one core), or zstd's worker threads above level 9.
//! - [`target`]: where an item's object goes, and what was stored.
//! - [`upload`]: the multipart uploader, its retries, and abort on failure.
//! - [`integrity`]: how a store is checked to keep what it was sent (probed once per
//!   destination), and the check of every uploaded object.
//! - [`io`]: the readers the stages share (counting, exact-size, hashing, object bodies).
//! - [`crypto`]: age encryption while streaming, decryption on restore.
//! - [`verify`]: reading a manifest, re-reading a backup and checking every checksum.
//! - [`restore`]: checking an object before anything is written, then applying it to a
//!   directory, a database or an S3 prefix.
//!
//! Every byte goes through [`crate::ports::ObjectStore`]: the engine links no SDK.

pub mod compress;
pub mod crypto;
pub mod integrity;
pub mod io;
pub mod repository;
pub mod restore;
pub mod sink;
pub mod sources;
pub mod target;
pub mod upload;
pub mod verify;

pub use crate::error::EngineError;

/// The programs the engine runs: the database clients of dumps and restores. The runner
/// image installs exactly these (a test compares the list with
/// `functions/runner/Dockerfile`), so name them here and nowhere else.
pub mod tools {
    pub const PG_DUMP: &str = "pg_dump";
    pub const PG_RESTORE: &str = "pg_restore";
    pub const PSQL: &str = "psql";
    pub const MYSQLDUMP: &str = "mysqldump";
    pub const MYSQL: &str = "mysql";
    /// Every program above.
    pub const ALL: &[&str] = &[PG_DUMP, PG_RESTORE, PSQL, MYSQLDUMP, MYSQL];
}

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Shared between the producer thread, the uploader and the heartbeat.
#[derive(Debug, Default)]
pub struct Signals {
    /// Set by a cancel request or a lost lease: everything stops as soon as it can.
    pub cancel: AtomicBool,
    /// Source bytes read so far in the current item.
    pub input_bytes: AtomicU64,
    /// Compressed bytes uploaded so far in the current item.
    pub uploaded_bytes: AtomicU64,
}

impl Signals {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The I/O error a reader or writer returns once cancelled. Not `Interrupted`: `io::copy`
    /// and `write_all` retry that kind, and would spin instead of stopping.
    pub fn cancelled_error() -> std::io::Error {
        std::io::Error::other("cancelled")
    }
}
