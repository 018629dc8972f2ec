//! The domain model: what Cairn stores, and the validation of what clients send.

pub mod destination;
pub mod execution;
pub mod hook;
pub mod job;
pub mod key;
pub mod restore;
pub mod settings;
mod validate;

pub use destination::{Destination, DestinationSpec};
pub use execution::{Execution, ExecutionStatus, ExecutionType, ItemResult, LogEntry, LogLevel, Stage, Trigger};
pub use hook::{Hook, HookPosition, HookRules, HookSpec, HookType, OnError};
pub use job::{Compression, Item, Job, JobSpec, JobType, Retention, Schedule, Source};
pub use key::{ApiKey, NewKey, Permission};
pub use restore::{Decryption, RestoreItem, RestoreRequest, RestoreTarget};
pub use settings::Settings;
pub use validate::{parse_json_body, FieldError};

/// A new, time-ordered identifier (UUID v7): sorts by creation time, unguessable enough
/// for ids (never used as a secret).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
