//! [`SqliteQueue`]: a durable at-least-once [`Queue`] in SQLite with SQS semantics.
//!
//! A message is a row with `visible_at` (unix milliseconds). `receive` claims visible rows in
//! one immediate transaction: it bumps `receive_count`, pushes `visible_at` past the visibility
//! timeout and gives the row a fresh random receipt. Two receivers therefore never hold the same
//! message at the same time, and a worker that dies simply lets the timeout run out.
//!
//! Receipts: only the receipt of the latest receive is valid. `ack` or `retry_later` with a
//! stale receipt (the message was received again since, acked already, or dead-lettered) does
//! nothing and returns `Ok`: the caller's work was at-least-once anyway, and whoever holds the
//! current receipt decides. (SQS differs in detail: it may honour an old receipt; the
//! conformance suite requires neither.)
//!
//! Dead letters: a message that was already received `max_receives` times is, on the next
//! receive that would deliver it, marked dead instead of delivered (like an SQS redrive policy
//! with `maxReceiveCount`). Dead messages stay in the file until purged; `dead_letters` reads
//! them without removing them.

use async_trait::async_trait;
use contract::jobs::Job;
use domain::error::QueueError;
use domain::ports::{Delivery, Queue};
use rusqlite::{Connection, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::sqlite::{self, OpenError, Schema, millis, now_millis};

const SCHEMA: Schema = Schema {
    name: "mailferry queue",
    // "MFQU"
    application_id: 0x4D46_5155,
    steps: &[
        r#"
        CREATE TABLE messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            body TEXT NOT NULL,
            sent_at INTEGER NOT NULL,
            visible_at INTEGER NOT NULL,
            receive_count INTEGER NOT NULL DEFAULT 0,
            receipt TEXT UNIQUE,
            dead_at INTEGER
        );
        CREATE INDEX messages_ready ON messages (visible_at, seq) WHERE dead_at IS NULL;
        CREATE INDEX messages_dead ON messages (dead_at, seq) WHERE dead_at IS NOT NULL;
        "#,
        // Whether a receiver holds the message (received, neither acked nor handed back with
        // `retry_later`): what a restarted process takes back from its dead predecessor.
        r#"
        ALTER TABLE messages ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
        "#,
    ],
};

/// The durable local queue. One connection behind a mutex: queue operations are short and
/// every one of them writes. Calls run on tokio's blocking pool. Cloning shares the queue.
#[derive(Clone)]
pub struct SqliteQueue {
    conn: Arc<Mutex<Connection>>,
    max_receives: u32,
    label: Arc<str>,
}

impl std::fmt::Debug for SqliteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteQueue")
            .field("db", &self.label)
            .field("max_receives", &self.max_receives)
            .finish()
    }
}

impl SqliteQueue {
    /// Opens (creating if needed) the queue file at `path`. The queue needs its own file, not the
    /// store's: each keeps its own schema version. A message is delivered at most `max_receives`
    /// times (at least 1) before it becomes a dead letter. Blocking I/O: call at startup.
    pub fn open(path: impl AsRef<Path>, max_receives: u32) -> Result<Self, QueueError> {
        let path = path.as_ref();
        let label = path.display().to_string();
        let fail =
            |e: OpenError| QueueError::Backend(format!("cannot open the queue at {label}: {e}"));
        let mut conn = sqlite::open_file(path).map_err(fail)?;
        sqlite::migrate(&mut conn, &SCHEMA).map_err(fail)?;
        Ok(Self::from_conn(conn, max_receives, label))
    }

    /// A private in-memory queue for tests; nothing survives the process.
    pub fn open_in_memory(max_receives: u32) -> Result<Self, QueueError> {
        let fail =
            |e: OpenError| QueueError::Backend(format!("cannot open an in-memory queue: {e}"));
        let mut conn = sqlite::open_memory().map_err(fail)?;
        sqlite::migrate(&mut conn, &SCHEMA).map_err(fail)?;
        Ok(Self::from_conn(conn, max_receives, ":memory:".into()))
    }

    /// Queue rows inserted (sent), updated (received, retried) or deleted (acknowledged) since
    /// the queue was opened: one SQS request each in AWS mode.
    pub fn operations(&self) -> u64 {
        lock(&self.conn).total_changes()
    }

