//! The web console and the end user's credential page in a real browser: Debian's headless
//! Chromium driven through chromedriver (WebDriver, fantoccini) against the local server
//! (`spawn_app`, serving the built frontend from `MAILFERRY_FRONTEND_DIST`) and real Dovecot
//! source and target servers.
//!
//! One scenario walks the whole path a migration takes: the admin signs in, creates a project
//! in the form (with a connection test), uploads a CSV (first a wrong one, then a right one),
//! starts users, copies an invite link from the outbox; the user opens it, types a wrong and
//! then the right password with the keyboard only, and follows the copy to Completed; the admin
//! reads the verification report. Every page is saved as a screenshot under
//! `target/browser-screenshots/`, any SEVERE entry in the browser console fails the test (bar the
//! HTTP errors a step provokes on purpose), and the time from navigation start to each page's
//! main heading is printed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use integration_tests::corpus::test_corpus;
use integration_tests::{ADMIN_PASSWORD, TestApp, spawn_app};
use serde_json::{Value, json};
use testbed::{Dovecot, DovecotOptions, SpecialFolder};

const SOURCE_PW: &str = "ann-source-pw";
const MASTER_PW: &str = "target-master-pw";
/// How long a page gets to show what a step waits for.
const WAIT: Duration = Duration::from_secs(20);
const TAB: char = '\u{e004}';
const ENTER: char = '\u{e007}';

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_path_buf()
}

/// The built frontend `spawn_app` serves. `cargo xtask test` builds it and sets the variable.
pub(crate) fn require_frontend_dist() -> PathBuf {
    match std::env::var_os("MAILFERRY_FRONTEND_DIST").map(PathBuf::from) {
        Some(dist) if dist.join("index.html").is_file() => dist,
        Some(dist) => panic!(
            "MAILFERRY_FRONTEND_DIST={} has no index.html: build the frontend with `cargo xtask \
             frontend` (`cargo xtask test` builds it before the tests)",
            dist.display()
        ),
        None => panic!(
            "MAILFERRY_FRONTEND_DIST is not set, so the server has no web console to test. Run \
             `cargo xtask test`, or `cargo xtask frontend` and then the tests with \
             MAILFERRY_FRONTEND_DIST={}",
            repo_root().join("frontend").join("dist").display()
        ),
    }
}

fn program(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `POST /session/{id}/se/log {"type": "browser"}`: chromedriver's console log, drained on read.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

/// `POST /session/{id}/goog/cdp/execute`: one Chrome DevTools Protocol command.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()),
        )
    }
}

/// Runs in every page before the app's own scripts: records each change of the main heading
/// with its time since navigation start, for the first-render figures.
const HEADING_RECORDER: &str = r#"
    window.__mfHeadings = [];
    new MutationObserver(() => {
        const h = document.querySelector('h1');
        const text = h ? h.textContent : '';
        const last = window.__mfHeadings[window.__mfHeadings.length - 1];
        if (text && (!last || last[1] !== text)) {
            window.__mfHeadings.push([performance.now(), text]);
        }
    }).observe(document, { subtree: true, childList: true, characterData: true });
"#;

/// An HTTP error a step provokes on purpose: the browser logs it as SEVERE, and it is expected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected {
    url_part: &'static str,
    status: u16,
}

