//! One delivery of a waiting job, decided as the copy engine decides it
//! (`App::run_copy_job`, `slots.rs`, `budgets.rs`): a spent daily budget pauses the job before
//! it takes any connection; otherwise `schedule::take_slots` on the limiter with the user's
//! rank (`line_rank` of its priority and `waiting_since`), and either the job runs or it goes
//! back to the queue the way `App::wait_for` puts it back. The user records (`MailUser`) are
//! the domain's, updated as the engine updates them.

use std::time::Duration;

use domain::schedule::{self, Full, Place};
use futures::executor::block_on;

use crate::backlog::delay_s;
use crate::world::{Mode, Units, World};

/// How long a place of a sleeping user is kept: its deliveries, counted rather than
/// simulated, keep refreshing it (`schedule::place_kept`).
const KEPT_WHILE_ASLEEP: time::Duration = time::Duration::days(365);

/// The engine's spread of one job (`slots.rs`: the user's id plus its folder name's bytes).
fn job_spread(user_spread: u64, folder: u16) -> u64 {
    (user_spread + u64::from(folder) * 7) % 1_000_003
}

impl World {
    /// One delivery of one of `u`'s waiting jobs.
    pub fn attempt(&mut self, u: u32) {
        let Some(folder) = self.take_ready(u) else {
            self.users[u as usize].mode = Mode::Idle;
            return;
        };
        let now = self.now;
        let t = self.at(now);
        let before = self.limiter.ops();
        // The delivery, its deletion, then `handle_job` reads the user and the project.
        let cost = Units {
            sqs: 2.0,
            engine_rru: 2.0,
            ..Units::default()
        };
        let user = &self.users[u as usize];
        if !user.budgets.is_empty() {
            let spent = block_on(schedule::spent_budget(&self.limiter, &user.budgets, t))
                .expect("the memory limiter never fails");
            if let Some((budget, resumes_at)) = spent {
                let text = schedule::budget_text(budget, resumes_at);
                self.pause(u, folder, text, resumes_at, cost, &before);
                return;
            }
        }
        let waiting_since = user.mail.waiting_since;
        let since = if user.needs.iter().any(|n| n.lined) {
            self.line_since(u, t)
        } else {
            t
        };
        let user = &self.users[u as usize];
        let rank = schedule::line_rank(user.mail.priority, since, &user.id.to_string());
        let waited = waiting_since.map_or(0.0, |s| (t - s).as_seconds_f64());
        // Kept past the longest wait of a job further back in the line (`slots.rs`).
        let delay =
            Duration::from_secs_f64(delay_s(waited, job_spread(user.spread, folder), false));
        let place = Place {
            rank: &rank,
            kept_until: t + schedule::place_kept(delay),
        };
        self.run_serial += 1;
        let holder = format!("job-{}", self.run_serial);
        let until = t + time::Duration::seconds(120); // `CopySettings::lease_ttl`
        let taken = block_on(schedule::take_slots(
            &self.limiter,
            &user.needs,
            &holder,
            &place,
            t,
            until,
        ))
        .expect("the memory limiter never fails");
        match taken {
            Ok(slots) => {
                self.clear_waiting(u, cost);
                self.start_run(u, folder, slots);
            }
            Err(full) => self.wait_for(u, folder, &full, cost, &before),
        }
    }

    /// `App::ranked`: the user's rank in the servers' lines is fixed at its first asking for a
    /// connection in the pass (`schedule::line_place`; one write of the user, billed).
    fn line_since(&mut self, u: u32, t: time::OffsetDateTime) -> time::OffsetDateTime {
        let user = &mut self.users[u as usize];
        let place = schedule::line_place(&user.mail, t);
        if user.mail.line != Some(place) {
            user.mail.line = Some(place);
            self.usage.engine_wru += 2.0;
        }
        place.since
    }

