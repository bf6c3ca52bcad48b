//! Parsing of the users CSV an admin uploads. Parsing is all or nothing: either every row is
//! valid and the rows are returned, or every problem is returned with its line number and the
//! caller writes nothing.

use std::collections::HashMap;

use contract::LineError;
use contract::limits::{CSV_MAX_BYTES, CSV_MAX_ROWS, PASSWORD_MAX_BYTES};

use crate::model::EmailAddress;
use crate::secret::Secret;

/// One valid data row.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvRow {
    pub line: u64,
    pub source_email: EmailAddress,
    pub target_email: EmailAddress,
    pub display_name: String,
    pub source_password: Option<Secret>,
    pub target_password: Option<Secret>,
    /// 0 to `schedule::PRIORITY_MAX`; empty keeps a user's priority (0 for a new one).
    pub priority: Option<u8>,
    /// The user's own cutover time (RFC 3339, for a batch); empty keeps the user's.
    pub cutover_at: Option<time::OffsetDateTime>,
}

/// Why a whole file was refused before looking at rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvFileError {
    #[error("the file is larger than {CSV_MAX_BYTES} bytes")]
    TooLarge,
    #[error("the file is empty")]
    Empty,
}

pub const COLUMNS: [&str; 7] = [
    "source_email",
    "target_email",
    "display_name",
    "source_password",
    "target_password",
    "priority",
    "cutover_at",
];
const REQUIRED: [&str; 2] = ["source_email", "target_email"];

/// Column names are matched ignoring case, surrounding spaces, and `-`/space versus `_`.
fn normalise_header(h: &str) -> String {
    h.trim().to_lowercase().replace([' ', '-'], "_")
}

/// `;` is the separator when the header line has more semicolons than commas (spreadsheets in
/// many European locales export that way); otherwise `,`.
fn sniff_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    let semis = header.matches(';').count();
    let commas = header.matches(',').count();
    if semis > commas { b';' } else { b',' }
}

