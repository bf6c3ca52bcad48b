//! The copy benchmark's figures: per configuration, the median and range over the rounds of
//! each measurement and of each ratio to its reference from the same round, printed as a table
//! and returned as JSON for `target/bench/copy.json`.

use serde_json::{Value, json};

use crate::runs::Run;

/// The measurements of one round of one configuration.
#[derive(Debug, Default, Clone, Copy)]
pub struct Round {
    pub fetch: Run,
    pub mailferry: Run,
    pub doveadm: Run,
    pub mailferry_noop: Run,
    pub doveadm_noop: Run,
    pub mailferry_delta: Run,
    pub doveadm_delta: Run,
    /// Bytes the full pass copied, for the CPU per GB.
    pub bytes: u64,
}

/// What the issue asks of each figure: `(name, limit, what it is)`. A ratio is better below 1.
pub const TARGETS: &[(&str, f64, &str)] = &[
    ("full_to_doveadm", 1.0, "full pass / doveadm backup"),
    ("source_cpu_to_raw_fetch", 1.3, "source CPU / raw FETCH's"),
    ("cpu_seconds_per_gb", 2.0, "mailferry CPU s per GB"),
    ("delta_100_to_doveadm", 1.0, "+100 delta / doveadm's"),
    ("noop_to_doveadm", 0.5, "no-op delta / doveadm's"),
    ("peak_rss_mib", 64.0, "peak RSS MiB"),
];

/// Median, lowest and highest of some values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

