//! Who goes next and how long to wait: the plain rules the copy engine and the scale
//! simulation (`cargo xtask bench scale`) both schedule by, with no I/O of their own.
//!
//! - **A line per capped server.** A user whose job finds a server at its cap takes a place in
//!   that server's line (`ports::Limiter::join_line`), ranked by priority, then by when the user
//!   began waiting. A job may take a slot only while the free slots outnumber the places ranked
//!   before its own, so a newcomer never takes the slot a user waiting longer is owed, and a
//!   user with fifty folder jobs holds one place, not fifty: no user starves while others hog
//!   a host.
//! - **Waiting costs little.** A waiting job comes back after a few seconds at first and less
//!   often the longer it has waited (at most a minute), so thousands of waiting mailboxes do
//!   not turn into a busy loop of queue deliveries.
//! - **Daily budgets over a rolling day.** Bytes a mailbox downloads or uploads are counted per
//!   hour (`ports::Limiter::add_usage`); a budget is spent when the last 24 hours reach it, and
//!   it renews as old hours leave the window: the mailbox pauses until then, visibly.

use std::time::Duration;

use time::OffsetDateTime;

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

/// How long a job that found no slot stays away: 2 to 6 seconds at first (spread by `spread`
/// so waiting jobs do not all come back at once), then a tenth of the time it has waited, at
/// most a minute.
pub fn wait_delay(waited: Duration, spread: u64) -> Duration {
    let base = Duration::from_secs(2 + spread % 5);
    (waited / 10).clamp(base, Duration::from_secs(60).max(base))
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
        assert!(!may_take(4, 2, 2), "two free slots, both owed to earlier users");
        assert!(!may_take(4, 4, 0), "full");
        assert!(!may_take(4, 5, 0), "over the cap (a stalled worker's slot)");
        assert!(!may_take(0, 0, 0));
    }

    #[test]
    fn waiting_jobs_come_back_less_often_the_longer_they_wait() {
        assert_eq!(wait_delay(Duration::ZERO, 0), Duration::from_secs(2));
        assert_eq!(wait_delay(Duration::ZERO, 4), Duration::from_secs(6));
        assert_eq!(wait_delay(Duration::from_secs(300), 0), Duration::from_secs(30));
        assert_eq!(wait_delay(Duration::from_secs(86_400), 3), Duration::from_secs(60));
        for waited in [0, 10, 100, 1000, 100_000] {
            let d = wait_delay(Duration::from_secs(waited), waited);
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
}
