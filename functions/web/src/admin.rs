//! Admin routes (mounted under `/api/admin`, behind [`crate::auth::require_admin`]).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use contract::{
    AuditPage, BulkAction, BulkResult, ConnectionTestInput, ConnectionTestResult, ImportReport,
    OutboxMail, ProjectInput, ProjectView, ProviderView, SavedConnectorTestInput, Selection,
    UserDetail, UserInput, UserPage, UserState, UserView,
};
use domain::{ProjectId, UserId, UserQuery};
use serde::Deserialize;
use uuid::Uuid;

use crate::AppState;
use crate::auth::AdminActor;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

type S = State<Arc<AppState>>;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/projects", get(list_projects).post(create_project))
        .route("/projects/{id}", get(get_project).put(update_project))
        .route("/projects/{id}/close", post(close_project))
        .route("/projects/{id}/reopen", post(reopen_project))
        .route("/projects/{id}/audit", get(project_audit))
        .route("/projects/{id}/audit/export", get(export_audit))
        .route("/audit", get(console_audit))
        .route("/projects/{id}/test/{side}", post(test_project_connector))
        .route("/connectors/test", post(test_connector))
        .route("/projects/{id}/users", get(list_users).post(add_user))
        .route(
            "/projects/{id}/users/import",
            // The CSV limit plus room for the multipart-free raw body; larger bodies are cut off
            // by the limit and answered 413 with the JSON error shape.
            post(import_users).layer(DefaultBodyLimit::max(contract::limits::CSV_MAX_BYTES + 1)),
        )
        .route("/projects/{id}/users/export", get(export_users))
        .route("/projects/{id}/report", get(verification_report))
        .route("/projects/{id}/users/actions/{action}", post(bulk_action))
        .route(
            "/projects/{id}/users/{uid}",
            get(user_detail).delete(delete_user),
        )
        .route(
            "/projects/{id}/users/{uid}/actions/{action}",
            post(user_action),
        )
        .route("/projects/{id}/users/{uid}/preflight", post(preflight))
        .route("/projects/{id}/preflight", get(preflight_totals))
        .route("/projects/{id}/preflight/export", get(export_preflights))
        .route("/outbox", get(outbox))
        .route("/providers", get(providers))
}

fn parse_action(s: &str) -> ApiResult<BulkAction> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| ApiError::not_found(&format!("action '{s}'")))
}

async fn list_projects(State(st): S) -> ApiResult<axum::Json<Vec<ProjectView>>> {
    Ok(axum::Json(st.app.list_project_views().await?))
}

async fn create_project(
    State(st): S,
    AdminActor(actor): AdminActor,
    ApiJson(input): ApiJson<ProjectInput>,
) -> ApiResult<Response> {
    let project = st.app.create_project(&input, &actor).await?;
    let view = st.app.project_view(&project).await?;
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

async fn get_project(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<axum::Json<ProjectView>> {
    let project = st.app.project(ProjectId(id)).await?;
    Ok(axum::Json(st.app.project_view(&project).await?))
}

/// `If-Match: "<version>"` (or a bare number) makes the update conditional on the version the
/// admin loaded.
fn if_match_version(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .map(|s| s.trim().trim_matches('"'))
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request("If-Match must be the project version, e.g. \"3\"")
            }),
    }
}

async fn update_project(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
    AdminActor(actor): AdminActor,
    headers: HeaderMap,
    ApiJson(input): ApiJson<ProjectInput>,
) -> ApiResult<axum::Json<ProjectView>> {
    let project = st
        .app
        .update_project(ProjectId(id), &input, if_match_version(&headers)?, &actor)
        .await?;
    Ok(axum::Json(st.app.project_view(&project).await?))
}

async fn close_project(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
    AdminActor(actor): AdminActor,
) -> ApiResult<axum::Json<ProjectView>> {
    let project = st.app.close_project(ProjectId(id), &actor).await?;
    Ok(axum::Json(st.app.project_view(&project).await?))
}

