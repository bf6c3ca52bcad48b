//! Any path the router does not know.

use crate::app::Route;
use crate::components::Shell;
use yew::prelude::*;
use yew_router::prelude::*;

#[component]
pub fn NotFound() -> Html {
    html! {
        <Shell title="Page not found">
            <p>{ "There is nothing at this address. If you came from an email, open the link from that email again." }</p>
            <p><Link<Route> to={Route::Login}>{ "Go to the sign-in page" }</Link<Route>></p>
        </Shell>
    }
}
