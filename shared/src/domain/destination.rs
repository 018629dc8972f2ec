//! S3 destinations backups are written to.

use serde::{Deserialize, Serialize};

use super::secret::{check_secret_name, check_secret_var, secret_ref, SecretRef};
use super::validate::{check_name, FieldError};

/// The folder under a destination's prefix that holds its restic repository.
pub const REPOSITORY_FOLDER: &str = "repository";

const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
    "REDUCED_REDUNDANCY",
];

/// Which object store: the default one (the SDK's configuration), or a destination's own
/// endpoint and region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct StoreLocation {
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

/// Splits a backup path `s3://bucket/folder/` into bucket and folder (no trailing slash).
pub fn split_backup_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("s3://")?;
    let (bucket, folder) = rest.split_once('/')?;
    Some((bucket, folder.trim_end_matches('/')))
}

/// The bucket and folder of an execution's manifest, from the location it recorded: a
/// full backup's folder, or (incremental) its destination's repository, whose manifests
/// are under `<prefix>/<jobId>/<executionId>/` beside it.
pub fn manifest_folder<'a>(path: &'a str, job_id: &str, execution_id: &str) -> Option<(&'a str, String)> {
    let (bucket, folder) = split_backup_path(path)?;
    let prefix = if folder == REPOSITORY_FOLDER {
        Some("")
    } else {
        folder.strip_suffix(&format!("/{REPOSITORY_FOLDER}"))
    };
    Some(match prefix {
        Some("") => (bucket, format!("{job_id}/{execution_id}")),
        Some(p) => (bucket, format!("{p}/{job_id}/{execution_id}")),
        None => (bucket, folder.to_owned()),
    })
}

/// How Cairn checks that a destination's store kept exactly the bytes it was sent.
/// Probed once on the destination's first backup and remembered on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verification {
    /// The store keeps a full-object CRC64NVME, checks it on completion and answers it
    /// on HEAD (S3, LocalStack, moto with awscrt).
    Crc64nvme,
    /// The store answers S3's multipart ETag, the MD5 of its parts' MD5s, so each part is
    /// sent with its `Content-MD5` and the object's ETag compared with the one computed.
    ContentMd5,
    /// Neither: every object is read back once and its SHA-256 compared.
    ReadBack,
}

impl Verification {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Crc64nvme => "its full-object CRC64NVME",
            Self::ContentMd5 => "Content-MD5 on every part and the multipart ETag",
            Self::ReadBack => "reading every object back",
        }
    }
}

/// Where the password of a destination's restic repository (incremental backups) comes
/// from: a runner variable `CAIRN_SECRET_*` or a Secrets Manager secret under `cairn/`.
/// Only the name is stored; the password itself never leaves the runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositorySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<String>,
}

impl RepositorySpec {
    /// The secret that holds the password.
    ///
    /// # Errors
    /// Neither or both are given, or a name Cairn may not read.
    pub fn password(&self) -> Result<SecretRef<'_>, FieldError> {
        match secret_ref(&self.password_env, &self.password_secret) {
            Ok(Some(SecretRef::Env(var))) => {
                check_secret_var("repository.passwordEnv", var)?;
                Ok(SecretRef::Env(var))
            }
            Ok(Some(SecretRef::Manager(name))) => {
                check_secret_name("repository.passwordSecret", name)?;
                Ok(SecretRef::Manager(name))
            }
            Ok(None) => Err(FieldError::new(
                "repository",
                "give passwordSecret (a Secrets Manager secret under cairn/) or passwordEnv (a CAIRN_SECRET_* variable of the runner)",
            )),
            Err(_) => Err(FieldError::new("repository", "give passwordEnv or passwordSecret, not both")),
        }
    }
}

/// What a client sends to create a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestinationSpec {
    pub name: String,
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub storage_class: Option<String>,
    /// The password of the destination's repository, which incremental jobs need.
    #[serde(default)]
    pub repository: Option<RepositorySpec>,
}

/// A stored destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    pub id: String,
    pub name: String,
    pub bucket: String,
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    pub created_at: String,
    /// How uploads to it are verified; absent until its first backup probes the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// Where the password of its repository of incremental backups comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<RepositorySpec>,
}

impl Destination {
    /// A destination from a validated spec; the prefix is normalised without slashes at its ends.
    pub fn from_spec(id: String, spec: DestinationSpec, now: &str) -> Self {
        Self {
            id,
            name: spec.name,
            bucket: spec.bucket,
            prefix: spec.prefix.trim_matches('/').to_owned(),
            endpoint: spec.endpoint,
            region: spec.region,
            storage_class: spec.storage_class,
            created_at: now.to_owned(),
            verification: None,
            repository: spec.repository,
        }
    }

    /// Where the destination's store is.
    pub fn location(&self) -> StoreLocation {
        StoreLocation {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
        }
    }

