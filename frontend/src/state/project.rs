//! The project page: the users table (filter by state, search, paging, selection), bulk actions,
//! and the throughput history drawn as a chart. Everything shown here is refreshed by polling
//! every [`POLL_MS`] while the page is open; forms on the page keep their own state (see
//! `add_user` and `import`), so a poll never touches what the admin is typing.

use contract::{BulkAction, BulkResult, ProjectView, Selection, UserPage, UserState, UserView};
use uuid::Uuid;

use crate::api::{ApiError, query_value};
use crate::format;

/// How often the page refreshes while it is open.
pub const POLL_MS: u32 = 2_000;
/// Users per page of the table.
pub const PAGE_SIZE: u64 = 25;
/// Throughput samples kept for the chart: five minutes at one per poll.
pub const MAX_SAMPLES: usize = 150;
/// Pause after the last keystroke before a search is sent.
pub const SEARCH_DEBOUNCE_MS: u32 = 300;

/// Project-wide copy speed at one moment: the sum over the users being copied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds on the page's clock (`Date.now()`).
    pub at_ms: f64,
    pub bytes_per_second: f64,
    /// Users being copied at that moment.
    pub working: u64,
}

/// What the last bulk action did, shown until dismissed or replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub ok: bool,
    pub text: String,
    /// One line per user the action failed for.
    pub failures: Vec<String>,
}

/// The filter, search and page a poll asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    pub state: Option<UserState>,
    pub search: String,
    pub offset: u64,
    pub limit: u64,
}

impl UserQuery {
    /// `state=…&q=…&offset=…&limit=…` for `GET /api/admin/projects/{id}/users`.
    pub fn query_string(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.state {
            parts.push(format!("state={}", s.as_str()));
        }
        if !self.search.is_empty() {
            parts.push(format!("q={}", query_value(&self.search)));
        }
        parts.push(format!("offset={}", self.offset));
        parts.push(format!("limit={}", self.limit));
        parts.join("&")
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectPageState {
    pub project: Option<ProjectView>,
    pub page: Option<UserPage>,
    /// The query sequence number `page` answers; differs from `seq` while a new query loads.
    pub page_seq: u64,
    pub filter: Option<UserState>,
    /// The search box as typed.
    pub search_text: String,
    /// The search the table shows (applied after a pause in typing).
    pub search: String,
    pub offset: u64,
    /// Bumped whenever the query changes, so the next fetch starts at once and a late answer to
    /// an older query is recognised and dropped.
    pub seq: u64,
    /// Selected users, in the order they were ticked.
    pub selected: Vec<Uuid>,
    /// Answers so far; each re-arms the polling effect.
    pub polls: u32,
    /// A refresh that failed (the last data stays on screen).
    pub error: Option<String>,
    pub signed_out: bool,
    pub missing: bool,
    pub samples: Vec<Sample>,
    pub bulk_running: Option<BulkAction>,
    pub notice: Option<Notice>,
}

/// One poll's answers, fetched together so the page re-renders once per poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Polled {
    /// The query sequence number the page was fetched for.
    pub seq: u64,
    pub at_ms: f64,
    pub project: ProjectView,
    pub page: UserPage,
    /// The users being copied (for the project-wide throughput).
    pub working: Vec<UserView>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProjectPageAction {
    Polled(Box<Polled>),
    PollFailed(ApiError),
    Filter(Option<UserState>),
    EditSearch(String),
    /// The debounce timer for this text fired.
    ApplySearch(String),
    GoTo(u64),
    Toggle(Uuid),
    /// Select (true) or unselect every user on the current page.
    TogglePage(bool),
    ClearSelection,
    BulkStarted(BulkAction),
    BulkDone(BulkAction, BulkResult),
    BulkFailed(BulkAction, ApiError),
    /// Something changed the users (an add or an import): fetch now.
    Refresh,
    DismissNotice,
}

/// A person-readable name for each bulk action.
pub fn action_label(a: BulkAction) -> &'static str {
    match a {
        BulkAction::Start => "Start",
        BulkAction::ResendInvite => "Resend invite",
        BulkAction::Pause => "Pause",
        BulkAction::Retry => "Retry",
        BulkAction::Delta => "Delta pass",
        BulkAction::RetrySkipped => "Retry skipped",
        BulkAction::MarkVerified => "Mark verified",
        BulkAction::CutOver => "Cut over now",
        BulkAction::Preflight => "Preflight",
        BulkAction::PurgeCredentials => "Purge passwords",
        BulkAction::Delete => "Delete",
    }
}

/// The path segment of a bulk action (`/users/actions/{action}`).
pub fn action_path(a: BulkAction) -> &'static str {
    match a {
        BulkAction::Start => "start",
        BulkAction::ResendInvite => "resend_invite",
        BulkAction::Pause => "pause",
        BulkAction::Retry => "retry",
        BulkAction::Delta => "delta",
        BulkAction::RetrySkipped => "retry_skipped",
        BulkAction::MarkVerified => "mark_verified",
        BulkAction::CutOver => "cut_over",
        BulkAction::Preflight => "preflight",
        BulkAction::PurgeCredentials => "purge_credentials",
        BulkAction::Delete => "delete",
    }
}

