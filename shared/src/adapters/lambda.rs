//! Dispatch to the runner Lambda by asynchronous invoke.

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use crate::error::StoreError;
use crate::ports::{Dispatcher, RunnerEvent};

/// Invokes the runner function asynchronously (`InvocationType::Event`): the caller does
/// not wait for the backup.
#[derive(Debug, Clone)]
pub struct LambdaDispatcher {
    client: aws_sdk_lambda::Client,
    function_name: String,
}

impl LambdaDispatcher {
    pub fn new(client: aws_sdk_lambda::Client, function_name: String) -> Self {
        Self { client, function_name }
    }
}

#[async_trait]
impl Dispatcher for LambdaDispatcher {
    async fn dispatch(&self, execution_id: &str) -> Result<(), StoreError> {
        let payload = serde_json::to_vec(&RunnerEvent::Execute {
            execution_id: execution_id.to_owned(),
        })
        .map_err(|e| StoreError::Dispatch(e.to_string()))?;
        self.client
            .invoke()
            .function_name(&self.function_name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| StoreError::Dispatch(aws_sdk_lambda::error::DisplayErrorContext(e).to_string()))?;
        Ok(())
    }
}
