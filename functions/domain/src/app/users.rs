//! Admin use cases on migrating users: add, import, list, export, and the bulk actions.

use contract::{
    BulkAction, BulkFailure, BulkResult, ImportReport, InviteTo, Selection, UserDetail, UserInput,
    UserPage, UserState,
};
use serde_json::json;

use crate::audit::{Actor, AuditAction};
use crate::csv_import::{self, CsvFileError, CsvRow};
use crate::error::{AppError, StoreError, VaultError};
use crate::model::*;
use crate::ports::OutgoingMail;
use crate::secret::Secret;
use crate::state::Transition;

use super::App;
use super::projects::check_password;

/// The additional data bound to a user's sealed passwords: they open only for this user and
/// for the servers the project named when they were entered, so an edit of the project's
/// endpoints cannot send them elsewhere (the user enters them again).
pub(crate) fn credentials_aad(user: UserId, project: &Project) -> Vec<u8> {
    let side = |c: &Connector| {
        format!(
            "imap://{}:{}/{:?}",
            c.host.to_ascii_lowercase(),
            c.port,
            c.security
        )
    };
    format!(
        "user:{user}|source:{}|target:{}",
        side(&project.source),
        side(&project.target)
    )
    .into_bytes()
}

/// What passwords sealed before they were bound to the project's servers carry.
fn legacy_credentials_aad(user: UserId) -> Vec<u8> {
    format!("user:{user}").into_bytes()
}

fn check_display_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.chars().count() > 200 {
        return Err(AppError::validation_field(
            "display_name",
            "longer than 200 characters",
        ));
    }
    // A name may span lines (a quoted CSV field), nothing else.
    super::projects::refuse_control_characters("display_name", name, &['\n', '\t'])?;
    Ok(name.to_owned())
}

/// Skipped items of one folder the user detail shows.
const SKIPPED_SHOWN: usize = 1000;

impl App {
    pub async fn user(&self, id: UserId) -> Result<MailUser, AppError> {
        self.deps
            .store
            .get_user(id)
            .await?
            .ok_or(AppError::NotFound("user"))
    }

    /// The user, checked to belong to the project in the URL.
    pub async fn user_in(&self, project: ProjectId, id: UserId) -> Result<MailUser, AppError> {
        let user = self.user(id).await?;
        if user.project_id != project {
            return Err(AppError::NotFound("user"));
        }
        Ok(user)
    }

