//! The domain model: what Cairn stores and the rules it follows, as plain types with no
//! SDK, HTTP or storage-index types in them.
//!
//! # Layout
//! - [`job`], [`destination`], [`hook`], [`key`], [`settings`]: what operators define;
//!   [`runner_kind`]: where a job runs (Lambda or Fargate).
//! - [`execution`]: runs of jobs, their statuses, stages, items and logs.
//! - [`restore`]: restore requests and their targets.
//! - [`manifest`]: the `manifest.json` written last into every backup.
//! - [`schedule`]: cron expressions in time zones.
//! - [`retention`]: which backups a retention policy keeps.
//! - [`policy`]: what the operator allows API keys to choose among; [`secret`]: how a
//!   secret is named (never given).
//! - validation: [`FieldError`], an error that names the field and why.

pub mod destination;
pub mod execution;
pub mod hook;
pub mod job;
pub mod key;
pub mod manifest;
pub mod policy;
pub mod restore;
pub mod retention;
pub mod runner_kind;
pub mod schedule;
pub mod secret;
pub mod settings;
mod validate;

pub use destination::{Destination, DestinationSpec, RepositorySpec, Verification};
pub use execution::{Execution, ExecutionStatus, ExecutionType, ItemResult, LogEntry, LogLevel, Stage, Trigger};
pub use hook::{Hook, HookPosition, HookRules, HookSpec, HookType, OnError};
pub use job::{Compression, Item, Job, JobSpec, JobType, Retention, RunnerKind, Schedule, Source};
pub use key::{ApiKey, NewKey, Permission};
pub use manifest::{Manifest, ManifestItem, SnapshotRecord, MANIFEST_NAME};
pub use policy::Policy;
pub use restore::{Decryption, RestoreItem, RestoreRequest, RestoreTarget};
pub use settings::Settings;
pub use validate::FieldError;

/// A new, time-ordered identifier (UUID v7): sorts by creation time, unguessable enough
/// for ids (never used as a secret).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
