//! The ports: small traits the use cases call and the adapters (`embedded`, `aws`, `imap`)
//! implement. Each port has one shared conformance suite (crate `conformance`) that every adapter
//! passes, so the SQLite and DynamoDB stores (and the SQLite and SQS queues) behave alike.

use async_trait::async_trait;
use contract::jobs::Job;
use contract::{SkippedItem, UserState};
use std::time::Duration;
use time::OffsetDateTime;

use crate::audit::AuditEntry;
use crate::error::{MailError, QueueError, StoreError, VaultError};
use crate::model::*;

/// Durable state. Every `update_*` is conditional on `expected_version` (the version read
/// before); the adapter stores the entity with `version = expected_version + 1` and returns
/// [`StoreError::Conflict`] when the stored version differs. Callers pass the entity with the
/// new version already set.
///
/// Every store also keeps the [`Limiter`]'s slots (in the same file or table), so a deployment
/// has one place of shared state.
#[async_trait]
pub trait Store: Limiter + Send + Sync + 'static {
    // Projects.
    async fn insert_project(&self, project: &Project) -> Result<(), StoreError>;
    async fn update_project(
        &self,
        project: &Project,
        expected_version: u64,
    ) -> Result<(), StoreError>;
    async fn get_project(&self, id: ProjectId) -> Result<Option<Project>, StoreError>;
    async fn list_projects(&self) -> Result<Vec<Project>, StoreError>;

    // Users. The pair (project, source address) is unique: inserting a second user with the
    // same source address in a project fails with `AlreadyExists`.
    async fn insert_user(&self, user: &MailUser) -> Result<(), StoreError>;
    async fn update_user(&self, user: &MailUser, expected_version: u64) -> Result<(), StoreError>;
    async fn get_user(&self, id: UserId) -> Result<Option<MailUser>, StoreError>;
    async fn find_user_by_source(
        &self,
        project: ProjectId,
        source_email: &EmailAddress,
    ) -> Result<Option<MailUser>, StoreError>;
    /// Users of a project matching the query, ordered by source address, and the total number
    /// of matches.
    async fn list_users(
        &self,
        project: ProjectId,
        query: &UserQuery,
    ) -> Result<(Vec<MailUser>, u64), StoreError>;
    async fn count_users_by_state(
        &self,
        project: ProjectId,
    ) -> Result<Vec<(UserState, u64)>, StoreError>;
    /// Deletes the user with its credentials, invites, folders and events. Deleting a user that
    /// does not exist succeeds.
    async fn delete_user(&self, id: UserId) -> Result<(), StoreError>;

    // Sealed per-user credentials.
    async fn put_credentials(&self, user: UserId, sealed: &Sealed) -> Result<(), StoreError>;
    async fn get_credentials(&self, user: UserId) -> Result<Option<Sealed>, StoreError>;
    async fn delete_credentials(&self, user: UserId) -> Result<(), StoreError>;

    // Invites, keyed by the token's hash. `insert_invite` fails with `AlreadyExists` on a
    // duplicate hash.
    async fn insert_invite(&self, invite: &Invite) -> Result<(), StoreError>;
    async fn get_invite(&self, token_hash: &str) -> Result<Option<Invite>, StoreError>;
    async fn update_invite(&self, invite: &Invite, expected_version: u64)
    -> Result<(), StoreError>;
    async fn delete_invites_of_user(&self, user: UserId) -> Result<(), StoreError>;

    // Admin settings and sessions.
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Stores the value only when the key is absent; returns whether it was stored.
    async fn put_setting_if_absent(&self, key: &str, value: &str) -> Result<bool, StoreError>;
    async fn put_session(&self, session: &AdminSession) -> Result<(), StoreError>;
    async fn get_session(&self, token_hash: &str) -> Result<Option<AdminSession>, StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;

    // Event log, newest first on read.
    async fn append_event(&self, event: &UserEvent) -> Result<(), StoreError>;
    async fn list_events(&self, user: UserId, limit: usize) -> Result<Vec<UserEvent>, StoreError>;

    // Audit trail: append only (no call edits or deletes an entry; deleting a user keeps the
    // entries about them). Keyed by (project, entry id); `None` is the console-wide trail.
    /// Fails with `AlreadyExists` when an entry with the same id is there.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;
    /// Entries of the project (or the console-wide ones), newest first by id, only ids below
    /// `before` when given, at most `limit`.
    async fn list_audit(
        &self,
        project: Option<ProjectId>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;

    // Folder checkpoints, keyed by (user, source folder name). `expected_version` None means
    // insert (fails with `AlreadyExists` when present).
    async fn put_folder(
        &self,
        folder: &FolderState,
        expected_version: Option<u64>,
    ) -> Result<(), StoreError>;
    async fn get_folder(
        &self,
        user: UserId,
        source_name: &str,
    ) -> Result<Option<FolderState>, StoreError>;
    async fn list_folders(&self, user: UserId) -> Result<Vec<FolderState>, StoreError>;

    // A folder's details kept apart from its checkpoint, so that a checkpoint stays small
    // whatever the folder holds (DynamoDB items end at 400 KB): its skipped messages, one
    // record per source UID, and its copy map in numbered pages. Deleting the user deletes
    // them too.
    /// Stores skipped items of a folder; an item with the same UID is replaced.
    async fn put_skipped(
        &self,
        user: UserId,
        folder: &str,
        items: &[SkippedItem],
    ) -> Result<(), StoreError>;
    /// The folder's skipped items with a UID above `after`, by UID, at most `limit`.
    async fn list_skipped(
        &self,
        user: UserId,
        folder: &str,
        after: u32,
        limit: usize,
    ) -> Result<Vec<SkippedItem>, StoreError>;
    /// Removes every skipped item of the folder.
    async fn clear_skipped(&self, user: UserId, folder: &str) -> Result<(), StoreError>;
    /// Stores page `page` of the folder's copy map, replacing it.
    async fn put_copy_page(
        &self,
        user: UserId,
        folder: &str,
        page: u32,
        runs: &[[u32; 3]],
    ) -> Result<(), StoreError>;
    /// Every stored page of the folder's copy map, by page number.
    async fn list_copy_pages(
        &self,
        user: UserId,
        folder: &str,
    ) -> Result<Vec<(u32, Vec<[u32; 3]>)>, StoreError>;
    /// Removes every page of the folder's copy map.
    async fn clear_copy_pages(&self, user: UserId, folder: &str) -> Result<(), StoreError>;
}

