//! [`MemoryLimiter`]: the domain's `Limiter` port in memory, with the semantics of the SQLite
//! and DynamoDB adapters (leases ending at whole seconds, a place kept until a time, usage per
//! key and hour), so the simulation's decisions are the ones the engine would make. It also
//! counts its calls the way DynamoDB would bill them, for the simulation's AWS bill.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use domain::error::StoreError;
use domain::ports::{Limiter, Slot, slot_order};
use serde::Serialize;
use time::OffsetDateTime;

/// Calls made, counted as the DynamoDB adapter turns them into requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LimiterOps {
    /// Conditional PutItems tried by `acquire` (one per slot index tried; a failed condition is
    /// billed like a write).
    pub acquire_puts: u64,
    pub renews: u64,
    pub releases: u64,
    /// Queries of a key's slots (`in_use`).
    pub in_use_queries: u64,
    pub clears: u64,
    pub joins: u64,
    pub leaves: u64,
    /// Queries of a line (`ahead_in_line`, `line`).
    pub line_queries: u64,
    /// Places those queries read (DynamoDB bills the items its key condition reads, before
    /// the filter on `until`); once a count reached its limit, an estimate (see
    /// `ahead_in_line`).
    pub line_items_read: u64,
    pub usage_adds: u64,
    pub usage_queries: u64,
}

impl LimiterOps {
    /// Write request units (every item is under 1 KB).
    pub fn write_units(&self) -> u64 {
        self.acquire_puts + self.renews + self.releases + self.joins + self.leaves + self.usage_adds
    }

    /// Read request units (strongly consistent: 1 per 4 KB read; a slot or place item is
    /// about 120 bytes).
    pub fn read_units(&self) -> u64 {
        self.in_use_queries
            + self.usage_queries
            + self.line_queries
            + self.line_items_read * 120 / 4096
    }

    /// Both counts added.
    pub fn plus(&self, other: &LimiterOps) -> LimiterOps {
        LimiterOps {
            acquire_puts: self.acquire_puts + other.acquire_puts,
            renews: self.renews + other.renews,
            releases: self.releases + other.releases,
            in_use_queries: self.in_use_queries + other.in_use_queries,
            clears: self.clears + other.clears,
            joins: self.joins + other.joins,
            leaves: self.leaves + other.leaves,
            line_queries: self.line_queries + other.line_queries,
            line_items_read: self.line_items_read + other.line_items_read,
            usage_adds: self.usage_adds + other.usage_adds,
            usage_queries: self.usage_queries + other.usage_queries,
        }
    }

    /// What happened between `before` and `self`.
    pub fn since(&self, before: &LimiterOps) -> LimiterOps {
        LimiterOps {
            acquire_puts: self.acquire_puts - before.acquire_puts,
            renews: self.renews - before.renews,
            releases: self.releases - before.releases,
            in_use_queries: self.in_use_queries - before.in_use_queries,
            clears: self.clears - before.clears,
            joins: self.joins - before.joins,
            leaves: self.leaves - before.leaves,
            line_queries: self.line_queries - before.line_queries,
            line_items_read: self.line_items_read - before.line_items_read,
            usage_adds: self.usage_adds - before.usage_adds,
            usage_queries: self.usage_queries - before.usage_queries,
        }
    }
}

/// One held slot: its holder and when its time ends (unix seconds, as the adapters keep it).
#[derive(Debug, Clone)]
struct Lease {
    holder: String,
    until: i64,
}

/// A key's line: places by rank, each kept until a time (unix seconds).
#[derive(Debug, Default)]
struct Line {
    places: BTreeMap<String, i64>,
    joins: u64,
}

#[derive(Debug, Default)]
struct State {
    slots: HashMap<String, Vec<Option<Lease>>>,
    lines: HashMap<String, Line>,
    usage: HashMap<String, BTreeMap<i64, u64>>,
    ops: LimiterOps,
}

/// The `Limiter` port in memory (see the module's documentation).
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    state: Mutex<State>,
}

fn secs(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

impl MemoryLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::Backend("the memory limiter's lock is poisoned".into()))
    }

    /// The calls counted so far.
    pub fn ops(&self) -> LimiterOps {
        self.state().map(|s| s.ops).unwrap_or_default()
    }

    /// Keeps the place `rank` in `key`'s line until `until`, as the deliveries of a sleeping
    /// user would (the simulation counts them instead of making them): like `join_line`, but
    /// without its sweep of places ended a day before `until`, which a far `until` would turn
    /// into a sweep of places still kept.
    pub fn hold_place(&self, key: &str, rank: &str, until: OffsetDateTime) {
        if let Ok(mut state) = self.state() {
            let line = state.lines.entry(key.to_owned()).or_default();
            line.places.insert(rank.to_owned(), secs(until));
        }
    }

    /// Places in `key`'s line, kept or not (the simulation's own bookkeeping).
    pub fn line_len(&self, key: &str) -> usize {
        self.state()
            .map(|s| s.lines.get(key).map_or(0, |l| l.places.len()))
            .unwrap_or(0)
    }
}

