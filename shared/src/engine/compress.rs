//! The compressor between a producer and the part sink.
//!
//! At levels up to [`MAX_FRAMED_LEVEL`], the stream is cut into frames of [`FRAME_SIZE`]
//! compressed side by side by one thread per core, each with zstd's streaming
//! (single-threaded) compressor, and written in order: a zstd stream of several frames,
//! which `zstd -d` and every decoder read as one. Measured on the benchmark's 1.1 GB with
//! two cores (`bench/backup.sh`, and a standalone comparison of the modes): zstd's own
//! multithreaded mode costs about 40% more CPU than its single-threaded one (1.53 against
//! 1.1-1.2 CPU-seconds at level 3); two framed compressors cost what one does, and finish
//! in 0.79 s instead of 1.2 s. The price is up to 2 MiB (level 3's window) of history lost
//! at each frame's start: about 0.5% more bytes stored.
//!
//! Higher levels use zstd's worker threads: whoever picks one wants the ratio, which
//! their overlapping jobs keep across job boundaries, and there compression costs so much
//! more per byte that the mode's overhead matters less. One core: one compressing thread
//! beside the producer, one frame.

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use zstd::stream::raw::{CParameter, InBuffer, Operation, OutBuffer};

use super::sources::{produce, ArchiveSink, SourceContext};
use super::EngineError;
use crate::domain::Source;

/// Size of the chunks the producer hands to a compressing thread, and of the pieces of
/// compressed output those hand to the writer.
const CHUNK_SIZE: usize = 1 << 20;
/// Chunks waiting for each compressing thread at most.
const CHUNKS_AHEAD: usize = 4;
/// Compressed pieces waiting for the writer per compressing thread at most. A thread
/// whose frame is done before the one ahead of it waits once, and from then on the
/// threads run half a frame apart, which this covers.
const PIECES_AHEAD: usize = 5;
/// Input bytes per frame when frames are compressed side by side.
pub const FRAME_SIZE: u64 = 8 << 20;
/// The highest level compressed in frames (the fast and lazy strategies).
pub const MAX_FRAMED_LEVEL: i32 = 9;

/// How a stream is compressed on a machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// `threads` compressing threads, a frame of at most `frame_size` each in turn.
    Frames { threads: usize, frame_size: u64 },
    /// zstd's multithreaded mode with this many workers.
    ZstdWorkers(u32),
}

fn plan(level: i32, cores: usize) -> Plan {
    let cores = cores.clamp(1, 8);
    if cores == 1 {
        Plan::Frames {
            threads: 1,
            frame_size: u64::MAX,
        }
    } else if level <= MAX_FRAMED_LEVEL {
        Plan::Frames {
            threads: cores,
            frame_size: FRAME_SIZE,
        }
    } else {
        Plan::ZstdWorkers(u32::try_from(cores).unwrap_or(1))
    }
}

/// tar/dump → zstd (→ age) → `out`; gives `out` back once every layer is finished.
pub fn compress_into<W: Write + Send>(source: &Source, level: i32, out: W, ctx: &SourceContext) -> Result<W, EngineError> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    match plan(level, cores) {
        Plan::Frames { threads, frame_size } => {
            compress_in_frames(threads, frame_size, level, out, |w| produce(source, w, ctx).map(|_| ()))
        }
        Plan::ZstdWorkers(workers) => {
            let mut encoder = zstd::stream::write::Encoder::new(out, level)?;
            encoder.multithread(workers)?;
            let encoder = produce(source, encoder, ctx)?;
            Ok(encoder.finish()?)
        }
    }
}

/// What the producer sends a compressing thread.
enum Chunk {
    /// The first `len` bytes of a buffer of [`CHUNK_SIZE`], which goes back to the
    /// producer whole (never shortened, so it needs no zeroing to be read into again).
    Data(Vec<u8>, usize),
    /// Finish the frame. A frame the producer never ends (it failed) is dropped.
    EndFrame,
}

/// What a compressing thread sends the writer.
enum Piece {
    Data(Vec<u8>),
    /// The frame is complete: the writer goes on with the next thread.
    FrameEnd,
}

fn gone(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, format!("the {what} stopped"))
}

