//! One user of a project: progress per folder, the verification report (source against target
//! per folder), skipped messages with their reasons, the event log, and the actions on the user.
//! Polled while the page is open, faster while the copy runs.

use contract::{BulkAction, FolderView, SkippedItem, UserDetail, UserState, UserView};
use serde_json::Value;

use crate::api::ApiError;
use crate::state::project::action_label;

/// Refresh interval while the user is queued or being copied.
pub const ACTIVE_POLL_MS: u32 = 2_000;
/// Refresh interval otherwise (the user may still enter a password, or another admin act).
pub const IDLE_POLL_MS: u32 = 5_000;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserDetailState {
    pub detail: Option<UserDetail>,
    pub error: Option<String>,
    pub signed_out: bool,
    pub missing: bool,
    pub polls: u32,
    pub action_running: Option<BulkAction>,
    /// The outcome of the last action: `(ok, text)`.
    pub notice: Option<(bool, String)>,
    /// The last preflight's report, and whether one runs now.
    pub preflight: Option<Preflight>,
    pub preflight_running: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserDetailAction {
    Loaded(UserDetail),
    Failed(ApiError),
    ActionStarted(BulkAction),
    ActionDone(BulkAction, UserView),
    ActionFailed(BulkAction, ApiError),
    PreflightStarted,
    PreflightDone(Preflight),
    PreflightFailed(ApiError),
}

/// How a folder compares between source and target after verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not verified yet (the target was not counted).
    NotChecked,
    Match,
    /// The target has fewer messages than the source.
    Missing(u64),
    /// The target has more (mail delivered there meanwhile).
    Extra(u64),
}

impl Verdict {
    pub fn label(self) -> String {
        match self {
            Verdict::NotChecked => "Not checked yet".into(),
            Verdict::Match => "Match".into(),
            Verdict::Missing(n) => format!("{n} missing on the target"),
            Verdict::Extra(n) => format!("{n} more on the target"),
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Verdict::NotChecked => "verdict verdict-pending",
            Verdict::Match | Verdict::Extra(_) => "verdict verdict-ok",
            Verdict::Missing(_) => "verdict verdict-bad",
        }
    }
}

/// One row of the verification report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRow {
    pub source_name: String,
    pub target_name: String,
    pub source_messages: u64,
    pub target_messages: Option<u64>,
    pub source_bytes: u64,
    pub target_bytes: Option<u64>,
    pub skipped: u64,
    /// The name the target refused, when the folder went elsewhere.
    pub renamed_from: Option<String>,
    /// Copies read back and compared byte for byte, and how many of them differ.
    pub content_checked: u64,
    pub altered: u64,
    pub verdict: Verdict,
}

pub fn verify_row(f: &FolderView) -> VerifyRow {
    let verdict = match f.target_messages {
        None => Verdict::NotChecked,
        Some(t) if t == f.source_messages => Verdict::Match,
        Some(t) if t < f.source_messages => Verdict::Missing(f.source_messages - t),
        Some(t) => Verdict::Extra(t - f.source_messages),
    };
    VerifyRow {
        source_name: f.source_name.clone(),
        target_name: f.target_name.clone(),
        source_messages: f.source_messages,
        target_messages: f.target_messages,
        source_bytes: f.source_bytes,
        target_bytes: f.target_bytes,
        skipped: skipped_count(f),
        renamed_from: f.renamed_from.clone(),
        content_checked: f.content_checked,
        altered: f.altered_count.max(f.altered.len() as u64),
        verdict,
    }
}

/// The report's headline over all folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifySummary {
    pub folders: usize,
    pub checked: usize,
    pub matching: usize,
    pub missing_messages: u64,
}

impl VerifySummary {
    pub fn of(rows: &[VerifyRow]) -> Self {
        VerifySummary {
            folders: rows.len(),
            checked: rows
                .iter()
                .filter(|r| r.verdict != Verdict::NotChecked)
                .count(),
            matching: rows
                .iter()
                .filter(|r| matches!(r.verdict, Verdict::Match | Verdict::Extra(_)))
                .count(),
            missing_messages: rows
                .iter()
                .map(|r| match r.verdict {
                    Verdict::Missing(n) => n,
                    _ => 0,
                })
                .sum(),
        }
    }

