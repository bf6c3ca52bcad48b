//! The self-service scenario in AWS mode on one machine: the same router the `api` Lambda
//! serves and the same per-record handler the `worker` Lambda runs, on the AWS adapters
//! (DynamoDB, SQS, SES, KMS) in moto, with two real Dovecot servers. Create a project, invite,
//! submit a wrong then the right password, copy to Completed; the target equals the source.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::ports::Queue;
use integration_tests::corpus::test_corpus;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::copy::{SOURCE_PW, assert_arrived, project_json, seed, source_server, target_server};

/// Recorded SES sends in moto.
fn ses_messages(moto: &aws::moto::MotoServer) -> Vec<Value> {
    let data: Value =
        serde_json::from_str(&moto.get("/moto-api/data.json").expect("moto data")).expect("JSON");
    data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_service_scenario_runs_on_dynamodb_sqs_ses_and_kms() {
    // Arrange: moto with one deployment, two Dovecot servers, the api router on a port.
    let source = source_server();
    let target = target_server();
    seed(&source, "ann@old.example", &test_corpus(71, None));
    let moto =
        tokio::task::block_in_place(aws::moto::MotoServer::start).expect("moto_server starts");
    let d = moto.deployment(5).await;
    let settings =
        aws::Settings::from_lookup(|k| d.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .expect("settings");
    let mailboxes = Arc::new(imap::ImapMailboxes::new(imap::TlsConfig::native_roots()));
    let app = domain::App::new(
        d.aws.adapters(&settings).into_deps(
            mailboxes,
            Arc::new(oauth::OAuthClient::new().expect("token client")),
        ),
        settings.app_config(),
    );
    let state = web::AppState {
        app: app.clone(),
        auth: web::AdminAuth::GatewayJwt {
            sign_in: aws::SignInSettings::from_lookup(|k| {
                d.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
            })
            .expect("sign-in settings"),
        },
        secure_cookies: true,
    };
    let router = web::router(state, web::RouterOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();
    // The API gateway's JWT authorizer has verified this token before the function sees it.
    let bearer = "Bearer eyJhbGciOiJSUzI1NiJ9.test-verified-by-the-gateway.signature";
    let post = |path: String, body: Value| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let r = http
                .post(url)
                .header("authorization", bearer)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, _) = {
        let r = http
            .get(format!("{base}/api/admin/projects"))
            .send()
            .await
            .unwrap();
        (r.status(), ())
    };
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "admin routes need the gateway's bearer token"
    );

    // Act: project, user, invite by SES.
    let mut project = project_json(&source, &target);
    project["invite_to"] = json!("source");
    let (status, p) = post("/api/admin/projects".into(), project).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    let p = p["id"].as_str().unwrap().to_owned();
    let (status, u) = post(
        format!("/api/admin/projects/{p}/users"),
        json!({"source_email": "ann@old.example", "target_email": "ann@new.example"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{u}");
    let u = u["id"].as_str().unwrap().to_owned();
    let (_, started) = post(
        format!("/api/admin/projects/{p}/users/{u}/actions/start"),
        json!(null),
    )
    .await;
    assert_eq!(started["state"], "email_sent", "{started}");
    let mails = tokio::task::block_in_place(|| ses_messages(&moto));
    let invite = mails
        .iter()
        .find(|m| {
            m["destinations"]["ToAddresses"]
                .to_string()
                .contains("ann@old.example")
        })
        .expect("an invite sent by SES");
    let body = invite["body"].as_str().unwrap();
    let link = body
        .split_whitespace()
        .find(|w| w.starts_with("https://mailferry.example/migrate/"))
        .expect("invite link");
    let token = link.rsplit('/').next().unwrap().to_owned();

    let (status, wrong) = post(
        format!("/api/migrate/{token}/credentials"),
        json!({"source_password": "nope"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}");
    assert_eq!(wrong["details"]["attempts_left"], 4);
    let (status, right) = post(
        format!("/api/migrate/{token}/credentials"),
        json!({"source_password": SOURCE_PW}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{right}");
    assert_eq!(right["state"], "scheduled");

    // The worker Lambda: SQS records through worker::handle_record until the user completes.
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let user = app.user(domain::UserId(u.parse().unwrap())).await.unwrap();
        if user.state == contract::UserState::Completed {
            break;
        }
        assert!(Instant::now() < until, "not completed: {user:?}");
        let deliveries = d.queue.receive(10, Duration::from_secs(60)).await.unwrap();
        for delivery in deliveries {
            let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
            record.message_id = Some(delivery.message_id.clone());
            record.receipt_handle = Some(delivery.receipt.clone());
            record.body = Some(serde_json::to_string(&delivery.job).unwrap());
            record.attributes.insert(
                "ApproximateReceiveCount".into(),
                delivery.receive_count.to_string(),
            );
            let outcome = worker::handle_record(&app, &record, Duration::from_secs(60), 5).await;
            if !outcome.is_failure() {
                // What Lambda does with a record not listed as a batch item failure.
                d.queue.ack(&delivery.receipt).await.unwrap();
            }
        }
    }

    // Assert: the mailbox arrived exactly, and the status read works through the token.
    assert_arrived(&source, &target).await;
    let status: Value = http
        .get(format!("{base}/api/migrate/{token}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["new_account"]["email"], "ann@new.example");
}
