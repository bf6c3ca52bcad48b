//! Who goes next and how long to wait: the plain rules the copy engine and the scale
//! simulation (`cargo xtask bench scale`) both schedule by, with no I/O of their own.
//!
//! - **A line per capped server.** A user's rank is fixed when it first asks for a connection
//!   in a pass: priority first, then who started first. A job whose server is at its cap puts
//!   its user in that server's line (`ports::Limiter::join_line`), and a job may take a slot
//!   only while the free slots outnumber the places ranked before its own. So a newcomer never
//!   takes the slot a user waiting longer is owed, a user with fifty folder jobs holds one
//!   place, not fifty, and a user being served keeps its rank for its next folders: users are
//!   served in order, each until it is done, and no user starves.
//! - **Waiting costs little.** A job near the front of its line comes back within seconds; one
//!   further back comes back less often the longer it has waited (at most a minute), so
//!   thousands of waiting mailboxes do not turn into a busy loop of queue deliveries, and a
//!   freed slot waits seconds for the user it is owed.
//! - **Daily budgets over a rolling day.** Bytes a mailbox downloads or uploads are counted per
//!   hour (`ports::Limiter::add_usage`); a budget is spent when the last 24 hours reach it, and
//!   it renews as old hours leave the window: the mailbox pauses until then, visibly.
//! - **Refused or throttled**: how long a folder waits is [`refusal_delay`] (the copy engine's,
//!   re-exported here with the other rules).

use std::time::Duration;

use time::OffsetDateTime;

use crate::app::Side;
pub use crate::app::{is_connection_limit, refusal_delay, throttle_delay};
use crate::error::StoreError;
use crate::model::{LinePlace, MailUser, Project};
use crate::ports::{Limiter, Slot};
use crate::providers;

/// The highest priority an admin can give a user; 0 is the default.
pub const PRIORITY_MAX: u8 = 9;

/// The rank of a place in a server's line; lower ranks go first. Higher priority first, then
/// the earlier start of waiting, then the user's id, so every job of one user computes the
/// same rank and a user holds one place.
pub fn line_rank(priority: u8, waiting_since: OffsetDateTime, who: &str) -> String {
    let since_ms = (waiting_since.unix_timestamp_nanos() / 1_000_000).max(0);
    format!(
        "{}{since_ms:020}#{who}",
        PRIORITY_MAX - priority.min(PRIORITY_MAX)
    )
}

/// A rank after every other, for counting a whole line.
pub const END_OF_LINE: &str = "~";

/// Whether a job may try for a slot of a key with `cap` slots, `in_use` of them held, and
/// `ahead` places in line ranked before its own: only while the free slots outnumber them.
pub fn may_take(cap: u32, in_use: u32, ahead: u32) -> bool {
    in_use < cap && ahead < cap - in_use
}

/// How long a job that found no slot stays away: 2 to 6 seconds when it is near the front
/// of its line or has just begun to wait (spread by `spread` so waiting jobs do not all come
/// back at once), else a tenth of the time it has waited, at most [`LONGEST_WAIT`]. The
/// scale simulation (`cargo xtask bench scale`) weighs it: with 100,000 mailboxes started at
/// once, attempts that find no slot cost $3,991 of a $5,924 bill at a one-minute longest wait
/// (2.2 % of slot time idle), $2,429 of $4,358 at two minutes (3.4 % idle), $1,426 of $3,345
/// at five (8.1 % idle, the whole move 7 % longer); two minutes it is.
pub fn wait_delay(waited: Duration, spread: u64, near_front: bool) -> Duration {
    let base = Duration::from_secs(2 + spread % 5);
    if near_front {
        return base;
    }
    (waited / 10).clamp(base, LONGEST_WAIT.max(base))
}

/// The longest a waiting job stays away.
pub const LONGEST_WAIT: Duration = Duration::from_secs(120);

/// How many places from the front of a line count as near it, for a key of `cap` slots: two
/// rounds of the cap, so a user moving up the line is polling fast before it is owed a slot.
pub fn near_front_places(cap: u32) -> u32 {
    cap.saturating_mul(2).max(1)
}

