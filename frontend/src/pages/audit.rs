//! The audit trail of a project, at the bottom of the project page: who did what, when and from
//! where. Nothing is fetched until the admin opens it, so the project page's polling stays as
//! light as before; older entries come a page at a time.

use contract::AuditView;
use uuid::Uuid;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api::endpoints;
use crate::components::{AlertKind, alert};
use crate::format;

#[derive(Debug, Properties, PartialEq)]
pub struct AuditTrailProps {
    pub project: Uuid,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Trail {
    entries: Vec<AuditView>,
    /// Where the next (older) page starts; `None` once the oldest entry is shown.
    next: Option<String>,
    loaded: bool,
    loading: bool,
    error: Option<String>,
}

#[component]
pub fn AuditTrail(props: &AuditTrailProps) -> Html {
    let trail = use_state(Trail::default);
    let project = props.project;
    let load = {
        let trail = trail.clone();
        Callback::from(move |more: bool| {
            let before = if more { trail.next.clone() } else { None };
            let mut busy = (*trail).clone();
            busy.loading = true;
            trail.set(busy);
            let trail = trail.clone();
            spawn_local(async move {
                let result = endpoints::audit(project, before.as_deref()).await;
                let mut next = (*trail).clone();
                next.loading = false;
                match result {
                    Ok(page) => {
                        if !more {
                            next.entries.clear();
                        }
                        next.entries.extend(page.items);
                        next.next = page.next;
                        next.loaded = true;
                        next.error = None;
                    }
                    Err(e) => next.error = Some(e.message()),
                }
                trail.set(next);
            });
        })
    };
    let show = {
        let load = load.clone();
        Callback::from(move |_: MouseEvent| load.emit(false))
    };
    let older = Callback::from(move |_: MouseEvent| load.emit(true));
    let t = &*trail;
    html! {
        <section class="card" aria-labelledby="audit-heading">
            <div class="card-head">
                <h2 id="audit-heading">{ "Audit trail" }</h2>
                <button type="button" class="button small" onclick={show} disabled={t.loading}>
                    { if t.loaded { "Refresh" } else { "Show" } }
                </button>
                <a class="button small" href={endpoints::audit_export_url(project)} download="audit.csv">{ "Export CSV" }</a>
            </div>
            <p class="muted small">{ "Every admin action and every use of a stored password, with who, when and from where. Entries cannot be changed." }</p>
            if let Some(e) = &t.error {
                { alert(AlertKind::Error, e.clone()) }
            }
            if t.loaded && t.entries.is_empty() {
                <p class="muted">{ "Nothing recorded yet." }</p>
            }
            if !t.entries.is_empty() {
                <div class="table-wrap">
                    <table class="audit">
                        <caption class="visually-hidden">{ "Audit trail, newest first" }</caption>
                        <thead><tr>
                            <th scope="col">{ "When (UTC)" }</th>
                            <th scope="col">{ "Who" }</th>
                            <th scope="col">{ "What" }</th>
                            <th scope="col">{ "Mailbox" }</th>
                            <th scope="col">{ "Detail" }</th>
                        </tr></thead>
                        <tbody>
                            { for t.entries.iter().map(entry) }
                        </tbody>
                    </table>
                </div>
                if t.next.is_some() {
                    <button type="button" class="button small" onclick={older} disabled={t.loading}>{ "Older entries" }</button>
                }
            }
        </section>
    }
}

fn entry(e: &AuditView) -> Html {
    let who = match &e.from {
        Some(from) => format!("{} ({from})", e.who),
        None => e.who.clone(),
    };
    html! {
        <tr key={e.id.clone()}>
            <td class="nowrap">{ format::timestamp(e.at) }</td>
            <td>{ who }</td>
            <td><code>{ e.action.clone() }</code></td>
            <td>{ e.subject.clone().unwrap_or_default() }</td>
            <td>{ e.detail.clone() }</td>
        </tr>
    }
}
