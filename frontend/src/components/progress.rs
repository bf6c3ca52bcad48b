//! Copy progress of one mailbox: a bar, counts, sizes and the time left.

use crate::format;
use contract::Progress;
use yew::prelude::*;

#[derive(Debug, Properties, PartialEq)]
pub struct ProgressProps {
    pub progress: Progress,
}

#[component]
pub fn ProgressView(props: &ProgressProps) -> Html {
    let p = &props.progress;
    let percent = format::percent(p);
    html! {
        <div class="progress">
            <progress
                max="100"
                value={percent.map(|v| v.to_string())}
                aria-label="Copy progress"
            >
                { percent.map(|v| format!("{v}%")).unwrap_or_default() }
            </progress>
            <dl class="stats">
                <div>
                    <dt>{ "Messages" }</dt>
                    <dd>{ format!("{} of {}", p.messages_done, p.messages_total) }</dd>
                </div>
                <div>
                    <dt>{ "Size" }</dt>
                    <dd>{ format!("{} of {}", format::bytes(p.bytes_done), format::bytes(p.bytes_total)) }</dd>
                </div>
                if let Some(secs) = p.eta_seconds {
                    <div>
                        <dt>{ "Time left" }</dt>
                        <dd>{ format::eta(secs) }</dd>
                    </div>
                }
                if p.skipped > 0 {
                    <div>
                        <dt>{ "Skipped" }</dt>
                        <dd>{ p.skipped }</dd>
                    </div>
                }
            </dl>
        </div>
    }
}
