//! `/projects/{id}/users/{uid}`: one user's copy in detail — progress per folder, the
//! verification report (source against target per folder), skipped messages with their reasons,
//! and the event log. Refreshed every two seconds while the copy runs.

use crate::api::endpoints;
use crate::app::Route;
use crate::components::{
    AlertKind, Section, Shell, alert, bar, progress_view, signed_out, state_chip,
};
use crate::format;
use crate::hooks::use_delayed_task;
use crate::state::project::action_label;
use crate::state::user_detail::{
    Preflight, UserDetailAction, UserDetailState, VerifySummary, actions_for, altered_items,
    skipped_count, skipped_items,
};
use contract::{BulkAction, FolderView, UserDetail, UserState};
use uuid::Uuid;
use yew::platform::spawn_local;
use yew::prelude::*;
use yew_router::prelude::*;

#[derive(Debug, Properties, PartialEq)]
pub struct UserPageProps {
    pub project: Uuid,
    pub user: Uuid,
}

type Handle = UseReducerHandle<UserDetailState>;

#[component]
pub fn UserPage(props: &UserPageProps) -> Html {
    let state = use_reducer(UserDetailState::default);
    {
        let d = state.dispatcher();
        let (project, user) = (props.project, props.user);
        use_delayed_task(state.polls, state.poll_delay_ms(), move |live| async move {
            let r = endpoints::user_detail(project, user).await;
            if live.get() {
                d.dispatch(match r {
                    Ok(detail) => UserDetailAction::Loaded(detail),
                    Err(e) => UserDetailAction::Failed(e),
                });
            }
        });
    }

    // The project's name for the breadcrumb (the user detail does not carry it).
    let project_name = use_state(|| "Project".to_owned());
    {
        let project_name = project_name.clone();
        use_effect_with(props.project, move |id| {
            let id = *id;
            spawn_local(async move {
                if let Ok(p) = endpoints::project(id).await {
                    project_name.set(p.name);
                }
            });
        });
    }
    let crumbs = html! {
        <>
            <Link<Route> to={Route::Projects}>{ "Projects" }</Link<Route>>
            <span aria-hidden="true">{ " / " }</span>
            <Link<Route> to={Route::Project { id: props.project.to_string() }}>{ (*project_name).clone() }</Link<Route>>
        </>
    };
    let Some(detail) = state.detail.clone() else {
        let body = if state.signed_out {
            html! { { signed_out() } }
        } else if state.missing {
            html! { { alert(AlertKind::Error, "There is no such user in this project. It may have been deleted.") } }
        } else if let Some(e) = &state.error {
            html! { { alert(AlertKind::Error, e.clone()) } }
        } else {
            html! { <p class="muted" role="status">{ "Loading the user…" }</p> }
        };
        return html! {
            <Shell title="User" section={Section::Projects} wide=true crumbs={Some(crumbs)}>{ body }</Shell>
        };
    };
    let u = &detail.user;
    let title = if u.display_name.is_empty() {
        u.source_email.clone()
    } else {
        u.display_name.clone()
    };
    html! {
        <Shell {title} section={Section::Projects} wide=true crumbs={Some(crumbs)}>
            <p class="route lead">
                <span>{ u.source_email.clone() }</span>
                <span aria-hidden="true" class="arrow">{ " → " }</span>
                <span class="visually-hidden">{ " to " }</span>
                <span>{ u.target_email.clone() }</span>
            </p>
            if state.signed_out {
                { signed_out() }
            }
            if let Some(e) = &state.error {
                { alert(AlertKind::Error, e.clone()) }
            }
            { overview(&state, &detail, props.project) }
            { preflight(&state) }
            { folders(&detail.folders) }
            { verification(&state) }
            { skipped(&detail) }
            { altered(&detail) }
            { events(&state) }
        </Shell>
    }
}

