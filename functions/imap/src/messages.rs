//! Messages of the selected folder: metadata (UID, size, flags, INTERNALDATE, MODSEQ,
//! Message-ID), changes since a MODSEQ, bodies streamed one by one to a callback, searches,
//! and on a target deleting by UID.
//!
//! Everything read here uses `BODY.PEEK`, so fetching never sets `\Seen` on a source.

use std::collections::HashMap;
use std::future::Future;
use std::ops::ControlFlow;

use imap_next::client::Event;
use imap_next::imap_types::core::Tag;
use imap_next::imap_types::fetch::MessageDataItem;
use imap_next::imap_types::flag::FlagFetch;
use imap_next::imap_types::response::{Data, Status, StatusKind, Tagged};
use imap_next::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use time::{OffsetDateTime, UtcOffset};

use crate::error::ImapError;
use crate::raw::{RawCommand, flag_list, quoted};
use crate::session::{Session, describe};
use crate::uids::{RANGES_PER_COMMAND, UidSet};

pub use domain::mailbox::MessageMeta;

/// One message from [`Session::fetch_bodies`]: its metadata, and its bytes exactly as stored.
pub use domain::mailbox::FetchedMessage;

/// How a [`Session::fetch_bodies`] went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchSummary {
    /// Messages handed to the callback.
    pub delivered: usize,
    /// Their bytes in total.
    pub bytes: u64,
    /// Requested UIDs that did not come (expunged meanwhile, or the server refused them);
    /// only listed for a set without an open end.
    pub missing: Vec<u32>,
    /// The callback asked to stop; the remaining responses were read and dropped.
    pub stopped: bool,
    /// The text of a NO the server ended a FETCH with (e.g. some messages could not be
    /// read); the messages it did send were delivered.
    pub server_error: Option<String>,
}

/// What changed in the selected folder since a MODSEQ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New messages and messages whose flags changed, by UID.
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged since, when QRESYNC is enabled (`None` otherwise: compare
    /// [`Session::uid_search_all`] with what was copied instead).
    pub vanished: Option<UidSet>,
}

impl Session {
    /// Metadata of the messages of the selected folder whose UIDs are in `uids`, by UID.
    pub async fn fetch_meta(&mut self, uids: &UidSet) -> Result<Vec<MessageMeta>, ImapError> {
        if self.nothing_to_fetch(uids, "fetch_meta")? {
            return Ok(Vec::new());
        }
        let items = self.meta_items();
        let mut metas = Vec::new();
        for chunk in uids.chunks(RANGES_PER_COMMAND) {
            let command = RawCommand::new("FETCH").text(&format!("UID FETCH {chunk} ({items})"));
            let completion = self.execute_raw(command).await?;
            metas.extend(collect_metas(completion.data, uids)?);
        }
        metas.sort_by_key(|m| m.uid);
        metas.dedup_by_key(|m| m.uid);
        if self.capabilities().has("X-GM-EXT-1") && !metas.is_empty() {
            // A server that announces the extension but refuses its FETCH item leaves the
            // messages to be matched by their headers, as on any other server.
            let ids = match self.gmail_ids(uids).await {
                Ok(ids) => ids,
                Err(ImapError::No { .. } | ImapError::Bad { .. }) => HashMap::new(),
                Err(e) => return Err(e),
            };
            for m in &mut metas {
                m.gmail_id = ids.get(&m.uid).copied();
            }
        }
        Ok(metas)
    }

    /// The total of RFC822.SIZE over the selected folder, from one `UID FETCH 1:* (UID
    /// RFC822.SIZE)`: a server answers it from its index, where the full metadata (with the
    /// Message-ID header) makes it open every message.
    pub async fn folder_bytes(&mut self) -> Result<u64, ImapError> {
        if self.nothing_to_fetch(&UidSet::all(), "folder_bytes")? {
            return Ok(0);
        }
        let command = RawCommand::new("FETCH").text("UID FETCH 1:* (UID RFC822.SIZE)");
        let completion = self.execute_raw(command).await?;
        let mut sizes: HashMap<u32, u64> = HashMap::new();
        for data in completion.data {
            if let Data::Fetch { seq, items } = data {
                for item in items.into_inner() {
                    if let MessageDataItem::Rfc822Size(n) = item {
                        sizes.insert(seq.get(), u64::from(n));
                    }
                }
            }
        }
        Ok(sizes.values().sum())
    }

