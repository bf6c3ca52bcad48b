//! `/projects`: every migration project with its users counted by state.

use crate::api::endpoints;
use crate::app::Route;
use crate::components::{Alert, AlertKind, Shell};
use crate::state::projects::{ProjectsAction, ProjectsState};
use contract::ProjectView;
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
        ProjectsState::SignedOut => html! {
            <Alert kind={AlertKind::Info}>
                { "You are not signed in, or your session has ended. " }
                <Link<Route> to={Route::Login}>{ "Sign in" }</Link<Route>>
            </Alert>
        },
        ProjectsState::Failed(message) => html! {
            <Alert kind={AlertKind::Error}>{ message.clone() }</Alert>
        },
        ProjectsState::Loaded(projects) if projects.is_empty() => html! {
            <p class="muted">{ "No projects yet." }</p>
        },
        ProjectsState::Loaded(projects) => html! {
            <ul class="cards" aria-label="Projects">
                { for projects.iter().map(project_card) }
            </ul>
        },
    };

    html! {
        <Shell title="Projects">
            <div class="toolbar">
                <button type="button" class="button" onclick={reload} disabled={loading}>{ "Refresh" }</button>
            </div>
            { body }
        </Shell>
    }
}

fn project_card(p: &ProjectView) -> Html {
    let users: u64 = p.users_by_state.values().sum();
    html! {
        <li class="card" key={p.id.to_string()}>
            <h2>{ &p.name }</h2>
            <p class="route">
                <span>{ format!("{}:{}", p.source.host, p.source.port) }</span>
                <span aria-hidden="true">{ " → " }</span>
                <span class="visually-hidden">{ " to " }</span>
                <span>{ format!("{}:{}", p.target.host, p.target.port) }</span>
            </p>
            <p class="muted">{ format!("{users} users · created {}", p.created_at.date()) }</p>
            <ul class="chips" aria-label="Users by state">
                { for p.users_by_state.iter().filter(|(_, n)| **n > 0).map(|(state, n)| html! {
                    <li class={classes!("chip", format!("chip-{}", state.as_str()))}>
                        { format!("{} {n}", state.label()) }
                    </li>
                }) }
            </ul>
        </li>
    }
}
