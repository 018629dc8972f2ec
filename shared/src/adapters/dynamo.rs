//! DynamoDB implementations of the store traits. Failed conditional writes become domain
//! outcomes (already claimed, no slot, not found), never error strings.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, Put, PutRequest, ReturnValue, Select, TransactWriteItem, Update, WriteRequest};
use aws_sdk_dynamodb::Client;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::tables::TableNames;
use crate::error::StoreError;
use crate::model::Hook;
use crate::model::{ApiKey, Destination, Execution, ExecutionStatus, Job, LogEntry, Settings, Stage};
use crate::store::{
    CancelOutcome, ClaimOutcome, Completion, CreateOutcome, DestinationRepository, ExecutionPage, ExecutionQuery, ExecutionStore,
    HookRepository, JobRepository, KeyStore, RateLimiter, RenewOutcome, SettingsStore,
};

type Item = HashMap<String, AttributeValue>;

const SETTINGS_PK: &str = "settings";
const SLOTS_PK: &str = "slots";

/// Every store trait on DynamoDB tables named by [`TableNames`].
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
}

fn err<E: ProvideErrorMetadata + std::error::Error>(operation: &'static str, e: E) -> StoreError {
    StoreError::Dynamo {
        operation,
        message: super::sdk_error_text(e),
    }
}

fn build_err(operation: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Dynamo {
        operation,
        message: format!("request could not be built: {e}"),
    }
}

fn to_item<T: Serialize>(v: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(v).map_err(|e| StoreError::Malformed(e.to_string()))
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed(e.to_string()))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Whether an SDK error is a failed condition check.
fn is_condition_failed<E: ProvideErrorMetadata>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool {
    e.as_service_error().and_then(ProvideErrorMetadata::code) == Some("ConditionalCheckFailedException")
}

/// For a cancelled transaction, the failed condition's positions.
fn cancelled_conditions(
    e: &aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError>,
) -> Option<Vec<bool>> {
    match e.as_service_error() {
        Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t)) => Some(
            t.cancellation_reasons()
                .iter()
                .map(|r| r.code() == Some("ConditionalCheckFailed"))
                .collect(),
        ),
        _ => None,
    }
}

impl DynamoStore {
    pub fn new(client: Client, tables: TableNames) -> Self {
        Self { client, tables }
    }

    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    async fn get<T: DeserializeOwned>(&self, table: &str, key: (&str, AttributeValue)) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(table)
            .key(key.0, key.1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err("GetItem", e))?;
        out.item.map(from_item).transpose()
    }

    async fn scan_all<T: DeserializeOwned>(&self, table: &str) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| err("Scan", e))?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn put_new<T: Serialize>(&self, table: &str, hash_key: &str, v: &T) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(to_item(v)?))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", hash_key)
            .send()
            .await
            .map_err(|e| err("PutItem", e))?;
        Ok(())
    }

    /// Replaces an item that exists (by `id`); `false` when there is none.
    async fn put_existing<T: Serialize>(&self, table: &str, v: &T) -> Result<bool, StoreError> {
        match self
            .client
            .put_item()
            .table_name(table)
            .set_item(Some(to_item(v)?))
            .condition_expression("attribute_exists(id)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(err("PutItem", e)),
        }
    }

    async fn delete_existing(&self, table: &str, key: (&str, AttributeValue)) -> Result<bool, StoreError> {
        match self
            .client
            .delete_item()
            .table_name(table)
            .key(key.0, key.1)
            .condition_expression("attribute_exists(#k)")
            .expression_attribute_names("#k", key.0)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(err("DeleteItem", e)),
        }
    }

    fn slot_release(&self) -> Result<TransactWriteItem, StoreError> {
        Ok(TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&self.tables.control)
                    .key("pk", s(SLOTS_PK))
                    .update_expression("SET running = running - :one")
                    .condition_expression("running > :zero")
                    .expression_attribute_values(":one", n(1))
                    .expression_attribute_values(":zero", n(0))
                    .build()
                    .map_err(|e| build_err("TransactWriteItems", e))?,
            )
            .build())
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
        if map.is_empty() || map.keys().any(|k| !allowed.contains(&k.as_str())) || map.values().any(|v| v.len() > 256) {
            return None;
        }
        Some(map.into_iter().map(|(k, v)| (k, s(v))).collect())
    }
}

/// A cursor that does not decode to this listing's keys.
pub const BAD_CURSOR: &str = "cursor is not one this API returned";

#[async_trait]
impl JobRepository for DynamoStore {
    async fn create_job(&self, job: &Job) -> Result<(), StoreError> {
        self.put_new(&self.tables.jobs, "id", job).await
    }

    async fn replace_job(&self, job: &Job) -> Result<bool, StoreError> {
        self.put_existing(&self.tables.jobs, job).await
    }

    async fn get_job(&self, id: &str) -> Result<Option<Job>, StoreError> {
        self.get(&self.tables.jobs, ("id", s(id))).await
    }