fn overview(state: &Handle, detail: &UserDetail, project: Uuid) -> Html {
    let u = &detail.user;
    let button = |action| {
        let d = state.dispatcher();
        let user = u.id;
        let onclick = Callback::from(move |_: MouseEvent| {
            let d = d.clone();
            d.dispatch(UserDetailAction::ActionStarted(action));
            spawn_local(async move {
                match endpoints::user_action(project, user, action).await {
                    Ok(user) => d.dispatch(UserDetailAction::ActionDone(action, user)),
                    Err(e) => d.dispatch(UserDetailAction::ActionFailed(action, e)),
                }
            });
        });
        let running = state.action_running == Some(action);
        html! {
            <button type="button" class="button small" {onclick} disabled={state.action_running.is_some()}>
                { if running { format!("{}…", action_label(action)) } else { action_label(action).to_owned() } }
            </button>
        }
    };
    html! {
        <section class="card" aria-labelledby="overview-heading">
            <div class="card-head">
                <h2 id="overview-heading">{ "Progress" }</h2>
                { state_chip(u.state, u.pass) }
            </div>
            <div aria-live="polite">
                { progress_view(&u.progress, u.state == UserState::Working, true) }
            </div>
            if let Some(err) = &u.last_error {
                if let Some(why) = err.strip_prefix("waiting: ") {
                    // Waiting is the system being polite to a server, not a fault.
                    { alert(AlertKind::Info, match u.waiting_since {
                        Some(since) => format!("Waiting since {}: {why}", format::datetime(since)),
                        None => format!("Waiting: {why}"),
                    }) }
                } else {
                    { alert(AlertKind::Error, format!("Last error: {err}")) }
                }
            }
            <p class="muted small">
                { format!("Updated {}", format::datetime(u.updated_at)) }
                if u.priority > 0 {
                    { format!(" · priority {}", u.priority) }
                }
                if let Some(at) = u.invite_sent_at {
                    { format!(" · invite sent {}", format::datetime(at)) }
                }
                { match (u.has_credentials, u.credentials_until) {
                    (_, Some(until)) => format!(" · passwords stored until {} unless the copy goes on (deleted when verified)", format::datetime(until)),
                    (true, None) => " · signs in with the admin accounts".to_owned(),
                    (false, None) => " · no passwords stored".to_owned(),
                } }
            </p>
            <div class="form-actions" role="group" aria-label="Actions on this user">
                { for actions_for(u.state)
                    .into_iter()
                    .filter(|a| *a != BulkAction::RetrySkipped || state.has_retryable_skips())
                    .map(button) }
                { preflight_button(state, project, u.id) }
            </div>
            if let Some((ok, text)) = &state.notice {
                { alert(if *ok { AlertKind::Success } else { AlertKind::Error }, text.clone()) }
            }
        </section>
    }
}

/// Runs a preflight: both sides logged in to, nothing copied.
fn preflight_button(state: &Handle, project: Uuid, user: Uuid) -> Html {
    let d = state.dispatcher();
    let onclick = Callback::from(move |_: MouseEvent| {
        let d = d.clone();
        d.dispatch(UserDetailAction::PreflightStarted);
        spawn_local(async move {
            match endpoints::preflight(project, user).await {
                Ok(report) => d.dispatch(UserDetailAction::PreflightDone(Preflight(report))),
                Err(e) => d.dispatch(UserDetailAction::PreflightFailed(e)),
            }
        });
    });
    let busy = state.preflight_running || state.action_running.is_some();
    html! {
        <button type="button" class="button small" {onclick} disabled={busy}
            title="Log in to both sides and report what a copy would move and what would not fit; copies nothing">
            { if state.preflight_running { "Preflight…" } else { "Preflight" } }
        </button>
    }
}

