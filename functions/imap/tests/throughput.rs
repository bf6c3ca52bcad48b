//! Throughput of the copy path against real Dovecot (fsync off): `fetch_bodies` alone,
//! `append` (MULTIAPPEND batches) alone, and both at once (source → channel → target), on a
//! few hundred messages of mixed sizes. The figures are printed (`--nocapture`); the test
//! checks that every message arrived intact. `IMAP_BENCH_MESSAGES` changes the count,
//! `IMAP_BENCH_FSYNC=1` keeps Dovecot's fsync on.

mod support;

use std::ops::ControlFlow;
use std::time::Instant;

use imap::{AppendItem, FetchedMessage, UidSet};
use support::{USER, message, session, sha256, start};
use testbed::DovecotOptions;

/// Messages per MULTIAPPEND, and the most bytes one may carry.
const BATCH: usize = 50;
const BATCH_BYTES: usize = 8 * 1024 * 1024;

fn rate(label: &str, messages: usize, bytes: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label:<28} {messages:>5} messages {:>8.1} MB in {secs:>6.2} s = {:>7.0} msg/s {:>7.1} MB/s",
        bytes as f64 / 1e6,
        messages as f64 / secs,
        bytes as f64 / 1e6 / secs
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_bodies_and_append_throughput() {
    // Arrange: sizes from 1 KB to about 200 KB, most small, as in real mailboxes.
    let count: usize = std::env::var("IMAP_BENCH_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let options = || {
        if std::env::var("IMAP_BENCH_FSYNC").is_ok_and(|v| v == "1") {
            DovecotOptions::new()
        } else {
            DovecotOptions::new().no_fsync()
        }
    };
    let source = start(options());
    let target = start(options());
    let mut seed = source.raw_session(USER).unwrap();
    let mut hashes = Vec::with_capacity(count);
    let mut total = 0u64;
    for i in 0..count {
        let size = match i % 10 {
            0 => 200_000,
            1 | 2 => 50_000,
            _ => 1_000 + (i * 37) % 8_000,
        };
        let bytes = message(
            &format!("m{i}"),
            Some(&format!("<m{i}@bench>")),
            &"z".repeat(size),
        );
        total += bytes.len() as u64;
        hashes.push(sha256(&bytes));
        seed.append("INBOX", &bytes, &["\\Seen"], None).unwrap();
    }
    seed.logout();
    let mut src = session(&source).await;
    src.examine("INBOX").await.unwrap();

    // Act 1: download only.
    let started = Instant::now();
    let mut downloaded = Vec::with_capacity(count);
    let summary = src
        .fetch_bodies(&UidSet::all(), |m| {
            downloaded.push(m);
            async { ControlFlow::Continue(()) }
        })
        .await
        .unwrap();
    rate("fetch_bodies", summary.delivered, summary.bytes, started);

    // Act 2: upload only, MULTIAPPEND in batches.
    let items: Vec<AppendItem> = downloaded.into_iter().map(AppendItem::from).collect();
    let mut dst = session(&target).await;
    dst.create_folder("Bulk").await.unwrap();
    let started = Instant::now();
    let mut appended = 0;
    for batch in items.chunks(BATCH) {
        let outcomes = dst.append("Bulk", batch).await.unwrap();
        appended += outcomes.iter().filter(|o| o.is_appended()).count();
    }
    rate("append (MULTIAPPEND)", appended, total, started);
    drop(items);

    // Act 3: both at once, as the copy engine will run them.
    dst.create_folder("Copy").await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<FetchedMessage>(BATCH);
    let uploader = tokio::spawn(async move {
        let mut batch: Vec<AppendItem> = Vec::new();
        let mut batch_bytes = 0;
        let mut appended = 0;
        loop {
            let next = rx.recv().await;
            let done = next.is_none();
            if let Some(message) = next {
                batch_bytes += message.body.len();
                batch.push(AppendItem::from(message));
            }
            if !batch.is_empty() && (done || batch.len() >= BATCH || batch_bytes >= BATCH_BYTES) {
                let outcomes = dst.append("Copy", &batch).await.unwrap();
                appended += outcomes.iter().filter(|o| o.is_appended()).count();
                batch.clear();
                batch_bytes = 0;
            }
            if done {
                return (dst, appended);
            }
        }
    });
    let started = Instant::now();
    let summary = src
        .fetch_bodies(&UidSet::all(), |m| {
            let tx = tx.clone();
            async move {
                match tx.send(m).await {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(_) => ControlFlow::Break(()),
                }
            }
        })
        .await
        .unwrap();
    drop(tx);
    let (mut dst, appended) = uploader.await.unwrap();
    rate("copy (fetch → append)", appended, summary.bytes, started);

    // Assert: everything arrived, byte for byte, in order.
    assert_eq!(summary.delivered, count);
    assert_eq!(appended, count);
    assert_eq!(target.message_count(USER, "Bulk").unwrap() as usize, count);
    dst.examine("Copy").await.unwrap();
    let mut copied = Vec::with_capacity(count);
    dst.fetch_bodies(&UidSet::all(), |m| {
        copied.push(sha256(&m.body));
        assert_eq!(m.meta.flags, ["\\Seen"]);
        async { ControlFlow::Continue(()) }
    })
    .await
    .unwrap();
    assert!(copied == hashes, "the copied bytes differ");
}
