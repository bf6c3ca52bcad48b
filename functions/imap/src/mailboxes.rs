//! Logging in to IMAP servers: sessions, and the login check of the domain's
//! [`domain::mailbox::MailServers`] port (implemented in `port.rs`).

use std::time::Duration;

use domain::Endpoint;
use domain::error::LoginError;
use domain::ports::LoginInfo;
use domain::secret::Credential;

use crate::{ImapError, Reach, Session, TlsConfig};

/// Mailbox access over IMAP for the use cases (login checks now; the copy engine's
/// sessions later). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ImapMailboxes {
    tls: TlsConfig,
    compress: bool,
    reach: Reach,
}

impl ImapMailboxes {
    /// Sessions to any address; see [`ImapMailboxes::reaching`].
    pub fn new(tls: TlsConfig) -> Self {
        ImapMailboxes {
            tls,
            compress: false,
            reach: Reach::Anywhere,
        }
    }

    /// Which addresses connection tests and copy jobs may reach: a hosted deployment refuses
    /// loopback, link-local and metadata addresses ([`Reach::PublicAndPrivateNetworks`]).
    pub fn reaching(mut self, reach: Reach) -> Self {
        self.reach = reach;
        self
    }

    /// Asks servers that offer it for COMPRESS=DEFLATE on the copy engine's sessions. Off by
    /// default: it pays on slow links and costs on fast ones.
    pub fn with_compression(mut self, on: bool) -> Self {
        self.compress = on;
        self
    }

    pub fn compression(&self) -> bool {
        self.compress
    }

    pub fn tls(&self) -> &TlsConfig {
        &self.tls
    }

    /// A logged-in session, for callers that go on to use it.
    pub async fn open(
        &self,
        endpoint: &Endpoint,
        login: &str,
        credential: &Credential,
        timeout: Duration,
    ) -> Result<Session, ImapError> {
        let mut session = Session::connect_to(endpoint, &self.tls, timeout, self.reach).await?;
        match credential {
            Credential::Password(password) => session.login(login, password).await?,
            Credential::Bearer(token) => session.authenticate_xoauth2(login, token).await?,
        }
        Ok(session)
    }
}

impl ImapMailboxes {
    /// Connects, logs in and reports the capabilities, all within `timeout`. The LOGOUT
    /// afterwards runs in the background: a slow goodbye must not turn a good login into a
    /// timeout.
    pub(crate) async fn check_login(
        &self,
        endpoint: &Endpoint,
        login: &str,
        credential: &Credential,
        timeout: Duration,
    ) -> Result<LoginInfo, LoginError> {
        let session =
            match tokio::time::timeout(timeout, self.open(endpoint, login, credential, timeout))
                .await
            {
                Err(_) => return Err(LoginError::Timeout),
                Ok(Err(error)) => {
                    tracing::debug!(host = %endpoint.host, %error, "test login failed");
                    return Err(error.into_login_error());
                }
                Ok(Ok(session)) => session,
            };
        let capabilities = session.capabilities().as_slice().to_vec();
        tokio::spawn(async move {
            let _ = session.logout().await;
        });
        Ok(LoginInfo { capabilities })
    }
}