    pub fn sentence(&self) -> String {
        if self.folders == 0 {
            "No folders yet: the copy has not been planned".into()
        } else if self.checked == 0 {
            "The target is counted when the copy of a folder is finished".into()
        } else if self.checked < self.folders {
            format!(
                "{} of {} folders checked so far; {} match",
                self.checked, self.folders, self.matching
            )
        } else if self.missing_messages == 0 {
            format!(
                "All {} folders match: every message of the source is on the target",
                self.folders
            )
        } else {
            format!(
                "{} of {} folders match; {} messages are missing on the target (see skipped items)",
                self.matching, self.folders, self.missing_messages
            )
        }
    }
}

/// Skipped messages of every folder, with the folder they are in.
/// How many messages the folder skipped (the server lists the first ones; an older server sends
/// no count, and lists them all).
pub fn skipped_count(f: &FolderView) -> u64 {
    f.skipped_count.max(f.skipped.len() as u64)
}

/// Copies the target stored differently, with the folder they are in.
pub fn altered_items(folders: &[FolderView]) -> Vec<(String, contract::AlteredItem)> {
    folders
        .iter()
        .flat_map(|f| f.altered.iter().map(|a| (f.source_name.clone(), a.clone())))
        .collect()
}

pub fn skipped_items(folders: &[FolderView]) -> Vec<(String, SkippedItem)> {
    folders
        .iter()
        .flat_map(|f| f.skipped.iter().map(|s| (f.source_name.clone(), s.clone())))
        .collect()
}

/// Which actions make sense for a user in this state (the server still decides).
pub fn actions_for(state: UserState) -> Vec<BulkAction> {
    use BulkAction as A;
    match state {
        UserState::New => vec![A::Start],
        UserState::EmailSent => vec![A::ResendInvite, A::Start],
        UserState::Scheduled | UserState::Working => vec![A::Pause],
        UserState::Completed => vec![
            A::MarkVerified,
            A::Delta,
            A::CutOver,
            A::RetrySkipped,
            A::PurgeCredentials,
        ],
        UserState::Verified => vec![A::Delta, A::CutOver, A::RetrySkipped],
        UserState::CutOver => vec![A::Delta],
        UserState::Failed => vec![
            A::Retry,
            A::ResendInvite,
            A::RetrySkipped,
            A::PurgeCredentials,
        ],
        UserState::Paused => vec![A::Start, A::Retry, A::PurgeCredentials],
    }
}

impl UserDetailState {
    /// Whether a retry could copy something a pass skipped (the project's own rules are not
    /// retried: changing them is the admin's fix).
    pub fn has_retryable_skips(&self) -> bool {
        self.detail.as_ref().is_some_and(|d| {
            d.folders
                .iter()
                .flat_map(|f| &f.skipped)
                .any(|i| i.cause.is_retryable())
        })
    }

    pub fn poll_delay_ms(&self) -> Option<u32> {
        if self.signed_out || self.missing {
            return None;
        }
        match &self.detail {
            None => Some(0),
            Some(d) if matches!(d.user.state, UserState::Scheduled | UserState::Working) => {
                Some(ACTIVE_POLL_MS)
            }
            Some(_) => Some(IDLE_POLL_MS),
        }
    }

    pub fn verify_rows(&self) -> Vec<VerifyRow> {
        self.detail
            .as_ref()
            .map(|d| d.folders.iter().map(verify_row).collect())
            .unwrap_or_default()
    }

    /// Events as the server lists them: newest first.
    pub fn events(&self) -> &[contract::EventView] {
        self.detail.as_ref().map_or(&[], |d| d.events.as_slice())
    }