/// The user's place in the lines for this pass: the one kept on it when it is of this pass,
/// else a new one from `now` (which the caller keeps on the user).
pub fn line_place(user: &MailUser, now: OffsetDateTime) -> LinePlace {
    user.line
        .filter(|l| l.pass == user.pass)
        .unwrap_or(LinePlace {
            pass: user.pass,
            since: now,
        })
}

/// How long a job paused for a spent budget stays away: until the budget renews, at most the
/// 15 minutes SQS can delay a message (it then looks again, costing one short delivery), at
/// least 5 s.
pub fn pause_length(now: OffsetDateTime, resumes_at: OffsetDateTime) -> Duration {
    Duration::try_from(resumes_at - now)
        .unwrap_or_default()
        .clamp(Duration::from_secs(5), Duration::from_secs(900))
}

/// How long a place in line is kept without its user coming back: longer than any wait, so a
/// waiting user never loses its place, and short enough that a user who stopped waiting (its
/// jobs done elsewhere, deleted, paused) leaves the line on its own.
pub fn place_kept(delay: Duration) -> Duration {
    delay + Duration::from_secs(90)
}

/// The hour a usage count belongs to.
pub fn hour_of(t: OffsetDateTime) -> OffsetDateTime {
    let s = t.unix_timestamp();
    OffsetDateTime::from_unix_timestamp(s - s.rem_euclid(3600)).unwrap_or(t)
}

/// The first hour of the rolling day that ends with `now`'s hour.
pub fn day_start(now: OffsetDateTime) -> OffsetDateTime {
    hour_of(now) - time::Duration::hours(23)
}

/// What a daily budget allows now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// This many bytes are left today.
    Open { left: u64 },
    /// Spent: it renews at `resumes_at`, when enough old hours have left the rolling day.
    Spent { resumes_at: OffsetDateTime },
}

/// The budget of `cap` bytes per rolling day, from the usage counted per hour (any order;
/// hours before the day are ignored).
pub fn budget(usage: &[(OffsetDateTime, u64)], cap: u64, now: OffsetDateTime) -> Budget {
    let start = day_start(now);
    let mut hours: Vec<(OffsetDateTime, u64)> = usage
        .iter()
        .copied()
        .filter(|(hour, _)| *hour >= start)
        .collect();
    hours.sort_unstable_by_key(|(hour, _)| *hour);
    let mut spent: u64 = hours.iter().map(|(_, b)| *b).sum();
    if spent < cap {
        return Budget::Open { left: cap - spent };
    }
    for (hour, bytes) in &hours {
        spent -= bytes;
        if spent < cap {
            return Budget::Spent {
                resumes_at: *hour + time::Duration::hours(24),
            };
        }
    }
    // A cap of 0: nothing is ever allowed; say the budget renews a day from now.
    Budget::Spent {
        resumes_at: hour_of(now) + time::Duration::hours(24),
    }
}

/// A slot a job needs: the limiter's key, its cap, and how the user is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub key: String,
    pub cap: u32,
    pub what: String,
    /// Whether waiting users take places in the key's line (a server's slots, which many
    /// users share; a mailbox's slots are its own user's).
    pub lined: bool,
}

/// A need whose cap is reached (or whose free slots are owed to users ranked first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Full {
    pub what: String,
    pub in_use: u32,
    pub cap: u32,
    /// Whether the user is among the first `near_front_places` of the need's line (or the need
    /// has no line): a slot will soon be its, so it comes back soon.
    pub near_front: bool,
}

