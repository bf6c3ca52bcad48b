//! Labelled form controls. Each has a visible label, an optional hint and an error message, both
//! tied to the control with `aria-describedby`; an invalid control says so with `aria-invalid`.
//! Values flow one way: the control shows `value` and reports every keystroke through `oninput`,
//! so the page's reducer is the only place a value lives.

use web_sys::{HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};
use yew::prelude::*;

/// The ids of the hint and error elements of control `id`, for `aria-describedby`.
fn described_by(id: &str, hint: bool, error: bool) -> Option<String> {
    let ids: Vec<String> = [
        hint.then(|| format!("{id}-hint")),
        error.then(|| format!("{id}-error")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!ids.is_empty()).then(|| ids.join(" "))
}

fn hint_and_error(id: &str, hint: &Option<AttrValue>, error: &Option<String>) -> (Html, Html) {
    let hint = match hint {
        Some(h) => html! { <p class="hint" id={format!("{id}-hint")}>{ h.clone() }</p> },
        None => html! {},
    };
    let error = match error {
        Some(e) => html! {
            <p class="field-error" id={format!("{id}-error")}>
                <span aria-hidden="true">{ "⚠ " }</span>{ e.clone() }
            </p>
        },
        None => html! {},
    };
    (hint, error)
}

#[derive(Debug, Properties, PartialEq)]
pub struct TextFieldProps {
    pub id: AttrValue,
    pub label: AttrValue,
    pub value: AttrValue,
    pub oninput: Callback<String>,
    #[prop_or_default]
    pub onblur: Option<Callback<()>>,
    #[prop_or_default]
    pub hint: Option<AttrValue>,
    #[prop_or_default]
    pub error: Option<String>,
    #[prop_or(AttrValue::Static("text"))]
    pub kind: AttrValue,
    #[prop_or_default]
    pub autocomplete: Option<AttrValue>,
    #[prop_or_default]
    pub inputmode: Option<AttrValue>,
    #[prop_or_default]
    pub placeholder: Option<AttrValue>,
    #[prop_or_default]
    pub required: bool,
    #[prop_or_default]
    pub disabled: bool,
}

#[component]
pub fn TextField(props: &TextFieldProps) -> Html {
    let oninput = {
        let cb = props.oninput.clone();
        Callback::from(move |e: InputEvent| {
            cb.emit(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let onblur = props
        .onblur
        .clone()
        .map(|cb| Callback::from(move |_: FocusEvent| cb.emit(())));
    let (hint, error) = hint_and_error(&props.id, &props.hint, &props.error);
    html! {
        <div class={classes!("field", props.error.is_some().then_some("has-error"))}>
            <label for={props.id.clone()}>
                { props.label.clone() }
                if !props.required {
                    <span class="optional">{ " (optional)" }</span>
                }
            </label>
            { hint }
            <input
                id={props.id.clone()}
                type={props.kind.clone()}
                value={props.value.clone()}
                autocomplete={props.autocomplete.clone()}
                inputmode={props.inputmode.clone()}
                placeholder={props.placeholder.clone()}
                required={props.required}
                disabled={props.disabled}
                aria-invalid={props.error.is_some().then_some("true")}
                aria-describedby={described_by(&props.id, props.hint.is_some(), props.error.is_some())}
                {oninput}
                {onblur}
            />
            { error }
        </div>
    }
}

#[derive(Debug, Properties, PartialEq)]
pub struct TextAreaProps {
    pub id: AttrValue,
    pub label: AttrValue,
    pub value: AttrValue,
    pub oninput: Callback<String>,
    #[prop_or_default]
    pub hint: Option<AttrValue>,
    #[prop_or_default]
    pub error: Option<String>,
    #[prop_or(3)]
    pub rows: u32,
    /// A required text (a pasted key file): no "(optional)" after the label.
    #[prop_or_default]
    pub required: bool,
}

#[component]
pub fn TextArea(props: &TextAreaProps) -> Html {
    let oninput = {
        let cb = props.oninput.clone();
        Callback::from(move |e: InputEvent| {
            cb.emit(e.target_unchecked_into::<HtmlTextAreaElement>().value())
        })
    };
    let (hint, error) = hint_and_error(&props.id, &props.hint, &props.error);
    html! {
        <div class={classes!("field", props.error.is_some().then_some("has-error"))}>
            <label for={props.id.clone()}>
                { props.label.clone() }
                if !props.required {
                    <span class="optional">{ " (optional)" }</span>
                }
            </label>
            { hint }
            <textarea
                id={props.id.clone()}
                rows={props.rows.to_string()}
                required={props.required}
                value={props.value.clone()}
                aria-invalid={props.error.is_some().then_some("true")}
                aria-describedby={described_by(&props.id, props.hint.is_some(), props.error.is_some())}
                {oninput}
            />
            { error }
        </div>
    }
}

#[derive(Debug, Properties, PartialEq)]
pub struct SelectFieldProps {
    pub id: AttrValue,
    pub label: AttrValue,
    pub value: AttrValue,
    /// `(value, label)` pairs.
    pub options: Vec<(&'static str, &'static str)>,
    pub onchange: Callback<String>,
    #[prop_or_default]
    pub hint: Option<AttrValue>,
    #[prop_or_default]
    pub disabled: bool,
}

#[component]
pub fn SelectField(props: &SelectFieldProps) -> Html {
    let onchange = {
        let cb = props.onchange.clone();
        Callback::from(move |e: Event| {
            cb.emit(e.target_unchecked_into::<HtmlSelectElement>().value())
        })
    };
    let (hint, _) = hint_and_error(&props.id, &props.hint, &None);
    html! {
        <div class="field">
            <label for={props.id.clone()}>{ props.label.clone() }</label>
            { hint }
            <select
                id={props.id.clone()}
                disabled={props.disabled}
                aria-describedby={described_by(&props.id, props.hint.is_some(), false)}
                {onchange}
            >
                { for props.options.iter().map(|(value, label)| html! {
                    <option value={*value} selected={props.value == *value}>{ *label }</option>
                }) }
            </select>
        </div>
    }
}

#[derive(Debug, Properties, PartialEq)]
pub struct PasswordFieldProps {
    pub id: AttrValue,
    pub label: AttrValue,
    pub value: AttrValue,
    pub oninput: Callback<String>,
    /// Shown under the label and linked with `aria-describedby`.
    #[prop_or_default]
    pub hint: Option<AttrValue>,
    #[prop_or_default]
    pub error: Option<String>,
    #[prop_or(AttrValue::Static("current-password"))]
    pub autocomplete: AttrValue,
    #[prop_or(true)]
    pub required: bool,
    #[prop_or_default]
    pub disabled: bool,
}

/// A password input with a Show/Hide button. Showing it is a local display choice, so it lives in
/// the component rather than in the page's reducer.
#[component]
pub fn PasswordField(props: &PasswordFieldProps) -> Html {
    let shown = use_state(|| false);
    let oninput = {
        let cb = props.oninput.clone();
        Callback::from(move |e: InputEvent| {
            cb.emit(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let toggle = {
        let shown = shown.clone();
        Callback::from(move |_: MouseEvent| shown.set(!*shown))
    };
    let (hint, error) = hint_and_error(&props.id, &props.hint, &props.error);
    html! {
        <div class={classes!("field", props.error.is_some().then_some("has-error"))}>
            <label for={props.id.clone()}>
                { props.label.clone() }
                if !props.required {
                    <span class="optional">{ " (optional)" }</span>
                }
            </label>
            { hint }
            <div class="password-row">
                <input
                    id={props.id.clone()}
                    type={if *shown { "text" } else { "password" }}
                    autocomplete={props.autocomplete.clone()}
                    autocapitalize="none"
                    spellcheck="false"
                    required={props.required}
                    value={props.value.clone()}
                    disabled={props.disabled}
                    aria-invalid={props.error.is_some().then_some("true")}
                    aria-describedby={described_by(&props.id, props.hint.is_some(), props.error.is_some())}
                    {oninput}
                />
                <button
                    type="button"
                    class="button reveal"
                    aria-controls={props.id.clone()}
                    aria-pressed={(*shown).to_string()}
                    onclick={toggle}
                    disabled={props.disabled}
                >
                    { if *shown { "Hide" } else { "Show" } }
                    <span class="visually-hidden">{ " password" }</span>
                </button>
            </div>
            { error }
        </div>
    }
}

#[derive(Debug, Properties, PartialEq)]
pub struct CheckboxProps {
    pub id: AttrValue,
    pub label: AttrValue,
    pub checked: bool,
    pub onchange: Callback<bool>,
    #[prop_or_default]
    pub hint: Option<AttrValue>,
}

#[component]
pub fn Checkbox(props: &CheckboxProps) -> Html {
    let onchange = {
        let cb = props.onchange.clone();
        Callback::from(move |e: Event| {
            cb.emit(e.target_unchecked_into::<HtmlInputElement>().checked())
        })
    };
    let (hint, _) = hint_and_error(&props.id, &props.hint, &None);
    html! {
        <div class="field field-check">
            <input
                type="checkbox"
                id={props.id.clone()}
                checked={props.checked}
                aria-describedby={described_by(&props.id, props.hint.is_some(), false)}
                {onchange}
            />
            <label for={props.id.clone()}>{ props.label.clone() }</label>
            { hint }
        </div>
    }
}
