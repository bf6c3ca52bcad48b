//! The geometry of the throughput chart: samples in, SVG coordinates out. Plain arithmetic, so it
//! is tested on the host; the component only writes the numbers into `<polyline>` and `<text>`.

use crate::format::fixed1;
use crate::state::project::Sample;

/// The drawing area in SVG user units (the SVG scales to its box).
pub const WIDTH: f64 = 1000.0;
pub const HEIGHT: f64 = 220.0;
/// Room on the left for the axis labels and at the top for the highest one.
pub const LEFT: f64 = 80.0;
pub const TOP: f64 = 12.0;
pub const BOTTOM: f64 = 20.0;

#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// `x,y x,y …` for the line.
    pub line: String,
    /// The same line closed along the bottom, for the filled area.
    pub area: String,
    /// The value at the top of the scale, in bytes per second.
    pub top_value: f64,
    /// Seconds from the first to the last sample.
    pub span_seconds: f64,
}

/// The top of the scale for a peak of `v` bytes per second: a "round" figure in the binary
/// unit the labels use (1, 2 or 5 × 10ⁿ KiB/s, MiB/s …), and at least 1 KiB/s so an idle
/// project draws a flat line rather than a scale of single bytes.
pub fn nice_ceiling(v: f64) -> f64 {
    let v = if v.is_finite() { v.max(1024.0) } else { 1024.0 };
    let mut unit = 1.0;
    while v / unit >= 1000.0 {
        unit *= 1024.0;
    }
    let m = v / unit;
    let mut magnitude = 1.0;
    while magnitude * 10.0 <= m {
        magnitude *= 10.0;
    }
    for step in [1.0, 2.0, 5.0, 10.0] {
        if step * magnitude >= m {
            return step * magnitude * unit;
        }
    }
    10.0 * magnitude * unit
}

/// Where the samples go; `None` until there are two of them.
pub fn geometry(samples: &[Sample]) -> Option<Geometry> {
    let (first, last) = (samples.first()?, samples.last()?);
    if samples.len() < 2 {
        return None;
    }
    let span_ms = (last.at_ms - first.at_ms).max(1.0);
    let top_value = nice_ceiling(
        samples
            .iter()
            .map(|s| s.bytes_per_second)
            .fold(0.0, f64::max),
    );
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let point = |s: &Sample| {
        let x = LEFT + (s.at_ms - first.at_ms) / span_ms * plot_w;
        let y = TOP + plot_h - (s.bytes_per_second / top_value).clamp(0.0, 1.0) * plot_h;
        format!("{},{}", fixed1(x), fixed1(y))
    };
    let line = samples.iter().map(point).collect::<Vec<_>>().join(" ");
    let bottom = TOP + plot_h;
    let area = format!(
        "{},{b} {line} {},{b}",
        fixed1(LEFT),
        fixed1(WIDTH),
        b = fixed1(bottom)
    );
    Some(Geometry {
        line,
        area,
        top_value,
        span_seconds: span_ms / 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at_ms: f64, bps: f64) -> Sample {
        Sample {
            at_ms,
            bytes_per_second: bps,
            working: 1,
        }
    }

    #[test]
    fn the_scale_rounds_up_to_1_2_or_5_in_binary_units() {
        const KIB: f64 = 1024.0;
        const MIB: f64 = 1024.0 * 1024.0;
        assert_eq!(nice_ceiling(0.0), KIB, "at least 1 KiB/s");
        assert_eq!(nice_ceiling(f64::NAN), KIB);
        assert_eq!(nice_ceiling(3.0 * KIB), 5.0 * KIB);
        assert_eq!(nice_ceiling(150.0 * KIB), 200.0 * KIB);
        assert_eq!(nice_ceiling(990.0 * KIB), 1000.0 * KIB);
        assert_eq!(nice_ceiling(1000.0 * KIB), MIB);
        assert_eq!(nice_ceiling(7.3 * MIB), 10.0 * MIB);
    }

    #[test]
    fn samples_span_the_plot_from_left_to_right_and_bottom_to_top() {
        assert_eq!(geometry(&[]), None);
        assert_eq!(geometry(&[s(0.0, 5.0)]), None);
        let g = geometry(&[s(0.0, 0.0), s(1000.0, 512.0), s(2000.0, 1024.0)]).unwrap();
        assert_eq!(g.top_value, 1024.0);
        assert_eq!(g.span_seconds, 2.0);
        let bottom = HEIGHT - BOTTOM;
        let (mid_x, mid_y) = (LEFT + (WIDTH - LEFT) / 2.0, TOP + (bottom - TOP) / 2.0);
        assert_eq!(
            g.line,
            format!("{LEFT:.1},{bottom:.1} {mid_x:.1},{mid_y:.1} {WIDTH:.1},{TOP:.1}")
        );
        assert!(g.area.starts_with(&format!("{LEFT:.1},{bottom:.1} ")));
        assert!(g.area.ends_with(&format!("{WIDTH:.1},{bottom:.1}")));
    }
}
