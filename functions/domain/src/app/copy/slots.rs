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
use crate::providers;

use super::{App, JobOutcome};

/// A slot a job needs: the limiter's key, its cap, and how the user is told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Need {
    pub key: String,
    pub cap: u32,
    pub what: String,
}

/// A need whose cap is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Full {
    pub what: String,
    pub in_use: u32,
    pub cap: u32,
}

/// The slots a copy job of `user` needs: each side's server when the project or the provider
/// profile caps it, and each side's mailbox. The keys name the server (host and port) and the
/// mailbox, not the project, so every project copying from one server shares its cap.
pub(crate) fn needs(project: &Project, user: &MailUser) -> Vec<Need> {
    let limits = &project.copy.limits;
    let mut out = Vec::with_capacity(4);
    for side in [Side::Source, Side::Target] {
        let connector = side.of(project);
        let profile = providers::profile(connector.kind);
        let host = connector.host.to_ascii_lowercase();
        out.extend(server_need(project, side));
        let mailbox = side.email(user).as_str().to_ascii_lowercase();
        out.push(Need {
            key: format!("mailbox:{host}:{}:{mailbox}", connector.port),
            cap: limits
                .per_mailbox
                .unwrap_or(profile.connections_per_mailbox.value),
            what: format!("the {} mailbox {mailbox}", side.as_str()),
        });
    }
    // A job copying within one server (or one mailbox) needs two slots of its key: a cap
    // below that could never be met, and the job would wait for ever.
    for i in 0..out.len() {
        let n = out.iter().filter(|o| o.key == out[i].key).count() as u32;
        out[i].cap = out[i].cap.max(n);
    }
    out
}

/// The slot of a side's server, when the project or the provider profile caps it.
pub(crate) fn server_need(project: &Project, side: Side) -> Option<Need> {
    let connector = side.of(project);
    let limits = &project.copy.limits;
    let cap = match side {
        Side::Source => limits.source_server,
        Side::Target => limits.target_server,
    }
    .or(providers::profile(connector.kind)
        .connections_per_host
        .map(|r| r.value))?;
    let host = connector.host.to_ascii_lowercase();
    Some(Need {
        key: format!("server:{host}:{}", connector.port),
        cap,
        what: format!("the {} server {host}", side.as_str()),
    })
}

/// How long a job waits for a slot: a few seconds, spread by the job so that waiting jobs do
/// not all come back at once.
pub(crate) fn wait_for_slot(job: &Job) -> Duration {
    let spread = job.user_id().as_u128().wrapping_add(match job {
        Job::Copy { folder, .. } => folder.bytes().map(u128::from).sum(),
        Job::Plan { .. } => 0,
    });
    Duration::from_secs(2 + (spread % 5) as u64)
}

/// The text a waiting user shows.
pub(crate) fn waiting_text(full: &Full) -> String {
    format!(
        "waiting: {} is at its limit ({} of {} connections)",
        full.what, full.in_use, full.cap
    )
}

impl App {
    /// A slot for every need, or none: the first need found full, with the others given back.
    pub(crate) async fn take_slots(
        &self,
        needs: &[Need],
        holder: &str,
    ) -> Result<Result<Vec<Slot>, Full>, AppError> {
        let now = self.deps.clock.now();
        let until = now + self.config.copy.lease_ttl;
        let mut held = Vec::with_capacity(needs.len());
        for need in needs {
            match self
                .deps
                .limiter
                .acquire(&need.key, need.cap, holder, until, now)
                .await
            {
                Ok(Some(slot)) => held.push(slot),
                Ok(None) => {
                    self.give_back(&held).await;
                    let in_use = self
                        .deps
                        .limiter
                        .in_use(&need.key, now)
                        .await
                        .unwrap_or(need.cap);
                    return Ok(Err(Full {
                        what: need.what.clone(),
                        in_use,
                        cap: need.cap,
                    }));
                }
                Err(e) => {
                    self.give_back(&held).await;
                    return Err(e.into());
                }
            }
        }
        Ok(Ok(held))
    }

    /// Frees every connection slot of `user`'s servers and mailboxes, for a caller that knows
    /// no other worker is alive (the copy command holding its state file's lock, after a killed
    /// run): the next job need not wait for the dead run's slots to end.
    pub async fn free_connection_slots(&self, user: &MailUser) -> Result<(), AppError> {
        let project = self.project(user.project_id).await?;
        for need in needs(&project, user) {
            self.deps.limiter.clear(&need.key).await?;
        }
        Ok(())
    }

    /// Connections open now to the project's capped servers.
    pub(crate) async fn server_connections(&self, project: &Project) -> Vec<ConnectionUse> {
        let now = self.deps.clock.now();
        let mut out = Vec::new();
        for need in [Side::Source, Side::Target]
            .into_iter()
            .filter_map(|side| server_need(project, side))
        {
            match self.deps.limiter.in_use(&need.key, now).await {
                Ok(in_use) => out.push(ConnectionUse {
                    what: need.what,
                    in_use,
                    cap: need.cap,
                }),
                Err(e) => {
                    tracing::warn!(key = %need.key, error = %e, "connections in use could not be read")
                }
            }
        }
        out
    }

    /// Gives slots back; one that cannot be given back ends on its own.
    pub(crate) async fn give_back(&self, slots: &[Slot]) {
        for slot in slots {
            if let Err(e) = self.deps.limiter.release(slot).await {
                tracing::warn!(key = %slot.key, error = %e, "a connection slot was not given back; it ends on its own");
            }
        }
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

    /// Puts the job back to wait for a slot, saying so on the user.
    pub(crate) async fn wait_for(
        &self,
        user: &MailUser,
        job: &Job,
        full: &Full,
    ) -> Result<JobOutcome, AppError> {
        let text = waiting_text(full);
        if user.last_error.as_deref() != Some(text.as_str()) {
            self.set_last_error(user.id, text).await?;
        }
        self.deps.queue.send(job, wait_for_slot(job)).await?;
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
            has_credentials: true,
            invite_sent_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let needs = needs(&project, &user);
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
    fn waiting_jobs_come_back_within_seconds_spread_apart() {
        let delays: std::collections::BTreeSet<u64> = (0..30)
            .map(|i| {
                let job = Job::Copy {
                    user_id: uuid::Uuid::from_u128(i),
                    pass: 1,
                    folder: "INBOX".into(),
                    attempt: 0,
                };
                wait_for_slot(&job).as_secs()
            })
            .collect();
        assert!(delays.iter().all(|d| (2..=6).contains(d)), "{delays:?}");
        assert!(delays.len() > 3, "spread: {delays:?}");
    }

    #[test]
    fn the_waiting_text_names_what_is_full_and_by_how_much() {
        let full = Full {
            what: "the source server imap.example.org".into(),
            in_use: 12,
            cap: 12,
        };
        assert_eq!(
            waiting_text(&full),
            "waiting: the source server imap.example.org is at its limit (12 of 12 connections)"
        );
    }
}
