//! The domain's mail-server port on IMAP: [`ImapMailboxes`] is `domain::mailbox::MailServers`
//! (the login check, and sessions for the copy engine) and [`ImapMailSession`] maps each engine
//! operation onto the [`Session`] methods. Folder figures, message metadata, fetched
//! messages and special-use roles are the domain's own types; what is translated here is what carries protocol detail
//! (a folder's raw name, APPENDUID's UIDVALIDITY and a refusal's response code) and the errors
//! (what is transient, a login problem, a missing folder).

use std::ops::ControlFlow;
use std::time::Duration;

use async_trait::async_trait;
use domain::Endpoint;
use domain::error::LoginError;
use domain::mailbox::{self as port, MailServers, MailSession, MailboxError, retry_hint};
use domain::ports::LoginInfo;
use domain::secret::Credential;

use crate::{ImapError, ImapMailboxes, Session, UidSet};

/// Classifies an IMAP failure for the engine's retry decisions.
pub fn to_mailbox_error(e: ImapError) -> MailboxError {
    if let ImapError::Source(e) = e {
        return e;
    }
    let text = e.to_string();
    match &e {
        ImapError::LoginRejected { .. } if e.is_temporary_login_refusal() => {
            MailboxError::Throttled {
                retry_after: retry_hint(&text),
                message: text,
            }
        }
        ImapError::LoginRejected { .. } | ImapError::NoLoginMethod(_) => MailboxError::Auth(text),
        ImapError::Timeout { .. }
        | ImapError::Io(_)
        | ImapError::Closed { .. }
        | ImapError::Connect { .. }
        | ImapError::Resolve { .. }
        | ImapError::Broken
        | ImapError::Refused(_) => MailboxError::Connection(text),
        ImapError::No { .. } => {
            let code = e.code_name().unwrap_or_default();
            if code.contains("TRYCREATE") || code.contains("NONEXISTENT") {
                MailboxError::FolderNotFound(text)
            } else if crate::error::is_temporary_code(&code) {
                // RFC 5530: temporary conditions; a server asking us to slow down says so here,
                // sometimes with how long to wait in the text.
                MailboxError::Throttled {
                    retry_after: retry_hint(&text),
                    message: text,
                }
            } else {
                MailboxError::Refused(text)
            }
        }
        _ => MailboxError::Refused(text),
    }
}

fn uid_range(from: u32, to: u32) -> UidSet {
    if to == u32::MAX {
        UidSet::from_uid(from)
    } else {
        UidSet::range(from..=to)
    }
}

/// A logged-in IMAP session behind the engine's port.
pub struct ImapMailSession {
    session: Session,
}

impl ImapMailSession {
    pub fn new(session: Session) -> Self {
        ImapMailSession { session }
    }

    fn selected_name(&self) -> Result<String, MailboxError> {
        self.session
            .selected()
            .map(|s| s.name.clone())
            .ok_or_else(|| MailboxError::Refused("no folder is open".into()))
    }
}

#[async_trait]
impl MailServers for ImapMailboxes {
    async fn test_login(
        &self,
        endpoint: &Endpoint,
        login: &str,
        credential: &Credential,
        timeout: Duration,
    ) -> Result<LoginInfo, LoginError> {
        self.check_login(endpoint, login, credential, timeout).await
    }

    async fn open(
        &self,
        endpoint: &Endpoint,
        login: &str,
        credential: &Credential,
        timeout: Duration,
    ) -> Result<Box<dyn MailSession>, MailboxError> {
        let mut session = match tokio::time::timeout(
            timeout,
            ImapMailboxes::open(self, endpoint, login, credential, timeout),
        )
        .await
        {
            Ok(r) => r.map_err(to_mailbox_error)?,
            Err(_) => {
                return Err(MailboxError::Connection(format!(
                    "{}:{} did not answer in time",
                    endpoint.host, endpoint.port
                )));
            }
        };
        if self.compression() {
            session = session.compress().await.map_err(to_mailbox_error)?.0;
        }
        // CONDSTORE makes SELECT report HIGHESTMODSEQ and lets delta passes ask for changes.
        if session.capabilities().has("CONDSTORE") {
            session.enable_condstore().await.map_err(to_mailbox_error)?;
        }
        Ok(Box::new(ImapMailSession::new(session)))
    }
}

#[async_trait]
impl MailSession for ImapMailSession {
    async fn list_folders(&mut self) -> Result<Vec<port::FolderInfo>, MailboxError> {
        self.session.list_folders().await.map_err(to_mailbox_error)
    }

    async fn namespace(&mut self) -> Result<port::Namespace, MailboxError> {
        self.session
            .personal_namespace()
            .await
            .map_err(to_mailbox_error)
    }

    async fn examine(&mut self, folder: &str) -> Result<port::FolderStatus, MailboxError> {
        self.session.examine(folder).await.map_err(to_mailbox_error)
    }

    async fn select(&mut self, folder: &str) -> Result<port::FolderStatus, MailboxError> {
        self.session.select(folder).await.map_err(to_mailbox_error)
    }

    async fn fetch_meta(
        &mut self,
        from: u32,
        to: u32,
    ) -> Result<Vec<port::MessageMeta>, MailboxError> {
        let metas = self
            .session
            .fetch_meta(&uid_range(from, to))
            .await
            .map_err(to_mailbox_error)?;
        Ok(metas)
    }

    async fn folder_bytes(&mut self) -> Result<u64, MailboxError> {
        self.session.folder_bytes().await.map_err(to_mailbox_error)
    }

    async fn fetch_changed_since(
        &mut self,
        modseq: u64,
    ) -> Result<Vec<port::MessageMeta>, MailboxError> {
        let changes = self
            .session
            .fetch_changed_since(modseq)
            .await
            .map_err(to_mailbox_error)?;
        Ok(changes.changed)
    }

