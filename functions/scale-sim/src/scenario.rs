//! What is simulated: the knobs of one scenario (every assumption in one place, printed with
//! the results) and the population it draws from them — hosts, projects, users, folders — as
//! the domain's own `Project` and `MailUser` values.

use contract::{ConnectorKind, InviteTo, Security, UserState};
use domain::model::{Connector, ConnectorAuth, EmailAddress, MailUser, Project, ProjectId, UserId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use time::OffsetDateTime;

const MB: f64 = 1e6;
const GB: f64 = 1e9;

/// Every assumption of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    pub mailboxes: usize,
    /// Source hosts; `google_hosts` of them are Google Workspace domains (imap.gmail.com).
    pub hosts: usize,
    pub google_hosts: usize,
    /// Users per host ∝ 1 / rank^skew (rank 1 the largest host).
    pub host_skew: f64,
    /// Mailbox size: lognormal with this median and sigma, at most `max_gb` (the largest
    /// Exchange Online primary mailbox, 100 GB).
    pub median_gb: f64,
    pub sigma: f64,
    pub max_gb: f64,
    /// Folders per mailbox: `min + (max - min) * u^folder_skew`, u uniform.
    pub folders_min: u32,
    pub folders_max: u32,
    pub folder_skew: f64,
    /// The project's `source_server` limit; `None` takes the IMAP profile's 16.
    pub source_server_cap: Option<u32>,
    /// One connection reads the source at this rate and appends to the target at
    /// `target_append_mbps`, one chunk after the other (COSTS.md: S = 1/(1/R + 1/W)).
    pub source_read_mbps: f64,
    pub target_append_mbps: f64,
    /// What an IMAP host serves in all, shared by its connections: from `ceiling_min_mbps`
    /// to `ceiling_max_mbps`, spread over the hosts whatever their size.
    pub ceiling_min_mbps: f64,
    pub ceiling_max_mbps: f64,
    /// Gmail's per-connection read rate (no host ceiling: Google's capacity).
    pub google_read_mbps: f64,
    /// Exchange Online throttles a job that logs in while the tenant takes more than this.
    pub tenant_budget_mbps: f64,
    /// Its "Suggested Backoff Time", uniform in this range.
    pub throttle_hint_s: (f64, f64),
    /// `MaxConcurrentMailboxes`: concurrent worker invocations.
    pub lambda_concurrency: u32,
    /// The worker's timeout (infra/template.yaml: 300 s) and memory (1024 MB).
    pub lambda_timeout_s: f64,
    pub worker_memory_gb: f64,
    /// Before copying: the cold start or warm hand-over, both logins, the job's reads.
    pub login_s: f64,
    /// An invocation that finds no slot (reads, limiter calls, the re-queue).
    pub waiting_invocation_s: f64,
    /// A plan job: fixed part and per folder (LIST, STATUS, CREATE on the target).
    pub plan_base_s: f64,
    pub plan_per_folder_s: f64,
    /// Share of users the admin gives `priority`.
    pub priority_share: f64,
    pub priority: u8,
    /// How often the backlog of waiting messages is measured.
    pub pool_tick_s: f64,
}

impl Scenario {
    /// The scenario: 100,000 mailboxes over 40 source hosts (one a Google Workspace
    /// domain) into one Microsoft 365 tenant, started at once.
    pub fn full() -> Self {
        Scenario {
            name: "100,000 mailboxes, 40 source hosts, one Microsoft 365 tenant".into(),
            seed: 20261207,
            mailboxes: 100_000,
            hosts: 40,
            google_hosts: 1,
            host_skew: 0.4,
            median_gb: 2.0,
            sigma: 1.3,
            max_gb: 100.0,
            folders_min: 5,
            folders_max: 40,
            folder_skew: 2.5,
            source_server_cap: None,
            source_read_mbps: 10.0,
            target_append_mbps: 10.0,
            ceiling_min_mbps: 60.0,
            ceiling_max_mbps: 120.0,
            google_read_mbps: 3.0,
            tenant_budget_mbps: 3_000.0,
            throttle_hint_s: (60.0, 300.0),
            lambda_concurrency: 1_000,
            lambda_timeout_s: 300.0,
            worker_memory_gb: 1.0,
            login_s: 1.5,
            waiting_invocation_s: 0.1,
            plan_base_s: 2.0,
            plan_per_folder_s: 0.3,
            priority_share: 0.01,
            priority: 5,
            pool_tick_s: 10.0,
        }
    }

