//! The admin sign-in form.

use crate::api::ApiError;
use contract::HostedSignIn;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoginState {
    pub password: String,
    pub submitting: bool,
    pub error: Option<String>,
    /// Set once the server accepted the password; the page then moves on to the projects.
    pub signed_in: bool,
    /// AWS mode: admins sign in at this identity provider instead of with a password.
    pub hosted: Option<HostedSignIn>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LoginAction {
    Edit(String),
    Submit,
    Failed(ApiError),
    Succeeded,
    /// The session check on opening the page found a valid session.
    AlreadySignedIn,
    /// The server signs admins in through an identity provider.
    Hosted(HostedSignIn),
    /// The identity provider's sign-in did not complete (the sentence to show).
    HostedFailed(String),
}

impl LoginState {
    /// Whether a submit would send anything: not while one is in flight, not with no password.
    pub fn can_submit(&self) -> bool {
        !self.submitting && !self.password.is_empty()
    }

    pub fn apply(mut self, action: LoginAction) -> Self {
        match action {
            LoginAction::Edit(password) => {
                self.password = password;
            }
            LoginAction::Submit if self.can_submit() => {
                self.submitting = true;
                self.error = None;
            }
            LoginAction::Submit => {}
            LoginAction::Failed(err) => {
                self.submitting = false;
                // A rejected password is cleared so the next attempt starts from an empty field.
                if matches!(err, ApiError::Unauthorized(_) | ApiError::Rejected { .. }) {
                    self.password.clear();
                }
                self.error = Some(err.message());
            }
            LoginAction::AlreadySignedIn => {
                if !self.submitting {
                    self.signed_in = true;
                }
            }
            LoginAction::Hosted(sign_in) => {
                self.hosted = Some(sign_in);
            }
            LoginAction::HostedFailed(message) => {
                self.submitting = false;
                self.error = Some(message);
            }
            LoginAction::Succeeded => {
                self.submitting = false;
                self.password.clear();
                self.signed_in = true;
            }
        }
        self
    }
}

super::reducible!(LoginState, LoginAction);

#[cfg(test)]
mod tests {
    use super::*;
    use contract::ApiErrorBody;

    fn typed(password: &str) -> LoginState {
        LoginState::default().apply(LoginAction::Edit(password.to_owned()))
    }

    #[test]
    fn identity_provider_mode_shows_its_failure_and_allows_a_retry() {
        let sign_in = HostedSignIn {
            authorize_url: "https://idp.example/oauth2/authorize".into(),
            token_url: "https://idp.example/oauth2/token".into(),
            logout_url: "https://idp.example/logout".into(),
            client_id: "abc".into(),
        };
        let state = LoginState::default().apply(LoginAction::Hosted(sign_in.clone()));
        assert_eq!(state.hosted, Some(sign_in));
        let state = state.apply(LoginAction::HostedFailed(
            "Sign-in failed: User is disabled".into(),
        ));
        assert_eq!(
            state.error.as_deref(),
            Some("Sign-in failed: User is disabled")
        );
        assert!(!state.signed_in);
        assert!(!state.submitting);
        assert!(state.apply(LoginAction::Succeeded).signed_in);
    }

    #[test]
    fn submit_needs_a_password_and_only_one_request_at_a_time() {
        assert!(!LoginState::default().can_submit());
        let submitting = typed("secret").apply(LoginAction::Submit);
        assert!(submitting.submitting);
        assert!(!submitting.can_submit());
        // A second submit while the first is in flight changes nothing.
        assert_eq!(submitting.clone().apply(LoginAction::Submit), submitting);
    }

    #[test]
    fn a_wrong_password_shows_the_server_message_and_clears_the_field() {
        // Arrange
        let state = typed("wrong").apply(LoginAction::Submit);
        let err = ApiError::Unauthorized(ApiErrorBody {
            error: "unauthorized".into(),
            message: "Wrong password".into(),
            details: serde_json::Value::Null,
        });
        // Act
        let state = state.apply(LoginAction::Failed(err));
        // Assert
        assert_eq!(state.error.as_deref(), Some("Wrong password"));
        assert!(!state.submitting);
        assert!(state.password.is_empty());
        assert!(!state.signed_in);
    }

    #[test]
    fn a_network_failure_keeps_the_password_for_a_retry() {
        let state = typed("secret")
            .apply(LoginAction::Submit)
            .apply(LoginAction::Failed(ApiError::Network("offline".into())));
        assert_eq!(state.password, "secret");
        assert!(state.can_submit());
    }

    #[test]
    fn an_existing_session_skips_the_form() {
        let state = LoginState::default().apply(LoginAction::AlreadySignedIn);
        assert!(state.signed_in);
    }

    #[test]
    fn success_signs_in_and_forgets_the_password() {
        let state = typed("secret")
            .apply(LoginAction::Submit)
            .apply(LoginAction::Succeeded);
        assert!(state.signed_in);
        assert!(state.password.is_empty());
        assert_eq!(state.error, None);
    }
}