/// Parses `bytes` (UTF-8, optional BOM, header row). Returns the rows, or every line error.
pub fn parse(bytes: &[u8]) -> Result<Vec<CsvRow>, Result<Vec<LineError>, CsvFileError>> {
    if bytes.len() > CSV_MAX_BYTES {
        return Err(Err(CsvFileError::TooLarge));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Err(CsvFileError::Empty));
    }
    let mut errors: Vec<LineError> = Vec::new();
    // Report invalid UTF-8 by line before the CSV reader sees it, so the admin learns where the
    // bad bytes are (an export in Latin-1 is the usual cause).
    if std::str::from_utf8(bytes).is_err() {
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            if std::str::from_utf8(line).is_err() {
                errors.push(LineError {
                    line: i as u64 + 1,
                    message:
                        "this line is not valid UTF-8; save the file as UTF-8 and upload it again"
                            .into(),
                });
                if errors.len() >= 100 {
                    break;
                }
            }
        }
        return Err(Ok(errors));
    }
    let text = std::str::from_utf8(bytes).unwrap_or_default();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(sniff_delimiter(text))
        .flexible(true)
        .trim(csv::Trim::Headers)
        .from_reader(text.as_bytes());

    let headers = match reader.headers() {
        Ok(h) => h.iter().map(normalise_header).collect::<Vec<_>>(),
        Err(e) => {
            return Err(Ok(vec![LineError {
                line: 1,
                message: format!("the header row cannot be read: {e}"),
            }]));
        }
    };
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        match COLUMNS.iter().find(|c| **c == h.as_str()) {
            Some(c) => {
                if index.insert(c, i).is_some() {
                    errors.push(LineError {
                        line: 1,
                        message: format!("the column '{c}' appears twice"),
                    });
                }
            }
            None if h.is_empty() => {}
            None => errors.push(LineError {
                line: 1,
                message: format!(
                    "unknown column '{h}'; the columns are {}",
                    COLUMNS.join(", ")
                ),
            }),
        }
    }
    for req in REQUIRED {
        if !index.contains_key(req) {
            errors.push(LineError {
                line: 1,
                message: format!(
                    "the required column '{req}' is missing; the header must name {}",
                    REQUIRED.join(" and ")
                ),
            });
        }
    }
    if !errors.is_empty() {
        return Err(Ok(errors));
    }

    let mut rows = Vec::new();
    let mut seen: HashMap<EmailAddress, u64> = HashMap::new();
    let mut data_rows = 0usize;
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(LineError {
                    line,
                    message: format!("this line cannot be read: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue; // blank lines (often at the end of a spreadsheet export) are not rows
        }
        data_rows += 1;
        if data_rows > CSV_MAX_ROWS {
            errors.push(LineError {
                line,
                message: format!("the file has more than {CSV_MAX_ROWS} rows; split it"),
            });
            break;
        }
        if record.len() > headers.len() {
            errors.push(LineError {
                line,
                message: format!(
                    "this line has {} fields but the header has {}",
                    record.len(),
                    headers.len()
                ),
            });
            continue;
        }
        let field = |name: &str| index.get(name).and_then(|i| record.get(*i)).unwrap_or("");
        let mut problems = Vec::new();
        let source = EmailAddress::parse(field("source_email"))
            .map_err(|e| problems.push(format!("source_email: {e}")))
            .ok();
        let target = EmailAddress::parse(field("target_email"))
            .map_err(|e| problems.push(format!("target_email: {e}")))
            .ok();
        let display_name = field("display_name").trim().to_owned();
        if display_name.chars().count() > 200 {
            problems.push("display_name: longer than 200 characters".into());
        }
        if display_name
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            problems.push("display_name: control characters are not allowed".into());
        }
        let password = |name: &str, problems: &mut Vec<String>| {
            let raw = field(name);
            if raw.is_empty() {
                None
            } else if raw.len() > PASSWORD_MAX_BYTES {
                problems.push(format!("{name}: longer than {PASSWORD_MAX_BYTES} bytes"));
                None
            } else {
                Some(Secret::new(raw))
            }
        };
        let priority = match field("priority").trim() {
            "" => None,
            p => match p.parse::<u8>() {
                Ok(p) if p <= crate::schedule::PRIORITY_MAX => Some(p),
                _ => {
                    problems.push(format!(
                        "priority: '{p}' is not a whole number from 0 to {}",
                        crate::schedule::PRIORITY_MAX
                    ));
                    None
                }
            },
        };
        let cutover_at = match field("cutover_at").trim() {
            "" => None,
            t => {
                match time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                {
                    Ok(at) => Some(at),
                    Err(_) => {
                        problems.push(format!(
                            "cutover_at: '{t}' is not a date and time like 2027-01-15T18:00:00Z"
                        ));
                        None
                    }
                }
            }
        };
        let source_password = password("source_password", &mut problems);
        let target_password = password("target_password", &mut problems);
        if let Some(src) = &source {
            if let Some(first) = seen.get(src) {
                problems.push(format!(
                    "source_email {src} already appears on line {first}"
                ));
            } else {
                seen.insert(src.clone(), line);
            }
        }
        if !problems.is_empty() {
            errors.push(LineError {
                line,
                message: problems.join("; "),
            });
            continue;
        }
        if let (Some(source_email), Some(target_email)) = (source, target) {
            rows.push(CsvRow {
                line,
                source_email,
                target_email,
                display_name,
                source_password,
                target_password,
                priority,
                cutover_at,
            });
        }
    }
    if !errors.is_empty() {
        return Err(Ok(errors));
    }
    if rows.is_empty() {
        return Err(Ok(vec![LineError {
            line: 2,
            message: "the file has a header but no users".into(),
        }]));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(input: &[u8]) -> Vec<LineError> {
        match parse(input) {
            Err(Ok(e)) => e,
            other => panic!("expected line errors, got {other:?}"),
        }
    }

    #[test]
    fn a_cutover_column_gives_a_batch_its_time_or_a_clear_error() {
        let rows = parse(b"source_email,target_email,cutover_at\na@old.example,a@new.example,2027-01-15T18:00:00Z\nb@old.example,b@new.example,\n").unwrap();
        assert_eq!(
            rows[0].cutover_at.map(|t| t.unix_timestamp()),
            Some(1_800_036_000)
        );
        assert_eq!(rows[1].cutover_at, None, "empty keeps the user's time");
        let e =
            errs(b"source_email,target_email,cutover_at\na@old.example,a@new.example,15/01/2027\n");
        assert!(
            e[0].message
                .contains("cutover_at: '15/01/2027' is not a date and time"),
            "{e:?}"
        );
    }

    #[test]
    fn a_priority_column_gives_users_their_priority_or_a_clear_error() {
        let rows = parse(b"source_email,target_email,priority\na@old.example,a@new.example,9\nb@old.example,b@new.example,\n").unwrap();
        assert_eq!(rows[0].priority, Some(9));
        assert_eq!(rows[1].priority, None, "empty keeps the user's priority");
        let e = errs(b"source_email,target_email,priority\na@old.example,a@new.example,10\nb@old.example,b@new.example,high\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].message
                .contains("priority: '10' is not a whole number from 0 to 9"),
            "{e:?}"
        );
        assert!(e[1].message.contains("'high'"), "{e:?}");
    }

    #[test]
    fn parses_a_plain_file() {
        let rows = parse(b"source_email,target_email,display_name\nA@Old.example,a@new.example,Ann\nb@old.example,b@new.example,\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].source_email.as_str(), "a@old.example");
        assert_eq!(rows[0].display_name, "Ann");
        assert_eq!(rows[0].line, 2);
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn accepts_a_bom_and_semicolons_and_quoted_fields() {
        let input = "\u{feff}Source Email;Target-Email;display_name;source_password\n\
                     a@old.example;a@new.example;\"Doe; Jane\nsecond line\";\"p\"\"w;d\"\n\
                     b@old.example;b@new.example;\"Smith, John\";\n";
        let rows = parse(input.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].display_name, "Doe; Jane\nsecond line");
        assert_eq!(rows[0].source_password.as_ref().unwrap().expose(), "p\"w;d");
        assert_eq!(rows[1].display_name, "Smith, John");
        // The quoted newline makes the second record start on line 4.
        assert_eq!(rows[1].line, 4);
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let e = errs(b"source_email,target_email\nnot-an-address,a@new.example\nb@old.example,b@new.example\nb@old.example,c@new.example\n,\n c@old.example , \n");
        let lines: Vec<u64> = e.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 4, 6]);
        assert!(e[0].message.contains("source_email"));
        assert!(e[1].message.contains("line 3"));
        assert!(e[2].message.contains("target_email"));
    }

    #[test]
    fn missing_and_unknown_columns_are_line_1() {
        let e = errs(b"source_email,display_name,colour\na@b.example,A,red\n");
        assert!(e.iter().all(|e| e.line == 1));
        assert!(e.iter().any(|e| e.message.contains("target_email")));
        assert!(e.iter().any(|e| e.message.contains("colour")));
    }

    #[test]
    fn non_utf8_is_reported_by_line() {
        let e =
            errs(b"source_email,target_email,display_name\na@old.example,a@new.example,Ren\xe9\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].line, 2);
        assert!(e[0].message.contains("UTF-8"));
    }

    #[test]
    fn too_large_and_empty_files_are_refused_whole() {
        let big = vec![b'a'; CSV_MAX_BYTES + 1];
        assert_eq!(parse(&big).unwrap_err(), Err(CsvFileError::TooLarge));
        assert_eq!(parse(b"  \n").unwrap_err(), Err(CsvFileError::Empty));
    }

    #[test]
    fn a_header_without_rows_is_an_error() {
        let e = errs(b"source_email,target_email\n");
        assert!(e[0].message.contains("no users"));
    }

    #[test]
    fn too_many_fields_is_an_error() {
        let e = errs(b"source_email,target_email\na@old.example,a@new.example,extra\n");
        assert_eq!(e[0].line, 2);
    }
}