/// One received queue message.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message_id: String,
    /// Opaque handle for `ack` / `retry_later` of this receive.
    pub receipt: String,
    pub job: Job,
    /// How often this message has been received, this time included (1 on first delivery).
    pub receive_count: u32,
}

/// An at-least-once work queue with visibility timeouts, like SQS.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    async fn send(&self, job: &Job, delay: Duration) -> Result<(), QueueError>;
    async fn send_batch(&self, jobs: &[Job]) -> Result<(), QueueError>;
    /// Up to `max` visible messages; each stays invisible for `visibility` unless acked.
    async fn receive(&self, max: usize, visibility: Duration) -> Result<Vec<Delivery>, QueueError>;
    /// Deletes the message: it was handled.
    async fn ack(&self, receipt: &str) -> Result<(), QueueError>;
    /// Makes the message visible again after `delay` (backoff after a failure).
    async fn retry_later(&self, receipt: &str, delay: Duration) -> Result<(), QueueError>;
    /// Messages moved aside after too many receives.
    async fn dead_letters(&self, max: usize) -> Result<Vec<Job>, QueueError>;
    /// Whether any job of this user is queued, waiting or being handled: `None` when the
    /// queue cannot say (SQS cannot look inside its messages), and the watchdog then waits
    /// much longer before it calls a user stalled.
    async fn has_jobs_for(&self, _user: uuid::Uuid) -> Result<Option<bool>, QueueError> {
        Ok(None)
    }
}

/// A mail to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub to: EmailAddress,
    pub to_name: String,
    pub subject: String,
    pub text: String,
}

/// What a sent mail looked like, for the local outbox view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMail {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub sent_at: OffsetDateTime,
    pub text: String,
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), MailError>;
    /// Recently sent mails, newest first, when this mailer keeps them (the local outbox);
    /// `None` when it does not (SES, SMTP).
    async fn outbox(&self, limit: usize) -> Result<Option<Vec<SentMail>>, MailError>;
}

