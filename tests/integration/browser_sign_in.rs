//! The credential page of a side whose users sign in with Microsoft, in Chromium: the user
//! opens the invite link, is sent to the provider's own login and consent pages (oidc-provider,
//! on loopback), and comes back to a page that says how it went. Denied consent, another
//! account and a sign-in used twice each say so and store nothing; then the user signs in as
//! the invited address, types the old mailbox's password, presses Start and follows the copy to
//! the end. Screenshots under `target/browser-screenshots/sign-in/`.

use std::time::Duration;

use anyhow::{Context, Result};
use integration_tests::TestApp;
use integration_tests::corpus::test_corpus;
use testbed::Authority;

use crate::browser::{Browser, require_frontend_dist};
use crate::copy::{SOURCE_PW, seed, source_server};
use crate::sign_in::{
    OnProvider, app_for_sign_in, back_at_mailferry, browser, project_with_sign_in,
    sign_in_authority, through_the_provider,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_on_the_providers_pages_and_the_copy_runs() {
    require_frontend_dist();
    let authority = sign_in_authority(Duration::from_secs(3600));
    let source = source_server();
    seed(&source, "ann@old.example", &test_corpus(17, None));
    let target = crate::oauth::token_target(&authority);
    let app = app_for_sign_in(&authority).await;
    let (_, _) = project_with_sign_in(&app, &source, &target).await;
    let token = app.invite_token_for("ann@old.example").await.unwrap();
    let mut b = Browser::start_in(1280, 900, "sign-in")
        .await
        .expect("browser");
    let result = scenario(&app, &authority, &token, &mut b).await;
    if let Err(e) = result {
        let shot = b.screenshot("failure").await.ok();
        let _ = b.check_console("failure", &[]).await;
        let console = b.console.join("\n");
        let _ = b.close().await;
        panic!(
            "{e:#}\nlast screenshot: {shot:?}\nconsole:\n{console}\nthe authority's log:\n{}",
            authority.log()
        );
    }
    b.close().await.expect("closing the browser");
}

/// Presses the page's sign-in button and waits for the provider's login page.
async fn to_the_provider(b: &Browser) -> Result<()> {
    b.click_button("Sign in with Microsoft").await?;
    b.wait_css("input[name=login]").await?;
    Ok(())
}

/// Signs in on the provider's pages as `login` and accepts.
async fn sign_in_as(b: &mut Browser, login: &str, shots: bool) -> Result<()> {
    b.fill("input[name=login]", login).await?;
    b.fill("input[name=password]", "any password").await?;
    if shots {
        b.screenshot("provider-login").await?;
    }
    b.click_button("Sign-in").await?;
    b.wait_text("button", "Continue").await?;
    if shots {
        b.screenshot("provider-consent").await?;
    }
    b.click_button("Continue").await
}

/// Forgets who is signed in at the provider (its cookies share the loopback host with the
/// page's, and the page keeps none).
async fn sign_out_at_provider(b: &Browser) -> Result<()> {
    b.client.delete_all_cookies().await?;
    Ok(())
}

async fn scenario(
    app: &TestApp,
    authority: &Authority,
    token: &str,
    b: &mut Browser,
) -> Result<()> {
    let page = format!("{}/migrate/{token}", app.base);
    b.goto(&page).await?;
    b.wait_heading("Move your mailbox").await?;
    b.wait_text("button", "Sign in with Microsoft").await?;
    b.wait_css("#source-password").await?;
    b.screenshot("sign-in-offered").await?;
    b.check_console("the page", &[]).await?;

    // Consent denied: Cancel on the provider's page.
    to_the_provider(b).await?;
    b.click_link("[ Cancel ]").await?;
    b.wait_text(".alert", "You did not allow access").await?;
    b.wait_text("button", "Sign in with Microsoft").await?;
    b.screenshot("sign-in-denied").await?;

    // Another account than the invited one.
    to_the_provider(b).await?;
    sign_in_as(b, "eve@new.example", true).await?;
    b.wait_text(".alert", "You signed in as eve@new.example")
        .await?;
    b.wait_text(".alert", "this invitation is for ann@new.example")
        .await?;
    b.screenshot("sign-in-wrong-account").await?;
    sign_out_at_provider(b).await?;

    // A sign-in whose provider answer comes a second time (a reload, the back button, a
    // copied address): Ann signs in elsewhere, then this browser opens the same answer.
    let web = browser();
    let callback = through_the_provider(
        &web,
        app,
        token,
        "target",
        OnProvider::SignInAs("ann@new.example"),
    )
    .await?;
    back_at_mailferry(&web, &callback).await?;
    b.goto(&callback).await?;
    b.wait_text(".alert", "That sign-in was already used")
        .await?;
    b.wait_text("button", "Sign in with Microsoft").await?;
    b.screenshot("sign-in-used").await?;

    // Ann signs in as herself, types her old password and presses Start.
    to_the_provider(b).await?;
    sign_in_as(b, "ann@new.example", false).await?;
    b.wait_text("#target-signed-in", "Signed in as ann@new.example")
        .await?;
    b.wait_text(".alert", "You are signed in").await?;
    b.screenshot("sign-in-ok").await?;
    b.fill("#source-password", SOURCE_PW).await?;
    b.click_button("Start").await?;
    b.wait_text_for("h1", "Your mail has been copied", Duration::from_secs(120))
        .await
        .context("the copy did not complete")?;
    // A Microsoft 365 mailbox opens in the browser; no IMAP settings to copy by hand.
    b.wait_text(
        "main",
        "Open your new mailbox at https://outlook.office.com/mail/",
    )
    .await?;
    b.screenshot("copied").await?;
    // The provider's pages load a web font and a favicon the loopback test cannot serve.
    let provider = [authority.issuer(), "fonts.googleapis.com"];
    b.check_console_but("the move", &[], &provider).await?;
    let issued = authority.tokens_issued(crate::sign_in::SIGN_IN_CLIENT);
    println!("tokens issued to the sign-in client: {issued}");
    Ok(())
}
