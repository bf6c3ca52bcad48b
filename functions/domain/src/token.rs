//! Random tokens for invite links and admin sessions. A token is 256 random bits, shown once
//! (in the link or the cookie) and stored only as its SHA-256, so a copy of the database does not
//! let anyone in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// A freshly generated token: 32 bytes from the OS, URL-safe base64 (43 characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether a string has the shape of a token (so garbage never reaches the store).
pub fn looks_valid(token: &str) -> bool {
    token.len() == 43 && URL_SAFE_NO_PAD.decode(token).is_ok_and(|b| b.len() == 32)
}

/// The stored form of a token.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_distinct() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(looks_valid(&a));
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
    }

    #[test]
    fn altered_tokens_do_not_look_valid_or_hash_alike() {
        let a = generate();
        let mut altered = a.clone();
        altered.pop();
        assert!(!looks_valid(&altered));
        assert!(!looks_valid("../../etc/passwd"));
        let last = if a.ends_with('A') { 'B' } else { 'A' };
        assert_ne!(hash(&a), hash(&format!("{}{last}", &a[..42])));
        assert_eq!(hash(&a).len(), 64);
    }
}
