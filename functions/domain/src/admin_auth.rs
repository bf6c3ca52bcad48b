//! Admin sign-in for the local mode: one admin password, kept only as an argon2 hash, and
//! sessions whose cookie value is a random token stored as its SHA-256.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::rngs::OsRng;

use crate::app::App;
use crate::error::AppError;
use crate::model::AdminSession;
use crate::secret::Secret;
use crate::token;

pub const ADMIN_PASSWORD_KEY: &str = "admin_password_argon2";

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

    /// Checks the admin password and opens a session; returns the cookie value.
    pub async fn admin_login(&self, password: &Secret) -> Result<String, AppError> {
        let phc = self.deps.store.get_setting(ADMIN_PASSWORD_KEY).await?;
        let ok = phc
            .as_deref()
            .is_some_and(|phc| verify_password(password, phc));
        if !ok {
            return Err(AppError::Validation {
                message: "the password is not right".into(),
                details: serde_json::json!({"field": "password"}),
            });
        }
        let cookie = token::generate();
        let session = AdminSession {
            token_hash: token::hash(&cookie),
            expires_at: self.deps.clock.now() + self.config.session_ttl,
        };
        self.deps.store.put_session(&session).await?;
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

    pub async fn admin_logout(&self, cookie: &str) -> Result<(), AppError> {
        if token::looks_valid(cookie) {
            self.deps.store.delete_session(&token::hash(cookie)).await?;
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
    fn generated_passwords_are_long_and_differ() {
        let a = generate_password();
        assert_eq!(a.len(), 20);
        assert_ne!(a, generate_password());
    }
}
