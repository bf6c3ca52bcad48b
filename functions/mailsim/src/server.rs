//! The simulated server as tests hold it: a cheap handle on shared state with direct helpers
//! that play the part of the world around a migration (mail delivered or deleted by users,
//! flags changed in a mail client, an index rebuild that renumbers UIDs), the behaviour
//! switches, crash injection, and the connector the engine opens sessions with.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use domain::Endpoint;
use domain::error::LoginError;
use domain::mailbox::{FolderStatus, MailServers, MailSession, MailboxError, SpecialUse};
use domain::ports::LoginInfo;
use domain::secret::Credential;
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::behaviour::Behaviour;
use crate::session::SimSession;
use crate::state::{Flow, State, User};

/// An empty flag list for the helpers, whose flag type cannot be inferred from `&[]`.
pub const NO_FLAGS: &[&str] = &[];

/// A message as stored, for a test's assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub uid: u32,
    pub bytes: Vec<u8>,
    pub flags: Vec<String>,
    pub internaldate: OffsetDateTime,
    /// X-GM-MSGID, with Gmail's labels on.
    pub gmail_id: Option<u64>,
}

impl StoredMessage {
    pub fn message_id(&self) -> Option<String> {
        crate::message_id(&self.bytes)
    }
}

/// A folder as stored, for a test's assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFolder {
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub subscribed: bool,
    /// What SELECT would report (HIGHESTMODSEQ always, whatever `condstore` says).
    pub status: FolderStatus,
}

