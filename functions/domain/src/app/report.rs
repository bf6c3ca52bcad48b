//! The verification report of a project as CSV: one row per folder of every user, with the
//! figures of both sides, what was skipped, and the copies the target stored differently, for
//! the admin's records and spreadsheets.

use crate::audit::{Actor, AuditAction};
use crate::error::AppError;
use crate::model::ProjectId;

use super::App;

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, a tab or a carriage return
/// first) gets a `'` in front, so a folder or display name cannot become one.
pub(crate) fn spreadsheet_safe(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// A CSV file for the admin's spreadsheets: the header as given, every cell of the rows made
/// [`spreadsheet_safe`]; [`App::finish_export`] records the export in the audit log.
pub(crate) struct CsvExport(csv::Writer<Vec<u8>>);

impl CsvExport {
    pub(crate) fn new(header: &[&str]) -> Result<Self, AppError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(header).map_err(AppError::internal)?;
        Ok(CsvExport(w))
    }

    pub(crate) fn row<S: AsRef<str>>(
        &mut self,
        cells: impl IntoIterator<Item = S>,
    ) -> Result<(), AppError> {
        self.0
            .write_record(cells.into_iter().map(|c| spreadsheet_safe(c.as_ref())))
            .map_err(AppError::internal)
    }
}

/// Altered copies listed in one cell (the first ones a checkpoint keeps).
fn altered_cell(items: &[contract::AlteredItem]) -> String {
    items
        .iter()
        .map(|a| format!("UID {}: {}", a.uid, a.change))
        .collect::<Vec<_>>()
        .join("; ")
}

impl App {
    /// The bytes of an export, once its taking is in the project's audit log.
    pub(crate) async fn finish_export(
        &self,
        export: CsvExport,
        project: ProjectId,
        actor: &Actor,
        action: AuditAction,
        detail: &str,
    ) -> Result<Vec<u8>, AppError> {
        let csv = export.0.into_inner().map_err(AppError::internal)?;
        self.audit(Some(project), actor, action, None, detail).await;
        Ok(csv)
    }

    /// The project's verification report as CSV (no credentials).
    pub async fn verification_csv(
        &self,
        project_id: ProjectId,
        actor: &Actor,
    ) -> Result<Vec<u8>, AppError> {
        self.project(project_id).await?;
        let mut rows = 0u64;
        let mut w = CsvExport::new(&[
            "source_email",
            "target_email",
            "state",
            "source_folder",
            "target_folder",
            "renamed_from",
            "source_messages",
            "target_messages",
            "source_bytes",
            "target_bytes",
            "copied_messages",
            "skipped",
            "content_checked",
            "altered",
            "altered_copies",
            "done",
        ])?;
        for u in self.all_users(project_id).await? {
            for f in self.deps.store.list_folders(u.id).await? {
                let opt = |v: Option<u64>| v.map_or(String::new(), |n| n.to_string());
                let row = [
                    u.source_email.to_string(),
                    u.target_email.to_string(),
                    u.state.as_str().to_owned(),
                    f.source_name.clone(),
                    f.target_name.clone(),
                    f.renamed_from.clone().unwrap_or_default(),
                    f.source_messages.to_string(),
                    opt(f.target_messages),
                    f.source_bytes.to_string(),
                    opt(f.target_bytes),
                    f.copied_messages.to_string(),
                    f.skipped_total().to_string(),
                    f.content_checked.to_string(),
                    f.altered_count.to_string(),
                    altered_cell(&f.altered),
                    f.done.to_string(),
                ];
                w.row(row)?;
                rows += 1;
            }
        }
        let detail = format!("{rows} folder rows");
        self.finish_export(w, project_id, actor, AuditAction::ReportExported, &detail)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_neutralised() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("-1+2"), "'-1+2");
        assert_eq!(spreadsheet_safe("\tx"), "'\tx");
        assert_eq!(spreadsheet_safe("INBOX"), "INBOX");
        assert_eq!(spreadsheet_safe(""), "");
    }
}
