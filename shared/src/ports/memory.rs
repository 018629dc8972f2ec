//! In-memory implementations of every port, for unit tests of the services and the
//! runner. They keep the conditional semantics of the DynamoDB and S3 adapters: a claim
//! succeeds only below the cap and only for a Pending execution, a schedule advances only
//! from the expected time, an idempotency key answers the first execution, an upload is
//! checked against its full-object CRC64NVME. Each operation is atomic (one lock, never
//! held across an await).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use crc_fast::CrcAlgorithm;
use futures::StreamExt;
use md5::{Digest, Md5};

use super::*;
use crate::domain::{ApiKey, Destination, Execution, ExecutionStatus, Hook, Job, LogEntry, Settings, Stage, Verification};
use crate::error::{ObjectStoreError, StoreError};

/// Every state store, in memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    jobs: BTreeMap<String, Job>,
    destinations: BTreeMap<String, Destination>,
    hooks: BTreeMap<String, Hook>,
    /// By hash.
    keys: BTreeMap<String, ApiKey>,
    settings: Option<Settings>,
    executions: BTreeMap<String, Execution>,
    logs: HashMap<String, Vec<LogEntry>>,
    /// `job#key` -> (execution id, expiry).
    idempotency: HashMap<String, (String, i64)>,
    /// Executions holding a slot.
    running: u32,
    hits: HashMap<String, u64>,
    /// Lease renewals still to fail, as a store that is down would.
    failing_renewals: u32,
    /// Destination id -> its repository's prune claim and last prune.
    prunes: HashMap<String, PruneState>,
}

/// A claim's owner and end (epoch seconds), and when the last prune finished.
type PruneState = (Option<(String, i64)>, Option<i64>);

impl MemoryStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("memory store lock")
    }

    /// The next `n` lease renewals fail.
    pub fn fail_renewals(&self, n: u32) {
        self.lock().failing_renewals = n;
    }

    /// How many executions hold a slot (for tests of the cap).
    pub fn running_slots(&self) -> u32 {
        self.lock().running
    }
}

fn replace<T: Clone>(map: &mut BTreeMap<String, T>, id: &str, v: &T) -> bool {
    match map.get_mut(id) {
        Some(slot) => {
            *slot = v.clone();
            true
        }
        None => false,
    }
}

#[async_trait]
impl JobRepository for MemoryStore {
    async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        self.lock().jobs.insert(job.id.clone(), job.clone());
        Ok(())
    }
    async fn replace_job(&self, job: &Job) -> Result<bool, StoreError> {
        Ok(replace(&mut self.lock().jobs, &job.id, job))
    }
    async fn get_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        Ok(self.lock().jobs.get(id).cloned())
    }
    async fn list_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let mut jobs: Vec<Job> = self.lock().jobs.values().cloned().collect();
        jobs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(jobs)
    }
    async fn delete_job(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().jobs.remove(id).is_some())
    }
    async fn advance_schedule(&self, id: &str, expected: Option<&str>, next: &str) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(job) = state.jobs.get_mut(id) else { return Ok(false) };
        if job.next_run_at.as_deref() != expected {
            return Ok(false);
        }
        job.next_run_at = Some(next.to_owned());
        Ok(true)
    }
}

