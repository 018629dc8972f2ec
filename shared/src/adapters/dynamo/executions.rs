//! Executions: the queue (Pending, oldest first), claims that take a slot in the same
//! transaction, leases, cancels, and ends that free the slot.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, Select, TransactWriteItem, Update};
use base64::Engine;

use super::control::SLOTS_PK;
use super::{build_err, cancelled_conditions, err, from_item, is_condition_failed, n, s, to_item, DynamoStore, Item};
use crate::domain::{Execution, ExecutionStatus, LogEntry, Stage};
use crate::error::StoreError;
use crate::ports::{
    CancelOutcome, ClaimOutcome, Completion, CreateOutcome, ExecutionPage, ExecutionQuery, ExecutionStore, Heartbeat, RenewOutcome,
};

/// The constant partition of the `all` index (attribute `listPartition`), so that every
/// execution can be listed newest first. An index key: it lives here, not on the domain type.
const LIST_PARTITION: &str = "executions";

/// An execution as stored: its fields, and the `all` index's partition.
fn execution_item(e: &Execution) -> Result<Item, StoreError> {
    let mut item = to_item(e)?;
    item.insert("listPartition".into(), s(LIST_PARTITION));
    Ok(item)
}

impl DynamoStore {
    /// Takes a slot while fewer than `max_running` are taken.
    fn take_slot(&self, max_running: u32) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(&self.tables.control)
            .key("pk", s(SLOTS_PK))
            .update_expression("SET running = if_not_exists(running, :zero) + :one")
            .condition_expression("attribute_not_exists(running) OR running < :max")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max_running))
            .build()
            .map_err(|e| build_err("TransactWriteItems", e))
    }

    /// Moves a Pending execution that was not cancelled to Running, owned by `owner`.
    fn claim_update(&self, id: &str, owner: &str, lease_expires_at: i64, now: &str) -> Result<Update, StoreError> {
        Update::builder()
            .table_name(&self.tables.executions)
            .key("id", s(id))
            .update_expression(
                "SET #st = :running, #owner = :owner, leaseExpiresAt = :lease, startedAt = :now, stage = :stage, progress = :zero",
            )
            .condition_expression("#st = :pending AND cancelRequested = :false")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":running", s("Running"))
            .expression_attribute_values(":pending", s("Pending"))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":lease", n(lease_expires_at))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":stage", s(Stage::Initializing.as_str()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .build()
            .map_err(|e| build_err("TransactWriteItems", e))
    }

    /// Ends a Running execution (owned by `owner`, or by anybody when `None`) and frees
    /// its slot in one transaction. Progress becomes 100 on Success/Partial and otherwise
    /// keeps its last value.
    async fn end_running(&self, id: &str, owner: Option<&str>, c: &Completion) -> Result<bool, StoreError> {
        let malformed = |e: serde_dynamo::Error| StoreError::Malformed(e.to_string());
        let finished = matches!(c.status, ExecutionStatus::Success | ExecutionStatus::Partial);
        let mut expression = String::from(
            "SET #status = :status, stage = :stage, endedAt = :ended, #duration = :duration, #size = :size, #path = :path, #error = :error, #items = :items",
        );
        if finished {
            expression.push_str(", progress = :hundred");
        }
        expression.push_str(" REMOVE leaseExpiresAt");
        let mut update = Update::builder()
            .table_name(&self.tables.executions)
            .key("id", s(id))
            .update_expression(expression)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#duration", "duration")
            .expression_attribute_names("#size", "size")
            .expression_attribute_names("#path", "path")
            .expression_attribute_names("#error", "error")
            .expression_attribute_names("#items", "items")
            .expression_attribute_values(":status", s(c.status.as_str()))
            .expression_attribute_values(":stage", serde_dynamo::to_attribute_value(c.stage).map_err(malformed)?)
            .expression_attribute_values(":ended", s(&c.ended_at))
            .expression_attribute_values(":duration", n(c.duration_ms))
            .expression_attribute_values(":size", c.size.map_or(AttributeValue::Null(true), n))
            .expression_attribute_values(":path", c.path.clone().map_or(AttributeValue::Null(true), s))
            .expression_attribute_values(":error", c.error.clone().map_or(AttributeValue::Null(true), s))
            .expression_attribute_values(":items", serde_dynamo::to_attribute_value(&c.items).map_err(malformed)?)
            .expression_attribute_values(":running", s("Running"));
        if finished {
            update = update.expression_attribute_values(":hundred", n(100));
        }
        update = match owner {
            Some(o) => update
                .condition_expression("#status = :running AND #owner = :owner")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":owner", s(o)),
            None => update.condition_expression("#status = :running"),
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .update(update.build().map_err(|e| build_err("TransactWriteItems", e))?)
                    .build(),
            )
            .transact_items(self.slot_release()?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if cancelled_conditions(&e).is_some_and(|c| c.first().copied().unwrap_or(false)) => Ok(false),
            Err(e) => Err(err("TransactWriteItems", e)),
        }
    }

    fn encode_cursor(key: &Item) -> Option<String> {
        let map: HashMap<&str, &str> = key
            .iter()
            .filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str())))
            .collect();
        if map.is_empty() {
            return None;
        }
        let json = serde_json::to_vec(&map).ok()?;
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    }

    fn decode_cursor(cursor: &str, allowed: &[&str]) -> Option<Item> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let map: HashMap<String, String> = serde_json::from_slice(&bytes).ok()?;
        // Exactly this listing's key attributes: a cursor missing one would reach
        // DynamoDB as an invalid start key.
        let exact = map.len() == allowed.len() && allowed.iter().all(|k| map.contains_key(*k));
        if !exact || map.values().any(|v| v.is_empty() || v.len() > 256) {
            return None;
        }
        Some(map.into_iter().map(|(k, v)| (k, s(v))).collect())
    }
}

