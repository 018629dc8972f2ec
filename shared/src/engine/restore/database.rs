//! Restoring a dump into PostgreSQL (psql or pg_restore) or MySQL/MariaDB (mysql),
//! creating the database when it does not exist. Clients run without a shell; passwords
//! go in the environment.
//!
//! Staging: PostgreSQL restores run in one transaction whose client is held short of the
//! dump's last bytes until the item is known intact, then finishes (commits) or is killed
//! (rolls back). MySQL's DDL commits as it goes, so its dump is spooled to a local file,
//! and fed to `mysql` only once it is known intact.

use std::io::{self, Read};
use std::process::{Command, Stdio};

use super::staging::Staged;
use super::{damaged, refused};
use crate::domain::ManifestItem;
use crate::engine::io::CancellableReader;
use crate::engine::sources::command::confined;
use crate::engine::sources::database::CONNECT_TIMEOUT_SECS;
use crate::engine::sources::SourceContext;
use crate::engine::tools;
use crate::error::EngineError;

/// A client's password, as the environment variable that carries it.
type ClientSecret = Option<(&'static str, String)>;

/// A database client, run as commands are (see [`confined`]), with a connect timeout
/// for PostgreSQL's.
fn client(program: &str, workdir: &std::path::Path) -> Command {
    let mut cmd = confined(program, workdir);
    cmd.env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECS.to_string());
    cmd
}

/// Feeds a PostgreSQL dump (plain SQL or custom format) to `url`'s database in a single
/// transaction, left open until the commit.
///
/// # Errors
/// The item is no PostgreSQL dump, the database cannot be created, or the client fails;
/// the transaction is then rolled back and a database it created dropped.
pub fn stage_postgres(
    decoder: impl Read,
    item: &ManifestItem,
    url: &str,
    password: Option<String>,
    ctx: &SourceContext,
) -> Result<(Box<dyn Staged>, u64), EngineError> {
    if item.kind != "postgres" {
        return Err(refused(format!("item '{}' is not a PostgreSQL dump", item.name)));
    }
    let created = ensure_postgres_database(url, password.as_deref())?;
    // A plain dump: `<item>.sql.zst` beside a full backup's manifest, `<item>.sql` in a snapshot.
    let client = if item.object.ends_with(".sql.zst") || item.object.ends_with(".sql") {
        vec![
            tools::PSQL,
            "--no-password",
            "--quiet",
            "-v",
            "ON_ERROR_STOP=1",
            "--single-transaction",
        ]
    } else {
        vec![tools::PG_RESTORE, "--no-password", "--no-owner", "--single-transaction"]
    };
    let mut argv: Vec<String> = client.into_iter().map(str::to_owned).collect();
    argv.push(format!("--dbname={url}"));
    let env = password.map(|p| ("PGPASSWORD", p));
    let undo = created.then(|| (drop_postgres_database(url), env.clone()));
    let mut held = HeldClient::spawn(&argv, env)?;
    match held.feed(decoder, ctx) {
        Ok(n) => Ok((Box::new(StagedTransaction { held, undo }), n)),
        Err(e) => {
            Box::new(StagedTransaction { held, undo }).discard();
            Err(e)
        }
    }
}

/// Spools a MySQL dump for `url`'s database into a local file, fed to `mysql` by the commit.
///
/// # Errors
/// The item is no MySQL dump, the URL is bad, or the spool cannot be written.
pub fn stage_mysql(
    mut decoder: impl Read,
    item: &ManifestItem,
    url: &str,
    password: Option<String>,
    ctx: &SourceContext,
) -> Result<(Box<dyn Staged>, u64), EngineError> {
    if item.kind != "mysql" {
        return Err(refused(format!("item '{}' is not a MySQL dump", item.name)));
    }
    let (argv, db) = mysql_argv(url)?;
    let no_room = |e: io::Error| {
        refused(format!(
            "cannot stage the dump in {}: {e} (a MySQL restore needs the dump's size free there; TMPDIR chooses the directory)",
            std::env::temp_dir().display()
        ))
    };
    let mut spool = tempfile::Builder::new().prefix("cairn-restore-").tempfile().map_err(no_room)?;
    let mut reader = CancellableReader {
        inner: &mut decoder,
        signals: ctx.signals.clone(),
    };
    let mut buf = vec![0; 256 << 10];
    let mut n = 0u64;
    loop {
        let got = reader
            .read(&mut buf)
            .map_err(|e| damaged(format!("the dump did not stream: {e}")))?;
        if got == 0 {
            break;
        }
        io::Write::write_all(&mut spool, &buf[..got]).map_err(no_room)?;
        n += got as u64;
    }
    let staged = SpooledDump {
        spool,
        argv,
        db,
        secret: password.map(|p| ("MYSQL_PWD", p)),
        ctx: ctx.clone(),
    };
    Ok((Box::new(staged), n))
}

