//! The ports on AWS, and the AWS set-up: the only place AWS SDK types appear.
//!
//! # Layout
//! - [`aws`]: the SDK clients, loaded once per process.
//! - [`dynamo`]: the state stores on DynamoDB, by table family.
//! - [`s3`]: the object store on S3 (and S3-compatible stores).
//! - [`lambda`]: dispatch to the runner function.
//! - [`ecs`]: dispatch to a Fargate task.
//! - [`events`]: execution events on EventBridge.
//! - [`secrets`]: secrets on AWS Secrets Manager.
//! - [`tables`]: the table definitions `cairn init` and template.yaml share.
//! - [`bucket_settings`]: the default bucket's settings, each told apart by whether the
//!   store implements it.

pub mod aws;
pub mod bucket_settings;
pub mod dynamo;
pub mod ecs;
pub mod events;
pub mod lambda;
pub mod s3;
pub mod secrets;
pub mod tables;

pub use aws::AwsClients;
pub use dynamo::DynamoStore;

/// A one-line description of an SDK error: `Code: message` for service errors, the
/// error chain otherwise (timeouts, connection failures), each cause once and none of the
/// SDK's debug output. Raw responses stay out of logs. Missing credentials or region get
/// a hint saying what to set.
pub fn sdk_error_text<E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error>(e: E) -> String {
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => error_chain(&e),
    }
}

/// [`sdk_error_text`] with the HTTP status before a service error's code and, where the
/// SDK's retry policy retries such a failure, how many attempts it made:
/// `500 InternalError: injected, after 4 attempts`.
pub fn sdk_failure<E>(e: aws_sdk_s3::error::SdkError<E>) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
    let status = e.raw_response().map(|r| r.status().as_u16());
    let throttled = matches!(
        e.code(),
        Some("Throttling" | "ThrottlingException" | "SlowDown" | "ProvisionedThroughputExceededException" | "RequestLimitExceeded")
    );
    let (service, retried) = match &e {
        SdkError::ServiceError(_) => (true, throttled || status.is_some_and(|s| s >= 500 || s == 429)),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => (false, true),
        _ => (false, false),
    };
    let mut text = sdk_error_text(e);
    if let (true, Some(s)) = (service, status) {
        text = format!("{s} {text}");
    }
    if retried {
        text.push_str(&format!(", after {} attempts", aws::max_attempts()));
    }
    text
}

/// `outer: inner: innermost`, skipping a cause whose text its parent already holds.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.last().is_some_and(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    let chain = parts.join(": ");
    if chain.contains("loading credentials") || chain.contains("no credentials") {
        format!("{chain} (no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; for a local endpoint use the export lines `cairn dev` prints)")
    } else if chain.contains("region") && chain.contains("missing") {
        format!("{chain} (set AWS_REGION)")
    } else {
        chain
    }
}