/// The actions the bulk toolbar offers, in order.
pub const BULK_ACTIONS: [BulkAction; 10] = [
    BulkAction::Preflight,
    BulkAction::Start,
    BulkAction::ResendInvite,
    BulkAction::Pause,
    BulkAction::Retry,
    BulkAction::Delta,
    BulkAction::RetrySkipped,
    BulkAction::MarkVerified,
    BulkAction::CutOver,
    BulkAction::PurgeCredentials,
];

impl ProjectPageState {
    pub fn query(&self) -> UserQuery {
        UserQuery {
            state: self.filter,
            search: self.search.clone(),
            offset: self.offset,
            limit: PAGE_SIZE,
        }
    }

    /// When to fetch next, in milliseconds; `None` when there is nothing to fetch.
    pub fn poll_delay_ms(&self) -> Option<u32> {
        if self.signed_out || self.missing {
            None
        } else if self.page.is_none() || self.page_seq != self.seq {
            Some(0)
        } else {
            Some(POLL_MS)
        }
    }

    /// Whether the table shows the answer to the current query.
    pub fn is_current(&self) -> bool {
        self.page.is_some() && self.page_seq == self.seq
    }

    /// Users in the project, by the counts of the last poll.
    pub fn total_users(&self) -> u64 {
        self.project
            .as_ref()
            .map_or(0, |p| p.users_by_state.values().sum())
    }

    pub fn count_in(&self, state: UserState) -> u64 {
        self.project
            .as_ref()
            .and_then(|p| p.users_by_state.get(&state).copied())
            .unwrap_or(0)
    }

    /// Whether every user on the current page is selected.
    pub fn page_selected(&self) -> bool {
        self.page.as_ref().is_some_and(|p| {
            !p.items.is_empty() && p.items.iter().all(|u| self.selected.contains(&u.id))
        })
    }

    /// The body of a bulk action on the selection, or on every user with `all`.
    pub fn selection(&self, all: bool) -> Option<Selection> {
        if all {
            return Some(Selection {
                user_ids: vec![],
                all: true,
            });
        }
        (!self.selected.is_empty()).then(|| Selection {
            user_ids: self.selected.clone(),
            all: false,
        })
    }

    /// `(first, last, total)` of the rows shown, 1-based, for "21–40 of 120".
    pub fn range(&self) -> Option<(u64, u64, u64)> {
        let page = self.page.as_ref()?;
        if page.items.is_empty() {
            return None;
        }
        Some((
            page.offset + 1,
            page.offset + page.items.len() as u64,
            page.total,
        ))
    }

    pub fn has_previous(&self) -> bool {
        self.offset > 0
    }