/// The slots a copy job of `user` needs: each side's mailbox, then each side's server when
/// the project or the provider profile caps it. The keys name the server (host and port) and
/// the mailbox, not the project, so every project copying from one server shares its cap. A
/// user's own mailbox comes first: a job its own user's other jobs hold back never takes a
/// place in a server's line.
pub fn needs(project: &Project, user: &MailUser) -> Vec<Need> {
    let limits = &project.copy.limits;
    let mut out = Vec::with_capacity(4);
    for side in [Side::Source, Side::Target] {
        let connector = side.of(project);
        let profile = providers::profile(connector.kind);
        let mailbox = side.email(user).as_str().to_ascii_lowercase();
        out.push(Need {
            key: format!(
                "mailbox:{}:{}:{mailbox}",
                connector.host.to_ascii_lowercase(),
                connector.port
            ),
            cap: limits
                .per_mailbox
                .unwrap_or(profile.connections_per_mailbox.value),
            what: format!("the {} mailbox {mailbox}", side.as_str()),
            lined: false,
        });
    }
    out.extend(
        [Side::Source, Side::Target]
            .map(|side| server_need(project, side))
            .into_iter()
            .flatten(),
    );
    // A job copying within one server (or one mailbox) needs two slots of its key: a cap
    // below that could never be met, and the job would wait for ever.
    for i in 0..out.len() {
        let n = out.iter().filter(|o| o.key == out[i].key).count() as u32;
        out[i].cap = out[i].cap.max(n);
    }
    out
}

/// The slot of a side's server, when the project or the provider profile caps it.
pub fn server_need(project: &Project, side: Side) -> Option<Need> {
    let connector = side.of(project);
    let limits = &project.copy.limits;
    let cap = match side {
        Side::Source => limits.source_server,
        Side::Target => limits.target_server,
    }
    .or(providers::profile(connector.kind)
        .connections_per_host
        .map(|r| r.value))?;
    let host = connector.host.to_ascii_lowercase();
    Some(Need {
        key: format!("server:{host}:{}", connector.port),
        cap,
        what: format!("the {} server {host}:{}", side.as_str(), connector.port),
        lined: true,
    })
}

/// The text a user waiting for a slot shows.
pub fn waiting_text(full: &Full) -> String {
    format!(
        "waiting: {} is at its limit ({} of {} connections)",
        full.what, full.in_use, full.cap
    )
}

/// Where a job stands in the lines of the servers it needs.
#[derive(Debug, Clone)]
pub struct Place<'a> {
    /// The user's rank (`line_rank`).
    pub rank: &'a str,
    /// Until when a place joined now is kept (`place_kept`).
    pub kept_until: OffsetDateTime,
}

/// Takes a slot for every need, or none: the first need found full, with the slots taken so
/// far given back. A lined need is tried only while its free slots outnumber the places ranked
/// before `place`; a full one puts the user in its line. Slots are held by `holder` until
/// `until`.
pub async fn take_slots(
    limiter: &dyn Limiter,
    needs: &[Need],
    holder: &str,
    place: &Place<'_>,
    now: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<Result<Vec<Slot>, Full>, StoreError> {
    let mut held = Vec::with_capacity(needs.len());
    for need in needs {
        // The slots in use as read for the admission, which also tell a refused user how
        // full the key is.
        let mut in_use = need.cap;
        let taken = match admitted(limiter, need, place, now).await {
            Ok((admit, used)) => {
                in_use = used;
                if admit {
                    limiter
                        .acquire(&need.key, need.cap, holder, until, now)
                        .await
                } else {
                    Ok(None)
                }
            }
            Err(e) => Err(e),
        };
        match taken {
            Ok(Some(slot)) => held.push(slot),
            Ok(None) => {
                give_back(limiter, &held).await;
                let mut near_front = true;
                if need.lined {
                    limiter
                        .join_line(&need.key, place.rank, place.kept_until)
                        .await?;
                    let near = near_front_places(need.cap);
                    let ahead = limiter
                        .ahead_in_line(&need.key, place.rank, now, near)
                        .await?;
                    near_front = ahead < near;
                }
                return Ok(Err(Full {
                    what: need.what.clone(),
                    in_use,
                    cap: need.cap,
                    near_front,
                }));
            }
            Err(e) => {
                give_back(limiter, &held).await;
                return Err(e);
            }
        }
    }
    // Leaving costs one delete per lined need, and is done even when the user does not know
    // it waited (its record's write may have lost a race): a place left behind would hold a
    // slot for a user that has one until it ended.
    for need in needs.iter().filter(|n| n.lined) {
        let _ = limiter.leave_line(&need.key, place.rank).await;
    }
    Ok(Ok(held))
}

/// Whether a need may be tried, and the slots in use it read: while it has a free slot (one read, cheaper than the failed
/// conditional writes of trying every slot of a full key), and for a lined one only while its
/// free slots outnumber the places before the user's.
async fn admitted(
    limiter: &dyn Limiter,
    need: &Need,
    place: &Place<'_>,
    now: OffsetDateTime,
) -> Result<(bool, u32), StoreError> {
    let in_use = limiter.in_use(&need.key, now).await?;
    let free = need.cap.saturating_sub(in_use);
    if free == 0 {
        return Ok((false, in_use));
    }
    if !need.lined {
        return Ok((true, in_use));
    }
    let ahead = limiter
        .ahead_in_line(&need.key, place.rank, now, free)
        .await?;
    Ok((may_take(need.cap, in_use, ahead), in_use))
}

/// Gives slots back; one that cannot be given back ends on its own.
pub async fn give_back(limiter: &dyn Limiter, slots: &[Slot]) {
    for slot in slots {
        if let Err(e) = limiter.release(slot).await {
            tracing::warn!(key = %slot.key, error = %e, "a connection slot was not given back; it ends on its own");
        }
    }
}

/// A daily budget a job spends from: the usage key (the mailbox and the direction), its cap in
/// bytes per rolling day, and how the user is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyBudget {
    pub key: String,
    pub cap: u64,
    pub what: String,
    pub side: Side,
}

