//! Small building blocks shared by the pages.

mod alert;
mod field;
mod progress;
mod shell;

pub use alert::{Alert, AlertKind};
pub use field::PasswordField;
pub use progress::ProgressView;
pub use shell::Shell;
