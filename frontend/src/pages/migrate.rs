//! `/migrate/{token}`: the page an end user reaches from the invite email. It says what will
//! happen, takes the mailbox password(s), and after Start follows the copy (which runs on the
//! server: the page may be closed). Unknown, expired and locked links each get a page of their
//! own that says what to do.

use crate::api::endpoints;
use crate::components::{AlertKind, PasswordField, Shell, alert, progress_view};
use crate::hooks::use_delayed_task;
use crate::state::migrate::{MigrateAction, MigrateState, Phase, SignInResult, status_message};
use contract::{CredentialsInput, InviteView, MigrationStatus, Security, SignInOffer, UserState};
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
            // Back from a provider's sign-in: say how it ended, and drop the query so a reload
            // does not say it again.
            let location = web_sys::window().map(|w| w.location());
            if let Some(result) = location
                .as_ref()
                .and_then(|l| l.search().ok())
                .and_then(|q| SignInResult::from_query(&q))
            {
                dispatcher.dispatch(MigrateAction::SignInReturned(result));
                if let Some(history) = web_sys::window().and_then(|w| w.history().ok()) {
                    let path = location.and_then(|l| l.pathname().ok()).unwrap_or_default();
                    let _ = history.replace_state_with_url(
                        &wasm_bindgen::JsValue::NULL,
                        "",
                        Some(&path),
                    );
                }
            }
            spawn_local(async move {
                match endpoints::invite(&token).await {
                    Ok(invite) => dispatcher.dispatch(MigrateAction::InviteLoaded(invite)),
                    Err(err) => dispatcher.dispatch(MigrateAction::LoadFailed(err)),
                }
            });
        });
    }

    // Each status answer bumps `polls`, which re-arms the next poll; polling stops by itself in a
    // final state. Leaving the page cancels a poll that is still waiting.
    {
        let dispatcher = state.dispatcher();
        let token = props.token.clone();
        use_delayed_task(state.polls, state.poll_delay_ms(), move |live| async move {
            let r = endpoints::status(&token).await;
            if live.get() {
                dispatcher.dispatch(match r {
                    Ok(status) => MigrateAction::StatusLoaded(status),
                    Err(err) => MigrateAction::StatusFailed(err),
                });
            }
        });
    }

    // After a refused password the focus goes back to the (emptied) password field.
    use_effect_with(state.rejections, |rejections| {
        if *rejections > 0
            && let Some(field) = web_sys::window()
                .and_then(|w| w.document())
                .and_then(|d| {
                    d.query_selector("#source-password, #target-password")
                        .ok()
                        .flatten()
                })
                .and_then(|e| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(e).ok())
        {
            let _ = field.focus();
        }
    });

    let (title, body) = match (state.phase(), &state.invite, &state.status) {
        (Phase::Loading, _, _) => (
            "Move your mailbox".to_owned(),
            html! { <p class="muted" role="status">{ "Loading your invitation…" }</p> },
        ),
        (Phase::Unusable, _, _) => unusable(&state),
        (Phase::Form, Some(invite), _) => (
            "Move your mailbox".to_owned(),
            form(&state, invite, &props.token),
        ),
        (Phase::Status, _, Some(status)) => (
            status_title(status.state).to_owned(),
            status_view(&state, status),
        ),
        (Phase::Status, _, None) | (Phase::Form, None, _) => (
            "Move your mailbox".to_owned(),
            html! { <p class="muted" role="status">{ "Loading the progress…" }</p> },
        ),
    };
    html! { <Shell {title}><div class="narrow">{ body }</div></Shell> }
}

