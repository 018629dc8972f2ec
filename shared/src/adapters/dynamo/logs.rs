//! Execution log entries: written in batches (retrying what DynamoDB leaves unprocessed)
//! under a sortable sequence, read back in order.

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::{build_err, err, from_item, s, to_item, DynamoStore, Item};
use crate::domain::LogEntry;
use crate::error::StoreError;

impl DynamoStore {
    pub(super) async fn write_logs(&self, execution_id: &str, entries: &[LogEntry]) -> Result<(), StoreError> {
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

    pub(super) async fn read_logs(&self, execution_id: &str) -> Result<Vec<LogEntry>, StoreError> {
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
}
