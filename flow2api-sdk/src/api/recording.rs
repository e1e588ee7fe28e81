//! One request log row per generation request ([`crate::logs`]): [`begin`] opens a
//! [`LogDraft`] for a generation route and hands it to the handlers through the request's
//! [`Caller`]; they note what they learn (the account, the result, a failure); [`finish`]
//! writes the row once the response is produced — for a stream, when it ends or the client
//! drops it (499). A video job's row is written at the job's end instead ([`JobLog`]).
//!
//! The write runs in the background where the host can ([`Spawn`]), so it never delays the
//! answer, and a failed write is dropped: logging never fails a request.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures::Stream;
use http::{Method, Request, Response};
use serde::Deserialize;

use crate::jobs::{JobRecord, JobStatus};
use crate::logs::{self, LogKind, LogRecord, LogStore, Retention};
use crate::pool::AccountPool;
use crate::seams::{boxed, BoxFuture, BoxStream, Bytes, Clock, Spawn};

use super::caller::Caller;
use super::error::ApiError;
use super::{AppInner, Body};

/// What is known of one generation request so far. Cheap to clone (shared).
#[derive(Clone)]
pub(crate) struct LogDraft(Arc<Mutex<Draft>>);

impl std::fmt::Debug for LogDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDraft").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Draft {
    /// A row is written at the end (MCP: only once a tool call says what it generates).
    wanted: bool,
    /// A video job took the request over and writes the row at its own end.
    deferred: bool,
    started_ms: u64,
    operation: Option<&'static str>,
    model: String,
    prompt: String,
    has_images: bool,
    account: Option<(String, String)>,
    progress: u8,
    /// Success: the result URLs.
    urls: Vec<String>,
    /// Failure noted by the pipeline: status and message (the response may still be a 200
    /// stream).
    failure: Option<(u16, String)>,
    key: String,
    /// Written already (a stream's end, then its drop).
    written: bool,
}

impl LogDraft {
    fn lock(&self) -> MutexGuard<'_, Draft> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The request generates this kind (and is to be logged).
    pub(crate) fn operation(&self, kind: LogKind) {
        let mut d = self.lock();
        d.operation = Some(logs::operation_of(kind));
        d.wanted = true;
    }

    /// The request makes a video (`extend`: extends one).
    pub(crate) fn video(&self, extend: bool) {
        let mut d = self.lock();
        d.operation = Some(if extend {
            "extend_video"
        } else {
            "generate_video"
        });
        d.wanted = true;
    }

    /// The model the client asked for, when the route did not show it.
    pub(crate) fn model(&self, name: &str) {
        let mut d = self.lock();
        if d.model.is_empty() {
            d.model = name.to_owned();
        }
    }

    /// The prompt and whether images came with it.
    pub(crate) fn request(&self, prompt: &str, has_images: bool) {
        let mut d = self.lock();
        d.prompt = prompt.to_owned();
        d.has_images |= has_images;
    }

    /// The account serving it.
    pub(crate) fn account(&self, id: &str, email: &str) {
        let mut d = self.lock();
        if d.account.is_none() {
            d.account = Some((id.to_owned(), email.to_owned()));
        }
        d.progress = d.progress.max(10);
    }

    /// One result.
    pub(crate) fn succeeded(&self, url: &str) {
        let mut d = self.lock();
        d.urls.push(url.to_owned());
        d.progress = 100;
    }

    /// The generation failed with `e` (whatever the response's status ends up being).
    pub(crate) fn failed(&self, e: &ApiError) {
        let mut d = self.lock();
        if d.failure.is_none() {
            d.failure = Some((e.status.as_u16(), e.message.clone()));
        }
    }

    /// A video job now owns the request; its end writes the row.
    pub(crate) fn defer(&self) {
        self.lock().deferred = true;
    }
}

/// The request body's fields a row shows, read without the handler's parse.
#[derive(Deserialize, Default)]
struct Peek {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    prompt: Option<serde_json::Value>,
}