fn unusable(state: &MigrateState) -> (String, Html) {
    let Some(problem) = &state.problem else {
        return (String::new(), html! {});
    };
    let reload = Callback::from(|_: MouseEvent| {
        if let Some(window) = web_sys::window() {
            let _ = window.location().reload();
        }
    });
    let body = html! {
        <section class="card problem">
            <p class="problem-icon" aria-hidden="true">{ if problem.retryable() { "⟳" } else { "✉" } }</p>
            <p>{ problem.explanation() }</p>
            if problem.retryable() {
                <button type="button" class="button primary" onclick={reload}>{ "Try again" }</button>
            } else {
                <p class="muted small">{ "For your security, links are personal, work for a limited time and lock after several wrong passwords." }</p>
            }
        </section>
    };
    (problem.title().to_owned(), body)
}

fn route(invite_source: &str, invite_target: &str) -> Html {
    html! {
        <div class="move" aria-label={format!("From {invite_source} to {invite_target}")} role="group">
            <div class="move-end">
                <span class="move-label">{ "From your current mailbox" }</span>
                <strong>{ invite_source.to_owned() }</strong>
            </div>
            <span class="move-arrow" aria-hidden="true">{ "→" }</span>
            <div class="move-end">
                <span class="move-label">{ "To your new mailbox" }</span>
                <strong>{ invite_target.to_owned() }</strong>
            </div>
        </div>
    }
}

fn form(state: &UseReducerHandle<MigrateState>, invite: &InviteView, token: &AttrValue) -> Html {
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
        "Hello,".to_owned()
    } else {
        format!("Hello {},", invite.display_name)
    };
    let signs_in = invite.source_sign_in.is_some() || invite.target_sign_in.is_some();
    let which = match (
        invite.asks_source_password,
        invite.asks_target_password,
        signs_in,
    ) {
        (true, true, _) => "the passwords of both mailboxes",
        (true, false, false) => "the password of your current mailbox",
        (false, true, false) => "the password of your new mailbox",
        (true, false, true) | (false, true, true) => "one password and sign in with your account",
        (false, false, true) => "nothing: you sign in with your account",
        (false, false, false) => "nothing more",
    };
    let sign_in_notice = state.sign_in.as_ref().map(|r| {
        let kind = if r.is_success() {
            AlertKind::Success
        } else {
            AlertKind::Error
        };
        alert(kind, r.message(invite))
    });
    html! {
        <>
            <section class="card intro">
                <p class="lead">
                    { greeting }{ " your organisation is moving its email with " }
                    <strong>{ &invite.project_name }</strong>{ "." }
                </p>
                { route(&invite.source_email, &invite.target_email) }
                <h2>{ "What happens" }</h2>
                <ol class="steps">
                    <li>{ format!("You enter {which}. It is checked with your mail server straight away.") }</li>
                    <li>{ "You press Start. Your mail is copied on our servers, folder by folder. Your current mailbox is only read, never changed." }</li>
                    <li><strong>{ "You can close this page after Start." }</strong>{ " The copy continues without it and can take from minutes to hours." }</li>
                    <li>{ "When it is done, your mail is waiting in your new mailbox." }</li>
                </ol>
            </section>
            <form class="card" {onsubmit} aria-busy={state.submitting.to_string()} aria-labelledby="creds-heading">
                <h2 id="creds-heading">{ if signs_in { "Your accounts" } else { "Your password" } }</h2>
                { sign_in_notice.unwrap_or_default() }
                if let Some(err) = &state.error {
                    { alert(AlertKind::Error, err.clone()) }
                }
                { credential_fields(state, invite, token) }
                <p class="muted small">
                    { "Your password is used only to copy your mail. It is stored encrypted and deleted when the move is finished. Nobody, including your administrator, can read it." }
                </p>
                <button type="submit" class="button primary wide-button" disabled={state.submitting}>
                    if state.submitting {
                        <span class="spinner" aria-hidden="true"></span>
                        { "Checking your password…" }
                    } else {
                        { "Start" }
                    }
                </button>
                <p class="muted small">
                    { format!("This personal link works until {}.", invite.expires_at.date()) }
                    if let Some(left) = state.attempts_left.filter(|n| *n < contract::limits::INVITE_MAX_FAILED_ATTEMPTS) {
                        { format!(" {left} {} left before it locks.", if left == 1 { "attempt" } else { "attempts" }) }
                    }
                </p>
            </form>
        </>
    }
}