#[async_trait]
impl DestinationRepository for MemoryStore {
    async fn create_destination(&self, d: &Destination) -> Result<(), StoreError> {
        self.lock().destinations.insert(d.id.clone(), d.clone());
        Ok(())
    }
    async fn get_destination(&self, id: &str) -> Result<Option<Destination>, StoreError> {
        Ok(self.lock().destinations.get(id).cloned())
    }
    async fn list_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        Ok(self.lock().destinations.values().cloned().collect())
    }
    async fn delete_destination(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().destinations.remove(id).is_some())
    }
    async fn record_verification(&self, id: &str, verification: Verification) -> Result<(), StoreError> {
        if let Some(d) = self.lock().destinations.get_mut(id) {
            d.verification = Some(verification);
        }
        Ok(())
    }

    async fn claim_prune(&self, id: &str, owner: &str, now: i64, since: i64, until: i64) -> Result<bool, StoreError> {
        let mut state = self.lock();
        if !state.destinations.contains_key(id) {
            return Ok(false);
        }
        let (claim, pruned_at) = state.prunes.entry(id.to_owned()).or_default();
        let free = claim.as_ref().is_none_or(|(_, end)| *end < now);
        if !free || pruned_at.is_some_and(|at| at > since) {
            return Ok(false);
        }
        *claim = Some((owner.to_owned(), until));
        Ok(true)
    }

    async fn finish_prune(&self, id: &str, owner: &str, now: i64, pruned: bool) -> Result<(), StoreError> {
        let mut state = self.lock();
        if let Some((claim, pruned_at)) = state.prunes.get_mut(id) {
            if claim.as_ref().is_some_and(|(o, _)| o == owner) {
                *claim = None;
                if pruned {
                    *pruned_at = Some(now);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl HookRepository for MemoryStore {
    async fn create_hook(&self, hook: &Hook) -> Result<(), StoreError> {
        self.lock().hooks.insert(hook.id.clone(), hook.clone());
        Ok(())
    }
    async fn replace_hook(&self, hook: &Hook) -> Result<bool, StoreError> {
        Ok(replace(&mut self.lock().hooks, &hook.id, hook))
    }
    async fn get_hook(&self, id: &str) -> Result<Option<Hook>, StoreError> {
        Ok(self.lock().hooks.get(id).cloned())
    }
    async fn list_hooks(&self) -> Result<Vec<Hook>, StoreError> {
        let mut all: Vec<Hook> = self.lock().hooks.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(all)
    }
    async fn delete_hook(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().hooks.remove(id).is_some())
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.lock().keys.insert(key.key_hash.clone(), key.clone());
        Ok(())
    }
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.lock().keys.get(hash).cloned())
    }
    async fn key_by_id(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.lock().keys.values().find(|k| k.id == id).cloned())
    }
    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        Ok(self.lock().keys.values().cloned().collect())
    }
    async fn set_key_enabled(&self, id: &str, enabled: bool) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let Some(key) = state.keys.values_mut().find(|k| k.id == id) else {
            return Ok(false);
        };
        key.enabled = enabled;
        Ok(true)
    }
    async fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let before = state.keys.len();
        state.keys.retain(|_, k| k.id != id);
        Ok(state.keys.len() < before)
    }
    async fn touch_key(&self, hash: &str, now: &str) -> Result<(), StoreError> {
        if let Some(k) = self.lock().keys.get_mut(hash) {
            k.last_used_at = Some(now.to_owned());
        }
        Ok(())
    }
}

#[async_trait]
impl RateLimiter for MemoryStore {
    async fn hit(&self, bucket: &str, _expires_at: i64) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let hits = state.hits.entry(bucket.to_owned()).or_default();
        *hits += 1;
        Ok(*hits)
    }
}

#[async_trait]
impl SettingsStore for MemoryStore {
    async fn settings(&self) -> Result<Settings, StoreError> {
        Ok(self.lock().settings.unwrap_or_default())
    }
    async fn put_settings(&self, s: &Settings) -> Result<(), StoreError> {
        self.lock().settings = Some(*s);
        Ok(())
    }
}

impl State {
    /// Ends a Running execution (owned by `owner` when given) and frees its slot.
    fn end_running(&mut self, id: &str, owner: Option<&str>, c: &Completion) -> bool {
        let Some(e) = self.executions.get_mut(id) else { return false };
        if e.status != ExecutionStatus::Running || owner.is_some_and(|o| e.owner.as_deref() != Some(o)) {
            return false;
        }
        e.status = c.status;
        e.stage = c.stage;
        e.ended_at = Some(c.ended_at.clone());
        e.duration = Some(c.duration_ms);
        e.size = c.size;
        e.path.clone_from(&c.path);
        e.error.clone_from(&c.error);
        e.items.clone_from(&c.items);
        e.lease_expires_at = None;
        if matches!(c.status, ExecutionStatus::Success | ExecutionStatus::Partial) {
            e.progress = 100;
        }
        self.running = self.running.saturating_sub(1);
        true
    }

    fn pending_oldest_first(&self) -> Vec<Execution> {
        let mut pending: Vec<Execution> = self
            .executions
            .values()
            .filter(|e| e.status == ExecutionStatus::Pending)
            .cloned()
            .collect();
        pending.sort_by(|a, b| a.queued_at.cmp(&b.queued_at));
        pending
    }
}