pub fn spread(values: &[f64]) -> Spread {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return Spread {
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        };
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if !v.len().is_multiple_of(2) {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    Spread {
        median,
        min: v[0],
        max: v[v.len() - 1],
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

/// The ratios of one round, by the names of [`TARGETS`] (and a few more for the table).
pub fn ratios(r: &Round) -> Vec<(&'static str, f64)> {
    let gb = r.bytes as f64 / 1e9;
    vec![
        ("full_to_doveadm", ratio(r.mailferry.wall, r.doveadm.wall)),
        (
            "source_cpu_to_raw_fetch",
            ratio(r.mailferry.source_cpu, r.fetch.source_cpu),
        ),
        (
            "doveadm_source_cpu_to_raw_fetch",
            ratio(r.doveadm.source_cpu, r.fetch.source_cpu),
        ),
        ("cpu_seconds_per_gb", ratio(r.mailferry.cpu, gb)),
        (
            "delta_100_to_doveadm",
            ratio(r.mailferry_delta.wall, r.doveadm_delta.wall),
        ),
        (
            "noop_to_doveadm",
            ratio(r.mailferry_noop.wall, r.doveadm_noop.wall),
        ),
        ("peak_rss_mib", r.mailferry.rss_mib),
    ]
}

fn fmt(s: Spread, digits: usize) -> String {
    format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits)
}

fn runs_json(runs: &[Run]) -> Value {
    let field = |f: fn(&Run) -> f64| {
        let s = spread(&runs.iter().map(f).collect::<Vec<_>>());
        json!({"median": s.median, "min": s.min, "max": s.max})
    };
    json!({
        "wall_seconds": field(|r| r.wall),
        "cpu_seconds": field(|r| r.cpu),
        "peak_rss_mib": field(|r| r.rss_mib),
        "source_cpu_seconds": field(|r| r.source_cpu),
        "target_cpu_seconds": field(|r| r.target_cpu),
    })
}

/// Prints one configuration's table and returns its JSON.
pub fn configuration(name: &str, rounds: &[Round]) -> Value {
    let col = |f: fn(&Round) -> Run| rounds.iter().map(f).collect::<Vec<Run>>();
    let rows: [(&str, Vec<Run>); 7] = [
        ("raw pipelined FETCH", col(|r| r.fetch)),
        ("mailferry full pass", col(|r| r.mailferry)),
        ("doveadm backup", col(|r| r.doveadm)),
        ("mailferry no-op delta", col(|r| r.mailferry_noop)),
        ("doveadm no-op", col(|r| r.doveadm_noop)),
        ("mailferry +100 delta", col(|r| r.mailferry_delta)),
        ("doveadm +100", col(|r| r.doveadm_delta)),
    ];
    println!("\n== {name}: {} round(s), median (range) ==", rounds.len());
    println!(
        "{:<24} {:>20} {:>20} {:>18} {:>20} {:>20}",
        "", "wall s", "copier CPU s", "peak RSS MiB", "source CPU s", "target CPU s"
    );
    let mut runs = serde_json::Map::new();
    for (label, list) in &rows {
        let s = |f: fn(&Run) -> f64| spread(&list.iter().map(f).collect::<Vec<_>>());
        println!(
            "{label:<24} {:>20} {:>20} {:>18} {:>20} {:>20}",
            fmt(s(|r| r.wall), 2),
            fmt(s(|r| r.cpu), 2),
            fmt(s(|r| r.rss_mib), 0),
            fmt(s(|r| r.source_cpu), 2),
            fmt(s(|r| r.target_cpu), 2),
        );
        runs.insert(label.replace([' ', '+', '-'], "_"), runs_json(list));
    }
    let per_round: Vec<Vec<(&str, f64)>> = rounds.iter().map(ratios).collect();
    let mut figures = serde_json::Map::new();
    println!("ratios, per round and median:");
    for (i, (key, _)) in per_round.first().into_iter().flatten().enumerate() {
        let values: Vec<f64> = per_round.iter().map(|r| r[i].1).collect();
        let s = spread(&values);
        let target = TARGETS.iter().find(|(k, _, _)| k == key);
        let verdict = match target {
            Some((_, limit, _)) if s.median <= *limit => format!("  ≤ {limit}: met"),
            Some((_, limit, _)) => format!("  ≤ {limit}: MISSED"),
            None => String::new(),
        };
        let each: Vec<String> = values.iter().map(|v| format!("{v:.2}")).collect();
        println!(
            "  {key:<34} {:>6.2}  [{}]{verdict}",
            s.median,
            each.join(", ")
        );
        figures.insert(
            (*key).to_owned(),
            json!({"median": s.median, "min": s.min, "max": s.max, "rounds": values,
                   "target": target.map(|t| t.1)}),
        );
    }
    json!({"configuration": name, "rounds": rounds.len(), "runs": runs, "ratios": figures})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spread_is_the_median_and_the_extremes() {
        let s = spread(&[3.0, 1.0, 2.0, 10.0, f64::NAN]);
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
        assert_eq!(spread(&[4.0, 1.0, 9.0]).median, 4.0);
        assert!(spread(&[]).median.is_nan());
    }

    #[test]
    fn ratios_compare_each_round_with_its_own_references() {
        let run = |wall, cpu, source_cpu| Run {
            wall,
            cpu,
            source_cpu,
            ..Run::default()
        };
        let round = Round {
            fetch: run(1.0, 0.5, 2.0),
            mailferry: run(6.0, 1.8, 2.4),
            doveadm: run(8.0, 5.0, 2.0),
            mailferry_noop: run(0.2, 0.0, 0.0),
            doveadm_noop: run(0.8, 0.0, 0.0),
            mailferry_delta: run(0.5, 0.0, 0.0),
            doveadm_delta: run(1.0, 0.0, 0.0),
            bytes: 900_000_000,
        };
        let r: std::collections::HashMap<_, _> = ratios(&round).into_iter().collect();
        assert_eq!(r["full_to_doveadm"], 0.75);
        assert!((r["source_cpu_to_raw_fetch"] - 1.2).abs() < 1e-9);
        assert_eq!(r["doveadm_source_cpu_to_raw_fetch"], 1.0);
        assert!((r["cpu_seconds_per_gb"] - 2.0).abs() < 1e-9);
        assert_eq!(r["noop_to_doveadm"], 0.25);
        assert_eq!(r["delta_100_to_doveadm"], 0.5);
    }
}
