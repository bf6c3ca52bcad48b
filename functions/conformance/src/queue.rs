//! The [`Queue`] suite.
//!
//! What it pins down beyond the trait's comments, so the SQLite queue and SQS agree:
//! - `receive` never blocks long on an empty queue and may return fewer messages than are
//!   visible (SQS samples), so the checks poll; `max` stays at 10 or less (the SQS limit);
//! - a message never shows up before its visibility timeout or delay ran out; an adapter whose
//!   backend counts whole seconds (SQS) rounds sub-second durations *up*, never down, and the
//!   checks use sub-second durations only where rounding up does not matter;
//! - `ack` of a receipt whose message is already gone succeeds (a redelivered message may be
//!   acked twice); `ack` with a receipt from an earlier receive succeeds and may or may not
//!   delete the message;
//! - a message received `max_receives` times is not delivered again: it shows up in
//!   `dead_letters`, and it does not block other messages.

use contract::jobs::Job;
use domain::ports::{Delivery, Queue};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::runner::Report;

/// The receive limit of queues whose check does not exercise dead letters.
const GENEROUS_RECEIVES: u32 = 10;
/// A visibility no check outlives: the message must not come back during the check.
const LONG: Duration = Duration::from_secs(60);
/// A visibility meant to run out during the check.
const SHORT: Duration = Duration::from_millis(300);
/// How long a check waits for something that should happen soon.
const PATIENCE: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(50);

type Check = fn(Arc<dyn Queue>) -> BoxFuture<'static, ()>;

macro_rules! checks {
    ($($name:literal, $max:expr => $f:ident),* $(,)?) => {
        vec![$(($name, $max, (|q| $f(q).boxed()) as Check)),*]
    };
}

fn checks() -> Vec<(&'static str, u32, Check)> {
    checks![
        "send, receive, ack", GENEROUS_RECEIVES => send_receive_ack,
        "jobs round-trip exactly", GENEROUS_RECEIVES => jobs_round_trip,
        "visibility timeout redelivers with a higher receive count", GENEROUS_RECEIVES => visibility_redelivers,
        "stale and repeated acks are harmless", GENEROUS_RECEIVES => stale_acks_are_harmless,
        "retry_later delays redelivery", GENEROUS_RECEIVES => retry_later_delays,
        "delayed send", GENEROUS_RECEIVES => delayed_send,
        "batch send", GENEROUS_RECEIVES => batch_send,
        "receive returns at most max", GENEROUS_RECEIVES => receive_respects_max,
        "dead letter after max receives", 2 => dead_letter_after_max_receives,
        "concurrent receivers never hold the same message", GENEROUS_RECEIVES => concurrent_receivers,
    ]
}

/// Runs every queue check, each on a fresh queue from `make(max_receives)`, and panics naming
/// the checks that failed. `make` must return an empty queue that moves a message to its dead
/// letters once it was received `max_receives` times.
pub async fn queue_suite<Q, F, Fut>(make: F)
where
    Q: Queue,
    F: Fn(u32) -> Fut,
    Fut: Future<Output = Q>,
{
    let mut report = Report::new("queue");
    for (name, max_receives, check) in checks() {
        if !Report::selected(name) {
            continue;
        }
        let queue: Arc<dyn Queue> = Arc::new(make(max_receives).await);
        report.run(name, check(queue)).await;
    }
    report.finish();
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn plan() -> Job {
    Job::Plan {
        user_id: uuid::Uuid::new_v4(),
        pass: 1,
    }
}

fn copy(folder: &str) -> Job {
    Job::Copy {
        user_id: uuid::Uuid::new_v4(),
        pass: 2,
        folder: folder.to_owned(),
        attempt: 0,
    }
}

/// A stable identity for comparing jobs as sets (`Job` is not `Ord`).
fn key(job: &Job) -> String {
    format!("{job:?}")
}

/// Receives until something arrives or `PATIENCE` runs out.
async fn receive_soon(
    q: &dyn Queue,
    max: usize,
    visibility: Duration,
    what: &str,
) -> Vec<Delivery> {
    receive_soon_timed(q, max, visibility, what).await.0
}

/// Like [`receive_soon`], also returning when the successful receive call started: the
/// message's visibility timeout began no earlier than that.
async fn receive_soon_timed(
    q: &dyn Queue,
    max: usize,
    visibility: Duration,
    what: &str,
) -> (Vec<Delivery>, Instant) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let started = Instant::now();
        let got = q.receive(max, visibility).await.expect("receive");
        if !got.is_empty() {
            return (got, started);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: nothing received within {} s",
            PATIENCE.as_secs()
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Asserts that something that may only happen at `earliest` or later did not happen
/// measurably earlier. Called right after the event was observed, so a slow machine can only
/// make the check weaker, never fail it wrongly. The margin covers the adapter using the wall
/// clock while the suite uses a monotonic one.
#[track_caller]
fn assert_not_before(earliest: Instant, what: &str) {
    let margin = Duration::from_millis(50);
    let now = Instant::now();
    assert!(
        now + margin >= earliest,
        "{what}: happened {:?} too early",
        earliest.saturating_duration_since(now)
    );
}

/// Receives (and acks) until `n` deliveries arrived or `PATIENCE` runs out.
async fn drain(q: &dyn Queue, n: usize, what: &str) -> Vec<Delivery> {
    let deadline = Instant::now() + PATIENCE;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "{what}: only {} of {n} messages received within {} s",
            out.len(),
            PATIENCE.as_secs()
        );
        let got = q.receive(10, LONG).await.expect("receive");
        if got.is_empty() {
            tokio::time::sleep(POLL).await;
        }
        for d in got {
            q.ack(&d.receipt).await.expect("ack");
            out.push(d);
        }
    }
    out
}