/// What a generation route is, from its method and path: `Some(operation)` for routes of
/// one kind, `Some(None)` when the body decides (chat completions, MCP), `None` for the rest.
fn generation_route(method: &Method, segments: &[&str]) -> Option<(Option<LogKind>, bool)> {
    if method != Method::POST {
        return None;
    }
    match segments {
        ["v1", "chat", "completions"] => Some((None, true)),
        ["v1", "images", "generations" | "edits"] => Some((Some(LogKind::Image), true)),
        ["v1", "videos"] => Some((Some(LogKind::Video), true)),
        ["mcp"] => Some((None, false)),
        [.., last] if super::is_gemini_path(segments) => {
            let (_, action) = last.rsplit_once(':')?;
            match action {
                "generateContent" | "streamGenerateContent" => Some((Some(LogKind::Image), true)),
                "predictLongRunning" => Some((Some(LogKind::Video), true)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Opens the draft of a generation request and gives it to the request's caller; `None`
/// for every other request.
pub(crate) fn begin(inner: &AppInner, req: &mut Request<Bytes>) -> Option<LogDraft> {
    // Every generation is a POST: the rest (model lists, media, admin reads) costs nothing.
    if req.method() != Method::POST {
        return None;
    }
    let segments: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    let (kind, wanted) = generation_route(req.method(), &segments)?;
    let mut draft = Draft {
        wanted,
        started_ms: inner.deps.clock.now_ms(),
        operation: kind.map(logs::operation_of),
        ..Draft::default()
    };
    // Gemini names the model in the path (`models/{model}:generateContent`).
    if let Some(call) = segments.last().filter(|_| kind.is_some()) {
        if let Some((model, _)) = call.rsplit_once(':') {
            draft.model = model.to_owned();
        }
    }
    let body = req.body();
    if body.first() == Some(&b'{') {
        if let Ok(peek) = serde_json::from_slice::<Peek>(body) {
            if let Some(m) = peek.model.filter(|_| draft.model.is_empty()) {
                draft.model = m;
            }
            if let Some(serde_json::Value::String(p)) = peek.prompt {
                draft.prompt = p;
            }
        }
    }
    let caller = req.extensions_mut().get_mut::<Caller>()?;
    draft.key = caller.log_key();
    let draft = LogDraft(Arc::new(Mutex::new(draft)));
    caller.attach_log(draft.clone());
    Some(draft)
}

/// The row of a finished request: `status` is the response's (a noted failure wins), and
/// `body` the response body when it is at hand (an error's summary comes from it).
fn record(d: &Draft, now_ms: u64, status: u16, body: Option<&[u8]>) -> LogRecord {
    // A stream answers 200 before its pipeline fails: the noted failure's status counts.
    let status = match &d.failure {
        Some((noted, _)) if status < 400 => *noted,
        _ => status,
    };
    let noted = d.failure.as_ref().map(|(_, m)| m.clone());
    let failed = status >= 400;
    let summary = failed.then(|| {
        noted
            .map(|m| logs::cap_summary(&m))
            .or_else(|| body.and_then(logs::error_summary))
            .unwrap_or_else(|| match status {
                499 => "The client closed the request before it ended.".to_owned(),
                s => format!("HTTP {s}"),
            })
    });
    let (account_id, account_email) = match &d.account {
        Some((id, email)) => (Some(id.clone()), Some(email.clone())),
        None => (None, None),
    };
    LogRecord {
        id: 0,
        created_at_ms: d.started_ms,
        updated_at_ms: now_ms,
        operation: d.operation.unwrap_or("generate_unknown").to_owned(),
        model: d.model.clone(),
        account_id,
        account_email,
        key: d.key.clone(),
        status_code: status,
        duration_ms: now_ms.saturating_sub(d.started_ms),
        status_text: match status {
            499 => "cancelled",
            s if s >= 400 => "failed",
            _ => "completed",
        }
        .to_owned(),
        progress: if failed { d.progress.min(99) } else { 100 },
        request_body: logs::request_body(&d.model, &d.prompt, d.has_images),
        response_body: match &summary {
            Some(s) => logs::response_body_error(status, s),
            None => logs::response_body_ok(&d.urls),
        },
        error_summary: summary,
    }
}

/// Where rows go and how: the store, what to keep, the clock, the host's background runner.
#[derive(Clone)]
struct Writer {
    logs: Arc<dyn LogStore>,
    retention: Retention,
    clock: Arc<dyn Clock>,
    spawner: Option<Arc<dyn Spawn>>,
}

impl Writer {
    fn of(inner: &AppInner) -> Self {
        Self {
            logs: inner.deps.logs.clone(),
            retention: logs::retention(&inner.config),
            clock: inner.deps.clock.clone(),
            spawner: inner.deps.spawner.clone(),
        }
    }

    /// The row of `draft` (once), or `None` when it is not to be written.
    fn take(&self, draft: &LogDraft, status: u16, body: Option<&[u8]>) -> Option<LogRecord> {
        let mut d = draft.lock();
        if !d.wanted || d.deferred || d.written {
            return None;
        }
        d.written = true;
        Some(record(&d, self.clock.now_ms(), status, body))
    }

    fn append(&self, row: LogRecord) -> BoxFuture<'static, ()> {
        let (logs, retention) = (self.logs.clone(), self.retention);
        boxed(async move {
            // A failed write is dropped: the log never fails a request.
            let _ = logs.append(row, retention).await;
        })
    }

    /// Writes in the background where the host can, else now.
    async fn write(&self, row: LogRecord) {
        match &self.spawner {
            Some(s) => s.spawn(self.append(row)),
            None => self.append(row).await,
        }
    }
}

/// Writes the draft's row for `resp` (a whole body now, a stream when it ends) and returns
/// the response to send.
pub(crate) async fn finish(
    inner: &AppInner,
    draft: LogDraft,
    resp: Response<Body>,
) -> Response<Body> {
    let writer = Writer::of(inner);
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let body = match body {
        Body::Full(bytes) => {
            if let Some(row) = writer.take(&draft, status, Some(&bytes)) {
                writer.write(row).await;
            }
            Body::Full(bytes)
        }
        Body::Stream(stream) => Body::Stream(boxed_stream(LoggedStream {
            inner: stream,
            draft,
            writer,
            status,
            ended: false,
            pending: None,
        })),
    };
    Response::from_parts(parts, body)
}

fn boxed_stream(s: LoggedStream) -> BoxStream<'static, Bytes> {
    crate::seams::boxed_stream(s)
}

/// A response stream that writes its request's row when it ends, or when it is dropped
/// before its end (the client went away: 499, unless the pipeline had already finished).
struct LoggedStream {
    inner: BoxStream<'static, Bytes>,
    draft: LogDraft,
    writer: Writer,
    status: u16,
    ended: bool,
    /// Without a background runner, the row's write, awaited before the end is passed on.
    pending: Option<BoxFuture<'static, ()>>,
}

impl Stream for LoggedStream {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        if !self.ended {
            match self.inner.as_mut().poll_next(cx) {
                Poll::Ready(None) => {
                    self.ended = true;
                    if let Some(row) = self.writer.take(&self.draft, self.status, None) {
                        let write = self.writer.append(row);
                        match &self.writer.spawner {
                            Some(s) => s.spawn(write),
                            None => self.pending = Some(write),
                        }
                    }
                }
                other => return other,
            }
        }
        if let Some(write) = self.pending.as_mut() {
            futures::ready!(write.as_mut().poll(cx));
            self.pending = None;
        }
        Poll::Ready(None)
    }
}

impl Drop for LoggedStream {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let done = {
            let d = self.draft.lock();
            d.failure.is_some() || !d.urls.is_empty()
        };
        let status = if done { self.status } else { 499 };
        if let (Some(spawner), Some(row)) = (
            &self.writer.spawner,
            self.writer.take(&self.draft, status, None),
        ) {
            spawner.spawn(self.writer.append(row));
        }
    }
}

/// Writes a video job's row when the job ends ([`crate::jobs::JobEnd`]).
pub(crate) struct JobLog {
    pub(crate) logs: Arc<dyn LogStore>,
    pub(crate) retention: Retention,
    pub(crate) pool: AccountPool,
}

impl crate::jobs::JobEnd for JobLog {
    fn ended<'a>(&'a self, job: &'a JobRecord) -> BoxFuture<'a, ()> {
        boxed(async move {
            let account = job.lease.account_id.clone();
            let email = match account.is_empty() {
                true => None,
                false => self.pool.get(&account).await.ok().map(|a| a.email),
            };
            let failed = job.status == JobStatus::Failed;
            let (status, summary) = match &job.failure {
                Some(f) if failed => {
                    let e = ApiError::from(f);
                    (e.status.as_u16(), Some(logs::cap_summary(&e.message)))
                }
                _ if failed => (500, Some("The video failed.".to_owned())),
                _ => (200, None),
            };
            let end = job.completed_at_ms.unwrap_or(job.created_at_ms);
            let extend = crate::models::video_models()
                .iter()
                .any(|m| m.id == job.model_id && m.video_type == crate::models::VideoType::Extend);
            let operation = if extend {
                "extend_video"
            } else {
                "generate_video"
            };
            let row = LogRecord {
                id: 0,
                created_at_ms: job.created_at_ms,
                updated_at_ms: end,
                operation: operation.to_owned(),
                model: job.model.clone(),
                account_id: (!account.is_empty()).then_some(account),
                account_email: email,
                key: job.owner.clone().unwrap_or_else(|| "root".to_owned()),
                status_code: status,
                duration_ms: end.saturating_sub(job.created_at_ms),
                status_text: if failed { "failed" } else { "completed" }.to_owned(),
                progress: if failed { job.progress.min(99) } else { 100 },
                request_body: logs::request_body(
                    &job.model,
                    &job.prompt,
                    !matches!(job.video.input, crate::flow::video::VideoInput::Text),
                ),
                response_body: match &summary {
                    Some(s) => logs::response_body_error(status, s),
                    None => logs::response_body_ok(job.url.as_slice()),
                },
                error_summary: summary,
            };
            let _ = self.logs.append(row, self.retention).await;
        })
    }
}
