//! Restoring one item: [`check`] reads the object once (SHA-256 and size against the
//! manifest, every archive entry's path) before anything is written; [`apply`] then
//! decompresses it into its target. Both stream with bounded memory.
//!
//! # Layout
//! - [`check`]: the checks made before anything is written.
//! - [`directory`], [`database`], [`s3`]: one target kind each.

pub mod check;
pub mod database;
pub mod directory;
pub mod s3;

use std::io::Read;
use std::path::Path;

pub use check::{check_directory_target, check_entry_path, verify_before_apply};

use super::sources::SourceContext;
use crate::domain::job::secret_ref;
use crate::domain::{ManifestItem, RestoreTarget};
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

/// Pass two: applies the compressed stream `plain` (already decrypted) to `target`.
///
/// # Errors
/// As [`apply_uncompressed`], and a stream that is not zstd.
pub fn apply(plain: impl Read, item: &ManifestItem, target: &RestoreTarget, ctx: &SourceContext) -> Result<u64, EngineError> {
    let decoder = zstd::stream::read::Decoder::new(plain)?;
    apply_uncompressed(decoder, item, target, ctx)
}

/// Applies an uncompressed stream (a tar archive or a dump) to `target`: the second half
/// of a restore, and the receiving end of a clone. Answers what was written (entries,
/// objects or bytes, by target).
///
/// # Errors
/// A target that does not fit the item's kind, or refuses the data.
pub fn apply_uncompressed(
    decoder: impl Read,
    item: &ManifestItem,
    target: &RestoreTarget,
    ctx: &SourceContext,
) -> Result<u64, EngineError> {
    match target {
        RestoreTarget::Directory { path, overwrite } => {
            if item.format != "tar" {
                return Err(refused(format!(
                    "item '{}' is a {} dump, not an archive; restore it into a database",
                    item.name, item.kind
                )));
            }
            directory::unpack(decoder, Path::new(path), *overwrite)
        }
        RestoreTarget::Postgres {
            url,
            password_env,
            password_secret,
        } => database::restore_postgres(decoder, item, url, target_password(password_env, password_secret, ctx)?, ctx),
        RestoreTarget::Mysql {
            url,
            password_env,
            password_secret,
        } => database::restore_mysql(decoder, item, url, target_password(password_env, password_secret, ctx)?, ctx),
        RestoreTarget::S3 { bucket, prefix } => {
            if item.format != "tar" {
                return Err(refused(format!("item '{}' is a dump; only archives restore into S3", item.name)));
            }
            s3::unpack(decoder, bucket, prefix, ctx)
        }
    }
}