#[async_trait]
impl ExecutionStore for DynamoStore {
    async fn create_pending(&self, e: &Execution, idempotency: Option<(&str, i64)>) -> Result<CreateOutcome, StoreError> {
        let put_exec = Put::builder()
            .table_name(&self.tables.executions)
            .set_item(Some(execution_item(e)?))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(|e| build_err("TransactWriteItems", e))?;
        let Some((key, expires_at)) = idempotency else {
            self.client
                .put_item()
                .table_name(&self.tables.executions)
                .set_item(Some(put_exec.item))
                .condition_expression("attribute_not_exists(id)")
                .send()
                .await
                .map_err(|e| err("PutItem", e))?;
            return Ok(CreateOutcome::Created);
        };
        let now = chrono::Utc::now().timestamp();
        let pk = format!("idempotency#{}#{key}", e.job_id);
        let put_idem = Put::builder()
            .table_name(&self.tables.control)
            .item("pk", s(&pk))
            .item("executionId", s(&e.id))
            .item("expiresAt", n(expires_at))
            // An expired key (TTL deletion is lazy) may be reused.
            .condition_expression("attribute_not_exists(pk) OR expiresAt < :now")
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(|e| build_err("TransactWriteItems", e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put_idem).build())
            .transact_items(TransactWriteItem::builder().put(put_exec).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(err_) if cancelled_conditions(&err_).is_some_and(|c| c.first().copied().unwrap_or(false)) => {
                #[derive(serde::Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Idem {
                    execution_id: String,
                }
                let existing: Option<Idem> = self.get(&self.tables.control, ("pk", s(&pk))).await?;
                existing
                    .map(|i| CreateOutcome::Existing(i.execution_id))
                    .ok_or_else(|| StoreError::Dynamo {
                        operation: "TransactWriteItems",
                        message: "idempotency record vanished".into(),
                    })
            }
            Err(e) => Err(err("TransactWriteItems", e)),
        }
    }

    async fn get_execution(&self, id: &str) -> Result<Option<Execution>, StoreError> {
        self.get(&self.tables.executions, ("id", s(id))).await
    }

    async fn list_executions(&self, q: &ExecutionQuery) -> Result<ExecutionPage, StoreError> {
        let (index, hash_attr, hash_value) = match (&q.job_id, q.status) {
            (Some(job), _) => ("by-job", "jobId", job.clone()),
            (None, Some(st)) => ("by-status", "status", st.as_str().to_owned()),
            (None, None) => ("all", "listPartition", LIST_PARTITION.to_owned()),
        };
        let mut req = self
            .client
            .query()
            .table_name(&self.tables.executions)
            .index_name(index)
            .key_condition_expression("#h = :h")
            .expression_attribute_names("#h", hash_attr)
            .expression_attribute_values(":h", s(hash_value))
            .scan_index_forward(false)
            .limit(i32::try_from(q.limit).unwrap_or(100));
        if let (Some(_), Some(st)) = (&q.job_id, q.status) {
            req = req
                .filter_expression("#st = :st")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":st", s(st.as_str()));
        }
        if let Some(c) = &q.cursor {
            let key = Self::decode_cursor(c, &["id", hash_attr, "queuedAt"]).ok_or(StoreError::BadCursor)?;
            req = req.set_exclusive_start_key(Some(key));
        }
        let out = req.send().await.map_err(|e| err("Query", e))?;
        let executions = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ExecutionPage {
            executions,
            next_cursor: out.last_evaluated_key.as_ref().and_then(Self::encode_cursor),
        })
    }

    async fn queue_position(&self, e: &Execution) -> Result<u64, StoreError> {
        let mut count = 0u64;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.tables.executions)
                .index_name("by-status")
                .key_condition_expression("#st = :p AND queuedAt < :q")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":p", s("Pending"))
                .expression_attribute_values(":q", s(&e.queued_at))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| err("Query", e))?;
            count += u64::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(count + 1)
    }

    async fn oldest_pending(&self, limit: u32) -> Result<Vec<Execution>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.executions)
            .index_name("by-status")
            .key_condition_expression("#st = :p")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":p", s("Pending"))
            .scan_index_forward(true)
            .limit(i32::try_from(limit).unwrap_or(10))
            .send()
            .await
            .map_err(|e| err("Query", e))?;
        out.items.unwrap_or_default().into_iter().map(from_item).collect()
    }

    async fn claim(&self, id: &str, owner: &str, lease_expires_at: i64, max_running: u32, now: &str) -> Result<ClaimOutcome, StoreError> {
        let _turn = self.slot_turn().await;
        // Cheap reads first, so the transaction below rarely fails: most attempts find the
        // slots full or the execution taken.
        if self.slots_running().await? >= max_running {
            return Ok(ClaimOutcome::NoSlot);
        }
        let mut exec = match self.get_execution(id).await? {
            Some(e) if e.status == ExecutionStatus::Pending && !e.cancel_requested => e,
            _ => return Ok(ClaimOutcome::NotPending),
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(self.take_slot(max_running)?).build())
            .transact_items(
                TransactWriteItem::builder()
                    .update(self.claim_update(id, owner, lease_expires_at, now)?)
                    .build(),
            )
            .send()
            .await;
        if let Err(e) = result {
            return match cancelled_conditions(&e) {
                Some(c) if c.get(1).copied().unwrap_or(false) => Ok(ClaimOutcome::NotPending),
                Some(c) if c.first().copied().unwrap_or(false) => Ok(ClaimOutcome::NoSlot),
                Some(_) => Ok(ClaimOutcome::Contended),
                None => Err(err("TransactWriteItems", e)),
            };
        }
        // The row is the one read above with the transaction's changes: its condition held,
        // so it was still Pending and not cancelled, and nothing else changes while Pending.
        // (No read back: the run starts one round trip sooner.)
        exec.status = ExecutionStatus::Running;
        exec.owner = Some(owner.to_owned());
        exec.lease_expires_at = Some(lease_expires_at);
        exec.started_at = Some(now.to_owned());
        exec.stage = Stage::Initializing;
        exec.progress = 0;
        Ok(ClaimOutcome::Claimed(Box::new(exec)))
    }

    async fn renew(&self, id: &str, owner: &str, beat: &Heartbeat) -> Result<RenewOutcome, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.executions)
            .key("id", s(id))
            // progress never goes down: max(stored, new) via a condition-free SET of the larger
            .update_expression("SET progress = :p, stage = :stage, bytesRead = :read, leaseExpiresAt = :lease")
            .condition_expression("#st = :running AND #owner = :owner AND progress <= :p")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":running", s("Running"))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":p", n(beat.progress))
            .expression_attribute_values(":stage", s(beat.stage.as_str()))
            .expression_attribute_values(":read", n(beat.bytes_read))
            .expression_attribute_values(":lease", n(beat.lease_expires_at))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => {
                let cancel = out
                    .attributes
                    .and_then(|a| a.get("cancelRequested").and_then(|v| v.as_bool().ok().copied()))
                    .unwrap_or(false);
                Ok(if cancel {
                    RenewOutcome::CancelRequested
                } else {
                    RenewOutcome::Continue
                })
            }
            Err(e) if is_condition_failed(&e) => {
                // Either the lease is lost, or progress would go down (a caller bug we do not
                // let through): tell them apart by reading the row.
                match self.get_execution(id).await? {
                    Some(x) if x.status == ExecutionStatus::Running && x.owner.as_deref() == Some(owner) => Ok(if x.cancel_requested {
                        RenewOutcome::CancelRequested
                    } else {
                        RenewOutcome::Continue
                    }),
                    _ => Ok(RenewOutcome::LeaseLost),
                }
            }
            Err(e) => Err(err("UpdateItem", e)),
        }
    }

    async fn complete(&self, id: &str, owner: &str, c: &Completion) -> Result<bool, StoreError> {
        let _turn = self.slot_turn().await;
        self.end_running(id, Some(owner), c).await
    }

    async fn request_cancel(&self, id: &str, now: &str) -> Result<CancelOutcome, StoreError> {
        // Pending: cancel at once.
        let pending = self
            .client
            .update_item()
            .table_name(&self.tables.executions)
            .key("id", s(id))
            .update_expression("SET #st = :cancelled, stage = :stage, endedAt = :now, #error = :msg, cancelRequested = :true")
            .condition_expression("#st = :pending")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":cancelled", s("Cancelled"))
            .expression_attribute_values(":pending", s("Pending"))
            .expression_attribute_values(":stage", s(Stage::Cancelled.as_str()))
            .expression_attribute_values(":now", s(now))
            .expression_attribute_values(":msg", s("Cancelled before it started"))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match pending {
            Ok(out) => return Ok(CancelOutcome::Cancelled(Box::new(from_item(out.attributes.unwrap_or_default())?))),
            Err(e) if is_condition_failed(&e) => {}
            Err(e) => return Err(err("UpdateItem", e)),
        }
        let running = self
            .client
            .update_item()
            .table_name(&self.tables.executions)
            .key("id", s(id))
            .update_expression("SET cancelRequested = :true")
            .condition_expression("#st = :running")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":running", s("Running"))
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match running {
            Ok(out) => Ok(CancelOutcome::Requested(Box::new(from_item(out.attributes.unwrap_or_default())?))),
            Err(e) if is_condition_failed(&e) => match self.get_execution(id).await? {
                Some(x) => Ok(CancelOutcome::AlreadyEnded(Box::new(x))),
                None => Ok(CancelOutcome::NotFound),
            },
            Err(e) => Err(err("UpdateItem", e)),
        }
    }

    async fn expired_running(&self, now_epoch: i64) -> Result<Vec<Execution>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.executions)
            .index_name("by-status")
            .key_condition_expression("#st = :r")
            .filter_expression("leaseExpiresAt < :now")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":r", s("Running"))
            .expression_attribute_values(":now", n(now_epoch))
            .send()
            .await
            .map_err(|e| err("Query", e))?;
        out.items.unwrap_or_default().into_iter().map(from_item).collect()
    }

    async fn fail_expired(&self, id: &str, c: &Completion) -> Result<bool, StoreError> {
        let _turn = self.slot_turn().await;
        self.end_running(id, None, c).await
    }

    async fn append_logs(&self, execution_id: &str, entries: &[LogEntry]) -> Result<(), StoreError> {
        self.write_logs(execution_id, entries).await
    }

    async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>, StoreError> {
        self.read_logs(execution_id).await
    }

    async fn record_finished(&self, e: &Execution) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.tables.executions)
            .set_item(Some(execution_item(e)?))
            .condition_expression("attribute_not_exists(id)")
            .send()
            .await
            .map_err(|e| err("PutItem", e))?;
        Ok(())
    }

    async fn mark_pruned(&self, id: &str, note: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.tables.executions)
            .key("id", s(id))
            .update_expression("SET pruned = :note")
            .expression_attribute_values(":note", s(note))
            .send()
            .await
            .map_err(|e| err("UpdateItem", e))?;
        Ok(())
    }
}
