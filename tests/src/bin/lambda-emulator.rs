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

use std::io::{BufReader, Write};

use cairn_tests::wire::read_request;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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
    while let Some(request) = read_request(&mut reader) {
        let (method, path, body) = (request.method.as_str(), request.path.as_str(), &request.body);
        let invocation_type = request.header("x-amz-invocation-type");
        if let Some(function) = path.strip_prefix("/2015-03-31/functions/") {
            let function = function.split('/').next().unwrap_or_default().to_owned();
            let payload: serde_json::Value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
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
            let _ = tx.send((kind.to_owned(), body.clone()));
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
