//! Writing and reading the audit trail (see [`crate::audit`]): the use cases record their
//! entries through [`App::audit`]; the console reads a project's trail in pages and exports it
//! as CSV.

use contract::{AuditPage, AuditView};

use crate::audit::{Actor, AuditAction, AuditEntry, is_audit_id};
use crate::error::AppError;
use crate::model::{Project, ProjectId};

use super::App;
use super::report::spreadsheet_safe;

/// Most entries in one page of the console.
pub const AUDIT_PAGE_MAX: usize = 500;
/// Most entries in one CSV file: ~200 bytes each keeps a file under the 6 MB a Lambda response
/// may carry. The `X-Next-Before` header of a full file names where the next one starts.
pub const AUDIT_CSV_MAX: usize = 20_000;

impl App {
    /// Appends an entry to the trail. The action it records has already happened, so a store
    /// failure here is logged loudly rather than turned into the action's failure.
    pub(crate) async fn audit(
        &self,
        project: Option<ProjectId>,
        actor: &Actor,
        action: AuditAction,
        subject: Option<&str>,
        detail: &str,
    ) {
        let entry = AuditEntry::new(
            self.deps.clock.now(),
            project,
            actor,
            action,
            subject,
            detail,
        );
        if let Err(e) = self.deps.store.append_audit(&entry).await {
            tracing::error!(action = %action, error = %e, "could not write an audit entry");
        }
    }

    /// A page of the project's trail (or the console-wide one), newest first.
    pub async fn audit_page(
        &self,
        project: Option<ProjectId>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, AppError> {
        if let Some(p) = project {
            self.project(p).await?;
        }
        let before = check_cursor(before)?;
        let limit = if limit == 0 {
            100
        } else {
            limit.min(AUDIT_PAGE_MAX)
        };
        let entries = self.deps.store.list_audit(project, before, limit).await?;
        let next = (entries.len() == limit)
            .then(|| entries.last().map(|e| e.id.clone()))
            .flatten();
        Ok(AuditPage {
            items: entries.into_iter().map(view).collect(),
            next,
        })
    }

    /// The project's trail as CSV, newest first, at most [`AUDIT_CSV_MAX`] entries from
    /// `before`; returns the file and, when it is full, the cursor of the next file. The export
    /// itself is recorded.
    pub async fn audit_csv(
        &self,
        project: ProjectId,
        before: Option<&str>,
        actor: &Actor,
    ) -> Result<(Vec<u8>, Option<String>), AppError> {
        self.project(project).await?;
        let mut cursor = check_cursor(before)?.map(str::to_owned);
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(["at", "who", "from", "action", "mailbox", "detail", "id"])
            .map_err(AppError::internal)?;
        let mut written = 0;
        while written < AUDIT_CSV_MAX {
            let want = AUDIT_PAGE_MAX.min(AUDIT_CSV_MAX - written);
            let page = self
                .deps
                .store
                .list_audit(Some(project), cursor.as_deref(), want)
                .await?;
            for e in &page {
                let at =
                    e.at.format(&time::format_description::well_known::Rfc3339)
                        .map_err(AppError::internal)?;
                let row = [
                    at,
                    e.actor.who.clone(),
                    e.actor.from.clone().unwrap_or_default(),
                    e.action.as_str().to_owned(),
                    e.subject.clone().unwrap_or_default(),
                    e.detail.clone(),
                    e.id.clone(),
                ];
                w.write_record(row.iter().map(|c| spreadsheet_safe(c)))
                    .map_err(AppError::internal)?;
            }
            written += page.len();
            cursor = page.last().map(|e| e.id.clone());
            if page.len() < want {
                cursor = None;
                break;
            }
        }
        let csv = w.into_inner().map_err(AppError::internal)?;
        self.audit(
            Some(project),
            actor,
            AuditAction::AuditExported,
            None,
            &format!("{written} entries"),
        )
        .await;
        Ok((csv, cursor))
    }
}

fn check_cursor(before: Option<&str>) -> Result<Option<&str>, AppError> {
    match before.map(str::trim) {
        None | Some("") => Ok(None),
        Some(b) if is_audit_id(b) => Ok(Some(b)),
        Some(_) => Err(AppError::validation_field(
            "before",
            "is not an entry id from an earlier page",
        )),
    }
}

fn view(e: AuditEntry) -> AuditView {
    AuditView {
        id: e.id,
        at: e.at,
        who: e.actor.who,
        from: e.actor.from,
        action: e.action.as_str().to_owned(),
        subject: e.subject,
        detail: e.detail,
    }
}

/// Which settings an update changed, by name, for the trail (values of connectors are named
/// but not shown: a host is fine to show, a password never is, so only what changed is told).
pub(crate) fn project_changes(old: &Project, new: &Project) -> String {
    let mut changed = Vec::new();
    if old.name != new.name {
        changed.push(format!("name '{}' → '{}'", old.name, new.name));
    }
    for (side, a, b) in [
        ("source", &old.source, &new.source),
        ("target", &old.target, &new.target),
    ] {
        if a.endpoint() != b.endpoint() {
            changed.push(format!(
                "{side} {}:{} {:?} → {}:{} {:?}",
                a.host, a.port, a.security, b.host, b.port, b.security
            ));
        }
        if a.auth != b.auth {
            changed.push(format!("{side} sign-in"));
        }
    }
    if old.invite_to != new.invite_to {
        changed.push("invites".into());
    }
    if old.admin_email != new.admin_email || old.notify_user != new.notify_user {
        changed.push("notifications".into());
    }
    if old.copy != new.copy {
        changed.push("copy options".into());
    }
    if old.retention != new.retention {
        changed.push(format!(
            "credentials kept {} → {} idle days",
            old.retention.idle_days, new.retention.idle_days
        ));
    }
    if old.sync.every_hours != new.sync.every_hours {
        let every = |h: Option<u32>| h.map_or("off".to_owned(), |h| format!("every {h} h"));
        changed.push(format!(
            "sync {} → {}",
            every(old.sync.every_hours),
            every(new.sync.every_hours)
        ));
    }
    if old.sync.cutover_at != new.sync.cutover_at {
        let at =
            |t: Option<time::OffsetDateTime>| t.map_or("none".to_owned(), super::sync::date_time);
        changed.push(format!(
            "cutover {} → {}",
            at(old.sync.cutover_at),
            at(new.sync.cutover_at)
        ));
    }
    if (&old.sync.smtp_host, old.sync.smtp_port) != (&new.sync.smtp_host, new.sync.smtp_port) {
        changed.push("outgoing mail server".into());
    }
    if changed.is_empty() {
        "nothing changed".into()
    } else {
        changed.join("; ")
    }
}
