//! The connection slots a job holds while it works (`ports::Limiter`): one for each side's
//! server (when a cap applies to it) and one for each side's mailbox, taken before any login
//! and given back after logout, renewed while the job runs, and ending on their own when a
//! worker dies. A job that finds a slot taken goes back to the queue as a new message with a
//! delay of a few seconds, so waiting never counts toward the dead-letter limit and never
//! spins.

use std::time::Duration;

use contract::ConnectionUse;
use contract::jobs::Job;

use crate::app::Side;
use crate::error::AppError;
use crate::model::*;
use crate::ports::Slot;
use crate::schedule::{self, Full, Need, Place};

use super::{App, JobOutcome};

/// A number that spreads the waiting jobs of one user (and of many users) apart.
fn spread(job: &Job) -> u64 {
    let spread = job.user_id().as_u128().wrapping_add(match job {
        Job::Copy { folder, .. } => folder.bytes().map(u128::from).sum(),
        Job::Plan { .. } | Job::Preflight { .. } => 0,
    });
    (spread % 1_000_003) as u64
}

/// How long a job that found no slot waits: a few seconds near the front of its line, longer
/// the longer its user has waited further back (`schedule::wait_delay`).
pub(crate) fn wait_for_slot(
    job: &Job,
    user: &MailUser,
    now: time::OffsetDateTime,
    near_front: bool,
) -> Duration {
    let waited = user
        .waiting_since
        .map(|since| Duration::try_from(now - since).unwrap_or_default())
        .unwrap_or_default();
    schedule::wait_delay(waited, spread(job), near_front)
}

impl App {
    /// A slot for every need, or none (`schedule::take_slots`): the first need found full,
    /// the user then holding a place in its server's line. `user` is ranked (`ranked`).
    pub(crate) async fn take_slots(
        &self,
        needs: &[Need],
        holder: &str,
        user: &MailUser,
        job: &Job,
        now: time::OffsetDateTime,
    ) -> Result<Result<Vec<Slot>, Full>, AppError> {
        let since = schedule::line_place(user, now).since;
        let rank = schedule::line_rank(user.priority, since, &user.id.to_string());
        let place = Place {
            rank: &rank,
            // Kept past the longest wait of a job further back in the line.
            kept_until: now + schedule::place_kept(wait_for_slot(job, user, now, false)),
        };
        let until = now + self.config.copy.lease_ttl;
        Ok(schedule::take_slots(&*self.deps.limiter, needs, holder, &place, now, until).await?)
    }

