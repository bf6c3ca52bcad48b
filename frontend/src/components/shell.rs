//! The frame of every page: a skip link, the top bar (with the admin navigation on console
//! pages), and the page's heading and content. It also sets the document title, so the browser
//! tab and screen readers name the page.

use crate::api::endpoints;
use crate::app::Route;
use yew::platform::spawn_local;
use yew::prelude::*;
use yew_router::prelude::*;

/// Which part of the console a page belongs to, for the navigation's `aria-current`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The end user's credential page and error pages: no admin navigation.
    Public,
    Projects,
    Outbox,
}

#[derive(Debug, Properties, PartialEq)]
pub struct ShellProps {
    pub title: AttrValue,
    #[prop_or(Section::Public)]
    pub section: Section,
    /// Console pages use the full width for tables.
    #[prop_or_default]
    pub wide: bool,
    /// A trail of links above the heading.
    #[prop_or_default]
    pub crumbs: Option<Html>,
    /// Buttons or links shown beside the heading.
    #[prop_or_default]
    pub actions: Option<Html>,
    #[prop_or_default]
    pub children: Html,
}

#[component]
pub fn Shell(props: &ShellProps) -> Html {
    use_effect_with(props.title.clone(), |title| {
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            doc.set_title(&format!("{title} · mailferry"));
        }
    });
    let admin = props.section != Section::Public;
    let current = |s: Section| (props.section == s).then_some("page");
    html! {
        <>
            <a class="skip-link" href="#main">{ "Skip to content" }</a>
            <header class="topbar">
                <div class={classes!("topbar-inner", props.wide.then_some("wide"))}>
                    <span class="brand">
                        <svg class="brand-mark" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false">
                            <rect x="3" y="5" width="18" height="12" rx="2" class="brand-envelope" />
                            <path d="M3.5 6 L12 12 L20.5 6" class="brand-flap" />
                            <path d="M2 20 Q5 18 8 20 T14 20 T20 20 T23 20" class="brand-wave" />
                        </svg>
                        { "mailferry" }
                    </span>
                    if admin {
                        <nav class="nav" aria-label="Console">
                            <NavLink to={Route::Projects} current={current(Section::Projects)}>
                                { "Projects" }
                            </NavLink>
                            <NavLink to={Route::Outbox} current={current(Section::Outbox)}>
                                { "Outbox" }
                            </NavLink>
                            <SignOut />
                        </nav>
                    }
                </div>
            </header>
            <main class={classes!("page", props.wide.then_some("wide"))} id="main" tabindex="-1">
                if let Some(crumbs) = &props.crumbs {
                    <nav class="crumbs" aria-label="Breadcrumb">{ crumbs.clone() }</nav>
                }
                <div class="page-head">
                    <h1>{ props.title.clone() }</h1>
                    if let Some(actions) = &props.actions {
                        <div class="page-actions">{ actions.clone() }</div>
                    }
                </div>
                { props.children.clone() }
            </main>
        </>
    }
}

#[derive(Debug, Properties, PartialEq)]
struct NavLinkProps {
    to: Route,
    current: Option<&'static str>,
    children: Html,
}

/// A navigation link that says which page is the current one (`aria-current="page"`), which
/// yew-router's `Link` cannot.
#[component]
fn NavLink(props: &NavLinkProps) -> Html {
    let navigator = use_navigator();
    let onclick = {
        let to = props.to.clone();
        Callback::from(move |e: MouseEvent| {
            // Let modified clicks open a new tab as usual.
            if e.ctrl_key() || e.meta_key() || e.shift_key() || e.button() != 0 {
                return;
            }
            e.prevent_default();
            if let Some(nav) = &navigator {
                nav.push(&to);
            }
        })
    };
    html! {
        <a class="nav-link" href={props.to.to_path()} aria-current={props.current} {onclick}>
            { props.children.clone() }
        </a>
    }
}

/// Ends the admin session and goes to the sign-in page.
#[component]
fn SignOut() -> Html {
    let navigator = use_navigator();
    let onclick = Callback::from(move |_: MouseEvent| {
        let navigator = navigator.clone();
        spawn_local(async move {
            // Signed out or not, the sign-in page is where to go next. In AWS mode the token is
            // dropped and the identity provider's session ended too (its page sends the browser
            // back to the sign-in page).
            let _ = endpoints::logout().await;
            crate::signin::browser::sign_out();
            if let Some(nav) = navigator {
                nav.push(&Route::Login);
            }
        });
    });
    html! {
        <button type="button" class="nav-link nav-button" {onclick}>{ "Sign out" }</button>
    }
}

/// What a console page shows when the session is missing or ended.
pub fn signed_out() -> Html {
    html! {
        <div class="alert alert-info" role="status">
            { "You are not signed in, or your session has ended. " }
            <Link<Route> to={Route::Login}>{ "Sign in" }</Link<Route>>
        </div>
    }
}
