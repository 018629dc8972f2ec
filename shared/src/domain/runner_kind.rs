//! Where a job's executions run: the runner Lambda or a Fargate task.

use serde::{Deserialize, Serialize};

/// Where a job's executions run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunnerKind {
    /// The runner Lambda: at most 15 minutes per invocation.
    #[default]
    Lambda,
    /// A Fargate task started for the one execution: no time limit.
    Fargate,
}

impl RunnerKind {
    pub fn is_lambda(&self) -> bool {
        *self == Self::Lambda
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lambda => "lambda",
            Self::Fargate => "fargate",
        }
    }
}
