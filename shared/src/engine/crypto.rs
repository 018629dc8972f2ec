//! Encryption with age (structure bit 8): items are encrypted to the job's recipients
//! while they stream; a restore reads the identity from a file or an environment
//! variable on the runner, never from a request or a log.

use std::io::{Read, Write};
use std::str::FromStr;
use std::sync::Arc;

use crate::model::Decryption;

/// Parsed recipients (age X25519 public keys, `age1...`).
///
/// # Errors
/// Names the recipient that does not parse.
pub fn parse_recipients(list: &[String]) -> Result<Vec<age::x25519::Recipient>, String> {
    list.iter()
        .map(|r| age::x25519::Recipient::from_str(r.trim()).map_err(|e| format!("'{r}' is not an age recipient: {e}")))
        .collect()
}

/// The identities a restore decrypts with, read on the runner.
pub type Identities = Arc<Vec<age::x25519::Identity>>;

/// Reads `AGE-SECRET-KEY-...` lines from the file or variable the request names.
///
/// # Errors
/// When the file or variable is missing or holds no identity; the message never
/// contains key material.
pub fn identity_for(d: Option<&Decryption>) -> Result<Option<Identities>, String> {
    let Some(d) = d else { return Ok(None) };
    let (text, origin) = match (&d.identity_file, &d.identity_env) {
        (Some(f), _) => (
            std::fs::read_to_string(f).map_err(|e| format!("cannot read identity file {f}: {e}"))?,
            format!("file {f}"),
        ),
        (None, Some(v)) => (
            std::env::var(v).map_err(|_| format!("environment variable {v} (identityEnv) is not set on the runner"))?,
            format!("variable {v}"),
        ),
        (None, None) => return Ok(None),
    };
    let ids: Vec<age::x25519::Identity> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .filter_map(|l| age::x25519::Identity::from_str(l).ok())
        .collect();
    if ids.is_empty() {
        return Err(format!("{origin} holds no age identity (AGE-SECRET-KEY-...)"));
    }
    Ok(Some(Arc::new(ids)))
}

/// The stored stream made readable: decrypted when `encrypted`.
///
/// # Errors
/// An encrypted item without a matching identity.
pub fn decrypting<'a>(r: Box<dyn Read + 'a>, encrypted: bool, identities: Option<&Identities>) -> Result<Box<dyn Read + 'a>, String> {
    if !encrypted {
        return Ok(r);
    }
    let ids = identities.ok_or("the item is encrypted and no identity was given")?;
    let decryptor = age::Decryptor::new(r).map_err(|e| format!("not an age stream: {e}"))?;
    let reader = decryptor
        .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| format!("cannot decrypt: {e}"))?;
    Ok(Box::new(reader))
}

/// Wraps `w` so what is written is encrypted to `recipients`.
///
/// # Errors
/// An empty recipient list.
pub fn encrypting<W: Write>(w: W, recipients: &[age::x25519::Recipient]) -> Result<age::stream::StreamWriter<W>, String> {
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient)).map_err(|e| e.to_string())?;
    encryptor.wrap_output(w).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_encrypted_to_a_recipient_decrypts_with_its_identity_only() {
        let id = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let mut w = encrypting(Vec::new(), &[id.to_public()]).unwrap();
        w.write_all(b"secret backup").unwrap();
        let sealed = w.finish().unwrap();
        assert!(!sealed.windows(6).any(|x| x == b"secret"));
        let ids: Identities = Arc::new(vec![id]);
        let mut out = String::new();
        decrypting(Box::new(sealed.as_slice()), true, Some(&ids))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "secret backup");
        let wrong: Identities = Arc::new(vec![other]);
        assert!(decrypting(Box::new(sealed.as_slice()), true, Some(&wrong)).is_err());
    }
}
