//! A logged-in session on the simulated server: the domain's `MailSession` port, with the
//! semantics of the IMAP adapter (`functions/imap/src/port.rs`) so a property test of the
//! engine exercises the same contract a real server offers. Every call goes through
//! `Server::call`, which counts it for crash injection and dropped connections and never holds
//! the lock across an `.await`.

use async_trait::async_trait;
use domain::mailbox::{
    AppendItem, AppendOutcome, FetchReport, FetchedMessage, FolderInfo, FolderStatus, MailSession,
    MailboxError, MessageMeta, Namespace, SpecialUse,
};

use crate::behaviour::{AppendRefusal, munge_8bit_header, rewrite_like_exchange};
use crate::message_id::message_id;
use crate::server::{Server, settle};
use crate::state::{Flow, State, meta};

/// Gmail's answer when some of the messages of a FETCH could not be read.
pub const FETCH_FAILURE_TEXT: &str = "Some messages could not be FETCHed (Failure)";

/// The folder last selected or examined.
#[derive(Debug, Clone)]
struct Opened {
    name: String,
    read_only: bool,
}

fn opened(open: &Option<Opened>) -> Result<&Opened, MailboxError> {
    open.as_ref()
        .ok_or_else(|| MailboxError::Refused("No mailbox selected".into()))
}

/// A writing command in an EXAMINEd folder: a real server refuses it, and the engine must
/// never modify the source.
fn writable(open: &Option<Opened>) -> Result<&Opened, MailboxError> {
    let o = opened(open)?;
    if o.read_only {
        return Err(MailboxError::Refused(
            "[READ-ONLY] Mailbox is open read-only".into(),
        ));
    }
    Ok(o)
}

/// One session; dropping it (with or without `logout`) closes it on the server.
pub struct SimSession {
    server: Server,
    id: u64,
    login: String,
    open: Option<Opened>,
}

impl std::fmt::Debug for SimSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimSession")
            .field("id", &self.id)
            .field("login", &self.login)
            .field("open", &self.open)
            .finish()
    }
}

impl SimSession {
    pub(crate) fn new(server: Server, id: u64, login: &str) -> SimSession {
        SimSession {
            server,
            id,
            login: login.to_owned(),
            open: None,
        }
    }

    /// A call whose body cannot crash part-way.
    async fn run<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, MailboxError>,
    ) -> Result<T, MailboxError> {
        self.server.call(self.id, |st| Flow::Done(f(st))).await
    }

    async fn open_folder(
        &mut self,
        folder: &str,
        read_only: bool,
    ) -> Result<FolderStatus, MailboxError> {
        let login = &self.login;
        let result = self
            .run(|st| {
                let status = st.folder(login, folder)?.status(st.behaviour.condstore);
                Ok((st.canonical(folder), status))
            })
            .await;
        // A failed SELECT leaves no folder open (RFC 3501 6.3.1).
        self.open = None;
        let (name, status) = result?;
        self.open = Some(Opened { name, read_only });
        Ok(status)
    }

    /// The metadata of the open folder's messages that `keep` selects, in UID order.
    /// With `needs_condstore`, refused as by a server without CONDSTORE when it is off.
    async fn metas(
        &self,
        needs_condstore: bool,
        keep: impl Fn(u32, u64) -> bool,
    ) -> Result<Vec<MessageMeta>, MailboxError> {
        let (login, open) = (&self.login, &self.open);
        self.run(|st| {
            let condstore = st.behaviour.condstore;
            if needs_condstore && !condstore {
                return Err(MailboxError::Refused("CONDSTORE not supported".into()));
            }
            let folder = st.folder(login, &opened(open)?.name)?;
            Ok(folder
                .messages
                .iter()
                .filter(|(uid, m)| keep(**uid, m.modseq))
                .map(|(&uid, m)| meta(uid, m, condstore))
                .collect())
        })
        .await
    }
}

impl Drop for SimSession {
    fn drop(&mut self) {
        // Also when the engine's future is dropped mid-operation: the connection closes.
        self.server.end_session(self.id);
    }
}

