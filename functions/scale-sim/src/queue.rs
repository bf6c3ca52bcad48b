//! The queue side of the world: which jobs wait, how the backlog is measured at each tick,
//! when a waiting user's next delivery comes, and what the deliveries of a sleeping user cost.

use crate::backlog::{Histogram, LONGEST, delay_s};
use crate::limiter::LimiterOps;
use crate::world::{Ev, Mode, Units, World};
use rand::Rng;

impl World {
    /// One line of progress on stderr (`SCALE_TRACE` set).
    pub(crate) fn trace(&self) {
        let asleep = self
            .users
            .iter()
            .filter(|u| matches!(u.mode, Mode::Asleep { .. }))
            .count();
        let paused = self.users.iter().filter(|u| u.mode == Mode::Paused).count();
        eprintln!(
            "t={:.1} h events={} heap={} done={} running={} deferred={} asleep={} paused={} ready={} new={} q={:.1} young={} fronts={} GB={:.0}",
            self.now / 3600.0,
            self.counts.events,
            self.events.len(),
            self.done,
            self.running,
            self.deferred.len(),
            asleep,
            paused,
            self.ready_total,
            self.new_total,
            self.backlog.q,
            self.young.len(),
            self.fronts.len(),
            self.usage.bytes_copied / 1e9,
        );
    }

    /// Measures the backlog: the waiting jobs by their delay.
    pub(crate) fn tick(&mut self) {
        let now = self.now;
        while self
            .young
            .front()
            .is_some_and(|(_, t)| *t < now - 10.0 * LONGEST as f64)
        {
            self.young.pop_front();
        }
        let mut waiting: Histogram = [0.0; LONGEST + 1];
        waiting[0] = self.new_total as f64;
        let mut young_jobs = 0.0;
        let users = &self.users;
        self.fronts.retain(|u| {
            let user = &users[*u as usize];
            matches!(user.mode, Mode::Asleep { .. }) && user.near_front
        });
        let fronts: std::collections::BTreeSet<u32> = self.fronts.iter().copied().collect();
        self.fronts = fronts.iter().copied().collect();
        for u in &fronts {
            let user = &self.users[*u as usize];
            let n = (user.ready.len() as f64 - f64::from(user.new_jobs)).max(0.0);
            let d = delay_s(0.0, user.spread, true)
                .round()
                .clamp(1.0, LONGEST as f64) as usize;
            waiting[d] += n;
            young_jobs += n;
        }
        for (u, stamp) in &self.young {
            let user = &self.users[*u as usize];
            let waits = matches!(
                user.mode,
                Mode::Awake | Mode::Deferred | Mode::Asleep { .. }
            );
            if user.wait_start != *stamp || !waits || fronts.contains(u) {
                continue;
            }
            let n = (user.ready.len() as f64 - f64::from(user.new_jobs)).max(0.0);
            let d = delay_s(now - stamp, user.spread, false)
                .round()
                .clamp(1.0, LONGEST as f64) as usize;
            waiting[d] += n;
            young_jobs += n;
        }
        waiting[LONGEST] += (self.ready_total as f64 - self.new_total as f64 - young_jobs).max(0.0);
        self.backlog.tick(now, self.running, &waiting);
        if self.running >= self.sc.lambda_concurrency {
            self.pool_full_s += self.sc.pool_tick_s;
        }
        // Nothing but ticks for three days: nothing will happen any more (a bug: the report
        // says not every mailbox is done).
        let stuck = now - self.last_activity > 3.0 * 86_400.0;
        if self.done < self.users.len() && !stuck {
            self.push(now + self.sc.pool_tick_s, Ev::Tick);
        }
    }

    /// A job of `u` joins the queue (`new`: a message never delivered).
    pub fn add_ready(&mut self, u: u32, folder: u16, new: bool) {
        let user = &mut self.users[u as usize];
        if let Mode::Asleep { .. } = user.mode {
            // Its deliveries so far were made with one job fewer.
            self.settle(u);
        }
        let user = &mut self.users[u as usize];
        user.ready.push(folder);
        let counted = user.mode != Mode::Paused;
        if new {
            user.new_jobs += 1;
        }
        if counted {
            self.ready_total += 1;
            if new {
                self.new_total += 1;
            }
        }
    }

    /// Takes one of `u`'s waiting jobs (any: SQS does not keep order) for a delivery.
    pub fn take_ready(&mut self, u: u32) -> Option<u16> {
        let user = &mut self.users[u as usize];
        if user.ready.is_empty() {
            return None;
        }
        let i = self.rng.gen_range(0..user.ready.len());
        let folder = user.ready.swap_remove(i);
        self.ready_total -= 1;
        // The new messages are delivered in one go with this one, or go on as waiting ones.
        self.new_total -= u64::from(user.new_jobs);
        user.new_jobs = 0;
        Some(folder)
    }

