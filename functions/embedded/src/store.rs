//! [`SqliteStore`]: the [`Store`] port on an SQLite file.
//!
//! Every entity is kept as its JSON document plus the few columns that are looked up, sorted
//! or version-checked, so a new optional field in the model needs no migration. Version checks
//! are a single `UPDATE … WHERE version = ?`: it either changes one row or none (a conflict),
//! which is atomic without any explicit locking.

use async_trait::async_trait;
use contract::{SkippedItem, UserState};
use domain::audit::AuditEntry;
use domain::error::StoreError;
use domain::model::{
    AdminSession, EmailAddress, FolderState, Invite, MailUser, Project, ProjectId, Sealed,
    UserEvent, UserId, UserQuery,
};
use domain::ports::Store;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::sqlite::{self, OpenError, Schema};

/// Read connections of a file database. Two cores and short reads: a few are plenty for the
/// status page's read rate while the writer commits.
const READERS: usize = 4;

const SCHEMA: Schema = Schema {
    name: "mailferry store",
    // "MFST"
    application_id: 0x4D46_5354,
    steps: &[
        // 1: the initial schema. There are deliberately no foreign keys from the per-user tables
        // to `users`: the DynamoDB adapter cannot enforce them, and both adapters must accept the
        // same writes (conformance suite). `delete_user` removes the children explicitly.
        r#"
        CREATE TABLE projects (
            id TEXT PRIMARY KEY NOT NULL,
            created_at INTEGER NOT NULL,
            version INTEGER NOT NULL,
            doc TEXT NOT NULL
        );
        CREATE TABLE users (
            id TEXT PRIMARY KEY NOT NULL,
            project_id TEXT NOT NULL,
            source_email TEXT NOT NULL,
            target_email TEXT NOT NULL,
            display_name_lc TEXT NOT NULL,
            state TEXT NOT NULL,
            version INTEGER NOT NULL,
            doc TEXT NOT NULL,
            UNIQUE (project_id, source_email)
        );
        CREATE INDEX users_by_state ON users (project_id, state, source_email);
        CREATE TABLE credentials (
            user_id TEXT PRIMARY KEY NOT NULL,
            sealed BLOB NOT NULL
        );
        CREATE TABLE invites (
            token_hash TEXT PRIMARY KEY NOT NULL,
            user_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            doc TEXT NOT NULL
        );
        CREATE INDEX invites_by_user ON invites (user_id);
        CREATE TABLE settings (
            key TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL
        );
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY NOT NULL,
            doc TEXT NOT NULL
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id TEXT NOT NULL,
            at INTEGER NOT NULL,
            doc TEXT NOT NULL
        );
        CREATE INDEX events_by_user ON events (user_id, at, id);
        CREATE TABLE folders (
            user_id TEXT NOT NULL,
            source_name TEXT NOT NULL,
            version INTEGER NOT NULL,
            doc TEXT NOT NULL,
            PRIMARY KEY (user_id, source_name)
        );
        "#,
        // 2: a folder's skipped messages and copy-map pages, apart from its checkpoint.
        r#"
        CREATE TABLE folder_skipped (
            user_id TEXT NOT NULL,
            source_name TEXT NOT NULL,
            uid INTEGER NOT NULL,
            doc TEXT NOT NULL,
            PRIMARY KEY (user_id, source_name, uid)
        ) WITHOUT ROWID;
        CREATE TABLE folder_copy_pages (
            user_id TEXT NOT NULL,
            source_name TEXT NOT NULL,
            page INTEGER NOT NULL,
            doc TEXT NOT NULL,
            PRIMARY KEY (user_id, source_name, page)
        ) WITHOUT ROWID;
        "#,
        // 3: the audit trail, append only; '' is the console-wide trail.
        r#"
        CREATE TABLE audit (
            project_id TEXT NOT NULL,
            id TEXT NOT NULL,
            doc TEXT NOT NULL,
            PRIMARY KEY (project_id, id)
        ) WITHOUT ROWID;
        "#,
        // 4: the limiter's slots (`limiter.rs`): a row per slot taken, `until` in epoch
        // seconds; a row whose time ended is a free slot.
        r#"
        CREATE TABLE limiter_slots (
            key TEXT NOT NULL,
            slot INTEGER NOT NULL,
            holder TEXT NOT NULL,
            until INTEGER NOT NULL,
            PRIMARY KEY (key, slot)
        ) WITHOUT ROWID;
        "#,
        // 5: the limiter's lines (a place per waiting user, kept until `until`) and usage per
        // key and hour (`hour` in epoch seconds), the bytes of daily budgets.
        r#"
        CREATE TABLE limiter_lines (
            key TEXT NOT NULL,
            rank TEXT NOT NULL,
            until INTEGER NOT NULL,
            PRIMARY KEY (key, rank)
        ) WITHOUT ROWID;
        CREATE TABLE limiter_usage (
            key TEXT NOT NULL,
            hour INTEGER NOT NULL,
            amount INTEGER NOT NULL,
            PRIMARY KEY (key, hour)
        ) WITHOUT ROWID;
        "#,
    ],
};