/// The daily budgets a job of `user` spends from: the source mailbox's download, the target
/// mailbox's upload, where the project or the provider profile sets one.
pub fn daily_budgets(project: &Project, user: &MailUser) -> Vec<DailyBudget> {
    const MB: u64 = 1_000_000;
    let limits = &project.copy.limits;
    let mut out = Vec::with_capacity(2);
    for side in [Side::Source, Side::Target] {
        let connector = side.of(project);
        let profile = providers::profile(connector.kind);
        let (own, default, direction) = match side {
            Side::Source => (
                limits.daily_download_mb,
                profile.daily_download_bytes,
                "download",
            ),
            Side::Target => (limits.daily_upload_mb, profile.daily_upload_bytes, "upload"),
        };
        let Some(cap) = own
            .map(|mb| mb.saturating_mul(MB))
            .or(default.map(|r| r.value))
        else {
            continue;
        };
        let mailbox = side.email(user).as_str().to_ascii_lowercase();
        out.push(DailyBudget {
            key: format!(
                "{direction}:{}:{}:{mailbox}",
                connector.host.to_ascii_lowercase(),
                connector.port
            ),
            cap,
            what: format!(
                "the daily {direction} budget of the {} mailbox {mailbox} ({} MB)",
                side.as_str(),
                cap / MB
            ),
            side,
        });
    }
    out
}

/// The text a user whose budget is spent shows.
pub fn budget_text(budget: &DailyBudget, resumes_at: OffsetDateTime) -> String {
    format!(
        "waiting: {} is spent; it resumes at {:02}:{:02} UTC on {}",
        budget.what,
        resumes_at.hour(),
        resumes_at.minute(),
        resumes_at.date()
    )
}

/// "14:05:30 UTC": when something happens again, for a user's status line.
pub fn clock_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:02}:{:02}:{:02} UTC", t.hour(), t.minute(), t.second())
}

