//! A wrapper for credentials that cannot be printed, logged or serialized by accident.

use std::fmt;

/// A password or other secret. `Debug` prints a fixed mask, there is no `Display` and no
/// `Serialize`: the only way to the bytes is [`Secret::expose`], which is easy to grep for.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Call only where it is handed to a mail server or the vault.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite the bytes before the allocation is freed so a later heap dump
        // does not find the password.
        // Replacing every byte with NUL keeps the String valid UTF-8 without unsafe code, and an
        // equal-length replacement happens in place.
        let zeros = "\0".repeat(self.0.len());
        self.0.replace_range(.., &zeros);
    }
}

/// What signs in to a mailbox: a password (LOGIN / AUTHENTICATE PLAIN), or an OAuth access
/// token (AUTHENTICATE XOAUTH2 or OAUTHBEARER) for services that take no passwords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Password(Secret),
    Bearer(Secret),
}

impl Credential {
    pub fn password(value: impl Into<String>) -> Self {
        Credential::Password(Secret::new(value))
    }

    pub fn bearer(value: impl Into<String>) -> Self {
        Credential::Bearer(Secret::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert!(!format!("{:?}", Some(s.clone())).contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
