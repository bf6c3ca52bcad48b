//! Provider profiles: what mailferry knows about each kind of mail service, as data in one
//! place. Every rule carries where it comes from, and the console shows them that way, so a
//! rule that turns out wrong is found and changed here and nowhere else.

use crate::mailbox::SpecialUse;
use contract::{ConnectorKind, ProviderView, RuleView, Security};

/// A value of a profile and where it comes from.
#[derive(Debug, Clone, Copy)]
pub struct Rule<T: 'static> {
    pub value: T,
    pub source: &'static str,
}

/// How the copy engine finds the copy of a source message on the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The same bytes, else Message-ID + Date (a server that may rewrite headers).
    BytesThenHeaders,
    /// Message-ID + Date first: the service rewrites what it stores.
    HeadersFirst,
}

/// Where a provider's OAuth authority is, for a tenant where it has one.
#[derive(Debug, Clone, Copy)]
pub struct Authority {
    /// Token endpoint; `{tenant}` is replaced by the project's tenant.
    pub token_url: &'static str,
    /// Authorization endpoint for a user's sign-in.
    pub authorize_url: &'static str,
    /// The keys the provider signs its ID tokens with.
    pub jwks_url: &'static str,
    /// Scope of an app (admin) token.
    pub app_scope: &'static str,
    /// Scopes of a user's sign-in.
    pub user_scope: &'static str,
}

/// One provider profile.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub kind: ConnectorKind,
    pub name: &'static str,
    /// The IMAP service the form starts with; `None` for a server the admin names.
    pub host: Option<Rule<&'static str>>,
    /// Where users open the service's mailbox in a browser.
    pub webmail: Option<Rule<&'static str>>,
    pub port: u16,
    pub security: Security,
    /// The admin-access modes this kind accepts (`contract::AuthInput`'s `mode` names).
    pub auth_modes: &'static [&'static str],
    /// What the admin sets up on the provider's side for admin access.
    pub setup_steps: &'static [&'static str],
    /// The largest message the service accepts over IMAP, in bytes.
    pub max_message_bytes: Option<Rule<u64>>,
    /// Simultaneous IMAP connections per mailbox.
    pub connections_per_mailbox: Rule<u32>,
    /// Simultaneous IMAP connections to the whole server, over all its mailboxes; `None` for
    /// a service that limits mailboxes and apps, not servers.
    pub connections_per_host: Option<Rule<u32>>,
    /// IMAP bytes a mailbox may download per day.
    pub daily_download_bytes: Option<Rule<u64>>,
    /// IMAP bytes a mailbox may upload per day.
    pub daily_upload_bytes: Option<Rule<u64>>,
    /// Words of a refusal that mean "throttled, try again later".
    pub throttle_texts: Rule<&'static [&'static str]>,
    /// Top-level names the service keeps for itself: a source folder of that name gets
    /// another (they exist even where IMAP does not list them).
    pub reserved_folders: Rule<&'static [&'static str]>,
    /// Folders that are views of mail held elsewhere, by the role the service lists them with
    /// (names are translated, roles are not): not copied as folders of their own. `\Important`
    /// is Gmail's own attribute, not one of RFC 6154's roles.
    pub virtual_folders: Rule<&'static [SpecialUse]>,
    /// Flags the service drops on APPEND: set again with STORE after the append.
    pub flags_after_append: Rule<&'static [&'static str]>,
    /// Folders are labels: one message shows in every label it has, and All Mail (`\All`)
    /// shows every message. From such a source All Mail brings only what no other copied
    /// folder holds; to such a target a message it already has gets the folder's label (a
    /// COPY) instead of being uploaded again.
    pub labels: Rule<bool>,
    pub identity: Rule<Identity>,
    pub authority: Option<Rule<Authority>>,
}

const MB: u64 = 1_000_000;