#[async_trait]
impl Limiter for MemoryLimiter {
    async fn acquire(
        &self,
        key: &str,
        cap: u32,
        holder: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Slot>, StoreError> {
        let mut guard = self.state()?;
        let state = &mut *guard;
        if !state.slots.contains_key(key) {
            state.slots.insert(key.to_owned(), Vec::new());
        }
        let Some(slots) = state.slots.get_mut(key) else {
            return Ok(None);
        };
        for index in slot_order(holder, cap) {
            state.ops.acquire_puts += 1;
            let i = index as usize;
            if slots.len() <= i {
                slots.resize(i + 1, None);
            }
            let free = slots[i].as_ref().is_none_or(|l| l.until <= secs(now));
            if free {
                slots[i] = Some(Lease {
                    holder: holder.to_owned(),
                    until: secs(until),
                });
                return Ok(Some(Slot {
                    key: key.to_owned(),
                    index,
                    holder: holder.to_owned(),
                }));
            }
        }
        Ok(None)
    }

    async fn renew(&self, slot: &Slot, until: OffsetDateTime) -> Result<bool, StoreError> {
        let mut state = self.state()?;
        state.ops.renews += 1;
        let lease = state
            .slots
            .get_mut(&slot.key)
            .and_then(|s| s.get_mut(slot.index as usize))
            .and_then(Option::as_mut)
            .filter(|l| l.holder == slot.holder);
        Ok(match lease {
            Some(lease) => {
                lease.until = secs(until);
                true
            }
            None => false,
        })
    }

    async fn release(&self, slot: &Slot) -> Result<(), StoreError> {
        let mut state = self.state()?;
        state.ops.releases += 1;
        if let Some(entry) = state
            .slots
            .get_mut(&slot.key)
            .and_then(|s| s.get_mut(slot.index as usize))
            && entry.as_ref().is_some_and(|l| l.holder == slot.holder)
        {
            *entry = None;
        }
        Ok(())
    }

    async fn in_use(&self, key: &str, now: OffsetDateTime) -> Result<u32, StoreError> {
        let mut state = self.state()?;
        state.ops.in_use_queries += 1;
        let now = secs(now);
        let held = state
            .slots
            .get(key)
            .map_or(0, |s| s.iter().flatten().filter(|l| l.until > now).count());
        Ok(u32::try_from(held).unwrap_or(u32::MAX))
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        let mut state = self.state()?;
        state.ops.clears += 1;
        state.slots.remove(key);
        Ok(())
    }

    async fn join_line(
        &self,
        key: &str,
        rank: &str,
        until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut guard = self.state()?;
        let state = &mut *guard;
        state.ops.joins += 1;
        let until = secs(until);
        if !state.lines.contains_key(key) {
            state.lines.insert(key.to_owned(), Line::default());
        }
        let Some(line) = state.lines.get_mut(key) else {
            return Ok(());
        };
        match line.places.get_mut(rank) {
            Some(kept) => *kept = until,
            None => {
                line.places.insert(rank.to_owned(), until);
            }
        }
        // As the SQLite adapter: places that ended a day before this one go with a later
        // join. They are never counted (they ended), so sweeping at every 256th join of a
        // line gives the same answers without reading a long line at every join.
        line.joins += 1;
        if line.joins % 256 == 0 {
            let stale = until - 86_400;
            line.places.retain(|_, kept| *kept >= stale);
        }
        Ok(())
    }

    async fn ahead_in_line(
        &self,
        key: &str,
        rank: &str,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u32, StoreError> {
        let mut state = self.state()?;
        let now = secs(now);
        let (ahead, read) = match state.lines.get(key) {
            None => (0, 0),
            Some(line) => {
                let mut ahead = 0u32;
                let mut read = 0usize;
                for (_, kept) in line
                    .places
                    .range::<str, _>((Bound::Unbounded, Bound::Excluded(rank)))
                {
                    if ahead >= limit {
                        break;
                    }
                    read += 1;
                    if *kept > now {
                        ahead += 1;
                    }
                }
                // The DynamoDB adapter pages with `Limit` = `limit`: it reads what is counted
                // here (places not kept by now included), not the rest of the line.
                (ahead.min(limit), read)
            }
        };
        state.ops.line_queries += 1;
        state.ops.line_items_read += read as u64;
        Ok(ahead)
    }

    async fn line(
        &self,
        key: &str,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let mut state = self.state()?;
        let now = secs(now);
        let mut read = 0u64;
        let ranks: Vec<String> = match state.lines.get(key) {
            None => Vec::new(),
            Some(line) => line
                .places
                .iter()
                .inspect(|_| read += 1)
                .filter(|(_, kept)| **kept > now)
                .take(limit as usize)
                .map(|(rank, _)| rank.clone())
                .collect(),
        };
        state.ops.line_queries += 1;
        state.ops.line_items_read += read;
        Ok(ranks)
    }

    async fn leave_line(&self, key: &str, rank: &str) -> Result<(), StoreError> {
        let mut state = self.state()?;
        state.ops.leaves += 1;
        if let Some(line) = state.lines.get_mut(key) {
            line.places.remove(rank);
        }
        Ok(())
    }

    async fn add_usage(
        &self,
        key: &str,
        hour: OffsetDateTime,
        amount: u64,
    ) -> Result<(), StoreError> {
        let mut state = self.state()?;
        state.ops.usage_adds += 1;
        let hour = secs(hour);
        let hours = state.usage.entry(key.to_owned()).or_default();
        let counted = hours.entry(hour).or_insert(0);
        *counted = counted.saturating_add(amount);
        // Hours two days old count toward no budget any more.
        hours.retain(|h, _| *h >= hour - 2 * 86_400);
        Ok(())
    }

    async fn usage(
        &self,
        key: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<(OffsetDateTime, u64)>, StoreError> {
        let mut state = self.state()?;
        state.ops.usage_queries += 1;
        let Some(hours) = state.usage.get(key) else {
            return Ok(Vec::new());
        };
        hours
            .range(secs(since)..)
            .map(|(hour, amount)| {
                let hour = OffsetDateTime::from_unix_timestamp(*hour)
                    .map_err(|e| StoreError::Backend(format!("a usage hour out of range: {e}")))?;
                Ok((hour, *amount))
            })
            .collect()
    }
}

#[cfg(test)]
#[path = "limiter_tests.rs"]
mod tests;
