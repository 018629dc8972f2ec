//! System settings stored in DynamoDB.

use serde::{Deserialize, Serialize};

/// Settings shared by every function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// How many executions may run at once (default 1).
    pub max_concurrent_jobs: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self { max_concurrent_jobs: 1 }
    }
}