/// The [`Store`] on SQLite: one writer connection and, for a file, a small pool of read-only
/// connections (WAL lets them read while the writer commits). Every call runs on tokio's
/// blocking pool, never on the async workers. Cloning is cheap and shares the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Mutex<Connection>,
    /// Empty for an in-memory database: there, reads use the writer connection.
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    label: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("db", &self.inner.label)
            .finish()
    }
}

impl SqliteStore {
    /// Rows inserted, updated or deleted through this store since it was opened: what the
    /// copy benchmark reports as the state writes a pass makes (each is one DynamoDB write
    /// request in AWS mode).
    pub fn rows_written(&self) -> u64 {
        lock(&self.inner.writer).total_changes()
    }

    /// Opens (creating if needed) the database file at `path` and brings its schema up to date.
    /// This does blocking I/O: call it at startup, before serving.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        let label = path.display().to_string();
        let fail =
            |e: OpenError| StoreError::Backend(format!("cannot open the store at {label}: {e}"));
        let mut writer = sqlite::open_file(path).map_err(fail)?;
        sqlite::migrate(&mut writer, &SCHEMA).map_err(fail)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = sqlite::open_file(path).map_err(fail)?;
            // A reader never writes; this makes a mistake fail loudly instead of bypassing the
            // writer's mutex.
            reader
                .pragma_update(None, "query_only", "ON")
                .map_err(|e| fail(e.into()))?;
            readers.push(Mutex::new(reader));
        }
        Ok(Self::from_parts(writer, readers, label))
    }

    /// A private in-memory store (one connection) for tests and throw-away runs.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let fail =
            |e: OpenError| StoreError::Backend(format!("cannot open an in-memory store: {e}"));
        let mut writer = sqlite::open_memory().map_err(fail)?;
        sqlite::migrate(&mut writer, &SCHEMA).map_err(fail)?;
        Ok(Self::from_parts(writer, Vec::new(), ":memory:".into()))
    }

    fn from_parts(writer: Connection, readers: Vec<Mutex<Connection>>, label: String) -> Self {
        SqliteStore {
            inner: Arc::new(Inner {
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
                label,
            }),
        }
    }

    /// The schema version of the open database (the number of migration steps applied).
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(|c| {
            let v: i64 = c
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(backend)?;
            u32::try_from(v).map_err(|_| StoreError::Backend(format!("invalid schema version {v}")))
        })
        .await
    }

    /// The number of migration steps this build knows.
    pub fn latest_schema_version() -> u32 {
        u32::try_from(SCHEMA.steps.len()).unwrap_or(u32::MAX)
    }

    /// Copies the write-ahead log into the main file. Not needed for correctness; useful before
    /// a backup of the single file.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        self.write(|c| {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let conn = inner.reader();
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }

    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let mut conn = lock(&inner.writer);
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

