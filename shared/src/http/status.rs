//! The HTTP layer's errors, and the one place where every error gets its status.

use thiserror::Error;

use crate::error::{AuthError, ServiceError, StoreError};

/// What a request can fail with: a service error, or a fault of the request itself.
#[derive(Debug, Error)]
pub enum HttpError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// A malformed request: a path id, a query parameter, a header, a body.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NoRoute(String),
    #[error("Method {method} not allowed for {path}; allowed: {allowed}")]
    MethodNotAllowed { method: String, path: String, allowed: String },
    #[error("Request body too large: {size} bytes, the limit is {limit} bytes")]
    PayloadTooLarge { size: usize, limit: usize },
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        Self::Service(e.into())
    }
}

impl From<AuthError> for HttpError {
    fn from(e: AuthError) -> Self {
        Self::Service(e.into())
    }
}

impl From<crate::domain::FieldError> for HttpError {
    fn from(e: crate::domain::FieldError) -> Self {
        Self::Service(e.into())
    }
}

/// The HTTP status for an error.
pub fn status(e: &HttpError) -> u16 {
    match e {
        HttpError::Service(s) => match s {
            ServiceError::Invalid(_) => 400,
            ServiceError::Unauthenticated(_) => 401,
            ServiceError::Forbidden(_) => 403,
            ServiceError::NotFound(_) => 404,
            ServiceError::Conflict(_) => 409,
            ServiceError::RateLimited { .. } => 429,
            ServiceError::Store(_) | ServiceError::ObjectStore(_) => 500,
        },
        HttpError::BadRequest(_) => 400,
        HttpError::NoRoute(_) => 404,
        HttpError::MethodNotAllowed { .. } => 405,
        HttpError::PayloadTooLarge { .. } => 413,
    }
}

/// Whether an error is a fault of Cairn's (logged, and its details kept out of the body).
pub fn is_fault(e: &HttpError) -> bool {
    status(e) >= 500
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_kind_has_its_status() {
        let cases: Vec<(HttpError, u16)> = vec![
            (ServiceError::Invalid("x".into()).into(), 400),
            (AuthError::Expired.into(), 401),
            (ServiceError::Forbidden("jobs:write").into(), 403),
            (ServiceError::job_not_found().into(), 404),
            (ServiceError::Conflict("disabled".into()).into(), 409),
            (StoreError::Malformed("x".into()).into(), 500),
            (HttpError::PayloadTooLarge { size: 2, limit: 1 }, 413),
            (
                ServiceError::RateLimited {
                    limit: 1,
                    class: "GET",
                    retry_after: 3,
                }
                .into(),
                429,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(status(&e), want, "{e}");
        }
    }
}