    /// Messages of the selected folder that are new or changed since `modseq` (CHANGEDSINCE),
    /// for a delta pass; with QRESYNC enabled also the UIDs expunged since.
    pub async fn fetch_changed_since(&mut self, modseq: u64) -> Result<Changes, ImapError> {
        self.require_selected("fetch_changed_since")?;
        if !self.capabilities().has("CONDSTORE") {
            return Err(ImapError::Unsupported(
                "the server has no CONDSTORE, so changes cannot be asked by MODSEQ".into(),
            ));
        }
        // The session's view of the folder only moves on when it syncs; without this, what
        // changed since it was selected would not show.
        self.noop().await?;
        let items = self.meta_items();
        let vanished = if self.qresync_enabled {
            " VANISHED"
        } else {
            ""
        };
        let command = RawCommand::new("FETCH").text(&format!(
            "UID FETCH 1:* ({items}) (CHANGEDSINCE {modseq}{vanished})"
        ));
        let completion = self.execute_raw(command).await?;
        let mut gone = self.qresync_enabled.then(UidSet::new);
        for data in &completion.data {
            if let (Some(gone), Data::Vanished { known_uids, .. }) = (gone.as_mut(), data) {
                add_sequence_set(gone, known_uids);
            }
        }
        let mut changed = collect_metas(completion.data, &UidSet::all())?;
        changed.sort_by_key(|m| m.uid);
        Ok(Changes {
            changed,
            vanished: gone,
        })
    }

