//! A folder's details kept apart from its checkpoint: its skipped items and the sealed pages of
//! its copy map. The checkpoint holds their count and the newest runs, so it stays small
//! whatever the folder holds (a DynamoDB item ends at 400 KB), and each chunk writes only what
//! it adds. Every write here is a replace by key, so a chunk redone after a crash writes the
//! same records again, harmlessly, before the checkpoint that counts them.

use std::collections::HashSet;

use contract::SkippedItem;

use crate::error::AppError;
use crate::model::*;

use super::App;

/// Skipped items read per store call.
const SKIPPED_PAGE: usize = 500;

impl App {
    /// Up to `limit` skipped items of the folder, by UID (older inline ones first).
    pub async fn skipped_of(
        &self,
        folder: &FolderState,
        limit: usize,
    ) -> Result<Vec<SkippedItem>, AppError> {
        let mut items: Vec<SkippedItem> = folder.skipped.iter().take(limit).cloned().collect();
        let mut after = 0;
        while items.len() < limit && folder.skipped_count > 0 {
            let page = self
                .deps
                .store
                .list_skipped(
                    folder.user_id,
                    &folder.source_name,
                    after,
                    SKIPPED_PAGE.min(limit - items.len()),
                )
                .await?;
            let Some(last) = page.last() else { break };
            after = last.uid;
            items.extend(page);
        }
        Ok(items)
    }

    /// Whether any skipped item of the folder could be copied by trying again.
    pub async fn has_retryable_skips(&self, folder: &FolderState) -> Result<bool, AppError> {
        if folder.skipped.iter().any(|i| i.cause.is_retryable()) {
            return Ok(true);
        }
        if folder.skipped_count == 0 {
            return Ok(false);
        }
        let mut after = 0;
        loop {
            let page = self
                .deps
                .store
                .list_skipped(folder.user_id, &folder.source_name, after, SKIPPED_PAGE)
                .await?;
            if page.iter().any(|i| i.cause.is_retryable()) {
                return Ok(true);
            }
            let Some(last) = page.last() else {
                return Ok(false);
            };
            after = last.uid;
        }
    }

    /// Stores skipped items apart; the caller's next checkpoint adds them to `skipped_count`.
    pub(super) async fn keep_skipped(
        &self,
        folder: &FolderState,
        items: &[SkippedItem],
    ) -> Result<(), AppError> {
        if !items.is_empty() {
            self.deps
                .store
                .put_skipped(folder.user_id, &folder.source_name, items)
                .await?;
        }
        Ok(())
    }

    /// Forgets every skipped item and copy-map page of the folder (a rescan rebuilds them);
    /// the caller's next checkpoint resets the counts.
    pub(super) async fn clear_details(&self, folder: &FolderState) -> Result<(), AppError> {
        let store = &self.deps.store;
        store
            .clear_skipped(folder.user_id, &folder.source_name)
            .await?;
        store
            .clear_copy_pages(folder.user_id, &folder.source_name)
            .await?;
        Ok(())
    }

    /// The folder's copy map with these pairs recorded under `uidvalidity`, the oldest runs
    /// sealed into a page when there are too many. Pages of another UIDVALIDITY are dropped.
    pub(super) async fn with_copies(
        &self,
        folder: &FolderState,
        pairs: impl IntoIterator<Item = (u32, u32)>,
        uidvalidity: u32,
    ) -> Result<CopyMap, AppError> {
        let mut map = folder.copies.clone();
        if map.target_uidvalidity.is_some_and(|v| v != uidvalidity) && map.pages > 0 {
            self.deps
                .store
                .clear_copy_pages(folder.user_id, &folder.source_name)
                .await?;
            map.pages = 0;
        }
        for (source, copy) in pairs {
            map.record(source, copy, uidvalidity);
        }
        while let Some((page, runs)) = map.seal() {
            self.deps
                .store
                .put_copy_page(folder.user_id, &folder.source_name, page, &runs)
                .await?;
        }
        Ok(map)
    }

    /// Every (source UID, target UID) pair of the folder's copy map, sealed pages included.
    pub(super) async fn copy_pairs(
        &self,
        folder: &FolderState,
    ) -> Result<Vec<(u32, u32)>, AppError> {
        let mut pairs = Vec::new();
        if folder.copies.pages > 0 {
            for (page, runs) in self
                .deps
                .store
                .list_copy_pages(folder.user_id, &folder.source_name)
                .await?
            {
                if page < folder.copies.pages {
                    pairs.extend(
                        runs.iter()
                            .flat_map(|&[s, t, n]| (0..n).map(move |i| (s + i, t + i))),
                    );
                }
            }
        }
        pairs.extend(folder.copies.pairs());
        Ok(pairs)
    }

    /// The copy map without these source UIDs (their copies were removed), written anew.
    pub(super) async fn without_copies(
        &self,
        folder: &FolderState,
        sources: &HashSet<u32>,
    ) -> Result<CopyMap, AppError> {
        let Some(uidvalidity) = folder.copies.target_uidvalidity else {
            return Ok(folder.copies.clone());
        };
        let mut kept: Vec<(u32, u32)> = self
            .copy_pairs(folder)
            .await?
            .into_iter()
            .filter(|(s, _)| !sources.contains(s))
            .collect();
        kept.sort_unstable();
        self.deps
            .store
            .clear_copy_pages(folder.user_id, &folder.source_name)
            .await?;
        let empty = FolderState {
            copies: CopyMap::default(),
            ..folder.clone()
        };
        self.with_copies(&empty, kept, uidvalidity).await
    }
}
