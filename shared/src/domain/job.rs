//! Jobs: what to back up, where to, how, and when.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

pub use super::runner_kind::RunnerKind;
pub use super::secret::{secret_ref, SecretRef};

use super::validate::{check_name, check_slug, FieldError};

/// JetBackup's job type, Cairn's meaning (hook argument `$3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum JobType {
    /// 1: items (databases, commands, S3 prefixes, directories as items).
    #[default]
    Items,
    /// 2: directories only.
    Directories,
    /// 3: Cairn's own configuration.
    Config,
    /// Each item is dumped from its source and restored straight into its target, with no
    /// backup stored (production into staging, say).
    Clone,
}

impl JobType {
    /// The JetBackup number handed to hooks.
    pub fn code(self) -> u32 {
        match self {
            Self::Items => 1,
            Self::Directories => 2,
            Self::Config => 3,
            Self::Clone => 1,
        }
    }
}

/// Where one item's data comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    /// A directory tree, archived with tar.
    Directory {
        path: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        include: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        exclude: Vec<String>,
    },
    /// A PostgreSQL database, dumped with pg_dump. The password comes from the runner's
    /// environment variable `passwordEnv` or the Secrets Manager secret `passwordSecret`,
    /// never from the URL.
    Postgres {
        url: String,
        #[serde(default, rename = "passwordEnv", skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
        #[serde(default, rename = "passwordSecret", skip_serializing_if = "Option::is_none")]
        password_secret: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format: Option<DumpFormat>,
    },
    /// A MySQL/MariaDB database, dumped with mysqldump.
    Mysql {
        url: String,
        #[serde(default, rename = "passwordEnv", skip_serializing_if = "Option::is_none")]
        password_env: Option<String>,
        #[serde(default, rename = "passwordSecret", skip_serializing_if = "Option::is_none")]
        password_secret: Option<String>,
    },
    /// Any command whose standard output is the dump, run without a shell.
    Command {
        argv: Vec<String>,
        #[serde(default, rename = "timeoutSeconds", skip_serializing_if = "Option::is_none")]
        timeout_seconds: Option<u64>,
    },
    /// Every object under an S3 prefix.
    S3 {
        bucket: String,
        #[serde(default)]
        prefix: String,
    },
    /// Cairn's own configuration: jobs, hooks, destinations, key metadata (never key hashes).
    Config {},
}

/// pg_dump's output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DumpFormat {
    Custom,
    Plain,
}

impl Source {
    /// The JetBackup-style "contains" bit of this source.
    pub fn contains_bit(&self) -> u32 {
        match self {
            Self::Directory { .. } => 1,
            Self::Postgres { .. } => 2,
            Self::Mysql { .. } => 4,
            Self::Command { .. } => 8,
            Self::S3 { .. } => 16,
            Self::Config {} => 32,
        }
    }

    /// Whether the item is archived with tar (directories and S3 prefixes) or is a single
    /// stream (dumps).
    pub fn is_archive(&self) -> bool {
        matches!(self, Self::Directory { .. } | Self::S3 { .. } | Self::Config {})
    }
}

/// One source of a job (JetBackup's "account"): its own status and its own object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub name: String,
    pub source: Source,
    /// Clone jobs only: where the item goes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<crate::domain::RestoreTarget>,
}

/// Compression settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compression {
    #[serde(default = "Compression::default_algorithm")]
    pub algorithm: String,
    #[serde(default = "Compression::default_level")]
    pub level: i32,
}

impl Compression {
    fn default_algorithm() -> String {
        "zstd".into()
    }
    fn default_level() -> i32 {
        3
    }
}

impl Default for Compression {
    fn default() -> Self {
        Self {
            algorithm: Self::default_algorithm(),
            level: Self::default_level(),
        }
    }
}

/// A 5-field cron expression and its time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub cron: String,
    #[serde(default = "Schedule::utc")]
    pub timezone: String,
}

impl Schedule {
    fn utc() -> String {
        "UTC".into()
    }
}

