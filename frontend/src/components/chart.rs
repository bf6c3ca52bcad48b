//! The project's throughput over time as an inline SVG line chart. Colours come from the style
//! sheet through classes (the CSP allows no inline styles); the figures are also given as text,
//! so the chart is never the only way to read them.

use crate::chart::{self, BOTTOM, HEIGHT, LEFT, TOP, WIDTH};
use crate::format;
use crate::state::project::Sample;
use yew::prelude::*;

/// An SVG coordinate, rounded to whole units (integer formatting only; see `format::fixed1`).
fn n(v: f64) -> String {
    (v.round() as i64).to_string()
}

pub fn throughput_chart(samples: &[Sample]) -> Html {
    let Some(g) = chart::geometry(samples) else {
        return html! {
            <p class="muted chart-empty">{ "The chart fills in while the page is open." }</p>
        };
    };
    let last = samples.last().map_or(0.0, |s| s.bytes_per_second);
    let peak = samples
        .iter()
        .map(|s| s.bytes_per_second)
        .fold(0.0, f64::max);
    let seconds = g.span_seconds.round() as u64;
    let span = if seconds < 90 {
        format::plural(seconds, "second", "seconds")
    } else {
        format::plural((seconds + 30) / 60, "minute", "minutes")
    };
    let summary = format!(
        "Throughput over the last {span}: now {}, peak {}",
        format::rate(Some(last)),
        format::rate(Some(peak))
    );
    let bottom = HEIGHT - BOTTOM;
    let mid = TOP + (bottom - TOP) / 2.0;
    html! {
        <figure class="chart">
            <svg
                viewBox={format!("0 0 {} {}", n(WIDTH), n(HEIGHT))}
                role="img"
                aria-label={summary.clone()}
                class="chart-svg"
            >
                <line class="chart-grid" x1={n(LEFT)} x2={n(WIDTH)} y1={n(TOP)} y2={n(TOP)} />
                <line class="chart-grid" x1={n(LEFT)} x2={n(WIDTH)} y1={n(mid)} y2={n(mid)} />
                <line class="chart-axis" x1={n(LEFT)} x2={n(WIDTH)} y1={n(bottom)} y2={n(bottom)} />
                <text class="chart-label" x={n(LEFT - 6.0)} y={n(TOP + 4.0)} text-anchor="end">
                    { format::rate(Some(g.top_value)) }
                </text>
                <text class="chart-label" x={n(LEFT - 6.0)} y={n(mid + 4.0)} text-anchor="end">
                    { format::rate(Some(g.top_value / 2.0)) }
                </text>
                <text class="chart-label" x={n(LEFT - 6.0)} y={n(bottom + 4.0)} text-anchor="end">
                    { "0" }
                </text>
                <text class="chart-label" x={n(LEFT)} y={n(HEIGHT - 4.0)}>
                    { format!("{span} ago") }
                </text>
                <text class="chart-label" x={n(WIDTH)} y={n(HEIGHT - 4.0)} text-anchor="end">
                    { "now" }
                </text>
                <polygon class="chart-area" points={g.area} />
                <polyline class="chart-line" points={g.line} />
            </svg>
            <figcaption class="muted small">{ summary }</figcaption>
        </figure>
    }
}
