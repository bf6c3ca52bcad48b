//! Connection tests: a login tried with a connector as typed in the form, or with a project's
//! stored connector, so the admin knows a server and its accounts work before users start.
//! Every test is recorded in the audit trail; nothing typed here is stored.

use contract::{ConnectionTestInput, ConnectionTestResult};

use crate::audit::{Actor, AuditAction};
use crate::error::{AppError, LoginError};
use crate::model::*;
use crate::secret::Credential;

use super::App;
use super::projects::{CheckedAuth, Side, check_connector, check_password};

impl App {
    /// Tries a login with a connector as typed in the form (nothing is stored).
    pub async fn test_connection(
        &self,
        input: &ConnectionTestInput,
        actor: &Actor,
    ) -> Result<ConnectionTestResult, AppError> {
        let checked = check_connector("connector", &input.connector)?;
        let email = match input.email.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(e) => {
                Some(EmailAddress::parse(e).map_err(|m| AppError::validation_field("email", m))?)
            }
        };
        let credential = match &checked.auth {
            CheckedAuth::PerUser => {
                let email = email.ok_or_else(|| {
                    AppError::validation_field("email", "enter a mailbox address to test with")
                })?;
                let pw = input.password.as_deref().ok_or_else(|| {
                    AppError::validation_field("password", "enter the mailbox password to test")
                })?;
                check_password("password", pw)?;
                Ok((email.to_string(), Credential::password(pw)))
            }
            _ => self.typed_credential(&checked, email.as_ref()).await,
        };
        let endpoint = Endpoint {
            host: checked.host,
            port: checked.port,
            security: checked.security,
        };
        let (login, result) = match credential {
            Ok((login, credential)) => {
                let result = self.try_login(&endpoint, &login, &credential).await;
                (login, result)
            }
            Err(e) => (String::from("(no token)"), token_refusal(e)?),
        };
        self.audit_test(None, actor, &endpoint, &login, &result)
            .await;
        Ok(result)
    }

    async fn audit_test(
        &self,
        project: Option<ProjectId>,
        actor: &Actor,
        endpoint: &Endpoint,
        login: &str,
        result: &ConnectionTestResult,
    ) {
        let detail = format!(
            "{}:{} {:?} as {login}: {}",
            endpoint.host,
            endpoint.port,
            endpoint.security,
            if result.ok {
                "signed in"
            } else {
                &result.message
            }
        );
        self.audit(project, actor, AuditAction::ConnectionTested, None, &detail)
            .await;
    }

    /// Tries the stored connector of a project, with its sealed admin password or a typed one.
    pub async fn test_project_connector(
        &self,
        id: ProjectId,
        side: Side,
        email: Option<&str>,
        password: Option<&str>,
        actor: &Actor,
    ) -> Result<ConnectionTestResult, AppError> {
        let project = self.project(id).await?;
        let connector = match side {
            Side::Source => &project.source,
            Side::Target => &project.target,
        };
        let email = match email.map(str::trim) {
            None | Some("") => None,
            Some(e) => {
                Some(EmailAddress::parse(e).map_err(|m| AppError::validation_field("email", m))?)
            }
        };
        let credential = match &connector.auth {
            ConnectorAuth::PerUser => {
                let email = email.ok_or_else(|| {
                    AppError::validation_field("email", "enter a mailbox address to test with")
                })?;
                let pw = password.ok_or_else(|| {
                    AppError::validation_field("password", "enter the mailbox password to test")
                })?;
                check_password("password", pw)?;
                Ok((email.to_string(), Credential::password(pw)))
            }
            ConnectorAuth::UserSignIn { .. } => Err(super::auth_input::sign_in_untestable()),
            ConnectorAuth::Admin { login_pattern, .. }
                if email.is_none() && !login_pattern.contains("{email}") =>
            {
                self.admin_credential(id, side, connector, "").await
            }
            _ => {
                let email = email.ok_or_else(|| {
                    AppError::validation_field("email", "enter a mailbox address to test with")
                })?;
                self.admin_credential(id, side, connector, email.as_str())
                    .await
            }
        };
        let endpoint = connector.endpoint();
        let (login, result) = match credential {
            Ok((login, credential)) => {
                let result = self.try_login(&endpoint, &login, &credential).await;
                (login, result)
            }
            Err(e) => (String::from("(no token)"), token_refusal(e)?),
        };
        self.audit_test(Some(id), actor, &endpoint, &login, &result)
            .await;
        Ok(result)
    }

    pub(crate) async fn try_login(
        &self,
        endpoint: &Endpoint,
        login: &str,
        credential: &Credential,
    ) -> ConnectionTestResult {
        match self
            .deps
            .mailboxes
            .test_login(endpoint, login, credential, self.config.login_timeout)
            .await
        {
            Ok(info) => ConnectionTestResult {
                ok: true,
                message: format!(
                    "signed in to {}:{} as {login}",
                    endpoint.host, endpoint.port
                ),
                capabilities: info.capabilities,
            },
            Err(LoginError::Rejected(_)) if matches!(credential, Credential::Bearer(_)) => {
                ConnectionTestResult {
                    ok: false,
                    message: format!(
                        "{}:{} did not accept the app's token for {login}: check the app's access to this mailbox",
                        endpoint.host, endpoint.port
                    ),
                    capabilities: vec![],
                }
            }
            Err(e) => ConnectionTestResult {
                ok: false,
                message: describe_login_error(endpoint, &e),
                capabilities: vec![],
            },
        }
    }
}

/// A token the authority refused or could not give is a failed test the admin reads, not an
/// error of the request; anything else (a deleted secret, the vault) stays an error.
fn token_refusal(e: AppError) -> Result<ConnectionTestResult, AppError> {
    match e {
        AppError::LoginRejected(message) | AppError::Upstream(message) => {
            Ok(ConnectionTestResult {
                ok: false,
                message,
                capabilities: vec![],
            })
        }
        other => Err(other),
    }
}

pub(crate) fn describe_login_error(endpoint: &Endpoint, e: &LoginError) -> String {
    let at = format!("{}:{}", endpoint.host, endpoint.port);
    match e {
        LoginError::Rejected(_) => format!("{at} did not accept the login name and password"),
        LoginError::Unreachable(m) => format!("{at} could not be reached: {m}"),
        LoginError::Tls(m) => format!("a secure connection to {at} failed: {m}"),
        LoginError::Timeout => format!("{at} did not answer in time"),
    }
}
