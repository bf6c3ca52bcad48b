//! Large messages go from source to target one at a time, read and written as they arrive
//! (`MailSession::open_body` into `append_stream`), never held: the copy's memory does not grow
//! with a message's size, and the source serves each with one FETCH. Their fingerprints are
//! taken on the way through, so content checks work as for held messages.

use async_trait::async_trait;
use contract::{ContentCheck, SkippedItem};

use crate::error::AppError;
use crate::mailbox::{AppendOutcome, BodyStream, MailboxError, MessageMeta};

use super::content::{Fingerprint, Fingerprinting};
use super::{App, Sessions, mailbox_err};

/// How often a message the source refused to return is asked for again.
pub(super) const FETCH_TRIES: usize = 3;

/// What streaming a chunk's large messages gave, aligned like a held chunk's fetch and append.
#[derive(Default)]
pub(super) struct Streamed {
    pub metas: Vec<MessageMeta>,
    pub outcomes: Vec<AppendOutcome>,
    pub fingerprints: Vec<(u32, Fingerprint)>,
    pub unreadable: Vec<SkippedItem>,
}

/// A body passing through, fingerprinted on the way (unless no copy is checked).
pub(super) struct Fingerprinted<'a, 'b> {
    pub inner: &'a mut (dyn BodyStream + 'b),
    pub print: Option<Fingerprinting>,
}

#[async_trait]
impl BodyStream for Fingerprinted<'_, '_> {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    async fn next_chunk(&mut self) -> Result<Option<&[u8]>, MailboxError> {
        let chunk = self.inner.next_chunk().await?;
        if let (Some(piece), Some(print)) = (chunk, self.print.as_mut()) {
            print.update(piece);
        }
        Ok(chunk)
    }
}

impl App {
    /// Copies `wanted` one message at a time from the open source folder into `target_name`,
    /// each streamed. `checked` copies of the folder were picked for a content check before.
    /// A message the source no longer has is neither copied nor skipped; one it refuses to
    /// return ([`FETCH_TRIES`] times) and still lists is skipped with its words.
    pub(super) async fn stream_messages(
        &self,
        s: &mut Sessions,
        target_name: &str,
        wanted: &[&MessageMeta],
        policy: ContentCheck,
        mut checked: u64,
    ) -> Result<Streamed, AppError> {
        let mut out = Streamed::default();
        let mut refused: Vec<(&MessageMeta, String)> = Vec::new();
        for &meta in wanted {
            let mut last_refusal = None;
            for _ in 0..FETCH_TRIES {
                let body = match s.source.open_body(meta.uid).await {
                    Ok(body) => body,
                    Err(MailboxError::Refused(text)) => {
                        last_refusal = Some(text);
                        continue;
                    }
                    Err(e) => return Err(mailbox_err(e)),
                };
                last_refusal = None;
                let Some(mut body) = body else { break };
                let mut through = Fingerprinted {
                    inner: body.as_mut(),
                    print: Fingerprinting::for_check(policy, checked),
                };
                let outcome = s
                    .target
                    .append_stream(target_name, &meta.flags, meta.internaldate, &mut through)
                    .await
                    .map_err(mailbox_err)?;
                if let Some(print) = through.print
                    && outcome.is_appended()
                    && print.wants_check(policy, checked)
                {
                    checked += 1;
                    out.fingerprints.push((meta.uid, print.finish()));
                }
                out.metas.push(meta.clone());
                out.outcomes.push(outcome);
                break;
            }
            if let Some(text) = last_refusal {
                refused.push((meta, text));
            }
        }
        if !refused.is_empty() {
            let metas: Vec<&MessageMeta> = refused.iter().map(|(m, _)| *m).collect();
            let why = refused[0].1.clone();
            out.unreadable = self.unreadable(s, &metas, Some(why)).await?;
        }
        Ok(out)
    }

    /// Of `missing` (messages the source did not return), those it still lists, as skipped
    /// items with its words; the others were expunged meanwhile and are neither.
    pub(super) async fn unreadable(
        &self,
        s: &mut Sessions,
        missing: &[&MessageMeta],
        server_error: Option<String>,
    ) -> Result<Vec<SkippedItem>, AppError> {
        let (Some(first), Some(last)) = (
            missing.iter().map(|m| m.uid).min(),
            missing.iter().map(|m| m.uid).max(),
        ) else {
            return Ok(Vec::new());
        };
        let listed: std::collections::HashSet<u32> = s
            .source
            .fetch_meta(first, last)
            .await
            .map_err(mailbox_err)?
            .into_iter()
            .map(|m| m.uid)
            .collect();
        let why = server_error.unwrap_or_else(|| "it sent nothing for it".into());
        Ok(missing
            .iter()
            .filter(|m| listed.contains(&m.uid))
            .map(|m| SkippedItem {
                uid: m.uid,
                size: m.size,
                reason: format!("the source server could not return it: {why}"),
                cause: contract::SkipCause::SourceUnreadable,
            })
            .collect())
    }
}
