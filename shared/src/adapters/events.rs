//! Execution events on EventBridge (`PutEvents`).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::Value;

use super::sdk_error_text;
use crate::error::StoreError;
use crate::ports::events::{EventPublisher, DETAIL_TYPE, SOURCE};

/// Publishes to one event bus. Its client tries twice and gives up after two seconds, so
/// an unreachable bus costs a run little (the port's caller only warns).
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

impl EventBridgePublisher {
    pub fn new(sdk_config: &aws_config::SdkConfig, bus: String) -> Self {
        let config = aws_sdk_eventbridge::config::Builder::from(sdk_config)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(1))
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build();
        Self {
            client: aws_sdk_eventbridge::Client::from_conf(config),
            bus,
        }
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, detail: &Value) -> Result<(), StoreError> {
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(DETAIL_TYPE)
            .detail(detail.to_string())
            .event_bus_name(&self.bus)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| StoreError::Events(format!("bus '{}': {}", self.bus, sdk_error_text(e))))?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .find_map(|e| e.error_code().map(|c| format!("{c}: {}", e.error_message().unwrap_or(""))))
                .unwrap_or_else(|| "the event was refused".into());
            return Err(StoreError::Events(format!("bus '{}': {why}", self.bus)));
        }
        Ok(())
    }
}
