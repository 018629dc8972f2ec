//! The streaming backup engine: a source is read once, archived (tar, for trees) or taken
//! as a stream (dumps), compressed with zstd, hashed with SHA-256 and cut into parts that
//! are uploaded to every destination as S3 multipart uploads. Memory is bounded by a few
//! part buffers whatever the size of the backup.
//!
//! # Layout
//! - [`sink`]: the `Write` end: hashing, counting and cutting the compressed stream into parts.
//! - [`sources`]: the producers (directory, dump commands, S3 prefix, config), run on a
//!   blocking thread.
//! - [`compress`]: zstd between the producer and the sink: frames compressed side by side by
//!   one thread per core (one thread on one core), or zstd's worker threads above level 9.
//! - [`upload`]: the multipart uploader, its retries, abort on failure, and verification.
//! - [`manifest`]: the `manifest.json` written last.
//! - [`retention`]: which backups a retention policy keeps.
//! - [`verify`]: re-reading a backup and checking every checksum.
//! - [`restore`]: checking an object before anything is written, then applying it.

pub mod compress;
pub mod crypto;
pub mod manifest;
pub mod restore;
pub mod retention;
pub mod sink;
pub mod sources;
pub mod upload;
pub mod verify;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use thiserror::Error;

/// Why an item's backup failed.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error("{0}")]
    Source(String),
    #[error("cancelled")]
    Cancelled,
    #[error("upload to s3://{bucket}/{key} failed: {message}")]
    Upload { bucket: String, key: String, message: String },
    #[error("verification of s3://{bucket}/{key} failed: {message}")]
    Verify { bucket: String, key: String, message: String },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

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
