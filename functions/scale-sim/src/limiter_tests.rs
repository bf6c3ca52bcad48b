//! The checks of `functions/conformance/src/limiter.rs`, on the memory limiter, and what its
//! counters say.

use std::collections::BTreeSet;

use domain::ports::Limiter;
use futures::executor::block_on;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::MemoryLimiter;

fn at(seconds: i64) -> OffsetDateTime {
    datetime!(2026-12-07 12:00:00 UTC) + Duration::seconds(seconds)
}

#[test]
fn slots_up_to_the_cap() {
    let s = MemoryLimiter::new();
    block_on(async {
        let key = "host:imap.example:993";
        let (now, until) = (at(0), at(120));
        let mut held = Vec::new();
        for i in 0..3 {
            let slot = s.acquire(key, 3, &format!("job-{i}"), until, now).await;
            held.push(slot.unwrap().expect("a free slot"));
        }
        let indexes: BTreeSet<u32> = held.iter().map(|s| s.index).collect();
        assert_eq!(indexes, BTreeSet::from([0, 1, 2]), "three distinct slots");
        assert_eq!(s.in_use(key, now).await.unwrap(), 3);
        let fourth = s.acquire(key, 3, "job-9", until, now).await.unwrap();
        assert!(fourth.is_none(), "the fourth holder waits");
        s.release(&held[1]).await.unwrap();
        assert_eq!(s.in_use(key, now).await.unwrap(), 2);
        let next = s.acquire(key, 3, "job-9", until, now).await.unwrap();
        assert_eq!(next.expect("the released slot").index, held[1].index);
        let other = s.acquire("mailbox:ann@example.org", 1, "job-9", until, now);
        assert!(
            other.await.unwrap().is_some(),
            "another key has slots of its own"
        );
        assert_eq!(s.in_use("host:other:993", now).await.unwrap(), 0);
    });
}

#[test]
fn ended_slots_pass_on_and_their_old_holder_can_neither_renew_nor_release_them() {
    let s = MemoryLimiter::new();
    block_on(async {
        let key = "mailbox:bob@example.org";
        let first = s.acquire(key, 1, "dead-worker", at(60), at(0)).await;
        let first = first.unwrap().expect("free");
        assert!(s.renew(&first, at(90)).await.unwrap(), "its holder renews");
        let early = s.acquire(key, 1, "next", at(150), at(60)).await.unwrap();
        assert!(early.is_none(), "held until its renewed time");
        assert_eq!(s.in_use(key, at(90)).await.unwrap(), 0, "ended at 90");
        let second = s.acquire(key, 1, "next", at(200), at(91)).await.unwrap();
        let second = second.expect("the ended slot");
        assert!(
            !s.renew(&first, at(300)).await.unwrap(),
            "the old holder lost it"
        );
        s.release(&first).await.unwrap();
        assert_eq!(
            s.in_use(key, at(100)).await.unwrap(),
            1,
            "still the new holder's"
        );
        assert!(s.renew(&second, at(260)).await.unwrap());
        s.clear(key).await.unwrap();
        assert_eq!(s.in_use(key, at(100)).await.unwrap(), 0, "cleared");
        assert!(!s.renew(&second, at(300)).await.unwrap());
    });
}

#[test]
fn a_line_counts_the_kept_places_before_a_rank_up_to_a_limit() {
    let s = MemoryLimiter::new();
    block_on(async {
        let key = "server:imap.example:993";
        for rank in ["0-b", "0-a", "5-c", "5-d"] {
            s.join_line(key, rank, at(60)).await.unwrap();
        }
        s.join_line("server:other:993", "0-0", at(60))
            .await
            .unwrap();
        let ahead = |rank: &'static str, now: i64, limit: u32| {
            let s = &s;
            async move { s.ahead_in_line(key, rank, at(now), limit).await.unwrap() }
        };
        assert_eq!(ahead("0-a", 0, 100).await, 0, "first in line");
        assert_eq!(ahead("5-c", 0, 100).await, 2);
        assert_eq!(ahead("9", 0, 100).await, 4, "another key's line is apart");
        assert_eq!(ahead("9", 0, 3).await, 3, "counting stops at the limit");
        s.join_line(key, "0-a", at(300)).await.unwrap();
        assert_eq!(
            ahead("9", 0, 100).await,
            4,
            "joining again moves the end only"
        );
        assert_eq!(ahead("9", 60, 100).await, 1, "only 0-a is kept past 60");
        let first = s.line(key, at(0), 2).await.unwrap();
        assert_eq!(
            first,
            ["0-a", "0-b"],
            "the line's first places in rank order"
        );
        assert_eq!(
            s.line(key, at(60), 10).await.unwrap(),
            ["0-a"],
            "kept ones only"
        );
        s.leave_line(key, "0-a").await.unwrap();
        s.leave_line(key, "0-never").await.unwrap();
        assert_eq!(ahead("9", 0, 100).await, 3);
        assert_eq!(s.line_len(key), 3);
    });
}

