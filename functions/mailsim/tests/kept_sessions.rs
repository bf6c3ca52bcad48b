//! Sessions a finished job keeps for the next job of the same user
//! (`CopySettings::keep_sessions_for`): fewer logins, the caps still counting them, never
//! ahead of another user waiting in a server's line, and logged out when nobody takes them.

mod support;

use std::collections::VecDeque;
use std::time::Duration;

use contract::{BulkAction, CopyOptions, UserState};
use domain::app::CopySettings;
use time::OffsetDateTime;

use support::*;

fn settings(keep: Duration) -> CopySettings {
    CopySettings {
        chunk_messages: 5,
        keep_sessions_for: keep,
        ..CopySettings::default()
    }
}

async fn world(keep: Duration, options: CopyOptions) -> World {
    let w = World::with_options(settings(keep), options).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..24 {
        w.source.deliver(
            USER,
            FOLDERS[i % FOLDERS.len()],
            body(i, true, 400 + i * 150),
            &["\\Seen"],
            date,
        );
    }
    w
}

async fn copy_all(w: &World) {
    w.act(BulkAction::Start).await;
    w.drain(&mut VecDeque::new()).await;
    let user = w.user().await;
    assert_eq!(user.state, UserState::Completed, "{:?}", user.last_error);
    assert_eq!(bag(&w.source), bag(&w.target));
}

/// Starts the user and runs only the plan: its sessions are then kept, the copy jobs queued.
async fn start_and_plan(w: &World) {
    w.act(BulkAction::Start).await;
    let plan = w.queue.pop().unwrap();
    w.app
        .handle_job(&plan, Duration::from_secs(3600))
        .await
        .unwrap();
}

fn source_mailbox_key() -> String {
    format!("mailbox:{SOURCE_HOST}:993:{USER}")
}

/// The plan's sessions go on to every copy job: one login per side for the whole pass, where
/// logging out after each job signs in once per folder more. The pass's end logs them out.
#[tokio::test]
async fn a_pass_signs_in_once_per_side_when_sessions_are_kept() {
    let folders = FOLDERS.len() as u64;
    let w = world(Duration::from_secs(60), CopyOptions::default()).await;
    // The plan ends with its sessions kept, still counted against the mailbox caps.
    start_and_plan(&w).await;
    assert_eq!(w.source.open_sessions(USER), 1);
    let now = w.app.deps().clock.now();
    let limiter = &w.app.deps().limiter;
    assert_eq!(limiter.in_use(&source_mailbox_key(), now).await.unwrap(), 1);
    w.drain(&mut VecDeque::new()).await;
    let user = w.user().await;
    assert_eq!(user.state, UserState::Completed, "{:?}", user.last_error);
    assert_eq!(bag(&w.source), bag(&w.target));
    assert_eq!(w.source.logins(), 1);
    assert_eq!(w.target.logins(), 1);
    // The last job completed the pass: nothing stays signed in or holds a slot.
    assert_eq!(w.source.open_sessions(USER), 0);
    assert_eq!(w.target.open_sessions(USER), 0);
    assert_eq!(limiter.in_use(&source_mailbox_key(), now).await.unwrap(), 0);

    let w = world(Duration::ZERO, CopyOptions::default()).await;
    copy_all(&w).await;
    assert_eq!(w.source.logins(), 1 + folders, "the plan, then each folder");
    assert_eq!(w.target.logins(), 1 + folders);
    assert_eq!(w.source.open_sessions(USER), 0);
}

/// Kept sessions hold their slots: while another user waits in the source server's line, a
/// job gives its slots back at its end instead of keeping them for its own user's next job.
#[tokio::test]
async fn sessions_are_not_kept_while_another_user_waits_for_the_server() {
    let mut options = CopyOptions::default();
    options.limits.source_server = Some(4);
    let w = world(Duration::from_secs(60), options).await;
    let now = w.app.deps().clock.now();
    let other = domain::schedule::line_rank(0, now, &uuid::Uuid::new_v4().to_string());
    w.app
        .deps()
        .limiter
        .join_line(
            &format!("server:{SOURCE_HOST}:993"),
            &other,
            now + time::Duration::hours(1),
        )
        .await
        .unwrap();
    copy_all(&w).await;
    assert_eq!(w.source.logins(), 1 + FOLDERS.len() as u64);
    assert_eq!(w.source.open_sessions(USER), 0);
}

/// A kept pair nobody takes is logged out when the window ends, its slots given back.
#[tokio::test]
async fn kept_sessions_log_out_when_the_window_ends() {
    let w = World::on_wall_clock(settings(Duration::from_millis(200))).await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    w.source
        .deliver(USER, FOLDERS[0], body(1, true, 500), &["\\Seen"], date);
    start_and_plan(&w).await;
    assert_eq!(w.source.open_sessions(USER), 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(w.source.open_sessions(USER), 0);
    assert_eq!(w.target.open_sessions(USER), 0);
    let now = w.app.deps().clock.now();
    let limiter = &w.app.deps().limiter;
    assert_eq!(limiter.in_use(&source_mailbox_key(), now).await.unwrap(), 0);
    // The copy jobs sign in afresh and complete the pass.
    w.drain(&mut VecDeque::new()).await;
    assert_eq!(w.user().await.state, UserState::Completed);
    assert_eq!(bag(&w.source), bag(&w.target));
    assert_eq!(w.source.logins(), 2);
}

/// A kept session the server dropped meanwhile fails its next job once; the retry signs in
/// afresh and the copy completes with nothing lost or doubled.
#[tokio::test]
async fn a_kept_session_the_server_dropped_is_replaced() {
    let w = world(Duration::from_secs(60), CopyOptions::default()).await;
    start_and_plan(&w).await;
    // The server restarts: every session it had is gone, the kept one too.
    w.source.drop_connections();
    w.drain(&mut VecDeque::new()).await;
    let user = w.user().await;
    assert_eq!(user.state, UserState::Completed, "{:?}", user.last_error);
    assert_eq!(bag(&w.source), bag(&w.target));
    assert_eq!(w.source.logins(), 2, "one new login, then kept again");
}

/// Jobs of one user running at once: those that end first keep their sessions, the one that
/// completes the pass logs out every kept pair, so nothing stays signed in after the pass
/// (without waiting for the window).
#[tokio::test]
async fn no_kept_session_outlives_a_pass_whose_jobs_ran_at_once() {
    let w = world(Duration::from_secs(60), CopyOptions::default()).await;
    start_and_plan(&w).await;
    let jobs: Vec<_> = std::iter::from_fn(|| w.queue.pop()).collect();
    assert_eq!(jobs.len(), FOLDERS.len());
    let runs = jobs
        .iter()
        .map(|job| w.app.handle_job(job, Duration::from_secs(3600)));
    for outcome in futures::future::join_all(runs).await {
        outcome.unwrap();
    }
    w.drain(&mut VecDeque::new()).await;
    let user = w.user().await;
    assert_eq!(user.state, UserState::Completed, "{:?}", user.last_error);
    assert_eq!(bag(&w.source), bag(&w.target));
    assert!(w.source.logins() > 1, "the jobs overlapped");
    assert_eq!(w.source.open_sessions(USER), 0);
    assert_eq!(w.target.open_sessions(USER), 0);
    let now = w.app.deps().clock.now();
    let limiter = &w.app.deps().limiter;
    assert_eq!(limiter.in_use(&source_mailbox_key(), now).await.unwrap(), 0);
}
