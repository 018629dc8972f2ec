//! The end of the pipeline that the compressor writes into.

use std::io::{self, Write};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use crc_fast::CrcAlgorithm;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::Signals;

/// One multipart part, with its CRC64NVME (S3 checks it on receipt).
#[derive(Debug, Clone)]
pub struct Part {
    pub number: i32,
    pub data: Bytes,
    pub crc64nvme: u64,
}

/// What the sink saw once the stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    pub sha256: String,
    pub bytes: u64,
    pub parts: i32,
    /// The whole stream's CRC64NVME, as S3 gives it for a full-object checksum (base64 of
    /// the big-endian value). S3 checks it when the upload completes and returns it on HEAD.
    pub crc64nvme: String,
}

/// S3's text form of a CRC64NVME: base64 of its eight big-endian bytes.
pub fn crc64nvme_text(crc: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes())
}

/// Counts and cuts the stream into parts of `part_size`, sending each to the uploader
/// through a bounded channel (so a slow upload slows the producer down instead of
/// buffering), and to a hashing thread that computes the stream's SHA-256 beside the
/// compressor instead of in its way.
#[derive(Debug)]
pub struct PartSink {
    tx: mpsc::Sender<Part>,
    buf: Vec<u8>,
    /// Buffers of parts that were uploaded and hashed, for the next parts: new ones would be
    /// fresh pages for the kernel to fault in and zero, on the thread that writes here.
    pool: BufferPool,
    part_size: usize,
    hasher: Hasher,
    /// CRC64NVME of everything sent so far (the parts' CRCs combined).
    crc: u64,
    bytes: u64,
    next_part: i32,
    signals: Arc<Signals>,
}

impl PartSink {
    pub fn new(tx: mpsc::Sender<Part>, part_size: usize, signals: Arc<Signals>) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(part_size),
            pool: BufferPool::new(),
            part_size,
            hasher: Hasher::start(),
            crc: 0,
            bytes: 0,
            next_part: 1,
            signals,
        }
    }

    fn send_part(&mut self) -> io::Result<()> {
        let next = self.pool.take().unwrap_or_else(|| Vec::with_capacity(self.part_size));
        let data = std::mem::replace(&mut self.buf, next);
        let crc64nvme = crc_fast::checksum(CrcAlgorithm::Crc64Nvme, &data);
        self.crc = if self.next_part == 1 {
            crc64nvme
        } else {
            crc_fast::checksum_combine(CrcAlgorithm::Crc64Nvme, self.crc, crc64nvme, data.len() as u64)
        };
        let data = self.pool.lend(data);
        self.hasher.feed(data.clone())?;
        let part = Part {
            number: self.next_part,
            data,
            crc64nvme,
        };
        self.next_part += 1;
        self.tx
            .blocking_send(part)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the uploader stopped"))
    }

    /// Sends the last part and summarises the stream.
    ///
    /// # Errors
    /// When the uploader has stopped.
    pub fn finish(mut self) -> io::Result<StreamSummary> {
        if !self.buf.is_empty() || self.next_part == 1 {
            self.send_part()?;
        }
        Ok(StreamSummary {
            sha256: self.hasher.finish()?,
            bytes: self.bytes,
            parts: self.next_part - 1,
            crc64nvme: crc64nvme_text(self.crc),
        })
    }
}

impl Write for PartSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.signals.cancelled() {
            return Err(Signals::cancelled_error());
        }
        let room = self.part_size - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        self.bytes += n as u64;
        if self.buf.len() == self.part_size {
            self.send_part()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Part buffers that come back once the last `Bytes` over them is dropped.
#[derive(Debug)]
struct BufferPool {
    returned: std::sync::mpsc::Receiver<Vec<u8>>,
    give_back: std::sync::mpsc::SyncSender<Vec<u8>>,
}

/// Parts alive at once at most: those uploading, queued for the uploader and the hasher,
/// and the one being filled. More returned buffers than this are freed.
const POOLED_BUFFERS: usize = 8;

impl BufferPool {
    fn new() -> Self {
        let (give_back, returned) = std::sync::mpsc::sync_channel(POOLED_BUFFERS);
        Self { returned, give_back }
    }

    fn take(&self) -> Option<Vec<u8>> {
        self.returned.try_recv().ok()
    }

    fn lend(&self, data: Vec<u8>) -> Bytes {
        Bytes::from_owner(Lent {
            data,
            home: self.give_back.clone(),
        })
    }
}

struct Lent {
    data: Vec<u8>,
    home: std::sync::mpsc::SyncSender<Vec<u8>>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let mut data = std::mem::take(&mut self.data);
        data.clear();
        let _ = self.home.try_send(data);
    }
}

