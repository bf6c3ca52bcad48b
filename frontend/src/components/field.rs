//! A labelled password input that reports its value on every keystroke.

use web_sys::HtmlInputElement;
use yew::prelude::*;

#[derive(Debug, Properties, PartialEq)]
pub struct PasswordFieldProps {
    pub id: AttrValue,
    pub label: AttrValue,
    pub value: AttrValue,
    pub oninput: Callback<String>,
    /// Shown under the label and linked with `aria-describedby`.
    #[prop_or_default]
    pub hint: Option<AttrValue>,
    #[prop_or(AttrValue::Static("current-password"))]
    pub autocomplete: AttrValue,
    #[prop_or_default]
    pub disabled: bool,
}

#[component]
pub fn PasswordField(props: &PasswordFieldProps) -> Html {
    let oninput = {
        let cb = props.oninput.clone();
        Callback::from(move |e: InputEvent| {
            cb.emit(e.target_unchecked_into::<HtmlInputElement>().value())
        })
    };
    let hint_id = format!("{}-hint", props.id);
    html! {
        <div class="field">
            <label for={props.id.clone()}>{ props.label.clone() }</label>
            if let Some(hint) = &props.hint {
                <p class="hint" id={hint_id.clone()}>{ hint.clone() }</p>
            }
            <input
                id={props.id.clone()}
                type="password"
                autocomplete={props.autocomplete.clone()}
                required=true
                value={props.value.clone()}
                disabled={props.disabled}
                aria-describedby={props.hint.as_ref().map(|_| hint_id.clone())}
                {oninput}
            />
        </div>
    }
}
