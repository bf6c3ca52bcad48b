//! Daily budgets on the in-memory mail server: a mailbox over its budget copies a budget's
//! worth, pauses saying until when, copies nothing while paused, and goes on when old
//! hours leave the rolling day — nothing lost or doubled across the pauses. And a throttled
//! folder says when it retries.

mod support;

use std::time::Duration;

use contract::{BulkAction, CopyOptions, UserState};
use domain::app::{CopySettings, JobOutcome};
use domain::ports::Clock;
use time::OffsetDateTime;

use support::*;

const MESSAGE_BYTES: usize = 240_000;

/// Runs queued jobs until the user completes or every job left is paused for its budget;
/// true when it completed.
async fn run_until_paused_or_done(w: &World) -> bool {
    for _ in 0..500 {
        let user = w.user().await;
        if user.state == UserState::Completed {
            return true;
        }
        let Some(job) = w.queue.pop() else {
            return user.state == UserState::Completed;
        };
        let paused_before = paused(&user);
        let copied: usize = bag(&w.target).values().sum();
        let outcome = w
            .app
            .handle_job(&job, Duration::from_secs(3600))
            .await
            .expect("job");
        assert!(matches!(outcome, JobOutcome::Done), "{outcome:?}");
        if paused_before && paused(&w.user().await) {
            let now: usize = bag(&w.target).values().sum();
            assert_eq!(now, copied, "a paused job copies nothing");
            // It came back to the queue: the day has to move on for it.
            return false;
        }
    }
    panic!("the engine did not settle");
}

fn paused(user: &domain::MailUser) -> bool {
    user.last_error
        .as_deref()
        .is_some_and(|e| e.starts_with("waiting: the daily download budget"))
}

#[tokio::test]
async fn a_mailbox_over_its_daily_budget_copies_a_budget_a_day_and_loses_nothing() {
    let mut options = CopyOptions::default();
    // 1 MB a day: four of the ten 240 KB messages.
    options.limits.daily_download_mb = Some(1);
    let copy = CopySettings {
        chunk_messages: 1,
        ..CopySettings::default()
    };
    let w = World::with_options(copy, options).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..10 {
        w.source.deliver(
            USER,
            "INBOX",
            body(i, true, MESSAGE_BYTES),
            &["\\Seen"],
            date,
        );
    }
    w.act(BulkAction::Start).await;
    let clock = w.clock.clone().expect("a hand-moved clock");
    let mut days = 0;
    let mut copied_per_day = Vec::new();
    loop {
        let done = run_until_paused_or_done(&w).await;
        let copied: usize = bag(&w.target).values().sum();
        copied_per_day.push(copied);
        if done {
            break;
        }
        let user = w.user().await;
        let text = user.last_error.clone().unwrap_or_default();
        assert!(
            text.contains("the daily download budget of the source mailbox")
                && text.contains("(1 MB) is spent; it resumes at"),
            "{text}"
        );
        assert_eq!(user.state, UserState::Working, "paused, not failed");
        days += 1;
        assert!(days < 5, "copied per day: {copied_per_day:?}");
        clock.advance(Duration::from_secs(24 * 3600));
        // The paused job comes back after its delay, and a new day's budget lets it on.
    }
    assert_eq!(
        copied_per_day,
        [5, 10],
        "a day copies until its budget is spent (the fifth message passes the cap), then the rest"
    );
    let user = w.user().await;
    assert_eq!(user.state, UserState::Completed, "{:?}", user.last_error);
    assert_eq!(user.last_error, None);
    assert_eq!(bag(&w.source), bag(&w.target), "nothing lost or doubled");
}

/// The "throttled by the target, retrying at …": a throttled folder says when it goes
/// on, by the server's own backoff, and goes on then with nothing lost.
#[tokio::test]
async fn a_throttled_folder_says_when_it_retries_and_then_completes() {
    let w = World::new(5, false).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..6 {
        w.source
            .deliver(USER, "INBOX", body(i, true, 500), &["\\Seen"], date);
    }
    w.target.behaviour_mut(|b| {
        b.append_refusal = Some(mailsim::AppendRefusal::ThrottledWithWait(
            Duration::from_secs(42),
        ))
    });
    w.act(BulkAction::Start).await;
    let clock = w.clock.clone().expect("a hand-moved clock");
    let mut said = None;
    for _ in 0..50 {
        let Some(job) = w.queue.pop() else { break };
        w.app
            .handle_job(&job, Duration::from_secs(3600))
            .await
            .expect("job");
        if let Some(e) = w
            .user()
            .await
            .last_error
            .filter(|e| e.contains("retrying at"))
        {
            said = Some((e, clock.now()));
            w.queue.push(job);
            break;
        }
    }
    let (text, at) = said.expect("the user says it waits for the throttling");
    let when = domain::schedule::clock_time(at + Duration::from_secs(42));
    assert!(
        text.starts_with("INBOX: the target server asked to slow down"),
        "{text}"
    );
    assert!(
        text.contains(&format!("retrying at {when} (42 s)")),
        "{text}"
    );
    w.target.behaviour_mut(|b| b.append_refusal = None);
    w.drain(&mut std::collections::VecDeque::new()).await;
    let user = w.user().await;
    assert_eq!(user.state, UserState::Completed, "{:?}", user.last_error);
    assert_eq!(bag(&w.source), bag(&w.target));
}