impl Inner {
    /// A free read connection if there is one, else waits for one (round robin). Falls back to
    /// the writer for an in-memory database.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        if self.readers.is_empty() {
            return lock(&self.writer);
        }
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            if let Ok(guard) = self.readers[(start + i) % n].try_lock() {
                return guard;
            }
        }
        lock(&self.readers[start])
    }
}

/// A panic while a connection was held cannot leave a transaction open (rusqlite rolls back on
/// drop), so a poisoned mutex still guards a usable connection.
fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The audit table's key of a project's trail; the console-wide trail is ''.
fn audit_trail(project: Option<ProjectId>) -> String {
    project.map(|p| p.to_string()).unwrap_or_default()
}

pub(crate) fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {e}"))
}

/// Maps a taken key or unique pair to `AlreadyExists`, anything else to a backend error.
fn insert_error(e: rusqlite::Error) -> StoreError {
    if sqlite::is_unique_violation(&e) {
        StoreError::AlreadyExists
    } else {
        backend(e)
    }
}

fn to_doc<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode a record: {e}")))
}

fn from_doc<T: DeserializeOwned>(doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc)
        .map_err(|e| StoreError::Backend(format!("cannot decode a stored record: {e}")))
}

fn version(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("version {v} is out of range")))
}

fn unix_nanos(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(if t.unix_timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// Runs a single-row document query.
fn get_doc<T: DeserializeOwned>(
    c: &Connection,
    sql: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    let doc: Option<String> = c
        .prepare_cached(sql)
        .map_err(backend)?
        .query_row([key], |r| r.get(0))
        .optional()
        .map_err(backend)?;
    doc.as_deref().map(from_doc).transpose()
}

/// Runs a version-checked update; no changed row means the stored version differs (or the row
/// is gone), which is a conflict either way.
fn checked(changed: usize) -> Result<(), StoreError> {
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// The WHERE clause shared by the page and the total of `list_users`. `?2` is the state or
/// NULL, `?3` the lower-cased search text or NULL. `instr` instead of LIKE: the search text is
/// taken literally, `%` and `_` included.
const USER_FILTER: &str = "project_id = ?1 AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL \
     OR instr(source_email, ?3) > 0 OR instr(target_email, ?3) > 0 OR instr(display_name_lc, ?3) > 0)";

#[async_trait]
impl Store for SqliteStore {
    async fn insert_project(&self, project: &Project) -> Result<(), StoreError> {
        let id = project.id.to_string();
        let created = unix_nanos(project.created_at);
        let ver = version(project.version)?;
        let doc = to_doc(project)?;
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO projects (id, created_at, version, doc) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(backend)?
            .execute(params![id, created, ver, doc])
            .map_err(insert_error)?;
            Ok(())
        })
        .await
    }

    async fn update_project(
        &self,
        project: &Project,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let id = project.id.to_string();
        let ver = version(project.version)?;
        let expected = version(expected_version)?;
        let doc = to_doc(project)?;
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE projects SET version = ?2, doc = ?3 WHERE id = ?1 AND version = ?4",
                )
                .map_err(backend)?
                .execute(params![id, ver, doc, expected])
                .map_err(backend)?;
            checked(n)
        })
        .await
    }

    async fn get_project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        let id = id.to_string();
        self.read(move |c| get_doc(c, "SELECT doc FROM projects WHERE id = ?1", &id))
            .await
    }

    async fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT doc FROM projects ORDER BY created_at, id")
                .map_err(backend)?;
            let docs = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            docs.map(|d| from_doc(&d.map_err(backend)?)).collect()
        })
        .await
    }

    async fn insert_user(&self, user: &MailUser) -> Result<(), StoreError> {
        let row = UserRow::new(user)?;
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO users (id, project_id, source_email, target_email, display_name_lc, state, version, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(backend)?
            .execute(params![
                row.id,
                row.project_id,
                row.source_email,
                row.target_email,
                row.display_name_lc,
                row.state,
                row.version,
                row.doc
            ])
            .map_err(insert_error)?;
            Ok(())
        })
        .await
    }

    async fn update_user(&self, user: &MailUser, expected_version: u64) -> Result<(), StoreError> {
        let row = UserRow::new(user)?;
        let expected = version(expected_version)?;
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE users SET project_id = ?2, source_email = ?3, target_email = ?4, display_name_lc = ?5, \
                     state = ?6, version = ?7, doc = ?8 WHERE id = ?1 AND version = ?9",
                )
                .map_err(backend)?
                .execute(params![
                    row.id,
                    row.project_id,
                    row.source_email,
                    row.target_email,
                    row.display_name_lc,
                    row.state,
                    row.version,
                    row.doc,
                    expected
                ])
                // Moving a user onto a source address another user of the project has.
                .map_err(insert_error)?;
            checked(n)
        })
        .await
    }

    async fn get_user(&self, id: UserId) -> Result<Option<MailUser>, StoreError> {
        let id = id.to_string();
        self.read(move |c| get_doc(c, "SELECT doc FROM users WHERE id = ?1", &id))
            .await
    }

    async fn find_user_by_source(
        &self,
        project: ProjectId,
        source_email: &EmailAddress,
    ) -> Result<Option<MailUser>, StoreError> {
        let project = project.to_string();
        let email = source_email.as_str().to_owned();
        self.read(move |c| {
            let doc: Option<String> = c
                .prepare_cached("SELECT doc FROM users WHERE project_id = ?1 AND source_email = ?2")
                .map_err(backend)?
                .query_row(params![project, email], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            doc.as_deref().map(from_doc).transpose()
        })
        .await
    }

    /// A `limit` of 0 means no limit.
    async fn list_users(
        &self,
        project: ProjectId,
        query: &UserQuery,
    ) -> Result<(Vec<MailUser>, u64), StoreError> {
        let project = project.to_string();
        let state = query.state.map(UserState::as_str);
        let search = query.search.as_ref().map(|s| s.to_lowercase());
        let limit = if query.limit == 0 {
            -1
        } else {
            i64::try_from(query.limit).unwrap_or(i64::MAX)
        };
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        self.read(move |c| {
            // One snapshot for the page and the total, so they agree.
            let tx = c.unchecked_transaction().map_err(backend)?;
            let users = {
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "SELECT doc FROM users WHERE {USER_FILTER} ORDER BY source_email LIMIT ?4 OFFSET ?5"
                    ))
                    .map_err(backend)?;
                let docs = stmt
                    .query_map(params![project, state, search, limit, offset], |r| r.get::<_, String>(0))
                    .map_err(backend)?;
                docs.map(|d| from_doc(&d.map_err(backend)?)).collect::<Result<Vec<MailUser>, _>>()?
            };
            let total: i64 = tx
                .prepare_cached(&format!("SELECT count(*) FROM users WHERE {USER_FILTER}"))
                .map_err(backend)?
                .query_row(params![project, state, search], |r| r.get(0))
                .map_err(backend)?;
            tx.finish().map_err(backend)?;
            Ok((users, u64::try_from(total).unwrap_or(0)))
        })
        .await
    }

    async fn count_users_by_state(
        &self,
        project: ProjectId,
    ) -> Result<Vec<(UserState, u64)>, StoreError> {
        let project = project.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT state, count(*) FROM users WHERE project_id = ?1 GROUP BY state ORDER BY state")
                .map_err(backend)?;
            let rows = stmt
                .query_map([project], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(backend)?;
            rows.map(|row| {
                let (state, n) = row.map_err(backend)?;
                let state = UserState::parse(&state)
                    .ok_or_else(|| StoreError::Backend(format!("unknown user state '{state}' in the store")))?;
                Ok((state, u64::try_from(n).unwrap_or(0)))
            })
            .collect()
        })
        .await
    }

    async fn delete_user(&self, id: UserId) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            for sql in [
                "DELETE FROM credentials WHERE user_id = ?1",
                "DELETE FROM invites WHERE user_id = ?1",
                "DELETE FROM folders WHERE user_id = ?1",
                "DELETE FROM folder_skipped WHERE user_id = ?1",
                "DELETE FROM folder_copy_pages WHERE user_id = ?1",
                "DELETE FROM events WHERE user_id = ?1",
                "DELETE FROM users WHERE id = ?1",
            ] {
                tx.prepare_cached(sql)
                    .map_err(backend)?
                    .execute([&id])
                    .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn put_credentials(&self, user: UserId, sealed: &Sealed) -> Result<(), StoreError> {
        let user = user.to_string();
        let bytes = sealed.0.clone();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO credentials (user_id, sealed) VALUES (?1, ?2) \
                 ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed",
            )
            .map_err(backend)?
            .execute(params![user, bytes])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_credentials(&self, user: UserId) -> Result<Option<Sealed>, StoreError> {
        let user = user.to_string();
        self.read(move |c| {
            let bytes: Option<Vec<u8>> = c
                .prepare_cached("SELECT sealed FROM credentials WHERE user_id = ?1")
                .map_err(backend)?
                .query_row([user], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            Ok(bytes.map(Sealed))
        })
        .await
    }

    async fn delete_credentials(&self, user: UserId) -> Result<(), StoreError> {
        let user = user.to_string();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM credentials WHERE user_id = ?1")
                .map_err(backend)?
                .execute([user])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn insert_invite(&self, invite: &Invite) -> Result<(), StoreError> {
        let hash = invite.token_hash.clone();
        let user = invite.user_id.to_string();
        let ver = version(invite.version)?;
        let doc = to_doc(invite)?;
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO invites (token_hash, user_id, version, doc) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(backend)?
            .execute(params![hash, user, ver, doc])
            .map_err(insert_error)?;
            Ok(())
        })
        .await
    }

    async fn get_invite(&self, token_hash: &str) -> Result<Option<Invite>, StoreError> {
        let hash = token_hash.to_owned();
        self.read(move |c| get_doc(c, "SELECT doc FROM invites WHERE token_hash = ?1", &hash))
            .await
    }

    async fn update_invite(
        &self,
        invite: &Invite,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let hash = invite.token_hash.clone();
        let user = invite.user_id.to_string();
        let ver = version(invite.version)?;
        let expected = version(expected_version)?;
        let doc = to_doc(invite)?;
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE invites SET user_id = ?2, version = ?3, doc = ?4 WHERE token_hash = ?1 AND version = ?5",
                )
                .map_err(backend)?
                .execute(params![hash, user, ver, doc, expected])
                .map_err(backend)?;
            checked(n)
        })
        .await
    }

    async fn delete_invites_of_user(&self, user: UserId) -> Result<(), StoreError> {
        let user = user.to_string();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM invites WHERE user_id = ?1")
                .map_err(backend)?
                .execute([user])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT value FROM settings WHERE key = ?1")
                .map_err(backend)?
                .query_row([key], |r| r.get(0))
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        let value = value.to_owned();
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .map_err(backend)?
            .execute(params![key, value])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let key = key.to_owned();
        let value = value.to_owned();
        self.write(move |c| {
            let n = c
                .prepare_cached("INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING")
                .map_err(backend)?
                .execute(params![key, value])
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn put_session(&self, session: &AdminSession) -> Result<(), StoreError> {
        let hash = session.token_hash.clone();
        let doc = to_doc(session)?;
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO sessions (token_hash, doc) VALUES (?1, ?2) ON CONFLICT (token_hash) DO UPDATE SET doc = excluded.doc",
            )
            .map_err(backend)?
            .execute(params![hash, doc])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<AdminSession>, StoreError> {
        let hash = token_hash.to_owned();
        self.read(move |c| get_doc(c, "SELECT doc FROM sessions WHERE token_hash = ?1", &hash))
            .await
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let hash = token_hash.to_owned();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM sessions WHERE token_hash = ?1")
                .map_err(backend)?
                .execute([hash])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn append_event(&self, event: &UserEvent) -> Result<(), StoreError> {
        let user = event.user_id.to_string();
        let at = unix_nanos(event.at);
        let doc = to_doc(event)?;
        self.write(move |c| {
            c.prepare_cached("INSERT INTO events (user_id, at, doc) VALUES (?1, ?2, ?3)")
                .map_err(backend)?
                .execute(params![user, at, doc])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    /// Newest first by the event's time; events with the same time newest-appended first.
    async fn list_events(&self, user: UserId, limit: usize) -> Result<Vec<UserEvent>, StoreError> {
        let user = user.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT doc FROM events WHERE user_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2",
                )
                .map_err(backend)?;
            let docs = stmt
                .query_map(params![user, limit], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            docs.map(|d| from_doc(&d.map_err(backend)?)).collect()
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let project = audit_trail(entry.project_id);
        let id = entry.id.clone();
        let doc = to_doc(entry)?;
        self.write(move |c| {
            c.prepare_cached("INSERT INTO audit (project_id, id, doc) VALUES (?1, ?2, ?3)")
                .map_err(backend)?
                .execute(params![project, id, doc])
                .map_err(insert_error)?;
            Ok(())
        })
        .await
    }

    async fn list_audit(
        &self,
        project: Option<ProjectId>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let project = audit_trail(project);
        // Every id is below the highest printable character: no cursor means "from the newest".
        let before = before.unwrap_or("~").to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT doc FROM audit WHERE project_id = ?1 AND id < ?2 \
                     ORDER BY id DESC LIMIT ?3",
                )
                .map_err(backend)?;
            let docs = stmt
                .query_map(params![project, before, limit], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            docs.map(|d| from_doc(&d.map_err(backend)?)).collect()
        })
        .await
    }

    async fn put_folder(
        &self,
        folder: &FolderState,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError> {
        let user = folder.user_id.to_string();
        let name = folder.source_name.clone();
        let ver = version(folder.version)?;
        let expected = expected_version.map(version).transpose()?;
        let doc = to_doc(folder)?;
        self.write(move |c| match expected {
            None => {
                c.prepare_cached("INSERT INTO folders (user_id, source_name, version, doc) VALUES (?1, ?2, ?3, ?4)")
                    .map_err(backend)?
                    .execute(params![user, name, ver, doc])
                    .map_err(insert_error)?;
                Ok(())
            }
            Some(expected) => {
                let n = c
                    .prepare_cached(
                        "UPDATE folders SET version = ?3, doc = ?4 WHERE user_id = ?1 AND source_name = ?2 AND version = ?5",
                    )
                    .map_err(backend)?
                    .execute(params![user, name, ver, doc, expected])
                    .map_err(backend)?;
                checked(n)
            }
        })
        .await
    }

    async fn get_folder(
        &self,
        user: UserId,
        source_name: &str,
    ) -> Result<Option<FolderState>, StoreError> {
        let user = user.to_string();
        let name = source_name.to_owned();
        self.read(move |c| {
            let doc: Option<String> = c
                .prepare_cached("SELECT doc FROM folders WHERE user_id = ?1 AND source_name = ?2")
                .map_err(backend)?
                .query_row(params![user, name], |r| r.get(0))
                .optional()
                .map_err(backend)?;
            doc.as_deref().map(from_doc).transpose()
        })
        .await
    }

    /// Ordered by source folder name.
    async fn list_folders(&self, user: UserId) -> Result<Vec<FolderState>, StoreError> {
        let user = user.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT doc FROM folders WHERE user_id = ?1 ORDER BY source_name")
                .map_err(backend)?;
            let docs = stmt
                .query_map([user], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            docs.map(|d| from_doc(&d.map_err(backend)?)).collect()
        })
        .await
    }

    async fn put_skipped(
        &self,
        user: UserId,
        folder: &str,
        items: &[SkippedItem],
    ) -> Result<(), StoreError> {
        let (user, folder) = (user.to_string(), folder.to_owned());
        let rows: Vec<(u32, String)> = items
            .iter()
            .map(|i| Ok((i.uid, to_doc(i)?)))
            .collect::<Result<_, StoreError>>()?;
        self.write(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO folder_skipped (user_id, source_name, uid, doc) VALUES (?1, ?2, ?3, ?4)",
                    )
                    .map_err(backend)?;
                for (uid, doc) in rows {
                    stmt.execute(params![user, folder, uid, doc])
                        .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn list_skipped(
        &self,
        user: UserId,
        folder: &str,
        after: u32,
        limit: usize,
    ) -> Result<Vec<SkippedItem>, StoreError> {
        let (user, folder) = (user.to_string(), folder.to_owned());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT doc FROM folder_skipped WHERE user_id = ?1 AND source_name = ?2 AND uid > ?3 ORDER BY uid LIMIT ?4",
                )
                .map_err(backend)?;
            let docs = stmt
                .query_map(params![user, folder, after, limit], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            docs.map(|d| from_doc(&d.map_err(backend)?)).collect()
        })
        .await
    }

    async fn clear_skipped(&self, user: UserId, folder: &str) -> Result<(), StoreError> {
        self.delete_folder_rows("folder_skipped", user, folder)
            .await
    }

    async fn put_copy_page(
        &self,
        user: UserId,
        folder: &str,
        page: u32,
        runs: &[[u32; 3]],
    ) -> Result<(), StoreError> {
        let (user, folder) = (user.to_string(), folder.to_owned());
        let doc = to_doc(&runs)?;
        self.write(move |c| {
            c.prepare_cached(
                "INSERT OR REPLACE INTO folder_copy_pages (user_id, source_name, page, doc) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(backend)?
            .execute(params![user, folder, page, doc])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn list_copy_pages(
        &self,
        user: UserId,
        folder: &str,
    ) -> Result<Vec<(u32, Vec<[u32; 3]>)>, StoreError> {
        let (user, folder) = (user.to_string(), folder.to_owned());
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT page, doc FROM folder_copy_pages WHERE user_id = ?1 AND source_name = ?2 ORDER BY page",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![user, folder], |r| {
                    Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(backend)?;
            rows.map(|row| {
                let (page, doc) = row.map_err(backend)?;
                Ok((page, from_doc(&doc)?))
            })
            .collect()
        })
        .await
    }

    async fn clear_copy_pages(&self, user: UserId, folder: &str) -> Result<(), StoreError> {
        self.delete_folder_rows("folder_copy_pages", user, folder)
            .await
    }
}

impl SqliteStore {
    /// Deletes a folder's rows of one of the side tables.
    async fn delete_folder_rows(
        &self,
        table: &'static str,
        user: UserId,
        folder: &str,
    ) -> Result<(), StoreError> {
        let (user, folder) = (user.to_string(), folder.to_owned());
        self.write(move |c| {
            c.prepare_cached(&format!(
                "DELETE FROM {table} WHERE user_id = ?1 AND source_name = ?2"
            ))
            .map_err(backend)?
            .execute(params![user, folder])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }
}

/// A user's indexed columns and document, prepared before the blocking call.
struct UserRow {
    id: String,
    project_id: String,
    source_email: String,
    target_email: String,
    display_name_lc: String,
    state: &'static str,
    version: i64,
    doc: String,
}

impl UserRow {
    fn new(user: &MailUser) -> Result<Self, StoreError> {
        Ok(UserRow {
            id: user.id.to_string(),
            project_id: user.project_id.to_string(),
            source_email: user.source_email.as_str().to_owned(),
            target_email: user.target_email.as_str().to_owned(),
            // Lower-cased here (Unicode-aware) rather than with SQLite's ASCII-only lower().
            display_name_lc: user.display_name.to_lowercase(),
            state: user.state.as_str(),
            version: version(user.version)?,
            doc: to_doc(user)?,
        })
    }
}
