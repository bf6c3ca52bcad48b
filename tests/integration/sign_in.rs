//! End users who sign in with their provider instead of typing a password, against a real
//! OpenID Provider (oidc-provider, `testbed::Authority`) and a Dovecot that validates its JWT
//! access tokens: the provider's own login and consent pages are driven over HTTP here (the
//! browser test drives them in Chromium). A project mixes a password side (the source) and a
//! sign-in side (the target).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use integration_tests::corpus::test_corpus;
use integration_tests::{TestApp, spawn_app_with, wait_for_state};
use reqwest::StatusCode;
use serde_json::{Value, json};
use testbed::{Authority, AuthorityOptions, Dovecot};

use crate::copy::{SOURCE_PW, assert_arrived_as, seed, source_server, start_ann_into};
use crate::oauth::{ANN_TARGET_PW, token_target};

/// mailferry's app registration for users' sign-ins (a public client).
pub const SIGN_IN_CLIENT: &str = "3c9a1f0e-5d4b-4e7a-9b1c-2f6e8d0a7b31";

pub fn sign_in_authority(ttl: Duration) -> Authority {
    Authority::start(
        AuthorityOptions::new()
            .sign_in_client(SIGN_IN_CLIENT)
            .access_token_ttl(ttl),
    )
    .expect("the OAuth authority starts")
}

/// An authority whose refresh tokens are spent on use, each renewal giving a new one.
fn rotating_authority(ttl: Duration) -> Authority {
    Authority::start(
        AuthorityOptions::new()
            .sign_in_client(SIGN_IN_CLIENT)
            .access_token_ttl(ttl)
            .rotate_refresh_tokens(),
    )
    .expect("the OAuth authority starts")
}

/// The local server with Microsoft's endpoints at the local authority.
pub async fn app_for_sign_in(authority: &Authority) -> TestApp {
    let (token, authorize) = (authority.token_url(), authority.authorize_url());
    let jwks = authority.jwks_url();
    spawn_app_with(None, |args| {
        args.microsoft_token_url = Some(token);
        args.microsoft_authorize_url = Some(authorize);
        args.microsoft_jwks_url = Some(jwks);
    })
    .await
    .unwrap()
}

/// Ann's project: her old server takes her password, her new Microsoft 365 mailbox her
/// sign-in; invites go to her old address (the outbox).
pub async fn project_with_sign_in(
    app: &TestApp,
    source: &Dovecot,
    target: &Dovecot,
) -> (String, String) {
    let project = json!({
        "name": "Sign-in move",
        "source": {"host": "127.0.0.1", "port": source.port(), "security": "plaintext",
                   "auth": {"mode": "per_user"}},
        "target": {"kind": "microsoft365", "host": "127.0.0.1", "port": target.port(),
                   "security": "plaintext",
                   "auth": {"mode": "user_sign_in", "client_id": SIGN_IN_CLIENT}},
        "invite_to": "source"
    });
    start_ann_into(app, project, None, "email_sent").await
}

/// A browser without JavaScript: keeps the provider's cookies and follows nothing by itself.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What the user does on the provider's pages.
#[derive(Clone, Copy)]
pub(crate) enum OnProvider<'a> {
    /// Signs in as this account and accepts.
    SignInAs(&'a str),
    /// Cancels on the login page.
    Cancel,
}