/// Any IMAP server.
pub const IMAP: Profile = Profile {
    kind: ConnectorKind::Imap,
    name: "IMAP server",
    host: None,
    webmail: None,
    port: 993,
    security: Security::Tls,
    auth_modes: &["per_user", "admin"],
    setup_steps: &[
        "Admin access needs a master (admin) account that may open every mailbox, e.g. a Dovecot master user: login pattern {email}*admin.",
        "Otherwise choose per-user passwords: each user enters their own on the invite page.",
    ],
    max_message_bytes: None,
    connections_per_mailbox: Rule {
        value: 4,
        source: "mailferry's default for a server it knows nothing about: Dovecot's mail_max_userip_connections defaults to 10 per user and IP, and old servers are shared by everyone still working on them",
    },
    connections_per_host: Some(Rule {
        value: 16,
        source: "mailferry's default for a server it knows nothing about: an on-premises server is shared by everyone still working on it, and a migration must not take it over",
    }),
    daily_download_bytes: None,
    daily_upload_bytes: None,
    throttle_texts: Rule {
        value: &["[THROTTLED]", "[LIMIT]", "[UNAVAILABLE]"],
        source: "RFC 5530 response codes UNAVAILABLE and LIMIT; THROTTLED as Yahoo and others send it",
    },
    reserved_folders: Rule {
        value: &[],
        source: "none in general: refused names are found when the target refuses them",
    },
    virtual_folders: Rule {
        value: &[],
        source: "none in general",
    },
    flags_after_append: Rule {
        value: &[],
        source: "IMAP servers keep the flags given to APPEND (RFC 3501 section 6.3.11)",
    },
    labels: Rule {
        value: false,
        source: "an IMAP folder holds messages of its own (RFC 3501)",
    },
    identity: Rule {
        value: Identity::BytesThenHeaders,
        source: "a server that stores what it is given keeps the bytes; Cyrus and Courier rewrite some, Message-ID + Date finds those",
    },
    authority: None,
};

/// Exchange Online.
pub const MICROSOFT_365: Profile = Profile {
    kind: ConnectorKind::Microsoft365,
    name: "Microsoft 365",
    host: Some(Rule {
        value: "outlook.office365.com",
        source: "Microsoft: POP, IMAP and SMTP settings for Outlook.com and Microsoft 365 (IMAP: outlook.office365.com, 993, SSL/TLS)",
    }),
    webmail: Some(Rule {
        value: "https://outlook.office.com/mail/",
        source: "Outlook on the web, where Microsoft 365 users sign in",
    }),
    port: 993,
    security: Security::Tls,
    auth_modes: &["microsoft_app", "user_sign_in"],
    setup_steps: &[
        "In Microsoft Entra admin center, App registrations: register an app (single tenant). Note its Application (client) ID and the Directory (tenant) ID.",
        "API permissions: add Office 365 Exchange Online > Application permissions > IMAP.AccessAsApp, then Grant admin consent.",
        "Certificates & secrets: create a client secret and paste its value here, or upload a certificate and paste the certificate with its private key (PEM) here.",
        "In Exchange Online PowerShell: New-ServicePrincipal -AppId <client id> -ObjectId <object id of the app's enterprise application>.",
        "For each mailbox (or a mail-enabled group of them): Add-MailboxPermission -Identity <mailbox> -User <service principal id> -AccessRights FullAccess.",
        "Or let each user sign in on the invite page: register a web app with the redirect URI <mailferry's address>/api/sign-in/callback and the delegated permissions IMAP.AccessAsUser.All, offline_access, openid and email; paste its client ID, tenant and a client secret here.",
    ],
    max_message_bytes: Some(Rule {
        value: 150 * MB,
        source: "Exchange Online limits: messages up to 150 MB where the mailbox allows it (35 MB by default); the target's APPENDLIMIT, when it announces one, wins",
    }),
    connections_per_mailbox: Rule {
        value: 8,
        source: "Microsoft publishes no IMAP number; Exchange Online throttles concurrent connections per mailbox and per app, so mailferry stays well below",
    },
    connections_per_host: None,
    daily_download_bytes: None,
    daily_upload_bytes: None,
    throttle_texts: Rule {
        value: &[
            "Request is throttled",
            "Suggested Backoff Time",
            "Server Unavailable",
        ],
        source: "Exchange Online: 'Request is throttled. Suggested Backoff Time: N milliseconds'",
    },
    reserved_folders: Rule {
        value: &[
            "Calendar",
            "Contacts",
            "Conversation History",
            "Journal",
            "Notes",
            "Outbox",
            "Sync Issues",
            "Tasks",
        ],
        source: "default folders of every Exchange mailbox; IMAP does not list the ones that hold no mail, and creating one of their names is refused",
    },
    virtual_folders: Rule {
        value: &[],
        source: "Exchange has none over IMAP",
    },
    flags_after_append: Rule {
        value: &["\\Flagged"],
        source: "Exchange Online drops \\Flagged given to APPEND; a STORE after the append sets it",
    },
    labels: Rule {
        value: false,
        source: "Exchange Online folders hold messages of their own (categories are keywords, not folders)",
    },
    identity: Rule {
        value: Identity::HeadersFirst,
        source: "Exchange converts messages to its own format and back: the bytes read back differ",
    },
    authority: Some(Rule {
        value: Authority {
            token_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
            authorize_url: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
            jwks_url: "https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys",
            app_scope: "https://outlook.office365.com/.default",
            user_scope: "https://outlook.office.com/IMAP.AccessAsUser.All offline_access openid email profile",
        },
        source: "Microsoft identity platform: authenticate an IMAP connection using OAuth (client credentials with scope https://outlook.office365.com/.default)",
    }),
};

