//! `/migrate/{token}`: the page an end user reaches from the invite email. They give their
//! mailbox password(s), press Start, and can then watch (or leave) while the server copies.

use crate::api::endpoints;
use crate::components::{Alert, AlertKind, PasswordField, ProgressView, Shell};
use crate::state::migrate::{MigrateAction, MigrateState, Phase, status_message};
use contract::{CredentialsInput, InviteView, MigrationStatus, Security, UserState};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use yew::platform::spawn_local;
use yew::prelude::*;

#[derive(Debug, Properties, PartialEq)]
pub struct MigrateProps {
    pub token: AttrValue,
}

#[component]
pub fn MigratePage(props: &MigrateProps) -> Html {
    let state = use_reducer(MigrateState::default);

    {
        let dispatcher = state.dispatcher();
        use_effect_with(props.token.clone(), move |token| {
            let token = token.clone();
            spawn_local(async move {
                match endpoints::invite(&token).await {
                    Ok(invite) => dispatcher.dispatch(MigrateAction::InviteLoaded(invite)),
                    Err(err) => dispatcher.dispatch(MigrateAction::LoadFailed(err)),
                }
            });
        });
    }

    // Each status answer bumps `polls`, which re-runs this effect for the next poll; it stops by
    // itself once the state is final. Leaving the page cancels a poll that is still waiting.
    {
        let dispatcher = state.dispatcher();
        let token = props.token.clone();
        use_effect_with((state.polls, state.poll_delay_ms()), move |(_, delay)| {
            let cancelled = Rc::new(Cell::new(false));
            if let Some(ms) = *delay {
                let cancelled = cancelled.clone();
                spawn_local(async move {
                    if ms > 0 {
                        yew::platform::time::sleep(Duration::from_millis(u64::from(ms))).await;
                    }
                    if cancelled.get() {
                        return;
                    }
                    match endpoints::status(&token).await {
                        Ok(status) => dispatcher.dispatch(MigrateAction::StatusLoaded(status)),
                        Err(err) => dispatcher.dispatch(MigrateAction::StatusFailed(err)),
                    }
                });
            }
            move || cancelled.set(true)
        });
    }

    let body = match (state.phase(), &state.invite, &state.status) {
        (Phase::Loading, _, _) => {
            html! { <p class="muted" role="status">{ "Loading your invitation…" }</p> }
        }
        (Phase::Unusable, _, _) => unusable(&state),
        (Phase::Form, Some(invite), _) => form(&state, invite, &props.token),
        (Phase::Status, _, Some(status)) => status_view(status, state.error.as_deref()),
        (Phase::Status, _, None) | (Phase::Form, None, _) => {
            html! { <p class="muted" role="status">{ "Loading the progress…" }</p> }
        }
    };
    html! { <Shell title="Move your mailbox">{ body }</Shell> }
}

fn unusable(state: &MigrateState) -> Html {
    let reload = Callback::from(|_: MouseEvent| {
        if let Some(window) = web_sys::window() {
            let _ = window.location().reload();
        }
    });
    html! {
        <>
            <Alert kind={AlertKind::Error}>{ state.fatal.clone().unwrap_or_default() }</Alert>
            if state.retryable {
                <button type="button" class="button" onclick={reload}>{ "Try again" }</button>
            }
        </>
    }
}

