//! One IMAP connection: connect (TLS, STARTTLS or, when the admin chose it, plaintext),
//! log in, and run commands: typed ones through [`Session::execute`], hand-written ones
//! (see `raw`) through `execute_raw`. The folder, message and append operations are in
//! their own modules as further `impl Session` blocks.

use std::borrow::Cow;
use std::time::Duration;

use contract::Security;
use domain::Endpoint;
use domain::secret::Secret;
use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_next::client::{Client, CommandHandle, Error as ClientError, Event, Options};
use imap_next::imap_types::auth::{AuthMechanism, AuthenticateData};
use imap_next::imap_types::command::{Command, CommandBody};
use imap_next::imap_types::core::{AString, Tag};
use imap_next::imap_types::response::{
    Code, Data, GreetingKind, Response, Status, StatusBody, StatusKind, Tagged,
};
use imap_next::imap_types::utils::escape_byte_string;
use tokio::net::TcpStream;

use crate::capabilities::Capabilities;
use crate::error::ImapError;
use crate::sasl;
use crate::tls::TlsConfig;
use crate::transport::{DriveError, Next, Stream, Transport};

/// How [`Session::login_with`] sends a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoginMethod {
    /// AUTHENTICATE PLAIN when the server offers it, LOGIN otherwise.
    #[default]
    Auto,
    /// AUTHENTICATE PLAIN (with SASL-IR when offered: one round trip).
    AuthenticatePlain,
    /// The LOGIN command; passwords that are not plain atoms go as quoted strings or literals.
    Login,
}

/// The successful end of a command: what the server sent while it ran, and its tagged OK.
#[derive(Debug, Default)]
pub struct Completion {
    /// Untagged data (FETCH, LIST, SEARCH, EXISTS, ...), in arrival order.
    pub data: Vec<Data<'static>>,
    /// Untagged OK/NO/BAD lines (e.g. `* OK [UIDVALIDITY 3]`), in arrival order.
    pub untagged: Vec<StatusBody<'static>>,
    /// The response code of the tagged OK (e.g. `APPENDUID`, `READ-WRITE`).
    pub code: Option<Code<'static>>,
    /// The text of the tagged OK.
    pub text: String,
}

