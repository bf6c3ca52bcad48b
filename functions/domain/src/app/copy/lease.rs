//! A folder's lease: a worker copies a folder only while its checkpoint names it, renewing
//! the lease at every checkpoint and, during long operations, every third of its term, so two
//! deliveries of one job never append at the same time.

use std::time::{Duration, Instant};

use crate::error::AppError;
use crate::model::*;

use super::{App, Stop};

impl App {
    /// Takes (or renews) the folder's lease; `None` when another worker holds it.
    pub(super) async fn lease(
        &self,
        folder: &FolderState,
        owner: &str,
    ) -> Result<Option<FolderState>, AppError> {
        let now = self.deps.clock.now();
        let held_by_other = folder.lease_owner.as_deref().is_some_and(|o| o != owner)
            && folder.lease_until.is_some_and(|until| until > now);
        if held_by_other {
            return Ok(None);
        }
        let mut next = folder.clone();
        next.lease_owner = Some(owner.to_owned());
        self.put_renewed(folder, next).await
    }
    /// Writes `next` over `folder` with the lease renewed, if nobody wrote it meanwhile.
    async fn put_renewed(
        &self,
        folder: &FolderState,
        mut next: FolderState,
    ) -> Result<Option<FolderState>, AppError> {
        next.lease_until = Some(self.deps.clock.now() + self.config.copy.lease_ttl);
        next.version = folder.version + 1;
        match self
            .deps
            .store
            .put_folder(&next, Some(folder.version))
            .await
        {
            Ok(()) => Ok(Some(next)),
            Err(crate::error::StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    /// Writes a checkpoint, renewing the lease; `Err(Stop::LeaseLost)` when someone else wrote.
    pub(super) async fn checkpoint(
        &self,
        folder: &mut FolderState,
        change: impl FnOnce(&mut FolderState),
    ) -> Result<Result<(), Stop>, AppError> {
        let mut next = folder.clone();
        change(&mut next);
        Ok(match self.put_renewed(folder, next).await? {
            Some(next) => {
                *folder = next;
                Ok(())
            }
            None => Err(Stop::LeaseLost),
        })
    }
    /// Runs `work` (mail server I/O that does not touch the checkpoint) while renewing the
    /// folder's lease every third of its term, so a long chunk never outlives its lease and a
    /// second worker never takes the folder over while this one still appends. Stops `work`
    /// where it is when the lease is lost or the deadline passes: what it stored is found by
    /// the next attempt through the in-flight mark.
    pub(super) async fn while_leased<T>(
        &self,
        folder: &mut FolderState,
        deadline: Option<Instant>,
        work: impl std::future::Future<Output = Result<T, AppError>>,
    ) -> Result<Result<T, Stop>, AppError> {
        let mut work = std::pin::pin!(work);
        let renew_every = (self.config.copy.lease_ttl / 3).max(Duration::from_millis(10));
        let deadline = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        let mut deadline = std::pin::pin!(deadline);
        loop {
            tokio::select! {
                done = &mut work => return done.map(Ok),
                () = &mut deadline => return Ok(Err(Stop::OutOfTime)),
                () = tokio::time::sleep(renew_every) => {
                    if let Err(stop) = self.checkpoint(folder, |_| {}).await? {
                        return Ok(Err(stop));
                    }
                }
            }
        }
    }
    pub(super) async fn release_lease(&self, folder: &mut FolderState) {
        let _ = self
            .checkpoint(folder, |f| {
                f.lease_owner = None;
            })
            .await
            .map(|_| ());
        folder.lease_until = None;
    }
}