    /// A scenario the tests run in seconds: 300 small mailboxes, 4 hosts capped at 3.
    pub fn small() -> Self {
        Scenario {
            name: "300 mailboxes, 4 source hosts capped at 3".into(),
            seed: 7,
            mailboxes: 300,
            hosts: 4,
            google_hosts: 0,
            median_gb: 0.2,
            sigma: 1.0,
            max_gb: 5.0,
            folders_min: 3,
            folders_max: 12,
            source_server_cap: Some(3),
            lambda_concurrency: 50,
            tenant_budget_mbps: 40.0,
            priority_share: 0.02,
            ..Scenario::full()
        }
    }

    /// A copy job's copying time: the worker's budget (timeout − 5 s, `worker::SAFETY_MARGIN`)
    /// less the engine's reserve (`budget_reserve`: 30 s, at most a quarter), less the login.
    pub fn copy_window_s(&self) -> f64 {
        let budget = self.lambda_timeout_s - 5.0;
        budget - (30f64).min(budget / 4.0) - self.login_s
    }
}

/// A source host (one project per host, every one into the same tenant).
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub name: String,
    pub kind: ConnectorKind,
    pub project: Project,
    /// What the host serves in all, bytes per second (`f64::INFINITY`: no ceiling).
    pub ceiling: f64,
    /// One connection's rate when the host is not the limit: read and append in turn.
    pub per_connection: f64,
}

/// One mailbox to move.
#[derive(Debug, Clone)]
pub struct UserSpec {
    pub host: usize,
    pub user: MailUser,
    pub folders: Vec<u64>,
}

impl UserSpec {
    pub fn bytes(&self) -> u64 {
        self.folders.iter().sum()
    }
}

/// The generated world.
#[derive(Debug, Clone)]
pub struct Population {
    pub hosts: Vec<HostSpec>,
    pub users: Vec<UserSpec>,
}

/// The start of the virtual clock: the moment the admin presses Start.
pub fn epoch() -> OffsetDateTime {
    time::macros::datetime!(2026-12-07 08:00 UTC)
}

fn connector(kind: ConnectorKind, host: &str) -> Connector {
    let auth = match kind {
        ConnectorKind::Imap => ConnectorAuth::Admin {
            login_pattern: "{email}*admin".into(),
            password: None,
        },
        ConnectorKind::Microsoft365 => ConnectorAuth::MicrosoftApp {
            tenant_id: "contoso.onmicrosoft.com".into(),
            client_id: "00000000-0000-0000-0000-000000000001".into(),
            login_pattern: "{email}".into(),
            secret: None,
        },
        ConnectorKind::GoogleWorkspace => ConnectorAuth::GoogleServiceAccount {
            client_email: "mailferry@example.iam.gserviceaccount.com".into(),
            key: None,
        },
    };
    Connector {
        kind,
        host: host.into(),
        port: 993,
        security: Security::Tls,
        auth,
    }
}

fn project(scenario: &Scenario, name: &str, kind: ConnectorKind, host: &str) -> Project {
    let mut copy = contract::CopyOptions::default();
    copy.limits.source_server = scenario.source_server_cap;
    Project {
        id: ProjectId::new(),
        name: name.into(),
        source: connector(kind, host),
        target: connector(
            ConnectorKind::Microsoft365,
            domain::providers::MICROSOFT_365
                .host
                .map_or("outlook.office365.com", |h| h.value),
        ),
        invite_to: InviteTo::None,
        admin_email: None,
        notify_user: false,
        copy,
        retention: Default::default(),
        sync: Default::default(),
        closed_at: None,
        created_at: epoch(),
        version: 1,
    }
}

/// Users per host: ∝ 1/rank^skew, rounded so they add up to `n`.
fn users_per_host(scenario: &Scenario) -> Vec<usize> {
    let weights: Vec<f64> = (1..=scenario.hosts)
        .map(|k| 1.0 / (k as f64).powf(scenario.host_skew))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut counts: Vec<usize> = weights
        .iter()
        .map(|w| (w / total * scenario.mailboxes as f64).floor() as usize)
        .collect();
    let mut left = scenario.mailboxes - counts.iter().sum::<usize>();
    for c in counts.iter_mut() {
        if left == 0 {
            break;
        }
        *c += 1;
        left -= 1;
    }
    counts
}

