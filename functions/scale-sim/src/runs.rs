//! Invocations that got their slots: a plan fans out one job per folder; a copy job logs in
//! (or is throttled by the tenant), copies until its folder is done or its deadline (then a
//! continuation is queued, `Stop::OutOfTime`), checkpoints, and gives its slots back. Every
//! end wakes whoever could take the freed slots.

use std::time::Duration;

use domain::ports::{Limiter, Slot};
use domain::schedule::{self, Budget};
use futures::executor::block_on;
use rand::Rng;

use crate::cost;
use crate::world::{Ev, Mode, PLAN, Run, World};

/// How a run's job goes on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Then {
    /// The folder (or the plan) is done.
    Done,
    /// A continuation, visible at once.
    Continue,
    /// Back to the queue after a delay (throttled).
    After(f64),
}

impl World {
    /// An invocation took `slots` for `u`'s job on `folder`.
    pub fn start_run(&mut self, u: u32, folder: u16, slots: Vec<Slot>) {
        let now = self.now;
        let t = self.at(now);
        // The engine renews the slots every 40 s while the job runs (billed at its end);
        // here they are kept to the invocation's end at once.
        let end = t + time::Duration::seconds_f64(self.sc.lambda_timeout_s);
        let before = self.limiter.ops();
        for slot in &slots {
            let _ = block_on(self.limiter.renew(slot, end));
        }
        self.unbilled_since(&before);
        let user = &mut self.users[u as usize];
        let h = user.host;
        user.running += 1;
        for need in user.needs.iter().filter(|n| !n.lined) {
            if user.running > need.cap {
                let seen = format!("{}: {} open, cap {}", need.what, user.running, need.cap);
                self.violations.push(seen);
            }
        }
        let host = &mut self.hosts[h];
        host.account(now);
        host.open += 1;
        host.peak_open = host.peak_open.max(host.open);
        if let Some(cap) = host.cap
            && host.open > cap
        {
            let seen = format!("host {h}: {} open, cap {cap}", host.open);
            self.violations.push(seen);
        }
        self.running += 1;
        self.counts.peak_running = self.counts.peak_running.max(self.running);
        let serial = self.run_serial;
        let run = self.add_run(Run {
            user: u,
            folder,
            host: h,
            slots,
            started: now,
            serial,
            copying: false,
            clock0: 0.0,
            work: 0.0,
        });
        if folder == PLAN {
            self.counts.plan_runs += 1;
            let folders = self.users[u as usize].left.len() as f64;
            let took = self.sc.plan_base_s + self.sc.plan_per_folder_s * folders;
            self.push(now + took, Ev::PlanDone { run, serial });
        } else {
            self.counts.copy_runs += 1;
            self.push(now + self.sc.login_s, Ev::Login { run, serial });
        }
        self.schedule_poll(u);
    }

    fn live(&self, run: usize, serial: u64) -> bool {
        self.runs
            .get(run)
            .and_then(Option::as_ref)
            .is_some_and(|r| r.serial == serial)
    }

    /// A plan ended: one job per folder, sent in batches of ten.
    pub fn plan_done(&mut self, run: usize, serial: u64) {
        if !self.live(run, serial) {
            return;
        }
        let Some(r) = self.take_run(run) else { return };
        let u = r.user;
        let folders = self.users[u as usize].left.len();
        self.users[u as usize].planned = true;
        for f in 0..folders {
            self.add_ready(u, f as u16, true);
        }
        self.usage.sqs_requests += (folders as f64 / 10.0).ceil();
        self.usage.engine_wru += folders as f64 + 3.0;
        self.usage.engine_rru += 5.0;
        self.usage.kms_requests += cost::KMS_PER_COPY_JOB;
        self.end_invocation(r, Then::Done);
    }

