//! `/projects/new` and `/projects/{id}/edit`: the project settings, with both connectors, a
//! "Test connection" per side, invitations and copy options. Fields are checked as they are
//! typed; nothing here is ever overwritten by polling.

use super::connector_form::connector;
use crate::api::endpoints;
use crate::app::Route;
use crate::components::{
    AlertKind, Checkbox, Section, SelectField, Shell, TextArea, TextField, alert, signed_out,
};
use crate::state::project_form::{Field, ProjectFormAction, ProjectFormState, Side, invite_value};
use contract::ContentCheck;
use uuid::Uuid;
use yew::platform::spawn_local;
use yew::prelude::*;
use yew_router::prelude::*;

#[derive(Debug, Properties, PartialEq)]
pub struct ProjectFormProps {
    /// The project to edit; `None` creates one.
    pub id: Option<Uuid>,
}

pub(super) type Handle = UseReducerHandle<ProjectFormState>;

#[component]
pub fn ProjectFormPage(props: &ProjectFormProps) -> Html {
    let state = {
        let id = props.id;
        use_reducer(move || match id {
            Some(id) => ProjectFormState::editing(id),
            None => ProjectFormState::default(),
        })
    };
    let navigator = use_navigator();

    {
        // The provider profiles fill a connector when its kind changes.
        let dispatcher = state.dispatcher();
        use_effect_with((), move |()| {
            spawn_local(async move {
                if let Ok(providers) = endpoints::providers().await {
                    dispatcher.dispatch(ProjectFormAction::ProvidersLoaded(providers));
                }
            });
        });
    }
    {
        let dispatcher = state.dispatcher();
        use_effect_with(props.id, move |id| {
            if let Some(id) = *id {
                spawn_local(async move {
                    match endpoints::project(id).await {
                        Ok(p) => dispatcher.dispatch(ProjectFormAction::Loaded(p)),
                        Err(e) => dispatcher.dispatch(ProjectFormAction::LoadFailed(e)),
                    }
                });
            }
        });
    }
    // Once saved, the project's page is where the admin continues.
    use_effect_with(state.saved, move |saved| {
        if let (Some(id), Some(nav)) = (saved, navigator) {
            nav.push(&Route::Project { id: id.to_string() });
        }
    });

    let title = match (props.id, &state.original) {
        (None, _) => "New project".to_owned(),
        (Some(_), Some(p)) => format!("Edit {}", p.name),
        (Some(_), None) => "Edit project".to_owned(),
    };
    let crumbs = html! {
        <>
            <Link<Route> to={Route::Projects}>{ "Projects" }</Link<Route>>
            if let Some(p) = &state.original {
                <span aria-hidden="true">{ " / " }</span>
                <Link<Route> to={Route::Project { id: p.id.to_string() }}>{ p.name.clone() }</Link<Route>>
            }
        </>
    };

    let body = if state.signed_out {
        html! { { signed_out() } }
    } else if let Some(err) = &state.load_error {
        html! { { alert(AlertKind::Error, err.clone()) } }
    } else if state.loading {
        html! { <p class="muted" role="status">{ "Loading the project…" }</p> }
    } else {
        form(&state, props.id)
    };
    html! {
        <Shell title={title} section={Section::Projects} wide=true crumbs={Some(crumbs)}>
            { body }
        </Shell>
    }
}

pub(super) fn edit(state: &Handle, field: Field) -> Callback<String> {
    let d = state.dispatcher();
    Callback::from(move |v| d.dispatch(ProjectFormAction::Edit(field, v)))
}

pub(super) fn blur(state: &Handle, field: Field) -> Option<Callback<()>> {
    let d = state.dispatcher();
    Some(Callback::from(move |()| {
        d.dispatch(ProjectFormAction::Blur(field))
    }))
}