fn hosts(scenario: &Scenario) -> Vec<HostSpec> {
    let s = scenario;
    let per_connection =
        1.0 / (1.0 / (s.source_read_mbps * MB) + 1.0 / (s.target_append_mbps * MB));
    let google_every = if s.google_hosts == 0 {
        usize::MAX
    } else {
        (s.hosts / (s.google_hosts + 1)).max(1)
    };
    let mut google = 0;
    (0..s.hosts)
        .map(|k| {
            // The Google domains sit among the middle-sized hosts.
            let is_google = google < s.google_hosts && (k + 1) % google_every == 0 && k > 0;
            // Ceilings spread over the hosts independently of their size (a golden-ratio
            // sequence), so a large host may be fast or slow.
            let spread = ((k + 1) as f64 * 0.618_033_988_7).fract();
            if is_google {
                google += 1;
                let name = format!("gmail-domain-{google}");
                let gw = domain::providers::GOOGLE_WORKSPACE
                    .host
                    .map_or("imap.gmail.com", |h| h.value);
                let per =
                    1.0 / (1.0 / (s.google_read_mbps * MB) + 1.0 / (s.target_append_mbps * MB));
                HostSpec {
                    project: project(s, &name, ConnectorKind::GoogleWorkspace, gw),
                    name,
                    kind: ConnectorKind::GoogleWorkspace,
                    ceiling: f64::INFINITY,
                    per_connection: per,
                }
            } else {
                let name = format!("imap.site{:02}.example", k + 1);
                HostSpec {
                    project: project(s, &name, ConnectorKind::Imap, &name),
                    name,
                    kind: ConnectorKind::Imap,
                    ceiling: (s.ceiling_min_mbps
                        + (s.ceiling_max_mbps - s.ceiling_min_mbps) * spread)
                        * MB,
                    per_connection,
                }
            }
        })
        .collect()
}

/// A standard normal draw (Box–Muller; `rand` 0.8 alone has no normal distribution).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.r#gen::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A mailbox's folders: a skewed split of its bytes (a few large folders, many small).
fn folders(scenario: &Scenario, rng: &mut StdRng, bytes: f64) -> Vec<u64> {
    let s = scenario;
    let u: f64 = rng.r#gen();
    let n = s.folders_min
        + ((s.folders_max - s.folders_min) as f64 * u.powf(s.folder_skew)).round() as u32;
    let weights: Vec<f64> = (0..n)
        .map(|_| {
            let e = -rng.r#gen::<f64>().max(f64::MIN_POSITIVE).ln();
            e * e
        })
        .collect();
    let total: f64 = weights.iter().sum();
    weights
        .iter()
        .map(|w| ((w / total * bytes) as u64).max(1_000))
        .collect()
}

fn mail_user(
    rng: &mut StdRng,
    project: &Project,
    i: usize,
    source_domain: &str,
    priority: u8,
) -> MailUser {
    let address =
        |a: String| EmailAddress::parse(&a).unwrap_or_else(|e| panic!("a generated address: {e}"));
    MailUser {
        // From the seed (not `UserId::new`): ranks end with the id, and a run must repeat.
        id: UserId(uuid::Uuid::from_u128(rng.r#gen::<u128>())),
        project_id: project.id,
        source_email: address(format!("user{i}@{source_domain}")),
        target_email: address(format!("user{i}@contoso.example")),
        display_name: String::new(),
        state: UserState::Scheduled,
        pass: 1,
        progress: Default::default(),
        last_error: None,
        priority,
        waiting_since: None,
        sync: Default::default(),
        preflight: None,
        line: None,
        has_credentials: true,
        invite_sent_at: None,
        created_at: epoch(),
        updated_at: epoch(),
        version: 1,
    }
}

/// Draws the hosts and users of `scenario` from its seed.
pub fn generate(scenario: &Scenario) -> Population {
    let mut rng = StdRng::seed_from_u64(scenario.seed);
    let hosts = hosts(scenario);
    let counts = users_per_host(scenario);
    let mut users = Vec::with_capacity(scenario.mailboxes);
    for (h, count) in counts.iter().enumerate() {
        let domain_name = format!("site{:02}.example", h + 1);
        for _ in 0..*count {
            let gb = (scenario.median_gb * (scenario.sigma * normal(&mut rng)).exp())
                .min(scenario.max_gb);
            let priority = if rng.r#gen::<f64>() < scenario.priority_share {
                scenario.priority
            } else {
                0
            };
            let i = users.len();
            users.push(UserSpec {
                host: h,
                user: mail_user(&mut rng, &hosts[h].project, i, &domain_name, priority),
                folders: folders(scenario, &mut rng, gb * GB),
            });
        }
    }
    Population { hosts, users }
}