    /// A copy job logged in: the tenant may throttle it; otherwise it copies.
    pub fn login(&mut self, run: usize, serial: u64) {
        if !self.live(run, serial) {
            return;
        }
        let now = self.now;
        let Some(r) = self.runs[run].as_ref() else {
            return;
        };
        let (h, u, folder) = (r.host, r.user, r.folder);
        self.usage.kms_requests += cost::KMS_PER_COPY_JOB;
        let taking: f64 = self.hosts.iter().map(|h| h.serving()).sum();
        let rate = self.hosts[h].rate_with(self.hosts[h].copying() + 1);
        if self.tenant.throttles(taking, rate) {
            self.throttled(run);
            return;
        }
        let window = self.sc.copy_window_s();
        let mut work = self.users[u as usize].left[folder as usize] as f64;
        if !self.users[u as usize].budgets.is_empty() {
            work = self.budget_left(u, work.min(rate * window), rate);
        }
        if work < 1.0 {
            // The budget was spent meanwhile: the engine stops before its first chunk.
            if let Some(r) = self.take_run(run) {
                self.end_invocation(r, Then::Continue);
            }
            return;
        }
        let user = &mut self.users[u as usize];
        user.first_byte.get_or_insert(now);
        let clock0 = self.hosts[h].start(now, run, serial, work);
        if let Some(r) = self.runs[run].as_mut() {
            r.copying = true;
            r.clock0 = clock0;
            r.work = work;
        }
        self.push(now + window, Ev::Deadline { run, serial });
        self.reschedule(h);
    }

    /// Exchange Online refused the job: "Request is throttled. Suggested Backoff Time".
    fn throttled(&mut self, run: usize) {
        self.tenant.throttles += 1;
        self.counts.throttled += 1;
        let (lo, hi) = self.sc.throttle_hint_s;
        let hint_ms = (self.rng.gen_range(lo..=hi) * 1000.0) as u64;
        let message =
            format!("Request is throttled. Suggested Backoff Time: {hint_ms} milliseconds");
        let delay = schedule::refusal_delay(&message, Some(Duration::from_millis(hint_ms)));
        // `continue_after_throttling`: the user shows it, the job is sent again.
        self.usage.engine_rru += 1.0;
        self.usage.engine_wru += 2.0;
        if let Some(r) = self.take_run(run) {
            self.end_invocation(r, Then::After(delay.as_secs_f64()));
        }
    }

    /// What the user's daily budgets leave this job (a Google source: 2,500 MB a day), charged
    /// at once hour by hour at the job's fixed rate, so the user's other jobs see it spent.
    fn budget_left(&mut self, u: u32, mut work: f64, rate: f64) -> f64 {
        let now = self.now;
        let t = self.at(now);
        let before = self.limiter.ops();
        let budgets = self.users[u as usize].budgets.clone();
        for b in &budgets {
            let usage =
                block_on(self.limiter.usage(&b.key, schedule::day_start(t))).unwrap_or_default();
            match schedule::budget(&usage, b.cap, t) {
                Budget::Open { left } => work = work.min(left as f64),
                Budget::Spent { .. } => work = 0.0,
            }
        }
        let work = work.floor();
        let mut charged = 0.0;
        while work - charged >= 1.0 {
            let at = now + charged / rate;
            let hour = schedule::hour_of(self.at(at));
            let hour_ends = (hour + time::Duration::hours(1) - epoch_of(self)).as_seconds_f64();
            let here = ((hour_ends - at) * rate).max(1.0).min(work - charged);
            for b in &budgets {
                let _ = block_on(self.limiter.add_usage(&b.key, hour, here as u64));
            }
            charged += here.floor().max(1.0);
        }
        self.unbilled_since(&before);
        work
    }

    fn reschedule(&mut self, h: usize) {
        let now = self.now;
        let runs = &self.runs;
        let host = &mut self.hosts[h];
        host.generation += 1;
        let generation = host.generation;
        let live = |r: usize, s: u64| {
            runs.get(r)
                .and_then(Option::as_ref)
                .is_some_and(|x| x.serial == s && x.copying)
        };
        if let Some((at, _, _)) = host.next_end(now, live) {
            self.push(
                at,
                Ev::HostEnd {
                    host: h,
                    generation,
                },
            );
        }
    }

