//! `cairn serve`: the whole HTTP API on one port, routed as template.yaml routes it in AWS.
//!
//! Each request becomes the API Gateway (HTTP API, payload 2.0) event Lambda would
//! receive, parsed by `lambda_http` exactly as in AWS, and goes to the handler of the
//! function that template.yaml routes it to.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use cairn_shared::http::routes::{resolve, Function};
use cairn_shared::http::MAX_BODY_BYTES;
use cairn_shared::wiring::App;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tracing::{error, info};

/// Serves until the process is stopped.
pub async fn serve(app: Arc<App>, listener: TcpListener) -> anyhow::Result<()> {
    info!(address = %listener.local_addr()?, "serving the Cairn API");
    loop {
        let (stream, peer) = listener.accept().await?;
        let app = app.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(&app, peer, req).await) }
            });
            if let Err(e) = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        });
    }
}

async fn handle(app: &App, peer: SocketAddr, req: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    // Read at most one byte past the limit: enough for the handler to answer 413, never
    // an unbounded buffer.
    let body = match Limited::new(body, MAX_BODY_BYTES + 1).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::from(vec![0u8; MAX_BODY_BYTES + 1]),
    };
    let event = api_gateway_event(&parts, &body, peer);
    let request = match lambda_http::request::from_str(&event.to_string()) {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "could not build the API Gateway event");
            return json_response(400, &json!({"success": false, "error": format!("Malformed request: {e}")}));
        }
    };
    // Unknown routes go to the `$default` route's function (list), as in template.yaml.
    let function = resolve(parts.method.as_str(), parts.uri.path()).map_or(Function::List, |r| r.def.function);
    let api = &app.http;
    let response = match function {
        Function::Run => cairn_run::handler(api, request).await,
        Function::Poll => cairn_poll::handler(api, request).await,
        Function::List => cairn_list::handler(api, request).await,
        Function::Manage => cairn_manage::handler(api, request).await,
    };
    match response {
        Ok(r) => {
            let (parts, body) = r.into_parts();
            let mut out = hyper::Response::new(Full::new(Bytes::from(body.to_vec())));
            *out.status_mut() = parts.status;
            *out.headers_mut() = parts.headers;
            out
        }
        Err(e) => json_response(500, &json!({"success": false, "error": format!("handler failed: {e}")})),
    }
}

fn json_response(status: u16, body: &Value) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *out.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    out.headers_mut()
        .insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    out
}

/// The payload-2.0 event API Gateway would send for this request.
fn api_gateway_event(parts: &http::request::Parts, body: &Bytes, peer: SocketAddr) -> Value {
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(name.as_str()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                headers.insert(name.as_str().to_owned(), Value::String(v));
            }
        }
    }
    let raw_query = parts.uri.query().unwrap_or("");
    let mut query = Map::new();
    for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
        match query.get_mut(k.as_ref()) {
            Some(Value::String(existing)) => {
                existing.push(',');
                existing.push_str(&v);
            }
            _ => {
                query.insert(k.into_owned(), Value::String(v.into_owned()));
            }
        }
    }
    let (body_text, is_base64) = match std::str::from_utf8(body) {
        Ok(s) => (s.to_owned(), false),
        Err(_) => {
            use base64_engine::Engine;
            (base64_engine::STANDARD.encode(body), true)
        }
    };
    let now = chrono::Utc::now();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.uri.path(),
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "local",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": {
                "method": parts.method.as_str(),
                "path": parts.uri.path(),
                "protocol": "HTTP/1.1",
                "sourceIp": peer.ip().to_string(),
                "userAgent": parts.headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or(""),
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S +0000").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": is_base64,
    });
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !body.is_empty() {
        event["body"] = Value::String(body_text);
    }
    event
}

mod base64_engine {
    pub use base64::engine::general_purpose::STANDARD;
    pub use base64::Engine;
}
