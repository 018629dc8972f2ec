//! Restoring a dump into PostgreSQL (psql or pg_restore) or MySQL/MariaDB (mysql),
//! creating the database when it does not exist. Clients run without a shell; passwords
//! go in the environment.

use std::io::{self, Read};
use std::process::{Command, Stdio};

use super::refused;
use crate::domain::ManifestItem;
use crate::engine::io::CountingReader;
use crate::engine::sources::command::confined;
use crate::engine::sources::database::CONNECT_TIMEOUT_SECS;
use crate::engine::sources::SourceContext;
use crate::engine::tools;
use crate::error::EngineError;

/// A database client, run as commands are (see [`confined`]), with a connect timeout
/// for PostgreSQL's.
fn client(program: &str, workdir: &std::path::Path) -> Command {
    let mut cmd = confined(program, workdir);
    cmd.env("PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_SECS.to_string());
    cmd
}

/// Feeds a PostgreSQL dump (plain SQL or custom format) to `url`'s database.
///
/// # Errors
/// The item is no PostgreSQL dump, the database cannot be created, or the client fails.
pub fn restore_postgres(
    decoder: impl Read,
    item: &ManifestItem,
    url: &str,
    password: Option<String>,
    ctx: &SourceContext,
) -> Result<u64, EngineError> {
    if item.kind != "postgres" {
        return Err(refused(format!("item '{}' is not a PostgreSQL dump", item.name)));
    }
    ensure_postgres_database(url, password.as_deref())?;
    let client = if item.object.ends_with(".sql.zst") {
        vec![tools::PSQL, "--no-password", "--quiet", "-v", "ON_ERROR_STOP=1"]
    } else {
        vec![tools::PG_RESTORE, "--no-password", "--no-owner", "--exit-on-error"]
    };
    let mut argv: Vec<String> = client.into_iter().map(str::to_owned).collect();
    argv.push(format!("--dbname={url}"));
    feed_command(&argv, password.map(|p| ("PGPASSWORD", p)), decoder, ctx)
}

/// Feeds a MySQL dump to `url`'s database.
///
/// # Errors
/// The item is no MySQL dump, the database cannot be created, or the client fails.
pub fn restore_mysql(
    decoder: impl Read,
    item: &ManifestItem,
    url: &str,
    password: Option<String>,
    ctx: &SourceContext,
) -> Result<u64, EngineError> {
    if item.kind != "mysql" {
        return Err(refused(format!("item '{}' is not a MySQL dump", item.name)));
    }
    let (mut argv, db) = mysql_argv(url)?;
    let mut create = argv.clone();
    create.extend(["-e".into(), format!("CREATE DATABASE IF NOT EXISTS `{}`", db.replace('`', ""))]);
    run_quiet(&create, password.clone().map(|p| ("MYSQL_PWD", p)))?;
    argv.push(db);
    feed_command(&argv, password.map(|p| ("MYSQL_PWD", p)), decoder, ctx)
}

fn ensure_postgres_database(url: &str, password: Option<&str>) -> Result<(), EngineError> {
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
    }
    Ok(())
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
fn run_quiet(argv: &[String], secret: Option<(&'static str, String)>) -> Result<String, EngineError> {
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

/// Streams `input` into a restore client's stdin (no shell).
fn feed_command(
    argv: &[String],
    secret: Option<(&'static str, String)>,
    mut input: impl Read,
    ctx: &SourceContext,
) -> Result<u64, EngineError> {
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
    let stderr = child.stderr.take();
    let stderr_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let mut stdin = child.stdin.take().ok_or_else(|| refused(format!("{} took no input", argv[0])))?;
    let mut counting = CountingReader {
        inner: &mut input,
        signals: ctx.signals.clone(),
    };
    let copied = io::copy(&mut counting, &mut stdin);
    drop(stdin);
    let status = child.wait()?;
    let err = stderr_thread.join().unwrap_or_default();
    if !status.success() {
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned();
        return Err(refused(format!("{} exited with {status}: {last}", argv[0])));
    }
    Ok(copied?)
}