/// A connected IMAP session. Not shared: one task drives it at a time.
pub struct Session {
    transport: Transport,
    client: Client,
    host: String,
    port: u16,
    timeout: Duration,
    next_tag: u64,
    capabilities: Capabilities,
    greeting: String,
    authenticated: bool,
    /// Set after an I/O error or timeout: the protocol state is unknown from then on.
    broken: bool,
    /// The text of a BYE, kept to explain the close that follows it.
    bye: Option<String>,
    /// Set while a command runs. A command future dropped half-way (a caller's timeout)
    /// leaves it set, and the session is then treated as broken: its responses are still on
    /// the wire.
    in_flight: bool,
    /// The folder SELECTed or EXAMINEd through this crate's folder operations; `None` when
    /// unknown (a SELECT sent through [`Session::execute`] clears it).
    pub(crate) selected: Option<crate::folders::Selected>,
    /// CONDSTORE / QRESYNC switched on (ENABLE or a `SELECT (CONDSTORE)`).
    pub(crate) condstore_enabled: bool,
    pub(crate) qresync_enabled: bool,
    /// The hierarchy delimiter of the personal namespace, once asked.
    pub(crate) delimiter: Option<Option<char>>,
    /// While set, untagged responses imap-codec cannot parse are kept here instead of
    /// breaking the session (Gmail's X-GM-MSGID, which no parser knows; see `gmail.rs`).
    pub(crate) unparsed: Option<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.transport.is_tls())
            .field("authenticated", &self.authenticated)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connects and reads the greeting, securing the connection as the endpoint says:
    /// [`Security::Tls`] from the first byte, [`Security::Starttls`] before anything else is
    /// sent (failing when the server does not offer it; never falling back to plaintext), or
    /// [`Security::Plaintext`] when the admin chose it. The whole connect must finish within
    /// `timeout`; afterwards it is the longest the server may stay silent while a command
    /// waits for it (an idle timeout: a long download that keeps moving never times out).
    pub async fn connect(
        endpoint: &Endpoint,
        tls: &TlsConfig,
        timeout: Duration,
    ) -> Result<Session, ImapError> {
        Self::connect_to(endpoint, tls, timeout, Reach::Anywhere).await
    }

    /// [`Session::connect`], reaching only the addresses `reach` allows: the name is resolved
    /// once and the connection goes to an address that was checked, so a name that changes its
    /// answer between check and connect (DNS rebinding) cannot slip through.
    pub async fn connect_to(
        endpoint: &Endpoint,
        tls: &TlsConfig,
        timeout: Duration,
        reach: Reach,
    ) -> Result<Session, ImapError> {
        let connect = Self::connect_within(endpoint, tls, timeout, reach);
        match tokio::time::timeout(timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(ImapError::Timeout {
                after: timeout,
                during: "connecting",
            }),
        }
    }

    async fn connect_within(
        endpoint: &Endpoint,
        tls: &TlsConfig,
        timeout: Duration,
        reach: Reach,
    ) -> Result<Session, ImapError> {
        tracing::debug!(host = %endpoint.host, port = endpoint.port, security = ?endpoint.security, "connecting");
        let tcp = tcp_connect(&endpoint.host, endpoint.port, reach).await?;
        let mut session = match endpoint.security {
            Security::Tls => {
                let stream = tls_handshake(tls, &endpoint.host, tcp).await?;
                let mut session =
                    Session::new(Stream::Tls(Box::new(stream)), endpoint, timeout, false);
                session.read_greeting().await?;
                session
            }
            Security::Plaintext => {
                let mut session = Session::new(Stream::Plain(tcp), endpoint, timeout, false);
                session.read_greeting().await?;
                session
            }
            Security::Starttls => {
                let mut session = Session::new(Stream::Plain(tcp), endpoint, timeout, false);
                session.read_greeting().await?;
                if session.capabilities.is_empty() {
                    session.refresh_capabilities().await?;
                }
                if !session.capabilities.has("STARTTLS") {
                    return Err(ImapError::StartTlsUnavailable);
                }
                match session.execute(CommandBody::StartTLS).await {
                    Ok(_) => {}
                    Err(ImapError::No { text, .. } | ImapError::Bad { text, .. }) => {
                        return Err(ImapError::StartTlsRefused(text));
                    }
                    Err(e) => return Err(e),
                }
                session.upgrade(tls, endpoint, timeout).await?
            }
        };
        if session.capabilities.is_empty() {
            session.refresh_capabilities().await?;
        }
        Ok(session)
    }

    fn new(
        stream: Stream,
        endpoint: &Endpoint,
        timeout: Duration,
        after_starttls: bool,
    ) -> Session {
        let mut options = Options::default();
        // Some servers end lines with a bare LF; accepting that costs nothing.
        options.crlf_relaxed = true;
        // After STARTTLS there is no second greeting.
        options.discard_greeting = after_starttls;
        Session {
            transport: Transport::new(stream),
            client: Client::new(options),
            host: endpoint.host.clone(),
            port: endpoint.port,
            timeout,
            next_tag: 1,
            capabilities: Capabilities::default(),
            greeting: String::new(),
            authenticated: false,
            broken: false,
            bye: None,
            in_flight: false,
            selected: None,
            condstore_enabled: false,
            qresync_enabled: false,
            delimiter: None,
            unparsed: None,
        }
    }

    /// Replaces the plain stream with TLS after the server's OK to STARTTLS. The old state
    /// machine, and anything it buffered, is dropped; capabilities are asked again over TLS.
    async fn upgrade(
        self,
        tls: &TlsConfig,
        endpoint: &Endpoint,
        timeout: Duration,
    ) -> Result<Session, ImapError> {
        let greeting = self.greeting.clone();
        let Stream::Plain(tcp) = self.transport.into_stream() else {
            return Err(ImapError::Protocol(
                "STARTTLS on a connection that already uses TLS".into(),
            ));
        };
        let stream = tls_handshake(tls, &endpoint.host, tcp).await?;
        let mut session = Session::new(Stream::Tls(Box::new(stream)), endpoint, timeout, true);
        session.greeting = greeting;
        session.refresh_capabilities().await?;
        Ok(session)
    }

    /// Switches the connection to COMPRESS=DEFLATE (RFC 4978) when the server offers it;
    /// `Ok(false)` when it does not (nothing changes). Call it after login, before selecting.
    pub async fn compress(self) -> Result<(Session, bool), ImapError> {
        if self.transport.is_compressed() || !self.capabilities.has("COMPRESS=DEFLATE") {
            return Ok((self, false));
        }
        let mut session = self;
        session
            .execute_raw(crate::raw::RawCommand::new("COMPRESS").text("COMPRESS DEFLATE"))
            .await?;
        let session = Session {
            transport: session.transport.into_compressed(),
            ..session
        };
        Ok((session, true))
    }

    /// Whether COMPRESS=DEFLATE is on.
    pub fn is_compressed(&self) -> bool {
        self.transport.is_compressed()
    }

    /// The capabilities as last reported; refreshed after STARTTLS and after login.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// Asks the server for its capabilities again.
    pub async fn refresh_capabilities(&mut self) -> Result<&Capabilities, ImapError> {
        self.capabilities = Capabilities::default();
        self.execute(CommandBody::Capability).await?;
        Ok(&self.capabilities)
    }

    /// The text of the server's greeting.
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_tls(&self) -> bool {
        self.transport.is_tls()
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    /// Whether an earlier I/O error or timeout left the session unusable.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// How long the server may stay silent while a command waits for it.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Logs in with a password: AUTHENTICATE PLAIN when offered, LOGIN otherwise.
    pub async fn login(&mut self, login: &str, password: &Secret) -> Result<(), ImapError> {
        self.login_with(login, password, LoginMethod::Auto).await
    }

    /// Logs in with a password using the given method. NO or BAD from the server is
    /// [`ImapError::LoginRejected`]; the session stays usable for another attempt.
    pub async fn login_with(
        &mut self,
        login: &str,
        password: &Secret,
        method: LoginMethod,
    ) -> Result<(), ImapError> {
        if self.authenticated {
            return Err(ImapError::InvalidInput(
                "login: the session is already authenticated",
            ));
        }
        if login.is_empty() || login.contains(['\0', '\r', '\n']) {
            return Err(ImapError::InvalidInput("user name"));
        }
        if password.expose().contains('\0') {
            return Err(ImapError::InvalidInput(
                "password (it contains a NUL character)",
            ));
        }
        let method = match method {
            LoginMethod::Auto if self.capabilities.has_auth("PLAIN") => {
                LoginMethod::AuthenticatePlain
            }
            LoginMethod::Auto if self.capabilities.has("LOGINDISABLED") => {
                return Err(ImapError::NoLoginMethod(
                    "the server disabled LOGIN on this connection and offers no AUTH=PLAIN".into(),
                ));
            }
            LoginMethod::Auto => LoginMethod::Login,
            other => other,
        };
        tracing::debug!(host = %self.host, ?method, "logging in");
        let code = match method {
            LoginMethod::AuthenticatePlain => {
                self.authenticate(
                    AuthMechanism::Plain,
                    sasl::plain(login, password.expose()),
                    None,
                )
                .await?
            }
            _ => self.login_command(login, password).await?,
        };
        self.after_login(code).await
    }

    /// Logs in with an OAuth 2.0 access token: XOAUTH2 when the server offers it (Google,
    /// Microsoft), OAUTHBEARER otherwise.
    pub async fn authenticate_xoauth2(
        &mut self,
        user: &str,
        token: &Secret,
    ) -> Result<(), ImapError> {
        if !self.capabilities.has_auth("XOAUTH2") && self.capabilities.has_auth("OAUTHBEARER") {
            return self.authenticate_oauthbearer(user, token).await;
        }
        if !self.capabilities.has_auth("XOAUTH2") {
            return Err(ImapError::NoLoginMethod(
                "the server offers neither XOAUTH2 nor OAUTHBEARER".into(),
            ));
        }
        Self::check_oauth_fields(user, token)?;
        let code = self
            .authenticate(
                AuthMechanism::XOAuth2,
                sasl::xoauth2(user, token.expose()),
                Some(sasl::XOAUTH2_ERROR_ACK),
            )
            .await?;
        self.after_login(code).await
    }

    /// Logs in with an OAuth 2.0 access token over OAUTHBEARER (RFC 7628).
    pub async fn authenticate_oauthbearer(
        &mut self,
        user: &str,
        token: &Secret,
    ) -> Result<(), ImapError> {
        if !self.capabilities.has_auth("OAUTHBEARER") {
            return Err(ImapError::NoLoginMethod(
                "the server does not offer OAUTHBEARER".into(),
            ));
        }
        Self::check_oauth_fields(user, token)?;
        let initial = sasl::oauthbearer(user, token.expose(), &self.host, self.port);
        let code = self
            .authenticate(
                AuthMechanism::OAuthBearer,
                initial,
                Some(sasl::OAUTHBEARER_ERROR_ACK),
            )
            .await?;
        self.after_login(code).await
    }

    fn check_oauth_fields(user: &str, token: &Secret) -> Result<(), ImapError> {
        if user.is_empty() || !sasl::valid_field(user) {
            return Err(ImapError::InvalidInput("user name"));
        }
        if token.is_empty() || !sasl::valid_field(token.expose()) {
            return Err(ImapError::InvalidInput("access token"));
        }
        Ok(())
    }

    /// Runs one SASL exchange. The initial response goes with the command under SASL-IR,
    /// else after the first challenge. Later challenges carry an error report (XOAUTH2,
    /// OAUTHBEARER) and get `error_ack`, or end the exchange with `*`.
    async fn authenticate(
        &mut self,
        mechanism: AuthMechanism<'static>,
        initial: Vec<u8>,
        error_ack: Option<&'static [u8]>,
    ) -> Result<Option<Code<'static>>, ImapError> {
        self.ensure_usable()?;
        let before = std::mem::take(&mut self.capabilities);
        let (body, mut pending) = if before.has("SASL-IR") {
            (CommandBody::authenticate_with_ir(mechanism, initial), None)
        } else {
            (CommandBody::authenticate(mechanism), Some(initial))
        };
        let tag = self.tag();
        self.client.enqueue_command(Command { tag, body });
        loop {
            let event = match self.next_event("authenticating").await {
                Ok(event) => event,
                Err(e) => {
                    self.capabilities = before;
                    return Err(e);
                }
            };
            match event {
                Event::AuthenticateContinuationRequestReceived { .. } => {
                    let data = match (pending.take(), error_ack) {
                        (Some(initial), _) => AuthenticateData::r#continue(initial),
                        (None, Some(ack)) => AuthenticateData::r#continue(ack),
                        (None, None) => AuthenticateData::Cancel,
                    };
                    if self.client.set_authenticate_data(data).is_err() {
                        self.broken = true;
                        return Err(ImapError::Protocol(
                            "a SASL challenge arrived out of order".into(),
                        ));
                    }
                }
                Event::AuthenticateStatusReceived { status, .. } => {
                    return match status {
                        Status::Tagged(Tagged { body, .. }) if body.kind == StatusKind::Ok => {
                            Ok(body.code)
                        }
                        Status::Tagged(Tagged { body, .. }) => {
                            self.capabilities = before;
                            Err(ImapError::LoginRejected {
                                text: describe(&body),
                                code: body.code,
                            })
                        }
                        _ => {
                            self.capabilities = before;
                            Err(ImapError::Protocol(
                                "an untagged status ended AUTHENTICATE".into(),
                            ))
                        }
                    };
                }
                Event::DataReceived { data } => self.observe_data(&data),
                Event::StatusReceived { status } => self.observe_status(status, None),
                // Events of other commands never happen here: nothing else is in flight. Their
                // Debug output could contain secrets, so they are not logged.
                _ => {}
            }
        }
    }

    async fn login_command(
        &mut self,
        login: &str,
        password: &Secret,
    ) -> Result<Option<Code<'static>>, ImapError> {
        let username = AString::try_from(login.to_owned())
            .map_err(|_| ImapError::InvalidInput("user name"))?;
        let secret = AString::try_from(password.expose().to_owned())
            .map_err(|_| ImapError::InvalidInput("password (IMAP LOGIN cannot carry it)"))?;
        let body = CommandBody::Login {
            username,
            password: secret.into(),
        };
        let before = std::mem::take(&mut self.capabilities);
        match self.execute(body).await {
            Ok(completion) => Ok(completion.code),
            Err(ImapError::No { text, code, .. } | ImapError::Bad { text, code, .. }) => {
                self.capabilities = before;
                Err(ImapError::LoginRejected { text, code })
            }
            Err(e) => {
                self.capabilities = before;
                Err(e)
            }
        }
    }

    /// Capabilities change with authentication: take them from the OK's response code, else
    /// from an untagged CAPABILITY sent during the login, else ask.
    async fn after_login(&mut self, code: Option<Code<'static>>) -> Result<(), ImapError> {
        self.authenticated = true;
        if let Some(Code::Capability(list)) = &code {
            self.capabilities = Capabilities::from_imap(list.as_ref());
        }
        if self.capabilities.is_empty() {
            self.refresh_capabilities().await?;
        }
        tracing::debug!(host = %self.host, capabilities = self.capabilities.as_slice().len(), "logged in");
        Ok(())
    }

    /// NOOP: keeps the connection alive and collects pending untagged updates.
    pub async fn noop(&mut self) -> Result<Completion, ImapError> {
        self.execute(CommandBody::Noop).await
    }

    /// LOGOUT and a clean close. A server that closes first is fine.
    pub async fn logout(mut self) -> Result<(), ImapError> {
        let result = match self.execute(CommandBody::Logout).await {
            Ok(_) | Err(ImapError::Closed { .. }) => Ok(()),
            Err(e) => Err(e),
        };
        if !self.broken {
            let _ = tokio::time::timeout(self.timeout, self.transport.shutdown()).await;
        }
        result
    }

    /// Sends one command and collects everything up to its tagged response. NO and BAD
    /// become [`ImapError::No`] / [`ImapError::Bad`] (the session stays usable); I/O errors
    /// and timeouts mark the session broken.
    pub async fn execute(&mut self, body: CommandBody<'static>) -> Result<Completion, ImapError> {
        self.begin()?;
        let command = body.name();
        if matches!(command, "SELECT" | "EXAMINE" | "CLOSE" | "UNSELECT") {
            // Whatever this does to the selected folder, the folder operations must ask again.
            self.selected = None;
        }
        let tag = self.tag();
        let handle = self.client.enqueue_command(Command {
            tag: tag.clone(),
            body,
        });
        let result = self
            .collect(&tag, command, Some(handle), Completion::default())
            .await;
        self.end();
        result
    }

    /// Marks the start of a command; refuses when the session is broken or when an earlier
    /// command was abandoned half-way.
    pub(crate) fn begin(&mut self) -> Result<(), ImapError> {
        self.ensure_usable()?;
        if self.in_flight {
            self.broken = true;
            return Err(ImapError::Broken);
        }
        self.in_flight = true;
        Ok(())
    }

    pub(crate) fn end(&mut self) {
        self.in_flight = false;
    }

    /// For an operation that gives up while responses are still due: nothing can be sent
    /// on this connection any more.
    pub(crate) fn mark_broken(&mut self) {
        self.broken = true;
    }

    /// Collects responses up to the tagged one for `tag`, into `completion`.
    pub(crate) async fn collect(
        &mut self,
        tag: &Tag<'static>,
        command: &'static str,
        handle: Option<CommandHandle>,
        mut completion: Completion,
    ) -> Result<Completion, ImapError> {
        loop {
            match self.next_event(command).await? {
                Event::DataReceived { data } => {
                    self.observe_data(&data);
                    completion.data.push(data);
                }
                Event::StatusReceived {
                    status: Status::Tagged(Tagged { tag: got, body }),
                } if &got == tag => return self.finish(command, body, completion),
                Event::StatusReceived { status } => {
                    self.observe_status(status, Some(&mut completion))
                }
                // The server refused a synchronizing literal of this command.
                Event::CommandRejected {
                    handle: got,
                    status,
                    ..
                } if Some(got) == handle => {
                    return match status {
                        Status::Tagged(Tagged { body, .. }) => {
                            self.finish(command, body, completion)
                        }
                        _ => Err(ImapError::No {
                            command,
                            text: "literal refused".into(),
                            code: None,
                        }),
                    };
                }
                _ => {}
            }
        }
    }

    /// The end of a command: OK becomes the completion, NO and BAD errors.
    pub(crate) fn finish(
        &mut self,
        command: &'static str,
        body: StatusBody<'static>,
        mut completion: Completion,
    ) -> Result<Completion, ImapError> {
        self.observe_code(body.code.as_ref());
        let text = describe(&body);
        match body.kind {
            StatusKind::Ok => {
                completion.code = body.code;
                completion.text = body.text.to_string();
                Ok(completion)
            }
            StatusKind::No => Err(ImapError::No {
                command,
                text,
                code: body.code,
            }),
            StatusKind::Bad => Err(ImapError::Bad {
                command,
                text,
                code: body.code,
            }),
        }
    }

    /// Gives up the connection at once, in the middle of whatever was being sent: nothing can
    /// be sent on it any more, and the server sees it end there.
    pub(crate) async fn abort(&mut self) {
        self.broken = true;
        let _ = self.transport.abort().await;
    }

    /// Writes bytes as they are (a command line, a literal).
    pub(crate) async fn write_raw(
        &mut self,
        bytes: &[u8],
        during: &'static str,
    ) -> Result<(), ImapError> {
        self.ensure_usable()?;
        let result = self
            .transport
            .write_through(&mut self.client, bytes, self.timeout)
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.drive_failure(e, during)),
        }
    }

    pub(crate) fn observe_status(
        &mut self,
        status: Status<'static>,
        completion: Option<&mut Completion>,
    ) {
        match status {
            Status::Untagged(body) => {
                self.observe_code(body.code.as_ref());
                if let Some(completion) = completion {
                    completion.untagged.push(body);
                }
            }
            Status::Bye(bye) => {
                tracing::debug!(host = %self.host, text = %bye.text, "server said BYE");
                self.bye = Some(bye.text.to_string());
            }
            Status::Tagged(tagged) => {
                tracing::warn!(host = %self.host, tag = tagged.tag.as_ref(), "ignoring a response with an unknown tag");
            }
        }
    }

    /// Keeps capabilities and the selected folder's message count current from untagged
    /// data, whichever command it came with.
    pub(crate) fn observe_data(&mut self, data: &Data<'_>) {
        match data {
            Data::Capability(list) => {
                self.capabilities = Capabilities::from_imap(list.as_ref());
            }
            Data::Exists(n) => {
                if let Some(selected) = self.selected.as_mut() {
                    selected.status.messages = *n;
                }
            }
            Data::Expunge(_) => {
                if let Some(selected) = self.selected.as_mut() {
                    selected.status.messages = selected.status.messages.saturating_sub(1);
                }
            }
            Data::Vanished {
                earlier: false,
                known_uids,
            } => {
                if let Some(selected) = self.selected.as_mut() {
                    let gone = crate::messages::count_uids(known_uids);
                    selected.status.messages = selected
                        .status
                        .messages
                        .saturating_sub(u32::try_from(gone).unwrap_or(u32::MAX));
                }
            }
            _ => {}
        }
    }

    fn observe_code(&mut self, code: Option<&Code<'_>>) {
        if let Some(Code::Capability(list)) = code {
            self.capabilities = Capabilities::from_imap(list.as_ref());
        }
    }

    async fn read_greeting(&mut self) -> Result<(), ImapError> {
        loop {
            if let Event::GreetingReceived { greeting } =
                self.next_event("waiting for the greeting").await?
            {
                self.greeting = greeting.text.to_string();
                if let Some(Code::Capability(list)) = &greeting.code {
                    self.capabilities = Capabilities::from_imap(list.as_ref());
                }
                return match greeting.kind {
                    GreetingKind::Ok => Ok(()),
                    GreetingKind::PreAuth => {
                        self.authenticated = true;
                        Ok(())
                    }
                    GreetingKind::Bye => {
                        self.broken = true;
                        Err(ImapError::Refused(self.greeting.clone()))
                    }
                };
            }
        }
    }

    fn ensure_usable(&self) -> Result<(), ImapError> {
        if self.broken {
            Err(ImapError::Broken)
        } else {
            Ok(())
        }
    }

    pub(crate) fn tag(&mut self) -> Tag<'static> {
        let tag = format!("M{}", self.next_tag);
        self.next_tag += 1;
        Tag::try_from(tag).unwrap_or_else(|_| Tag::unvalidated("M0"))
    }

    /// The next event from the server; the server may not stay silent for longer than the
    /// session's timeout.
    pub(crate) async fn next_event(&mut self, during: &'static str) -> Result<Event, ImapError> {
        loop {
            self.ensure_usable()?;
            let result = self.transport.next(&mut self.client, self.timeout).await;
            match result {
                Ok(event) => return Ok(event),
                // A whole untagged response imap-codec cannot parse, while the caller asked
                // for those: kept for the caller. imap-next has skipped it, so the next
                // response starts cleanly.
                Err(DriveError::State(ClientError::MalformedMessage { discarded_bytes }))
                    if self.unparsed.is_some()
                        && discarded_bytes.declassify().starts_with(b"* ") =>
                {
                    let line = discarded_bytes.declassify().to_vec();
                    if let Some(kept) = self.unparsed.as_mut() {
                        kept.push(line);
                    }
                }
                Err(e) => return Err(self.drive_failure(e, during)),
            }
        }
    }

    /// The next event, or the start of the body the transport was armed for
    /// ([`Session::arm_body`]).
    pub(crate) async fn next_step(
        &mut self,
        during: &'static str,
    ) -> Result<Next<Event>, ImapError> {
        self.ensure_usable()?;
        let result = self
            .transport
            .next_step(&mut self.client, self.timeout)
            .await;
        result.map_err(|e| self.drive_failure(e, during))
    }

    /// The next response carrying a whole message body gives the body to the caller: see
    /// [`Session::next_step`] and [`Session::body_range`].
    pub(crate) fn arm_body(&mut self) {
        self.transport.arm();
    }

    pub(crate) fn disarm_body(&mut self) {
        self.transport.disarm(&mut self.client);
    }

    /// Where the next bytes of the body being read are ([`Session::body_bytes`]); `None` once
    /// it has all been read.
    pub(crate) async fn body_range(
        &mut self,
        during: &'static str,
    ) -> Result<Option<std::ops::Range<usize>>, ImapError> {
        self.ensure_usable()?;
        let result = self.transport.body_chunk(self.timeout).await;
        result.map_err(|e| self.drive_failure(e, during))
    }

    pub(crate) fn body_bytes(&self, range: std::ops::Range<usize>) -> &[u8] {
        self.transport.read_bytes(range)
    }

    /// Maps a driver failure to an error and marks the session broken.
    fn drive_failure(&mut self, e: DriveError<ClientError>, during: &'static str) -> ImapError {
        let error = match e {
            DriveError::Idle => ImapError::Timeout {
                after: self.timeout,
                during,
            },
            DriveError::Closed => ImapError::Closed {
                bye: self.bye.take(),
            },
            DriveError::UnexpectedBody => {
                ImapError::Protocol("a message body was taken out where none was asked for".into())
            }
            DriveError::Io(e) => match e.kind() {
                std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => ImapError::Closed {
                    bye: self.bye.take(),
                },
                _ => ImapError::Io(e),
            },
            DriveError::State(e) => ImapError::Protocol(match e {
                ClientError::MalformedMessage { discarded_bytes } => {
                    let bytes = discarded_bytes.declassify();
                    // Show the start of what arrived, which usually names the culprit
                    // ("HTTP/1.1 400", "SSH-2.0-"); mail content never gets here because a
                    // response that fails to parse is cut to its first line.
                    let shown = &bytes[..bytes.len().min(60)];
                    format!(
                        "malformed response ({} bytes) starting {:?}",
                        bytes.len(),
                        escape_byte_string(shown)
                    )
                }
                ClientError::ExpectedCrlfGotLf { .. } => "a line ended in LF without CR".into(),
                ClientError::ResponseTooLong { discarded_bytes } => {
                    format!(
                        "a response of {} bytes exceeded the size limit",
                        discarded_bytes.declassify().len()
                    )
                }
            }),
        };
        self.broken = true;
        self.in_flight = false;
        error
    }
}