/// An in-memory mail server. Clones share the same state; it is also the
/// [`MailServers`] port the engine opens sessions with (the endpoint is ignored).
///
/// The direct helpers take the lock once and are not port operations: they neither count
/// toward the fail point or the disconnect budget nor obey the behaviours. They panic on a
/// missing user or folder, which is a mistake in the test.
#[derive(Clone)]
pub struct Server {
    state: Arc<Mutex<State>>,
    trip: Arc<Notify>,
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock();
        f.debug_struct("Server")
            .field("users", &st.users.keys().collect::<Vec<_>>())
            .field("ops", &st.ops)
            .field("tripped", &st.tripped)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server with `/` as its hierarchy delimiter (Dovecot's default).
    pub fn new() -> Server {
        Server::with_delimiter('/')
    }

    /// A server with another delimiter (`.` as Courier, Cyrus and Dovecot's maildir layout).
    pub fn with_delimiter(delimiter: char) -> Server {
        let trip = Arc::new(Notify::new());
        Server {
            state: Arc::new(Mutex::new(State::new(delimiter, trip.clone()))),
            trip,
        }
    }

    /// The lock; a panic elsewhere (a failing test) must not make every later call panic too.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a user with an INBOX, or changes an existing user's password.
    pub fn add_user(&self, login: &str, password: &str) {
        let mut st = self.lock();
        if let Some(user) = st.users.get_mut(login) {
            user.password = password.to_owned();
            return;
        }
        st.users.insert(
            login.to_owned(),
            User {
                password: password.to_owned(),
                folders: Default::default(),
            },
        );
        ok(st.create_folder(login, "INBOX", None, true));
    }

    /// Creates a subscribed folder (and its parents), as a user's mail client would; on an
    /// existing folder only sets the special use.
    pub fn create_folder(&self, user: &str, name: &str, special_use: Option<SpecialUse>) {
        ok(self.lock().create_folder(user, name, special_use, true));
    }

    /// Deletes a folder and its messages; false when there was none.
    pub fn delete_folder(&self, user: &str, name: &str) -> bool {
        let mut st = self.lock();
        let key = st.canonical(name);
        ok(st.user_mut(user)).folders.remove(&key).is_some()
    }

    /// Delivers a message as the server's MTA would (no behaviour applies); returns its UID.
    /// INTERNALDATE keeps whole seconds, as over IMAP.
    pub fn deliver(
        &self,
        user: &str,
        folder: &str,
        bytes: impl Into<Vec<u8>>,
        flags: &[impl AsRef<str>],
        internaldate: OffsetDateTime,
    ) -> u32 {
        let flags: Vec<String> = flags.iter().map(|f| f.as_ref().to_owned()).collect();
        ok(self
            .lock()
            .store_new(user, folder, bytes.into(), &flags, internaldate))
    }

    /// Delivers one message under several labels (the first is where it arrives, the others
    /// are applied to it), as Gmail shows it with `gmail_labels` on: one X-GM-MSGID in every
    /// label and in All Mail. Returns its UID in each label.
    pub fn deliver_labelled(
        &self,
        user: &str,
        labels: &[&str],
        bytes: impl Into<Vec<u8>>,
        flags: &[impl AsRef<str>],
        internaldate: OffsetDateTime,
    ) -> Vec<u32> {
        let (first, rest) = labels.split_first().expect("at least one label");
        let uid = self.deliver(user, first, bytes, flags, internaldate);
        let mut st = self.lock();
        let mut uids = vec![uid];
        for label in rest {
            let copies = ok(st.copy(user, first, &[uid], label));
            uids.extend(copies.into_iter().filter_map(|(_, copy)| copy));
        }
        uids
    }

    /// Bytes APPENDed and stored so far, for every user (what a client uploaded).
    pub fn uploaded_bytes(&self) -> u64 {
        self.lock().uploaded_bytes
    }

    /// Removes a message (a user deleting it); false when there was no such UID.
    pub fn expunge(&self, user: &str, folder: &str, uid: u32) -> bool {
        ok(self.lock().folder_mut(user, folder)).expunge(uid)
    }

    /// Replaces a message's flags (a user reading or flagging it); false when no such UID.
    pub fn set_flags(&self, user: &str, folder: &str, uid: u32, flags: &[impl AsRef<str>]) -> bool {
        let flags: Vec<String> = flags.iter().map(|f| f.as_ref().to_owned()).collect();
        ok(self.lock().folder_mut(user, folder)).set_flags(uid, &flags)
    }

    /// Gives the folder a new UIDVALIDITY and its messages new UIDs from 1 in the same order;
    /// returns the new UIDVALIDITY.
    pub fn renumber(&self, user: &str, folder: &str) -> u32 {
        let mut st = self.lock();
        let uidvalidity = st.new_uidvalidity();
        ok(st.folder_mut(user, folder)).renumber(uidvalidity);
        uidvalidity
    }

    /// The folder's messages in UID order.
    pub fn messages(&self, user: &str, folder: &str) -> Vec<StoredMessage> {
        let st = self.lock();
        ok(st.folder(user, folder))
            .messages
            .iter()
            .map(|(&uid, m)| StoredMessage {
                uid,
                bytes: m.bytes.clone(),
                flags: m.flags.clone(),
                internaldate: m.internaldate,
                gmail_id: m.gmail_id,
            })
            .collect()
    }

    /// The user's folders by name.
    pub fn folders(&self, user: &str) -> Vec<StoredFolder> {
        let st = self.lock();
        ok(st.user(user))
            .folders
            .iter()
            .map(|(name, f)| StoredFolder {
                name: name.clone(),
                special_use: f.special_use,
                subscribed: f.subscribed,
                status: f.status(true),
            })
            .collect()
    }

    /// What the user's messages take, the figure `quota_bytes` is compared with.
    pub fn stored_bytes(&self, user: &str) -> u64 {
        ok(self.lock().user(user)).stored_bytes()
    }

    pub fn behaviour(&self) -> Behaviour {
        self.lock().behaviour.clone()
    }

    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.lock().behaviour = behaviour;
    }

    /// Changes the behaviour in place. The closure runs under the server's lock: it must not
    /// call the server.
    pub fn behaviour_mut<R>(&self, f: impl FnOnce(&mut Behaviour) -> R) -> R {
        f(&mut self.lock().behaviour)
    }

    /// Port operations so far: one per call (`open` included, `logout` not), plus one per
    /// APPENDed item and one per message `fetch_bodies` hands over.
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Sets the fail point `n` operations from now (`n` ≥ 1: the n-th next operation trips).
    pub fn fail_after(&self, n: u64) {
        let mut st = self.lock();
        st.behaviour.fail_point = Some(st.ops + n);
    }