fn form(state: &UseReducerHandle<MigrateState>, invite: &InviteView, token: &AttrValue) -> Html {
    let on_source = {
        let d = state.dispatcher();
        Callback::from(move |v| d.dispatch(MigrateAction::EditSource(v)))
    };
    let on_target = {
        let d = state.dispatcher();
        Callback::from(move |v| d.dispatch(MigrateAction::EditTarget(v)))
    };
    let onsubmit = {
        let state = state.clone();
        let token = token.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if !state.can_submit() {
                return;
            }
            let Some(invite) = &state.invite else { return };
            let input = CredentialsInput {
                source_password: invite
                    .asks_source_password
                    .then(|| state.source_password.clone()),
                target_password: invite
                    .asks_target_password
                    .then(|| state.target_password.clone()),
            };
            let dispatcher = state.dispatcher();
            dispatcher.dispatch(MigrateAction::Submit);
            let token = token.clone();
            spawn_local(async move {
                match endpoints::submit_credentials(&token, &input).await {
                    Ok(status) => dispatcher.dispatch(MigrateAction::Started(status)),
                    Err(err) => dispatcher.dispatch(MigrateAction::Rejected(err)),
                }
            });
        })
    };
    let greeting = if invite.display_name.is_empty() {
        "Hello.".to_owned()
    } else {
        format!("Hello {}.", invite.display_name)
    };
    html! {
        <form class="card" {onsubmit} aria-busy={state.submitting.to_string()}>
            <p>
                { greeting }{ " " }<strong>{ &invite.project_name }</strong>{ " moves your mail from " }
                <strong>{ &invite.source_email }</strong>{ " to " }<strong>{ &invite.target_email }</strong>{ "." }
            </p>
            <p class="muted">
                { "Your password is used only to copy your mail. It is stored encrypted and deleted when the move is finished." }
            </p>
            if let Some(err) = &state.error {
                <Alert kind={AlertKind::Error}>
                    { err.clone() }
                    if let Some(left) = state.attempts_left {
                        { format!(" ({left} {} left)", if left == 1 { "attempt" } else { "attempts" }) }
                    }
                </Alert>
            }
            if invite.asks_source_password {
                <PasswordField
                    id="source-password"
                    label={format!("Password of {}", invite.source_email)}
                    hint={AttrValue::from("Your current mailbox, where the mail is now")}
                    value={state.source_password.clone()}
                    oninput={on_source}
                    disabled={state.submitting}
                />
            }
            if invite.asks_target_password {
                <PasswordField
                    id="target-password"
                    label={format!("Password of {}", invite.target_email)}
                    hint={AttrValue::from("Your new mailbox, where the mail goes")}
                    value={state.target_password.clone()}
                    oninput={on_target}
                    disabled={state.submitting}
                />
            }
            <button type="submit" class="button primary" disabled={state.submitting}>
                { if state.submitting { "Checking…" } else { "Start copying" } }
            </button>
            <p class="muted small">{ format!("This link is valid until {}.", invite.expires_at.date()) }</p>
        </form>
    }
}

fn status_view(status: &MigrationStatus, error: Option<&str>) -> Html {
    html! {
        <section class="card" aria-live="polite">
            <p>
                <span class={classes!("chip", format!("chip-{}", status.state.as_str()))}>
                    { status.state.label() }
                </span>
            </p>
            <Alert kind={alert_kind(status.state)}>{ status_message(status.state) }</Alert>
            <ProgressView progress={status.progress.clone()} />
            if let Some(account) = &status.new_account {
                <h2>{ "Your new mailbox" }</h2>
                <dl class="settings">
                    <div><dt>{ "Email" }</dt><dd>{ &account.email }</dd></div>
                    <div><dt>{ "IMAP server" }</dt><dd>{ &account.imap_host }</dd></div>
                    <div><dt>{ "Port" }</dt><dd>{ account.imap_port }</dd></div>
                    <div><dt>{ "Security" }</dt><dd>{ security_label(account.security) }</dd></div>
                </dl>
            }
            if let Some(err) = error {
                <p class="muted small">{ err }</p>
            }
        </section>
    }
}

fn alert_kind(state: UserState) -> AlertKind {
    match state {
        UserState::Completed | UserState::Verified => AlertKind::Success,
        UserState::Failed => AlertKind::Error,
        _ => AlertKind::Info,
    }
}

fn security_label(s: Security) -> &'static str {
    match s {
        Security::Tls => "SSL/TLS",
        Security::Starttls => "STARTTLS",
        Security::Plaintext => "None",
    }
}
