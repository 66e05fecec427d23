//! HTTP basic authentication against bcrypt hashes, as exporter-toolkit's
//! `basic_auth_users` does it.
//!
//! Three things shape it. bcrypt is slow on purpose (tens to hundreds of milliseconds),
//! so a successful check is remembered in a small cache and a scrape every 15 s costs a
//! hash lookup, not a bcrypt run. The answer must not leak which user names exist, so an
//! unknown user still costs one bcrypt verification and names are compared in constant
//! time. And wrong passwords, which always miss the cache, must not be able to take every
//! core: at most [`MAX_CONCURRENT_VERIFICATIONS`] bcrypt runs at a time, off the async
//! threads.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use tokio::sync::Semaphore;

/// The realm announced in `WWW-Authenticate`.
pub const REALM: &str = "cinder_exporter";

/// Successful verifications remembered; past this the cache starts over. Only correct
/// credentials ever enter it, so its size is bounded by the users' own clients.
pub const CACHE_CAPACITY: usize = 256;

/// bcrypt verifications that may run at once, whatever the number of requests.
pub const MAX_CONCURRENT_VERIFICATIONS: usize = 2;

/// The configured users and the cache of credentials already verified.
pub struct BasicAuth {
    users: Vec<User>,
    /// Random per process, so cache keys are useless outside this process.
    cache_salt: [u8; 32],
    verified: Mutex<HashSet<[u8; 32]>>,
    verifications: Semaphore,
}

struct User {
    name_digest: [u8; 32],
    hash: String,
}

impl BasicAuth {
    /// Users and their bcrypt hashes, already validated (see `web_config`). `users`
    /// must not be empty.
    pub fn new(users: impl IntoIterator<Item = (String, String)>) -> BasicAuth {
        let users = users
            .into_iter()
            .map(|(name, hash)| User {
                name_digest: Sha256::digest(name.as_bytes()).into(),
                hash,
            })
            .collect();
        let mut cache_salt = [0u8; 32];
        // The OS generator, through the crypto provider TLS already uses. Should it fail,
        // the fallback is still unknown to clients, which is all the cache key needs.
        if rustls::crypto::ring::default_provider()
            .secure_random
            .fill(&mut cache_salt)
            .is_err()
        {
            cache_salt.fill_with(|| fastrand::u8(..));
        }
        BasicAuth {
            users,
            cache_salt,
            verified: Mutex::new(HashSet::new()),
            verifications: Semaphore::new(MAX_CONCURRENT_VERIFICATIONS),
        }
    }

    /// Number of configured users.
    pub fn user_count(&self) -> usize {
        self.users.len()
    }

    /// Whether the `Authorization` header value carries a configured user and the
    /// password matching its hash.
    pub async fn check(self: &Arc<Self>, authorization: Option<&[u8]>) -> bool {
        let Some((name, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let cache_key = self.cache_key(&name, &password);
        if self.lock_cache().contains(&cache_key) {
            return true;
        }
        let Ok(_permit) = self.verifications.acquire().await else {
            return false;
        };
        let auth = Arc::clone(self);
        let verified = tokio::task::spawn_blocking(move || auth.verify_uncached(&name, &password))
            .await
            .unwrap_or(false);
        if verified {
            let mut cache = self.lock_cache();
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(cache_key);
        }
        verified
    }

    /// The bcrypt check itself, same cost whether or not the user exists.
    fn verify_uncached(&self, name: &[u8], password: &[u8]) -> bool {
        let Some(first) = self.users.first() else {
            return false;
        };
        let name_digest: [u8; 32] = Sha256::digest(name).into();
        let mut found = Choice::from(0);
        let mut index = 0u32;
        for (i, user) in self.users.iter().enumerate() {
            let same = user.name_digest.ct_eq(&name_digest);
            index.conditional_assign(&(i as u32), same);
            found |= same;
        }
        let found: bool = found.into();
        // An unknown user is checked against a real hash too, so that the time taken
        // does not tell which user names exist; the result is then ignored.
        let hash = if found {
            &self.users[index as usize].hash
        } else {
            &first.hash
        };
        let matches = bcrypt::verify(password, hash).unwrap_or(false);
        found && matches
    }

    fn cache_key(&self, name: &[u8], password: &[u8]) -> [u8; 32] {
        Sha256::new()
            .chain_update(self.cache_salt)
            .chain_update((name.len() as u64).to_be_bytes())
            .chain_update(name)
            .chain_update(password)
            .finalize()
            .into()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        // The set holds no invariant a panic could break: keep using it.
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Splits `Basic base64(user:password)` into user and password; `None` for anything
/// else (another scheme, bad base64, no colon).
pub fn parse_basic(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let header = std::str::from_utf8(header).ok()?.trim();
    let (scheme, credentials) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(credentials: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
        .into_bytes()
    }

    #[test]
    fn parses_basic_credentials() {
        assert_eq!(
            parse_basic(&header("alice:pa:ss")),
            Some((b"alice".to_vec(), b"pa:ss".to_vec()))
        );
        assert_eq!(
            parse_basic(b"basic YWxpY2U6"),
            Some((b"alice".to_vec(), Vec::new()))
        );
        for bad in [
            &b"Bearer abc"[..],
            b"Basic",
            b"Basic !!!",
            b"Basic YWxpY2U=",
            b"\xff\xfe",
        ] {
            assert_eq!(parse_basic(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn checks_users_and_passwords_and_caches_successes() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let hash = bcrypt::hash("secret", 4).unwrap();
        let auth = Arc::new(BasicAuth::new([
            ("alice".to_string(), hash.clone()),
            ("bob".to_string(), hash),
        ]));
        runtime.block_on(async {
            assert!(auth.check(Some(&header("alice:secret"))).await);
            assert!(auth.check(Some(&header("bob:secret"))).await);
            assert!(!auth.check(Some(&header("alice:wrong"))).await);
            assert!(!auth.check(Some(&header("mallory:secret"))).await);
            assert!(!auth.check(Some(&header("alice"))).await);
            assert!(!auth.check(None).await);
        });
        assert_eq!(auth.lock_cache().len(), 2, "only successes are cached");
    }
}
