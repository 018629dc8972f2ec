//! The JSON shapes of responses (the seed's, where it gives one), in one place. The CLI's
//! `--output json` prints the same shapes.

use serde_json::{json, Value};

use crate::domain::{ApiKey, Execution};
use crate::services::{Download, ExecutionDetail, JobSummary};

/// The seed's execution shape: exactly `id, jobId, jobName, type, status, progress, stage,
/// startedAt, endedAt, duration, size, path, error`, plus `trigger` (and `pruned` once
/// retention deleted the backup).
pub fn execution(e: &Execution) -> Value {
    e.poll_shape()
}

/// `GET /api/executions/{id}`: the execution, `queuePosition` while Pending, `logs` when
/// asked for.
pub fn execution_detail(d: &ExecutionDetail) -> Value {
    let mut v = execution(&d.execution);
    if let Some(p) = d.queue_position {
        v["queuePosition"] = json!(p);
    }
    if let Some(logs) = &d.logs {
        v["logs"] = serde_json::to_value(logs).unwrap_or_default();
    }
    v
}

/// A job as `GET /api/jobs` shows it: its definition, `nextRunAt` and `lastExecution`.
pub fn job(s: &JobSummary) -> Value {
    let mut v = serde_json::to_value(&s.job).unwrap_or_default();
    v["nextRunAt"] = json!(s.job.next_run_at);
    v["lastExecution"] = s.last_execution.as_ref().map_or(
        Value::Null,
        |e| json!({"id": e.id, "status": e.status, "queuedAt": e.queued_at, "endedAt": e.ended_at, "trigger": e.trigger}),
    );
    v
}

/// A key's metadata: never its hash.
pub fn key(k: &ApiKey) -> Value {
    serde_json::to_value(k.metadata()).unwrap_or_default()
}

/// Any stored object as it is serialised (jobs as created, destinations, hooks, settings).
pub fn plain<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// A download's URLs.
pub fn download(d: &Download) -> Value {
    let items: Vec<Value> = d
        .items
        .iter()
        .map(|u| json!({"item": u.item, "object": u.object, "size": u.size, "sha256": u.sha256, "url": u.url}))
        .collect();
    json!({"executionId": d.execution_id, "expiresAt": d.expires_at, "items": items, "manifest": {"url": d.manifest_url}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExecutionType, Trigger};

    #[test]
    fn the_api_shape_has_exactly_the_seed_fields() {
        let e = Execution::pending(
            "e".into(),
            "j".into(),
            "Daily".into(),
            ExecutionType::Backup,
            Trigger::Cli,
            "2025-01-15T10:30:00.000Z",
        );
        let v = execution(&e);
        let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        let mut want = vec![
            "id",
            "jobId",
            "jobName",
            "type",
            "status",
            "progress",
            "stage",
            "startedAt",
            "endedAt",
            "duration",
            "size",
            "path",
            "error",
            "trigger",
        ];
        want.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(v["status"], "Pending");
        assert_eq!(v["stage"], "Queued");
        assert_eq!(v["type"], "Backup");
        assert!(v["startedAt"].is_null());
    }
}
