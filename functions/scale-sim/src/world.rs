//! The simulated world and its event loop: users with their jobs, runs (invocations holding
//! slots), the hosts, the backlog, and a heap of events on a virtual clock (seconds since the
//! admin pressed Start).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use domain::model::{MailUser, Project};
use domain::ports::Slot;
use domain::schedule::{self, DailyBudget, Need};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use uuid::Uuid;

use crate::backlog::Backlog;
use crate::cost::Usage;
use crate::limiter::{LimiterOps, MemoryLimiter};
use crate::scenario::{Population, Scenario, epoch};
use crate::servers::{Host, Tenant};

/// The folder index that stands for a user's plan job.
pub const PLAN: u16 = u16::MAX;

/// What a user is doing about its waiting jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No job waits (all running, or none left).
    Idle,
    /// A delivery of one of its jobs is on the event queue.
    Awake,
    /// Its delivery came while every invocation was busy: it runs when one ends.
    Deferred,
    /// Its last attempt found `needs[need]` full; it is woken when a slot it could take
    /// comes free. Meanwhile its deliveries are counted, not simulated.
    Asleep {
        need: u8,
    },
    /// A daily budget is spent; it comes back when the budget renews.
    Paused,
    Done,
}

/// What one failed attempt of a user cost, to bill the attempts counted while it sleeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Units {
    pub sqs: f64,
    pub engine_wru: f64,
    pub engine_rru: f64,
    pub limiter_wru: f64,
    pub limiter_rru: f64,
}

#[derive(Debug)]
pub struct SimUser {
    pub mail: MailUser,
    pub id: Uuid,
    pub host: usize,
    pub needs: Vec<Need>,
    pub budgets: Vec<DailyBudget>,
    /// `slots.rs`'s spread of the user's jobs (its INBOX's), for `wait_delay`.
    pub spread: u64,
    /// Bytes left per folder.
    pub left: Vec<u64>,
    pub open_folders: usize,
    pub planned: bool,
    /// Jobs waiting in the queue (folder indexes; `PLAN` for the plan).
    pub ready: Vec<u16>,
    /// Of those, messages never delivered yet (visible at once).
    pub new_jobs: u32,
    pub running: u32,
    pub mode: Mode,
    /// Bumped at every scheduled delivery, so an older one is ignored.
    pub serial: u64,
    /// When the current sleep or pause began.
    pub since: f64,
    /// What `wait_delay` counts from: `waiting_since`, or the last slot taken.
    pub wait_start: f64,
    pub in_line: bool,
    /// Whether its last attempt found it near the front of the line (or held back by its own
    /// mailbox): its jobs then come back after their base delay.
    pub near_front: bool,
    pub fail_cost: Units,
    pub first_byte: Option<f64>,
    pub done_at: Option<f64>,
    pub bytes: u64,
    pub pauses: u32,
    pub longest_pause: f64,
}

