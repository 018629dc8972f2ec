//! Restoring one item: a first pass checks the object (SHA-256 and size against the
//! manifest, and every archive entry's path) before anything is written; a second pass
//! decompresses and applies it to its target. Both stream with bounded memory.

use std::io::{self, Read};
use std::path::{Component, Path};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use super::manifest::ManifestItem;
use super::sources::SourceContext;
use crate::model::RestoreTarget;

/// Counts and hashes what passes through.
pub(super) struct Tee<R> {
    inner: R,
    sha: Sha256,
    bytes: u64,
}

impl<R> Tee<R> {
    pub(super) fn new(inner: R) -> Self {
        Self {
            inner,
            sha: Sha256::new(),
            bytes: 0,
        }
    }

    /// The SHA-256 (hex) and the size of what was read.
    pub(super) fn finish(self) -> (String, u64) {
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

/// Refuses archive paths that could leave the target: absolute, `..`, or empty.
pub fn check_entry_path(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("an archive entry has an empty name".into());
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            _ => {
                return Err(format!(
                    "archive entry '{}' would escape the target; the archive is refused",
                    path.display()
                ))
            }
        }
    }
    Ok(())
}

/// Pass two: applies the compressed stream `plain` (already decrypted) to `target`.
///
/// # Errors
/// A readable reason.
pub fn apply(plain: impl Read, item: &ManifestItem, target: &RestoreTarget, ctx: &SourceContext) -> Result<u64, String> {
    let decoder = zstd::stream::read::Decoder::new(plain).map_err(|e| e.to_string())?;
    apply_uncompressed(decoder, item, target, ctx)
}

/// Applies an uncompressed stream (a tar archive or a dump) to `target`: the second half
/// of a restore, and the receiving end of a clone.
///
/// # Errors
/// A readable reason.
pub fn apply_uncompressed(decoder: impl Read, item: &ManifestItem, target: &RestoreTarget, ctx: &SourceContext) -> Result<u64, String> {
    match target {
        RestoreTarget::Directory { path, overwrite } => {
            if item.format != "tar" {
                return Err(format!(
                    "item '{}' is a {} dump, not an archive; restore it into a database",
                    item.name, item.kind
                ));
            }
            unpack_into(decoder, Path::new(path), *overwrite)
        }
        RestoreTarget::Postgres { url, password_env } => {
            if item.kind != "postgres" {
                return Err(format!("item '{}' is not a PostgreSQL dump", item.name));
            }
            let password = password_env.as_deref().map(read_secret).transpose()?;
            ensure_postgres_database(url, password.as_deref())?;
            let argv: Vec<String> = if item.object.ends_with(".sql.zst") {
                vec![
                    "psql".into(),
                    "--no-password".into(),
                    "--quiet".into(),
                    "-v".into(),
                    "ON_ERROR_STOP=1".into(),
                    format!("--dbname={url}"),
                ]
            } else {
                vec![
                    "pg_restore".into(),
                    "--no-password".into(),
                    "--no-owner".into(),
                    "--exit-on-error".into(),
                    format!("--dbname={url}"),
                ]
            };
            feed_command(&argv, password.map(|p| ("PGPASSWORD", p)), decoder, ctx)
        }
        RestoreTarget::Mysql { url, password_env } => {
            if item.kind != "mysql" {
                return Err(format!("item '{}' is not a MySQL dump", item.name));
            }
            let password = password_env.as_deref().map(read_secret).transpose()?;
            let (mut argv, db) = mysql_argv(url)?;
            let mut create = argv.clone();
            create.extend(["-e".into(), format!("CREATE DATABASE IF NOT EXISTS `{}`", db.replace('`', ""))]);
            run_quiet(&create, password.clone().map(|p| ("MYSQL_PWD", p)))?;
            argv.push(db);
            feed_command(&argv, password.map(|p| ("MYSQL_PWD", p)), decoder, ctx)
        }
        RestoreTarget::S3 { bucket, prefix } => {
            if item.format != "tar" {
                return Err(format!("item '{}' is a dump; only archives restore into S3", item.name));
            }
            unpack_into_s3(decoder, bucket, prefix, ctx)
        }
    }
}

fn read_secret(var: &str) -> Result<String, String> {
    std::env::var(var).map_err(|_| format!("environment variable {var} (passwordEnv) is not set on the runner"))
}