/// Runs `feed` (the producer) on this thread, `threads` compressors and one writer that
/// owns `out`, and gives `out` back once the stream is complete.
fn compress_in_frames<W, F>(threads: usize, frame_size: u64, level: i32, out: W, feed: F) -> Result<W, EngineError>
where
    W: Write + Send,
    F: FnOnce(&mut FrameWriter) -> Result<(), EngineError>,
{
    // Input buffers come back here for the producer's next chunks.
    let (free_tx, free_rx) = sync_channel::<Vec<u8>>(threads * CHUNKS_AHEAD + 2);
    std::thread::scope(|scope| {
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        let mut compressors = Vec::new();
        for i in 0..threads {
            let (tx, rx) = sync_channel::<Chunk>(CHUNKS_AHEAD);
            let (piece_tx, piece_rx) = sync_channel::<Piece>(PIECES_AHEAD);
            let free = free_tx.clone();
            compressors.push(
                std::thread::Builder::new()
                    .name(format!("cairn-zstd-{i}"))
                    .spawn_scoped(scope, move || compress_frames(&rx, &piece_tx, &free, level))?,
            );
            inputs.push(tx);
            outputs.push(piece_rx);
        }
        let writer = std::thread::Builder::new()
            .name("cairn-frames".into())
            .spawn_scoped(scope, move || write_frames(&outputs, out))?;
        let mut frames = FrameWriter {
            inputs,
            free: free_rx,
            buf: vec![0; CHUNK_SIZE],
            filled: 0,
            current: 0,
            in_frame: 0,
            frame_size,
            frames: 0,
        };
        let produced = feed(&mut frames).and_then(|()| Ok(frames.end()?));
        drop(frames);
        let mut compressed = Ok(());
        for c in compressors {
            let result = c
                .join()
                .map_err(|_| io::Error::other("a compressing thread panicked"))
                .and_then(|r| r);
            if compressed.is_ok() {
                compressed = result;
            }
        }
        let written = writer
            .join()
            .map_err(|_| io::Error::other("the writing thread panicked"))
            .and_then(|r| r);
        // The first cause wins: a failed sink stops the compressors, which stop the producer.
        match (written, compressed, produced) {
            (Err(e), _, _) | (Ok(_), Err(e), _) => Err(e.into()),
            (Ok(_), Ok(()), Err(e)) => Err(e),
            (Ok(out), Ok(()), Ok(())) => Ok(out),
        }
    })
}

/// A compressing thread: one frame after another, each from a fresh session of the same
/// context, its output cut into pieces for the writer.
fn compress_frames(rx: &Receiver<Chunk>, pieces: &SyncSender<Piece>, free: &SyncSender<Vec<u8>>, level: i32) -> io::Result<()> {
    let mut encoder = zstd::stream::raw::Encoder::new(level)?;
    if let Some(size) = max_block_size(level) {
        encoder.set_parameter(CParameter::MaxBlockSize(size))?;
    }
    let mut piece = Vec::with_capacity(PIECE_CAPACITY);
    for chunk in rx {
        match chunk {
            Chunk::Data(data, len) => {
                let mut input = InBuffer::around(&data[..len]);
                while input.pos() < len {
                    let pos = room(&mut piece, pieces, PIECE_ROOM)?;
                    encoder.run(&mut input, &mut OutBuffer::around_pos(&mut piece, pos))?;
                }
                let _ = free.try_send(data);
            }
            Chunk::EndFrame => {
                loop {
                    let pos = room(&mut piece, pieces, PIECE_ROOM)?;
                    if encoder.finish(&mut OutBuffer::around_pos(&mut piece, pos), true)? == 0 {
                        break;
                    }
                }
                // Whatever the frame left in the piece goes before its end.
                room(&mut piece, pieces, PIECE_CAPACITY)?;
                pieces.send(Piece::FrameEnd).map_err(|_| gone("writer"))?;
                encoder.reinit()?;
            }
        }
    }
    Ok(())
}

