//! The worker binary run the way Lambda runs it: a fresh process with only Lambda's and the
//! template's environment, talking to a Lambda Runtime API emulator, with the AWS services in
//! moto. It checks the wiring in `main` (settings, SDK clients, the SQS batch response) and
//! prints the cold start: process start to the first request for an event (init), and to the
//! first response. Set `MAILFERRY_WORKER_BOOTSTRAP` to time a release build
//! (`cargo lambda build --release`) instead of the test build.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws::moto::MotoServer;
use aws::runtime_api::{Posted, RuntimeApi};
use contract::jobs::Job;
use serde_json::json;
use tokio::process::Command;

fn bootstrap() -> PathBuf {
    std::env::var_os("MAILFERRY_WORKER_BOOTSTRAP")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_worker")))
}

fn record(id: &str, body: &str) -> serde_json::Value {
    json!({
        "messageId": id,
        "receiptHandle": format!("receipt-{id}"),
        "body": body,
        "attributes": { "ApproximateReceiveCount": "1", "SentTimestamp": "1795000000000" },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs",
        "awsRegion": "us-east-1"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_an_sqs_batch_as_lambda_runs_it() {
    // Arrange: a batch with a job for a user nobody knows (done) and a body that is no job.
    let moto = MotoServer::start().expect("moto_server starts");
    let deployment = moto.deployment(3).await;
    let job = Job::Plan {
        user_id: uuid::Uuid::new_v4(),
        pass: 1,
    };
    let event = json!({ "Records": [
        record("good-1", &serde_json::to_string(&job).unwrap()),
        record("bad-1", "not a job"),
    ]});
    let api = RuntimeApi::start(vec![event.to_string()], Duration::from_secs(120))
        .await
        .expect("runtime API emulator");

    // Act
    let started = Instant::now();
    let mut child = Command::new(bootstrap())
        .env_clear()
        .envs(api.lambda_env("mailferry-worker"))
        .envs(deployment.env.iter().cloned())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the worker");
    let posted = api.posted(Duration::from_secs(60)).await;
    let _ = child.kill().await;

    // Assert
    let Some(Posted::Response { body, at, .. }) = posted else {
        panic!("expected a response, got {posted:?}");
    };
    let response: serde_json::Value = serde_json::from_str(&body).expect("JSON response");
    assert_eq!(
        response,
        json!({ "batchItemFailures": [{ "itemIdentifier": "bad-1" }] }),
        "only the unreadable record failed"
    );
    let init = api.first_next_at().expect("asked for an event") - started;
    eprintln!(
        "worker cold start ({}): init {} ms, first response {} ms",
        bootstrap().display(),
        init.as_millis(),
        (at - started).as_millis()
    );
}

#[tokio::test]
async fn stops_at_start_naming_a_missing_variable() {
    // Arrange: everything but TABLE_NAME.
    let moto = MotoServer::start().expect("moto_server starts");
    let deployment = moto.deployment(3).await;

    // Act
    let run = aws::runtime_api::start_without(
        &bootstrap(),
        "mailferry-worker",
        &deployment.env,
        "TABLE_NAME",
    )
    .await
    .expect("run the worker");

    // Assert
    assert!(!run.success, "a failed start is an error exit");
    assert!(
        run.output.contains("TABLE_NAME"),
        "the output names the variable: {}",
        run.output
    );
    assert!(!run.asked_for_event, "never asked for an event");
}