/// Gmail of a Google Workspace domain.
pub const GOOGLE_WORKSPACE: Profile = Profile {
    kind: ConnectorKind::GoogleWorkspace,
    name: "Google Workspace",
    host: Some(Rule {
        value: "imap.gmail.com",
        source: "Google: IMAP server imap.gmail.com, port 993, SSL",
    }),
    webmail: Some(Rule {
        value: "https://mail.google.com/",
        source: "Gmail on the web, where Google Workspace users sign in",
    }),
    port: 993,
    security: Security::Tls,
    auth_modes: &["google_service_account", "user_sign_in"],
    setup_steps: &[
        "In Google Cloud console: create a service account in a project of the organisation and create a JSON key for it; paste the key file's contents here.",
        "In the Google Admin console, Security > API controls > Domain-wide delegation: add the service account's client ID with the scope https://mail.google.com/.",
        "In the Admin console, Apps > Google Workspace > Gmail > End user access: make sure IMAP access is on for the users.",
        "Or let each user sign in on the invite page: create an OAuth client (web application) with the redirect URI <mailferry's address>/api/sign-in/callback and the scope https://mail.google.com/ on its consent screen; paste its client ID and secret here.",
    ],
    max_message_bytes: Some(Rule {
        value: 35 * MB,
        source: "Gmail accepts messages up to 35 MB over IMAP",
    }),
    connections_per_mailbox: Rule {
        value: 15,
        source: "Gmail: at most 15 simultaneous IMAP connections per account",
    },
    connections_per_host: None,
    daily_download_bytes: Some(Rule {
        value: 2_500 * MB,
        source: "Google Workspace bandwidth limits: 2,500 MB per day downloaded over IMAP",
    }),
    daily_upload_bytes: Some(Rule {
        value: 500 * MB,
        source: "Google Workspace bandwidth limits: 500 MB per day uploaded over IMAP",
    }),
    throttle_texts: Rule {
        value: &[
            "[THROTTLED]",
            "Account exceeded command or bandwidth limits",
        ],
        source: "Gmail's refusal when an account exceeds its limits",
    },
    reserved_folders: Rule {
        value: &["[Gmail]"],
        source: "Gmail keeps the [Gmail] folder for its system labels",
    },
    virtual_folders: Rule {
        value: &[SpecialUse::Flagged, SpecialUse::Important],
        source: "Gmail's Starred and Important are views of labels (RFC 6154 \\Flagged, Gmail's \\Important): their mail is in All Mail with its \\Flagged flag, so they are not copied again. All Mail (\\All) is copied for the mail no other copied label holds (matched by X-GM-MSGID; without X-GM-EXT-1 by Message-ID, size and date, and a message without a Message-ID is kept in both)",
    },
    flags_after_append: Rule {
        value: &[],
        source: "Gmail keeps the flags given to APPEND",
    },
    labels: Rule {
        value: true,
        source: "Gmail IMAP extensions: labels are folders, a message has one X-GM-MSGID in every label and in All Mail, and COPY applies a label",
    },
    identity: Rule {
        value: Identity::BytesThenHeaders,
        source: "Gmail keeps the bytes it is given; X-GM-MSGID names a message in every label",
    },
    authority: Some(Rule {
        value: Authority {
            token_url: "https://oauth2.googleapis.com/token",
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth",
            jwks_url: "https://www.googleapis.com/oauth2/v3/certs",
            app_scope: "https://mail.google.com/",
            user_scope: "https://mail.google.com/ openid email",
        },
        source: "Google: OAuth 2.0 for server to server applications (RFC 7523 JWT bearer, domain-wide delegation) and the XOAUTH2 protocol",
    }),
};

