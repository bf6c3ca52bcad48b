//! Preflights of many users: the bulk action queues one `Preflight` job per user; each job
//! runs the same preflight as the user page's button (`copy/preflight.rs`) and keeps what it
//! found on the user; the project's sums and a CSV of every user's result are read from there.
//! A preflight copies nothing, changes no user's state and never touches an invite link.

use std::time::Duration;

use contract::jobs::Job;
use contract::{PreflightSummary, PreflightTotals};

use crate::audit::{Actor, AuditAction};
use crate::error::AppError;
use crate::model::*;

use super::report::CsvExport;
use super::{App, JobOutcome};

/// How often a preflight whose servers are full is sent again (a minute apart) before it
/// records that it could not run.
const FULL_RETRIES: u32 = 60;

/// Settings keys: a project's sums in words as last computed, and whether a preflight ended
/// since. The project view shows the stored words (summing reads every user: too much for each
/// poll of the console); the watchdog's tick sums again when a preflight ended.
fn totals_key(project: ProjectId) -> String {
    format!("preflight-totals:{project}")
}
fn stale_key(project: ProjectId) -> String {
    format!("preflight-stale:{project}")
}

/// The sums of a project's users' preflights (`None`: not checked yet).
pub(crate) fn totals(users: &[Option<&PreflightSummary>]) -> PreflightTotals {
    let checked: Vec<&PreflightSummary> = users.iter().flatten().copied().collect();
    let ok: Vec<&&PreflightSummary> = checked.iter().filter(|p| p.error.is_none()).collect();
    let mut t = PreflightTotals {
        users: users.len() as u64,
        checked: checked.len() as u64,
        ready: checked.iter().filter(|p| p.ready()).count() as u64,
        over_quota: ok.iter().filter(|p| p.fits_quota == Some(false)).count() as u64,
        with_oversize: ok.iter().filter(|p| p.oversize_messages > 0).count() as u64,
        oversize_messages: ok.iter().map(|p| p.oversize_messages).sum(),
        failed: (checked.len() - ok.len()) as u64,
        messages: ok.iter().map(|p| p.messages).sum(),
        bytes: ok.iter().map(|p| p.bytes).sum(),
        estimate_seconds: ok.iter().map(|p| p.estimate_seconds).sum(),
        text: String::new(),
    };
    // Findings other than quota and size (a missing capability, say).
    let other = ok
        .iter()
        .filter(|p| !p.ready() && p.fits_quota != Some(false) && p.oversize_messages == 0)
        .count() as u64;
    t.text = totals_text(&t, other);
    t
}

fn users(n: u64) -> String {
    format!("{n} user{}", if n == 1 { "" } else { "s" })
}

/// "312 users ready, 4 over quota, 27 oversize messages (in 9 users), 2 could not be checked,
/// 15 not checked yet".
fn totals_text(t: &PreflightTotals, other: u64) -> String {
    if t.checked == 0 {
        return format!("{} not checked yet", users(t.users));
    }
    let mut parts = vec![format!("{} ready", users(t.ready))];
    if t.over_quota > 0 {
        parts.push(format!("{} over quota", t.over_quota));
    }
    if t.oversize_messages > 0 {
        parts.push(format!(
            "{} oversize message{} (in {})",
            t.oversize_messages,
            if t.oversize_messages == 1 { "" } else { "s" },
            users(t.with_oversize)
        ));
    }
    if other > 0 {
        parts.push(format!("{} with other findings", users(other)));
    }
    if t.failed > 0 {
        parts.push(format!("{} could not be checked", t.failed));
    }
    if t.users > t.checked {
        parts.push(format!("{} not checked yet", t.users - t.checked));
    }
    parts.join(", ")
}

impl App {
    /// Keeps a preflight's findings on the user (a failure to write is logged: the report
    /// itself was delivered or is retried).
    pub(crate) async fn keep_preflight(&self, user: &MailUser, summary: PreflightSummary) {
        if let Err(e) = self
            .update_user_with(user.id, |u| u.preflight = Some(summary.clone()))
            .await
        {
            tracing::warn!(user = %user.id, error = %e, "could not keep the preflight's findings");
        }
        if let Err(e) = self
            .deps
            .store
            .put_setting(&stale_key(user.project_id), "1")
            .await
        {
            tracing::warn!(error = %e, "could not mark the project's preflight sums stale");
        }
    }

    /// The project's preflight sums in words as last computed (`None` before any preflight).
    pub(crate) async fn stored_preflight_text(&self, project: ProjectId) -> Option<String> {
        self.deps
            .store
            .get_setting(&totals_key(project))
            .await
            .ok()
            .flatten()
    }

    /// Sums the preflights again of every project where one ended since the last sums (run by
    /// the watchdog's tick). The flag is cleared before summing, so a preflight ending
    /// meanwhile marks it again and the next tick counts it.
    pub async fn refresh_preflight_totals(&self) -> Result<u32, AppError> {
        let mut refreshed = 0;
        for project in self.deps.store.list_projects().await? {
            let key = stale_key(project.id);
            if self.deps.store.get_setting(&key).await?.as_deref() != Some("1") {
                continue;
            }
            self.deps.store.put_setting(&key, "0").await?;
            self.preflight_totals(project.id).await?;
            refreshed += 1;
        }
        Ok(refreshed)
    }

