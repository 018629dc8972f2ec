//! The operations of Cairn, shared by the HTTP API and the CLI. They take parsed inputs
//! and answer domain values or a [`ServiceError`]; authentication of requests is in
//! [`auth`], transport in [`crate::http`].
//!
//! # Layout
//! - [`jobs`]: jobs and the schedule tick.
//! - [`executions`]: queueing runs, reading and listing executions, cancelling.
//! - [`backups`]: restores and downloads of stored backups.
//! - [`admin`]: destinations, keys, hooks and settings.
//! - [`auth`]: API keys presented with requests, and per-client rate limits.

pub mod admin;
pub mod auth;
pub mod backups;
pub mod executions;
pub mod jobs;

use std::sync::Arc;

pub use crate::error::ServiceError;
pub use backups::{Download, DownloadRequest, DownloadUrl};
pub use executions::{ExecutionDetail, Triggered};
pub use jobs::JobSummary;

use crate::config::Config;
use crate::domain::{HookRules, Policy};
use crate::ports::{
    DestinationRepository, Dispatcher, ExecutionStore, HookRepository, JobRepository, KeyStore, ObjectStores, RateLimiter, SettingsStore,
    StateStore,
};

/// How long an `Idempotency-Key` keeps answering the same execution.
pub const IDEMPOTENCY_WINDOW_SECS: i64 = 600;

/// The stores and dispatcher every operation works with.
#[derive(Clone)]
pub struct CairnService {
    pub jobs: Arc<dyn JobRepository>,
    pub destinations: Arc<dyn DestinationRepository>,
    pub keys: Arc<dyn KeyStore>,
    pub executions: Arc<dyn ExecutionStore>,
    pub settings: Arc<dyn SettingsStore>,
    pub hooks: Arc<dyn HookRepository>,
    pub limiter: Arc<dyn RateLimiter>,
    pub dispatcher: Arc<dyn Dispatcher>,
    /// Where backups are read for downloads.
    pub objects: Arc<dyn ObjectStores>,
    /// Where hook scripts may live: checked when a hook is created or changed.
    pub hook_rules: HookRules,
    /// What keys may choose among: checked when a job, restore or destination is created.
    pub policy: Policy,
    /// The longest a download URL may live.
    pub download_max_seconds: u64,
}

impl CairnService {
    /// The service over one object that implements every state store, with the hook
    /// rules, policy and download limit of `config`.
    pub fn new<S: StateStore + 'static>(
        store: &Arc<S>,
        dispatcher: Arc<dyn Dispatcher>,
        objects: Arc<dyn ObjectStores>,
        config: &Config,
    ) -> Self {
        Self {
            jobs: store.clone(),
            destinations: store.clone(),
            keys: store.clone(),
            executions: store.clone(),
            settings: store.clone(),
            hooks: store.clone(),
            limiter: store.clone(),
            dispatcher,
            objects,
            hook_rules: config.hook_rules(),
            policy: config.policy.clone(),
            download_max_seconds: config.download_max_seconds,
        }
    }
}

impl std::fmt::Debug for CairnService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CairnService").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