    pub fn apply(mut self, action: UserDetailAction) -> Self {
        match action {
            UserDetailAction::Loaded(detail) => {
                self.detail = Some(detail);
                self.error = None;
                self.polls += 1;
            }
            UserDetailAction::Failed(err) => {
                self.polls += 1;
                match err {
                    ApiError::Unauthorized(_) => self.signed_out = true,
                    ApiError::NotFound(_) => self.missing = true,
                    other => self.error = Some(format!("Could not refresh: {}", other.message())),
                }
            }
            UserDetailAction::ActionStarted(a) => {
                self.action_running = Some(a);
                self.notice = None;
            }
            UserDetailAction::ActionDone(a, user) => {
                self.action_running = None;
                self.notice = Some((true, format!("{}: done", action_label(a))));
                if let Some(d) = &mut self.detail {
                    d.user = user;
                }
            }
            UserDetailAction::ActionFailed(a, err) => {
                self.action_running = None;
                if matches!(err, ApiError::Unauthorized(_)) {
                    self.signed_out = true;
                }
                self.notice = Some((false, format!("{}: {}", action_label(a), err.message())));
            }
            UserDetailAction::PreflightStarted => {
                self.preflight_running = true;
                self.notice = None;
            }
            UserDetailAction::PreflightDone(report) => {
                self.preflight_running = false;
                self.preflight = Some(report);
            }
            UserDetailAction::PreflightFailed(err) => {
                self.preflight_running = false;
                if matches!(err, ApiError::Unauthorized(_)) {
                    self.signed_out = true;
                }
                self.notice = Some((false, format!("Preflight: {}", err.message())));
            }
        }
        self
    }
}

super::reducible!(UserDetailState, UserDetailAction);

/// A preflight's report (`contract::PreflightReport`) as the server sent it, read field by
/// field (see `api::endpoints::preflight`).
#[derive(Debug, Clone, PartialEq)]
pub struct Preflight(pub Value);

impl Preflight {
    fn n(&self, field: &str) -> u64 {
        self.0[field].as_u64().unwrap_or(0)
    }