fn form(state: &Handle, id: Option<Uuid>) -> Html {
    let onsubmit = {
        let state = state.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            // Read before dispatching: in Yew 0.23 the handle shows the new state at once.
            let (input, busy) = (state.to_input(), state.saving);
            let dispatcher = state.dispatcher();
            dispatcher.dispatch(ProjectFormAction::Submit);
            let (Some(input), false) = (input, busy) else {
                return;
            };
            let editing = state.editing;
            spawn_local(async move {
                let result = match editing {
                    Some((id, version)) => endpoints::update_project(id, version, &input).await,
                    None => endpoints::create_project(&input).await,
                };
                match result {
                    Ok(p) => dispatcher.dispatch(ProjectFormAction::Saved(p)),
                    Err(e) => dispatcher.dispatch(ProjectFormAction::SaveFailed(e)),
                }
            });
        })
    };
    let s = &**state;
    let cancel = match id {
        Some(id) => Route::Project { id: id.to_string() },
        None => Route::Projects,
    };
    html! {
        <form class="stack" {onsubmit} novalidate=true aria-busy={s.saving.to_string()}>
            if let Some(err) = &s.error {
                { alert(AlertKind::Error, err.clone()) }
            }
            <section class="card" aria-labelledby="pf-general">
                <h2 id="pf-general">{ "Project" }</h2>
                <TextField
                    id={Field::Name.id()}
                    label="Name"
                    hint="What the users see on their invitation page, e.g. “Acme mail to NewCo”"
                    value={s.name.clone()}
                    oninput={edit(state, Field::Name)}
                    onblur={blur(state, Field::Name)}
                    error={s.field_error(Field::Name)}
                    required=true
                />
                <TextField
                    id={Field::AdminEmail.id()}
                    label="Admin email for notifications"
                    hint="Told when a user's first pass is ready to verify"
                    kind="email"
                    autocomplete="email"
                    value={s.admin_email.clone()}
                    oninput={edit(state, Field::AdminEmail)}
                    onblur={blur(state, Field::AdminEmail)}
                    error={s.field_error(Field::AdminEmail)}
                />
                <SelectField
                    id={Field::InviteTo.id()}
                    label="Send invitations to"
                    hint="Users with per-user passwords get a personal link to enter them"
                    value={invite_value(s.invite_to)}
                    options={vec![
                        ("source", "The user's current (source) address"),
                        ("target", "The user's new (target) address"),
                        ("none", "Nobody: I enter passwords or use admin accounts"),
                    ]}
                    onchange={edit(state, Field::InviteTo)}
                />
                <Checkbox
                    id={Field::NotifyUser.id()}
                    label="Also tell each user when their mail is ready to check"
                    checked={s.notify_user}
                    onchange={{
                        let d = state.dispatcher();
                        Callback::from(move |on: bool| d.dispatch(ProjectFormAction::Edit(Field::NotifyUser, on.to_string())))
                    }}
                />
            </section>
            <div class="columns">
                { connector(state, Side::Source) }
                { connector(state, Side::Target) }
            </div>
            <details class="card" open={!s.include.is_empty() || !s.exclude.is_empty() || !s.folder_map.is_empty() || !s.max_size_mb.is_empty() || s.remove_deleted}>
                <summary><h2 class="inline">{ "What to copy" }</h2><span class="muted small">{ " — all folders unless you say otherwise" }</span></summary>
                <TextArea
                    id={Field::Include.id()}
                    label="Only these folders"
                    hint="One name per line; * matches anything (Projects/*). Empty copies every folder"
                    value={s.include.clone()}
                    oninput={edit(state, Field::Include)}
                    error={s.field_error(Field::Include)}
                />
                <TextArea
                    id={Field::Exclude.id()}
                    label="Leave out these folders"
                    hint="One per line, e.g. Junk* or Trash"
                    value={s.exclude.clone()}
                    oninput={edit(state, Field::Exclude)}
                    error={s.field_error(Field::Exclude)}
                />
                <TextArea
                    id={Field::FolderMap.id()}
                    label="Rename folders"
                    hint="One per line: Source name => Target name. Sent, Drafts, Trash and Junk are matched by their role already"
                    value={s.folder_map.clone()}
                    oninput={edit(state, Field::FolderMap)}
                    error={s.field_error(Field::FolderMap)}
                />
                { form_field(state, Field::MaxSize, "Skip messages larger than (MB)", "Skipped messages are listed with their reason", "numeric") }
                <SelectField
                    id={Field::VerifyContent.id()}
                    label="Read copies back to compare them with the source"
                    hint="Counts and sizes cannot see a server that changes what it stores; reading copies back can (off for targets that rewrite every message, such as Exchange Online)"
                    value={match s.verify_content { ContentCheck::Off => "off", ContentCheck::All => "all", ContentCheck::Sample => "sample" }}
                    options={vec![
                        ("sample", "A sample: the first 20 of each folder and every message servers tend to alter"),
                        ("all", "Every copy (reads the target once more in full)"),
                        ("off", "None"),
                    ]}
                    onchange={edit(state, Field::VerifyContent)}
                />
                <Checkbox
                    id={Field::RemoveDeleted.id()}
                    label="Delta passes remove from the target what was deleted at the source (only copies mailferry made)"
                    checked={s.remove_deleted}
                    onchange={{
                        let d = state.dispatcher();
                        Callback::from(move |on: bool| d.dispatch(ProjectFormAction::Edit(Field::RemoveDeleted, on.to_string())))
                    }}
                />
            </details>
            <details class="card" open={[&s.source_server_limit, &s.target_server_limit, &s.mailbox_limit, &s.daily_download_mb, &s.daily_upload_mb].iter().any(|v| !v.is_empty())}>
                <summary><h2 class="inline">{ "Connections" }</h2><span class="muted small">{ " — the provider's limits unless you say otherwise" }</span></summary>
                { form_field(state, Field::SourceServerLimit, "At most this many connections to the source server", "Over all users of every project copying from it. Empty: 16 for an IMAP server, no limit for Microsoft 365 and Google", "numeric") }
                { form_field(state, Field::TargetServerLimit, "At most this many connections to the target server", "Over all users of every project copying to it", "numeric") }
                { form_field(state, Field::MailboxLimit, "At most this many connections to one mailbox", "On either side. Empty: 4 for an IMAP server, 8 for Microsoft 365, 15 for Gmail; lower it when a server refuses logins for too many connections", "numeric") }
                { form_field(state, Field::DailyDownload, "At most this many MB downloaded per source mailbox a day", "Over any 24 hours; a mailbox that reaches it pauses until it renews. Empty: 2,500 for Google, none otherwise", "numeric") }
                { form_field(state, Field::DailyUpload, "At most this many MB uploaded per target mailbox a day", "Empty: 500 for Google, none otherwise", "numeric") }
            </details>
            <details class="card" open={[&s.sync_hours, &s.cutover_at, &s.smtp_host].iter().any(|v| !v.is_empty())}>
                <summary><h2 class="inline">{ "Sync and cutover" }</h2><span class="muted small">{ " — after the first pass" }</span></summary>
                { form_field(state, Field::SyncHours, "Keep finished mailboxes in sync every this many hours", "A delta pass for each finished user, until its cutover. Empty: only when you ask", "numeric") }
                { form_field(state, Field::CutoverAt, "Cutover (UTC)", "Each finished user gets a final delta pass, is cut over and mailed the new account's settings. A CSV column cutover_at gives a batch its own time", "datetime-local") }
                { form_field(state, Field::SmtpHost, "Outgoing mail server of the new accounts", "For the cutover mail and the device set-up page. Empty: the target's IMAP host", "text") }
                { form_field(state, Field::SmtpPort, "Its port", "Empty: 587 (STARTTLS); 465 is TLS", "numeric") }
            </details>
            <section class="card" aria-labelledby="pf-retention-heading">
                <h2 id="pf-retention-heading">{ "Stored passwords" }</h2>
                { form_field(state, Field::IdleDays, "Delete a user's stored passwords after this many days without activity", "They are also deleted when the user is marked verified and when the project is closed; the copy asks for them again", "numeric") }
            </section>
            <div class="form-actions">
                <button type="submit" class="button primary" disabled={s.saving}>
                    { match (s.saving, id) {
                        (true, _) => "Saving…",
                        (false, Some(_)) => "Save changes",
                        (false, None) => "Create project",
                    } }
                </button>
                <Link<Route> to={cancel} classes="button">{ "Cancel" }</Link<Route>>
            </div>
        </form>
    }
}

/// A text input bound to one field of the form: every such input is this one instantiation
/// (each `html!` of a component is code in the download).
fn form_field(
    state: &UseReducerHandle<ProjectFormState>,
    field: Field,
    label: &'static str,
    hint: &'static str,
    kind: &'static str,
) -> Html {
    let s = &**state;
    html! {
        <TextField
            id={field.id()}
            label={label}
            hint={hint}
            kind={if kind == "numeric" { "text" } else { kind }}
            inputmode={(kind == "numeric").then_some("numeric")}
            value={s.text(field).unwrap_or_default().to_owned()}
            oninput={edit(state, field)}
            onblur={blur(state, field)}
            error={s.field_error(field)}
        />
    }
}