    /// `App::clear_waiting` after slots were taken; bills the invocation's start.
    fn clear_waiting(&mut self, u: u32, mut cost: Units) {
        let now = self.now;
        let user = &mut self.users[u as usize];
        let waiting_text = user
            .mail
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("waiting: "));
        if user.mail.waiting_since.is_some() || waiting_text {
            cost.engine_rru += 1.0;
            cost.engine_wru += 2.0; // the user item and its index entry
            user.mail.waiting_since = None;
            if waiting_text {
                user.mail.last_error = None;
            }
        }
        if user.in_line {
            user.in_line = false;
            let host = &mut self.hosts[user.host];
            host.account(now);
            host.waiting_users -= 1;
        }
        self.start_wait(u, now);
        let usage = &mut self.usage;
        usage.invocations += 1.0;
        usage.sqs_requests += cost.sqs;
        usage.engine_rru += cost.engine_rru;
        usage.engine_wru += cost.engine_wru;
    }

    /// `App::wait_for`: the user shows what it waits for and since when, the job goes back
    /// to the queue, and the user sleeps until a slot it could take comes free.
    fn wait_for(
        &mut self,
        u: u32,
        folder: u16,
        full: &Full,
        mut cost: Units,
        before: &crate::limiter::LimiterOps,
    ) {
        let now = self.now;
        let t = self.at(now);
        let text = schedule::waiting_text(full);
        let user = &mut self.users[u as usize];
        let mut write = 0.0;
        if user.mail.last_error.as_deref() != Some(text.as_str())
            || user.mail.waiting_since.is_none()
        {
            write = 2.0;
            user.mail.last_error = Some(text);
            if user.mail.waiting_since.is_none() {
                user.mail.waiting_since = Some(t);
                self.start_wait(u, now);
            }
        }
        cost.sqs += 1.0;
        let spent = self.limiter.ops().since(before);
        let user = &mut self.users[u as usize];
        user.fail_cost = Units {
            limiter_wru: spent.write_units() as f64,
            limiter_rru: spent.read_units() as f64,
            ..cost
        };
        user.near_front = full.near_front;
        cost.engine_wru += write;
        // This attempt's limiter calls are in the limiter's own counts.
        self.bill_attempts(1.0, &cost);
        let calls = self.users[u as usize].fail_cost;
        self.note_waiting_calls(&calls);
        self.counts.waiting_simulated += 1;
        let need = user_need(&self.users[u as usize].needs, full);
        self.add_ready(u, folder, false);
        self.sleep(u, need);
    }

    fn sleep(&mut self, u: u32, need: usize) {
        let now = self.now;
        let t = self.at(now);
        let user = &mut self.users[u as usize];
        user.mode = Mode::Asleep { need: need as u8 };
        user.since = now;
        let near_front = user.near_front;
        let need = &user.needs[need];
        if !need.lined {
            if near_front {
                self.note_front(u);
            }
            return;
        }
        let key = need.key.clone();
        let since = user.mail.line.map_or(t, |l| l.since);
        let rank = schedule::line_rank(user.mail.priority, since, &user.id.to_string());
        self.limiter.hold_place(&key, &rank, t + KEPT_WHILE_ASLEEP);
        if near_front {
            self.note_front(u);
        }
        let user = &mut self.users[u as usize];
        if !user.in_line {
            user.in_line = true;
            let host = &mut self.hosts[user.host];
            host.account(now);
            host.waiting_users += 1;
        }
    }

    /// `App::pause_for_budget`: the job comes back when the budget renews (every 15 minutes
    /// at most, each a short delivery), the user says until when.
    fn pause(
        &mut self,
        u: u32,
        folder: u16,
        text: String,
        resumes_at: time::OffsetDateTime,
        mut cost: Units,
        before: &crate::limiter::LimiterOps,
    ) {
        let now = self.now;
        let user = &mut self.users[u as usize];
        let mut write = 0.0;
        if user.mail.last_error.as_deref() != Some(text.as_str()) {
            write = 2.0;
            cost.engine_rru += 1.0;
            user.mail.last_error = Some(text);
        }
        cost.sqs += 1.0;
        let spent = self.limiter.ops().since(before);
        user.fail_cost = Units {
            limiter_wru: spent.write_units() as f64,
            limiter_rru: spent.read_units() as f64,
            ..cost
        };
        cost.engine_wru += write;
        self.bill_attempts(1.0, &cost);
        let calls = self.users[u as usize].fail_cost;
        self.note_waiting_calls(&calls);
        self.counts.paused_deliveries += 1.0;
        self.add_ready(u, folder, false);
        let t = self.at(now);
        let pause = (resumes_at - t).as_seconds_f64().max(0.0);
        // The first of its jobs to come back after the renewal: each comes every
        // `pause_length`, at phases of their own.
        let every = schedule::pause_length(t, resumes_at).as_secs_f64();
        let r = rand::Rng::r#gen::<f64>(&mut self.rng);
        let user = &mut self.users[u as usize];
        self.ready_total -= user.ready.len() as u64;
        self.new_total -= u64::from(user.new_jobs);
        user.mode = Mode::Paused;
        user.since = now;
        user.serial += 1;
        user.pauses += 1;
        user.longest_pause = user.longest_pause.max(pause);
        let n = user.ready.len();
        let first = every / (n as f64 + 1.0) * 2.0 * r;
        let serial = user.serial;
        self.push(
            now + pause + first.min(every),
            crate::world::Ev::Resume { user: u, serial },
        );
    }

    /// A paused user's budget renewed: its deliveries meanwhile are billed, its jobs wait again.
    pub fn resume(&mut self, u: u32, serial: u64) {
        let now = self.now;
        let user = &mut self.users[u as usize];
        if user.mode != Mode::Paused || user.serial != serial {
            return;
        }
        let n = user.ready.len();
        let deliveries = n as f64 * ((now - user.since) / 900.0).floor();
        self.ready_total += n as u64;
        self.new_total += u64::from(user.new_jobs);
        user.mode = Mode::Idle;
        let cost = user.fail_cost;
        self.counts.paused_deliveries += deliveries;
        self.bill_attempts(deliveries, &cost);
        self.schedule_poll(u);
    }

    /// Wakes the users first in the line of host `h`'s server when slots are free: only they
    /// may take them (`schedule::may_take`).
    pub fn wake_line(&mut self, h: usize) {
        let host = &self.hosts[h];
        let (Some(cap), Some(key)) = (host.cap, host.server_key.clone()) else {
            return;
        };
        if host.waiting_users == 0 {
            return;
        }
        use domain::ports::Limiter;
        let t = self.at(self.now);
        let before = self.limiter.ops();
        let in_use =
            block_on(self.limiter.in_use(&key, t)).expect("the memory limiter never fails");
        let free = cap.saturating_sub(in_use);
        let first = if free == 0 {
            Vec::new()
        } else {
            block_on(self.limiter.line(&key, t, free)).expect("the memory limiter never fails")
        };
        self.unbilled_since(&before);
        for rank in first {
            let Some(&u) = rank
                .rsplit('#')
                .next()
                .and_then(|id| uuid::Uuid::parse_str(id).ok())
                .and_then(|id| self.by_id.get(&id))
            else {
                continue;
            };
            if let Mode::Asleep { need } = self.users[u as usize].mode
                && self.users[u as usize].needs[need as usize].lined
            {
                self.wake(u);
            }
        }
    }
}

/// The index of the need a `Full` names.
fn user_need(needs: &[schedule::Need], full: &Full) -> usize {
    needs.iter().position(|n| n.what == full.what).unwrap_or(0)
}
