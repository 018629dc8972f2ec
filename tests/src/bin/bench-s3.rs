//! A small, fast S3 endpoint for `bench/backup.sh`: objects are kept in memory, as the
//! chunks they arrived in (no copy). It serves what Cairn, `aws s3 cp` and restic use: buckets
//! (create, head, location), objects (put, get with ranges, head, delete, list v1/v2),
//! multipart uploads (create, upload part, complete, abort) and aws-chunked bodies.
//!
//! Like S3 it checks what clients send: Content-MD5, and CRC64NVME / CRC32 / CRC32C
//! checksums on parts and objects, including a multipart upload's full-object checksum on
//! completion, and returns the checksum on HEAD/GET. The ETag is the MD5 when the client
//! sent one and an opaque value otherwise (as S3's is for SSE-KMS objects). Signatures are
//! not checked: it is a benchmark sink, listening on loopback only.
//!
//! Usage: `bench-s3 --port PORT [--no-checksums] [--corrupt] [--misreport]`
//!
//! The flags make it a store the integration tests need: `--no-checksums` keeps no
//! checksums (like S3-compatible servers that predate them), `--corrupt` flips a bit of
//! every object it stores after checking what it received (a store that damages data),
//! `--misreport` keeps data intact but answers a wrong checksum on HEAD and GET (as moto
//! does without `awscrt`). Bucket settings (versioning, encryption, ...) answer
//! NotImplemented, as s3s-fs does.

// Handlers return the error response itself.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use crc_fast::CrcAlgorithm;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use md5::{Digest, Md5};

type Body = Full<Bytes>;