/// A status as the server wrote it, without tag and kind: `[CODE ...] text`.
pub(crate) fn describe(body: &StatusBody<'_>) -> String {
    let line = ResponseCodec::default()
        .encode(&Response::Status(Status::Untagged(body.clone())))
        .dump();
    let line = String::from_utf8_lossy(&line);
    // "* NO [CODE] text\r\n"
    line.trim_end()
        .splitn(3, ' ')
        .nth(2)
        .map(Cow::Borrowed)
        .unwrap_or(Cow::Borrowed(""))
        .into_owned()
}

/// Which addresses a session may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Any address (the local server and the command line, whose mail servers are often on
    /// the same machine; and tests).
    Anywhere,
    /// Not loopback, link-local (cloud metadata services live there: 169.254.169.254,
    /// fd00:ec2::254) or unspecified addresses: a hosted service must not be turned into a probe
    /// of its own machine. Private networks (10/8, 192.168/16, …) stay reachable: on-premises
    /// servers live there.
    PublicAndPrivateNetworks,
}

impl Reach {
    pub fn allows(self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        if self == Reach::Anywhere {
            return true;
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let v4_allowed = |v4: std::net::Ipv4Addr| {
            // 0.0.0.0/8 means "this host" to Linux as well.
            !(v4.is_loopback() || v4.is_link_local() || v4.octets()[0] == 0 || v4.is_broadcast())
        };
        match ip {
            IpAddr::V4(v4) => v4_allowed(v4),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                let metadata = s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254];
                // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) forms carry an IPv4
                // address that must pass the same test.
                let embedded = (s[..6] == [0, 0, 0, 0, 0, 0]
                    || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0])
                .then(|| {
                    let [a, b] = s[6].to_be_bytes();
                    let [c, d] = s[7].to_be_bytes();
                    std::net::Ipv4Addr::new(a, b, c, d)
                });
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_unicast_link_local()
                    || metadata
                    || embedded.is_some_and(|v4| !v4_allowed(v4)))
            }
        }
    }
}

