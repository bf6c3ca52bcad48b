//! Admin-level access of a connector: a master account's password, a Microsoft 365 app's
//! client secret or a Google service account's key. Checked from the form, sealed bound to the
//! server and identity it was entered for (so an edit cannot send it elsewhere), and turned
//! into what signs in to one mailbox: the password, or an OAuth token from the authority.

use contract::ConnectorKind;

use crate::error::AppError;
use crate::model::*;
use crate::oauth::{AppGrant, TokenError};
use crate::providers;
use crate::secret::{Credential, Secret};

use super::App;
use super::auth_input::{CheckedAuth, sign_in_untestable};
use super::projects::Side;

/// What a sealed admin-level secret is bound to besides its project, side and server. For a
/// master account the login pattern alone (as sealed before app access existed).
fn identity(auth: &ConnectorAuth) -> Option<String> {
    match auth {
        ConnectorAuth::Admin { login_pattern, .. } => Some(login_pattern.clone()),
        ConnectorAuth::MicrosoftApp {
            tenant_id,
            client_id,
            login_pattern,
            ..
        } => Some(format!(
            "microsoft_app:{tenant_id}:{client_id}:{login_pattern}"
        )),
        ConnectorAuth::GoogleServiceAccount { client_email, .. } => {
            Some(format!("google_service_account:{client_email}"))
        }
        ConnectorAuth::UserSignIn {
            client_id,
            tenant_id,
            ..
        } => Some(format!(
            "user_sign_in:{}:{client_id}",
            tenant_id.as_deref().unwrap_or_default()
        )),
        ConnectorAuth::PerUser => None,
    }
}

/// The additional data bound to a sealed admin-level secret: a blob opens only for its own
/// project and side, and only for the server and identity it was entered for, so a stored
/// secret can never be sent to another server by editing the project.
pub(crate) fn admin_secret_aad(project: ProjectId, side: Side, connector: &Connector) -> Vec<u8> {
    format!(
        "project:{project}:{}|imap://{}:{}/{:?}|{}",
        side.as_str(),
        connector.host.to_ascii_lowercase(),
        connector.port,
        connector.security,
        identity(&connector.auth).unwrap_or_default(),
    )
    .into_bytes()
}

/// What passwords sealed before they were bound to their server carry.
fn legacy_admin_password_aad(project: ProjectId, side: Side) -> Vec<u8> {
    format!("project:{project}:{}", side.as_str()).into_bytes()
}

/// The connector without its secret, as it will be stored: what the secret is bound to.
fn unsealed(
    kind: ConnectorKind,
    checked: &super::projects::CheckedConnector,
    client_email: Option<String>,
) -> Connector {
    let auth = match &checked.auth {
        CheckedAuth::Admin { login_pattern, .. } => ConnectorAuth::Admin {
            login_pattern: login_pattern.clone(),
            password: None,
        },
        CheckedAuth::PerUser => ConnectorAuth::PerUser,
        CheckedAuth::MicrosoftApp {
            tenant_id,
            client_id,
            login_pattern,
            ..
        } => ConnectorAuth::MicrosoftApp {
            tenant_id: tenant_id.clone(),
            client_id: client_id.clone(),
            login_pattern: login_pattern.clone(),
            secret: None,
        },
        CheckedAuth::GoogleServiceAccount { .. } => ConnectorAuth::GoogleServiceAccount {
            client_email: client_email.unwrap_or_default(),
            key: None,
        },
        CheckedAuth::UserSignIn {
            client_id,
            tenant_id,
            ..
        } => ConnectorAuth::UserSignIn {
            client_id: client_id.clone(),
            tenant_id: tenant_id.clone(),
            secret: None,
        },
    };
    Connector {
        kind,
        host: checked.host.clone(),
        port: checked.port,
        security: checked.security,
        auth,
    }
}