/// A MySQL dump in a local file, waiting for its commit.
struct SpooledDump {
    spool: tempfile::NamedTempFile,
    argv: Vec<String>,
    db: String,
    secret: ClientSecret,
    ctx: SourceContext,
}

impl Staged for SpooledDump {
    fn commit(self: Box<Self>) -> Result<Option<String>, EngineError> {
        let mut create = self.argv.clone();
        create.extend(["-e".into(), format!("CREATE DATABASE IF NOT EXISTS `{}`", self.db.replace('`', ""))]);
        run_quiet(&create, self.secret.clone())?;
        let mut argv = self.argv.clone();
        argv.push(self.db.clone());
        let file = self.spool.reopen()?;
        feed_command(&argv, self.secret.clone(), file, &self.ctx)?;
        Ok(None)
    }

    fn discard(self: Box<Self>) {}
}

/// A PostgreSQL restore in its open transaction.
struct StagedTransaction {
    held: HeldClient,
    /// Drops the database the restore created, if it did (the command, and its password).
    undo: Option<(Vec<String>, ClientSecret)>,
}

impl Staged for StagedTransaction {
    fn commit(self: Box<Self>) -> Result<Option<String>, EngineError> {
        let Self { held, undo } = *self;
        let finished = held.finish();
        if finished.is_err() {
            undo_database(undo);
        }
        finished.map(|()| None)
    }

    fn discard(self: Box<Self>) {
        let Self { held, undo } = *self;
        held.kill();
        undo_database(undo);
    }
}

/// Runs the command that drops a database a failed restore created.
fn undo_database(undo: Option<(Vec<String>, ClientSecret)>) {
    if let Some((argv, secret)) = undo {
        let _ = run_quiet(&argv, secret);
    }
}

/// Creates `url`'s database if it does not exist; answers whether it did.
fn ensure_postgres_database(url: &str, password: Option<&str>) -> Result<bool, EngineError> {
    let (base, db) = url
        .rsplit_once('/')
        .ok_or_else(|| refused("the PostgreSQL URL names no database"))?;
    let db = db.split('?').next().unwrap_or("");
    if db.is_empty() {
        return Err(refused("the PostgreSQL URL names no database"));
    }
    let maintenance = format!("{base}/postgres");
    let env = password.map(|p| ("PGPASSWORD", p.to_owned()));
    let check = vec![
        tools::PSQL.to_owned(),
        "--no-password".into(),
        "-At".into(),
        format!("--dbname={maintenance}"),
        "-c".into(),
        format!("SELECT 1 FROM pg_database WHERE datname = '{}'", db.replace('\'', "''")),
    ];
    let exists = run_quiet(&check, env.clone())?;
    if exists.trim() != "1" {
        let create = vec![
            tools::PSQL.to_owned(),
            "--no-password".into(),
            format!("--dbname={maintenance}"),
            "-c".into(),
            format!("CREATE DATABASE \"{}\"", db.replace('"', "")),
        ];
        run_quiet(&create, env)?;
        return Ok(true);
    }
    Ok(false)
}

/// The psql command that drops `url`'s database (run from the maintenance database).
fn drop_postgres_database(url: &str) -> Vec<String> {
    let (base, db) = url.rsplit_once('/').unwrap_or((url, ""));
    let db = db.split('?').next().unwrap_or("");
    vec![
        tools::PSQL.to_owned(),
        "--no-password".into(),
        format!("--dbname={base}/postgres"),
        "-c".into(),
        format!("DROP DATABASE IF EXISTS \"{}\"", db.replace('"', "")),
    ]
}

fn mysql_argv(url: &str) -> Result<(Vec<String>, String), EngineError> {
    let rest = url
        .strip_prefix("mysql://")
        .or_else(|| url.strip_prefix("mariadb://"))
        .ok_or_else(|| refused("bad MySQL URL"))?;
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, hostport) = authority.rsplit_once('@').map_or((None, authority), |(u, h)| (Some(u), h));
    let (host, port) = hostport.rsplit_once(':').map_or((hostport, None), |(h, p)| (h, Some(p)));
    let db = db.split('?').next().unwrap_or("").to_owned();
    if db.is_empty() {
        return Err(refused("the MySQL URL names no database"));
    }
    let mut argv = vec![
        tools::MYSQL.to_owned(),
        format!("--connect-timeout={CONNECT_TIMEOUT_SECS}"),
        format!("--host={host}"),
    ];
    if let Some(p) = port {
        argv.push(format!("--port={p}"));
    }
    if let Some(u) = user {
        argv.push(format!("--user={u}"));
    }
    Ok((argv, db))
}

