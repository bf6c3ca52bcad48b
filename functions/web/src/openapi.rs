//! The OpenAPI 3.1 description of the API, served at `/api/openapi.json`. The route table below
//! is the single list of documented operations; a router test calls every one of them to prove
//! the document and the router agree.

use axum::Json;
use serde_json::{Map, Value, json};

/// One documented operation: (method, path, summary, request body type, success response
/// type, admin only).
pub type Operation = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    bool,
);

pub const OPERATIONS: &[Operation] = &[
    (
        "get",
        "/api/health",
        "Liveness and version",
        None,
        "Health",
        false,
    ),
    (
        "post",
        "/api/admin/login",
        "Sign in with the admin password; sets the session cookie",
        Some("LoginInput"),
        "SessionView",
        false,
    ),
    (
        "post",
        "/api/admin/logout",
        "End the admin session",
        None,
        "(empty)",
        false,
    ),
    (
        "get",
        "/api/admin/session",
        "Whether the caller is signed in",
        None,
        "SessionView",
        false,
    ),
    (
        "get",
        "/api/admin/projects",
        "List projects with user counts by state",
        None,
        "ProjectView[]",
        true,
    ),
    (
        "post",
        "/api/admin/projects",
        "Create a project with its source and target connectors",
        Some("ProjectInput"),
        "ProjectView",
        true,
    ),
    (
        "get",
        "/api/admin/projects/{id}",
        "One project",
        None,
        "ProjectView",
        true,
    ),
    (
        "put",
        "/api/admin/projects/{id}",
        "Replace a project's settings (If-Match: version)",
        Some("ProjectInput"),
        "ProjectView",
        true,
    ),
    (
        "post",
        "/api/admin/projects/{id}/close",
        "Close a project: delete every stored password (users' and admin), stop its invite links; refused while users copy",
        None,
        "ProjectView",
        true,
    ),
    (
        "post",
        "/api/admin/projects/{id}/reopen",
        "Reopen a closed project (deleted passwords must be entered again)",
        None,
        "ProjectView",
        true,
    ),
    (
        "get",
        "/api/admin/projects/{id}/audit",
        "The project's audit trail, newest first (query: before, limit ≤ 500)",
        None,
        "AuditPage",
        true,
    ),
    (
        "get",
        "/api/admin/projects/{id}/audit/export",
        "The project's audit trail as CSV, ≤ 20,000 entries a file (query: before; header X-Next-Before names the next file)",
        None,
        "text/csv",
        true,
    ),
    (
        "get",
        "/api/admin/audit",
        "Console-wide audit trail (sign-ins), newest first (query: before, limit ≤ 500)",
        None,
        "AuditPage",
        true,
    ),
    (
        "post",
        "/api/admin/connectors/test",
        "Try a login with a connector as typed (nothing stored)",
        Some("ConnectionTestInput"),
        "ConnectionTestResult",
        true,
    ),
    (
        "post",
        "/api/admin/projects/{id}/test/{side}",
        "Try a login with a stored connector (side: source or target)",
        Some("{email?, password?}"),
        "ConnectionTestResult",
        true,
    ),
    (
        "get",
        "/api/admin/projects/{id}/users",
        "List users (query: state, q, offset, limit)",
        None,
        "UserPage",
        true,
    ),
    (
        "post",
        "/api/admin/projects/{id}/users",
        "Add one user",
        Some("UserInput"),
        "UserView",
        true,
    ),
    (
        "post",
        "/api/admin/projects/{id}/users/import",
        "Import users from CSV (body text/csv, ≤ 10 MB, ≤ 50,000 rows; query dry_run=true to validate only). All or nothing; errors by line",
        Some("text/csv"),
        "ImportReport",
        true,
    ),
    (
        "get",
        "/api/admin/projects/{id}/users/export",
        "Export users as CSV",
        None,
        "text/csv",
        true,
    ),
    (
        "get",
        "/api/admin/projects/{id}/report",
        "Verification report as CSV: per folder of every user, both sides' figures, skipped and altered copies",
        None,
        "text/csv",
        true,
    ),
    (
        "post",
        "/api/admin/projects/{id}/users/actions/{action}",
        "Bulk action (start, resend_invite, pause, retry, delta, retry_skipped, mark_verified, purge_credentials, delete) on selected or all users",
        Some("Selection"),
        "BulkResult",
        true,
    ),
    (
        "get",
        "/api/admin/projects/{id}/users/{uid}",
        "User detail: per-folder progress, verification figures, skipped items, events",
        None,
        "UserDetail",
        true,
    ),
    (
        "delete",
        "/api/admin/projects/{id}/users/{uid}",
        "Delete a user and purge its credentials",
        None,
        "(empty)",
        true,
    ),
    (
        "post",
        "/api/admin/projects/{id}/users/{uid}/actions/{action}",
        "One action on one user",
        None,
        "UserView",
        true,
    ),
    (
        "get",
        "/api/admin/outbox",
        "Mails the local outbox holds (local mode)",
        None,
        "OutboxMail[]",
        true,
    ),
    (
        "get",
        "/api/migrate/{token}",
        "What the credential page shows for an invite link",
        None,
        "InviteView",
        false,
    ),
    (
        "post",
        "/api/migrate/{token}/credentials",
        "Submit passwords: tested against the real servers, then stored encrypted and the copy queued. 422 with attempts_left on a wrong password",
        Some("CredentialsInput"),
        "MigrationStatus",
        false,
    ),
    (
        "get",
        "/api/migrate/{token}/status",
        "Migration status for the credential page",
        None,
        "MigrationStatus",
        false,
    ),
    (
        "get",
        "/api/openapi.json",
        "This document",
        None,
        "OpenAPI",
        false,
    ),
];

