//! What `mailferry copy` says when it ends: what this run did (not a running total), what is
//! left, per folder the figures of the verification, the messages skipped and the copies the
//! target stored differently; and an exit code that fails only for what this run left undone.
//!
//! Refusals an earlier run reported (and the admin has seen) do not fail every later run: they
//! are counted as `skipped_earlier`, and `--retry-skipped` tries them again.

use std::collections::HashSet;
use std::time::Duration;

use contract::{SkippedItem, UserState};
use domain::{App, FolderState, UserId};
use serde_json::json;

/// Where the user stood when this run began.
pub struct Baseline {
    messages: u64,
    bytes: u64,
    /// `(source folder, UID)` of the messages skipped before this run.
    skipped: HashSet<(String, u32)>,
}

/// What the run cost in the terms AWS bills, for `--json`.
pub struct Work {
    pub state_rows_written: u64,
    pub queue_operations: u64,
    pub cpu_seconds: Option<f64>,
}

async fn skipped_by_folder(
    app: &App,
    folders: &[FolderState],
) -> anyhow::Result<Vec<Vec<SkippedItem>>> {
    let mut out = Vec::with_capacity(folders.len());
    for f in folders {
        out.push(
            app.skipped_of(f, usize::MAX)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
    }
    Ok(out)
}

/// Reads where the user stands before the run. With `retrying`, earlier skips count as this
/// run's: the admin asked to try them again, so one that fails again fails the run.
pub async fn baseline(app: &App, user: UserId, retrying: bool) -> anyhow::Result<Baseline> {
    let u = app
        .deps()
        .store
        .get_user(user)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the user record vanished"))?;
    let mut skipped = HashSet::new();
    if !retrying {
        let folders = app.deps().store.list_folders(user).await?;
        for (f, items) in folders.iter().zip(skipped_by_folder(app, &folders).await?) {
            skipped.extend(items.into_iter().map(|s| (f.source_name.clone(), s.uid)));
        }
    }
    Ok(Baseline {
        messages: u.progress.messages_done,
        bytes: u.progress.bytes_done,
        skipped,
    })
}

/// Prints the summary and returns the exit code: 0 when the pass is complete and this run left
/// nothing undone that it could have done, 2 otherwise.
pub async fn report(
    app: &App,
    user: UserId,
    before: &Baseline,
    elapsed: Duration,
    work: Work,
    as_json: bool,
) -> anyhow::Result<i32> {
    let done = app
        .deps()
        .store
        .get_user(user)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the user record vanished"))?;
    let folders = app.deps().store.list_folders(user).await?;
    let skipped = skipped_by_folder(app, &folders).await?;
    let is_new = |f: &FolderState, s: &SkippedItem| {
        !before.skipped.contains(&(f.source_name.clone(), s.uid))
    };
    let new_skips: usize = folders
        .iter()
        .zip(&skipped)
        .map(|(f, items)| items.iter().filter(|s| is_new(f, s)).count())
        .sum();
    let all_skips: usize = skipped.iter().map(Vec::len).sum();
    let pending = folders.iter().filter(|f| !f.done).count();
    let altered: u64 = folders.iter().map(|f| f.altered_count).sum();
    let checked: u64 = folders.iter().map(|f| f.content_checked).sum();
    let ok = done.state == UserState::Completed && new_skips == 0 && pending == 0;
    let messages = done.progress.messages_done.saturating_sub(before.messages);
    let bytes = done.progress.bytes_done.saturating_sub(before.bytes);
    let seconds = elapsed.as_secs_f64().max(0.001);
    let mb = bytes as f64 / 1e6;
    if as_json {
        let summary = json!({
            "ok": ok,
            "state": done.state,
            "pass": done.pass,
            "elapsed_seconds": elapsed.as_secs_f64(),
            // What this run did; the totals since the first pass are beside them.
            "messages_copied": messages,
            "bytes_copied": bytes,
            "messages_copied_total": done.progress.messages_done,
            "bytes_copied_total": done.progress.bytes_done,
            "mb_per_second": mb / seconds,
            "skipped_new": new_skips,
            "skipped_earlier": all_skips - new_skips,
            "content_checked": checked,
            "altered": altered,
            "last_error": done.last_error,
            "work": {
                "state_rows_written": work.state_rows_written,
                "queue_operations": work.queue_operations,
                "cpu_seconds": work.cpu_seconds,
            },
            "folders": folders.iter().zip(&skipped).map(|(f, items)| json!({
                "source": f.source_name, "target": f.target_name,
                "renamed_from": f.renamed_from, "done": f.done,
                "source_messages": f.source_messages, "target_messages": f.target_messages,
                "copied_messages": f.copied_messages, "skipped": items,
                "content_checked": f.content_checked, "altered_count": f.altered_count,
                "altered": f.altered,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(if ok { 0 } else { 2 });
    }
    println!(
        "pass {}: {} — this run copied {messages} messages, {mb:.1} MB in {:.1} s ({:.1} MB/s); {} messages in all",
        done.pass,
        done.state.label(),
        elapsed.as_secs_f64(),
        mb / seconds,
        done.progress.messages_done,
    );
    for f in &folders {
        println!(
            "  {:<40} → {:<40} {:>6} source, {:>6} target{}{}",
            f.source_name,
            f.target_name,
            f.source_messages,
            f.target_messages.map_or("?".into(), |n| n.to_string()),
            f.renamed_from
                .as_ref()
                .map_or(String::new(), |first| format!(
                    "  (the target refused {first})"
                )),
            if f.done { "" } else { "  (not finished)" }
        );
    }
    for (f, items) in folders.iter().zip(&skipped) {
        for s in items.iter().filter(|s| is_new(f, s)) {
            println!(
                "  skipped {} UID {} ({} bytes): {}",
                f.source_name, s.uid, s.size, s.reason
            );
        }
    }
    if all_skips > new_skips {
        println!(
            "  {} messages skipped by earlier runs (listed with --json; --retry-skipped tries them again)",
            all_skips - new_skips
        );
    }
    if checked > 0 {
        println!("  {checked} copies read back: {altered} stored differently");
    }
    for f in &folders {
        for a in &f.altered {
            println!(
                "  altered {} UID {} (target UID {}): {}",
                f.source_name, a.uid, a.target_uid, a.change
            );
        }
    }
    if let Some(e) = &done.last_error {
        println!("  last error: {e}");
    }
    Ok(if ok { 0 } else { 2 })
}
