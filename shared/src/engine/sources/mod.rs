//! The producers: each reads one source and writes its stream (a tar archive or a raw
//! dump) into an [`ArchiveSink`]. They run on a blocking thread.
//!
//! # Layout
//! - [`directory`]: a directory tree as tar, links stored as links.
//! - [`database`]: PostgreSQL (pg_dump) and MySQL/MariaDB (mysqldump) dumps.
//! - [`command`]: any program whose standard output is the dump, run without a shell.
//! - [`s3`]: an S3 prefix as tar.
//! - [`config`]: Cairn's own configuration as a one-file tar.

pub mod command;
pub mod config;
pub mod database;
pub mod directory;
pub mod s3;

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tar::Header;

use super::io::{CountingReader, ExactReader};
use super::{EngineError, Signals};
use std::collections::HashMap;

use crate::domain::job::{secret_ref, DumpFormat, SecretRef};
use crate::domain::Source;
use crate::ports::ObjectStore;

pub use directory::known_size;

/// Default time limit of a dump command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// What producers need besides their source.
#[derive(Clone)]
pub struct SourceContext {
    pub signals: Arc<Signals>,
    /// Entries that could not be read, for the item's log and status.
    pub problems: Arc<Mutex<Vec<String>>>,
    /// Drives the object store's futures from the producer's blocking thread.
    pub runtime: tokio::runtime::Handle,
    /// The default object store: S3 sources are read from it, S3 targets written to it.
    pub objects: Arc<dyn ObjectStore>,
    /// The JSON document a `config` source archives.
    pub config_document: Option<Vec<u8>>,
    /// The Secrets Manager secrets the task names, read by the runner before it started.
    pub secrets: Arc<HashMap<String, String>>,
    /// Dumps are written uncompressed (PostgreSQL's custom format compresses by default):
    /// a repository's content-defined chunks find what did not change only in raw bytes.
    pub raw_dumps: bool,
}

impl std::fmt::Debug for SourceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceContext").finish_non_exhaustive()
    }
}

impl SourceContext {
    pub fn new(
        signals: Arc<Signals>,
        objects: Arc<dyn ObjectStore>,
        config_document: Option<Vec<u8>>,
        secrets: Arc<HashMap<String, String>>,
    ) -> Self {
        Self {
            signals,
            problems: Arc::new(Mutex::new(Vec::new())),
            runtime: tokio::runtime::Handle::current(),
            objects,
            config_document,
            secrets,
            raw_dumps: false,
        }
    }

    /// A secret an item names: a `CAIRN_SECRET_*` variable of the runner, or a Secrets
    /// Manager secret read before the task started. `what` names the field in errors.
    ///
    /// # Errors
    /// The variable is not set, or the secret was not read.
    pub fn secret_value(&self, secret: SecretRef<'_>, what: &str) -> Result<String, EngineError> {
        match secret {
            SecretRef::Env(var) => std::env::var(var)
                .map_err(|_| EngineError::InvalidSource(format!("environment variable {var} ({what}Env) is not set on the runner"))),
            SecretRef::Manager(name) => self
                .secrets
                .get(name)
                .cloned()
                .ok_or_else(|| EngineError::InvalidSource(format!("the Secrets Manager secret {name} ({what}Secret) was not read"))),
        }
    }

    fn problem(&self, message: String) {
        tracing::warn!(%message, "source problem");
        if let Ok(mut p) = self.problems.lock() {
            p.push(message);
        }
    }

    /// The problems recorded so far.
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// The short name of a source's kind, as manifests and logs give it.
pub fn kind_name(source: &Source) -> &'static str {
    match source {
        Source::Directory { .. } => "directory",
        Source::Postgres { .. } => "postgres",
        Source::Mysql { .. } => "mysql",
        Source::Command { .. } => "command",
        Source::S3 { .. } => "s3",
        Source::Config {} => "config",
    }
}

/// The object name of an item: `<item>.tar.zst` for trees, `<item>.<ext>.zst` for dumps.
pub fn object_name(item_name: &str, source: &Source) -> String {
    match source {
        Source::Directory { .. } | Source::S3 { .. } | Source::Config {} => {
            format!("{item_name}.tar.zst")
        }
        Source::Postgres {
            format: Some(DumpFormat::Plain),
            ..
        }
        | Source::Mysql { .. } => format!("{item_name}.sql.zst"),
        Source::Postgres { .. } => format!("{item_name}.dump.zst"),
        Source::Command { .. } => format!("{item_name}.out.zst"),
    }
}

