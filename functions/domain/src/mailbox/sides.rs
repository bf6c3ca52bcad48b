//! The two roles a session plays in a copy: [`Source`] exposes only what reads a mailbox, so
//! the engine cannot change a source by construction; [`Target`] what writes one.

use time::OffsetDateTime;

use super::{
    AppendItem, AppendOutcome, BodyStream, FetchReport, FetchedMessage, FolderInfo, FolderStatus,
    MailSession, MailboxError, MessageMeta, Namespace, Quota, SpecialUse,
};

/// A session read as a source: it can list, examine, and fetch with `BODY.PEEK`, and nothing
/// else, so the engine cannot change a source mailbox by construction.
pub struct Source(Box<dyn MailSession>);

impl Source {
    pub fn new(session: Box<dyn MailSession>) -> Self {
        Source(session)
    }
    pub async fn list_folders(&mut self) -> Result<Vec<FolderInfo>, MailboxError> {
        self.0.list_folders().await
    }
    pub async fn namespace(&mut self) -> Result<Namespace, MailboxError> {
        self.0.namespace().await
    }
    /// Opens a folder read-only.
    pub async fn examine(&mut self, folder: &str) -> Result<FolderStatus, MailboxError> {
        self.0.examine(folder).await
    }
    pub async fn fetch_meta(
        &mut self,
        from: u32,
        to: u32,
    ) -> Result<Vec<MessageMeta>, MailboxError> {
        self.0.fetch_meta(from, to).await
    }
    pub async fn fetch_changed_since(
        &mut self,
        modseq: u64,
    ) -> Result<Vec<MessageMeta>, MailboxError> {
        self.0.fetch_changed_since(modseq).await
    }
    pub async fn fetch_bodies(
        &mut self,
        uids: &[u32],
        sink: &mut (dyn FnMut(FetchedMessage) -> Result<(), MailboxError> + Send),
    ) -> Result<FetchReport, MailboxError> {
        self.0.fetch_bodies(uids, sink).await
    }
    /// One message's body as it arrives (see [`MailSession::open_body`]).
    pub async fn open_body(
        &mut self,
        uid: u32,
    ) -> Result<Option<Box<dyn BodyStream + '_>>, MailboxError> {
        self.0.open_body(uid).await
    }
    pub async fn find_by_message_id(
        &mut self,
        message_id: &str,
    ) -> Result<Vec<MessageMeta>, MailboxError> {
        self.0.find_by_message_id(message_id).await
    }
    pub async fn all_uids(&mut self) -> Result<Vec<u32>, MailboxError> {
        self.0.all_uids().await
    }
    /// What the server announced it can do.
    pub fn capabilities(&self) -> Vec<String> {
        self.0.capabilities()
    }
    /// The account's storage quota, when the server has one.
    pub async fn quota(&mut self) -> Result<Option<Quota>, MailboxError> {
        self.0.quota().await
    }
    pub async fn logout(self) {
        self.0.logout().await;
    }
}

/// A session written as a target: folders created and selected read-write, messages appended,
/// their flags set, and (only for copies the engine made) removed.
pub struct Target(Box<dyn MailSession>);

impl Target {
    pub fn new(session: Box<dyn MailSession>) -> Self {
        Target(session)
    }
    pub async fn list_folders(&mut self) -> Result<Vec<FolderInfo>, MailboxError> {
        self.0.list_folders().await
    }
    pub async fn namespace(&mut self) -> Result<Namespace, MailboxError> {
        self.0.namespace().await
    }
    pub async fn select(&mut self, folder: &str) -> Result<FolderStatus, MailboxError> {
        self.0.select(folder).await
    }
    /// The total size of the selected folder's messages.
    pub async fn folder_bytes(&mut self) -> Result<u64, MailboxError> {
        self.0.folder_bytes().await
    }
    pub async fn fetch_meta(
        &mut self,
        from: u32,
        to: u32,
    ) -> Result<Vec<MessageMeta>, MailboxError> {
        self.0.fetch_meta(from, to).await
    }
    pub async fn fetch_bodies(
        &mut self,
        uids: &[u32],
        sink: &mut (dyn FnMut(FetchedMessage) -> Result<(), MailboxError> + Send),
    ) -> Result<FetchReport, MailboxError> {
        self.0.fetch_bodies(uids, sink).await
    }
    pub async fn create_folder(
        &mut self,
        folder: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<(), MailboxError> {
        self.0.create_folder(folder, special_use).await
    }
    pub async fn subscribe(&mut self, folder: &str) -> Result<(), MailboxError> {
        self.0.subscribe(folder).await
    }
    pub async fn append(
        &mut self,
        folder: &str,
        items: Vec<AppendItem>,
    ) -> Result<Vec<AppendOutcome>, MailboxError> {
        self.0.append(folder, items).await
    }
    /// Appends one message as it arrives from `body` (see [`MailSession::append_stream`]).
    pub async fn append_stream(
        &mut self,
        folder: &str,
        flags: &[String],
        internaldate: OffsetDateTime,
        body: &mut (dyn BodyStream + '_),
    ) -> Result<AppendOutcome, MailboxError> {
        self.0
            .append_stream(folder, flags, internaldate, body)
            .await
    }
    /// Copies messages of the open folder (a target folder) into another target folder.
    pub async fn copy_to(
        &mut self,
        uids: &[u32],
        folder: &str,
    ) -> Result<Vec<(u32, Option<u32>)>, MailboxError> {
        self.0.copy_to(uids, folder).await
    }
    /// One message's body as it arrives (see [`MailSession::open_body`]).
    pub async fn open_body(
        &mut self,
        uid: u32,
    ) -> Result<Option<Box<dyn BodyStream + '_>>, MailboxError> {
        self.0.open_body(uid).await
    }
    pub async fn find_by_message_id(
        &mut self,
        message_id: &str,
    ) -> Result<Vec<MessageMeta>, MailboxError> {
        self.0.find_by_message_id(message_id).await
    }
    pub async fn delete(&mut self, uids: &[u32]) -> Result<u64, MailboxError> {
        self.0.delete(uids).await
    }
    pub async fn set_flags(&mut self, uid: u32, flags: &[String]) -> Result<(), MailboxError> {
        self.0.set_flags(uid, flags).await
    }
    /// What the server announced it can do.
    pub fn capabilities(&self) -> Vec<String> {
        self.0.capabilities()
    }
    /// The account's storage quota, when the server has one.
    pub async fn quota(&mut self) -> Result<Option<Quota>, MailboxError> {
        self.0.quota().await
    }
    pub async fn logout(self) {
        self.0.logout().await;
    }
}
