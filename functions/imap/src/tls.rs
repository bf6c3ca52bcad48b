//! Which certificates the client trusts.

use std::fmt;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::ImapError;

/// The TLS client settings every session uses: rustls on the ring provider, the operating
/// system's root certificates plus any extra CAs (a company CA, or a test server's own).
/// Cheap to clone; build it once at start-up.
///
/// ```no_run
/// # fn demo(company_ca_pem: &[u8]) -> Result<(), imap::ImapError> {
/// let tls = imap::TlsConfig::native_roots().with_extra_ca_pem(company_ca_pem)?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    roots: Arc<RootCertStore>,
    config: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Trusts the operating system's root certificates (unreadable ones are skipped and
    /// logged at debug level; none at all just means only extra CAs will be trusted).
    pub fn native_roots() -> Self {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::debug!(%error, "skipping unreadable system root certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "loaded system root certificates");
        Self::from_roots(roots)
    }

    /// Trusts nothing yet: add CAs with [`TlsConfig::with_extra_ca_pem`]. For tests that must
    /// not depend on the machine's roots.
    pub fn no_roots() -> Self {
        Self::from_roots(RootCertStore::empty())
    }

    /// Also trusts the CA certificates in `pem` (one or more PEM `CERTIFICATE` blocks).
    pub fn with_extra_ca_pem(self, pem: impl AsRef<[u8]>) -> Result<Self, ImapError> {
        let mut roots = Arc::unwrap_or_clone(self.roots);
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_ref()) {
            let cert =
                cert.map_err(|e| ImapError::TlsConfig(format!("unreadable CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| ImapError::TlsConfig(format!("unusable CA certificate: {e}")))?;
            found += 1;
        }
        if found == 0 {
            return Err(ImapError::TlsConfig("no certificate in the CA PEM".into()));
        }
        Ok(Self::from_roots(roots))
    }

    /// How many CA certificates are trusted.
    pub fn root_count(&self) -> usize {
        self.roots.len()
    }

    /// The rustls configuration sessions use.
    pub fn rustls_config(&self) -> Arc<rustls::ClientConfig> {
        self.config.clone()
    }

    pub(crate) fn connector(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(self.config.clone())
    }

    fn from_roots(roots: RootCertStore) -> Self {
        let roots = Arc::new(roots);
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        // ring's default provider implements both TLS 1.2 and 1.3, so this cannot fail.
        .expect("the ring provider supports the default TLS versions")
        .with_root_certificates(roots.clone())
        .with_no_client_auth();
        TlsConfig {
            roots,
            config: Arc::new(config),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_cas_are_added_and_garbage_is_refused() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIBdzCCAR2gAwIBAgIUSWAVLhuTCuuhUSmhQAcq3dUc/BswCgYIKoZIzj0EAwIw\n-----END CERTIFICATE-----\n";
        assert!(
            TlsConfig::no_roots()
                .with_extra_ca_pem("not a pem")
                .is_err()
        );
        assert!(TlsConfig::no_roots().with_extra_ca_pem(pem).is_err());
        assert_eq!(TlsConfig::no_roots().root_count(), 0);
    }
}
