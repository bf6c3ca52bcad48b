//! The end user's credential page, reached from the emailed link: load the invite, ask for the
//! password(s), start, then follow the copy until it is done.

pub use super::sign_in_result::SignInResult;
use crate::api::ApiError;
use contract::{InviteView, MigrationStatus, UserState};

/// How often the page asks for progress while the copy runs.
pub const POLL_MS: u32 = 3_000;

/// Why the link cannot be used; each has its own page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkProblem {
    /// 404: no such link (mistyped, or replaced by a newer invite).
    Unknown,
    /// 410: the link is older than its validity.
    Expired,
    /// 423: too many wrong passwords.
    Locked,
    /// The page could not reach the server; reloading may help.
    Unreachable(String),
}

impl LinkProblem {
    pub fn title(&self) -> &'static str {
        match self {
            LinkProblem::Unknown => "This link does not work",
            LinkProblem::Expired => "This link has expired",
            LinkProblem::Locked => "This link is locked",
            LinkProblem::Unreachable(_) => "The page could not load",
        }
    }

    pub fn explanation(&self) -> String {
        match self {
            LinkProblem::Unknown => {
                "The link is not known. It may be mistyped, or it was replaced \
                by a newer invitation: open the link from the most recent email, or ask your \
                administrator for a new one."
                    .into()
            }
            LinkProblem::Expired => "Invitation links work for a limited time, and this one is \
                past it. Ask your administrator to send you a new link. Nothing has been copied \
                yet."
                .into(),
            LinkProblem::Locked => "The password was entered wrongly too many times, so the \
                link was locked to protect your mailbox. Ask your administrator for a new link."
                .into(),
            LinkProblem::Unreachable(message) => {
                format!("{message}. Check your internet connection and try again.")
            }
        }
    }

    pub fn retryable(&self) -> bool {
        matches!(self, LinkProblem::Unreachable(_))
    }

    fn of(err: &ApiError) -> LinkProblem {
        match err {
            ApiError::NotFound(_) => LinkProblem::Unknown,
            ApiError::Rejected { status: 410, .. } => LinkProblem::Expired,
            ApiError::Rejected { status: 423, .. } => LinkProblem::Locked,
            other => LinkProblem::Unreachable(other.message()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrateState {
    pub invite: Option<InviteView>,
    pub status: Option<MigrationStatus>,
    pub source_password: String,
    pub target_password: String,
    pub submitting: bool,
    /// A problem the user can act on (a wrong password, a dropped connection); the form stays.
    pub error: Option<String>,
    pub attempts_left: Option<u32>,
    /// The link cannot be used (unknown, expired, locked) or could not be loaded.
    pub problem: Option<LinkProblem>,
    /// The copy was started already (from another tab, say): show its status.
    pub already_started: bool,
    /// Passwords refused so far on this page; each one moves the focus back to the field.
    pub rejections: u32,
    /// Status answers (or failures) so far; each one re-arms the polling effect.
    pub polls: u32,
    /// How the last sign-in with a provider ended, when the page was reached from one.
    pub sign_in: Option<SignInResult>,
    /// A sign-in is being started (the browser is about to leave for the provider).
    pub signing_in: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MigrateAction {
    InviteLoaded(InviteView),
    LoadFailed(ApiError),
    EditSource(String),
    EditTarget(String),
    Submit,
    Rejected(ApiError),
    Started(MigrationStatus),
    StatusLoaded(MigrationStatus),
    StatusFailed(ApiError),
    /// The page was reached back from a provider's sign-in.
    SignInReturned(SignInResult),
    /// Sign in pressed: the browser leaves for the provider.
    SignInStarted,
    SignInFailed(ApiError),
}

/// What the page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Loading,
    Unusable,
    Form,
    Status,
}

impl MigrateState {
    pub fn phase(&self) -> Phase {
        match (&self.problem, &self.status, &self.invite) {
            (Some(_), _, _) => Phase::Unusable,
            (None, Some(_), _) => Phase::Status,
            (None, None, _) if self.already_started => Phase::Status,
            (None, None, None) => Phase::Loading,
            (None, None, Some(invite)) if asks_credentials(invite.state) => Phase::Form,
            (None, None, Some(_)) => Phase::Status,
        }
    }

    pub fn can_submit(&self) -> bool {
        let Some(invite) = &self.invite else {
            return false;
        };
        self.phase() == Phase::Form
            && !self.submitting
            && (!invite.asks_source_password || !self.source_password.is_empty())
            && (!invite.asks_target_password || !self.target_password.is_empty())
            && [&invite.source_sign_in, &invite.target_sign_in]
                .iter()
                .all(|offer| offer.as_ref().is_none_or(|o| o.signed_in_as.is_some()))
    }

    /// When to ask for the status next, in milliseconds; `None` when there is nothing to follow.
    pub fn poll_delay_ms(&self) -> Option<u32> {
        if self.phase() != Phase::Status {
            return None;
        }
        match &self.status {
            None => Some(0),
            Some(status) if is_final(status.state) => None,
            Some(_) => Some(POLL_MS),
        }
    }

    pub fn apply(mut self, action: MigrateAction) -> Self {
        match action {
            MigrateAction::InviteLoaded(invite) => {
                self.attempts_left = Some(invite.attempts_left);
                if invite.attempts_left == 0 && asks_credentials(invite.state) {
                    self.problem = Some(LinkProblem::Locked);
                }
                self.invite = Some(invite);
            }
            MigrateAction::LoadFailed(err) => {
                self.problem = Some(LinkProblem::of(&err));
            }
            MigrateAction::EditSource(password) => self.source_password = password,
            MigrateAction::EditTarget(password) => self.target_password = password,
            MigrateAction::Submit => {
                if self.can_submit() {
                    self.submitting = true;
                    self.error = None;
                }
            }
            MigrateAction::Rejected(err) => {
                self.submitting = false;
                if let Some(left) = err.attempts_left() {
                    self.attempts_left = Some(left);
                }
                match &err {
                    ApiError::NotFound(_)
                    | ApiError::Rejected {
                        status: 410 | 423, ..
                    } => self.problem = Some(LinkProblem::of(&err)),
                    _ if self.attempts_left == Some(0) => self.problem = Some(LinkProblem::Locked),
                    ApiError::Rejected { status: 409, .. } => {
                        self.already_started = true;
                        self.source_password.clear();
                        self.target_password.clear();
                    }
                    _ => {
                        // A refused password is cleared, so the next try starts from an empty
                        // field (the page puts the focus there); other failures keep it.
                        if err.attempts_left().is_some() {
                            self.source_password.clear();
                            self.target_password.clear();
                            self.rejections += 1;
                        }
                        self.error = Some(error_text(&err));
                    }
                }
            }
            MigrateAction::Started(status) => {
                self.submitting = false;
                // The passwords are on the server now (encrypted); the page forgets them.
                self.source_password.clear();
                self.target_password.clear();
                self.error = None;
                self.status = Some(status);
                self.polls += 1;
            }
            MigrateAction::StatusLoaded(status) => {
                self.error = None;
                self.status = Some(status);
                self.polls += 1;
            }
            MigrateAction::SignInReturned(result) => self.sign_in = Some(result),
            MigrateAction::SignInStarted => {
                self.signing_in = true;
                self.error = None;
            }
            MigrateAction::SignInFailed(err) => {
                self.signing_in = false;
                match &err {
                    ApiError::NotFound(_)
                    | ApiError::Rejected {
                        status: 410 | 423, ..
                    } => self.problem = Some(LinkProblem::of(&err)),
                    ApiError::Rejected { status: 409, .. } => self.already_started = true,
                    _ => self.error = Some(err.message()),
                }
            }
            MigrateAction::StatusFailed(ApiError::NotFound(_)) => {
                self.problem = Some(LinkProblem::Unknown);
            }
            MigrateAction::StatusFailed(err) => {
                // Keep showing the last status; the next poll retries.
                self.error = Some(format!("Could not refresh the progress: {}", err.message()));
                self.polls += 1;
            }
        }
        self
    }
}

super::reducible!(MigrateState, MigrateAction);

/// The sentence shown for a refused Start: the server's words, plus the attempts left when it
/// did not say them (a 502 from an unreachable mail server costs no attempt and says so).
pub fn error_text(err: &ApiError) -> String {
    let message = err.message();
    match err.attempts_left() {
        Some(left) if !message.contains("attempt") => format!(
            "{message}. {left} {} left.",
            if left == 1 { "attempt" } else { "attempts" }
        ),
        _ => message,
    }
}

/// States in which the user still has to give passwords and press Start.
fn asks_credentials(state: UserState) -> bool {
    matches!(state, UserState::New | UserState::EmailSent)
}

/// States after which nothing changes without the admin: polling stops.
fn is_final(state: UserState) -> bool {
    matches!(
        state,
        UserState::Completed | UserState::Verified | UserState::Failed | UserState::CutOver
    )
}

/// What the status view tells the user about each state.
pub fn status_message(state: UserState) -> &'static str {
    match state {
        UserState::New | UserState::EmailSent | UserState::Scheduled => {
            "Your mailbox is queued and copying starts shortly. You can close this page: the copy runs on the server."
        }
        UserState::Working => {
            "Copying your mail. You can close this page: the copy continues on the server."
        }
        UserState::Completed => {
            "Your mail has been copied. Your administrator will tell you when to switch to the new mailbox."
        }
        UserState::Verified => "All done: your mail is in your new mailbox.",
        UserState::CutOver => {
            "All done: you now use your new mailbox. The email about the switch has a link to set up your devices."
        }
        UserState::Failed => {
            "The copy stopped because of a problem. Your administrator has been told and will start it again."
        }
        UserState::Paused => {
            "Your administrator has paused the copy. It continues where it stopped."
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use contract::{ApiErrorBody, Progress};
    use time::OffsetDateTime;

    pub(crate) fn invite(state: UserState, attempts_left: u32) -> InviteView {
        InviteView {
            project_name: "Acme move".into(),
            display_name: "Ada".into(),
            source_email: "ada@old.example".into(),
            target_email: "ada@new.example".into(),
            asks_source_password: true,
            asks_target_password: false,
            source_sign_in: None,
            target_sign_in: None,
            state,
            attempts_left,
            expires_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn start_waits_for_every_sign_in() {
        let mut invite = invite(UserState::EmailSent, 5);
        invite.asks_source_password = false;
        invite.target_sign_in = Some(contract::SignInOffer {
            kind: contract::ConnectorKind::Microsoft365,
            label: "Sign in with Microsoft".into(),
            signed_in_as: None,
        });
        let s = MigrateState::default().apply(MigrateAction::InviteLoaded(invite.clone()));
        assert!(!s.can_submit(), "not signed in yet");
        invite.target_sign_in.as_mut().unwrap().signed_in_as = Some("ada@new.example".into());
        let s = MigrateState::default().apply(MigrateAction::InviteLoaded(invite));
        assert!(s.can_submit());
    }

    fn status(state: UserState) -> MigrationStatus {
        MigrationStatus {
            state,
            pass: 1,
            progress: Progress::default(),
            source_email: "ada@old.example".into(),
            target_email: "ada@new.example".into(),
            new_account: None,
        }
    }

    fn rejected(status: u16, details: serde_json::Value) -> ApiError {
        let body = ApiErrorBody {
            error: "validation".into(),
            message: "Wrong password".into(),
            details,
        };
        ApiError::from_response(status, &serde_json::to_string(&body).unwrap())
    }

    fn form() -> MigrateState {
        MigrateState::default().apply(MigrateAction::InviteLoaded(invite(UserState::EmailSent, 5)))
    }

    #[test]
    fn a_fresh_invite_shows_the_form_and_needs_the_asked_password() {
        let state = form();
        assert_eq!(state.phase(), Phase::Form);
        assert!(!state.can_submit());
        let state = state.apply(MigrateAction::EditSource("pw".into()));
        // The target password is not asked for, so the source one is enough.
        assert!(state.can_submit());
        assert_eq!(state.poll_delay_ms(), None);
    }

    #[test]
    fn a_wrong_password_shows_the_message_and_the_attempts_left() {
        // Arrange
        let state = form()
            .apply(MigrateAction::EditSource("wrong".into()))
            .apply(MigrateAction::Submit);
        assert!(state.submitting);
        // Act
        let state = state.apply(MigrateAction::Rejected(rejected(
            422,
            serde_json::json!({"attempts_left": 2}),
        )));
        // Assert
        assert_eq!(state.phase(), Phase::Form);
        assert_eq!(
            state.error.as_deref(),
            Some("Wrong password. 2 attempts left."),
            "the attempts are added when the server's words do not say them"
        );
        assert_eq!(state.attempts_left, Some(2));
        assert_eq!(state.rejections, 1);
        assert!(
            state.source_password.is_empty(),
            "the next try starts empty"
        );
        assert!(
            state
                .apply(MigrateAction::EditSource("right".into()))
                .can_submit(),
            "the user may try again"
        );
    }

    #[test]
    fn the_last_wrong_password_locks_the_link() {
        let state = form()
            .apply(MigrateAction::EditSource("wrong".into()))
            .apply(MigrateAction::Submit)
            .apply(MigrateAction::Rejected(rejected(
                422,
                serde_json::json!({"attempts_left": 0}),
            )));
        assert_eq!(state.phase(), Phase::Unusable);
        assert_eq!(state.problem, Some(LinkProblem::Locked));
        assert!(!state.can_submit());
    }

    #[test]
    fn the_servers_message_is_kept_when_it_counts_the_attempts_itself() {
        let body = contract::ApiErrorBody {
            error: "credentials_rejected".into(),
            message: "The password for ann@old.example was not accepted by imap.old.example. 1 attempt left.".into(),
            details: serde_json::json!({"attempts_left": 1}),
        };
        let err = ApiError::Rejected { status: 422, body };
        assert_eq!(
            error_text(&err),
            "The password for ann@old.example was not accepted by imap.old.example. 1 attempt left."
        );
    }

    #[test]
    fn expired_locked_and_unknown_links_each_get_their_page() {
        for (status, problem) in [
            (404, LinkProblem::Unknown),
            (410, LinkProblem::Expired),
            (423, LinkProblem::Locked),
        ] {
            let state = MigrateState::default().apply(MigrateAction::LoadFailed(rejected(
                status,
                serde_json::Value::Null,
            )));
            assert_eq!(state.phase(), Phase::Unusable);
            assert_eq!(state.problem.as_ref(), Some(&problem), "{status}");
            assert!(!problem.retryable());
        }
        // The link can also expire or lock between loading the page and pressing Start.
        let state = form()
            .apply(MigrateAction::EditSource("pw".into()))
            .apply(MigrateAction::Submit)
            .apply(MigrateAction::Rejected(rejected(
                410,
                serde_json::Value::Null,
            )));
        assert_eq!(state.problem, Some(LinkProblem::Expired));
    }

    #[test]
    fn an_unreachable_mail_server_keeps_the_form_and_costs_nothing() {
        let state = form()
            .apply(MigrateAction::EditSource("pw".into()))
            .apply(MigrateAction::Submit)
            .apply(MigrateAction::Rejected(rejected(
                502,
                serde_json::Value::Null,
            )));
        assert_eq!(state.phase(), Phase::Form);
        assert_eq!(state.attempts_left, Some(5));
        assert_eq!(state.error.as_deref(), Some("Wrong password"));
    }

    #[test]
    fn a_start_from_elsewhere_shows_the_status() {
        let state = form()
            .apply(MigrateAction::EditSource("pw".into()))
            .apply(MigrateAction::Submit)
            .apply(MigrateAction::Rejected(rejected(
                409,
                serde_json::Value::Null,
            )));
        assert_eq!(state.phase(), Phase::Status);
        assert_eq!(state.poll_delay_ms(), Some(0));
        assert!(state.source_password.is_empty());
    }

    #[test]
    fn a_network_failure_while_loading_can_be_retried() {
        let offline = MigrateState::default()
            .apply(MigrateAction::LoadFailed(ApiError::Network("down".into())));
        assert_eq!(offline.phase(), Phase::Unusable);
        assert!(offline.problem.as_ref().is_some_and(LinkProblem::retryable));
    }

    #[test]
    fn starting_forgets_the_passwords_and_polls_until_a_final_state() {
        // Arrange
        let state = form()
            .apply(MigrateAction::EditSource("pw".into()))
            .apply(MigrateAction::Submit);
        // Act
        let state = state.apply(MigrateAction::Started(status(UserState::Scheduled)));
        // Assert
        assert_eq!(state.phase(), Phase::Status);
        assert!(state.source_password.is_empty());
        assert_eq!(state.poll_delay_ms(), Some(POLL_MS));
        let state = state.apply(MigrateAction::StatusLoaded(status(UserState::Working)));
        assert_eq!((state.polls, state.poll_delay_ms()), (2, Some(POLL_MS)));
        let state = state.apply(MigrateAction::StatusFailed(ApiError::Network(
            "blip".into(),
        )));
        assert_eq!(state.polls, 3, "a failed poll re-arms the next one");
        assert!(
            state.status.is_some(),
            "the last known status stays on screen"
        );
        let state = state.apply(MigrateAction::StatusLoaded(status(UserState::Completed)));
        assert_eq!(state.poll_delay_ms(), None);
        assert_eq!(state.error, None);
    }

    #[test]
    fn an_invite_already_started_goes_straight_to_the_status() {
        let state = MigrateState::default()
            .apply(MigrateAction::InviteLoaded(invite(UserState::Working, 5)));
        assert_eq!(state.phase(), Phase::Status);
        assert_eq!(state.poll_delay_ms(), Some(0), "fetch the status at once");
    }
}
