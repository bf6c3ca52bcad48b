//! The shared conformance suites, unchanged, on DynamoDB and SQS in moto: each check gets a
//! fresh, uniquely named table (or queue pair) on one moto_server started by the test.

use aws::SqsQueue;
use aws::moto::{MotoServer, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamo_store_passes_the_store_suite() {
    // Arrange
    let moto = MotoServer::start().expect("moto_server starts");
    let aws = moto.aws().await;

    // Act and assert: the suite panics naming every failed check.
    conformance::store_suite(|| {
        let aws = aws.clone();
        async move {
            let store = aws.dynamo_store(unique_name("store"));
            store.create_table().await.expect("create the table");
            store
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqs_queue_passes_the_queue_suite() {
    // Arrange
    let moto = MotoServer::start().expect("moto_server starts");
    let aws = moto.aws().await;

    // Act and assert: a queue and its dead-letter queue per check, with the redrive policy's
    // maxReceiveCount the check asks for.
    conformance::queue_suite(|max_receives| {
        let aws = aws.clone();
        async move {
            SqsQueue::create(&aws, &unique_name("queue"), max_receives)
                .await
                .expect("create the queues")
        }
    })
    .await;
}
