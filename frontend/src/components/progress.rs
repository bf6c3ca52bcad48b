//! Copy progress: a full summary for one mailbox (`progress_view`) and a compact bar with its
//! figures for table cells (`bar`). Both use the native `<progress>` element, which needs no
//! inline style (the CSP forbids them) and is announced by screen readers.

use crate::format;
use contract::Progress;
use yew::prelude::*;

/// The progress of one mailbox. Speed and time left are shown only while it is `running`;
/// `speed` adds the copy speed (the admin's view).
pub fn progress_view(p: &Progress, running: bool, speed: bool) -> Html {
    let percent = format::percent(p);
    html! {
        <div class="progress-summary">
            <div class="progress-head">
                if let Some(v) = percent {
                    <span class="progress-percent">{ format!("{v}%") }</span>
                    <span class="muted small">{ "of the mail copied" }</span>
                } else {
                    <span class="muted">{ "The mail is counted when the copy starts." }</span>
                }
            </div>
            <progress
                class="bar bar-large"
                max="100"
                value={percent.unwrap_or(0).to_string()}
                aria-label="Copy progress"
            >
                { percent.map(|v| format!("{v}%")).unwrap_or_default() }
            </progress>
            <dl class="stats">
                <div>
                    <dt>{ "Messages" }</dt>
                    <dd>{ format::of(p.messages_done, p.messages_total) }</dd>
                </div>
                <div>
                    <dt>{ "Size" }</dt>
                    <dd>{ format!("{} of {}", format::bytes(p.bytes_done), format::bytes(p.bytes_total)) }</dd>
                </div>
                if speed && running {
                    <div>
                        <dt>{ "Speed" }</dt>
                        <dd>{ format::rate(p.throughput_bps) }</dd>
                    </div>
                }
                if let (true, Some(secs)) = (running, p.eta_seconds) {
                    <div>
                        <dt>{ "Time left" }</dt>
                        <dd>{ format::eta(secs) }</dd>
                    </div>
                }
                if p.skipped > 0 {
                    <div>
                        <dt>{ "Skipped" }</dt>
                        <dd>{ format::count(p.skipped) }</dd>
                    </div>
                }
            </dl>
        </div>
    }
}

/// A compact bar for a table cell: `label` is the accessible name ("Messages copied for ann@…"),
/// `text` the figures shown under it.
pub fn bar(done: u64, total: u64, label: String, text: String) -> Html {
    let percent = format::ratio(done, total);
    html! {
        <div class="cell-bar">
            <progress
                class="bar"
                max="100"
                value={percent.unwrap_or(0).to_string()}
                aria-label={label}
            >
                { percent.map(|v| format!("{v}%")).unwrap_or_default() }
            </progress>
            <span class="cell-bar-text">{ text }</span>
        </div>
    }
}
