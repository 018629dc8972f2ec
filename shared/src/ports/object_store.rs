//! The object store: where backups, manifests and S3 sources live. Implemented on S3 (and
//! any S3-compatible store) in [`crate::adapters::s3`] and in memory in [`super::memory`].
//!
//! The port speaks S3's own vocabulary (buckets, keys, multipart uploads, CRC64NVME
//! full-object checksums) because that is the contract Cairn keeps with every store; it
//! names no SDK type.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::error::ObjectStoreError;

pub use crate::domain::destination::StoreLocation;

/// An object's body as it arrives, in the store's chunks.
pub struct ObjectBody {
    /// The body's length, when the store said.
    pub size: Option<u64>,
    pub chunks: BoxStream<'static, Result<Bytes, ObjectStoreError>>,
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBody").field("size", &self.size).finish_non_exhaustive()
    }
}

impl ObjectBody {
    /// Reads the whole body into memory (for small objects such as manifests).
    ///
    /// # Errors
    /// The store failed while sending.
    pub async fn collect(mut self) -> Result<Vec<u8>, ObjectStoreError> {
        use futures::StreamExt;
        let mut out = Vec::with_capacity(usize::try_from(self.size.unwrap_or(0)).unwrap_or(0));
        while let Some(chunk) = self.chunks.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
}

/// What a HEAD says about a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// Without quotes.
    pub etag: String,
    /// The full-object CRC64NVME (base64), where the store keeps one.
    pub crc64nvme: Option<String>,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    pub key: String,
    pub size: u64,
    /// Epoch seconds.
    pub modified: i64,
}

/// One page of a listing; `next` continues it.
#[derive(Debug, Clone, Default)]
pub struct ObjectPage {
    pub objects: Vec<ObjectEntry>,
    pub next: Option<String>,
}

/// How a multipart upload is started.
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    pub content_type: String,
    pub storage_class: Option<String>,
    /// Ask for a full-object CRC64NVME, which the store checks on completion and returns
    /// on HEAD.
    pub full_object_crc64nvme: bool,
}

/// A part as sent.
#[derive(Debug, Clone)]
pub struct PartUpload {
    pub number: i32,
    pub data: Bytes,
    /// The part's CRC64NVME (base64), which the store checks on receipt.
    pub crc64nvme: Option<String>,
    /// The part's MD5 (base64), sent as `Content-MD5`, which the store checks on receipt.
    pub content_md5: Option<String>,
}

/// A part the store accepted, as the completion names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    pub number: i32,
    pub etag: Option<String>,
    pub crc64nvme: Option<String>,
}

/// A multipart upload that was started and neither completed nor aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
}

/// An S3-like object store.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The object's body; `range` is a byte range, both ends included.
    async fn get(&self, bucket: &str, key: &str, range: Option<(u64, u64)>) -> Result<ObjectBody, ObjectStoreError>;
    async fn put(&self, bucket: &str, key: &str, body: Bytes, content_type: &str) -> Result<(), ObjectStoreError>;
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectStoreError>;
    /// One page of the objects under `prefix`, in key order.
    async fn list(&self, bucket: &str, prefix: &str, token: Option<String>) -> Result<ObjectPage, ObjectStoreError>;
    /// Deletes one object (done when it is absent already).
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectStoreError>;
    /// Deletes every object under `prefix`.
    async fn delete_prefix(&self, bucket: &str, prefix: &str) -> Result<(), ObjectStoreError>;
    /// A URL that GETs the object for `seconds`.
    async fn presign_get(&self, bucket: &str, key: &str, seconds: u64) -> Result<String, ObjectStoreError>;
    /// Starts a multipart upload and answers its id.
    async fn create_multipart(&self, bucket: &str, key: &str, options: &UploadOptions) -> Result<String, ObjectStoreError>;
    async fn upload_part(&self, bucket: &str, key: &str, upload_id: &str, part: PartUpload) -> Result<UploadedPart, ObjectStoreError>;
    /// Completes an upload from its parts in order; with `crc64nvme`, the store checks the
    /// whole object against it. Answers the object's ETag (without quotes), when the store
    /// sends one.
    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<UploadedPart>,
        crc64nvme: Option<&str>,
    ) -> Result<Option<String>, ObjectStoreError>;
    async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), ObjectStoreError>;
    /// Uploads under `prefix` that were started and neither completed nor aborted.
    async fn open_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<OpenUpload>, ObjectStoreError>;
}

/// Opens the store at a location.
pub trait ObjectStores: Send + Sync {
    fn at(&self, location: &StoreLocation) -> Arc<dyn ObjectStore>;

    /// The default store.
    fn default_store(&self) -> Arc<dyn ObjectStore> {
        self.at(&StoreLocation::default())
    }
}