/// One message of a body fetch, read under the lock.
enum Fetched {
    Message(FetchedMessage),
    /// The server could not return it (a configured fetch failure).
    Failed,
    /// Expunged meanwhile, or never there.
    Gone,
}

fn fetch_one(st: &mut State, login: &str, folder: &str, uid: u32) -> Flow<Fetched> {
    if st.tripped {
        return Flow::Crash;
    }
    let condstore = st.behaviour.condstore;
    let Some(message) = st
        .folder(login, folder)
        .ok()
        .and_then(|f| f.messages.get(&uid))
    else {
        return Flow::Done(Fetched::Gone);
    };
    let fetched = FetchedMessage {
        meta: meta(uid, message, condstore),
        body: message.bytes.clone(),
    };
    if let Some(id) = &fetched.meta.message_id
        && let Some(left) = st.behaviour.fetch_failures.get_mut(id)
        && *left > 0
    {
        if *left != u32::MAX {
            *left -= 1;
        }
        return Flow::Done(Fetched::Failed);
    }
    if st.tick() {
        return Flow::Crash;
    }
    Flow::Done(Fetched::Message(fetched))
}

/// APPEND of several items: each counts as one operation, so a fail point can land between
/// two of them, leaving the first ones stored and the rest not.
fn append_items(
    st: &mut State,
    login: &str,
    folder: &str,
    items: Vec<AppendItem>,
) -> Flow<Result<Vec<AppendOutcome>, MailboxError>> {
    // A missing folder: IMAP's NO [TRYCREATE], which the adapter reports as FolderNotFound.
    if let Err(e) = st.folder(login, folder) {
        return Flow::Done(Err(e));
    }
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        if st.tick() {
            return Flow::Crash;
        }
        let outcome = append_one(st, login, folder, item);
        outcomes.push(outcome.unwrap_or_else(|e| AppendOutcome::Rejected {
            reason: e.to_string(),
        }));
    }
    Flow::Done(Ok(outcomes))
}

/// The checks in the order a server makes them: refusing any APPEND at all (throttling, an
/// administrative over-quota) before reading the message, then the message itself, then
/// whether it is a duplicate, then whether it fits.
fn append_one(
    st: &mut State,
    login: &str,
    folder: &str,
    item: AppendItem,
) -> Result<AppendOutcome, MailboxError> {
    let b = &st.behaviour;
    if let Some(refusal) = &b.append_refusal
        && b.append_refusal_after == 0
    {
        return Ok(refusal.outcome());
    }
    let bytes = if b.rewrite_on_append {
        rewrite_like_exchange(&item.body)
    } else if b.munge_8bit_headers {
        munge_8bit_header(&item.body)
    } else {
        item.body
    };
    let id = message_id(&bytes);
    if id
        .as_ref()
        .is_some_and(|id| b.refuse_message_ids.contains(id))
    {
        return Ok(AppendRefusal::PlainNo.outcome());
    }
    let uidplus = b.uidplus;
    let quota = b.quota_bytes;
    let duplicate = match &id {
        Some(id) if b.drop_duplicate_message_ids => st
            .folder(login, folder)?
            .find_by_message_id(id)
            .map(|(uid, _)| uid)
            .next(),
        _ => None,
    };
    if let Some(uid) = duplicate {
        count_accepted(st);
        return Ok(AppendOutcome::Appended {
            uid: uidplus.then_some(uid),
        });
    }
    if let Some(quota) = quota
        && st.user(login)?.stored_bytes() + bytes.len() as u64 > quota
    {
        return Ok(AppendRefusal::OverQuota.outcome());
    }
    let flags: Vec<String> = item
        .flags
        .into_iter()
        .filter(|f| {
            !b.drop_flags_on_append
                .iter()
                .any(|d| d.eq_ignore_ascii_case(f))
        })
        .collect();
    st.uploaded_bytes += bytes.len() as u64;
    let uid = st.store_new(login, folder, bytes, &flags, item.internaldate)?;
    count_accepted(st);
    Ok(AppendOutcome::Appended {
        uid: uidplus.then_some(uid),
    })
}

