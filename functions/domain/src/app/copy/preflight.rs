//! A preflight: both sides logged in to with the stored credentials, the pass planned, each
//! folder's messages sized, the target's limits read, and nothing copied or created. It takes
//! the same connection slots a copy job does, so it never pushes a server past its cap, and it
//! never touches a self-service link (no attempt is spent).

use contract::{PreflightFolder, PreflightReport, QuotaView};

use crate::error::AppError;
use crate::mailbox::{MailboxError, Quota, append_limit};
use crate::model::*;
use crate::schedule::{self, Place};

use super::plan::planned_folders;
use super::{App, Sessions, mailbox_err};

/// The rate assumed for the estimate when no copy of the user has measured one: 5 MB/s,
/// well below what one connection moves on a LAN and about what one moves to a cloud service.
pub const ASSUMED_RATE: u64 = 5_000_000;

/// Capabilities a copy uses, in the order the report lists them.
const USEFUL: [&str; 9] = [
    "CONDSTORE",
    "QRESYNC",
    "UIDPLUS",
    "MULTIAPPEND",
    "LITERAL+",
    "QUOTA",
    "SPECIAL-USE",
    "COMPRESS=DEFLATE",
    "X-GM-EXT-1",
];

/// The capabilities of `all` a copy uses (APPENDLIMIT with its number).
fn useful(all: &[String]) -> Vec<String> {
    let mut out: Vec<String> = USEFUL
        .iter()
        .filter(|u| all.iter().any(|c| c.eq_ignore_ascii_case(u)))
        .map(|u| (*u).to_owned())
        .collect();
    out.extend(
        all.iter()
            .filter(|c| c.to_ascii_uppercase().starts_with("APPENDLIMIT="))
            .cloned(),
    );
    out
}

/// Whether `incoming` bytes fit the quota's free room.
pub fn fits(quota: Quota, incoming: u64) -> bool {
    quota.used_bytes.saturating_add(incoming) <= quota.limit_bytes
}

/// Bytes as "1.1 MB".
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The report's plain-words problems.
fn problems(report: &PreflightReport, source: &[String], target: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if report.oversize_messages > 0 {
        let n = report.oversize_messages;
        out.push(format!(
            "{n} {} larger than the target takes ({}); {} be skipped and listed",
            if n == 1 { "message is" } else { "messages are" },
            mb(report.target_max_message_bytes.unwrap_or(0)),
            if n == 1 { "it would" } else { "they would" },
        ));
    }
    if let (Some(false), Some(q)) = (report.fits_quota, report.target_quota) {
        let short = q
            .used_bytes
            .saturating_add(report.bytes)
            .saturating_sub(q.limit_bytes);
        out.push(format!(
            "the target is over quota by {}: {} would arrive, {} of {} are free",
            mb(short),
            mb(report.bytes),
            mb(q.limit_bytes.saturating_sub(q.used_bytes)),
            mb(q.limit_bytes)
        ));
    }
    for f in report.folders.iter().filter(|f| f.renamed.is_some()) {
        out.push(format!(
            "the folder {} arrives as {} ({})",
            f.source,
            f.target,
            f.renamed.as_deref().unwrap_or_default()
        ));
    }
    if !target.iter().any(|c| c.eq_ignore_ascii_case("UIDPLUS")) {
        out.push(
            "the target has no UIDPLUS: copies are found again by Message-ID, which is slower"
                .into(),
        );
    }
    if !source.iter().any(|c| c.eq_ignore_ascii_case("CONDSTORE")) {
        out.push("the source has no CONDSTORE: delta passes compare every message's flags".into());
    }
    out
}

impl App {
    /// Logs in to both sides of `user` and reports what a pass would copy and what would not
    /// fit, copying nothing. A server at its cap is an error to try again later.
    pub async fn preflight(
        &self,
        project: &Project,
        user: &MailUser,
    ) -> Result<PreflightReport, AppError> {
        let now = self.deps.clock.now();
        let needs = schedule::needs(project, user);
        let rank = schedule::line_rank(user.priority, now, &user.id.to_string());
        let place = Place {
            rank: &rank,
            kept_until: now,
        };
        let holder = crate::token::generate();
        let until = now + self.config.copy.lease_ttl;
        let slots = match schedule::take_slots(
            &*self.deps.limiter,
            &needs,
            &holder,
            &place,
            now,
            until,
        )
        .await?
        {
            Ok(slots) => slots,
            Err(full) => {
                return Err(AppError::Conflict(format!(
                    "{} of {} connections of {} are in use; try the preflight again in a minute",
                    full.in_use, full.cap, full.what
                )));
            }
        };
        let work = async {
            let mut s = self.open_sessions(project, user, "a preflight").await?;
            let report = self.preflight_with(project, user, &mut s).await;
            s.close().await;
            report
        };
        let report = self.holding(&slots, work).await;
        self.give_back(&slots).await;
        if let Ok(r) = &report {
            self.keep_preflight(user, summary_of(r)).await;
        }
        report
    }

