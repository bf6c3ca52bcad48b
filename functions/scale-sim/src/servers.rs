//! The simulated mail servers: each source host shares what it serves among the connections
//! copying from it (processor sharing: every connection gets `min(per_connection, ceiling/n)`),
//! and the one target tenant throttles like Exchange Online when it takes more than its budget.
//!
//! A host keeps a virtual "bytes per connection" clock that advances at the current rate, so a
//! job finishing needs no update when others come and go: it ends when the clock reaches the
//! value it started at plus its bytes. Only the next end is on the event queue.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A total order on non-negative `f64`s (their bit patterns sort like the numbers).
#[derive(Debug, Clone, Copy)]
pub struct Key(pub f64);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One source host's copying connections.
#[derive(Debug)]
pub struct Host {
    pub ceiling: f64,
    pub per_connection: f64,
    /// The server's cap, when the limiter keeps one (`schedule::server_need`).
    pub cap: Option<u32>,
    pub server_key: Option<String>,
    /// Connections copying now (a subset of `open`).
    copying: u32,
    /// Bytes one connection has copied since the start (the virtual clock) and when.
    clock: f64,
    clock_at: f64,
    /// (clock value at which a run ends, run id, run serial) — stale entries are skipped.
    ends: BinaryHeap<Reverse<(Key, usize, u64)>>,
    /// Bumped whenever the next end moves, so an older "next end" event is ignored.
    pub generation: u64,
    /// Connections open now, counted by the simulation itself (slots taken to given back),
    /// and the most ever open at once: the check that the cap held.
    pub open: u32,
    pub peak_open: u32,
    /// Slot-seconds a free slot stayed unused while a user of this host waited, and the
    /// slot-seconds of the host's cap up to its last job.
    pub idle_slot_s: f64,
    pub cap_slot_s: f64,
    /// Users of the host with a job waiting for its slots.
    pub waiting_users: u32,
    accounted_at: f64,
}

impl Host {
    pub fn new(
        ceiling: f64,
        per_connection: f64,
        cap: Option<u32>,
        server_key: Option<String>,
    ) -> Self {
        Host {
            ceiling,
            per_connection,
            cap,
            server_key,
            copying: 0,
            clock: 0.0,
            clock_at: 0.0,
            ends: BinaryHeap::new(),
            generation: 0,
            open: 0,
            peak_open: 0,
            idle_slot_s: 0.0,
            cap_slot_s: 0.0,
            waiting_users: 0,
            accounted_at: 0.0,
        }
    }

    /// One connection's rate with `n` copying.
    pub fn rate_with(&self, n: u32) -> f64 {
        if n == 0 {
            return self.per_connection;
        }
        self.per_connection.min(self.ceiling / f64::from(n))
    }

    /// What the host serves now in all (bytes per second).
    pub fn serving(&self) -> f64 {
        f64::from(self.copying) * self.rate_with(self.copying)
    }

    pub fn copying(&self) -> u32 {
        self.copying
    }

    fn advance(&mut self, now: f64) {
        if now > self.clock_at {
            self.clock += (now - self.clock_at) * self.rate_with(self.copying);
            self.clock_at = now;
        }
    }

    /// The virtual clock at `now`.
    pub fn clock_at(&mut self, now: f64) -> f64 {
        self.advance(now);
        self.clock
    }

    /// A run starts copying `bytes`; returns the clock value it started at.
    pub fn start(&mut self, now: f64, run: usize, serial: u64, bytes: f64) -> f64 {
        self.advance(now);
        self.copying += 1;
        self.ends
            .push(Reverse((Key(self.clock + bytes), run, serial)));
        self.clock
    }

    /// A run stops copying (done, or at its deadline).
    pub fn stop(&mut self, now: f64) {
        self.advance(now);
        self.copying = self.copying.saturating_sub(1);
    }

    /// The next run to end while `live` says it is still copying, and when; stale entries
    /// are dropped on the way.
    pub fn next_end(
        &mut self,
        now: f64,
        live: impl Fn(usize, u64) -> bool,
    ) -> Option<(f64, usize, u64)> {
        self.advance(now);
        while let Some(Reverse((Key(end), run, serial))) = self.ends.peek().copied() {
            if !live(run, serial) {
                self.ends.pop();
                continue;
            }
            let rate = self.rate_with(self.copying);
            let at = now + ((end - self.clock).max(0.0) / rate);
            return Some((at, run, serial));
        }
        None
    }

    /// Takes the entry of a run that ended.
    pub fn pop_end(&mut self) {
        self.ends.pop();
    }

    /// Accounts free slots while users wait, up to `now`; call before `open` or
    /// `waiting_users` changes.
    pub fn account(&mut self, now: f64) {
        let dt = now - self.accounted_at;
        if let Some(cap) = self.cap
            && dt > 0.0
        {
            if self.waiting_users > 0 {
                self.idle_slot_s += dt * f64::from(cap.saturating_sub(self.open));
            }
            if self.waiting_users > 0 || self.open > 0 {
                self.cap_slot_s += dt * f64::from(cap);
            }
        }
        self.accounted_at = now;
    }
}

/// The target tenant: what it takes in now, and its throttling.
#[derive(Debug, Default)]
pub struct Tenant {
    /// Bytes per second the tenant may take before it throttles new logins.
    pub budget: f64,
    pub throttles: u64,
}

impl Tenant {
    /// Whether a job that would add `rate` to `taking` now is throttled.
    pub fn throttles(&self, taking: f64, rate: f64) -> bool {
        taking + rate > self.budget
    }
}