fn schema_ref(name: &str) -> Value {
    match name {
        "text/csv" => json!({"content": {"text/csv": {"schema": {"type": "string"}}}}),
        "(empty)" => json!({}),
        n if n.ends_with("[]") => {
            json!({"content": {"application/json": {"schema": {"type": "array", "items": {"$ref": format!("#/components/schemas/{}", &n[..n.len()-2])}}}}})
        }
        n => {
            json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{n}")}}}})
        }
    }
}

pub fn build() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    let mut schemas: Map<String, Value> = Map::new();
    for (method, path, summary, req, resp, admin) in OPERATIONS {
        let mut ok = json!({ "description": "success" });
        if let (Some(o), Some(extra)) = (ok.as_object_mut(), schema_ref(resp).as_object()) {
            o.extend(extra.clone());
        }
        let mut op = json!({
            "summary": summary,
            "responses": {
                "200": ok,
                "default": { "description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ApiErrorBody"}}}}
            }
        });
        if let Some(req) = req {
            op["requestBody"] = schema_ref(req);
        }
        if *admin {
            op["security"] = json!([{"session": []}, {"bearer": []}]);
        }
        let params: Vec<Value> = path
            .split('/')
            .filter(|s| s.starts_with('{'))
            .map(|s| json!({"name": s.trim_matches(|c| c == '{' || c == '}'), "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        paths.entry(path.to_string()).or_insert_with(|| json!({}))[*method] = op;
        for name in [Some(*resp), *req].into_iter().flatten() {
            let n = name.trim_end_matches("[]");
            if n.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && n != "OpenAPI" {
                schemas.insert(n.to_owned(), json!({"type": "object", "description": format!("contract::{n} (see functions/contract)")}));
            }
        }
    }
    schemas.insert("ApiErrorBody".into(), json!({
        "type": "object", "required": ["error", "message"],
        "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "details": {}}
    }));
    json!({
        "openapi": "3.1.0",
        "info": {"title": "mailferry API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": crate::auth::SESSION_COOKIE},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        }
    })
}

pub async fn document() -> Json<Value> {
    Json(build())
}
