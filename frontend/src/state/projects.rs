//! The project list of the admin console.

use crate::api::ApiError;
use contract::ProjectView;

#[derive(Debug, Clone, Default, PartialEq)]
pub enum ProjectsState {
    #[default]
    Loading,
    Loaded(Vec<ProjectView>),
    Failed(String),
    /// The session is missing or ended: the page offers the sign-in form instead.
    SignedOut,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProjectsAction {
    Reload,
    Loaded(Vec<ProjectView>),
    Failed(ApiError),
}

impl ProjectsState {
    pub fn apply(self, action: ProjectsAction) -> Self {
        match action {
            ProjectsAction::Reload => ProjectsState::Loading,
            ProjectsAction::Loaded(projects) => ProjectsState::Loaded(projects),
            ProjectsAction::Failed(ApiError::Unauthorized(_)) => ProjectsState::SignedOut,
            ProjectsAction::Failed(err) => ProjectsState::Failed(err.message()),
        }
    }
}

super::reducible!(ProjectsState, ProjectsAction);

#[cfg(test)]
mod tests {
    use super::*;
    use contract::ApiErrorBody;

    fn body() -> ApiErrorBody {
        ApiErrorBody {
            error: "x".into(),
            message: "Session ended".into(),
            details: serde_json::Value::Null,
        }
    }

    #[test]
    fn starts_loading_and_shows_what_arrives() {
        let state = ProjectsState::default();
        assert_eq!(state, ProjectsState::Loading);
        assert_eq!(
            state.apply(ProjectsAction::Loaded(vec![])),
            ProjectsState::Loaded(vec![])
        );
    }

    #[test]
    fn unauthorized_means_signed_out_and_other_errors_are_shown() {
        let signed_out =
            ProjectsState::Loading.apply(ProjectsAction::Failed(ApiError::Unauthorized(body())));
        assert_eq!(signed_out, ProjectsState::SignedOut);
        let failed = ProjectsState::Loading.apply(ProjectsAction::Failed(ApiError::Server {
            status: 500,
            body: body(),
        }));
        assert_eq!(failed, ProjectsState::Failed("Session ended".into()));
        assert_eq!(failed.apply(ProjectsAction::Reload), ProjectsState::Loading);
    }
}
