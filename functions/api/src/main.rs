//! mailferry's HTTP API as a Lambda function behind API Gateway: it serves the one router,
//! `web::router`, through `lambda_http::run`, on the AWS adapters of crate `aws` (DynamoDB,
//! SQS, SES, KMS) and the IMAP client. It holds no behaviour: `main` reads the typed settings
//! once (failing at start, naming the variable, when one is missing), builds the SDK clients
//! once, wires `domain::App` and hands the router to the Lambda runtime.
//!
//! Admin authentication relies on API Gateway's JWT authorizer (a Cognito user pool) on the
//! `/api/admin/*` routes, so this function runs with `web::AdminAuth::GatewayJwt`:
//! - a cold start never fetches the user pool's JWKS or verifies a signature: the gateway does
//!   that before the function is invoked, and rejected requests never cost an invocation;
//! - issuer, audience and the user pool are configured in one place (the template), not in
//!   both the gateway and this function;
//! - the router still refuses an admin request without a bearer `Authorization` header, as
//!   defence in depth should a route ever be left without the authorizer.
//!
//! Environment (see `aws::Settings`): `TABLE_NAME`, `QUEUE_URL`, `DEAD_LETTER_QUEUE_URL`
//! (optional), `KMS_KEY_ID`, `MAIL_FROM`, `SES_CONFIGURATION_SET` (optional), `PUBLIC_URL`,
//! `MAX_RECEIVES` (optional), `ALLOW_PRIVATE_TARGETS` (optional); `COGNITO_DOMAIN` and `COGNITO_CLIENT_ID` (see
//! `aws::SignInSettings`: where the console signs admins in); the Lambda runtime's own `AWS_REGION` and credentials; `RUST_LOG`
//! or `AWS_LAMBDA_LOG_LEVEL` for the log level.
//!
//! Only this crate and `worker` import `lambda_*`; this crate must never import aws-sdk-*,
//! axum or SQLite directly (it gets them through `aws` and `web`).

use std::sync::Arc;

use anyhow::Context;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::tracing::init_default_subscriber();
    let settings = aws::Settings::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))
        .context("reading the settings from the environment")?;
    let sign_in = aws::SignInSettings::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "cannot start"))
        .context("reading the sign-in settings from the environment")?;

    let aws = aws::Aws::from_env().await;
    let reach = if settings.allow_private_targets {
        imap::Reach::Anywhere
    } else {
        imap::Reach::PublicAndPrivateNetworks
    };
    let mailboxes =
        Arc::new(imap::ImapMailboxes::new(imap::TlsConfig::native_roots()).reaching(reach));
    let tokens = Arc::new(oauth::OAuthClient::new()?);
    let deps = aws.adapters(&settings).into_deps(mailboxes, tokens);
    let app = domain::App::new(deps, settings.app_config());
    let state = web::AppState {
        app,
        auth: web::AdminAuth::GatewayJwt { sign_in },
        secure_cookies: true,
    };
    let router = tower::ServiceBuilder::new()
        .map_request(client_address)
        .service(web::router(state, web::RouterOptions::default()));
    lambda_http::run(router).await
}

/// Hands the caller's address that API Gateway saw to the router (`web::ClientIp`), so the
/// audit trail and the sign-in throttle see who called.
fn client_address(mut request: lambda_http::Request) -> lambda_http::Request {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    let ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.http.source_ip.as_deref(),
        Some(RequestContext::ApiGatewayV1(c)) => c.identity.source_ip.as_deref(),
        _ => None,
    }
    .and_then(|s| s.parse::<std::net::IpAddr>().ok());
    if let Some(ip) = ip {
        request.extensions_mut().insert(web::ClientIp(ip));
    }
    request
}
