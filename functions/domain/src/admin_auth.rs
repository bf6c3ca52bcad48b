//! Admin sign-in for the local mode: one admin password, kept only as an argon2 hash, and
//! sessions whose cookie value is a random token stored as its SHA-256.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::rngs::OsRng;

use crate::app::App;
use crate::audit::AuditAction;
use crate::error::AppError;
use crate::model::AdminSession;
use crate::secret::Secret;
use crate::token;

pub const ADMIN_PASSWORD_KEY: &str = "admin_password_argon2";

/// Failed sign-ins, per client address and for the one admin account, in this process (the
/// local mode's sign-in; deployed, the identity provider signs admins in). After a few failures
/// each further try must wait twice as long as the last: a client from its 3rd failure (1 s, 2 s,
/// … up to 15 minutes), the account from its 20th whatever the address (up to 5 s: guesses
/// spread over many addresses slow down, and a slow guesser cannot lock the admin out for
/// long). Only two passwords are checked at once (Argon2 takes about 19 MiB each): a burst of
/// parallel guesses waits for its turn, and each is checked against the throttle when it
/// gets it.
#[derive(Debug)]
pub struct SignInThrottle {
    failures: std::sync::Mutex<std::collections::HashMap<String, (u32, time::OffsetDateTime)>>,
    checking: tokio::sync::Semaphore,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        SignInThrottle {
            failures: Default::default(),
            checking: tokio::sync::Semaphore::new(2),
        }
    }
}

/// How long after its `failures`-th failure a key waits: none before `free` failures, then 1 s
/// doubling up to `cap`.
pub fn sign_in_delay(failures: u32, free: u32, cap: std::time::Duration) -> std::time::Duration {
    if failures < free {
        return std::time::Duration::ZERO;
    }
    let doublings = (failures - free).min(20);
    std::time::Duration::from_secs(1u64 << doublings).min(cap)
}

const CLIENT_RULE: (u32, std::time::Duration) = (3, std::time::Duration::from_secs(15 * 60));
const ACCOUNT_RULE: (u32, std::time::Duration) = (20, std::time::Duration::from_secs(5));

