//! Numbers as people read them: sizes, speeds, durations, percentages, counts and dates.

use contract::Progress;
use time::OffsetDateTime;

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
    format!("{} {}", fixed1(value), UNITS[unit])
}

/// A non-negative number with one decimal: `12.5`. Written with integer arithmetic, because
/// Rust's float formatting would add about 11 KB to the WebAssembly download.
pub fn fixed1(v: f64) -> String {
    let tenths = (v.max(0.0) * 10.0).round() as u64;
    format!("{}.{}", tenths / 10, tenths % 10)
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
    ratio(p.bytes_done, p.bytes_total)
}

/// `done` as a share of `total`, 0–100, when the total is known; never above 100.
pub fn ratio(done: u64, total: u64) -> Option<u8> {
    (total > 0).then(|| (u128::from(done.min(total)) * 100 / u128::from(total)) as u8)
}

/// A transfer rate: `2.4 MiB/s`; `—` when unknown.
pub fn rate(bytes_per_second: Option<f64>) -> String {
    match bytes_per_second {
        Some(bps) if bps.is_finite() && bps >= 0.0 => format!("{}/s", bytes(bps.round() as u64)),
        _ => "—".to_owned(),
    }
}

/// A count with thousands separators: `12,345`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `done of total` for messages: `1,200 of 5,000`.
pub fn of(done: u64, total: u64) -> String {
    format!("{} of {}", count(done), count(total))
}

/// A moment in UTC to the minute: `2026-11-21 14:05 UTC`.
pub fn datetime(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", at.date(), at.hour(), at.minute())
}

/// A moment in UTC to the second, for event logs: `2026-11-21 14:05:09`.
pub fn timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{} {:02}:{:02}:{:02}",
        at.date(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// `1 user`, `3 users`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", count(n), if n == 1 { one } else { many })
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
    fn one_decimal_without_float_formatting() {
        assert_eq!(fixed1(0.0), "0.0");
        assert_eq!(fixed1(12.25), "12.3");
        assert_eq!(fixed1(1023.96), "1024.0");
        assert_eq!(fixed1(-3.0), "0.0");
    }

    #[test]
    fn eta_rounds_to_what_matters() {
        assert_eq!(eta(10), "less than a minute");
        assert_eq!(eta(61), "about a minute");
        assert_eq!(eta(725), "about 12 minutes");
        assert_eq!(eta(3 * 3600 + 100), "about 3 hours");
    }

    #[test]
    fn rates_counts_and_dates_read_naturally() {
        assert_eq!(rate(Some(2.5 * 1024.0 * 1024.0)), "2.5 MiB/s");
        assert_eq!(rate(Some(100.4)), "100 B/s");
        assert_eq!(rate(None), "—");
        assert_eq!(rate(Some(f64::NAN)), "—");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(of(1200, 5000), "1,200 of 5,000");
        let at = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(datetime(at), "2023-11-14 22:13 UTC");
        assert_eq!(timestamp(at), "2023-11-14 22:13:20");
        assert_eq!(plural(1, "user", "users"), "1 user");
        assert_eq!(plural(2000, "user", "users"), "2,000 users");
    }

    #[test]
    fn ratio_is_safe_for_huge_and_zero_totals() {
        assert_eq!(ratio(5, 0), None);
        assert_eq!(ratio(u64::MAX, u64::MAX), Some(100));
        assert_eq!(ratio(1, 3), Some(33));
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
