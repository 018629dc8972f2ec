//! restic's repository layout on Cairn's object store: rustic_core's backend traits
//! implemented over [`ObjectStore`], so the repository's packs, indexes and snapshots go
//! through the same S3 client, endpoints, retries and credentials as every other object.
//!
//! rustic_core calls its backend from its own threads and blocks on each call; each call
//! here drives the store's future to completion on the runner's tokio runtime. So nothing
//! here may be called from a tokio worker thread: the repository is only ever used from
//! `spawn_blocking` (see [`super::Repo::blocking`]).

use std::sync::Arc;

use bytes::Bytes;
use rustic_core::{BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend};

use crate::error::ObjectStoreError;
use crate::ports::ObjectStore;

/// A restic repository under `root` in `bucket`.
#[derive(Clone)]
pub struct StoreBackend {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    /// The key prefix of the repository, without a trailing slash.
    root: String,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for StoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreBackend")
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

impl StoreBackend {
    pub fn new(store: Arc<dyn ObjectStore>, bucket: &str, root: &str, runtime: tokio::runtime::Handle) -> Self {
        Self {
            store,
            bucket: bucket.to_owned(),
            root: root.trim_matches('/').to_owned(),
            runtime,
        }
    }

    /// The key of a file, as restic lays them out: `config`, `data/<2 hex>/<id>`,
    /// `<dirname>/<id>` for the rest.
    pub fn key(&self, tpe: FileType, id: &Id) -> String {
        let hex = id.to_hex();
        let file = match tpe {
            FileType::Config => "config".to_owned(),
            FileType::Pack => format!("data/{}/{}", &hex[..2], &hex[..]),
            _ => format!("{}/{}", tpe.dirname(), &hex[..]),
        };
        self.under(&file)
    }

    fn under(&self, file: &str) -> String {
        if self.root.is_empty() {
            file.to_owned()
        } else {
            format!("{}/{file}", self.root)
        }
    }

    fn block_on<T>(&self, future: impl std::future::Future<Output = Result<T, ObjectStoreError>>) -> RusticResult<T> {
        self.runtime.block_on(future).map_err(backend_error)
    }

    /// Writes one file (Cairn's own writes, such as a stream's corrected tree).
    pub fn put(&self, tpe: FileType, id: &Id, data: Bytes) -> RusticResult<()> {
        let key = self.key(tpe, id);
        self.block_on(self.store.put(&self.bucket, &key, data, "application/octet-stream"))
    }

    fn list_folder(&self, folder: &str) -> RusticResult<Vec<(Id, u32)>> {
        let prefix = self.under(&format!("{folder}/"));
        let mut found = Vec::new();
        let mut token = None;
        loop {
            let page = self.block_on(self.store.list(&self.bucket, &prefix, token))?;
            for object in page.objects {
                // Anything that is not a file restic would write (a folder marker, say) is skipped.
                let name = object.key.rsplit('/').next().unwrap_or_default();
                if let (Ok(id), Ok(size)) = (name.parse::<Id>(), u32::try_from(object.size)) {
                    found.push((id, size));
                }
            }
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(found),
            }
        }
    }
}

fn backend_error(e: ObjectStoreError) -> Box<RusticError> {
    RusticError::with_source(ErrorKind::Backend, "The repository's object store failed: {error}", e.to_string())
        .attach_context("error", e.to_string())
}

impl ReadBackend for StoreBackend {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.root)
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            let key = self.under("config");
            return match self.runtime.block_on(self.store.head(&self.bucket, &key)) {
                Ok(info) => Ok(vec![(Id::default(), u32::try_from(info.size).unwrap_or(u32::MAX))]),
                Err(e) if e.is_not_found() => Ok(Vec::new()),
                Err(e) => Err(backend_error(e)),
            };
        }
        self.list_folder(tpe.dirname())
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let key = self.key(tpe, id);
        let body = self.block_on(async { self.store.get(&self.bucket, &key, None).await?.collect().await })?;
        Ok(Bytes::from(body))
    }

    fn read_partial(&self, tpe: FileType, id: &Id, _cacheable: bool, offset: u32, length: u32) -> RusticResult<Bytes> {
        if length == 0 {
            return Ok(Bytes::new());
        }
        let key = self.key(tpe, id);
        let range = (u64::from(offset), u64::from(offset) + u64::from(length) - 1);
        let body = self.block_on(async { self.store.get(&self.bucket, &key, Some(range)).await?.collect().await })?;
        Ok(Bytes::from(body))
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        format!("s3://{}/{}", self.bucket, self.key(tpe, id))
    }
}

impl WriteBackend for StoreBackend {
    /// S3 has no folders: restic's folder markers are not written.
    fn create(&self) -> RusticResult<()> {
        Ok(())
    }

    fn write_bytes(&self, tpe: FileType, id: &Id, _cacheable: bool, content: BytesList) -> RusticResult<()> {
        let mut parts = content.into_vec();
        let body = if parts.len() == 1 {
            parts.remove(0)
        } else {
            Bytes::from(parts.concat())
        };
        self.put(tpe, id, body)
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let key = self.key(tpe, id);
        self.block_on(self.store.delete(&self.bucket, &key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::memory::MemoryObjects;

    #[test]
    fn files_are_laid_out_as_restic_lays_them_out() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let backend = StoreBackend::new(Arc::new(MemoryObjects::default()), "b", "p/repository/", rt.handle().clone());
        let id = "0b5e6f2ad4c7d1e0a3b49c8f7e6d5c4b3a2918f7e6d5c4b3a29180f7e6d5c4b3"
            .parse::<Id>()
            .unwrap();
        assert_eq!(backend.key(FileType::Config, &Id::default()), "p/repository/config");
        assert_eq!(
            backend.key(FileType::Pack, &id),
            format!("p/repository/data/0b/{}", crate::engine::repository::hex(&id))
        );
        assert_eq!(
            backend.key(FileType::Snapshot, &id),
            format!("p/repository/snapshots/{}", crate::engine::repository::hex(&id))
        );
        assert_eq!(
            backend.key(FileType::Key, &id),
            format!("p/repository/keys/{}", crate::engine::repository::hex(&id))
        );
    }

    #[test]
    fn files_written_are_listed_read_and_removed() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let backend = StoreBackend::new(Arc::new(MemoryObjects::default()), "b", "r", rt.handle().clone());
        let id = "aa5e6f2ad4c7d1e0a3b49c8f7e6d5c4b3a2918f7e6d5c4b3a29180f7e6d5c4b3"
            .parse::<Id>()
            .unwrap();
        assert!(backend.list_with_size(FileType::Config).unwrap().is_empty());
        let content: BytesList =
            vec![Bytes::from_static(b"hello "), Bytes::from_static(b"world")]
                .into_iter()
                .fold(BytesList::default(), |mut l, b| {
                    l.add(b);
                    l
                });
        backend.write_bytes(FileType::Pack, &id, false, content).unwrap();
        assert_eq!(backend.list_with_size(FileType::Pack).unwrap(), vec![(id, 11)]);
        assert_eq!(
            backend.read_partial(FileType::Pack, &id, false, 6, 5).unwrap(),
            Bytes::from_static(b"world")
        );
        assert_eq!(backend.read_full(FileType::Pack, &id).unwrap(), Bytes::from_static(b"hello world"));
        backend.remove(FileType::Pack, &id, false).unwrap();
        assert!(backend.list_with_size(FileType::Pack).unwrap().is_empty());
    }
}