#[track_caller]
fn assert_nothing(got: &[Delivery], what: &str) {
    assert!(
        got.is_empty(),
        "{what}: expected nothing, received {:?}",
        got.iter().map(|d| &d.job).collect::<Vec<_>>()
    );
}

#[track_caller]
fn assert_one(got: &[Delivery], what: &str) {
    assert_eq!(
        got.len(),
        1,
        "{what}: expected exactly one delivery, got {}",
        got.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Checks

async fn send_receive_ack(q: Arc<dyn Queue>) {
    assert_nothing(
        &q.receive(10, LONG)
            .await
            .expect("receive on an empty queue"),
        "an empty queue",
    );
    let job = plan();
    q.send(&job, Duration::ZERO).await.expect("send");

    // Two seconds: long enough that the next receive surely falls inside it, short enough to
    // wait out below.
    let visibility = Duration::from_secs(2);
    let got = receive_soon(q.as_ref(), 10, visibility, "a sent message").await;
    assert_one(&got, "one message sent");
    let d = &got[0];
    assert_eq!(d.job, job, "the job as sent");
    assert_eq!(d.receive_count, 1, "first delivery");
    assert!(
        !d.message_id.is_empty() && !d.receipt.is_empty(),
        "a message id and a receipt"
    );
    assert_nothing(
        &q.receive(10, LONG).await.expect("receive"),
        "a message in flight is invisible",
    );

    q.ack(&d.receipt).await.expect("ack");
    // Past the visibility: an acked message never comes back.
    tokio::time::sleep(visibility + Duration::from_millis(500)).await;
    assert_nothing(
        &q.receive(10, LONG).await.expect("receive"),
        "after the ack and the visibility timeout",
    );
}

async fn jobs_round_trip(q: Arc<dyn Queue>) {
    let jobs = vec![
        Job::Plan {
            user_id: uuid::Uuid::new_v4(),
            pass: 3,
        },
        Job::Copy {
            user_id: uuid::Uuid::new_v4(),
            pass: 7,
            folder: "INBOX/Entwürfe \"quoted\" & <tagged> 📬".into(),
            attempt: 12,
        },
    ];
    for job in &jobs {
        q.send(job, Duration::ZERO).await.expect("send");
    }
    let got: BTreeSet<String> = drain(q.as_ref(), 2, "two jobs")
        .await
        .iter()
        .map(|d| key(&d.job))
        .collect();
    let want: BTreeSet<String> = jobs.iter().map(key).collect();
    assert_eq!(got, want, "jobs received equal jobs sent");
}

async fn visibility_redelivers(q: Arc<dyn Queue>) {
    let job = copy("INBOX");
    q.send(&job, Duration::ZERO).await.expect("send");
    let (first, claimed) = receive_soon_timed(q.as_ref(), 10, SHORT, "the message").await;
    assert_one(&first, "first receive");

    // Polls from at once: a message in flight must stay invisible until its timeout ran out.
    let second = receive_soon(
        q.as_ref(),
        10,
        LONG,
        "the message after its visibility ran out",
    )
    .await;
    assert_not_before(claimed + SHORT, "redelivery of a message in flight");
    assert_one(&second, "second receive");
    let (a, b) = (&first[0], &second[0]);
    assert_eq!(b.message_id, a.message_id, "the same message");
    assert_eq!(b.job, job, "the same job");
    assert_eq!((a.receive_count, b.receive_count), (1, 2), "receive counts");
    assert_ne!(b.receipt, a.receipt, "each receive has its own receipt");
    q.ack(&b.receipt).await.expect("ack");
}

async fn stale_acks_are_harmless(q: Arc<dyn Queue>) {
    q.send(&plan(), Duration::ZERO).await.expect("send");
    let first = receive_soon(q.as_ref(), 10, SHORT, "the message").await;
    let second = receive_soon(q.as_ref(), 10, LONG, "the redelivery").await;
    assert_one(&second, "redelivery");
    // The first worker finishes late: its ack carries the old receipt.
    q.ack(&first[0].receipt)
        .await
        .expect("ack with a receipt from an earlier receive is not an error");
    q.ack(&second[0].receipt)
        .await
        .expect("ack with the current receipt");
    q.ack(&second[0].receipt)
        .await
        .expect("a second ack of the same receipt is not an error");
}

async fn retry_later_delays(q: Arc<dyn Queue>) {
    let job = copy("Sent");
    q.send(&job, Duration::ZERO).await.expect("send");
    let first = receive_soon(q.as_ref(), 10, LONG, "the message").await;
    assert_one(&first, "first receive");

    let retried = Instant::now();
    q.retry_later(&first[0].receipt, Duration::from_secs(1))
        .await
        .expect("retry_later");
    let second = receive_soon(q.as_ref(), 10, LONG, "the message after retry_later").await;
    assert_not_before(
        retried + Duration::from_secs(1),
        "redelivery after retry_later(1 s)",
    );
    assert_one(&second, "second receive");
    assert_eq!(
        (second[0].job.clone(), second[0].receive_count),
        (job.clone(), 2),
        "job and count"
    );

    q.retry_later(&second[0].receipt, Duration::ZERO)
        .await
        .expect("retry_later without delay");
    let third = receive_soon(q.as_ref(), 10, LONG, "the message after retry_later(0)").await;
    assert_one(&third, "third receive");
    assert_eq!(
        (third[0].job.clone(), third[0].receive_count),
        (job, 3),
        "job and count"
    );
    q.ack(&third[0].receipt).await.expect("ack");
}

async fn delayed_send(q: Arc<dyn Queue>) {
    let (later, now) = (copy("later"), copy("now"));
    let sent = Instant::now();
    q.send(&later, Duration::from_secs(1))
        .await
        .expect("send with delay");
    q.send(&now, Duration::ZERO)
        .await
        .expect("send without delay");

    let mut waiting: BTreeSet<String> = [key(&later), key(&now)].into();
    let deadline = Instant::now() + PATIENCE;
    while !waiting.is_empty() {
        assert!(
            Instant::now() < deadline,
            "not received within {PATIENCE:?}: {waiting:?}"
        );
        let got = q.receive(10, LONG).await.expect("receive");
        if got.is_empty() {
            tokio::time::sleep(POLL).await;
        }
        for d in got {
            if d.job == later {
                assert_not_before(
                    sent + Duration::from_secs(1),
                    "a message sent with a 1 s delay",
                );
            }
            assert!(
                waiting.remove(&key(&d.job)),
                "received twice or never sent: {:?}",
                d.job
            );
            q.ack(&d.receipt).await.expect("ack");
        }
    }
}

async fn batch_send(q: Arc<dyn Queue>) {
    q.send_batch(&[]).await.expect("an empty batch");
    // More than one SQS batch (10), so an adapter has to split.
    let jobs: Vec<Job> = (0..12).map(|i| copy(&format!("folder {i}"))).collect();
    q.send_batch(&jobs).await.expect("send_batch");
    let got = drain(q.as_ref(), 12, "a batch of 12").await;
    let ids: BTreeSet<&str> = got.iter().map(|d| d.message_id.as_str()).collect();
    assert_eq!(ids.len(), 12, "12 distinct messages");
    assert!(
        got.iter().all(|d| d.receive_count == 1),
        "each delivered once"
    );
    let got: BTreeSet<String> = got.iter().map(|d| key(&d.job)).collect();
    assert_eq!(got, jobs.iter().map(key).collect(), "the batch's jobs");
}

async fn receive_respects_max(q: Arc<dyn Queue>) {
    let jobs: Vec<Job> = (0..5).map(|i| copy(&format!("f{i}"))).collect();
    q.send_batch(&jobs).await.expect("send_batch");
    let first = receive_soon(q.as_ref(), 2, LONG, "a batch").await;
    assert!(first.len() <= 2, "receive(2) returned {}", first.len());
    for d in &first {
        q.ack(&d.receipt).await.expect("ack");
    }
    let rest = drain(q.as_ref(), 5 - first.len(), "the rest").await;
    let all: BTreeSet<String> = first.iter().chain(&rest).map(|d| key(&d.job)).collect();
    assert_eq!(all, jobs.iter().map(key).collect(), "all five, each once");
}

/// The queue under test has `max_receives` = 2.
async fn dead_letter_after_max_receives(q: Arc<dyn Queue>) {
    assert!(
        q.dead_letters(10).await.expect("dead_letters").is_empty(),
        "no dead letters at first"
    );
    let job = copy("poison");
    q.send(&job, Duration::ZERO).await.expect("send");
    let first = receive_soon(q.as_ref(), 10, SHORT, "first delivery").await;
    assert_eq!(first[0].receive_count, 1, "first delivery");
    let second = receive_soon(q.as_ref(), 10, SHORT, "second delivery").await;
    assert_eq!(
        (second[0].job.clone(), second[0].receive_count),
        (job.clone(), 2),
        "second delivery"
    );

    // Neither delivery was acked; after the second visibility runs out, the message must land
    // in the dead letters without a third delivery.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = q.receive(10, SHORT).await.expect("receive");
        assert_nothing(&got, "a message received max_receives times");
        if q.dead_letters(10)
            .await
            .expect("dead_letters")
            .contains(&job)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the message did not reach the dead letters within {PATIENCE:?}"
        );
        tokio::time::sleep(POLL).await;
    }

    // The dead letter does not block the queue.
    let healthy = copy("healthy");
    q.send(&healthy, Duration::ZERO).await.expect("send");
    let got = receive_soon(q.as_ref(), 10, LONG, "a message after a dead letter").await;
    assert_one(&got, "the healthy message only");
    assert_eq!(
        (got[0].job.clone(), got[0].receive_count),
        (healthy, 1),
        "the healthy message"
    );
    q.ack(&got[0].receipt).await.expect("ack");
}