    /// The bulk action for one user: its preflight is queued.
    pub(crate) async fn queue_preflight(
        &self,
        project: &Project,
        user: &MailUser,
    ) -> Result<MailUser, AppError> {
        self.require_passwords(project, user).await?;
        let job = Job::Preflight {
            user_id: user.id.0,
            attempt: 0,
        };
        self.deps.queue.send(&job, Duration::ZERO).await?;
        Ok(user.clone())
    }

    /// A queued preflight: run, and its findings (or why it could not run) kept on the user.
    /// Servers at their connection cap send it again a minute later, as copy jobs wait.
    pub(crate) async fn run_preflight_job(
        &self,
        user: &MailUser,
        attempt: u32,
    ) -> Result<JobOutcome, AppError> {
        let project = self.project(user.project_id).await?;
        match self.preflight(&project, user).await {
            Ok(_) => Ok(JobOutcome::Done),
            Err(AppError::Conflict(why)) if attempt < FULL_RETRIES => {
                tracing::info!(user = %user.id, %why, "preflight waits for a connection");
                let again = Job::Preflight {
                    user_id: user.id.0,
                    attempt: attempt + 1,
                };
                self.deps
                    .queue
                    .send(&again, Duration::from_secs(60))
                    .await?;
                Ok(JobOutcome::Done)
            }
            Err(e) => {
                self.keep_preflight_failure(user, e.to_string()).await;
                Ok(JobOutcome::Done)
            }
        }
    }

    /// Keeps why a user's preflight could not run, as its finding.
    pub(crate) async fn keep_preflight_failure(&self, user: &MailUser, why: String) {
        let failed = PreflightSummary {
            checked_at: self.deps.clock.now(),
            messages: 0,
            bytes: 0,
            oversize_messages: 0,
            fits_quota: None,
            estimate_seconds: 0,
            problems: Vec::new(),
            error: Some(why),
        };
        self.keep_preflight(user, failed).await;
    }

    /// The project's preflights summed.
    pub async fn preflight_totals(&self, project: ProjectId) -> Result<PreflightTotals, AppError> {
        self.project(project).await?;
        let all = self.all_users(project).await?;
        let found: Vec<Option<&PreflightSummary>> =
            all.iter().map(|u| u.preflight.as_ref()).collect();
        let sums = totals(&found);
        if sums.checked > 0 {
            self.deps
                .store
                .put_setting(&totals_key(project), &sums.text)
                .await?;
        }
        Ok(sums)
    }

    /// Every user's last preflight as CSV (users not checked yet have empty figures).
    pub async fn preflight_csv(
        &self,
        project: ProjectId,
        actor: &Actor,
    ) -> Result<Vec<u8>, AppError> {
        self.project(project).await?;
        let mut w = CsvExport::new(&[
            "source_email",
            "target_email",
            "checked_at",
            "ready",
            "messages",
            "bytes",
            "oversize_messages",
            "fits_quota",
            "estimate_seconds",
            "problems",
        ])?;
        let all = self.all_users(project).await?;
        for u in &all {
            let mut row = vec![u.source_email.to_string(), u.target_email.to_string()];
            match &u.preflight {
                None => row.extend(std::iter::repeat_n(String::new(), 8)),
                Some(p) => row.extend([
                    super::sync::date_time(p.checked_at),
                    p.ready().to_string(),
                    p.messages.to_string(),
                    p.bytes.to_string(),
                    p.oversize_messages.to_string(),
                    p.fits_quota.map_or(String::new(), |f| f.to_string()),
                    p.estimate_seconds.to_string(),
                    p.error
                        .iter()
                        .chain(&p.problems)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; "),
                ]),
            }
            w.row(row)?;
        }
        let detail = format!("preflight results of {} users", all.len());
        self.finish_export(w, project, actor, AuditAction::ReportExported, &detail)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn found(oversize: u64, fits: Option<bool>, problems: &[&str]) -> PreflightSummary {
        PreflightSummary {
            checked_at: datetime!(2027-01-10 9:00 UTC),
            messages: 100,
            bytes: 1_000,
            oversize_messages: oversize,
            fits_quota: fits,
            estimate_seconds: 10,
            problems: problems.iter().map(|p| p.to_string()).collect(),
            error: None,
        }
    }

    #[test]
    fn a_projects_preflights_add_up_in_words() {
        let ready = found(0, Some(true), &[]);
        let full = found(0, Some(false), &["over quota"]);
        let no_uidplus = found(0, None, &["the target has no UIDPLUS"]);
        let big = found(3, None, &["3 messages are larger"]);
        let both = found(2, Some(false), &["over quota", "2 larger"]);
        let failed = PreflightSummary {
            error: Some("the source server refused the login".into()),
            ..found(0, None, &[])
        };
        let users = [
            Some(&ready),
            Some(&ready),
            Some(&full),
            Some(&big),
            Some(&both),
            Some(&failed),
            Some(&no_uidplus),
            None,
        ];
        let t = totals(&users);
        assert_eq!(
            (t.users, t.checked, t.ready, t.over_quota, t.with_oversize),
            (8, 7, 2, 2, 2)
        );
        assert_eq!((t.oversize_messages, t.failed, t.messages), (5, 1, 600));
        assert_eq!(
            t.text,
            "2 users ready, 2 over quota, 5 oversize messages (in 2 users), 1 user with other findings, 1 could not be checked, 1 not checked yet"
        );
        assert_eq!(totals(&[None, None]).text, "2 users not checked yet");
        assert_eq!(totals(&[Some(&ready)]).text, "1 user ready");
    }
}