/// The last preflight's report: one line, what would not go as planned, and the folders.
fn preflight(state: &Handle) -> Html {
    let Some(r) = &state.preflight else {
        return html! {};
    };
    let problems = r.problems();
    html! {
        <section class="card" aria-labelledby="preflight-heading">
            <h2 id="preflight-heading">{ "Preflight" }</h2>
            <p>{ r.summary() }</p>
            if problems.is_empty() {
                { alert(AlertKind::Success, "Ready: nothing stands in the way") }
            } else {
                <ul class="problems">
                    { for problems.into_iter().map(|p| html! { <li>{ p }</li> }) }
                </ul>
            }
            <ul class="muted small">
                { for r.folders().into_iter().map(|f| html! { <li>{ f }</li> }) }
            </ul>
            <p class="muted small">{ r.capabilities() }</p>
        </section>
    }
}

fn folders(folders: &[FolderView]) -> Html {
    html! {
        <section class="card" aria-labelledby="folders-heading">
            <h2 id="folders-heading">{ "Folders" }</h2>
            if folders.is_empty() {
                <p class="muted">{ "The folders are listed once the copy is planned." }</p>
            } else {
                <div class="table-wrap">
                    <table>
                        <caption class="visually-hidden">{ "Copy progress per folder" }</caption>
                        <thead>
                            <tr>
                                <th scope="col">{ "Folder" }</th>
                                <th scope="col">{ "Messages" }</th>
                                <th scope="col">{ "Size" }</th>
                                <th scope="col">{ "Status" }</th>
                            </tr>
                        </thead>
                        <tbody>
                            { for folders.iter().map(|f| html! {
                                <tr key={f.source_name.clone()}>
                                    <td>
                                        { f.source_name.clone() }
                                        if f.target_name != f.source_name {
                                            <div class="muted small">{ format!("→ {}", f.target_name) }</div>
                                        }
                                    </td>
                                    <td>{ bar(f.copied_messages, f.source_messages, format!("Messages copied in {}", f.source_name), format::of(f.copied_messages, f.source_messages)) }</td>
                                    <td>{ bar(f.copied_bytes, f.source_bytes, format!("Bytes copied in {}", f.source_name), format!("{} of {}", format::bytes(f.copied_bytes), format::bytes(f.source_bytes))) }</td>
                                    <td>{ if f.done { "Done" } else if f.copied_messages > 0 { "Copying" } else { "Waiting" } }</td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                </div>
            }
        </section>
    }
}

fn verification(state: &Handle) -> Html {
    let rows = state.verify_rows();
    let summary = VerifySummary::of(&rows);
    let all_good =
        summary.folders > 0 && summary.checked == summary.folders && summary.missing_messages == 0;
    let opt = |v: Option<u64>, f: fn(u64) -> String| v.map_or_else(|| "—".to_owned(), f);
    html! {
        <section class="card" aria-labelledby="verify-heading">
            <h2 id="verify-heading">{ "Verification" }</h2>
            <p class={classes!("verify-summary", all_good.then_some("ok"))}>
                if all_good { <span aria-hidden="true">{ "✓ " }</span> }
                { summary.sentence() }
            </p>
            if !rows.is_empty() {
                <div class="table-wrap">
                    <table class="verify">
                        <caption class="visually-hidden">{ "Messages and sizes per folder on the source and on the target" }</caption>
                        <thead>
                            <tr>
                                <th scope="col">{ "Folder" }</th>
                                <th scope="col" class="num">{ "Source messages" }</th>
                                <th scope="col" class="num">{ "Target messages" }</th>
                                <th scope="col" class="num">{ "Source size" }</th>
                                <th scope="col" class="num">{ "Target size" }</th>
                                <th scope="col">{ "Result" }</th>
                            </tr>
                        </thead>
                        <tbody>
                            { for rows.iter().map(|r| html! {
                                <tr key={r.source_name.clone()}>
                                    <th scope="row">{ r.source_name.clone() }
                                        if r.target_name != r.source_name {
                                            <div class="muted small">{ format!("→ {}", r.target_name) }</div>
                                        }
                                        if let Some(first) = &r.renamed_from {
                                            <div class="muted small">{ format!("renamed: the target refused {first}") }</div>
                                        }
                                    </th>
                                    <td class="num">{ format::count(r.source_messages) }</td>
                                    <td class="num">{ opt(r.target_messages, format::count) }</td>
                                    <td class="num">{ format::bytes(r.source_bytes) }</td>
                                    <td class="num">{ opt(r.target_bytes, format::bytes) }</td>
                                    <td><span class={r.verdict.class()}>{ r.verdict.label() }</span>
                                        if r.skipped > 0 {
                                            <div class="muted small">{ format!("{} skipped", r.skipped) }</div>
                                        }
                                        if r.altered > 0 {
                                            <div class="verdict verdict-bad small">{ format!("{} of {} read back differ", r.altered, r.content_checked) }</div>
                                        } else if r.content_checked > 0 {
                                            <div class="muted small">{ format!("{} read back, identical", r.content_checked) }</div>
                                        }
                                    </td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                </div>
            }
        </section>
    }
}

fn skipped(detail: &UserDetail) -> Html {
    let items = skipped_items(&detail.folders);
    let total: u64 = detail.folders.iter().map(skipped_count).sum();
    html! {
        <section class="card" aria-labelledby="skipped-heading">
            <h2 id="skipped-heading">{ format!("Skipped messages ({})", format::count(total)) }</h2>
            if total > items.len() as u64 {
                <p class="muted">{ format!("The first {} of each folder are listed.", format::count(1000)) }</p>
            }
            if items.is_empty() {
                <p class="muted">{ "None: every message was copied or is still to come." }</p>
            } else {
                <div class="table-wrap">
                    <table>
                        <thead>
                            <tr>
                                <th scope="col">{ "Folder" }</th>
                                <th scope="col" class="num">{ "UID" }</th>
                                <th scope="col" class="num">{ "Size" }</th>
                                <th scope="col">{ "Reason" }</th>
                            </tr>
                        </thead>
                        <tbody>
                            { for items.iter().map(|(folder, s)| html! {
                                <tr>
                                    <td>{ folder.clone() }</td>
                                    <td class="num">{ s.uid }</td>
                                    <td class="num">{ format::bytes(s.size) }</td>
                                    <td>{ s.reason.clone() }</td>
                                </tr>
                            }) }
                        </tbody>
                    </table>
                </div>
            }
        </section>
    }
}

fn altered(detail: &UserDetail) -> Html {
    let items = altered_items(&detail.folders);
    if items.is_empty() {
        return html! {};
    }
    html! {
        <section class="card" aria-labelledby="altered-heading">
            <h2 id="altered-heading">{ format!("Copies stored differently ({})", format::count(items.len() as u64)) }</h2>
            <p class="muted">{ "The target keeps these messages with other bytes than the source: read back after copying, they differ as described." }</p>
            <div class="table-wrap">
                <table>
                    <thead>
                        <tr>
                            <th scope="col">{ "Folder" }</th>
                            <th scope="col" class="num">{ "UID" }</th>
                            <th scope="col" class="num">{ "Target UID" }</th>
                            <th scope="col">{ "What changed" }</th>
                        </tr>
                    </thead>
                    <tbody>
                        { for items.iter().map(|(folder, a)| html! {
                            <tr>
                                <td>{ folder.clone() }</td>
                                <td class="num">{ a.uid }</td>
                                <td class="num">{ a.target_uid }</td>
                                <td>{ a.change.clone() }</td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </div>
        </section>
    }
}

fn events(state: &Handle) -> Html {
    let events = state.events();
    html! {
        <section class="card" aria-labelledby="events-heading">
            <h2 id="events-heading">{ "Event log" }</h2>
            if events.is_empty() {
                <p class="muted">{ "Nothing has happened yet." }</p>
            } else {
                <ol class="events" reversed=true>
                    { for events.iter().map(|e| html! {
                        <li>
                            <time datetime={format!("{}Z", format::timestamp(e.at).replace(' ', "T"))}>{ format::timestamp(e.at) }</time>
                            <span>{ e.message.clone() }</span>
                        </li>
                    }) }
                </ol>
            }
        </section>
    }
}
