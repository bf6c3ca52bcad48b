//! Store checks of the limiter's slots (`domain::ports::Limiter`, which every store keeps):
//! never more holders than the cap however many race, a slot whose time ended goes to the next
//! holder, its old holder can neither renew nor release it, clearing a key frees all its
//! slots, and keys do not share slots; a line counts the kept places ranked before a rank,
//! and usage adds up per key and hour however many add at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use domain::ports::Store;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn at(seconds: i64) -> OffsetDateTime {
    datetime!(2026-12-07 12:00:00 UTC) + Duration::seconds(seconds)
}

pub(crate) async fn slots_up_to_the_cap(s: Arc<dyn Store>) {
    let key = "host:imap.example:993";
    let (now, until) = (at(0), at(120));
    let mut held = Vec::new();
    for i in 0..3 {
        let slot = s
            .acquire(key, 3, &format!("job-{i}"), until, now)
            .await
            .expect("acquire")
            .expect("a free slot");
        held.push(slot);
    }
    let indexes: BTreeSet<u32> = held.iter().map(|s| s.index).collect();
    assert_eq!(indexes, BTreeSet::from([0, 1, 2]), "three distinct slots");
    assert_eq!(s.in_use(key, now).await.expect("in_use"), 3);
    assert!(
        s.acquire(key, 3, "job-9", until, now)
            .await
            .expect("acquire")
            .is_none(),
        "the fourth holder waits"
    );
    s.release(&held[1]).await.expect("release");
    assert_eq!(s.in_use(key, now).await.expect("in_use"), 2);
    let next = s
        .acquire(key, 3, "job-9", until, now)
        .await
        .expect("acquire")
        .expect("the released slot");
    assert_eq!(next.index, held[1].index);
    // Another key has slots of its own.
    assert!(
        s.acquire("mailbox:ann@example.org", 1, "job-9", until, now)
            .await
            .expect("acquire")
            .is_some()
    );
    assert_eq!(s.in_use("host:other:993", now).await.expect("in_use"), 0);
}

pub(crate) async fn ended_slots_pass_on(s: Arc<dyn Store>) {
    let key = "mailbox:bob@example.org";
    let first = s
        .acquire(key, 1, "dead-worker", at(60), at(0))
        .await
        .expect("acquire")
        .expect("free");
    assert!(
        s.renew(&first, at(90)).await.expect("renew"),
        "its holder renews"
    );
    assert!(
        s.acquire(key, 1, "next", at(150), at(60))
            .await
            .expect("acquire")
            .is_none(),
        "held until its renewed time"
    );
    // The holder died: at 90 its time ended and the slot is taken by the next holder.
    assert_eq!(s.in_use(key, at(91)).await.expect("in_use"), 0);
    let second = s
        .acquire(key, 1, "next", at(200), at(91))
        .await
        .expect("acquire")
        .expect("the ended slot");
    assert!(
        !s.renew(&first, at(300)).await.expect("renew"),
        "the old holder lost it"
    );
    s.release(&first).await.expect("release of a lost slot");
    assert_eq!(
        s.in_use(key, at(100)).await.expect("in_use"),
        1,
        "the old holder's release leaves the new holder's slot"
    );
    assert!(s.renew(&second, at(260)).await.expect("renew"));
    // Whoever knows every holder is gone frees them all at once.
    s.clear(key).await.expect("clear");
    assert_eq!(s.in_use(key, at(100)).await.expect("in_use"), 0);
    assert!(!s.renew(&second, at(300)).await.expect("renew"));
}

pub(crate) async fn racing_holders_never_exceed_the_cap(s: Arc<dyn Store>) {
    let key = "host:busy.example:993";
    let (now, until) = (at(0), at(600));
    let racers: Vec<_> = (0..24)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.acquire(key, 5, &format!("racer-{i}"), until, now).await })
        })
        .collect();
    let mut won = Vec::new();
    for racer in racers {
        if let Some(slot) = racer.await.expect("task").expect("acquire") {
            won.push(slot);
        }
    }
    assert_eq!(won.len(), 5, "exactly the cap won: {won:?}");
    let indexes: BTreeSet<u32> = won.iter().map(|s| s.index).collect();
    assert_eq!(indexes.len(), 5, "each winner has a slot of its own");
    assert!(indexes.iter().all(|&i| i < 5));
    assert_eq!(s.in_use(key, now).await.expect("in_use"), 5);
}