/// Writes `source`'s stream into `out` and gives `out` back.
///
/// # Errors
/// [`EngineError::InvalidSource`] or [`EngineError::SourceFailed`] with a readable reason,
/// [`EngineError::Cancelled`].
pub fn produce<W: ArchiveSink>(source: &Source, out: W, ctx: &SourceContext) -> Result<W, EngineError> {
    let result = match source {
        Source::Directory { path, include, exclude } => directory::archive(Path::new(path), include, exclude, out, ctx),
        Source::Postgres {
            url,
            password_env,
            password_secret,
            format,
        } => {
            let password = secret_ref(password_env, password_secret).map_err(|e| EngineError::InvalidSource(e.reason))?;
            database::pg_dump(url, password, *format == Some(DumpFormat::Plain), out, ctx)
        }
        Source::Mysql {
            url,
            password_env,
            password_secret,
        } => {
            let password = secret_ref(password_env, password_secret).map_err(|e| EngineError::InvalidSource(e.reason))?;
            database::mysqldump(url, password, out, ctx)
        }
        Source::Command { argv, timeout_seconds } => {
            let limits = command::Limits::total(timeout_seconds.map_or(DEFAULT_COMMAND_TIMEOUT, Duration::from_secs));
            command::run(argv, None, limits, out, ctx)
        }
        Source::S3 { bucket, prefix } => s3::archive(bucket, prefix, out, ctx),
        Source::Config {} => config::archive(out, ctx),
    };
    match result {
        Err(_) if ctx.signals.cancelled() => Err(EngineError::Cancelled),
        other => other,
    }
}

/// How much of a file is read (and handed to the compressor) at a time.
pub(crate) const FILE_READ_SIZE: usize = 1 << 20;

/// Where a producer's archive or dump goes: a writer that can also take data straight
/// from a reader. The framed compressor's input reads into its own chunk buffers, which
/// saves copying everything archived once more; other writers take it through `buf`.
pub trait ArchiveSink: Write {
    /// Reads from `data` once, into the sink; answers how many bytes it took (0: `data`
    /// ended). `buf` is room for sinks that cannot take the data in place.
    fn read_from(&mut self, data: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
        let n = data.read(buf)?;
        self.write_all(&buf[..n])?;
        Ok(n)
    }
}

impl<S: ArchiveSink + ?Sized> ArchiveSink for &mut S {
    fn read_from(&mut self, data: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
        (**self).read_from(data, buf)
    }
}

impl ArchiveSink for Vec<u8> {}
impl ArchiveSink for io::PipeWriter {}
impl<W: Write> ArchiveSink for zstd::stream::write::Encoder<'_, W> {}

/// Moves everything `data` yields into `out` with [`ArchiveSink::read_from`].
pub(crate) fn pour<W: ArchiveSink>(data: &mut dyn Read, out: &mut W, buf: &mut [u8]) -> io::Result<()> {
    loop {
        match out.read_from(data, buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Appends one regular entry whose header `h` says its size: tar writes the header (and a
/// long-name record if `path` needs one) for an empty reader, then exactly that many bytes
/// of `data` follow, and the zeros that pad the entry to its 512-byte block. Reads go
/// straight into the sink (or `buf`), a MiB at a time, with no `io::copy` and its 8 KiB
/// steps between the source and the compressor. Says whether `data` ended early (the rest
/// is zeros).
pub(crate) fn append_entry<W: ArchiveSink>(
    b: &mut tar::Builder<W>,
    h: &mut Header,
    path: impl AsRef<Path>,
    data: impl Read,
    buf: &mut [u8],
    signals: &Arc<Signals>,
) -> io::Result<bool> {
    let size = h.size()?;
    b.append_data(h, path, io::empty())?;
    let out = b.get_mut();
    let counted = CountingReader {
        inner: data,
        signals: signals.clone(),
    };
    let mut reader = ExactReader::new(counted, size);
    pour(&mut reader, out, buf)?;
    let padding = usize::try_from((512 - size % 512) % 512).unwrap_or(0);
    out.write_all(&[0u8; 512][..padding])?;
    Ok(reader.was_short())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn object_names_say_the_format() {
        assert_eq!(
            object_name(
                "u",
                &Source::Directory {
                    path: "/x".into(),
                    include: vec![],
                    exclude: vec![]
                }
            ),
            "u.tar.zst"
        );
        assert_eq!(
            object_name(
                "db",
                &Source::Postgres {
                    url: "postgres://h/d".into(),
                    password_env: None,
                    password_secret: None,
                    format: None
                }
            ),
            "db.dump.zst"
        );
    }

    pub(crate) fn context(signals: Arc<Signals>) -> (tokio::runtime::Runtime, SourceContext) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let ctx = SourceContext {
            signals,
            problems: Arc::new(Mutex::new(Vec::new())),
            runtime: rt.handle().clone(),
            objects: Arc::new(crate::ports::memory::MemoryObjects::default()),
            config_document: None,
            secrets: Arc::default(),
            raw_dumps: false,
        };
        (rt, ctx)
    }
}
