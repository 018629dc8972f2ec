//! Execution events: every status change of an execution, told to whoever listens
//! (EventBridge in AWS). Users route them to SNS, Slack or a Lambda of their own; Cairn
//! knows none of those.
//!
//! [`PublishingExecutions`] wraps the execution store, so every writer of a status (the
//! service queueing and cancelling, the runner claiming and completing, the sweep) publishes
//! without knowing about events.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::stores::{
    CancelOutcome, ClaimOutcome, Completion, CreateOutcome, ExecutionPage, ExecutionQuery, ExecutionStore, Heartbeat, RenewOutcome,
};
use crate::domain::{Execution, ExecutionStatus, LogEntry};
use crate::error::StoreError;

/// `detail-type` of every execution event.
pub const DETAIL_TYPE: &str = "Cairn Execution State Change";
/// `source` of every execution event.
pub const SOURCE: &str = "cairn";

/// The longest a publish may hold up the writer of a status: a slow or absent bus costs a
/// run at most this per state change.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(3);

/// Where execution events go.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes one state change; `detail` is the execution as a poll answers it.
    ///
    /// # Errors
    /// The bus refused the event or could not be reached.
    async fn publish(&self, detail: &Value) -> Result<(), StoreError>;
}

/// An execution store that publishes each status change it writes. A failed publish is a
/// warning in the log: it never fails or undoes the write.
pub struct PublishingExecutions {
    inner: Arc<dyn ExecutionStore>,
    events: Arc<dyn EventPublisher>,
}

impl PublishingExecutions {
    pub fn new(inner: Arc<dyn ExecutionStore>, events: Arc<dyn EventPublisher>) -> Self {
        Self { inner, events }
    }

    async fn publish(&self, e: &Execution) {
        let mut detail = e.poll_shape();
        // As `GET /api/executions/{id}` answers it: a Pending execution says where it waits.
        if e.status == ExecutionStatus::Pending {
            if let Ok(position) = self.inner.queue_position(e).await {
                detail["queuePosition"] = position.into();
            }
        }
        self.publish_detail(e, &detail).await;
    }

    async fn publish_detail(&self, e: &Execution, detail: &Value) {
        let outcome = tokio::time::timeout(PUBLISH_TIMEOUT, self.events.publish(detail)).await;
        let error = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer within {} s", PUBLISH_TIMEOUT.as_secs()),
        };
        tracing::warn!(execution = %e.id, status = e.status.as_str(), %error, "could not publish the execution event");
    }

    /// Publishes the execution as it now stands (after a write that returns no copy).
    async fn publish_current(&self, id: &str) {
        match self.inner.get_execution(id).await {
            Ok(Some(e)) => self.publish(&e).await,
            Ok(None) => {}
            Err(err) => tracing::warn!(execution = id, error = %err, "could not read the execution to publish its event"),
        }
    }
}

#[async_trait]
impl ExecutionStore for PublishingExecutions {
    async fn create_pending(&self, e: &Execution, idempotency: Option<(&str, i64)>) -> Result<CreateOutcome, StoreError> {
        let outcome = self.inner.create_pending(e, idempotency).await?;
        if outcome == CreateOutcome::Created {
            self.publish(e).await;
        }
        Ok(outcome)
    }

