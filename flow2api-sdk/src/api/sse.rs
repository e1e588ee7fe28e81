//! Server-sent events for a running generation: progress lines as they come, `: keep-alive`
//! comments while nothing happens, then the result — all without spawning, so it runs on any
//! executor, the Workers one included.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::mpsc::UnboundedReceiver;
use futures::Stream;

use crate::seams::{BoxFuture, Bytes, Clock};

/// Turns pipeline events into SSE frames for one dialect.
pub(crate) trait Encoder: Unpin {
    /// The result of the pipeline.
    type Outcome;
    /// Frames sent first.
    fn start(&mut self) -> Option<String>;
    /// One progress line.
    fn progress(&mut self, line: &str) -> String;
    /// The final frames (result or error, then any terminator).
    fn finish(&mut self, outcome: Self::Outcome) -> String;
}

/// An SSE body: drives `pipeline` while forwarding its progress lines.
pub(crate) struct EventStream<E: Encoder> {
    pipeline: Option<BoxFuture<'static, E::Outcome>>,
    outcome: Option<E::Outcome>,
    lines: UnboundedReceiver<String>,
    encoder: E,
    clock: Arc<dyn Clock>,
    interval: Duration,
    heartbeat: BoxFuture<'static, ()>,
    /// When the last frame went out (Unix ms). Frames only note the time: the one timer is
    /// re-armed when it fires, not replaced on every frame (at the edge each replacement is a
    /// `setTimeout` and a `clearTimeout`).
    last_sent_ms: u64,
    started: bool,
    done: bool,
}

impl<E: Encoder> EventStream<E> {
    pub(crate) fn new(
        pipeline: BoxFuture<'static, E::Outcome>,
        lines: UnboundedReceiver<String>,
        encoder: E,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> Self {
        let heartbeat = clock.sleep(interval);
        let last_sent_ms = clock.now_ms();
        Self {
            pipeline: Some(pipeline),
            outcome: None,
            lines,
            encoder,
            clock,
            interval,
            heartbeat,
            last_sent_ms,
            started: false,
            done: false,
        }
    }

    fn note_sent(&mut self) {
        self.last_sent_ms = self.clock.now_ms();
    }
}

impl<E: Encoder> Stream for EventStream<E>
where
    E::Outcome: Unpin,
{
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if !this.started {
            this.started = true;
            if let Some(first) = this.encoder.start() {
                return Poll::Ready(Some(Bytes::from(first)));
            }
        }
        // Progress first, so lines sent before the result are never overtaken by it.
        if let Poll::Ready(Some(line)) = Pin::new(&mut this.lines).poll_next(cx) {
            this.note_sent();
            return Poll::Ready(Some(Bytes::from(this.encoder.progress(&line))));
        }
        if let Some(p) = this.pipeline.as_mut() {
            if let Poll::Ready(outcome) = p.as_mut().poll(cx) {
                this.pipeline = None;
                this.outcome = Some(outcome);
            }
        }
        if this.pipeline.is_none() {
            // The pipeline (and its sender) is gone: drain what it left, then finish.
            if let Poll::Ready(Some(line)) = Pin::new(&mut this.lines).poll_next(cx) {
                return Poll::Ready(Some(Bytes::from(this.encoder.progress(&line))));
            }
            if let Some(outcome) = this.outcome.take() {
                this.done = true;
                return Poll::Ready(Some(Bytes::from(this.encoder.finish(outcome))));
            }
        }
        if this.heartbeat.as_mut().poll(cx).is_ready() {
            let interval_ms = u64::try_from(this.interval.as_millis()).unwrap_or(u64::MAX);
            let quiet_ms = this.clock.now_ms().saturating_sub(this.last_sent_ms);
            // A frame went out since the timer was armed: wait out the rest of the interval
            // (polled once so that it wakes this stream; a clock whose sleeps end at once
            // gets its keep-alive now rather than a busy loop).
            let rest = interval_ms.saturating_sub(quiet_ms);
            if rest > 0 {
                this.heartbeat = this.clock.sleep(Duration::from_millis(rest));
            }
            if rest == 0 || this.heartbeat.as_mut().poll(cx).is_ready() {
                this.heartbeat = this.clock.sleep(this.interval);
                this.note_sent();
                return Poll::Ready(Some(Bytes::from_static(b": keep-alive\n\n")));
            }
        }
        Poll::Pending
    }
}

/// An SSE response around `body`.
pub(crate) fn sse_response(body: super::Body) -> http::Response<super::Body> {
    let mut resp = http::Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    h.insert("x-accel-buffering", http::HeaderValue::from_static("no"));
    resp
}

/// One `data:` event.
pub(crate) fn data(json: &str) -> String {
    let mut s = String::with_capacity(json.len() + 8);
    s.push_str("data: ");
    s.push_str(json);
    s.push_str("\n\n");
    s
}
