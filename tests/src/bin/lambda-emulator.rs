//! A minimal Lambda Runtime API for running a function's `bootstrap` here: it serves the
//! events given on the command line to the binary (started with `AWS_LAMBDA_RUNTIME_API`
//! pointing at it), collects the responses, and prints one JSON document:
//! `{"coldStartMs": ..., "responses": [...]}` (cold start: process start to first
//! response). Used by the integration tests and `scripts/runtime-figures.sh`.
//!
//! It is also the function's Lambda endpoint (`AWS_ENDPOINT_URL_LAMBDA`): an `Invoke` the
//! function sends (the runner handing its queue to a fresh invocation) is answered 202 and
//! listed under `"invokes"`. `LAMBDA_EMULATOR_DEADLINE_MS` (default 60000) sets how far
//! away each invocation's deadline is.
//!
//! Usage: `lambda-emulator EVENT.json [EVENT.json ...] -- /path/to/bootstrap`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A request: method, path, the `X-Amz-Invocation-Type` header, body.
type Request = (String, String, Option<String>, Vec<u8>);

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut length = 0usize;
    let mut invocation_type = None;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            } else if k.eq_ignore_ascii_case("x-amz-invocation-type") {
                invocation_type = Some(v.trim().to_owned());
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, invocation_type, body))
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// What the emulator shares between connections.
struct Shared {
    events: Vec<Vec<u8>>,
    next: std::sync::atomic::AtomicUsize,
    deadline_ms: u128,
    invokes: std::sync::Mutex<Vec<serde_json::Value>>,
}

fn serve_connection(stream: TcpStream, shared: &Shared, tx: &mpsc::Sender<(String, Vec<u8>)>) {
    let (events, next) = (&shared.events, &shared.next);
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    while let Some((method, path, invocation_type, body)) = read_request(&mut reader) {
        if let Some(function) = path.strip_prefix("/2015-03-31/functions/") {
            let function = function.split('/').next().unwrap_or_default().to_owned();
            let payload: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            let invoke = serde_json::json!({"function": function, "invocationType": invocation_type, "payload": payload});
            shared.invokes.lock().expect("invokes").push(invoke);
            respond(&mut writer, "202 Accepted", &[], b"");
        } else if method == "GET" && path.ends_with("/invocation/next") {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n >= events.len() {
                // No more events: hold the function here until it is stopped.
                std::thread::sleep(Duration::from_secs(3600));
                return;
            }
            let deadline = (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + shared.deadline_ms)
                .to_string();
            let headers = [
                ("Lambda-Runtime-Aws-Request-Id", format!("req-{n}")),
                ("Lambda-Runtime-Deadline-Ms", deadline),
                (
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:000000000000:function:emulated".to_owned(),
                ),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000".to_owned()),
            ];
            respond(&mut writer, "200 OK", &headers, &events[n]);
        } else if method == "POST" {
            respond(&mut writer, "202 Accepted", &[], b"{}");
            let kind = if path.ends_with("/response") { "response" } else { "error" };
            let _ = tx.send((kind.to_owned(), body));
        } else {
            respond(&mut writer, "404 Not Found", &[], b"{}");
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args
        .iter()
        .position(|a| a == "--")
        .expect("usage: lambda-emulator EVENT.json... -- BOOTSTRAP");
    let events: Vec<Vec<u8>> = args[..split]
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}")))
        .collect();
    let program = &args[split + 1..];
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let (tx, rx) = mpsc::channel::<(String, Vec<u8>)>();
    let total = events.len();
    let deadline_ms = std::env::var("LAMBDA_EMULATOR_DEADLINE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000);
    let shared = std::sync::Arc::new(Shared {
        events,
        next: std::sync::atomic::AtomicUsize::new(0),
        deadline_ms,
        invokes: std::sync::Mutex::new(Vec::new()),
    });
    let serving = shared.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (shared, tx) = (serving.clone(), tx.clone());
            // The runtime may open a new connection per request: serve each on its own thread.
            std::thread::spawn(move || serve_connection(stream, &shared, &tx));
        }
    });
    let started = Instant::now();
    let mut child = Command::new(&program[0])
        .args(&program[1..])
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_ENDPOINT_URL_LAMBDA", format!("http://{address}"))
        .env(
            "AWS_LAMBDA_FUNCTION_NAME",
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "emulated".into()),
        )
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "local")
        // The function's stdout (where the runner prints its metrics) joins its stderr.
        .stdout(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned().expect("stderr")))
        .spawn()
        .expect("start the function");
    let mut responses = Vec::new();
    let mut cold_start_ms = None;
    for _ in 0..total {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((kind, body)) => {
                cold_start_ms.get_or_insert(started.elapsed().as_secs_f64() * 1000.0);
                let parsed: serde_json::Value =
                    serde_json::from_slice(&body).unwrap_or(serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
                responses.push(serde_json::json!({"kind": kind, "body": parsed}));
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let invokes = shared.invokes.lock().expect("invokes").clone();
    println!(
        "{}",
        serde_json::json!({"coldStartMs": cold_start_ms, "responses": responses, "invokes": invokes})
    );
}
