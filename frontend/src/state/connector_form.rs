//! One side of the project form: which kind of service (any IMAP server, Microsoft 365, Google
//! Workspace), where it is, and how mailferry signs in to its mailboxes (each user's password,
//! a master account, an app registration or a service account). The provider profiles the
//! server publishes (`GET /api/admin/providers`) fill host, port and security when the kind
//! changes, and say which ways of signing in each kind takes.

use contract::{
    AuthInput, AuthView, ConnectionTestResult, ConnectorInput, ConnectorKind, ConnectorView,
    ProviderView, Security,
};

use crate::validate;

/// How mailferry signs in to one side's mailboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Each user types their own on the invite page (or the admin adds it).
    PerUser,
    /// One admin (master) account opens every mailbox.
    Admin,
    /// Microsoft 365: an app registration with IMAP.AccessAsApp.
    MicrosoftApp,
    /// Google Workspace: a service account with domain-wide delegation.
    GoogleServiceAccount,
    /// Microsoft 365 or Google: each user signs in on the invite page.
    UserSignIn,
}

impl AuthMode {
    /// The API's `mode` name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::PerUser => "per_user",
            AuthMode::Admin => "admin",
            AuthMode::MicrosoftApp => "microsoft_app",
            AuthMode::GoogleServiceAccount => "google_service_account",
            AuthMode::UserSignIn => "user_sign_in",
        }
    }

    pub fn parse(s: &str) -> Option<AuthMode> {
        [
            AuthMode::PerUser,
            AuthMode::Admin,
            AuthMode::MicrosoftApp,
            AuthMode::GoogleServiceAccount,
            AuthMode::UserSignIn,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }

    /// What the admin reads in the choice.
    pub fn label(self) -> &'static str {
        match self {
            AuthMode::PerUser => "Each user enters their own password",
            AuthMode::Admin => "An admin (master) account opens every mailbox",
            AuthMode::MicrosoftApp => "An app registration of the tenant (no passwords)",
            AuthMode::GoogleServiceAccount => {
                "A service account with domain-wide delegation (no passwords)"
            }
            AuthMode::UserSignIn => "Each user signs in with their account on the invite page",
        }
    }

    /// What the secret field of this mode holds, for its label.
    pub fn secret_label(self) -> &'static str {
        match self {
            AuthMode::MicrosoftApp | AuthMode::UserSignIn => "Client secret",
            AuthMode::GoogleServiceAccount => "Service account key file (JSON)",
            _ => "Admin password",
        }
    }

    /// Whether the mode needs a secret the project stores (a sign-in's client secret is
    /// optional: a public client has none).
    pub fn has_secret(self) -> bool {
        !matches!(self, AuthMode::PerUser | AuthMode::UserSignIn)
    }
}

pub fn parse_kind(s: &str) -> Option<ConnectorKind> {
    ConnectorKind::ALL.into_iter().find(|k| k.as_str() == s)
}

/// The state of a "Test connection" button.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TestState {
    #[default]
    Idle,
    Running,
    Done {
        result: ConnectionTestResult,
        /// The saved settings were tested (the typed ones need the secret again).
        saved_settings: bool,
    },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorForm {
    pub kind: ConnectorKind,
    pub host: String,
    pub port: String,
    pub security: Security,
    pub auth: AuthMode,
    pub login_pattern: String,
    /// Microsoft 365: the directory (tenant) ID or domain, and the application (client) ID.
    pub tenant_id: String,
    pub client_id: String,
    /// Google: the service account the stored key belongs to (shown, not edited).
    pub client_email: String,
    /// The typed secret of the mode: admin password, client secret or key file.
    pub admin_password: String,
    /// Editing: the server holds this side's secret; an empty field keeps it.
    pub has_stored_password: bool,
    pub test_email: String,
    pub test_password: String,
    pub test: TestState,
}

