//! What the SQLite store and the SQLite queue share: connection settings and schema migrations
//! keyed by `PRAGMA user_version`.

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// How long a connection waits for another process's lock before reporting `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a database could not be opened or migrated. The adapters turn it into their port's
/// backend error; the text names the file but never any stored value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Schema(String),
    #[error("{0}")]
    Io(String),
}

/// Opens a read-write connection (creating the file and its folder) with the settings every
/// connection of mailferry uses.
pub(crate) fn open_file(path: &Path) -> Result<Connection, OpenError> {
    create_private(path)
        .map_err(|e| OpenError::Io(format!("cannot create {}: {e}", path.display())))?;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    Ok(conn)
}

/// Creates a missing database file empty with mode 0600 before SQLite opens it: the file holds
/// sealed credentials and token hashes, and SQLite gives its `-wal` and `-shm` files the main
/// file's permissions. An existing file is left as it is.
fn create_private(path: &Path) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens a private in-memory database.
pub(crate) fn open_memory() -> Result<Connection, OpenError> {
    let conn = Connection::open_in_memory()?;
    configure(&conn)?;
    Ok(conn)
}

/// WAL lets readers run while the writer commits; `synchronous=NORMAL` is durable against
/// process crashes in WAL mode and only risks the last commits on power loss, which the
/// at-least-once queue and the version-checked writes tolerate.
fn configure(conn: &Connection) -> Result<(), OpenError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    // An in-memory database reports "memory": WAL does not apply there.
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        return Err(OpenError::Schema(format!(
            "the database refused WAL mode (journal_mode={mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// One component's schema: an `application_id` that marks its files (so the store never
/// migrates a queue file or the other way round) and the migration steps, in order. Step `i`
/// brings `user_version` from `i` to `i + 1`; steps are never edited once released, only
/// appended.
pub(crate) struct Schema {
    pub name: &'static str,
    pub application_id: i32,
    pub steps: &'static [&'static str],
}

/// Applies the missing steps, each in its own immediate transaction together with the new
/// `user_version`, so a crash leaves the file at a whole step. Re-reading the version inside
/// the transaction makes two processes migrating the same file at once harmless.
pub(crate) fn migrate(conn: &mut Connection, schema: &Schema) -> Result<(), OpenError> {
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if app_id != 0 && app_id != schema.application_id {
        return Err(OpenError::Schema(format!(
            "this database file does not belong to the {} (application_id {app_id:#x}); use a separate file",
            schema.name
        )));
    }
    let target = schema.steps.len();
    let current = user_version(conn)?;
    if current > target {
        return Err(OpenError::Schema(format!(
            "the {} database is at schema version {current}, newer than this program's {target}",
            schema.name
        )));
    }
    if app_id == 0 && current == 0 && has_foreign_tables(conn)? {
        return Err(OpenError::Schema(format!(
            "this database file already holds other tables; the {} needs its own file",
            schema.name
        )));
    }
    for (i, step) in schema.steps.iter().enumerate().skip(current) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if user_version(&tx)? > i {
            continue;
        }
        tx.execute_batch(step)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )?;
        tx.pragma_update(None, "application_id", schema.application_id)?;
        tx.commit()?;
    }
    Ok(())
}

fn user_version(conn: &Connection) -> Result<usize, OpenError> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    usize::try_from(v).map_err(|_| OpenError::Schema(format!("invalid schema version {v}")))
}

fn has_foreign_tables(conn: &Connection) -> Result<bool, OpenError> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// True when the error is a violated PRIMARY KEY or UNIQUE constraint: a taken key.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// Unix time in milliseconds of the wall clock (survives restarts, unlike `Instant`).
pub(crate) fn now_millis() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
