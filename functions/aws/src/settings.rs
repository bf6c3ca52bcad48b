//! [`Settings`]: what the Lambda functions read from their environment, once, at start.

use std::collections::HashMap;

/// A deployment's settings, from environment variables (the template sets them on both
/// functions). Secrets are not among them: credentials come from the execution role, and the
/// data the vault protects is sealed under the KMS key named here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `TABLE_NAME`: the DynamoDB table (schema in the crate documentation).
    pub table_name: String,
    /// `QUEUE_URL`: the SQS work queue.
    pub queue_url: String,
    /// `DEAD_LETTER_QUEUE_URL` (optional): the queue's dead-letter queue, for `dead_letters`.
    pub dead_letter_queue_url: Option<String>,
    /// `KMS_KEY_ID`: the key the vault's data keys are made under (id, ARN or alias).
    pub kms_key_id: String,
    /// `MAIL_FROM`: the SES-verified sender, optionally with a display name.
    pub mail_from: String,
    /// `SES_CONFIGURATION_SET` (optional): the SES configuration set to send through.
    pub ses_configuration_set: Option<String>,
    /// `PUBLIC_URL`: where users reach the web app; invite links start with it.
    pub public_url: String,
    /// `MAX_RECEIVES` (optional, default 5): the `maxReceiveCount` of the queue's redrive
    /// policy, so the worker knows a delivery is the last one before the dead-letter queue.
    pub max_receives: u32,
    /// `ALLOW_PRIVATE_TARGETS` (optional, default false): whether connection tests and copy
    /// jobs may reach loopback, link-local and metadata addresses (the function's own
    /// sandbox, its runtime API, 169.254.169.254). Private networks are reachable either way.
    pub allow_private_targets: bool,
    /// `MICROSOFT_TOKEN_URL`, `MICROSOFT_AUTHORIZE_URL`, `MICROSOFT_JWKS_URL`,
    /// `GOOGLE_TOKEN_URL`, `GOOGLE_AUTHORIZE_URL`, `GOOGLE_JWKS_URL` (optional, default the
    /// providers' own): the OAuth authorities of Microsoft 365 and Google Workspace sides, for
    /// a national cloud; `{tenant}` stands for the project's tenant.
    pub authorities: domain::app::Authorities,
}

/// The default of `MAX_RECEIVES`, matching the template's redrive policy.
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

/// A missing or unusable environment variable, named so the deployment can be fixed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("the environment variable {0} is not set")]
    Missing(&'static str),
    #[error("the environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Settings {
    /// The variable names, for documentation and the template.
    pub const VARIABLES: [&'static str; 15] = [
        "TABLE_NAME",
        "QUEUE_URL",
        "DEAD_LETTER_QUEUE_URL",
        "KMS_KEY_ID",
        "MAIL_FROM",
        "SES_CONFIGURATION_SET",
        "PUBLIC_URL",
        "MAX_RECEIVES",
        "ALLOW_PRIVATE_TARGETS",
        "MICROSOFT_TOKEN_URL",
        "MICROSOFT_AUTHORIZE_URL",
        "MICROSOFT_JWKS_URL",
        "GOOGLE_TOKEN_URL",
        "GOOGLE_AUTHORIZE_URL",
        "GOOGLE_JWKS_URL",
    ];

    /// Reads the process environment. Fails on the first missing or invalid variable.
    pub fn from_env() -> Result<Self, SettingsError> {
        let vars: HashMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| Self::VARIABLES.contains(&k.as_str()))
            .collect();
        Self::from_lookup(|name| vars.get(name).cloned())
    }

    /// Reads the variables through `lookup` (the environment, or a map in tests). Empty values
    /// count as missing: an empty `TABLE_NAME` is a deployment mistake, not a choice.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let optional = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| optional(name).ok_or(SettingsError::Missing(name));

        let queue_url = required("QUEUE_URL")?;
        check_url("QUEUE_URL", &queue_url)?;
        let dead_letter_queue_url = optional("DEAD_LETTER_QUEUE_URL");
        if let Some(url) = &dead_letter_queue_url {
            check_url("DEAD_LETTER_QUEUE_URL", url)?;
        }
        let public_url = required("PUBLIC_URL")?;
        check_url("PUBLIC_URL", &public_url)?;
        let max_receives = match optional("MAX_RECEIVES") {
            None => DEFAULT_MAX_RECEIVES,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| SettingsError::Invalid {
                    name: "MAX_RECEIVES",
                    reason: format!("'{v}' is not a number from 1 to 1000"),
                })?,
        };
        let allow_private_targets = match optional("ALLOW_PRIVATE_TARGETS").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(SettingsError::Invalid {
                    name: "ALLOW_PRIVATE_TARGETS",
                    reason: format!("'{other}' is neither true nor false"),
                });
            }
        };
        let mut authorities = domain::app::Authorities::default();
        for (name, setting) in [
            ("MICROSOFT_TOKEN_URL", &mut authorities.microsoft_token_url),
            (
                "MICROSOFT_AUTHORIZE_URL",
                &mut authorities.microsoft_authorize_url,
            ),
            ("MICROSOFT_JWKS_URL", &mut authorities.microsoft_jwks_url),
            ("GOOGLE_TOKEN_URL", &mut authorities.google_token_url),
            (
                "GOOGLE_AUTHORIZE_URL",
                &mut authorities.google_authorize_url,
            ),
            ("GOOGLE_JWKS_URL", &mut authorities.google_jwks_url),
        ] {
            if let Some(url) = optional(name) {
                check_url(name, &url)?;
                *setting = url;
            }
        }
        Ok(Settings {
            table_name: required("TABLE_NAME")?,
            queue_url,
            dead_letter_queue_url,
            kms_key_id: required("KMS_KEY_ID")?,
            mail_from: required("MAIL_FROM")?,
            ses_configuration_set: optional("SES_CONFIGURATION_SET"),
            public_url,
            max_receives,
            allow_private_targets,
            authorities,
        })
    }
}

