//! The set-up page's HTML, its per-device steps and its stylesheet.

use contract::{DeviceSetup, Security};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};
use time::OffsetDateTime;

use super::files::{email_domain, servers};

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

pub(super) fn is_google(s: &DeviceSetup) -> bool {
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

pub(super) fn service_name(s: &DeviceSetup) -> &str {
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
pub(super) fn token_segment(token: &str) -> String {
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

pub(super) fn expiry(at: OffsetDateTime) -> String {
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
pub(super) const CSS: &str = "\
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