/// The profile of a connector kind.
pub fn profile(kind: ConnectorKind) -> &'static Profile {
    match kind {
        ConnectorKind::Imap => &IMAP,
        ConnectorKind::Microsoft365 => &MICROSOFT_365,
        ConnectorKind::GoogleWorkspace => &GOOGLE_WORKSPACE,
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{} MB", bytes / MB)
}

impl Profile {
    /// The rules as the console shows them: rule, value, source.
    pub fn rules(&self) -> Vec<RuleView> {
        let mut rules = Vec::new();
        let mut add = |rule: &str, value: String, source: &str| {
            rules.push(RuleView {
                rule: rule.into(),
                value,
                source: source.into(),
            })
        };
        if let Some(host) = &self.host {
            add(
                "IMAP server",
                format!("{}:{}", host.value, self.port),
                host.source,
            );
        }
        if let Some(r) = &self.webmail {
            add("webmail", r.value.into(), r.source);
        }
        if let Some(r) = &self.max_message_bytes {
            add("largest message", megabytes(r.value), r.source);
        }
        let r = &self.connections_per_mailbox;
        add("connections per mailbox", r.value.to_string(), r.source);
        if let Some(r) = &self.connections_per_host {
            add("connections per server", r.value.to_string(), r.source);
        }
        if let Some(r) = &self.daily_download_bytes {
            add("download per day", megabytes(r.value), r.source);
        }
        if let Some(r) = &self.daily_upload_bytes {
            add("upload per day", megabytes(r.value), r.source);
        }
        let r = &self.throttle_texts;
        add("throttled when it says", r.value.join(" | "), r.source);
        let r = &self.reserved_folders;
        if !r.value.is_empty() {
            add("reserved folder names", r.value.join(", "), r.source);
        }
        let r = &self.virtual_folders;
        if !r.value.is_empty() {
            let roles: Vec<&str> = r
                .value
                .iter()
                .map(|u| match u {
                    SpecialUse::Flagged => "\\Flagged (Starred)",
                    SpecialUse::Important => "\\Important",
                    SpecialUse::All => "\\All",
                    _ => "(another role)",
                })
                .collect();
            add("views, not copied (by role)", roles.join(", "), r.source);
        }
        let r = &self.flags_after_append;
        if !r.value.is_empty() {
            add("flags set after APPEND", r.value.join(" "), r.source);
        }
        let r = &self.labels;
        if r.value {
            add(
                "folders are labels",
                "one message in every label; All Mail holds all; a label is applied, not uploaded again".into(),
                r.source,
            );
        }
        let r = &self.identity;
        let identity = match r.value {
            Identity::BytesThenHeaders => "same bytes, else Message-ID + Date",
            Identity::HeadersFirst => "Message-ID + Date",
        };
        add("copies found by", identity.into(), r.source);
        if let Some(r) = &self.authority {
            add("token endpoint", r.value.token_url.into(), r.source);
            add("app scope", r.value.app_scope.into(), r.source);
        }
        rules
    }