impl SignInThrottle {
    fn keys(client: Option<std::net::IpAddr>) -> [(String, (u32, std::time::Duration)); 2] {
        let client = client.map_or("client:unknown".to_owned(), |ip| format!("client:{ip}"));
        [(client, CLIENT_RULE), ("account".to_owned(), ACCOUNT_RULE)]
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, (u32, time::OffsetDateTime)>>
    {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long this client must still wait, if at all.
    pub fn wait(
        &self,
        client: Option<std::net::IpAddr>,
        now: time::OffsetDateTime,
    ) -> Option<std::time::Duration> {
        let map = self.lock();
        Self::keys(client)
            .iter()
            .filter_map(|(key, _)| map.get(key))
            .filter(|(_, until)| *until > now)
            .map(|(_, until)| (*until - now).unsigned_abs())
            .max()
    }

    pub fn failed(&self, client: Option<std::net::IpAddr>, now: time::OffsetDateTime) {
        let mut map = self.lock();
        // Forget clients quiet for a day, so rotating addresses cannot grow the map for ever.
        map.retain(|_, (_, until)| *until > now - time::Duration::days(1));
        for (key, (free, cap)) in Self::keys(client) {
            let entry = map.entry(key).or_insert((0, now));
            entry.0 += 1;
            entry.1 = now + sign_in_delay(entry.0, free, cap);
        }
    }

    pub fn succeeded(&self, client: Option<std::net::IpAddr>) {
        let mut map = self.lock();
        for (key, _) in Self::keys(client) {
            map.remove(&key);
        }
    }
}

pub fn hash_password(password: &Secret) -> Result<String, AppError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

pub fn verify_password(password: &Secret, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new admin password: 20 characters from an alphabet without look-alikes.
pub fn generate_password() -> Secret {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = OsRng;
    Secret::new(
        (0..20)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect::<String>(),
    )
}

impl App {
    /// Makes sure an admin password exists. With `configured` (from the environment) that
    /// password is used; otherwise one is generated on first start and returned so the caller
    /// can print it once. Returns `None` when nothing new needs to be shown.
    pub async fn ensure_admin_password(
        &self,
        configured: Option<Secret>,
    ) -> Result<Option<Secret>, AppError> {
        let store = &self.deps.store;
        if let Some(pw) = configured {
            let current = store.get_setting(ADMIN_PASSWORD_KEY).await?;
            if current
                .as_deref()
                .is_none_or(|phc| !verify_password(&pw, phc))
            {
                store
                    .put_setting(ADMIN_PASSWORD_KEY, &hash_password(&pw)?)
                    .await?;
            }
            return Ok(None);
        }
        if store.get_setting(ADMIN_PASSWORD_KEY).await?.is_some() {
            return Ok(None);
        }
        let generated = generate_password();
        let stored = store
            .put_setting_if_absent(ADMIN_PASSWORD_KEY, &hash_password(&generated)?)
            .await?;
        Ok(stored.then_some(generated))
    }

    /// Checks the admin password and opens a session; returns the cookie value. A client (by
    /// address) that failed too often waits first ([`SignInThrottle`]); Argon2 runs on a
    /// blocking thread, never on the async workers.
    pub async fn admin_login(
        &self,
        password: &Secret,
        client: Option<std::net::IpAddr>,
    ) -> Result<String, AppError> {
        let _turn = self
            .sign_ins
            .checking
            .acquire()
            .await
            .map_err(AppError::internal)?;
        let now = self.deps.clock.now();
        if let Some(wait) = self.sign_ins.wait(client, now) {
            let actor = crate::audit::Actor::admin("admin", client);
            self.audit(
                None,
                &actor,
                AuditAction::SignInRefused,
                None,
                "slowed down: too many wrong passwords",
            )
            .await;
            return Err(AppError::TooManyRequests {
                message: format!(
                    "too many wrong passwords; try again in {} s",
                    wait.as_secs().max(1)
                ),
                retry_after: wait,
            });
        }
        let phc = self.deps.store.get_setting(ADMIN_PASSWORD_KEY).await?;
        let candidate = password.clone();
        let ok = tokio::task::spawn_blocking(move || {
            phc.as_deref()
                .is_some_and(|phc| verify_password(&candidate, phc))
        })
        .await
        .map_err(AppError::internal)?;
        let actor = crate::audit::Actor::admin("admin", client);
        if !ok {
            self.sign_ins.failed(client, now);
            self.audit(
                None,
                &actor,
                AuditAction::SignInRefused,
                None,
                "wrong password",
            )
            .await;
            return Err(AppError::Validation {
                message: "the password is not right".into(),
                details: serde_json::json!({"field": "password"}),
            });
        }
        self.sign_ins.succeeded(client);
        let cookie = token::generate();
        let session = AdminSession {
            token_hash: token::hash(&cookie),
            expires_at: self.deps.clock.now() + self.config.session_ttl,
        };
        self.deps.store.put_session(&session).await?;
        self.audit(None, &actor, AuditAction::SignedIn, None, "")
            .await;
        Ok(cookie)
    }

    /// Whether the cookie value belongs to a live session.
    pub async fn admin_session_valid(&self, cookie: &str) -> Result<bool, AppError> {
        if !token::looks_valid(cookie) {
            return Ok(false);
        }
        let hash = token::hash(cookie);
        match self.deps.store.get_session(&hash).await? {
            Some(s) if s.expires_at > self.deps.clock.now() => Ok(true),
            Some(_) => {
                self.deps.store.delete_session(&hash).await?;
                Ok(false)
            }
            None => Ok(false),
        }
    }

    pub async fn admin_logout(
        &self,
        cookie: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<(), AppError> {
        if token::looks_valid(cookie) && self.admin_session_valid(cookie).await? {
            self.deps.store.delete_session(&token::hash(cookie)).await?;
            let actor = crate::audit::Actor::admin("admin", client);
            self.audit(None, &actor, AuditAction::SignedOut, None, "")
                .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let pw = Secret::new("correct horse \"battery\" \\ stäple");
        let phc = hash_password(&pw).unwrap();
        assert!(phc.starts_with("$argon2"));
        assert!(!phc.contains("horse"));
        assert!(verify_password(&pw, &phc));
        assert!(!verify_password(&Secret::new("correct horse"), &phc));
        assert!(!verify_password(&pw, "not a phc string"));
    }

    #[test]
    fn sign_in_delays_double_after_the_free_tries_up_to_the_cap() {
        use std::time::Duration;
        let cap = Duration::from_secs(60);
        let delays: Vec<u64> = (0..12)
            .map(|n| sign_in_delay(n, 3, cap).as_secs())
            .collect();
        assert_eq!(delays, [0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_client_that_keeps_failing_waits_and_another_client_does_not() {
        let throttle = SignInThrottle::default();
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let a = Some("192.0.2.1".parse().unwrap());
        let b = Some("192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(throttle.wait(a, now), None);
            throttle.failed(a, now);
        }
        assert_eq!(
            throttle.wait(a, now),
            Some(std::time::Duration::from_secs(1))
        );
        assert_eq!(throttle.wait(b, now), None, "the account is not slowed yet");
        throttle.succeeded(a);
        assert_eq!(throttle.wait(a, now), None);
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = generate_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, generate_password());
    }
}
