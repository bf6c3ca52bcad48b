//! Microsoft 365 and Google Workspace sides without any user's password, against a real OAuth
//! authority (oidc-provider, `testbed::Authority`) and Dovecots that validate its JWT access
//! tokens with its key (Dovecot's oauth2 passdb): an app registration's client credentials
//! (signing in as a master user the way an app with IMAP.AccessAsApp opens any mailbox), and a
//! service account's RFC 7523 grant (a token per mailbox, `sub` = the mailbox).

use std::time::Duration;

use integration_tests::corpus::test_corpus;
use integration_tests::{TestApp, spawn_app_with, wait_for_state};
use reqwest::StatusCode;
use serde_json::{Value, json};
use testbed::{Authority, AuthorityOptions, Dovecot, DovecotOptions, SpecialFolder};

use crate::copy::{
    MASTER_PW, SOURCE_PW, assert_arrived, assert_arrived_as, delta_pass, seed, source_server,
    start_ann, target_server,
};

/// Ann's own password on the Microsoft 365 stand-in: only the test reads with it.
pub(crate) const ANN_TARGET_PW: &str = "a password mailferry never learns";

const APP: &str = "6f1c1a43-0b8e-4a8e-9d43-3a1f8c7e2b10";
const APP_SECRET: &str = "app-secret-for-the-tests";
/// An app registration that proves itself with a certificate instead of a secret.
const CERT_APP: &str = "0b7e4c2d-9a61-4f3e-8d25-6c1f0a9e3b74";
const SERVICE_ACCOUNT: &str = "mover@migration.iam.gserviceaccount.com";

fn authority() -> Authority {
    authority_with(AuthorityOptions::new())
}

fn authority_with(options: AuthorityOptions) -> Authority {
    Authority::start(
        options
            .app(APP, APP_SECRET)
            .app_with_certificate(CERT_APP)
            .service_account(SERVICE_ACCOUNT),
    )
    .expect("the OAuth authority starts")
}

/// The local server, with both providers' token endpoints at the local authority.
async fn app_for(authority: &Authority) -> TestApp {
    let token_url = authority.token_url();
    spawn_app_with(None, |args| {
        args.microsoft_token_url = Some(token_url.clone());
        args.google_token_url = Some(token_url);
    })
    .await
    .unwrap()
}

/// A Dovecot that takes the authority's tokens as Exchange Online does (an app's as a master
/// user, a user's as that user), with its Sent Items.
pub(crate) fn token_target(authority: &Authority) -> Dovecot {
    Dovecot::start(
        DovecotOptions::default()
            .user("ann@new.example", ANN_TARGET_PW)
            .oauth2_authority(authority)
            .special_folders(vec![SpecialFolder {
                name: "Sent Items".into(),
                special_use: "\\Sent".into(),
                auto_create: true,
            }]),
    )
    .expect("target dovecot")
}

fn microsoft_target(target: &Dovecot, secret: &str) -> Value {
    microsoft_target_as(target, APP, secret)
}

fn microsoft_target_as(target: &Dovecot, app: &str, secret: &str) -> Value {
    json!({
        "kind": "microsoft365", "host": "127.0.0.1", "port": target.port(), "security": "plaintext",
        "auth": {"mode": "microsoft_app", "tenant_id": "contoso.example", "client_id": app,
                 "client_secret": secret, "login_pattern": format!("{{email}}*{app}")}
    })
}

/// Adds Ann (with her source password when the source takes one), starts her copy and waits
/// until it completes.
async fn copy_ann(app: &TestApp, project: Value, source_password: Option<&str>) -> (String, Value) {
    let (p, u) = start_ann(app, project, source_password).await;
    let done = wait_for_state(app, &p, &u, "completed", Duration::from_secs(120))
        .await
        .unwrap();
    (p, done)
}

#[tokio::test]
async fn a_microsoft_365_target_is_written_with_an_app_token_and_no_password() {
    let authority = authority();
    let source = source_server();
    seed(&source, "ann@old.example", &test_corpus(12, None));
    let target = token_target(&authority);
    let app = app_for(&authority).await;
    app.login().await.unwrap();

    // The form's connection test proves the token grant and one login.
    let r = app
        .post(
            "/api/admin/connectors/test",
            json!({"connector": microsoft_target(&target, APP_SECRET), "email": "ann@new.example"}),
        )
        .await
        .unwrap();
    assert_eq!(r.body["ok"], true, "{:?}", r.body);

    let project = json!({
        "name": "To Microsoft 365",
        "source": {"host": "127.0.0.1", "port": source.port(), "security": "plaintext", "auth": {"mode": "per_user"}},
        "target": microsoft_target(&target, APP_SECRET),
        "invite_to": "none"
    });
    let (p, done) = copy_ann(&app, project, Some(SOURCE_PW)).await;
    assert_eq!(done["user"]["last_error"], Value::Null, "{done}");
    assert_arrived_as(&source, &target, "ann@new.example", ANN_TARGET_PW).await;

    // The project shows the app, never its secret.
    let view = app.get(&format!("/api/admin/projects/{p}")).await.unwrap();
    assert_eq!(view.body["target"]["kind"], "microsoft365");
    assert_eq!(
        view.body["target"]["auth"]["has_secret"], true,
        "{:?}",
        view.body
    );
    assert!(!view.body.to_string().contains(APP_SECRET));
    // Ann's mailbox was opened with the app's token, as the app.
    let log = std::fs::read_to_string(target.log_path()).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("Login: user=<ann@new.example>") && l.contains("method=XOAUTH2")),
        "no XOAUTH2 login for Ann in the target's log"
    );
}