/// Runs a client command to completion and answers its stdout.
fn run_quiet(argv: &[String], secret: ClientSecret) -> Result<String, EngineError> {
    let workdir = tempfile::Builder::new().prefix("cairn-restore-").tempdir()?;
    let mut cmd = client(&argv[0], workdir.path());
    cmd.args(&argv[1..]).stdin(Stdio::null());
    if let Some((k, v)) = secret {
        cmd.env(k, v);
    }
    let out = cmd.output().map_err(|e| refused(format!("cannot start {}: {e}", argv[0])))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(refused(format!(
            "{} failed: {}",
            argv[0],
            err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Streams `input` into a restore client's stdin (no shell) and waits for it to finish.
fn feed_command(argv: &[String], secret: ClientSecret, input: impl Read, ctx: &SourceContext) -> Result<u64, EngineError> {
    let mut held = HeldClient::spawn(argv, secret)?;
    match held.feed(input, ctx) {
        Ok(n) => held.finish().map(|()| n),
        Err(e) => {
            held.kill();
            Err(e)
        }
    }
}

/// What a held client is kept short of: without a dump's end, neither psql nor pg_restore
/// can finish, so neither commits.
const HELD_BACK: usize = 1 << 20;

/// A restore client fed all of its input but the last [`HELD_BACK`] bytes, until
/// [`HeldClient::finish`] sends them (or [`HeldClient::kill`] stops it).
struct HeldClient {
    program: String,
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stderr: Option<std::thread::JoinHandle<String>>,
    tail: Vec<u8>,
    /// The client's working directory, removed with it.
    _workdir: tempfile::TempDir,
}

impl HeldClient {
    fn spawn(argv: &[String], secret: ClientSecret) -> Result<Self, EngineError> {
        let workdir = tempfile::Builder::new().prefix("cairn-restore-").tempdir()?;
        let mut cmd = client(&argv[0], workdir.path());
        cmd.args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((k, v)) = secret {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| refused(format!("cannot start {}: {e}", argv[0])))?;
        let stderr = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = e.read_to_string(&mut s);
                s
            })
        });
        Ok(Self {
            program: argv[0].clone(),
            stdin: child.stdin.take(),
            child,
            stderr,
            tail: Vec::with_capacity(2 * HELD_BACK),
            _workdir: workdir,
        })
    }

    /// Feeds `input`, holding its last bytes back; answers the bytes read.
    fn feed(&mut self, input: impl Read, ctx: &SourceContext) -> Result<u64, EngineError> {
        let mut counting = CancellableReader {
            inner: input,
            signals: ctx.signals.clone(),
        };
        let mut buf = vec![0; 256 << 10];
        let mut total = 0u64;
        loop {
            let n = counting.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
            self.tail.extend_from_slice(&buf[..n]);
            if self.tail.len() >= 2 * HELD_BACK {
                let ready: Vec<u8> = self.tail.drain(..self.tail.len() - HELD_BACK).collect();
                self.send(&ready)?;
            }
        }
    }

    fn send(&mut self, data: &[u8]) -> Result<(), EngineError> {
        use std::io::Write;
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(refused(format!("{} took no input", self.program)));
        };
        if stdin.write_all(data).is_err() {
            // It stopped reading: it exited, and says why.
            self.stdin = None;
            return Err(self.exit_error());
        }
        Ok(())
    }

    /// Sends the held-back bytes, closes the input and waits for the client's verdict.
    fn finish(mut self) -> Result<(), EngineError> {
        let tail = std::mem::take(&mut self.tail);
        self.send(&tail)?;
        self.stdin = None;
        match self.child.wait()? {
            status if status.success() => Ok(()),
            _ => Err(self.exit_error()),
        }
    }

    /// Stops the client before it has its input's end: nothing it did is committed.
    fn kill(mut self) {
        self.stop_unless_finished();
    }

    /// Closing its input would tell the client the dump is complete, and psql would
    /// commit: a client dropped unfinished is killed first.
    fn stop_unless_finished(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// The client's exit status and the last line it wrote to stderr.
    fn exit_error(&mut self) -> EngineError {
        let status = self.child.wait().map_or_else(|e| e.to_string(), |s| s.to_string());
        let err = self.stderr.take().and_then(|t| t.join().ok()).unwrap_or_default();
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned();
        refused(format!("{} exited with {status}: {last}", self.program))
    }
}

impl Drop for HeldClient {
    fn drop(&mut self) {
        self.stop_unless_finished();
    }
}
