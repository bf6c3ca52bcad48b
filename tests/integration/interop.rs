//! The copy between real servers that name, mark and store folders differently: Dovecot (no
//! prefix, `/`), Cyrus with Debian's namespace (`INBOX.`, `.`, CREATE refused elsewhere,
//! 8-bit header bytes turned into `X`) and with upstream's, and Courier (`INBOX.`, `.`, no
//! LITERAL+, no SPECIAL-USE). For each pair, with `mailferry copy`: the first run is killed
//! while it copies and the rerun finishes at once; every folder lands under the target's
//! namespace; the source's roles are kept where the target can mark folders; every message
//! arrives once, and each copy the target stored differently is listed as altered (and only
//! those); a delta run copies exactly what is new.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::corpus::{SeedMessage, bulk_corpus, test_corpus};
use integration_tests::{Snapshot, snapshot};
use serde_json::Value;
use testbed::{CyrusNamespace, Dovecot, DovecotOptions, Kind, OtherServer, encode_mutf7, quote};

use crate::cli::held_folders;
use crate::copy::{SOURCE_PW, seed, source_server};

const TARGET_PW: &str = "ann-target-pw";

/// One side of a pair, with ann's login.
enum Side {
    Dovecot(Box<Dovecot>, &'static str, &'static str),
    Other(OtherServer),
}

impl Side {
    fn dovecot_source() -> Side {
        Side::Dovecot(Box::new(source_server()), "ann@old.example", SOURCE_PW)
    }

    fn dovecot_target() -> Side {
        let server = Dovecot::start(
            DovecotOptions::default()
                .user("ann@new.example", TARGET_PW)
                .separator('/'),
        )
        .expect("target dovecot");
        Side::Dovecot(Box::new(server), "ann@new.example", TARGET_PW)
    }

    fn other(kind: Kind, password: &str) -> Side {
        Side::Other(OtherServer::start(kind, &[("ann", password)]).expect("start the server"))
    }

    fn port(&self) -> u16 {
        match self {
            Side::Dovecot(d, ..) => d.port(),
            Side::Other(o) => o.port(),
        }
    }

    fn login(&self) -> &str {
        match self {
            Side::Dovecot(_, login, _) => login,
            Side::Other(_) => "ann",
        }
    }

    fn password(&self) -> String {
        match self {
            Side::Dovecot(_, _, pw) => (*pw).to_owned(),
            Side::Other(o) => o.password("ann").unwrap_or_default(),
        }
    }

    /// A corpus path (`Archive/Old`) as this server names the folder.
    fn folder(&self, path: &str) -> String {
        match self {
            Side::Dovecot(..) => path.to_owned(),
            Side::Other(o) => o.kind().folder(path),
        }
    }

    /// Whether the server can mark a folder it creates with a role (CREATE-SPECIAL-USE).
    fn marks_roles(&self) -> bool {
        matches!(self, Side::Other(o) if matches!(o.kind(), Kind::Cyrus(_)))
    }

    fn seed(&self, corpus: &[SeedMessage]) {
        let other = match self {
            Side::Dovecot(d, login, _) => return seed(d, login, corpus),
            Side::Other(o) => o,
        };
        let mut raw = other.raw_session("ann").expect("raw session");
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
                assert!(r.is_ok(), "CREATE {name}: {} {}", r.status, r.text);
            }
            raw.append(&name, &m.bytes, &m.flags, Some(m.internaldate))
                .expect("seed");
        }
        raw.logout();
    }

    async fn snapshot(&self) -> Snapshot {
        snapshot(self.port(), self.login(), &self.password())
            .await
            .expect("snapshot")
            .0
    }

    /// The folders that carry a role, by name.
    async fn roles(&self) -> BTreeMap<String, domain::mailbox::SpecialUse> {
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

    fn url(&self) -> String {
        format!(
            "imap+plain://{}@127.0.0.1:{}",
            self.login().replace('@', "%40"),
            self.port()
        )
    }
}

fn copy_command(source: &Side, target: &Side, state: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailferry_under_test"));
    command
        .arg("copy")
        .args(["--source", &source.url(), "--target", &target.url()])
        .arg("--state")
        .arg(state)
        .arg("--json")
        .env("MAILFERRY_SOURCE_PASSWORD", source.password())
        .env("MAILFERRY_TARGET_PASSWORD", target.password());
    command
}

