//! The two settings files of the set-up page: an Apple configuration profile and a Thunderbird
//! autoconfig file, each written by a library (plist, quick-xml) so escaping is never ours.

use std::io;

use contract::{DeviceSetup, Security};
use plist::{Dictionary, Value};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use sha2::{Digest, Sha256};

/// An Apple configuration profile (XML property list) with one IMAP mail account. It has no
/// password keys: the device asks for the password while installing the profile.
pub fn mobileconfig(s: &DeviceSetup) -> Vec<u8> {
    let id = identifier(&s.email);
    let title = format!("Mail: {}", s.email);
    let name = match s.display_name.trim() {
        "" => s.email.as_str(),
        name => name,
    };
    let password_auth = string("EmailAuthPassword");
    let account: Dictionary = [
        ("PayloadType", string("com.apple.mail.managed")),
        ("PayloadVersion", Value::from(1_i64)),
        ("PayloadIdentifier", Value::from(format!("{id}.account"))),
        ("PayloadUUID", Value::from(stable_uuid("account", &s.email))),
        ("PayloadDisplayName", string(&title)),
        ("EmailAccountDescription", string(&s.email)),
        ("EmailAccountName", string(name)),
        ("EmailAccountType", string("EmailTypeIMAP")),
        ("EmailAddress", string(&s.email)),
        ("IncomingMailServerHostName", string(&s.imap_host)),
        ("IncomingMailServerPortNumber", Value::from(s.imap_port)),
        ("IncomingMailServerUseSSL", apple_ssl(s.imap_security)),
        ("IncomingMailServerUsername", string(&s.email)),
        ("IncomingMailServerAuthentication", password_auth.clone()),
        ("OutgoingMailServerHostName", string(&s.smtp_host)),
        ("OutgoingMailServerPortNumber", Value::from(s.smtp_port)),
        ("OutgoingMailServerUseSSL", apple_ssl(s.smtp_security)),
        ("OutgoingMailServerUsername", string(&s.email)),
        ("OutgoingMailServerAuthentication", password_auth),
        ("OutgoingPasswordSameAsIncomingPassword", Value::from(true)),
    ]
    .into_iter()
    .collect();
    let description = format!(
        "Mail server settings for {}, without a password: the device asks for it while \
         installing.",
        s.email
    );
    let profile: Dictionary = [
        ("PayloadType", string("Configuration")),
        ("PayloadVersion", Value::from(1_i64)),
        ("PayloadIdentifier", Value::from(id)),
        ("PayloadUUID", Value::from(stable_uuid("profile", &s.email))),
        ("PayloadDisplayName", Value::from(title)),
        ("PayloadDescription", Value::from(description)),
        ("PayloadRemovalDisallowed", Value::from(false)),
        ("PayloadContent", Value::Array(vec![account.into()])),
    ]
    .into_iter()
    .collect();
    let mut out = Vec::new();
    Value::Dictionary(profile)
        .to_writer_xml(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

pub(super) fn string(value: &str) -> Value {
    Value::String(value.to_owned())
}

/// Apple has one "use SSL" flag for both TLS from the start and STARTTLS; the port decides.
fn apple_ssl(security: Security) -> Value {
    Value::Boolean(security != Security::Plaintext)
}

/// A UUID that depends only on the address, so a reinstalled profile replaces the old one.
/// Shaped as a version 4 UUID: Apple only needs it to be unique per profile and payload.
pub(super) fn stable_uuid(purpose: &str, email: &str) -> String {
    let digest = Sha256::digest(format!("mailferry:{purpose}:{}", email.to_lowercase()));
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    uuid.hyphenated().to_string().to_uppercase()
}

/// `mailferry.mail.` and the address reversed like a domain (`ann@new.example` gives
/// `mailferry.mail.example.new.ann`), each label reduced to [a-z0-9-].
pub(super) fn identifier(email: &str) -> String {
    let (local, domain) = email.rsplit_once('@').unwrap_or((email, ""));
    let labels: Vec<String> = domain
        .rsplit('.')
        .chain([local])
        .filter(|label| !label.is_empty())
        .map(|label| {
            let keep = |c: char| c.is_ascii_alphanumeric() || c == '-';
            let label = label.chars().map(|c| if keep(c) { c } else { '-' });
            label.collect::<String>().to_ascii_lowercase()
        })
        .collect();
    format!("mailferry.mail.{}", labels.join("."))
}

/// The address's local part as a file name: [A-Za-z0-9._-] only, never hidden.
pub(super) fn file_stem(email: &str) -> String {
    let local = email.rsplit_once('@').map_or(email, |(local, _)| local);
    let keep = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let clean: String = local
        .chars()
        .map(|c| if keep(c) { c } else { '_' })
        .collect();
    match clean.trim_start_matches('.') {
        "" => "mail".to_owned(),
        stem => stem.to_owned(),
    }
}

pub(super) fn email_domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, domain)| domain)
}

/// Incoming, then outgoing: protocol, host, port, security.
pub(super) fn servers(s: &DeviceSetup) -> [(&'static str, &str, u16, Security); 2] {
    [
        ("IMAP", s.imap_host.as_str(), s.imap_port, s.imap_security),
        ("SMTP", s.smtp_host.as_str(), s.smtp_port, s.smtp_security),
    ]
}

/// Mozilla's autoconfig file (clientConfig 1.1). It is meant to be published for the whole
/// domain, so it names no person: the user name is Thunderbird's `%EMAILADDRESS%`
/// placeholder for the address typed in (the full address is the login name).
pub fn thunderbird_autoconfig(s: &DeviceSetup) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    write_autoconfig(&mut writer, s).expect("writing to a Vec cannot fail");
    String::from_utf8(writer.into_inner()).expect("quick-xml writes UTF-8")
}

fn write_autoconfig(w: &mut Writer<Vec<u8>>, s: &DeviceSetup) -> io::Result<()> {
    let domain = email_domain(&s.email);
    let display_name = match &s.service {
        Some(service) => service.clone(),
        None => format!("Mail at {domain}"),
    };
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let provider = |w: &mut Writer<Vec<u8>>| -> io::Result<()> {
        leaf(w, "domain", domain)?;
        leaf(w, "displayName", &display_name)?;
        leaf(w, "displayShortName", domain)?;
        for (protocol, host, port, security) in servers(s) {
            let (element, kind) = match protocol {
                "IMAP" => ("incomingServer", "imap"),
                _ => ("outgoingServer", "smtp"),
            };
            let socket_type = match security {
                Security::Tls => "SSL",
                Security::Starttls => "STARTTLS",
                Security::Plaintext => "plain",
            };
            w.create_element(element)
                .with_attribute(("type", kind))
                .write_inner_content(|w| {
                    leaf(w, "hostname", host)?;
                    leaf(w, "port", &port.to_string())?;
                    leaf(w, "socketType", socket_type)?;
                    leaf(w, "username", "%EMAILADDRESS%")?;
                    leaf(w, "authentication", "password-cleartext")
                })?;
        }
        Ok(())
    };
    w.create_element("clientConfig")
        .with_attribute(("version", "1.1"))
        .write_inner_content(|w| {
            let element = w.create_element("emailProvider");
            element
                .with_attribute(("id", domain))
                .write_inner_content(provider)?;
            Ok(())
        })?;
    Ok(())
}

fn leaf(w: &mut Writer<Vec<u8>>, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}