#[async_trait]
impl ExecutionStore for MemoryStore {
    async fn create_pending(&self, e: &Execution, idempotency: Option<(&str, i64)>) -> Result<CreateOutcome, StoreError> {
        let mut state = self.lock();
        if let Some((key, expires_at)) = idempotency {
            let k = format!("{}#{key}", e.job_id);
            let now = chrono::Utc::now().timestamp();
            if let Some((existing, expiry)) = state.idempotency.get(&k) {
                if *expiry >= now {
                    return Ok(CreateOutcome::Existing(existing.clone()));
                }
            }
            state.idempotency.insert(k, (e.id.clone(), expires_at));
        }
        state.executions.insert(e.id.clone(), e.clone());
        Ok(CreateOutcome::Created)
    }

    async fn get_execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        Ok(self.lock().executions.get(id).cloned())
    }

    async fn list_executions(&self, q: &ExecutionQuery) -> Result<ExecutionPage, StoreError> {
        let state = self.lock();
        let mut all: Vec<&Execution> = state
            .executions
            .values()
            .filter(|e| q.job_id.as_ref().is_none_or(|j| &e.job_id == j) && q.status.is_none_or(|s| e.status == s))
            .collect();
        all.sort_by(|a, b| b.queued_at.cmp(&a.queued_at).then_with(|| b.id.cmp(&a.id)));
        let start = match &q.cursor {
            None => 0,
            Some(c) => all.iter().position(|e| &e.id == c).map(|i| i + 1).ok_or(StoreError::BadCursor)?,
        };
        let page: Vec<Execution> = all.iter().skip(start).take(q.limit as usize).map(|e| (*e).clone()).collect();
        let next_cursor = (start + page.len() < all.len())
            .then(|| page.last().map(|e| e.id.clone()))
            .flatten();
        Ok(ExecutionPage {
            executions: page,
            next_cursor,
        })
    }

    async fn queue_position(&self, e: &Execution) -> Result<u64, StoreError> {
        let before = self
            .lock()
            .pending_oldest_first()
            .iter()
            .filter(|p| p.queued_at < e.queued_at)
            .count();
        Ok(before as u64 + 1)
    }

    async fn oldest_pending(&self, limit: u32) -> Result<Vec<Execution>, StoreError> {
        Ok(self.lock().pending_oldest_first().into_iter().take(limit as usize).collect())
    }

    async fn claim(&self, id: &str, owner: &str, lease_expires_at: i64, max_running: u32, now: &str) -> Result<ClaimOutcome, StoreError> {
        let mut state = self.lock();
        if state.running >= max_running {
            return Ok(ClaimOutcome::NoSlot);
        }
        let Some(e) = state
            .executions
            .get_mut(id)
            .filter(|e| e.status == ExecutionStatus::Pending && !e.cancel_requested)
        else {
            return Ok(ClaimOutcome::NotPending);
        };
        e.status = ExecutionStatus::Running;
        e.owner = Some(owner.to_owned());
        e.lease_expires_at = Some(lease_expires_at);
        e.started_at = Some(now.to_owned());
        e.stage = Stage::Initializing;
        e.progress = 0;
        let claimed = e.clone();
        state.running += 1;
        Ok(ClaimOutcome::Claimed(Box::new(claimed)))
    }

    async fn renew(&self, id: &str, owner: &str, beat: &Heartbeat) -> Result<RenewOutcome, StoreError> {
        let mut state = self.lock();
        if state.failing_renewals > 0 {
            state.failing_renewals -= 1;
            return Err(StoreError::Dynamo {
                operation: "UpdateItem",
                message: "503 ServiceUnavailable: injected".into(),
            });
        }
        match state.executions.get_mut(id) {
            Some(e) if e.status == ExecutionStatus::Running && e.owner.as_deref() == Some(owner) => {
                e.progress = e.progress.max(beat.progress);
                e.stage = beat.stage;
                e.bytes_read = Some(beat.bytes_read);
                e.lease_expires_at = Some(beat.lease_expires_at);
                Ok(if e.cancel_requested {
                    RenewOutcome::CancelRequested
                } else {
                    RenewOutcome::Continue
                })
            }
            _ => Ok(RenewOutcome::LeaseLost),
        }
    }

    async fn complete(&self, id: &str, owner: &str, c: &Completion) -> Result<bool, StoreError> {
        Ok(self.lock().end_running(id, Some(owner), c))
    }

    async fn request_cancel(&self, id: &str, now: &str) -> Result<CancelOutcome, StoreError> {
        let mut state = self.lock();
        let Some(e) = state.executions.get_mut(id) else {
            return Ok(CancelOutcome::NotFound);
        };
        match e.status {
            ExecutionStatus::Pending => {
                e.status = ExecutionStatus::Cancelled;
                e.stage = Stage::Cancelled;
                e.ended_at = Some(now.to_owned());
                e.error = Some("Cancelled before it started".into());
                e.cancel_requested = true;
                Ok(CancelOutcome::Cancelled(Box::new(e.clone())))
            }
            ExecutionStatus::Running => {
                e.cancel_requested = true;
                Ok(CancelOutcome::Requested(Box::new(e.clone())))
            }
            _ => Ok(CancelOutcome::AlreadyEnded(Box::new(e.clone()))),
        }
    }

    async fn expired_running(&self, now_epoch: i64) -> Result<Vec<Execution>, StoreError> {
        let state = self.lock();
        let expired = state
            .executions
            .values()
            .filter(|e| e.status == ExecutionStatus::Running && e.lease_expires_at.is_some_and(|l| l < now_epoch));
        Ok(expired.cloned().collect())
    }

    async fn fail_expired(&self, id: &str, c: &Completion) -> Result<bool, StoreError> {
        Ok(self.lock().end_running(id, None, c))
    }

    async fn append_logs(&self, execution_id: &str, entries: &[LogEntry]) -> Result<(), StoreError> {
        self.lock()
            .logs
            .entry(execution_id.to_owned())
            .or_default()
            .extend_from_slice(entries);
        Ok(())
    }

    async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>, StoreError> {
        Ok(self.lock().logs.get(execution_id).cloned().unwrap_or_default())
    }

    async fn record_finished(&self, e: &Execution) -> Result<(), StoreError> {
        self.lock().executions.insert(e.id.clone(), e.clone());
        Ok(())
    }

    async fn mark_pruned(&self, id: &str, note: &str) -> Result<(), StoreError> {
        if let Some(e) = self.lock().executions.get_mut(id) {
            e.pruned = Some(note.to_owned());
        }
        Ok(())
    }
}

