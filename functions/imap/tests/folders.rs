//! Folder operations against real Dovecot: LIST with decoded names, special use and
//! subscriptions (LIST-EXTENDED and the LIST + LSUB fallback), STATUS / SELECT / EXAMINE
//! figures, CONDSTORE and QRESYNC, creating and subscribing folders on a target.

mod support;

use imap::{FolderInfo, SpecialUse};
use support::{USER, message, session, start};
use testbed::{DovecotOptions, SpecialFolder};

fn special(name: &str, flag: &str) -> SpecialFolder {
    SpecialFolder {
        name: name.into(),
        special_use: flag.into(),
        auto_create: true,
    }
}

fn find<'a>(folders: &'a [FolderInfo], name: &str) -> &'a FolderInfo {
    folders
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no folder {name:?} in {folders:#?}"))
}

/// A source with a custom separator, special-use folders, nested and non-ASCII names, a
/// parent that only exists through its child, and an unsubscribed folder.
fn seeded_source(options: DovecotOptions) -> testbed::Dovecot {
    let dovecot = support::start(options.separator('/').special_folders(vec![
        special("Sent Messages", "\\Sent"),
        special("Drafts", "\\Drafts"),
        special("Deleted Items", "\\Trash"),
        special("Junk", "\\Junk"),
        special("Archive", "\\Archive"),
        special("All Mail", "\\All"),
        special("Starred", "\\Flagged"),
    ]));
    for folder in ["Ärger/Überweisungen", "Projects 2024/Q1 Reports", "A&B"] {
        dovecot.create_mailbox(USER, folder).unwrap();
    }
    dovecot
        .doveadm(&["mailbox", "create", "-u", USER, "Not subscribed"])
        .unwrap();
    dovecot
}

fn check_seeded_listing(folders: &[FolderInfo]) {
    for folder in folders {
        assert_eq!(folder.delimiter, Some('/'), "{folder:?}");
    }

    // Non-ASCII names are decoded from what the server sent.
    let nested = find(folders, "Ärger/Überweisungen");
    assert_eq!(
        imap::mutf7::encode(&nested.name),
        "&AMQ-rger/&ANw-berweisungen"
    );
    assert!(nested.selectable && nested.subscribed);
    assert_eq!(nested.parent(), Some("Ärger"));
    assert_eq!(imap::mutf7::encode(&find(folders, "A&B").name), "A&-B");

    // Parents that only exist through a child cannot be selected.
    for parent in ["Ärger", "Projects 2024"] {
        let parent = find(folders, parent);
        assert!(!parent.selectable, "{parent:?}");
    }
    assert!(find(folders, "Projects 2024/Q1 Reports").selectable);

    // Special use, on folders auto-created and subscribed at first login.
    for (name, role) in [
        ("Sent Messages", SpecialUse::Sent),
        ("Drafts", SpecialUse::Drafts),
        ("Deleted Items", SpecialUse::Trash),
        ("Junk", SpecialUse::Junk),
        ("Archive", SpecialUse::Archive),
        ("All Mail", SpecialUse::All),
        ("Starred", SpecialUse::Flagged),
    ] {
        let folder = find(folders, name);
        assert_eq!(folder.special_use, Some(role), "{folder:?}");
        assert!(folder.subscribed && folder.selectable, "{folder:?}");
    }
    assert_eq!(find(folders, "INBOX").special_use, None);
    assert!(find(folders, "INBOX").selectable);

    // Subscriptions.
    assert!(!find(folders, "Not subscribed").subscribed);
    assert!(find(folders, "Projects 2024/Q1 Reports").subscribed);
}

#[tokio::test]
async fn folders_are_listed_with_decoded_names_special_use_and_subscriptions() {
    // Arrange
    let dovecot = seeded_source(DovecotOptions::new());
    let mut session = session(&dovecot).await;
    assert!(session.capabilities().has("LIST-EXTENDED"));

    // Act
    let folders = session.list_folders().await.unwrap();

    // Assert
    check_seeded_listing(&folders);
    assert_eq!(session.hierarchy_delimiter().await.unwrap(), Some('/'));
}

#[tokio::test]
async fn without_list_extended_folders_come_from_list_and_lsub() {
    // Arrange: a server that announces neither LIST-EXTENDED nor SPECIAL-USE in RETURN form.
    let dovecot = seeded_source(DovecotOptions::new().capabilities("IMAP4rev1 SASL-IR"));
    let mut session = session(&dovecot).await;
    assert!(!session.capabilities().has("LIST-EXTENDED"));

    // Act
    let folders = session.list_folders().await.unwrap();

    // Assert: the same picture. Dovecot still returns special-use attributes to a plain LIST.
    check_seeded_listing(&folders);
}

