//! A 200,000-message folder of which the target refuses every fourth message (50,000 skipped,
//! and a copy map broken into 50,000 runs), copied by the engine on the in-memory mail server
//! with its state in SQLite and in DynamoDB (moto): the folder's checkpoint stays small (a
//! DynamoDB item ends at 400 KB), and every skipped item is kept and listed. Prints the largest
//! checkpoint and writes it to `target/bench/big_folder.json`.

mod support;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use contract::{BulkAction, UserState};
use domain::app::CopySettings;
use domain::ports::Store;
use time::OffsetDateTime;

use support::*;

const MESSAGES: u32 = 200_000;
const EVERY_REFUSED: u32 = 4;
/// The checkpoint must stay far below DynamoDB's 400 KB item limit.
const CHECKPOINT_LIMIT: usize = 64 * 1024;

fn message(i: u32) -> Vec<u8> {
    format!("Message-ID: <big{i}@gen.test>\r\nSubject: {i}\r\n\r\nbody {i}\r\n").into_bytes()
}

/// Copies the folder and returns the largest checkpoint seen (JSON bytes), checking as it goes.
async fn copy_big_folder(store: Arc<dyn Store>, label: &str) -> usize {
    let w = World::on_store(
        CopySettings {
            chunk_messages: 2_000,
            chunk_bytes: 1 << 20,
            ..CopySettings::default()
        },
        store,
    )
    .await;
    let date = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    for i in 0..MESSAGES {
        w.source
            .deliver(USER, "INBOX", message(i), mailsim::NO_FLAGS, date);
    }
    w.target.behaviour_mut(|b| {
        b.refuse_message_ids = (0..MESSAGES)
            .filter(|i| i % EVERY_REFUSED == 0)
            .map(|i| format!("<big{i}@gen.test>"))
            .collect();
    });
    let started = Instant::now();
    w.act(BulkAction::Start).await;
    let mut largest = 0;
    while let Some(job) = w.queue.pop() {
        w.app
            .handle_job(&job, Duration::from_secs(3600))
            .await
            .unwrap();
        for f in w.app.deps().store.list_folders(w.user.id).await.unwrap() {
            largest = largest.max(serde_json::to_vec(&f).unwrap().len());
        }
    }
    w.drain(&mut VecDeque::new()).await;
    let user = w.user().await;
    assert_eq!(user.state, UserState::Completed, "{:?}", user.last_error);
    let inbox = w
        .app
        .deps()
        .store
        .get_folder(w.user.id, "INBOX")
        .await
        .unwrap()
        .unwrap();
    let refused = (MESSAGES / EVERY_REFUSED) as usize;
    assert_eq!(inbox.skipped_total(), refused as u64);
    let items = skipped_items(&w, "INBOX").await;
    assert_eq!(items.len(), refused, "every skipped item is kept");
    assert!(
        items.iter().all(|i| i.uid % EVERY_REFUSED == 1),
        "the refused ones"
    );
    assert_eq!(
        w.target.messages(USER, "INBOX").len(),
        (MESSAGES as usize) - refused
    );
    assert!(inbox.copies.pages > 0, "the copy map was sealed into pages");
    println!(
        "{label}: {MESSAGES} messages, {refused} skipped, {} copy-map pages, largest checkpoint {largest} bytes, {:.1} s",
        inbox.copies.pages,
        started.elapsed().as_secs_f64()
    );
    assert!(
        largest < CHECKPOINT_LIMIT,
        "{label}: a checkpoint of {largest} bytes"
    );
    largest
}

fn record(label: &str, largest: usize) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join(format!("big_folder_{label}.json")),
        serde_json::json!({ "messages": MESSAGES, "skipped": MESSAGES / EVERY_REFUSED, "largest_checkpoint_bytes": largest })
            .to_string(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200000_message_folder_with_50000_skipped_keeps_small_checkpoints_on_sqlite() {
    let largest = copy_big_folder(sqlite(), "sqlite").await;
    record("sqlite", largest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200000_message_folder_with_50000_skipped_keeps_small_checkpoints_on_dynamodb() {
    let moto = aws::moto::MotoServer::start().expect("moto_server starts");
    let aws = moto.aws().await;
    let store = aws.dynamo_store(aws::moto::unique_name("big"));
    store.create_table().await.expect("create the table");
    let largest = copy_big_folder(Arc::new(store), "dynamodb").await;
    record("dynamodb", largest);
}
