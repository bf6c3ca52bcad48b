//! The KMS vault against moto: envelope encryption round trip, binding to the aad, tamper
//! detection, and no plaintext in what is stored.

use aws::KmsVault;
use aws::moto::MotoServer;
use domain::error::VaultError;
use domain::model::Sealed;
use domain::ports::Vault;

const SECRET: &[u8] = b"correct horse battery staple \xf0\x9f\x90\xb4 password of ann@example.com";

async fn vault(moto: &MotoServer) -> KmsVault {
    KmsVault::create(&moto.aws().await, "mailferry test key")
        .await
        .expect("create a KMS key")
}

#[track_caller]
fn assert_decrypt_error(result: Result<Vec<u8>, VaultError>, what: &str) {
    match result {
        Err(VaultError::Decrypt) => {}
        other => panic!("{what}: expected VaultError::Decrypt, got {other:?}"),
    }
}

#[tokio::test]
async fn seal_and_open_round_trip() {
    // Arrange
    let moto = MotoServer::start().expect("moto_server starts");
    let vault = vault(&moto).await;

    // Act
    let sealed = vault.seal(SECRET, b"user:1").await.expect("seal");
    let opened = vault.open(&sealed, b"user:1").await.expect("open");
    let empty = vault.seal(b"", b"").await.expect("seal nothing");

    // Assert
    assert_eq!(opened, SECRET);
    assert_eq!(sealed.0[0], aws::FORMAT_KMS_V1, "format byte first");
    assert_eq!(
        vault.open(&empty, b"").await.expect("open nothing"),
        b"",
        "an empty secret round-trips"
    );
}

#[tokio::test]
async fn a_blob_opens_only_for_its_own_aad() {
    // Arrange
    let moto = MotoServer::start().expect("moto_server starts");
    let vault = vault(&moto).await;
    let sealed = vault.seal(SECRET, b"user:1").await.expect("seal");

    // Act and assert
    assert_decrypt_error(vault.open(&sealed, b"user:2").await, "another aad");
    assert_decrypt_error(vault.open(&sealed, b"").await, "an empty aad");
    assert_eq!(
        vault.open(&sealed, b"user:1").await.expect("open"),
        SECRET,
        "still opens for its own aad"
    );
}

#[tokio::test]
async fn altered_bytes_do_not_open() {
    // Arrange
    let moto = MotoServer::start().expect("moto_server starts");
    let vault = vault(&moto).await;
    let sealed = vault.seal(SECRET, b"user:1").await.expect("seal");
    let key_len = usize::from(u16::from_be_bytes([sealed.0[1], sealed.0[2]]));

    // Act and assert: every part of the envelope is protected.
    let flip = |index: usize| {
        let mut bytes = sealed.0.clone();
        bytes[index] ^= 0x01;
        Sealed(bytes)
    };
    let last = sealed.0.len() - 1;
    assert_decrypt_error(vault.open(&flip(0), b"user:1").await, "format byte");
    assert_decrypt_error(
        vault.open(&flip(3 + key_len / 2), b"user:1").await,
        "encrypted data key",
    );
    assert_decrypt_error(vault.open(&flip(3 + key_len), b"user:1").await, "nonce");
    assert_decrypt_error(
        vault.open(&flip(3 + key_len + 12), b"user:1").await,
        "ciphertext",
    );
    assert_decrypt_error(vault.open(&flip(last), b"user:1").await, "tag");
    assert_decrypt_error(
        vault
            .open(&Sealed(sealed.0[..sealed.0.len() - 1].to_vec()), b"user:1")
            .await,
        "truncated",
    );
    assert_decrypt_error(vault.open(&Sealed(Vec::new()), b"user:1").await, "empty");
}

#[tokio::test]
async fn another_key_cannot_open() {
    // Arrange
    let moto = MotoServer::start().expect("moto_server starts");
    let (mine, other) = (vault(&moto).await, vault(&moto).await);
    let sealed = mine.seal(SECRET, b"user:1").await.expect("seal");

    // Act
    let result = other.open(&sealed, b"user:1").await;

    // Assert: AWS answers IncorrectKeyException (VaultError::Decrypt); moto 5.2.5 answers
    // AccessDeniedException instead, which the vault rightly treats as a backend failure.
    match result {
        Err(VaultError::Decrypt) => {}
        Err(VaultError::Backend(m)) if m.contains("AccessDeniedException") => {}
        other => panic!("a vault on another key: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn sealed_bytes_hold_no_plaintext_and_never_repeat() {
    // Arrange
    let moto = MotoServer::start().expect("moto_server starts");
    let vault = vault(&moto).await;

    // Act
    let a = vault.seal(SECRET, b"user:1").await.expect("seal");
    let b = vault.seal(SECRET, b"user:1").await.expect("seal again");

    // Assert
    for sealed in [&a, &b] {
        for window in [SECRET, &SECRET[..12], &SECRET[SECRET.len() - 12..]] {
            assert!(
                !sealed.0.windows(window.len()).any(|w| w == window),
                "the sealed bytes contain plaintext"
            );
        }
    }
    assert_ne!(a, b, "a fresh data key and nonce per seal");
    assert_ne!(a.0[3..40], b.0[3..40], "a fresh data key per seal");
    assert!(
        !format!("{a:?}").contains("correct horse"),
        "Debug shows no content"
    );
}
