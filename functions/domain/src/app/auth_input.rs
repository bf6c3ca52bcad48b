//! A connector's authentication as the form sends it, checked before anything is sealed: the
//! ways of signing in each kind of service takes (its profile), a master account's login
//! pattern and password, a Microsoft tenant and application ID, a Google service-account key
//! file, and the OAuth client of users' sign-ins.

use contract::{AuthInput, ConnectorKind};
use serde::Deserialize;

use crate::error::AppError;
use crate::model::*;
use crate::providers;
use crate::secret::Secret;

use super::projects::{check_login_pattern, check_password};

/// Longest key file or client secret taken from the form.
const SECRET_MAX_BYTES: usize = 16 * 1024;

/// A connector's authentication as typed in the form, validated, before anything is sealed.
pub(crate) enum CheckedAuth {
    Admin {
        login_pattern: String,
        password: Option<Secret>,
    },
    PerUser,
    MicrosoftApp {
        tenant_id: String,
        client_id: String,
        login_pattern: String,
        secret: Option<Secret>,
    },
    GoogleServiceAccount {
        /// From the key file, when one was given.
        client_email: Option<String>,
        key: Option<Secret>,
    },
    UserSignIn {
        client_id: String,
        tenant_id: Option<String>,
        secret: Option<Secret>,
    },
}

/// The fields of a Google service-account key file mailferry reads.
#[derive(Deserialize)]
struct ServiceAccountKey {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    private_key: String,
}

fn mode_name(input: &AuthInput) -> &'static str {
    match input {
        AuthInput::Admin { .. } => "admin",
        AuthInput::PerUser => "per_user",
        AuthInput::MicrosoftApp { .. } => "microsoft_app",
        AuthInput::GoogleServiceAccount { .. } => "google_service_account",
        AuthInput::UserSignIn { .. } => "user_sign_in",
    }
}

/// Validates the form's authentication for a connector of `kind`.
pub(crate) fn check_auth(
    side: &str,
    kind: ConnectorKind,
    input: &AuthInput,
) -> Result<CheckedAuth, AppError> {
    let field = |name: &str| format!("{side}.auth.{name}");
    let profile = providers::profile(kind);
    let mode = mode_name(input);
    if !profile.auth_modes.contains(&mode) {
        return Err(AppError::validation_field(
            &field("mode"),
            format!(
                "{} takes {}, not {mode}",
                profile.name,
                profile.auth_modes.join(" or ")
            ),
        ));
    }
    Ok(match input {
        AuthInput::Admin {
            login_pattern,
            password,
        } => {
            let login_pattern = check_login_pattern(&field("login_pattern"), login_pattern)?;
            if let Some(pw) = password {
                check_password(&field("password"), pw)?;
            }
            CheckedAuth::Admin {
                login_pattern,
                password: password.clone().map(Secret::new),
            }
        }
        AuthInput::PerUser => CheckedAuth::PerUser,
        AuthInput::MicrosoftApp {
            tenant_id,
            client_id,
            client_secret,
            login_pattern,
        } => {
            let tenant_id = check_tenant(&field("tenant_id"), tenant_id)?;
            let client_id = check_guid(&field("client_id"), client_id)?;
            if let Some(secret) = client_secret {
                check_secret(&field("client_secret"), secret)?;
                // A certificate instead of a secret: it signs with its private key.
                if secret.contains("BEGIN CERTIFICATE") && !secret.contains("PRIVATE KEY-----") {
                    return Err(AppError::validation_field(
                        &field("client_secret"),
                        "paste the certificate together with its private key (PEM, BEGIN PRIVATE KEY)",
                    ));
                }
            }
            CheckedAuth::MicrosoftApp {
                tenant_id,
                client_id,
                login_pattern: check_login_pattern(&field("login_pattern"), login_pattern)?,
                secret: client_secret.clone().map(Secret::new),
            }
        }
        AuthInput::UserSignIn {
            client_id,
            client_secret,
            tenant_id,
        } => check_sign_in(&field, kind, client_id, client_secret, tenant_id)?,
        AuthInput::GoogleServiceAccount { key_json } => match key_json {
            None => CheckedAuth::GoogleServiceAccount {
                client_email: None,
                key: None,
            },
            Some(raw) => check_service_account_key(&field("key_json"), raw)?,
        },
    })
}