/// The largest block zstd may make at `level`, where it is not its default of 128 KiB.
///
/// zstd 1.5.7 looks for a better place to end each full 128 KiB block (its block
/// pre-splitter; the zstd 1.5.4 of Debian's CLI has none). At the double-fast levels (3,
/// the default, and 4) that cost 5-7% of the compressor's CPU on the benchmark's 1.1 GB
/// tar and saved nothing: compressed by hand at level 3 on one thread, blocks of 127 KiB
/// gave 585,026,880 bytes in 1.07-1.13 CPU-s, the splitter 585,168,446 in 1.14-1.18; the
/// whole object `bench/backup.sh` stores went from 586,083,284 to 586,070,651 bytes, and
/// `cairn serve`'s CPU per run (which the script prints) down by about 4%. zstd only
/// pre-splits full-size blocks, so blocks a KiB shorter skip it. At levels 1-2 it is
/// cheap, and from 5 on it earns its cost in ratio, so those keep it.
fn max_block_size(level: i32) -> Option<u32> {
    matches!(level, 3 | 4).then_some(127 << 10)
}

/// Room kept in a piece for zstd's next output, and a piece's capacity.
const PIECE_ROOM: usize = 64 << 10;
const PIECE_CAPACITY: usize = CHUNK_SIZE + (128 << 10);

/// Sends `piece` to the writer (and starts a new one) if it is not empty and has less than
/// `wanted` bytes of room; answers where the next output goes.
fn room(piece: &mut Vec<u8>, pieces: &SyncSender<Piece>, wanted: usize) -> io::Result<usize> {
    if !piece.is_empty() && piece.capacity() - piece.len() < wanted {
        let full = std::mem::replace(piece, Vec::with_capacity(PIECE_CAPACITY));
        pieces.send(Piece::Data(full)).map_err(|_| gone("writer"))?;
    }
    Ok(piece.len())
}

/// The writer: frames in order, taking them from the compressing threads in turn. A
/// thread that has ended means the stream has (frames go to the threads in turn).
fn write_frames<W: Write>(outputs: &[Receiver<Piece>], mut out: W) -> io::Result<W> {
    loop {
        for rx in outputs {
            loop {
                match rx.recv() {
                    Ok(Piece::Data(data)) => out.write_all(&data)?,
                    Ok(Piece::FrameEnd) => break,
                    Err(_) => return Ok(out),
                }
            }
        }
    }
}

/// The producer's end: cuts what it writes into chunks and frames for the compressing
/// threads in turn, reusing the buffers they give back. Files are read straight into
/// those buffers ([`ArchiveSink::read_from`]).
pub struct FrameWriter {
    inputs: Vec<SyncSender<Chunk>>,
    free: Receiver<Vec<u8>>,
    /// The chunk being filled: always [`CHUNK_SIZE`] long, its first `filled` bytes taken.
    buf: Vec<u8>,
    filled: usize,
    current: usize,
    /// Bytes of the current frame already sent.
    in_frame: u64,
    frame_size: u64,
    frames: u64,
}

impl FrameWriter {
    fn send_chunk(&mut self) -> io::Result<()> {
        if self.filled == 0 {
            return Ok(());
        }
        let next = self.free.try_recv().unwrap_or_else(|_| vec![0; CHUNK_SIZE]);
        let full = std::mem::replace(&mut self.buf, next);
        let len = std::mem::take(&mut self.filled);
        self.in_frame += len as u64;
        self.inputs[self.current]
            .send(Chunk::Data(full, len))
            .map_err(|_| gone("compressor"))
    }

    fn end_frame(&mut self) -> io::Result<()> {
        self.send_chunk()?;
        self.inputs[self.current].send(Chunk::EndFrame).map_err(|_| gone("compressor"))?;
        self.frames += 1;
        self.in_frame = 0;
        self.current = (self.current + 1) % self.inputs.len();
        Ok(())
    }

    /// Ends the stream's last frame (an empty stream still gets one frame).
    fn end(&mut self) -> io::Result<()> {
        if self.filled > 0 || self.in_frame > 0 || self.frames == 0 {
            self.end_frame()?;
        }
        Ok(())
    }

    /// Where the next bytes go: the rest of the chunk, up to the end of the frame (never
    /// empty: a full chunk or frame is sent as soon as it is full).
    fn space(&mut self) -> &mut [u8] {
        let frame_left = self.frame_size - self.in_frame - self.filled as u64;
        let room = (CHUNK_SIZE - self.filled).min(usize::try_from(frame_left).unwrap_or(usize::MAX));
        &mut self.buf[self.filled..self.filled + room]
    }

