//! The [`Limiter`] on SQLite: a row per held slot in `limiter_slots`, taken with an upsert
//! that only overwrites a row whose time has ended, so two holders never have one slot; a row
//! per place in line in `limiter_lines`, and a row per key and hour in `limiter_usage`.

use async_trait::async_trait;
use domain::error::StoreError;
use domain::ports::{Limiter, Slot, slot_order};
use rusqlite::params;
use time::OffsetDateTime;

use crate::store::{SqliteStore, backend};

impl SqliteStore {
    /// Frees every connection slot, for the one process that owns this file (`mailferry
    /// serve` holding its data folder's lock): whatever is held was held by a dead
    /// predecessor. Returns how many were freed.
    pub async fn release_all_slots(&self) -> Result<usize, StoreError> {
        self.write(|c| c.execute("DELETE FROM limiter_slots", []).map_err(backend))
            .await
    }
}

#[async_trait]
impl Limiter for SqliteStore {
    async fn acquire(
        &self,
        key: &str,
        cap: u32,
        holder: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Slot>, StoreError> {
        let (key, holder) = (key.to_owned(), holder.to_owned());
        let (until, now) = (until.unix_timestamp(), now.unix_timestamp());
        self.write(move |c| {
            let mut take = c
                .prepare_cached(
                    "INSERT INTO limiter_slots (key, slot, holder, until) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (key, slot) DO UPDATE SET holder = excluded.holder, until = excluded.until
                     WHERE limiter_slots.until <= ?5",
                )
                .map_err(backend)?;
            for index in slot_order(&holder, cap) {
                if take
                    .execute(params![key, index, holder, until, now])
                    .map_err(backend)?
                    == 1
                {
                    return Ok(Some(Slot {
                        key: key.clone(),
                        index,
                        holder: holder.clone(),
                    }));
                }
            }
            Ok(None)
        })
        .await
    }

    async fn renew(&self, slot: &Slot, until: OffsetDateTime) -> Result<bool, StoreError> {
        let slot = slot.clone();
        let until = until.unix_timestamp();
        self.write(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE limiter_slots SET until = ?4 WHERE key = ?1 AND slot = ?2 AND holder = ?3",
                )
                .map_err(backend)?
                .execute(params![slot.key, slot.index, slot.holder, until])
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn release(&self, slot: &Slot) -> Result<(), StoreError> {
        let slot = slot.clone();
        self.write(move |c| {
            c.prepare_cached(
                "DELETE FROM limiter_slots WHERE key = ?1 AND slot = ?2 AND holder = ?3",
            )
            .map_err(backend)?
            .execute(params![slot.key, slot.index, slot.holder])
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn in_use(&self, key: &str, now: OffsetDateTime) -> Result<u32, StoreError> {
        let key = key.to_owned();
        let now = now.unix_timestamp();
        self.read(move |c| {
            c.prepare_cached("SELECT COUNT(*) FROM limiter_slots WHERE key = ?1 AND until > ?2")
                .map_err(backend)?
                .query_row(params![key, now], |r| r.get::<_, u32>(0))
                .map_err(backend)
        })
        .await
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.write(move |c| {
            c.prepare_cached("DELETE FROM limiter_slots WHERE key = ?1")
                .map_err(backend)?
                .execute(params![key])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn join_line(
        &self,
        key: &str,
        rank: &str,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (key, rank, until) = (key.to_owned(), rank.to_owned(), until.unix_timestamp());
        // A place that ended a day before this one is long given up.
        let stale = until - 86_400;
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO limiter_lines (key, rank, until) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key, rank) DO UPDATE SET until = excluded.until",
            )
            .map_err(backend)?
            .execute(params![key, rank, until])
            .map_err(backend)?;
            // Places their users stopped keeping go with a later join.
            c.prepare_cached("DELETE FROM limiter_lines WHERE key = ?1 AND until < ?2")
                .map_err(backend)?
                .execute(params![key, stale])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn ahead_in_line(
        &self,
        key: &str,
        rank: &str,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u32, StoreError> {
        let (key, rank, now) = (key.to_owned(), rank.to_owned(), now.unix_timestamp());
        self.read(move |c| {
            c.prepare_cached(
                "SELECT COUNT(*) FROM (SELECT 1 FROM limiter_lines
                 WHERE key = ?1 AND rank < ?2 AND until > ?3 LIMIT ?4)",
            )
            .map_err(backend)?
            .query_row(params![key, rank, now, limit], |r| r.get::<_, u32>(0))
            .map_err(backend)
        })
        .await
    }

    async fn line(
        &self,
        key: &str,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let (key, now) = (key.to_owned(), now.unix_timestamp());
        self.read(move |c| {
            let mut query = c
                .prepare_cached(
                    "SELECT rank FROM limiter_lines WHERE key = ?1 AND until > ?2 ORDER BY rank LIMIT ?3",
                )
                .map_err(backend)?;
            let ranks = query
                .query_map(params![key, now, limit], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            ranks.map(|r| r.map_err(backend)).collect()
        })
        .await
    }

    async fn leave_line(&self, key: &str, rank: &str) -> Result<(), StoreError> {
        let (key, rank) = (key.to_owned(), rank.to_owned());
        self.write(move |c| {
            c.prepare_cached("DELETE FROM limiter_lines WHERE key = ?1 AND rank = ?2")
                .map_err(backend)?
                .execute(params![key, rank])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn add_usage(
        &self,
        key: &str,
        hour: OffsetDateTime,
        amount: u64,
    ) -> Result<(), StoreError> {
        let (key, hour) = (key.to_owned(), hour.unix_timestamp());
        let amount = i64::try_from(amount).unwrap_or(i64::MAX);
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO limiter_usage (key, hour, amount) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key, hour) DO UPDATE SET amount = amount + excluded.amount",
            )
            .map_err(backend)?
            .execute(params![key, hour, amount])
            .map_err(backend)?;
            // Hours two days old count toward no budget any more.
            c.prepare_cached("DELETE FROM limiter_usage WHERE key = ?1 AND hour < ?2")
                .map_err(backend)?
                .execute(params![key, hour - 2 * 86_400])
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn usage(
        &self,
        key: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<(OffsetDateTime, u64)>, StoreError> {
        let (key, since) = (key.to_owned(), since.unix_timestamp());
        self.read(move |c| {
            let mut query = c
                .prepare_cached(
                    "SELECT hour, amount FROM limiter_usage WHERE key = ?1 AND hour >= ?2 ORDER BY hour",
                )
                .map_err(backend)?;
            let rows = query
                .query_map(params![key, since], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(backend)?;
            rows.map(|row| {
                let (hour, amount) = row.map_err(backend)?;
                let hour = OffsetDateTime::from_unix_timestamp(hour)
                    .map_err(|e| StoreError::Backend(format!("a usage hour out of range: {e}")))?;
                Ok((hour, u64::try_from(amount).unwrap_or(0)))
            })
            .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_owner_of_the_file_frees_every_slot_a_dead_predecessor_held() {
        let store = SqliteStore::open_in_memory().unwrap();
        let now = OffsetDateTime::now_utc();
        let until = now + time::Duration::minutes(2);
        for (key, holder) in [("server:a:993", "dead-1"), ("mailbox:a:993:x", "dead-2")] {
            assert!(
                store
                    .acquire(key, 1, holder, until, now)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        assert_eq!(store.release_all_slots().await.unwrap(), 2);
        assert_eq!(store.in_use("server:a:993", now).await.unwrap(), 0);
        assert!(
            store
                .acquire("server:a:993", 1, "new", until, now)
                .await
                .unwrap()
                .is_some()
        );
    }
}
