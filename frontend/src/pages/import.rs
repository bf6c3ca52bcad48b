//! The CSV import of the project page: every chosen file is checked first (a dry run that
//! reports every wrong line), previewed, and imported only when the admin confirms; all or
//! nothing.

use std::rc::Rc;

use uuid::Uuid;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use yew::platform::spawn_local;
use yew::prelude::*;

use crate::api::endpoints;
use crate::components::{AlertKind, alert};
use crate::format;
use crate::state::import::{ImportAction, ImportPhase, ImportState};

#[derive(Debug, Properties, PartialEq)]
pub struct ImportProps {
    pub project: Uuid,
    pub on_imported: Callback<()>,
}

/// Reads the chosen file's bytes (the server reports bad encodings by line, so they are sent
/// as they are).
async fn read_file(input: HtmlInputElement) -> Result<(String, Vec<u8>), String> {
    let file = input
        .files()
        .and_then(|files| files.get(0))
        .ok_or_else(|| "No file was chosen".to_owned())?;
    if file.size() > contract::limits::CSV_MAX_BYTES as f64 {
        return Err(format!(
            "The file is larger than {}; split it into smaller files",
            format::bytes(contract::limits::CSV_MAX_BYTES as u64)
        ));
    }
    let buffer = wasm_bindgen_futures::JsFuture::from(file.array_buffer())
        .await
        .map_err(|_| "The file could not be read".to_owned())?;
    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    Ok((file.name(), bytes))
}

#[component]
pub fn ImportPanel(props: &ImportProps) -> Html {
    let state = use_reducer(ImportState::default);
    let file_input = use_node_ref();
    // Every new file (or "Check again") gets a dry run; the answer carries its generation so a
    // late one for an older file is ignored.
    {
        let d = state.dispatcher();
        let checking = (state.phase == ImportPhase::Checking)
            .then(|| state.bytes.clone())
            .flatten();
        let project = props.project;
        use_effect_with(state.generation, move |generation| {
            let generation = *generation;
            if let Some(bytes) = checking {
                spawn_local(async move {
                    let r = endpoints::import_users(project, (*bytes).clone(), true).await;
                    d.dispatch(ImportAction::Checked(generation, r));
                });
            }
        });
    }
    let onchange = {
        let d = state.dispatcher();
        Callback::from(move |e: Event| {
            let Some(input) = e
                .target()
                .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
            else {
                return;
            };
            let d = d.clone();
            spawn_local(async move {
                match read_file(input).await {
                    Ok((name, bytes)) => d.dispatch(ImportAction::FileRead {
                        name,
                        bytes: Rc::new(bytes),
                    }),
                    Err(message) => d.dispatch(ImportAction::FileUnreadable(message)),
                }
            });
        })
    };
    let import = {
        let state = state.clone();
        let project = props.project;
        let on_imported = props.on_imported.clone();
        Callback::from(move |_: MouseEvent| {
            let (true, Some(bytes)) = (state.can_import(), state.bytes.clone()) else {
                return;
            };
            let d = state.dispatcher();
            let generation = state.generation;
            let on_imported = on_imported.clone();
            d.dispatch(ImportAction::ImportStarted);
            spawn_local(async move {
                let r = endpoints::import_users(project, (*bytes).clone(), false).await;
                let ok = r.is_ok();
                d.dispatch(ImportAction::Imported(generation, r));
                if ok {
                    on_imported.emit(());
                }
            });
        })
    };
    let recheck = {
        let d = state.dispatcher();
        Callback::from(move |_: MouseEvent| d.dispatch(ImportAction::Recheck))
    };
    let reset = {
        let d = state.dispatcher();
        let file_input = file_input.clone();
        Callback::from(move |_: MouseEvent| {
            if let Some(input) = file_input.cast::<HtmlInputElement>() {
                input.set_value("");
            }
            d.dispatch(ImportAction::Reset);
        })
    };

    let outcome = match &state.phase {
        ImportPhase::Empty => html! {},
        ImportPhase::Checking => {
            html! { <p class="muted" role="status">{ "Checking the file…" }</p> }
        }
        ImportPhase::Checked(r) => html! {
            <div class="alert alert-info" role="status">
                <p class="notice-text">
                    { format!("The file is valid: {} ready.", format::plural(r.valid_rows, "row", "rows")) }
                </p>
                <p>{ format!("Importing creates {} and updates {}.", format::plural(r.created, "user", "users"), format::plural(r.updated, "user", "users")) }</p>
            </div>
        },
        ImportPhase::Invalid { message, lines } => html! {
            <div class="alert alert-error" role="alert">
                <p class="notice-text">{ message.clone() }</p>
                if !lines.is_empty() {
                    <ul class="line-errors">
                        { for lines.iter().take(100).map(|l| html! {
                            <li><strong>{ format!("Line {}: ", l.line) }</strong>{ l.message.clone() }</li>
                        }) }
                    </ul>
                }
                <p>{ "Fix the file and choose it again; nothing was imported." }</p>
            </div>
        },
        ImportPhase::Importing => html! { <p class="muted" role="status">{ "Importing…" }</p> },
        ImportPhase::Imported(r) => html! {
            { alert(AlertKind::Success, format!("Imported: {} created, {} updated.", format::plural(r.created, "user", "users"), format::plural(r.updated, "user", "users"))) }
        },
        ImportPhase::Failed(message) => html! {
            <div class="alert alert-error" role="alert">
                <p class="notice-text">{ message.clone() }</p>
                if state.bytes.is_some() {
                    <button type="button" class="button small" onclick={recheck}>{ "Check again" }</button>
                }
            </div>
        },
    };
    let preview = match &state.preview {
        Some(p) if !p.header.is_empty() => html! {
            <div class="table-wrap preview">
                <table>
                    <caption class="small muted">
                        { format!("{} — first {} of {}", state.file_name.clone().unwrap_or_default(), p.rows.len(), format::plural(p.data_lines as u64, "data line", "data lines")) }
                    </caption>
                    <thead><tr>{ for p.header.iter().map(|h| html! { <th scope="col">{ h.clone() }</th> }) }</tr></thead>
                    <tbody>
                        { for p.rows.iter().map(|r| html! { <tr>{ for r.iter().map(|c| html! { <td>{ c.clone() }</td> }) }</tr> }) }
                    </tbody>
                </table>
            </div>
        },
        _ => html! {},
    };
    html! {
        <section class="card" aria-labelledby="import-heading">
            <h2 id="import-heading">{ "Import from CSV" }</h2>
            <p class="hint" id="csv-hint">
                { "Columns: source_email, target_email, and optionally display_name, source_password, target_password, priority (0–9) and cutover_at (a batch’s cutover, like 2027-01-15T18:00:00Z). The file is checked first; nothing is imported until you confirm." }
            </p>
            <div class="field">
                <label for="csv-file">{ "CSV file" }</label>
                <input id="csv-file" type="file" accept=".csv,text/csv" aria-describedby="csv-hint"
                    ref={file_input} {onchange} disabled={state.busy()} />
            </div>
            { preview }
            <div aria-live="polite">{ outcome }</div>
            <div class="form-actions">
                <button type="button" class="button primary" onclick={import} disabled={!state.can_import()}>
                    { "Import users" }
                </button>
                if state.phase != ImportPhase::Empty {
                    <button type="button" class="button" onclick={reset} disabled={state.busy()}>{ "Start over" }</button>
                }
            </div>
        </section>
    }
}
