//! Restoring one item in one pass: [`restore_checked`] streams the object into a staging
//! copy of its target while hashing it, and moves the copy into place only when its
//! SHA-256 and size match the manifest; on a mismatch, or any failure, the staging copy
//! is removed and the target is left as it was. Memory stays bounded whatever the size.
//!
//! # Layout
//! - [`check`]: entry paths and directory targets.
//! - [`staging`]: the staging copy each target kind writes into, and its commit.
//! - [`directory`], [`database`], [`s3`]: one target kind each.

pub mod check;
pub mod database;
pub mod directory;
pub mod s3;
pub mod staging;

use std::io::{self, Read};
use std::path::Path;

pub use check::{check_directory_target, check_entry_path};
pub use staging::Staged;

use super::sources::SourceContext;
use crate::domain::job::secret_ref;
use crate::domain::{ManifestItem, RestoreTarget};
use crate::engine::io::Tee;
use crate::error::EngineError;

/// A target that refused the data, with the reason.
fn refused(message: impl Into<String>) -> EngineError {
    EngineError::Target(message.into())
}

/// Stored data that does not decode or match.
fn damaged(message: impl Into<String>) -> EngineError {
    EngineError::Damaged(message.into())
}

/// The password a target names.
fn target_password(env: &Option<String>, secret: &Option<String>, ctx: &SourceContext) -> Result<Option<String>, EngineError> {
    let named = secret_ref(env, secret).map_err(|e| refused(e.reason))?;
    named.map(|s| ctx.secret_value(s, "password")).transpose()
}

/// Restores one stored object (as stored: `decrypt` makes the compressed stream of it)
/// into `target`, checking its SHA-256 and size against the manifest as it streams;
/// answers what was written (entries, objects or bytes, by target) and the commit's note.
///
/// # Errors
/// A mismatch or damaged stream (nothing is written then), or a target that refuses the
/// data.
pub fn restore_checked(
    object: impl Read,
    item: &ManifestItem,
    target: &RestoreTarget,
    ctx: &SourceContext,
    decrypt: impl FnOnce(Box<dyn Read + '_>) -> Result<Box<dyn Read + '_>, EngineError>,
) -> Result<(u64, Option<String>), EngineError> {
    let mut tee = Tee::new(object);
    let (staged, count) = {
        let plain = decrypt(Box::new(&mut tee))?;
        stage(zstd::stream::read::Decoder::new(plain)?, item, target, ctx).map_err(untouched)?
    };
    // Whatever the decoder left unread (a frame's end) counts too.
    if let Err(e) = io::copy(&mut tee, &mut io::sink()) {
        staged.discard();
        return Err(untouched(damaged(format!("the object did not read to its end: {e}"))));
    }
    let (sha, bytes) = tee.finish();
    let mismatch = if sha != item.sha256 {
        Some(format!("SHA-256 {sha} differs from the manifest's {}", item.sha256))
    } else if bytes != item.stored_bytes {
        Some(format!("size {bytes} differs from the manifest's {}", item.stored_bytes))
    } else {
        None
    };
    if let Some(why) = mismatch {
        staged.discard();
        return Err(untouched(damaged(why)));
    }
    let note = staged.commit()?;
    Ok((count, note))
}

/// A failure before the commit, saying that the target was left as it was.
fn untouched(e: EngineError) -> EngineError {
    const UNTOUCHED: &str = "nothing was written to the target";
    match e {
        EngineError::Damaged(m) => EngineError::Damaged(format!("{m}; {UNTOUCHED}")),
        EngineError::Target(m) => EngineError::Target(format!("{m}; {UNTOUCHED}")),
        other => other,
    }
}

/// Applies an uncompressed stream (a tar archive or a dump) to `target` at once: the
/// receiving end of a clone, whose stream has no manifest to check.
///
/// # Errors
/// As [`stage`].
pub fn apply_uncompressed(
    decoder: impl Read,
    item: &ManifestItem,
    target: &RestoreTarget,
    ctx: &SourceContext,
) -> Result<u64, EngineError> {
    let (staged, count) = stage(decoder, item, target, ctx)?;
    staged.commit()?;
    Ok(count)
}

/// Writes an uncompressed stream into a staging copy of `target`.
///
/// # Errors
/// A target that does not fit the item's kind, or refuses the data; nothing is left of
/// the staging copy then.
pub fn stage(
    decoder: impl Read,
    item: &ManifestItem,
    target: &RestoreTarget,
    ctx: &SourceContext,
) -> Result<(Box<dyn Staged>, u64), EngineError> {
    match target {
        RestoreTarget::Directory { path, overwrite } => {
            if item.format != "tar" {
                return Err(refused(format!(
                    "item '{}' is a {} dump, not an archive; restore it into a database",
                    item.name, item.kind
                )));
            }
            directory::stage(decoder, Path::new(path), *overwrite)
        }
        RestoreTarget::Postgres {
            url,
            password_env,
            password_secret,
        } => database::stage_postgres(decoder, item, url, target_password(password_env, password_secret, ctx)?, ctx),
        RestoreTarget::Mysql {
            url,
            password_env,
            password_secret,
        } => database::stage_mysql(decoder, item, url, target_password(password_env, password_secret, ctx)?, ctx),
        RestoreTarget::S3 { bucket, prefix } => {
            if item.format != "tar" {
                return Err(refused(format!("item '{}' is a dump; only archives restore into S3", item.name)));
            }
            s3::stage(decoder, bucket, prefix, ctx)
        }
    }
}
