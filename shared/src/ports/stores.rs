//! The state stores: jobs, destinations, hooks, keys, rate limits, settings, and
//! executions with their queue, leases and logs. Implemented on DynamoDB in
//! [`crate::adapters::dynamo`] and in memory in [`super::memory`].

use async_trait::async_trait;

use crate::domain::{ApiKey, Destination, Execution, ExecutionStatus, Hook, ItemResult, Job, LogEntry, Settings, Stage, Verification};
use crate::error::StoreError;

/// Jobs.
#[async_trait]
pub trait JobRepository: Send + Sync {
    /// Stores a new job.
    async fn create_job(&self, job: &Job) -> Result<(), StoreError>;
    /// Replaces an existing job; `false` when there is none with that id.
    async fn replace_job(&self, job: &Job) -> Result<bool, StoreError>;
    async fn get_job(&self, id: &str) -> Result<Option<Job>, StoreError>;
    async fn list_jobs(&self) -> Result<Vec<Job>, StoreError>;
    /// `false` when there was none.
    async fn delete_job(&self, id: &str) -> Result<bool, StoreError>;
    /// Moves a job's `nextRunAt` from `expected` (absent: `None`) to `next`, only if it
    /// still is `expected`: of two ticks that see the same due time, exactly one wins.
    async fn advance_schedule(&self, id: &str, expected: Option<&str>, next: &str) -> Result<bool, StoreError>;
}

/// S3 destinations.
#[async_trait]
pub trait DestinationRepository: Send + Sync {
    async fn create_destination(&self, d: &Destination) -> Result<(), StoreError>;
    async fn get_destination(&self, id: &str) -> Result<Option<Destination>, StoreError>;
    async fn list_destinations(&self) -> Result<Vec<Destination>, StoreError>;
    async fn delete_destination(&self, id: &str) -> Result<bool, StoreError>;
    /// Remembers how the destination's uploads are verified (done when it is gone).
    async fn record_verification(&self, id: &str, verification: Verification) -> Result<(), StoreError>;
    /// Claims the prune of destination `id`'s repository for `owner` until `until` (epoch
    /// seconds): only when no prune finished after `since` and no other claim is live at
    /// `now`, so two prunes of one repository never overlap. Answers whether it was claimed.
    async fn claim_prune(&self, id: &str, owner: &str, now: i64, since: i64, until: i64) -> Result<bool, StoreError>;
    /// Ends `owner`'s claim, recording that a prune finished at `now` when `pruned`.
    async fn finish_prune(&self, id: &str, owner: &str, now: i64, pruned: bool) -> Result<(), StoreError>;
}

/// Hooks.
#[async_trait]
pub trait HookRepository: Send + Sync {
    async fn create_hook(&self, hook: &Hook) -> Result<(), StoreError>;
    /// `false` when there is none with that id.
    async fn replace_hook(&self, hook: &Hook) -> Result<bool, StoreError>;
    async fn get_hook(&self, id: &str) -> Result<Option<Hook>, StoreError>;
    /// Every hook, by name.
    async fn list_hooks(&self) -> Result<Vec<Hook>, StoreError>;
    async fn delete_hook(&self, id: &str) -> Result<bool, StoreError>;
}

/// API keys, looked up by the hash of their text.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    /// Strongly consistent, so a disabled key stops working at once.
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;
    async fn key_by_id(&self, id: &str) -> Result<Option<ApiKey>, StoreError>;
    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// `false` when there is no such key.
    async fn set_key_enabled(&self, id: &str, enabled: bool) -> Result<bool, StoreError>;
    async fn delete_key(&self, id: &str) -> Result<bool, StoreError>;
    async fn touch_key(&self, hash: &str, now: &str) -> Result<(), StoreError>;
}

/// Fixed-window counters shared by every instance.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Adds one hit to `bucket` and answers the count including it. The counter expires
    /// (TTL) at `expires_at` (epoch seconds).
    async fn hit(&self, bucket: &str, expires_at: i64) -> Result<u64, StoreError>;
}

/// System settings.
#[async_trait]
pub trait SettingsStore: Send + Sync {
    async fn settings(&self) -> Result<Settings, StoreError>;
    async fn put_settings(&self, s: &Settings) -> Result<(), StoreError>;
}

/// The outcome of [`ExecutionStore::create_pending`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The idempotency key was used within its window: the earlier execution's id.
    Existing(String),
}

/// Filters and paging for listing executions.
#[derive(Debug, Clone, Default)]
pub struct ExecutionQuery {
    pub job_id: Option<String>,
    pub status: Option<ExecutionStatus>,
    pub limit: u32,
    pub cursor: Option<String>,
}

