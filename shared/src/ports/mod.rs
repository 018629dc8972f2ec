//! The narrow async traits that the services, the runner and the engine depend on. The
//! AWS implementations live in [`crate::adapters`]; [`memory`] holds in-memory ones with
//! the same conditional semantics, for unit tests of logic.
//!
//! # Layout
//! - [`stores`]: the state stores (jobs, destinations, hooks, keys, rate limits, settings,
//!   executions with their queue, leases and logs).
//! - [`object_store`]: the object store (S3 or a compatible one).
//! - [`dispatcher`]: handing queued work to a runner.
//! - [`events`]: publishing execution state changes (EventBridge).
//! - [`secrets`]: secrets kept in a secret store (Secrets Manager).

pub mod dispatcher;
pub mod events;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod object_store;
pub mod secrets;
pub mod stores;

pub use dispatcher::{Dispatcher, RunnerEvent};
pub use events::{EventPublisher, PublishingExecutions};
pub use object_store::{
    ObjectBody, ObjectEntry, ObjectInfo, ObjectPage, ObjectStore, ObjectStores, OpenUpload, PartUpload, StoreLocation, UploadOptions,
    UploadedPart,
};
pub use secrets::SecretStore;
pub use stores::{
    CancelOutcome, ClaimOutcome, Completion, CreateOutcome, DestinationRepository, ExecutionPage, ExecutionQuery, ExecutionStore,
    Heartbeat, HookRepository, JobRepository, KeyStore, RateLimiter, RenewOutcome, SettingsStore, StateStore,
};