#[test]
fn places_that_ended_a_day_before_a_join_are_swept_without_changing_any_count() {
    let s = MemoryLimiter::new();
    block_on(async {
        let key = "server:imap.example:993";
        s.join_line(key, "0-old", at(0)).await.unwrap();
        for i in 0..300 {
            let rank = format!("1-{i:04}");
            s.join_line(key, &rank, at(2 * 86_400)).await.unwrap();
        }
        assert_eq!(s.line_len(key), 300, "the old place went with a sweep");
        let ahead = s.ahead_in_line(key, "2", at(86_400), 1000).await.unwrap();
        assert_eq!(ahead, 300);
    });
}

#[test]
fn usage_adds_up_per_key_and_hour_and_old_hours_go() {
    let s = MemoryLimiter::new();
    block_on(async {
        let key = "download:imap.gmail.com:993:ann@example.org";
        let (h0, h1) = (at(0), at(3600));
        s.add_usage(key, h0, 1_000).await.unwrap();
        s.add_usage(key, h1, 5).await.unwrap();
        s.add_usage("download:other", h1, 77).await.unwrap();
        for _ in 0..10 {
            s.add_usage(key, h1, 3).await.unwrap();
        }
        assert_eq!(s.usage(key, h0).await.unwrap(), vec![(h0, 1_000), (h1, 35)]);
        assert_eq!(s.usage(key, at(1)).await.unwrap(), vec![(h1, 35)]);
        assert!(s.usage("download:nobody", h0).await.unwrap().is_empty());
        s.add_usage(key, at(3 * 86_400), 1).await.unwrap();
        let all = s.usage(key, h0).await.unwrap();
        assert_eq!(all, vec![(at(3 * 86_400), 1)], "hours two days old went");
    });
}

#[test]
fn calls_are_counted_as_dynamodb_bills_them() {
    let s = MemoryLimiter::new();
    block_on(async {
        let key = "server:imap.example:993";
        for i in 0..4 {
            s.acquire(key, 4, &format!("j{i}"), at(60), at(0))
                .await
                .unwrap();
        }
        let before = s.ops();
        let none = s.acquire(key, 4, "late", at(60), at(0)).await.unwrap();
        assert!(none.is_none());
        let spent = s.ops().since(&before);
        assert_eq!(spent.acquire_puts, 4, "one conditional put per slot tried");
        assert_eq!(spent.write_units(), 4);
        s.join_line(key, "0-a", at(60)).await.unwrap();
        s.in_use(key, at(0)).await.unwrap();
        let spent = s.ops().since(&before);
        assert_eq!((spent.joins, spent.in_use_queries), (1, 1));
        assert_eq!(spent.read_units(), 1);
    });
}

#[test]
fn through_take_slots_a_freed_slot_goes_to_the_user_waiting_first_not_to_a_newcomer() {
    use domain::schedule::{self, Need, Place};
    let s = MemoryLimiter::new();
    let need = Need {
        key: "server:imap.example:993".into(),
        cap: 1,
        what: "the source server imap.example:993".into(),
        lined: true,
    };
    let needs = [need];
    let (now, until) = (at(0), at(120));
    let early = schedule::line_rank(0, at(-60), "early");
    let late = schedule::line_rank(0, at(0), "late");
    fn place(rank: &str) -> Place<'_> {
        Place {
            rank,
            kept_until: at(150),
        }
    }
    block_on(async {
        let first = schedule::take_slots(&s, &needs, "holder", &place("0-first"), now, until).await;
        let first = first.unwrap().expect("a free server");
        let refused = schedule::take_slots(&s, &needs, "e1", &place(&early), now, until).await;
        let full = refused.unwrap().expect_err("the server is full");
        assert_eq!((full.in_use, full.cap), (1, 1));
        assert!(full.near_front, "the only one in line is at its front");
        schedule::give_back(&s, &first).await;
        let newcomer = schedule::take_slots(&s, &needs, "l1", &place(&late), now, until).await;
        assert!(
            newcomer.unwrap().is_err(),
            "the freed slot is owed to the earlier user"
        );
        let owed = schedule::take_slots(&s, &needs, "e2", &place(&early), now, until).await;
        assert_eq!(owed.unwrap().expect("its slot").len(), 1);
        assert_eq!(
            s.line(&needs[0].key, now, 10).await.unwrap(),
            [late],
            "it left the line"
        );
    });
}
