//! The OpenAPI 3.1 description of the API, served at `/api/openapi.json`. The route table below
//! is the single list of documented operations; a router test calls every one of them to prove
//! the document and the router agree. Bodies are described by JSON Schemas generated from the
//! `contract` types themselves (schemars), so the document cannot drift from what the server
//! reads and writes; schemathesis checks every answer against them (`cargo xtask fuzz`).

use axum::Json;
use contract::*;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

/// One documented operation.
pub struct Operation {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// The request body's type (`text/csv` for a CSV upload).
    pub request: Option<&'static str>,
    /// The status of success.
    pub status: u16,
    /// The success body's type (`T[]` a list of them, `text/csv` a CSV file); `None` when
    /// there is none.
    pub response: Option<&'static str>,
    /// Query parameters, by name (their schemas are in [`query_parameter`]).
    pub query: &'static [&'static str],
    /// Also answers 204 without a body (a user action that deleted the user).
    pub or_no_content: bool,
    pub admin: bool,
}

pub const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/api/health",
        summary: "Liveness and version",
        request: None,
        status: 200,
        response: Some("Health"),
        query: &[],
        or_no_content: false,
        admin: false,
    },
    Operation {
        method: "post",
        path: "/api/admin/login",
        summary: "Sign in with the admin password; sets the session cookie",
        request: Some("LoginInput"),
        status: 200,
        response: Some("SessionView"),
        query: &[],
        or_no_content: false,
        admin: false,
    },
    Operation {
        method: "post",
        path: "/api/admin/logout",
        summary: "End the admin session",
        request: None,
        status: 204,
        response: None,
        query: &[],
        or_no_content: false,
        admin: false,
    },
    Operation {
        method: "get",
        path: "/api/admin/session",
        summary: "Whether the caller is signed in",
        request: None,
        status: 200,
        response: Some("SessionView"),
        query: &[],
        or_no_content: false,
        admin: false,
    },
    Operation {
        method: "get",
        path: "/api/admin/projects",
        summary: "List projects with user counts by state",
        request: None,
        status: 200,
        response: Some("ProjectView[]"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "post",
        path: "/api/admin/projects",
        summary: "Create a project with its source and target connectors",
        request: Some("ProjectInput"),
        status: 201,
        response: Some("ProjectView"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/projects/{id}",
        summary: "One project",
        request: None,
        status: 200,
        response: Some("ProjectView"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "put",
        path: "/api/admin/projects/{id}",
        summary: "Replace a project's settings (If-Match: version)",
        request: Some("ProjectInput"),
        status: 200,
        response: Some("ProjectView"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "post",
        path: "/api/admin/projects/{id}/close",
        summary: "Close a project: delete every stored password (users' and admin), stop its invite links; refused while users copy",
        request: None,
        status: 200,
        response: Some("ProjectView"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "post",
        path: "/api/admin/projects/{id}/reopen",
        summary: "Reopen a closed project (deleted passwords must be entered again)",
        request: None,
        status: 200,
        response: Some("ProjectView"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/projects/{id}/audit",
        summary: "The project's audit trail, newest first (query: before, limit ≤ 500)",
        request: None,
        status: 200,
        response: Some("AuditPage"),
        query: &["before", "limit"],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/projects/{id}/audit/export",
        summary: "The project's audit trail as CSV, ≤ 20,000 entries a file (query: before; header X-Next-Before names the next file)",
        request: None,
        status: 200,
        response: Some("text/csv"),
        query: &["before"],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/audit",
        summary: "Console-wide audit trail (sign-ins), newest first (query: before, limit ≤ 500)",
        request: None,
        status: 200,
        response: Some("AuditPage"),
        query: &["before", "limit"],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "post",
        path: "/api/admin/connectors/test",
        summary: "Try a login with a connector as typed (nothing stored)",
        request: Some("ConnectionTestInput"),
        status: 200,
        response: Some("ConnectionTestResult"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "post",
        path: "/api/admin/projects/{id}/test/{side}",
        summary: "Try a login with a stored connector (side: source or target)",
        request: Some("SavedConnectorTestInput"),
        status: 200,
        response: Some("ConnectionTestResult"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/projects/{id}/users",
        summary: "List users (query: state, q, offset, limit)",
        request: None,
        status: 200,
        response: Some("UserPage"),
        query: &["state", "q", "offset", "limit"],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "post",
        path: "/api/admin/projects/{id}/users",
        summary: "Add one user",
        request: Some("UserInput"),
        status: 201,
        response: Some("UserView"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "post",
        path: "/api/admin/projects/{id}/users/import",
        summary: "Import users from CSV (body text/csv, ≤ 10 MB, ≤ 50,000 rows; query dry_run=true to validate only). All or nothing; errors by line",
        request: Some("text/csv"),
        status: 200,
        response: Some("ImportReport"),
        query: &["dry_run"],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/projects/{id}/users/export",
        summary: "Export users as CSV",
        request: None,
        status: 200,
        response: Some("text/csv"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/projects/{id}/report",
        summary: "Verification report as CSV: per folder of every user, both sides' figures, skipped and altered copies",
        request: None,
        status: 200,
        response: Some("text/csv"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "post",
        path: "/api/admin/projects/{id}/users/actions/{action}",
        summary: "Bulk action (start, resend_invite, pause, retry, delta, retry_skipped, mark_verified, preflight, cut_over, purge_credentials, delete) on selected or all users",
        request: Some("Selection"),
        status: 200,
        response: Some("BulkResult"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/projects/{id}/users/{uid}",
        summary: "User detail: per-folder progress, verification figures, skipped items, events",
        request: None,
        status: 200,
        response: Some("UserDetail"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "delete",
        path: "/api/admin/projects/{id}/users/{uid}",
        summary: "Delete a user and purge its credentials",
        request: None,
        status: 204,
        response: None,
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "post",
        path: "/api/admin/projects/{id}/users/{uid}/actions/{action}",
        summary: "One action on one user; 204 when the action deleted the user",
        request: None,
        status: 200,
        response: Some("UserView"),
        query: &[],
        or_no_content: true,
        admin: true,
    },
    Operation {
        method: "post",
        path: "/api/admin/projects/{id}/users/{uid}/preflight",
        summary: "Preflight one user: log in to both sides and report folders, sizes, messages over the target's limit, the target's quota and the capabilities that matter, copying nothing (409 when a server is at its connection cap)",
        request: None,
        status: 200,
        response: Some("PreflightReport"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/projects/{id}/preflight",
        summary: "The project's preflights summed (bulk action preflight runs them in the background): users ready, over quota, with oversize messages, not checked, in numbers and in words",
        request: None,
        status: 200,
        response: Some("PreflightTotals"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/projects/{id}/preflight/export",
        summary: "Every user's last preflight as CSV",
        request: None,
        status: 200,
        response: Some("text/csv"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/providers",
        summary: "Provider profiles: each kind of service with its server, ways of signing in, setup steps and rules (with their sources)",
        request: None,
        status: 200,
        response: Some("ProviderView[]"),
        query: &[],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/admin/outbox",
        summary: "Mails the local outbox holds (local mode)",
        request: None,
        status: 200,
        response: Some("OutboxMail[]"),
        query: &["limit"],
        or_no_content: false,
        admin: true,
    },
    Operation {
        method: "get",
        path: "/api/migrate/{token}",
        summary: "What the credential page shows for an invite link",
        request: None,
        status: 200,
        response: Some("InviteView"),
        query: &[],
        or_no_content: false,
        admin: false,
    },
    Operation {
        method: "post",
        path: "/api/migrate/{token}/credentials",
        summary: "Submit passwords: tested against the real servers, then stored encrypted and the copy queued. 422 with attempts_left on a wrong password",
        request: Some("CredentialsInput"),
        status: 200,
        response: Some("MigrationStatus"),
        query: &[],
        or_no_content: false,
        admin: false,
    },
    Operation {
        method: "post",
        path: "/api/migrate/{token}/sign-in/{side}",
        summary: "Start a user's sign-in with the side's provider (Microsoft, Google): where to send the browser (authorization code with PKCE)",
        request: None,
        status: 200,
        response: Some("SignInRedirect"),
        query: &[],
        or_no_content: false,
        admin: false,
    },
    Operation {
        method: "get",
        path: "/api/sign-in/callback",
        summary: "The provider sends the browser back here after a sign-in; redirects (303) to the credential page saying how it ended (400 with a page when the state cannot be read)",
        request: None,
        status: 303,
        response: None,
        query: &["oauth_state", "code", "error"],
        or_no_content: false,
        admin: false,
    },
    Operation {
        method: "get",
        path: "/api/migrate/{token}/status",
        summary: "Migration status for the credential page",
        request: None,
        status: 200,
        response: Some("MigrationStatus"),
        query: &[],
        or_no_content: false,
        admin: false,
    },
    Operation {
        method: "get",
        path: "/api/openapi.json",
        summary: "This document",
        request: None,
        status: 200,
        response: Some("OpenAPI"),
        query: &[],
        or_no_content: false,
        admin: false,
    },
];

/// The schema of a named body type, as a reference into the generator's definitions.
fn type_schema(generator: &mut SchemaGenerator, name: &str) -> Value {
    if let Some(item) = name.strip_suffix("[]") {
        return json!({"type": "array", "items": type_schema(generator, item)});
    }
    let schema = match name {
        "Health" => generator.subschema_for::<Health>(),
        "LoginInput" => generator.subschema_for::<LoginInput>(),
        "SessionView" => generator.subschema_for::<SessionView>(),
        "ProjectInput" => generator.subschema_for::<ProjectInput>(),
        "ProjectView" => generator.subschema_for::<ProjectView>(),
        "ConnectionTestInput" => generator.subschema_for::<ConnectionTestInput>(),
        "SavedConnectorTestInput" => generator.subschema_for::<SavedConnectorTestInput>(),
        "ConnectionTestResult" => generator.subschema_for::<ConnectionTestResult>(),
        "UserPage" => generator.subschema_for::<UserPage>(),
        "PreflightReport" => generator.subschema_for::<PreflightReport>(),
        "PreflightTotals" => generator.subschema_for::<contract::PreflightTotals>(),
        "UserInput" => generator.subschema_for::<UserInput>(),
        "UserView" => generator.subschema_for::<UserView>(),
        "UserDetail" => generator.subschema_for::<UserDetail>(),
        "ImportReport" => generator.subschema_for::<ImportReport>(),
        "Selection" => generator.subschema_for::<Selection>(),
        "BulkResult" => generator.subschema_for::<BulkResult>(),
        "OutboxMail" => generator.subschema_for::<OutboxMail>(),
        "ProviderView" => generator.subschema_for::<ProviderView>(),
        "InviteView" => generator.subschema_for::<InviteView>(),
        "CredentialsInput" => generator.subschema_for::<CredentialsInput>(),
        "MigrationStatus" => generator.subschema_for::<MigrationStatus>(),
        "SignInRedirect" => generator.subschema_for::<SignInRedirect>(),
        "AuditPage" => generator.subschema_for::<AuditPage>(),
        "ApiErrorBody" => generator.subschema_for::<ApiErrorBody>(),
        "OpenAPI" => return json!({"type": "object"}),
        other => panic!("openapi: no schema for `{other}`; add it to type_schema"),
    };
    schema.to_value()
}

/// A body of the named type, as an OpenAPI `content` object.
fn content(generator: &mut SchemaGenerator, name: &str) -> Value {
    match name {
        "text/csv" => json!({"text/csv": {"schema": {"type": "string"}}}),
        n => json!({"application/json": {"schema": type_schema(generator, n)}}),
    }
}

fn query_parameter(name: &str) -> Value {
    let schema = match name {
        "state" => {
            json!({"type": "string", "enum": UserState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()})
        }
        "q" => json!({"type": "string", "maxLength": 200}),
        "offset" | "limit" => json!({"type": "integer", "minimum": 0}),
        "dry_run" => json!({"type": "boolean"}),
        "before" => json!({"type": "string"}),
        // OAuth's `state` (documented under another key: `state` filters users elsewhere).
        "oauth_state" => {
            return json!({"name": "state", "in": "query", "required": true, "schema": {"type": "string"}});
        }
        "code" | "error" => json!({"type": "string"}),
        other => panic!("openapi: no schema for query parameter `{other}`"),
    };
    json!({"name": name, "in": "query", "required": false, "schema": schema})
}

fn path_parameter(name: &str) -> Value {
    let schema = match name {
        "id" | "uid" => json!({"type": "string", "format": "uuid"}),
        "side" => json!({"type": "string", "enum": ["source", "target"]}),
        "action" => json!({"type": "string", "enum": [
            "start", "resend_invite", "pause", "retry", "delta", "retry_skipped",
            "mark_verified", "preflight", "cut_over", "purge_credentials", "delete"
        ]}),
        _ => json!({"type": "string"}),
    };
    json!({"name": name, "in": "path", "required": true, "schema": schema})
}

pub fn build() -> Value {
    // Requests are read with serde's defaults, so a field with a default is optional; answers
    // are written in full, which the same schemas accept.
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "#/components/schemas/".into())
        .for_deserialize()
        .into_generator();
    let mut paths: Map<String, Value> = Map::new();
    let error = content(&mut generator, "ApiErrorBody");
    for op in OPERATIONS {
        let mut success = json!({ "description": "success" });
        if let Some(resp) = op.response {
            success["content"] = content(&mut generator, resp);
        }
        let mut doc = json!({
            "summary": op.summary,
            "responses": {
                op.status.to_string(): success,
                "default": { "description": "error", "content": error.clone() }
            }
        });
        if op.or_no_content {
            doc["responses"]["204"] = json!({ "description": "done; nothing to return" });
        }
        if let Some(req) = op.request {
            doc["requestBody"] = json!({"required": true, "content": content(&mut generator, req)});
        }
        if op.admin {
            doc["security"] = json!([{"session": []}, {"bearer": []}]);
        }
        let params: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(path_parameter)
            .chain(op.query.iter().map(|q| query_parameter(q)))
            .collect();
        if !params.is_empty() {
            doc["parameters"] = Value::Array(params);
        }
        paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}))[op.method] = doc;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "mailferry API", "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {
            "schemas": generator.take_definitions(true),
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