impl Default for ConnectorForm {
    fn default() -> Self {
        ConnectorForm {
            kind: ConnectorKind::Imap,
            host: String::new(),
            port: "993".into(),
            security: Security::Tls,
            auth: AuthMode::PerUser,
            login_pattern: "{email}*admin".into(),
            tenant_id: String::new(),
            client_id: String::new(),
            client_email: String::new(),
            admin_password: String::new(),
            has_stored_password: false,
            test_email: String::new(),
            test_password: String::new(),
            test: TestState::Idle,
        }
    }
}

/// The usual port for a kind of connection security.
pub fn default_port(security: Security) -> u16 {
    match security {
        Security::Tls => 993,
        Security::Starttls | Security::Plaintext => 143,
    }
}

pub fn security_value(s: Security) -> &'static str {
    match s {
        Security::Tls => "tls",
        Security::Starttls => "starttls",
        Security::Plaintext => "plaintext",
    }
}

pub fn parse_security(s: &str) -> Option<Security> {
    match s {
        "tls" => Some(Security::Tls),
        "starttls" => Some(Security::Starttls),
        "plaintext" => Some(Security::Plaintext),
        _ => None,
    }
}

/// The ways of signing in a kind takes, from its profile (or the IMAP defaults while the
/// profiles load).
pub fn modes_of(kind: ConnectorKind, providers: &[ProviderView]) -> Vec<AuthMode> {
    match providers.iter().find(|p| p.kind == kind) {
        Some(p) => p
            .auth_modes
            .iter()
            .filter_map(|m| AuthMode::parse(m))
            .collect(),
        None => match kind {
            ConnectorKind::Imap => vec![AuthMode::PerUser, AuthMode::Admin],
            ConnectorKind::Microsoft365 => vec![AuthMode::MicrosoftApp],
            ConnectorKind::GoogleWorkspace => vec![AuthMode::GoogleServiceAccount],
        },
    }
}

impl ConnectorForm {
    pub fn from_view(v: &ConnectorView) -> Self {
        let mut form = ConnectorForm {
            kind: v.kind,
            host: v.host.clone(),
            port: v.port.to_string(),
            security: v.security,
            ..ConnectorForm::default()
        };
        match &v.auth {
            AuthView::Admin {
                login_pattern,
                has_password,
            } => {
                form.auth = AuthMode::Admin;
                form.login_pattern = login_pattern.clone();
                form.has_stored_password = *has_password;
            }
            AuthView::PerUser => form.auth = AuthMode::PerUser,
            AuthView::MicrosoftApp {
                tenant_id,
                client_id,
                login_pattern,
                has_secret,
            } => {
                form.auth = AuthMode::MicrosoftApp;
                form.tenant_id = tenant_id.clone();
                form.client_id = client_id.clone();
                form.login_pattern = login_pattern.clone();
                form.has_stored_password = *has_secret;
            }
            AuthView::GoogleServiceAccount {
                client_email,
                has_key,
            } => {
                form.auth = AuthMode::GoogleServiceAccount;
                form.client_email = client_email.clone();
                form.has_stored_password = *has_key;
            }
            AuthView::UserSignIn {
                client_id,
                tenant_id,
                has_secret,
            } => {
                form.auth = AuthMode::UserSignIn;
                form.client_id = client_id.clone();
                form.tenant_id = tenant_id.clone().unwrap_or_default();
                form.has_stored_password = *has_secret;
            }
        }
        form
    }

