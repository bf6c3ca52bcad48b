//! Store checks of the audit trail: append only, per project, newest first, paged by id.

use domain::audit::{Actor, AuditAction, AuditEntry};
use domain::error::StoreError;
use domain::model::ProjectId;
use domain::ports::Store;
use std::sync::Arc;
use time::Duration;
use time::macros::datetime;

/// An entry whose id sorts by `seconds` (the store orders by id, whatever order the entries
/// arrive in).
fn entry(project: Option<ProjectId>, seconds: i64, detail: &str) -> AuditEntry {
    let mut e = AuditEntry::new(
        datetime!(2026-12-07 06:00:00.123456789 UTC) + Duration::seconds(seconds),
        project,
        &Actor::admin("admin", Some([192, 0, 2, 7].into())),
        AuditAction::ProjectUpdated,
        Some("ada@source.example"),
        detail,
    );
    let nanos = e.at.unix_timestamp_nanos();
    e.id = format!("{nanos:020}-{:012x}", seconds.unsigned_abs());
    assert!(domain::audit::is_audit_id(&e.id));
    e
}

pub(crate) async fn audit_trail(s: Arc<dyn Store>) {
    let (p, q) = (ProjectId::new(), ProjectId::new());
    assert!(
        s.list_audit(Some(p), None, 10)
            .await
            .expect("list_audit")
            .is_empty(),
        "no entries yet"
    );
    // Appended out of order, in two projects and the console-wide trail.
    for (secs, detail) in [(10, "first"), (30, "third"), (20, "second"), (40, "fourth")] {
        s.append_audit(&entry(Some(p), secs, detail))
            .await
            .expect("append_audit");
    }
    s.append_audit(&entry(Some(q), 25, "other project"))
        .await
        .expect("append_audit");
    s.append_audit(&entry(None, 26, "console-wide"))
        .await
        .expect("append_audit");

    let all = s.list_audit(Some(p), None, 100).await.expect("list_audit");
    let details: Vec<&str> = all.iter().map(|e| e.detail.as_str()).collect();
    assert_eq!(
        details,
        ["fourth", "third", "second", "first"],
        "newest first, only this project's"
    );
    let wide = s.list_audit(None, None, 100).await.expect("list_audit");
    assert_eq!(wide.len(), 1, "the console-wide trail is its own");
    assert_eq!(wide[0].detail, "console-wide");
    assert_eq!(wide[0].project_id, None);

    // Read back field for field; paged with the last id as the cursor.
    let newest = s.list_audit(Some(p), None, 2).await.expect("list_audit");
    assert_eq!(newest, all[..2].to_vec(), "limit keeps the newest");
    let rest = s
        .list_audit(Some(p), Some(&newest[1].id), 100)
        .await
        .expect("list_audit");
    assert_eq!(rest, all[2..].to_vec(), "the cursor continues below it");
    assert!(
        s.list_audit(Some(p), Some(&all[3].id), 10)
            .await
            .expect("list_audit")
            .is_empty(),
        "nothing below the oldest"
    );

    // An entry cannot be overwritten through the port.
    let mut forged = all[0].clone();
    forged.detail = "rewritten".into();
    assert!(
        matches!(
            s.append_audit(&forged).await,
            Err(StoreError::AlreadyExists)
        ),
        "appending an existing id is refused"
    );
    let again = s.list_audit(Some(p), None, 1).await.expect("list_audit");
    assert_eq!(again[0].detail, "fourth", "the entry is unchanged");
}
