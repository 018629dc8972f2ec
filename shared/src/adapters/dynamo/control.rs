//! The control table: rate-limit counters, settings, idempotency records and the slot
//! counter (how many executions run), small keyed records that the same conditional
//! writes and transactions touch together.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, TransactWriteItem, Update};

use super::{build_err, err, n, s, to_item, DynamoStore};
use crate::domain::Settings;
use crate::error::StoreError;
use crate::ports::{RateLimiter, SettingsStore};

const SETTINGS_PK: &str = "settings";
pub(super) const SLOTS_PK: &str = "slots";

impl DynamoStore {
    /// The transaction item that frees one slot.
    pub(super) fn slot_release(&self) -> Result<TransactWriteItem, StoreError> {
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

    /// How many executions hold a slot now (a strongly consistent read).
    pub(super) async fn slots_running(&self) -> Result<u32, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.tables.control)
            .key("pk", s(SLOTS_PK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err("GetItem", e))?;
        Ok(out
            .item
            .and_then(|i| i.get("running").and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<u32>().ok()))
            .unwrap_or(0))
    }
}

#[async_trait]
impl RateLimiter for DynamoStore {
    async fn hit(&self, bucket: &str, expires_at: i64) -> Result<u64, StoreError> {
        let _turn = self.rate_turn().await;
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
