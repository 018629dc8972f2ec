//! A producer on its own thread and the reader of its pipe, which fails instead of ending
//! when the producer failed: a truncated stream must never pass for a complete one.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use crate::engine::EngineError;

/// Runs `produce` on a thread of its own, writing into a pipe; answers the pipe's reader.
///
/// # Errors
/// The pipe or the thread could not be made.
pub fn spawn_producer(
    name: &str,
    produce: impl FnOnce(io::PipeWriter) -> Result<(), EngineError> + Send + 'static,
) -> io::Result<ProducedReader> {
    let (reader, writer) = io::pipe()?;
    let producer = std::thread::Builder::new().name(name.to_owned()).spawn(move || produce(writer))?;
    Ok(ProducedReader::new(reader, producer))
}

/// A reader over a producer's pipe that fails, instead of ending, when the producer
/// failed; the producer's own error is kept for the item's result.
pub struct ProducedReader {
    pipe: io::PipeReader,
    producer: Option<std::thread::JoinHandle<Result<(), EngineError>>>,
    /// The producer's error, once it ended with one.
    pub error: Arc<Mutex<Option<EngineError>>>,
}

impl ProducedReader {
    pub fn new(pipe: io::PipeReader, producer: std::thread::JoinHandle<Result<(), EngineError>>) -> Self {
        Self {
            pipe,
            producer: Some(producer),
            error: Arc::default(),
        }
    }
}

impl Read for ProducedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        let Some(producer) = self.producer.take() else { return Ok(0) };
        let outcome = producer
            .join()
            .unwrap_or_else(|_| Err(EngineError::SourceFailed("the source's producer panicked".into())));
        match outcome {
            Ok(()) => Ok(0),
            Err(e) => {
                let message = e.to_string();
                if let Ok(mut slot) = self.error.lock() {
                    *slot = Some(e);
                }
                Err(io::Error::other(message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_that_fails_fails_the_reader_instead_of_ending_it() {
        let (reader, mut writer) = io::pipe().unwrap();
        let producer = std::thread::spawn(move || {
            use std::io::Write;
            writer.write_all(b"half a dump").unwrap();
            Err(EngineError::SourceFailed("pg_dump exited with 1".into()))
        });
        let mut produced = ProducedReader::new(reader, producer);
        let mut out = Vec::new();
        let err = produced.read_to_end(&mut out).unwrap_err();
        assert_eq!(out, b"half a dump");
        assert!(err.to_string().contains("pg_dump exited with 1"));
        assert!(matches!(*produced.error.lock().unwrap(), Some(EngineError::SourceFailed(_))));
    }
}
