//! `mailferry copy --preflight`: the report printed for a person (or as JSON), and the exit
//! code a script can act on.

use contract::PreflightReport;

/// Whether something would not arrive as it is: messages over the target's limit, or more
/// than its free quota.
pub fn blocks(report: &PreflightReport) -> bool {
    report.oversize_messages > 0 || report.fits_quota == Some(false)
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The report as lines of text.
pub fn text(report: &PreflightReport) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "preflight: {} messages, {} in {} folders (nothing copied)",
        report.messages,
        mb(report.bytes),
        report.folders.len()
    ));
    for f in &report.folders {
        let renamed = if f.source == f.target {
            String::new()
        } else {
            format!(" -> {}", f.target)
        };
        let oversize = if f.oversize_messages > 0 {
            format!(", {} too large", f.oversize_messages)
        } else {
            String::new()
        };
        line(format!(
            "  {}{renamed}: {} messages, {}{oversize}",
            f.source,
            f.messages,
            mb(f.bytes)
        ));
    }
    line(format!(
        "largest message {}; the target takes {}",
        mb(report.largest_message_bytes),
        report
            .target_max_message_bytes
            .map_or("any size it announces no limit for".to_owned(), mb)
    ));
    match report.target_quota {
        Some(q) => line(format!(
            "target quota: {} used of {}, {} free; {}",
            mb(q.used_bytes),
            mb(q.limit_bytes),
            mb(q.limit_bytes.saturating_sub(q.used_bytes)),
            if report.fits_quota == Some(true) {
                "the copy fits"
            } else {
                "the copy does NOT fit"
            }
        )),
        None => line("target quota: none reported".into()),
    }
    line(format!(
        "source offers {}; target offers {}",
        report.source_capabilities.join(" "),
        report.target_capabilities.join(" ")
    ));
    line(format!(
        "estimate: {} min at {}/s ({})",
        report.estimate_seconds.div_ceil(60),
        mb(report.rate_bytes_per_second),
        if report.rate_measured {
            "measured on this mailbox's copies"
        } else {
            "assumed"
        }
    ));
    if report.problems.is_empty() {
        line("ready: nothing stands in the way".into());
    }
    for p in &report.problems {
        line(format!("note: {p}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_what_would_not_fit_and_blocks_then() {
        let mut r = PreflightReport {
            user_id: Default::default(),
            checked_at: time::OffsetDateTime::UNIX_EPOCH,
            folders: vec![contract::PreflightFolder {
                source: "Archive/2020".into(),
                target: "Archive.2020".into(),
                messages: 3,
                bytes: 3_000_000,
                oversize_messages: 1,
                renamed: None,
            }],
            messages: 3,
            bytes: 3_000_000,
            oversize_messages: 1,
            largest_message_bytes: 2_000_000,
            target_max_message_bytes: Some(1_000_000),
            target_quota: Some(contract::QuotaView {
                used_bytes: 0,
                limit_bytes: 10_000_000,
            }),
            fits_quota: Some(true),
            source_capabilities: vec!["CONDSTORE".into()],
            target_capabilities: vec!["UIDPLUS".into()],
            estimate_seconds: 61,
            rate_bytes_per_second: 5_000_000,
            rate_measured: false,
            problems: vec!["1 messages are larger than the target takes (1 MB)".into()],
        };
        let t = text(&r);
        assert!(
            t.contains("  Archive/2020 -> Archive.2020: 3 messages, 3.0 MB, 1 too large"),
            "{t}"
        );
        assert!(
            t.contains("target quota: 0.0 MB used of 10.0 MB, 10.0 MB free; the copy fits"),
            "{t}"
        );
        assert!(t.contains("estimate: 2 min at 5.0 MB/s (assumed)"), "{t}");
        assert!(blocks(&r));
        r.oversize_messages = 0;
        assert!(!blocks(&r));
        r.fits_quota = Some(false);
        assert!(blocks(&r));
    }
}