fn count_accepted(st: &mut State) {
    let b = &mut st.behaviour;
    if b.append_refusal.is_some() {
        b.append_refusal_after = b.append_refusal_after.saturating_sub(1);
    }
}

#[async_trait]
impl MailSession for SimSession {
    async fn list_folders(&mut self) -> Result<Vec<FolderInfo>, MailboxError> {
        let login = &self.login;
        self.run(|st| {
            let delimiter = st.delimiter;
            let mut folders: Vec<FolderInfo> = st
                .user(login)?
                .folders
                .iter()
                .map(|(name, f)| FolderInfo {
                    name: name.clone(),
                    delimiter: Some(delimiter),
                    special_use: f.special_use,
                    selectable: true,
                    subscribed: f.subscribed,
                })
                .collect();
            // INBOX first, the rest by name, as Dovecot lists them.
            folders.sort_by_key(|f| f.name != "INBOX");
            Ok(folders)
        })
        .await
    }

    async fn namespace(&mut self) -> Result<Namespace, MailboxError> {
        self.run(|st| {
            Ok(Namespace {
                prefix: st.behaviour.namespace_prefix.clone(),
                delimiter: Some(st.delimiter),
            })
        })
        .await
    }

    async fn examine(&mut self, folder: &str) -> Result<FolderStatus, MailboxError> {
        self.open_folder(folder, true).await
    }

    async fn select(&mut self, folder: &str) -> Result<FolderStatus, MailboxError> {
        self.open_folder(folder, false).await
    }

    async fn fetch_meta(&mut self, from: u32, to: u32) -> Result<Vec<MessageMeta>, MailboxError> {
        if let Some(delay) = self.server.behaviour().meta_delay {
            tokio::time::sleep(delay).await;
        }
        self.metas(false, |uid, _| (from..=to).contains(&uid)).await
    }

    async fn fetch_changed_since(&mut self, modseq: u64) -> Result<Vec<MessageMeta>, MailboxError> {
        self.metas(true, |_, m| m > modseq).await
    }

    async fn fetch_bodies(
        &mut self,
        uids: &[u32],
        sink: &mut (dyn FnMut(FetchedMessage) -> Result<(), MailboxError> + Send),
    ) -> Result<FetchReport, MailboxError> {
        let (login, open) = (&self.login, &self.open);
        let folder = self
            .run(|st| {
                let name = opened(open)?.name.clone();
                st.folder(login, &name)?;
                Ok(name)
            })
            .await?;
        let mut uids = uids.to_vec();
        uids.sort_unstable();
        uids.dedup();
        let mut report = FetchReport::default();
        for uid in uids {
            // One message at a time, and the sink called without the lock: it may take its
            // time, and mail may be delivered or expunged in between, as on a real server.
            let flow = fetch_one(&mut self.server.lock(), login, &folder, uid);
            match settle(flow).await {
                Fetched::Message(m) => sink(m)?,
                Fetched::Failed => report.server_error = Some(FETCH_FAILURE_TEXT.into()),
                Fetched::Gone => {}
            }
        }
        Ok(report)
    }

