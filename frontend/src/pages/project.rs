//! `/projects/{id}`: the users of one project and everything done to them. The table, counts and
//! throughput chart refresh every two seconds; the add-user form and the CSV import are separate
//! components with their own state, so a refresh never touches what is being typed.

use crate::api::{ApiError, endpoints};
use crate::app::Route;
use crate::components::{
    AlertKind, Checkbox, PasswordField, Section, Shell, TextField, alert, bar, signed_out,
    state_chip, throughput_chart,
};
use crate::format;
use crate::hooks::{now_ms, use_delayed_task};
use crate::pages::audit::AuditTrail;
use crate::pages::import::ImportPanel;
use crate::pages::lifecycle::Lifecycle;
use crate::pages::projects::endpoint;
use crate::state::add_user::{AddUserAction, AddUserState, UserField};
use crate::state::project::{
    BULK_ACTIONS, PAGE_SIZE, Polled, ProjectPageAction, ProjectPageState, SEARCH_DEBOUNCE_MS,
    action_label,
};
use contract::{AuthView, InviteTo, ProjectView, UserState, UserView};
use uuid::Uuid;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;
use yew_router::prelude::*;

#[derive(Debug, Properties, PartialEq)]
pub struct ProjectPageProps {
    pub id: Uuid,
}

type Handle = UseReducerHandle<ProjectPageState>;

#[component]
pub fn ProjectPage(props: &ProjectPageProps) -> Html {
    let state = use_reducer(ProjectPageState::default);
    let id = props.id;

    // Polling: the project (counts), the current page of users and the users being copied
    // (for the throughput chart), together, so the page re-renders once per poll.
    {
        let dispatcher = state.dispatcher();
        let query = state.query();
        let seq = state.seq;
        use_delayed_task(
            (state.polls, seq),
            state.poll_delay_ms(),
            move |live| async move {
                let result = async {
                    let project = endpoints::project(id).await?;
                    let page = endpoints::users(id, &query.query_string()).await?;
                    let working = if project
                        .users_by_state
                        .get(&UserState::Working)
                        .is_some_and(|n| *n > 0)
                    {
                        endpoints::users(id, "state=working&limit=500").await?.items
                    } else {
                        vec![]
                    };
                    Ok::<_, ApiError>(Polled {
                        seq,
                        at_ms: now_ms(),
                        project,
                        page,
                        working,
                    })
                }
                .await;
                if live.get() {
                    dispatcher.dispatch(match result {
                        Ok(polled) => ProjectPageAction::Polled(Box::new(polled)),
                        Err(e) => ProjectPageAction::PollFailed(e),
                    });
                }
            },
        );
    }
    // The search is sent after a pause in typing.
    {
        let dispatcher = state.dispatcher();
        let text = state.search_text.clone();
        use_delayed_task(
            state.search_text.clone(),
            Some(SEARCH_DEBOUNCE_MS),
            move |_| async move { dispatcher.dispatch(ProjectPageAction::ApplySearch(text)) },
        );
    }

    let refresh = {
        let dispatcher = state.dispatcher();
        use_callback((), move |(), _| {
            dispatcher.dispatch(ProjectPageAction::Refresh)
        })
    };

    let crumbs = html! { <Link<Route> to={Route::Projects}>{ "Projects" }</Link<Route>> };
    let Some(project) = state.project.clone() else {
        let body = if state.signed_out {
            html! { { signed_out() } }
        } else if state.missing {
            html! { { alert(AlertKind::Error, "There is no such project. It may have been deleted.") } }
        } else if let Some(e) = &state.error {
            html! { { alert(AlertKind::Error, e.clone()) } }
        } else {
            html! { <p class="muted" role="status">{ "Loading the project…" }</p> }
        };
        return html! {
            <Shell title="Project" section={Section::Projects} wide=true crumbs={Some(crumbs)}>
                { body }
            </Shell>
        };
    };

    let actions = html! {
        <Link<Route> to={Route::EditProject { id: id.to_string() }} classes="button">{ "Edit settings" }</Link<Route>>
    };
    html! {
        <Shell title={project.name.clone()} section={Section::Projects} wide=true crumbs={Some(crumbs)} actions={Some(actions)}>
            <p class="route lead">
                <span>{ endpoint(&project.source) }</span>
                <span aria-hidden="true" class="arrow">{ " → " }</span>
                <span class="visually-hidden">{ " to " }</span>
                <span>{ endpoint(&project.target) }</span>
            </p>
            <p class="muted small">{ invites(&project) }</p>
            if let Some(text) = &project.preflight {
                <p class="muted small" id="preflight-totals">{ format!("Preflight: {text}") }</p>
            }
            if project.sync.every_hours.is_some() || project.sync.cutover_at.is_some() {
                <p class="muted small" id="sync-plan">{ sync_plan(&project) }</p>
            }
            if !project.connections.is_empty() {
                <p class="muted small" id="connections-now">{ crate::state::project::connections_now(&project.connections) }</p>
            }
            if let Some(at) = project.closed_at {
                { alert(AlertKind::Info, format!("This project was closed on {}: its passwords are deleted and nothing new starts until it is reopened.", format::datetime(at))) }
            }
            if state.signed_out {
                { signed_out() }
            }
            if let Some(e) = &state.error {
                { alert(AlertKind::Error, e.clone()) }
            }
            { summary(&state) }
            <section class="card" aria-labelledby="throughput-heading">
                <h2 id="throughput-heading">{ "Throughput" }</h2>
                { throughput_chart(&state.samples) }
            </section>
            { users_card(&state, id) }
            <div class="columns">
                <AddUserForm project={id} asks={asks_passwords(&project)} on_added={refresh.clone()} />
                <ImportPanel project={id} on_imported={refresh.clone()} />
            </div>
            <AuditTrail project={id} />
            <Lifecycle project={project.clone()} on_changed={refresh} />
        </Shell>
    }
}

