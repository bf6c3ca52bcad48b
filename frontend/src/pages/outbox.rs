//! `/outbox` (local mode): the mails the server would have sent, newest first, each invite with
//! its link ready to copy, so the admin can hand links out by other means.

use crate::api::endpoints;
use crate::components::{AlertKind, Section, Shell, alert, signed_out};
use crate::format;
use crate::state::outbox::{OutboxAction, OutboxState, invite_link};
use contract::OutboxMail;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

#[component]
pub fn OutboxPage() -> Html {
    let state = use_reducer(OutboxState::default);
    let loading = *state == OutboxState::Loading;
    {
        let d = state.dispatcher();
        use_effect_with(loading, move |loading| {
            if *loading {
                spawn_local(async move {
                    match endpoints::outbox().await {
                        Ok(mails) => d.dispatch(OutboxAction::Loaded(mails)),
                        Err(e) => d.dispatch(OutboxAction::Failed(e)),
                    }
                });
            }
        });
    }
    let reload = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(OutboxAction::Reload))
    };
    let body = match &*state {
        OutboxState::Loading => {
            html! { <p class="muted" role="status">{ "Loading the outbox…" }</p> }
        }
        OutboxState::SignedOut => html! { { signed_out() } },
        OutboxState::NoOutbox => html! {
            { alert(AlertKind::Info, "This server delivers invitations by email and keeps no outbox.") }
        },
        OutboxState::Failed(m) => html! { { alert(AlertKind::Error, m.clone()) } },
        OutboxState::Loaded { mails, .. } if mails.is_empty() => html! {
            <p class="muted">{ "No mail yet. Invitations appear here when users are started." }</p>
        },
        OutboxState::Loaded { mails, copied } => html! {
            <ul class="outbox" aria-label="Mails">
                { for mails.iter().map(|m| mail(&state, m, copied.as_deref() == Some(m.id.as_str()))) }
            </ul>
        },
    };
    let actions = html! {
        <button type="button" class="button" onclick={reload} disabled={loading}>{ "Refresh" }</button>
    };
    html! {
        <Shell title="Outbox" section={Section::Outbox} wide=true actions={Some(actions)}>
            <p class="muted">
                { "Without a mail server configured, mailferry keeps the invitations here instead of sending them. Copy a link and pass it to its user, for example in a chat message." }
            </p>
            { body }
        </Shell>
    }
}

fn mail(state: &UseReducerHandle<OutboxState>, m: &OutboxMail, copied: bool) -> Html {
    let link = invite_link(&m.text).map(str::to_owned);
    let link_id = format!("link-{}", m.id);
    let copy = {
        let d = state.dispatcher();
        let id = m.id.clone();
        let link = link.clone().unwrap_or_default();
        Callback::from(move |_: MouseEvent| {
            let (d, id, link) = (d.clone(), id.clone(), link.clone());
            spawn_local(async move {
                let Some(window) = web_sys::window() else {
                    return;
                };
                let promise = window.navigator().clipboard().write_text(&link);
                if wasm_bindgen_futures::JsFuture::from(promise).await.is_ok() {
                    d.dispatch(OutboxAction::Copied(id));
                }
            });
        })
    };
    // Focusing the link's box selects it, for a manual copy where the clipboard is not allowed.
    let select_all = Callback::from(|e: FocusEvent| {
        e.target_unchecked_into::<HtmlInputElement>().select();
    });
    html! {
        <li class="card mail" key={m.id.clone()}>
            <div class="mail-head">
                <h2 class="mail-subject">{ m.subject.clone() }</h2>
                <span class="muted small">{ format::datetime(m.sent_at) }</span>
            </div>
            <p class="small">{ "To " }<strong>{ m.to.clone() }</strong></p>
            if let Some(link) = link {
                <div class="copy-row">
                    <label for={link_id.clone()} class="visually-hidden">{ format!("Invite link for {}", m.to) }</label>
                    <input id={link_id} class="link-box" type="text" readonly=true value={link} onfocus={select_all} />
                    <button type="button" class="button small" onclick={copy}>{ if copied { "Copied ✓" } else { "Copy link" } }</button>
                </div>
            }
            <details>
                <summary>{ "Show the whole mail" }</summary>
                <pre class="mail-text">{ m.text.clone() }</pre>
            </details>
        </li>
    }
}