pub(crate) async fn a_line_counts_the_places_before_a_rank(s: Arc<dyn Store>) {
    let key = "server:imap.example:993";
    for rank in ["0-b", "0-a", "5-c", "5-d"] {
        s.join_line(key, rank, at(60)).await.expect("join");
    }
    s.join_line("server:other:993", "0-0", at(60))
        .await
        .expect("join");
    let ahead = |rank: &'static str, now: i64, limit: u32| {
        let s = s.clone();
        async move {
            s.ahead_in_line(key, rank, at(now), limit)
                .await
                .expect("ahead")
        }
    };
    assert_eq!(ahead("0-a", 0, 100).await, 0, "first in line");
    assert_eq!(ahead("5-c", 0, 100).await, 2);
    assert_eq!(ahead("9", 0, 100).await, 4, "another key's line is apart");
    assert_eq!(ahead("9", 0, 3).await, 3, "counting stops at the limit");
    assert_eq!(
        s.line(key, at(0), 3).await.expect("line"),
        ["0-a", "0-b", "5-c"],
        "the first places in rank order"
    );
    // Joining again moves the end of a place, not the place.
    s.join_line(key, "0-a", at(300)).await.expect("join again");
    assert_eq!(ahead("9", 0, 100).await, 4);
    // Places not kept by now are not counted.
    assert_eq!(ahead("9", 60, 100).await, 1, "only 0-a was kept past 60");
    s.leave_line(key, "0-a").await.expect("leave");
    s.leave_line(key, "0-never")
        .await
        .expect("leave a place not held");
    assert_eq!(ahead("9", 0, 100).await, 3);
}

pub(crate) async fn usage_adds_up_per_key_and_hour(s: Arc<dyn Store>) {
    let key = "down:imap.gmail.com:993:ann@example.org";
    let (h0, h1) = (at(0), at(3600));
    s.add_usage(key, h0, 1_000).await.expect("add");
    s.add_usage(key, h1, 5).await.expect("add");
    s.add_usage("down:other", h1, 77).await.expect("add");
    let adders: Vec<_> = (0..10)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.add_usage(key, h1, 3).await })
        })
        .collect();
    for adder in adders {
        adder.await.expect("task").expect("add");
    }
    let mut all = s.usage(key, h0).await.expect("usage");
    all.sort();
    assert_eq!(all, vec![(h0, 1_000), (h1, 35)], "racing adds all count");
    assert_eq!(s.usage(key, at(1)).await.expect("usage"), vec![(h1, 35)]);
    assert!(s.usage("down:nobody", h0).await.expect("usage").is_empty());
}

/// `schedule::take_slots` over this store: a user waiting longer, or of higher priority, gets
/// a freed slot before a newcomer; a refused job holds nothing.
pub(crate) async fn lines_serve_users_in_rank_order(s: Arc<dyn Store>) {
    use domain::schedule::{Need, Place, line_rank, take_slots};
    let server = "server:imap.example:993";
    let needs = |user: &str| {
        vec![
            Need {
                key: format!("mailbox:imap.example:993:{user}"),
                cap: 4,
                what: format!("the source mailbox {user}"),
                lined: false,
            },
            Need {
                key: server.into(),
                cap: 2,
                what: "the source server imap.example:993".into(),
                lined: true,
            },
        ]
    };
    // The user's place: ranked by when it began waiting (`since`), kept two minutes.
    let attempt = |user: &'static str, priority: u8, since: i64, now: i64| {
        let s = s.clone();
        async move {
            let rank = line_rank(priority, at(since), user);
            let place = Place {
                rank: &rank,
                kept_until: at(now + 120),
            };
            take_slots(
                &*s,
                &needs(user),
                &format!("job-{user}-{now}"),
                &place,
                at(now),
                at(now + 600),
            )
            .await
            .expect("take_slots")
        }
    };
    let mut hogs = Vec::new();
    for i in 0..2 {
        let slot = s
            .acquire(server, 2, &format!("hog-{i}"), at(600), at(0))
            .await
            .expect("acquire")
            .expect("a free slot");
        hogs.push(slot);
    }

    let full = attempt("ann", 0, 0, 0)
        .await
        .expect_err("the server is full");
    assert_eq!((full.in_use, full.cap), (2, 2));
    assert_eq!(
        s.in_use("mailbox:imap.example:993:ann", at(0))
            .await
            .expect("in_use"),
        0,
        "a refused job gives back the slots it took"
    );
    attempt("bob", 0, 5, 5).await.expect_err("still full");
    s.release(&hogs[0]).await.expect("release");
    attempt("bob", 0, 5, 6)
        .await
        .expect_err("the freed slot is owed to ann, who waited longer");
    let ann = attempt("ann", 0, 0, 7).await.expect("ann's turn");
    assert_eq!(ann.len(), 2, "a slot of each need");
    assert_eq!(
        s.line(server, at(7), 10).await.expect("line").len(),
        1,
        "ann left the line; bob is in it"
    );
    // A user of higher priority, waiting since later, still goes before bob.
    attempt("vip", 5, 9, 9).await.expect_err("full again");
    s.release(&hogs[1]).await.expect("release");
    attempt("bob", 0, 5, 10)
        .await
        .expect_err("the freed slot is owed to the higher priority");
    attempt("vip", 5, 9, 11).await.expect("priority first");
    assert_eq!(s.in_use(server, at(11)).await.expect("in_use"), 2);
}
