//! EventBridge events sent straight to the run function: an operator's rule whose
//! detail (or constant input) carries `{"jobId": "..."}`.

use serde_json::{json, Value};
use tracing::{error, info};

use super::status::HttpError;
use crate::domain::Trigger;
use crate::services::CairnService;

/// What an EventBridge event asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    pub job_id: String,
    /// The rule's name (from `resources`), or `constant-input` when the rule passed only
    /// the job id.
    pub rule: String,
}

/// Reads a job id from an EventBridge event or a rule's constant input.
///
/// # Errors
/// Says what is missing or malformed.
pub fn parse(event: &Value) -> Result<RunRequest, HttpError> {
    let (holder, rule) = match event.get("detail") {
        Some(detail) => {
            let rule = event["resources"]
                .as_array()
                .and_then(|r| r.iter().filter_map(Value::as_str).find(|a| a.contains(":rule/")))
                .and_then(|arn| arn.rsplit('/').next())
                .unwrap_or("unknown-rule")
                .to_owned();
            (detail, rule)
        }
        None => (event, "constant-input".to_owned()),
    };
    let job_id = holder
        .get("jobId")
        .and_then(Value::as_str)
        .ok_or_else(|| HttpError::BadRequest("the event carries no jobId (in its detail or as constant input)".into()))?;
    if job_id.is_empty() || job_id.len() > 64 || !job_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(HttpError::BadRequest("jobId is not a job id".into()));
    }
    Ok(RunRequest {
        job_id: job_id.to_owned(),
        rule,
    })
}

/// Runs the job an event names. A malformed event or an unknown job is logged and
/// answered (never an error, so Lambda does not retry it).
pub async fn handle(service: &CairnService, event: &Value) -> Value {
    let request = match parse(event) {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "rejected a malformed EventBridge event");
            return json!({"success": false, "error": e.to_string()});
        }
    };
    match service
        .run_job(
            &request.job_id,
            Trigger::EventBridge {
                rule: request.rule.clone(),
            },
            None,
        )
        .await
    {
        Ok(t) => {
            info!(job_id = %request.job_id, rule = %request.rule, execution_id = %t.execution_id, "EventBridge rule started a run");
            json!({"success": true, "executionId": t.execution_id})
        }
        Err(e) => {
            error!(job_id = %request.job_id, rule = %request.rule, error = %e, "EventBridge rule could not start a run");
            json!({"success": false, "error": e.to_string()})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scheduled_event_names_its_rule() {
        let e = json!({"source": "aws.events", "detail-type": "Scheduled Event", "resources": ["arn:aws:events:eu-west-1:1:rule/nightly-db"], "detail": {"jobId": "j-1"}});
        assert_eq!(
            parse(&e).unwrap(),
            RunRequest {
                job_id: "j-1".into(),
                rule: "nightly-db".into()
            }
        );
    }

    #[test]
    fn constant_input_works_and_malformed_events_say_why() {
        assert_eq!(parse(&json!({"jobId": "j"})).unwrap().rule, "constant-input");
        assert!(parse(&json!({"detail": {}})).unwrap_err().to_string().contains("jobId"));
        assert!(parse(&json!({"jobId": "../x"})).is_err());
    }
}