/// The first of `budgets` spent at `now`, with when it renews.
pub async fn spent_budget<'a>(
    limiter: &dyn Limiter,
    budgets: &'a [DailyBudget],
    now: OffsetDateTime,
) -> Result<Option<(&'a DailyBudget, OffsetDateTime)>, StoreError> {
    for b in budgets {
        let usage = limiter.usage(&b.key, day_start(now)).await?;
        if let Budget::Spent { resumes_at } = budget(&usage, b.cap, now) {
            return Ok(Some((b, resumes_at)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn higher_priority_goes_first_then_who_waited_longest() {
        let early = datetime!(2026-12-07 10:00 UTC);
        let late = datetime!(2026-12-07 11:00 UTC);
        let mut ranks = [
            line_rank(0, late, "b"),
            line_rank(0, early, "a"),
            line_rank(5, late, "c"),
            line_rank(0, early, "0"),
            line_rank(200, late, "d"),
        ];
        ranks.sort();
        let order: Vec<&str> = ranks
            .iter()
            .map(|r| r.rsplit('#').next().unwrap())
            .collect();
        assert_eq!(order, ["d", "c", "0", "a", "b"]);
        assert!(ranks.iter().all(|r| r.as_str() < END_OF_LINE));
        assert_eq!(line_rank(1, early, "x"), line_rank(1, early, "x"));
    }

    #[test]
    fn a_job_takes_a_slot_only_while_free_slots_outnumber_the_places_before_it() {
        assert!(may_take(4, 0, 0));
        assert!(may_take(4, 2, 1));
        assert!(
            !may_take(4, 2, 2),
            "two free slots, both owed to earlier users"
        );
        assert!(!may_take(4, 4, 0), "full");
        assert!(!may_take(4, 5, 0), "over the cap (a stalled worker's slot)");
        assert!(!may_take(0, 0, 0));
    }

    #[test]
    fn waiting_jobs_come_back_less_often_the_longer_they_wait() {
        assert_eq!(wait_delay(Duration::ZERO, 0, false), Duration::from_secs(2));
        assert_eq!(wait_delay(Duration::ZERO, 4, false), Duration::from_secs(6));
        assert_eq!(
            wait_delay(Duration::from_secs(300), 0, false),
            Duration::from_secs(30)
        );
        assert_eq!(
            wait_delay(Duration::from_secs(86_400), 3, false),
            LONGEST_WAIT
        );
        assert_eq!(
            wait_delay(Duration::from_secs(86_400), 3, true),
            Duration::from_secs(5),
            "near the front of the line, soon"
        );
        for waited in [0, 10, 100, 1000, 100_000] {
            let d = wait_delay(Duration::from_secs(waited), waited, false);
            assert!(place_kept(d) > d + Duration::from_secs(60));
        }
    }

    #[test]
    fn a_budget_spent_renews_when_enough_old_hours_leave_the_rolling_day() {
        let now = datetime!(2026-12-07 14:20 UTC);
        let h = |t: OffsetDateTime| hour_of(t);
        assert_eq!(h(now), datetime!(2026-12-07 14:00 UTC));
        // 2,500 MB spent: 1,000 at 09:00 yesterday (outside the day), 1,000 at 15:00
        // yesterday, 1,000 at 09:00 today, 500 now.
        let usage = [
            (datetime!(2026-12-06 09:00 UTC), 1_000),
            (datetime!(2026-12-06 15:00 UTC), 1_000),
            (datetime!(2026-12-07 09:00 UTC), 1_000),
            (datetime!(2026-12-07 14:00 UTC), 500),
        ];
        assert_eq!(budget(&usage, 3_000, now), Budget::Open { left: 500 });
        assert_eq!(
            budget(&usage, 2_500, now),
            Budget::Spent {
                resumes_at: datetime!(2026-12-07 15:00 UTC)
            }
        );
        // Both yesterday-afternoon and this morning's hours must go for 1,200 to be open.
        assert_eq!(
            budget(&usage, 1_200, now),
            Budget::Spent {
                resumes_at: datetime!(2026-12-08 09:00 UTC)
            }
        );
        assert_eq!(
            budget(&[], 0, now),
            Budget::Spent {
                resumes_at: datetime!(2026-12-08 14:00 UTC)
            }
        );
        assert_eq!(budget(&[], 10, now), Budget::Open { left: 10 });
    }

    #[test]
    fn the_waiting_text_names_what_is_full_and_by_how_much() {
        let full = Full {
            what: "the source server imap.example.org:993".into(),
            in_use: 12,
            cap: 12,
            near_front: false,
        };
        assert_eq!(
            waiting_text(&full),
            "waiting: the source server imap.example.org:993 is at its limit (12 of 12 connections)"
        );
    }

    #[test]
    fn a_paused_job_comes_back_when_the_budget_renews_or_every_15_minutes() {
        let now = datetime!(2026-12-07 14:20 UTC);
        assert_eq!(
            pause_length(now, datetime!(2026-12-07 14:25 UTC)),
            Duration::from_secs(300)
        );
        assert_eq!(
            pause_length(now, datetime!(2026-12-08 09:00 UTC)),
            Duration::from_secs(900)
        );
        assert_eq!(pause_length(now, now), Duration::from_secs(5));
    }
}