/// A stored object: its data is the concatenation of `chunks` (a multipart object keeps
/// its parts' chunks instead of copying them into one).
#[derive(Clone)]
struct Object {
    chunks: Vec<Bytes>,
    size: u64,
    etag: String,
    checksum: Option<(&'static str, String)>,
    full_object: bool,
}

struct Upload {
    bucket: String,
    key: String,
    algorithm: Option<String>,
    parts: BTreeMap<i32, Part>,
}

struct Part {
    chunks: Vec<Bytes>,
    size: u64,
    etag: String,
    crc64: u64,
}

struct Store {
    no_checksums: bool,
    corrupt: bool,
    misreport: bool,
    buckets: Mutex<HashMap<String, BTreeMap<String, Object>>>,
    uploads: Mutex<HashMap<String, Upload>>,
    next_id: AtomicU64,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn xml(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"
    ))));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", "application/xml".parse().unwrap());
    r
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    xml(
        status,
        format!("<Error><Code>{code}</Code><Message>{}</Message></Error>", escape(message)),
    )
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// The answer to a stored object or part: its ETag, and the checksum it was sent with.
fn stored(etag: &str, checksum: Option<(&'static str, String)>) -> Response<Body> {
    let mut r = empty(StatusCode::OK);
    r.headers_mut().insert("etag", format!("\"{etag}\"").parse().unwrap());
    if let Some((name, value)) = checksum {
        r.headers_mut().insert(name, value.parse().unwrap());
    }
    r
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Decodes `%XX` escapes (and `+` as a space in query strings).
fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

fn header<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Decodes an aws-chunked body (`<hex size>[;chunk-signature=...]\r\n<data>\r\n`... then
/// trailers), returning the data and the trailers.
fn decode_aws_chunked(raw: &[u8]) -> Result<(Vec<u8>, HashMap<String, String>), String> {
    let mut data = Vec::with_capacity(raw.len());
    let mut trailers = HashMap::new();
    let mut pos = 0;
    let line = |pos: usize| -> Result<(String, usize), String> {
        let end = raw[pos..].windows(2).position(|w| w == b"\r\n").ok_or("unterminated chunk line")?;
        Ok((String::from_utf8_lossy(&raw[pos..pos + end]).into_owned(), pos + end + 2))
    };
    loop {
        let (size_line, next) = line(pos)?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).map_err(|e| e.to_string())?;
        pos = next;
        if size == 0 {
            break;
        }
        data.extend_from_slice(raw.get(pos..pos + size).ok_or("chunk longer than the body")?);
        pos += size + 2;
    }
    while pos < raw.len() {
        let (l, next) = line(pos)?;
        pos = next;
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            trailers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    Ok((data, trailers))
}

/// The checksums clients may send: header, algorithm, width in bytes.
const CHECKSUMS: [(&str, CrcAlgorithm, usize); 3] = [
    ("x-amz-checksum-crc64nvme", CrcAlgorithm::Crc64Nvme, 8),
    ("x-amz-checksum-crc32", CrcAlgorithm::Crc32IsoHdlc, 4),
    ("x-amz-checksum-crc32c", CrcAlgorithm::Crc32Iscsi, 4),
];

/// A request body's data (after aws-chunked decoding) as the chunks it arrived in.
struct Received {
    chunks: Vec<Bytes>,
    size: u64,
    etag: String,
    crc64: u64,
    /// The checksum the client sent (header name, value), checked.
    checksum: Option<(&'static str, String)>,
}

/// Reads a body, checking every checksum the client sent (Content-MD5, CRCs), as S3 does.
/// The error is the response to send.
async fn read_body(req: Request<Incoming>) -> Result<Received, Response<Body>> {
    let (parts, mut body) = req.into_parts();
    let h = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| error(StatusCode::BAD_REQUEST, "IncompleteBody", &e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            chunks.push(data);
        }
    }
    let chunked = h("content-encoding").is_some_and(|v| v.contains("aws-chunked"))
        || h("x-amz-content-sha256").is_some_and(|v| v.starts_with("STREAMING-"));
    let mut trailers = HashMap::new();
    if chunked {
        let raw: Vec<u8> = chunks.concat();
        let (d, t) = decode_aws_chunked(&raw).map_err(|e| error(StatusCode::BAD_REQUEST, "IncompleteBody", &e))?;
        chunks = vec![Bytes::from(d)];
        trailers = t;
    }
    let digest = |algorithm: CrcAlgorithm| {
        let mut d = crc_fast::Digest::new(algorithm);
        for c in &chunks {
            d.update(c);
        }
        d.finalize()
    };
    let crc64 = digest(CrcAlgorithm::Crc64Nvme);
    let size: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    let mut etag = None;
    if let Some(expected) = h("content-md5") {
        let mut md5 = Md5::new();
        for c in &chunks {
            md5.update(c);
        }
        let md5 = md5.finalize();
        if b64(&md5) != expected {
            return Err(error(StatusCode::BAD_REQUEST, "BadDigest", "Content-MD5 does not match"));
        }
        etag = Some(hex::encode(md5));
    }
    let mut checksum = None;
    for (name, algorithm, width) in CHECKSUMS {
        if let Some(expected) = h(name).or_else(|| trailers.get(name).cloned()) {
            let value = if algorithm == CrcAlgorithm::Crc64Nvme {
                crc64
            } else {
                digest(algorithm)
            };
            let got = b64(&value.to_be_bytes()[8 - width..]);
            if got != expected {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "BadDigest",
                    &format!("{name} {expected} does not match {got}"),
                ));
            }
            checksum = Some((name, got));
        }
    }
    // Without an MD5 the ETag is opaque, as for SSE-KMS objects: unique per content
    // without hashing it again.
    let etag = etag.unwrap_or_else(|| format!("{crc64:016x}{size:016x}"));
    Ok(Received {
        chunks,
        size,
        etag,
        crc64,
        checksum,
    })
}

impl Store {
    fn object(&self, bucket: &str, key: &str) -> Option<Object> {
        self.buckets.lock().unwrap().get(bucket)?.get(key).cloned()
    }

    fn put(&self, bucket: &str, key: &str, mut object: Object) -> Result<(), Response<Body>> {
        if self.corrupt {
            if let Some(first) = object.chunks.iter_mut().find(|c| !c.is_empty()) {
                let mut damaged = first.to_vec();
                damaged[0] ^= 1;
                *first = Bytes::from(damaged);
            }
        }
        let mut buckets = self.buckets.lock().unwrap();
        let b = buckets
            .get_mut(bucket)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, "NoSuchBucket", bucket))?;
        b.insert(key.to_owned(), object);
        Ok(())
    }
}

fn object_headers(r: &mut Response<Body>, o: &Object, with_checksum: bool, misreport: bool) {
    let h = r.headers_mut();
    h.insert("etag", format!("\"{}\"", o.etag).parse().unwrap());
    h.insert("last-modified", "Mon, 23 Nov 2026 00:00:00 GMT".parse().unwrap());
    h.insert("accept-ranges", "bytes".parse().unwrap());
    h.insert("content-type", "application/octet-stream".parse().unwrap());
    if let (true, Some((name, value))) = (with_checksum, &o.checksum) {
        // A wrong value of the right shape: the first character changed.
        let value = if misreport {
            let swapped = if value.starts_with('A') { "B" } else { "A" };
            format!("{swapped}{}", &value[1..])
        } else {
            value.clone()
        };
        h.insert(*name, value.parse().unwrap());
        let kind = if o.full_object { "FULL_OBJECT" } else { "COMPOSITE" };
        h.insert("x-amz-checksum-type", kind.parse().unwrap());
    }
}

