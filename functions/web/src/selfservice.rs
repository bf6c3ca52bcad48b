//! Self-service routes of the end-user credential page. No admin session: the invite token in
//! the path is the only credential, so it never appears in logs (the trace layer logs only the
//! route template) and the Referrer-Policy keeps it out of Referer headers.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use contract::{CredentialsInput, InviteView, MigrationStatus, SignInRedirect};
use serde::Deserialize;

use crate::AppState;
use crate::auth::ClientAddr;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/migrate/{token}", get(invite))
        .route("/migrate/{token}/credentials", post(submit))
        .route("/migrate/{token}/status", get(status))
        .route("/migrate/{token}/sign-in/{side}", post(start_sign_in))
        .route("/sign-in/callback", get(sign_in_callback))
}

async fn start_sign_in(
    State(st): State<Arc<AppState>>,
    ApiPath((token, side)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<SignInRedirect>> {
    Ok(axum::Json(st.app.start_sign_in(&token, &side).await?))
}

/// What the provider sends the browser back with (RFC 6749 section 4.1.2).
#[derive(Deserialize)]
struct Callback {
    #[serde(default)]
    state: String,
    code: Option<String>,
    error: Option<String>,
}

/// The provider's redirect after a sign-in: on to the credential page, which says how it
/// ended. Only a state that cannot be read at all gets a page of its own here.
async fn sign_in_callback(
    State(st): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    query: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return unreadable_sign_in("the provider's answer could not be read");
    };
    match st
        .app
        .finish_sign_in(&q.state, q.code.as_deref(), q.error.as_deref(), client)
        .await
    {
        Ok(page) => Redirect::to(&page).into_response(),
        Err(domain::AppError::Validation { message, .. }) => unreadable_sign_in(&message),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

fn unreadable_sign_in(message: &str) -> Response {
    let text = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Sign-in not completed</title>\
             <body style=\"font-family:sans-serif;max-width:36em;margin:3em auto\"><h1>Sign-in not completed</h1>\
             <p>{text}.</p><p>Nothing was saved. Open the link in your invitation email and sign in again.</p></body></html>"
        )),
    )
        .into_response()
}

async fn invite(
    State(st): State<Arc<AppState>>,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<axum::Json<InviteView>> {
    Ok(axum::Json(st.app.invite_view(&token).await?))
}

async fn submit(
    State(st): State<Arc<AppState>>,
    ApiPath(token): ApiPath<String>,
    ClientAddr(client): ClientAddr,
    ApiJson(input): ApiJson<CredentialsInput>,
) -> ApiResult<axum::Json<MigrationStatus>> {
    Ok(axum::Json(
        st.app.submit_credentials(&token, &input, client).await?,
    ))
}

async fn status(
    State(st): State<Arc<AppState>>,
    ApiPath(token): ApiPath<String>,
) -> ApiResult<axum::Json<MigrationStatus>> {
    Ok(axum::Json(st.app.migration_status(&token).await?))
}