    async fn create_folder(
        &mut self,
        folder: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<(), MailboxError> {
        let login = &self.login;
        // IMAP CREATE does not subscribe; the engine subscribes separately.
        self.run(|st| {
            let b = &st.behaviour;
            let outside = !b.namespace_prefix.is_empty()
                && !folder.starts_with(&b.namespace_prefix)
                && !folder.eq_ignore_ascii_case("INBOX");
            if (outside || b.refuse_create.contains(folder)) && st.folder(login, folder).is_err() {
                return Err(MailboxError::Refused(format!(
                    "CREATE failed: Permission denied ({folder})"
                )));
            }
            let role = special_use.filter(|_| b.create_special_use);
            let exists = st.folder(login, folder).is_ok();
            // A role only comes with the CREATE that makes the folder.
            st.create_folder(login, folder, role.filter(|_| !exists), false)
                .map(drop)
        })
        .await
    }

    async fn subscribe(&mut self, folder: &str) -> Result<(), MailboxError> {
        let login = &self.login;
        self.run(|st| {
            st.folder_mut(login, folder)?.subscribed = true;
            Ok(())
        })
        .await
    }

    async fn append(
        &mut self,
        folder: &str,
        items: Vec<AppendItem>,
    ) -> Result<Vec<AppendOutcome>, MailboxError> {
        let login = &self.login;
        if let Some(delay) = self.server.behaviour().append_delay {
            // A slow server stores each message as its literal arrives, so a call dropped
            // half-way leaves the first messages stored.
            let mut outcomes = Vec::with_capacity(items.len());
            for item in items {
                tokio::time::sleep(delay).await;
                let one = self
                    .server
                    .call(self.id, |st| append_items(st, login, folder, vec![item]))
                    .await?;
                outcomes.extend(one);
            }
            return Ok(outcomes);
        }
        self.server
            .call(self.id, |st| append_items(st, login, folder, items))
            .await
    }

    async fn copy_to(
        &mut self,
        uids: &[u32],
        folder: &str,
    ) -> Result<Vec<(u32, Option<u32>)>, MailboxError> {
        let (login, open) = (&self.login, &self.open);
        self.run(|st| {
            let from = opened(open)?.name.clone();
            let uidplus = st.behaviour.uidplus;
            let copies = st.copy(login, &from, uids, folder)?;
            Ok(copies
                .into_iter()
                .map(|(uid, copy)| (uid, copy.filter(|_| uidplus)))
                .collect())
        })
        .await
    }

    async fn find_by_message_id(
        &mut self,
        message_id: &str,
    ) -> Result<Vec<MessageMeta>, MailboxError> {
        let (login, open) = (&self.login, &self.open);
        self.run(|st| {
            let condstore = st.behaviour.condstore;
            Ok(st
                .folder(login, &opened(open)?.name)?
                .find_by_message_id(message_id)
                .map(|(uid, m)| meta(uid, m, condstore))
                .collect())
        })
        .await
    }

    async fn all_uids(&mut self) -> Result<Vec<u32>, MailboxError> {
        let (login, open) = (&self.login, &self.open);
        self.run(|st| {
            let folder = st.folder(login, &opened(open)?.name)?;
            Ok(folder.messages.keys().copied().collect())
        })
        .await
    }

    async fn delete(&mut self, uids: &[u32]) -> Result<u64, MailboxError> {
        let (login, open) = (&self.login, &self.open);
        self.run(|st| {
            let folder = st.folder_mut(login, &writable(open)?.name)?;
            let mut uids = uids.to_vec();
            uids.sort_unstable();
            uids.dedup();
            Ok(uids.into_iter().filter(|&uid| folder.expunge(uid)).count() as u64)
        })
        .await
    }

    async fn set_flags(&mut self, uid: u32, flags: &[String]) -> Result<(), MailboxError> {
        let (login, open) = (&self.login, &self.open);
        self.run(|st| {
            // STORE on a UID that is gone is not an error in IMAP either.
            st.folder_mut(login, &writable(open)?.name)?
                .set_flags(uid, flags);
            Ok(())
        })
        .await
    }

    fn capabilities(&self) -> Vec<String> {
        let b = self.server.behaviour();
        let mut caps = vec!["IMAP4REV1".to_owned(), "MULTIAPPEND".to_owned()];
        for (on, name) in [
            (b.uidplus, "UIDPLUS"),
            (b.condstore, "CONDSTORE"),
            (b.quota_bytes.is_some(), "QUOTA"),
            (b.gmail_labels, "X-GM-EXT-1"),
        ] {
            if on {
                caps.push(name.to_owned());
            }
        }
        caps
    }

    async fn quota(&mut self) -> Result<Option<domain::mailbox::Quota>, MailboxError> {
        let limit = self.server.behaviour().quota_bytes;
        Ok(limit.map(|limit_bytes| domain::mailbox::Quota {
            used_bytes: self.server.stored_bytes(&self.login),
            limit_bytes,
        }))
    }

    async fn logout(self: Box<Self>) {
        // Drop closes the session on the server; a logout never fails or hangs.
        drop(self);
    }
}
