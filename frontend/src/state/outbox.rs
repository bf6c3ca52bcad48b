//! The local outbox (local mode only): the invite mails the server would have sent, so the admin
//! can hand the links out by other means.

use contract::OutboxMail;

use crate::api::ApiError;

#[derive(Debug, Clone, Default, PartialEq)]
pub enum OutboxState {
    #[default]
    Loading,
    Loaded {
        mails: Vec<OutboxMail>,
        /// The id of the mail whose link was copied last.
        copied: Option<String>,
    },
    /// The server sends real mail (SMTP or SES) and keeps no outbox.
    NoOutbox,
    SignedOut,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum OutboxAction {
    Reload,
    Loaded(Vec<OutboxMail>),
    Failed(ApiError),
    Copied(String),
}

/// The credential link in an invite mail's text.
pub fn invite_link(text: &str) -> Option<&str> {
    text.split_whitespace()
        .find(|w| w.contains("/migrate/"))
        .map(|w| w.trim_end_matches(['.', ',', ')', '>']))
}

impl OutboxState {
    pub fn apply(self, action: OutboxAction) -> Self {
        match action {
            OutboxAction::Reload => OutboxState::Loading,
            // The server lists the newest first.
            OutboxAction::Loaded(mails) => OutboxState::Loaded {
                mails,
                copied: None,
            },
            OutboxAction::Failed(ApiError::Unauthorized(_)) => OutboxState::SignedOut,
            OutboxAction::Failed(ApiError::NotFound(_)) => OutboxState::NoOutbox,
            OutboxAction::Failed(err) => OutboxState::Failed(err.message()),
            OutboxAction::Copied(id) => match self {
                OutboxState::Loaded { mails, .. } => OutboxState::Loaded {
                    mails,
                    copied: Some(id),
                },
                other => other,
            },
        }
    }
}

super::reducible!(OutboxState, OutboxAction);

#[cfg(test)]
mod tests {
    use super::*;
    use contract::ApiErrorBody;
    use time::OffsetDateTime;

    fn mail(id: &str, minutes: i64) -> OutboxMail {
        OutboxMail {
            id: id.into(),
            to: "ann@old.example".into(),
            subject: "Action needed".into(),
            sent_at: OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(minutes),
            text: "Hello Ann,\n\nOpen this link:\n\nhttp://127.0.0.1:8080/migrate/abcDEF_123\n\nThe link is personal.".into(),
        }
    }

    #[test]
    fn the_link_is_found_in_the_mail_text() {
        assert_eq!(
            invite_link(&mail("1", 0).text),
            Some("http://127.0.0.1:8080/migrate/abcDEF_123")
        );
        assert_eq!(
            invite_link("(see https://x.example/migrate/t)."),
            Some("https://x.example/migrate/t")
        );
        assert_eq!(invite_link("no link"), None);
    }

    #[test]
    fn mails_keep_the_servers_order_and_a_copy_is_acknowledged() {
        let state = OutboxState::default()
            .apply(OutboxAction::Loaded(vec![mail("new", 5), mail("old", 0)]))
            .apply(OutboxAction::Copied("old".into()));
        match state {
            OutboxState::Loaded { mails, copied } => {
                assert_eq!(mails[0].id, "new");
                assert_eq!(copied.as_deref(), Some("old"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_404_means_the_server_sends_real_mail() {
        let body = ApiErrorBody {
            error: "not_found".into(),
            message: "this server sends real mail and keeps no outbox".into(),
            details: serde_json::Value::Null,
        };
        assert_eq!(
            OutboxState::Loading.apply(OutboxAction::Failed(ApiError::NotFound(body))),
            OutboxState::NoOutbox
        );
    }
}
