//! A fault-injecting proxy for tests: it sits between Cairn and the local endpoint and,
//! by flags, answers a share of one operation's requests with a fault instead of passing
//! them on.
//!
//! Usage: `fault-proxy --port PORT --upstream URL [--fault OPERATION=SHARE:KIND]...`
//!
//! - OPERATION: an S3 or DynamoDB operation (`UploadPart`, `CompleteMultipartUpload`,
//!   `UpdateItem`, `TransactWriteItems`, ...), named from the request as the services
//!   name it (DynamoDB's `X-Amz-Target`, S3's method and query).
//! - SHARE: the fraction of that operation's requests that fault, from 0 to 1. Faults are
//!   spread evenly and deterministically: with 0.1, the 5th, 15th, 25th, ... request.
//! - KIND: `500` (InternalError), `503` (S3's SlowDown; DynamoDB's ThrottlingException),
//!   `reset` (the connection is closed without an answer) or `delay:MS` (passed on late).
//!
//! `GET /__proxy/stats` answers `{"Operation": {"requests": n, "faults": m}}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Error500,
    Busy503,
    Reset,
    Delay(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Fault {
    share: f64,
    kind: Kind,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u64,
    faults: u64,
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    faults: HashMap<String, Fault>,
    counts: Mutex<HashMap<String, Counts>>,
}

/// The operation a request is, as the services name it.
fn operation(req: &Request<hyper::body::Incoming>) -> String {
    if let Some(target) = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    let query = req.uri().query().unwrap_or("");
    let has = |name: &str| query.split('&').any(|p| p == name || p.starts_with(&format!("{name}=")));
    let path = req.uri().path().trim_start_matches('/');
    let object = path.contains('/') && !path.ends_with('/');
    let name = match (req.method().as_str(), object) {
        ("POST", _) if has("uploads") => "CreateMultipartUpload",
        ("POST", _) if has("uploadId") => "CompleteMultipartUpload",
        ("POST", _) if has("delete") => "DeleteObjects",
        ("PUT", _) if has("partNumber") => "UploadPart",
        ("DELETE", _) if has("uploadId") => "AbortMultipartUpload",
        ("GET", _) if has("uploadId") => "ListParts",
        ("GET", _) if has("uploads") => "ListMultipartUploads",
        ("PUT", true) => "PutObject",
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("DELETE", true) => "DeleteObject",
        ("GET", false) => "ListObjects",
        ("HEAD", false) => "HeadBucket",
        ("PUT", false) => "PutBucket",
        _ => "Other",
    };
    name.to_owned()
}

impl Proxy {
    /// Counts the request and answers the fault it gets, if any.
    fn fault_for(&self, op: &str) -> Option<Kind> {
        let mut counts = self.counts.lock().unwrap();
        let c = counts.entry(op.to_owned()).or_default();
        c.requests += 1;
        let fault = self.faults.get(op)?;
        // Evenly spread: the n-th request faults when n * share + 1/2 crosses a whole
        // number (the half starts the first fault half a period in, not a whole one).
        #[allow(clippy::cast_precision_loss)]
        let at = |n: u64| (n as f64 * fault.share + 0.5).floor();
        let crosses = at(c.requests) > at(c.requests - 1);
        if crosses {
            c.faults += 1;
            Some(fault.kind)
        } else {
            None
        }
    }

    fn stats(&self) -> Response<Full<Bytes>> {
        let counts = self.counts.lock().unwrap();
        let body: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(op, c)| (op.clone(), serde_json::json!({"requests": c.requests, "faults": c.faults})))
            .collect();
        Response::new(Full::new(Bytes::from(serde_json::Value::Object(body).to_string())))
    }

    async fn forward(&self, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, String> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        let url = format!(
            "{}{}",
            self.upstream,
            parts.uri.path_and_query().map_or("/", hyper::http::uri::PathAndQuery::as_str)
        );
        let head = parts.method == hyper::Method::HEAD;
        let mut out = self.client.request(parts.method, url).body(body);
        for (name, value) in &parts.headers {
            // Hop-by-hop and framing headers are the client's own to set.
            if !matches!(name.as_str(), "host" | "connection" | "content-length" | "transfer-encoding") {
                out = out.header(name, value);
            }
        }
        let got = out.send().await.map_err(|e| e.to_string())?;
        let status = got.status();
        let headers = got.headers().clone();
        let bytes = got.bytes().await.map_err(|e| e.to_string())?;
        let mut r = Response::new(Full::new(bytes));
        *r.status_mut() = status;
        for (name, value) in &headers {
            // The body is sent whole, so its length is the server's to set; a HEAD's
            // Content-Length is the object's, and passed on.
            let framing = matches!(name.as_str(), "connection" | "transfer-encoding") || (name == "content-length" && !head);
            if !framing {
                r.headers_mut().append(name, value.clone());
            }
        }
        Ok(r)
    }
}

