//! APPEND on a target: several messages in one MULTIAPPEND command when the server offers
//! it, literals sent without waiting (LITERAL+) when it allows, one result per message.

use std::borrow::Cow;

use imap_next::imap_types::response::Code;

pub use domain::mailbox::{AppendItem, AppendOutcome};
use domain::mailbox::{BodyStream, drain};

use crate::error::ImapError;
use crate::raw::{RawCommand, flag_list, internaldate};
use crate::session::{Completion, Session};
use crate::uids::UidSet;

impl Session {
    /// Appends `items` to `folder`, one [`AppendOutcome`] per item in the same order.
    ///
    /// With MULTIAPPEND (and more than one item) all go in one command. MULTIAPPEND is all
    /// or nothing (RFC 3502: after a NO none of the messages was stored), so when the server
    /// refuses it each item is appended on its own, which tells which one was refused and
    /// stores the others. A message the server refuses is reported as what the refusal means
    /// ([`AppendOutcome::from_refusal`]: rejected, deferred or a full target) and the session
    /// stays usable. The UIDs come from APPENDUID when the server sends it (UIDPLUS).
    ///
    /// A folder that does not exist (`[TRYCREATE]`) is an error for the whole call, as is a
    /// broken connection; after such an error some items may have been stored, which the
    /// caller finds with [`Session::find_by_message_id`].
    pub async fn append(
        &mut self,
        folder: &str,
        items: &[AppendItem],
    ) -> Result<Vec<AppendOutcome>, ImapError> {
        // A message over the server's announced APPENDLIMIT (RFC 7889) is refused here,
        // without sending it; the others go as usual.
        let limit = self.append_limit();
        let too_big = |item: &AppendItem| limit.is_some_and(|l| item.body.len() as u64 > l);
        let fits: Vec<&AppendItem> = items.iter().filter(|item| !too_big(item)).collect();
        let mut stored = self.append_all(folder, &fits).await?.into_iter();
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let outcome = if too_big(item) {
                over_limit(item.body.len() as u64, limit.unwrap_or_default())
            } else {
                stored
                    .next()
                    .ok_or_else(|| ImapError::Protocol("an append result went missing".into()))?
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Appends one message to `folder` as `body` delivers it: the literal is announced with
    /// the size the body announced and each piece written as it comes. A refusal is an
    /// outcome, as in [`Session::append`] (the rest of the body is read and dropped, so the
    /// source stays usable). When the body fails half-way the connection is closed
    /// mid-message, so nothing is stored, and [`ImapError::Source`] carries the body's error.
    pub async fn append_stream(
        &mut self,
        folder: &str,
        flags: &[String],
        date: time::OffsetDateTime,
        body: &mut (dyn BodyStream + '_),
    ) -> Result<AppendOutcome, ImapError> {
        let size = body.size();
        if let Some(limit) = self.append_limit().filter(|&l| size > l) {
            drain(body).await.map_err(ImapError::Source)?;
            return Ok(over_limit(size, limit));
        }
        let command = RawCommand::new("APPEND").text("APPEND ").mailbox(folder);
        let command = with_attributes(command, flags, date).stream(size);
        let result = self.execute_raw_streaming(command, body).await;
        if matches!(result, Err(ImapError::No { .. } | ImapError::Bad { .. })) {
            // A refusal of the synchronizing literal leaves the body unread.
            drain(body).await.map_err(ImapError::Source)?;
        }
        single_outcome(result)
    }

    /// The largest message the server accepts, from `APPENDLIMIT=n` (RFC 7889).
    pub fn append_limit(&self) -> Option<u64> {
        self.capabilities()
            .iter()
            .find_map(|c| c.strip_prefix("APPENDLIMIT=").and_then(|n| n.parse().ok()))
    }

    /// MULTIAPPEND when offered, one APPEND per item when not or when it is refused.
    async fn append_all(
        &mut self,
        folder: &str,
        items: &[&AppendItem],
    ) -> Result<Vec<AppendOutcome>, ImapError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        if items.len() > 1 && self.capabilities().has("MULTIAPPEND") {
            match self.execute_raw(append_command(folder, items)).await {
                Ok(completion) => {
                    let uids = match appenduid(completion.code.as_ref()) {
                        Some((_, uids)) if uids.len() == items.len() => {
                            uids.into_iter().map(Some).collect()
                        }
                        _ => vec![None; items.len()],
                    };
                    return Ok(uids
                        .into_iter()
                        .map(|uid| AppendOutcome::Appended { uid })
                        .collect());
                }
                Err(e) if is_missing_folder(&e) => return Err(e),
                Err(ImapError::No { text, .. } | ImapError::Bad { text, .. }) => {
                    tracing::debug!(%text, count = items.len(), "MULTIAPPEND refused; appending one by one");
                }
                Err(e) => return Err(e),
            }
        }
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let result = self.execute_raw(append_command(folder, &[*item])).await;
            outcomes.push(single_outcome(result)?);
        }
        Ok(outcomes)
    }
}

/// What the answer to an APPEND of one message means: stored (with its UID under UIDPLUS), or
/// the server's refusal as an outcome. A missing folder and a broken connection are errors.
fn single_outcome(result: Result<Completion, ImapError>) -> Result<AppendOutcome, ImapError> {
    match result {
        Ok(completion) => Ok(AppendOutcome::Appended {
            uid: appenduid(completion.code.as_ref()).and_then(|(_, uids)| uids.first().copied()),
        }),
        Err(e) if is_missing_folder(&e) => Err(e),
        Err(ImapError::No { text, .. } | ImapError::Bad { text, .. }) => Ok(
            AppendOutcome::from_refusal(code_name(&text).as_deref(), &text),
        ),
        Err(e) => Err(e),
    }
}

/// A message over the server's APPENDLIMIT (RFC 7889), refused without sending it.
fn over_limit(size: u64, limit: u64) -> AppendOutcome {
    AppendOutcome::Rejected {
        reason: format!(
            "[TOOBIG] the message has {size} bytes, more than the server's APPENDLIMIT of {limit}"
        ),
    }
}

/// `APPEND "folder" (flags) "date" {n}... (flags) "date" {n}...`
fn append_command<'a>(folder: &str, items: &[&'a AppendItem]) -> RawCommand<'a> {
    let mut command = RawCommand::new("APPEND").text("APPEND ").mailbox(folder);
    for item in items {
        command = with_attributes(command, &item.flags, item.internaldate)
            .literal(Cow::Borrowed(&item.body));
    }
    command
}

