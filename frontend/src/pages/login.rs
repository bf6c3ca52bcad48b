//! `/`: the admin signs in with the console password (local mode; the session cookie the server
//! sets is what later requests carry) or at the identity provider (AWS mode, see `signin`).

use crate::api::endpoints;
use crate::app::Route;
use crate::components::{AlertKind, PasswordField, Shell, alert};
use crate::signin;
use crate::state::login::{LoginAction, LoginState};
use contract::LoginInput;
use yew::platform::spawn_local;
use yew::prelude::*;
use yew_router::prelude::*;

#[component]
pub fn LoginPage() -> Html {
    let state = use_reducer(LoginState::default);
    let navigator = use_navigator();

    use_effect_with(state.signed_in, move |signed_in| {
        if let (true, Some(nav)) = (*signed_in, navigator) {
            nav.replace(&Route::Projects);
        }
    });
    // An admin who is signed in already goes straight on. In AWS mode this page is also where
    // the identity provider sends the browser back with a code to trade for a token.
    {
        let dispatcher = state.dispatcher();
        use_effect_with((), move |_| {
            spawn_local(async move {
                let Ok(session) = endpoints::session().await else {
                    return;
                };
                if session.authenticated {
                    dispatcher.dispatch(LoginAction::AlreadySignedIn);
                    return;
                }
                let Some(sign_in) = session.sign_in else {
                    return;
                };
                dispatcher.dispatch(LoginAction::Hosted(sign_in.clone()));
                match signin::browser::complete(&sign_in).await {
                    Ok(true) => match endpoints::session().await {
                        Ok(s) if s.authenticated => dispatcher.dispatch(LoginAction::Succeeded),
                        Ok(_) => dispatcher.dispatch(LoginAction::HostedFailed(
                            "The server did not accept the sign-in. Sign in again".into(),
                        )),
                        Err(err) => dispatcher.dispatch(LoginAction::Failed(err)),
                    },
                    Ok(false) => {}
                    Err(message) => dispatcher.dispatch(LoginAction::HostedFailed(message)),
                }
            });
        });
    }

    if let Some(sign_in) = state.hosted.clone() {
        let dispatcher = state.dispatcher();
        let onclick = Callback::from(move |_: MouseEvent| {
            if let Err(message) = signin::browser::begin(&sign_in) {
                dispatcher.dispatch(LoginAction::HostedFailed(message));
            }
        });
        return html! {
            <Shell title="Sign in">
                <div class="card narrow">
                    <p>{ "Sign in to the mailferry console to manage your migration projects." }</p>
                    if let Some(err) = &state.error {
                        { alert(AlertKind::Error, err.clone()) }
                    }
                    <button type="button" class="button primary" {onclick}>
                        { "Sign in with your organisation account" }
                    </button>
                </div>
            </Shell>
        };
    }

    let oninput = {
        let dispatcher = state.dispatcher();
        Callback::from(move |value| dispatcher.dispatch(LoginAction::Edit(value)))
    };
    let onsubmit = {
        let state = state.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if !state.can_submit() {
                return;
            }
            let input = LoginInput {
                password: state.password.clone(),
            };
            let dispatcher = state.dispatcher();
            dispatcher.dispatch(LoginAction::Submit);
            spawn_local(async move {
                match endpoints::login(&input).await {
                    Ok(()) => dispatcher.dispatch(LoginAction::Succeeded),
                    Err(err) => dispatcher.dispatch(LoginAction::Failed(err)),
                }
            });
        })
    };

    html! {
        <Shell title="Sign in">
            <form class="card narrow" {onsubmit} aria-busy={state.submitting.to_string()}>
                <p>{ "Sign in to the mailferry console to manage your migration projects." }</p>
                if let Some(err) = &state.error {
                    { alert(AlertKind::Error, err.clone()) }
                }
                // Password managers file the password under a user name; the console has one.
                <input type="text" name="username" autocomplete="username" value="admin" hidden=true readonly=true />
                <PasswordField
                    id="admin-password"
                    label="Admin password"
                    value={state.password.clone()}
                    {oninput}
                    disabled={state.submitting}
                />
                <button type="submit" class="button primary" disabled={state.submitting}>
                    { if state.submitting { "Signing in…" } else { "Sign in" } }
                </button>
            </form>
        </Shell>
    }
}