/// A dispatcher that records what it was handed.
#[derive(Debug, Default)]
pub struct RecordingDispatcher {
    pub dispatched: Mutex<Vec<String>>,
}

#[async_trait]
impl Dispatcher for RecordingDispatcher {
    async fn dispatch(&self, execution_id: &str) -> Result<(), StoreError> {
        self.dispatched.lock().expect("dispatch lock").push(execution_id.to_owned());
        Ok(())
    }
}

/// An object store in memory: every location is the same store. Completed uploads are
/// checked against the full-object CRC64NVME they were completed with, which HEAD then
/// reports.
#[derive(Debug, Clone, Default)]
pub struct MemoryObjects {
    state: Arc<Mutex<Objects>>,
    quirks: Quirks,
}

/// How a memory store departs from S3, to stand in for other S3-compatible stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quirks {
    /// HEAD answers no CRC64NVME.
    pub keeps_no_checksums: bool,
    /// HEAD answers a CRC64NVME that is not the object's (its bytes stay intact).
    pub misreports_checksums: bool,
    /// ETags are opaque, not MD5s.
    pub opaque_etags: bool,
    /// HEAD answers a size a byte larger than the object's.
    pub misreports_size: bool,
}

#[derive(Debug, Default)]
struct Objects {
    /// GETs answered, to tell a verification that read nothing from one that read back.
    gets: u64,
    objects: BTreeMap<(String, String), Stored>,
    uploads: HashMap<String, Upload>,
    next_upload: u64,
}

#[derive(Debug, Clone)]
struct Stored {
    data: Bytes,
    crc64nvme: String,
    /// As S3's: the MD5 in hex for a single PUT, the multipart ETag for an upload.
    etag: Option<String>,
}

#[derive(Debug)]
struct Upload {
    bucket: String,
    key: String,
    parts: BTreeMap<i32, Bytes>,
}