/// What the user gives on the form: a sign-in per side that signs in, a password per side
/// that takes one.
fn credential_fields(
    state: &UseReducerHandle<MigrateState>,
    invite: &InviteView,
    token: &AttrValue,
) -> Html {
    let on_source = {
        let d = state.dispatcher();
        Callback::from(move |v| d.dispatch(MigrateAction::EditSource(v)))
    };
    let on_target = {
        let d = state.dispatcher();
        Callback::from(move |v| d.dispatch(MigrateAction::EditTarget(v)))
    };
    html! {
        <>
            if let Some(offer) = &invite.source_sign_in {
                { sign_in_button(state, token, "source", &invite.source_email, offer) }
            }
            if let Some(offer) = &invite.target_sign_in {
                { sign_in_button(state, token, "target", &invite.target_email, offer) }
            }
            if invite.asks_source_password {
                <PasswordField
                    id="source-password"
                    label={format!("Password of {}", invite.source_email)}
                    hint={AttrValue::from("The password you use for your current mailbox today")}
                    value={state.source_password.clone()}
                    oninput={on_source}
                    disabled={state.submitting}
                />
            }
            if invite.asks_target_password {
                <PasswordField
                    id="target-password"
                    label={format!("Password of {}", invite.target_email)}
                    hint={AttrValue::from("The password of your new mailbox")}
                    value={state.target_password.clone()}
                    oninput={on_target}
                    disabled={state.submitting}
                />
            }
        </>
    }
}

/// One side's sign-in: who signed in, or the button that goes to the provider.
fn sign_in_button(
    state: &UseReducerHandle<MigrateState>,
    token: &AttrValue,
    side: &'static str,
    email: &str,
    offer: &SignInOffer,
) -> Html {
    if let Some(account) = &offer.signed_in_as {
        return html! {
            <p class="signed-in" id={format!("{side}-signed-in")}>
                <span aria-hidden="true">{ "✓ " }</span>
                { format!("Signed in as {account}") }
            </p>
        };
    }
    let onclick = {
        let state = state.clone();
        let token = token.clone();
        Callback::from(move |_: MouseEvent| {
            let dispatcher = state.dispatcher();
            dispatcher.dispatch(MigrateAction::SignInStarted);
            let token = token.clone();
            spawn_local(async move {
                match endpoints::start_sign_in(&token, side).await {
                    Ok(r) => {
                        if let Some(w) = web_sys::window() {
                            let _ = w.location().assign(&r.authorize_url);
                        }
                    }
                    Err(err) => dispatcher.dispatch(MigrateAction::SignInFailed(err)),
                }
            });
        })
    };
    html! {
        <div class="sign-in">
            <button type="button" id={format!("{side}-sign-in")} class="button wide-button"
                {onclick} disabled={state.signing_in || state.submitting}>
                { offer.label.clone() }
            </button>
            <p class="muted small">{ format!("Sign in as {email}. Your password goes to the provider only; mailferry never sees it.") }</p>
        </div>
    }
}

fn copied_sentence(status: &MigrationStatus) -> String {
    let n = status.progress.messages_done;
    format!(
        "{} {} copied. Sign in to {} and look for your folders and mail.",
        crate::format::count(n),
        if n == 1 {
            "message was"
        } else {
            "messages were"
        },
        status.target_email
    )
}

/// How mail apps name the connection security.
fn security_label(s: Security) -> &'static str {
    match s {
        Security::Tls => "SSL/TLS",
        Security::Starttls => "STARTTLS",
        Security::Plaintext => "None",
    }
}