/// SHA-256 of the parts, in order, on a thread of its own (at most a few parts behind).
#[derive(Debug)]
struct Hasher {
    tx: Option<std::sync::mpsc::SyncSender<Bytes>>,
    thread: Option<std::thread::JoinHandle<String>>,
}

impl Hasher {
    fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(2);
        let thread = std::thread::Builder::new()
            .name("cairn-sha256".into())
            .spawn(move || {
                let mut sha = Sha256::new();
                for data in rx {
                    sha.update(&data);
                }
                hex::encode(sha.finalize())
            })
            .ok();
        Self { tx: Some(tx), thread }
    }

    fn gone() -> io::Error {
        io::Error::other("the hashing thread stopped")
    }

    fn feed(&mut self, data: Bytes) -> io::Result<()> {
        self.tx.as_ref().ok_or_else(Self::gone)?.send(data).map_err(|_| Self::gone())
    }

    fn finish(&mut self) -> io::Result<String> {
        drop(self.tx.take());
        self.thread.take().ok_or_else(Self::gone)?.join().map_err(|_| Self::gone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn a_part_buffer_comes_back_empty_once_its_last_holder_drops_it() {
        let pool = BufferPool::new();
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(b"part data");
        let lent = pool.lend(v);
        let copy = lent.clone();
        drop(lent);
        assert!(pool.take().is_none(), "still held by a clone");
        assert_eq!(&copy[..], b"part data");
        drop(copy);
        let back = pool.take().unwrap();
        assert!(back.is_empty());
        assert!(back.capacity() >= 64);
    }

    #[test]
    fn parts_are_cut_at_the_part_size_and_the_summary_matches_the_data() {
        let (tx, mut rx) = mpsc::channel(16);
        let mut sink = PartSink::new(tx, 10, Signals::new());
        let data: Vec<u8> = (0..25u8).collect();
        sink.write_all(&data).unwrap();
        let summary = sink.finish().unwrap();
        let mut parts = Vec::new();
        while let Ok(p) = rx.try_recv() {
            parts.push(p);
        }
        assert_eq!(parts.iter().map(|p| p.data.len()).collect::<Vec<_>>(), vec![10, 10, 5]);
        assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), vec![1, 2, 3]);
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.data.to_vec()).collect();
        assert_eq!(joined, data);
        assert_eq!(summary.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(summary.bytes, 25);
        for p in &parts {
            assert_eq!(p.crc64nvme, crc_fast::checksum(CrcAlgorithm::Crc64Nvme, &p.data));
        }
        // The combined CRC is the whole stream's, in S3's form.
        assert_eq!(
            summary.crc64nvme,
            crc64nvme_text(crc_fast::checksum(CrcAlgorithm::Crc64Nvme, &data))
        );
    }

    #[test]
    fn the_crc_is_crc64_nvme_as_s3_expects_it() {
        // CRC-64/NVME's published check value for "123456789".
        assert_eq!(crc_fast::checksum(CrcAlgorithm::Crc64Nvme, b"123456789"), 0xAE8B_1486_0A79_9888);
        assert_eq!(crc64nvme_text(0xAE8B_1486_0A79_9888), "rosUhgp5mIg=");
    }

    #[test]
    fn an_empty_stream_still_makes_one_part() {
        let (tx, mut rx) = mpsc::channel(4);
        let summary = PartSink::new(tx, 10, Signals::new()).finish().unwrap();
        assert_eq!(summary.parts, 1);
        assert!(rx.try_recv().is_ok());
    }

    #[test]
    fn when_cancelled_writes_fail() {
        let (tx, _rx) = mpsc::channel(4);
        let signals = Signals::new();
        let mut sink = PartSink::new(tx, 10, signals.clone());
        signals.cancel.store(true, Ordering::Relaxed);
        assert!(sink.write(b"x").is_err());
    }
}