/// Starts a sign-in from the credential page's API and goes through the provider's pages;
/// returns the callback URL the provider sends the browser to (not yet followed).
pub(crate) async fn through_the_provider(
    web: &reqwest::Client,
    app: &TestApp,
    token: &str,
    side: &str,
    act: OnProvider<'_>,
) -> Result<String> {
    let start: Value = web
        .post(format!("{}/api/migrate/{token}/sign-in/{side}", app.base))
        .send()
        .await?
        .json()
        .await?;
    let mut url = start["authorize_url"]
        .as_str()
        .with_context(|| format!("no authorize_url: {start}"))?
        .to_owned();
    let mut form: Option<Vec<(&str, String)>> = None;
    for _ in 0..20 {
        if url.starts_with(&format!("{}/api/sign-in/callback", app.base)) {
            return Ok(url);
        }
        let request = match form.take() {
            Some(fields) => web.post(&url).form(&fields),
            None => web.get(&url),
        };
        let r = request.send().await?;
        if r.status().is_redirection() {
            let location = r.headers()["location"].to_str()?.to_owned();
            url = r.url().join(&location)?.to_string();
            continue;
        }
        let page = r.text().await?;
        let action = page
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .with_context(|| format!("no form on the provider's page: {page}"))?;
        let action_url = reqwest::Url::parse(&url)?.join(action)?.to_string();
        if page.contains("name=\"login\"") {
            match act {
                OnProvider::SignInAs(login) => {
                    form = Some(vec![
                        ("prompt", "login".into()),
                        ("login", login.into()),
                        ("password", "any password".into()),
                    ]);
                    url = action_url;
                }
                OnProvider::Cancel => {
                    let abort = page
                        .split("href=\"")
                        .map(|p| p.split('"').next().unwrap_or_default())
                        .find(|p| p.contains("/interaction/") && p.ends_with("/abort"))
                        .context("no Cancel link on the login page")?;
                    url = reqwest::Url::parse(&url)?.join(abort)?.to_string();
                }
            }
        } else if page.contains("value=\"consent\"") {
            form = Some(vec![("prompt", "consent".into())]);
            url = action_url;
        } else {
            bail!("an unexpected page from the provider: {page}");
        }
    }
    bail!("the provider never sent the browser back")
}

/// Fails the test with the provider's log, which says why it refused or broke off.
pub(crate) fn fail<T>(e: &anyhow::Error, authority: &Authority) -> T {
    panic!("{e:#}\nthe authority's log:\n{}", authority.log())
}

/// Follows the provider's redirect to mailferry; returns the credential page's address.
pub(crate) async fn back_at_mailferry(web: &reqwest::Client, callback: &str) -> Result<String> {
    let r = web.get(callback).send().await?;
    if r.status() != StatusCode::SEE_OTHER {
        bail!("the callback answered {}: {}", r.status(), r.text().await?);
    }
    Ok(r.headers()["location"].to_str()?.to_owned())
}

/// Ann signs in on her link as herself; returns the callback URL the provider sent.
async fn ann_signs_in(app: &TestApp, authority: &Authority, token: &str) -> String {
    let web = browser();
    let back = through_the_provider(
        &web,
        app,
        token,
        "target",
        OnProvider::SignInAs("ann@new.example"),
    )
    .await
    .unwrap_or_else(|e| fail(&e, authority));
    assert_eq!(
        back_at_mailferry(&web, &back).await.unwrap(),
        format!("/migrate/{token}?sign_in=ok&side=target")
    );
    back
}

