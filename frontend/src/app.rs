//! Routes and the root component.

use crate::pages::{LoginPage, MigratePage, NotFound, ProjectsPage};
use yew::prelude::*;
use yew_router::prelude::*;

#[derive(Debug, Clone, PartialEq, Routable)]
pub enum Route {
    #[at("/")]
    Login,
    #[at("/projects")]
    Projects,
    #[at("/migrate/:token")]
    Migrate { token: String },
    #[not_found]
    #[at("/404")]
    NotFound,
}

fn switch(route: Route) -> Html {
    match route {
        Route::Login => html! { <LoginPage /> },
        Route::Projects => html! { <ProjectsPage /> },
        Route::Migrate { token } => html! { <MigratePage token={token} /> },
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
