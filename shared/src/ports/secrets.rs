//! Secrets the operator keeps in a secret store (AWS Secrets Manager): database passwords
//! and age identities that jobs and restores name, read by the runner right before it acts.

use async_trait::async_trait;

use crate::error::StoreError;

/// Reads secrets by name or ARN.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The secret's text.
    ///
    /// # Errors
    /// [`StoreError::Secret`] naming the secret (never its value).
    async fn secret_value(&self, name: &str) -> Result<String, StoreError>;
}
