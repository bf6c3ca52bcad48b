//! The key-file vault: key file creation and checks, the sealed format, and every way opening
//! must fail.

use domain::error::VaultError;
use domain::model::Sealed;
use domain::ports::Vault;
use embedded::KeyFileVault;
use std::os::unix::fs::PermissionsExt;

const AAD: &[u8] = b"user:0b7e6f5c-1111-4222-8333-944455556666";

#[tokio::test]
async fn creates_a_private_32_byte_key_file_on_first_run() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys/nested/vault.key");

    // Act
    let vault = KeyFileVault::open_or_create(&path).unwrap();

    // Assert
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "mode of the new key file"
    );
    assert_eq!(meta.len(), 32);
    assert_eq!(vault.path(), path);
    let shown = format!("{vault:?}");
    let key = std::fs::read(&path).unwrap();
    assert!(
        !shown.contains(&hex::encode(&key)) && !shown.contains(&format!("{key:?}")),
        "Debug shows no key: {shown}"
    );
}

#[tokio::test]
async fn seals_in_the_documented_format_and_opens_again() {
    let dir = tempfile::tempdir().unwrap();
    let vault = KeyFileVault::open_or_create(dir.path().join("vault.key")).unwrap();
    let plaintext = b"correct horse battery staple";

    let a = vault.seal(plaintext, AAD).await.unwrap();
    let b = vault.seal(plaintext, AAD).await.unwrap();

    assert_eq!(a.0[0], 1, "version byte");
    assert_eq!(
        a.0.len(),
        1 + 12 + plaintext.len() + 16,
        "version, nonce, ciphertext, tag"
    );
    assert_ne!(a.0[1..13], b.0[1..13], "a fresh nonce per seal");
    assert_ne!(a, b, "the same plaintext seals differently each time");
    assert!(
        !a.0.windows(plaintext.len()).any(|w| w == plaintext),
        "no plaintext in the sealed bytes"
    );
    assert_eq!(vault.open(&a, AAD).await.unwrap(), plaintext);
    assert_eq!(vault.open(&b, AAD).await.unwrap(), plaintext);
    let empty = vault.seal(b"", AAD).await.unwrap();
    assert_eq!(vault.open(&empty, AAD).await.unwrap(), b"");
}

#[tokio::test]
async fn reopening_loads_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.key");
    let sealed = KeyFileVault::open_or_create(&path)
        .unwrap()
        .seal(b"pw", AAD)
        .await
        .unwrap();
    let key_before = std::fs::read(&path).unwrap();

    let reopened = KeyFileVault::open_or_create(&path).unwrap();

    assert_eq!(
        std::fs::read(&path).unwrap(),
        key_before,
        "the key file is not rewritten"
    );
    assert_eq!(reopened.open(&sealed, AAD).await.unwrap(), b"pw");
}

#[tokio::test]
async fn another_key_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let one = KeyFileVault::open_or_create(dir.path().join("one.key")).unwrap();
    let two = KeyFileVault::open_or_create(dir.path().join("two.key")).unwrap();
    let sealed = one.seal(b"pw", AAD).await.unwrap();

    assert!(matches!(
        two.open(&sealed, AAD).await,
        Err(VaultError::Decrypt)
    ));
}

#[tokio::test]
async fn a_different_aad_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let vault = KeyFileVault::open_or_create(dir.path().join("vault.key")).unwrap();
    let sealed = vault.seal(b"pw", AAD).await.unwrap();

    assert!(matches!(
        vault.open(&sealed, b"user:someone-else").await,
        Err(VaultError::Decrypt)
    ));
    assert!(matches!(
        vault.open(&sealed, b"").await,
        Err(VaultError::Decrypt)
    ));
}

#[tokio::test]
async fn any_altered_byte_or_length_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let vault = KeyFileVault::open_or_create(dir.path().join("vault.key")).unwrap();
    let sealed = vault.seal(b"a password of some length", AAD).await.unwrap();

    // Every position: version byte, nonce, ciphertext and tag.
    for i in 0..sealed.0.len() {
        let mut bytes = sealed.0.clone();
        bytes[i] ^= 0x01;
        assert!(
            matches!(
                vault.open(&Sealed(bytes), AAD).await,
                Err(VaultError::Decrypt)
            ),
            "flipped byte {i}"
        );
    }
    for len in [0, 1, 13, 28, sealed.0.len() - 1] {
        let cut = Sealed(sealed.0[..len].to_vec());
        assert!(
            matches!(vault.open(&cut, AAD).await, Err(VaultError::Decrypt)),
            "truncated to {len}"
        );
    }
    let mut longer = sealed.0.clone();
    longer.push(0);
    assert!(
        matches!(
            vault.open(&Sealed(longer), AAD).await,
            Err(VaultError::Decrypt)
        ),
        "extended"
    );
}

#[tokio::test]
async fn refuses_a_key_file_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.key");
    KeyFileVault::open_or_create(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

    let err = KeyFileVault::open_or_create(&path).unwrap_err();

    match err {
        VaultError::Backend(m) => assert!(m.contains("644") && m.contains("chmod 600"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refuses_a_key_file_of_the_wrong_length() {
    let dir = tempfile::tempdir().unwrap();
    for len in [0usize, 16, 31, 33, 64] {
        let path = dir.path().join(format!("vault-{len}.key"));
        std::fs::write(&path, vec![7u8; len]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        let err = KeyFileVault::open_or_create(&path).unwrap_err();

        match err {
            VaultError::Backend(m) => assert!(m.contains(&format!("{len} bytes")), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn refuses_a_folder_in_place_of_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = KeyFileVault::open_or_create(dir.path()).unwrap_err();
    assert!(matches!(err, VaultError::Backend(_)), "{err:?}");
}
