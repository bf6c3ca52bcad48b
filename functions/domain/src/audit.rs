//! The audit trail: who did what, when and from where — every admin action and every event in
//! the life of a stored credential (submitted, tested, used by a copy job, purged).
//!
//! Entries are only ever appended: the store port has no call that edits or deletes one, and
//! the API only lists and exports them. Deleting a user keeps the project's entries about them.
//! An entry holds addresses and names but never a password, a token or what a server answered.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::ProjectId;

/// Who acts, and from which address: the admin signed in to the console, a user on their
/// invite page, or mailferry itself (a copy job, the retention sweep).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// `admin` (local password), the identity provider's user name or e-mail (AWS), `user
    /// <address>` on an invite page, or `mailferry` for what the system does by itself.
    pub who: String,
    /// The client's IP address when known.
    pub from: Option<String>,
}

impl Actor {
    pub fn admin(who: impl Into<String>, from: Option<std::net::IpAddr>) -> Self {
        Actor {
            who: clean(&who.into(), 200),
            from: from.map(|ip| ip.to_string()),
        }
    }

    pub fn user(email: &str, from: Option<std::net::IpAddr>) -> Self {
        Actor {
            who: format!("user {email}"),
            from: from.map(|ip| ip.to_string()),
        }
    }

    pub fn system() -> Self {
        Actor {
            who: "mailferry".into(),
            from: None,
        }
    }
}

/// What was done. The string forms (`project.updated`, …) are what the console and the CSV
/// show; they are stable, so exports from different versions can be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    SignedIn,
    SignInRefused,
    SignedOut,
    ProjectCreated,
    ProjectUpdated,
    ProjectClosed,
    ProjectReopened,
    ConnectionTested,
    UserAdded,
    UsersImported,
    UsersExported,
    ReportExported,
    AuditExported,
    UserAction,
    UserDeleted,
    CredentialsSubmitted,
    CredentialsTested,
    CredentialsUsed,
    CredentialsPurged,
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::SignedIn => "admin.signed_in",
            AuditAction::SignInRefused => "admin.sign_in_refused",
            AuditAction::SignedOut => "admin.signed_out",
            AuditAction::ProjectCreated => "project.created",
            AuditAction::ProjectUpdated => "project.updated",
            AuditAction::ProjectClosed => "project.closed",
            AuditAction::ProjectReopened => "project.reopened",
            AuditAction::ConnectionTested => "connection.tested",
            AuditAction::UserAdded => "user.added",
            AuditAction::UsersImported => "users.imported",
            AuditAction::UsersExported => "users.exported",
            AuditAction::ReportExported => "report.exported",
            AuditAction::AuditExported => "audit.exported",
            AuditAction::UserAction => "user.action",
            AuditAction::UserDeleted => "user.deleted",
            AuditAction::CredentialsSubmitted => "credentials.submitted",
            AuditAction::CredentialsTested => "credentials.tested",
            AuditAction::CredentialsUsed => "credentials.used",
            AuditAction::CredentialsPurged => "credentials.purged",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the trail. `id` orders entries: the time to the nanosecond, then a random part,
/// so that two entries of the same instant neither collide nor reorder between reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: String,
    /// The project it concerns; `None` for sign-ins, which concern the whole console.
    pub project_id: Option<ProjectId>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub action: AuditAction,
    /// The mailbox it concerns, when one.
    pub subject: Option<String>,
    /// What exactly: which fields changed, which bulk action, the outcome of a test. Never a
    /// secret.
    pub detail: String,
}

impl AuditEntry {
    pub fn new(
        at: OffsetDateTime,
        project_id: Option<ProjectId>,
        actor: &Actor,
        action: AuditAction,
        subject: Option<&str>,
        detail: &str,
    ) -> Self {
        AuditEntry {
            id: audit_id(at),
            project_id,
            at,
            actor: actor.clone(),
            action,
            subject: subject.map(|s| clean(s, 320)),
            detail: clean(detail, 2000),
        }
    }
}

/// The last time part handed out by this process, so that its entries keep the order they
/// were made in even when the clock stands still or steps back.
static LAST_NANOS: AtomicU64 = AtomicU64::new(0);

/// A sortable, unique id: 20 digits of nanoseconds since 1970 (raised past the last id this
/// process made, so one process's entries never reorder), `-`, 12 random hex digits (so those
/// of two processes never collide).
pub fn audit_id(at: OffsetDateTime) -> String {
    let wanted = u64::try_from(at.unix_timestamp_nanos().max(0)).unwrap_or(u64::MAX - 1);
    let mut last = LAST_NANOS.load(Ordering::Relaxed);
    let nanos = loop {
        let next = wanted.max(last.saturating_add(1));
        match LAST_NANOS.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(seen) => last = seen,
        }
    };
    let random = Uuid::new_v4().simple().to_string();
    format!("{nanos:020}-{}", &random[..12])
}

/// Whether a string has the shape of an [`audit_id`] (a paging cursor is one).
pub fn is_audit_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 33
        && b[..20].iter().all(u8::is_ascii_digit)
        && b[20] == b'-'
        && b[21..].iter().all(|c| c.is_ascii_hexdigit())
}

/// Control characters out and the length bounded, so that an entry reads as one line
/// wherever it is shown.
fn clean(s: &str, max_chars: usize) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ids_sort_by_time_and_differ_within_an_instant() {
        let a = audit_id(datetime!(2026-12-07 06:00:00.000000001 UTC));
        let b = audit_id(datetime!(2026-12-07 06:00:00.1 UTC));
        let c = audit_id(datetime!(2026-12-07 06:00:00.1 UTC));
        let d = audit_id(datetime!(2026-12-07 05:00 UTC));
        assert!(
            a < b && b < c && c < d,
            "made later, sorted later: {a} {b} {c} {d}"
        );
        assert!(is_audit_id(&a) && is_audit_id(&b));
        assert!(!is_audit_id("00000000000000000001-zzzzzzzzzzzz"));
        assert!(!is_audit_id("1-abc"));
    }

    #[test]
    fn entries_are_one_line_and_bounded() {
        let e = AuditEntry::new(
            datetime!(2026-12-07 06:00 UTC),
            None,
            &Actor::admin("ad\nmin", None),
            AuditAction::SignedIn,
            Some("a@b.c\r\nx"),
            &"d".repeat(5000),
        );
        assert_eq!(e.actor.who, "ad min");
        assert_eq!(e.subject.as_deref(), Some("a@b.c  x"));
        assert_eq!(e.detail.chars().count(), 2000);
    }

    #[test]
    fn action_names_are_stable() {
        assert_eq!(
            AuditAction::CredentialsPurged.as_str(),
            "credentials.purged"
        );
        assert_eq!(AuditAction::ProjectUpdated.to_string(), "project.updated");
    }
}