    /// Notes that `u` sleeps near the front of a line.
    pub fn note_front(&mut self, u: u32) {
        self.fronts.push(u);
    }

    /// Notes that `u`'s wait (for `wait_delay`) starts at `t`.
    pub fn start_wait(&mut self, u: u32, t: f64) {
        self.users[u as usize].wait_start = t;
        self.young.push_back((u, t));
    }

    /// Schedules the next delivery of one of `u`'s waiting jobs, if any; with every
    /// invocation busy it waits for one in line.
    pub fn schedule_poll(&mut self, u: u32) {
        let user = &self.users[u as usize];
        let n = user.ready.len();
        if n == 0 {
            self.users[u as usize].mode = Mode::Idle;
            return;
        }
        if self.running >= self.sc.lambda_concurrency {
            self.users[u as usize].mode = Mode::Deferred;
            self.deferred.push_back(u);
            self.counts.deferred += 1;
            return;
        }
        // A pool found full at the last tick has a free invocation by now.
        let q = if self.backlog.q >= 1e6 {
            0.0
        } else {
            self.backlog.q
        };
        let gap = if user.new_jobs > 0 {
            q
        } else {
            let delay = delay_s(self.now - user.wait_start, user.spread, user.near_front);
            let r = self.rng.r#gen::<f64>();
            self.backlog.first_of(n, delay, r)
        };
        self.schedule_poll_at(u, self.now + gap.min(3_600.0));
    }

    pub(crate) fn schedule_poll_at(&mut self, u: u32, at: f64) {
        let user = &mut self.users[u as usize];
        user.serial += 1;
        user.mode = Mode::Awake;
        let serial = user.serial;
        self.push(at, Ev::Poll { user: u, serial });
    }

    /// Counts the deliveries `u` made asleep up to now, billed at its last failed attempt's
    /// cost.
    pub fn settle(&mut self, u: u32) {
        let now = self.now;
        let user = &mut self.users[u as usize];
        if !matches!(user.mode, Mode::Asleep { .. }) {
            return;
        }
        let n = user.ready.len() as f64;
        let per_job = self.backlog.deliveries(
            user.since,
            now,
            user.wait_start,
            user.spread,
            user.near_front,
        );
        user.since = now;
        let deliveries = n * per_job;
        if deliveries <= 0.0 {
            return;
        }
        self.counts.waiting_counted += deliveries;
        let cost = user.fail_cost;
        self.bill_attempts(deliveries, &cost);
    }

    /// Bills `n` short invocations that each cost `cost`.
    pub fn bill_attempts(&mut self, n: f64, cost: &Units) {
        let gb_s = self.sc.waiting_invocation_s * self.sc.worker_memory_gb;
        for u in [&mut self.usage, &mut self.waiting_usage] {
            u.invocations += n;
            u.gb_seconds += n * gb_s;
            u.sqs_requests += n * cost.sqs;
            u.engine_wru += n * cost.engine_wru;
            u.engine_rru += n * cost.engine_rru;
            u.limiter_wru += n * cost.limiter_wru;
            u.limiter_rru += n * cost.limiter_rru;
        }
    }

    /// The limiter calls of one simulated attempt that found no slot: billed with the
    /// limiter's own counts, and kept apart in what waiting cost.
    pub fn note_waiting_calls(&mut self, cost: &Units) {
        self.waiting_usage.limiter_wru += cost.limiter_wru;
        self.waiting_usage.limiter_rru += cost.limiter_rru;
    }

    /// Wakes a sleeping user: counts its deliveries so far and schedules the next one.
    pub fn wake(&mut self, u: u32) {
        self.settle(u);
        self.counts.wakes += 1;
        self.schedule_poll(u);
    }

    /// Lets deferred deliveries run on the invocations that came free.
    pub fn drain_deferred(&mut self) {
        while self.running < self.sc.lambda_concurrency {
            let Some(u) = self.deferred.pop_front() else {
                return;
            };
            if self.users[u as usize].mode == Mode::Deferred {
                self.users[u as usize].mode = Mode::Awake;
                self.attempt(u);
            }
        }
    }

    /// Limiter calls made for the simulation's own bookkeeping are not billed.
    pub fn unbilled_since(&mut self, before: &LimiterOps) {
        let spent = self.limiter.ops().since(before);
        self.unbilled = self.unbilled.plus(&spent);
    }
}
