//! `manifest.json`: written last; a backup without it is incomplete.

use serde::{Deserialize, Serialize};

use crate::domain::{ExecutionStatus, Job};

pub const MANIFEST_NAME: &str = "manifest.json";

/// One item's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestItem {
    pub name: String,
    /// Source kind: directory, postgres, mysql, command, s3, config.
    pub kind: String,
    /// `tar` (an archive of a tree) or `stream` (a dump).
    pub format: String,
    pub compression: String,
    /// The object's name beside the manifest.
    pub object: String,
    pub input_bytes: u64,
    pub stored_bytes: u64,
    /// SHA-256 of the stored (compressed) object.
    pub sha256: String,
    pub parts: i32,
    /// Full-object CRC64NVME of the stored object, as S3 reports it (base64).
    #[serde(default)]
    pub crc64nvme: String,
    /// The ETag the (first) destination gave the object.
    pub etag: String,
    /// Encrypted with age to the job's recipients (structure bit 8).
    #[serde(default)]
    pub encrypted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// Incremental jobs: the item's snapshot in each destination's repository (no object
    /// is stored beside the manifest then).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<SnapshotRecord>,
}

/// An item's snapshot in one destination's restic repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotRecord {
    pub destination_id: String,
    /// `s3://bucket/<prefix>/repository`.
    pub repository: String,
    /// The snapshot's id (64 hex digits), as `restic snapshots` lists it.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// What the snapshot holds: the directory's path, or the stream's file name.
    pub path: String,
    pub files: u64,
    pub bytes_read: u64,
    pub bytes_added: u64,
}

impl ManifestItem {
    /// Whether the item is a snapshot in a repository (an incremental job's).
    pub fn is_snapshot(&self) -> bool {
        !self.snapshots.is_empty()
    }

    /// An item of `kind` (`tar` when `archive`, `stream` otherwise) stored as `object`,
    /// with nothing about what was stored filled in yet.
    pub fn described(name: &str, kind: &str, archive: bool, object: String) -> Self {
        Self {
            name: name.to_owned(),
            kind: kind.to_owned(),
            format: if archive { "tar" } else { "stream" }.to_owned(),
            compression: "zstd".into(),
            object,
            input_bytes: 0,
            stored_bytes: 0,
            sha256: String::new(),
            parts: 0,
            crc64nvme: String::new(),
            etag: String::new(),
            encrypted: false,
            problems: Vec::new(),
            snapshots: Vec::new(),
        }
    }
}

/// The whole manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format_version: u32,
    pub execution_id: String,
    pub job_id: String,
    pub job_name: String,
    pub created_at: String,
    pub status: ExecutionStatus,
    pub items: Vec<ManifestItem>,
    /// Items that failed (not stored): name and reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_items: Vec<(String, String)>,
    pub job: Job,
}
