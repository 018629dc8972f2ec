//! Executions: one run of a job (a backup, restore, clone or download), its progress and logs.

use super::runner_kind::RunnerKind;
use serde::{Deserialize, Serialize};

/// What an execution does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionType {
    Backup,
    Restore,
    Clone,
    Download,
}

/// Where an execution is in its life. Terminal: Success, Partial, Failed, Cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionStatus {
    Pending,
    Running,
    Success,
    Partial,
    Failed,
    Cancelled,
}

impl ExecutionStatus {
    /// The name used in the API and in DynamoDB.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Success => "Success",
            Self::Partial => "Partial",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
        }
    }

    /// Parses an API filter value.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Running,
            Self::Success,
            Self::Partial,
            Self::Failed,
            Self::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// Whether the execution has ended.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }

    /// JetBackup's queue-object status code handed to hooks.
    pub fn hook_code(self) -> u32 {
        match self {
            Self::Pending => 1,
            Self::Running => 2,
            Self::Success => 100,
            Self::Partial => 101,
            Self::Failed => 102,
            Self::Cancelled => 103,
        }
    }
}

/// The stages of a backup, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Stage {
    Queued,
    Initializing,
    #[serde(rename = "Running pre-hooks")]
    PreHooks,
    Dumping,
    Uploading,
    Verifying,
    /// Restores and clones: applying items to their targets.
    Restoring,
    #[serde(rename = "Applying retention")]
    Retention,
    #[serde(rename = "Running post-hooks")]
    PostHooks,
    Completed,
    Failed,
    Cancelled,
}

impl Stage {
    /// The name shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "Queued",
            Self::Initializing => "Initializing",
            Self::PreHooks => "Running pre-hooks",
            Self::Dumping => "Dumping",
            Self::Uploading => "Uploading",
            Self::Verifying => "Verifying",
            Self::Restoring => "Restoring",
            Self::Retention => "Applying retention",
            Self::PostHooks => "Running post-hooks",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
        }
    }
}

/// Who started an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Trigger {
    /// An API call, with the key's name.
    Api { key: String },
    /// The schedule tick.
    Scheduler,
    /// An EventBridge rule pointed at the run function.
    EventBridge { rule: String },
    /// The operator's CLI.
    Cli,
}

/// One item's outcome within an execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemResult {
    pub name: String,
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ItemResult {
    pub fn succeeded(name: String, size: u64) -> Self {
        Self {
            name,
            status: ExecutionStatus::Success,
            size: Some(size),
            error: None,
        }
    }

    pub fn failed(name: String, error: String) -> Self {
        Self {
            name,
            status: ExecutionStatus::Failed,
            size: None,
            error: Some(error),
        }
    }

    pub fn cancelled(name: String, why: String) -> Self {
        Self {
            name,
            status: ExecutionStatus::Cancelled,
            size: None,
            error: Some(why),
        }
    }
}

/// An execution: one run of a job, as stored; `crate::http::views` gives the seed's
/// response shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub id: String,
    pub job_id: String,
    pub job_name: String,
    #[serde(rename = "type")]
    pub execution_type: ExecutionType,
    pub status: ExecutionStatus,
    pub progress: u8,
    pub stage: Stage,
    /// ISO 8601: when the execution was queued. Sort key of the listing indexes.
    pub queued_at: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub ended_at: Option<String>,
    #[serde(default)]
    pub duration: Option<u64>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    pub trigger: Trigger,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub lease_expires_at: Option<i64>,
    #[serde(default)]
    pub cancel_requested: bool,
    #[serde(default)]
    pub items: Vec<ItemResult>,
    /// For Restore/Download: the backup execution this one reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_execution_id: Option<String>,
    /// Set when retention deleted this backup's objects: when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned: Option<String>,
    /// Task parameters (restore targets, download expiry), stored as JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
    /// Where it runs: its job's runner when it was queued.
    #[serde(default, skip_serializing_if = "RunnerKind::is_lambda")]
    pub runner: RunnerKind,
    /// Source bytes read so far, as the runner's last heartbeat said (the CLI shows it
    /// with the rate; the seed's poll shape has no such field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_read: Option<u64>,
}

impl Execution {
    /// The seed's poll shape: the `data` of `GET /api/executions/{id}` without
    /// `queuePosition` and `logs`, plus `trigger`. With `queuePosition` added while
    /// Pending, it is also the `detail` of every execution event, so a client reads both
    /// the same way.
    pub fn poll_shape(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "jobId": self.job_id,
            "jobName": self.job_name,
            "type": self.execution_type,
            "status": self.status,
            "progress": self.progress,
            "stage": self.stage,
            "startedAt": self.started_at,
            "endedAt": self.ended_at,
            "duration": self.duration,
            "size": self.size,
            "path": self.path,
            "error": self.error,
            "trigger": self.trigger,
        });
        if let Some(p) = &self.pruned {
            v["pruned"] = serde_json::json!(p);
        }
        v
    }

    /// A new Pending execution.
    pub fn pending(id: String, job_id: String, job_name: String, execution_type: ExecutionType, trigger: Trigger, now: &str) -> Self {
        Self {
            id,
            job_id,
            job_name,
            execution_type,
            status: ExecutionStatus::Pending,
            progress: 0,
            stage: Stage::Queued,
            queued_at: now.to_owned(),
            started_at: None,
            ended_at: None,
            duration: None,
            size: None,
            path: None,
            error: None,
            trigger,
            owner: None,
            lease_expires_at: None,
            cancel_requested: false,
            items: Vec::new(),
            source_execution_id: None,
            pruned: None,
            parameters: None,
            runner: RunnerKind::Lambda,
            bytes_read: None,
        }
    }
}

/// Severity of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Info,
    Warning,
    Error,
}

/// One entry of an execution's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub timestamp: String,
    pub level: LogLevel,
    pub stage: Stage,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_serialise_with_their_display_names() {
        assert_eq!(serde_json::to_value(Stage::PreHooks).unwrap(), "Running pre-hooks");
        assert_eq!(serde_json::to_value(Stage::Retention).unwrap(), Stage::Retention.as_str());
    }
}
