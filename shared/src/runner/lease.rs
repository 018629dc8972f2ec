//! What a running execution shares with its heartbeat, and the heartbeat itself: every
//! second it writes the batched logs, renews the lease with progress and stage, and
//! learns of cancels and of a lost lease.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{error, info, warn};

use crate::domain::{LogEntry, LogLevel, Stage};
use crate::engine::Signals;
use crate::ports::{ExecutionStore, Heartbeat, RenewOutcome};
use crate::time;

/// Progress points: 0-10 before the data, 10-90 while items stream, then verification,
/// retention and post hooks.
pub(super) const DATA_START: u8 = 10;
pub(super) const DATA_END: u8 = 90;

/// What the heartbeat and the work share while an execution runs.
pub(super) struct RunState {
    pub execution_id: String,
    pub signals: Arc<Signals>,
    logs: Mutex<Vec<LogEntry>>,
    stage: Mutex<Stage>,
    pub progress: AtomicU8,
    pub items_total: AtomicUsize,
    pub item_index: AtomicUsize,
    /// Source bytes of the current item when known (directories), 0 otherwise.
    pub item_bytes: AtomicU64,
    cancel_requested: AtomicBool,
    pub lease_lost: AtomicBool,
    /// Set when the Lambda time limit stopped the work.
    pub time_limit_reached: AtomicBool,
    /// Source bytes of the items that ended (the current one is in `signals`).
    read_before: AtomicU64,
}

impl RunState {
    pub fn new(execution_id: &str) -> Self {
        Self {
            execution_id: execution_id.to_owned(),
            signals: Signals::new(),
            logs: Mutex::new(Vec::new()),
            stage: Mutex::new(Stage::Initializing),
            progress: AtomicU8::new(0),
            items_total: AtomicUsize::new(1),
            item_index: AtomicUsize::new(0),
            item_bytes: AtomicU64::new(0),
            cancel_requested: AtomicBool::new(false),
            lease_lost: AtomicBool::new(false),
            time_limit_reached: AtomicBool::new(false),
            read_before: AtomicU64::new(0),
        }
    }

    pub fn stage(&self) -> Stage {
        *self.stage.lock().expect("stage lock")
    }

    /// Sets the stage, also backwards (for the end states).
    pub fn set_stage(&self, stage: Stage) {
        *self.stage.lock().expect("stage lock") = stage;
    }

    /// Adds an entry to the execution's log (written by the next beat) and to the
    /// process's log, under the current stage.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        let message = message.into();
        let stage = self.stage();
        let id = &self.execution_id;
        match level {
            LogLevel::Info => info!(execution_id = %id, stage = stage.as_str(), "{message}"),
            LogLevel::Warning => warn!(execution_id = %id, stage = stage.as_str(), "{message}"),
            LogLevel::Error => error!(execution_id = %id, stage = stage.as_str(), "{message}"),
        }
        self.logs.lock().expect("log lock").push(LogEntry {
            timestamp: time::iso(time::now()),
            level,
            stage,
            message,
        });
    }

    /// Moves to `stage` (never backwards) and raises progress to at least `progress`.
    pub fn advance(&self, stage: Stage, progress: u8) {
        let mut s = self.stage.lock().expect("stage lock");
        if stage > *s {
            *s = stage;
        }
        self.progress.fetch_max(progress, Ordering::Relaxed);
    }

    /// Raises progress to at least `progress`.
    pub fn raise_progress(&self, progress: u8) {
        self.progress.fetch_max(progress, Ordering::Relaxed);
    }

    /// Progress from the bytes read of the current item, where its size is known.
    pub fn data_progress(&self) {
        let total_items = self.items_total.load(Ordering::Relaxed).max(1) as u64;
        let index = self.item_index.load(Ordering::Relaxed) as u64;
        let item_bytes = self.item_bytes.load(Ordering::Relaxed);
        let read = self.signals.input_bytes.load(Ordering::Relaxed).min(item_bytes);
        let within = (read * 1000).checked_div(item_bytes).unwrap_or(0);
        let span = u64::from(DATA_END - DATA_START);
        let p = u64::from(DATA_START) + span * (index * 1000 + within) / (total_items * 1000);
        self.raise_progress(u8::try_from(p.min(u64::from(DATA_END))).unwrap_or(DATA_END));
        if self.signals.uploaded_bytes.load(Ordering::Relaxed) > 0 {
            self.advance(Stage::Uploading, 0);
        }
    }

    /// Starts item `index`: its byte count and size are not known yet.
    pub fn start_item(&self, index: usize) {
        self.item_index.store(index, Ordering::Relaxed);
        self.item_bytes.store(0, Ordering::Relaxed);
        self.signals.input_bytes.store(0, Ordering::Relaxed);
    }

    /// Ends item `index`.
    pub fn end_item(&self, index: usize) {
        self.take_item_bytes();
        self.item_index.store(index + 1, Ordering::Relaxed);
        self.item_bytes.store(0, Ordering::Relaxed);
        self.data_progress();
    }

    /// Ends the current item's byte count: answers it, and adds it to [`Self::bytes_read`].
    pub fn take_item_bytes(&self) -> u64 {
        let n = self.signals.input_bytes.swap(0, Ordering::Relaxed);
        self.read_before.fetch_add(n, Ordering::Relaxed);
        n
    }

    /// Source bytes read so far, over every item.
    pub fn bytes_read(&self) -> u64 {
        self.read_before.load(Ordering::Relaxed) + self.signals.input_bytes.load(Ordering::Relaxed)
    }

    pub fn cancelled(&self) -> bool {
        self.signals.cancelled()
    }
}