    fn from_conn(conn: Connection, max_receives: u32, label: String) -> Self {
        SqliteQueue {
            conn: Arc::new(Mutex::new(conn)),
            max_receives: max_receives.max(1),
            label: label.into(),
        }
    }

    /// Messages not yet acked and not dead: visible, delayed or in flight.
    pub async fn pending_count(&self) -> Result<u64, QueueError> {
        self.count("SELECT count(*) FROM messages WHERE dead_at IS NULL")
            .await
    }

    /// Messages moved to the dead-letter state.
    pub async fn dead_letter_count(&self) -> Result<u64, QueueError> {
        self.count("SELECT count(*) FROM messages WHERE dead_at IS NOT NULL")
            .await
    }

    /// Deletes all dead letters (after an operator has looked at them); returns how many.
    pub async fn purge_dead_letters(&self) -> Result<u64, QueueError> {
        self.run(|c| {
            let n = c
                .execute("DELETE FROM messages WHERE dead_at IS NOT NULL", [])
                .map_err(backend)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    /// Makes every message a receiver still holds visible at once. The local queue has one
    /// process receiving from it; when that process starts, whatever is held was held by a
    /// process that died (killed, crashed, the machine restarted), and would otherwise wait out
    /// its visibility timeout. Messages waiting for a `retry_later` delay keep their delay.
    /// Returns how many were taken back.
    pub async fn release_held(&self) -> Result<u64, QueueError> {
        self.run(|c| {
            let n = c
                .execute(
                    "UPDATE messages SET visible_at = ?1, held = 0, receipt = NULL \
                     WHERE held = 1 AND dead_at IS NULL",
                    [now_millis()],
                )
                .map_err(backend)?;
            Ok(n as u64)
        })
        .await
    }

    async fn count(&self, sql: &'static str) -> Result<u64, QueueError> {
        self.run(move |c| {
            let n: i64 = c
                .prepare_cached(sql)
                .map_err(backend)?
                .query_row([], |r| r.get(0))
                .map_err(backend)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn run<T, F>(&self, f: F) -> Result<T, QueueError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, QueueError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = lock(&conn);
            f(&mut guard)
        })
        .await
        .map_err(|e| QueueError::Backend(format!("queue task failed: {e}")))?
    }
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn backend(e: rusqlite::Error) -> QueueError {
    QueueError::Backend(format!("sqlite: {e}"))
}

fn encode(job: &Job) -> Result<String, QueueError> {
    serde_json::to_string(job).map_err(|e| QueueError::Backend(format!("cannot encode a job: {e}")))
}

fn insert(c: &Connection, body: &str, visible_at: i64, now: i64) -> Result<(), QueueError> {
    c.prepare_cached(
        "INSERT INTO messages (id, body, sent_at, visible_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .map_err(backend)?
    .execute(params![
        uuid::Uuid::new_v4().to_string(),
        body,
        now,
        visible_at
    ])
    .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, job: &Job, delay: Duration) -> Result<(), QueueError> {
        let body = encode(job)?;
        self.run(move |c| {
            let now = now_millis();
            insert(c, &body, now.saturating_add(millis(delay)), now)
        })
        .await
    }

    /// All jobs are stored in one transaction: either all are queued or none.
    async fn send_batch(&self, jobs: &[Job]) -> Result<(), QueueError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let bodies = jobs.iter().map(encode).collect::<Result<Vec<_>, _>>()?;
        self.run(move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let now = now_millis();
            for body in &bodies {
                insert(&tx, body, now, now)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    /// Claims up to `max` visible messages, oldest first. A zero `visibility` counts as 1 ms so
    /// one call never hands out the same message twice.
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>, QueueError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let max_receives = i64::from(self.max_receives);
        let visibility = millis(visibility).max(1);
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
            let now = now_millis();
            let invisible_until = now.saturating_add(visibility);
            let mut out = Vec::new();
            // Rows turned dead do not fill the batch: look again until `max` are delivered or
            // nothing visible is left. Every row looked at leaves the visible set (claimed or
            // dead), so this ends.
            loop {
                let want = i64::try_from(max - out.len()).unwrap_or(i64::MAX);
                let candidates: Vec<(i64, String, String, i64)> = {
                    let mut stmt = tx
                        .prepare_cached(
                            "SELECT seq, id, body, receive_count FROM messages \
                             WHERE dead_at IS NULL AND visible_at <= ?1 ORDER BY visible_at, seq LIMIT ?2",
                        )
                        .map_err(backend)?;
                    let rows = stmt
                        .query_map(params![now, want], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                        .map_err(backend)?;
                    rows.collect::<Result<_, _>>().map_err(backend)?
                };
                if candidates.is_empty() {
                    break;
                }
                for (seq, id, body, count) in candidates {
                    let job = if count >= max_receives {
                        None
                    } else {
                        match serde_json::from_str::<Job>(&body) {
                            Ok(job) => Some(job),
                            Err(e) => {
                                // A body this build cannot read would fail every worker: set it
                                // aside for a person instead of redelivering it.
                                tracing::warn!(message_id = %id, error = %e, "undecodable queue message moved to dead letters");
                                None
                            }
                        }
                    };
                    let Some(job) = job else {
                        tx.prepare_cached("UPDATE messages SET dead_at = ?2, receipt = NULL WHERE seq = ?1")
                            .map_err(backend)?
                            .execute(params![seq, now])
                            .map_err(backend)?;
                        continue;
                    };
                    let receipt = format!("{id}.{}", uuid::Uuid::new_v4().simple());
                    let receive_count = count + 1;
                    tx.prepare_cached(
                        "UPDATE messages SET receive_count = ?2, visible_at = ?3, receipt = ?4, held = 1 WHERE seq = ?1",
                    )
                    .map_err(backend)?
                    .execute(params![seq, receive_count, invisible_until, receipt])
                    .map_err(backend)?;
                    out.push(Delivery {
                        message_id: id,
                        receipt,
                        job,
                        receive_count: u32::try_from(receive_count).unwrap_or(u32::MAX),
                    });
                }
            }
            tx.commit().map_err(backend)?;
            Ok(out)
        })
        .await
    }

    /// A stale or unknown receipt is not an error (see the module documentation).
    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        self.run(move |c| {
            c.prepare_cached("DELETE FROM messages WHERE receipt = ?1 AND dead_at IS NULL")
                .map_err(backend)?
                .execute([receipt])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    /// A stale or unknown receipt is not an error (see the module documentation).
    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        self.run(move |c| {
            let visible_at = now_millis().saturating_add(millis(delay));
            c.prepare_cached(
                "UPDATE messages SET visible_at = ?2, held = 0 WHERE receipt = ?1 AND dead_at IS NULL",
            )
            .map_err(backend)?
            .execute(params![receipt, visible_at])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    /// Any live message (queued, delayed or held) whose job names this user.
    async fn has_jobs_for(&self, user: uuid::Uuid) -> Result<Option<bool>, QueueError> {
        // Bodies are serde_json of `Job`: the user id appears exactly as `"user_id":"<uuid>"`.
        let pattern = format!("%\"user_id\":\"{user}\"%");
        self.run(move |c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM messages WHERE dead_at IS NULL AND body LIKE ?1)",
            )
            .map_err(backend)?
            .query_row([pattern], |r| r.get::<_, bool>(0))
            .map(Some)
            .map_err(backend)
        })
        .await
    }

    /// The oldest dead letters first; reading does not remove them. Bodies this build cannot
    /// decode are left out (and logged), as they cannot be returned as a [`Job`].
    async fn dead_letters(&self, max: usize) -> Result<Vec<Job>, QueueError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        self.run(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, body FROM messages WHERE dead_at IS NOT NULL ORDER BY dead_at, seq LIMIT ?1",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map([limit], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(backend)?;
            let mut jobs = Vec::new();
            for row in rows {
                let (id, body) = row.map_err(backend)?;
                match serde_json::from_str::<Job>(&body) {
                    Ok(job) => jobs.push(job),
                    Err(e) => tracing::warn!(message_id = %id, error = %e, "undecodable dead letter skipped"),
                }
            }
            Ok(jobs)
        })
        .await
    }
}
