//! The shared conformance suites on the SQLite adapters: on files in a temporary folder (the
//! way mailferry runs) and in memory (the way quick tests run).

use embedded::{SqliteQueue, SqliteStore};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_on_a_file_passes_the_store_suite() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    conformance::store_suite(|| {
        let dir = Arc::clone(&dir);
        async move {
            let path = dir
                .path()
                .join(format!("store-{}.db", uuid::Uuid::new_v4()));
            SqliteStore::open(path).unwrap()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_store_in_memory_passes_the_store_suite() {
    conformance::store_suite(|| async { SqliteStore::open_in_memory().unwrap() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_queue_on_a_file_passes_the_queue_suite() {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    conformance::queue_suite(|max_receives| {
        let dir = Arc::clone(&dir);
        async move {
            let path = dir
                .path()
                .join(format!("queue-{}.db", uuid::Uuid::new_v4()));
            SqliteQueue::open(path, max_receives).unwrap()
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_queue_in_memory_passes_the_queue_suite() {
    conformance::queue_suite(|max_receives| async move {
        SqliteQueue::open_in_memory(max_receives).unwrap()
    })
    .await;
}
