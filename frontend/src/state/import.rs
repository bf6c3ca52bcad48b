//! Importing users from a CSV file: choose a file, see its first rows and the server's dry run
//! (counts, or every wrong line with its number), then import. The server's import is all or
//! nothing, so the Import button is offered only after a clean dry run of the same bytes.

use std::rc::Rc;

use contract::{ImportReport, LineError};

use crate::api::ApiError;

/// Rows of the file shown before importing.
pub const PREVIEW_ROWS: usize = 5;

/// The first rows of a CSV file, for a look before importing. Password columns are masked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvPreview {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Data lines in the file (not counting the header or blank lines).
    pub data_lines: usize,
}

/// Splits one CSV line, honouring double quotes (`"a, b"`, `""` for a quote). Good enough for a
/// preview; the server parses the file properly.
fn split_line(line: &str, delimiter: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (c, false) if c == delimiter => out.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    out.push(field);
    out.into_iter().map(|f| f.trim().to_owned()).collect()
}

pub fn preview(bytes: &[u8], max_rows: usize) -> CsvPreview {
    let text = String::from_utf8_lossy(bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header_line) = lines.next() else {
        return CsvPreview::default();
    };
    // The server's rule: `;` when the header has more semicolons than commas.
    let delimiter = if header_line.matches(';').count() > header_line.matches(',').count() {
        ';'
    } else {
        ','
    };
    let header = split_line(header_line, delimiter);
    let secret: Vec<bool> = header
        .iter()
        .map(|h| h.to_lowercase().contains("password"))
        .collect();
    let mut rows = Vec::new();
    let mut data_lines = 0;
    for line in lines {
        data_lines += 1;
        if rows.len() < max_rows {
            let row = split_line(line, delimiter)
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    if secret.get(i).copied().unwrap_or(false) && !v.is_empty() {
                        "••••••".to_owned()
                    } else {
                        v
                    }
                })
                .collect();
            rows.push(row);
        }
    }
    CsvPreview {
        header,
        rows,
        data_lines,
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub enum ImportPhase {
    #[default]
    Empty,
    /// The dry run is on its way.
    Checking,
    /// The dry run passed: this is what an import would do.
    Checked(ImportReport),
    /// The dry run found problems: nothing can be imported until the file is fixed.
    Invalid {
        message: String,
        lines: Vec<LineError>,
    },
    Importing,
    Imported(ImportReport),
    /// The request failed for another reason (network, session); the file may be tried again.
    Failed(String),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportState {
    pub file_name: Option<String>,
    pub bytes: Option<Rc<Vec<u8>>>,
    pub preview: Option<CsvPreview>,
    pub phase: ImportPhase,
    /// Bumped for every new file, so a late dry run of an older file is ignored.
    pub generation: u32,
    pub signed_out: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImportAction {
    /// A file was chosen and read; its dry run starts.
    FileRead {
        name: String,
        bytes: Rc<Vec<u8>>,
    },
    FileUnreadable(String),
    /// Run the dry run again on the same bytes (after a network failure).
    Recheck,
    Checked(u32, Result<ImportReport, ApiError>),
    ImportStarted,
    Imported(u32, Result<ImportReport, ApiError>),
    Reset,
}

/// Line errors from a 422's `details.errors`.
fn line_errors(err: &ApiError) -> Vec<LineError> {
    err.body()
        .and_then(|b| b.details.get("errors"))
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default()
}

impl ImportState {
    pub fn can_import(&self) -> bool {
        matches!(&self.phase, ImportPhase::Checked(r) if r.valid_rows > 0)
    }

    pub fn busy(&self) -> bool {
        matches!(self.phase, ImportPhase::Checking | ImportPhase::Importing)
    }

    fn failed(&mut self, err: ApiError) {
        if matches!(err, ApiError::Unauthorized(_)) {
            self.signed_out = true;
        }
        let lines = line_errors(&err);
        self.phase = match &err {
            ApiError::Rejected {
                status: 422 | 413, ..
            } => ImportPhase::Invalid {
                message: err.message(),
                lines,
            },
            _ => ImportPhase::Failed(err.message()),
        };
    }

    pub fn apply(mut self, action: ImportAction) -> Self {
        match action {
            ImportAction::FileRead { name, bytes } => {
                self.generation += 1;
                self.preview = Some(preview(&bytes, PREVIEW_ROWS));
                self.file_name = Some(name);
                self.bytes = Some(bytes);
                self.phase = ImportPhase::Checking;
            }
            ImportAction::FileUnreadable(message) => {
                self.generation += 1;
                self.bytes = None;
                self.preview = None;
                self.phase = ImportPhase::Failed(message);
            }
            ImportAction::Recheck if self.bytes.is_some() && !self.busy() => {
                self.generation += 1;
                self.phase = ImportPhase::Checking;
            }
            ImportAction::Checked(generation, result) if generation == self.generation => {
                match result {
                    Ok(report) => self.phase = ImportPhase::Checked(report),
                    Err(err) => self.failed(err),
                }
            }
            ImportAction::ImportStarted if self.can_import() => {
                self.phase = ImportPhase::Importing;
            }
            ImportAction::Imported(generation, result) if generation == self.generation => {
                match result {
                    Ok(report) => {
                        self.phase = ImportPhase::Imported(report);
                        // Importing the same bytes twice would only update; start afresh.
                        self.bytes = None;
                    }
                    Err(err) => self.failed(err),
                }
            }
            ImportAction::Checked(..)
            | ImportAction::Imported(..)
            | ImportAction::ImportStarted
            | ImportAction::Recheck => {}
            ImportAction::Reset => {
                self = ImportState {
                    generation: self.generation + 1,
                    ..ImportState::default()
                };
            }
        }
        self
    }
}

super::reducible!(ImportState, ImportAction);

#[cfg(test)]
mod tests {
    use super::*;
    use contract::ApiErrorBody;

    fn report(valid: u64, created: u64, dry_run: bool) -> ImportReport {
        ImportReport {
            valid_rows: valid,
            created,
            updated: 0,
            dry_run,
        }
    }

    fn chosen(csv: &str) -> ImportState {
        ImportState::default().apply(ImportAction::FileRead {
            name: "users.csv".into(),
            bytes: Rc::new(csv.as_bytes().to_vec()),
        })
    }

    #[test]
    fn the_preview_shows_the_first_rows_and_masks_passwords() {
        let p = preview(
            "\u{feff}source_email;target_email;source_password\nann@old.example;ann@new.example;s3cret\n\n\"bob@old.example\";\"bob; new\";\n"
                .as_bytes(),
            PREVIEW_ROWS,
        );
        assert_eq!(
            p.header,
            vec!["source_email", "target_email", "source_password"]
        );
        assert_eq!(
            p.rows[0],
            vec!["ann@old.example", "ann@new.example", "••••••"]
        );
        assert_eq!(p.rows[1], vec!["bob@old.example", "bob; new", ""]);
        assert_eq!(p.data_lines, 2);
        assert_eq!(
            split_line(r#"a,"say ""hi""",c"#, ','),
            vec!["a", "say \"hi\"", "c"]
        );
        assert_eq!(preview(b"", 5), CsvPreview::default());
    }

    #[test]
    fn a_clean_dry_run_offers_the_import() {
        // Arrange
        let state = chosen("source_email,target_email\na@old.example,a@new.example\n");
        assert_eq!(state.phase, ImportPhase::Checking);
        assert!(state.busy());
        // Act
        let g = state.generation;
        let state = state.apply(ImportAction::Checked(g, Ok(report(1, 1, true))));
        // Assert
        assert!(state.can_import());
        let state = state.apply(ImportAction::ImportStarted);
        assert_eq!(state.phase, ImportPhase::Importing);
        let state = state.apply(ImportAction::Imported(g, Ok(report(1, 1, false))));
        assert_eq!(state.phase, ImportPhase::Imported(report(1, 1, false)));
        assert!(!state.can_import());
        assert_eq!(state.bytes, None);
    }

    #[test]
    fn bad_lines_are_listed_and_block_the_import() {
        let body = ApiErrorBody {
            error: "validation".into(),
            message: "1 line of the file is wrong; nothing was imported".into(),
            details: serde_json::json!({"errors": [{"line": 3, "message": "'bob@old' has no domain with a dot"}]}),
        };
        let state = chosen("x");
        let g = state.generation;
        let state = state.apply(ImportAction::Checked(
            g,
            Err(ApiError::Rejected { status: 422, body }),
        ));
        match &state.phase {
            ImportPhase::Invalid { message, lines } => {
                assert!(message.starts_with("1 line"));
                assert_eq!(lines[0].line, 3);
            }
            other => panic!("{other:?}"),
        }
        assert!(!state.can_import());
        assert_eq!(state.clone().apply(ImportAction::ImportStarted), state);
    }

    #[test]
    fn a_late_dry_run_of_an_older_file_is_ignored() {
        let first = chosen("old");
        let old = first.generation;
        let second = first.apply(ImportAction::FileRead {
            name: "new.csv".into(),
            bytes: Rc::new(b"new".to_vec()),
        });
        let state = second.apply(ImportAction::Checked(old, Ok(report(9, 9, true))));
        assert_eq!(state.phase, ImportPhase::Checking);
        assert_eq!(state.file_name.as_deref(), Some("new.csv"));
    }

    #[test]
    fn a_network_failure_can_be_retried_and_reset_clears_everything() {
        let state = chosen("x");
        let g = state.generation;
        let state = state.apply(ImportAction::Checked(g, Err(ApiError::Network("x".into()))));
        assert!(matches!(state.phase, ImportPhase::Failed(_)));
        assert!(state.bytes.is_some(), "the file stays for another try");
        let again = state.clone().apply(ImportAction::Recheck);
        assert_eq!(again.phase, ImportPhase::Checking);
        assert_eq!(again.generation, g + 1);
        let reset = state.apply(ImportAction::Reset);
        assert_eq!(reset.phase, ImportPhase::Empty);
        assert_eq!(reset.file_name, None);
    }
}
