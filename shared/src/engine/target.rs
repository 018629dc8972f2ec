//! Where one item's object goes, what was stored there, and how the engine logs: what the
//! uploader and the verification of each upload share.

use std::sync::Arc;

use crate::domain::Verification;
use crate::ports::ObjectStore;

/// Where one item's object goes.
#[derive(Clone)]
pub struct Target {
    pub store: Arc<dyn ObjectStore>,
    pub bucket: String,
    pub key: String,
    pub storage_class: Option<String>,
    /// How the destination's store is checked (see [`super::integrity`]).
    pub verification: Verification,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// One stored copy.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub bucket: String,
    pub key: String,
    pub etag: String,
}

/// A log line the engine wants in the execution's log: (is_warning, message).
pub type EngineLog = Arc<dyn Fn(bool, String) + Send + Sync>;
