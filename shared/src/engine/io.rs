//! The readers the pipeline is made of: counting what a source yields, keeping a tar
//! entry exactly its header's size, hashing what passes, and reading an object-store body
//! from a blocking thread.

use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::StreamExt;
use sha2::{Digest, Sha256};

use super::Signals;
use crate::ports::ObjectBody;

/// Counts bytes read from a source into [`Signals::input_bytes`], and stops with an error
/// once the run is cancelled.
#[derive(Debug)]
pub struct CountingReader<R> {
    pub inner: R,
    pub signals: Arc<Signals>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.signals.cancelled() {
            return Err(Signals::cancelled_error());
        }
        let n = self.inner.read(buf)?;
        self.signals.input_bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Stops with an error once the run is cancelled, counting nothing (where another reader
/// of the same stream counts already).
#[derive(Debug)]
pub struct CancellableReader<R> {
    pub inner: R,
    pub signals: Arc<Signals>,
}

impl<R: Read> Read for CancellableReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.signals.cancelled() {
            return Err(Signals::cancelled_error());
        }
        self.inner.read(buf)
    }
}

/// Yields exactly `size` bytes: a file that shrank while being read is padded with zeros
/// (and reported), one that grew is cut, so the tar header stays true.
#[derive(Debug)]
pub struct ExactReader<R> {
    inner: R,
    remaining: u64,
    /// Set once the source ended early.
    short: bool,
}

impl<R> ExactReader<R> {
    pub fn new(inner: R, size: u64) -> Self {
        Self {
            inner,
            remaining: size,
            short: false,
        }
    }

    /// Whether the source ended before `size` bytes (the rest was zeros).
    pub fn was_short(&self) -> bool {
        self.short
    }
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        let n = if n == 0 {
            self.short = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Counts and hashes what passes through.
#[derive(Debug)]
pub struct Tee<R> {
    inner: R,
    sha: Sha256,
    bytes: u64,
}

impl<R> Tee<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            sha: Sha256::new(),
            bytes: 0,
        }
    }

    /// The SHA-256 (hex) and the size of what was read.
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.sha.finalize()), self.bytes)
    }
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// A blocking `Read` over an object's body, for the threads that decompress and unpack.
pub struct BodyReader {
    body: ObjectBody,
    pending: bytes::Bytes,
    /// Set once the body ended: its stream is not polled again.
    ended: bool,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for BodyReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader").field("body", &self.body).finish_non_exhaustive()
    }
}

impl BodyReader {
    /// `runtime` drives the body's stream; the reader must be used off its threads.
    pub fn new(body: ObjectBody, runtime: tokio::runtime::Handle) -> Self {
        Self {
            body,
            pending: bytes::Bytes::new(),
            ended: false,
            runtime,
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.runtime.block_on(self.body.chunks.next()) {
                Some(Ok(b)) => self.pending = b,
                Some(Err(e)) => return Err(io::Error::other(e.to_string())),
                None => self.ended = true,
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending.split_to(n));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_reader_pads_a_short_source() {
        let mut r = ExactReader::new(&b"abc"[..], 5);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0");
        assert!(r.was_short());
    }

    #[test]
    fn exact_reader_cuts_a_longer_source() {
        let mut r = ExactReader::new(&b"abcdef"[..], 4);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcd");
        assert!(!r.was_short());
    }

    #[test]
    fn a_body_reader_polls_its_stream_no_more_after_the_end() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        // An unfold panics when polled after it ended, as the S3 adapter's body would.
        let chunks = futures::stream::unfold(0, |n| async move { (n < 2).then(|| (Ok(bytes::Bytes::from_static(b"ab")), n + 1)) });
        let body = ObjectBody {
            size: None,
            chunks: chunks.boxed(),
        };
        let mut r = BodyReader::new(body, rt.handle().clone());
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abab");
        assert_eq!(r.read(&mut [0u8; 4]).unwrap(), 0);
    }

    #[test]
    fn tee_hashes_and_counts_what_passes() {
        let mut t = Tee::new(&b"abc"[..]);
        std::io::copy(&mut t, &mut std::io::sink()).unwrap();
        let (sha, bytes) = t.finish();
        assert_eq!(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(bytes, 3);
    }
}
