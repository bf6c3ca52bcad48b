//! Checks the forms run on every keystroke, so a mistake shows next to its field before anything is
//! sent. They follow the server's rules (`domain`'s `parse_host`, `EmailAddress::parse`, the
//! connector and copy-option checks) but never go further: the server stays the judge, and its
//! answer is shown next to the field it names when the two disagree.

use contract::limits::PASSWORD_MAX_BYTES;

/// A host name or IP address, as `domain::model::parse_host` accepts it.
pub fn host(raw: &str) -> Result<(), String> {
    let host = raw.trim();
    if host.is_empty() {
        return Err("Enter the server's host name".into());
    }
    if host.len() > 253 {
        return Err("The host name is longer than 253 characters".into());
    }
    // An IPv6 literal; an IPv4 one passes the label rule below. (A full address parser would
    // add to the download for little gain: the server checks properly.)
    if host.matches(':').count() >= 2
        && host
            .chars()
            .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
    {
        return Ok(());
    }
    let ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if ok {
        Ok(())
    } else {
        Err(
            "Use a host name like imap.example.com or an IP address, without spaces or a port"
                .into(),
        )
    }
}

/// A TCP port, 1–65535.
pub fn port(raw: &str) -> Result<u16, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("Enter the port, usually 993 (TLS) or 143".into());
    }
    match raw.parse::<u32>() {
        Ok(n @ 1..=65535) => Ok(n as u16),
        _ => Err("The port is a number from 1 to 65535".into()),
    }
}

/// An email address, roughly: the server applies RFC 5322 and insists on a domain with a dot.
pub fn email(raw: &str) -> Result<(), String> {
    let e = raw.trim();
    if e.is_empty() {
        return Err("Enter an email address".into());
    }
    if e.len() > 254 {
        return Err("The address is longer than 254 characters".into());
    }
    if e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("An email address has no spaces".into());
    }
    let Some((local, domain)) = e.rsplit_once('@') else {
        return Err("An email address has an @, like ann@example.com".into());
    };
    if local.is_empty() || domain.is_empty() || local.contains('@') && !local.starts_with('"') {
        return Err("Use an address like ann@example.com".into());
    }
    if !domain.contains('.') && domain != "localhost" {
        return Err("The part after @ needs a dot, like example.com".into());
    }
    if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
        return Err("The part after @ is not a valid domain".into());
    }
    Ok(())
}

/// An optional email address: empty is fine.
pub fn optional_email(raw: &str) -> Result<(), String> {
    if raw.trim().is_empty() {
        Ok(())
    } else {
        email(raw)
    }
}

/// The admin (master) login: `{email}` stands for each user's address.
pub fn login_pattern(raw: &str) -> Result<(), String> {
    let p = raw.trim();
    if p.is_empty() {
        return Err("Enter the admin login, e.g. {email}*admin for a Dovecot master user".into());
    }
    if p.len() > 320 {
        return Err("The login is longer than 320 characters".into());
    }
    if p.chars().any(char::is_control) {
        return Err("The login contains control characters".into());
    }
    Ok(())
}

/// A password that must be given.
pub fn password(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("Enter the password".into());
    }
    optional_password(raw)
}

/// A password that may be left empty.
pub fn optional_password(raw: &str) -> Result<(), String> {
    if raw.len() > PASSWORD_MAX_BYTES {
        return Err(format!(
            "The password is longer than {PASSWORD_MAX_BYTES} bytes"
        ));
    }
    Ok(())
}

/// A project name: 1–200 characters.
pub fn project_name(raw: &str) -> Result<(), String> {
    let n = raw.trim().chars().count();
    if n == 0 {
        return Err("Give the project a name".into());
    }
    if n > 200 {
        return Err("The name is longer than 200 characters".into());
    }
    Ok(())
}

/// A display name: up to 200 characters.
pub fn display_name(raw: &str) -> Result<(), String> {
    if raw.trim().chars().count() > 200 {
        return Err("The name is longer than 200 characters".into());
    }
    Ok(())
}

/// A user's priority: empty for 0, else a whole number from 0 to 9.
pub fn priority(raw: &str) -> Result<u8, String> {
    match raw.trim() {
        "" => Ok(0),
        p => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 9)
            .ok_or_else(|| "Enter a whole number from 0 to 9, or nothing for 0".into()),
    }
}

/// Folder patterns, one per line: each 1–500 characters. Returns the trimmed, non-empty lines.
pub fn folder_patterns(raw: &str) -> Result<Vec<String>, String> {
    let lines: Vec<String> = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(long) = lines.iter().find(|l| l.chars().count() > 500) {
        return Err(format!(
            "'{}…' is longer than 500 characters",
            long.chars().take(20).collect::<String>()
        ));
    }
    Ok(lines)
}

/// Folder name mappings, one `Source name => Target name` per line.
pub fn folder_map(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in raw.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((from, to)) = line.split_once("=>") else {
            return Err(format!(
                "Line {}: write the source name, =>, then the target name",
                i + 1
            ));
        };
        let (from, to) = (from.trim(), to.trim());
        if from.is_empty() || to.is_empty() {
            return Err(format!("Line {}: both names are needed", i + 1));
        }
        if from.chars().count() > 500 || to.chars().count() > 500 {
            return Err(format!(
                "Line {}: a name is longer than 500 characters",
                i + 1
            ));
        }
        out.push((from.to_owned(), to.to_owned()));
    }
    Ok(out)
}

