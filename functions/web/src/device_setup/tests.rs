//! The set-up page's files and HTML, read back as a device would.

use std::collections::HashMap;

use quick_xml::Reader;
use time::macros::datetime;

use contract::Security;
use plist::{Dictionary, Value};
use quick_xml::events::Event;

use super::files::*;
use super::page::*;
use super::*;

const TOKEN: &str = "AbC_-0123456789abcdefghijklmnopqrstuvwxyzAB";

fn sample() -> DeviceSetup {
    DeviceSetup {
        email: "ann@new.example".into(),
        display_name: "Ann Lee".into(),
        imap_host: "imap.new.example".into(),
        imap_port: 993,
        imap_security: Security::Tls,
        smtp_host: "smtp.new.example".into(),
        smtp_port: 587,
        smtp_security: Security::Starttls,
        web_sign_in: None,
        service: None,
        link_expires_at: datetime!(2030-01-02 5:04 +2),
    }
}

fn profile(s: &DeviceSetup) -> Dictionary {
    let value = Value::from_reader_xml(mobileconfig(s).as_slice()).expect("an XML plist");
    value.into_dictionary().expect("a dictionary")
}

fn account(top: &Dictionary) -> &Dictionary {
    let content = top["PayloadContent"].as_array().expect("an array");
    assert_eq!(content.len(), 1);
    content[0].as_dictionary().expect("a dictionary")
}

#[test]
fn mobileconfig_describes_the_imap_account() {
    let top = profile(&sample());
    for (key, want) in [
        ("PayloadType", string("Configuration")),
        ("PayloadVersion", Value::from(1_i64)),
        ("PayloadRemovalDisallowed", Value::from(false)),
        ("PayloadDisplayName", string("Mail: ann@new.example")),
        (
            "PayloadIdentifier",
            string("mailferry.mail.example.new.ann"),
        ),
    ] {
        assert_eq!(top.get(key), Some(&want), "{key}");
    }
    let email = string("ann@new.example");
    for (key, want) in [
        ("PayloadType", string("com.apple.mail.managed")),
        ("PayloadVersion", Value::from(1_i64)),
        ("EmailAccountType", string("EmailTypeIMAP")),
        ("EmailAccountName", string("Ann Lee")),
        ("EmailAddress", email.clone()),
        ("IncomingMailServerHostName", string("imap.new.example")),
        ("IncomingMailServerPortNumber", Value::from(993_i64)),
        ("IncomingMailServerUseSSL", Value::from(true)),
        ("IncomingMailServerUsername", email.clone()),
        (
            "IncomingMailServerAuthentication",
            string("EmailAuthPassword"),
        ),
        ("OutgoingMailServerHostName", string("smtp.new.example")),
        ("OutgoingMailServerPortNumber", Value::from(587_i64)),
        ("OutgoingMailServerUseSSL", Value::from(true)),
        ("OutgoingMailServerUsername", email),
        ("OutgoingPasswordSameAsIncomingPassword", Value::from(true)),
    ] {
        assert_eq!(account(&top).get(key), Some(&want), "{key}");
    }
    let plain = DeviceSetup {
        imap_security: Security::Plaintext,
        ..sample()
    };
    let plain = profile(&plain);
    let ssl = account(&plain).get("IncomingMailServerUseSSL");
    assert_eq!(ssl, Some(&Value::from(false)));
}

fn all_keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Dictionary(d) => d.iter().for_each(|(k, v)| {
            out.push(k.clone());
            all_keys(v, out);
        }),
        Value::Array(items) => items.iter().for_each(|v| all_keys(v, out)),
        _ => {}
    }
}

#[test]
fn mobileconfig_never_holds_a_password() {
    let mut keys = Vec::new();
    all_keys(&Value::Dictionary(profile(&sample())), &mut keys);
    assert!(keys.len() > 25, "{keys:?}");
    keys.retain(|k| k.contains("Password") && k != "OutgoingPasswordSameAsIncomingPassword");
    assert!(keys.is_empty(), "{keys:?}");
}

#[test]
fn mobileconfig_uuids_depend_only_on_the_address() {
    let uuids = |s: &DeviceSetup| {
        let top = profile(s);
        let get = |d: &Dictionary| d["PayloadUUID"].as_string().unwrap().to_owned();
        (get(&top), get(account(&top)))
    };
    let (top, acc) = uuids(&sample());
    assert_eq!(uuids(&sample()), (top.clone(), acc.clone()));
    assert_ne!(top, acc);
    assert!(uuid::Uuid::parse_str(&top).is_ok());
    assert_eq!(top, top.to_uppercase());
    let (top2, acc2) = uuids(&DeviceSetup {
        email: "bob@new.example".into(),
        ..sample()
    });
    assert!(top2 != top && acc2 != acc);
}

