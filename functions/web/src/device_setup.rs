//! The device set-up page a user reaches from their cutover mail (`/setup/{token}`), with an
//! Apple configuration profile and a Thunderbird autoconfig file for IMAP accounts.
//!
//! The page is plain server-rendered HTML without JavaScript, so it works in any phone's
//! browser, including the in-app browsers of mail apps, and fits the strict CSP (its styles
//! come from `/setup.css`). Nothing here ever holds a password: the profile names the account
//! and the servers, and the device asks for the password while installing it, so a leaked link
//! or a forwarded file opens nothing. The profile's UUIDs and identifiers are derived from the
//! address, so installing it again replaces the profile instead of adding a second account.
//! Microsoft 365 and Google accounts take no passwords in mail apps at all: for them the page
//! explains how to add the account by signing in, and the two files answer 404.

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use contract::{DeviceSetup, Security};
use domain::AppError;
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use plist::{Dictionary, Value};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiPath;

const HTML: &str = "text/html; charset=utf-8";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/setup.css", get(stylesheet))
        .route("/setup/{token}", get(setup_page))
        .route("/setup/{token}/apple.mobileconfig", get(apple_profile))
        .route("/setup/{token}/thunderbird.xml", get(thunderbird_file))
}

async fn setup_page(State(st): State<Arc<AppState>>, ApiPath(token): ApiPath<String>) -> Response {
    match st.app.device_setup(&token).await {
        Ok(s) => personal(StatusCode::OK, HTML, page(&s, &token)),
        Err(e) => failure(e),
    }
}

async fn apple_profile(
    State(st): State<Arc<AppState>>,
    ApiPath(token): ApiPath<String>,
) -> Response {
    settings_file(st.app.device_setup(&token).await, |s| {
        let name = format!("{}-mail.mobileconfig", file_stem(&s.email));
        download(mobileconfig(s), "application/x-apple-aspen-config", &name)
    })
}

