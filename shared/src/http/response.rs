//! The transport-neutral response, the one mapping of errors to responses, and the
//! translation to `lambda_http`.

use serde_json::{json, Value};

use super::status::{is_fault, status, HttpError};
use crate::error::ServiceError;

/// A JSON response.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

impl ApiResponse {
    /// `{"success": true, ...fields}`.
    pub fn ok(status: u16, fields: Value) -> Self {
        let mut body = json!({"success": true});
        if let (Some(b), Value::Object(f)) = (body.as_object_mut(), fields) {
            b.extend(f);
        }
        Self {
            status,
            body,
            headers: Vec::new(),
        }
    }

    /// `{"success": true, "data": data}`.
    pub fn data(status: u16, data: Value) -> Self {
        Self::ok(status, json!({ "data": data }))
    }

    /// Translates into a `lambda_http` response.
    pub fn into_lambda(self) -> lambda_http::Response<lambda_http::Body> {
        let mut builder = lambda_http::Response::builder()
            .status(self.status)
            .header("content-type", "application/json");
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        builder.body(lambda_http::Body::Text(self.body.to_string())).unwrap_or_else(|_| {
            lambda_http::Response::new(lambda_http::Body::Text(
                r#"{"success":false,"error":"response build failed"}"#.into(),
            ))
        })
    }
}

/// The response for an error: `{"success": false, "error": "..."}` with its status, plus
/// `Retry-After` for 429 and `Allow` for 405. A 500 is logged with the request id, which the
/// body carries too; its details stay in the logs.
pub fn error_response(e: &HttpError, request_id: &str) -> ApiResponse {
    let mut headers = Vec::new();
    match e {
        HttpError::Service(ServiceError::RateLimited { retry_after, .. }) => headers.push(("retry-after", retry_after.to_string())),
        HttpError::MethodNotAllowed { allowed, .. } => headers.push(("allow", allowed.clone())),
        _ => {}
    }
    let body = if is_fault(e) {
        tracing::error!(request_id, error = %e, "internal error");
        json!({"success": false, "error": "Internal error; quote this request id to the operator", "requestId": request_id})
    } else {
        json!({"success": false, "error": e.to_string()})
    };
    ApiResponse {
        status: status(e),
        body,
        headers,
    }
}
