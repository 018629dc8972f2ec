//! One CloudWatch Embedded Metric Format document per finished execution, printed as a
//! line on stdout: in Lambda, CloudWatch Logs turns it into metrics (namespace `Cairn`) with
//! no extra service or API call, so graphs and alarms ("no Success for job X in 26 hours")
//! need nothing else.

use serde_json::{json, Value};

use crate::domain::{Execution, ExecutionStatus};
use crate::ports::Completion;

/// The statuses counted, one metric each (1 for this execution's, 0 for the others), so a
/// `Sum` over a period counts runs by their end.
const COUNTED: [ExecutionStatus; 4] = [
    ExecutionStatus::Success,
    ExecutionStatus::Partial,
    ExecutionStatus::Failed,
    ExecutionStatus::Cancelled,
];

/// The EMF document of `execution`, ended as `completion` after reading `bytes_read`
/// source bytes, at `timestamp_ms` (milliseconds since the epoch).
pub(super) fn emf_document(execution: &Execution, completion: &Completion, bytes_read: u64, timestamp_ms: i64) -> Value {
    let mut metrics = vec![
        json!({"Name": "Duration", "Unit": "Milliseconds"}),
        json!({"Name": "BytesRead", "Unit": "Bytes"}),
        json!({"Name": "BytesStored", "Unit": "Bytes"}),
        json!({"Name": "ItemsFailed", "Unit": "Count"}),
    ];
    metrics.extend(COUNTED.iter().map(|s| json!({"Name": s.as_str(), "Unit": "Count"})));
    let failed = completion.items.iter().filter(|i| i.status != ExecutionStatus::Success).count();
    let mut doc = json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{"Namespace": "Cairn", "Dimensions": [["JobName", "Type"]], "Metrics": metrics}],
        },
        "JobName": execution.job_name,
        "Type": format!("{:?}", execution.execution_type),
        "Duration": completion.duration_ms,
        "BytesRead": bytes_read,
        "BytesStored": completion.size.unwrap_or(0),
        "ItemsFailed": failed,
        "executionId": execution.id,
        "jobId": execution.job_id,
        "status": completion.status.as_str(),
    });
    for s in COUNTED {
        doc[s.as_str()] = json!(u8::from(s == completion.status));
    }
    doc
}

/// Prints the document as one line on stdout, where Lambda's log capture reads it.
pub(super) fn publish(execution: &Execution, completion: &Completion, bytes_read: u64) {
    let now = crate::time::now().timestamp_millis();
    println!("{}", emf_document(execution, completion, bytes_read, now));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ExecutionType, ItemResult, Stage, Trigger};

    #[test]
    fn the_document_declares_every_metric_it_carries() {
        let e = Execution::pending("e1".into(), "j1".into(), "nightly".into(), ExecutionType::Backup, Trigger::Cli, "t");
        let c = Completion {
            status: ExecutionStatus::Partial,
            stage: Stage::Completed,
            ended_at: "t".into(),
            duration_ms: 1500,
            size: Some(300),
            path: None,
            error: None,
            items: vec![ItemResult::succeeded("a".into(), 1), ItemResult::failed("b".into(), "gone".into())],
        };
        let doc = emf_document(&e, &c, 1000, 1_700_000_000_000);
        let declared = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "Cairn");
        assert_eq!(declared["Dimensions"], json!([["JobName", "Type"]]));
        for m in declared["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(doc[name].is_number(), "{name} is declared but not a number: {doc}");
        }
        assert_eq!((&doc["JobName"], &doc["Type"]), (&json!("nightly"), &json!("Backup")));
        assert_eq!(
            (&doc["Duration"], &doc["BytesRead"], &doc["BytesStored"]),
            (&json!(1500), &json!(1000), &json!(300))
        );
        assert_eq!(
            (&doc["ItemsFailed"], &doc["Partial"], &doc["Success"]),
            (&json!(1), &json!(1), &json!(0))
        );
    }
}