/// ` (flags) "date" `: what precedes each message's literal in an APPEND.
fn with_attributes<'a>(
    command: RawCommand<'a>,
    flags: &[String],
    date: time::OffsetDateTime,
) -> RawCommand<'a> {
    command
        .text(" ")
        .text(&flag_list(flags))
        .text(" ")
        .text(&internaldate(date))
        .text(" ")
}

fn is_missing_folder(error: &ImapError) -> bool {
    matches!(error, ImapError::No { text, code, .. }
        if matches!(code, Some(Code::TryCreate)) || text.starts_with("[TRYCREATE]"))
}

/// The name of the response code at the start of a status text (`[LIMIT] ...` → `LIMIT`).
pub(crate) fn code_name(text: &str) -> Option<String> {
    let inner = text.strip_prefix('[')?;
    let end = inner.find([']', ' '])?;
    Some(inner[..end].to_owned()).filter(|name| !name.is_empty())
}

/// APPENDUID's UIDVALIDITY and UIDs, in message order. imap-codec parses the one-UID form;
/// the set MULTIAPPEND gets (`APPENDUID 38505 3955:3957`) arrives as an unknown code.
fn appenduid(code: Option<&Code<'_>>) -> Option<(u32, Vec<u32>)> {
    match code? {
        Code::AppendUid { uid_validity, uid } => Some((uid_validity.get(), vec![uid.get()])),
        Code::Other(other) => {
            let text = std::str::from_utf8(other.inner()).ok()?;
            let mut words = text.split_ascii_whitespace();
            if !words.next()?.eq_ignore_ascii_case("APPENDUID") {
                return None;
            }
            let validity = words.next()?.parse::<u32>().ok().filter(|&v| v > 0)?;
            let uids = UidSet::parse_ordered(words.next()?)?;
            Some((validity, uids))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_next::imap_types::response::CodeOther;
    use std::num::NonZeroU32;

    #[test]
    fn appenduid_in_both_forms() {
        let one = Code::AppendUid {
            uid_validity: NonZeroU32::new(7).unwrap(),
            uid: NonZeroU32::new(42).unwrap(),
        };
        assert_eq!(appenduid(Some(&one)), Some((7, vec![42])));
        let many = Code::Other(CodeOther::unvalidated(
            b"APPENDUID 38505 3955:3957".as_slice(),
        ));
        assert_eq!(
            appenduid(Some(&many)),
            Some((38505, vec![3955, 3956, 3957]))
        );
        let other = Code::Other(CodeOther::unvalidated(b"ALREADYEXISTS".as_slice()));
        assert_eq!(appenduid(Some(&other)), None);
    }

    #[test]
    fn code_names_come_from_the_text() {
        assert_eq!(
            code_name("[LIMIT] Mail size is larger").as_deref(),
            Some("LIMIT")
        );
        assert_eq!(
            code_name("[OVERQUOTA] Quota exceeded").as_deref(),
            Some("OVERQUOTA")
        );
        assert_eq!(code_name("No such folder"), None);
    }

    #[test]
    fn one_command_carries_every_message_with_flags_and_dates() {
        let date = time::macros::datetime!(2024-01-05 13:05:09 +01:00);
        let items = [
            AppendItem {
                body: b"A".to_vec(),
                flags: vec!["\\Seen".into(), "\\Recent".into(), "$Label1".into()],
                internaldate: date,
            },
            AppendItem {
                body: b"BB".to_vec(),
                flags: vec![],
                internaldate: date,
            },
        ];
        let command = append_command("Entwürfe", &[&items[0], &items[1]]);
        let mut wire = Vec::new();
        for piece in &command.pieces {
            match piece {
                crate::raw::Piece::Text(t) => wire.extend_from_slice(t),
                crate::raw::Piece::Literal(l) => {
                    wire.extend_from_slice(format!("{{{}}}", l.len()).as_bytes());
                    wire.extend_from_slice(l);
                }
                crate::raw::Piece::Stream(n) => {
                    wire.extend_from_slice(format!("{{{n}}}").as_bytes())
                }
            }
        }
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "APPEND \"Entw&APw-rfe\" (\\Seen $Label1) \"05-Jan-2024 13:05:09 +0100\" {1}A () \"05-Jan-2024 13:05:09 +0100\" {2}BB"
        );
    }
}
