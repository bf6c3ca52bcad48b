//! The [`Limiter`] on SQLite: a row per held slot in `limiter_slots`, taken with an upsert
//! that only overwrites a row whose time has ended, so two holders never have one slot.

use async_trait::async_trait;
use domain::error::StoreError;
use domain::ports::{Limiter, Slot, slot_order};
use rusqlite::params;
use time::OffsetDateTime;

use crate::store::{SqliteStore, backend};

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
}