async fn concurrent_receivers(q: Arc<dyn Queue>) {
    const N: usize = 30;
    let jobs: Vec<Job> = (0..N).map(|i| copy(&format!("parallel {i}"))).collect();
    q.send_batch(&jobs).await.expect("send_batch");

    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + PATIENCE * 2;
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (q, seen) = (Arc::clone(&q), Arc::clone(&seen));
        workers.push(tokio::spawn(async move {
            loop {
                if seen.lock().expect("lock").len() >= N || Instant::now() > deadline {
                    return;
                }
                let got = q.receive(5, LONG).await.expect("receive");
                if got.is_empty() {
                    tokio::time::sleep(POLL).await;
                }
                for d in got {
                    seen.lock()
                        .expect("lock")
                        .push((d.message_id.clone(), key(&d.job)));
                    // Hold the message a moment, as a worker would, before acking it.
                    tokio::task::yield_now().await;
                    q.ack(&d.receipt).await.expect("ack");
                }
            }
        }));
    }
    for w in workers {
        w.await.expect("receiver task");
    }
    let seen = seen.lock().expect("lock").clone();
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, _) in &seen {
        *per_id.entry(id.as_str()).or_default() += 1;
    }
    let doubles: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        doubles.is_empty(),
        "messages handed to two receivers: {doubles:?}"
    );
    let got: BTreeSet<String> = seen.into_iter().map(|(_, k)| k).collect();
    assert_eq!(
        got,
        jobs.iter().map(key).collect(),
        "every message received exactly once across 4 receivers"
    );
}
