//! The `list` function: `GET /api/jobs`, `GET /api/jobs/{id}`, `GET /api/executions`, `GET /api/health`, and the `$default` route: the web console at `/` and `/console`, JSON 404/405 for other unknown routes.
//!
//! The handler only translates: API Gateway event in, one call of the shared HTTP API,
//! response out.

use cairn_shared::http::{console, ApiRequest, Function, HttpApi};
use lambda_http::{Body, Error, Request, Response};

/// Serves one API Gateway (HTTP API) request.
///
/// # Errors
/// Never: every failure is a JSON error response.
pub async fn handler(api: &HttpApi, request: Request) -> Result<Response<Body>, Error> {
    let request = ApiRequest::from_lambda(&request);
    if let Some(file) = console::asset(&request.method, &request.path) {
        return Ok(console::into_lambda(file));
    }
    Ok(api.handle(Function::List, request).await.into_lambda())
}
