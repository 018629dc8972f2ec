//! The default bucket's settings, one S3 call each, told apart by whether the store
//! implements them: S3-compatible servers often lack versioning, default encryption, the
//! public-access block or lifecycle rules, and backups work without them.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus, ExpirationStatus, LifecycleRule,
    LifecycleRuleFilter, PublicAccessBlockConfiguration, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule, VersioningConfiguration,
};

/// Why a setting was not applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The store does not implement it (501, 405, `NotImplemented`).
    NotImplemented(String),
    /// Anything else (access denied, a bad request, the store unreachable).
    Other(String),
}

fn refused<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(e: SdkError<E, HttpResponse>) -> Refused {
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = ProvideErrorMetadata::code(&e).map(str::to_owned);
    let text = super::sdk_error_text(e);
    let not_implemented = matches!(
        code.as_deref(),
        Some("NotImplemented" | "XNotImplemented" | "MethodNotAllowed" | "UnsupportedOperation")
    ) || matches!(status, Some(501 | 405));
    if not_implemented {
        Refused::NotImplemented(text)
    } else {
        Refused::Other(text)
    }
}

pub async fn versioning(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), Refused> {
    let on = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    client
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(on)
        .send()
        .await
        .map(drop)
        .map_err(refused)
}

/// SSE-S3 by default: it keeps multipart ETags as MD5 digests.
pub async fn encryption(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), Refused> {
    let by_default = ServerSideEncryptionByDefault::builder()
        .sse_algorithm(ServerSideEncryption::Aes256)
        .build()
        .map_err(|e| Refused::Other(e.to_string()))?;
    let rule = ServerSideEncryptionRule::builder()
        .apply_server_side_encryption_by_default(by_default)
        .build();
    let config = ServerSideEncryptionConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(|e| Refused::Other(e.to_string()))?;
    client
        .put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(config)
        .send()
        .await
        .map(drop)
        .map_err(refused)
}

pub async fn public_access_block(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), Refused> {
    let block = PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .block_public_policy(true)
        .ignore_public_acls(true)
        .restrict_public_buckets(true)
        .build();
    client
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(block)
        .send()
        .await
        .map(drop)
        .map_err(refused)
}

/// Uploads a run could not abort (its process was killed) are removed after a day, as
/// template.yaml's bucket does.
pub async fn lifecycle(client: &aws_sdk_s3::Client, bucket: &str) -> Result<(), Refused> {
    let rule = LifecycleRule::builder()
        .id("abort-incomplete-uploads")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("").build())
        .abort_incomplete_multipart_upload(AbortIncompleteMultipartUpload::builder().days_after_initiation(1).build())
        .build()
        .map_err(|e| Refused::Other(e.to_string()))?;
    let config = BucketLifecycleConfiguration::builder()
        .rules(rule)
        .build()
        .map_err(|e| Refused::Other(e.to_string()))?;
    client
        .put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(config)
        .send()
        .await
        .map(drop)
        .map_err(refused)
}
