//! Numbers as people read them: sizes, durations, percentages.

use contract::Progress;

/// Bytes in binary units with one decimal: `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A rough remaining time: `less than a minute`, `about 12 minutes`, `about 3 hours`.
pub fn eta(seconds: u64) -> String {
    match seconds {
        0..60 => "less than a minute".to_owned(),
        60..120 => "about a minute".to_owned(),
        120..5400 => format!("about {} minutes", (seconds + 30) / 60),
        _ => format!("about {} hours", (seconds + 1800) / 3600),
    }
}

/// Share of the bytes copied, 0–100, when the total is known.
pub fn percent(p: &Progress) -> Option<u8> {
    (p.bytes_total > 0).then(|| (p.bytes_done.min(p.bytes_total) * 100 / p.bytes_total) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }

    #[test]
    fn eta_rounds_to_what_matters() {
        assert_eq!(eta(10), "less than a minute");
        assert_eq!(eta(61), "about a minute");
        assert_eq!(eta(725), "about 12 minutes");
        assert_eq!(eta(3 * 3600 + 100), "about 3 hours");
    }

    #[test]
    fn percent_needs_a_total_and_never_passes_100() {
        let mut p = Progress::default();
        assert_eq!(percent(&p), None);
        p.bytes_total = 200;
        p.bytes_done = 50;
        assert_eq!(percent(&p), Some(25));
        p.bytes_done = 250;
        assert_eq!(percent(&p), Some(100));
    }
}