/// Pass one for archives and dumps: hash and size of the stored object, and every tar
/// entry's path, before anything is written.
///
/// # Errors
/// Names what did not match.
pub fn verify_before_apply(
    object: impl Read,
    item: &ManifestItem,
    decrypt: impl FnOnce(Box<dyn Read + '_>) -> Result<Box<dyn Read + '_>, String>,
) -> Result<(), String> {
    let mut tee = Tee::new(object);
    {
        let plain = decrypt(Box::new(&mut tee))?;
        let decoder = zstd::stream::read::Decoder::new(plain).map_err(|e| e.to_string())?;
        if item.format == "tar" {
            let mut archive = tar::Archive::new(decoder);
            for entry in archive.entries().map_err(|e| format!("archive is damaged: {e}"))? {
                let entry = entry.map_err(|e| format!("archive is damaged: {e}"))?;
                let path = entry.path().map_err(|e| e.to_string())?.into_owned();
                check_entry_path(&path)?;
                if let Ok(Some(link)) = entry.link_name() {
                    if entry.header().entry_type().is_hard_link() {
                        check_entry_path(&link)?;
                    }
                }
            }
            io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(|e| format!("archive is damaged: {e}"))?;
        } else {
            let mut d = decoder;
            io::copy(&mut d, &mut io::sink()).map_err(|e| format!("stream is damaged: {e}"))?;
        }
    }
    io::copy(&mut tee, &mut io::sink()).map_err(|e| e.to_string())?;
    let (sha, bytes) = tee.finish();
    if sha != item.sha256 {
        return Err(format!("SHA-256 {sha} differs from the manifest's {}", item.sha256));
    }
    if bytes != item.stored_bytes {
        return Err(format!("size {bytes} differs from the manifest's {}", item.stored_bytes));
    }
    Ok(())
}

/// Checks a directory target before anything is written to any item.
///
/// # Errors
/// When it exists, is not empty and `overwrite` is off, or is not a directory.
pub fn check_directory_target(path: &Path, overwrite: bool) -> Result<(), String> {
    match std::fs::read_dir(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("target {} cannot be read: {e}", path.display())),
        Ok(mut entries) => {
            if !overwrite && entries.next().is_some() {
                Err(format!(
                    "target directory {} is not empty; pass overwrite: true to restore over it",
                    path.display()
                ))
            } else {
                Ok(())
            }
        }
    }
}

fn unpack_into(decoder: impl Read, dst: &Path, overwrite: bool) -> Result<u64, String> {
    check_directory_target(dst, overwrite)?;
    std::fs::create_dir_all(dst).map_err(|e| format!("cannot create {}: {e}", dst.display()))?;
    let mut archive = tar::Archive::new(decoder);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(overwrite);
    archive.set_unpack_xattrs(false);
    let mut count = 0u64;
    let mut directories = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| format!("archive is damaged: {e}"))?;
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        check_entry_path(&path)?;
        if entry.header().entry_type().is_dir() {
            // Directory times are set last, after their contents are written.
            directories.push((path.clone(), entry.header().mtime().unwrap_or(0)));
        }
        // unpack_in also refuses entries that would land outside `dst` through a
        // symlink an earlier entry created.
        if !entry
            .unpack_in(dst)
            .map_err(|e| format!("cannot restore '{}': {e}", path.display()))?
        {
            return Err(format!(
                "archive entry '{}' would escape the target through a link; refused",
                path.display()
            ));
        }
        count += 1;
    }
    for (path, mtime) in directories.into_iter().rev() {
        let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        if let Ok(f) = std::fs::File::open(dst.join(&path)) {
            let _ = f.set_modified(t);
        }
    }
    Ok(count)
}

fn ensure_postgres_database(url: &str, password: Option<&str>) -> Result<(), String> {
    let (base, db) = url.rsplit_once('/').ok_or("the PostgreSQL URL names no database")?;
    let db = db.split('?').next().unwrap_or("");
    if db.is_empty() {
        return Err("the PostgreSQL URL names no database".into());
    }
    let maintenance = format!("{base}/postgres");
    let env = password.map(|p| ("PGPASSWORD", p.to_owned()));
    let check = vec![
        "psql".to_owned(),
        "--no-password".into(),
        "-At".into(),
        format!("--dbname={maintenance}"),
        "-c".into(),
        format!("SELECT 1 FROM pg_database WHERE datname = '{}'", db.replace('\'', "''")),
    ];
    let exists = run_quiet(&check, env.clone())?;
    if exists.trim() != "1" {
        let create = vec![
            "psql".to_owned(),
            "--no-password".into(),
            format!("--dbname={maintenance}"),
            "-c".into(),
            format!("CREATE DATABASE \"{}\"", db.replace('"', "")),
        ];
        run_quiet(&create, env)?;
    }
    Ok(())
}