/// An invocation that holds slots: a plan, or a copy job logging in or copying.
#[derive(Debug)]
pub struct Run {
    pub user: u32,
    pub folder: u16,
    pub host: usize,
    pub slots: Vec<Slot>,
    pub started: f64,
    pub serial: u64,
    pub copying: bool,
    pub clock0: f64,
    pub work: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ev {
    Tick,
    Poll { user: u32, serial: u64 },
    Login { run: usize, serial: u64 },
    PlanDone { run: usize, serial: u64 },
    HostEnd { host: usize, generation: u64 },
    Deadline { run: usize, serial: u64 },
    JobBack { user: u32, folder: u16 },
    Resume { user: u32, serial: u64 },
}

#[derive(Debug)]
pub(crate) struct Item {
    at: f64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Item {
    /// Reversed: the heap pops the earliest event, ties in the order they were pushed.
    fn cmp(&self, other: &Self) -> Ordering {
        other.at.total_cmp(&self.at).then(other.seq.cmp(&self.seq))
    }
}

/// What the simulation counted besides the bill.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Counts {
    pub plan_runs: u64,
    pub copy_runs: u64,
    pub continuations: u64,
    pub throttled: u64,
    /// Attempts that found no slot: simulated one by one, and counted while asleep.
    pub waiting_simulated: u64,
    pub waiting_counted: f64,
    /// Deliveries of paused jobs (a spent budget), and attempts that found one spent.
    pub paused_deliveries: f64,
    pub wakes: u64,
    pub deferred: u64,
    pub peak_running: u32,
    pub events: u64,
}

pub struct World {
    pub sc: Scenario,
    pub limiter: MemoryLimiter,
    pub projects: Vec<Project>,
    pub users: Vec<SimUser>,
    pub hosts: Vec<Host>,
    pub tenant: Tenant,
    pub backlog: Backlog,
    pub runs: Vec<Option<Run>>,
    free_runs: Vec<usize>,
    pub(crate) events: BinaryHeap<Item>,
    seq: u64,
    pub now: f64,
    /// Invocations holding slots now.
    pub running: u32,
    pub deferred: VecDeque<u32>,
    pub rng: StdRng,
    pub by_id: HashMap<Uuid, u32>,
    /// Users whose wait began within ten longest waits (their delays are still short).
    pub(crate) young: VecDeque<(u32, f64)>,
    /// Users asleep near the front of a line (their delays stay short), checked at each tick.
    pub(crate) fronts: Vec<u32>,
    /// Jobs waiting in the queue, of users not paused; of those, new ones.
    pub ready_total: u64,
    pub new_total: u64,
    pub usage: Usage,
    /// Of `usage`, what attempts that found no slot (or a spent budget) used.
    pub waiting_usage: Usage,
    pub counts: Counts,
    /// Limiter calls the simulation made for itself (not the engine's): not billed.
    pub unbilled: LimiterOps,
    pub done: usize,
    pub run_serial: u64,
    /// The last event other than a tick: a run that stops happening ends the loop.
    pub(crate) last_activity: f64,
    /// Seconds during which every invocation was busy (ticks that found the pool full).
    pub pool_full_s: f64,
    /// Cap checks that failed (host or mailbox), with what was seen.
    pub violations: Vec<String>,
}

impl World {
    pub fn new(sc: &Scenario, population: Population) -> Self {
        let hosts = population
            .hosts
            .iter()
            .map(|h| {
                let need = schedule::server_need(&h.project, domain::app::Side::Source);
                Host::new(
                    h.ceiling,
                    h.per_connection,
                    need.as_ref().map(|n| n.cap),
                    need.map(|n| n.key),
                )
            })
            .collect();
        let projects: Vec<Project> = population.hosts.iter().map(|h| h.project.clone()).collect();
        let users: Vec<SimUser> = population
            .users
            .into_iter()
            .map(|u| sim_user(&projects[u.host], u.host, u.user, u.folders))
            .collect();
        let by_id = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.id, i as u32))
            .collect();
        World {
            limiter: MemoryLimiter::new(),
            projects,
            users,
            hosts,
            tenant: Tenant {
                budget: sc.tenant_budget_mbps * 1e6,
                throttles: 0,
            },
            backlog: Backlog::new(sc.lambda_concurrency, sc.waiting_invocation_s),
            runs: Vec::new(),
            free_runs: Vec::new(),
            events: BinaryHeap::new(),
            seq: 0,
            now: 0.0,
            running: 0,
            deferred: VecDeque::new(),
            rng: StdRng::seed_from_u64(sc.seed ^ 0x5eed),
            by_id,
            young: VecDeque::new(),
            fronts: Vec::new(),
            ready_total: 0,
            new_total: 0,
            usage: Usage::default(),
            waiting_usage: Usage::default(),
            counts: Counts::default(),
            unbilled: LimiterOps::default(),
            done: 0,
            run_serial: 0,
            last_activity: 0.0,
            pool_full_s: 0.0,
            violations: Vec::new(),
            sc: sc.clone(),
        }
    }

    /// The virtual clock as the domain sees it.
    pub fn at(&self, t: f64) -> time::OffsetDateTime {
        epoch() + time::Duration::seconds_f64(t)
    }

    pub fn push(&mut self, at: f64, ev: Ev) {
        self.seq += 1;
        self.events.push(Item {
            at,
            seq: self.seq,
            ev,
        });
    }

    pub fn add_run(&mut self, run: Run) -> usize {
        match self.free_runs.pop() {
            Some(i) => {
                self.runs[i] = Some(run);
                i
            }
            None => {
                self.runs.push(Some(run));
                self.runs.len() - 1
            }
        }
    }

    pub fn take_run(&mut self, i: usize) -> Option<Run> {
        let run = self.runs.get_mut(i)?.take();
        if run.is_some() {
            self.free_runs.push(i);
        }
        run
    }

    /// Runs until every mailbox is done (or nothing is left to happen).
    pub fn run(&mut self) {
        for u in 0..self.users.len() {
            self.add_ready(u as u32, PLAN, true);
            self.usage.sqs_requests += 1.0; // the admin's Start queues the plan
        }
        self.tick();
        // The admin's import queued every plan at once: they drain in queue order.
        for u in 0..self.users.len() as u32 {
            let at = self.rng.r#gen::<f64>() * self.backlog.q;
            self.schedule_poll_at(u, at);
        }
        let trace = std::env::var_os("SCALE_TRACE").is_some();
        while let Some(item) = self.events.pop() {
            self.now = item.at;
            self.counts.events += 1;
            if trace && self.counts.events.is_multiple_of(1_000_000) {
                self.trace();
            }
            if item.ev != Ev::Tick {
                self.last_activity = self.now;
            }
            self.handle(item.ev);
            if self.done == self.users.len() {
                break;
            }
        }
        let now = self.now;
        for h in &mut self.hosts {
            h.account(now);
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Tick => self.tick(),
            Ev::Poll { user, serial } => {
                let u = &self.users[user as usize];
                if u.serial != serial || u.mode != Mode::Awake {
                    return;
                }
                if self.running >= self.sc.lambda_concurrency {
                    self.users[user as usize].mode = Mode::Deferred;
                    self.deferred.push_back(user);
                    self.counts.deferred += 1;
                } else {
                    self.attempt(user);
                }
            }
            Ev::Login { run, serial } => self.login(run, serial),
            Ev::PlanDone { run, serial } => self.plan_done(run, serial),
            Ev::HostEnd { host, generation } => self.host_end(host, generation),
            Ev::Deadline { run, serial } => self.deadline(run, serial),
            Ev::JobBack { user, folder } => {
                self.add_ready(user, folder, true);
                if self.users[user as usize].mode == Mode::Idle {
                    self.schedule_poll(user);
                }
            }
            Ev::Resume { user, serial } => self.resume(user, serial),
        }
    }
}

fn sim_user(project: &Project, host: usize, mail: MailUser, folders: Vec<u64>) -> SimUser {
    let id = mail.id.0;
    let spread = (id
        .as_u128()
        .wrapping_add(b"INBOX".iter().map(|b| u128::from(*b)).sum())
        % 1_000_003) as u64;
    SimUser {
        needs: schedule::needs(project, &mail),
        budgets: schedule::daily_budgets(project, &mail),
        mail,
        id,
        host,
        spread,
        open_folders: folders.len(),
        left: folders,
        planned: false,
        ready: Vec::new(),
        new_jobs: 0,
        running: 0,
        mode: Mode::Idle,
        serial: 0,
        since: 0.0,
        wait_start: 0.0,
        in_line: false,
        near_front: false,
        fail_cost: Units::default(),
        first_byte: None,
        done_at: None,
        bytes: 0,
        pauses: 0,
        longest_pause: 0.0,
    }
}
