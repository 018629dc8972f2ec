//! Database dumps: pg_dump and mysqldump, with the password handed over in the
//! environment (never argv).

use std::time::Duration;

use super::command::{self, Limits};
use super::{ArchiveSink, SourceContext, DEFAULT_COMMAND_TIMEOUT};
use crate::domain::job::SecretRef;
use crate::engine::tools;
use crate::error::EngineError;

/// Dumps a PostgreSQL database: custom format, or plain SQL when `plain`.
///
/// # Errors
/// As [`command::run`], and a `passwordEnv` that is not set.
pub fn pg_dump<W: ArchiveSink>(
    url: &str,
    password: Option<SecretRef<'_>>,
    plain: bool,
    out: W,
    ctx: &SourceContext,
) -> Result<W, EngineError> {
    let format = if plain { "--format=plain" } else { "--format=custom" };
    let mut argv = vec![
        tools::PG_DUMP.to_owned(),
        "--no-password".to_owned(),
        format.to_owned(),
        format!("--dbname={url}"),
    ];
    if ctx.raw_dumps && !plain {
        argv.push("--compress=0".to_owned());
    }
    let env = password
        .map(|p| ctx.secret_value(p, "password").map(|v| ("PGPASSWORD", v)))
        .transpose()?;
    command::run(&with_connect_timeout(argv), env, Limits::total(DEFAULT_COMMAND_TIMEOUT), out, ctx)
}

/// How long a dump client waits for its server before it gives up (a port that is not a
/// database would otherwise hold the slot for the command's whole time limit).
pub const CONNECT_TIMEOUT_SECS: u32 = 30;

/// pg_dump's connect timeout rides in its connection string.
fn with_connect_timeout(mut argv: Vec<String>) -> Vec<String> {
    if let Some(db) = argv.iter_mut().find(|a| a.starts_with("--dbname=")) {
        let sep = if db.contains('?') { '&' } else { '?' };
        db.push_str(&format!("{sep}connect_timeout={CONNECT_TIMEOUT_SECS}"));
    }
    argv
}

/// Dumps a MySQL or MariaDB database in one transaction, with routines and triggers.
///
/// # Errors
/// As [`command::run`], a bad URL, and a `passwordEnv` that is not set.
pub fn mysqldump<W: ArchiveSink>(url: &str, password: Option<SecretRef<'_>>, out: W, ctx: &SourceContext) -> Result<W, EngineError> {
    let argv = mysqldump_argv(url)?;
    let env = password
        .map(|p| ctx.secret_value(p, "password").map(|v| ("MYSQL_PWD", v)))
        .transpose()?;
    // MariaDB's mysqldump has no connect timeout; it writes its header as soon as it is
    // connected, so silence means it is still waiting for a server.
    let limits = Limits {
        total: DEFAULT_COMMAND_TIMEOUT,
        first_output: Some(Duration::from_secs(u64::from(CONNECT_TIMEOUT_SECS) * 2)),
    };
    command::run(&argv, env, limits, out, ctx)
}

fn mysqldump_argv(url: &str) -> Result<Vec<String>, EngineError> {
    let rest = url
        .strip_prefix("mysql://")
        .or_else(|| url.strip_prefix("mariadb://"))
        .ok_or_else(|| EngineError::InvalidSource("bad MySQL URL".into()))?;
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, hostport) = authority.rsplit_once('@').map_or((None, authority), |(u, h)| (Some(u), h));
    let (host, port) = hostport.rsplit_once(':').map_or((hostport, None), |(h, p)| (h, Some(p)));
    let db = db.split('?').next().unwrap_or("");
    if db.is_empty() {
        return Err(EngineError::InvalidSource("the MySQL URL names no database".into()));
    }
    let mut argv = vec![
        tools::MYSQLDUMP.to_owned(),
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

#[cfg(test)]
mod tests {
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
}