fn put_secret(auth: &mut ConnectorAuth, sealed: Sealed) {
    match auth {
        ConnectorAuth::Admin { password, .. } => *password = Some(sealed),
        ConnectorAuth::MicrosoftApp { secret, .. } => *secret = Some(sealed),
        ConnectorAuth::GoogleServiceAccount { key, .. } => *key = Some(sealed),
        ConnectorAuth::UserSignIn { secret, .. } => *secret = Some(sealed),
        ConnectorAuth::PerUser => {}
    }
}

impl App {
    /// Seals what the form typed, or keeps the stored secret when the server and identity it
    /// was entered for are unchanged; anything else asks for the secret again.
    pub(crate) async fn seal_connector(
        &self,
        project: ProjectId,
        side: Side,
        checked: super::projects::CheckedConnector,
        existing: Option<&Connector>,
    ) -> Result<Connector, AppError> {
        let (typed, typed_email, field, missing) = match &checked.auth {
            CheckedAuth::PerUser => (None, None, "", ""),
            CheckedAuth::Admin { password, .. } => (
                password.clone(),
                None,
                "password",
                "the admin account needs a password",
            ),
            CheckedAuth::MicrosoftApp { secret, .. } => (
                secret.clone(),
                None,
                "client_secret",
                "the app needs its client secret",
            ),
            CheckedAuth::GoogleServiceAccount { key, client_email } => (
                key.clone(),
                client_email.clone(),
                "key_json",
                "the service account needs its key file",
            ),
            CheckedAuth::UserSignIn { .. } => (None, None, "", ""),
        };
        let kind = checked.kind;
        if matches!(checked.auth, CheckedAuth::PerUser) {
            return Ok(unsealed(kind, &checked, None));
        }
        if let CheckedAuth::UserSignIn { secret, .. } = &checked.auth {
            return self
                .seal_client_secret(project, side, &checked, secret.clone(), existing)
                .await;
        }
        let field = format!("{}.auth.{field}", side.as_str());
        if let Some(secret) = typed {
            let mut connector = unsealed(kind, &checked, typed_email);
            let aad = admin_secret_aad(project, side, &connector);
            let sealed = self
                .deps
                .vault
                .seal(secret.expose().as_bytes(), &aad)
                .await?;
            put_secret(&mut connector.auth, sealed);
            return Ok(connector);
        }
        // Nothing typed: keep the stored secret, only for the server and identity it was
        // entered for.
        let kept_email = match existing.map(|c| &c.auth) {
            Some(ConnectorAuth::GoogleServiceAccount { client_email, .. }) => {
                Some(client_email.clone())
            }
            _ => None,
        };
        let mut connector = unsealed(kind, &checked, kept_email);
        let Some(old) = existing else {
            return Err(AppError::validation_field(&field, missing));
        };
        let Some(Some(sealed)) = old.auth.admin_secret() else {
            return Err(AppError::validation_field(&field, missing));
        };
        let same = std::mem::discriminant(&old.auth) == std::mem::discriminant(&connector.auth)
            && old.host.eq_ignore_ascii_case(&connector.host)
            && old.port == connector.port
            && old.security == connector.security
            && identity(&old.auth) == identity(&connector.auth);
        if !same {
            return Err(AppError::validation_field(
                &field,
                "the server or login changed: enter the secret again",
            ));
        }
        put_secret(&mut connector.auth, sealed.clone());
        Ok(connector)
    }

    /// The user sign-in's client secret: sealed when typed, kept when the server and client are
    /// unchanged, and none (a public client) otherwise.
    async fn seal_client_secret(
        &self,
        project: ProjectId,
        side: Side,
        checked: &super::projects::CheckedConnector,
        typed: Option<Secret>,
        existing: Option<&Connector>,
    ) -> Result<Connector, AppError> {
        let mut connector = unsealed(checked.kind, checked, None);
        let aad = admin_secret_aad(project, side, &connector);
        let sealed = match typed {
            Some(secret) => Some(
                self.deps
                    .vault
                    .seal(secret.expose().as_bytes(), &aad)
                    .await?,
            ),
            None => existing.and_then(|old| match &old.auth {
                ConnectorAuth::UserSignIn {
                    secret: Some(sealed),
                    ..
                } if admin_secret_aad(project, side, old) == aad => Some(sealed.clone()),
                _ => None,
            }),
        };
        if let Some(sealed) = sealed {
            put_secret(&mut connector.auth, sealed);
        }
        Ok(connector)
    }