    async fn list_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let mut jobs: Vec<Job> = self.scan_all(&self.tables.jobs).await?;
        jobs.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(jobs)
    }

    async fn delete_job(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_existing(&self.tables.jobs, ("id", s(id))).await
    }

    async fn advance_schedule(&self, id: &str, expected: Option<&str>, next: &str) -> Result<bool, StoreError> {
        let req = self
            .client
            .update_item()
            .table_name(&self.tables.jobs)
            .key("id", s(id))
            .update_expression("SET nextRunAt = :next")
            .expression_attribute_values(":next", s(next));
        let req = match expected {
            Some(e) => req
                .condition_expression("nextRunAt = :expected")
                .expression_attribute_values(":expected", s(e)),
            None => req.condition_expression("attribute_exists(id) AND attribute_not_exists(nextRunAt)"),
        };
        match req.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(err("UpdateItem", e)),
        }
    }
}

#[async_trait]
impl HookRepository for DynamoStore {
    async fn create_hook(&self, hook: &Hook) -> Result<(), StoreError> {
        self.put_new(&self.tables.hooks, "id", hook).await
    }

    async fn replace_hook(&self, hook: &Hook) -> Result<bool, StoreError> {
        self.put_existing(&self.tables.hooks, hook).await
    }

    async fn get_hook(&self, id: &str) -> Result<Option<Hook>, StoreError> {
        self.get(&self.tables.hooks, ("id", s(id))).await
    }

    async fn list_hooks(&self) -> Result<Vec<Hook>, StoreError> {
        let mut all: Vec<Hook> = self.scan_all(&self.tables.hooks).await?;
        all.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        Ok(all)
    }

    async fn delete_hook(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_existing(&self.tables.hooks, ("id", s(id))).await
    }
}

#[async_trait]
impl DestinationRepository for DynamoStore {
    async fn create_destination(&self, d: &Destination) -> Result<(), StoreError> {
        self.put_new(&self.tables.destinations, "id", d).await
    }

    async fn get_destination(&self, id: &str) -> Result<Option<Destination>, StoreError> {
        self.get(&self.tables.destinations, ("id", s(id))).await
    }

    async fn list_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        let mut all: Vec<Destination> = self.scan_all(&self.tables.destinations).await?;
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(all)
    }

    async fn delete_destination(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_existing(&self.tables.destinations, ("id", s(id))).await
    }
}

#[async_trait]
impl KeyStore for DynamoStore {
    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        self.put_new(&self.tables.keys, "keyHash", key).await
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.get(&self.tables.keys, ("keyHash", s(hash))).await
    }

    async fn key_by_id(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.keys)
            .index_name("by-id")
            .key_condition_expression("id = :id")
            .expression_attribute_values(":id", s(id))
            .send()
            .await
            .map_err(|e| err("Query", e))?;
        out.items.unwrap_or_default().into_iter().next().map(from_item).transpose()
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let mut all: Vec<ApiKey> = self.scan_all(&self.tables.keys).await?;
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        Ok(all)
    }

    async fn set_key_enabled(&self, id: &str, enabled: bool) -> Result<bool, StoreError> {
        let Some(key) = self.key_by_id(id).await? else {
            return Ok(false);
        };
        match self
            .client
            .update_item()
            .table_name(&self.tables.keys)
            .key("keyHash", s(&key.key_hash))
            .update_expression("SET enabled = :e")
            .condition_expression("attribute_exists(keyHash)")
            .expression_attribute_values(":e", AttributeValue::Bool(enabled))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(err("UpdateItem", e)),
        }
    }

    async fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        let Some(key) = self.key_by_id(id).await? else {
            return Ok(false);
        };
        self.delete_existing(&self.tables.keys, ("keyHash", s(&key.key_hash))).await
    }

    async fn touch_key(&self, hash: &str, now: &str) -> Result<(), StoreError> {
        match self
            .client
            .update_item()
            .table_name(&self.tables.keys)
            .key("keyHash", s(hash))
            .update_expression("SET lastUsedAt = :now")
            .condition_expression("attribute_exists(keyHash)")
            .expression_attribute_values(":now", s(now))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(err("UpdateItem", e)),
        }
    }
}

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn hit(&self, bucket: &str, expires_at: i64) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.tables.control)
            .key("pk", s(format!("ratelimit#{bucket}")))
            .update_expression("ADD hits :one SET expiresAt = if_not_exists(expiresAt, :exp)")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires_at))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| err("UpdateItem", e))?;
        out.attributes
            .and_then(|a| a.get("hits").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()))
            .ok_or_else(|| StoreError::Malformed("rate-limit counter without hits".into()))
    }
}

#[async_trait]
impl SettingsStore for DynamoStore {
    async fn settings(&self) -> Result<Settings, StoreError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Stored {
            max_concurrent_jobs: u32,
        }
        let stored: Option<Stored> = self.get(&self.tables.control, ("pk", s(SETTINGS_PK))).await?;
        Ok(stored.map_or_else(Settings::default, |s| Settings {
            max_concurrent_jobs: s.max_concurrent_jobs,
        }))
    }

    async fn put_settings(&self, settings: &Settings) -> Result<(), StoreError> {
        let mut item = to_item(settings)?;
        item.insert("pk".into(), s(SETTINGS_PK));
        self.client
            .put_item()
            .table_name(&self.tables.control)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| err("PutItem", e))?;
        Ok(())
    }
}