    async fn fetch_bodies(
        &mut self,
        uids: &[u32],
        sink: &mut (dyn FnMut(port::FetchedMessage) -> Result<(), MailboxError> + Send),
    ) -> Result<port::FetchReport, MailboxError> {
        let mut failure: Option<MailboxError> = None;
        let summary = self
            .session
            .fetch_bodies(&UidSet::from_uids(uids.iter().copied()), |m| {
                let result = sink(m);
                let flow = match result {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => {
                        failure = Some(e);
                        ControlFlow::Break(())
                    }
                };
                std::future::ready(flow)
            })
            .await
            .map_err(to_mailbox_error)?;
        if let Some(e) = failure {
            return Err(e);
        }
        // A FETCH that ended in NO because the server is busy is throttling; any other NO
        // (some messages could not be read) leaves the missing ones to the engine, which
        // retries them and lists what still fails with this text.
        if let Some(text) = &summary.server_error
            && port::is_temporary(crate::append::code_name(text).as_deref(), text)
        {
            return Err(MailboxError::Throttled {
                message: text.clone(),
                retry_after: retry_hint(text),
            });
        }
        Ok(port::FetchReport {
            server_error: summary.server_error,
        })
    }

    async fn create_folder(
        &mut self,
        folder: &str,
        special_use: Option<port::SpecialUse>,
    ) -> Result<(), MailboxError> {
        self.session
            .create_special_folder(folder, special_use)
            .await
            .map(drop)
            .map_err(to_mailbox_error)
    }

    async fn subscribe(&mut self, folder: &str) -> Result<(), MailboxError> {
        self.session
            .subscribe(folder)
            .await
            .map_err(to_mailbox_error)
    }

    async fn append(
        &mut self,
        folder: &str,
        items: Vec<port::AppendItem>,
    ) -> Result<Vec<port::AppendOutcome>, MailboxError> {
        self.session
            .append(folder, &items)
            .await
            .map_err(to_mailbox_error)
    }

    async fn open_body(
        &mut self,
        uid: u32,
    ) -> Result<Option<Box<dyn port::BodyStream + '_>>, MailboxError> {
        let body = self
            .session
            .open_body(uid)
            .await
            .map_err(to_mailbox_error)?;
        Ok(body.map(|b| Box::new(b) as Box<dyn port::BodyStream + '_>))
    }

    async fn append_stream(
        &mut self,
        folder: &str,
        flags: &[String],
        internaldate: time::OffsetDateTime,
        body: &mut (dyn port::BodyStream + '_),
    ) -> Result<port::AppendOutcome, MailboxError> {
        self.session
            .append_stream(folder, flags, internaldate, body)
            .await
            .map_err(to_mailbox_error)
    }

    async fn copy_to(
        &mut self,
        uids: &[u32],
        folder: &str,
    ) -> Result<Vec<(u32, Option<u32>)>, MailboxError> {
        self.session
            .copy_uids(uids, folder)
            .await
            .map_err(to_mailbox_error)
    }

    async fn find_by_message_id(
        &mut self,
        message_id: &str,
    ) -> Result<Vec<port::MessageMeta>, MailboxError> {
        let folder = self.selected_name()?;
        let metas = self
            .session
            .find_by_message_id(&folder, message_id)
            .await
            .map_err(to_mailbox_error)?;
        Ok(metas)
    }

    async fn all_uids(&mut self) -> Result<Vec<u32>, MailboxError> {
        self.session
            .uid_search_all()
            .await
            .map_err(to_mailbox_error)
    }

    async fn delete(&mut self, uids: &[u32]) -> Result<u64, MailboxError> {
        let folder = self.selected_name()?;
        self.session
            .delete_uids(&folder, &UidSet::from_uids(uids.iter().copied()))
            .await
            .map_err(to_mailbox_error)
    }

    async fn set_flags(&mut self, uid: u32, flags: &[String]) -> Result<(), MailboxError> {
        self.session
            .set_flags(&UidSet::from_uids([uid]), flags)
            .await
            .map_err(to_mailbox_error)
    }

    fn capabilities(&self) -> Vec<String> {
        self.session.capabilities().as_slice().to_vec()
    }

    async fn quota(&mut self) -> Result<Option<port::Quota>, MailboxError> {
        self.session.storage_quota().await.map_err(to_mailbox_error)
    }

    async fn logout(self: Box<Self>) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.session.logout()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_how_long_a_throttling_server_asks_to_wait() {
        assert_eq!(
            retry_hint("[UNAVAILABLE] Too many requests, try again in 30 seconds"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_hint("[THROTTLED] retry after 2 minutes."),
            Some(Duration::from_secs(120))
        );
        assert_eq!(retry_hint("[LIMIT] Too many connections"), None);
        assert_eq!(retry_hint("in 5 folders"), None);
    }

    #[test]
    fn a_busy_server_refusing_the_login_is_throttling_not_a_wrong_password() {
        let busy = ImapError::LoginRejected {
            text: "[ALERT] Too many simultaneous connections. (Failure)".into(),
            code: None,
        };
        assert!(matches!(
            to_mailbox_error(busy),
            MailboxError::Throttled { .. }
        ));
        let wrong = ImapError::LoginRejected {
            text: "[AUTHENTICATIONFAILED] Authentication failed.".into(),
            code: None,
        };
        assert!(matches!(to_mailbox_error(wrong), MailboxError::Auth(_)));
        let busy = ImapError::LoginRejected {
            text: "Too many connections, try again in 2 minutes".into(),
            code: None,
        };
        assert!(matches!(
            busy.into_login_error(),
            domain::error::LoginError::Unreachable(_)
        ));
    }
}