async fn reopen_project(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
    AdminActor(actor): AdminActor,
) -> ApiResult<axum::Json<ProjectView>> {
    let project = st.app.reopen_project(ProjectId(id), &actor).await?;
    Ok(axum::Json(st.app.project_view(&project).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    limit: usize,
}

async fn project_audit(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> ApiResult<axum::Json<AuditPage>> {
    Ok(axum::Json(
        st.app
            .audit_page(Some(ProjectId(id)), p.before.as_deref(), p.limit)
            .await?,
    ))
}

async fn console_audit(
    State(st): S,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> ApiResult<axum::Json<AuditPage>> {
    Ok(axum::Json(
        st.app
            .audit_page(None, p.before.as_deref(), p.limit)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportParams {
    #[serde(default)]
    before: Option<String>,
}

/// The trail as CSV, newest first; a full file names where the next starts in `X-Next-Before`.
async fn export_audit(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
    AdminActor(actor): AdminActor,
    ApiQuery(p): ApiQuery<ExportParams>,
) -> ApiResult<Response> {
    let (csv, next) = st
        .app
        .audit_csv(ProjectId(id), p.before.as_deref(), &actor)
        .await?;
    let mut response = csv_download("audit.csv", csv);
    if let Some(next) = next.and_then(|n| header::HeaderValue::from_str(&n).ok()) {
        response.headers_mut().insert("x-next-before", next);
    }
    Ok(response)
}

fn csv_download(name: &'static str, csv: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        csv,
    )
        .into_response()
}

async fn test_connector(
    State(st): S,
    AdminActor(actor): AdminActor,
    ApiJson(input): ApiJson<ConnectionTestInput>,
) -> ApiResult<axum::Json<ConnectionTestResult>> {
    Ok(axum::Json(st.app.test_connection(&input, &actor).await?))
}

async fn test_project_connector(
    State(st): S,
    ApiPath((id, side)): ApiPath<(Uuid, String)>,
    AdminActor(actor): AdminActor,
    ApiJson(input): ApiJson<SavedConnectorTestInput>,
) -> ApiResult<axum::Json<ConnectionTestResult>> {
    let side = domain::app::Side::parse(&side)
        .ok_or_else(|| ApiError::not_found("side (use source or target)"))?;
    Ok(axum::Json(
        st.app
            .test_project_connector(
                ProjectId(id),
                side,
                input.email.as_deref(),
                input.password.as_deref(),
                &actor,
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    offset: u64,
    #[serde(default)]
    limit: u64,
}

async fn list_users(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<axum::Json<UserPage>> {
    let state = match p.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            UserState::parse(s)
                .ok_or_else(|| ApiError::bad_request(format!("unknown state '{s}'")))?,
        ),
    };
    let search = p.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
    if search.as_ref().is_some_and(|q| q.len() > 200) {
        return Err(ApiError::bad_request(
            "the search text is longer than 200 characters",
        ));
    }
    let query = UserQuery {
        state,
        search,
        offset: p.offset,
        limit: p.limit,
    };
    Ok(axum::Json(st.app.list_users(ProjectId(id), query).await?))
}

async fn add_user(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
    AdminActor(actor): AdminActor,
    ApiJson(input): ApiJson<UserInput>,
) -> ApiResult<Response> {
    let user = st.app.add_user(ProjectId(id), &input, &actor).await?;
    let project = st.app.project(ProjectId(id)).await?;
    let view = domain::App::user_view(&project, &user);
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportParams {
    #[serde(default)]
    dry_run: bool,
}

async fn import_users(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(p): ApiQuery<ImportParams>,
    AdminActor(actor): AdminActor,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<axum::Json<ImportReport>> {
    // Only the declared type: a cross-site form can send text/plain without asking first.
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv"));
    if !csv {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the file with Content-Type: text/csv",
        ));
    }
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(contract::limits::CSV_MAX_BYTES)
        } else {
            ApiError::from(r)
        }
    })?;
    if body.len() > contract::limits::CSV_MAX_BYTES {
        return Err(ApiError::too_large(contract::limits::CSV_MAX_BYTES));
    }
    Ok(axum::Json(
        st.app
            .import_csv(ProjectId(id), &body, p.dry_run, &actor)
            .await?,
    ))
}

async fn export_users(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
    AdminActor(actor): AdminActor,
) -> ApiResult<Response> {
    let csv = st.app.export_csv(ProjectId(id), &actor).await?;
    Ok(csv_download("users.csv", csv))
}

async fn verification_report(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
    AdminActor(actor): AdminActor,
) -> ApiResult<Response> {
    let csv = st.app.verification_csv(ProjectId(id), &actor).await?;
    Ok(csv_download("verification.csv", csv))
}

async fn bulk_action(
    State(st): S,
    ApiPath((id, action)): ApiPath<(Uuid, String)>,
    AdminActor(actor): AdminActor,
    ApiJson(selection): ApiJson<Selection>,
) -> ApiResult<axum::Json<BulkResult>> {
    let action = parse_action(&action)?;
    Ok(axum::Json(
        st.app
            .bulk(ProjectId(id), action, &selection, &actor)
            .await?,
    ))
}

async fn user_detail(
    State(st): S,
    ApiPath((id, uid)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<axum::Json<UserDetail>> {
    Ok(axum::Json(
        st.app.user_detail(ProjectId(id), UserId(uid)).await?,
    ))
}

/// Logs in to both sides of the user and reports what a pass would copy and what would not
/// fit; copies nothing.
async fn preflight(
    State(st): S,
    ApiPath((id, uid)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult<axum::Json<contract::PreflightReport>> {
    let project = st.app.project(ProjectId(id)).await?;
    let user = st.app.user_in(project.id, UserId(uid)).await?;
    Ok(axum::Json(st.app.preflight(&project, &user).await?))
}

async fn preflight_totals(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<axum::Json<contract::PreflightTotals>> {
    Ok(axum::Json(st.app.preflight_totals(ProjectId(id)).await?))
}

async fn export_preflights(
    State(st): S,
    ApiPath(id): ApiPath<Uuid>,
    AdminActor(actor): AdminActor,
) -> ApiResult<Response> {
    let csv = st.app.preflight_csv(ProjectId(id), &actor).await?;
    Ok(csv_download("preflight.csv", csv))
}

async fn delete_user(
    State(st): S,
    ApiPath((id, uid)): ApiPath<(Uuid, Uuid)>,
    AdminActor(actor): AdminActor,
) -> ApiResult<StatusCode> {
    let project = st.app.project(ProjectId(id)).await?;
    let user = st.app.user_in(project.id, UserId(uid)).await?;
    st.app
        .user_action(&project, &user, BulkAction::Delete, &actor)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn user_action(
    State(st): S,
    ApiPath((id, uid, action)): ApiPath<(Uuid, Uuid, String)>,
    AdminActor(actor): AdminActor,
) -> ApiResult<Response> {
    let action = parse_action(&action)?;
    let project = st.app.project(ProjectId(id)).await?;
    let user = st.app.user_in(project.id, UserId(uid)).await?;
    Ok(
        match st.app.user_action(&project, &user, action, &actor).await? {
            Some(u) => axum::Json::<UserView>(domain::App::user_view(&project, &u)).into_response(),
            None => StatusCode::NO_CONTENT.into_response(),
        },
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboxParams {
    #[serde(default)]
    limit: Option<usize>,
}

async fn providers() -> axum::Json<Vec<ProviderView>> {
    axum::Json(domain::providers::all())
}

async fn outbox(
    State(st): S,
    ApiQuery(p): ApiQuery<OutboxParams>,
) -> ApiResult<axum::Json<Vec<OutboxMail>>> {
    let limit = p.limit.unwrap_or(50).min(500);
    let mails = st
        .app
        .deps()
        .mailer
        .outbox(limit)
        .await
        .map_err(domain::AppError::from)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "this server sends real mail and keeps no outbox",
            )
        })?;
    Ok(axum::Json(
        mails
            .into_iter()
            .map(|m| OutboxMail {
                id: m.id,
                to: m.to,
                subject: m.subject,
                sent_at: m.sent_at,
                text: m.text,
            })
            .collect(),
    ))
}