    /// Downloads the messages of the selected folder whose UIDs are in `uids` with
    /// `UID FETCH ... BODY.PEEK[]` (never setting `\Seen`) and hands each to `on_message` as
    /// soon as it has arrived, in the server's order. The FETCH commands are pipelined (all
    /// sent at once); while the callback runs nothing more is read, so the server waits.
    ///
    /// Memory stays bounded whatever the message size: bodies are asked for in parts of
    /// [`BODY_PART`] bytes (`BODY.PEEK[]<0.n>`). A message that fits in its first part comes in
    /// one response as before; a larger one gets the rest of its parts pipelined at once and is
    /// assembled into one buffer of its size, so imap-next never holds more than a part of it
    /// (it buffers each whole response, then decodes a second copy) and the session's read
    /// buffer never grows to the size of the largest message.
    ///
    /// Return [`ControlFlow::Break`] from the callback to stop: the rest of the responses
    /// are read and dropped so the session stays usable.
    pub async fn fetch_bodies<F, Fut>(
        &mut self,
        uids: &UidSet,
        mut on_message: F,
    ) -> Result<FetchSummary, ImapError>
    where
        F: FnMut(FetchedMessage) -> Fut,
        Fut: Future<Output = ControlFlow<()>>,
    {
        if self.nothing_to_fetch(uids, "fetch_bodies")? {
            return Ok(FetchSummary::default());
        }
        let items = format!("{} BODY.PEEK[]<0.{BODY_PART}>", self.meta_items());
        self.begin()?;
        let mut tags = Vec::new();
        let mut lines = Vec::new();
        for chunk in uids.chunks(RANGES_PER_COMMAND) {
            let tag = self.tag();
            lines.extend_from_slice(
                format!("{} UID FETCH {chunk} ({items})\r\n", tag.as_ref()).as_bytes(),
            );
            tags.push(tag);
        }
        let mut summary = FetchSummary::default();
        let mut seen = UidSet::new();
        let mut unfinished = Vec::new();
        let result: Result<(), ImapError> = async {
            self.write_raw(&lines, "FETCH").await?;
            // Parts of one message that came in separate FETCH responses (allowed, rare).
            let mut partial: HashMap<u32, Vec<MessageDataItem<'static>>> = HashMap::new();
            // Messages larger than one part, being put together, by UID.
            let mut assembling: HashMap<u32, Assembly> = HashMap::new();
            // Messages in the order their first response came, `None` while being assembled:
            // they are handed over in that order, so the target gets them in the source's.
            let mut order: std::collections::VecDeque<(u32, Option<FetchedMessage>)> =
                std::collections::VecDeque::new();
            while !tags.is_empty() {
                match self.next_event("fetching messages").await? {
                    Event::DataReceived {
                        data: Data::Fetch { seq, items },
                    } => {
                        let mut items = items.into_inner();
                        let origin = items.iter().find_map(|item| match item {
                            MessageDataItem::BodyExt {
                                section: None,
                                origin,
                                ..
                            } => Some(origin.unwrap_or(0)),
                            _ => None,
                        });
                        // A later part of a message being assembled.
                        if let Some(origin) = origin.filter(|&o| o > 0) {
                            let (uid, data) = body_part(items);
                            let Some(uid) = uid else { continue };
                            let Some(assembly) = assembling.get_mut(&uid) else {
                                continue;
                            };
                            assembly.add(origin, data);
                            if let Some(next) = assembly.next_request() {
                                let line = self.part_request(uid, next, &mut tags);
                                self.write_raw(&line, "FETCH").await?;
                            }
                            if !assembly.complete {
                                continue;
                            }
                            let Some(assembly) = assembling.remove(&uid) else {
                                continue;
                            };
                            if let Some(slot) = order.iter_mut().find(|(u, _)| *u == uid) {
                                slot.1 = Some(FetchedMessage {
                                    body: assembly.bytes,
                                    meta: assembly.meta,
                                });
                            }
                        } else {
                            if let Some(mut earlier) = partial.remove(&seq.get()) {
                                earlier.append(&mut items);
                                items = earlier;
                            }
                            let has_body = items.iter().any(|item| {
                                matches!(item, MessageDataItem::BodyExt { section: None, .. })
                            });
                            if !has_body {
                                if items.iter().any(|i| matches!(i, MessageDataItem::Uid(_))) {
                                    partial.insert(seq.get(), items);
                                }
                                continue;
                            }
                            let (meta, body) = parse_fetch(items)?;
                            let (Some(meta), Some(bytes)) = (meta, body) else {
                                continue;
                            };
                            if !uids.contains(meta.uid) {
                                continue;
                            }
                            seen.insert_range(meta.uid, meta.uid);
                            if summary.stopped {
                                continue;
                            }
                            // A first part that filled the whole part size: the message goes on.
                            if bytes.len() >= BODY_PART as usize && origin.is_some() {
                                let mut assembly = Assembly::new(meta, bytes);
                                let mut requests = Vec::new();
                                while let Some(next) = assembly.next_request() {
                                    let line =
                                        self.part_request(assembly.meta.uid, next, &mut tags);
                                    requests.extend_from_slice(&line);
                                }
                                self.write_raw(&requests, "FETCH").await?;
                                order.push_back((assembly.meta.uid, None));
                                assembling.insert(assembly.meta.uid, assembly);
                            } else {
                                let uid = meta.uid;
                                order.push_back((uid, Some(FetchedMessage { body: bytes, meta })));
                            }
                        }
                    }
                    Event::DataReceived { data } => self.observe_data(&data),
                    // Servers may complete pipelined commands in any order (RFC 3501 5.5).
                    Event::StatusReceived {
                        status: Status::Tagged(Tagged { tag, body }),
                    } if tags.contains(&tag) => {
                        tags.retain(|t| t != &tag);
                        if body.kind != StatusKind::Ok {
                            summary.server_error = Some(describe(&body));
                        }
                    }
                    Event::StatusReceived { status } => self.observe_status(status, None),
                    _ => {}
                }
                if tags.is_empty() {
                    // Every command is done: a message whose later parts never came (expunged
                    // meanwhile) is not delivered, and no longer holds up the ones behind it.
                    unfinished.extend(assembling.drain().map(|(uid, _)| uid));
                    order.retain(|(_, m)| m.is_some());
                }
                // Hand over what is complete, in the order the messages came.
                while let Some((_, Some(_))) = order.front() {
                    let Some((_, Some(message))) = order.pop_front() else {
                        break;
                    };
                    if summary.stopped {
                        continue;
                    }
                    summary.delivered += 1;
                    summary.bytes += message.body.len() as u64;
                    if on_message(message).await.is_break() {
                        summary.stopped = true;
                    }
                }
            }
            Ok(())
        }
        .await;
        self.end();
        if result.is_err() {
            // The rest of the pipeline's responses may still be on the wire.
            self.mark_broken();
        }
        result?;
        if self.capabilities().has("CONDSTORE") {
            self.condstore_enabled = true;
        }
        if uids
            .ranges()
            .last()
            .is_some_and(|&(_, end)| end != u32::MAX)
        {
            summary.missing = uids
                .iter()
                .filter(|&uid| !seen.contains(uid) || unfinished.contains(&uid))
                .collect();
        }
        Ok(summary)
    }

