//! Implementations of [`crate::store`]'s traits on AWS, and the AWS set-up.

pub mod aws;
pub mod dispatch;
pub mod dynamo;
pub mod s3;
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