    /// Takes `n` more bytes written into [`Self::space`], sending the chunk or ending the
    /// frame once full.
    fn took(&mut self, n: usize) -> io::Result<usize> {
        self.filled += n;
        if self.in_frame + self.filled as u64 == self.frame_size {
            self.end_frame()?;
        } else if self.filled == CHUNK_SIZE {
            self.send_chunk()?;
        }
        Ok(n)
    }
}

impl Write for FrameWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let space = self.space();
        let n = data.len().min(space.len());
        space[..n].copy_from_slice(&data[..n]);
        self.took(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ArchiveSink for FrameWriter {
    fn read_from(&mut self, data: &mut dyn Read, _buf: &mut [u8]) -> io::Result<usize> {
        let n = data.read(self.space())?;
        self.took(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compressible, not repetitive: words drawn from a small vocabulary by an LCG.
    fn text(len: usize) -> Vec<u8> {
        let words: [&[u8]; 8] = [b"cairn ", b"backup ", b"zstd ", b"frame ", b"restore ", b"s3 ", b"part ", b"\n"];
        let (mut x, mut out) = (12345u64, Vec::with_capacity(len + 8));
        while out.len() < len {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            out.extend_from_slice(words[usize::try_from(x >> 61).unwrap()]);
        }
        out.truncate(len);
        out
    }

    fn frames_in(mut stream: &[u8]) -> usize {
        let mut n = 0;
        while !stream.is_empty() {
            let size = zstd::zstd_safe::find_frame_compressed_size(stream).unwrap();
            stream = &stream[size..];
            n += 1;
        }
        n
    }

    #[test]
    fn frames_compressed_side_by_side_decode_to_the_stream_in_order() {
        let frame = CHUNK_SIZE + 1000;
        let data = text(4 * frame + 12_345);
        for threads in [1, 2, 3] {
            let out = compress_in_frames(threads, frame as u64, 3, Vec::new(), |w| {
                // Uneven writes, as a tar builder makes them, and reads straight into the
                // chunks, as a file's data comes.
                for (i, piece) in data.chunks(70_001).enumerate() {
                    if i % 2 == 0 {
                        w.write_all(piece)?;
                    } else {
                        let mut reader = piece;
                        while w.read_from(&mut reader, &mut [])? > 0 {}
                    }
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(zstd::decode_all(out.as_slice()).unwrap(), data, "{threads} threads");
            assert_eq!(frames_in(&out), 5, "{threads} threads");
            assert!(out.len() < data.len() / 3);
        }
    }

    /// The sizes of the blocks of the first frame of `stream` (their content sizes, as
    /// for raw blocks, which incompressible data makes).
    fn block_sizes(stream: &[u8]) -> Vec<usize> {
        assert_eq!(stream[..4], [0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
        let descriptor = stream[4];
        let single_segment = descriptor & 0x20 != 0;
        let content_size_bytes = match descriptor >> 6 {
            0 => usize::from(single_segment),
            1 => 2,
            2 => 4,
            _ => 8,
        };
        let dict_id_bytes = [0, 1, 2, 4][usize::from(descriptor & 3)];
        let mut at = 5 + usize::from(!single_segment) + dict_id_bytes + content_size_bytes;
        let mut sizes = Vec::new();
        loop {
            let header = u32::from_le_bytes([stream[at], stream[at + 1], stream[at + 2], 0]);
            let (last, kind, size) = (header & 1 == 1, (header >> 1) & 3, (header >> 3) as usize);
            assert_eq!(kind, 0, "a raw block");
            sizes.push(size);
            at += 3 + size;
            if last {
                return sizes;
            }
        }
    }

    #[test]
    fn the_double_fast_levels_make_blocks_short_of_128_kib_and_others_do_not() {
        // Random bytes: zstd stores them in raw blocks, whose headers give their sizes.
        let (mut x, mut data) = (7u64, Vec::with_capacity(CHUNK_SIZE));
        while data.len() < CHUNK_SIZE {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            data.extend_from_slice(&(x >> 32).to_le_bytes()[..4]);
        }
        for level in [1, 2, 3, 4, 5, 9] {
            let out = compress_in_frames(1, u64::MAX, level, Vec::new(), |w| Ok(w.write_all(&data)?)).unwrap();
            let largest = block_sizes(&out).into_iter().max().unwrap();
            let expected = max_block_size(level).map_or(128 << 10, |s| s as usize);
            assert_eq!(largest, expected, "level {level}");
            assert_eq!(zstd::decode_all(out.as_slice()).unwrap(), data, "level {level}");
        }
        assert_eq!(max_block_size(3), Some(127 << 10));
    }

    #[test]
    fn one_thread_with_no_frame_size_makes_one_frame() {
        let data = text(3 * CHUNK_SIZE);
        let out = compress_in_frames(1, u64::MAX, 3, Vec::new(), |w| Ok(w.write_all(&data)?)).unwrap();
        assert_eq!(frames_in(&out), 1);
        assert_eq!(zstd::decode_all(out.as_slice()).unwrap(), data);
    }

    #[test]
    fn an_empty_stream_is_one_empty_frame() {
        let out = compress_in_frames(2, FRAME_SIZE, 3, Vec::new(), |_| Ok(())).unwrap();
        assert_eq!(frames_in(&out), 1);
        assert!(zstd::decode_all(out.as_slice()).unwrap().is_empty());
    }

    #[test]
    fn a_failing_producer_fails_the_stream() {
        let result = compress_in_frames(2, CHUNK_SIZE as u64, 3, Vec::new(), |w| {
            w.write_all(&text(3 * CHUNK_SIZE))?;
            Err(EngineError::SourceFailed("the dump failed".into()))
        });
        assert_eq!(
            result.unwrap_err().to_string(),
            EngineError::SourceFailed("the dump failed".into()).to_string()
        );
    }

    /// Takes `limit` bytes, then fails as a stopped uploader does.
    struct FailingSink(usize);

    impl Write for FailingSink {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if self.0 < data.len() {
                return Err(io::Error::other("the uploader stopped"));
            }
            self.0 -= data.len();
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failing_sink_stops_everything_and_says_why() {
        let data = text(40 * CHUNK_SIZE);
        let result = compress_in_frames(2, CHUNK_SIZE as u64, 1, FailingSink(100_000), |w| Ok(w.write_all(&data)?));
        assert_eq!(
            result.err().map(|e| e.to_string()).as_deref(),
            Some("I/O error: the uploader stopped")
        );
    }

    #[test]
    fn every_level_s_plan_gives_an_archive_that_decodes() {
        let (_rt, mut ctx) = crate::engine::sources::tests::context(crate::engine::Signals::new());
        let document = text(3 * CHUNK_SIZE);
        ctx.config_document = Some(document.clone());
        for level in [1, 3, MAX_FRAMED_LEVEL + 3] {
            let out = compress_into(&Source::Config {}, level, Vec::new(), &ctx).unwrap();
            let tar = zstd::decode_all(out.as_slice()).unwrap();
            let mut archive = tar::Archive::new(tar.as_slice());
            let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
            let mut data = Vec::new();
            io::Read::read_to_end(&mut entry, &mut data).unwrap();
            assert_eq!(data, document, "level {level}");
        }
    }

    #[test]
    fn low_levels_are_framed_on_several_cores_and_high_ones_use_zstd_workers() {
        assert_eq!(
            plan(3, 1),
            Plan::Frames {
                threads: 1,
                frame_size: u64::MAX
            }
        );
        assert_eq!(
            plan(3, 2),
            Plan::Frames {
                threads: 2,
                frame_size: FRAME_SIZE
            }
        );
        assert_eq!(
            plan(MAX_FRAMED_LEVEL, 64),
            Plan::Frames {
                threads: 8,
                frame_size: FRAME_SIZE
            }
        );
        assert_eq!(plan(19, 4), Plan::ZstdWorkers(4));
        assert_eq!(
            plan(19, 1),
            Plan::Frames {
                threads: 1,
                frame_size: u64::MAX
            }
        );
    }
}