#[tokio::test]
async fn status_select_and_examine_report_the_seeded_figures() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    for i in 0..3 {
        dovecot
            .append_raw(
                USER,
                "Work",
                &message(&format!("m{i}"), None, "x"),
                &[],
                None,
            )
            .unwrap();
    }
    let mut session = session(&dovecot).await;

    // Act
    let status = session.status("Work").await.unwrap();
    let examined = session.examine("Work").await.unwrap();
    let selected_read_only = session.selected().unwrap().read_only;
    let selected = session.select("Work").await.unwrap();

    // Assert
    assert_eq!(status.messages, 3);
    assert_eq!(status.uidnext, 4);
    let modseq = status.highest_modseq.expect("HIGHESTMODSEQ with CONDSTORE");
    assert_eq!(examined, status);
    assert_eq!(selected, status);
    assert!(selected_read_only);
    assert!(!session.selected().unwrap().read_only);
    assert!(session.condstore_enabled());

    // New mail moves UIDNEXT and HIGHESTMODSEQ; UIDVALIDITY stays, across a restart too.
    dovecot
        .append_raw(USER, "Work", &message("m3", None, "x"), &[], None)
        .unwrap();
    let after = session.status("Work").await.unwrap();
    assert_eq!(after.messages, 4);
    assert_eq!(after.uidnext, 5);
    assert_eq!(after.uidvalidity, status.uidvalidity);
    assert!(after.highest_modseq.unwrap() > modseq);
    session.logout().await.unwrap();

    dovecot.restart().unwrap();
    let mut session = support::session(&dovecot).await;
    let restarted = session.examine("Work").await.unwrap();
    assert_eq!(restarted, after);
}

#[tokio::test]
async fn status_of_a_missing_folder_is_a_no_and_the_session_goes_on() {
    // Arrange
    let dovecot = start(DovecotOptions::new());
    let mut session = session(&dovecot).await;

    // Act
    let missing = session.status("Nope").await;
    let select = session.select("Nope").await;

    // Assert
    assert!(
        matches!(missing, Err(imap::ImapError::No { .. })),
        "{missing:?}"
    );
    assert!(
        matches!(select, Err(imap::ImapError::No { .. })),
        "{select:?}"
    );
    assert!(session.selected().is_none());
    assert_eq!(session.status("INBOX").await.unwrap().messages, 0);
}

#[tokio::test]
async fn condstore_and_qresync_are_enabled_when_offered() {
    // Arrange
    let full = start(DovecotOptions::new());
    let bare = start(DovecotOptions::new().capabilities("IMAP4rev1 SASL-IR"));
    let mut with = session(&full).await;
    let mut without = session(&bare).await;

    // Act + Assert
    assert!(with.enable_qresync().await.unwrap());
    assert!(with.qresync_enabled() && with.condstore_enabled());
    assert!(!without.enable_condstore().await.unwrap());
    assert!(!without.enable_qresync().await.unwrap());

    // Without CONDSTORE there is no HIGHESTMODSEQ to report.
    let status = without.status("INBOX").await.unwrap();
    assert_eq!(status.highest_modseq, None);
}

#[tokio::test]
async fn create_folder_makes_parents_tolerates_existing_ones_and_subscribes() {
    // Arrange
    let dovecot = start(DovecotOptions::new().separator('/'));
    let mut session = session(&dovecot).await;

    // Act
    let created = session
        .create_folder("Ärger/Überweisungen/2024")
        .await
        .unwrap();
    let again = session
        .create_folder("Ärger/Überweisungen/2024")
        .await
        .unwrap();
    let sibling = session.create_folder("Ärger/Mahnungen").await.unwrap();
    session.subscribe("Ärger/Überweisungen/2024").await.unwrap();
    session.subscribe("Ärger/Überweisungen/2024").await.unwrap();

    // Assert
    assert!(created);
    assert!(!again);
    assert!(sibling);
    let on_server = dovecot.mailboxes(USER).unwrap();
    for name in [
        "Ärger",
        "Ärger/Überweisungen",
        "Ärger/Überweisungen/2024",
        "Ärger/Mahnungen",
    ] {
        assert!(
            on_server.iter().any(|m| m == name),
            "{name} in {on_server:?}"
        );
    }
    let folders = session.list_folders().await.unwrap();
    assert!(
        find(&folders, "Ärger").selectable,
        "parents are real folders"
    );
    assert!(find(&folders, "Ärger/Überweisungen/2024").subscribed);
    assert!(!find(&folders, "Ärger/Mahnungen").subscribed);
    assert!(session.folder_exists("Ärger/Mahnungen").await.unwrap());
    assert!(!session.folder_exists("Ärger/Nichts").await.unwrap());
    // INBOX exists and CREATE INBOX is refused without ALREADYEXISTS on some servers.
    assert!(!session.create_folder("INBOX").await.unwrap());
}