/// How many backups to keep: the last N, and/or grandfather-father-son.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retention {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
}

fn yes() -> bool {
    true
}

/// Encryption of every item to age recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// age X25519 public keys (`age1...`).
    pub recipients: Vec<String>,
}

/// What a client sends to create or replace a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSpec {
    pub name: String,
    #[serde(default, rename = "type")]
    pub job_type: JobType,
    pub items: Vec<Item>,
    pub destinations: Vec<String>,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default)]
    pub schedule: Option<Schedule>,
    #[serde(default)]
    pub retention: Option<Retention>,
    #[serde(default)]
    pub encryption: Option<Encryption>,
    /// Each item a snapshot in its destinations' restic repositories (structure bit 1).
    #[serde(default)]
    pub incremental: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "yes")]
    pub hooks_enabled: bool,
    #[serde(default)]
    pub runner: RunnerKind,
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub job_type: JobType,
    pub items: Vec<Item>,
    pub destinations: Vec<String>,
    pub compression: Compression,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Each item a snapshot in its destinations' restic repositories (structure bit 1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incremental: bool,
    pub enabled: bool,
    pub hooks_enabled: bool,
    #[serde(default)]
    pub runner: RunnerKind,
    /// When the schedule fires next (ISO 8601), for scheduled jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Job {
    /// A job from a validated spec.
    pub fn from_spec(id: String, spec: JobSpec, now: &str) -> Self {
        Self {
            id,
            name: spec.name,
            job_type: spec.job_type,
            items: spec.items,
            destinations: spec.destinations,
            compression: spec.compression,
            schedule: spec.schedule,
            retention: spec.retention,
            encryption: spec.encryption,
            incremental: spec.incremental,
            enabled: spec.enabled,
            hooks_enabled: spec.hooks_enabled,
            runner: spec.runner,
            next_run_at: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
        }
    }

    /// JetBackup's "contains" bitmask: the OR of every item's source bit.
    pub fn contains(&self) -> u32 {
        self.items.iter().fold(0, |acc, i| acc | i.source.contains_bit())
    }

    /// JetBackup's structure bitmask: 1 Incremental | 2 Archived | 4 Compressed | 8
    /// Encrypted (with age, or by the repository's key for incremental jobs).
    pub fn structure(&self) -> u32 {
        let incremental = if self.incremental { 1 } else { 0 };
        let encrypted = if self.incremental || self.encryption.is_some() { 8 } else { 0 };
        incremental | 2 | 4 | encrypted
    }
}

impl JobSpec {
    /// An incremental job stores snapshots, encrypted by their repository.
    fn check_incremental(&self) -> Result<(), FieldError> {
        if self.incremental && self.encryption.is_some() {
            return Err(FieldError::new(
                "encryption",
                "an incremental job is encrypted with its repository's password; remove 'encryption'",
            ));
        }
        if self.incremental && self.job_type == JobType::Clone {
            return Err(FieldError::new("incremental", "a clone job stores nothing; remove 'incremental'"));
        }
        Ok(())
    }

