//! The worker's per-message handler against a real queue, table, key and mailer in moto: what
//! each outcome does to the message and to the user.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws::moto::MotoServer;
use aws::{Adapters, SqsQueue};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use contract::jobs::Job;
use contract::{InviteTo, Progress, Security, UserState};
use domain::model::{
    Connector, ConnectorAuth, EmailAddress, FolderState, MailUser, Project, ProjectId, UserId,
};
use domain::ports::{Delivery, Queue, Store};
use domain::{App, AppConfig};
use time::OffsetDateTime;
use worker::{RecordOutcome, handle_batch, handle_record};

const BUDGET: Duration = Duration::from_secs(60);
const MAX_RECEIVES: u32 = 3;

struct Fixture {
    app: App,
    queue: SqsQueue,
    store: aws::DynamoStore,
    _moto: MotoServer,
}

async fn fixture() -> Fixture {
    let moto = MotoServer::start().expect("moto_server starts");
    let d = moto.deployment(MAX_RECEIVES).await;
    let adapters = Adapters {
        store: d.store.clone(),
        queue: d.queue.clone(),
        mailer: d.mailer,
        vault: d.vault,
    };
    let mailboxes = Arc::new(imap::ImapMailboxes::new(imap::TlsConfig::no_roots()));
    let app = App::new(
        adapters.into_deps(mailboxes, Arc::new(domain::oauth::NoTokens)),
        AppConfig::default(),
    );
    Fixture {
        app,
        queue: d.queue,
        store: d.store,
        _moto: moto,
    }
}

/// Sends `job`, receives it, and returns the SQS record Lambda would have passed.
async fn delivered(queue: &SqsQueue, job: &Job) -> SqsMessage {
    queue.send(job, Duration::ZERO).await.expect("send");
    let d = receive_one(queue).await;
    record(
        &d.message_id,
        &d.receipt,
        &serde_json::to_string(job).unwrap(),
        d.receive_count,
    )
}

