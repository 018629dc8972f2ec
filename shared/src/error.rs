//! The library's error types. HTTP statuses are assigned in one place:
//! [`crate::api::response::error_response`].

use thiserror::Error;

/// A configuration variable that is set but unusable.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("invalid {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Why a request was not authenticated (401).
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

/// A storage operation that failed for a reason other than a domain outcome.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("DynamoDB {operation} failed: {message}")]
    Dynamo { operation: &'static str, message: String },
    #[error("S3 {operation} failed: {message}")]
    S3 { operation: &'static str, message: String },
    #[error("stored item is malformed: {0}")]
    Malformed(String),
    #[error("dispatch failed: {0}")]
    Dispatch(String),
}

/// What an API operation can fail with; each maps to one HTTP status.
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Unauthorized(#[from] AuthError),
    #[error("API key lacks the '{0}' permission")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("Method {method} not allowed for {path}; allowed: {allowed}")]
    MethodNotAllowed { method: String, path: String, allowed: String },
    #[error("{0}")]
    Conflict(String),
    #[error("Request body too large: {size} bytes, the limit is {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },
    #[error("Rate limit exceeded: {limit} {class} requests per minute per client; retry in {retry_after} s")]
    RateLimited { limit: u32, class: &'static str, retry_after: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    /// The HTTP status for this error. The one place statuses are decided.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Conflict(_) => 409,
            Self::PayloadTooLarge { .. } => 413,
            Self::RateLimited { .. } => 429,
            Self::Store(_) => 500,
        }
    }

    /// `404 Job not found`, the seed's wording.
    pub fn job_not_found() -> Self {
        Self::NotFound("Job not found".into())
    }

    /// `404 Execution not found`.
    pub fn execution_not_found() -> Self {
        Self::NotFound("Execution not found".into())
    }
}