/// Ann presses Start with her old password; the copy completes with nothing lost.
async fn ann_starts_and_completes(
    app: &TestApp,
    ids: (&str, &str),
    token: &str,
    source: &Dovecot,
    target: &Dovecot,
) -> Value {
    let (p, u) = ids;
    let r = press_start(app, token).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let done = wait_for_state(app, p, u, "completed", Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(done["user"]["last_error"], Value::Null, "{done}");
    assert_arrived_as(source, target, "ann@new.example", ANN_TARGET_PW).await;
    done
}

/// Ann presses Start on her link, typing her old password.
async fn press_start(app: &TestApp, token: &str) -> integration_tests::Reply {
    app.post(
        &format!("/api/migrate/{token}/credentials"),
        json!({"source_password": SOURCE_PW}),
    )
    .await
    .unwrap()
}

/// Ann presses Start with her old password and is refused, saying `why`.
async fn start_refused(app: &TestApp, token: &str, why: &str) {
    let r = press_start(app, token).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", r.body);
    let message = r.body["message"].as_str().unwrap_or_default();
    assert!(message.contains(why), "{message}");
}

/// Withdraws an account's sign-ins at the provider, as the user would.
async fn revoke(authority: &Authority, account: &str) {
    let revoked: Value = reqwest::Client::new()
        .post(authority.revoke_url(account))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(revoked["revoked"].as_u64() >= Some(1), "{revoked}");
}

pub(crate) async fn invite(app: &TestApp, token: &str) -> Value {
    app.get(&format!("/api/migrate/{token}"))
        .await
        .unwrap()
        .body
}

/// Denied consent, a wrong account and a replayed code each come back to the page saying so,
/// store nothing and leave the link as it was; then Ann signs in, presses Start with her old
/// password, and her mail arrives through her own tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_instead_of_a_password_and_refusals_store_nothing() {
    let authority = sign_in_authority(Duration::from_secs(3600));
    let source = source_server();
    seed(&source, "ann@old.example", &test_corpus(15, None));
    let target = token_target(&authority);
    let app = app_for_sign_in(&authority).await;
    let (p, u) = project_with_sign_in(&app, &source, &target).await;
    let token = app.invite_token_for("ann@old.example").await.unwrap();
    let view = invite(&app, &token).await;
    assert_eq!(view["asks_source_password"], true);
    assert_eq!(view["asks_target_password"], false);
    assert_eq!(view["target_sign_in"]["label"], "Sign in with Microsoft");
    assert_eq!(view["target_sign_in"]["signed_in_as"], Value::Null);
    let attempts = view["attempts_left"].clone();

    // Consent denied on the provider's page.
    let web = browser();
    let back = through_the_provider(&web, &app, &token, "target", OnProvider::Cancel)
        .await
        .unwrap_or_else(|e| fail(&e, &authority));
    let page = back_at_mailferry(&web, &back).await.unwrap();
    assert_eq!(page, format!("/migrate/{token}?sign_in=denied&side=target"));

    // Eve signs in on Ann's link.
    let web = browser();
    let back = through_the_provider(
        &web,
        &app,
        &token,
        "target",
        OnProvider::SignInAs("eve@new.example"),
    )
    .await
    .unwrap_or_else(|e| fail(&e, &authority));
    let page = back_at_mailferry(&web, &back).await.unwrap();
    assert_eq!(
        page,
        format!("/migrate/{token}?sign_in=wrong_account&side=target&as=eve%40new.example")
    );
    let view = invite(&app, &token).await;
    assert_eq!(
        view["target_sign_in"]["signed_in_as"],
        Value::Null,
        "nothing stored"
    );
    assert_eq!(view["attempts_left"], attempts, "no attempt spent");

    // Start before signing in is refused and says why.
    start_refused(&app, &token, "sign in for ann@new.example first").await;

    // Ann signs in; the same code sent again is refused as used and changes nothing.
    let back = ann_signs_in(&app, &authority, &token).await;
    let view = invite(&app, &token).await;
    assert_eq!(view["target_sign_in"]["signed_in_as"], "ann@new.example");
    // The code sent again: the provider refuses it and revokes what it gave (RFC 6749
    // 4.1.2), so the page says so and asks for a new sign-in; no attempt is spent.
    let replay = back_at_mailferry(&browser(), &back).await.unwrap();
    assert_eq!(replay, format!("/migrate/{token}?sign_in=used&side=target"));
    let view = invite(&app, &token).await;
    assert_eq!(
        view["target_sign_in"]["signed_in_as"],
        Value::Null,
        "{view}"
    );
    assert_eq!(view["attempts_left"], attempts);
    let back = ann_signs_in(&app, &authority, &token).await;

    // A state that was tampered with is refused with a page, not a redirect.
    let tampered = back.replace("state=", "state=x");
    let r = browser().get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("Sign-in not completed"));

    // Ann withdraws the app's access before pressing Start: Start finds it and asks for a
    // new sign-in, with nothing queued.
    revoke(&authority, "ann@new.example").await;
    start_refused(&app, &token, "no longer works: sign in again").await;
    assert_eq!(invite(&app, &token).await["state"], "email_sent");
    ann_signs_in(&app, &authority, &token).await;

    // Start with the old password: the copy runs with Ann's own tokens.
    ann_starts_and_completes(&app, (&p, &u), &token, &source, &target).await;
    let log = std::fs::read_to_string(target.log_path()).unwrap_or_default();
    assert!(
        log.lines()
            .any(|l| l.contains("Login: user=<ann@new.example>") && l.contains("method=XOAUTH2")),
        "no XOAUTH2 login for Ann in the target's log"
    );
    // The page sends Ann to Outlook on the web, not to IMAP settings.
    let status = app
        .get(&format!("/api/migrate/{token}/status"))
        .await
        .unwrap();
    assert_eq!(
        status.body["new_account"]["web_sign_in"], "https://outlook.office.com/mail/",
        "{}",
        status.body
    );
    // Nothing of the sign-in reaches the admin.
    let detail = app
        .get(&format!("/api/admin/projects/{p}/users/{u}"))
        .await
        .unwrap();
    assert!(
        !detail.body.to_string().contains("refresh"),
        "{}",
        detail.body
    );
}

