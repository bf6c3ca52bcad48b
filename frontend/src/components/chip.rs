//! A user's state as a coloured label. The colour is never the only signal: the text says it.

use contract::UserState;
use yew::prelude::*;

/// The chip for `state`; the delta pass number shows from pass 2 on.
pub fn state_chip(state: UserState, pass: u32) -> Html {
    html! {
        <span class={classes!("chip", format!("chip-{}", state.as_str()))}>
            { state.label() }
            if pass > 1 {
                { format!(" · pass {pass}") }
            }
        </span>
    }
}