#[async_trait]
impl ExecutionStore for DynamoStore {
    async fn create_pending(&self, e: &Execution, idempotency: Option<(&str, i64)>) -> Result<CreateOutcome, StoreError> {
        let put_exec = Put::builder()
            .table_name(&self.tables.executions)
            .set_item(Some(to_item(e)?))
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
            (None, None) => ("all", "listPartition", Execution::list_partition()),
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
            let key = Self::decode_cursor(c, &["id", hash_attr, "queuedAt"]).ok_or_else(|| StoreError::Malformed(BAD_CURSOR.into()))?;
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
        // Cheap reads first, so the transaction below rarely fails: most attempts find the
        // slots full or the execution taken.
        let running = self
            .client
            .get_item()
            .table_name(&self.tables.control)
            .key("pk", s(SLOTS_PK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err("GetItem", e))?
            .item
            .and_then(|i| i.get("running").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u32>().ok()))
            .unwrap_or(0);
        if running >= max_running {
            return Ok(ClaimOutcome::NoSlot);
        }
        let mut exec = match self.get_execution(id).await? {
            Some(e) if e.status == ExecutionStatus::Pending && !e.cancel_requested => e,
            _ => return Ok(ClaimOutcome::NotPending),
        };
        let take_slot = Update::builder()
            .table_name(&self.tables.control)
            .key("pk", s(SLOTS_PK))
            .update_expression("SET running = if_not_exists(running, :zero) + :one")
            .condition_expression("attribute_not_exists(running) OR running < :max")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(max_running))
            .build()
            .map_err(|e| build_err("TransactWriteItems", e))?;
        let claim = Update::builder()
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
            .map_err(|e| build_err("TransactWriteItems", e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(take_slot).build())
            .transact_items(TransactWriteItem::builder().update(claim).build())
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) => {
                return match cancelled_conditions(&e) {
                    Some(c) if c.get(1).copied().unwrap_or(false) => Ok(ClaimOutcome::NotPending),
                    Some(c) if c.first().copied().unwrap_or(false) => Ok(ClaimOutcome::NoSlot),
                    Some(_) => Ok(ClaimOutcome::Contended),
                    None => Err(err("TransactWriteItems", e)),
                };
            }
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

    async fn renew(&self, id: &str, owner: &str, progress: u8, stage: Stage, lease_expires_at: i64) -> Result<RenewOutcome, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.tables.executions)
            .key("id", s(id))
            // progress never goes down: max(stored, new) via a condition-free SET of the larger
            .update_expression("SET progress = :p, stage = :stage, leaseExpiresAt = :lease")
            .condition_expression("#st = :running AND #owner = :owner AND progress <= :p")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":running", s("Running"))
            .expression_attribute_values(":owner", s(owner))
            .expression_attribute_values(":p", n(progress))
            .expression_attribute_values(":stage", s(stage.as_str()))
            .expression_attribute_values(":lease", n(lease_expires_at))
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

    async fn append_logs(&self, execution_id: &str, entries: &[LogEntry]) -> Result<(), StoreError> {
        let base = chrono::Utc::now().timestamp_micros();
        let salt: u16 = rand::random();
        let mut requests = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let mut item = to_item(entry)?;
            item.insert("executionId".into(), s(execution_id));
            // Sortable, unique across writers: time, position in batch, random salt.
            item.insert("seq".into(), s(format!("{base:020}-{i:05}-{salt:04x}")));
            requests.push(
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .map_err(|e| build_err("BatchWriteItem", e))?,
                    )
                    .build(),
            );
        }
        for chunk in requests.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk.to_vec();
            for attempt in 0..8 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.tables.logs, pending.clone())
                    .send()
                    .await
                    .map_err(|e| err("BatchWriteItem", e))?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.tables.logs))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
            }
            if !pending.is_empty() {
                return Err(StoreError::Dynamo {
                    operation: "BatchWriteItem",
                    message: format!("{} log entries left unprocessed", pending.len()),
                });
            }
        }
        Ok(())
    }

    async fn logs(&self, execution_id: &str) -> Result<Vec<LogEntry>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.tables.logs)
                .key_condition_expression("executionId = :id")
                .expression_attribute_values(":id", s(execution_id))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| err("Query", e))?;
            for mut item in page.items.unwrap_or_default() {
                item.remove("executionId");
                item.remove("seq");
                out.push(from_item(item)?);
            }
            match page.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn fail_expired(&self, id: &str, c: &Completion) -> Result<bool, StoreError> {
        self.end_running(id, None, c).await
    }

    async fn record_finished(&self, e: &Execution) -> Result<(), StoreError> {
        self.put_new(&self.tables.executions, "id", e).await
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
