//! [`KeyFileVault`]: the [`Vault`] port with AES-256-GCM under a key kept in a local file.
//!
//! Sealed format: one version byte ([`FORMAT_V1`]), a 12-byte random nonce, then ciphertext
//! with its 16-byte tag. The caller's `aad` is authenticated but not stored, so a blob only opens
//! for the record it was sealed for.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use domain::error::VaultError;
use domain::model::Sealed;
use domain::ports::Vault;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// The first byte of every sealed blob; a later format (another cipher, key rotation) gets a
/// new number so old blobs stay readable.
const FORMAT_V1: u8 = 1;

/// AES-256-GCM with a 32-byte key from a file that only its owner may read. The key never
/// leaves this value: `Debug` shows only the file's path.
pub struct KeyFileVault {
    cipher: Aes256Gcm,
    path: PathBuf,
}

impl std::fmt::Debug for KeyFileVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileVault")
            .field("key_file", &self.path)
            .finish_non_exhaustive()
    }
}

impl KeyFileVault {
    /// Loads the key from `path`, or on first run creates the file (and its parent folders)
    /// with 32 random bytes and mode 0600. Refuses a key file that others may read or that does
    /// not hold exactly 32 bytes: better to stop than to encrypt under a leaked or wrong key.
    /// Blocking I/O: call at startup.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self, VaultError> {
        let path = path.as_ref();
        let key = match create_key_file(path) {
            Ok(key) => key,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_key_file(path)?,
            Err(e) => {
                return Err(VaultError::Backend(format!(
                    "cannot create the key file {}: {e}",
                    path.display()
                )));
            }
        };
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| {
            VaultError::Backend(format!(
                "the key file {} holds an invalid key",
                path.display()
            ))
        })?;
        Ok(KeyFileVault {
            cipher,
            path: path.to_owned(),
        })
    }

    /// The key file this vault uses.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn create_key_file(path: &Path) -> std::io::Result<[u8; KEY_LEN]> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let key: [u8; KEY_LEN] = Aes256Gcm::generate_key(&mut OsRng).into();
    let written = file.write_all(&key).and_then(|()| file.sync_all());
    if let Err(e) = written {
        // A half-written key file would be refused on the next start; remove it so that start
        // can create a good one.
        drop(file);
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(key)
}

fn load_key_file(path: &Path) -> Result<[u8; KEY_LEN], VaultError> {
    let shown = path.display();
    let mut file = std::fs::File::open(path)
        .map_err(|e| VaultError::Backend(format!("cannot open the key file {shown}: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| VaultError::Backend(format!("cannot inspect the key file {shown}: {e}")))?;
    if !meta.is_file() {
        return Err(VaultError::Backend(format!(
            "the key file {shown} is not a regular file"
        )));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(VaultError::Backend(format!(
                "the key file {shown} has mode {mode:o}, readable by others; run `chmod 600` on it (and consider the key leaked)"
            )));
        }
    }
    if meta.len() != KEY_LEN as u64 {
        return Err(VaultError::Backend(format!(
            "the key file {shown} holds {} bytes, not the {KEY_LEN} of a key",
            meta.len()
        )));
    }
    let mut key = [0u8; KEY_LEN];
    file.read_exact(&mut key)
        .map_err(|e| VaultError::Backend(format!("cannot read the key file {shown}: {e}")))?;
    Ok(key)
}

#[async_trait]
impl Vault for KeyFileVault {
    async fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, VaultError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| VaultError::Backend("encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(Sealed(out))
    }

    async fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        let bytes = sealed.0.as_slice();
        if bytes.len() < 1 + NONCE_LEN + TAG_LEN || bytes[0] != FORMAT_V1 {
            return Err(VaultError::Decrypt);
        }
        let (nonce, ciphertext) = bytes[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| VaultError::Decrypt)
    }
}
