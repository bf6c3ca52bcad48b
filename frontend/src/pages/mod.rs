//! One component per route. Each page keeps its state in a reducer from `crate::state`.

mod audit;
mod connector_form;
mod import;
mod lifecycle;
mod login;
mod migrate;
mod not_found;
mod outbox;
mod project;
mod project_form;
mod projects;
mod user;

pub use login::LoginPage;
pub use migrate::MigratePage;
pub use not_found::NotFound;
pub use outbox::OutboxPage;
pub use project::ProjectPage;
pub use project_form::ProjectFormPage;
pub use projects::ProjectsPage;
pub use user::UserPage;