    /// Every UID in the selected folder as of now (the session syncs first), ascending.
    pub async fn uid_search_all(&mut self) -> Result<Vec<u32>, ImapError> {
        self.require_selected("uid_search_all")?;
        self.noop().await?;
        self.uid_search("ALL").await
    }

    /// UIDs of the messages in `folder` whose Message-ID header contains `message_id`
    /// (`UID SEARCH HEADER MESSAGE-ID`; IMAP matches substrings, so check the candidates
    /// with [`Session::fetch_meta`], or use [`Session::find_by_message_id`]). Selects the
    /// folder read-only unless it is selected already.
    pub async fn search_message_id(
        &mut self,
        folder: &str,
        message_id: &str,
    ) -> Result<Vec<u32>, ImapError> {
        let message_id = message_id.trim();
        if message_id.is_empty() {
            return Err(ImapError::InvalidInput("Message-ID (empty)"));
        }
        self.ensure_selected(folder, false).await?;
        let command = match quoted(message_id.as_bytes()) {
            Some(q) => RawCommand::new("SEARCH").text(&format!("UID SEARCH HEADER Message-ID {q}")),
            None => RawCommand::new("SEARCH")
                .text("UID SEARCH CHARSET UTF-8 HEADER Message-ID ")
                .string(message_id.as_bytes()),
        };
        let completion = self.execute_raw(command).await?;
        Ok(search_results(&completion.data))
    }

    /// The messages in `folder` whose Message-ID is exactly `message_id`, with their
    /// metadata: what the copy engine compares (Message-ID, size, INTERNALDATE) to decide
    /// whether a message is already on the target after a crash.
    pub async fn find_by_message_id(
        &mut self,
        folder: &str,
        message_id: &str,
    ) -> Result<Vec<MessageMeta>, ImapError> {
        let uids = self.search_message_id(folder, message_id).await?;
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let metas = self.fetch_meta(&UidSet::from_uids(uids)).await?;
        Ok(metas
            .into_iter()
            .filter(|m| m.message_id.as_deref() == Some(message_id.trim()))
            .collect())
    }

    /// The messages in `folder` with exactly this size and INTERNALDATE (the same instant),
    /// with their metadata: the candidates for a message without Message-ID, whose bodies
    /// the copy engine then compares by hash. The server is asked for sizes `size` and
    /// internal dates within a day either side (SEARCH works on whole days in the server's
    /// time zone); the exact match is made here.
    pub async fn find_by_size_and_date(
        &mut self,
        folder: &str,
        size: u32,
        internaldate: OffsetDateTime,
    ) -> Result<Vec<MessageMeta>, ImapError> {
        self.ensure_selected(folder, false).await?;
        let day = |date: OffsetDateTime| {
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            format!(
                "{}-{}-{}",
                date.day(),
                MONTHS[usize::from(u8::from(date.month())) - 1],
                date.year()
            )
        };
        let since = internaldate.checked_sub(time::Duration::days(1));
        let before = internaldate.checked_add(time::Duration::days(2));
        let mut criteria = format!(
            "LARGER {} SMALLER {}",
            size.saturating_sub(1),
            size.saturating_add(1)
        );
        if let (Some(since), Some(before)) = (since, before) {
            criteria.push_str(&format!(" SINCE {} BEFORE {}", day(since), day(before)));
        }
        let uids = self.uid_search(&criteria).await?;
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let metas = self.fetch_meta(&UidSet::from_uids(uids)).await?;
        Ok(metas
            .into_iter()
            .filter(|m| m.size == u64::from(size) && m.internaldate == internaldate)
            .collect())
    }