/// A size limit in whole megabytes (MB = 1,000,000 bytes); empty means no limit.
pub fn size_limit_mb(raw: &str) -> Result<Option<u64>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<u64>() {
        Ok(0) => Err("The limit must be at least 1 MB, or empty for none".into()),
        Ok(n) if n <= 1_000_000 => Ok(Some(n * 1_000_000)),
        _ => Err("Enter a whole number of megabytes".into()),
    }
}

/// A connection limit: empty for the provider's default, else a whole number from 1 to `max`.
pub fn connection_limit(raw: &str, max: u32) -> Result<Option<u32>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "Enter a whole number from 1 to {max}, or nothing for the default"
        )),
    }
}

/// Days stored passwords are kept without activity: 1 to 365.
pub fn idle_days(raw: &str) -> Result<u32, String> {
    match raw.trim().parse::<u32>() {
        Ok(n) if (1..=365).contains(&n) => Ok(n),
        _ => Err("Enter a whole number of days from 1 to 365".into()),
    }
}

/// A date-and-time input's value (`2027-01-15T18:00`), read as UTC; empty is none.
pub fn utc_time(raw: &str) -> Result<Option<time::OffsetDateTime>, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let full = if t.len() == 16 {
        format!("{t}:00Z")
    } else {
        format!("{t}Z")
    };
    time::OffsetDateTime::parse(&full, &time::format_description::well_known::Rfc3339)
        .map(Some)
        .map_err(|_| "Enter a date and time like 2027-01-15 18:00 (UTC)".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_fields_take_empty_or_a_valid_value() {
        assert_eq!(connection_limit("", 168), Ok(None));
        assert_eq!(connection_limit(" 6 ", 168), Ok(Some(6)));
        assert!(connection_limit("0", 168).is_err() && connection_limit("169", 168).is_err());
        assert_eq!(
            utc_time("2027-01-15T18:00")
                .unwrap()
                .map(|t| t.unix_timestamp()),
            Some(1_800_036_000)
        );
        assert_eq!(utc_time(""), Ok(None));
        assert!(utc_time("15/01/2027").is_err());
        assert_eq!(connection_limit("465", 65535), Ok(Some(465)));
        assert!(connection_limit("70000", 65535).is_err());
    }

    #[test]
    fn a_priority_is_empty_or_zero_to_nine() {
        assert_eq!(priority(""), Ok(0));
        assert_eq!(priority(" 9 "), Ok(9));
        assert!(priority("10").is_err());
        assert!(priority("-1").is_err());
        assert!(priority("high").is_err());
    }

    #[test]
    fn idle_days_are_one_to_a_year() {
        assert_eq!(idle_days(" 30 "), Ok(30));
        assert!(idle_days("0").is_err());
        assert!(idle_days("366").is_err());
        assert!(idle_days("").is_err());
        assert!(idle_days("7.5").is_err());
    }

    #[test]
    fn hosts_follow_the_server_rules() {
        assert!(host("imap.example.com").is_ok());
        assert!(host(" 127.0.0.1 ").is_ok());
        assert!(host("::1").is_ok());
        assert!(host("").is_err());
        assert!(host("imap.example.com:993").is_err());
        assert!(host("bad host").is_err());
        assert!(host("-x.example").is_err());
        assert!(host("a..b").is_err());
    }

    #[test]
    fn ports_are_1_to_65535() {
        assert_eq!(port("993"), Ok(993));
        assert_eq!(port(" 143 "), Ok(143));
        assert!(port("0").is_err());
        assert!(port("65536").is_err());
        assert!(port("abc").is_err());
        assert!(port("").is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(email("ann@old.example").is_ok());
        assert!(email("root@localhost").is_ok());
        assert!(email("bob@old").is_err(), "the server refuses it too");
        assert!(email("ann").is_err());
        assert!(email("@x.example").is_err());
        assert!(email("a b@x.example").is_err());
        assert!(email("a@.example").is_err());
        assert!(optional_email("").is_ok());
        assert!(optional_email("x").is_err());
    }

    #[test]
    fn passwords_names_and_patterns() {
        assert!(password("").is_err());
        assert!(password("x").is_ok());
        assert!(optional_password("").is_ok());
        assert!(optional_password(&"x".repeat(PASSWORD_MAX_BYTES + 1)).is_err());
        assert!(project_name("  ").is_err());
        assert!(project_name("Acme").is_ok());
        assert!(login_pattern("{email}*admin").is_ok());
        assert!(login_pattern(" ").is_err());
        assert!(display_name(&"n".repeat(201)).is_err());
    }

    #[test]
    fn folder_lists_and_maps_parse_line_by_line() {
        assert_eq!(
            folder_patterns("INBOX\n\n  Junk* \n").unwrap(),
            vec!["INBOX".to_owned(), "Junk*".to_owned()]
        );
        assert_eq!(
            folder_map("Old/Stuff => Archive.Stuff\n").unwrap(),
            vec![("Old/Stuff".to_owned(), "Archive.Stuff".to_owned())]
        );
        assert!(folder_map("Old/Stuff").unwrap_err().starts_with("Line 1"));
        assert!(folder_map("\nA =>  ").unwrap_err().starts_with("Line 2"));
    }

    #[test]
    fn size_limits_are_whole_megabytes() {
        assert_eq!(size_limit_mb(""), Ok(None));
        assert_eq!(size_limit_mb("25"), Ok(Some(25_000_000)));
        assert!(size_limit_mb("0").is_err());
        assert!(size_limit_mb("1.5").is_err());
    }
}