    fn words(&self, field: &str) -> Vec<String> {
        self.0[field]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What would not go as planned, in plain words.
    pub fn problems(&self) -> Vec<String> {
        self.words("problems")
    }

    /// "Source offers CONDSTORE UIDPLUS · target offers …".
    pub fn capabilities(&self) -> String {
        format!(
            "Source offers {} · target offers {}",
            self.words("source_capabilities").join(" "),
            self.words("target_capabilities").join(" ")
        )
    }

    /// Each folder in one line: "Archive/2020 → Archive.2020: 12 messages, 1.5 MiB, 1 too
    /// large".
    pub fn folders(&self) -> Vec<String> {
        let Some(folders) = self.0["folders"].as_array() else {
            return Vec::new();
        };
        folders
            .iter()
            .map(|f| {
                let (source, target) = (f["source"].as_str(), f["target"].as_str());
                let mut line = source.unwrap_or_default().to_owned();
                if target != source {
                    line.push_str(" → ");
                    line.push_str(target.unwrap_or_default());
                }
                line.push_str(&format!(
                    ": {} messages, {}",
                    crate::format::count(f["messages"].as_u64().unwrap_or(0)),
                    crate::format::bytes(f["bytes"].as_u64().unwrap_or(0))
                ));
                let over = f["oversize_messages"].as_u64().unwrap_or(0);
                if over > 0 {
                    line.push_str(&format!(", {over} too large"));
                }
                line
            })
            .collect()
    }

    /// The report in one line: "89 messages, 1.0 MiB in 5 folders · less than a minute at
    /// 4.8 MiB/s (assumed) · 1 too large for the target · does not fit the target's quota".
    pub fn summary(&self) -> String {
        let folders = self.0["folders"].as_array().map_or(0, Vec::len);
        let mut parts = vec![
            format!(
                "{} messages, {} in {folders} folders",
                crate::format::count(self.n("messages")),
                crate::format::bytes(self.n("bytes")),
            ),
            format!(
                "{} at {}/s ({})",
                crate::format::eta(self.n("estimate_seconds")),
                crate::format::bytes(self.n("rate_bytes_per_second")),
                if self.0["rate_measured"].as_bool() == Some(true) {
                    "measured on this mailbox"
                } else {
                    "assumed"
                }
            ),
        ];
        let over = self.n("oversize_messages");
        if over > 0 {
            parts.push(format!(
                "{} too large for the target",
                crate::format::count(over)
            ));
        }
        match self.0["fits_quota"].as_bool() {
            Some(false) => parts.push("does not fit the target's quota".into()),
            Some(true) => parts.push("fits the target's quota".into()),
            None => {}
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preflight_reads_in_one_line_with_what_would_not_fit() {
        // Built as the server builds it, so a renamed field fails here.
        let report = contract::PreflightReport {
            user_id: uuid::Uuid::nil(),
            checked_at: time::OffsetDateTime::UNIX_EPOCH,
            folders: vec![contract::PreflightFolder {
                source: "Archive/2020".into(),
                target: "Archive.2020".into(),
                messages: 12,
                bytes: 1_572_864,
                oversize_messages: 1,
                renamed: None,
            }],
            messages: 89,
            bytes: 1_091_194,
            oversize_messages: 1,
            largest_message_bytes: 300_270,
            target_max_message_bytes: Some(200_000),
            target_quota: None,
            fits_quota: Some(false),
            source_capabilities: vec!["CONDSTORE".into()],
            target_capabilities: vec!["UIDPLUS".into(), "QUOTA".into()],
            estimate_seconds: 0,
            rate_bytes_per_second: 5_000_000,
            rate_measured: false,
            problems: vec!["over quota".into()],
        };
        let report = Preflight(serde_json::to_value(&report).unwrap());
        assert_eq!(
            report.summary(),
            "89 messages, 1.0 MiB in 1 folders · less than a minute at 4.8 MiB/s (assumed) · 1 too large for the target · does not fit the target's quota"
        );
        assert_eq!(
            report.folders(),
            ["Archive/2020 → Archive.2020: 12 messages, 1.5 MiB, 1 too large"]
        );
        assert_eq!(report.problems(), ["over quota"]);
        assert_eq!(
            report.capabilities(),
            "Source offers CONDSTORE · target offers UIDPLUS QUOTA"
        );
        let mut state = UserDetailState::default().apply(UserDetailAction::PreflightStarted);
        assert!(state.preflight_running);
        state = state.apply(UserDetailAction::PreflightDone(report.clone()));
        assert_eq!(state.preflight, Some(report));
        assert!(!state.preflight_running);
    }
    use contract::EventView;
    use time::OffsetDateTime;

    fn folder(name: &str, source: u64, target: Option<u64>, skipped: usize) -> FolderView {
        FolderView {
            source_name: name.into(),
            target_name: name.replace('/', "."),
            source_messages: source,
            source_bytes: source * 1000,
            copied_messages: source,
            copied_bytes: source * 1000,
            target_messages: target,
            target_bytes: target.map(|t| t * 1000),
            skipped: (0..skipped)
                .map(|i| SkippedItem {
                    uid: i as u32 + 1,
                    size: 60_000_000,
                    reason: "larger than the limit".into(),
                    cause: contract::SkipCause::TargetRefused,
                })
                .collect(),
            skipped_count: skipped as u64,
            renamed_from: None,
            content_checked: 0,
            altered: Vec::new(),
            altered_count: 0,
            done: target.is_some(),
        }
    }

    fn detail(state: UserState, folders: Vec<FolderView>) -> UserDetail {
        let mut user = crate::state::project::tests_support::user(1, state);
        user.state = state;
        UserDetail {
            user,
            folders,
            events: vec![
                EventView {
                    at: OffsetDateTime::UNIX_EPOCH + time::Duration::minutes(5),
                    message: "copy started".into(),
                },
                EventView {
                    at: OffsetDateTime::UNIX_EPOCH,
                    message: "added".into(),
                },
            ],
        }
    }

    #[test]
    fn verdicts_compare_source_and_target_counts() {
        assert_eq!(
            verify_row(&folder("INBOX", 10, None, 0)).verdict,
            Verdict::NotChecked
        );
        assert_eq!(
            verify_row(&folder("INBOX", 10, Some(10), 0)).verdict,
            Verdict::Match
        );
        assert_eq!(
            verify_row(&folder("INBOX", 10, Some(8), 2)).verdict,
            Verdict::Missing(2)
        );
        assert_eq!(
            verify_row(&folder("INBOX", 10, Some(11), 0)).verdict,
            Verdict::Extra(1)
        );
        assert_eq!(Verdict::Missing(2).label(), "2 missing on the target");
    }

    #[test]
    fn the_summary_says_whether_everything_arrived() {
        let rows: Vec<VerifyRow> = [
            folder("INBOX", 10, Some(10), 0),
            folder("Sent", 3, Some(3), 0),
        ]
        .iter()
        .map(verify_row)
        .collect();
        assert_eq!(
            VerifySummary::of(&rows).sentence(),
            "All 2 folders match: every message of the source is on the target"
        );
        let rows: Vec<VerifyRow> = [folder("INBOX", 10, Some(9), 1), folder("Sent", 3, None, 0)]
            .iter()
            .map(verify_row)
            .collect();
        let s = VerifySummary::of(&rows);
        assert_eq!((s.checked, s.matching, s.missing_messages), (1, 0, 1));
        assert_eq!(s.sentence(), "1 of 2 folders checked so far; 0 match");
        assert!(VerifySummary::of(&[]).sentence().starts_with("No folders"));
    }

    #[test]
    fn polling_is_fast_while_copying_and_stops_when_the_user_is_gone() {
        let state = UserDetailState::default();
        assert_eq!(state.poll_delay_ms(), Some(0));
        let state = state.apply(UserDetailAction::Loaded(detail(UserState::Working, vec![])));
        assert_eq!(state.poll_delay_ms(), Some(ACTIVE_POLL_MS));
        let state = state.apply(UserDetailAction::Loaded(detail(
            UserState::Completed,
            vec![],
        )));
        assert_eq!(state.poll_delay_ms(), Some(IDLE_POLL_MS));
        let body = contract::ApiErrorBody {
            error: "not_found".into(),
            message: "user not found".into(),
            details: serde_json::Value::Null,
        };
        let state = state.apply(UserDetailAction::Failed(ApiError::NotFound(body)));
        assert_eq!(state.poll_delay_ms(), None);
    }

    #[test]
    fn skipped_items_carry_their_folder_and_events_list_newest_first() {
        let state = UserDetailState::default().apply(UserDetailAction::Loaded(detail(
            UserState::Completed,
            vec![
                folder("INBOX", 10, Some(9), 1),
                folder("Sent", 3, Some(3), 0),
            ],
        )));
        let skipped = skipped_items(&state.detail.as_ref().unwrap().folders);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].0, "INBOX");
        assert_eq!(skipped[0].1.reason, "larger than the limit");
        assert_eq!(state.events()[0].message, "copy started");
    }

    #[test]
    fn an_action_updates_the_user_at_once_and_reports_failures() {
        let state = UserDetailState::default()
            .apply(UserDetailAction::Loaded(detail(
                UserState::Completed,
                vec![],
            )))
            .apply(UserDetailAction::ActionStarted(BulkAction::MarkVerified));
        assert_eq!(state.action_running, Some(BulkAction::MarkVerified));
        let mut verified = state.detail.as_ref().unwrap().user.clone();
        verified.state = UserState::Verified;
        let state = state.apply(UserDetailAction::ActionDone(
            BulkAction::MarkVerified,
            verified,
        ));
        assert_eq!(
            state.detail.as_ref().unwrap().user.state,
            UserState::Verified
        );
        assert_eq!(state.notice, Some((true, "Mark verified: done".into())));
        assert_eq!(
            actions_for(UserState::Verified),
            vec![
                BulkAction::Delta,
                BulkAction::CutOver,
                BulkAction::RetrySkipped
            ]
        );
        assert_eq!(actions_for(UserState::CutOver), vec![BulkAction::Delta]);
    }
}