/// Writes the entries logged since the last flush; on failure they are kept for the next.
pub(super) async fn flush_logs(store: &dyn ExecutionStore, state: &RunState) {
    let batch: Vec<LogEntry> = std::mem::take(&mut *state.logs.lock().expect("log lock"));
    if batch.is_empty() {
        return;
    }
    if let Err(e) = store.append_logs(&state.execution_id, &batch).await {
        warn!(execution_id = %state.execution_id, error = %e, "could not write log entries; retrying at the next beat");
        let mut logs = state.logs.lock().expect("log lock");
        let newer = std::mem::take(&mut *logs);
        *logs = batch;
        logs.extend(newer);
    }
}

/// Every second: write logs, renew the lease with progress and stage, and learn of
/// cancels, until `stop` is notified or the lease is lost. A renewal that fails is tried
/// again the next second; only when none succeeded before the lease ran out is the lease
/// lost (the sweep may fail the execution from then on).
pub(super) async fn heartbeat(store: Arc<dyn ExecutionStore>, owner: String, lease_seconds: u64, state: Arc<RunState>, stop: Arc<Notify>) {
    let lease = i64::try_from(lease_seconds).unwrap_or(30);
    // The claim has just set the lease.
    let mut valid_until = time::now().timestamp() + lease;
    // One renewal may not hold up the logs and cancels for long, retries included.
    let renewal_limit = Duration::from_secs((lease_seconds / 3).clamp(1, 10));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            _ = tick.tick() => {}
        }
        state.data_progress();
        flush_logs(store.as_ref(), &state).await;
        let beat = Heartbeat {
            progress: state.progress.load(Ordering::Relaxed).min(99),
            stage: state.stage(),
            bytes_read: state.bytes_read(),
            lease_expires_at: time::now().timestamp() + lease,
        };
        let renewed = tokio::time::timeout(renewal_limit, store.renew(&state.execution_id, &owner, &beat)).await;
        let renewed = renewed.unwrap_or_else(|_| {
            Err(crate::error::StoreError::Dynamo {
                operation: "UpdateItem",
                message: format!("no answer in {} s", renewal_limit.as_secs()),
            })
        });
        if matches!(renewed, Ok(RenewOutcome::Continue | RenewOutcome::CancelRequested)) {
            valid_until = beat.lease_expires_at;
        }
        match renewed {
            Ok(RenewOutcome::Continue) => {}
            Ok(RenewOutcome::CancelRequested) => {
                if !state.cancel_requested.swap(true, Ordering::Relaxed) {
                    state.log(LogLevel::Warning, "Cancel requested; stopping");
                    state.signals.cancel.store(true, Ordering::Relaxed);
                }
            }
            Ok(RenewOutcome::LeaseLost) => {
                lose_lease(&state, "lease lost; stopping");
                return;
            }
            Err(e) if time::now().timestamp() + 1 >= valid_until => {
                warn!(execution_id = %state.execution_id, error = %e, "could not renew the lease");
                lose_lease(&state, "the lease ran out before it could be renewed; stopping");
                return;
            }
            Err(e) => warn!(execution_id = %state.execution_id, error = %e, "could not renew the lease; trying again"),
        }
    }
}

/// Stops the work: another runner (or the sweep) may own the execution now.
fn lose_lease(state: &RunState, why: &str) {
    state.lease_lost.store(true, Ordering::Relaxed);
    state.signals.cancel.store(true, Ordering::Relaxed);
    warn!(execution_id = %state.execution_id, "{why}");
}