/// "Finished mailboxes are kept in sync every 6 h · cutover 15 Jan 2027, 18:00".
/// Once the cutover time has passed, how many users are behind it.
fn sync_plan(project: &ProjectView) -> String {
    let plan = &project.sync;
    let mut text = plan
        .every_hours
        .map(|h| format!("Finished mailboxes are kept in sync every {h} h. "))
        .unwrap_or_default();
    if let Some(t) = plan.cutover_at {
        let all: u64 = project.users_by_state.values().sum();
        let cut = project.users_by_state.get(&UserState::CutOver).copied();
        // Users' own times win; once the project's has passed, who is not cut over is behind.
        let behind = if (t.unix_timestamp() as f64) * 1000.0 > crate::hooks::now_ms() {
            String::new()
        } else {
            format!(": passed, {} behind", all - cut.unwrap_or(0))
        };
        text += &format!("Cutover {}{behind}", format::datetime(t));
    }
    text
}

/// Which sides take per-user passwords, for the add-user form.
fn asks_passwords(p: &ProjectView) -> (bool, bool) {
    (
        matches!(p.source.auth, AuthView::PerUser),
        matches!(p.target.auth, AuthView::PerUser),
    )
}

fn summary(state: &ProjectPageState) -> Html {
    let total = state.total_users();
    let figure = |label: &str, value: String, class: &'static str| {
        html! {
            <div class={classes!("figure", class)}>
                <dt>{ label.to_owned() }</dt>
                <dd>{ value }</dd>
            </div>
        }
    };
    let waiting = state.count_in(UserState::New) + state.count_in(UserState::EmailSent);
    let copying = state.count_in(UserState::Scheduled) + state.count_in(UserState::Working);
    html! {
        <dl class="figures" aria-label="Project summary">
            { figure("Users", format::count(total), "") }
            { figure("Not started or invited", format::count(waiting), "") }
            { figure("Queued or copying", format::count(copying), "figure-info") }
            { figure("Ready to verify", format::count(state.count_in(UserState::Completed)), "figure-ok") }
            { figure("Verified", format::count(state.count_in(UserState::Verified)), "figure-ok") }
            { figure("Cut over", format::count(state.count_in(UserState::CutOver)), "figure-ok") }
            { figure("Failed", format::count(state.count_in(UserState::Failed)), if state.count_in(UserState::Failed) > 0 { "figure-bad" } else { "" }) }
            { figure("Throughput now", format::rate(state.current_rate()), "") }
        </dl>
    }
}

fn users_card(state: &Handle, id: Uuid) -> Html {
    html! {
        <section class="card" aria-labelledby="users-heading">
            <div class="card-head">
                <h2 id="users-heading">{ "Users" }</h2>
                <a class="button small" href={endpoints::export_url(id)} download="users.csv">{ "Export CSV" }</a>
                <a class="button small" href={endpoints::report_url(id)} download="verification.csv">{ "Verification report" }</a>
                <a class="button small" href={endpoints::preflight_export_url(id)} download="preflight.csv">{ "Preflight CSV" }</a>
            </div>
            { filters(state) }
            <BulkBar state={state.clone()} project={id} />
            { table(state, id) }
            { pager(state) }
        </section>
    }
}

