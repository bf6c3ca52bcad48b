//! Small building blocks shared by the pages.

mod alert;
mod chart;
mod chip;
mod field;
mod progress;
mod shell;

pub use alert::{AlertKind, alert};
pub use chart::throughput_chart;
pub use chip::state_chip;
pub use field::{Checkbox, PasswordField, SelectField, TextArea, TextField};
pub use progress::{bar, progress_view};
pub use shell::{Section, Shell, signed_out};
