//! What a server says it can do.

use imap_next::imap_types::response::Capability;

/// A server's capability list, upper-cased (`IMAP4REV1`, `AUTH=PLAIN`, `LITERAL+`, ...).
/// Lookups ignore case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities(Vec<String>);

impl Capabilities {
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Capabilities(
            names
                .into_iter()
                .map(|n| n.as_ref().to_ascii_uppercase())
                .collect(),
        )
    }

    pub(crate) fn from_imap(list: &[Capability<'_>]) -> Self {
        Capabilities::new(list.iter().map(|c| c.to_string()))
    }

    /// Whether the server lists `name` (e.g. `"UIDPLUS"`, `"AUTH=PLAIN"`).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|c| c.eq_ignore_ascii_case(name))
    }

    /// Whether the server offers the SASL mechanism (`"PLAIN"`, `"XOAUTH2"`, ...).
    pub fn has_auth(&self, mechanism: &str) -> bool {
        self.auth_mechanisms()
            .any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    /// The SASL mechanisms from the `AUTH=` entries.
    pub fn auth_mechanisms(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|c| c.strip_prefix("AUTH="))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_auth_entries_are_split() {
        let caps = Capabilities::new([
            "IMAP4rev1",
            "SASL-IR",
            "auth=plain",
            "AUTH=XOAUTH2",
            "LITERAL+",
        ]);
        assert!(caps.has("imap4rev1"));
        assert!(caps.has("LITERAL+"));
        assert!(caps.has_auth("PLAIN"));
        assert!(caps.has_auth("xoauth2"));
        assert!(!caps.has_auth("LOGIN"));
        assert_eq!(
            caps.auth_mechanisms().collect::<Vec<_>>(),
            ["PLAIN", "XOAUTH2"]
        );
    }
}