/// The `api` function's sign-in settings: the Cognito user pool's hosted UI and the console's
/// public app client. Only the `api` function reads them (the console asks `/api/admin/session`
/// where to sign in); both are public values.
pub struct SignInSettings;

impl SignInSettings {
    /// The variable names, for documentation and the template.
    pub const VARIABLES: [&'static str; 2] = ["COGNITO_DOMAIN", "COGNITO_CLIENT_ID"];

    /// Reads the process environment.
    pub fn from_env() -> Result<contract::HostedSignIn, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// `COGNITO_DOMAIN` is the hosted UI's base URL (`https://PREFIX.auth.REGION.amazoncognito.com`
    /// or a custom domain), `COGNITO_CLIENT_ID` the app client's id.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<contract::HostedSignIn, SettingsError> {
        let required = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(SettingsError::Missing(name))
        };
        let domain = required("COGNITO_DOMAIN")?;
        if !domain.starts_with("https://") || domain["https://".len()..].is_empty() {
            return Err(SettingsError::Invalid {
                name: "COGNITO_DOMAIN",
                reason: format!("'{domain}' is not an https URL"),
            });
        }
        let base = domain.trim_end_matches('/');
        let client_id = required("COGNITO_CLIENT_ID")?;
        if !client_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(SettingsError::Invalid {
                name: "COGNITO_CLIENT_ID",
                reason: "an app client id has only letters and digits".into(),
            });
        }
        Ok(contract::HostedSignIn {
            authorize_url: format!("{base}/oauth2/authorize"),
            token_url: format!("{base}/oauth2/token"),
            logout_url: format!("{base}/logout"),
            client_id,
        })
    }
}

impl Settings {
    /// The use cases' settings: the public URL from here, the rest at their defaults but for
    /// sessions, which are never kept between jobs.
    pub fn app_config(&self) -> domain::AppConfig {
        let mut config = domain::AppConfig {
            public_url: self.public_url.clone(),
            authorities: self.authorities.clone(),
            ..domain::AppConfig::default()
        };
        // Lambda freezes the process between invocations: a session kept for the next job
        // could meet a connection the server closed meanwhile, and its logout would wait for
        // the next thaw.
        config.copy.keep_sessions_for = std::time::Duration::ZERO;
        config
    }
}

