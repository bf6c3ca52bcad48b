//! One connector of the project form: the kind of service (any IMAP server, Microsoft 365,
//! Google Workspace) with what its profile says, the server, how mailferry signs in, and a
//! "Test connection" that logs in once.

use crate::api::endpoints;
use crate::components::{PasswordField, SelectField, TextArea, TextField};
use crate::state::connector_form::security_value;
use crate::state::project_form::{
    AuthMode, Field, ProjectFormAction, Side, TestRequest, TestState,
};
use contract::{ConnectorKind, ProviderView};
use yew::platform::spawn_local;
use yew::prelude::*;

use super::project_form::{Handle, blur, edit};

const KINDS: [(&str, &str); 3] = [
    (
        "imap",
        "IMAP server (Dovecot, Cyrus, Exchange on-premises, …)",
    ),
    ("microsoft365", "Microsoft 365 (Exchange Online)"),
    ("google_workspace", "Google Workspace (Gmail)"),
];

/// What the admin sets up at the provider, and the profile's rules, from the server.
fn provider_help(provider: Option<&ProviderView>, auth: AuthMode) -> Html {
    let Some(p) = provider else {
        return html! {};
    };
    let show_steps = matches!(
        auth,
        AuthMode::MicrosoftApp | AuthMode::GoogleServiceAccount
    );
    html! {
        <>
            if show_steps && !p.setup_steps.is_empty() {
                <details class="small setup" open=true>
                    <summary>{ format!("What to set up in {} first", p.name) }</summary>
                    <ol>
                        { for p.setup_steps.iter().map(|step| html! { <li>{ step.clone() }</li> }) }
                    </ol>
                </details>
            }
            if !p.rules.is_empty() {
                <details class="small rules">
                    <summary>{ format!("What mailferry knows about {}", p.name) }</summary>
                    <table class="table">
                        <thead><tr><th>{ "Rule" }</th><th>{ "Value" }</th><th>{ "Source" }</th></tr></thead>
                        <tbody>
                            { for p.rules.iter().map(|r| html! {
                                <tr><td>{ r.rule.clone() }</td><td>{ r.value.clone() }</td><td class="muted">{ r.source.clone() }</td></tr>
                            }) }
                        </tbody>
                    </table>
                </details>
            }
        </>
    }
}

/// The modes of signing in the side's kind takes, as select options.
fn mode_options(
    kind: ConnectorKind,
    providers: &[ProviderView],
) -> Vec<(&'static str, &'static str)> {
    crate::state::connector_form::modes_of(kind, providers)
        .into_iter()
        .map(|m| (m.as_str(), m.label()))
        .collect()
}

