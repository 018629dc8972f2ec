//! The producers: each reads one source and writes its stream (a tar archive or a raw
//! dump) into a `Write`. They run on a blocking thread.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use globset::{Glob, GlobSet, GlobSetBuilder};
use tar::{EntryType, Header, HeaderMode};
use walkdir::WalkDir;

use super::sink::CountingReader;
use super::verify::BodyReader;
use super::{EngineError, Signals};
use crate::model::job::DumpFormat;
use crate::model::Source;

/// Default time limit of a dump command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// What producers need besides their source.
#[derive(Debug, Clone)]
pub struct SourceContext {
    pub signals: Arc<Signals>,
    /// Entries that could not be read, for the item's log and status.
    pub problems: Arc<Mutex<Vec<String>>>,
    pub runtime: tokio::runtime::Handle,
    pub s3: aws_sdk_s3::Client,
    /// The JSON document a `config` source archives.
    pub config_document: Option<Vec<u8>>,
}

impl SourceContext {
    fn problem(&self, message: String) {
        tracing::warn!(%message, "source problem");
        if let Ok(mut p) = self.problems.lock() {
            p.push(message);
        }
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

/// The total size of a directory source's files, for progress; `None` for other sources.
/// The same entries as [`archive_directory`] reads, found with `read_dir` so that each is
/// described relative to its directory (no lookup of its whole path), as it runs beside
/// the backup.
pub fn known_size(source: &Source) -> Option<u64> {
    let Source::Directory { path, include, exclude } = source else {
        return None;
    };
    let (inc, exc) = (globs(include).ok()?, globs(exclude).ok()?);
    let root = Path::new(path);
    let mut total = 0;
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else {
                continue;
            };
            if is_excluded(root, &path, &exc) {
                continue;
            }
            if ft.is_dir() {
                dirs.push(path);
            } else if ft.is_file() && is_included(root, &path, &inc) {
                total += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    Some(total)
}

/// Writes `source`'s stream into `out` and gives `out` back.
///
/// # Errors
/// [`EngineError::Source`] with a readable reason, [`EngineError::Cancelled`].
pub fn produce<W: ArchiveSink>(source: &Source, out: W, ctx: &SourceContext) -> Result<W, EngineError> {
    let result = match source {
        Source::Directory { path, include, exclude } => archive_directory(Path::new(path), include, exclude, out, ctx),
        Source::Postgres { url, password_env, format } => {
            let format = match format {
                Some(DumpFormat::Plain) => "--format=plain",
                _ => "--format=custom",
            };
            let argv = vec![
                "pg_dump".to_owned(),
                "--no-password".to_owned(),
                format.to_owned(),
                format!("--dbname={url}"),
            ];
            let env = password_env.as_deref().map(|v| secret_env(v, "PGPASSWORD")).transpose()?;
            run_command(&argv, env, DEFAULT_COMMAND_TIMEOUT, out, ctx)
        }
        Source::Mysql { url, password_env } => {
            let argv = mysqldump_argv(url)?;
            let env = password_env.as_deref().map(|v| secret_env(v, "MYSQL_PWD")).transpose()?;
            run_command(&argv, env, DEFAULT_COMMAND_TIMEOUT, out, ctx)
        }
        Source::Command { argv, timeout_seconds } => run_command(
            argv,
            None,
            timeout_seconds.map_or(DEFAULT_COMMAND_TIMEOUT, Duration::from_secs),
            out,
            ctx,
        ),
        Source::S3 { bucket, prefix } => archive_s3_prefix(bucket, prefix, out, ctx),
        Source::Config {} => {
            let doc = ctx.config_document.clone().unwrap_or_default();
            let mut b = tar::Builder::new(out);
            let mut h = Header::new_gnu();
            h.set_size(doc.len() as u64);
            h.set_mode(0o600);
            h.set_mtime(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0));
            h.set_entry_type(EntryType::Regular);
            b.append_data(
                &mut h,
                "cairn-config.json",
                CountingReader {
                    inner: doc.as_slice(),
                    signals: ctx.signals.clone(),
                },
            )?;
            Ok(b.into_inner()?)
        }
    };
    match result {
        Err(_) if ctx.signals.cancelled() => Err(EngineError::Cancelled),
        other => other,
    }
}

/// Reads the password from the runner's environment variable `var` and hands it to the
/// dump tool as `target` (never in argv).
fn secret_env(var: &str, target: &'static str) -> Result<(&'static str, String), EngineError> {
    std::env::var(var)
        .map(|v| (target, v))
        .map_err(|_| EngineError::Source(format!("environment variable {var} (passwordEnv) is not set on the runner")))
}

fn mysqldump_argv(url: &str) -> Result<Vec<String>, EngineError> {
    let rest = url
        .strip_prefix("mysql://")
        .or_else(|| url.strip_prefix("mariadb://"))
        .ok_or_else(|| EngineError::Source("bad MySQL URL".into()))?;
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, hostport) = authority.rsplit_once('@').map_or((None, authority), |(u, h)| (Some(u), h));
    let (host, port) = hostport.rsplit_once(':').map_or((hostport, None), |(h, p)| (h, Some(p)));
    let db = db.split('?').next().unwrap_or("");
    if db.is_empty() {
        return Err(EngineError::Source("the MySQL URL names no database".into()));
    }
    let mut argv = vec![
        "mysqldump".to_owned(),
        "--single-transaction".to_owned(),
        "--routines".to_owned(),
        "--triggers".to_owned(),
        format!("--host={host}"),
    ];
    if let Some(p) = port {
        argv.push(format!("--port={p}"));
    }
    if let Some(u) = user {
        argv.push(format!("--user={u}"));
    }
    argv.push(db.to_owned());
    Ok(argv)
}

fn globs(patterns: &[String]) -> Result<GlobSet, EngineError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| EngineError::Source(format!("bad glob {p:?}: {e}")))?);
    }
    b.build().map_err(|e| EngineError::Source(e.to_string()))
}

