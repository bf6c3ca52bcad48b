//! Cyrus and Courier start from their extracted packages, each with its own namespace, accept
//! their users and refuse wrong passwords.

use testbed::{CyrusNamespace, Kind, OtherServer, RawImap};

fn namespace_line(server: &OtherServer) -> String {
    let mut imap = server.raw_session("ann").unwrap();
    let r = imap.command("NAMESPACE").unwrap();
    assert!(r.is_ok(), "{} {}", r.status, r.text);
    imap.logout();
    r.untagged
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .find(|l| l.starts_with("* NAMESPACE"))
        .unwrap_or_default()
}

#[test]
fn each_server_answers_with_its_own_namespace() {
    let cases = [
        (
            Kind::Cyrus(CyrusNamespace::Debian),
            "* NAMESPACE ((\"INBOX.\" \".\"))",
        ),
        (
            Kind::Cyrus(CyrusNamespace::Upstream),
            "* NAMESPACE ((\"\" \"/\"))",
        ),
        (Kind::Courier, "* NAMESPACE ((\"INBOX.\" \".\"))"),
    ];
    for (kind, expected) in cases {
        let server = OtherServer::start(kind, &[("ann", "s3cret-pw")]).unwrap();
        let line = namespace_line(&server);
        assert!(line.starts_with(expected), "{kind:?}: {line}");
        let mut wrong = RawImap::connect(server.port()).unwrap();
        if kind != Kind::Courier {
            // Courier answers a wrong password after a fixed 5 s: only Cyrus is asked here.
            assert!(wrong.login_command("ann", "wrong").is_err(), "{kind:?}");
        }
    }
}