    /// Checks everything that can be checked without the store (destinations' existence
    /// is checked by the service).
    ///
    /// # Errors
    /// The first invalid field, by its path.
    pub fn validate(&self) -> Result<(), FieldError> {
        check_name("name", &self.name)?;
        if self.items.is_empty() {
            return Err(FieldError::new("items", "at least one item is required"));
        }
        if self.items.len() > 100 {
            return Err(FieldError::new("items", "at most 100 items per job"));
        }
        let mut names = HashSet::new();
        for (i, item) in self.items.iter().enumerate() {
            check_slug(&format!("items[{i}].name"), &item.name)?;
            if !names.insert(item.name.as_str()) {
                return Err(FieldError::new(
                    format!("items[{i}].name"),
                    format!("duplicate item name '{}'", item.name),
                ));
            }
            validate_source(&format!("items[{i}].source"), &item.source)?;
            if self.job_type == JobType::Directories && !matches!(item.source, Source::Directory { .. }) {
                return Err(FieldError::new(
                    format!("items[{i}].source.kind"),
                    "a 'directories' job takes only directory sources",
                ));
            }
            match (&item.target, self.job_type) {
                (Some(t), JobType::Clone) => t.validate(&format!("items[{i}].target"))?,
                (None, JobType::Clone) => {
                    return Err(FieldError::new(
                        format!("items[{i}].target"),
                        "a clone job needs a target for every item",
                    ))
                }
                (Some(_), _) => return Err(FieldError::new(format!("items[{i}].target"), "only clone jobs take targets")),
                (None, _) => {}
            }
            if self.job_type == JobType::Config && !matches!(item.source, Source::Config {}) {
                return Err(FieldError::new(
                    format!("items[{i}].source.kind"),
                    "a 'config' job takes only config sources",
                ));
            }
        }
        self.check_incremental()?;
        if self.destinations.is_empty() && self.job_type != JobType::Clone {
            return Err(FieldError::new("destinations", "at least one destination id is required"));
        }
        if self.destinations.iter().collect::<HashSet<_>>().len() != self.destinations.len() {
            return Err(FieldError::new("destinations", "a destination is listed twice"));
        }
        if self.compression.algorithm != "zstd" {
            return Err(FieldError::new("compression.algorithm", "only 'zstd' is supported"));
        }
        if !(1..=19).contains(&self.compression.level) {
            return Err(FieldError::new("compression.level", "must be between 1 and 19"));
        }
        if let Some(s) = &self.schedule {
            crate::domain::schedule::validate(s)?;
        }
        if let Some(e) = &self.encryption {
            if e.recipients.is_empty() {
                return Err(FieldError::new("encryption.recipients", "at least one age recipient is required"));
            }
            parse_recipients(&e.recipients)?;
        }
        if let Some(r) = &self.retention {
            let all = [r.keep_last, r.keep_daily, r.keep_weekly, r.keep_monthly];
            if all.iter().all(Option::is_none) {
                return Err(FieldError::new(
                    "retention",
                    "give at least one of keepLast, keepDaily, keepWeekly, keepMonthly",
                ));
            }
            if all.iter().flatten().any(|n| *n == 0) {
                return Err(FieldError::new("retention", "counts must be at least 1"));
            }
        }
        Ok(())
    }
}

/// Parsed age recipients (X25519 public keys, `age1...`): checked when a job is stored,
/// and used by the engine to encrypt.
///
/// # Errors
/// Names the recipient that does not parse.
pub fn parse_recipients(list: &[String]) -> Result<Vec<age::x25519::Recipient>, FieldError> {
    list.iter()
        .map(|r| {
            <age::x25519::Recipient as std::str::FromStr>::from_str(r.trim())
                .map_err(|e| FieldError::new("encryption.recipients", format!("'{r}' is not an age recipient: {e}")))
        })
        .collect()
}

/// A database URL: the right scheme, and no password in it (it would be stored and shown
/// in clear); `passwordEnv` must be a variable name.
pub(crate) fn check_database_url(
    field: &str,
    url: &str,
    password: Result<Option<SecretRef<'_>>, FieldError>,
    postgres: bool,
) -> Result<(), FieldError> {
    let password = password.map_err(|e| FieldError::new(format!("{field}.{}", e.field), e.reason))?;
    let scheme = if postgres {
        &["postgres://", "postgresql://"][..]
    } else {
        &["mysql://", "mariadb://"][..]
    };
    let Some(rest) = scheme.iter().find_map(|s| url.strip_prefix(s)) else {
        return Err(FieldError::new(
            format!("{field}.url"),
            format!("must start with {}", scheme.join(" or ")),
        ));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if userinfo.contains(':') {
            return Err(FieldError::new(
                format!("{field}.url"),
                "must not contain a password (it would be stored and shown in clear); name an environment variable in passwordEnv",
            ));
        }
    }
    if url.contains("password=") {
        return Err(FieldError::new(
            format!("{field}.url"),
            "must not contain a password parameter; use passwordEnv",
        ));
    }
    if let Some(SecretRef::Env(var)) = password {
        let ok =
            !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !var.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            return Err(FieldError::new(
                format!("{field}.passwordEnv"),
                "must be an environment variable name",
            ));
        }
    }
    Ok(())
}