/// Authenticated encryption of credentials. `aad` binds a sealed blob to its owner (a user or
/// project id) so a blob copied onto another record does not open.
#[async_trait]
pub trait Vault: Send + Sync + 'static {
    async fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, VaultError>;
    async fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, VaultError>;
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock tests move by hand.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Self {
        ManualClock(std::sync::Mutex::new(start))
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a successful test login learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginInfo {
    pub capabilities: Vec<String>,
}

/// A slot of a limited resource, held by one job: `key` names the resource (a mail server, a
/// mailbox), `index` which of its slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub key: String,
    pub index: u32,
    pub holder: String,
}

/// Counted slots of shared resources (connections to a mail server, to a mailbox): each slot
/// is a lease that one holder has until a time, so a worker that dies frees its slots when
/// their time runs out. Every change is a conditional write on one slot, so however many
/// workers race, no more than `cap` hold slots `0..cap` of a key at once.
///
/// Beside the slots: a line per key of places ranked by a sortable string, kept until a time
/// (who waits for a slot, `crate::schedule`), and usage counted per key and hour (the bytes
/// of a daily budget).
#[async_trait]
pub trait Limiter: Send + Sync + 'static {
    /// Takes a free slot among `0..cap` of `key` for `holder` until `until`: one nobody holds,
    /// or whose holder's time ended by `now`. `None` when all `cap` are held.
    async fn acquire(
        &self,
        key: &str,
        cap: u32,
        holder: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Option<Slot>, StoreError>;
    /// Extends a slot its holder still has; false when it was lost (its time ended and
    /// another holder took it).
    async fn renew(&self, slot: &Slot, until: OffsetDateTime) -> Result<bool, StoreError>;
    /// Frees a slot; nothing happens when another holder has it by now.
    async fn release(&self, slot: &Slot) -> Result<(), StoreError>;
    /// How many slots of `key` are held at `now`.
    async fn in_use(&self, key: &str, now: OffsetDateTime) -> Result<u32, StoreError>;
    /// Frees every slot of `key`, for a caller that knows all their holders are gone (the
    /// copy command, holding its state file's lock, after a killed run).
    async fn clear(&self, key: &str) -> Result<(), StoreError>;

    /// Puts the place `rank` in the line of `key` until `until`, or moves its end there.
    async fn join_line(
        &self,
        key: &str,
        rank: &str,
        until: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// How many places of `key`'s line, kept at `now`, rank before `rank`; counting stops at
    /// `limit` (the answer is then `limit`).
    async fn ahead_in_line(
        &self,
        key: &str,
        rank: &str,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<u32, StoreError>;
    /// The first `limit` places of `key`'s line kept at `now`, in rank order.
    async fn line(
        &self,
        key: &str,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<String>, StoreError>;
    /// Takes the place `rank` out of the line of `key` (nothing happens when it is not there).
    async fn leave_line(&self, key: &str, rank: &str) -> Result<(), StoreError>;

    /// Adds `amount` to what `key` used in the hour starting at `hour`, in one atomic step.
    async fn add_usage(
        &self,
        key: &str,
        hour: OffsetDateTime,
        amount: u64,
    ) -> Result<(), StoreError>;
    /// What `key` used per hour, for the hours from `since` on.
    async fn usage(
        &self,
        key: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<(OffsetDateTime, u64)>, StoreError>;
}

/// The order a holder tries a key's slots in: from a place its name picks, so racing holders
/// spread over the slots instead of all writing slot 0 first.
pub fn slot_order(holder: &str, cap: u32) -> impl Iterator<Item = u32> {
    let start = holder
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let cap = cap.max(1);
    let start = start % cap;
    (0..cap).map(move |i| (start + i) % cap)
}

#[cfg(test)]
mod slot_order_tests {
    use super::slot_order;

    #[test]
    fn a_holder_tries_every_slot_once_from_a_place_its_name_picks() {
        for cap in [1, 2, 5, 12] {
            for holder in ["a", "job-1", "job-2", "4f1c…"] {
                let mut order: Vec<u32> = slot_order(holder, cap).collect();
                order.sort_unstable();
                assert_eq!(order, (0..cap).collect::<Vec<_>>());
            }
        }
        let firsts: std::collections::BTreeSet<u32> = (0..40)
            .filter_map(|i| slot_order(&format!("job-{i}"), 12).next())
            .collect();
        assert!(
            firsts.len() > 6,
            "holders start at different slots: {firsts:?}"
        );
        assert_eq!(
            slot_order("x", 0).count(),
            1,
            "a cap of 0 still names one slot"
        );
    }
}
