//! The users CSV import (`domain::csv_import::parse`), fed arbitrary bytes and files built from
//! a pool of awkward fields: it never panics, every error names a line of the file, and every
//! row it accepts is one a user could have meant (valid addresses, a name without control
//! characters). Files of valid rows come back exactly as written.

use contract::limits::CSV_MAX_ROWS;
use domain::csv_import::{CsvRow, parse};
use domain::model::EmailAddress;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Either raw bytes or a file built from awkward parts.
#[derive(Debug, Clone)]
pub enum Input {
    Bytes(Vec<u8>),
    Built(Vec<u8>),
    /// Valid rows, and the file written from them.
    Valid(Vec<(String, String, String)>, Vec<u8>),
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ann@old.example".to_owned()),
        Just("Bob@New.Example".to_owned()),
        Just(" spaced@old.example ".to_owned()),
        Just("no-at-sign".to_owned()),
        Just("a@b".to_owned()),
        Just("\"quoted, with comma\"".to_owned()),
        Just("\"line\nbreak\"".to_owned()),
        Just("\"unterminated".to_owned()),
        Just("=HYPERLINK(\"http://x\")".to_owned()),
        Just("Zoë Ünïcødé".to_owned()),
        Just("tab\there".to_owned()),
        Just("nul\0byte".to_owned()),
        Just(String::new()),
        Just("x".repeat(300)),
        "[ -~]{0,20}",
        any::<String>().prop_map(|s| s.chars().take(24).collect()),
    ]
}

fn header() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("source_email,target_email,display_name".to_owned()),
        Just("source_email;target_email;display_name;source_password;target_password".to_owned()),
        Just("Source_Email,Target_Email".to_owned()),
        Just("\u{feff}source_email,target_email".to_owned()),
        Just("target_email,source_email,unknown_column".to_owned()),
        Just("email".to_owned()),
        Just(String::new()),
    ]
}

fn built() -> impl Strategy<Value = Vec<u8>> {
    let line = (
        prop::collection::vec(field(), 0..6),
        prop::sample::select(vec![",", ";", "\t"]),
    )
        .prop_map(|(fields, sep)| fields.join(sep));
    (
        header(),
        prop::collection::vec(line, 0..12),
        prop::sample::select(vec!["\n", "\r\n", "\r"]),
    )
        .prop_map(|(h, lines, eol)| {
            let mut text = h;
            for l in lines {
                text.push_str(eol);
                text.push_str(&l);
            }
            text.into_bytes()
        })
}

fn valid() -> impl Strategy<Value = Input> {
    let row = ("[a-z]{1,8}", "[a-z]{1,8}", "[A-Za-z ]{0,12}").prop_map(|(s, t, n)| {
        (
            format!("{s}@old.example"),
            format!("{t}@new.example"),
            n.trim().to_owned(),
        )
    });
    prop::collection::btree_map("[a-z]{1,8}", row, 1..10).prop_map(|rows| {
        // One row per source address: a file with one twice is an error by design.
        let rows: Vec<(String, String, String)> = rows
            .into_iter()
            .map(|(k, (_, t, n))| (format!("{k}@old.example"), t, n))
            .collect();
        let mut text = "source_email,target_email,display_name\n".to_owned();
        for (s, t, n) in &rows {
            text.push_str(&format!("{s},{t},{n}\n"));
        }
        Input::Valid(rows, text.into_bytes())
    })
}

pub fn strategy() -> impl Strategy<Value = Input> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512).prop_map(Input::Bytes),
        built().prop_map(Input::Built),
        valid(),
    ]
}

pub fn property(input: Input) -> Result<(), TestCaseError> {
    let bytes = match &input {
        Input::Bytes(b) | Input::Built(b) | Input::Valid(_, b) => b.clone(),
    };
    let lines = bytes.split(|b| *b == b'\n').count() as u64
        + bytes.iter().filter(|b| **b == b'\r').count() as u64;
    match parse(&bytes) {
        Ok(rows) => {
            prop_assert!(rows.len() <= CSV_MAX_ROWS);
            check_rows(&rows)?;
            if let Input::Valid(expected, _) = &input {
                let got: Vec<(String, String, String)> = rows
                    .iter()
                    .map(|r| {
                        (
                            r.source_email.to_string(),
                            r.target_email.to_string(),
                            r.display_name.clone(),
                        )
                    })
                    .collect();
                prop_assert_eq!(&got, expected, "valid rows come back as written");
            }
        }
        Err(Ok(errors)) => {
            prop_assert!(
                !matches!(input, Input::Valid(..)),
                "a valid file was refused: {errors:?}"
            );
            prop_assert!(!errors.is_empty(), "a refusal names at least one line");
            for e in &errors {
                prop_assert!(
                    e.line >= 1 && e.line <= lines + 1,
                    "line {} of {lines}",
                    e.line
                );
                prop_assert!(!e.message.is_empty());
            }
        }
        Err(Err(_)) => {
            prop_assert!(
                !matches!(input, Input::Valid(..)),
                "a valid file was refused"
            );
        }
    }
    Ok(())
}

fn check_rows(rows: &[CsvRow]) -> Result<(), TestCaseError> {
    let mut last = 0;
    for r in rows {
        prop_assert!(r.line > last, "rows in file order");
        last = r.line;
        for address in [&r.source_email, &r.target_email] {
            let again = EmailAddress::parse(address.as_str());
            prop_assert_eq!(
                again.as_ref(),
                Ok(address),
                "an accepted address parses to itself"
            );
        }
        prop_assert!(
            !r.display_name
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "no control characters in an accepted name: {:?}",
            r.display_name
        );
    }
    Ok(())
}
