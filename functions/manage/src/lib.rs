//! The `manage` function: writes other than run: jobs, destinations, keys, cancel.
//!
//! The handler only translates: API Gateway event in, one call of the shared HTTP API,
//! response out.

use cairn_shared::http::{ApiRequest, Function, HttpApi};
use lambda_http::{Body, Error, Request, Response};

/// Serves one API Gateway (HTTP API) request.
///
/// # Errors
/// Never: every failure is a JSON error response.
pub async fn handler(api: &HttpApi, request: Request) -> Result<Response<Body>, Error> {
    Ok(api.handle(Function::Manage, ApiRequest::from_lambda(&request)).await.into_lambda())
}