    pub fn has_next(&self) -> bool {
        self.page
            .as_ref()
            .is_some_and(|p| p.offset + (p.items.len() as u64) < p.total)
    }

    /// The current project-wide throughput, from the last sample.
    pub fn current_rate(&self) -> Option<f64> {
        self.samples.last().map(|s| s.bytes_per_second)
    }

    fn requery(&mut self) {
        self.seq += 1;
    }

    fn email_of(&self, id: Uuid) -> String {
        self.page
            .as_ref()
            .and_then(|p| p.items.iter().find(|u| u.id == id))
            .map_or_else(|| id.to_string(), |u| u.source_email.clone())
    }

    pub fn apply(mut self, action: ProjectPageAction) -> Self {
        match action {
            ProjectPageAction::Polled(polled) => {
                let Polled {
                    seq,
                    at_ms,
                    project,
                    page,
                    working,
                } = *polled;
                self.project = Some(project);
                self.error = None;
                self.polls += 1;
                let working: Vec<&UserView> = working
                    .iter()
                    .filter(|u| u.state == UserState::Working)
                    .collect();
                self.samples.push(Sample {
                    at_ms,
                    bytes_per_second: working
                        .iter()
                        .filter_map(|u| u.progress.throughput_bps)
                        .filter(|b| b.is_finite() && *b >= 0.0)
                        .sum(),
                    working: working.len() as u64,
                });
                if self.samples.len() > MAX_SAMPLES {
                    let extra = self.samples.len() - MAX_SAMPLES;
                    self.samples.drain(..extra);
                }
                if seq == self.seq {
                    // The filter can empty the page under us (users moved on): step back.
                    if page.items.is_empty() && page.offset > 0 && page.total > 0 {
                        self.offset = (page.total - 1) / PAGE_SIZE * PAGE_SIZE;
                        self.requery();
                    } else {
                        self.page = Some(page);
                        self.page_seq = seq;
                    }
                }
            }
            ProjectPageAction::PollFailed(err) => {
                self.polls += 1;
                match err {
                    ApiError::Unauthorized(_) => self.signed_out = true,
                    ApiError::NotFound(_) => self.missing = true,
                    other => self.error = Some(format!("Could not refresh: {}", other.message())),
                }
            }
            ProjectPageAction::Filter(state) => {
                if self.filter != state {
                    self.filter = state;
                    self.offset = 0;
                    self.requery();
                }
            }
            ProjectPageAction::EditSearch(text) => self.search_text = text,
            ProjectPageAction::ApplySearch(text) => {
                let applied = text.trim().to_owned();
                if text == self.search_text && applied != self.search {
                    self.search = applied;
                    self.offset = 0;
                    self.requery();
                }
            }
            ProjectPageAction::GoTo(offset) => {
                if offset != self.offset {
                    self.offset = offset;
                    self.requery();
                }
            }
            ProjectPageAction::Toggle(id) => {
                if self.selected.contains(&id) {
                    self.selected.retain(|s| *s != id);
                } else {
                    self.selected.push(id);
                }
            }
            ProjectPageAction::TogglePage(on) => {
                if let Some(page) = &self.page {
                    for u in &page.items {
                        if !on {
                            self.selected.retain(|s| *s != u.id);
                        } else if !self.selected.contains(&u.id) {
                            self.selected.push(u.id);
                        }
                    }
                }
            }
            ProjectPageAction::ClearSelection => self.selected.clear(),
            ProjectPageAction::BulkStarted(action) => {
                self.bulk_running = Some(action);
                self.notice = None;
            }
            ProjectPageAction::BulkDone(action, result) => {
                self.bulk_running = None;
                let done = result.done.len() as u64;
                let failures: Vec<String> = result
                    .failed
                    .iter()
                    .map(|f| format!("{}: {}", self.email_of(f.user_id), f.message))
                    .collect();
                let text = match (done, failures.len()) {
                    (0, 0) => format!("{}: there was nobody to apply it to", action_label(action)),
                    (_, 0) => format!(
                        "{}: done for {}",
                        action_label(action),
                        format::plural(done, "user", "users")
                    ),
                    (_, n) => format!(
                        "{}: done for {}, not possible for {}",
                        action_label(action),
                        format::plural(done, "user", "users"),
                        format::plural(n as u64, "user", "users")
                    ),
                };
                self.notice = Some(Notice {
                    ok: failures.is_empty(),
                    text,
                    failures,
                });
                self.selected.clear();
                self.requery();
            }
            ProjectPageAction::BulkFailed(action, err) => {
                self.bulk_running = None;
                if matches!(err, ApiError::Unauthorized(_)) {
                    self.signed_out = true;
                }
                self.notice = Some(Notice {
                    ok: false,
                    text: format!("{}: {}", action_label(action), err.message()),
                    failures: vec![],
                });
            }
            ProjectPageAction::Refresh => self.requery(),
            ProjectPageAction::DismissNotice => self.notice = None,
        }
        self
    }
}