fn filters(state: &Handle) -> Html {
    let chip = |filter: Option<UserState>, label: String| {
        let pressed = state.filter == filter;
        let d = state.dispatcher();
        let onclick =
            Callback::from(move |_: MouseEvent| d.dispatch(ProjectPageAction::Filter(filter)));
        html! {
            <button type="button" class={classes!("filter", pressed.then_some("active"))} aria-pressed={pressed.to_string()} {onclick}>
                { label }
            </button>
        }
    };
    let on_search = {
        let d = state.dispatcher();
        Callback::from(move |e: InputEvent| {
            d.dispatch(ProjectPageAction::EditSearch(
                e.target_unchecked_into::<HtmlInputElement>().value(),
            ))
        })
    };
    html! {
        <div class="filters">
            <div class="filter-group" role="group" aria-label="Filter by state">
                { chip(None, format!("All {}", format::count(state.total_users()))) }
                { for UserState::ALL.iter().map(|s| chip(Some(*s), format!("{} {}", s.label(), format::count(state.count_in(*s))))) }
            </div>
            <div class="search">
                <label for="user-search" class="visually-hidden">{ "Search users" }</label>
                <input
                    id="user-search"
                    type="search"
                    placeholder="Search by address or name"
                    autocomplete="off"
                    value={state.search_text.clone()}
                    oninput={on_search}
                />
            </div>
        </div>
    }
}

#[derive(Debug, Properties, PartialEq)]
struct BulkBarProps {
    state: Handle,
    project: Uuid,
}

/// The bulk actions: on the selected users, or on every user of the project.
#[component]
fn BulkBar(props: &BulkBarProps) -> Html {
    let state = &props.state;
    let all = use_state(|| false);
    let selected = state.selected.len();
    let total = state.total_users();
    let busy = state.bulk_running.is_some();
    let target = if *all {
        format!("all {}", format::plural(total, "user", "users"))
    } else {
        format!("{} selected", format::count(selected as u64))
    };
    let button = |action| {
        let running = state.bulk_running == Some(action);
        let state = state.clone();
        let all = *all;
        let project = props.project;
        let onclick = Callback::from(move |_: MouseEvent| {
            let Some(selection) = state.selection(all) else {
                return;
            };
            let d = state.dispatcher();
            d.dispatch(ProjectPageAction::BulkStarted(action));
            spawn_local(async move {
                match endpoints::bulk(project, action, &selection).await {
                    Ok(r) => d.dispatch(ProjectPageAction::BulkDone(action, r)),
                    Err(e) => d.dispatch(ProjectPageAction::BulkFailed(action, e)),
                }
            });
        });
        let disabled = busy || (!all && selected == 0);
        html! {
            <button type="button" class="button small" {onclick} {disabled}>
                { if running { format!("{}…", action_label(action)) } else { action_label(action).to_owned() } }
            </button>
        }
    };
    let on_all = {
        let all = all.clone();
        Callback::from(move |on: bool| all.set(on))
    };
    let clear = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(ProjectPageAction::ClearSelection))
    };
    let dismiss = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(ProjectPageAction::DismissNotice))
    };
    html! {
        <>
            <div class="bulk" role="group" aria-label="Actions on users">
                <span class="bulk-target" aria-live="polite">{ format!("Apply to {target}:") }</span>
                <div class="bulk-buttons">
                    { for BULK_ACTIONS.iter().map(|a| button(*a)) }
                </div>
                <div class="bulk-scope">
                    <Checkbox id="bulk-all" label={format!("All users in the project ({})", format::count(total))} checked={*all} onchange={on_all} />
                    if selected > 0 && !*all {
                        <button type="button" class="link-button" onclick={clear}>{ "Clear selection" }</button>
                    }
                </div>
            </div>
            if let Some(notice) = &state.notice {
                <div class={classes!("alert", if notice.ok { "alert-success" } else { "alert-error" })} role={if notice.ok { "status" } else { "alert" }}>
                    <p class="notice-text">{ notice.text.clone() }</p>
                    if !notice.failures.is_empty() {
                        <ul class="failures">
                            { for notice.failures.iter().map(|f| html! { <li>{ f.clone() }</li> }) }
                        </ul>
                    }
                    <button type="button" class="link-button" onclick={dismiss}>{ "Dismiss" }</button>
                </div>
            }
        </>
    }
}

