//! API keys presented with requests: found by hash, checked (enabled, not expired, holds
//! the permission), and their last use recorded at most once a minute.

use tracing::warn;

use super::{CairnService, ServiceError};
use crate::domain::key::hash_key;
use crate::domain::{ApiKey, Permission};
use crate::error::AuthError;
use crate::time;

/// How stale a key's lastUsedAt may be before a request writes it again.
const KEY_USE_PRECISION_SECONDS: i64 = 60;

/// The longest key text looked up; anything longer is no key of ours.
const MAX_KEY_LENGTH: usize = 256;

impl CairnService {
    /// Counts one request of `client` (its address as the gateway saw it, never a header)
    /// in its `class` for this minute; counters live in the store, so every instance
    /// shares them.
    ///
    /// # Errors
    /// [`ServiceError::RateLimited`] past `limit`, with the seconds until the next window.
    pub async fn admit(&self, client: &str, class: &'static str, limit: u32) -> Result<(), ServiceError> {
        let now = time::now().timestamp();
        let window = now / 60;
        let retry_after = u64::try_from((window + 1) * 60 - now).unwrap_or(1).max(1);
        let hits = self.limiter.hit(&format!("{client}#{class}#{window}"), (window + 2) * 60).await?;
        if hits > u64::from(limit) {
            warn!(source_ip = %client, class, hits, "rate limited");
            return Err(ServiceError::RateLimited { limit, class, retry_after });
        }
        Ok(())
    }

    /// The key an `Authorization: Bearer cairn_...` header presents, if it may use
    /// `permission`.
    ///
    /// # Errors
    /// [`ServiceError::Unauthenticated`] saying what is wrong with the key,
    /// [`ServiceError::Forbidden`] naming the missing permission.
    pub async fn authenticate(&self, authorization: Option<&str>, permission: Permission) -> Result<ApiKey, ServiceError> {
        let header = authorization.map(str::trim).filter(|h| !h.is_empty()).ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(AuthError::Missing)?;
        if !token.starts_with("cairn_") || token.len() > MAX_KEY_LENGTH {
            return Err(AuthError::Invalid.into());
        }
        let hash = hash_key(token);
        let key = self.keys.key_by_hash(&hash).await?.ok_or(AuthError::Invalid)?;
        if !key.enabled {
            return Err(AuthError::Disabled.into());
        }
        let now = time::now();
        if key.expires_at.as_deref().and_then(time::parse_iso).is_some_and(|exp| exp <= now) {
            return Err(AuthError::Expired.into());
        }
        if !key.has(permission) {
            return Err(ServiceError::Forbidden(permission.as_str()));
        }
        // lastUsedAt says whether a key is still in use, so a minute's precision will do:
        // written at most once a minute, it costs a polling client one write a minute
        // instead of one per request.
        let recent = key
            .last_used_at
            .as_deref()
            .and_then(time::parse_iso)
            .is_some_and(|used| (now - used).num_seconds() < KEY_USE_PRECISION_SECONDS);
        if !recent {
            if let Err(e) = self.keys.touch_key(&hash, &time::iso(now)).await {
                warn!(key_id = %key.id, error = %e, "could not record lastUsedAt");
            }
        }
        Ok(key)
    }
}