/// The fault's answer, shaped as the service would send it.
fn fault_response(op_is_dynamo: bool, kind: Kind) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (op_is_dynamo, kind) {
        (true, Kind::Busy503) => (
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"injected"}"#,
        ),
        (true, _) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected"}"#,
        ),
        (false, Kind::Busy503) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "application/xml",
            "<Error><Code>SlowDown</Code><Message>injected</Message></Error>",
        ),
        (false, _) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/xml",
            "<Error><Code>InternalError</Code><Message>injected</Message></Error>",
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", content_type.parse().unwrap());
    r
}

async fn handle(proxy: Arc<Proxy>, req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, String> {
    if req.uri().path() == "/__proxy/stats" {
        return Ok(proxy.stats());
    }
    let op = operation(&req);
    let dynamo = req.headers().contains_key("x-amz-target");
    match proxy.fault_for(&op) {
        Some(Kind::Reset) => return Err(format!("injected reset of {op}")),
        Some(Kind::Delay(d)) => tokio::time::sleep(d).await,
        Some(kind) => return Ok(fault_response(dynamo, kind)),
        None => {}
    }
    match proxy.forward(req).await {
        Ok(r) => Ok(r),
        Err(e) => {
            let mut r = Response::new(Full::new(Bytes::from(format!("upstream failed: {e}"))));
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            Ok(r)
        }
    }
}

fn parse_fault(text: &str) -> Result<(String, Fault), String> {
    let (op, rest) = text.split_once('=').ok_or("expected OPERATION=SHARE:KIND")?;
    let (share, kind) = rest.split_once(':').ok_or("expected SHARE:KIND")?;
    let share: f64 = share.parse().map_err(|_| format!("share '{share}' is not a number"))?;
    if !(0.0..=1.0).contains(&share) {
        return Err(format!("share {share} is not between 0 and 1"));
    }
    let kind = match kind {
        "500" => Kind::Error500,
        "503" => Kind::Busy503,
        "reset" => Kind::Reset,
        other => match other.strip_prefix("delay:").and_then(|ms| ms.parse::<u64>().ok()) {
            Some(ms) => Kind::Delay(Duration::from_millis(ms)),
            None => return Err(format!("kind '{other}' is none of 500, 503, reset, delay:MS")),
        },
    };
    Ok((op.to_owned(), Fault { share, kind }))
}

fn usage(problem: &str) -> ! {
    eprintln!("fault-proxy: {problem}\nusage: fault-proxy --port PORT --upstream URL [--fault OPERATION=SHARE:KIND]...");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut port, mut upstream, mut faults) = (None, None, HashMap::new());
    let mut i = 0;
    while i < args.len() {
        let value = args
            .get(i + 1)
            .cloned()
            .unwrap_or_else(|| usage(&format!("{} needs a value", args[i])));
        match args[i].as_str() {
            "--port" => port = Some(value.parse::<u16>().unwrap_or_else(|_| usage("--port takes a number"))),
            "--upstream" => upstream = Some(value.trim_end_matches('/').to_owned()),
            "--fault" => {
                let (op, fault) = parse_fault(&value).unwrap_or_else(|e| usage(&e));
                faults.insert(op, fault);
            }
            other => usage(&format!("unknown flag {other}")),
        }
        i += 2;
    }
    let (Some(port), Some(upstream)) = (port, upstream) else {
        usage("--port and --upstream are required")
    };
    let proxy = Arc::new(Proxy {
        upstream,
        client: reqwest::Client::builder().build().expect("client"),
        faults,
        counts: Mutex::new(HashMap::new()),
    });
    // A handler error (an injected reset) closes the connection unanswered.
    cairn_tests::serve("fault-proxy", port, proxy, handle).await;
}