    /// Another kind of service: its first way of signing in, and its server when it has a
    /// known one (a server typed for another kind is replaced, one typed for IMAP is kept).
    pub fn set_kind(&mut self, kind: ConnectorKind, providers: &[ProviderView]) {
        if kind == self.kind {
            return;
        }
        let modes = modes_of(kind, providers);
        if !modes.contains(&self.auth)
            && let Some(first) = modes.first()
        {
            self.auth = *first;
            self.admin_password.clear();
        }
        if self.auth == AuthMode::MicrosoftApp && self.login_pattern == "{email}*admin" {
            self.login_pattern = "{email}".into();
        }
        let known = |k: ConnectorKind| providers.iter().find(|p| p.kind == k);
        let old_host = known(self.kind).and_then(|p| p.host.clone());
        let typed_for_old =
            self.host.trim().is_empty() || Some(self.host.trim()) == old_host.as_deref();
        if let Some(p) = known(kind) {
            if let Some(host) = &p.host {
                self.host = host.clone();
                self.port = p.port.to_string();
                self.security = p.security;
            } else if typed_for_old {
                self.host.clear();
            }
        }
        self.kind = kind;
    }

    pub fn needs_test_email(&self) -> bool {
        match self.auth {
            AuthMode::Admin => self.login_pattern.contains("{email}"),
            _ => true,
        }
    }

    /// The problems of this side as typed, by what they are about.
    pub fn errors(&self) -> Vec<(ConnectorField, String)> {
        let mut out = Vec::new();
        if let Err(e) = validate::host(&self.host) {
            out.push((ConnectorField::Host, e));
        }
        if let Err(e) = validate::port(&self.port) {
            out.push((ConnectorField::Port, e));
        }
        if matches!(self.auth, AuthMode::Admin | AuthMode::MicrosoftApp)
            && let Err(e) = validate::login_pattern(&self.login_pattern)
        {
            out.push((ConnectorField::LoginPattern, e));
        }
        if self.auth == AuthMode::UserSignIn && self.client_id.trim().is_empty() {
            out.push((
                ConnectorField::ClientId,
                "Enter the client ID of mailferry's app registration".into(),
            ));
        }
        if self.auth == AuthMode::MicrosoftApp {
            if self.tenant_id.trim().is_empty() {
                out.push((
                    ConnectorField::TenantId,
                    "Enter the directory (tenant) ID or the tenant's domain".into(),
                ));
            }
            if uuid::Uuid::parse_str(self.client_id.trim()).is_err() {
                out.push((
                    ConnectorField::ClientId,
                    "The application (client) ID is a GUID like 00000000-0000-0000-0000-000000000000"
                        .into(),
                ));
            }
        }
        if self.auth.has_secret() {
            let typed = &self.admin_password;
            let check = if typed.is_empty() {
                if self.has_stored_password {
                    Ok(())
                } else {
                    Err(format!(
                        "Enter the {}",
                        self.auth.secret_label().to_lowercase()
                    ))
                }
            } else if self.auth == AuthMode::MicrosoftApp && typed.contains("BEGIN CERTIFICATE") {
                if typed.len() > 16 * 1024 {
                    Err("The certificate is larger than 16 KB".into())
                } else if !typed.contains("PRIVATE KEY-----") {
                    Err("Paste the certificate together with its private key (PEM)".into())
                } else {
                    Ok(())
                }
            } else if self.auth == AuthMode::GoogleServiceAccount {
                if typed.len() > 16 * 1024 {
                    Err("The key file is larger than 16 KB".into())
                } else if !typed.contains("PRIVATE KEY") || !typed.contains("client_email") {
                    Err("This is not a service account key file: paste the whole JSON file Google gave".into())
                } else {
                    Ok(())
                }
            } else {
                validate::password(typed)
            };
            if let Err(e) = check {
                out.push((ConnectorField::Secret, e));
            }
        }
        out
    }