fn check_url(name: &'static str, value: &str) -> Result<(), SettingsError> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        _ => Err(SettingsError::Invalid {
            name,
            reason: format!("'{value}' is not an http(s) URL"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("TABLE_NAME", "mailferry"),
            (
                "QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs",
            ),
            ("KMS_KEY_ID", "alias/mailferry"),
            ("MAIL_FROM", "mailferry <noreply@example.com>"),
            ("PUBLIC_URL", "https://migrate.example.com"),
        ])
    }

    fn settings(vars: &HashMap<&'static str, &'static str>) -> Result<Settings, SettingsError> {
        Settings::from_lookup(|name| vars.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn reads_required_and_defaults_the_optional() {
        let s = settings(&full()).unwrap();
        assert_eq!(s.table_name, "mailferry");
        assert_eq!(s.kms_key_id, "alias/mailferry");
        assert_eq!(s.dead_letter_queue_url, None);
        assert_eq!(s.ses_configuration_set, None);
        assert_eq!(s.max_receives, DEFAULT_MAX_RECEIVES);
        assert_eq!(s.authorities, domain::app::Authorities::default());
    }

    #[test]
    fn lambda_never_keeps_sessions_between_jobs() {
        let s = settings(&full()).unwrap();
        assert!(s.app_config().copy.keep_sessions_for.is_zero());
        assert!(
            !domain::AppConfig::default()
                .copy
                .keep_sessions_for
                .is_zero()
        );
    }

    #[test]
    fn a_national_cloud_names_its_own_authority() {
        let mut vars = full();
        vars.insert(
            "MICROSOFT_TOKEN_URL",
            "https://login.microsoftonline.us/{tenant}/oauth2/v2.0/token",
        );
        vars.insert(
            "MICROSOFT_JWKS_URL",
            "https://login.microsoftonline.us/{tenant}/discovery/v2.0/keys",
        );
        let s = settings(&vars).unwrap();
        let urls = s
            .app_config()
            .authorities
            .of(contract::ConnectorKind::Microsoft365, "contoso.us")
            .unwrap();
        assert_eq!(
            urls.token,
            "https://login.microsoftonline.us/contoso.us/oauth2/v2.0/token"
        );
        assert_eq!(
            urls.jwks,
            "https://login.microsoftonline.us/contoso.us/discovery/v2.0/keys"
        );
        assert!(
            urls.authorize
                .starts_with("https://login.microsoftonline.com/contoso.us/")
        );
        vars.insert("GOOGLE_TOKEN_URL", "oauth2.googleapis.com/token");
        assert!(matches!(
            settings(&vars),
            Err(SettingsError::Invalid {
                name: "GOOGLE_TOKEN_URL",
                ..
            })
        ));
    }

    #[test]
    fn names_each_missing_variable() {
        for name in [
            "TABLE_NAME",
            "QUEUE_URL",
            "KMS_KEY_ID",
            "MAIL_FROM",
            "PUBLIC_URL",
        ] {
            let mut vars = full();
            vars.remove(name);
            assert_eq!(settings(&vars), Err(SettingsError::Missing(name)));
            vars.insert(name, "  ");
            assert_eq!(
                settings(&vars),
                Err(SettingsError::Missing(name)),
                "blank {name}"
            );
        }
    }

    #[test]
    fn rejects_invalid_values_by_name() {
        let mut vars = full();
        vars.insert("PUBLIC_URL", "migrate.example.com");
        let err = settings(&vars).unwrap_err();
        assert!(
            matches!(
                err,
                SettingsError::Invalid {
                    name: "PUBLIC_URL",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("PUBLIC_URL"), "{err}");

        let mut vars = full();
        vars.insert("MAX_RECEIVES", "0");
        assert!(matches!(
            settings(&vars),
            Err(SettingsError::Invalid {
                name: "MAX_RECEIVES",
                ..
            })
        ));
    }

    #[test]
    fn sign_in_endpoints_come_from_the_hosted_ui_domain() {
        let vars = HashMap::from([
            (
                "COGNITO_DOMAIN",
                "https://mf-prod.auth.eu-west-1.amazoncognito.com/",
            ),
            ("COGNITO_CLIENT_ID", "4k2n1o0abcdefghij1234567"),
        ]);
        let get = |vars: &HashMap<&str, &str>| {
            SignInSettings::from_lookup(|n| vars.get(n).map(|v| (*v).to_owned()))
        };
        let s = get(&vars).unwrap();
        assert_eq!(
            s.authorize_url,
            "https://mf-prod.auth.eu-west-1.amazoncognito.com/oauth2/authorize"
        );
        assert_eq!(
            s.token_url,
            "https://mf-prod.auth.eu-west-1.amazoncognito.com/oauth2/token"
        );
        assert!(s.logout_url.ends_with(".com/logout"));
        assert_eq!(s.client_id, "4k2n1o0abcdefghij1234567");

        let mut bad = vars.clone();
        bad.insert("COGNITO_DOMAIN", "http://mf-prod.example.com");
        assert!(matches!(
            get(&bad),
            Err(SettingsError::Invalid {
                name: "COGNITO_DOMAIN",
                ..
            })
        ));
        let mut bad = vars.clone();
        bad.insert("COGNITO_CLIENT_ID", "x&redirect_uri=evil");
        assert!(matches!(
            get(&bad),
            Err(SettingsError::Invalid {
                name: "COGNITO_CLIENT_ID",
                ..
            })
        ));
        let mut missing = vars;
        missing.remove("COGNITO_CLIENT_ID");
        assert_eq!(
            get(&missing),
            Err(SettingsError::Missing("COGNITO_CLIENT_ID"))
        );
    }

    #[test]
    fn reads_the_optional_ones() {
        let mut vars = full();
        vars.insert("SES_CONFIGURATION_SET", "mailferry-invites");
        vars.insert(
            "DEAD_LETTER_QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs-dlq",
        );
        vars.insert("MAX_RECEIVES", "8");
        let s = settings(&vars).unwrap();
        assert_eq!(
            s.ses_configuration_set.as_deref(),
            Some("mailferry-invites")
        );
        assert!(s.dead_letter_queue_url.unwrap().ends_with("jobs-dlq"));
        assert_eq!(s.max_receives, 8);
    }
}
