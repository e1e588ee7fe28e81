//! What the gateway tells about itself: `GET /health` (public, counts only), `GET /metrics`
//! (Prometheus text, behind `METRICS_TOKEN`), and the bookkeeping every request gets — a
//! request id echoed in `x-request-id`, and its route, model, status and latency counted.

use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde::Serialize;

use crate::captcha::CaptchaCounters;
use crate::metrics::{
    split_key, Exposition, Kind, MetricsView, GENERATION_BUCKETS, REQUEST_BUCKETS,
};
use crate::seams::Bytes;

use super::error::ApiError;
use super::{is_gemini_path, json_response, AppInner, Body};

/// The response header that carries a request's id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The longest client-given request id kept.
const MAX_REQUEST_ID: usize = 64;

/// A request's id: the client's `x-request-id` when it is sane (1–64 characters of
/// `[A-Za-z0-9._-]`), else a new random one. Every response carries it back in
/// `x-request-id`, and the hosts' log lines name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The id `headers` bring, or a new one.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| is_sane_id(v))
            .map_or_else(Self::generate, |v| Self(v.to_owned()))
    }

    /// A new random id (32 hex digits).
    pub fn generate() -> Self {
        Self(crate::util::random_hex(16))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_sane_id(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= MAX_REQUEST_ID
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// When the gateway first saw a request (clock ms), kept in its extensions.
#[derive(Debug, Clone, Copy)]
struct Arrived(u64);

/// What a request's bookkeeping needs at its end.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    id: RequestId,
    arrived: u64,
    route: &'static str,
    /// The model it names, as a label ([`model_label`]); `none` until known.
    pub(crate) model: &'static str,
}

impl AppInner {
    /// Gives a request its id and arrival time, once (a later call keeps the first).
    pub(crate) fn begin(&self, parts: &mut http::request::Parts) {
        if parts.extensions.get::<RequestId>().is_none() {
            let id = RequestId::from_headers(&parts.headers);
            parts.extensions.insert(id);
        }
        if parts.extensions.get::<Arrived>().is_none() {
            parts.extensions.insert(Arrived(self.deps.clock.now_ms()));
        }
    }

    /// What [`end`](Self::end) needs of a request's head ([`begin`](Self::begin) called or
    /// not).
    pub(crate) fn observed(&self, parts: &http::request::Parts) -> Observed {
        Observed {
            id: parts
                .extensions
                .get::<RequestId>()
                .cloned()
                .unwrap_or_else(|| RequestId::from_headers(&parts.headers)),
            arrived: parts
                .extensions
                .get::<Arrived>()
                .map_or_else(|| self.deps.clock.now_ms(), |a| a.0),
            route: route_label(&parts.method, parts.uri.path()),
            model: "none",
        }
    }

    /// Ends a request's bookkeeping: its id on the response, and its route, model, status and
    /// latency counted (a streamed answer when its head is ready).
    pub(crate) fn end(&self, o: &Observed, resp: &mut Response<Body>) {
        if let Ok(v) = HeaderValue::from_str(o.id.as_str()) {
            resp.headers_mut().insert(REQUEST_ID_HEADER, v);
        }
        let now = self.deps.clock.now_ms();
        let ms = now.saturating_sub(o.arrived);
        self.deps
            .metrics
            .request(o.route, o.model, resp.status().as_u16(), ms);
        self.flush_stats_if_due(now);
    }

    /// Adds this process's counts (metrics, captcha) to the shared totals when they are due:
    /// in the background where the host can run work beyond a request, else now.
    fn flush_stats_if_due(&self, now: u64) {
        let metrics_due = self.deps.metrics.flush_due(now);
        let captcha_due = self.deps.captcha_stats.flush_due(now);
        if !metrics_due && !captcha_due {
            return;
        }
        let Some(spawner) = &self.deps.spawner else {
            // Without a spawner (a host that runs nothing beyond a request), the next read of
            // `/metrics` or the captcha stats flushes.
            return;
        };
        let metrics = self.deps.metrics.clone();
        let captcha = self.deps.captcha_stats.clone();
        let store = self.deps.sessions.clone();
        spawner.spawn(crate::seams::boxed(async move {
            if metrics_due {
                let _ = metrics.flush_if_due(&*store, now, false).await;
            }
            if captcha_due {
                let _ = captcha.flush_if_due(&*store, now, false).await;
            }
        }));
    }

    /// `GET /health`: whether the gateway runs and has accounts to use (§11.1), no secrets.
    pub(crate) async fn health(&self) -> Response<Body> {
        let method = &self.config.captcha_method;
        let remote_browser = method
            .split(',')
            .any(|m| m.trim() == crate::captcha::REMOTE_BROWSER)
            && self.config.remote_browser_base_url.is_some();
        let body = match self.pool.summary().await {
            Ok(s) => serde_json::to_vec(&Health {
                status: "ok",
                backend_running: true,
                has_active_tokens: s.active > 0,
                total_tokens: Some(s.total),
                active_tokens: Some(s.active),
                tokens_missing_at: Some(s.missing_at),
                tokens_expired: Some(s.expired),
                tokens_expiring_within_1h: Some(s.expiring_within_1h),
                banned_429_tokens: Some(s.banned_429),
                captcha_method: Some(method),
                remote_browser_configured: Some(remote_browser),
            }),
            Err(_) => serde_json::to_vec(&Health {
                status: "ok",
                backend_running: true,
                has_active_tokens: false,
                ..Health::default()
            }),
        };
        json_response(StatusCode::OK, body.unwrap_or_default().into())
    }

    /// `GET /metrics`: the Prometheus text exposition, for a bearer of `METRICS_TOKEN` (404
    /// while it is unset, 401 without it).
    pub(crate) async fn metrics(&self, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
        let Some(token) = &self.config.metrics_token else {
            return Err(ApiError::not_found("No route for GET /metrics"));
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| token.ct_eq(g)) {
            return Err(ApiError::unauthorized(
                "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>.",
            ));
        }
        let now = self.deps.clock.now_ms();
        let store = &*self.deps.sessions;
        let unavailable =
            |_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "Metrics are unavailable.");
        let totals = self
            .deps
            .metrics
            .totals(store, now)
            .await
            .map_err(unavailable)?;
        let _ = self.deps.captcha_stats.flush_if_due(store, now, true).await;
        let solvers = crate::captcha::load_shared_solvers(store)
            .await
            .map_err(unavailable)?;
        let summary = self.pool.summary().await.map_err(unavailable)?;
        let text = exposition(&Scrape {
            started_ms: self.deps.metrics.started_ms(),
            totals: &totals,
            solvers: &solvers,
            summary,
            remote_browser_configured: self
                .config
                .captcha_method
                .split(',')
                .any(|m| m.trim() == crate::captcha::REMOTE_BROWSER)
                && self.config.remote_browser_base_url.is_some(),
        });
        let mut resp = Response::new(Body::Full(Bytes::from(text)));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(resp)
    }
}

