//! AWS clients, loaded once per process.

use aws_config::BehaviorVersion;

/// The SDK clients every part of Cairn uses.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub sdk_config: aws_config::SdkConfig,
}

impl AwsClients {
    /// Loads credentials, region and endpoints the SDK's standard way (including
    /// `AWS_ENDPOINT_URL` and per-service variables such as `AWS_ENDPOINT_URL_S3`).
    /// S3 uses path-style addressing whenever an endpoint is configured, since
    /// S3-compatible servers rarely serve virtual-hosted buckets.
    pub async fn load() -> Self {
        let sdk_config = aws_config::defaults(BehaviorVersion::latest()).load().await;
        let custom_endpoint = std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(custom_endpoint)
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk_config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            lambda: aws_sdk_lambda::Client::new(&sdk_config),
            sdk_config,
        }
    }

    /// An S3 client for a destination with its own endpoint or region.
    pub fn s3_for(&self, endpoint: Option<&str>, region: Option<&str>) -> aws_sdk_s3::Client {
        if endpoint.is_none() && region.is_none() {
            return self.s3.clone();
        }
        let mut b = aws_sdk_s3::config::Builder::from(&self.sdk_config);
        if let Some(e) = endpoint {
            b = b.endpoint_url(e).force_path_style(true);
        }
        if let Some(r) = region {
            b = b.region(aws_sdk_s3::config::Region::new(r.to_owned()));
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }
}