fn read_range(o: &Object, start: u64, end: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
    let mut offset = 0u64;
    for c in &o.chunks {
        let (c_start, c_end) = (offset, offset + c.len() as u64);
        offset = c_end;
        if c_end <= start || c_start >= end {
            continue;
        }
        let from = usize::try_from(start.max(c_start) - c_start).unwrap_or(0);
        let to = usize::try_from(end.min(c_end) - c_start).unwrap_or(0);
        out.extend_from_slice(&c[from..to]);
    }
    out
}

fn parse_range(range: &str, size: u64) -> Option<(u64, u64)> {
    let spec = range.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        return Some((size.saturating_sub(n), size));
    }
    let start: u64 = a.parse().ok()?;
    let end = if b.is_empty() {
        size
    } else {
        (b.parse::<u64>().ok()? + 1).min(size)
    };
    (start < end).then_some((start, end))
}

fn tag<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

fn list(store: &Store, bucket: &str, q: &HashMap<String, String>) -> Response<Body> {
    let buckets = store.buckets.lock().unwrap();
    let Some(objects) = buckets.get(bucket) else {
        return error(StatusCode::NOT_FOUND, "NoSuchBucket", bucket);
    };
    let v2 = q.get("list-type").is_some_and(|v| v == "2");
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let delimiter = q.get("delimiter").cloned().filter(|d| !d.is_empty());
    let max: usize = q.get("max-keys").and_then(|m| m.parse().ok()).unwrap_or(1000).min(1000);
    let after = if v2 {
        q.get("continuation-token").or_else(|| q.get("start-after")).cloned()
    } else {
        q.get("marker").cloned()
    }
    .unwrap_or_default();
    let mut contents = String::new();
    let mut prefixes: Vec<String> = Vec::new();
    let (mut count, mut last, mut truncated) = (0, String::new(), false);
    for (key, o) in objects.range::<String, _>((std::ops::Bound::Excluded(&after), std::ops::Bound::Unbounded)) {
        if !key.starts_with(&prefix) {
            if key.as_str() > prefix.as_str() && !prefix.is_empty() {
                break;
            }
            continue;
        }
        if let Some(d) = &delimiter {
            if let Some(i) = key[prefix.len()..].find(d.as_str()) {
                let p = key[..prefix.len() + i + d.len()].to_owned();
                if prefixes.last() != Some(&p) {
                    if count == max {
                        truncated = true;
                        break;
                    }
                    prefixes.push(p);
                    count += 1;
                }
                last.clone_from(key);
                continue;
            }
        }
        if count == max {
            truncated = true;
            break;
        }
        contents.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>2026-11-23T00:00:00.000Z</LastModified><ETag>&quot;{}&quot;</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            escape(key),
            o.etag,
            o.size
        ));
        count += 1;
        last.clone_from(key);
    }
    let common: String = prefixes
        .iter()
        .map(|p| format!("<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>", escape(p)))
        .collect();
    let paging = match (truncated, v2) {
        (true, true) => format!("<NextContinuationToken>{}</NextContinuationToken>", escape(&last)),
        (true, false) => format!("<NextMarker>{}</NextMarker>", escape(&last)),
        _ => String::new(),
    };
    let key_count = if v2 {
        format!("<KeyCount>{count}</KeyCount>")
    } else {
        String::new()
    };
    xml(
        StatusCode::OK,
        format!(
            "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{}</Name><Prefix>{}</Prefix>{key_count}<MaxKeys>{max}</MaxKeys><IsTruncated>{truncated}</IsTruncated>{paging}{contents}{common}</ListBucketResult>",
            escape(bucket),
            escape(&prefix)
        ),
    )
}

