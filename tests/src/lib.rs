//! Integration tests live in `tests/integration`. This library holds what the test
//! programs share: [`wire`], the few lines of HTTP/1.1 that the Lambda runtime emulator and
//! the recording endpoint speak, and [`serve`], the accept loop of the hyper servers
//! (`bench-s3`, `fault-proxy`).

/// Serves HTTP/1 on `port` of the loopback interface forever, one task per connection,
/// each request answered by `handle`. An `Err` from `handle` closes its connection
/// unanswered (how `fault-proxy` resets one).
pub async fn serve<S, H, F, E>(name: &str, port: u16, state: S, handle: H)
where
    S: Clone + Send + Sync + 'static,
    H: Fn(S, hyper::Request<hyper::body::Incoming>) -> F + Copy + Send + Sync + 'static,
    F: std::future::Future<Output = Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    eprintln!("{name} listening on 127.0.0.1:{port}");
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

pub mod wire {
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpStream;

    /// One request as read off a connection.
    #[derive(Debug, Clone)]
    pub struct Request {
        pub method: String,
        pub path: String,
        /// Header names lower-cased, in order.
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Request {
        /// The value of header `name` (lower case), if sent.
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
        }
    }

    /// Reads the next request (request line, headers, a `Content-Length` body); `None`
    /// when the peer closed the connection or sent something else.
    pub fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).ok()? == 0 {
                return None;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        Some(Request {
            method,
            path,
            headers,
            body,
        })
    }
}