fn validate_source(field: &str, source: &Source) -> Result<(), FieldError> {
    match source {
        Source::Directory { path, include, exclude } => {
            if !path.starts_with('/') {
                return Err(FieldError::new(format!("{field}.path"), "must be an absolute path"));
            }
            for (name, globs) in [("include", include), ("exclude", exclude)] {
                for (j, g) in globs.iter().enumerate() {
                    globset::Glob::new(g).map_err(|e| FieldError::new(format!("{field}.{name}[{j}]"), e.to_string()))?;
                }
            }
        }
        Source::Postgres {
            url,
            password_env,
            password_secret,
            ..
        } => check_database_url(field, url, secret_ref(password_env, password_secret), true)?,
        Source::Mysql {
            url,
            password_env,
            password_secret,
        } => check_database_url(field, url, secret_ref(password_env, password_secret), false)?,
        Source::Command { argv, timeout_seconds } => {
            match argv.first() {
                None => return Err(FieldError::new(format!("{field}.argv"), "must name a program")),
                Some(p) if p.is_empty() => return Err(FieldError::new(format!("{field}.argv[0]"), "must not be empty")),
                _ => {}
            }
            if argv.iter().any(|a| a.contains('\0')) {
                return Err(FieldError::new(format!("{field}.argv"), "must not contain NUL characters"));
            }
            if timeout_seconds.is_some_and(|t| t == 0 || t > 86_400) {
                return Err(FieldError::new(format!("{field}.timeoutSeconds"), "must be between 1 and 86400"));
            }
        }
        Source::S3 { bucket, .. } => {
            super::destination::check_bucket(&format!("{field}.bucket"), bucket)?;
        }
        Source::Config {} => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> JobSpec {
        serde_json::from_slice(json.as_bytes()).unwrap()
    }

    #[test]
    fn the_design_example_parses_and_validates() {
        let s = spec(
            r#"{"name":"Nightly app","type":"items","items":[
              {"name":"uploads","source":{"kind":"directory","path":"/mnt/efs/uploads","exclude":["*.tmp"]}},
              {"name":"app-db","source":{"kind":"postgres","url":"postgres://backup@db:5432/app","passwordEnv":"APP_DB_PASSWORD"}},
              {"name":"cache","source":{"kind":"command","argv":["redis-cli","--rdb","-"]}}],
              "destinations":["d1"],"compression":{"algorithm":"zstd","level":3},
              "schedule":{"cron":"0 3 * * *","timezone":"UTC"},"retention":{"keepLast":7},"enabled":true}"#,
        );
        s.validate().unwrap();
        let job = Job::from_spec("j".into(), s, "t");
        assert_eq!(job.contains(), 1 | 2 | 8);
    }

    #[test]
    fn when_a_database_url_carries_a_password_should_refuse_it() {
        let s = spec(
            r#"{"name":"x","items":[{"name":"db","source":{"kind":"postgres","url":"postgres://u:secret@h/db"}}],"destinations":["d"]}"#,
        );
        let e = s.validate().unwrap_err();
        assert_eq!(e.field, "items[0].source.url");
    }

    #[test]
    fn when_a_directory_is_relative_should_name_the_field() {
        let s = spec(r#"{"name":"x","items":[{"name":"a","source":{"kind":"directory","path":"data"}}],"destinations":["d"]}"#);
        assert_eq!(s.validate().unwrap_err().field, "items[0].source.path");
    }

    #[test]
    fn when_item_names_repeat_should_refuse() {
        let s = spec(
            r#"{"name":"x","items":[{"name":"a","source":{"kind":"config"}},{"name":"a","source":{"kind":"config"}}],"destinations":["d"]}"#,
        );
        assert_eq!(s.validate().unwrap_err().field, "items[1].name");
    }
}