    async fn preflight_with(
        &self,
        project: &Project,
        user: &MailUser,
        s: &mut Sessions,
    ) -> Result<PreflightReport, AppError> {
        let source_caps = s.source.capabilities();
        let target_caps = s.target.capabilities();
        let target_max = [
            append_limit(&target_caps),
            s.target_limit.map(|l| l.max_bytes),
        ]
        .into_iter()
        .flatten()
        .min();
        let planned = planned_folders(project, s, &Default::default()).await?;
        let mut folders = Vec::with_capacity(planned.len());
        let mut largest = 0u64;
        for p in &planned {
            let status = match s.source.examine(&p.source).await {
                Ok(status) => status,
                // Deleted since it was listed: nothing of it would be copied.
                Err(MailboxError::FolderNotFound(_)) => continue,
                Err(e) => return Err(mailbox_err(e)),
            };
            let metas = if status.messages == 0 {
                Vec::new()
            } else {
                // Every UID, as the copy asks (a server may leave UIDNEXT out).
                s.source
                    .fetch_meta(1, u32::MAX)
                    .await
                    .map_err(mailbox_err)?
            };
            largest = largest.max(metas.iter().map(|m| m.size).max().unwrap_or(0));
            folders.push(PreflightFolder {
                source: p.source.clone(),
                target: p.target.clone(),
                messages: metas.len() as u64,
                bytes: metas.iter().map(|m| m.size).sum(),
                oversize_messages: target_max.map_or(0, |max| {
                    metas.iter().filter(|m| m.size > max).count() as u64
                }),
                renamed: p
                    .renamed_from
                    .as_ref()
                    .map(|from| format!("the target already has or keeps the name {from}")),
            });
        }
        // A server that refuses to say is a server without a quota to report.
        let quota = s.target.quota().await.unwrap_or_else(|e| {
            tracing::info!(error = %e, "the target did not report its quota");
            None
        });
        let bytes: u64 = folders.iter().map(|f| f.bytes).sum();
        let (rate, measured) = match user.progress.throughput_bps {
            Some(bps) if bps >= 1.0 => (bps as u64, true),
            _ => (ASSUMED_RATE, false),
        };
        let mut report = PreflightReport {
            user_id: user.id.0,
            checked_at: self.deps.clock.now(),
            messages: folders.iter().map(|f| f.messages).sum(),
            bytes,
            oversize_messages: folders.iter().map(|f| f.oversize_messages).sum(),
            largest_message_bytes: largest,
            target_max_message_bytes: target_max,
            target_quota: quota.map(|q| QuotaView {
                used_bytes: q.used_bytes,
                limit_bytes: q.limit_bytes,
            }),
            fits_quota: quota.map(|q| fits(q, bytes)),
            source_capabilities: useful(&source_caps),
            target_capabilities: useful(&target_caps),
            estimate_seconds: bytes / rate.max(1),
            rate_bytes_per_second: rate,
            rate_measured: measured,
            folders,
            problems: Vec::new(),
        };
        report.problems = problems(&report, &source_caps, &target_caps);
        Ok(report)
    }
}

/// What the user keeps of a report.
pub(crate) fn summary_of(r: &PreflightReport) -> contract::PreflightSummary {
    contract::PreflightSummary {
        checked_at: r.checked_at,
        messages: r.messages,
        bytes: r.bytes,
        oversize_messages: r.oversize_messages,
        fits_quota: r.fits_quota,
        estimate_seconds: r.estimate_seconds,
        problems: r.problems.clone(),
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_arrives_fits_the_free_room_or_not() {
        let q = Quota {
            used_bytes: 30,
            limit_bytes: 100,
        };
        assert!(fits(q, 70));
        assert!(!fits(q, 71));
    }

    #[test]
    fn the_report_lists_the_capabilities_a_copy_uses() {
        let caps: Vec<String> = [
            "IMAP4REV1",
            "UIDPLUS",
            "condstore",
            "APPENDLIMIT=35000000",
            "ID",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            useful(&caps),
            ["CONDSTORE", "UIDPLUS", "APPENDLIMIT=35000000"]
        );
        assert_eq!(append_limit(&caps), Some(35_000_000));
    }
}
