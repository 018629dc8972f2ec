//! AWS clients, loaded once per process.

use std::time::Duration;

use aws_config::BehaviorVersion;

/// Attempts per S3 or DynamoDB call (`AWS_MAX_ATTEMPTS` changes it): throttling, 5xx,
/// resets and timeouts are retried with exponential backoff and jitter, the SDK's
/// standard retry policy.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// How long a response may stall before its attempt fails, in seconds
/// (`CAIRN_AWS_READ_TIMEOUT_SECONDS` changes it).
pub const DEFAULT_READ_TIMEOUT_SECONDS: u64 = 60;

/// A positive number from the environment, or `default`.
fn env_number<T: std::str::FromStr + PartialOrd + Default>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > T::default())
        .unwrap_or(default)
}

/// How many attempts a call gets in this process.
pub fn max_attempts() -> u32 {
    env_number("AWS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)
}

/// The SDK's configuration, with Cairn's retries and timeouts: a connection that does not
/// open in 5 s, or a response that stalls for 60 s, is an attempt that failed.
async fn load_sdk_config() -> aws_config::SdkConfig {
    let read_timeout = env_number("CAIRN_AWS_READ_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT_SECONDS);
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(max_attempts()))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .read_timeout(Duration::from_secs(read_timeout))
                .build(),
        )
        .load()
        .await
}

/// The DynamoDB client type, for the wiring.
pub type DynamoClient = aws_sdk_dynamodb::Client;

/// The SDK clients every part of Cairn uses.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub s3: aws_sdk_s3::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub sdk_config: aws_config::SdkConfig,
}

impl AwsClients {
    /// Loads credentials, region and endpoints the SDK's standard way (including
    /// `AWS_ENDPOINT_URL` and per-service variables such as `AWS_ENDPOINT_URL_S3`).
    /// S3 uses path-style addressing whenever an endpoint is configured, since
    /// S3-compatible servers rarely serve virtual-hosted buckets.
    pub async fn load() -> Self {
        let sdk_config = load_sdk_config().await;
        let custom_endpoint = std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(custom_endpoint)
            .response_checksum_validation(super::s3::READS_UNCHECKED_BY_THE_SDK)
            .build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk_config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            lambda: aws_sdk_lambda::Client::new(&sdk_config),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk_config),
            ecs: aws_sdk_ecs::Client::new(&sdk_config),
            sdk_config,
        }
    }

    /// The secret store: Secrets Manager.
    pub fn secret_store(&self) -> super::secrets::SecretsManager {
        super::secrets::SecretsManager::new(self.secrets.clone())
    }

    /// The object stores: the default S3 client, or one per destination endpoint.
    pub fn object_stores(&self) -> super::s3::S3Stores {
        super::s3::S3Stores::new(self.s3.clone(), self.sdk_config.clone())
    }
}

/// The clients of the request-only functions (run, poll, list): DynamoDB, Lambda to
/// dispatch and EventBridge for execution events; never S3, so its SDK is not linked
/// into them.
#[derive(Debug, Clone)]
pub struct ApiClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub sdk_config: aws_config::SdkConfig,
}

impl ApiClients {
    pub async fn load() -> Self {
        let sdk_config = load_sdk_config().await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk_config),
            lambda: aws_sdk_lambda::Client::new(&sdk_config),
            sdk_config,
        }
    }
}
