//! The sync and cutover decisions and texts, from plain values.
use super::*;
use crate::app::cutover::{cutover_mail_text, device_setup_for};
use contract::{ConnectorKind, InviteTo, Security};
use time::macros::datetime;

fn project(kind: ConnectorKind, plan: contract::SyncPlan) -> Project {
    let connector = |host: &str| Connector {
        kind,
        host: host.into(),
        port: 993,
        security: Security::Tls,
        auth: ConnectorAuth::PerUser,
    };
    Project {
        id: ProjectId::new(),
        name: "p".into(),
        source: connector("imap.old.example"),
        target: connector("imap.new.example"),
        invite_to: InviteTo::Source,
        admin_email: None,
        notify_user: false,
        copy: Default::default(),
        retention: Default::default(),
        sync: plan,
        closed_at: None,
        created_at: datetime!(2026-01-01 0:00 UTC),
        version: 1,
    }
}

fn user(state: UserState, ended: OffsetDateTime) -> MailUser {
    MailUser {
        id: UserId::new(),
        project_id: ProjectId::new(),
        source_email: EmailAddress::parse("ann@old.example").unwrap(),
        target_email: EmailAddress::parse("ann@new.example").unwrap(),
        display_name: "Ann <Admin> & Co".into(),
        state,
        pass: 2,
        progress: Default::default(),
        last_error: None,
        priority: 0,
        waiting_since: None,
        sync: SyncState {
            pass_ended_at: Some(ended),
            ..SyncState::default()
        },
        preflight: None,
        line: None,
        has_credentials: true,
        invite_sent_at: None,
        created_at: ended,
        updated_at: ended,
        version: 1,
    }
}

const ENDED: OffsetDateTime = datetime!(2027-01-10 12:00 UTC);

#[test]
fn a_finished_user_is_synced_every_n_hours_from_its_last_pass() {
    let p = project(
        ConnectorKind::Imap,
        contract::SyncPlan {
            every_hours: Some(6),
            ..Default::default()
        },
    );
    for state in [UserState::Completed, UserState::Verified] {
        let u = user(state, ENDED);
        assert_eq!(due(&p, &u, datetime!(2027-01-10 17:59 UTC)), Due::Nothing);
        assert_eq!(due(&p, &u, datetime!(2027-01-10 18:00 UTC)), Due::Sync);
    }
    for state in [
        UserState::New,
        UserState::Scheduled,
        UserState::Working,
        UserState::Failed,
        UserState::Paused,
        UserState::CutOver,
    ] {
        let u = user(state, ENDED);
        assert_eq!(
            due(&p, &u, datetime!(2027-02-01 0:00 UTC)),
            Due::Nothing,
            "{state:?}"
        );
    }
    let off = project(ConnectorKind::Imap, Default::default());
    let u = user(UserState::Completed, ENDED);
    assert_eq!(due(&off, &u, datetime!(2027-02-01 0:00 UTC)), Due::Nothing);
    let mut closed = p.clone();
    closed.closed_at = Some(ENDED);
    assert_eq!(
        due(&closed, &u, datetime!(2027-02-01 0:00 UTC)),
        Due::Nothing
    );
}

#[test]
fn the_cutover_comes_before_a_sync_and_a_users_own_time_wins() {
    let p = project(
        ConnectorKind::Imap,
        contract::SyncPlan {
            every_hours: Some(1),
            cutover_at: Some(datetime!(2027-01-15 18:00 UTC)),
            ..Default::default()
        },
    );
    let mut u = user(UserState::Verified, ENDED);
    assert_eq!(due(&p, &u, datetime!(2027-01-15 17:59 UTC)), Due::Sync);
    assert_eq!(due(&p, &u, datetime!(2027-01-15 18:00 UTC)), Due::Cutover);
    // A batch cut over a day later keeps syncing until its own time.
    u.sync.cutover_at = Some(datetime!(2027-01-16 18:00 UTC));
    assert_eq!(due(&p, &u, datetime!(2027-01-16 0:00 UTC)), Due::Sync);
    assert_eq!(due(&p, &u, datetime!(2027-01-16 18:00 UTC)), Due::Cutover);
    // ... and an earlier batch goes first.
    u.sync.cutover_at = Some(datetime!(2027-01-12 8:00 UTC));
    assert_eq!(due(&p, &u, datetime!(2027-01-12 8:00 UTC)), Due::Cutover);
}

#[test]
fn a_delta_pass_says_what_it_changed() {
    let mut u = user(UserState::Working, ENDED);
    u.progress.messages_done = 130;
    assert_eq!(summary_of(&u, ENDED), None, "no delta pass recorded");
    u.sync.pass = Some(PassInfo {
        pass: 2,
        reason: PassReason::Schedule,
        messages_before: 100,
        flag_changes: 4,
        removed: 1,
        moved: 2,
    });
    let s = summary_of(&u, ENDED).unwrap();
    assert_eq!(
        (
            s.pass,
            s.reason.as_str(),
            s.new_messages,
            s.flag_changes,
            s.removed,
            s.moved
        ),
        (2, "schedule", 28, 4, 1, 2),
        "a moved message is counted as moved, not as new mail"
    );
    u.pass = 3;
    assert_eq!(summary_of(&u, ENDED), None, "an older pass's record");
}

#[test]
fn the_cutover_mail_gives_the_settings_and_never_a_password() {
    let mut p = project(ConnectorKind::Imap, Default::default());
    let u = user(UserState::Completed, ENDED);
    let s = device_setup_for(&p, &u, datetime!(2027-02-09 12:00 UTC));
    assert_eq!(
        (s.smtp_host.as_str(), s.smtp_port, s.smtp_security),
        ("imap.new.example", 587, Security::Starttls)
    );
    let text = cutover_mail_text(&s, "Ann", "https://m.example/setup/TOKEN", "");
    for want in [
        "ann@new.example",
        "Incoming (IMAP): imap.new.example, port 993, SSL/TLS",
        "Outgoing (SMTP): imap.new.example, port 587, STARTTLS",
        "https://m.example/setup/TOKEN",
        "2027-02-09 12:00 UTC",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    p.sync.smtp_host = Some("smtp.new.example".into());
    p.sync.smtp_port = Some(465);
    let s = device_setup_for(&p, &u, ENDED);
    assert_eq!(
        (s.smtp_host.as_str(), s.smtp_port, s.smtp_security),
        ("smtp.new.example", 465, Security::Tls)
    );

    let m365 = project(ConnectorKind::Microsoft365, Default::default());
    let s = device_setup_for(&m365, &u, ENDED);
    assert!(s.web_sign_in.is_some() && s.service.is_some());
    let text = cutover_mail_text(&s, "Ann", "https://m.example/setup/T", "");
    assert!(text.contains("Sign in at"), "{text}");
    assert!(!text.contains("IMAP"), "{text}");
}