/// The `/health` body (§11.1); on a storage failure only the first three fields.
#[derive(Debug, Default, Serialize)]
struct Health<'a> {
    status: &'static str,
    backend_running: bool,
    has_active_tokens: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    active_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_missing_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_expired: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_expiring_within_1h: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    banned_429_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    captcha_method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_browser_configured: Option<bool>,
}

/// What one scrape shows.
pub(crate) struct Scrape<'a> {
    pub(crate) started_ms: u64,
    pub(crate) totals: &'a MetricsView,
    pub(crate) solvers: &'a std::collections::BTreeMap<String, CaptchaCounters>,
    pub(crate) summary: crate::pool::PoolSummary,
    pub(crate) remote_browser_configured: bool,
}

/// The text of `GET /metrics`. Every family has its help and type even without samples;
/// names follow the Prometheus conventions (`promtool check metrics` finds nothing to say):
/// counters end in `_total`, gauges never do, durations are in seconds.
pub(crate) fn exposition(s: &Scrape<'_>) -> String {
    let mut e = Exposition::new();
    e.single(
        "flow2api_up",
        Kind::Gauge,
        "Always 1 while the gateway answers.",
        1.0,
    );
    e.single(
        "flow2api_process_start_time_seconds",
        Kind::Gauge,
        "When the process (at the edge: the isolate) answering this scrape started, Unix seconds.",
        s.started_ms as f64 / 1000.0,
    );

    let requests = "flow2api_http_requests_total";
    e.family(
        requests,
        Kind::Counter,
        "HTTP requests answered, by route template, model and status code.",
    );
    let labelled: Vec<(Vec<&str>, &crate::metrics::Histogram)> = s
        .totals
        .requests
        .iter()
        .map(|(k, h)| (split_key(k, 3), h))
        .collect();
    for (l, h) in &labelled {
        let labels = [("route", l[0]), ("model", l[1]), ("status", l[2])];
        e.sample(requests, &labels, h.count as f64);
    }
    let latency = "flow2api_http_request_duration_seconds";
    e.family(
        latency,
        Kind::Histogram,
        "Time to a response's head, by route template, model and status code.",
    );
    for (l, h) in &labelled {
        let labels = [("route", l[0]), ("model", l[1]), ("status", l[2])];
        e.histogram(latency, &labels, h, REQUEST_BUCKETS);
    }

    let generations = "flow2api_generation_requests_total";
    e.family(
        generations,
        Kind::Counter,
        "Logical generation outcomes by generation_type and result.",
    );
    let gens: Vec<(Vec<&str>, &crate::metrics::Histogram)> = s
        .totals
        .generations
        .iter()
        .map(|(k, h)| (split_key(k, 2), h))
        .collect();
    for (l, h) in &gens {
        let labels = [("generation_type", l[0]), ("result", l[1])];
        e.sample(generations, &labels, h.count as f64);
    }
    let gen_duration = "flow2api_generation_duration_seconds";
    e.family(
        gen_duration,
        Kind::Histogram,
        "Generation durations by generation_type and result.",
    );
    for (l, h) in &gens {
        let labels = [("generation_type", l[0]), ("result", l[1])];
        e.histogram(gen_duration, &labels, h, GENERATION_BUCKETS);
    }

    let refresh = "flow2api_token_refresh_total";
    e.family(
        refresh,
        Kind::Counter,
        "Token refreshes by kind and result.",
    );
    for (k, n) in &s.totals.token_refresh {
        let l = split_key(k, 2);
        e.sample(refresh, &[("kind", l[0]), ("result", l[1])], *n as f64);
    }

    let upstream = "flow2api_upstream_errors_total";
    e.family(
        upstream,
        Kind::Counter,
        "Failed upstream generation calls by class (client, captcha, quota, rate_limited, upstream, auth, account).",
    );
    for (class, n) in &s.totals.upstream_errors {
        e.sample(upstream, &[("class", class)], *n as f64);
    }

    let jobs = "flow2api_video_jobs_total";
    e.family(jobs, Kind::Counter, "Video jobs by the state they reached.");
    for (state, n) in &s.totals.video_jobs {
        e.sample(jobs, &[("state", state)], *n as f64);
    }

    let slots = "flow2api_slots_in_use";
    e.family(
        slots,
        Kind::Gauge,
        "Account concurrency slots held, by kind.",
    );
    let held = |kind: &str| s.totals.slots.get(kind).copied().unwrap_or(0).max(0) as f64;
    for kind in ["image", "video"] {
        e.sample(slots, &[("kind", kind)], held(kind));
    }
    e.single(
        "flow2api_image_inflight",
        Kind::Gauge,
        "Image generations holding an account slot (was flow2api_image_inflight_total).",
        held("image"),
    );
    e.single(
        "flow2api_video_inflight",
        Kind::Gauge,
        "Video generations holding an account slot (was flow2api_video_inflight_total).",
        held("video"),
    );

    let t = &s.summary;
    let gauges: [(&str, &str, f64); 9] = [
        (
            "flow2api_tokens",
            "Accounts (was flow2api_tokens_total).",
            t.total as f64,
        ),
        (
            "flow2api_tokens_active",
            "Selectable accounts.",
            t.active as f64,
        ),
        (
            "flow2api_tokens_inactive",
            "Accounts not selectable (disabled or expired).",
            t.total.saturating_sub(t.active) as f64,
        ),
        (
            "flow2api_tokens_missing_at",
            "Accounts without an access token on record.",
            t.missing_at as f64,
        ),
        (
            "flow2api_tokens_expired",
            "Accounts whose access token has expired.",
            t.expired as f64,
        ),
        (
            "flow2api_tokens_expiring_within_hour",
            "Accounts whose access token expires within the hour.",
            t.expiring_within_1h as f64,
        ),
        (
            "flow2api_tokens_banned_429",
            "Accounts disabled for rate limits (429_rate_limit).",
            t.banned_429 as f64,
        ),
        (
            "flow2api_tokens_credits",
            "Credits of every account at its last check (was flow2api_token_credits_total).",
            t.credits as f64,
        ),
        (
            "flow2api_active_tokens_credits",
            "Credits of the active accounts (was flow2api_active_token_credits_total).",
            t.active_credits as f64,
        ),
    ];
    for (name, help, value) in gauges {
        e.single(name, Kind::Gauge, help, value);
    }
    e.single(
        "flow2api_remote_browser_configured",
        Kind::Gauge,
        "1 when the captcha method chain uses remote_browser and its base URL is set.",
        if s.remote_browser_configured {
            1.0
        } else {
            0.0
        },
    );

    let solves = "flow2api_captcha_solves_total";
    e.family(solves, Kind::Counter, "Captcha tokens obtained, by solver.");
    for (solver, c) in s.solvers {
        e.sample(solves, &[("solver", solver)], c.solves as f64);
    }
    let failures = "flow2api_captcha_failures_total";
    e.family(
        failures,
        Kind::Counter,
        "Captcha solves that gave no token, by solver and failure kind.",
    );
    for (solver, c) in s.solvers {
        let counted: u64 = c.failures_by_kind.values().sum();
        for (kind, n) in &c.failures_by_kind {
            e.sample(failures, &[("solver", solver), ("kind", kind)], *n as f64);
        }
        if c.failures > counted {
            let rest = (c.failures - counted) as f64;
            e.sample(failures, &[("solver", solver), ("kind", "other")], rest);
        }
    }
    let rejected = "flow2api_captcha_google_rejected_total";
    e.family(
        rejected,
        Kind::Counter,
        "Captcha tokens Google then refused (reCAPTCHA evaluation failed), by solver.",
    );
    for (solver, c) in s.solvers {
        e.sample(rejected, &[("solver", solver)], c.google_rejected as f64);
    }
    let seconds = "flow2api_captcha_solve_seconds_total";
    e.family(
        seconds,
        Kind::Counter,
        "Time spent solving captchas (successes and failures), by solver.",
    );
    for (solver, c) in s.solvers {
        e.sample(
            seconds,
            &[("solver", solver)],
            c.latency_ms_total as f64 / 1000.0,
        );
    }
    e.finish()
}