fn run_copy(source: &Side, target: &Side, state: &std::path::Path) -> (i32, Value) {
    let out = copy_command(source, target, state)
        .output()
        .expect("run mailferry copy");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

/// The corpus: every awkward case of the test corpus (8-bit headers, duplicates, no
/// Message-ID, a role) and enough plain mail that a kill lands mid-copy.
fn corpus() -> Vec<SeedMessage> {
    let mut corpus = test_corpus(71, None);
    corpus.extend(bulk_corpus(72, 600));
    corpus
}

/// Checks the target against the source folder by folder through the run's report: names under
/// the target's namespace, the same number of messages, every copy identical but those the
/// report lists as altered (flags and dates kept). Returns how many copies were altered.
async fn assert_arrived(source: &Side, target: &Side, paths: &[String], summary: &Value) -> u64 {
    let source_snap = source.snapshot().await;
    let target_snap = target.snapshot().await;
    let folders = summary["folders"].as_array().expect("folders");
    let mut altered_total = 0;
    for path in paths {
        let source_name = source.folder(path);
        let report = folders
            .iter()
            .find(|f| f["source"] == source_name.as_str())
            .unwrap_or_else(|| panic!("{source_name} is not in the report: {summary}"));
        let target_name = report["target"].as_str().unwrap();
        assert_eq!(target_name, target.folder(path), "{source_name}");
        let wanted = source_snap.get(&source_name).cloned().unwrap_or_default();
        let mut got = target_snap.get(target_name).cloned().unwrap_or_default();
        assert_eq!(
            got.len(),
            wanted.len(),
            "{source_name} → {target_name}: count"
        );
        let mut differ = 0;
        for item in &wanted {
            match got.iter().position(|g| g == item) {
                Some(i) => {
                    got.remove(i);
                }
                None => differ += 1,
            }
        }
        let altered = report["altered_count"].as_u64().unwrap();
        assert_eq!(
            differ, altered,
            "{source_name}: copies that differ vs. copies reported altered: {report}"
        );
        altered_total += altered;
    }
    altered_total
}

async fn interop(source: Side, target: Side) {
    let corpus = corpus();
    source.seed(&corpus);
    let mut paths: Vec<String> = corpus.iter().map(|m| m.folder.clone()).collect();
    paths.sort();
    paths.dedup();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ann.state");

    // A first run, killed once it holds a folder it has begun to copy.
    let mut child = copy_command(&source, &target, &state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let begun = Instant::now();
    while held_folders(&state).await == 0 {
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "the copy never started"
        );
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The rerun finishes the pass at once.
    let (code, summary) = tokio::task::block_in_place(|| run_copy(&source, &target, &state));
    assert_eq!(code, 0, "{summary}");
    assert!(
        summary["elapsed_seconds"].as_f64().unwrap() < 60.0,
        "{summary}"
    );
    let altered = assert_arrived(&source, &target, &paths, &summary).await;
    // Cyrus (Debian's default munge8bit) stores 8-bit header bytes as `X`; the others keep them.
    let munges = matches!(&target, Side::Other(o) if matches!(o.kind(), Kind::Cyrus(_)));
    assert_eq!(altered > 0, munges, "altered copies: {altered}");
    let source_roles = !matches!(&source, Side::Other(o) if o.kind() == Kind::Courier);
    if source_roles && target.marks_roles() {
        let roles = target.roles().await;
        assert_eq!(
            roles.get(&target.folder("Sent")),
            Some(&domain::mailbox::SpecialUse::Sent),
            "{roles:?}"
        );
    }

    // A delta run copies the new mail and nothing else.
    let new: Vec<SeedMessage> = bulk_corpus(73, 5)
        .into_iter()
        .map(|m| SeedMessage {
            folder: "INBOX".into(),
            ..m
        })
        .collect();
    source.seed(&new);
    let (code, summary) = tokio::task::block_in_place(|| run_copy(&source, &target, &state));
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["messages_copied"], 5, "{summary}");
    assert_arrived(&source, &target, &paths, &summary).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_to_cyrus_with_debians_namespace() {
    let target = Side::other(Kind::Cyrus(CyrusNamespace::Debian), TARGET_PW);
    interop(Side::dovecot_source(), target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_to_cyrus_with_upstreams_namespace() {
    let target = Side::other(Kind::Cyrus(CyrusNamespace::Upstream), TARGET_PW);
    interop(Side::dovecot_source(), target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cyrus_to_dovecot() {
    let source = Side::other(Kind::Cyrus(CyrusNamespace::Debian), SOURCE_PW);
    interop(source, Side::dovecot_target()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn courier_to_cyrus() {
    let source = Side::other(Kind::Courier, SOURCE_PW);
    let target = Side::other(Kind::Cyrus(CyrusNamespace::Debian), TARGET_PW);
    interop(source, target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dovecot_to_courier() {
    let target = Side::other(Kind::Courier, TARGET_PW);
    interop(Side::dovecot_source(), target).await;
}
