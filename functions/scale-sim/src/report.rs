//! What a run found: figures, the bill, and whether every cap held; printed as a table and
//! written as JSON.

use contract::ConnectorKind;
use serde::Serialize;

use crate::cost::{self, Line};
use crate::scenario::{Population, Scenario};
use crate::world::{Counts, World};

const H: f64 = 3600.0;

#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    pub mailboxes: usize,
    pub total_tb: f64,
    pub mean_gb: f64,
    pub median_gb: f64,
    pub p99_gb: f64,
    pub largest_gb: f64,
    pub share_over_50_gb: f64,
    pub folders_mean: f64,
    pub folder_jobs: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostRow {
    pub name: String,
    pub kind: String,
    pub mailboxes: usize,
    pub tb: f64,
    pub cap: Option<u32>,
    pub peak_connections: u32,
    /// Free slot time while users of the host waited, as a share of its cap's time.
    pub idle_share: f64,
    pub done_hours: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub total_hours: f64,
    /// Every mailbox but the Google Workspace ones (daily budgets).
    pub total_hours_without_google: f64,
    pub throughput_gb_per_hour: f64,
    /// The mailboxes but Google Workspace's, until they are done.
    pub throughput_gb_per_hour_without_google: f64,
    /// From Start (every user pressed at once) to done.
    pub mailbox_hours_p50: f64,
    pub mailbox_hours_p99: f64,
    /// From its first byte to done.
    pub copying_hours_p50: f64,
    pub copying_hours_p99: f64,
    pub first_byte_hours_p50: f64,
    pub longest_wait_for_first_byte_hours: f64,
    pub priority_users: usize,
    pub priority_done_hours_p50: f64,
    pub others_done_hours_p50: f64,
    pub idle_slot_share: f64,
    pub peak_invocations: u32,
    pub peak_queueing_seconds: f64,
    /// Time every invocation was busy (waiting deliveries then wait for one to end).
    pub pool_full_hours: f64,
    pub throttles: u64,
    pub google_mailboxes: usize,
    pub google_paused_mailboxes: usize,
    pub google_longest_pause_hours: f64,
    pub google_largest_gb: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Invocations {
    pub total: f64,
    pub plan: u64,
    pub copy: u64,
    pub throttled: u64,
    pub continuations: u64,
    /// Found no slot: simulated one by one, and counted while the user slept.
    pub waiting_simulated: u64,
    pub waiting_counted: f64,
    pub paused: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub bench: &'static str,
    pub scenario: Scenario,
    pub sizes: Sizes,
    pub figures: Figures,
    pub invocations: Invocations,
    pub hosts: Vec<HostRow>,
    pub bill: Vec<Line>,
    pub aws_usd: f64,
    pub total_usd: f64,
    pub aws_usd_per_tb: f64,
    /// Of `aws_usd`, what attempts that found no slot or a spent budget cost.
    pub waiting_usd: f64,
    pub cap_held: bool,
    pub violations: Vec<String>,
    pub all_done: bool,
    pub counts: Counts,
    pub wall_seconds: f64,
}

fn pct(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

pub fn sizes(population: &Population) -> Sizes {
    let mut gb: Vec<f64> = population
        .users
        .iter()
        .map(|u| u.bytes() as f64 / 1e9)
        .collect();
    let n = gb.len().max(1) as f64;
    let total: f64 = gb.iter().sum();
    let jobs: usize = population.users.iter().map(|u| u.folders.len()).sum();
    Sizes {
        mailboxes: gb.len(),
        total_tb: total / 1e3,
        mean_gb: total / n,
        median_gb: pct(&mut gb, 0.5),
        p99_gb: pct(&mut gb, 0.99),
        largest_gb: pct(&mut gb, 1.0),
        share_over_50_gb: gb.iter().filter(|g| **g > 50.0).count() as f64 / n,
        folders_mean: jobs as f64 / n,
        folder_jobs: jobs,
    }
}

impl Report {
    pub fn new(world: &World, population: &Population, wall_seconds: f64) -> Report {
        let mut usage = world.usage.clone();
        let billed = world.limiter.ops().since(&world.unbilled);
        usage.limiter_wru += billed.write_units() as f64;
        usage.limiter_rru += billed.read_units() as f64;
        let bill = usage.bill();
        let (aws_usd, total_usd) = cost::totals(&bill);
        let (waiting_usd, _) = cost::totals(&world.waiting_usage.bill());
        let figures = figures(world);
        let hosts = hosts(world, population);
        let c = &world.counts;
        Report {
            bench: "scale",
            scenario: world.sc.clone(),
            sizes: sizes(population),
            invocations: Invocations {
                total: usage.invocations,
                plan: c.plan_runs,
                copy: c.copy_runs,
                throttled: c.throttled,
                continuations: c.continuations,
                waiting_simulated: c.waiting_simulated,
                waiting_counted: c.waiting_counted,
                paused: c.paused_deliveries,
            },
            aws_usd_per_tb: aws_usd / (usage.bytes_copied / 1e12).max(1e-9),
            waiting_usd,
            bill,
            aws_usd,
            total_usd,
            cap_held: world.violations.is_empty(),
            violations: world.violations.iter().take(20).cloned().collect(),
            all_done: world.done == world.users.len(),
            counts: c.clone(),
            figures,
            hosts,
            wall_seconds,
        }
    }
}

fn figures(w: &World) -> Figures {
    let done = |u: &crate::world::SimUser| u.done_at.unwrap_or(f64::NAN) / H;
    let google = |u: &crate::world::SimUser| !u.budgets.is_empty();
    let mut all: Vec<f64> = w.users.iter().map(done).collect();
    let mut active: Vec<f64> = w
        .users
        .iter()
        .map(|u| done(u) - u.first_byte.unwrap_or(0.0) / H)
        .collect();
    let mut first: Vec<f64> = w
        .users
        .iter()
        .map(|u| u.first_byte.unwrap_or(f64::NAN) / H)
        .collect();
    let mut prio: Vec<f64> = w
        .users
        .iter()
        .filter(|u| u.mail.priority > 0)
        .map(done)
        .collect();
    let mut others: Vec<f64> = w
        .users
        .iter()
        .filter(|u| u.mail.priority == 0)
        .map(done)
        .collect();
    let imap: Vec<f64> = w.users.iter().filter(|u| !google(u)).map(done).collect();
    let gw: Vec<&crate::world::SimUser> = w.users.iter().filter(|u| google(u)).collect();
    let total = pct(&mut all.clone(), 1.0);
    let imap_gb: f64 = w
        .users
        .iter()
        .filter(|u| !google(u))
        .map(|u| u.bytes as f64 / 1e9)
        .sum();
    let imap_hours = pct(&mut imap.clone(), 1.0);
    let (idle, cap) = w.hosts.iter().fold((0.0, 0.0), |(i, c), h| {
        (i + h.idle_slot_s, c + h.cap_slot_s)
    });
    Figures {
        total_hours: total,
        total_hours_without_google: imap_hours,
        throughput_gb_per_hour_without_google: imap_gb / imap_hours.max(1e-9),
        throughput_gb_per_hour: w.usage.bytes_copied / 1e9 / total.max(1e-9),
        mailbox_hours_p50: pct(&mut all, 0.5),
        mailbox_hours_p99: pct(&mut all, 0.99),
        copying_hours_p50: pct(&mut active, 0.5),
        copying_hours_p99: pct(&mut active, 0.99),
        first_byte_hours_p50: pct(&mut first, 0.5),
        longest_wait_for_first_byte_hours: pct(&mut first, 1.0),
        priority_users: prio.len(),
        priority_done_hours_p50: pct(&mut prio, 0.5),
        others_done_hours_p50: pct(&mut others, 0.5),
        idle_slot_share: idle / cap.max(1e-9),
        peak_invocations: w.counts.peak_running,
        peak_queueing_seconds: w.backlog.peak_q,
        pool_full_hours: w.pool_full_s / H,
        throttles: w.tenant.throttles,
        google_mailboxes: gw.len(),
        google_paused_mailboxes: gw.iter().filter(|u| u.pauses > 0).count(),
        google_longest_pause_hours: gw.iter().map(|u| u.longest_pause).fold(0.0, f64::max) / H,
        google_largest_gb: gw.iter().map(|u| u.bytes as f64 / 1e9).fold(0.0, f64::max),
    }
}

fn hosts(w: &World, population: &Population) -> Vec<HostRow> {
    population
        .hosts
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let users: Vec<_> = w.users.iter().filter(|u| u.host == i).collect();
            let host = &w.hosts[i];
            HostRow {
                name: spec.name.clone(),
                kind: match spec.kind {
                    ConnectorKind::GoogleWorkspace => "Google Workspace".into(),
                    _ => "IMAP".into(),
                },
                mailboxes: users.len(),
                tb: users.iter().map(|u| u.bytes as f64).sum::<f64>() / 1e12,
                cap: host.cap,
                peak_connections: host.peak_open,
                idle_share: host.idle_slot_s / host.cap_slot_s.max(1e-9),
                done_hours: users.iter().filter_map(|u| u.done_at).fold(0.0, f64::max) / H,
            }
        })
        .collect()
}