    pub fn to_input(&self) -> Option<ConnectorInput> {
        let port = validate::port(&self.port).ok()?;
        let secret = (!self.admin_password.is_empty()).then(|| self.admin_password.clone());
        let auth = match self.auth {
            AuthMode::PerUser => AuthInput::PerUser,
            AuthMode::Admin => AuthInput::Admin {
                login_pattern: self.login_pattern.trim().to_owned(),
                password: secret,
            },
            AuthMode::MicrosoftApp => AuthInput::MicrosoftApp {
                tenant_id: self.tenant_id.trim().to_owned(),
                client_id: self.client_id.trim().to_owned(),
                client_secret: secret,
                login_pattern: self.login_pattern.trim().to_owned(),
            },
            AuthMode::GoogleServiceAccount => AuthInput::GoogleServiceAccount { key_json: secret },
            AuthMode::UserSignIn => AuthInput::UserSignIn {
                client_id: self.client_id.trim().to_owned(),
                client_secret: secret,
                tenant_id: Some(self.tenant_id.trim().to_owned()).filter(|t| !t.is_empty()),
            },
        };
        Some(ConnectorInput {
            kind: self.kind,
            host: self.host.trim().to_owned(),
            port,
            security: self.security,
            auth,
        })
    }

    /// Whether the typed settings differ from the saved ones.
    pub fn differs_from(&self, saved: &ConnectorView) -> bool {
        let saved = ConnectorForm::from_view(saved);
        self.kind != saved.kind
            || self.host.trim() != saved.host
            || validate::port(&self.port).ok() != validate::port(&saved.port).ok()
            || self.security != saved.security
            || self.auth != saved.auth
            || (matches!(self.auth, AuthMode::Admin | AuthMode::MicrosoftApp)
                && self.login_pattern.trim() != saved.login_pattern)
            || (matches!(self.auth, AuthMode::MicrosoftApp | AuthMode::UserSignIn)
                && (self.tenant_id.trim() != saved.tenant_id
                    || self.client_id.trim() != saved.client_id))
    }
}