fn is_excluded(root: &Path, path: &Path, exclude: &GlobSet) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    !exclude.is_empty() && (exclude.is_match(rel) || path.file_name().is_some_and(|n| exclude.is_match(n)))
}

fn is_included(root: &Path, path: &Path, include: &GlobSet) -> bool {
    let rel = path.strip_prefix(root).unwrap_or(path);
    include.is_empty() || include.is_match(rel) || path.file_name().is_some_and(|n| include.is_match(n))
}

/// Yields exactly `size` bytes: a file that shrank while being read is padded with zeros
/// (and reported), one that grew is cut, so the tar header stays true.
struct ExactReader<R> {
    inner: R,
    remaining: u64,
    /// Set once the source ended early.
    short: bool,
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

/// How much of a file is read (and handed to the compressor) at a time.
const FILE_READ_SIZE: usize = 1 << 20;

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
fn pour<W: ArchiveSink>(data: &mut dyn Read, out: &mut W, buf: &mut [u8]) -> io::Result<()> {
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
fn append_entry<W: ArchiveSink>(
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
    let mut reader = ExactReader {
        inner: CountingReader {
            inner: data,
            signals: signals.clone(),
        },
        remaining: size,
        short: false,
    };
    pour(&mut reader, out, buf)?;
    let padding = usize::try_from((512 - size % 512) % 512).unwrap_or(0);
    out.write_all(&[0u8; 512][..padding])?;
    Ok(reader.short)
}

fn archive_directory<W: ArchiveSink>(
    root: &Path,
    include: &[String],
    exclude: &[String],
    out: W,
    ctx: &SourceContext,
) -> Result<W, EngineError> {
    let root_meta = fs::metadata(root).map_err(|e| EngineError::Source(format!("cannot read directory {}: {e}", root.display())))?;
    if !root_meta.is_dir() {
        return Err(EngineError::Source(format!("{} is not a directory", root.display())));
    }
    let (inc, exc) = (globs(include)?, globs(exclude)?);
    let mut b = tar::Builder::new(out);
    b.mode(HeaderMode::Complete);
    b.follow_symlinks(false);
    let walker = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| !is_excluded(root, e.path(), &exc));
    let mut buf = vec![0u8; FILE_READ_SIZE];
    for entry in walker {
        if ctx.signals.cancelled() {
            return Err(EngineError::Cancelled);
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                ctx.problem(format!(
                    "cannot read {}: {e}",
                    e.path().map(|p| p.display().to_string()).unwrap_or_default()
                ));
                continue;
            }
        };
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(path);
        let ft = entry.file_type();
        if (ft.is_file() || ft.is_symlink()) && !is_included(root, path, &inc) {
            continue;
        }
        let mut h = Header::new_gnu();
        if ft.is_file() {
            // Opened first and described by its descriptor: one path lookup, and the header's
            // size is that of the file read.
            let opened = fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
                .open(path)
                .and_then(|f| Ok((f.metadata()?, f)));
            let (meta, file) = match opened {
                Ok((m, f)) if m.is_file() => (m, f),
                Ok(_) => {
                    ctx.problem(format!("skipped {}: no longer a regular file", path.display()));
                    continue;
                }
                Err(e) => {
                    ctx.problem(format!("cannot open {}: {e}", path.display()));
                    continue;
                }
            };
            h.set_metadata_in_mode(&meta, HeaderMode::Complete);
            if append_entry(&mut b, &mut h, rel, file, &mut buf, &ctx.signals)? {
                ctx.problem(format!("{} shrank while it was read; the archived copy is padded", path.display()));
            }
            continue;
        }
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                ctx.problem(format!("cannot stat {}: {e}", path.display()));
                continue;
            }
        };
        h.set_metadata_in_mode(&meta, HeaderMode::Complete);
        if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, rel, io::empty())?;
        } else if ft.is_symlink() {
            let target = match fs::read_link(path) {
                Ok(t) => t,
                Err(e) => {
                    ctx.problem(format!("cannot read link {}: {e}", path.display()));
                    continue;
                }
            };
            h.set_entry_type(EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, rel, target)?;
        } else {
            ctx.problem(format!("skipped {}: not a regular file, directory or symlink", path.display()));
        }
    }
    Ok(b.into_inner()?)
}

