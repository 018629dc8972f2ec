//! A recording endpoint for an AWS control-plane call that cannot run here: it answers
//! every request with one fixed JSON document and keeps each request's `X-Amz-Target`
//! and body. Used for ECS `RunTask` (moto 5.2.5's server answers it with a 500).

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_tests::wire::read_request;
use serde_json::Value;

/// One request: its `X-Amz-Target` header and its JSON body.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub target: String,
    pub body: Value,
}

/// The endpoint, listening on 127.0.0.1 until the test ends.
pub struct Recorder {
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Recorder {
    /// Listens on a free port and answers every request with `answer`.
    pub fn start(answer: Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = requests.clone();
        let answer = Arc::new(answer.to_string());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (kept, answer) = (kept.clone(), answer.clone());
                std::thread::spawn(move || serve(stream, &kept, &answer));
            }
        });
        Self { url, requests }
    }

    /// The requests so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests").clone()
    }

    /// Waits until `n` requests arrived (at most `timeout`) and answers them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let end = Instant::now() + timeout;
        while self.requests().len() < n && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let got = self.requests();
        assert!(got.len() >= n, "{} request(s) arrived, not {n}: {got:?}", got.len());
        got
    }
}

fn serve(stream: TcpStream, kept: &Mutex<Vec<Recorded>>, answer: &str) {
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let target = request.header("x-amz-target").unwrap_or_default().to_owned();
        let body = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        kept.lock().expect("requests").push(Recorded { target, body });
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        if writer
            .write_all(head.as_bytes())
            .and_then(|()| writer.write_all(answer.as_bytes()))
            .is_err()
        {
            return;
        }
    }
}