/// A request's route as a metrics label: the route's template, never the path itself (ids
/// and keys stay out of the series, and their number stays bounded).
pub(crate) fn route_label(method: &Method, path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if is_gemini_path(&segments) {
        let last = segments.last().copied().unwrap_or_default();
        return match last.rsplit_once(':').map(|(_, action)| action) {
            Some("generateContent") => "/v1beta/models/{model}:generateContent",
            Some("streamGenerateContent") => "/v1beta/models/{model}:streamGenerateContent",
            Some("predictLongRunning") => "/v1beta/models/{model}:predictLongRunning",
            Some("fetchPredictOperation") => "/v1beta/models/{model}:fetchPredictOperation",
            _ if segments.contains(&"operations") => "/v1beta/operations/{id}",
            _ if segments.contains(&"files") => "/v1beta/files/{id}",
            _ => "/v1beta/models",
        };
    }
    match segments.as_slice() {
        ["health"] => "/health",
        ["metrics"] => "/metrics",
        ["media", _] => "/media/{id}",
        ["mcp"] => "/mcp",
        ["captcha_ws"] => "/captcha_ws",
        ["v1", "models"] => "/v1/models",
        ["v1", "models", _] => "/v1/models/{id}",
        ["v1", "chat", "completions"] => "/v1/chat/completions",
        ["v1", "images", "generations"] => "/v1/images/generations",
        ["v1", "images", "edits"] => "/v1/images/edits",
        ["v1", "images", "variations"] => "/v1/images/variations",
        ["v1", "videos"] => "/v1/videos",
        ["v1", "videos", _] => "/v1/videos/{id}",
        ["v1", "videos", _, "content"] => "/v1/videos/{id}/content",
        ["api", "login" | "admin"] if *method == Method::POST => "/api/login",
        ["api", "plugin", ..] => "/api/plugin/*",
        ["api", ..] => "/api/*",
        _ => "other",
    }
}

