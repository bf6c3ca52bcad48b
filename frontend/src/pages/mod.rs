//! One component per route. Each page keeps its state in a reducer from `crate::state`.

mod login;
mod migrate;
mod not_found;
mod projects;

pub use login::LoginPage;
pub use migrate::MigratePage;
pub use not_found::NotFound;
pub use projects::ProjectsPage;