/// A Google service account's key file: JSON of type `service_account` with its address and a
/// PKCS#8 private key.
fn check_service_account_key(f: &str, raw: &str) -> Result<CheckedAuth, AppError> {
    check_secret(f, raw)?;
    let key: ServiceAccountKey = serde_json::from_str(raw).map_err(|_| {
        AppError::validation_field(
            f,
            "this is not a service account key file (JSON with client_email and private_key)",
        )
    })?;
    if key.kind != "service_account" {
        return Err(AppError::validation_field(
            f,
            format!(
                "the key file is of type '{}', not service_account",
                key.kind
            ),
        ));
    }
    let email =
        EmailAddress::parse(&key.client_email).map_err(|m| AppError::validation_field(f, m))?;
    if !key.private_key.contains("-----BEGIN PRIVATE KEY-----") {
        return Err(AppError::validation_field(
            f,
            "the key file has no private key (PEM, BEGIN PRIVATE KEY)",
        ));
    }
    Ok(CheckedAuth::GoogleServiceAccount {
        client_email: Some(email.to_string()),
        key: Some(Secret::new(raw)),
    })
}

/// A Microsoft tenant: its directory ID or one of its domains (or `organizations`).
fn check_tenant(field: &str, tenant_id: &str) -> Result<String, AppError> {
    let tenant_id = tenant_id.trim();
    let tenant_ok = !tenant_id.is_empty()
        && tenant_id.len() <= 100
        && tenant_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !tenant_ok {
        return Err(AppError::validation_field(
            field,
            "the tenant is its directory ID (a GUID) or a domain such as contoso.onmicrosoft.com",
        ));
    }
    Ok(tenant_id.to_ascii_lowercase())
}

/// Microsoft's application (client) IDs are GUIDs.
fn check_guid(field: &str, client_id: &str) -> Result<String, AppError> {
    let id = uuid::Uuid::parse_str(client_id.trim()).map_err(|_| {
        AppError::validation_field(
            field,
            "the application (client) ID is a GUID such as 00000000-0000-0000-0000-000000000000",
        )
    })?;
    Ok(id.to_string())
}

/// An OAuth client of the user sign-in: Microsoft's is a GUID in a tenant; Google's is an
/// opaque ID (`….apps.googleusercontent.com`).
fn check_sign_in(
    field: &dyn Fn(&str) -> String,
    kind: ConnectorKind,
    client_id: &str,
    client_secret: &Option<String>,
    tenant_id: &Option<String>,
) -> Result<CheckedAuth, AppError> {
    let (client_id, tenant_id) = if kind == ConnectorKind::Microsoft365 {
        let tenant = tenant_id.as_deref().unwrap_or("organizations");
        (
            check_guid(&field("client_id"), client_id)?,
            Some(check_tenant(&field("tenant_id"), tenant)?),
        )
    } else {
        let id = client_id.trim();
        let ok = !id.is_empty()
            && id.len() <= 200
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._@".contains(c));
        if !ok {
            return Err(AppError::validation_field(
                &field("client_id"),
                "the client ID is the OAuth client's ID, such as 1234-abc.apps.googleusercontent.com",
            ));
        }
        (id.to_owned(), None)
    };
    if let Some(secret) = client_secret {
        check_secret(&field("client_secret"), secret)?;
    }
    Ok(CheckedAuth::UserSignIn {
        client_id,
        tenant_id,
        secret: client_secret.clone().map(Secret::new),
    })
}

/// A side where users sign in has nothing the admin could test with.
pub(crate) fn sign_in_untestable() -> AppError {
    AppError::validation_field(
        "connector.auth.mode",
        "users sign in themselves on this side: it is checked when the first one does",
    )
}