/// The inputs of one side that can be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorField {
    Host,
    Port,
    LoginPattern,
    TenantId,
    ClientId,
    Secret,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> Vec<ProviderView> {
        let p = |kind, host: Option<&str>, modes: &[&str]| ProviderView {
            kind,
            name: format!("{kind:?}"),
            host: host.map(str::to_owned),
            port: 993,
            security: Security::Tls,
            auth_modes: modes.iter().map(|m| (*m).to_owned()).collect(),
            setup_steps: vec![],
            rules: vec![],
        };
        vec![
            p(ConnectorKind::Imap, None, &["per_user", "admin"]),
            p(
                ConnectorKind::Microsoft365,
                Some("outlook.office365.com"),
                &["microsoft_app"],
            ),
            p(
                ConnectorKind::GoogleWorkspace,
                Some("imap.gmail.com"),
                &["google_service_account"],
            ),
        ]
    }

    #[test]
    fn choosing_a_provider_fills_its_server_and_its_way_of_signing_in() {
        let mut c = ConnectorForm {
            security: Security::Plaintext,
            port: "143".into(),
            ..ConnectorForm::default()
        };
        c.set_kind(ConnectorKind::Microsoft365, &profiles());
        assert_eq!(
            (c.host.as_str(), c.port.as_str(), c.security, c.auth),
            (
                "outlook.office365.com",
                "993",
                Security::Tls,
                AuthMode::MicrosoftApp
            )
        );
        assert_eq!(c.login_pattern, "{email}");
        c.set_kind(ConnectorKind::GoogleWorkspace, &profiles());
        assert_eq!(
            (c.host.as_str(), c.auth),
            ("imap.gmail.com", AuthMode::GoogleServiceAccount)
        );
        // Back to any IMAP server: the provider's host is no server the admin typed.
        c.set_kind(ConnectorKind::Imap, &profiles());
        assert_eq!((c.host.as_str(), c.auth), ("", AuthMode::PerUser));
        c.host = "imap.example.com".into();
        c.set_kind(ConnectorKind::Imap, &profiles());
        assert_eq!(c.host, "imap.example.com");
    }

    #[test]
    fn an_app_registration_needs_tenant_guid_and_secret_and_builds_its_input() {
        let mut c = ConnectorForm::default();
        c.set_kind(ConnectorKind::Microsoft365, &profiles());
        let wrong: Vec<ConnectorField> = c.errors().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            wrong,
            vec![
                ConnectorField::TenantId,
                ConnectorField::ClientId,
                ConnectorField::Secret
            ]
        );
        c.tenant_id = "contoso.onmicrosoft.com".into();
        c.client_id = "6f1c1a43-0b8e-4a8e-9d43-3a1f8c7e2b10".into();
        c.admin_password = "s3cret".into();
        assert!(c.errors().is_empty(), "{:?}", c.errors());
        assert_eq!(
            c.to_input().unwrap().auth,
            AuthInput::MicrosoftApp {
                tenant_id: "contoso.onmicrosoft.com".into(),
                client_id: "6f1c1a43-0b8e-4a8e-9d43-3a1f8c7e2b10".into(),
                client_secret: Some("s3cret".into()),
                login_pattern: "{email}".into(),
            }
        );
    }

    #[test]
    fn a_sign_in_side_needs_only_its_client_and_keeps_secret_and_tenant_optional() {
        let mut c = ConnectorForm::default();
        c.set_kind(ConnectorKind::Microsoft365, &profiles());
        c.auth = AuthMode::UserSignIn;
        let wrong: Vec<ConnectorField> = c.errors().into_iter().map(|(f, _)| f).collect();
        assert_eq!(wrong, vec![ConnectorField::ClientId]);
        c.client_id = " 3c9a1f0e-5d4b-4e7a-9b1c-2f6e8d0a7b31 ".into();
        assert!(c.errors().is_empty(), "{:?}", c.errors());
        assert_eq!(
            c.to_input().unwrap().auth,
            AuthInput::UserSignIn {
                client_id: "3c9a1f0e-5d4b-4e7a-9b1c-2f6e8d0a7b31".into(),
                client_secret: None,
                tenant_id: None,
            }
        );
        c.tenant_id = "contoso.onmicrosoft.com".into();
        c.admin_password = "s3cret".into();
        let input = c.to_input().unwrap();
        assert!(matches!(
            input.auth,
            AuthInput::UserSignIn { tenant_id: Some(ref t), client_secret: Some(_), .. } if t == "contoso.onmicrosoft.com"
        ));
        // Read back from the server, the form is the same and differs from nothing.
        let view = ConnectorView {
            kind: ConnectorKind::Microsoft365,
            host: c.host.clone(),
            port: 993,
            security: Security::Tls,
            auth: AuthView::UserSignIn {
                client_id: "3c9a1f0e-5d4b-4e7a-9b1c-2f6e8d0a7b31".into(),
                tenant_id: Some("contoso.onmicrosoft.com".into()),
                has_secret: true,
            },
        };
        let back = ConnectorForm::from_view(&view);
        assert_eq!(back.auth, AuthMode::UserSignIn);
        assert!(!c.differs_from(&view));
    }

    #[test]
    fn a_stored_service_account_key_is_kept_when_none_is_typed() {
        let view = ConnectorView {
            kind: ConnectorKind::GoogleWorkspace,
            host: "imap.gmail.com".into(),
            port: 993,
            security: Security::Tls,
            auth: AuthView::GoogleServiceAccount {
                client_email: "mover@p.iam.gserviceaccount.com".into(),
                has_key: true,
            },
        };
        let c = ConnectorForm::from_view(&view);
        assert!(c.errors().is_empty(), "{:?}", c.errors());
        assert_eq!(
            c.to_input().unwrap().auth,
            AuthInput::GoogleServiceAccount { key_json: None }
        );
        assert!(!c.differs_from(&view));
        let mut pasted = c.clone();
        pasted.admin_password = "not a key".into();
        assert!(
            pasted
                .errors()
                .iter()
                .any(|(f, e)| *f == ConnectorField::Secret && e.contains("key file")),
            "{:?}",
            pasted.errors()
        );
    }
}
