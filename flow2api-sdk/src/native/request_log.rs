//! One line per request on stderr, without contention: request tasks append to a shared buffer
//! under a short lock and a writer thread writes it out in batches.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use http::{Method, StatusCode, Uri};

/// Past this many buffered bytes (stderr blocked), new lines are dropped and counted.
const MAX_BUFFERED: usize = 1 << 20;
/// How long the writer waits after being woken, so that lines arrive in batches.
const BATCH_DELAY: Duration = Duration::from_millis(20);
/// Longest path logged.
const MAX_PATH_CHARS: usize = 160;

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

/// The log. Clones share the buffer and the writer thread.
#[derive(Clone)]
pub(crate) struct RequestLog {
    inner: Arc<Inner>,
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
    pub(crate) fn start() -> std::io::Result<Self> {
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
        })
    }

    /// Appends `METHOD /path STATUS 12.34ms`. Only the path is logged: query strings, headers and
    /// bodies may carry keys.
    pub(crate) fn line(&self, method: &Method, uri: &Uri, status: StatusCode, started: Instant) {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let path = uri.path();
        let path = match path.char_indices().nth(MAX_PATH_CHARS) {
            Some((i, _)) => &path[..i],
            None => path,
        };
        let was_empty = {
            let mut b = lock(&self.inner.shared.buffer);
            if b.text.len() > MAX_BUFFERED {
                b.dropped += 1;
                return;
            }
            let was_empty = b.text.is_empty();
            let _ = writeln!(b.text, "{method} {path} {} {ms:.2}ms", status.as_u16());
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