fn table(state: &Handle, project: Uuid) -> Html {
    let Some(page) = &state.page else {
        return html! { <p class="muted" role="status">{ "Loading users…" }</p> };
    };
    if page.items.is_empty() {
        let text = if state.total_users() == 0 {
            "No users yet: add one below, or import a CSV file."
        } else {
            "No users match this filter or search."
        };
        return html! { <p class="muted empty-table">{ text }</p> };
    }
    let all_on_page = state.page_selected();
    let toggle_page = {
        let d = state.dispatcher();
        Callback::from(move |_: Event| d.dispatch(ProjectPageAction::TogglePage(!all_on_page)))
    };
    html! {
        <div class={classes!("table-wrap", (!state.is_current()).then_some("stale"))} aria-busy={(!state.is_current()).to_string()}>
            <table class="users">
                <caption class="visually-hidden">{ "Users of the project, with their copy progress" }</caption>
                <thead>
                    <tr>
                        <th scope="col" class="select">
                            <input type="checkbox" aria-label="Select every user on this page" checked={all_on_page} onchange={toggle_page} />
                        </th>
                        <th scope="col">{ "User" }</th>
                        <th scope="col">{ "State" }</th>
                        <th scope="col">{ "Messages" }</th>
                        <th scope="col">{ "Size" }</th>
                        <th scope="col">{ "Speed" }</th>
                        <th scope="col">{ "Time left" }</th>
                        <th scope="col">{ "Passwords" }</th>
                        <th scope="col">{ "Last error" }</th>
                    </tr>
                </thead>
                <tbody>
                    { for page.items.iter().map(|u| row(state, project, u)) }
                </tbody>
            </table>
        </div>
    }
}

fn row(state: &Handle, project: Uuid, u: &UserView) -> Html {
    let selected = state.selected.contains(&u.id);
    let toggle = {
        let d = state.dispatcher();
        let id = u.id;
        Callback::from(move |_: Event| d.dispatch(ProjectPageAction::Toggle(id)))
    };
    let p = &u.progress;
    let name = if u.display_name.is_empty() {
        u.source_email.clone()
    } else {
        u.display_name.clone()
    };
    let copying = u.state == UserState::Working;
    html! {
        <tr key={u.id.to_string()} class={classes!(selected.then_some("selected"))}>
            <td class="select">
                <input type="checkbox" aria-label={format!("Select {}", u.source_email)} checked={selected} onchange={toggle} />
            </td>
            <td class="who">
                <Link<Route> to={Route::User { id: project.to_string(), user: u.id.to_string() }}>{ name }</Link<Route>>
                <div class="muted small addr">
                    { u.source_email.clone() }<span aria-hidden="true">{ " → " }</span><span class="visually-hidden">{ " to " }</span>{ u.target_email.clone() }
                </div>
            </td>
            <td>{ state_chip(u.state, u.pass) }</td>
            <td>
                { bar(p.messages_done, p.messages_total, format!("Messages copied for {}", u.source_email), format::of(p.messages_done, p.messages_total)) }
            </td>
            <td>
                { bar(p.bytes_done, p.bytes_total, format!("Bytes copied for {}", u.source_email), format!("{} of {}", format::bytes(p.bytes_done), format::bytes(p.bytes_total))) }
            </td>
            <td class="num">{ if copying { format::rate(p.throughput_bps) } else { "—".into() } }</td>
            <td class="num">{ match (copying, p.eta_seconds) { (true, Some(s)) => format::eta(s), _ => "—".into() } }</td>
            <td class="small">{ passwords(u) }</td>
            <td class="error-cell">{ u.last_error.clone().unwrap_or_default() }</td>
        </tr>
    }
}

fn pager(state: &Handle) -> Html {
    let Some((first, last, total)) = state.range() else {
        return html! {};
    };
    let go = |offset: u64| {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(ProjectPageAction::GoTo(offset)))
    };
    html! {
        <nav class="pager" aria-label="Pages of users">
            <span aria-live="polite">{ format!("{first}–{last} of {}", format::count(total)) }</span>
            <button type="button" class="button small" disabled={!state.has_previous()} onclick={go(state.offset.saturating_sub(PAGE_SIZE))}>
                { "Previous" }
            </button>
            <button type="button" class="button small" disabled={!state.has_next()} onclick={go(state.offset + PAGE_SIZE)}>
                { "Next" }
            </button>
        </nav>
    }
}