fn check_secret(field: &str, value: &str) -> Result<(), AppError> {
    if value.trim().is_empty() {
        return Err(AppError::validation_field(field, "it is empty"));
    }
    if value.len() > SECRET_MAX_BYTES {
        return Err(AppError::validation_field(
            field,
            format!("longer than {SECRET_MAX_BYTES} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(client_id: &str, tenant: &str) -> AuthInput {
        AuthInput::MicrosoftApp {
            tenant_id: tenant.into(),
            client_id: client_id.into(),
            client_secret: Some("s3cret".into()),
            login_pattern: "{email}".into(),
        }
    }

    const CLIENT: &str = "6f1c1a43-0b8e-4a8e-9d43-3a1f8c7e2b10";

    #[test]
    fn a_kind_takes_only_its_own_ways_of_signing_in() {
        let password = AuthInput::Admin {
            login_pattern: "{email}*admin".into(),
            password: Some("pw".into()),
        };
        let e = check_auth("source", ConnectorKind::Microsoft365, &password)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("Microsoft 365 takes microsoft_app"),
            "{e}"
        );
        assert!(
            check_auth(
                "source",
                ConnectorKind::Imap,
                &ms(CLIENT, "contoso.example")
            )
            .is_err()
        );
        assert!(
            check_auth(
                "source",
                ConnectorKind::Microsoft365,
                &ms(CLIENT, "contoso.example")
            )
            .is_ok()
        );
    }

    #[test]
    fn a_sign_in_client_is_checked_as_its_provider_names_clients() {
        let sign_in = |client_id: &str, tenant_id: Option<&str>| AuthInput::UserSignIn {
            client_id: client_id.into(),
            client_secret: None,
            tenant_id: tenant_id.map(str::to_owned),
        };
        let ms = |input| check_auth("target", ConnectorKind::Microsoft365, &input);
        let google = |input| check_auth("target", ConnectorKind::GoogleWorkspace, &input);
        // Microsoft: a GUID; no tenant means any work or school account.
        match ms(sign_in(CLIENT, None)) {
            Ok(CheckedAuth::UserSignIn {
                tenant_id, secret, ..
            }) => {
                assert_eq!(tenant_id.as_deref(), Some("organizations"));
                assert!(secret.is_none(), "a public client");
            }
            _ => panic!("a GUID client without a tenant is fine"),
        }
        assert!(ms(sign_in("1234.apps.googleusercontent.com", None)).is_err());
        assert!(ms(sign_in(CLIENT, Some("a/b"))).is_err());
        // Google: its own client IDs; nothing that could break a URL.
        assert!(google(sign_in("1234-abc.apps.googleusercontent.com", None)).is_ok());
        assert!(google(sign_in("a b", None)).is_err());
        assert!(google(sign_in("", None)).is_err());
        // Any IMAP server has no provider to sign in with.
        assert!(check_auth("target", ConnectorKind::Imap, &sign_in(CLIENT, None)).is_err());
    }

    #[test]
    fn app_registrations_need_a_tenant_and_a_guid() {
        for (client, tenant) in [
            ("not-a-guid", "contoso.example"),
            (CLIENT, ""),
            (CLIENT, "a/b"),
        ] {
            assert!(
                check_auth("target", ConnectorKind::Microsoft365, &ms(client, tenant)).is_err(),
                "{client} {tenant}"
            );
        }
    }

    #[test]
    fn a_service_account_key_is_read_for_its_address_and_checked() {
        let good = r#"{"type":"service_account","client_email":"mover@proj.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n","private_key_id":"k1"}"#;
        let input = AuthInput::GoogleServiceAccount {
            key_json: Some(good.into()),
        };
        match check_auth("source", ConnectorKind::GoogleWorkspace, &input).unwrap() {
            CheckedAuth::GoogleServiceAccount { client_email, key } => {
                assert_eq!(
                    client_email.as_deref(),
                    Some("mover@proj.iam.gserviceaccount.com")
                );
                assert!(key.is_some());
            }
            _ => panic!("not a service account"),
        }
        for bad in [
            "not json",
            r#"{"type":"authorized_user","client_email":"a@b.example","private_key":"-----BEGIN PRIVATE KEY-----"}"#,
            r#"{"type":"service_account","client_email":"a@b.example","private_key":"secret"}"#,
        ] {
            let input = AuthInput::GoogleServiceAccount {
                key_json: Some(bad.into()),
            };
            let e = check_auth("source", ConnectorKind::GoogleWorkspace, &input)
                .err()
                .unwrap();
            assert!(!e.to_string().contains("secret\""), "{e}");
        }
    }
}
