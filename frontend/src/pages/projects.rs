//! `/projects`: every migration project with its users counted by state.

use crate::api::endpoints;
use crate::app::Route;
use crate::components::{AlertKind, Section, Shell, alert, signed_out};
use crate::format;
use crate::state::projects::{ProjectsAction, ProjectsState};
use contract::{ConnectorView, ProjectView, Security};
use yew::platform::spawn_local;
use yew::prelude::*;
use yew_router::prelude::*;

#[component]
pub fn ProjectsPage() -> Html {
    let state = use_reducer(ProjectsState::default);

    // Fetch whenever the state (re)enters Loading: on mount and after Refresh.
    let loading = *state == ProjectsState::Loading;
    {
        let dispatcher = state.dispatcher();
        use_effect_with(loading, move |loading| {
            if *loading {
                spawn_local(async move {
                    match endpoints::projects().await {
                        Ok(projects) => dispatcher.dispatch(ProjectsAction::Loaded(projects)),
                        Err(err) => dispatcher.dispatch(ProjectsAction::Failed(err)),
                    }
                });
            }
        });
    }
    let reload = {
        let dispatcher = state.dispatcher();
        Callback::from(move |_: MouseEvent| dispatcher.dispatch(ProjectsAction::Reload))
    };

    let body = match &*state {
        ProjectsState::Loading => {
            html! { <p class="muted" role="status">{ "Loading projects…" }</p> }
        }
        ProjectsState::SignedOut => html! { { signed_out() } },
        ProjectsState::Failed(message) => html! {
            { alert(AlertKind::Error, message.clone()) }
        },
        ProjectsState::Loaded(projects) if projects.is_empty() => html! {
            <div class="card empty">
                <h2>{ "No projects yet" }</h2>
                <p>{ "A project moves a group of mailboxes from one mail system to another. Start by telling mailferry where the mail is now and where it goes." }</p>
                <Link<Route> to={Route::NewProject} classes="button primary">{ "Create the first project" }</Link<Route>>
            </div>
        },
        ProjectsState::Loaded(projects) => html! {
            <ul class="cards" aria-label="Projects">
                { for projects.iter().map(project_card) }
            </ul>
        },
    };

    let actions = html! {
        <>
            <button type="button" class="button" onclick={reload} disabled={loading}>{ "Refresh" }</button>
            <Link<Route> to={Route::NewProject} classes="button primary">{ "New project" }</Link<Route>>
        </>
    };
    html! {
        <Shell title="Projects" section={Section::Projects} wide=true actions={Some(actions)}>
            { body }
        </Shell>
    }
}

pub fn security_label(s: Security) -> &'static str {
    match s {
        Security::Tls => "TLS",
        Security::Starttls => "STARTTLS",
        Security::Plaintext => "no encryption",
    }
}

pub fn endpoint(c: &ConnectorView) -> String {
    format!("{}:{} ({})", c.host, c.port, security_label(c.security))
}

fn project_card(p: &ProjectView) -> Html {
    let users: u64 = p.users_by_state.values().sum();
    let done: u64 = [
        contract::UserState::Completed,
        contract::UserState::Verified,
    ]
    .iter()
    .filter_map(|s| p.users_by_state.get(s))
    .sum();
    html! {
        <li class="card project-card" key={p.id.to_string()}>
            <h2>
                <Link<Route> to={Route::Project { id: p.id.to_string() }}>{ &p.name }</Link<Route>>
            </h2>
            <p class="route">
                <span>{ endpoint(&p.source) }</span>
                <span aria-hidden="true" class="arrow">{ " → " }</span>
                <span class="visually-hidden">{ " to " }</span>
                <span>{ endpoint(&p.target) }</span>
            </p>
            <p class="muted small">
                { format!("{} · {} copied · created {}", format::plural(users, "user", "users"), format::count(done), p.created_at.date()) }
            </p>
            <progress class="bar" max={users.max(1).to_string()} value={done.to_string()} aria-label={format!("Users copied in {}", p.name)} />
            <ul class="chips" aria-label="Users by state">
                { for p.users_by_state.iter().filter(|(_, n)| **n > 0).map(|(state, n)| html! {
                    <li class={classes!("chip", format!("chip-{}", state.as_str()))}>
                        { format!("{} {}", state.label(), format::count(*n)) }
                    </li>
                }) }
            </ul>
        </li>
    }
}