    /// The user with its rank in the servers' lines for this pass: when it first asked for a
    /// connection in the pass, written on the user the first time (the stored user is returned,
    /// so what the job writes next expects its version). Best effort: if that write keeps
    /// losing races, the user ranks by `now` this once.
    pub(crate) async fn ranked(
        &self,
        user: &MailUser,
        needs: &[Need],
        now: time::OffsetDateTime,
    ) -> Result<MailUser, AppError> {
        let mut current = user.clone();
        if !needs.iter().any(|n| n.lined) {
            return Ok(current);
        }
        for _ in 0..3 {
            let place = schedule::line_place(&current, now);
            if current.line == Some(place) {
                return Ok(current);
            }
            let mut next = current.clone();
            next.line = Some(place);
            next.version = current.version + 1;
            next.updated_at = now;
            match self.deps.store.update_user(&next, current.version).await {
                Ok(()) => return Ok(next),
                Err(crate::error::StoreError::Conflict) => {
                    match self.deps.store.get_user(user.id).await? {
                        Some(fresh) => current = fresh,
                        None => break,
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(current)
    }

    /// Frees every connection slot of `user`'s servers and mailboxes, for a caller that knows
    /// no other worker is alive (the copy command holding its state file's lock, after a killed
    /// run): the next job need not wait for the dead run's slots to end.
    pub async fn free_connection_slots(&self, user: &MailUser) -> Result<(), AppError> {
        let project = self.project(user.project_id).await?;
        for need in schedule::needs(&project, user) {
            self.deps.limiter.clear(&need.key).await?;
        }
        Ok(())
    }

    /// Connections open now to the project's capped servers, and who waits for them.
    pub(crate) async fn server_connections(&self, project: &Project) -> Vec<ConnectionUse> {
        let now = self.deps.clock.now();
        let mut out = Vec::new();
        for need in [Side::Source, Side::Target]
            .into_iter()
            .filter_map(|side| schedule::server_need(project, side))
        {
            match self.connection_use(project, need, now).await {
                Ok(used) => out.push(used),
                Err(e) => {
                    tracing::warn!(error = %e, "connections in use could not be read")
                }
            }
        }
        out
    }

    async fn connection_use(
        &self,
        project: &Project,
        need: Need,
        now: time::OffsetDateTime,
    ) -> Result<ConnectionUse, AppError> {
        const SHOWN: usize = 5;
        let limiter = &self.deps.limiter;
        let in_use = limiter.in_use(&need.key, now).await?;
        let waiting = limiter
            .ahead_in_line(&need.key, schedule::END_OF_LINE, now, 100_000)
            .await?;
        // The line's first places; the ones of this project are named.
        let mut next = Vec::new();
        for rank in limiter.line(&need.key, now, 50).await? {
            let Some(id) = rank
                .rsplit('#')
                .next()
                .and_then(|id| id.parse::<uuid::Uuid>().ok())
            else {
                continue;
            };
            if let Some(user) = self.deps.store.get_user(UserId(id)).await?
                && user.project_id == project.id
            {
                next.push(user.source_email.as_str().to_owned());
                if next.len() == SHOWN {
                    break;
                }
            }
        }
        Ok(ConnectionUse {
            what: need.what,
            in_use,
            cap: need.cap,
            waiting,
            next,
        })
    }

    /// Gives slots back; one that cannot be given back ends on its own.
    pub(crate) async fn give_back(&self, slots: &[Slot]) {
        schedule::give_back(&*self.deps.limiter, slots).await;
    }

    /// Runs `work` while renewing `slots` every third of their term.
    pub(crate) async fn holding<T>(
        &self,
        slots: &[Slot],
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let mut work = std::pin::pin!(work);
        let ttl = self.config.copy.lease_ttl;
        let every = (ttl / 3).max(Duration::from_millis(10));
        loop {
            tokio::select! {
                done = &mut work => return done,
                () = tokio::time::sleep(every) => {
                    let until = self.deps.clock.now() + ttl;
                    for slot in slots {
                        match self.deps.limiter.renew(slot, until).await {
                            Ok(true) => {}
                            Ok(false) => tracing::warn!(key = %slot.key, "a connection slot ended before its job (a stalled worker): the cap may be passed briefly"),
                            Err(e) => tracing::warn!(key = %slot.key, error = %e, "a connection slot could not be renewed"),
                        }
                    }
                }
            }
        }
    }

    /// Puts the job back to wait for a slot, saying so on the user and since when it waits.
    pub(crate) async fn wait_for(
        &self,
        user: &MailUser,
        job: &Job,
        full: &Full,
        now: time::OffsetDateTime,
    ) -> Result<JobOutcome, AppError> {
        let text = schedule::waiting_text(full);
        if user.last_error.as_deref() != Some(text.as_str()) || user.waiting_since.is_none() {
            let mut next = user.clone();
            next.last_error = Some(text);
            next.waiting_since = user.waiting_since.or(Some(now));
            next.version = user.version + 1;
            next.updated_at = now;
            // Best effort: a write that came first wins, and the next wait writes again.
            let _ = self.deps.store.update_user(&next, user.version).await;
        }
        self.deps
            .queue
            .send(job, wait_for_slot(job, user, now, full.near_front))
            .await?;
        Ok(JobOutcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_within_one_server_can_always_take_both_of_its_slots() {
        let side = || Connector {
            kind: contract::ConnectorKind::Imap,
            host: "IMAP.example.org".into(),
            port: 993,
            security: contract::Security::Tls,
            auth: ConnectorAuth::PerUser,
        };
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let mut project = Project {
            id: ProjectId::new(),
            name: "within".into(),
            source: side(),
            target: side(),
            invite_to: contract::InviteTo::None,
            admin_email: None,
            notify_user: false,
            copy: Default::default(),
            retention: Default::default(),
            sync: Default::default(),
            closed_at: None,
            created_at: now,
            version: 1,
        };
        project.copy.limits.source_server = Some(1);
        project.copy.limits.target_server = Some(1);
        let address = |a: &str| EmailAddress::parse(a).unwrap();
        let user = MailUser {
            id: UserId::new(),
            project_id: project.id,
            source_email: address("ann@example.org"),
            target_email: address("ann.new@example.org"),
            display_name: String::new(),
            state: contract::UserState::Scheduled,
            pass: 1,
            progress: Default::default(),
            last_error: None,
            priority: 0,
            waiting_since: None,
            sync: Default::default(),
            preflight: None,
            line: None,
            has_credentials: true,
            invite_sent_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let needs = schedule::needs(&project, &user);
        let server: Vec<&Need> = needs
            .iter()
            .filter(|n| n.key.starts_with("server:"))
            .collect();
        assert_eq!(server.len(), 2, "{needs:?}");
        assert!(server.iter().all(|n| n.cap == 2), "{needs:?}");
        assert_eq!(server[0].key, "server:imap.example.org:993");
        // Different mailboxes: each keeps the profile's cap of 4.
        let mailboxes: Vec<&Need> = needs
            .iter()
            .filter(|n| n.key.starts_with("mailbox:"))
            .collect();
        assert!(mailboxes.iter().all(|n| n.cap == 4), "{needs:?}");
    }

    #[test]
    fn waiting_jobs_come_back_within_seconds_spread_apart_then_less_often() {
        let now = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(1);
        let user = |since: Option<time::OffsetDateTime>| {
            let mut u: MailUser = serde_json::from_value(serde_json::json!({
                "id": uuid::Uuid::nil(), "project_id": uuid::Uuid::nil(),
                "source_email": "a@example.org", "target_email": "a@example.org",
                "display_name": "", "state": "scheduled", "pass": 1,
                "progress": contract::Progress::default(), "last_error": null,
                "has_credentials": true, "invite_sent_at": null,
                "created_at": "2026-12-07T00:00:00Z", "updated_at": "2026-12-07T00:00:00Z",
                "version": 1
            }))
            .unwrap();
            u.waiting_since = since;
            u
        };
        let delays: std::collections::BTreeSet<u64> = (0..30)
            .map(|i| {
                let job = Job::Copy {
                    user_id: uuid::Uuid::from_u128(i),
                    pass: 1,
                    folder: "INBOX".into(),
                    attempt: 0,
                };
                wait_for_slot(&job, &user(None), now, false).as_secs()
            })
            .collect();
        assert!(delays.iter().all(|d| (2..=6).contains(d)), "{delays:?}");
        assert!(delays.len() > 3, "spread: {delays:?}");
        let job = Job::Plan {
            user_id: uuid::Uuid::nil(),
            pass: 1,
        };
        let long = user(Some(now - time::Duration::hours(2)));
        assert_eq!(
            wait_for_slot(&job, &long, now, false),
            schedule::LONGEST_WAIT
        );
        assert!(wait_for_slot(&job, &long, now, true) <= Duration::from_secs(6));
    }
}
