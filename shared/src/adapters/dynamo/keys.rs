//! API keys, keyed by the hash of their text, with a `by-id` index.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{err, from_item, is_condition_failed, s, DynamoStore};
use crate::domain::ApiKey;
use crate::error::StoreError;
use crate::ports::KeyStore;

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
