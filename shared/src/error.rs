//! The library's error types, one enum per layer. None of them knows HTTP: statuses are
//! assigned in one place, [`crate::http::status`].

use thiserror::Error;

/// A configuration variable that is set but unusable.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("invalid {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Why a request was not authenticated.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    #[error("Missing API key: send 'Authorization: Bearer cairn_...'")]
    Missing,
    #[error("Invalid API key")]
    Invalid,
    #[error("API key is disabled")]
    Disabled,
    #[error("API key has expired")]
    Expired,
}

/// A state-store operation (DynamoDB, or its in-memory stand-in) that failed for a reason
/// other than a domain outcome.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("DynamoDB {operation} failed: {message}")]
    Dynamo { operation: &'static str, message: String },
    #[error("stored item is malformed: {0}")]
    Malformed(String),
    /// A listing cursor this API did not hand out.
    #[error("cursor is not one this API returned")]
    BadCursor,
    #[error("dispatch failed: {0}")]
    Dispatch(String),
    /// An execution event was not published.
    #[error("EventBridge PutEvents failed: {0}")]
    Events(String),
    /// A secret could not be read (its value is never in the message).
    #[error("cannot read the Secrets Manager secret {name}: {message}")]
    Secret { name: String, message: String },
}

/// An object-store operation (S3 or a compatible store) that failed.
#[derive(Debug, Error)]
pub enum ObjectStoreError {
    /// The object or upload does not exist.
    #[error("{operation} of {location} failed: not found")]
    NotFound { operation: &'static str, location: String },
    #[error("{operation} of {location} failed: {message}")]
    Failed {
        operation: &'static str,
        location: String,
        message: String,
    },
}

impl ObjectStoreError {
    /// A failure of `operation` on `s3://bucket/key`.
    pub fn failed(operation: &'static str, bucket: &str, key: &str, message: impl Into<String>) -> Self {
        Self::Failed {
            operation,
            location: format!("s3://{bucket}/{key}"),
            message: message.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// Why the engine could not back up, verify or restore an item.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The source is not usable as configured (a bad glob, URL or missing secret).
    #[error("{0}")]
    InvalidSource(String),
    /// A source could not be read (a directory that is gone, a dump program that failed).
    #[error("{0}")]
    SourceFailed(String),
    /// A restore or clone target refused the data (not empty, wrong kind, a client that failed).
    #[error("{0}")]
    Target(String),
    /// Stored data does not match its manifest or cannot be decoded.
    #[error("{0}")]
    Damaged(String),
    /// age encryption or decryption.
    #[error("{0}")]
    Crypto(String),
    /// A restic repository (incremental backups) refused or failed: a wrong password, a
    /// store error, damage rustic_core found.
    #[error("{0}")]
    Repository(String),
    #[error("cancelled")]
    Cancelled,
    #[error("upload to s3://{bucket}/{key} failed: {message}")]
    Upload { bucket: String, key: String, message: String },
    #[error("verification of s3://{bucket}/{key} failed: {message}")]
    Verify { bucket: String, key: String, message: String },
    #[error(transparent)]
    ObjectStore(#[from] ObjectStoreError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a Fargate task could not perform the execution it was started for.
#[derive(Debug, Error)]
pub enum TaskError {
    #[error("no execution {0}")]
    NotFound(String),
    #[error("execution {id} is {status} under {owner}, not waiting for this task")]
    NotWaiting { id: String, status: &'static str, owner: String },
    #[error("every slot of maxConcurrentJobs ({max}) is taken; execution {id} stays queued")]
    NoSlot { id: String, max: u32 },
    #[error("execution {0} was claimed or cancelled meanwhile")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an operation of [`crate::services`] can fail with.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The input is invalid: the message names the field and why.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
    /// The key lacks this permission.
    #[error("API key lacks the '{0}' permission")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    /// The state of an object forbids the operation (a disabled job, an ended execution).
    #[error("{0}")]
    Conflict(String),
    /// A client sent more requests of a class this minute than it may.
    #[error("Rate limit exceeded: {limit} {class} requests per minute per client; retry in {retry_after} s")]
    RateLimited { limit: u32, class: &'static str, retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    ObjectStore(#[from] ObjectStoreError),
}

impl ServiceError {
    /// `Job not found`, the seed's wording.
    pub fn job_not_found() -> Self {
        Self::NotFound("Job not found".into())
    }

    pub fn execution_not_found() -> Self {
        Self::NotFound("Execution not found".into())
    }
}

impl From<crate::domain::FieldError> for ServiceError {
    fn from(e: crate::domain::FieldError) -> Self {
        Self::Invalid(format!("Invalid field '{}': {}", e.field, e.reason))
    }
}
