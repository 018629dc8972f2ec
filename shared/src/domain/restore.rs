//! Restore requests: which items of a backup go where.

use serde::{Deserialize, Serialize};

use super::validate::FieldError;

/// Where a restored item goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RestoreTarget {
    /// A directory that must be absent or empty unless `overwrite`.
    Directory {
        path: String,
        #[serde(default)]
        overwrite: bool,
    },
    /// A PostgreSQL database (created when missing).
    Postgres {
        url: String,
        #[serde(default, rename = "passwordEnv", skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
        #[serde(default, rename = "passwordSecret", skip_serializing_if = "Option::is_none")]
        password_secret: Option<String>,
    },
    /// A MySQL/MariaDB database (created when missing).
    Mysql {
        url: String,
        #[serde(default, rename = "passwordEnv", skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
        #[serde(default, rename = "passwordSecret", skip_serializing_if = "Option::is_none")]
        password_secret: Option<String>,
    },
    /// Objects under an S3 prefix (archives only).
    S3 {
        bucket: String,
        #[serde(default)]
        prefix: String,
    },
}

impl RestoreTarget {
    /// # Errors
    /// The first invalid field under `field`.
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        match self {
            Self::Directory { path, .. } => {
                if !path.starts_with('/') || path.split('/').any(|s| s == "..") {
                    return Err(FieldError::new(format!("{field}.path"), "must be an absolute path without '..'"));
                }
            }
            Self::Postgres {
                url,
                password_env,
                password_secret,
            } => super::job::check_database_url(field, url, super::job::secret_ref(password_env, password_secret), true)?,
            Self::Mysql {
                url,
                password_env,
                password_secret,
            } => super::job::check_database_url(field, url, super::job::secret_ref(password_env, password_secret), false)?,
            Self::S3 { bucket, .. } => super::destination::check_bucket(&format!("{field}.bucket"), bucket)?,
        }
        Ok(())
    }
}

/// One item to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreItem {
    pub name: String,
    #[serde(default)]
    pub target: Option<RestoreTarget>,
}

/// How to decrypt an encrypted backup: the identity is read by the runner from a file or
/// an environment variable; never sent in the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Decryption {
    #[serde(default)]
    pub identity_file: Option<String>,
    #[serde(default)]
    pub identity_env: Option<String>,
    /// A Secrets Manager secret (under `cairn/`) holding the identity.
    #[serde(default)]
    pub identity_secret: Option<String>,
}

/// `POST /api/executions/{id}/restore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestoreRequest {
    /// Items to restore (default: every item, each to `target`).
    #[serde(default)]
    pub items: Option<Vec<RestoreItem>>,
    /// The target of items that name none.
    #[serde(default)]
    pub target: Option<RestoreTarget>,
    #[serde(default)]
    pub decryption: Option<Decryption>,
}

impl RestoreRequest {
    /// # Errors
    /// The first invalid field.
    pub fn validate(&self) -> Result<(), FieldError> {
        if let Some(t) = &self.target {
            t.validate("target")?;
        }
        if let Some(items) = &self.items {
            if items.is_empty() {
                return Err(FieldError::new("items", "omit it to restore every item, or name at least one"));
            }
            for (i, item) in items.iter().enumerate() {
                match (&item.target, &self.target) {
                    (Some(t), _) => t.validate(&format!("items[{i}].target"))?,
                    (None, Some(_)) => {}
                    (None, None) => {
                        return Err(FieldError::new(
                            format!("items[{i}].target"),
                            "required when there is no top-level target",
                        ))
                    }
                }
            }
        } else if self.target.is_none() {
            return Err(FieldError::new("target", "required when items are omitted"));
        }
        if let Some(d) = &self.decryption {
            match (&d.identity_file, &d.identity_env, &d.identity_secret) {
                (Some(f), None, None) if f.starts_with('/') => {}
                (None, Some(v), None) if !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {}
                (None, None, Some(s)) if !s.is_empty() => {}
                _ => {
                    return Err(FieldError::new(
                        "decryption",
                        "give exactly one of identityFile (an absolute path), identityEnv (a variable name) or identitySecret (a Secrets Manager secret)",
                    ))
                }
            }
        }
        Ok(())
    }

    /// The target of `name`, if it is to be restored.
    pub fn target_of(&self, name: &str) -> Option<&RestoreTarget> {
        match &self.items {
            None => self.target.as_ref(),
            Some(items) => items
                .iter()
                .find(|i| i.name == name)
                .and_then(|i| i.target.as_ref().or(self.target.as_ref())),
        }
    }
}

impl RestoreTarget {
    /// Where the target is, for logs: a path, a database URL, or `s3://bucket/prefix`.
    pub fn describe(&self) -> String {
        match self {
            Self::Directory { path, .. } => path.clone(),
            Self::Postgres { url, .. } | Self::Mysql { url, .. } => url.clone(),
            Self::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}
