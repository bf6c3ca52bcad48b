//! Self-service routes of the end-user credential page. No admin session: the invite token in
//! the path is the only credential, so it never appears in logs (the trace layer logs only the
//! route template) and the Referrer-Policy keeps it out of Referer headers.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use contract::{CredentialsInput, InviteView, MigrationStatus};

use crate::AppState;
use crate::auth::ClientAddr;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/migrate/{token}", get(invite))
        .route("/migrate/{token}/credentials", post(submit))
        .route("/migrate/{token}/status", get(status))
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