    /// Whether the fail point was reached.
    pub fn tripped(&self) -> bool {
        self.lock().tripped
    }

    /// Lets calls through again and removes the fail point. Calls that hung stay hung (their
    /// futures are meant to be dropped).
    pub fn clear_trip(&self) {
        let mut st = self.lock();
        st.tripped = false;
        st.behaviour.fail_point = None;
    }

    /// Resolves once the server has tripped (at once if it already has).
    pub async fn wait_tripped(&self) {
        loop {
            let mut notified = std::pin::pin!(self.trip.notified());
            // Registered before the check, so a trip between the check and the await wakes us.
            notified.as_mut().enable();
            if self.tripped() {
                return;
            }
            notified.await;
        }
    }

    /// Drops every open connection, as a restarting server does; its mail stays.
    pub fn drop_connections(&self) {
        self.lock().sessions.clear();
    }

    /// Restarts the `disconnect_after_commands` count from zero.
    pub fn reset_commands(&self) {
        self.lock().commands = 0;
    }

    /// Sessions opened since the server started (logins accepted), of every user.
    pub fn logins(&self) -> u64 {
        self.lock().next_session - 1
    }

    /// Sessions of `user` the server counts as open.
    pub fn open_sessions(&self, user: &str) -> usize {
        self.lock().sessions.values().filter(|l| *l == user).count()
    }

    /// A session ended: by logout, by being dropped, or never (the server dropped it first).
    pub(crate) fn end_session(&self, id: u64) {
        self.lock().sessions.remove(&id);
    }

    /// Runs one session call under the lock: the entry checks of `State::begin`, then `f`.
    /// The lock is released before a crashed call hangs.
    pub(crate) async fn call<T>(
        &self,
        session: u64,
        f: impl FnOnce(&mut State) -> Flow<Result<T, MailboxError>>,
    ) -> Result<T, MailboxError> {
        let flow = {
            let mut st = self.lock();
            match st.begin(session) {
                Flow::Done(Ok(())) => f(&mut st),
                Flow::Done(Err(e)) => Flow::Done(Err(e)),
                Flow::Crash => Flow::Crash,
            }
        };
        settle(flow).await
    }
}

/// The value of a finished call; a crashed call never returns, like a process that died.
pub(crate) async fn settle<T>(flow: Flow<T>) -> T {
    match flow {
        Flow::Done(v) => v,
        Flow::Crash => hang().await,
    }
}

async fn hang<T>() -> T {
    loop {
        std::future::pending::<()>().await;
    }
}

/// Unwraps a helper's result: a missing user or folder is the test's mistake.
fn ok<T>(r: Result<T, MailboxError>) -> T {
    r.unwrap_or_else(|e| panic!("mailsim helper: {e}"))
}

#[async_trait]
impl MailServers for Server {
    /// Checks the password without opening a session (and without the fail point).
    async fn test_login(
        &self,
        _endpoint: &Endpoint,
        login: &str,
        credential: &Credential,
        _timeout: Duration,
    ) -> Result<LoginInfo, LoginError> {
        let st = self.lock();
        match (st.users.get(login), credential) {
            (Some(user), Credential::Password(password)) if user.password == password.expose() => {
                Ok(LoginInfo::default())
            }
            _ => Err(LoginError::Rejected(
                "[AUTHENTICATIONFAILED] Authentication failed".into(),
            )),
        }
    }

    async fn open(
        &self,
        _endpoint: &Endpoint,
        login: &str,
        credential: &Credential,
        _timeout: Duration,
    ) -> Result<Box<dyn MailSession>, MailboxError> {
        let flow = {
            let mut st = self.lock();
            if st.tick() {
                Flow::Crash
            } else {
                Flow::Done(st.open_session(login, credential))
            }
        };
        let id = settle(flow).await?;
        Ok(Box::new(SimSession::new(self.clone(), id, login)))
    }
}
