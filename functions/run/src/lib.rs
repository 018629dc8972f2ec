//! The `run` function: `POST /api/jobs/{id}/run` queues a backup and dispatches it; it
//! also takes EventBridge events whose detail (or constant input) carries `{"jobId"}`.
//!
//! The handlers only translate: event in, one call of the shared API, response out.

use cairn_shared::http::{eventbridge, ApiRequest, Function, HttpApi};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use lambda_runtime::LambdaEvent;
use serde_json::{json, Value};

/// Serves one API Gateway (HTTP API) request.
///
/// # Errors
/// Never: every failure is a JSON error response.
pub async fn handler(api: &HttpApi, request: Request) -> Result<Response<Body>, Error> {
    Ok(api.handle(Function::Run, ApiRequest::from_lambda(&request)).await.into_lambda())
}

/// The Lambda entry point: API Gateway events go to [`handler`]; anything else is an
/// EventBridge event (or a rule's constant input) naming a job.
///
/// # Errors
/// Only for an API Gateway event that cannot be parsed; malformed EventBridge events are
/// logged and answered, never retried.
pub async fn handle_event(api: &HttpApi, event: LambdaEvent<Value>) -> Result<Value, Error> {
    if event.payload.get("requestContext").is_none() {
        return Ok(eventbridge::handle(&api.service, &event.payload).await);
    }
    let request = lambda_http::request::from_str(&event.payload.to_string())?.with_lambda_context(event.context);
    let (parts, body) = handler(api, request).await?.into_parts();
    let mut headers = serde_json::Map::new();
    for (name, value) in &parts.headers {
        headers.insert(
            name.as_str().to_owned(),
            Value::String(value.to_str().unwrap_or_default().to_owned()),
        );
    }
    let body = match body {
        Body::Text(t) => t,
        Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    Ok(json!({"statusCode": parts.status.as_u16(), "headers": headers, "body": body, "isBase64Encoded": false}))
}