super::reducible!(ProjectPageState, ProjectPageAction);

/// Fixtures shared by the reducer tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use contract::{Progress, UserState, UserView};
    use time::OffsetDateTime;
    use uuid::Uuid;

    pub fn user(n: u128, state: UserState) -> UserView {
        UserView {
            id: Uuid::from_u128(n),
            project_id: Uuid::from_u128(1),
            source_email: format!("u{n}@old.example"),
            target_email: format!("u{n}@new.example"),
            display_name: String::new(),
            state,
            pass: 1,
            progress: Progress::default(),
            last_error: None,
            priority: 0,
            waiting_since: None,
            cutover_at: None,
            cut_over_at: None,
            last_sync: None,
            preflight: None,
            has_credentials: false,
            credentials_until: None,
            invite_sent_at: None,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            version: 1,
        }
    }
}

/// "Connections now: the source server x:993 16 of 16, 40 waiting (next of this project:
/// a@…) · …": how much of each capped server the copy holds (over every project using it)
/// and who waits for it.
pub fn connections_now(connections: &[contract::ConnectionUse]) -> String {
    let parts: Vec<String> = connections
        .iter()
        .map(|c| {
            let mut part = format!("{} {} of {}", c.what, c.in_use, c.cap);
            if c.waiting > 0 {
                part.push_str(&format!(", {} waiting", c.waiting));
                if !c.next.is_empty() {
                    part.push_str(&format!(" (next of this project: {})", c.next.join(", ")));
                }
            }
            part
        })
        .collect();
    format!("Connections now: {}", parts.join(" · "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::{BulkFailure, ConnectorView, CopyOptions, InviteTo, Security};
    use time::OffsetDateTime;

    fn user(n: u128, state: UserState, bps: Option<f64>) -> UserView {
        let mut u = tests_support::user(n, state);
        u.progress.throughput_bps = bps;
        u
    }

    #[test]
    fn the_connections_line_says_who_waits_for_a_full_server() {
        let use_ = |what: &str, in_use, waiting, next: &[&str]| contract::ConnectionUse {
            what: what.into(),
            in_use,
            cap: 16,
            waiting,
            next: next.iter().map(|n| n.to_string()).collect(),
        };
        assert_eq!(
            connections_now(&[
                use_(
                    "the source server old.example:993",
                    16,
                    40,
                    &["a@old.example", "b@old.example"]
                ),
                use_("the target server new.example:993", 3, 0, &[]),
            ]),
            "Connections now: the source server old.example:993 16 of 16, 40 waiting (next of this project: a@old.example, b@old.example) · the target server new.example:993 3 of 16"
        );
    }

    fn project() -> ProjectView {
        let c = ConnectorView {
            kind: contract::ConnectorKind::Imap,
            host: "h.example".into(),
            port: 993,
            security: Security::Tls,
            auth: contract::AuthView::PerUser,
        };
        ProjectView {
            id: Uuid::from_u128(1),
            name: "P".into(),
            source: c.clone(),
            target: c,
            invite_to: InviteTo::Source,
            admin_email: None,
            notify_user: false,
            copy: CopyOptions::default(),
            retention: Default::default(),
            sync: Default::default(),
            closed_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            version: 1,
            users_by_state: [(UserState::New, 30), (UserState::Working, 2)]
                .into_iter()
                .collect(),
            connections: vec![],
            preflight: None,
        }
    }

    fn page(offset: u64, ids: std::ops::Range<u128>, total: u64) -> UserPage {
        UserPage {
            items: ids.map(|n| user(n, UserState::New, None)).collect(),
            total,
            offset,
            limit: PAGE_SIZE,
        }
    }

    fn polled(state: ProjectPageState, page: UserPage, working: Vec<UserView>) -> ProjectPageState {
        let seq = state.seq;
        state.apply(ProjectPageAction::Polled(Box::new(Polled {
            seq,
            at_ms: 1000.0,
            project: project(),
            page,
            working,
        })))
    }

    #[test]
    fn the_first_fetch_is_immediate_then_polls_every_two_seconds() {
        let state = ProjectPageState::default();
        assert_eq!(state.poll_delay_ms(), Some(0));
        let state = polled(state, page(0, 0..25, 32), vec![]);
        assert_eq!(state.poll_delay_ms(), Some(POLL_MS));
        assert_eq!(state.total_users(), 32);
        assert_eq!(state.range(), Some((1, 25, 32)));
        assert!(state.has_next());
        assert!(!state.has_previous());
    }

    #[test]
    fn a_late_answer_to_an_older_query_does_not_replace_the_table() {
        // Arrange: a first page is shown, then the admin filters.
        let state = polled(ProjectPageState::default(), page(0, 0..25, 32), vec![]);
        let old_seq = state.seq;
        let state = state.apply(ProjectPageAction::Filter(Some(UserState::Working)));
        assert_eq!(
            state.poll_delay_ms(),
            Some(0),
            "the new query is fetched at once"
        );
        // Act: the answer to the old query arrives late.
        let state = state.apply(ProjectPageAction::Polled(Box::new(Polled {
            seq: old_seq,
            at_ms: 2000.0,
            project: project(),
            page: page(0, 100..101, 1),
            working: vec![],
        })));
        // Assert
        assert!(!state.is_current());
        assert_eq!(state.page.as_ref().unwrap().items.len(), 25);
        assert_eq!(state.query().state, Some(UserState::Working));
    }

    #[test]
    fn search_applies_only_the_text_still_in_the_box() {
        let state = ProjectPageState::default()
            .apply(ProjectPageAction::EditSearch("an".into()))
            .apply(ProjectPageAction::EditSearch("ann".into()));
        let seq = state.seq;
        // The timer of the older keystroke fires: nothing happens.
        let state = state.apply(ProjectPageAction::ApplySearch("an".into()));
        assert_eq!((state.search.as_str(), state.seq), ("", seq));
        let state = state.apply(ProjectPageAction::ApplySearch("ann".into()));
        assert_eq!(state.search, "ann");
        assert_eq!(state.seq, seq + 1);
        assert_eq!(
            state.query().query_string(),
            "q=ann&offset=0&limit=25",
            "a new search starts on the first page"
        );
    }

    #[test]
    fn paging_and_filters_build_the_query() {
        let state = ProjectPageState::default()
            .apply(ProjectPageAction::Filter(Some(UserState::EmailSent)))
            .apply(ProjectPageAction::GoTo(25));
        assert_eq!(
            state.query().query_string(),
            "state=email_sent&offset=25&limit=25"
        );
        let state = state.apply(ProjectPageAction::Filter(None));
        assert_eq!(state.offset, 0);
    }

    #[test]
    fn an_emptied_last_page_steps_back() {
        let state = ProjectPageState::default().apply(ProjectPageAction::GoTo(50));
        let state = polled(state, page(50, 0..0, 30), vec![]);
        assert_eq!(state.offset, 25);
        assert_eq!(state.poll_delay_ms(), Some(0));
    }

    #[test]
    fn selection_survives_polls_and_builds_the_bulk_body() {
        // Arrange
        let state = polled(ProjectPageState::default(), page(0, 0..3, 3), vec![]);
        assert_eq!(state.selection(false), None, "nothing selected yet");
        // Act
        let state = state
            .apply(ProjectPageAction::Toggle(Uuid::from_u128(1)))
            .apply(ProjectPageAction::Toggle(Uuid::from_u128(2)));
        let state = polled(state, page(0, 0..3, 3), vec![]);
        // Assert
        let sel = state.selection(false).unwrap();
        assert_eq!(sel.user_ids, vec![Uuid::from_u128(1), Uuid::from_u128(2)]);
        assert!(!sel.all);
        assert!(state.selection(true).unwrap().all);
        assert!(!state.page_selected());
        let state = state.apply(ProjectPageAction::TogglePage(true));
        assert!(state.page_selected());
        let state = state.apply(ProjectPageAction::TogglePage(false));
        assert!(state.selected.is_empty());
    }

    #[test]
    fn a_bulk_result_names_the_users_it_failed_for_and_refreshes() {
        let state = polled(ProjectPageState::default(), page(0, 0..3, 3), vec![])
            .apply(ProjectPageAction::Toggle(Uuid::from_u128(1)))
            .apply(ProjectPageAction::BulkStarted(BulkAction::Start));
        assert_eq!(state.bulk_running, Some(BulkAction::Start));
        let seq = state.seq;
        let state = state.apply(ProjectPageAction::BulkDone(
            BulkAction::Start,
            BulkResult {
                done: vec![Uuid::from_u128(0), Uuid::from_u128(2)],
                failed: vec![BulkFailure {
                    user_id: Uuid::from_u128(1),
                    message: "already copying".into(),
                }],
            },
        ));
        let notice = state.notice.clone().unwrap();
        assert!(!notice.ok);
        assert_eq!(
            notice.text,
            "Start: done for 2 users, not possible for 1 user"
        );
        assert_eq!(notice.failures, vec!["u1@old.example: already copying"]);
        assert!(state.selected.is_empty());
        assert_eq!(state.seq, seq + 1);
        assert_eq!(state.bulk_running, None);
    }

    #[test]
    fn throughput_samples_sum_the_users_being_copied_and_are_capped() {
        let working = vec![
            user(1, UserState::Working, Some(1000.0)),
            user(2, UserState::Working, Some(500.0)),
            user(3, UserState::Completed, Some(9999.0)),
        ];
        let mut state = ProjectPageState::default();
        for _ in 0..(MAX_SAMPLES + 5) {
            state = polled(state, page(0, 0..1, 1), working.clone());
        }
        assert_eq!(state.samples.len(), MAX_SAMPLES);
        let last = state.samples.last().unwrap();
        assert_eq!(last.bytes_per_second, 1500.0);
        assert_eq!(last.working, 2);
        assert_eq!(state.current_rate(), Some(1500.0));
    }

    #[test]
    fn a_failed_refresh_keeps_the_table_and_signed_out_stops_polling() {
        let state = polled(ProjectPageState::default(), page(0, 0..3, 3), vec![])
            .apply(ProjectPageAction::PollFailed(ApiError::Network("x".into())));
        assert!(state.error.is_some());
        assert!(state.page.is_some());
        assert_eq!(state.poll_delay_ms(), Some(POLL_MS));
        let body = contract::ApiErrorBody {
            error: "unauthorized".into(),
            message: "sign in first".into(),
            details: serde_json::Value::Null,
        };
        let state = state.apply(ProjectPageAction::PollFailed(ApiError::Unauthorized(body)));
        assert_eq!(state.poll_delay_ms(), None);
    }
}
