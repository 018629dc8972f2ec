//! Secrets an item, a target or a destination names: only ever by name, a `CAIRN_SECRET_*`
//! variable of the runner or a Secrets Manager secret under `cairn/`, so a key can never
//! hand the runner's own secrets to a server it chose.

use super::validate::FieldError;

/// The prefix every `passwordEnv` / `identityEnv` variable must have.
pub const SECRET_PREFIX: &str = "CAIRN_SECRET_";

/// `passwordEnv` and `identityEnv` name `CAIRN_SECRET_*` variables only, so a key can
/// never hand the runner's own secrets (its AWS credentials, say) to a server it chose.
///
/// # Errors
/// Any other name.
pub fn check_secret_var(field: &str, var: &str) -> Result<(), FieldError> {
    let name_ok = var.len() > SECRET_PREFIX.len() && var.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if var.starts_with(SECRET_PREFIX) && name_ok {
        return Ok(());
    }
    Err(FieldError::new(
        field,
        format!("'{var}' is not allowed: secrets come from variables named {SECRET_PREFIX}*"),
    ))
}

/// The prefix every Secrets Manager secret Cairn reads must have (its IAM policy allows
/// no other).
pub const SECRET_NAME_PREFIX: &str = "cairn/";

/// A Secrets Manager secret: a name under `cairn/`, or the ARN of one.
///
/// # Errors
/// Any other name.
pub fn check_secret_name(field: &str, name: &str) -> Result<(), FieldError> {
    let chars_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c)) && name.len() <= 512;
    let short = name.strip_prefix(SECRET_NAME_PREFIX).is_some_and(|rest| !rest.is_empty());
    let arn = name.starts_with("arn:")
        && name.split(':').nth(2) == Some("secretsmanager")
        && name
            .split(":secret:")
            .nth(1)
            .is_some_and(|n| n.starts_with(SECRET_NAME_PREFIX) && n.len() > SECRET_NAME_PREFIX.len());
    if chars_ok && (short || arn) {
        return Ok(());
    }
    Err(FieldError::new(
        field,
        format!("'{name}' is not allowed: Secrets Manager secrets are named {SECRET_NAME_PREFIX}* (or their ARN)"),
    ))
}

/// Where a secret comes from: the runner's environment, or AWS Secrets Manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretRef<'a> {
    /// A `CAIRN_SECRET_*` environment variable of the runner.
    Env(&'a str),
    /// A Secrets Manager secret (a name under `cairn/`, or its ARN).
    Manager(&'a str),
}

/// The secret a `...Env` / `...Secret` pair names, if any.
///
/// # Errors
/// Both are given (field `passwordSecret`).
pub fn secret_ref<'a>(env: &'a Option<String>, secret: &'a Option<String>) -> Result<Option<SecretRef<'a>>, FieldError> {
    match (env, secret) {
        (Some(_), Some(_)) => Err(FieldError::new("passwordSecret", "give passwordEnv or passwordSecret, not both")),
        (Some(v), None) => Ok(Some(SecretRef::Env(v))),
        (None, Some(s)) => Ok(Some(SecretRef::Manager(s))),
        (None, None) => Ok(None),
    }
}
