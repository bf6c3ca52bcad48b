//! IMAP's modified UTF-7 for mailbox names (RFC 3501 section 5.1.3): printable ASCII stands
//! for itself (with `&` written `&-`), everything else is UTF-16 in a base64 variant between
//! `&` and `-`.

use base64::Engine as _;
use base64::alphabet::IMAP_MUTF7;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const ENGINE: GeneralPurpose = GeneralPurpose::new(
    &IMAP_MUTF7,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(false),
);

/// Encodes a UTF-8 mailbox name for the wire (`Entwürfe` → `Entw&APw-rfe`).
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for ch in name.chars() {
        if (' '..='~').contains(&ch) {
            flush(&mut pending, &mut out);
            if ch == '&' {
                out.push_str("&-");
            } else {
                out.push(ch);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(ch.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

fn flush(pending: &mut Vec<u16>, out: &mut String) {
    if pending.is_empty() {
        return;
    }
    let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    out.push_str(&ENGINE.encode(bytes));
    out.push('-');
    pending.clear();
}

/// Decodes a mailbox name from the wire; `None` when it is not valid modified UTF-7 (some
/// servers send raw UTF-8 or other bytes; callers then keep the name as it came).
pub fn decode(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find('&') {
        let (plain, tail) = rest.split_at(start);
        check_plain(plain)?;
        out.push_str(plain);
        let tail = &tail[1..];
        let end = tail.find('-')?;
        let encoded = &tail[..end];
        if encoded.is_empty() {
            out.push('&');
        } else {
            let bytes = ENGINE.decode(encoded).ok()?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            let text = String::from_utf16(&units).ok()?;
            // Printable ASCII must not be encoded (RFC 3501: "MUST NOT be used to represent
            // any printing US-ASCII character which can represent itself").
            if text.chars().any(|c| (' '..='~').contains(&c)) {
                return None;
            }
            out.push_str(&text);
        }
        rest = &tail[end + 1..];
    }
    check_plain(rest)?;
    out.push_str(rest);
    Some(out)
}

fn check_plain(text: &str) -> Option<()> {
    text.chars().all(|c| (' '..='~').contains(&c)).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc_examples_and_umlauts() {
        for (utf8, wire) in [
            ("INBOX", "INBOX"),
            ("Entwürfe", "Entw&APw-rfe"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("A&B", "A&-B"),
            ("Ärger/Überweisungen", "&AMQ-rger/&ANw-berweisungen"),
            ("Emoji 📬", "Emoji &2D3c7A-"),
        ] {
            assert_eq!(encode(utf8), wire, "{utf8}");
            assert_eq!(decode(wire).as_deref(), Some(utf8), "{wire}");
        }
    }

    #[test]
    fn invalid_input_is_refused() {
        assert_eq!(decode("&Jjo"), None, "unterminated");
        assert_eq!(decode("&AGE-"), None, "encoded ASCII");
        assert_eq!(decode("Entwürfe"), None, "raw 8-bit");
        assert_eq!(decode("&AP-"), None, "odd byte count");
    }
}
