//! [`KmsVault`]: the [`Vault`] port as envelope encryption under a KMS key.
//!
//! `seal` asks KMS for a fresh AES-256 data key (`GenerateDataKey`), encrypts locally with
//! AES-256-GCM under it (the caller's `aad` as associated data) and keeps only the data key as
//! KMS encrypted it; the plaintext data key lives in memory for the one call. `open` has KMS
//! decrypt the data key (`Decrypt`), then decrypts locally.
//!
//! Both KMS calls carry an encryption context bound to the `aad` (its SHA-256, so the context
//! stays small whatever the `aad`): a sealed blob copied onto another record fails at KMS
//! already, and CloudTrail shows which record a decryption was for, before the local GCM check
//! refuses it too.
//!
//! Sealed format, version [`FORMAT_KMS_V1`]:
//! `[0x4B] [length of the encrypted data key: u16 big-endian] [encrypted data key]
//! [12-byte nonce] [ciphertext with its 16-byte tag]`.

use std::collections::HashMap;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::operation::decrypt::DecryptError;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use domain::error::VaultError;
use domain::model::Sealed;
use domain::ports::Vault;
use sha2::{Digest, Sha256};

/// The first byte of every blob this vault seals ('K'); another format gets another byte, so
/// old blobs stay readable. It differs from the key-file vault's, so a blob of the other vault
/// is recognised as foreign instead of being sent to KMS.
pub const FORMAT_KMS_V1: u8 = 0x4B;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const DATA_KEY_LEN: usize = 32;

/// Envelope encryption under one KMS key. Cheap to clone; holds no key material.
#[derive(Debug, Clone)]
pub struct KmsVault {
    client: Client,
    key_id: String,
}

impl KmsVault {
    pub(crate) fn new(client: Client, key_id: impl Into<String>) -> Self {
        KmsVault {
            client,
            key_id: key_id.into(),
        }
    }

    /// The KMS key this vault uses.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Creates a symmetric encryption key and returns the vault on it. For tests and local
    /// runs; a deployment's key comes from the template.
    pub async fn create(aws: &crate::Aws, description: &str) -> Result<KmsVault, VaultError> {
        let client = Client::new(&aws.config);
        let key_id = client
            .create_key()
            .description(description)
            .send()
            .await
            .map_err(backend)?
            .key_metadata
            .map(|m| m.key_id)
            .ok_or_else(|| VaultError::Backend("CreateKey returned no key".into()))?;
        Ok(KmsVault::new(client, key_id))
    }
}

fn backend(e: impl std::error::Error + 'static) -> VaultError {
    VaultError::Backend(format!("kms: {}", DisplayErrorContext(&e)))
}

fn context(aad: &[u8]) -> HashMap<String, String> {
    HashMap::from([
        ("purpose".to_owned(), "mailferry-vault".to_owned()),
        ("aad-sha256".to_owned(), hex::encode(Sha256::digest(aad))),
    ])
}

/// The parts of a sealed blob; `Decrypt` when it is not one of this vault's.
struct Envelope<'a> {
    encrypted_key: &'a [u8],
    nonce: &'a [u8],
    ciphertext: &'a [u8],
}

impl<'a> Envelope<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, VaultError> {
        let (&format, rest) = bytes.split_first().ok_or(VaultError::Decrypt)?;
        if format != FORMAT_KMS_V1 || rest.len() < 2 {
            return Err(VaultError::Decrypt);
        }
        let key_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let rest = &rest[2..];
        if key_len == 0 || rest.len() < key_len + NONCE_LEN + TAG_LEN {
            return Err(VaultError::Decrypt);
        }
        let (encrypted_key, rest) = rest.split_at(key_len);
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        Ok(Envelope {
            encrypted_key,
            nonce,
            ciphertext,
        })
    }
}

#[async_trait]
impl Vault for KmsVault {
    async fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, VaultError> {
        let data_key = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context(aad)))
            .send()
            .await
            .map_err(backend)?;
        let (Some(key), Some(encrypted_key)) = (data_key.plaintext(), data_key.ciphertext_blob())
        else {
            return Err(VaultError::Backend(
                "GenerateDataKey returned no data key".into(),
            ));
        };
        if key.as_ref().len() != DATA_KEY_LEN {
            return Err(VaultError::Backend(format!(
                "GenerateDataKey returned a {}-byte key",
                key.as_ref().len()
            )));
        }
        let key_len = u16::try_from(encrypted_key.as_ref().len())
            .map_err(|_| VaultError::Backend("the encrypted data key is too long".into()))?;
        let cipher = Aes256Gcm::new_from_slice(key.as_ref())
            .map_err(|_| VaultError::Backend("unusable data key".into()))?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| VaultError::Backend("encryption failed".into()))?;

        let mut out =
            Vec::with_capacity(1 + 2 + encrypted_key.as_ref().len() + NONCE_LEN + ciphertext.len());
        out.push(FORMAT_KMS_V1);
        out.extend_from_slice(&key_len.to_be_bytes());
        out.extend_from_slice(encrypted_key.as_ref());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(Sealed(out))
    }

    async fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, VaultError> {
        let envelope = Envelope::parse(&sealed.0)?;
        let decrypted = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(envelope.encrypted_key))
            .set_encryption_context(Some(context(aad)))
            .send()
            .await;
        let data_key = match decrypted {
            Ok(out) => out
                .plaintext
                .ok_or_else(|| VaultError::Backend("Decrypt returned no plaintext".into()))?,
            // Another record's blob (a different context), an altered data key, or a blob
            // sealed under another key: the data cannot be opened here.
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(
                        DecryptError::InvalidCiphertextException(_)
                            | DecryptError::IncorrectKeyException(_)
                    )
                ) =>
            {
                return Err(VaultError::Decrypt);
            }
            Err(e) => return Err(backend(e)),
        };
        let cipher =
            Aes256Gcm::new_from_slice(data_key.as_ref()).map_err(|_| VaultError::Decrypt)?;
        cipher
            .decrypt(
                Nonce::from_slice(envelope.nonce),
                Payload {
                    msg: envelope.ciphertext,
                    aad,
                },
            )
            .map_err(|_| VaultError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_parse_only_when_complete() {
        let mut bytes = vec![FORMAT_KMS_V1, 0, 3, 1, 2, 3];
        bytes.extend([7; NONCE_LEN]);
        bytes.extend([9; TAG_LEN + 4]);
        let e = Envelope::parse(&bytes).unwrap();
        assert_eq!(e.encrypted_key, &[1, 2, 3]);
        assert_eq!(e.nonce, &[7; NONCE_LEN]);
        assert_eq!(e.ciphertext.len(), TAG_LEN + 4);

        for bad in [
            &[][..],
            &[FORMAT_KMS_V1][..],
            &bytes[..bytes.len() - 5],
            &[1, 0, 3, 1, 2, 3][..],
        ] {
            assert!(matches!(Envelope::parse(bad), Err(VaultError::Decrypt)));
        }
        let mut other_format = bytes.clone();
        other_format[0] = 1;
        assert!(matches!(
            Envelope::parse(&other_format),
            Err(VaultError::Decrypt)
        ));
    }

    #[test]
    fn the_context_binds_the_aad_by_hash() {
        let a = context(b"user-1");
        assert_eq!(a["aad-sha256"].len(), 64);
        assert_ne!(a, context(b"user-2"));
        assert_eq!(a, context(b"user-1"));
    }
}
