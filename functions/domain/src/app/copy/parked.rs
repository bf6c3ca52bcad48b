//! Sessions a finished job leaves, logged in, for the next job of the same user in this
//! process (`CopySettings::keep_sessions_for`). Each login costs the server a process start,
//! the index opens and, with TLS, a handshake: about 9 ms of Dovecot's CPU, which a pass that
//! opened two sessions per folder spent some forty times. Sessions are parked together with
//! the connection slots they hold, so the caps on servers and mailboxes count them while they
//! wait; only when no other user waits in a line for those slots, so parking never jumps the
//! servers' lines; and only while the user's pass goes on. A parked pair nobody takes is
//! logged out after the window.
//!
//! Only the sessions of a job that ended cleanly are parked: a job cut short may have left a
//! command half-answered. The next job selects its own folders, as every job does.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use contract::UserState;

use crate::model::*;
use crate::ports::Slot;

use super::{App, Sessions};

/// The parked sessions of this process, by user.
#[derive(Default)]
pub(crate) struct ParkedSessions {
    by_user: Mutex<HashMap<UserId, Vec<Parked>>>,
    next_id: AtomicU64,
}

struct Parked {
    id: u64,
    sessions: Sessions,
    slots: Vec<Slot>,
}

impl ParkedSessions {
    fn put(&self, user: UserId, sessions: Sessions, slots: Vec<Slot>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        by_user.entry(user).or_default().push(Parked {
            id,
            sessions,
            slots,
        });
        id
    }

    /// The most recently parked pair of `user` (its slots were renewed last).
    fn take_any(&self, user: UserId) -> Option<Parked> {
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        let list = by_user.get_mut(&user)?;
        let parked = list.pop();
        if list.is_empty() {
            by_user.remove(&user);
        }
        parked
    }

    /// The pair parked as `id`, if no job took it meanwhile.
    fn take(&self, user: UserId, id: u64) -> Option<Parked> {
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        let list = by_user.get_mut(&user)?;
        let at = list.iter().position(|p| p.id == id)?;
        let parked = list.swap_remove(at);
        if list.is_empty() {
            by_user.remove(&user);
        }
        Some(parked)
    }

    fn take_every(&self, user: UserId) -> Vec<Parked> {
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        by_user.remove(&user).unwrap_or_default()
    }

    fn take_all(&self) -> Vec<Parked> {
        let mut by_user = self.by_user.lock().unwrap_or_else(|e| e.into_inner());
        by_user.drain().flat_map(|(_, list)| list).collect()
    }
}

impl App {
    /// A parked pair of `user`'s sessions with its slots, renewed for a new job; `None` when
    /// there is none (or only pairs whose slots ended, which are logged out).
    pub(super) async fn take_parked(&self, user: UserId) -> Option<(Sessions, Vec<Slot>)> {
        while let Some(parked) = self.parked.take_any(user) {
            let until = self.deps.clock.now() + self.config.copy.lease_ttl;
            let mut kept = true;
            for slot in &parked.slots {
                kept &= matches!(self.deps.limiter.renew(slot, until).await, Ok(true));
            }
            if kept {
                return Some((parked.sessions, parked.slots));
            }
            // A slot ended while parked (a clock moved past its term): another holder may
            // have it, so these sessions no longer count against the cap.
            self.close_parked(parked).await;
        }
        None
    }

    /// Parks a clean job's sessions with their slots for the next job of `user`, or logs them
    /// out and gives the slots back: when parking is off, when another user waits for a slot,
    /// or when the user has no more work (the job completed the pass, or the user was failed
    /// or paused meanwhile; then its other parked sessions log out too, so none outlives the
    /// pass holding a connection the user's own mail program may want).
    pub(super) async fn park_or_close(
        &self,
        user: UserId,
        sessions: Option<Sessions>,
        slots: Vec<Slot>,
    ) {
        let window = self.config.copy.keep_sessions_for;
        let Some(sessions) = sessions else {
            // Nothing to keep; pairs kept earlier end with their window.
            self.give_back(&slots).await;
            return;
        };
        if window.is_zero() || self.others_wait(user, &slots).await {
            let parked = Parked {
                id: 0,
                sessions,
                slots,
            };
            return self.close_parked(parked).await;
        }
        let id = self.parked.put(user, sessions, slots);
        // Looked at once parked: the job that ends the pass changes the user's state first and
        // then logs out what is parked, so either it finds this pair or this finds the state.
        if !self.still_working(user).await {
            return self.close_every(user).await;
        }
        let app = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            if let Some(parked) = app.parked.take(user, id) {
                app.close_parked(parked).await;
            }
        });
    }

    /// Logs out every parked session and gives its slots back (a process about to end).
    pub async fn close_parked_sessions(&self) {
        for parked in self.parked.take_all() {
            self.close_parked(parked).await;
        }
    }

    /// Logs out every parked session of `user`, whose pass has ended.
    async fn close_every(&self, user: UserId) {
        for parked in self.parked.take_every(user) {
            self.close_parked(parked).await;
        }
    }

    async fn close_parked(&self, parked: Parked) {
        parked.sessions.close().await;
        self.give_back(&parked.slots).await;
    }

    /// Whether `user` is still on a pass (scheduled or working): more jobs may come.
    async fn still_working(&self, user: UserId) -> bool {
        matches!(
            self.deps.store.get_user(user).await,
            Ok(Some(u)) if matches!(u.state, UserState::Scheduled | UserState::Working)
        )
    }

    /// Whether a user other than `user` holds a place in the line of one of these slots.
    async fn others_wait(&self, user: UserId, slots: &[Slot]) -> bool {
        let now = self.deps.clock.now();
        let own = format!("#{user}");
        for slot in slots {
            match self.deps.limiter.line(&slot.key, now, 20).await {
                Ok(line) if line.iter().all(|rank| rank.ends_with(&own)) => {}
                // Unknown counts as waiting: give the slot back.
                _ => return true,
            }
        }
        false
    }
}