    /// The client secret of a user sign-in side, when it has one.
    pub(crate) async fn open_client_secret(
        &self,
        project: ProjectId,
        side: Side,
        connector: &Connector,
    ) -> Result<Option<Secret>, AppError> {
        let ConnectorAuth::UserSignIn {
            secret: Some(sealed),
            ..
        } = &connector.auth
        else {
            return Ok(None);
        };
        let aad = admin_secret_aad(project, side, connector);
        let plain = self.deps.vault.open(sealed, &aad).await?;
        Ok(Some(Secret::new(
            String::from_utf8(plain).map_err(AppError::internal)?,
        )))
    }

    /// The stored admin-level secret of a connector, opened for the connector's own server.
    pub(crate) async fn open_admin_secret(
        &self,
        project: ProjectId,
        side: Side,
        connector: &Connector,
    ) -> Result<Secret, AppError> {
        let Some(sealed) = connector.auth.admin_secret() else {
            return Err(AppError::internal(
                "the connector has no admin-level secret",
            ));
        };
        let Some(sealed) = sealed else {
            return Err(AppError::Conflict(format!(
                "the admin password (or app secret) of the {} server was deleted when the project was closed: enter it again in the project's settings",
                side.as_str()
            )));
        };
        let bound = admin_secret_aad(project, side, connector);
        let plain = match self.deps.vault.open(sealed, &bound).await {
            Ok(plain) => plain,
            // Master passwords sealed before they were bound to their server (an edit of the
            // endpoint requires the password again since, so it still belongs to this one).
            Err(_) if matches!(connector.auth, ConnectorAuth::Admin { .. }) => {
                self.deps
                    .vault
                    .open(sealed, &legacy_admin_password_aad(project, side))
                    .await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Secret::new(
            String::from_utf8(plain).map_err(AppError::internal)?,
        ))
    }

    /// The app grant of an OAuth admin mode for one mailbox.
    fn app_grant(&self, connector: &Connector, secret: Secret, email: &str) -> Option<AppGrant> {
        let authorities = &self.config.authorities;
        let scope = |kind| {
            providers::profile(kind)
                .authority
                .map(|a| a.value.app_scope.to_owned())
                .unwrap_or_default()
        };
        match &connector.auth {
            ConnectorAuth::MicrosoftApp {
                tenant_id,
                client_id,
                ..
            } => Some(AppGrant::ClientCredentials {
                token_url: authorities
                    .microsoft_token_url
                    .replace("{tenant}", tenant_id),
                client_id: client_id.clone(),
                client_secret: secret,
                scope: scope(ConnectorKind::Microsoft365),
            }),
            ConnectorAuth::GoogleServiceAccount { .. } => Some(AppGrant::ServiceAccount {
                token_url: authorities.google_token_url.clone(),
                key_json: secret,
                subject: email.to_owned(),
                scope: scope(ConnectorKind::GoogleWorkspace),
            }),
            _ => None,
        }
    }

    /// What signs in to `email`'s mailbox with a connector's admin-level access, and as whom:
    /// the master password, or an app token the authority grants.
    pub(crate) async fn admin_credential(
        &self,
        project: ProjectId,
        side: Side,
        connector: &Connector,
        email: &str,
    ) -> Result<(String, Credential), AppError> {
        let secret = self.open_admin_secret(project, side, connector).await?;
        let login = match &connector.auth {
            ConnectorAuth::Admin { login_pattern, .. }
            | ConnectorAuth::MicrosoftApp { login_pattern, .. } => {
                login_pattern.replace("{email}", email)
            }
            _ => email.to_owned(),
        };
        let Some(grant) = self.app_grant(connector, secret.clone(), email) else {
            return Ok((login, Credential::Password(secret)));
        };
        let token = self.token_for(&grant, side.as_str()).await?;
        Ok((login, Credential::Bearer(token)))
    }

    /// Forgets the kept token of a connector's app access for `email`, so that the next one is
    /// new: the service refused it (revoked, or ended early).
    pub(crate) async fn forget_app_token(
        &self,
        project: ProjectId,
        side: Side,
        connector: &Connector,
        email: &str,
    ) -> Result<(), AppError> {
        let secret = self.open_admin_secret(project, side, connector).await?;
        if let Some(grant) = self.app_grant(connector, secret, email) {
            self.deps.tokens.forget(&grant).await;
        }
        Ok(())
    }

    /// Asks the authority for a token (or takes a kept one).
    async fn token_for(&self, grant: &AppGrant, side: &str) -> Result<Secret, AppError> {
        match self.deps.tokens.app_token(grant).await {
            Ok(token) => Ok(token.token),
            Err(TokenError::Refused(m)) => Err(AppError::LoginRejected(format!(
                "{side} server: the authority refused a token for {}: {m}",
                grant.describe()
            ))),
            Err(TokenError::Unavailable(m)) => Err(AppError::Upstream(format!(
                "{side} server: the authority could not be reached: {m}"
            ))),
        }
    }

    /// What signs in with admin-level access as typed in the form (nothing is stored): for a
    /// connection test before the project is saved.
    pub(crate) async fn typed_credential(
        &self,
        checked: &super::projects::CheckedConnector,
        email: Option<&EmailAddress>,
    ) -> Result<(String, Credential), AppError> {
        let need = |field: &str, what: &str| {
            AppError::validation_field(
                &format!("connector.auth.{field}"),
                format!("enter {what} to test"),
            )
        };
        match &checked.auth {
            CheckedAuth::PerUser => Err(AppError::internal("per-user access has no admin secret")),
            CheckedAuth::UserSignIn { .. } => Err(sign_in_untestable()),
            CheckedAuth::Admin {
                login_pattern,
                password,
            } => {
                let login = match email {
                    Some(e) => login_pattern.replace("{email}", e.as_str()),
                    None if login_pattern.contains("{email}") => {
                        return Err(AppError::validation_field(
                            "email",
                            "the login pattern needs a mailbox address to test with",
                        ));
                    }
                    None => login_pattern.clone(),
                };
                let pw = password
                    .clone()
                    .ok_or_else(|| need("password", "the password"))?;
                Ok((login, Credential::Password(pw)))
            }
            CheckedAuth::MicrosoftApp { secret, .. }
            | CheckedAuth::GoogleServiceAccount { key: secret, .. } => {
                let email = email.ok_or_else(|| {
                    AppError::validation_field("email", "enter a mailbox address to test with")
                })?;
                let (field, what) = match &checked.auth {
                    CheckedAuth::MicrosoftApp { .. } => ("client_secret", "the client secret"),
                    _ => ("key_json", "the key file"),
                };
                let secret = secret.clone().ok_or_else(|| need(field, what))?;
                let client_email = match &checked.auth {
                    CheckedAuth::GoogleServiceAccount { client_email, .. } => client_email.clone(),
                    _ => None,
                };
                let connector = unsealed(checked.kind, checked, client_email);
                let login = super::projects::login_for(&connector, email);
                let grant = self
                    .app_grant(&connector, secret, email.as_str())
                    .ok_or_else(|| AppError::internal("an app mode without a grant"))?;
                let token = self.token_for(&grant, "the").await?;
                Ok((login, Credential::Bearer(token)))
            }
        }
    }
}