#[derive(Debug, Properties, PartialEq)]
struct AddUserProps {
    project: Uuid,
    /// Whether the source and the target take per-user passwords.
    asks: (bool, bool),
    on_added: Callback<()>,
}

#[component]
fn AddUserForm(props: &AddUserProps) -> Html {
    let state = use_reducer(AddUserState::default);
    let edit = |field: UserField| {
        let d = state.dispatcher();
        Callback::from(move |v| d.dispatch(AddUserAction::Edit(field, v)))
    };
    let onsubmit = {
        let state = state.clone();
        let project = props.project;
        let on_added = props.on_added.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            // Read before dispatching: in Yew 0.23 the handle shows the new state at once.
            let (input, busy) = (state.to_input(), state.saving);
            let d = state.dispatcher();
            d.dispatch(AddUserAction::Submit);
            let (Some(input), false) = (input, busy) else {
                return;
            };
            let on_added = on_added.clone();
            spawn_local(async move {
                match endpoints::add_user(project, &input).await {
                    Ok(user) => {
                        d.dispatch(AddUserAction::Added(Box::new(user)));
                        on_added.emit(());
                    }
                    Err(e) => d.dispatch(AddUserAction::Failed(e)),
                }
            });
        })
    };
    let (src_pw, tgt_pw) = props.asks;
    html! {
        <section class="card" aria-labelledby="add-user-heading">
            <h2 id="add-user-heading">{ "Add a user" }</h2>
            <form {onsubmit} novalidate=true aria-busy={state.saving.to_string()}>
                if let Some(email) = &state.added {
                    { alert(AlertKind::Success, format!("Added {email}. Start it from the table when ready.")) }
                }
                if let Some(err) = &state.error {
                    { alert(AlertKind::Error, err.clone()) }
                }
                <TextField id={UserField::SourceEmail.id()} label="Current address (source)" kind="email" autocomplete="off"
                    value={state.source_email.clone()} oninput={edit(UserField::SourceEmail)}
                    error={state.field_error(UserField::SourceEmail)} required=true />
                <TextField id={UserField::TargetEmail.id()} label="New address (target)" kind="email" autocomplete="off"
                    value={state.target_email.clone()} oninput={edit(UserField::TargetEmail)}
                    error={state.field_error(UserField::TargetEmail)} required=true />
                <TextField id={UserField::DisplayName.id()} label="Name" autocomplete="off"
                    value={state.display_name.clone()} oninput={edit(UserField::DisplayName)}
                    error={state.field_error(UserField::DisplayName)} />
                <TextField id={UserField::Priority.id()} label="Priority" inputmode="numeric" autocomplete="off"
                    hint="0 to 9: where users wait for a server's connections, higher goes first"
                    value={state.priority.clone()} oninput={edit(UserField::Priority)}
                    error={state.field_error(UserField::Priority)} />
                if src_pw || tgt_pw {
                    <p class="hint">{ "Leave the passwords empty to invite the user to enter them." }</p>
                }
                if src_pw {
                    <PasswordField id={UserField::SourcePassword.id()} label="Source password" autocomplete="off" required=false
                        value={state.source_password.clone()} oninput={edit(UserField::SourcePassword)}
                        error={state.field_error(UserField::SourcePassword)} />
                }
                if tgt_pw {
                    <PasswordField id={UserField::TargetPassword.id()} label="Target password" autocomplete="off" required=false
                        value={state.target_password.clone()} oninput={edit(UserField::TargetPassword)}
                        error={state.field_error(UserField::TargetPassword)} />
                }
                <button type="submit" class="button primary" disabled={state.saving}>
                    { if state.saving { "Adding…" } else { "Add user" } }
                </button>
            </form>
        </section>
    }
}

/// Whether the user's passwords are stored, and until when if nothing happens.
fn passwords(u: &UserView) -> String {
    match (u.has_credentials, u.credentials_until) {
        (_, Some(until)) => format!("held until {}", until.date()),
        (true, None) => "admin account".into(),
        (false, None) => "—".into(),
    }
}

/// Where the project's invitations go, in words.
fn invites(p: &ProjectView) -> &'static str {
    match p.invite_to {
        InviteTo::Source => "Invitations go to the users' current addresses",
        InviteTo::Target => "Invitations go to the users' new addresses",
        InviteTo::None => "This project sends no invitations",
    }
}