async fn receive_one(queue: &SqsQueue) -> Delivery {
    for _ in 0..100 {
        if let Some(d) = queue
            .receive(1, Duration::from_secs(30))
            .await
            .expect("receive")
            .pop()
        {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing received")
}

fn record(message_id: &str, receipt: &str, body: &str, receive_count: u32) -> SqsMessage {
    let mut m = SqsMessage::default();
    m.message_id = Some(message_id.to_owned());
    m.receipt_handle = Some(receipt.to_owned());
    m.body = Some(body.to_owned());
    m.attributes
        .insert("ApproximateReceiveCount".into(), receive_count.to_string());
    m
}

fn user(project: ProjectId, state: UserState) -> MailUser {
    let now = OffsetDateTime::now_utc();
    MailUser {
        id: UserId::new(),
        project_id: project,
        source_email: EmailAddress::parse("ann@source.example").unwrap(),
        target_email: EmailAddress::parse("ann@target.example").unwrap(),
        display_name: "Ann".into(),
        state,
        pass: 1,
        progress: Progress::default(),
        last_error: None,
        priority: 0,
        waiting_since: None,
        sync: Default::default(),
        preflight: None,
        line: None,
        has_credentials: true,
        invite_sent_at: None,
        created_at: now,
        updated_at: now,
        version: 1,
    }
}

fn project() -> Project {
    let connector = Connector {
        kind: contract::ConnectorKind::Imap,
        host: "127.0.0.1".into(),
        port: 1,
        security: Security::Plaintext,
        auth: ConnectorAuth::PerUser,
    };
    Project {
        id: ProjectId::new(),
        name: "Worker test".into(),
        source: connector.clone(),
        target: connector,
        invite_to: InviteTo::Source,
        admin_email: None,
        notify_user: false,
        copy: Default::default(),
        retention: Default::default(),
        sync: Default::default(),
        closed_at: None,
        created_at: OffsetDateTime::now_utc(),
        version: 1,
    }
}

#[tokio::test]
async fn a_job_for_an_unknown_user_is_done() {
    // Arrange
    let f = fixture().await;
    let job = Job::Plan {
        user_id: uuid::Uuid::new_v4(),
        pass: 1,
    };
    let record = delivered(&f.queue, &job).await;

    // Act
    let outcome = handle_record(&f.app, &record, BUDGET, MAX_RECEIVES).await;

    // Assert
    assert_eq!(outcome, RecordOutcome::Done);
    assert!(!outcome.is_failure());
}

#[tokio::test]
async fn a_malformed_body_fails() {
    // Arrange
    let f = fixture().await;
    let record = record("m-1", "r-1", "{\"type\":\"nonsense\"}", 1);

    // Act
    let outcome = handle_record(&f.app, &record, BUDGET, MAX_RECEIVES).await;

    // Assert
    assert!(
        matches!(&outcome, RecordOutcome::Failed { reason } if reason.contains("not a job")),
        "{outcome:?}"
    );
    assert!(outcome.is_failure());
}

#[tokio::test]
async fn a_batch_reports_only_its_failed_records() {
    // Arrange
    let f = fixture().await;
    let good = delivered(
        &f.queue,
        &Job::Plan {
            user_id: uuid::Uuid::new_v4(),
            pass: 1,
        },
    )
    .await;
    let mut event = SqsEvent::default();
    event.records = vec![good, record("bad-1", "r-2", "not json", 1)];

    // Act
    let response = handle_batch(
        &f.app,
        &event,
        SystemTime::now() + Duration::from_secs(120),
        MAX_RECEIVES,
    )
    .await;

    // Assert
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["bad-1"]);
}

#[tokio::test]
async fn retry_later_delays_the_message_and_keeps_it() {
    // Arrange: the folder is leased by another worker for a minute, so the copy job must wait.
    let f = fixture().await;
    let p = project();
    f.store.insert_project(&p).await.unwrap();
    let u = user(p.id, UserState::Working);
    f.store.insert_user(&u).await.unwrap();
    let folder = FolderState {
        source_messages: 10,
        source_bytes: 1000,
        moves: None,
        lease_owner: Some("another worker".into()),
        lease_until: Some(OffsetDateTime::now_utc() + time::Duration::seconds(60)),
        ..FolderState::new(u.id, "INBOX", "INBOX", 1)
    };
    f.store.put_folder(&folder, None).await.unwrap();
    let job = Job::Copy {
        user_id: u.id.0,
        pass: 1,
        folder: "INBOX".into(),
        attempt: 0,
    };
    // Received with a 1 s visibility: without the retry it would be back in a second.
    f.queue.send(&job, Duration::ZERO).await.unwrap();
    let mut d = None;
    for _ in 0..100 {
        if let Some(got) = f
            .queue
            .receive(1, Duration::from_secs(1))
            .await
            .unwrap()
            .pop()
        {
            d = Some(got);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = d.expect("received");
    let rec = record(
        &d.message_id,
        &d.receipt,
        &serde_json::to_string(&job).unwrap(),
        d.receive_count,
    );

    // Act
    let outcome = handle_record(&f.app, &rec, BUDGET, MAX_RECEIVES).await;

    // Assert
    assert!(
        outcome.is_failure(),
        "reported as failed so Lambda keeps it"
    );
    let RecordOutcome::RetryScheduled { after } = outcome else {
        panic!("expected a scheduled retry, got {outcome:?}");
    };
    assert!(
        after > Duration::from_secs(30),
        "waits for the lease: {after:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        f.queue
            .receive(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "the message stays invisible past its original 1 s visibility"
    );
}

#[tokio::test]
async fn an_error_on_the_last_receive_marks_the_user_failed() {
    // Arrange: a scheduled user whose project is gone, so the plan job fails every time.
    let f = fixture().await;
    let u = user(ProjectId::new(), UserState::Scheduled);
    f.store.insert_user(&u).await.unwrap();
    let job = Job::Plan {
        user_id: u.id.0,
        pass: 1,
    };
    let body = serde_json::to_string(&job).unwrap();

    // Act: an early receive fails and leaves the user alone; the last one gives up.
    let early = handle_record(
        &f.app,
        &record("m-1", "r-1", &body, 1),
        BUDGET,
        MAX_RECEIVES,
    )
    .await;
    let after_early = f.store.get_user(u.id).await.unwrap().unwrap();
    let last = handle_record(
        &f.app,
        &record("m-1", "r-2", &body, MAX_RECEIVES),
        BUDGET,
        MAX_RECEIVES,
    )
    .await;

    // Assert
    assert!(
        early.is_failure() && last.is_failure(),
        "{early:?} {last:?}"
    );
    assert_eq!(after_early.state, UserState::Scheduled, "not yet given up");
    let after_last = f.store.get_user(u.id).await.unwrap().unwrap();
    assert_eq!(after_last.state, UserState::Failed, "given up");
    assert!(
        after_last
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("project")),
        "the reason is kept: {:?}",
        after_last.last_error
    );
}

#[tokio::test]
async fn the_schedule_runs_the_watchdog_and_a_batch_still_runs_jobs() {
    // Arrange: a working user whose last sign of life is hours old, with no job anywhere.
    let f = fixture().await;
    let p = project();
    f.store.insert_project(&p).await.unwrap();
    let mut stalled = user(p.id, UserState::Working);
    stalled.updated_at = OffsetDateTime::now_utc() - time::Duration::hours(7);
    f.store.insert_user(&stalled).await.unwrap();
    let deadline = SystemTime::now() + Duration::from_secs(120);
    // EventBridge's scheduled event, as Lambda delivers it.
    let scheduled = serde_json::json!({
        "version": "0", "id": "c2b3", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-12-07T02:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/watchdog"], "detail": {}
    });

    // Act
    let answer = worker::handle_invocation(&f.app, scheduled, deadline, MAX_RECEIVES)
        .await
        .unwrap();

    // Assert: SQS cannot say whether jobs remain, so only hours of silence count.
    assert_eq!(answer["watchdog"]["failed"], 1);
    let after = f.store.get_user(stalled.id).await.unwrap().unwrap();
    assert_eq!(after.state, UserState::Failed);
    assert!(
        after
            .last_error
            .unwrap_or_default()
            .starts_with("copying stopped")
    );
    let batch = serde_json::json!({ "Records": [] });
    let answer = worker::handle_invocation(&f.app, batch, deadline, MAX_RECEIVES)
        .await
        .unwrap();
    assert_eq!(answer["batchItemFailures"], serde_json::json!([]));
    assert!(
        worker::handle_invocation(&f.app, serde_json::json!({"hello": 1}), deadline, 3)
            .await
            .is_err()
    );
}