fn status_title(state: UserState) -> &'static str {
    match state {
        UserState::New | UserState::EmailSent | UserState::Scheduled => "Your copy is queued",
        UserState::Working => "Copying your mail",
        UserState::Completed | UserState::Verified => "Your mail has been copied",
        UserState::CutOver => "You have moved to your new mailbox",
        UserState::Failed => "The copy stopped",
        UserState::Paused => "The copy is paused",
    }
}

/// Where the user is on the way: queued, copying, done.
fn steps(state: UserState) -> Html {
    let at = match state {
        UserState::New | UserState::EmailSent | UserState::Scheduled | UserState::Paused => 0,
        UserState::Working | UserState::Failed => 1,
        UserState::Completed | UserState::Verified | UserState::CutOver => 2,
    };
    let finished = at == 2;
    let step = |i: usize, label: &str| {
        let class = match i.cmp(&at) {
            std::cmp::Ordering::Less => "done",
            std::cmp::Ordering::Equal if finished => "done current",
            std::cmp::Ordering::Equal => "current",
            std::cmp::Ordering::Greater => "todo",
        };
        let mark = if i < at || finished {
            "✓".to_owned()
        } else {
            (i + 1).to_string()
        };
        html! {
            <li class={classes!("step", class)} aria-current={(i == at).then_some("step")}>
                <span class="step-dot" aria-hidden="true">{ mark }</span>
                <span class="step-label">{ label.to_owned() }</span>
            </li>
        }
    };
    html! {
        <ol class="progress-steps" aria-label="Progress of the move">
            { step(0, "Queued") }
            { step(1, "Copying") }
            { step(2, "Done") }
        </ol>
    }
}

fn status_view(state: &MigrateState, status: &MigrationStatus) -> Html {
    let finished = matches!(status.state, UserState::Completed | UserState::Verified);
    let kind = match status.state {
        UserState::Completed | UserState::Verified => AlertKind::Success,
        UserState::Failed => AlertKind::Error,
        _ => AlertKind::Info,
    };
    html! {
        <>
            <section class="card" aria-live="polite">
                { steps(status.state) }
                { route(&status.source_email, &status.target_email) }
                { alert(kind, status_message(status.state)) }
                if !finished {
                    { progress_view(&status.progress, status.state == UserState::Working, false) }
                    <p class="muted small">{ "This page updates by itself. You can close it at any time: the copy continues." }</p>
                }
                if let Some(err) = &state.error {
                    <p class="muted small">{ err.clone() }</p>
                }
            </section>
            if finished {
                <section class="card" aria-labelledby="new-heading">
                    <h2 id="new-heading">{ "Check your new mailbox" }</h2>
                    <p>
                        { copied_sentence(status) }
                    </p>
                    if let Some(web) = status.new_account.as_ref().and_then(|a| a.web_sign_in.clone()) {
                        <p>
                            { "Open your new mailbox at " }
                            <a href={web.clone()} rel="noopener noreferrer">{ web.clone() }</a>
                            { format!(" and sign in as {}.", status.target_email) }
                        </p>
                        <p class="muted small">{ "Mail apps on your computer and phone sign in with the same account: add it as a Microsoft or Google account, no server settings needed." }</p>
                    } else if let Some(account) = &status.new_account {
                        <p>{ "If your mail app asks for settings, use these:" }</p>
                        <dl class="settings">
                            <div><dt>{ "Email address" }</dt><dd>{ &account.email }</dd></div>
                            <div><dt>{ "Incoming server (IMAP)" }</dt><dd>{ &account.imap_host }</dd></div>
                            <div><dt>{ "Port" }</dt><dd>{ account.imap_port }</dd></div>
                            <div><dt>{ "Security" }</dt><dd>{ security_label(account.security) }</dd></div>
                            <div><dt>{ "User name" }</dt><dd>{ &account.email }</dd></div>
                        </dl>
                    }
                </section>
            }
        </>
    }
}