    fn new_user(
        &self,
        project: ProjectId,
        source: EmailAddress,
        target: EmailAddress,
        display_name: String,
    ) -> MailUser {
        let now = self.deps.clock.now();
        MailUser {
            id: UserId::new(),
            project_id: project,
            source_email: source,
            target_email: target,
            display_name,
            state: UserState::New,
            pass: 1,
            progress: Default::default(),
            last_error: None,
            priority: 0,
            waiting_since: None,
            sync: Default::default(),
            preflight: None,
            line: None,
            has_credentials: false,
            invite_sent_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Merges new passwords into the user's sealed credentials (one side may be given alone).
    async fn store_passwords(
        &self,
        project: &Project,
        user: UserId,
        source: Option<&Secret>,
        target: Option<&Secret>,
    ) -> Result<(), AppError> {
        if source.is_none() && target.is_none() {
            return Ok(());
        }
        let mut creds = self.credentials(project, user).await?.unwrap_or_default();
        if let Some(s) = source {
            creds.source_password = Some(s.expose().to_owned());
        }
        if let Some(t) = target {
            creds.target_password = Some(t.expose().to_owned());
        }
        let json = serde_json::to_vec(&creds).map_err(AppError::internal)?;
        let sealed = self
            .deps
            .vault
            .seal(&json, &credentials_aad(user, project))
            .await?;
        self.deps.store.put_credentials(user, &sealed).await?;
        Ok(())
    }

    /// The user's sealed passwords, opened for the project's servers. Passwords entered for
    /// other servers (the project's endpoints changed since) are as good as none: `None`.
    pub async fn credentials(
        &self,
        project: &Project,
        user: UserId,
    ) -> Result<Option<UserCredentials>, AppError> {
        let Some(sealed) = self.deps.store.get_credentials(user).await? else {
            return Ok(None);
        };
        let vault = &self.deps.vault;
        let bound = credentials_aad(user, project);
        // Only "these are not for this data" means other servers; a vault that is down or
        // throttled is an error like any other (the job retries), never "no passwords".
        let plain = match vault.open(&sealed, &bound).await {
            Ok(plain) => plain,
            Err(VaultError::Decrypt) => {
                match vault.open(&sealed, &legacy_credentials_aad(user)).await {
                    Ok(plain) => {
                        // Sealed before the binding: bound now to the servers it was used for,
                        // so it cannot follow a later edit.
                        let resealed = vault.seal(&plain, &bound).await?;
                        self.deps.store.put_credentials(user, &resealed).await?;
                        plain
                    }
                    Err(VaultError::Decrypt) => {
                        tracing::warn!(%user, "stored passwords belong to other servers; they are not used");
                        return Ok(None);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(AppError::internal)
    }

    /// Whether every per-user side has a password stored, so a copy can start without asking.
    fn has_all_passwords(project: &Project, creds: Option<&UserCredentials>) -> bool {
        let need_src = project.source.is_per_user();
        let need_tgt = project.target.is_per_user();
        let have = |c: &Connector, password: &Option<String>, signed_in: &Option<SignedIn>| {
            if c.is_sign_in() {
                signed_in.is_some()
            } else {
                password.is_some()
            }
        };
        let have_src =
            creds.is_some_and(|c| have(&project.source, &c.source_password, &c.source_sign_in));
        let have_tgt =
            creds.is_some_and(|c| have(&project.target, &c.target_password, &c.target_sign_in));
        let admin_kept =
            !project.source.admin_secret_deleted() && !project.target.admin_secret_deleted();
        admin_kept && (!need_src || have_src) && (!need_tgt || have_tgt)
    }

    pub async fn add_user(
        &self,
        project_id: ProjectId,
        input: &UserInput,
        actor: &Actor,
    ) -> Result<MailUser, AppError> {
        let project = self.project(project_id).await?;
        Self::require_open(&project)?;
        let source = EmailAddress::parse(&input.source_email)
            .map_err(|m| AppError::validation_field("source_email", m))?;
        let target = EmailAddress::parse(&input.target_email)
            .map_err(|m| AppError::validation_field("target_email", m))?;
        let display_name = check_display_name(&input.display_name)?;
        if input.priority > crate::schedule::PRIORITY_MAX {
            return Err(AppError::validation_field(
                "priority",
                format!("must be from 0 to {}", crate::schedule::PRIORITY_MAX),
            ));
        }
        let src_pw = input
            .source_password
            .as_deref()
            .map(|p| check_password("source_password", p).map(|_| Secret::new(p)))
            .transpose()?;
        let tgt_pw = input
            .target_password
            .as_deref()
            .map(|p| check_password("target_password", p).map(|_| Secret::new(p)))
            .transpose()?;
        let mut user = self.new_user(project_id, source, target, display_name);
        user.priority = input.priority;
        user.sync.cutover_at = input.cutover_at;
        if src_pw.is_some() || tgt_pw.is_some() {
            // Passwords first: a user must never be visible with a half-stored secret.
            self.store_passwords(&project, user.id, src_pw.as_ref(), tgt_pw.as_ref())
                .await?;
            user.has_credentials = Self::has_all_passwords(
                &project,
                self.credentials(&project, user.id).await?.as_ref(),
            );
        }
        match self.deps.store.insert_user(&user).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists) => {
                let _ = self.deps.store.delete_credentials(user.id).await;
                return Err(AppError::Conflict(format!(
                    "a user with source address {} already exists in this project",
                    user.source_email
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.log_event(&user, "added".into()).await;
        let source = user.source_email.to_string();
        self.audit(
            Some(project_id),
            actor,
            AuditAction::UserAdded,
            Some(&source),
            "",
        )
        .await;
        if src_pw.is_some() || tgt_pw.is_some() {
            let sides = sides_named(src_pw.is_some(), tgt_pw.is_some());
            self.audit(
                Some(project_id),
                actor,
                AuditAction::CredentialsSubmitted,
                Some(&source),
                &format!("{sides} password entered by the admin"),
            )
            .await;
        }
        Ok(user)
    }

    /// Imports a users CSV. All or nothing: when any line is wrong, nothing is written and every
    /// problem is returned with its line number. Existing users (same source address) are
    /// updated, never duplicated. `dry_run` validates without writing (the console's preview).
    pub async fn import_csv(
        &self,
        project_id: ProjectId,
        bytes: &[u8],
        dry_run: bool,
        actor: &Actor,
    ) -> Result<ImportReport, AppError> {
        let project = self.project(project_id).await?;
        Self::require_open(&project)?;
        let rows = match csv_import::parse(bytes) {
            Ok(rows) => rows,
            Err(Err(CsvFileError::TooLarge)) => {
                return Err(AppError::Validation {
                    message: CsvFileError::TooLarge.to_string(),
                    details: json!({"limit_bytes": contract::limits::CSV_MAX_BYTES}),
                });
            }
            Err(Err(e)) => return Err(AppError::validation(e.to_string())),
            Err(Ok(errors)) => return Err(line_errors(errors)),
        };
        // Look every row up before writing anything, so conflicts are reported like syntax errors.
        let mut plan: Vec<(CsvRow, Option<MailUser>)> = Vec::with_capacity(rows.len());
        let mut errors = Vec::new();
        for row in rows {
            let existing = self
                .deps
                .store
                .find_user_by_source(project_id, &row.source_email)
                .await?;
            if let Some(u) = &existing
                && u.target_email != row.target_email
                && !matches!(
                    u.state,
                    UserState::New | UserState::EmailSent | UserState::Failed | UserState::Paused
                )
            {
                errors.push(contract::LineError {
                    line: row.line,
                    message: format!(
                        "{} is {}: its target address cannot change now",
                        u.source_email,
                        u.state.label().to_lowercase()
                    ),
                });
            }
            plan.push((row, existing));
        }
        if !errors.is_empty() {
            return Err(line_errors(errors));
        }
        let mut report = ImportReport {
            valid_rows: plan.len() as u64,
            created: 0,
            updated: 0,
            dry_run,
        };
        for (row, existing) in &plan {
            match existing {
                None => report.created += 1,
                Some(u)
                    if u.target_email != row.target_email
                        || (!row.display_name.is_empty() && u.display_name != row.display_name)
                        || row.priority.is_some_and(|p| p != u.priority)
                        || row.cutover_at.is_some_and(|t| Some(t) != u.sync.cutover_at)
                        || row.source_password.is_some()
                        || row.target_password.is_some() =>
                {
                    report.updated += 1
                }
                Some(_) => {}
            }
        }
        if dry_run {
            return Ok(report);
        }
        let mut with_passwords = 0;
        for (row, existing) in plan {
            let given = (row.source_password.is_some(), row.target_password.is_some());
            let source = row.source_email.to_string();
            self.apply_row(&project, row, existing).await?;
            if given.0 || given.1 {
                with_passwords += 1;
                let detail = format!(
                    "{} password imported from CSV by the admin",
                    sides_named(given.0, given.1)
                );
                self.audit(
                    Some(project_id),
                    actor,
                    AuditAction::CredentialsSubmitted,
                    Some(&source),
                    &detail,
                )
                .await;
            }
        }
        let detail = format!(
            "{} created, {} updated, {with_passwords} with passwords",
            report.created, report.updated
        );
        self.audit(
            Some(project_id),
            actor,
            AuditAction::UsersImported,
            None,
            &detail,
        )
        .await;
        Ok(report)
    }

    async fn apply_row(
        &self,
        project: &Project,
        row: CsvRow,
        existing: Option<MailUser>,
    ) -> Result<(), AppError> {
        match existing {
            None => {
                let mut user = self.new_user(
                    project.id,
                    row.source_email,
                    row.target_email,
                    row.display_name,
                );
                user.priority = row.priority.unwrap_or(0);
                user.sync.cutover_at = row.cutover_at;
                if row.source_password.is_some() || row.target_password.is_some() {
                    self.store_passwords(
                        project,
                        user.id,
                        row.source_password.as_ref(),
                        row.target_password.as_ref(),
                    )
                    .await?;
                    user.has_credentials = Self::has_all_passwords(
                        project,
                        self.credentials(project, user.id).await?.as_ref(),
                    );
                }
                match self.deps.store.insert_user(&user).await {
                    Ok(()) => {
                        self.log_event(&user, format!("imported from CSV line {}", row.line))
                            .await
                    }
                    // Another import created it meanwhile: its row wins, ours is dropped.
                    Err(StoreError::AlreadyExists) => {
                        let _ = self.deps.store.delete_credentials(user.id).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Some(current) => {
                let mut next = current.clone();
                next.target_email = row.target_email;
                if !row.display_name.is_empty() {
                    next.display_name = row.display_name;
                }
                if let Some(priority) = row.priority {
                    next.priority = priority;
                }
                if row.cutover_at.is_some() {
                    next.sync.cutover_at = row.cutover_at;
                }
                if row.source_password.is_some() || row.target_password.is_some() {
                    self.store_passwords(
                        project,
                        current.id,
                        row.source_password.as_ref(),
                        row.target_password.as_ref(),
                    )
                    .await?;
                    next.has_credentials = Self::has_all_passwords(
                        project,
                        self.credentials(project, current.id).await?.as_ref(),
                    );
                }
                if next != current {
                    next.version = current.version + 1;
                    next.updated_at = self.deps.clock.now();
                    self.deps.store.update_user(&next, current.version).await?;
                    self.log_event(&next, format!("updated from CSV line {}", row.line))
                        .await;
                }
            }
        }
        Ok(())
    }

    pub async fn list_users(
        &self,
        project_id: ProjectId,
        mut query: UserQuery,
    ) -> Result<UserPage, AppError> {
        if query.limit == 0 {
            query.limit = 50;
        }
        query.limit = query.limit.min(UserQuery::MAX_LIMIT);
        let project = self.project(project_id).await?;
        let (users, total) = self.deps.store.list_users(project_id, &query).await?;
        Ok(UserPage {
            items: users.iter().map(|u| Self::user_view(&project, u)).collect(),
            total,
            offset: query.offset,
            limit: query.limit,
        })
    }

    /// All users of a project, page by page.
    pub(crate) async fn all_users(&self, project_id: ProjectId) -> Result<Vec<MailUser>, AppError> {
        let mut out = Vec::new();
        let mut query = UserQuery {
            limit: UserQuery::MAX_LIMIT,
            ..Default::default()
        };
        loop {
            let (page, total) = self.deps.store.list_users(project_id, &query).await?;
            let n = page.len() as u64;
            out.extend(page);
            query.offset += n;
            if n == 0 || query.offset >= total {
                return Ok(out);
            }
        }
    }

    /// The project's users as CSV (no passwords): the project's record for spreadsheets, with
    /// each user's state, progress, last sync, cutover and preflight.
    pub async fn export_csv(
        &self,
        project_id: ProjectId,
        actor: &Actor,
    ) -> Result<Vec<u8>, AppError> {
        self.project(project_id).await?;
        let users = self.all_users(project_id).await?;
        let mut w = super::report::CsvExport::new(&[
            "source_email",
            "target_email",
            "display_name",
            "state",
            "pass",
            "messages_done",
            "messages_total",
            "bytes_done",
            "bytes_total",
            "skipped",
            "last_error",
            "priority",
            "cutover_at",
            "cut_over_at",
            "last_sync_ended_at",
            "last_sync_new_messages",
            "last_sync_flag_changes",
            "last_sync_moved",
            "last_sync_removed",
            "preflight_checked_at",
            "preflight_ready",
        ])?;
        let time =
            |t: Option<time::OffsetDateTime>| t.map_or(String::new(), super::sync::date_time);
        for u in &users {
            let last = u.sync.last.as_ref();
            let figure = |f: fn(&contract::SyncSummary) -> u64| {
                last.map_or(String::new(), |l| f(l).to_string())
            };
            let row = [
                u.source_email.to_string(),
                u.target_email.to_string(),
                u.display_name.clone(),
                u.state.as_str().to_owned(),
                u.pass.to_string(),
                u.progress.messages_done.to_string(),
                u.progress.messages_total.to_string(),
                u.progress.bytes_done.to_string(),
                u.progress.bytes_total.to_string(),
                u.progress.skipped.to_string(),
                u.last_error.clone().unwrap_or_default(),
                u.priority.to_string(),
                time(u.sync.cutover_at),
                time(u.sync.cut_over_at),
                time(last.map(|l| l.ended_at)),
                figure(|l| l.new_messages),
                figure(|l| l.flag_changes),
                figure(|l| l.moved),
                figure(|l| l.removed),
                time(u.preflight.as_ref().map(|p| p.checked_at)),
                u.preflight
                    .as_ref()
                    .map_or(String::new(), |p| p.ready().to_string()),
            ];
            w.row(row)?;
        }
        let detail = format!("{} users", users.len());
        self.finish_export(w, project_id, actor, AuditAction::UsersExported, &detail)
            .await
    }

    pub async fn user_detail(
        &self,
        project_id: ProjectId,
        id: UserId,
    ) -> Result<UserDetail, AppError> {
        let project = self.project(project_id).await?;
        let user = self.user_in(project_id, id).await?;
        let folders = self.deps.store.list_folders(id).await?;
        let events = self.deps.store.list_events(id, 200).await?;
        let mut views = Vec::with_capacity(folders.len());
        for f in &folders {
            // The console lists the first skipped items; the count says how many there are.
            views.push(f.view(self.skipped_of(f, SKIPPED_SHOWN).await?));
        }
        Ok(UserDetail {
            user: Self::user_view(&project, &user),
            folders: views,
            events: events
                .into_iter()
                .map(|e| contract::EventView {
                    at: e.at,
                    message: e.message,
                })
                .collect(),
        })
    }

    /// Runs one action over the selected users; each user succeeds or fails on its own.
    pub async fn bulk(
        &self,
        project_id: ProjectId,
        action: BulkAction,
        selection: &Selection,
        actor: &Actor,
    ) -> Result<BulkResult, AppError> {
        let project = self.project(project_id).await?;
        let users = if selection.all {
            self.all_users(project_id).await?
        } else {
            if selection.user_ids.is_empty() {
                return Err(AppError::validation_field(
                    "user_ids",
                    "select at least one user",
                ));
            }
            if selection.user_ids.len() > 10_000 {
                return Err(AppError::validation_field(
                    "user_ids",
                    "select at most 10000 users at once, or use all",
                ));
            }
            let mut users = Vec::with_capacity(selection.user_ids.len());
            for id in &selection.user_ids {
                match self.deps.store.get_user(UserId(*id)).await? {
                    Some(u) if u.project_id == project_id => users.push(u),
                    _ => {
                        return Err(AppError::validation_field(
                            "user_ids",
                            format!("{id} is not a user of this project"),
                        ));
                    }
                }
            }
            users
        };
        let mut result = BulkResult {
            done: vec![],
            failed: vec![],
        };
        for user in users {
            let id = user.id.0;
            match self.user_action(&project, &user, action, actor).await {
                Ok(_) => result.done.push(id),
                Err(AppError::Internal(m)) => {
                    tracing::error!(user = %id, error = %m, "bulk action failed");
                    result.failed.push(BulkFailure {
                        user_id: id,
                        message: "internal error".into(),
                    });
                }
                Err(e) => result.failed.push(BulkFailure {
                    user_id: id,
                    message: e.to_string(),
                }),
            }
        }
        Ok(result)
    }

    /// Runs one admin action on one user; returns the user afterwards (`None` once deleted).
    pub async fn user_action(
        &self,
        project: &Project,
        user: &MailUser,
        action: BulkAction,
        actor: &Actor,
    ) -> Result<Option<MailUser>, AppError> {
        let outcome = self.run_user_action(project, user, action, actor).await;
        let subject = user.source_email.to_string();
        let name = serde_json::to_value(action)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let (what, detail) = match (&outcome, action) {
            (Ok(None), BulkAction::Delete) => (AuditAction::UserDeleted, String::new()),
            (Ok(_), _) => (AuditAction::UserAction, name),
            (Err(e), _) => (AuditAction::UserAction, format!("{name} refused: {e}")),
        };
        self.audit(Some(project.id), actor, what, Some(&subject), &detail)
            .await;
        outcome
    }

    async fn run_user_action(
        &self,
        project: &Project,
        user: &MailUser,
        action: BulkAction,
        actor: &Actor,
    ) -> Result<Option<MailUser>, AppError> {
        if matches!(
            action,
            BulkAction::Start
                | BulkAction::ResendInvite
                | BulkAction::Retry
                | BulkAction::Delta
                | BulkAction::RetrySkipped
                | BulkAction::CutOver
                | BulkAction::Preflight
        ) {
            Self::require_open(project)?;
            for (side, connector) in [("source", &project.source), ("target", &project.target)] {
                if connector.admin_secret_deleted() {
                    return Err(AppError::Conflict(format!(
                        "the admin password (or app secret) of the {side} server was deleted when the project was closed: enter it again in the project's settings"
                    )));
                }
            }
        }
        let next = match action {
            BulkAction::Start => self.start_user(project, user).await?,
            BulkAction::ResendInvite => self.send_invite(project, user).await?,
            BulkAction::Pause => self.transition(user, Transition::Pause, |_| {}).await?,
            BulkAction::Retry => self.schedule(user, Transition::Retry, |_| {}).await?,
            BulkAction::Delta => {
                self.require_passwords(project, user).await?;
                self.start_delta(user, PassReason::Admin).await?
            }
            BulkAction::CutOver => self.cut_over_now(project, user).await?,
            BulkAction::Preflight => self.queue_preflight(project, user).await?,
            BulkAction::RetrySkipped => {
                self.require_passwords(project, user).await?;
                self.retry_skipped(user).await?
            }
            BulkAction::MarkVerified => {
                // The move is finished: the passwords are not kept a moment longer (the
                // credential page promises it). Checked first, deleted first: a failure leaves
                // the user unverified, so the admin's retry deletes them.
                if Transition::Verify.apply(user.state).is_none() {
                    return Err(AppError::Conflict(format!(
                        "cannot mark {} verified: the user is {}",
                        user.source_email,
                        user.state.label().to_lowercase()
                    )));
                }
                let (purged, _) = self
                    .purge_credentials(project, user, "the user was marked verified", actor)
                    .await?;
                self.transition(&purged, Transition::Verify, |_| {}).await?
            }
            BulkAction::PurgeCredentials => {
                if matches!(user.state, UserState::Scheduled | UserState::Working) {
                    return Err(AppError::Conflict(format!(
                        "{} is copying: pause the user first, then purge the passwords",
                        user.source_email
                    )));
                }
                self.purge_credentials(project, user, "the admin purged them", actor)
                    .await?
                    .0
            }
            BulkAction::Delete => {
                self.deps.store.delete_user(user.id).await?;
                tracing::info!(user = %user.id, "user deleted with its credentials");
                return Ok(None);
            }
        };
        Ok(Some(next))
    }

    /// Refuses a pass that would need passwords the user no longer has stored.
    pub(super) async fn require_passwords(
        &self,
        project: &Project,
        user: &MailUser,
    ) -> Result<(), AppError> {
        let creds = self.credentials(project, user.id).await?;
        if Self::has_all_passwords(project, creds.as_ref()) {
            return Ok(());
        }
        Err(AppError::Conflict(format!(
            "{} has no passwords stored for these servers (deleted after verification or by an admin, or entered for servers the project no longer names): resend the invite, or enter them, to copy again",
            user.source_email
        )))
    }

    /// Deletes the user's stored passwords, says so in the user's events and the audit trail,
    /// and records that the user has none (a project with admin accounts on both sides still
    /// has what it needs). Returns the user and whether any passwords were deleted.
    pub(crate) async fn purge_credentials(
        &self,
        project: &Project,
        user: &MailUser,
        why: &str,
        actor: &Actor,
    ) -> Result<(MailUser, bool), AppError> {
        let held = self.deps.store.get_credentials(user.id).await?.is_some();
        if held {
            self.deps.store.delete_credentials(user.id).await?;
            self.log_event(user, format!("stored passwords deleted: {why}"))
                .await;
            let subject = user.source_email.to_string();
            self.audit(
                Some(project.id),
                actor,
                AuditAction::CredentialsPurged,
                Some(&subject),
                why,
            )
            .await;
        }
        let has = Self::has_all_passwords(project, None);
        if user.has_credentials == has {
            return Ok((user.clone(), held));
        }
        let next = self
            .update_user_record(user, |next| next.has_credentials = has)
            .await?;
        Ok((next, held))
    }

    /// The user as the console shows it: with until when its passwords are kept.
    pub fn user_view(project: &Project, user: &MailUser) -> contract::UserView {
        let mut view = user.view();
        view.credentials_until = super::retention::credentials_until(project, user);
        view
    }

    /// Starts a user: straight to the queue when every password is known, otherwise an invite.
    pub async fn start_user(
        &self,
        project: &Project,
        user: &MailUser,
    ) -> Result<MailUser, AppError> {
        if matches!(user.state, UserState::Scheduled | UserState::Working) {
            return Err(AppError::Conflict(format!(
                "{} is already {}",
                user.source_email,
                user.state.label().to_lowercase()
            )));
        }
        if matches!(user.state, UserState::Paused) {
            return self.schedule(user, Transition::Retry, |_| {}).await;
        }
        let creds = self.credentials(project, user.id).await?;
        if Self::has_all_passwords(project, creds.as_ref()) {
            return self
                .schedule(user, Transition::Schedule, |u| u.has_credentials = true)
                .await;
        }
        if project.invite_to == InviteTo::None {
            return Err(AppError::Conflict(format!(
                "{} has no password stored and the project sends no invites: add the passwords first",
                user.source_email
            )));
        }
        self.send_invite(project, user).await
    }

    /// Sends a new invite link (any older link of the user stops working).
    pub async fn send_invite(
        &self,
        project: &Project,
        user: &MailUser,
    ) -> Result<MailUser, AppError> {
        let to = match project.invite_to {
            InviteTo::Source => user.source_email.clone(),
            InviteTo::Target => user.target_email.clone(),
            InviteTo::None => {
                return Err(AppError::Conflict("this project sends no invites".into()));
            }
        };
        if Transition::InviteSent.apply(user.state).is_none() {
            return Err(AppError::Conflict(format!(
                "cannot send an invite to {}: the user is {}",
                user.source_email,
                user.state.label().to_lowercase()
            )));
        }
        let now = self.deps.clock.now();
        let (secret, invite) = Invite::issue(
            user,
            now,
            now + self.config.invite_ttl,
            LinkPurpose::Credentials,
        );
        self.deps.store.delete_invites_of_user(user.id).await?;
        self.deps.store.insert_invite(&invite).await?;
        let link = format!("{}/migrate/{}", self.config.public_url, secret);
        let name = if user.display_name.is_empty() {
            user.source_email.to_string()
        } else {
            user.display_name.clone()
        };
        let text = format!(
            "Hello {name},\n\n\
             your mailbox {src} is moving to {tgt} (project \"{project}\").\n\n\
             Open this link, enter your password and press Start. The copy then runs on our servers; \
             you can close the browser and keep working.\n\n{link}\n\n\
             The link is personal and works until {expires} (UTC). Do not forward it.\n",
            src = user.source_email,
            tgt = user.target_email,
            project = project.name,
            expires = invite.expires_at.date(),
        );
        let mail = OutgoingMail {
            to,
            to_name: user.display_name.clone(),
            subject: format!("Action needed: move your mailbox to {}", user.target_email),
            text,
        };
        if let Err(e) = self.deps.mailer.send(&mail).await {
            let _ = self.deps.store.delete_invites_of_user(user.id).await;
            return Err(e.into());
        }
        self.transition(user, Transition::InviteSent, |u| {
            u.invite_sent_at = Some(now)
        })
        .await
    }
}

fn line_errors(errors: Vec<contract::LineError>) -> AppError {
    let n = errors.len();
    AppError::Validation {
        message: format!(
            "{n} line{} of the file {} wrong; nothing was imported",
            if n == 1 { "" } else { "s" },
            if n == 1 { "is" } else { "are" }
        ),
        details: json!({ "errors": errors }),
    }
}

/// "source", "target" or "source and target".
pub(crate) fn sides_named(source: bool, target: bool) -> &'static str {
    match (source, target) {
        (true, true) => "source and target",
        (true, false) => "source",
        _ => "target",
    }
}