/// A headless Chromium under chromedriver, with the screenshots and console record of one run.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    shot_no: u32,
    width: u32,
    height: u32,
    pub(crate) console: Vec<String>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // `close` ends the WebDriver session, which quits Chromium; chromedriver is ours to stop.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    pub(crate) async fn start(width: u32, height: u32) -> Result<Browser> {
        Browser::start_in(width, height, "").await
    }

    /// A browser whose screenshots go to `target/browser-screenshots/<dir>` (each test its
    /// own, since a start clears the folder's earlier screenshots).
    pub(crate) async fn start_in(width: u32, height: u32, dir: &str) -> Result<Browser> {
        let chromium = program("CHROMIUM", "/usr/bin/chromium");
        let chromedriver = program("CHROMEDRIVER", "/usr/bin/chromedriver");
        ensure!(
            chromium.exists() && chromedriver.exists(),
            "Chromium ({}) or chromedriver ({}) is missing: `cargo xtask test` installs them \
             (apt-get install chromium chromium-driver)",
            chromium.display(),
            chromedriver.display()
        );
        let profile = tempfile::tempdir()?;
        let port = free_port()?;
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                profile.path().join("chromedriver.log").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", chromedriver.display()))?;
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().join("profile").display()),
                    format!("--window-size={width},{height}"),
                    "--lang=en-GB",
                ],
            }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let url = format!("http://127.0.0.1:{port}/");
        let until = Instant::now() + Duration::from_secs(30);
        // chromedriver needs a moment before it listens: retry until it answers.
        let client = loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() > until => {
                    let log = std::fs::read_to_string(profile.path().join("chromedriver.log"))
                        .unwrap_or_default();
                    bail!(
                        "no WebDriver session from chromedriver at {url}: {e}\n{}",
                        tail(&log, 30)
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        let shots = repo_root()
            .join("target")
            .join("browser-screenshots")
            .join(dir);
        std::fs::create_dir_all(&shots)?;
        // Screenshots of an earlier run would mix with this run's numbering.
        for entry in std::fs::read_dir(&shots)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "png") {
                std::fs::remove_file(path)?;
            }
        }
        Ok(Browser {
            client,
            driver,
            _profile: profile,
            shots,
            shot_no: 0,
            width,
            height,
            console: Vec::new(),
        })
    }

    pub(crate) async fn goto(&self, url: &str) -> Result<()> {
        self.client.goto(url).await?;
        Ok(())
    }

    /// Reads the console entries since the last call; fails on a SEVERE one unless it is an
    /// expected HTTP error of this step.
    pub(crate) async fn check_console(&mut self, step: &str, expected: &[Expected]) -> Result<()> {
        self.check_console_but(step, expected, &[]).await
    }

    /// [`Browser::check_console`], leaving out entries that mention one of `others` (pages of
    /// another site the step visits, such as an OAuth provider's, and what they load).
    pub(crate) async fn check_console_but(
        &mut self,
        step: &str,
        expected: &[Expected],
        others: &[&str],
    ) -> Result<()> {
        let entries = self.client.issue_cmd(BrowserLog).await?;
        let mut severe = Vec::new();
        for e in entries.as_array().into_iter().flatten() {
            let level = e["level"].as_str().unwrap_or("");
            let message = e["message"].as_str().unwrap_or("");
            self.console.push(format!("[{step}] {level} {message}"));
            let allowed = expected.iter().any(|x| {
                message.contains(x.url_part) && message.contains(&format!("status of {}", x.status))
            });
            let elsewhere = others.iter().any(|o| message.contains(o));
            if level == "SEVERE" && !allowed && !elsewhere {
                severe.push(message.to_owned());
            }
        }
        ensure!(
            severe.is_empty(),
            "SEVERE browser console entries during '{step}':\n{}",
            severe.join("\n")
        );
        Ok(())
    }

    pub(crate) async fn js(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        Ok(self.client.execute(script, args).await?)
    }

    /// Saves the whole page: scrolled to the top, the window stretched to the page's height.
    pub(crate) async fn screenshot(&mut self, name: &str) -> Result<PathBuf> {
        let sizes = self
            .js(
                "window.scrollTo(0, 0);
                 return [Math.ceil(document.documentElement.scrollHeight),
                         window.outerHeight - window.innerHeight];",
                vec![],
            )
            .await?;
        let page = sizes[0].as_u64().unwrap_or(u64::from(self.height)) as u32;
        let chrome = sizes[1].as_u64().unwrap_or(0) as u32;
        let full = (page + chrome).clamp(self.height, 6000);
        self.client.set_window_size(self.width, full).await?;
        // Let the layout settle at the new size.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let png = self.client.screenshot().await?;
        self.client.set_window_size(self.width, self.height).await?;
        self.shot_no += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.shot_no));
        std::fs::write(&path, png)?;
        Ok(path)
    }

    pub(crate) async fn resize(&mut self, width: u32, height: u32) -> Result<()> {
        self.width = width;
        self.height = height;
        self.client.set_window_size(width, height).await?;
        Ok(())
    }

    /// Some element matching `css` whose text contains `text` (wasm renders asynchronously, and
    /// polled pages change under the test).
    pub(crate) async fn wait_text(&self, css: &str, text: &str) -> Result<Element> {
        self.wait_text_for(css, text, WAIT).await
    }

    pub(crate) async fn wait_text_for(
        &self,
        css: &str,
        text: &str,
        timeout: Duration,
    ) -> Result<Element> {
        let until = Instant::now() + timeout;
        loop {
            for e in self.client.find_all(Locator::Css(css)).await? {
                if e.text().await.is_ok_and(|t| t.contains(text)) {
                    return Ok(e);
                }
            }
            if Instant::now() > until {
                let h1 = match self.client.find(Locator::Css("h1")).await {
                    Ok(h) => h.text().await.unwrap_or_default(),
                    Err(_) => "(no h1)".into(),
                };
                let body = match self.client.find(Locator::Css("main")).await {
                    Ok(m) => m.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                bail!(
                    "no `{css}` containing {text:?} after {timeout:?} on {} (h1: {h1:?}); the page says:\n{}",
                    self.client.current_url().await?,
                    tail(&body, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn wait_heading(&self, text: &str) -> Result<Element> {
        self.wait_text("h1", text).await
    }

    pub(crate) async fn wait_css(&self, css: &str) -> Result<Element> {
        self.wait_text(css, "").await
    }

    /// Types into the input `css` after emptying it. Emptying goes through an `input` event, as
    /// when a person deletes the text: WebDriver's Clear does not send one, and the page's state
    /// (which every input mirrors) would not learn of it.
    pub(crate) async fn fill(&self, css: &str, value: &str) -> Result<()> {
        let input = self.wait_css(css).await?;
        self.client
            .execute(
                "const e = arguments[0]; e.value = '';
                 e.dispatchEvent(new Event('input', { bubbles: true }));",
                vec![serde_json::to_value(&input)?],
            )
            .await?;
        input.send_keys(value).await?;
        Ok(())
    }

    pub(crate) async fn select(&self, css: &str, value: &str) -> Result<()> {
        self.wait_css(css).await?.select_by_value(value).await?;
        Ok(())
    }

    /// Clicks the (enabled) button whose text is `label`.
    pub(crate) async fn click_button(&self, label: &str) -> Result<()> {
        let xpath = format!("//button[normalize-space(.)='{label}' and not(@disabled)]");
        let until = Instant::now() + WAIT;
        loop {
            if let Ok(b) = self.client.find(Locator::XPath(&xpath)).await {
                b.click().await?;
                return Ok(());
            }
            if Instant::now() > until {
                bail!("no enabled button {label:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn click_link(&self, text: &str) -> Result<()> {
        let until = Instant::now() + WAIT;
        loop {
            if let Ok(a) = self.client.find(Locator::LinkText(text)).await {
                a.click().await?;
                return Ok(());
            }
            if Instant::now() > until {
                bail!("no link {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn press(&self, key: char) -> Result<()> {
        let keys = KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key });
        self.client.perform_actions(keys).await?;
        Ok(())
    }

    pub(crate) async fn type_keys(&self, text: &str) -> Result<()> {
        let mut keys = KeyActions::new("keyboard".into());
        for c in text.chars() {
            keys = keys
                .then(KeyAction::Down { value: c })
                .then(KeyAction::Up { value: c });
        }
        self.client.perform_actions(keys).await?;
        Ok(())
    }

    pub(crate) async fn active_id(&self) -> Result<String> {
        Ok(self
            .client
            .active_element()
            .await?
            .attr("id")
            .await?
            .unwrap_or_default())
    }

    /// Presses Tab until the element with `id` has the focus: it is reachable by keyboard.
    pub(crate) async fn tab_to(&self, id: &str) -> Result<u32> {
        for presses in 1..=30 {
            self.press(TAB).await?;
            if self.active_id().await? == id {
                return Ok(presses);
            }
        }
        bail!("#{id} is not reachable with the Tab key")
    }

    /// No element uses a `style` attribute: the CSP (`style-src 'self'`) would block it.
    pub(crate) async fn assert_no_inline_styles(&self) -> Result<()> {
        let n = self
            .js(
                "return document.querySelectorAll('[style]').length;",
                vec![],
            )
            .await?;
        ensure!(n == json!(0), "{n} elements carry a style attribute");
        Ok(())
    }

    /// Navigates to `url` and measures navigation start → the first `h1` containing `heading`,
    /// in milliseconds on the page's clock, from the recorder installed by
    /// [`Browser::record_headings`].
    pub(crate) async fn first_render(&self, url: &str, heading: &str) -> Result<f64> {
        self.goto(url).await?;
        self.wait_heading(heading).await?;
        let seen = self.js("return window.__mfHeadings || [];", vec![]).await?;
        seen.as_array()
            .into_iter()
            .flatten()
            .find(|e| e[1].as_str().is_some_and(|t| t.contains(heading)))
            .and_then(|e| e[0].as_f64())
            .with_context(|| format!("{url}: the heading recorder saw {seen}"))
    }

    /// Installs [`HEADING_RECORDER`] for every page loaded from now on.
    pub(crate) async fn record_headings(&self) -> Result<()> {
        self.client
            .issue_cmd(Cdp {
                cmd: "Page.addScriptToEvaluateOnNewDocument",
                params: json!({ "source": HEADING_RECORDER }),
            })
            .await?;
        Ok(())
    }

    pub(crate) async fn close(self) -> Result<()> {
        let log = self.shots.join("console.log");
        std::fs::write(&log, self.console.join("\n") + "\n")?;
        let client = self.client.clone();
        client.close().await?;
        Ok(())
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

struct Servers {
    source: Dovecot,
    target: Dovecot,
}

fn servers() -> Servers {
    let source = Dovecot::start(
        DovecotOptions::default()
            .user("ann@old.example", SOURCE_PW)
            .user("bob@old.example", "bob-source-pw")
            .separator('/')
            .special_folders(vec![SpecialFolder {
                name: "Sent".into(),
                special_use: "\\Sent".into(),
                auto_create: true,
            }]),
    )
    .expect("source dovecot");
    let target = Dovecot::start(
        DovecotOptions::default()
            .user("ann@new.example", "unused-ann")
            .user("bob@new.example", "unused-bob")
            .master_user("admin", MASTER_PW)
            .special_folders(vec![SpecialFolder {
                name: "Sent Items".into(),
                special_use: "\\Sent".into(),
                auto_create: true,
            }]),
    )
    .expect("target dovecot");
    // A real mailbox to copy: nested and non-ASCII folders, flags, odd messages, and one large
    // message so the copy takes long enough to be seen while it runs.
    crate::copy::seed(
        &source,
        "ann@old.example",
        &test_corpus(11, Some(6 * 1024 * 1024)),
    );
    Servers { source, target }
}

/// The invite link of the newest mail to `to`, as the outbox page shows it.
async fn outbox_link(b: &Browser, to: &str) -> Result<String> {
    let item = b.wait_text("li.mail", to).await?;
    let input = item.find(Locator::Css("input.link-box")).await?;
    input
        .prop("value")
        .await?
        .filter(|v| v.contains("/migrate/"))
        .context("the outbox shows no invite link")
}

/// Locks an invite link with wrong passwords through the API (the page for it is tested below).
async fn lock_link(app: &TestApp, token: &str) -> Result<()> {
    for _ in 0..contract::limits::INVITE_MAX_FAILED_ATTEMPTS {
        let r = app
            .post(
                &format!("/api/migrate/{token}/credentials"),
                json!({ "source_password": "wrong" }),
            )
            .await?;
        ensure!(r.status == 422, "a wrong password was answered {r:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_and_a_user_move_a_mailbox_through_the_web_pages() {
    // Arrange
    require_frontend_dist();
    let s = servers();
    let app = spawn_app(None).await.expect("server");
    let mut b = Browser::start(1280, 900).await.expect("browser");
    let result = scenario(&app, &s, &mut b).await;
    if let Err(e) = result {
        let shot = b.screenshot("failure").await.ok();
        // Whatever the console said last is often the cause.
        let _ = b.check_console("failure", &[]).await;
        let console = b.console.join("\n");
        let _ = b.close().await;
        panic!("{e:#}\nlast screenshot: {shot:?}\nconsole:\n{console}");
    }
    b.close().await.expect("closing the browser");
}

async fn scenario(app: &TestApp, s: &Servers, b: &mut Browser) -> Result<()> {
    let base = app.base.clone();
    let no_errors: &[Expected] = &[];

    // Navigation start → main heading of each page, printed at the end.
    b.record_headings().await?;
    let mut renders = vec![(
        "sign-in",
        b.first_render(&format!("{base}/"), "Sign in").await?,
    )];

    // Act & assert: the admin signs in.
    b.assert_no_inline_styles().await?;
    b.screenshot("login").await?;
    b.fill("#admin-password", ADMIN_PASSWORD).await?;
    b.click_button("Sign in").await?;
    b.wait_heading("Projects").await?;
    b.wait_text("main", "No projects yet").await?;
    b.screenshot("projects-empty").await?;
    b.check_console("sign in", no_errors).await?;

    // A project through the form: fields complain as they are typed, the target's connection
    // test logs in with the master user.
    b.click_link("Create the first project").await?;
    b.wait_heading("New project").await?;
    b.fill("#pf-name", "Acme to NewCo").await?;
    b.fill("#pf-source-host", "bad host").await?;
    b.wait_text(".field-error", "host name").await?;
    b.fill("#pf-source-host", "127.0.0.1").await?;
    b.select("#pf-source-security", "plaintext").await?;
    b.fill("#pf-source-port", &s.source.port().to_string())
        .await?;
    b.fill("#pf-target-host", "127.0.0.1").await?;
    b.select("#pf-target-security", "plaintext").await?;
    b.fill("#pf-target-port", &s.target.port().to_string())
        .await?;
    b.select("#pf-target-auth", "admin").await?;
    b.fill("#pf-target-auth-password", MASTER_PW).await?;
    b.fill("#pf-target-test_email", "ann@new.example").await?;
    let test_buttons = b
        .client
        .find_all(Locator::XPath(
            "//button[normalize-space(.)='Test connection']",
        ))
        .await?;
    ensure!(test_buttons.len() == 2, "one test button per side");
    test_buttons[1].click().await?;
    b.wait_text(".test-ok", "Connected").await?;
    ensure!(
        b.client
            .find_all(Locator::Css(".field-error"))
            .await?
            .is_empty(),
        "the form still shows errors"
    );
    b.assert_no_inline_styles().await?;
    b.screenshot("project-form").await?;
    b.click_button("Create project").await?;
    b.wait_heading("Acme to NewCo").await?;
    b.wait_text("main", "No users yet").await?;
    b.check_console("project form", no_errors).await?;
    let project = b
        .client
        .current_url()
        .await?
        .path()
        .rsplit('/')
        .next()
        .context("project id in the URL")?
        .to_owned();

    // Editing: the saved target connector is tested with its stored password.
    b.click_link("Edit settings").await?;
    b.wait_heading("Edit Acme to NewCo").await?;
    b.fill("#pf-target-test_email", "ann@new.example").await?;
    let test_buttons = b
        .client
        .find_all(Locator::XPath(
            "//button[normalize-space(.)='Test connection']",
        ))
        .await?;
    test_buttons[1].click().await?;
    b.wait_text(".test-ok", "saved settings").await?;
    b.screenshot("project-edit").await?;
    b.click_link("Cancel").await?;
    b.wait_heading("Acme to NewCo").await?;
    b.check_console("project edit", no_errors).await?;

    // What is typed into a form on the page survives the page's polling.
    b.fill("#au-source-email", "carol@old").await?;
    b.wait_text(".field-error", "needs a dot").await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let kept = b.wait_css("#au-source-email").await?.prop("value").await?;
    ensure!(
        kept.as_deref() == Some("carol@old"),
        "a poll reset the input to {kept:?}"
    );
    b.fill("#au-source-email", "").await?;

    // A CSV upload through the page: a wrong file is refused with its line numbers, a right one
    // is previewed by a dry run and then imported.
    let dir = tempfile::tempdir()?;
    let bad = dir.path().join("bad-users.csv");
    std::fs::write(
        &bad,
        "source_email,target_email,display_name\nann@old.example,ann@new.example,Ann\nbob@old,bob@new.example,Bob\n",
    )?;
    let good = dir.path().join("users.csv");
    std::fs::write(
        &good,
        "source_email,target_email,display_name\nann@old.example,ann@new.example,Ann Example\nbob@old.example,bob@new.example,Bob Example\n",
    )?;
    b.wait_css("#csv-file")
        .await?
        .send_keys(&bad.display().to_string())
        .await?;
    b.wait_text(".line-errors", "Line 3").await?;
    b.screenshot("import-errors").await?;
    b.check_console(
        "csv with errors",
        &[Expected {
            url_part: "/users/import",
            status: 422,
        }],
    )
    .await?;
    b.click_button("Start over").await?;
    b.wait_css("#csv-file")
        .await?
        .send_keys(&good.display().to_string())
        .await?;
    b.wait_text(".alert-info", "The file is valid: 2 rows ready")
        .await?;
    b.wait_text(".preview", "Ann Example").await?;
    b.screenshot("import-preview").await?;
    b.click_button("Import users").await?;
    b.wait_text(".alert-success", "Imported: 2 users created")
        .await?;
    b.wait_text("table.users", "ann@old.example").await?;
    b.wait_text("table.users", "bob@old.example").await?;
    b.check_console("csv import", no_errors).await?;

    // Start both users from the table: invites go to the outbox.
    b.wait_css("input[aria-label='Select every user on this page']")
        .await?
        .click()
        .await?;
    b.click_button("Start").await?;
    b.wait_text(".alert-success", "Start: done for 2 users")
        .await?;
    b.wait_text("table.users", "Invite sent").await?;
    b.assert_no_inline_styles().await?;
    b.screenshot("project-invited").await?;
    b.check_console("start users", no_errors).await?;

    b.click_link("Outbox").await?;
    b.wait_heading("Outbox").await?;
    let ann_link = outbox_link(b, "ann@old.example").await?;
    let bob_link = outbox_link(b, "bob@old.example").await?;
    ensure!(ann_link.starts_with(&base), "{ann_link} is not on {base}");
    b.screenshot("outbox").await?;
    b.check_console("outbox", no_errors).await?;

    // The admin keeps the project page open (it polls, and draws the throughput) while the user
    // works in a second tab.
    b.goto(&format!("{base}/projects/{project}")).await?;
    b.wait_heading("Acme to NewCo").await?;
    let admin_tab = b.client.window().await?;
    let user_tab = b.client.new_window(true).await?.handle;
    b.client.switch_to_window(user_tab).await?;
    b.record_headings().await?;

    // The pages for links that cannot be used.
    let bob_token = bob_link.rsplit('/').next().context("token")?.to_owned();
    lock_link(app, &bob_token).await?;
    b.goto(&bob_link).await?;
    b.wait_heading("This link is locked").await?;
    b.screenshot("link-locked").await?;
    b.check_console(
        "locked link",
        &[Expected {
            url_part: "/api/migrate/",
            status: 423,
        }],
    )
    .await?;
    b.goto(&format!("{base}/migrate/{}", "A".repeat(43)))
        .await?;
    b.wait_heading("This link does not work").await?;
    b.screenshot("link-unknown").await?;
    b.check_console(
        "unknown link",
        &[Expected {
            url_part: "/api/migrate/",
            status: 404,
        }],
    )
    .await?;

    // The user opens the link: first on a phone-sized screen, then with the keyboard only.
    b.resize(390, 844).await?;
    b.goto(&ann_link).await?;
    b.wait_heading("Move your mailbox").await?;
    b.wait_text("main", "Acme to NewCo").await?;
    b.wait_text("main", "You can close this page after Start")
        .await?;
    let overflow = b
        .js(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await?;
    ensure!(overflow == json!(false), "the page is wider than a phone");
    b.assert_no_inline_styles().await?;
    b.screenshot("migrate-form-phone").await?;
    b.resize(1280, 900).await?;
    renders.push((
        "credential page (form)",
        b.first_render(&ann_link, "Move your mailbox").await?,
    ));
    b.wait_css("#source-password").await?;
    b.screenshot("migrate-form").await?;
    // Show/hide toggles what the field shows.
    b.click_button("Show password").await?;
    b.wait_css("#source-password[type='text']").await?;
    b.click_button("Hide password").await?;
    b.wait_css("#source-password[type='password']").await?;
    b.tab_to("source-password").await?;
    b.type_keys("not-the-password").await?;
    b.press(ENTER).await?;
    b.wait_text(".alert-error", "4 attempts left").await?;
    b.wait_css("#source-password").await?;
    ensure!(
        b.active_id().await? == "source-password",
        "after a refused password the focus is back in the (emptied) field"
    );
    b.screenshot("migrate-wrong-password").await?;
    b.check_console(
        "wrong password",
        &[Expected {
            url_part: "/credentials",
            status: 422,
        }],
    )
    .await?;
    b.type_keys(SOURCE_PW).await?;
    b.press(ENTER).await?;
    // Scheduled or already copying, then finished.
    let started = Instant::now();
    let mut saw_progress = false;
    let heading = loop {
        let h = b.wait_css("h1").await?.text().await?;
        if !saw_progress && (h.contains("queued") || h.contains("Copying")) {
            b.screenshot("migrate-running").await?;
            saw_progress = true;
        }
        if h.contains("has been copied") {
            break h;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(180),
            "the copy did not finish in 3 minutes; the page says {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    ensure!(heading == "Your mail has been copied", "{heading}");
    b.wait_text("main", "Check your new mailbox").await?;
    b.wait_text(".settings", "127.0.0.1").await?;
    b.screenshot("migrate-completed").await?;
    b.check_console("copy to completed", no_errors).await?;

    // Back in the admin's tab: the table followed the copy, and the chart drew it.
    b.client.close_window().await?;
    b.client.switch_to_window(admin_tab).await?;
    b.wait_text("table.users", "Ready to verify").await?;
    b.wait_css("svg.chart-svg polyline").await?;
    b.wait_text("button", "Retry skipped").await?;
    b.screenshot("project-after-copy").await?;
    b.resize(390, 844).await?;
    b.screenshot("project-phone").await?;
    b.resize(1280, 900).await?;
    // The admin reads the verification report.
    b.click_link("Ann Example").await?;
    b.wait_heading("Ann Example").await?;
    b.wait_text(".verify-summary", "folders match").await?;
    b.wait_text("table.verify", "Projects/2024/Ärger").await?;
    b.wait_text(".events", "credentials entered").await?;
    b.assert_no_inline_styles().await?;
    b.screenshot("user-detail").await?;
    // A preflight from the user's page: both sides logged in to, the report shown, nothing
    // copied (the servers here have every capability and no quota: ready).
    b.click_button("Preflight").await?;
    b.wait_text("main", "Ready: nothing stands in the way")
        .await?;
    b.wait_text("main", "Sent → Sent Items").await?;
    b.wait_text("main", "Source offers CONDSTORE").await?;
    b.screenshot("user-preflight").await?;
    b.check_console("preflight", no_errors).await?;
    // Nothing was skipped: this user's actions offer no "Retry skipped" (the project's bulk
    // toolbar does, for users that have some).
    let actions = b
        .wait_text("[aria-label='Actions on this user']", "Mark verified")
        .await?
        .text()
        .await?;
    ensure!(
        !actions.contains("Retry skipped"),
        "a user with nothing skipped is offered a retry: {actions}"
    );
    // The export link serves the users as CSV to the signed-in browser.
    let csv = b
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(r => r.text()).then(done, e => done(String(e)));",
            vec![json!(format!("/api/admin/projects/{project}/users/export"))],
        )
        .await?;
    ensure!(
        csv.as_str()
            .is_some_and(|c| c.contains("ann@old.example,ann@new.example")),
        "{csv}"
    );
    b.check_console("verification", no_errors).await?;

    // Budget (printed, not asserted): navigation start → the page's main heading.
    let user_url = b.client.current_url().await?.to_string();
    let user_page = user_url.clone();
    let pages = [
        ("projects", format!("{base}/projects"), "Projects"),
        ("new project", format!("{base}/projects/new"), "New project"),
        (
            "project",
            format!("{base}/projects/{project}"),
            "Acme to NewCo",
        ),
        ("user detail", user_url, "Ann Example"),
        ("outbox", format!("{base}/outbox"), "Outbox"),
        (
            "credential page (completed)",
            ann_link.clone(),
            "Your mail has been copied",
        ),
    ];
    for (name, url, heading) in pages {
        renders.push((name, b.first_render(&url, heading).await?));
    }
    println!("first meaningful render (navigation start → main heading), milliseconds:");
    for (name, ms) in renders {
        println!("  {name:<30} {ms:>6.0}");
    }
    b.check_console("render timings", no_errors).await?;

    // The cutover, from Ann's page: a final pass, then one mail with her new account's
    // settings and a set-up link; the set-up page reads on a phone and on a desktop.
    b.goto(&user_page).await?;
    b.wait_heading("Ann Example").await?;
    b.click_button("Cut over now").await?;
    let started = Instant::now();
    let setup_link = loop {
        let mails = b
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 fetch('/api/admin/outbox').then(r => r.json()).then(done, e => done(String(e)));",
                vec![],
            )
            .await?;
        let moved: Vec<&Value> = mails
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| {
                m["subject"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("Your mailbox has moved"))
            })
            .collect();
        if let Some(m) = moved.first() {
            ensure!(moved.len() == 1, "one cutover mail: {mails}");
            let text = m["text"].as_str().unwrap_or_default();
            let link = text.split_whitespace().find(|w| w.contains("/setup/"));
            break link
                .map(str::to_owned)
                .with_context(|| format!("no link in {text}"))?;
        }
        ensure!(
            started.elapsed() < Duration::from_secs(90),
            "no cutover mail after 90 s: {mails}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    b.resize(390, 844).await?;
    b.goto(&setup_link).await?;
    b.wait_heading("Set up your new mailbox").await?;
    b.wait_text("main", "ann@new.example").await?;
    let overflow = b
        .js(
            "return document.documentElement.scrollWidth > window.innerWidth;",
            vec![],
        )
        .await?;
    ensure!(
        overflow == json!(false),
        "the set-up page is wider than a phone"
    );
    b.assert_no_inline_styles().await?;
    b.screenshot("device-setup-phone").await?;
    b.resize(1280, 900).await?;
    b.screenshot("device-setup").await?;
    b.check_console("device set-up page", no_errors).await?;
    Ok(())
}
