//! DynamoDB implementations of the store ports, one file per table family. Failed
//! conditional writes become domain outcomes (already claimed, no slot, not found), never
//! error strings.
//!
//! # Layout
//! - [`catalog`]: jobs, hooks and destinations (keyed by id).
//! - [`keys`]: API keys (keyed by hash, with a by-id index).
//! - [`control`]: the control table: rate-limit counters, settings, the slot counter.
//! - [`executions`]: executions, their queue, claims and leases.
//! - [`logs`]: execution log entries.

mod catalog;
mod control;
mod executions;
mod keys;
mod logs;

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::tables::TableNames;
use crate::error::StoreError;

type Item = HashMap<String, AttributeValue>;

/// Every store port on DynamoDB tables named by [`TableNames`].
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: TableNames,
    /// See [`DynamoStore::serialize_counter_writes`].
    slot_writes: Option<Arc<tokio::sync::Mutex<()>>>,
    /// The same for the rate-limit counters, apart so requests never wait on the runner.
    rate_writes: Option<Arc<tokio::sync::Mutex<()>>>,
}

async fn turn(lock: Option<&tokio::sync::Mutex<()>>) -> Option<tokio::sync::MutexGuard<'_, ()>> {
    match lock {
        Some(lock) => Some(lock.lock().await),
        None => None,
    }
}

pub(super) fn err<E>(operation: &'static str, e: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    StoreError::Dynamo {
        operation,
        message: super::sdk_failure(e),
    }
}

pub(super) fn build_err(operation: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Dynamo {
        operation,
        message: format!("request could not be built: {e}"),
    }
}

pub(super) fn to_item<T: Serialize>(v: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(v).map_err(|e| StoreError::Malformed(e.to_string()))
}

pub(super) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Malformed(e.to_string()))
}

pub(super) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(super) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Whether an SDK error is a failed condition check.
pub(super) fn is_condition_failed<E: ProvideErrorMetadata>(e: &aws_sdk_dynamodb::error::SdkError<E>) -> bool {
    e.as_service_error().and_then(ProvideErrorMetadata::code) == Some("ConditionalCheckFailedException")
}

/// For a cancelled transaction, the failed condition's positions.
pub(super) fn cancelled_conditions(
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
        Self {
            client,
            tables,
            slot_writes: None,
            rate_writes: None,
        }
    }

    /// Makes this process's writes to the counters (the slot counter's claims, completions
    /// and sweep verdicts; the rate limiter's hits) go one at a time. DynamoDB's conditions
    /// and atomic `ADD` already keep them apart; this keeps a process's own drainers from
    /// contending for the slot item, and keeps moto exact: its threaded server applies an
    /// `ADD` as an unlocked read-modify-write (two parallel hits can count once, letting a
    /// request past the limit), and its failed transactions restore the whole tables they
    /// touched, undoing concurrent writes. Harmless on real DynamoDB: a Lambda process
    /// serves one request at a time.
    pub fn serialize_counter_writes(mut self) -> Self {
        self.slot_writes = Some(Arc::new(tokio::sync::Mutex::new(())));
        self.rate_writes = Some(Arc::new(tokio::sync::Mutex::new(())));
        self
    }

    /// Holds the slot-write lock, when [`Self::serialize_counter_writes`] asked for one.
    pub(super) async fn slot_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        turn(self.slot_writes.as_deref()).await
    }

    /// Holds the rate-limit lock, when [`Self::serialize_counter_writes`] asked for one.
    pub(super) async fn rate_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        turn(self.rate_writes.as_deref()).await
    }

    pub fn tables(&self) -> &TableNames {
        &self.tables
    }

    pub(super) async fn get<T: DeserializeOwned>(&self, table: &str, key: (&str, AttributeValue)) -> Result<Option<T>, StoreError> {
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

    pub(super) async fn scan_all<T: DeserializeOwned>(&self, table: &str) -> Result<Vec<T>, StoreError> {
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

    pub(super) async fn put_new<T: Serialize>(&self, table: &str, hash_key: &str, v: &T) -> Result<(), StoreError> {
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
    pub(super) async fn put_existing<T: Serialize>(&self, table: &str, v: &T) -> Result<bool, StoreError> {
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

    pub(super) async fn delete_existing(&self, table: &str, key: (&str, AttributeValue)) -> Result<bool, StoreError> {
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
}