/// The model a request names, as a metrics label: a catalogue id or alias, `unknown` for any
/// other name (so that clients cannot grow the series), `none` when it names none. Read from
/// the path (Gemini, Vertex AI) or from the JSON body's `model` of the generation routes.
pub(crate) fn model_label(method: &Method, path: &str, body: &[u8]) -> &'static str {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if is_gemini_path(&segments) {
        let at = segments.iter().position(|s| *s == "models");
        let Some(call) = at.and_then(|i| segments.get(i + 1)) else {
            return "none";
        };
        let name = call.split_once(':').map_or(*call, |(m, _)| m);
        return catalogue_label(name);
    }
    let generates = *method == Method::POST
        && matches!(
            segments.as_slice(),
            ["v1", "chat", "completions"] | ["v1", "images", "generations"] | ["v1", "videos"]
        );
    if !generates {
        return "none";
    }
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        model: Option<std::borrow::Cow<'a, str>>,
    }
    match serde_json::from_slice::<Named<'_>>(body) {
        Ok(Named { model: Some(m) }) => catalogue_label(&m),
        _ => "unknown",
    }
}

/// `name` as the catalogue spells it, or `unknown`.
fn catalogue_label(name: &str) -> &'static str {
    let name = name.trim().trim_start_matches("models/");
    if let Some(m) = crate::models::find_image(name) {
        return m.id;
    }
    if let Some(m) = crate::models::find_video(name) {
        return m.id;
    }
    if let Some(f) = crate::models::find_image_alias(name) {
        return f.alias;
    }
    if let Some(a) = crate::models::find_video_alias(name) {
        return a.alias;
    }
    "unknown"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-1.2_3"));
        assert_eq!(RequestId::from_headers(&h).as_str(), "abc-1.2_3");
        for bad in ["a b", "<script>", "x/y", ""] {
            h.insert(REQUEST_ID_HEADER, HeaderValue::from_str(bad).unwrap());
            let id = RequestId::from_headers(&h);
            assert_ne!(id.as_str(), bad);
            assert_eq!(id.as_str().len(), 32);
        }
        h.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_str(&"a".repeat(65)).unwrap(),
        );
        assert_eq!(RequestId::from_headers(&h).as_str().len(), 32);
        h.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_str(&"a".repeat(64)).unwrap(),
        );
        assert_eq!(RequestId::from_headers(&h).as_str().len(), 64);
    }

    #[test]
    fn routes_are_templates() {
        let get = Method::GET;
        assert_eq!(route_label(&get, "/v1/videos/video_123"), "/v1/videos/{id}");
        assert_eq!(route_label(&get, "/media/abc"), "/media/{id}");
        assert_eq!(
            route_label(&Method::POST, "/v1beta/models/x:generateContent"),
            "/v1beta/models/{model}:generateContent"
        );
        assert_eq!(route_label(&get, "/api/tokens/secret-id"), "/api/*");
        assert_eq!(route_label(&get, "/nope/sk-live-123"), "other");
    }

    #[test]
    fn models_are_catalogue_names_or_unknown() {
        let post = Method::POST;
        let body = br#"{"model":"gemini-3.1-flash-image-landscape","messages":[]}"#;
        assert_eq!(
            model_label(&post, "/v1/chat/completions", body),
            "gemini-3.1-flash-image-landscape"
        );
        let body = br#"{"model":"sk-secret-as-model"}"#;
        assert_eq!(model_label(&post, "/v1/chat/completions", body), "unknown");
        assert_eq!(model_label(&Method::GET, "/v1/models", b""), "none");
        assert_eq!(
            model_label(
                &post,
                "/v1beta/models/gemini-3.1-flash-image-landscape:generateContent",
                b""
            ),
            "gemini-3.1-flash-image-landscape"
        );
    }
}