fn crc_text(data: &[u8]) -> String {
    let crc = crc_fast::checksum(CrcAlgorithm::Crc64Nvme, data);
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

impl MemoryObjects {
    fn lock(&self) -> MutexGuard<'_, Objects> {
        self.state.lock().expect("memory objects lock")
    }

    /// A store with `quirks`.
    pub fn with_quirks(quirks: Quirks) -> Self {
        Self { quirks, ..Self::default() }
    }

    /// An ETag as this store answers it.
    fn etag(&self, md5_hex: String) -> String {
        if self.quirks.opaque_etags {
            format!("opaque{}", &md5_hex[..8])
        } else {
            md5_hex
        }
    }

    /// Stores an object as is (for tests that plant or damage data).
    pub fn insert(&self, bucket: &str, key: &str, data: Vec<u8>) {
        let stored = Stored {
            crc64nvme: crc_text(&data),
            etag: Some(self.etag(hex::encode(Md5::digest(&data)))),
            data: Bytes::from(data),
        };
        self.lock().objects.insert((bucket.to_owned(), key.to_owned()), stored);
    }

    /// GETs answered so far.
    pub fn gets(&self) -> u64 {
        self.lock().gets
    }

    /// An object's bytes.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.lock()
            .objects
            .get(&(bucket.to_owned(), key.to_owned()))
            .map(|o| o.data.to_vec())
    }

    /// Every key in `bucket`.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        self.lock()
            .objects
            .keys()
            .filter(|(b, _)| b == bucket)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Uploads started and neither completed nor aborted.
    pub fn open_upload_count(&self) -> usize {
        self.lock().uploads.len()
    }
}

fn missing(operation: &'static str, bucket: &str, key: &str) -> ObjectStoreError {
    ObjectStoreError::NotFound {
        operation,
        location: format!("s3://{bucket}/{key}"),
    }
}

#[async_trait]
impl ObjectStore for MemoryObjects {
    async fn get(&self, bucket: &str, key: &str, range: Option<(u64, u64)>) -> Result<ObjectBody, ObjectStoreError> {
        self.lock().gets += 1;
        let data = self.object(bucket, key).ok_or_else(|| missing("GetObject", bucket, key))?;
        let data = match range {
            Some((from, to)) => data[from as usize..=(to as usize).min(data.len().saturating_sub(1))].to_vec(),
            None => data,
        };
        let size = Some(data.len() as u64);
        // Chunks of 64 KiB, as a network body arrives.
        let chunks: Vec<Result<Bytes, ObjectStoreError>> = data.chunks(64 << 10).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Ok(ObjectBody {
            size,
            chunks: futures::stream::iter(chunks).boxed(),
        })
    }

