//! Reading copies back from the target to compare them with their source messages
//! (`content.rs` decides which and what a difference means): right after a chunk's APPEND, with
//! the source fingerprints taken while the bytes passed; and after a crash, for the copies the
//! dead attempt made, fetching both sides.

use std::collections::HashMap;

use contract::{AlteredItem, ContentCheck};

use crate::error::AppError;
use crate::mailbox::drain;
use crate::model::FolderState;

use super::content::{self, Fingerprint, Fingerprinting};
use super::stream::Fingerprinted;
use super::{App, Sessions, decide, mailbox_err};

/// The copies read back from the target, and those that differ from their source.
#[derive(Debug, Default)]
pub(super) struct ContentReport {
    pub checked: u64,
    pub altered: Vec<AlteredItem>,
}

impl ContentReport {
    /// Adds the report to the folder's figures (the first altered items by name, all counted).
    pub fn record(self, f: &mut FolderState) {
        f.content_checked += self.checked;
        f.altered_count += self.altered.len() as u64;
        let room = FolderState::ALTERED_KEPT.saturating_sub(f.altered.len());
        f.altered.extend(self.altered.into_iter().take(room));
    }
}

impl App {
    /// Reads back the copies (`(source UID, target UID)` pairs) of the fingerprinted messages
    /// and compares; pairs without a fingerprint are not read.
    pub(super) async fn compare_copies(
        &self,
        s: &mut Sessions,
        target_name: &str,
        fingerprints: &[(u32, Fingerprint)],
        pairs: &[(u32, u32)],
    ) -> Result<ContentReport, AppError> {
        let prints: HashMap<u32, &Fingerprint> =
            fingerprints.iter().map(|(uid, p)| (*uid, p)).collect();
        let source_of: HashMap<u32, (u32, &Fingerprint)> = pairs
            .iter()
            .filter_map(|&(source, copy)| Some((copy, (source, *prints.get(&source)?))))
            .collect();
        if source_of.is_empty() {
            return Ok(ContentReport::default());
        }
        // The copies of large messages are read back as they arrive, like their originals.
        let stream_from = self.config.copy.stream_from_bytes;
        let (mut large, mut held): (Vec<u32>, Vec<u32>) = source_of
            .iter()
            .map(|(&copy, _)| copy)
            .partition(|copy| decide::streams(source_of[copy].1.size, stream_from));
        large.sort_unstable();
        held.sort_unstable();
        // SELECT again: the folder's view then includes what was just appended.
        s.target.select(target_name).await.map_err(mailbox_err)?;
        let mut report = ContentReport::default();
        let mut compare = |copy: u32, found: Fingerprint| {
            if let Some(&(source, print)) = source_of.get(&copy) {
                report.checked += 1;
                if let Some(change) = content::describe_change(print, &found) {
                    report.altered.push(AlteredItem {
                        uid: source,
                        target_uid: copy,
                        change,
                    });
                }
            }
        };
        s.target
            .fetch_bodies(&held, &mut |copy| {
                compare(copy.meta.uid, content::fingerprint(&copy.body));
                Ok(())
            })
            .await
            .map_err(mailbox_err)?;
        for copy in large {
            let Some(mut body) = s.target.open_body(copy).await.map_err(mailbox_err)? else {
                continue;
            };
            // The copy's body is hashed when its source's was.
            let hashed = source_of.get(&copy).is_some_and(|(_, p)| p.has_body_hash());
            let mut through = Fingerprinted {
                inner: body.as_mut(),
                print: Some(Fingerprinting::new(hashed, false)),
            };
            drain(&mut through).await.map_err(mailbox_err)?;
            if let Some(print) = through.print {
                compare(copy, print.finish());
            }
        }
        Ok(report)
    }

    /// Compares the copies an interrupted attempt made (found again by identity) as the
    /// project's policy asks: the source folder must be the one examined. At most `limit`
    /// pairs are read (a rescan of a whole folder reads a sample).
    pub(super) async fn compare_recovered(
        &self,
        s: &mut Sessions,
        folder: &FolderState,
        policy: ContentCheck,
        pairs: &[(u32, u32)],
        limit: usize,
    ) -> Result<ContentReport, AppError> {
        if policy == ContentCheck::Off || pairs.is_empty() {
            return Ok(ContentReport::default());
        }
        let pairs = &pairs[..pairs.len().min(limit)];
        let sources: Vec<u32> = pairs.iter().map(|&(source, _)| source).collect();
        let mut checked = folder.content_checked;
        let mut fingerprints = Vec::new();
        s.source
            .fetch_bodies(&sources, &mut |m| {
                if content::wants_check(policy, &m.body, checked) {
                    checked += 1;
                    fingerprints.push((m.meta.uid, content::fingerprint(&m.body)));
                }
                Ok(())
            })
            .await
            .map_err(mailbox_err)?;
        self.compare_copies(s, &folder.target_name, &fingerprints, pairs)
            .await
    }
}