/// A move whose target Ann signs in to, started and completed: the servers, the app, the
/// project and user ids, and Ann's link.
struct SignedInMove {
    source: Dovecot,
    target: Dovecot,
    app: TestApp,
    ids: (String, String),
}

async fn ann_moved_with_sign_in(authority: &Authority, corpus: u64) -> SignedInMove {
    let source = source_server();
    seed(&source, "ann@old.example", &test_corpus(corpus, None));
    let target = token_target(authority);
    let app = app_for_sign_in(authority).await;
    let (p, u) = project_with_sign_in(&app, &source, &target).await;
    let token = app.invite_token_for("ann@old.example").await.unwrap();
    ann_signs_in(&app, authority, &token).await;
    ann_starts_and_completes(&app, (&p, &u), &token, &source, &target).await;
    SignedInMove {
        source,
        target,
        app,
        ids: (p, u),
    }
}

/// New mail arrives at the source (`count` messages of corpus `corpus`) and the admin starts
/// a delta.
async fn new_mail_and_delta(m: &SignedInMove, corpus: u64, count: usize) {
    let more: Vec<_> = test_corpus(corpus, None).into_iter().take(count).collect();
    seed(&m.source, "ann@old.example", &more);
    let (p, u) = &m.ids;
    let r = m
        .app
        .post(
            &format!("/api/admin/projects/{p}/users/{u}/actions/delta"),
            json!(null),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

/// A sign-in the user withdraws while the move goes on: the next token renewal is refused,
/// the user is told a sign-in is needed again (a new link), and after signing in again the
/// delta resumes and completes with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_sign_in_asks_for_a_new_one_and_the_move_resumes() {
    // Tokens that end within seconds, so the next job renews with the refresh token.
    let authority = sign_in_authority(Duration::from_secs(2));
    let m = ann_moved_with_sign_in(&authority, 16).await;
    let (app, (p, u)) = (&m.app, (&m.ids.0, &m.ids.1));

    // Ann withdraws the app's access; new mail arrives; the admin starts a delta.
    revoke(&authority, "ann@new.example").await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    new_mail_and_delta(&m, 901, 4).await;
    let asked = wait_for_state(app, p, u, "email_sent", Duration::from_secs(60))
        .await
        .unwrap();
    let why = asked["user"]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(why.contains("sign-in needed again"), "{asked}");
    assert!(!why.contains("eyJ"), "no token in the message: {why}");

    // A new link; Ann signs in again and presses Start: the move resumes.
    let token = app.invite_token_for("ann@old.example").await.unwrap();
    let view = invite(app, &token).await;
    assert_eq!(view["target_sign_in"]["signed_in_as"], Value::Null);
    ann_signs_in(app, &authority, &token).await;
    ann_starts_and_completes(app, (p, u), &token, &m.source, &m.target).await;
}

/// An authority that rotates refresh tokens (as Microsoft's does) spends each one on use and
/// revokes the sign-in when a spent one comes again: every renewal's new refresh token is
/// kept (sealed, in place of the old), so renewals across passes and parallel jobs go on
/// working and the move completes, first pass and deltas, without asking Ann again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_refresh_tokens_are_kept_and_the_move_goes_on() {
    let authority = rotating_authority(Duration::from_secs(2));
    let m = ann_moved_with_sign_in(&authority, 18).await;
    let (p, u) = (&m.ids.0, &m.ids.1);

    // Two deltas, each after the access tokens ended: renewed with the kept refresh tokens.
    for round in 0..2 {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        new_mail_and_delta(&m, 700 + round * 10, 3).await;
        let done = wait_for_state(&m.app, p, u, "completed", Duration::from_secs(120))
            .await
            .unwrap_or_else(|e| fail(&e, &authority));
        assert_eq!(done["user"]["last_error"], Value::Null, "{done}");
        assert_arrived_as(&m.source, &m.target, "ann@new.example", ANN_TARGET_PW).await;
    }
    let renewed = authority.refresh_grants(SIGN_IN_CLIENT);
    println!("refresh-token renewals at the rotating authority: {renewed}");
    assert!(renewed >= 3, "renewed {renewed} times\n{}", authority.log());
    assert!(
        !authority.log().contains("refresh token already used"),
        "no spent refresh token was used again\n{}",
        authority.log()
    );
}
