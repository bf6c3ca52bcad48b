//! Page state as plain data plus a pure `apply(action)`: no web-sys, no Yew, so the reducers are
//! tested on the host with `cargo test`. On wasm32 each state is also a `yew::Reducible`, which
//! is what the pages hand to `use_reducer`.

pub mod add_user;
pub mod connector_form;
pub mod fields;
pub mod import;
pub mod login;
pub mod migrate;
pub mod outbox;
pub mod project;
pub mod project_form;
pub mod projects;
pub mod sign_in_result;
pub mod user_detail;

/// Implements `yew::Reducible` by cloning the state and calling its pure `apply`.
macro_rules! reducible {
    ($state:ty, $action:ty) => {
        #[cfg(target_arch = "wasm32")]
        impl yew::Reducible for $state {
            type Action = $action;

            fn reduce(self: std::rc::Rc<Self>, action: $action) -> std::rc::Rc<Self> {
                std::rc::Rc::new((*self).clone().apply(action))
            }
        }
    };
}
pub(crate) use reducible;