    async fn get_execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        self.inner.get_execution(id).await
    }

    async fn list_executions(&self, q: &ExecutionQuery) -> Result<ExecutionPage, StoreError> {
        self.inner.list_executions(q).await
    }

    async fn queue_position(&self, e: &Execution) -> Result<u64, StoreError> {
        self.inner.queue_position(e).await
    }

    async fn oldest_pending(&self, limit: u32) -> Result<Vec<Execution>, StoreError> {
        self.inner.oldest_pending(limit).await
    }

    async fn claim(&self, id: &str, owner: &str, lease_expires_at: i64, max_running: u32, now: &str) -> Result<ClaimOutcome, StoreError> {
        let outcome = self.inner.claim(id, owner, lease_expires_at, max_running, now).await?;
        if let ClaimOutcome::Claimed(e) = &outcome {
            self.publish(e).await;
        }
        Ok(outcome)
    }

    async fn renew(&self, id: &str, owner: &str, beat: &Heartbeat) -> Result<RenewOutcome, StoreError> {
        self.inner.renew(id, owner, beat).await
    }

    async fn complete(&self, id: &str, owner: &str, c: &Completion) -> Result<bool, StoreError> {
        let completed = self.inner.complete(id, owner, c).await?;
        if completed {
            self.publish_current(id).await;
        }
        Ok(completed)
    }

    async fn request_cancel(&self, id: &str, now: &str) -> Result<CancelOutcome, StoreError> {
        let outcome = self.inner.request_cancel(id, now).await?;
        if let CancelOutcome::Cancelled(e) = &outcome {
            self.publish(e).await;
        }
        Ok(outcome)
    }

    async fn expired_running(&self, now_epoch: i64) -> Result<Vec<Execution>, StoreError> {
        self.inner.expired_running(now_epoch).await
    }

    async fn fail_expired(&self, id: &str, c: &Completion) -> Result<bool, StoreError> {
        let ended = self.inner.fail_expired(id, c).await?;
        if ended {
            self.publish_current(id).await;
        }
        Ok(ended)
    }

    async fn append_logs(&self, execution_id: &str, entries: &[LogEntry]) -> Result<(), StoreError> {
        self.inner.append_logs(execution_id, entries).await
    }

    async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>, StoreError> {
        self.inner.logs(execution_id).await
    }

    async fn record_finished(&self, e: &Execution) -> Result<(), StoreError> {
        self.inner.record_finished(e).await?;
        self.publish(e).await;
        Ok(())
    }

    async fn mark_pruned(&self, id: &str, note: &str) -> Result<(), StoreError> {
        self.inner.mark_pruned(id, note).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::domain::{ExecutionType, Stage, Trigger};
    use crate::ports::memory::MemoryStore;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<Value>>);

    #[async_trait]
    impl EventPublisher for Recorded {
        async fn publish(&self, detail: &Value) -> Result<(), StoreError> {
            self.0.lock().unwrap().push(detail.clone());
            Ok(())
        }
    }

    struct Down;

    #[async_trait]
    impl EventPublisher for Down {
        async fn publish(&self, _detail: &Value) -> Result<(), StoreError> {
            Err(StoreError::Events("connection refused".into()))
        }
    }

    fn pending(id: &str) -> Execution {
        Execution::pending(
            id.into(),
            "job".into(),
            "nightly".into(),
            ExecutionType::Backup,
            Trigger::Cli,
            "2026-12-01T00:00:00Z",
        )
    }

    fn completion(status: ExecutionStatus) -> Completion {
        Completion {
            status,
            stage: Stage::Completed,
            ended_at: "2026-12-01T00:01:00Z".into(),
            duration_ms: 60_000,
            size: Some(10),
            path: None,
            error: None,
            items: Vec::new(),
        }
    }

    #[tokio::test]
    async fn queue_claim_and_end_each_publish_the_poll_shape_in_order() {
        let recorded = Arc::new(Recorded::default());
        let store = PublishingExecutions::new(Arc::new(MemoryStore::default()), recorded.clone());
        store.create_pending(&pending("e1"), None).await.unwrap();
        assert!(matches!(
            store.claim("e1", "me", i64::MAX, 3, "2026-12-01T00:00:01Z").await.unwrap(),
            ClaimOutcome::Claimed(_)
        ));
        let beat = Heartbeat {
            progress: 50,
            stage: Stage::Uploading,
            bytes_read: 1 << 20,
            lease_expires_at: i64::MAX,
        };
        store.renew("e1", "me", &beat).await.unwrap();
        assert!(store.complete("e1", "me", &completion(ExecutionStatus::Success)).await.unwrap());
        store.create_pending(&pending("e2"), None).await.unwrap();
        store.request_cancel("e2", "2026-12-01T00:02:00Z").await.unwrap();

        let events = recorded.0.lock().unwrap().clone();
        let seen: Vec<(&str, &str)> = events
            .iter()
            .map(|d| (d["id"].as_str().unwrap(), d["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            seen,
            [
                ("e1", "Pending"),
                ("e1", "Running"),
                ("e1", "Success"),
                ("e2", "Pending"),
                ("e2", "Cancelled")
            ]
        );
        assert_eq!(events[0]["queuePosition"], 1, "a queued event says where it waits");
        assert!(events[1].get("queuePosition").is_none());
        assert_eq!(events[2]["size"], 10);
        assert_eq!(events[2]["trigger"], serde_json::to_value(Trigger::Cli).unwrap());
    }

    #[tokio::test]
    async fn an_execution_the_sweep_ends_is_published_too() {
        let recorded = Arc::new(Recorded::default());
        let store = PublishingExecutions::new(Arc::new(MemoryStore::default()), recorded.clone());
        store.create_pending(&pending("e1"), None).await.unwrap();
        store.claim("e1", "gone", 0, 3, "2026-12-01T00:00:01Z").await.unwrap();
        assert!(store.fail_expired("e1", &completion(ExecutionStatus::Failed)).await.unwrap());
        let last = recorded.0.lock().unwrap().last().cloned().unwrap();
        assert_eq!((last["id"].as_str(), last["status"].as_str()), (Some("e1"), Some("Failed")));
    }

    #[tokio::test]
    async fn a_bus_that_is_down_never_fails_the_write() {
        let store = PublishingExecutions::new(Arc::new(MemoryStore::default()), Arc::new(Down));
        store.create_pending(&pending("e1"), None).await.unwrap();
        assert!(matches!(
            store.claim("e1", "me", i64::MAX, 3, "2026-12-01T00:00:01Z").await.unwrap(),
            ClaimOutcome::Claimed(_)
        ));
        assert!(store.complete("e1", "me", &completion(ExecutionStatus::Failed)).await.unwrap());
        assert_eq!(store.get_execution("e1").await.unwrap().unwrap().status, ExecutionStatus::Failed);
    }
}