    /// Replaces the flags of the messages with these UIDs in the selected folder (a target
    /// opened with [`Session::select`], for flag changes found in a delta pass):
    /// `UID STORE ... FLAGS.SILENT (...)`. `\Recent` and anything IMAP cannot carry is left
    /// out, as in APPEND.
    pub async fn set_flags<S: AsRef<str>>(
        &mut self,
        uids: &UidSet,
        flags: &[S],
    ) -> Result<(), ImapError> {
        self.require_selected("set_flags")?;
        let list = flag_list(flags);
        for chunk in uids.chunks(RANGES_PER_COMMAND) {
            let store =
                RawCommand::new("STORE").text(&format!("UID STORE {chunk} FLAGS.SILENT {list}"));
            self.execute_raw(store).await?;
        }
        Ok(())
    }

    /// Removes the messages with these UIDs from `folder` (a target, for "deleted at the
    /// source" in a delta pass): `UID STORE +FLAGS.SILENT (\Deleted)` then `UID EXPUNGE` of
    /// exactly those UIDs. Without UIDPLUS a plain EXPUNGE would also remove other messages
    /// marked `\Deleted`, so it is only used when there are none; otherwise this fails
    /// before changing anything. Returns how many messages were expunged.
    pub async fn delete_uids(&mut self, folder: &str, uids: &UidSet) -> Result<u64, ImapError> {
        if uids.is_empty() {
            return Ok(0);
        }
        self.ensure_selected(folder, true).await?;
        let uidplus = self.capabilities().has("UIDPLUS");
        if !uidplus {
            let others: Vec<u32> = self
                .uid_search("DELETED")
                .await?
                .into_iter()
                .filter(|&uid| !uids.contains(uid))
                .collect();
            if !others.is_empty() {
                return Err(ImapError::Unsupported(format!(
                    "without UIDPLUS, EXPUNGE would also remove {} other messages marked \\Deleted",
                    others.len()
                )));
            }
        }
        let mut expunged = 0u64;
        for chunk in uids.chunks(RANGES_PER_COMMAND) {
            let store = RawCommand::new("STORE")
                .text(&format!("UID STORE {chunk} +FLAGS.SILENT (\\Deleted)"));
            self.execute_raw(store).await?;
            if uidplus {
                let expunge = RawCommand::new("EXPUNGE").text(&format!("UID EXPUNGE {chunk}"));
                let completion = self.execute_raw(expunge).await?;
                expunged += count_expunged(&completion.data);
            }
        }
        if !uidplus {
            let completion = self
                .execute_raw(RawCommand::new("EXPUNGE").text("EXPUNGE"))
                .await?;
            expunged += count_expunged(&completion.data);
        }
        Ok(expunged)
    }

    /// Whether a fetch of `uids` has nothing to ask: an empty set, or any set in an empty
    /// folder (some servers answer `1:*` in an empty folder with BAD instead of nothing).
    /// The command line asking for the part of message `uid` that starts at `origin`; its tag
    /// joins `tags`.
    fn part_request(&mut self, uid: u32, origin: u32, tags: &mut Vec<Tag<'static>>) -> Vec<u8> {
        let tag = self.tag();
        let line = format!(
            "{} UID FETCH {uid} (UID BODY.PEEK[]<{origin}.{BODY_PART}>)\r\n",
            tag.as_ref()
        );
        tags.push(tag);
        line.into_bytes()
    }

    fn nothing_to_fetch(&self, uids: &UidSet, operation: &'static str) -> Result<bool, ImapError> {
        let selected = self.require_selected(operation)?;
        Ok(uids.is_empty() || selected.status.messages == 0)
    }

    async fn uid_search(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        let command = RawCommand::new("SEARCH").text(&format!("UID SEARCH {criteria}"));
        let completion = self.execute_raw(command).await?;
        Ok(search_results(&completion.data))
    }