/// Runs a dump program without a shell, in its own process group, copying its standard
/// output into `out`. A watchdog kills the whole group on timeout or cancel.
fn run_command<W: ArchiveSink>(
    argv: &[String],
    secret: Option<(&'static str, String)>,
    timeout: Duration,
    mut out: W,
    ctx: &SourceContext,
) -> Result<W, EngineError> {
    let program = argv.first().ok_or_else(|| EngineError::Source("empty command".into()))?;
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some((name, value)) = secret {
        cmd.env(name, value);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| EngineError::Source(format!("cannot start {program}: {e}")))?;
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let stderr = child.stderr.take();
    let stderr_thread = std::thread::spawn(move || {
        let mut tail = Vec::new();
        if let Some(mut s) = stderr {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 64 * 1024 {
                    tail.drain(..tail.len() - 64 * 1024);
                }
            }
        }
        String::from_utf8_lossy(&tail).into_owned()
    });
    let done = Arc::new(AtomicBool::new(false));
    let timed_out = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let (done, timed_out, signals) = (done.clone(), timed_out.clone(), ctx.signals.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + timeout;
            while !done.load(Ordering::Relaxed) {
                let expired = Instant::now() >= deadline;
                if expired || signals.cancelled() {
                    timed_out.store(expired, Ordering::Relaxed);
                    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let stdout = child.stdout.take().ok_or_else(|| EngineError::Source("no stdout".into()))?;
    let copied = pour(
        &mut CountingReader {
            inner: stdout,
            signals: ctx.signals.clone(),
        },
        &mut out,
        &mut vec![0u8; FILE_READ_SIZE],
    );
    if copied.is_err() {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let status = child.wait();
    done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    let stderr_text = stderr_thread.join().unwrap_or_default();
    if ctx.signals.cancelled() {
        return Err(EngineError::Cancelled);
    }
    if timed_out.load(Ordering::Relaxed) {
        return Err(EngineError::Source(format!(
            "{program} timed out after {} s and was killed",
            timeout.as_secs()
        )));
    }
    copied?;
    let status = status?;
    if !status.success() {
        let last = stderr_text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
        let code = status.code().map_or_else(|| "a signal".to_owned(), |c| format!("status {c}"));
        return Err(EngineError::Source(format!(
            "{program} exited with {code}{}",
            if last.is_empty() { String::new() } else { format!(": {last}") }
        )));
    }
    Ok(out)
}

fn archive_s3_prefix<W: ArchiveSink>(bucket: &str, prefix: &str, out: W, ctx: &SourceContext) -> Result<W, EngineError> {
    let mut b = tar::Builder::new(out);
    let mut buf = vec![0u8; FILE_READ_SIZE];
    let mut token: Option<String> = None;
    loop {
        let page = ctx
            .runtime
            .block_on(
                ctx.s3
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .set_continuation_token(token.take())
                    .send(),
            )
            .map_err(|e| {
                EngineError::Source(format!(
                    "cannot list s3://{bucket}/{prefix}: {}",
                    crate::adapters::sdk_error_text(e)
                ))
            })?;
        for obj in page.contents() {
            let Some(key) = obj.key() else { continue };
            let name = key.strip_prefix(prefix).unwrap_or(key).trim_start_matches('/');
            if name.is_empty() || name.ends_with('/') {
                continue;
            }
            if name.split('/').any(|seg| seg == ".." || seg == ".") {
                ctx.problem(format!("skipped s3://{bucket}/{key}: its name has '.' or '..' segments"));
                continue;
            }
            let got = ctx
                .runtime
                .block_on(ctx.s3.get_object().bucket(bucket).key(key).send())
                .map_err(|e| EngineError::Source(format!("cannot read s3://{bucket}/{key}: {}", crate::adapters::sdk_error_text(e))))?;
            let size = u64::try_from(got.content_length().unwrap_or(0)).unwrap_or(0);
            let mut h = Header::new_gnu();
            h.set_size(size);
            h.set_mode(0o644);
            h.set_mtime(obj.last_modified().map_or(0, |t| u64::try_from(t.secs()).unwrap_or(0)));
            h.set_entry_type(EntryType::Regular);
            let body = BodyReader::new(got.body, ctx.runtime.clone());
            if append_entry(&mut b, &mut h, name, body, &mut buf, &ctx.signals)? {
                ctx.problem(format!("s3://{bucket}/{key} ended early; the archived copy is padded"));
            }
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(b.into_inner()?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn mysql_urls_become_mysqldump_arguments_without_a_password() {
        let argv = mysqldump_argv("mysql://backup@db.internal:3307/shop").unwrap();
        assert_eq!(argv[0], "mysqldump");
        assert!(argv.contains(&"--host=db.internal".to_owned()));
        assert!(argv.contains(&"--port=3307".to_owned()));
        assert!(argv.contains(&"--user=backup".to_owned()));
        assert_eq!(argv.last().unwrap(), "shop");
    }

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
                    format: None
                }
            ),
            "db.dump.zst"
        );
    }

    pub(crate) fn context(signals: Arc<Signals>) -> (tokio::runtime::Runtime, SourceContext) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .build(),
        );
        let ctx = SourceContext {
            signals,
            problems: Arc::new(Mutex::new(Vec::new())),
            runtime: rt.handle().clone(),
            s3,
            config_document: None,
        };
        (rt, ctx)
    }

    #[test]
    fn a_directory_archive_reads_back_with_every_name_size_and_link() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{}/{}.txt", "d".repeat(60), "n".repeat(80));
        let files: Vec<(String, Vec<u8>)> = vec![
            ("empty".into(), vec![]),
            ("odd".into(), (0..1001u32).map(|i| (i % 251) as u8).collect()),
            ("block".into(), vec![7; 512]),
            (
                "big".into(),
                (0..(FILE_READ_SIZE as u32 * 2 + 3)).map(|i| (i % 253) as u8).collect(),
            ),
            (long.clone(), b"far down".to_vec()),
        ];
        for (name, data) in &files {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, data).unwrap();
        }
        std::os::unix::fs::symlink("odd", dir.path().join("link")).unwrap();
        let (_rt, ctx) = context(Signals::new());

        let tar = archive_directory(dir.path(), &[], &[], Vec::new(), &ctx).unwrap();

        let mut seen = std::collections::BTreeMap::new();
        let mut archive = tar::Archive::new(tar.as_slice());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            if entry.header().entry_type() == EntryType::Symlink {
                seen.insert(name, entry.link_name().unwrap().unwrap().display().to_string().into_bytes());
            } else if entry.header().entry_type() == EntryType::Regular {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                seen.insert(name, data);
            }
        }
        for (name, data) in &files {
            assert_eq!(seen.get(name), Some(data), "{name}");
        }
        assert_eq!(seen.get("link").map(Vec::as_slice), Some(&b"odd"[..]));
        assert_eq!(seen.len(), files.len() + 1);
        assert!(ctx.problems.lock().unwrap().is_empty());
    }

    #[test]
    fn the_known_size_is_that_of_the_files_the_archive_holds() {
        let dir = tempfile::tempdir().unwrap();
        for (name, len) in [
            ("a.txt", 10),
            ("sub/b.txt", 2000),
            ("sub/deep/c.log", 300),
            ("skip/d.txt", 5000),
            ("e.tmp", 70),
        ] {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, vec![b'x'; len]).unwrap();
        }
        std::os::unix::fs::symlink("sub/b.txt", dir.path().join("link")).unwrap();
        let source = |include: &[&str], exclude: &[&str]| Source::Directory {
            path: dir.path().display().to_string(),
            include: include.iter().map(|s| (*s).to_owned()).collect(),
            exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
        };
        let (_rt, ctx) = context(Signals::new());
        for (include, exclude) in [(&[][..], &[][..]), (&[], &["skip", "*.tmp"]), (&["*.txt"], &["skip"])] {
            let tar = produce(&source(include, exclude), Vec::new(), &ctx).unwrap();
            let archived: u64 = tar::Archive::new(tar.as_slice())
                .entries()
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| e.header().entry_type() == EntryType::Regular)
                .map(|e| e.header().size().unwrap())
                .sum();
            assert_eq!(known_size(&source(include, exclude)), Some(archived), "{include:?} {exclude:?}");
        }
        assert_eq!(known_size(&source(&[], &[])), Some(7380));
    }

    /// Sets the cancel signal on the first write, as a cancel arriving mid-archive would.
    struct CancelOnWrite(Arc<Signals>);

    impl ArchiveSink for CancelOnWrite {}

    impl Write for CancelOnWrite {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.cancel.store(true, Ordering::Relaxed);
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_cancel_mid_file_stops_the_archive_instead_of_retrying_the_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), vec![1u8; 3 * FILE_READ_SIZE]).unwrap();
        let signals = Signals::new();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let root = dir.path().to_owned();
        std::thread::spawn(move || {
            let (_rt, ctx) = context(signals.clone());
            let result = archive_directory(&root, &[], &[], CancelOnWrite(signals), &ctx).map(|_| ());
            let _ = done_tx.send(result.map_err(|e| e.to_string()));
        });
        let result = done_rx.recv_timeout(Duration::from_secs(10)).expect("the archive did not stop");
        assert_eq!(result.unwrap_err(), "I/O error: cancelled");
    }

    #[test]
    fn exact_reader_pads_a_short_source() {
        let mut r = ExactReader {
            inner: &b"abc"[..],
            remaining: 5,
            short: false,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0");
        assert!(r.short);
    }
}