fn mysql_argv(url: &str) -> Result<(Vec<String>, String), String> {
    let rest = url
        .strip_prefix("mysql://")
        .or_else(|| url.strip_prefix("mariadb://"))
        .ok_or("bad MySQL URL")?;
    let (authority, db) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, hostport) = authority.rsplit_once('@').map_or((None, authority), |(u, h)| (Some(u), h));
    let (host, port) = hostport.rsplit_once(':').map_or((hostport, None), |(h, p)| (h, Some(p)));
    let db = db.split('?').next().unwrap_or("").to_owned();
    if db.is_empty() {
        return Err("the MySQL URL names no database".into());
    }
    let mut argv = vec!["mysql".to_owned(), format!("--host={host}")];
    if let Some(p) = port {
        argv.push(format!("--port={p}"));
    }
    if let Some(u) = user {
        argv.push(format!("--user={u}"));
    }
    Ok((argv, db))
}

/// Runs a client command to completion and answers its stdout.
fn run_quiet(argv: &[String], secret: Option<(&'static str, String)>) -> Result<String, String> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null());
    if let Some((k, v)) = secret {
        cmd.env(k, v);
    }
    let out = cmd.output().map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "{} failed: {}",
            argv[0],
            err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Streams `input` into a restore client's stdin (no shell).
fn feed_command(argv: &[String], secret: Option<(&'static str, String)>, mut input: impl Read, ctx: &SourceContext) -> Result<u64, String> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some((k, v)) = secret {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    let stderr = child.stderr.take();
    let stderr_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let mut counting = super::sink::CountingReader {
        inner: &mut input,
        signals: ctx.signals.clone(),
    };
    let copied = io::copy(&mut counting, &mut stdin);
    drop(stdin);
    let status = child.wait().map_err(|e| e.to_string())?;
    let err = stderr_thread.join().unwrap_or_default();
    if !status.success() {
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().to_owned();
        return Err(format!("{} exited with {status}: {last}", argv[0]));
    }
    copied.map_err(|e| e.to_string())
}

/// Writes each archive entry as an object under `prefix`, in parts of at most 8 MiB.
fn unpack_into_s3(decoder: impl Read, bucket: &str, prefix: &str, ctx: &SourceContext) -> Result<u64, String> {
    let mut archive = tar::Archive::new(decoder);
    let mut count = 0;
    let prefix = prefix.trim_matches('/');
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| format!("archive is damaged: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        check_entry_path(&path)?;
        let key = if prefix.is_empty() {
            path.display().to_string()
        } else {
            format!("{prefix}/{}", path.display())
        };
        let s3 = &ctx.s3;
        let rt = &ctx.runtime;
        let upload = rt
            .block_on(s3.create_multipart_upload().bucket(bucket).key(&key).send())
            .map_err(crate::adapters::sdk_error_text)?;
        let upload_id = upload.upload_id().unwrap_or_default().to_owned();
        let mut parts = Vec::new();
        let mut number = 1;
        loop {
            let mut buf = Vec::with_capacity(8 << 20);
            (&mut entry).take(8 << 20).read_to_end(&mut buf).map_err(|e| e.to_string())?;
            if buf.is_empty() && number > 1 {
                break;
            }
            let done = buf.len() < 8 << 20;
            let out = rt
                .block_on(
                    s3.upload_part()
                        .bucket(bucket)
                        .key(&key)
                        .upload_id(&upload_id)
                        .part_number(number)
                        .body(buf.into())
                        .send(),
                )
                .map_err(crate::adapters::sdk_error_text)?;
            parts.push(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .build(),
            );
            number += 1;
            if done {
                break;
            }
        }
        rt.block_on(
            s3.complete_multipart_upload()
                .bucket(bucket)
                .key(&key)
                .upload_id(&upload_id)
                .multipart_upload(
                    aws_sdk_s3::types::CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send(),
        )
        .map_err(crate::adapters::sdk_error_text)?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_entry_paths_are_refused() {
        assert!(check_entry_path(Path::new("a/b.txt")).is_ok());
        assert!(check_entry_path(Path::new("./a")).is_ok());
        assert!(check_entry_path(Path::new("../etc/passwd")).is_err());
        assert!(check_entry_path(Path::new("a/../../x")).is_err());
        assert!(check_entry_path(Path::new("/etc/passwd")).is_err());
    }
}
