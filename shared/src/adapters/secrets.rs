//! [`SecretStore`] on AWS Secrets Manager.

use async_trait::async_trait;

use super::sdk_error_text;
use crate::error::StoreError;
use crate::ports::SecretStore;

/// Reads secrets with `GetSecretValue` (template.yaml allows it for `cairn/*` only).
#[derive(Debug, Clone)]
pub struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManager {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl SecretStore for SecretsManager {
    async fn secret_value(&self, name: &str) -> Result<String, StoreError> {
        let failed = |message: String| StoreError::Secret {
            name: name.to_owned(),
            message,
        };
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| failed(sdk_error_text(e)))?;
        out.secret_string()
            .map(str::to_owned)
            .ok_or_else(|| failed("the secret holds no text".into()))
    }
}
