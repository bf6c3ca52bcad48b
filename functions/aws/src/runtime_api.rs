//! A minimal Lambda Runtime API emulator for tests of the Lambda binaries: it hands the given
//! events to `GET /2018-06-01/runtime/invocation/next` one by one (and then holds the next
//! request open, as Lambda does between invocations), and reports what the function posts back
//! (a response, an invocation error or an init error) with the time it arrived. That is enough
//! to run a built `bootstrap` as Lambda would and to time its cold start, without Docker or
//! cargo-lambda. It speaks just the HTTP/1.1 the runtime client sends (keep-alive,
//! `Content-Length` or chunked bodies).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// What the function posted back.
#[derive(Debug, Clone)]
pub enum Posted {
    /// `POST …/invocation/{id}/response`.
    Response {
        request_id: String,
        body: String,
        at: Instant,
    },
    /// `POST …/invocation/{id}/error`.
    InvocationError {
        request_id: String,
        body: String,
        at: Instant,
    },
    /// `POST …/runtime/init/error`.
    InitError { body: String, at: Instant },
}

/// The running emulator; stops when dropped.
#[derive(Debug)]
pub struct RuntimeApi {
    addr: SocketAddr,
    posted: tokio::sync::Mutex<mpsc::UnboundedReceiver<Posted>>,
    first_next: Arc<Mutex<Option<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    events: Mutex<VecDeque<String>>,
    posted: mpsc::UnboundedSender<Posted>,
    first_next: Arc<Mutex<Option<Instant>>>,
    deadline: Duration,
}

impl RuntimeApi {
    /// Serves `events` (JSON payloads) in order, each with an invocation deadline `deadline`
    /// after it is handed out.
    pub async fn start(events: Vec<String>, deadline: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let first_next = Arc::new(Mutex::new(None));
        let shared = Arc::new(Shared {
            events: Mutex::new(events.into()),
            posted: tx,
            first_next: Arc::clone(&first_next),
            deadline,
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let _ = serve(stream, shared).await;
                });
            }
        });
        Ok(RuntimeApi {
            addr,
            posted: tokio::sync::Mutex::new(rx),
            first_next,
            task,
        })
    }

    /// The environment a Lambda function process gets (`AWS_LAMBDA_RUNTIME_API` pointing
    /// here, function name, memory, version, log names).
    pub fn lambda_env(&self, function_name: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.addr.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// When the function first asked for an event: its initialisation was done.
    pub fn first_next_at(&self) -> Option<Instant> {
        *self.first_next.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next thing the function posts, or `None` after `patience`.
    pub async fn posted(&self, patience: Duration) -> Option<Posted> {
        let mut rx = self.posted.lock().await;
        tokio::time::timeout(patience, rx.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Request {
    method: String,
    path: String,
    body: String,
}

async fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).await?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).await?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body).await?;
    }
    Ok(Some(Request {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    }))
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader).await? {
        let at = Instant::now();
        if request.method == "GET" && request.path == NEXT {
            {
                let mut first = shared.first_next.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert(at);
            }
            let event = shared
                .events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            let Some(event) = event else {
                // No more events: hold the request, as Lambda freezes an idle function.
                std::future::pending::<()>().await;
                return Ok(());
            };
            let request_id = uuid::Uuid::new_v4().to_string();
            let deadline = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                + shared.deadline;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: {request_id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:test\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\r\n",
                event.len(),
                deadline.as_millis()
            );
            let stream = reader.get_mut();
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(event.as_bytes()).await?;
            continue;
        }
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        let posted = match segments.as_slice() {
            ["2018-06-01", "runtime", "invocation", id, "response"] => Some(Posted::Response {
                request_id: (*id).to_owned(),
                body: request.body,
                at,
            }),
            ["2018-06-01", "runtime", "invocation", id, "error"] => Some(Posted::InvocationError {
                request_id: (*id).to_owned(),
                body: request.body,
                at,
            }),
            ["2018-06-01", "runtime", "init", "error"] => Some(Posted::InitError {
                body: request.body,
                at,
            }),
            _ => None,
        };
        let status = if posted.is_some() {
            "202 Accepted"
        } else {
            "404 Not Found"
        };
        if let Some(p) = posted {
            let _ = shared.posted.send(p);
        }
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        );
        reader.get_mut().write_all(answer.as_bytes()).await?;
    }
    Ok(())
}

/// How a bootstrap started without one of its variables ended.
#[derive(Debug)]
pub struct FailedStart {
    pub success: bool,
    /// stdout and stderr together.
    pub output: String,
    /// Whether it got as far as asking the emulator for an event.
    pub asked_for_event: bool,
}

/// Runs `bootstrap` as Lambda would, with `env` minus the variable `missing`, and waits (at most
/// 30 s) for it to stop by itself: the shared check of both binaries' fail-fast configuration.
pub async fn start_without(
    bootstrap: &std::path::Path,
    function_name: &str,
    env: &[(String, String)],
    missing: &str,
) -> std::io::Result<FailedStart> {
    let api = RuntimeApi::start(Vec::new(), Duration::from_secs(60)).await?;
    let out = tokio::process::Command::new(bootstrap)
        .env_clear()
        .envs(api.lambda_env(function_name))
        .envs(env.iter().filter(|(k, _)| k != missing).cloned())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .map_err(|_| std::io::Error::other("the bootstrap did not stop by itself"))??;
    Ok(FailedStart {
        success: out.status.success(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        asked_for_event: api.first_next_at().is_some(),
    })
}