    /// The `s3://bucket/<prefix>/<jobId>/<executionId>/` folder of an execution's backup.
    pub fn backup_path(&self, job_id: &str, execution_id: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.object_key(job_id, execution_id, ""))
    }

    /// The Secrets Manager secret its repository's password is in, if it names one.
    pub fn repository_secret(&self) -> Option<String> {
        self.repository.as_ref().and_then(|r| r.password_secret.clone())
    }

    /// The key prefix of its repository of incremental backups: `<prefix>/repository`.
    pub fn repository_root(&self) -> String {
        if self.prefix.is_empty() {
            REPOSITORY_FOLDER.to_owned()
        } else {
            format!("{}/{REPOSITORY_FOLDER}", self.prefix)
        }
    }

    /// `s3://bucket/<prefix>/repository`, as restic names it (`s3:` and the endpoint first).
    pub fn repository_path(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.repository_root())
    }

    /// The object key of `file` for an execution: `<prefix>/<jobId>/<executionId>/<file>`.
    pub fn object_key(&self, job_id: &str, execution_id: &str, file: &str) -> String {
        if self.prefix.is_empty() {
            format!("{job_id}/{execution_id}/{file}")
        } else {
            format!("{}/{job_id}/{execution_id}/{file}", self.prefix)
        }
    }
}

impl DestinationSpec {
    /// # Errors
    /// The first invalid field.
    pub fn validate(&self) -> Result<(), FieldError> {
        check_name("name", &self.name)?;
        check_bucket("bucket", &self.bucket)?;
        if self.prefix.split('/').any(|seg| seg == "..") || self.prefix.len() > 512 {
            return Err(FieldError::new(
                "prefix",
                "must not contain '..' segments and be at most 512 characters",
            ));
        }
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("https://") || e.starts_with("http://")) {
                return Err(FieldError::new("endpoint", "must be an http(s) URL"));
            }
        }
        if let Some(r) = &self.repository {
            r.password()?;
        }
        if let Some(sc) = &self.storage_class {
            if !STORAGE_CLASSES.contains(&sc.as_str()) {
                return Err(FieldError::new(
                    "storageClass",
                    format!("must be one of {}", STORAGE_CLASSES.join(", ")),
                ));
            }
        }
        Ok(())
    }
}

/// An S3 bucket name: 3 to 63 of lowercase letters, digits, '.', '-', starting and ending
/// with a letter or digit.
pub(crate) fn check_bucket(field: &str, bucket: &str) -> Result<(), FieldError> {
    let chars_ok = bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let ends_ok = bucket.starts_with(|c: char| c.is_ascii_alphanumeric()) && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !(3..=63).contains(&bucket.len()) || !chars_ok || !ends_ok {
        return Err(FieldError::new(
            field,
            "must be a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_bucket_and_folder() {
        assert_eq!(split_backup_path("s3://b/p/j/e/"), Some(("b", "p/j/e")));
        assert_eq!(split_backup_path("b/p"), None);
    }

    #[test]
    fn an_incremental_executions_manifest_is_beside_its_repository() {
        assert_eq!(manifest_folder("s3://b/p/j/e/", "j", "e"), Some(("b", "p/j/e".to_owned())));
        assert_eq!(manifest_folder("s3://b/p/repository", "j", "e"), Some(("b", "p/j/e".to_owned())));
        assert_eq!(manifest_folder("s3://b/repository", "j", "e"), Some(("b", "j/e".to_owned())));
    }

    #[test]
    fn object_keys_follow_the_layout() {
        let spec = DestinationSpec {
            name: "p".into(),
            bucket: "b-1".into(),
            prefix: "/backups/".into(),
            endpoint: None,
            region: None,
            storage_class: None,
            repository: None,
        };
        let d = Destination::from_spec("d".into(), spec, "t");
        assert_eq!(d.object_key("j", "e", "manifest.json"), "backups/j/e/manifest.json");
        assert_eq!(d.repository_root(), "backups/repository");
    }

    #[test]
    fn a_repository_password_names_one_allowed_secret() {
        let spec = |env: Option<&str>, secret: Option<&str>| RepositorySpec {
            password_env: env.map(Into::into),
            password_secret: secret.map(Into::into),
        };
        assert_eq!(
            spec(Some("CAIRN_SECRET_REPO"), None).password().unwrap(),
            SecretRef::Env("CAIRN_SECRET_REPO")
        );
        assert_eq!(spec(None, Some("cairn/repo")).password().unwrap(), SecretRef::Manager("cairn/repo"));
        assert!(spec(Some("AWS_SECRET_ACCESS_KEY"), None).password().is_err());
        assert!(spec(None, Some("prod/db")).password().is_err());
        assert!(spec(None, None).password().is_err());
        assert!(spec(Some("CAIRN_SECRET_A"), Some("cairn/a")).password().is_err());
    }

    #[test]
    fn bucket_names_are_checked() {
        assert!(check_bucket("b", "cairn-backups").is_ok());
        assert!(check_bucket("b", "Cairn").is_err());
        assert!(check_bucket("b", "ab").is_err());
    }
}