async fn thunderbird_file(
    State(st): State<Arc<AppState>>,
    ApiPath(token): ApiPath<String>,
) -> Response {
    settings_file(st.app.device_setup(&token).await, |s| {
        let xml = thunderbird_autoconfig(s);
        download(xml, "application/xml; charset=utf-8", "config-v1.1.xml")
    })
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// The files exist for IMAP accounts only: a sign-in service takes no server settings.
fn settings_file(
    found: Result<DeviceSetup, AppError>,
    make: impl FnOnce(&DeviceSetup) -> Response,
) -> Response {
    match found {
        Ok(s) if s.web_sign_in.is_some() => {
            let message = format!(
                "Your new mailbox is on {}: mail apps add it when you sign in with {}, so there \
                 is no profile or settings file to install. The set-up page has the steps.",
                service_name(&s),
                s.email
            );
            let body = error_page("No settings file for this account", &message);
            personal(StatusCode::NOT_FOUND, HTML, body)
        }
        Ok(s) => make(&s),
        Err(e) => failure(e),
    }
}

/// A response about one person's account: no cache may keep it.
fn personal(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let body: Body = body.into();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn download(body: impl Into<Body>, content_type: &'static str, filename: &str) -> Response {
    let mut response = personal(StatusCode::OK, content_type, body);
    // Callers pass names made of [A-Za-z0-9._-] only, so this is always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The two failures a person meets get a page they can read; the rest answer like the API.
fn failure(e: AppError) -> Response {
    let (status, title, message) = match e {
        AppError::NotFound(_) => (
            StatusCode::NOT_FOUND,
            "This set-up link is not valid",
            "Check that you opened the whole link from your email. If it still does not work, \
             ask your administrator for a new one.",
        ),
        AppError::InviteExpired => (
            StatusCode::GONE,
            "This set-up link has expired",
            "Ask your administrator for a new one. Your mailbox itself is not affected.",
        ),
        other => {
            let mut response = ApiError::from(other).into_response();
            let no_store = HeaderValue::from_static("no-store");
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, no_store);
            return response;
        }
    };
    personal(status, HTML, error_page(title, message))
}

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

fn string(value: &str) -> Value {
    Value::String(value.to_owned())
}

/// Apple has one "use SSL" flag for both TLS from the start and STARTTLS; the port decides.
fn apple_ssl(security: Security) -> Value {
    Value::Boolean(security != Security::Plaintext)
}

/// A UUID that depends only on the address, so a reinstalled profile replaces the old one.
/// Shaped as a version 4 UUID: Apple only needs it to be unique per profile and payload.
fn stable_uuid(purpose: &str, email: &str) -> String {
    let digest = Sha256::digest(format!("mailferry:{purpose}:{}", email.to_lowercase()));
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    uuid.hyphenated().to_string().to_uppercase()
}

/// `mailferry.mail.` and the address reversed like a domain (`ann@new.example` gives
/// `mailferry.mail.example.new.ann`), each label reduced to [a-z0-9-].
fn identifier(email: &str) -> String {
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
fn file_stem(email: &str) -> String {
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

fn email_domain(email: &str) -> &str {
    email.rsplit_once('@').map_or("", |(_, domain)| domain)
}

/// Incoming, then outgoing: protocol, host, port, security.
fn servers(s: &DeviceSetup) -> [(&'static str, &str, u16, Security); 2] {
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

/// The set-up page for one account.
pub fn page(s: &DeviceSetup, token: &str) -> String {
    let name = s.display_name.trim();
    let who = if name.is_empty() || name == s.email {
        String::new()
    } else {
        format!("<br>{}", text(name))
    };
    let main = match s.web_sign_in.as_deref() {
        Some(url) => sign_in_section(s, url),
        None => imap_section(s, token),
    };
    let body = format!(
        "<h1>Set up your new mailbox</h1>\n\
         <p class=\"address\"><strong>{}</strong>{who}</p>\n{main}\
         <p class=\"muted\">This link works until {}. If you need it later, ask your \
         administrator for a new one.</p>\n",
        text(&s.email),
        expiry(s.link_expires_at)
    );
    document("Set up your new mailbox", &body)
}

/// A page for a link that does not lead to settings.
pub fn error_page(title: &str, message: &str) -> String {
    let body = format!("<h1>{}</h1>\n<p>{}</p>\n", text(title), text(message));
    document(title, &body)
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta name=\"robots\" content=\"noindex\">\n\
         <title>{}</title>\n<link rel=\"stylesheet\" href=\"/setup.css\">\n</head>\n\
         <body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        text(title)
    )
}

fn is_google(s: &DeviceSetup) -> bool {
    let named = [s.service.as_deref(), s.web_sign_in.as_deref()];
    named
        .into_iter()
        .flatten()
        .chain([s.imap_host.as_str()])
        .any(|v| {
            let v = v.to_ascii_lowercase();
            v.contains("google") || v.contains("gmail")
        })
}

fn service_name(s: &DeviceSetup) -> &str {
    match s.service.as_deref() {
        Some(name) => name,
        None if is_google(s) => "Google Workspace",
        None => "Microsoft 365",
    }
}

fn sign_in_section(s: &DeviceSetup, url: &str) -> String {
    // What the account is called in each app's "add account" list.
    let (choice, kind, provider, android) = if is_google(s) {
        ("Google", "Google", "Google", "Google")
    } else {
        (
            "Microsoft Exchange / Outlook.com",
            "Microsoft Exchange",
            "Microsoft",
            "Exchange and Office 365",
        )
    };
    // Only web addresses become links: anything else is shown, never followed.
    let link = if url.starts_with("https://") || url.starts_with("http://") {
        format!(
            "<p><a class=\"button\" href=\"{}\" rel=\"noreferrer\">Open your mailbox on the \
             web</a></p>\n",
            attr(url)
        )
    } else {
        String::new()
    };
    let email = text(&s.email).into_owned();
    let vars = [
        ("{email}", email.as_str()),
        ("{kind}", kind),
        ("{provider}", provider),
        ("{android}", android),
    ];
    format!(
        "<p>Your new mailbox is on {}. Mail apps add it by signing in: choose <strong>{choice}\
         </strong> when adding the account, and sign in with <strong>{email}</strong>. No server \
         settings are needed.</p>\n{link}<p class=\"muted\">Web sign-in: <code>{}</code></p>\n\
         <h2>Step by step</h2>\n{}",
        text(service_name(s)),
        text(url),
        steps_html(SIGN_IN_STEPS, &vars)
    )
}

fn imap_section(s: &DeviceSetup, token: &str) -> String {
    let base = format!("/setup/{}", token_segment(token));
    let email = text(&s.email).into_owned();
    format!(
        "<h2>Your settings</h2>\n{}\n\
         <p><a class=\"button\" href=\"{}\">Install on iPhone, iPad or Mac</a></p>\n\
         <p class=\"muted\">The profile holds only these settings, never a password: your device \
         asks for it while installing. The profile is not signed, so your device may call it \
         unverified.</p>\n\
         <p><a href=\"{}\">Thunderbird settings file</a>: Thunderbird's account set-up finds \
         these settings by itself when your organisation publishes this file as \
         <code>https://autoconfig.{}/mail/config-v1.1.xml</code>; otherwise choose \
         <strong>Configure manually</strong> and enter them by hand.</p>\n\
         <h2>Step by step</h2>\n{}",
        settings_table(s),
        attr(&format!("{base}/apple.mobileconfig")),
        attr(&format!("{base}/thunderbird.xml")),
        text(email_domain(&s.email)),
        steps_html(IMAP_STEPS, &[("{email}", email.as_str())])
    )
}

fn settings_table(s: &DeviceSetup) -> String {
    let mut rows = String::new();
    for (protocol, host, port, security) in servers(s) {
        let direction = if protocol == "IMAP" {
            "Incoming"
        } else {
            "Outgoing"
        };
        let security = match security {
            Security::Tls => "SSL/TLS",
            Security::Starttls => "STARTTLS",
            Security::Plaintext => "None",
        };
        rows.push_str(&format!(
            "<tr><th scope=\"row\">{direction} mail server ({protocol})</th><td><code>{}</code>\
             </td></tr>\n<tr><th scope=\"row\">Port</th><td><code>{port}</code></td></tr>\n\
             <tr><th scope=\"row\">Security</th><td>{security}</td></tr>\n",
            text(host)
        ));
    }
    format!(
        "<table class=\"settings\">\n{rows}\
         <tr><th scope=\"row\">User name (incoming and outgoing)</th><td><code>{}</code></td></tr>\n\
         <tr><th scope=\"row\">Password</th><td>your new mailbox's password (this page never \
         shows or stores one)</td></tr>\n\
         <tr><th scope=\"row\">Authentication</th><td>normal password; the outgoing server \
         needs the same user name and password</td></tr>\n</table>",
        text(&s.email)
    )
}

/// Steps as one collapsible block per device (`<details>` opens without script). In `steps`,
/// a line starting with `# ` names a device and every other line is one step, HTML written
/// here; `vars` replace placeholders with text that is already escaped.
fn steps_html(steps: &str, vars: &[(&str, &str)]) -> String {
    let mut html = String::new();
    for line in steps.lines() {
        if let Some(device) = line.strip_prefix("# ") {
            if !html.is_empty() {
                html.push_str("</ol>\n</details>\n");
            }
            html.push_str(&format!("<details>\n<summary>{device}</summary>\n<ol>\n"));
        } else {
            let step = vars.iter().fold(line.to_owned(), |step, &(name, value)| {
                step.replace(name, value)
            });
            html.push_str(&format!("<li>{step}</li>\n"));
        }
    }
    if !html.is_empty() {
        html.push_str("</ol>\n</details>\n");
    }
    html
}

/// Characters outside the URL-safe base64 alphabet of tokens are percent-encoded, so the
/// segment never turns into another path or a query.
fn token_segment(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    for b in token.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn expiry(at: OffsetDateTime) -> String {
    let t = at.to_offset(time::UtcOffset::UTC);
    let (month, day, hour, minute) = (u8::from(t.month()), t.day(), t.hour(), t.minute());
    format!(
        "{:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC",
        t.year()
    )
}

const IMAP_STEPS: &str = "\
# iPhone or iPad
Open this page in Safari and tap <strong>Install on iPhone, iPad or Mac</strong>.
When Safari asks to download a configuration profile, tap <strong>Allow</strong>, then <strong>Close</strong>.
Open <strong>Settings</strong> and tap <strong>Profile Downloaded</strong> near the top (or Settings → General → VPN &amp; Device Management).
Tap <strong>Install</strong>, enter the device passcode if asked, and confirm.
Enter your new mailbox's password when asked, then tap <strong>Done</strong>.
Without the profile: Settings → Apps → Mail → Mail Accounts → Add Account → Other → Add Mail Account (iOS 17 and earlier: Settings → Mail → Accounts → Add Account → Other). Enter your name, {email} and your password, tap Next, choose IMAP and enter the servers and user name from the table.
# Mac (Mail)
Click <strong>Install on iPhone, iPad or Mac</strong> on the Mac; the profile is saved in Downloads.
Open the downloaded profile. macOS says to review it in System Settings.
Open System Settings → Privacy &amp; Security → Profiles (macOS 15 and later: System Settings → General → Device Management), double-click the profile and click <strong>Install</strong>.
Enter your new mailbox's password when asked. The account then appears in Mail.
Without the profile: in Mail choose Mail → Add Account → Other Mail Account, enter your name, {email} and your password, and the servers from the table when Mail asks.
# Outlook for Windows
Choose <strong>File → Add Account</strong>.
Enter {email}, open <strong>Advanced options</strong>, tick <strong>Let me set up my account manually</strong> and click <strong>Connect</strong>.
Choose <strong>IMAP</strong>.
Enter the incoming and outgoing servers, ports and security (encryption method) from the table and click <strong>Next</strong>.
Enter your new mailbox's password and click <strong>Connect</strong>.
# Android (Gmail app)
Open the Gmail app and go to <strong>Settings → Add account</strong>.
Choose <strong>Other</strong>, enter {email} and tap <strong>Manual setup</strong>.
Choose <strong>Personal (IMAP)</strong> and enter your new mailbox's password.
Enter the incoming server settings from the table (user name {email}), then the outgoing ones, and tap <strong>Next</strong>.
# Thunderbird
Open the menu ≡ → <strong>New Account → Email</strong> (or Account Settings → Account Actions → Add Mail Account).
Enter your name, {email} and your new mailbox's password, and click <strong>Continue</strong>.
If Thunderbird finds the settings, check them against the table and click <strong>Done</strong>.
Otherwise click <strong>Configure manually</strong>, enter the settings from the table (authentication: normal password) and click <strong>Done</strong>.
";

const SIGN_IN_STEPS: &str = "\
# iPhone or iPad
Open Settings → Apps → Mail → Mail Accounts → Add Account (iOS 17 and earlier: Settings → Mail → Accounts → Add Account).
Choose <strong>{kind}</strong>, enter {email} and sign in with {provider}.
# Mac (Mail)
In Mail, choose <strong>Mail → Add Account</strong>, then <strong>{kind}</strong>.
Sign in with {email} in the {provider} window that opens.
# Outlook for Windows
Choose <strong>File → Add Account</strong>.
Enter {email}, click <strong>Connect</strong> and sign in with {provider} in the window that opens.
# Android (Gmail app)
Open the Gmail app and go to <strong>Settings → Add account → {android}</strong>.
Sign in with {email}.
# Thunderbird
Open the menu ≡ → <strong>New Account → Email</strong>.
Enter your name and {email}, leave the password empty and click <strong>Continue</strong>.
Keep the settings Thunderbird finds (authentication OAuth2), click <strong>Done</strong> and sign in with {provider}.
";

/// Readable from a 360 px phone to a desktop: one column of at most 40em, a settings table
/// whose rows stack on narrow screens, and buttons and device headings at least 48 px high.
const CSS: &str = "\
:root { color-scheme: light dark; --accent: #0b57d0; --line: #8885; }
* { box-sizing: border-box; }
body { margin: 0; font: 1.0625rem/1.5 system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif; }
main { max-width: 40em; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; line-height: 1.2; margin: 0.75rem 0; }
h2 { font-size: 1.25rem; margin: 2rem 0 0.75rem; }
a { color: var(--accent); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.95em; }
p, li, td, code { overflow-wrap: anywhere; }
.address { font-size: 1.15rem; }
.muted { opacity: 0.8; font-size: 0.95rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.5rem; border-bottom: 1px solid var(--line); }
th { font-weight: 600; width: 45%; }
.button { display: inline-block; min-height: 3rem; max-width: 100%; padding: 0.75rem 1.25rem;
  border-radius: 0.5rem; background: var(--accent); color: #fff; font-weight: 600;
  text-decoration: none; text-align: center; }
.button:focus-visible, summary:focus-visible { outline: 3px solid #f90; outline-offset: 2px; }
details { border: 1px solid var(--line); border-radius: 0.5rem; margin: 0.5rem 0; }
summary { cursor: pointer; min-height: 3rem; padding: 0.75rem 1rem; font-weight: 600; }
details ol { margin: 0; padding: 0 1rem 1rem 2.25rem; }
li { margin: 0.35rem 0; }
@media (max-width: 30em) {
  th, td { display: block; width: auto; }
  th { border-bottom: 0; padding-bottom: 0; }
  .button { display: block; }
}
@media (prefers-color-scheme: dark) { :root { --accent: #8ab4f8; } .button { color: #111; } }
";

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use quick_xml::Reader;
    use time::macros::datetime;

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
}
