//! The ports on AWS, and the AWS set-up: the only place AWS SDK types appear.
//!
//! # Layout
//! - [`aws`]: the SDK clients, loaded once per process.
//! - [`dynamo`]: the state stores on DynamoDB, by table family.
//! - [`s3`]: the object store on S3 (and S3-compatible stores).
//! - [`lambda`]: dispatch to the runner function.
//! - [`secrets`]: secrets on AWS Secrets Manager.
//! - [`tables`]: the table definitions `cairn init` and template.yaml share.

pub mod aws;
pub mod dynamo;
pub mod ecs;
pub mod lambda;
pub mod s3;
pub mod secrets;
pub mod tables;

pub use aws::AwsClients;
pub use dynamo::DynamoStore;

/// A one-line description of an SDK error: `Code: message` for service errors, the
/// error chain otherwise (timeouts, connection failures). Raw responses stay out of logs.
pub fn sdk_error_text<E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error>(e: E) -> String {
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
    }
}