/// An app registration with a certificate instead of a secret: the connection test and the
/// copy get tokens with a signed client assertion, and nothing of the key is shown back.
#[tokio::test]
async fn a_microsoft_365_app_proves_itself_with_a_certificate() {
    let authority = authority();
    let source = source_server();
    seed(&source, "ann@old.example", &test_corpus(18, None));
    let target = token_target(&authority);
    let app = app_for(&authority).await;
    app.login().await.unwrap();
    let pem = authority.app_certificate(CERT_APP).unwrap();
    let r = app
        .post(
            "/api/admin/connectors/test",
            json!({"connector": microsoft_target_as(&target, CERT_APP, &pem), "email": "ann@new.example"}),
        )
        .await
        .unwrap();
    assert_eq!(r.body["ok"], true, "{:?}\n{}", r.body, authority.log());
    // The certificate without its key is refused before anything is asked.
    let cert_only = pem.split("-----BEGIN PRIVATE KEY-----").next().unwrap();
    let r = app
        .post(
            "/api/admin/connectors/test",
            json!({"connector": microsoft_target_as(&target, CERT_APP, cert_only), "email": "ann@new.example"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let project = json!({
        "name": "Certificate app",
        "source": {"host": "127.0.0.1", "port": source.port(), "security": "plaintext", "auth": {"mode": "per_user"}},
        "target": microsoft_target_as(&target, CERT_APP, &pem),
        "invite_to": "none"
    });
    let (p, done) = copy_ann(&app, project, Some(SOURCE_PW)).await;
    assert_eq!(done["user"]["last_error"], Value::Null, "{done}");
    assert_arrived_as(&source, &target, "ann@new.example", ANN_TARGET_PW).await;
    let view = app.get(&format!("/api/admin/projects/{p}")).await.unwrap();
    assert!(!view.body.to_string().contains("PRIVATE KEY"));
    assert!(authority.tokens_issued(CERT_APP) >= 1);
}

/// Access tokens that end every second: each job signs in with a token that is still good
/// (renewed before it ends), the move outlives several of them over three passes with new
/// mail in between, and the target never refuses a login.
#[tokio::test]
async fn app_tokens_that_end_are_renewed_and_nothing_is_lost() {
    let authority =
        authority_with(AuthorityOptions::new().access_token_ttl(Duration::from_secs(1)));
    let source = source_server();
    seed(&source, "ann@old.example", &test_corpus(14, None));
    let target = token_target(&authority);
    let app = app_for(&authority).await;
    let project = json!({
        "name": "Short tokens",
        "source": {"host": "127.0.0.1", "port": source.port(), "security": "plaintext", "auth": {"mode": "per_user"}},
        "target": microsoft_target(&target, APP_SECRET),
        "invite_to": "none"
    });
    let (p, u) = start_ann(&app, project, Some(SOURCE_PW)).await;
    wait_for_state(&app, &p, &u, "completed", Duration::from_secs(120))
        .await
        .unwrap();
    for (pass, n) in [(2, 900), (3, 901)] {
        // Past the end of every token handed out so far, and of the 2 s the last job's
        // sessions stay signed in for a next job (a kept session would need no token).
        tokio::time::sleep(Duration::from_millis(2_300)).await;
        let more = test_corpus(n, None).into_iter().take(3).collect::<Vec<_>>();
        seed(&source, "ann@old.example", &more);
        let done = delta_pass(&app, &p, &u, pass).await;
        assert_eq!(done["user"]["last_error"], Value::Null, "{done}");
    }
    assert_arrived_as(&source, &target, "ann@new.example", ANN_TARGET_PW).await;
    let issued = authority.tokens_issued(APP);
    println!("tokens issued to the app during the move: {issued}");
    assert!(
        issued >= 3,
        "{issued} tokens for three passes a token's life apart"
    );
    let log = std::fs::read_to_string(target.log_path()).unwrap_or_default();
    assert!(
        !log.contains("auth failed"),
        "the target refused a login: {}",
        log.lines()
            .filter(|l| l.contains("auth failed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[tokio::test]
async fn a_google_workspace_source_is_read_with_a_service_account_token_per_mailbox() {
    let authority = authority();
    let source = Dovecot::start(
        DovecotOptions::default()
            .user("ann@old.example", SOURCE_PW)
            .separator('/')
            .oauth2_authority(&authority)
            .special_folders(vec![SpecialFolder {
                name: "Sent".into(),
                special_use: "\\Sent".into(),
                auto_create: true,
            }]),
    )
    .expect("source dovecot");
    seed(&source, "ann@old.example", &test_corpus(13, None));
    let target = target_server();
    let app = app_for(&authority).await;
    let key = authority.service_account_key(SERVICE_ACCOUNT).unwrap();
    let project = json!({
        "name": "From Google Workspace",
        "source": {"kind": "google_workspace", "host": "127.0.0.1", "port": source.port(), "security": "plaintext",
                   "auth": {"mode": "google_service_account", "key_json": key}},
        "target": {"host": "127.0.0.1", "port": target.port(), "security": "plaintext",
                   "auth": {"mode": "admin", "login_pattern": "{email}*admin", "password": MASTER_PW}},
        "invite_to": "none"
    });
    let (p, _) = copy_ann(&app, project, None).await;
    assert_arrived(&source, &target).await;
    let view = app.get(&format!("/api/admin/projects/{p}")).await.unwrap();
    assert_eq!(
        view.body["source"]["auth"]["client_email"], SERVICE_ACCOUNT,
        "{:?}",
        view.body
    );
    assert!(!view.body.to_string().contains("PRIVATE KEY"));
}

#[tokio::test]
async fn a_refused_token_or_mailbox_is_named_and_no_secret_is_shown() {
    let authority = authority();
    let target = Dovecot::start(
        DovecotOptions::default()
            .user("ann@new.example", "unused")
            .oauth2_authority(&authority),
    )
    .expect("target dovecot");
    let app = app_for(&authority).await;
    app.login().await.unwrap();
    let test = |connector: Value| {
        let app = &app;
        async move {
            app.post(
                "/api/admin/connectors/test",
                json!({"connector": connector, "email": "ann@new.example"}),
            )
            .await
            .unwrap()
        }
    };

    // A wrong client secret: the authority's refusal, by its code.
    let wrong = "not-the-app-secret";
    let r = test(microsoft_target(&target, wrong)).await;
    assert_eq!(r.body["ok"], false, "{:?}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(message.contains("invalid_client"), "{message}");
    assert!(!message.contains(wrong), "{message}");

    // The right app, but signing in as the mailbox itself (no access granted to the app).
    let mut direct = microsoft_target(&target, APP_SECRET);
    direct["auth"]["login_pattern"] = json!("{email}");
    let r = test(direct).await;
    assert_eq!(r.body["ok"], false, "{:?}", r.body);
    let message = r.body["message"].as_str().unwrap();
    assert!(
        message.contains("did not accept the app's token"),
        "{message}"
    );

    // A password where Microsoft 365 takes none: refused before anything is tried.
    let r = test(json!({
        "kind": "microsoft365", "host": "127.0.0.1", "port": target.port(), "security": "plaintext",
        "auth": {"mode": "admin", "login_pattern": "{email}", "password": "pw"}
    }))
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    assert_eq!(r.body["details"]["field"], "connector.auth.mode");
}

/// Jobs that start together and all find their grant's token due ask the authority once:
/// the others wait for that token (with rotating refresh tokens a second renewal would spend
/// a token the first already spent).
#[tokio::test]
async fn parallel_calls_for_one_grant_renew_its_token_once() {
    use domain::oauth::{AppGrant, Tokens};
    let authority = authority();
    let client = std::sync::Arc::new(oauth::OAuthClient::new().expect("token client"));
    let grant = AppGrant::ClientCredentials {
        token_url: authority.token_url(),
        client_id: APP.into(),
        client_secret: domain::Secret::new(APP_SECRET),
        scope: "https://outlook.office365.com/.default".into(),
    };
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (client, grant) = (client.clone(), grant.clone());
            tokio::spawn(async move { client.app_token(&grant).await })
        })
        .collect();
    let mut tokens = std::collections::BTreeSet::new();
    for call in calls {
        let token = call.await.unwrap().expect("a token");
        tokens.insert(token.token.expose().to_owned());
    }
    assert_eq!(tokens.len(), 1, "every call got the same token");
    assert_eq!(authority.tokens_issued(APP), 1, "{}", authority.log());
}
