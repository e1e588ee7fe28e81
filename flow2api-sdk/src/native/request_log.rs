//! One line per request on stderr, without contention: request tasks append to a shared buffer
//! under a short lock and a writer thread writes it out in batches. The line has the shape of a
//! `tracing` event of target `flow2api::request` in the format `LOG_FORMAT` names (text, or
//! one JSON object as `tracing-subscriber`'s JSON formatter writes it), so that the server's
//! log reads as one stream; it is written here rather than through the subscriber because a
//! subscriber writes (and locks stderr) once per event.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, StatusCode, Uri};

/// Past this many buffered bytes (stderr blocked), new lines are dropped and counted.
const MAX_BUFFERED: usize = 1 << 20;
/// How long the writer waits after being woken, so that lines arrive in batches.
const BATCH_DELAY: Duration = Duration::from_millis(20);
/// Longest path logged.
const MAX_PATH_CHARS: usize = 160;
/// The target request lines are logged under (`RUST_LOG=flow2api::request=off` silences them).
pub(crate) const TARGET: &str = "flow2api::request";

/// `s` as a JSON string.
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

#[derive(Default)]
struct Buffer {
    text: String,
    dropped: u64,
}

struct Shared {
    buffer: Mutex<Buffer>,
    closed: AtomicBool,
}

/// Owns the writer thread; dropping the last handle stops it.
struct Inner {
    shared: Arc<Shared>,
    writer: thread::Thread,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.writer.unpark();
    }
}

/// The shape of log lines (`LOG_FORMAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// `2026-12-04T16:20:00.123456Z  INFO target: message key=value` (the default).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (with `message`) and `target`.
    Json,
}

impl LogFormat {
    /// `text` or `json` (any case); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// The log. Clones share the buffer and the writer thread.
#[derive(Clone)]
pub(crate) struct RequestLog {
    inner: Arc<Inner>,
    format: LogFormat,
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLog").finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<Buffer>) -> MutexGuard<'_, Buffer> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RequestLog {
    /// Starts the writer thread. It stops (after writing what is left) when the last clone of
    /// the log is dropped.
    pub(crate) fn start(format: LogFormat) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer::default()),
            closed: AtomicBool::new(false),
        });
        let theirs = shared.clone();
        let writer = thread::Builder::new()
            .name("request-log".into())
            .spawn(move || loop {
                thread::park();
                if theirs.closed.load(Ordering::Acquire) {
                    theirs.write_out();
                    return;
                }
                thread::sleep(BATCH_DELAY);
                theirs.write_out();
            })?
            .thread()
            .clone();
        Ok(Self {
            inner: Arc::new(Inner { shared, writer }),
            format,
        })
    }

    /// Appends the line of one request: its id, method, path, status and duration. Only the
    /// path is logged: query strings, headers and bodies may carry keys.
    pub(crate) fn line(
        &self,
        method: &Method,
        uri: &Uri,
        status: StatusCode,
        started: Instant,
        request_id: Option<&HeaderValue>,
    ) {
        if !super::logging::request_lines_enabled() {
            return;
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let path = uri.path();
        let path = match path.char_indices().nth(MAX_PATH_CHARS) {
            Some((i, _)) => &path[..i],
            None => path,
        };
        // The app only sets sane ids ([A-Za-z0-9._-]): nothing to escape.
        let id = request_id.and_then(|v| v.to_str().ok()).unwrap_or("-");
        let now = super::logging::rfc3339_now();
        let was_empty = {
            let mut b = lock(&self.inner.shared.buffer);
            if b.text.len() > MAX_BUFFERED {
                b.dropped += 1;
                return;
            }
            let was_empty = b.text.is_empty();
            let status = status.as_u16();
            let _ = match self.format {
                LogFormat::Text => writeln!(
                    b.text,
                    "{now}  INFO {TARGET}: {method} {path} {status} {ms:.2}ms request_id={id}"
                ),
                LogFormat::Json => writeln!(
                    b.text,
                    "{{\"timestamp\":\"{now}\",\"level\":\"INFO\",\"fields\":{{\"message\":\"request\",\"request_id\":\"{id}\",\"method\":{},\"path\":{},\"status\":{status},\"duration_ms\":{ms:.3}}},\"target\":\"{TARGET}\"}}",
                    json_str(method.as_str()),
                    json_str(path),
                ),
            };
            was_empty
        };
        if was_empty {
            self.inner.writer.unpark();
        }
    }

    /// Writes whatever is buffered now (at shutdown).
    pub(crate) fn flush(&self) {
        self.inner.shared.write_out();
    }
}

impl Shared {
    fn write_out(&self) {
        // Holding stderr while taking the buffer keeps lines in order between writers.
        let mut err = std::io::stderr().lock();
        let (text, dropped) = {
            let mut b = lock(&self.buffer);
            (std::mem::take(&mut b.text), std::mem::take(&mut b.dropped))
        };
        if !text.is_empty() {
            let _ = err.write_all(text.as_bytes());
        }
        if dropped > 0 {
            let _ = writeln!(
                err,
                "request log: {dropped} lines dropped (stderr too slow)"
            );
        }
        let _ = err.flush();
    }
}