pub(super) fn connector(state: &Handle, side: Side) -> Html {
    let s = &**state;
    let c = s.connector(side);
    let heading_id = format!("pf-{}-heading", side.as_str());
    let test = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| {
            let dispatcher = state.dispatcher();
            match state.test_request(side) {
                Err(message) => dispatcher.dispatch(ProjectFormAction::TestInvalid(side, message)),
                Ok(request) => {
                    dispatcher.dispatch(ProjectFormAction::TestStarted(side));
                    spawn_local(async move {
                        let (result, saved) = match request {
                            TestRequest::Typed(input) => {
                                (endpoints::test_connector(&input).await, false)
                            }
                            TestRequest::Saved {
                                project,
                                side,
                                email,
                                password,
                            } => (
                                endpoints::test_saved_connector(
                                    project,
                                    side.as_str(),
                                    email.as_deref(),
                                    password.as_deref(),
                                )
                                .await,
                                true,
                            ),
                        };
                        match result {
                            Ok(r) => {
                                dispatcher.dispatch(ProjectFormAction::TestDone(side, r, saved))
                            }
                            Err(e) => dispatcher.dispatch(ProjectFormAction::TestFailed(side, e)),
                        }
                    });
                }
            }
        })
    };
    let password_hint = match (c.has_stored_password, c.auth) {
        (true, AuthMode::GoogleServiceAccount) => {
            format!(
                "A key of {} is saved; paste a key file only to replace it",
                c.client_email
            )
        }
        (true, _) => "Saved; leave empty to keep it".to_owned(),
        (false, _) => "Stored encrypted, bound to this server; never shown again".to_owned(),
    };
    let provider = s.providers.iter().find(|p| p.kind == c.kind);
    let result = match &c.test {
        TestState::Idle => html! {},
        TestState::Running => html! { <p class="test-result muted">{ "Connecting…" }</p> },
        TestState::Done {
            result,
            saved_settings,
        } => html! {
            <div class={classes!("test-result", if result.ok { "test-ok" } else { "test-bad" })}>
                <p>
                    <strong>{ if result.ok { "✓ Connected. " } else { "✗ Not connected. " } }</strong>
                    { result.message.clone() }
                    if *saved_settings {
                        <span class="muted">{ " (saved settings)" }</span>
                    }
                </p>
                if !result.capabilities.is_empty() {
                    <details class="small caps">
                        <summary>{ "What the server supports" }</summary>
                        <p class="muted">{ result.capabilities.join(" ") }</p>
                    </details>
                }
            </div>
        },
        TestState::Failed(message) => html! {
            <div class="test-result test-bad"><p><strong>{ "✗ " }</strong>{ message.clone() }</p></div>
        },
    };
    html! {
        <section class="card" aria-labelledby={heading_id.clone()}>
            <h2 id={heading_id}>{ side.label() }</h2>
            <SelectField
                id={Field::Kind(side).id()}
                label="Service"
                value={c.kind.as_str()}
                options={KINDS.to_vec()}
                onchange={edit(state, Field::Kind(side))}
            />
            { provider_help(provider, c.auth) }
            <div class="row">
                <div class="grow">
                    <TextField
                        id={Field::Host(side).id()}
                        label="IMAP server"
                        placeholder="imap.example.com"
                        autocomplete="off"
                        value={c.host.clone()}
                        oninput={edit(state, Field::Host(side))}
                        onblur={blur(state, Field::Host(side))}
                        error={s.field_error(Field::Host(side))}
                        required=true
                    />
                </div>
                <div class="port">
                    <TextField
                        id={Field::Port(side).id()}
                        label="Port"
                        inputmode="numeric"
                        value={c.port.clone()}
                        oninput={edit(state, Field::Port(side))}
                        onblur={blur(state, Field::Port(side))}
                        error={s.field_error(Field::Port(side))}
                        required=true
                    />
                </div>
            </div>
            <SelectField
                id={Field::Security(side).id()}
                label="Connection security"
                value={security_value(c.security)}
                options={vec![
                    ("tls", "TLS (usually port 993)"),
                    ("starttls", "STARTTLS (usually port 143)"),
                    ("plaintext", "None — trusted networks only"),
                ]}
                onchange={edit(state, Field::Security(side))}
            />
            <SelectField
                id={Field::Auth(side).id()}
                label="Signing in to the mailboxes"
                value={c.auth.as_str()}
                options={mode_options(c.kind, &s.providers)}
                onchange={edit(state, Field::Auth(side))}
            />
            if c.auth == AuthMode::MicrosoftApp {
                <div class="row">
                    <div class="grow">
                        <TextField
                            id={Field::TenantId(side).id()}
                            label="Directory (tenant) ID"
                            hint="Or the tenant's domain, e.g. contoso.onmicrosoft.com"
                            autocomplete="off"
                            value={c.tenant_id.clone()}
                            oninput={edit(state, Field::TenantId(side))}
                            onblur={blur(state, Field::TenantId(side))}
                            error={s.field_error(Field::TenantId(side))}
                            required=true
                        />
                    </div>
                    <div class="grow">
                        <TextField
                            id={Field::ClientId(side).id()}
                            label="Application (client) ID"
                            autocomplete="off"
                            placeholder="00000000-0000-0000-0000-000000000000"
                            value={c.client_id.clone()}
                            oninput={edit(state, Field::ClientId(side))}
                            onblur={blur(state, Field::ClientId(side))}
                            error={s.field_error(Field::ClientId(side))}
                            required=true
                        />
                    </div>
                </div>
                <PasswordField
                    id={Field::AdminPassword(side).id()}
                    label="Client secret, or certificate and private key (PEM)"
                    hint={AttrValue::from(password_hint.clone())}
                    autocomplete="new-password"
                    required={!c.has_stored_password}
                    value={c.admin_password.clone()}
                    oninput={edit(state, Field::AdminPassword(side))}
                    error={s.field_error(Field::AdminPassword(side))}
                />
            }
            if c.auth == AuthMode::GoogleServiceAccount {
                <TextArea
                    id={Field::AdminPassword(side).id()}
                    label="Service account key file (JSON)"
                    hint={AttrValue::from(password_hint.clone())}
                    rows={6}
                    required={!c.has_stored_password}
                    value={c.admin_password.clone()}
                    oninput={edit(state, Field::AdminPassword(side))}
                    error={s.field_error(Field::AdminPassword(side))}
                />
            }
            if c.auth == AuthMode::UserSignIn {
                <p class="hint">{ "Each user signs in with their own account on the invite page; mailferry keeps only the sign-in's refresh token, encrypted." }</p>
                <TextField
                    id={Field::ClientId(side).id()}
                    label="Client ID of mailferry's app"
                    autocomplete="off"
                    value={c.client_id.clone()}
                    oninput={edit(state, Field::ClientId(side))}
                    onblur={blur(state, Field::ClientId(side))}
                    error={s.field_error(Field::ClientId(side))}
                    required=true
                />
                if c.kind == ConnectorKind::Microsoft365 {
                    <TextField
                        id={Field::TenantId(side).id()}
                        label="Tenant"
                        hint="The directory ID or domain; leave empty for any work or school account"
                        autocomplete="off"
                        value={c.tenant_id.clone()}
                        oninput={edit(state, Field::TenantId(side))}
                    />
                }
                <PasswordField
                    id={Field::AdminPassword(side).id()}
                    label="Client secret (confidential apps)"
                    hint={AttrValue::from("Leave empty for a public client")}
                    autocomplete="new-password"
                    value={c.admin_password.clone()}
                    oninput={edit(state, Field::AdminPassword(side))}
                    error={s.field_error(Field::AdminPassword(side))}
                />
            }
            if c.auth == AuthMode::Admin {
                <TextField
                    id={Field::LoginPattern(side).id()}
                    label="Admin login"
                    hint="{email} stands for each user's address; Dovecot master users: {email}*admin"
                    autocomplete="off"
                    value={c.login_pattern.clone()}
                    oninput={edit(state, Field::LoginPattern(side))}
                    onblur={blur(state, Field::LoginPattern(side))}
                    error={s.field_error(Field::LoginPattern(side))}
                    required=true
                />
                <PasswordField
                    id={Field::AdminPassword(side).id()}
                    label="Admin password"
                    hint={AttrValue::from(password_hint)}
                    autocomplete="new-password"
                    required={!c.has_stored_password}
                    value={c.admin_password.clone()}
                    oninput={edit(state, Field::AdminPassword(side))}
                    error={s.field_error(Field::AdminPassword(side))}
                />
            }
            if c.auth != AuthMode::UserSignIn {
            <fieldset class="test">
                <legend>{ "Test connection" }</legend>
                <p class="hint">{ "Logs in once with a real mailbox; nothing is stored or copied." }</p>
                <TextField
                    id={Field::TestEmail(side).id()}
                    label="Test mailbox"
                    kind="email"
                    autocomplete="off"
                    placeholder="someone@example.com"
                    value={c.test_email.clone()}
                    oninput={edit(state, Field::TestEmail(side))}
                    required={c.needs_test_email()}
                />
                if c.auth == AuthMode::PerUser {
                    <PasswordField
                        id={Field::TestPassword(side).id()}
                        label="Its password"
                        autocomplete="off"
                        value={c.test_password.clone()}
                        oninput={edit(state, Field::TestPassword(side))}
                    />
                }
                <button type="button" class="button" onclick={test} disabled={c.test == TestState::Running}>
                    { if c.test == TestState::Running { "Testing…" } else { "Test connection" } }
                </button>
                <div role="status" aria-live="polite">{ result }</div>
            </fieldset>
            }
        </section>
    }
}
