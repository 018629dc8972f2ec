//! API keys: `cairn_` followed by 256 random bits, stored only as a SHA-256 hash.

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::validate::{check_name, FieldError};

/// A permission an API key can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "jobs:read")]
    JobsRead,
    #[serde(rename = "jobs:write")]
    JobsWrite,
    #[serde(rename = "jobs:execute")]
    JobsExecute,
    #[serde(rename = "history:read")]
    HistoryRead,
    #[serde(rename = "hooks:write")]
    HooksWrite,
    #[serde(rename = "keys:write")]
    KeysWrite,
    #[serde(rename = "destinations:write")]
    DestinationsWrite,
    #[serde(rename = "backups:restore")]
    BackupsRestore,
    #[serde(rename = "backups:download")]
    BackupsDownload,
}

impl Permission {
    pub const ALL: [Permission; 9] = [
        Self::JobsRead,
        Self::JobsWrite,
        Self::JobsExecute,
        Self::HistoryRead,
        Self::HooksWrite,
        Self::KeysWrite,
        Self::DestinationsWrite,
        Self::BackupsRestore,
        Self::BackupsDownload,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::JobsRead => "jobs:read",
            Self::JobsWrite => "jobs:write",
            Self::JobsExecute => "jobs:execute",
            Self::HistoryRead => "history:read",
            Self::HooksWrite => "hooks:write",
            Self::KeysWrite => "keys:write",
            Self::DestinationsWrite => "destinations:write",
            Self::BackupsRestore => "backups:restore",
            Self::BackupsDownload => "backups:download",
        }
    }

    /// Parses `jobs:read`; `*` or `all` is not accepted here (see [`Permission::parse_list`]).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Parses a comma-separated list; `all` expands to every permission. Every name is
    /// checked, `all` or not: a list with a name that is no permission is refused whole.
    ///
    /// # Errors
    /// Names the unknown permission and lists the known ones.
    pub fn parse_list(s: &str) -> Result<Vec<Self>, FieldError> {
        let mut out = Vec::new();
        let mut all = false;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                all = true;
                continue;
            }
            let p = Self::parse(part).ok_or_else(|| {
                FieldError::new(
                    "permissions",
                    format!(
                        "unknown permission '{part}'; known: all, {}",
                        Self::ALL.map(Self::as_str).join(", ")
                    ),
                )
            })?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if all {
            return Ok(Self::ALL.to_vec());
        }
        if out.is_empty() {
            return Err(FieldError::new("permissions", "at least one permission is required"));
        }
        Ok(out)
    }
}

/// A stored key. `key_hash` is the SHA-256 of the whole key text, hex; the key itself is
/// never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub key_hash: String,
    pub id: String,
    pub name: String,
    pub permissions: Vec<Permission>,
    pub enabled: bool,
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub last_used_at: Option<String>,
    pub created_at: String,
}

/// What may be shown of a key: everything but its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMetadata {
    pub id: String,
    pub name: String,
    pub permissions: Vec<Permission>,
    pub enabled: bool,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub created_at: String,
}

impl ApiKey {
    /// The key's metadata as the API, the CLI and the config export show it: never the hash.
    pub fn metadata(&self) -> KeyMetadata {
        KeyMetadata {
            id: self.id.clone(),
            name: self.name.clone(),
            permissions: self.permissions.clone(),
            enabled: self.enabled,
            expires_at: self.expires_at.clone(),
            last_used_at: self.last_used_at.clone(),
            created_at: self.created_at.clone(),
        }
    }

    pub fn has(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }
}

/// A freshly generated key: the secret text (shown once) and what is stored.
#[derive(Debug)]
pub struct NewKey {
    pub secret: String,
    pub stored: ApiKey,
}

impl NewKey {
    /// Generates a key with 256 bits from the OS's CSPRNG.
    pub fn generate(
        id: String,
        name: String,
        permissions: Vec<Permission>,
        expires_at: Option<String>,
        now: &str,
    ) -> Result<Self, FieldError> {
        check_name("name", &name)?;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret = format!("cairn_{}", hex::encode(bytes));
        let stored = ApiKey {
            key_hash: hash_key(&secret),
            id,
            name,
            permissions,
            enabled: true,
            expires_at,
            last_used_at: None,
            created_at: now.to_owned(),
        };
        Ok(Self { secret, stored })
    }
}

/// SHA-256 of a key's text, hex encoded.
pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Parses a duration such as `30d`, `12h`, `90m`, `3600s` into seconds.
///
/// # Errors
/// When the text is not a positive number followed by one of `s m h d w`.
pub fn parse_duration_seconds(s: &str) -> Result<i64, FieldError> {
    let err = || FieldError::new("expiresIn", format!("'{s}' is not a duration like 30d, 12h, 90m or 3600s"));
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?);
    let n: i64 = num.parse().map_err(|_| err())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(err()),
    };
    if n <= 0 {
        return Err(err());
    }
    n.checked_mul(mult).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_prefix_and_enough_entropy_and_are_stored_hashed() {
        let k = NewKey::generate("id".into(), "ci".into(), vec![Permission::JobsRead], None, "t").unwrap();
        assert!(k.secret.starts_with("cairn_"));
        assert_eq!(k.secret.len() - "cairn_".len(), 64, "256 bits as hex");
        assert_eq!(k.stored.key_hash, hash_key(&k.secret));
        assert!(!serde_json::to_string(&k.stored).unwrap().contains(&k.secret));
        assert!(!serde_json::to_string(&k.stored.metadata()).unwrap().contains(&k.stored.key_hash));
        let other = NewKey::generate("id2".into(), "ci".into(), vec![Permission::JobsRead], None, "t").unwrap();
        assert_ne!(k.secret, other.secret);
    }

    #[test]
    fn permission_lists_parse_and_name_unknown_entries() {
        assert_eq!(
            Permission::parse_list("jobs:read, history:read").unwrap(),
            vec![Permission::JobsRead, Permission::HistoryRead]
        );
        assert_eq!(
            Permission::parse_list("all").unwrap().len(),
            9,
            "every permission, destinations:write among them"
        );
        let e = Permission::parse_list("jobs:read,jobs:delete").unwrap_err();
        assert!(e.reason.contains("jobs:delete"));
        // `all` does not excuse a name that is no permission, before it or after it.
        for list in ["all,jobs:nope", "jobs:nope,all"] {
            let e = Permission::parse_list(list).unwrap_err();
            assert!(e.reason.contains("jobs:nope"), "{list}: {}", e.reason);
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_seconds("30d").unwrap(), 30 * 86_400);
        assert_eq!(parse_duration_seconds("2s").unwrap(), 2);
        assert!(parse_duration_seconds("30").is_err());
        assert!(parse_duration_seconds("0d").is_err());
        assert!(parse_duration_seconds("d").is_err());
    }
}
