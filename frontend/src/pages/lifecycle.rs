//! Closing and reopening a project, on the project page. Closing deletes every stored password
//! of the project (its users' and its admin accounts') and stops its invite links, so it asks
//! once more before it does.

use contract::ProjectView;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api::endpoints;
use crate::components::{AlertKind, alert};
use crate::format;

#[derive(Debug, Properties, PartialEq)]
pub struct LifecycleProps {
    pub project: ProjectView,
    /// Called after the project was closed or reopened, to load it again.
    pub on_changed: Callback<()>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Step {
    asking: bool,
    busy: bool,
    error: Option<String>,
}

#[component]
pub fn Lifecycle(props: &LifecycleProps) -> Html {
    let step = use_state(Step::default);
    let id = props.project.id;
    let closed = props.project.closed_at;
    let run = {
        let step = step.clone();
        let on_changed = props.on_changed.clone();
        Callback::from(move |close: bool| {
            step.set(Step {
                asking: false,
                busy: true,
                error: None,
            });
            let step = step.clone();
            let on_changed = on_changed.clone();
            spawn_local(async move {
                match endpoints::set_closed(id, close).await {
                    Ok(_) => {
                        step.set(Step::default());
                        on_changed.emit(());
                    }
                    Err(e) => step.set(Step {
                        error: Some(e.message()),
                        ..Step::default()
                    }),
                }
            });
        })
    };
    let ask = {
        let step = step.clone();
        Callback::from(move |_: MouseEvent| {
            step.set(Step {
                asking: true,
                ..Step::default()
            })
        })
    };
    let cancel = {
        let step = step.clone();
        Callback::from(move |_: MouseEvent| step.set(Step::default()))
    };
    let confirm_close = {
        let run = run.clone();
        Callback::from(move |_: MouseEvent| run.emit(true))
    };
    let reopen = Callback::from(move |_: MouseEvent| run.emit(false));
    let s = &*step;
    html! {
        <section class="card" aria-labelledby="lifecycle-heading">
            <h2 id="lifecycle-heading">{ "Project" }</h2>
            if let Some(e) = &s.error {
                { alert(AlertKind::Error, e.clone()) }
            }
            { match closed {
                Some(at) => html! {
                    <>
                        <p>{ format!("Closed on {}. Its stored passwords were deleted and its invite links stopped.", format::datetime(at)) }</p>
                        <button type="button" class="button" onclick={reopen} disabled={s.busy}>{ "Reopen project" }</button>
                    </>
                },
                None if s.asking => html! {
                    <div class="confirm" role="alertdialog" aria-labelledby="close-question">
                        <p id="close-question"><strong>{ "Close this project?" }</strong>{ " Every stored password is deleted now — users' and the admin accounts' — and invite links stop working. Copies already made stay. Users who are copying must be paused or finished first." }</p>
                        <button type="button" class="button danger" onclick={confirm_close} disabled={s.busy}>{ "Close and delete passwords" }</button>
                        <button type="button" class="button" onclick={cancel}>{ "Cancel" }</button>
                    </div>
                },
                None => html! {
                    <>
                        <p class="muted small">{ format!("Users' stored passwords are deleted when they are marked verified, after {} without activity, and when the project is closed.", format::plural(u64::from(props.project.retention.idle_days), "day", "days")) }</p>
                        <button type="button" class="button" onclick={ask} disabled={s.busy}>{ "Close project…" }</button>
                    </>
                },
            } }
        </section>
    }
}