/// The text of every element by its path, with the `type` attribute in brackets.
fn autoconfig_values(xml: &str) -> HashMap<String, String> {
    let mut reader = Reader::from_str(xml);
    let (mut path, mut raw) = (Vec::<String>::new(), HashMap::<String, String>::new());
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                let name = e.name().into_inner().to_owned();
                match e.try_get_attribute("type").unwrap() {
                    Some(kind) => path.push(format!("{name}[{}]", kind.value)),
                    None => path.push(name),
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                raw.entry(path.join("/")).or_default().push_str(&text);
            }
            // Entities come as events of their own; keep them to unescape below.
            Event::GeneralRef(r) => {
                let entity = format!("&{};", r.into_inner());
                raw.entry(path.join("/")).or_default().push_str(&entity);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let unescape = |v: &str| quick_xml::escape::unescape(v).unwrap().into_owned();
    raw.into_iter().map(|(k, v)| (k, unescape(&v))).collect()
}

#[test]
fn thunderbird_autoconfig_names_both_servers() {
    let xml = thunderbird_autoconfig(&sample());
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(xml.contains("<emailProvider id=\"new.example\">"));
    let v = autoconfig_values(&xml);
    let get = |path: &str| v[&format!("clientConfig/emailProvider/{path}")].as_str();
    assert_eq!(get("domain"), "new.example");
    assert_eq!(get("incomingServer[imap]/hostname"), "imap.new.example");
    assert_eq!(get("incomingServer[imap]/port"), "993");
    assert_eq!(get("incomingServer[imap]/socketType"), "SSL");
    assert_eq!(get("incomingServer[imap]/username"), "%EMAILADDRESS%");
    assert_eq!(get("outgoingServer[smtp]/hostname"), "smtp.new.example");
    assert_eq!(get("outgoingServer[smtp]/port"), "587");
    assert_eq!(get("outgoingServer[smtp]/socketType"), "STARTTLS");
    assert_eq!(
        get("outgoingServer[smtp]/authentication"),
        "password-cleartext"
    );
}

#[test]
fn markup_in_names_is_escaped() {
    let hostile = "Ann <script>alert(1)</script> & Co";
    let s = DeviceSetup {
        display_name: hostile.into(),
        service: Some(hostile.into()),
        ..sample()
    };
    let html = page(&s, TOKEN);
    assert!(!html.contains("<script"));
    assert!(html.contains("Ann &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"));

    // The file is for the whole domain: it carries the service's name, never the person's.
    let xml = thunderbird_autoconfig(&s);
    assert!(!xml.contains("<script") && !xml.contains("& Co"));
    let v = autoconfig_values(&xml);
    assert_eq!(v["clientConfig/emailProvider/displayName"], hostile);

    let error = error_page("<b>", "a & b");
    assert!(error.contains("<title>&lt;b&gt;</title>") && error.contains("a &amp; b"));
}

#[test]
fn imap_page_shows_settings_files_and_expiry() {
    let html = page(&sample(), TOKEN);
    let profile_link = format!("href=\"/setup/{TOKEN}/apple.mobileconfig\"");
    let thunderbird_link = format!("href=\"/setup/{TOKEN}/thunderbird.xml\"");
    for part in [
        "<html lang=\"en\">",
        "width=device-width, initial-scale=1",
        "href=\"/setup.css\"",
        "<h1>Set up your new mailbox</h1>",
        profile_link.as_str(),
        thunderbird_link.as_str(),
        "https://autoconfig.new.example/mail/config-v1.1.xml",
        "<code>imap.new.example</code>",
        "<code>993</code>",
        "SSL/TLS",
        "STARTTLS",
        "2030-01-02 03:04 UTC",
    ] {
        assert!(html.contains(part), "{part}");
    }
    assert!(!html.contains("style=") && !html.contains("<style") && !html.contains("<script"));
}

#[test]
fn sign_in_page_has_no_files_and_names_the_sign_in() {
    let s = DeviceSetup {
        imap_host: "outlook.office365.com".into(),
        web_sign_in: Some("https://outlook.office.com/mail/".into()),
        service: Some("Microsoft 365".into()),
        ..sample()
    };
    let html = page(&s, TOKEN);
    assert!(!html.contains("mobileconfig") && !html.contains("thunderbird.xml"));
    assert!(html.contains("href=\"https://outlook.office.com/mail/\""));
    assert!(html.contains("Your new mailbox is on Microsoft 365."));
    assert!(html.contains("choose <strong>Microsoft Exchange / Outlook.com</strong>"));
    assert!(html.contains("No server settings are needed.") && !html.contains("{kind}"));

    let google = DeviceSetup {
        web_sign_in: Some("javascript:alert(1)".into()),
        service: Some("Google Workspace".into()),
        ..s
    };
    let html = page(&google, TOKEN);
    assert!(html.contains("choose <strong>Google</strong>"));
    assert!(!html.contains("href=\"javascript:"));
}

#[test]
fn tokens_file_names_and_identifiers_stay_in_their_alphabet() {
    assert_eq!(token_segment("a/b?c"), "a%2Fb%3Fc");
    assert_eq!(token_segment(TOKEN), TOKEN);
    assert_eq!(file_stem("..ann \"x\"@new.example"), "ann__x_");
    assert_eq!(file_stem("@new.example"), "mail");
    let id = identifier("Ann.Lee@New.Example");
    assert_eq!(id, "mailferry.mail.example.new.ann-lee");
    assert_eq!(
        expiry(datetime!(2030-12-31 23:59:59 UTC)),
        "2030-12-31 23:59 UTC"
    );
}
