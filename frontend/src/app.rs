//! Routes and the root component.

use crate::pages::{
    LoginPage, MigratePage, NotFound, OutboxPage, ProjectFormPage, ProjectPage, ProjectsPage,
    UserPage,
};
use yew::prelude::*;
use yew_router::prelude::*;

#[derive(Debug, Clone, PartialEq, Routable)]
pub enum Route {
    #[at("/")]
    Login,
    #[at("/projects")]
    Projects,
    #[at("/projects/new")]
    NewProject,
    #[at("/projects/:id")]
    Project { id: String },
    #[at("/projects/:id/edit")]
    EditProject { id: String },
    #[at("/projects/:id/users/:user")]
    User { id: String, user: String },
    #[at("/outbox")]
    Outbox,
    #[at("/migrate/:token")]
    Migrate { token: String },
    #[not_found]
    #[at("/404")]
    NotFound,
}

fn switch(route: Route) -> Html {
    // Ids in the path are checked here once; a malformed one is a page that does not exist.
    let uuid = |s: &str| uuid::Uuid::parse_str(s).ok();
    match route {
        Route::Login => html! { <LoginPage /> },
        Route::Projects => html! { <ProjectsPage /> },
        Route::NewProject => html! { <ProjectFormPage id={None::<uuid::Uuid>} /> },
        Route::Project { id } => match uuid(&id) {
            // Keyed by id: another project gets a fresh page state, not this one's.
            Some(id) => html! { <ProjectPage key={id.to_string()} {id} /> },
            None => html! { <NotFound /> },
        },
        Route::EditProject { id } => match uuid(&id) {
            Some(id) => html! { <ProjectFormPage key={id.to_string()} id={Some(id)} /> },
            None => html! { <NotFound /> },
        },
        Route::User { id, user } => match (uuid(&id), uuid(&user)) {
            (Some(project), Some(user)) => {
                html! { <UserPage key={user.to_string()} {project} {user} /> }
            }
            _ => html! { <NotFound /> },
        },
        Route::Outbox => html! { <OutboxPage /> },
        Route::Migrate { token } => {
            let key = token.clone();
            html! { <MigratePage {key} {token} /> }
        }
        Route::NotFound => html! { <NotFound /> },
    }
}

#[component]
pub fn App() -> Html {
    html! {
        <BrowserRouter>
            <Switch<Route> render={switch} />
        </BrowserRouter>
    }
}