    /// The FETCH items of [`MessageMeta`]; MODSEQ when the server has CONDSTORE (asking for
    /// it switches CONDSTORE on for the session).
    fn meta_items(&mut self) -> String {
        let mut items = String::from(
            "UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]",
        );
        if self.capabilities().has("CONDSTORE") {
            items.push_str(" MODSEQ");
            self.condstore_enabled = true;
        }
        items
    }
}

fn search_results(data: &[Data<'static>]) -> Vec<u32> {
    let mut uids: Vec<u32> = data
        .iter()
        .flat_map(|d| match d {
            Data::Search(found, ..) => found.iter().map(|n| n.get()).collect(),
            _ => Vec::new(),
        })
        .collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

fn count_expunged(data: &[Data<'static>]) -> u64 {
    data.iter()
        .map(|d| match d {
            Data::Expunge(_) => 1,
            Data::Vanished { known_uids, .. } => count_uids(known_uids),
            _ => 0,
        })
        .sum()
}

/// How many UIDs a VANISHED set names.
pub(crate) fn count_uids(sequence_set: &SequenceSet) -> u64 {
    let mut set = UidSet::new();
    add_sequence_set(&mut set, sequence_set);
    set.len()
}

fn add_sequence_set(set: &mut UidSet, sequence_set: &SequenceSet) {
    let value = |s: &SeqOrUid| match s {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => u32::MAX,
    };
    for sequence in sequence_set.0.as_ref() {
        match sequence {
            Sequence::Single(s) => {
                let n = value(s);
                set.insert_range(n, n);
            }
            Sequence::Range(a, b) => {
                let (a, b) = (value(a), value(b));
                set.insert_range(a.min(b), a.max(b));
            }
        }
    }
}

/// The metadata of every FETCH response whose UID is in `wanted`; FETCH responses for one
/// message that came in parts are merged, unsolicited ones without the items asked for are
/// left out.
fn collect_metas(data: Vec<Data<'static>>, wanted: &UidSet) -> Result<Vec<MessageMeta>, ImapError> {
    let mut by_seq: Vec<(u32, Vec<MessageDataItem<'static>>)> = Vec::new();
    for d in data {
        if let Data::Fetch { seq, items } = d {
            let items = items.into_inner();
            match by_seq.iter_mut().rev().find(|(s, _)| *s == seq.get()) {
                Some((_, earlier)) => earlier.extend(items),
                None => by_seq.push((seq.get(), items)),
            }
        }
    }
    let mut metas = Vec::with_capacity(by_seq.len());
    for (_, items) in by_seq {
        if let (Some(meta), _) = parse_fetch(items)?
            && wanted.contains(meta.uid)
        {
            metas.push(meta);
        }
    }
    Ok(metas)
}

/// The metadata (when the response has UID, RFC822.SIZE and INTERNALDATE) and the full body
/// (`BODY[]`, when present) of one FETCH response.
fn parse_fetch(
    items: Vec<MessageDataItem<'static>>,
) -> Result<(Option<MessageMeta>, Option<Vec<u8>>), ImapError> {
    let mut uid = None;
    let mut size = None;
    let mut flags = Vec::new();
    let mut internaldate = None;
    let mut modseq = None;
    let mut header = None;
    let mut body = None;
    for item in items {
        match item {
            MessageDataItem::Uid(n) => uid = Some(n.get()),
            MessageDataItem::Rfc822Size(n) => size = Some(n),
            MessageDataItem::Flags(list) => {
                flags = list
                    .into_iter()
                    .filter_map(|f| match f {
                        FlagFetch::Flag(flag) => Some(flag.to_string()),
                        FlagFetch::Recent => None,
                    })
                    .collect();
            }
            MessageDataItem::InternalDate(date) => {
                let date = date.as_ref();
                let utc = OffsetDateTime::from_unix_timestamp(date.timestamp())
                    .map_err(|_| ImapError::Protocol("an INTERNALDATE out of range".into()))?;
                let offset = UtcOffset::from_whole_seconds(date.offset().local_minus_utc())
                    .map_err(|_| {
                        ImapError::Protocol("an INTERNALDATE offset out of range".into())
                    })?;
                internaldate = Some(utc.to_offset(offset));
            }
            MessageDataItem::ModSeq(n) => modseq = Some(n.get()),
            MessageDataItem::BodyExt {
                section: None,
                data,
                ..
            } => {
                body = Some(
                    data.into_option()
                        .map(|b| b.into_owned())
                        .unwrap_or_default(),
                )
            }
            MessageDataItem::BodyExt {
                section: Some(_),
                data,
                ..
            } => header = data.into_option(),
            _ => {}
        }
    }
    let meta = match (uid, size, internaldate) {
        (Some(uid), Some(size), Some(internaldate)) => Some(MessageMeta {
            uid,
            size: u64::from(size),
            flags,
            internaldate,
            modseq,
            message_id: header.as_deref().and_then(message_id),
            gmail_id: None,
        }),
        _ => None,
    };
    Ok((meta, body))
}

/// The size of the parts message bodies are fetched in (see [`Session::fetch_bodies`]): big
/// enough that nearly all mail comes in one response, small enough that a 25 MB message never
/// sits in imap-next's buffers whole.
pub const BODY_PART: u32 = 1024 * 1024;

/// Parts of one message asked for beyond those that arrived in order: what of a message may sit
/// in memory out of order, whatever size the server reports.
const PARTS_AHEAD: usize = 8;

/// The most reserved up front for one message's bytes: a larger message grows its buffer as its
/// parts arrive, so a size a server reports never decides how much memory is taken.
const MAX_RESERVE: usize = 32 * 1024 * 1024;

/// A message larger than one part, put together from its parts.
struct Assembly {
    meta: MessageMeta,
    bytes: Vec<u8>,
    /// Parts that arrived before the ones in front of them, by origin.
    early: std::collections::BTreeMap<u32, Vec<u8>>,
    /// The origin of the next part not yet asked for.
    requested_to: u32,
    complete: bool,
}

impl Assembly {
    fn new(meta: MessageMeta, first: Vec<u8>) -> Self {
        // RFC822.SIZE is the size of BODY[] on servers that keep messages as they came; the
        // buffer still grows if a server reported less.
        let mut bytes = Vec::with_capacity((meta.size as usize).min(MAX_RESERVE).max(first.len()));
        bytes.extend_from_slice(&first);
        Assembly {
            requested_to: first.len() as u32,
            meta,
            bytes,
            early: std::collections::BTreeMap::new(),
            complete: false,
        }
    }

    /// Takes a part. The message is complete once a part in sequence is shorter than
    /// [`BODY_PART`] (the last part, or an empty one just past the end).
    fn add(&mut self, origin: u32, data: Vec<u8>) {
        self.early.insert(origin, data);
        while let Some(data) = self.early.remove(&(self.bytes.len() as u32)) {
            let short = data.len() < BODY_PART as usize;
            self.bytes.extend_from_slice(&data);
            if short {
                self.complete = true;
                self.early.clear();
                return;
            }
        }
    }

    /// The origin of the next part to ask for: the parts up to the reported size, at most
    /// [`PARTS_AHEAD`] beyond what arrived in order, one more when the size was under-reported
    /// and the last part came full.
    fn next_request(&mut self) -> Option<u32> {
        if self.complete {
            return None;
        }
        let ahead = (self.requested_to as usize).saturating_sub(self.bytes.len());
        if ahead >= PARTS_AHEAD * BODY_PART as usize {
            return None;
        }
        let expected_end = self.meta.size.max(self.bytes.len() as u64);
        let all_asked = u64::from(self.requested_to) > expected_end;
        let waiting = (self.requested_to as usize) > self.bytes.len();
        if all_asked && waiting {
            return None;
        }
        let next = self.requested_to;
        self.requested_to = next.saturating_add(BODY_PART);
        Some(next)
    }
}

/// The UID and the body bytes of a response to a later part (`UID n BODY[]<origin> ...`).
fn body_part(items: Vec<MessageDataItem<'static>>) -> (Option<u32>, Vec<u8>) {
    let mut uid = None;
    let mut data = Vec::new();
    for item in items {
        match item {
            MessageDataItem::Uid(n) => uid = Some(n.get()),
            MessageDataItem::BodyExt {
                section: None,
                data: d,
                ..
            } => data = d.into_option().map(|b| b.into_owned()).unwrap_or_default(),
            _ => {}
        }
    }
    (uid, data)
}

/// The value of the first Message-ID header in a header block (unfolded and trimmed; the
/// `<...>` part when there is one).
pub(crate) fn message_id(header: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let mut value: Option<String> = None;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(value) = value.as_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if value.is_some() {
            break;
        }
        if let Some((name, rest)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("Message-ID")
        {
            value = Some(rest.trim().to_owned());
        }
    }
    let value = value?;
    let value = value.trim();
    match (value.find('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => Some(value[open..=close].to_owned()),
        _ if value.is_empty() => None,
        _ => Some(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assembly(size: u32, actual: &[u8]) -> Vec<u8> {
        // Drives an Assembly like fetch_bodies does, the server answering parts in reverse
        // order of asking (pipelined commands may complete in any order).
        let part = BODY_PART as usize;
        let meta = MessageMeta {
            uid: 7,
            size: u64::from(size),
            flags: vec![],
            internaldate: OffsetDateTime::UNIX_EPOCH,
            modseq: None,
            message_id: None,
            gmail_id: None,
        };
        let slice = |origin: u32| {
            let from = (origin as usize).min(actual.len());
            actual[from..(from + part).min(actual.len())].to_vec()
        };
        let mut a = Assembly::new(meta, slice(0));
        let mut asked = Vec::new();
        let mut rounds = 0;
        while !a.complete {
            while let Some(next) = a.next_request() {
                asked.push(next);
            }
            assert!(!asked.is_empty(), "stalled at {} bytes", a.bytes.len());
            for origin in asked.drain(..).rev() {
                a.add(origin, slice(origin));
            }
            rounds += 1;
            assert!(rounds < 10);
        }
        a.bytes
    }

    #[test]
    fn a_large_body_is_put_together_from_its_parts_exactly() {
        let part = BODY_PART as usize;
        let body: Vec<u8> = (0..(2 * part + part / 2))
            .map(|i| (i % 251) as u8)
            .collect();
        let n = body.len() as u32;
        // The server's size is right, too small, too large; a body of exactly two parts.
        assert_eq!(assembly(n, &body), body);
        assert_eq!(assembly(n - part as u32, &body), body);
        assert_eq!(assembly(n + 3 * part as u32, &body), body);
        let even = &body[..2 * part];
        assert_eq!(assembly(2 * part as u32, even), even);
    }

    #[test]
    fn a_size_a_server_reports_reserves_no_memory_beyond_our_limit() {
        let part = BODY_PART as usize;
        let body: Vec<u8> = (0..(part + 10)).map(|i| (i % 7) as u8).collect();
        // A hostile (or broken) server says the message has 4 GB: it is put together from
        // what comes, with a bounded buffer and a bounded number of parts in flight.
        assert_eq!(assembly(u32::MAX, &body), body);
        let meta = MessageMeta {
            uid: 1,
            size: u64::from(u32::MAX),
            flags: vec![],
            internaldate: OffsetDateTime::UNIX_EPOCH,
            modseq: None,
            message_id: None,
            gmail_id: None,
        };
        let mut a = Assembly::new(meta, vec![0; part]);
        assert!(a.bytes.capacity() <= MAX_RESERVE);
        let mut asked = 0;
        while a.next_request().is_some() {
            asked += 1;
        }
        assert_eq!(asked, PARTS_AHEAD, "parts in flight for one message");
    }

    #[test]
    fn message_ids_are_found_unfolded_and_trimmed() {
        assert_eq!(
            message_id(b"Message-ID: <a@b.example>\r\n\r\n").as_deref(),
            Some("<a@b.example>")
        );
        assert_eq!(
            message_id(b"message-id:\r\n  <folded@x>\r\n\r\n").as_deref(),
            Some("<folded@x>")
        );
        assert_eq!(
            message_id(b"Message-Id: no-brackets@x  \r\n").as_deref(),
            Some("no-brackets@x")
        );
        assert_eq!(message_id(b"\r\n"), None);
        assert_eq!(message_id(b"Message-ID: \r\n\r\n"), None);
        assert_eq!(message_id(b""), None);
    }
}
