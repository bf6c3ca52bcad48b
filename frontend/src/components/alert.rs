//! A message box. Errors use `role="alert"` so screen readers announce them when they appear.

use yew::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    Error,
    Info,
    Success,
}

#[derive(Debug, Properties, PartialEq)]
pub struct AlertProps {
    pub kind: AlertKind,
    #[prop_or_default]
    pub children: Html,
}

#[component]
pub fn Alert(props: &AlertProps) -> Html {
    let (class, role) = match props.kind {
        AlertKind::Error => ("alert alert-error", "alert"),
        AlertKind::Info => ("alert alert-info", "status"),
        AlertKind::Success => ("alert alert-success", "status"),
    };
    html! { <div class={class} role={role}>{ props.children.clone() }</div> }
}
