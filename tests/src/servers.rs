//! The servers of the interop tests and benchmark as one type: a Dovecot, a Cyrus (either
//! namespace) or a Courier, each with one user, seeded with a corpus under its own folder names.

use std::collections::BTreeMap;
use std::time::Duration;

use testbed::{
    CyrusNamespace, Dovecot, DovecotOptions, Kind, OtherServer, RawImap, SpecialFolder,
    encode_mutf7, quote,
};

use crate::Snapshot;
use crate::corpus::SeedMessage;

/// One side of a pair, with its user's login.
pub enum Side {
    Dovecot(Box<Dovecot>, &'static str, &'static str),
    Other(OtherServer),
}

impl Side {
    /// A Dovecot with Dovecot's default namespace (no prefix, `/`), `login` as its user, and a
    /// `Sent` folder marked `\\Sent`.
    pub fn dovecot(login: &'static str, password: &'static str) -> Side {
        let server = Dovecot::start(
            DovecotOptions::default()
                .user(login, password)
                .separator('/')
                .special_folders(vec![SpecialFolder {
                    name: "Sent".into(),
                    special_use: "\\Sent".into(),
                    auto_create: true,
                }]),
        )
        .expect("start dovecot");
        Side::Dovecot(Box::new(server), login, password)
    }

    /// A Cyrus or Courier with `ann` as its user.
    pub fn other(kind: Kind, password: &str) -> Side {
        Side::Other(OtherServer::start(kind, &[("ann", password)]).expect("start the server"))
    }

    /// The server and its namespace, for reports.
    pub fn describe(&self) -> String {
        match self {
            Side::Dovecot(..) => "Dovecot (no prefix, /)".into(),
            Side::Other(o) => match o.kind() {
                Kind::Cyrus(CyrusNamespace::Debian) => "Cyrus (Debian: INBOX., .)".into(),
                Kind::Cyrus(CyrusNamespace::Upstream) => "Cyrus (upstream: no prefix, /)".into(),
                Kind::Courier => "Courier (INBOX., .)".into(),
            },
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Side::Dovecot(d, ..) => d.port(),
            Side::Other(o) => o.port(),
        }
    }

    pub fn login(&self) -> &str {
        match self {
            Side::Dovecot(_, login, _) => login,
            Side::Other(_) => "ann",
        }
    }

    pub fn password(&self) -> String {
        match self {
            Side::Dovecot(_, _, pw) => (*pw).to_owned(),
            Side::Other(o) => o.password("ann").unwrap_or_default(),
        }
    }

    /// A corpus path (`Archive/Old`) as this server names the folder.
    pub fn folder(&self, path: &str) -> String {
        match self {
            Side::Dovecot(..) => path.to_owned(),
            Side::Other(o) => o.kind().folder(path),
        }
    }

    /// Whether the server can mark a folder it creates with a role (CREATE-SPECIAL-USE).
    pub fn marks_roles(&self) -> bool {
        matches!(self, Side::Other(o) if matches!(o.kind(), Kind::Cyrus(_)))
    }

    /// Creates the corpus's folders (`Sent` with its role where the server can mark it) and
    /// appends the messages.
    pub fn seed(&self, corpus: &[SeedMessage]) {
        let mut raw: RawImap = match self {
            Side::Dovecot(d, login, _) => d.raw_session(login),
            Side::Other(o) => o.raw_session("ann"),
        }
        .expect("raw session");
        let mut created = std::collections::BTreeSet::new();
        for m in corpus {
            let name = self.folder(&m.folder);
            if name != "INBOX" && created.insert(name.clone()) {
                let role = if m.folder == "Sent" && self.marks_roles() {
                    " (USE (\\Sent))"
                } else {
                    ""
                };
                let r = raw
                    .command(&format!("CREATE {}{role}", quote(&encode_mutf7(&name))))
                    .expect("create");
                // Dovecot made Sent itself (auto_create); Cyrus made the parent of a child.
                assert!(
                    r.is_ok()
                        || r.text.to_ascii_lowercase().contains("already exists")
                        || r.text.contains("ALREADYEXISTS"),
                    "CREATE {name}: {} {}",
                    r.status,
                    r.text
                );
            }
            raw.append(&name, &m.bytes, &m.flags, Some(m.internaldate))
                .expect("seed");
        }
        raw.logout();
    }
    pub async fn snapshot(&self) -> Snapshot {
        crate::snapshot(self.port(), self.login(), &self.password())
            .await
            .expect("snapshot")
            .0
    }

    /// The folders that carry a role, by name.
    pub async fn roles(&self) -> BTreeMap<String, domain::mailbox::SpecialUse> {
        let endpoint = domain::Endpoint {
            host: "127.0.0.1".into(),
            port: self.port(),
            security: contract::Security::Plaintext,
        };
        let tls = imap::TlsConfig::no_roots();
        let mut session = imap::Session::connect(&endpoint, &tls, Duration::from_secs(30))
            .await
            .expect("connect");
        session
            .login(self.login(), &domain::Secret::new(self.password()))
            .await
            .expect("login");
        let folders = session.list_folders().await.expect("list");
        folders
            .into_iter()
            .filter_map(|f| Some((f.name, f.special_use?)))
            .collect()
    }

    pub fn url(&self) -> String {
        format!(
            "imap+plain://{}@127.0.0.1:{}",
            self.login().replace('@', "%40"),
            self.port()
        )
    }
}