    async fn put(&self, bucket: &str, key: &str, body: Bytes, _content_type: &str) -> Result<(), ObjectStoreError> {
        self.insert(bucket, key, body.to_vec());
        Ok(())
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectStoreError> {
        let state = self.lock();
        let o = state
            .objects
            .get(&(bucket.to_owned(), key.to_owned()))
            .ok_or_else(|| missing("HeadObject", bucket, key))?;
        let q = self.quirks;
        Ok(ObjectInfo {
            size: o.data.len() as u64 + u64::from(q.misreports_size),
            etag: o.etag.clone().unwrap_or_default(),
            crc64nvme: match (q.keeps_no_checksums, q.misreports_checksums) {
                (true, _) => None,
                (false, true) => Some(crc_text(b"not these bytes")),
                (false, false) => Some(o.crc64nvme.clone()),
            },
        })
    }

    async fn list(&self, bucket: &str, prefix: &str, _token: Option<String>) -> Result<ObjectPage, ObjectStoreError> {
        let state = self.lock();
        let objects = state
            .objects
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .map(|((_, k), o)| ObjectEntry {
                key: k.clone(),
                size: o.data.len() as u64,
                modified: 0,
            })
            .collect();
        Ok(ObjectPage { objects, next: None })
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectStoreError> {
        self.lock().objects.remove(&(bucket.to_owned(), key.to_owned()));
        Ok(())
    }

    async fn delete_prefix(&self, bucket: &str, prefix: &str) -> Result<(), ObjectStoreError> {
        self.lock().objects.retain(|(b, k), _| !(b == bucket && k.starts_with(prefix)));
        Ok(())
    }

    async fn presign_get(&self, bucket: &str, key: &str, seconds: u64) -> Result<String, ObjectStoreError> {
        Ok(format!("memory://{bucket}/{key}?expires={seconds}"))
    }

    async fn create_multipart(&self, bucket: &str, key: &str, _options: &UploadOptions) -> Result<String, ObjectStoreError> {
        let mut state = self.lock();
        state.next_upload += 1;
        let id = format!("upload-{}", state.next_upload);
        let upload = Upload {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            parts: BTreeMap::new(),
        };
        state.uploads.insert(id.clone(), upload);
        Ok(id)
    }

    async fn upload_part(&self, bucket: &str, key: &str, upload_id: &str, part: PartUpload) -> Result<UploadedPart, ObjectStoreError> {
        if part.crc64nvme.as_ref().is_some_and(|c| *c != crc_text(&part.data)) {
            return Err(ObjectStoreError::failed(
                "UploadPart",
                bucket,
                key,
                "BadDigest: the part's CRC64NVME does not match",
            ));
        }
        let md5 = Md5::digest(&part.data);
        if part
            .content_md5
            .as_ref()
            .is_some_and(|m| *m != base64::engine::general_purpose::STANDARD.encode(md5))
        {
            return Err(ObjectStoreError::failed(
                "UploadPart",
                bucket,
                key,
                "BadDigest: Content-MD5 does not match",
            ));
        }
        let mut state = self.lock();
        let upload = state.uploads.get_mut(upload_id).ok_or_else(|| missing("UploadPart", bucket, key))?;
        upload.parts.insert(part.number, part.data);
        // As S3's: the part's MD5 in hex.
        Ok(UploadedPart {
            number: part.number,
            etag: Some(self.etag(hex::encode(md5))),
            crc64nvme: part.crc64nvme,
        })
    }

    async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<UploadedPart>,
        crc64nvme: Option<&str>,
    ) -> Result<Option<String>, ObjectStoreError> {
        let mut state = self.lock();
        let upload = state
            .uploads
            .remove(upload_id)
            .ok_or_else(|| missing("CompleteMultipartUpload", bucket, key))?;
        let (mut data, mut md5s) = (Vec::new(), Vec::new());
        for p in &parts {
            let part = upload
                .parts
                .get(&p.number)
                .ok_or_else(|| missing("CompleteMultipartUpload", bucket, key))?;
            data.extend_from_slice(part);
            md5s.extend_from_slice(&Md5::digest(part));
        }
        // S3's multipart ETag: the MD5 of the parts' MD5s, and their count.
        let etag = self.etag(format!("{}-{}", hex::encode(Md5::digest(&md5s)), parts.len()));
        let crc = crc_text(&data);
        if crc64nvme.is_some_and(|c| c != crc) {
            return Err(ObjectStoreError::failed(
                "CompleteMultipartUpload",
                bucket,
                key,
                "BadDigest: the object's CRC64NVME does not match",
            ));
        }
        let stored = Stored {
            data: Bytes::from(data),
            crc64nvme: crc,
            etag: Some(etag.clone()),
        };
        state.objects.insert((upload.bucket, upload.key), stored);
        Ok(Some(etag))
    }

    async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> Result<(), ObjectStoreError> {
        self.lock()
            .uploads
            .remove(upload_id)
            .map(drop)
            .ok_or_else(|| missing("AbortMultipartUpload", bucket, key))
    }

    async fn open_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<OpenUpload>, ObjectStoreError> {
        let state = self.lock();
        let open = state
            .uploads
            .iter()
            .filter(|(_, u)| u.bucket == bucket && u.key.starts_with(prefix));
        Ok(open
            .map(|(id, u)| OpenUpload {
                key: u.key.clone(),
                upload_id: id.clone(),
            })
            .collect())
    }
}

impl ObjectStores for MemoryObjects {
    fn at(&self, _location: &StoreLocation) -> Arc<dyn ObjectStore> {
        Arc::new(self.clone())
    }
}

/// Secrets in memory, by name.
#[derive(Debug, Default)]
pub struct MemorySecrets {
    pub values: Mutex<HashMap<String, String>>,
}

#[async_trait]
impl SecretStore for MemorySecrets {
    async fn secret_value(&self, name: &str) -> Result<String, StoreError> {
        let values = self.values.lock().expect("secrets lock");
        values.get(name).cloned().ok_or_else(|| StoreError::Secret {
            name: name.to_owned(),
            message: "ResourceNotFoundException".into(),
        })
    }
}