    pub fn view(&self) -> ProviderView {
        ProviderView {
            kind: self.kind,
            name: self.name.into(),
            host: self.host.map(|h| h.value.to_owned()),
            port: self.port,
            security: self.security,
            auth_modes: self.auth_modes.iter().map(|m| (*m).to_owned()).collect(),
            setup_steps: self.setup_steps.iter().map(|s| (*s).to_owned()).collect(),
            rules: self.rules(),
        }
    }

    /// Whether a refusal's text says the service is throttling.
    pub fn says_throttled(&self, text: &str) -> bool {
        let lower = text.to_ascii_lowercase();
        self.throttle_texts
            .value
            .iter()
            .any(|t| lower.contains(&t.to_ascii_lowercase()))
    }

    /// Whether `name` is one of the service's reserved top-level names.
    pub fn reserves(&self, name: &str) -> bool {
        self.reserved_folders
            .value
            .iter()
            .any(|r| r.eq_ignore_ascii_case(name))
    }
}

/// Every profile, for the console.
pub fn all() -> Vec<ProviderView> {
    ConnectorKind::ALL
        .iter()
        .map(|k| profile(*k).view())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_says_where_it_comes_from() {
        for kind in ConnectorKind::ALL {
            let p = profile(kind);
            assert_eq!(p.kind, kind);
            for rule in p.rules() {
                assert!(
                    rule.source.len() > 10,
                    "{}: {} has no source",
                    p.name,
                    rule.rule
                );
            }
        }
    }

    #[test]
    fn the_providers_rules_are_the_documented_ones() {
        assert_eq!(GOOGLE_WORKSPACE.connections_per_mailbox.value, 15);
        assert_eq!(
            GOOGLE_WORKSPACE.daily_download_bytes.map(|r| r.value),
            Some(2_500 * MB)
        );
        assert_eq!(
            GOOGLE_WORKSPACE.daily_upload_bytes.map(|r| r.value),
            Some(500 * MB)
        );
        assert_eq!(
            GOOGLE_WORKSPACE.max_message_bytes.map(|r| r.value),
            Some(35 * MB)
        );
        assert!(
            MICROSOFT_365.says_throttled(
                "NO Request is throttled. Suggested Backoff Time: 1500 milliseconds"
            )
        );
        assert!(!MICROSOFT_365.says_throttled("NO [OVERQUOTA] Mailbox is full"));
        assert!(MICROSOFT_365.reserves("calendar"));
        assert!(!MICROSOFT_365.reserves("Calendars of 2020"));
        assert_eq!(MICROSOFT_365.flags_after_append.value, &["\\Flagged"]);
    }

    #[test]
    fn only_oauth_providers_have_an_authority_and_they_take_no_passwords() {
        assert!(IMAP.authority.is_none());
        for p in [&MICROSOFT_365, &GOOGLE_WORKSPACE] {
            assert!(p.authority.is_some());
            assert!(!p.auth_modes.contains(&"admin"), "{}", p.name);
            assert!(p.host.is_some());
        }
        let rows = all();
        assert_eq!(rows.len(), 3);
        assert!(
            rows[1]
                .rules
                .iter()
                .any(|r| r.rule == "largest message" && r.value == "150 MB")
        );
    }
}