    /// The host's next run may have copied all it had to.
    pub fn host_end(&mut self, h: usize, generation: u64) {
        if self.hosts[h].generation != generation {
            return;
        }
        loop {
            let now = self.now;
            let runs = &self.runs;
            let live = |r: usize, s: u64| {
                runs.get(r)
                    .and_then(Option::as_ref)
                    .is_some_and(|x| x.serial == s && x.copying)
            };
            match self.hosts[h].next_end(now, live) {
                Some((at, run, _)) if at <= now + 1e-3 => {
                    self.hosts[h].pop_end();
                    let work = self.runs[run].as_ref().map_or(0.0, |r| r.work);
                    self.end_copy(run, work);
                }
                _ => break,
            }
        }
        self.reschedule(h);
    }

    /// A copying job reached its deadline: a continuation takes the rest.
    pub fn deadline(&mut self, run: usize, serial: u64) {
        let Some(r) = self.runs.get(run).and_then(Option::as_ref) else {
            return;
        };
        if r.serial != serial || !r.copying {
            return;
        }
        let (h, clock0, work) = (r.host, r.clock0, r.work);
        let copied = (self.hosts[h].clock_at(self.now) - clock0).min(work);
        self.end_copy(run, copied);
    }

    fn end_copy(&mut self, run: usize, copied: f64) {
        let Some(r) = self.take_run(run) else { return };
        self.hosts[r.host].stop(self.now);
        self.reschedule(r.host);
        let user = &mut self.users[r.user as usize];
        let left = &mut user.left[r.folder as usize];
        let bytes = (copied.round().max(0.0) as u64).min(*left);
        *left -= bytes;
        let more = *left > 0;
        user.bytes += bytes;
        let gb = bytes as f64 / 1e9;
        let google = !user.budgets.is_empty();
        let u = &mut self.usage;
        u.bytes_copied += bytes as f64;
        u.engine_wru += gb * cost::CHUNKS_PER_GB * cost::WRU_PER_CHUNK + cost::COPY_JOB_WRU;
        u.engine_rru += gb * cost::CHUNKS_PER_GB * cost::RRU_PER_CHUNK + cost::COPY_JOB_RRU;
        if google {
            // Per chunk: `budget_spent` reads the usage, `spend_budgets` adds to it.
            u.limiter_rru += gb * cost::CHUNKS_PER_GB;
            u.limiter_wru += gb * cost::CHUNKS_PER_GB;
        }
        self.end_invocation(r, if more { Then::Continue } else { Then::Done });
    }

    /// The invocation ends: slots given back, the job goes on as `then` says, and whoever
    /// could take the freed slots is woken.
    pub fn end_invocation(&mut self, r: Run, then: Then) {
        let now = self.now;
        let took = now - r.started;
        self.usage.gb_seconds += took * self.sc.worker_memory_gb;
        // `App::holding` renews every slot every 40 s (a third of the lease).
        self.usage.limiter_wru += (took / 40.0).floor() * r.slots.len() as f64;
        block_on(schedule::give_back(&self.limiter, &r.slots));
        let (u, h) = (r.user, r.host);
        let host = &mut self.hosts[h];
        host.account(now);
        host.open -= 1;
        self.running -= 1;
        self.users[u as usize].running -= 1;
        match then {
            Then::Continue => {
                self.counts.continuations += 1;
                self.usage.sqs_requests += 1.0;
                self.add_ready(u, r.folder, true);
            }
            Then::After(delay) => {
                self.usage.sqs_requests += 1.0;
                self.push(
                    now + delay,
                    Ev::JobBack {
                        user: u,
                        folder: r.folder,
                    },
                );
            }
            Then::Done if r.folder != PLAN => self.users[u as usize].open_folders -= 1,
            Then::Done => {}
        }
        self.check_done(u);
        match self.users[u as usize].mode {
            Mode::Asleep { need } if !self.users[u as usize].needs[need as usize].lined => {
                self.wake(u)
            }
            Mode::Idle => self.schedule_poll(u),
            _ => {}
        }
        self.wake_line(h);
        self.drain_deferred();
    }

    fn check_done(&mut self, u: u32) {
        let now = self.now;
        let user = &mut self.users[u as usize];
        if user.planned
            && user.open_folders == 0
            && user.running == 0
            && user.ready.is_empty()
            && user.mode != Mode::Done
        {
            user.done_at = Some(now);
            user.mode = Mode::Done;
            self.done += 1;
        }
    }
}

fn epoch_of(_w: &World) -> time::OffsetDateTime {
    crate::scenario::epoch()
}
