//! The "add a user" form of the project page. It keeps its own state, so the page's polling never
//! resets what is being typed.

use contract::{UserInput, UserView};

use crate::api::ApiError;
use crate::validate;

use super::fields::{ServerErrors, error_of, touch};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserField {
    SourceEmail,
    TargetEmail,
    DisplayName,
    SourcePassword,
    TargetPassword,
    Priority,
}

impl UserField {
    /// The field name the server uses in `details.field`.
    pub fn key(self) -> &'static str {
        match self {
            UserField::SourceEmail => "source_email",
            UserField::TargetEmail => "target_email",
            UserField::DisplayName => "display_name",
            UserField::SourcePassword => "source_password",
            UserField::TargetPassword => "target_password",
            UserField::Priority => "priority",
        }
    }

    pub fn id(self) -> String {
        format!("au-{}", self.key().replace('_', "-"))
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddUserState {
    pub source_email: String,
    pub target_email: String,
    pub display_name: String,
    pub source_password: String,
    pub target_password: String,
    /// Empty for 0.
    pub priority: String,
    pub touched: Vec<UserField>,
    pub submitted: bool,
    pub saving: bool,
    pub error: Option<String>,
    pub server_errors: ServerErrors,
    /// The address of the user added last, for the confirmation.
    pub added: Option<String>,
    pub signed_out: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AddUserAction {
    Edit(UserField, String),
    Submit,
    Added(Box<UserView>),
    Failed(ApiError),
}

impl AddUserState {
    pub fn errors(&self) -> Vec<(UserField, String)> {
        let mut out = Vec::new();
        let checks = [
            (UserField::SourceEmail, validate::email(&self.source_email)),
            (UserField::TargetEmail, validate::email(&self.target_email)),
            (
                UserField::DisplayName,
                validate::display_name(&self.display_name),
            ),
            (
                UserField::SourcePassword,
                validate::optional_password(&self.source_password),
            ),
            (
                UserField::TargetPassword,
                validate::optional_password(&self.target_password),
            ),
            (
                UserField::Priority,
                validate::priority(&self.priority).map(|_| ()),
            ),
        ];
        for (field, result) in checks {
            if let Err(e) = result {
                out.push((field, e));
            }
        }
        out
    }

    pub fn field_error(&self, field: UserField) -> Option<String> {
        // An emptied field is not nagged about while typing; Add shows what is missing.
        if !self.submitted && self.text(field).trim().is_empty() {
            return self.server_errors.get(field.key());
        }
        if (self.touched.contains(&field) || self.submitted)
            && let Some(e) = error_of(&self.errors(), field)
        {
            return Some(e);
        }
        self.server_errors.get(field.key())
    }

    fn text(&self, field: UserField) -> &str {
        match field {
            UserField::SourceEmail => &self.source_email,
            UserField::TargetEmail => &self.target_email,
            UserField::DisplayName => &self.display_name,
            UserField::SourcePassword => &self.source_password,
            UserField::TargetPassword => &self.target_password,
            UserField::Priority => &self.priority,
        }
    }

    pub fn to_input(&self) -> Option<UserInput> {
        if !self.errors().is_empty() {
            return None;
        }
        let optional = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Some(UserInput {
            source_email: self.source_email.trim().to_owned(),
            target_email: self.target_email.trim().to_owned(),
            display_name: self.display_name.trim().to_owned(),
            source_password: optional(&self.source_password),
            target_password: optional(&self.target_password),
            priority: validate::priority(&self.priority).ok()?,
            cutover_at: None,
        })
    }

    pub fn apply(mut self, action: AddUserAction) -> Self {
        match action {
            AddUserAction::Edit(field, value) => {
                touch(&mut self.touched, field);
                self.server_errors.remove(field.key());
                self.added = None;
                match field {
                    UserField::SourceEmail => self.source_email = value,
                    UserField::TargetEmail => self.target_email = value,
                    UserField::DisplayName => self.display_name = value,
                    UserField::SourcePassword => self.source_password = value,
                    UserField::TargetPassword => self.target_password = value,
                    UserField::Priority => self.priority = value,
                }
            }
            AddUserAction::Submit => {
                self.submitted = true;
                if !self.saving && self.to_input().is_some() {
                    self.saving = true;
                    self.error = None;
                }
            }
            AddUserAction::Added(user) => {
                // A fresh form for the next user; passwords are forgotten.
                self = AddUserState {
                    added: Some(user.source_email),
                    ..AddUserState::default()
                };
            }
            AddUserAction::Failed(err) => {
                self.saving = false;
                if matches!(err, ApiError::Unauthorized(_)) {
                    self.signed_out = true;
                }
                if let Some(body) = err.body()
                    && let Some(key) = body.details.get("field").and_then(|f| f.as_str())
                {
                    let message = body
                        .details
                        .get("message")
                        .and_then(|m| m.as_str())
                        .unwrap_or(&body.message)
                        .to_owned();
                    self.server_errors.set(key.to_owned(), message);
                }
                self.error = Some(err.message());
            }
        }
        self
    }
}

super::reducible!(AddUserState, AddUserAction);

#[cfg(test)]
mod tests {
    use super::*;
    use contract::ApiErrorBody;

    fn typed(fields: &[(UserField, &str)]) -> AddUserState {
        fields.iter().fold(AddUserState::default(), |s, (f, v)| {
            s.apply(AddUserAction::Edit(*f, (*v).to_owned()))
        })
    }

    #[test]
    fn addresses_are_checked_as_typed_and_passwords_are_optional() {
        let state = typed(&[(UserField::SourceEmail, "ann@old")]);
        assert!(state.field_error(UserField::SourceEmail).is_some());
        let emptied = state
            .clone()
            .apply(AddUserAction::Edit(UserField::SourceEmail, String::new()));
        assert_eq!(emptied.field_error(UserField::SourceEmail), None);
        assert_eq!(state.field_error(UserField::TargetEmail), None);
        let state = state.apply(AddUserAction::Submit);
        assert!(!state.saving);
        assert!(state.field_error(UserField::TargetEmail).is_some());

        let state = typed(&[
            (UserField::SourceEmail, " ann@old.example "),
            (UserField::TargetEmail, "ann@new.example"),
        ]);
        let input = state.to_input().unwrap();
        assert_eq!(input.source_email, "ann@old.example");
        assert_eq!(input.source_password, None);
        assert!(state.apply(AddUserAction::Submit).saving);
    }

    #[test]
    fn adding_clears_the_form_and_a_conflict_is_shown() {
        let state = typed(&[
            (UserField::SourceEmail, "ann@old.example"),
            (UserField::TargetEmail, "ann@new.example"),
            (UserField::SourcePassword, "pw"),
        ])
        .apply(AddUserAction::Submit);
        let mut user = crate::state::project::tests_support::user(1, contract::UserState::New);
        user.source_email = "ann@old.example".into();
        let added = state.clone().apply(AddUserAction::Added(Box::new(user)));
        assert_eq!(added.added.as_deref(), Some("ann@old.example"));
        assert!(added.source_password.is_empty());
        assert!(!added.submitted);

        let conflict = ApiError::Rejected {
            status: 409,
            body: ApiErrorBody {
                error: "conflict".into(),
                message: "a user with source address ann@old.example already exists".into(),
                details: serde_json::Value::Null,
            },
        };
        let failed = state.apply(AddUserAction::Failed(conflict));
        assert!(!failed.saving);
        assert!(failed.error.unwrap().contains("already exists"));
        assert_eq!(failed.source_email, "ann@old.example", "the input stays");
    }

    #[test]
    fn a_server_field_error_lands_on_its_input() {
        let body = ApiErrorBody {
            error: "validation".into(),
            message: "target_email: no".into(),
            details: serde_json::json!({"field": "target_email", "message": "'x' has no domain with a dot"}),
        };
        let state = typed(&[
            (UserField::SourceEmail, "ann@old.example"),
            (UserField::TargetEmail, "ann@new.example"),
        ])
        .apply(AddUserAction::Submit)
        .apply(AddUserAction::Failed(ApiError::Rejected {
            status: 422,
            body,
        }));
        assert_eq!(
            state.field_error(UserField::TargetEmail).as_deref(),
            Some("'x' has no domain with a dot")
        );
    }
}