async fn tcp_connect(host: &str, port: u16, reach: Reach) -> Result<TcpStream, ImapError> {
    let resolved: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|source| ImapError::Resolve {
            host: host.to_owned(),
            source,
        })?
        .collect();
    let addresses: Vec<_> = resolved
        .iter()
        .copied()
        .filter(|a| reach.allows(a.ip()))
        .collect();
    if addresses.is_empty()
        && let Some(refused) = resolved.first()
    {
        return Err(ImapError::ForbiddenAddress {
            host: host.to_owned(),
            address: refused.ip().to_string(),
        });
    }
    let mut last_error = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => {
                // Commands are small and answered one by one; do not let Nagle hold them.
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(ImapError::Connect {
        address: format!("{host}:{port}"),
        source: last_error.unwrap_or_else(|| std::io::Error::other("the name has no addresses")),
    })
}

async fn tls_handshake(
    tls: &TlsConfig,
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| {
        ImapError::ServerName {
            host: host.to_owned(),
        }
    })?;
    tls.connector()
        .connect(name, tcp)
        .await
        .map_err(|source| ImapError::TlsHandshake {
            host: host.to_owned(),
            source,
        })
}

#[cfg(test)]
mod reach_tests {
    use super::Reach;

    #[test]
    fn a_hosted_service_reaches_no_loopback_link_local_or_metadata_address() {
        let hosted = Reach::PublicAndPrivateNetworks;
        for refused in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "169.254.169.254",
            "0.0.0.0",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "0.1.2.3",
        ] {
            assert!(!hosted.allows(refused.parse().unwrap()), "{refused}");
            assert!(
                Reach::Anywhere.allows(refused.parse().unwrap()),
                "{refused}"
            );
        }
        for allowed in ["10.1.2.3", "192.168.1.10", "203.0.113.7", "2001:db8::1"] {
            assert!(hosted.allows(allowed.parse().unwrap()), "{allowed}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::CommandCodec;

    fn encode(body: CommandBody<'static>) -> Vec<u8> {
        let command = Command {
            tag: Tag::try_from("a").unwrap(),
            body,
        };
        CommandCodec::default().encode(&command).dump()
    }

    #[test]
    fn login_quotes_or_literalizes_odd_passwords() {
        let login = |user: &str, pass: &str| {
            let body = CommandBody::Login {
                username: AString::try_from(user.to_owned()).unwrap(),
                password: AString::try_from(pass.to_owned()).unwrap().into(),
            };
            String::from_utf8(encode(body)).unwrap()
        };
        assert_eq!(
            login("user@example.com", "simple"),
            "a LOGIN user@example.com simple\r\n"
        );
        assert_eq!(
            login("u", "with space\"and\\"),
            "a LOGIN u \"with space\\\"and\\\\\"\r\n"
        );
        // Non-ASCII cannot be quoted in IMAP4rev1: it has to be a literal.
        let odd = "pä\"ss\\word ✓";
        assert_eq!(
            login("u", odd),
            format!("a LOGIN u {{{}}}\r\n{odd}\r\n", odd.len())
        );
    }

    #[test]
    fn describe_keeps_code_and_text() {
        let body = StatusBody {
            kind: StatusKind::No,
            code: Some(Code::Other(
                imap_next::imap_types::response::CodeOther::unvalidated(
                    b"AUTHENTICATIONFAILED".as_slice(),
                ),
            )),
            text: "Authentication failed.".try_into().unwrap(),
        };
        assert_eq!(
            describe(&body),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
    }
}
