//! Encryption with age (structure bit 8): items are encrypted to the job's recipients
//! while they stream; a restore reads the identity from a file or an environment
//! variable on the runner, never from a request or a log.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::str::FromStr;
use std::sync::Arc;

use crate::domain::Decryption;
use crate::error::EngineError;

fn crypto(message: impl Into<String>) -> EngineError {
    EngineError::Crypto(message.into())
}

/// The identities a restore decrypts with, read on the runner.
pub type Identities = Arc<Vec<age::x25519::Identity>>;

/// Reads `AGE-SECRET-KEY-...` lines from the file, variable or secret the request names
/// (secrets were read by the runner before the task started).
///
/// # Errors
/// When the file or variable is missing or holds no identity; the message never
/// contains key material.
pub fn identity_for(d: Option<&Decryption>, secrets: &HashMap<String, String>) -> Result<Option<Identities>, EngineError> {
    let Some(d) = d else { return Ok(None) };
    let (text, origin) = match (&d.identity_file, &d.identity_env, &d.identity_secret) {
        (Some(f), _, _) => (
            std::fs::read_to_string(f).map_err(|e| crypto(format!("cannot read identity file {f}: {e}")))?,
            format!("file {f}"),
        ),
        (None, Some(v), _) => (
            std::env::var(v).map_err(|_| crypto(format!("environment variable {v} (identityEnv) is not set on the runner")))?,
            format!("variable {v}"),
        ),
        (None, None, Some(name)) => (
            secrets
                .get(name)
                .cloned()
                .ok_or_else(|| crypto(format!("the Secrets Manager secret {name} (identitySecret) was not read")))?,
            format!("secret {name}"),
        ),
        (None, None, None) => return Ok(None),
    };
    let ids: Vec<age::x25519::Identity> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("AGE-SECRET-KEY-"))
        .filter_map(|l| age::x25519::Identity::from_str(l).ok())
        .collect();
    if ids.is_empty() {
        return Err(crypto(format!("{origin} holds no age identity (AGE-SECRET-KEY-...)")));
    }
    Ok(Some(Arc::new(ids)))
}

/// The stored stream made readable: decrypted when `encrypted`.
///
/// # Errors
/// An encrypted item without a matching identity.
pub fn decrypting<'a>(r: Box<dyn Read + 'a>, encrypted: bool, identities: Option<&Identities>) -> Result<Box<dyn Read + 'a>, EngineError> {
    if !encrypted {
        return Ok(r);
    }
    let ids = identities.ok_or_else(|| crypto("the item is encrypted and no identity was given"))?;
    let decryptor = age::Decryptor::new(r).map_err(|e| crypto(format!("not an age stream: {e}")))?;
    let reader = decryptor
        .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| crypto(format!("cannot decrypt: {e}")))?;
    Ok(Box::new(reader))
}

/// Wraps `w` so what is written is encrypted to `recipients`.
///
/// # Errors
/// An empty recipient list.
pub fn encrypting<W: Write>(w: W, recipients: &[age::x25519::Recipient]) -> Result<age::stream::StreamWriter<W>, EngineError> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient)).map_err(|e| crypto(e.to_string()))?;
    Ok(encryptor.wrap_output(w)?)
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