async fn handle(store: Arc<Store>, req: Request<Incoming>) -> Response<Body> {
    let path = percent_decode(req.uri().path(), false);
    let path = path.trim_start_matches('/').to_owned();
    let (bucket, key) = path
        .split_once('/')
        .map_or((path.clone(), String::new()), |(b, k)| (b.to_owned(), k.to_owned()));
    let q = query(&req);
    let method = req.method().clone();
    if bucket.is_empty() {
        let names: String = store
            .buckets
            .lock()
            .unwrap()
            .keys()
            .map(|b| {
                format!(
                    "<Bucket><Name>{}</Name><CreationDate>2026-11-23T00:00:00.000Z</CreationDate></Bucket>",
                    escape(b)
                )
            })
            .collect();
        return xml(
            StatusCode::OK,
            format!("<ListAllMyBucketsResult><Buckets>{names}</Buckets></ListAllMyBucketsResult>"),
        );
    }
    if key.is_empty() {
        // Like s3s-fs: bucket settings (versioning, encryption, ...) are not implemented.
        let setting = [
            "versioning",
            "encryption",
            "publicAccessBlock",
            "lifecycle",
            "policy",
            "tagging",
            "acl",
        ]
        .iter()
        .any(|s| q.contains_key(*s));
        return match method {
            Method::PUT if setting => error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", "bucket setting"),
            Method::PUT => {
                store.buckets.lock().unwrap().entry(bucket).or_default();
                empty(StatusCode::OK)
            }
            Method::HEAD if store.buckets.lock().unwrap().contains_key(&bucket) => empty(StatusCode::OK),
            Method::HEAD => empty(StatusCode::NOT_FOUND),
            Method::GET if q.contains_key("location") => xml(
                StatusCode::OK,
                "<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></LocationConstraint>".into(),
            ),
            Method::GET => list(&store, &bucket, &q),
            _ => error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", "bucket operation"),
        };
    }
    match (method, q.get("uploadId").cloned()) {
        (Method::POST, None) if q.contains_key("uploads") => {
            let id = format!("u{}", store.next_id.fetch_add(1, Ordering::Relaxed));
            let algorithm = header(&req, "x-amz-checksum-algorithm").map(str::to_ascii_uppercase);
            store.uploads.lock().unwrap().insert(
                id.clone(),
                Upload {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    algorithm,
                    parts: BTreeMap::new(),
                },
            );
            xml(
                StatusCode::OK,
                format!(
                    "<InitiateMultipartUploadResult><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
                    escape(&bucket),
                    escape(&key)
                ),
            )
        }
        (Method::PUT, Some(id)) => {
            let Some(number) = q.get("partNumber").and_then(|n| n.parse::<i32>().ok()) else {
                return error(StatusCode::BAD_REQUEST, "InvalidArgument", "partNumber");
            };
            if !store.uploads.lock().unwrap().contains_key(&id) {
                return error(StatusCode::NOT_FOUND, "NoSuchUpload", &id);
            }
            let got = match read_body(req).await {
                Ok(x) => x,
                Err(r) => return r,
            };
            let (etag, checksum) = (got.etag.clone(), got.checksum.clone());
            let part = Part {
                chunks: got.chunks,
                size: got.size,
                etag: got.etag,
                crc64: got.crc64,
            };
            let mut uploads = store.uploads.lock().unwrap();
            let Some(u) = uploads.get_mut(&id) else {
                return error(StatusCode::NOT_FOUND, "NoSuchUpload", &id);
            };
            u.parts.insert(number, part);
            stored(&etag, checksum)
        }
        (Method::POST, Some(id)) => {
            let full = header(&req, "x-amz-checksum-crc64nvme").map(str::to_owned);
            let body = match req.into_body().collect().await {
                Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                Err(e) => return error(StatusCode::BAD_REQUEST, "IncompleteBody", &e.to_string()),
            };
            let Some(upload) = store.uploads.lock().unwrap().remove(&id) else {
                return error(StatusCode::NOT_FOUND, "NoSuchUpload", &id);
            };
            let wanted: Vec<i32> = tag(&body, "PartNumber").iter().filter_map(|n| n.trim().parse().ok()).collect();
            let mut chunks = Vec::new();
            let (mut size, mut crc, mut md5s) = (0u64, 0u64, Vec::new());
            for n in &wanted {
                let Some(p) = upload.parts.get(n) else {
                    return error(StatusCode::BAD_REQUEST, "InvalidPart", &format!("part {n}"));
                };
                crc = if size == 0 {
                    p.crc64
                } else {
                    crc_fast::checksum_combine(CrcAlgorithm::Crc64Nvme, crc, p.crc64, p.size)
                };
                // S3's multipart ETag is the MD5 of the parts' binary MD5s (opaque ETags,
                // of parts sent without Content-MD5, count as their text).
                match hex::decode(&p.etag) {
                    Ok(md5) if md5.len() == 16 => md5s.extend_from_slice(&md5),
                    _ => md5s.extend_from_slice(p.etag.as_bytes()),
                }
                chunks.extend(p.chunks.iter().cloned());
                size += p.size;
            }
            let crc_text = b64(&crc.to_be_bytes());
            if let Some(expected) = &full {
                if *expected != crc_text {
                    return error(StatusCode::BAD_REQUEST, "BadDigest", "the full-object CRC64NVME does not match");
                }
            }
            let is_crc64 = upload.algorithm.as_deref() == Some("CRC64NVME") || full.is_some();
            let etag = format!("{}-{}", hex::encode(Md5::digest(&md5s)), wanted.len());
            let object = Object {
                chunks,
                size,
                etag: etag.clone(),
                checksum: is_crc64.then_some(("x-amz-checksum-crc64nvme", crc_text)),
                full_object: true,
            };
            if let Err(r) = store.put(&upload.bucket, &upload.key, object) {
                return r;
            }
            xml(
                StatusCode::OK,
                format!(
                    "<CompleteMultipartUploadResult><Bucket>{}</Bucket><Key>{}</Key><ETag>&quot;{etag}&quot;</ETag></CompleteMultipartUploadResult>",
                    escape(&bucket),
                    escape(&key)
                ),
            )
        }
        (Method::DELETE, Some(id)) => {
            store.uploads.lock().unwrap().remove(&id);
            empty(StatusCode::NO_CONTENT)
        }
        (Method::PUT, None) => {
            if header(&req, "x-amz-copy-source").is_some() {
                return error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", "copy");
            }
            let got = match read_body(req).await {
                Ok(x) => x,
                Err(r) => return r,
            };
            let (etag, checksum) = (got.etag.clone(), got.checksum.clone());
            let object = Object {
                chunks: got.chunks,
                size: got.size,
                etag: etag.clone(),
                checksum: checksum.clone(),
                full_object: true,
            };
            if let Err(r) = store.put(&bucket, &key, object) {
                return r;
            }
            stored(&etag, checksum)
        }
        (m @ (Method::GET | Method::HEAD), None) => {
            let Some(o) = store.object(&bucket, &key) else {
                return if m == Method::HEAD {
                    empty(StatusCode::NOT_FOUND)
                } else {
                    error(StatusCode::NOT_FOUND, "NoSuchKey", &key)
                };
            };
            let with_checksum = header(&req, "x-amz-checksum-mode").is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
            let range = header(&req, "range").and_then(|r| parse_range(r, o.size));
            let (start, end) = range.unwrap_or((0, o.size));
            let data = if m == Method::HEAD {
                Vec::new()
            } else {
                read_range(&o, start, end)
            };
            let mut r = Response::new(Full::new(Bytes::from(data)));
            object_headers(&mut r, &o, with_checksum && range.is_none() && !store.no_checksums, store.misreport);
            if range.is_some() {
                *r.status_mut() = StatusCode::PARTIAL_CONTENT;
                r.headers_mut()
                    .insert("content-range", format!("bytes {start}-{}/{}", end - 1, o.size).parse().unwrap());
            }
            r.headers_mut().insert("content-length", (end - start).to_string().parse().unwrap());
            r
        }
        (Method::DELETE, None) => {
            if let Some(b) = store.buckets.lock().unwrap().get_mut(&bucket) {
                b.remove(&key);
            }
            empty(StatusCode::NO_CONTENT)
        }
        _ => error(StatusCode::NOT_IMPLEMENTED, "NotImplemented", "object operation"),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (port, flags) = match args.as_slice() {
        [_, flag, port, flags @ ..]
            if flag == "--port"
                && flags
                    .iter()
                    .all(|f| ["--no-checksums", "--corrupt", "--misreport"].contains(&f.as_str())) =>
        {
            (port.parse::<u16>().expect("port"), flags)
        }
        _ => {
            eprintln!("usage: bench-s3 --port PORT [--no-checksums] [--corrupt] [--misreport]");
            std::process::exit(2);
        }
    };
    let store = Arc::new(Store {
        no_checksums: flags.iter().any(|f| f == "--no-checksums"),
        corrupt: flags.iter().any(|f| f == "--corrupt"),
        misreport: flags.iter().any(|f| f == "--misreport"),
        buckets: Mutex::new(HashMap::new()),
        uploads: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
    });
    cairn_tests::serve("bench-s3", port, store, |store, req| async move {
        Ok::<_, Infallible>(handle(store, req).await)
    })
    .await;
}