/// One page of executions, newest first.
#[derive(Debug, Clone)]
pub struct ExecutionPage {
    pub executions: Vec<Execution>,
    pub next_cursor: Option<String>,
}

/// The outcome of a claim attempt.
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    Claimed(Box<Execution>),
    /// `maxConcurrentJobs` executions are running.
    NoSlot,
    /// Somebody else claimed or cancelled it first.
    NotPending,
    /// A concurrent transaction touched the same items: try again shortly.
    Contended,
}

/// What a runner learns when it renews its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenewOutcome {
    Continue,
    CancelRequested,
    /// The lease was lost (swept as expired): stop without touching the execution.
    LeaseLost,
}

/// What a runner reports each time it renews its lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Percent done; never lowers the stored value.
    pub progress: u8,
    pub stage: Stage,
    /// Source bytes read so far (shown by `cairn executions wait`; not in the poll shape).
    pub bytes_read: u64,
    /// Epoch seconds.
    pub lease_expires_at: i64,
}

/// The outcome of a cancel request.
#[derive(Debug, Clone, PartialEq)]
pub enum CancelOutcome {
    /// A Pending execution was cancelled at once.
    Cancelled(Box<Execution>),
    /// A Running execution was asked to stop; its runner stops within seconds.
    Requested(Box<Execution>),
    AlreadyEnded(Box<Execution>),
    NotFound,
}

/// The terminal state a runner writes.
#[derive(Debug, Clone)]
pub struct Completion {
    pub status: ExecutionStatus,
    pub stage: Stage,
    pub ended_at: String,
    pub duration_ms: u64,
    pub size: Option<u64>,
    pub path: Option<String>,
    pub error: Option<String>,
    pub items: Vec<ItemResult>,
}

/// Executions, their queue, leases and logs.
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Writes a new Pending execution; with an idempotency key (and its expiry, epoch
    /// seconds), a repeat within the window answers the first execution instead.
    async fn create_pending(&self, e: &Execution, idempotency: Option<(&str, i64)>) -> Result<CreateOutcome, StoreError>;
    async fn get_execution(&self, id: &str) -> Result<Option<Execution>, StoreError>;
    async fn list_executions(&self, q: &ExecutionQuery) -> Result<ExecutionPage, StoreError>;
    /// 1-based position among Pending executions, oldest first.
    async fn queue_position(&self, e: &Execution) -> Result<u64, StoreError>;
    /// The oldest Pending executions, oldest first.
    async fn oldest_pending(&self, limit: u32) -> Result<Vec<Execution>, StoreError>;
    /// Claims `id` (Pending to Running) while fewer than `max_running` run, atomically
    /// with taking a slot.
    async fn claim(&self, id: &str, owner: &str, lease_expires_at: i64, max_running: u32, now: &str) -> Result<ClaimOutcome, StoreError>;
    /// Renews the lease and records progress.
    async fn renew(&self, id: &str, owner: &str, beat: &Heartbeat) -> Result<RenewOutcome, StoreError>;
    /// Ends a Running execution owned by `owner` and frees its slot; `false` if the lease was lost.
    async fn complete(&self, id: &str, owner: &str, c: &Completion) -> Result<bool, StoreError>;
    async fn request_cancel(&self, id: &str, now: &str) -> Result<CancelOutcome, StoreError>;
    /// Running executions whose lease expired before `now_epoch`.
    async fn expired_running(&self, now_epoch: i64) -> Result<Vec<Execution>, StoreError>;
    /// Ends a Running execution whatever its owner (the sweep, for expired leases) and
    /// frees its slot; `false` when it was no longer Running.
    async fn fail_expired(&self, id: &str, c: &Completion) -> Result<bool, StoreError>;
    async fn append_logs(&self, execution_id: &str, entries: &[LogEntry]) -> Result<(), StoreError>;
    async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>, StoreError>;
    /// Stores an execution that ran outside the queue (a download), already ended.
    async fn record_finished(&self, e: &Execution) -> Result<(), StoreError>;
    /// Records that retention deleted this backup's objects.
    async fn mark_pruned(&self, id: &str, note: &str) -> Result<(), StoreError>;
}

/// Every state store at once: what one DynamoDB store (or the in-memory one) implements.
pub trait StateStore:
    JobRepository + DestinationRepository + HookRepository + KeyStore + RateLimiter + SettingsStore + ExecutionStore
{
}

impl<T> StateStore for T where
    T: JobRepository + DestinationRepository + HookRepository + KeyStore + RateLimiter + SettingsStore + ExecutionStore
{
}
