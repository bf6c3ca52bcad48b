//! A message box. Errors use `role="alert"` so screen readers announce them when they appear.
//! A plain function rather than a component: it holds no state, and every component type adds
//! its own lifecycle code to the download.

use yew::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    Error,
    Info,
    Success,
}

pub fn alert(kind: AlertKind, body: impl Into<Html>) -> Html {
    let (class, role) = match kind {
        AlertKind::Error => ("alert alert-error", "alert"),
        AlertKind::Info => ("alert alert-info", "status"),
        AlertKind::Success => ("alert alert-success", "status"),
    };
    html! { <div class={class} role={role}>{ body.into() }</div> }
}
