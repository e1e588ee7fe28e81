//! The HTTP surface: one function of `http::Request` to `http::Response`, the same on every
//! host. [`App::handle`] routes, authenticates, parses into typed requests, runs the pipeline
//! and renders errors in the client's dialect.

mod admin;
mod admin_auth;
mod admin_compat;
mod audit;
mod body;
mod builder;
mod caller;
mod captcha_admin;
mod client_addr;
mod console;
mod cors;
mod error;
mod gemini_image;
mod gemini_video;
mod generation;
mod images;
mod inputs;
mod keys;
mod login_throttle;
mod logs;
mod markup;
mod mcp;
mod observe;
mod openai;
mod plugin;
mod proxy_admin;
mod recording;
mod sse;
mod videos;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};

use crate::config::Config;
use crate::flow::FlowClient;
use crate::generate::video::PollSettings;
use crate::generate::Generator;
use crate::jobs::{JobRunner, Jobs, LocalRunner, StepOutcome};
use crate::pool::{AccountPool, PoolSettings};
use crate::seams::{
    media, ByteRange, Bytes, CaptchaSolver, Clock, Coordinator, HttpClient, MediaRead, MediaStore,
    Spawn, Storage, StorageError,
};
use crate::settings::{SettingView, SettingsCache, SettingsError};
use crate::tenants::Tenants;

pub use body::Body;
pub use builder::{AppBuilder, BuildError, Seam};
pub use caller::Caller;
pub use client_addr::ClientAddr;
pub use error::{ApiError, Dialect};
pub use observe::{RequestId, REQUEST_ID_HEADER};
// For the fuzz targets' wrappers (`crate::fuzzing`), without making `inputs` public.
#[cfg(feature = "fuzzing")]
pub(crate) use inputs::decode_data_url;

/// The seams an [`App`] runs on, as its [`AppBuilder`] assembled them.
#[derive(Clone)]
pub(crate) struct Deps {
    /// Outgoing HTTP (Flow, captcha provider, client image URLs).
    pub(crate) http: Arc<dyn HttpClient>,
    /// Outgoing HTTP to client-given URLs: refuses non-public destinations.
    pub(crate) untrusted_http: Arc<dyn HttpClient>,
    /// Durable records (accounts). KV at the edge.
    pub(crate) storage: Arc<dyn Storage>,
    /// Strongly consistent records every instance sees at once (admin sessions, settings).
    pub(crate) sessions: Arc<dyn Storage>,
    /// Per-account concurrency slots.
    pub(crate) coordinator: Arc<dyn Coordinator>,
    /// Time.
    pub(crate) clock: Arc<dyn Clock>,
    /// Generated media served at `/media/{id}`.
    pub(crate) media: Arc<dyn MediaStore>,
    /// A captcha solver; `None` builds the one `CAPTCHA_METHOD` names over `http`.
    pub(crate) captcha: Option<Arc<dyn CaptchaSolver>>,
    /// Captcha accounting, shared by every configuration snapshot (in memory, per process).
    pub(crate) captcha_stats: Arc<crate::captcha::CaptchaStats>,
    /// Request, generation and error counters, shared by every configuration snapshot.
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
    /// Where the `extension` method asks for tokens.
    pub(crate) browser_hub: Arc<dyn crate::captcha::BrowserHub>,
    /// The in-process hub, when the browsers connect to this process.
    pub(crate) switchboard: Option<Arc<crate::captcha::Switchboard>>,
    /// Runs clean-up beyond a request; `None` leaves that to the slot's lease.
    pub(crate) spawner: Option<Arc<dyn Spawn>>,
    /// Video job records: strongly consistent (a Durable Object at the edge).
    pub(crate) jobs: Arc<dyn Storage>,
    /// Stores the job records are spread over; none: the job store holds them.
    pub(crate) job_shards: Vec<Arc<dyn Storage>>,
    /// Tenant keys and their counters: strongly consistent.
    pub(crate) tenants: Arc<dyn Storage>,
    /// Request logs and generation counters.
    pub(crate) logs: Arc<dyn crate::seams::LogStore>,
}

/// What runs video jobs.
#[derive(Clone)]
pub(crate) enum JobDriver {
    /// The host's runner (a Durable Object per job at the edge).
    Runner(Arc<dyn JobRunner>),
    /// Background tasks over this spawner, in this process.
    Local(Arc<dyn Spawn>),
}

/// One configuration snapshot's worth of the gateway: everything derived from a [`Config`].
/// A settings change builds a new one; requests in flight finish on theirs.
pub(crate) struct AppInner {
    pub(crate) config: Arc<Config>,
    pub(crate) deps: Deps,
    pub(crate) pool: AccountPool,
    pub(crate) generator: Generator,
    pub(crate) jobs: Jobs,
    pub(crate) runner: Arc<dyn JobRunner>,
    pub(crate) settings: Arc<SettingsCache>,
    pub(crate) tenants: Tenants,
}

/// How long a job record lives after its last change.
const JOB_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// What every snapshot of one [`App`] shares.
struct Shared {
    deps: Deps,
    driver: JobDriver,
    /// The runner over `driver` when jobs run in this process: one for the app's life, so
    /// it keeps track of running jobs across settings changes.
    local: Option<LocalRunner>,
    settings: Arc<SettingsCache>,
    current: Mutex<Arc<AppInner>>,
}

/// The gateway. Cheap to clone; build one per process (or per Worker invocation) with
/// [`App::builder`].
#[derive(Clone)]
pub struct App {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    /// Starts assembling a gateway over `config` (see [`AppBuilder`]).
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder::new(config)
    }

    // One type on both targets: on wasm32 nothing is `Send` and there is one thread.
    #[allow(clippy::arc_with_non_send_sync)]
    fn assemble(deps: Deps, driver: JobDriver, settings: Arc<SettingsCache>) -> Self {
        let config = settings.current();
        deps.metrics.mark_started(deps.clock.now_ms());
        let (inner, local) = AppInner::build(&deps, &driver, None, &settings, config);
        Self {
            shared: Arc::new(Shared {
                deps,
                driver,
                local,
                settings,
                current: Mutex::new(Arc::new(inner)),
            }),
        }
    }

    /// The current snapshot, rebuilt first when the settings store holds a newer version
    /// (asked at most once per [`crate::settings::REFRESH_EVERY`]).
    pub(crate) async fn inner(&self) -> Arc<AppInner> {
        let shared = &self.shared;
        let now = shared.deps.clock.now_ms();
        let config = shared.settings.refresh(&*shared.deps.sessions, now).await;
        self.snapshot_for(config)
    }

    #[allow(clippy::arc_with_non_send_sync)]
    fn snapshot_for(&self, config: Arc<Config>) -> Arc<AppInner> {
        let shared = &self.shared;
        let mut current = match shared.current.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if current.config.version < config.version {
            let (inner, _) = AppInner::build(
                &shared.deps,
                &shared.driver,
                shared.local.as_ref(),
                &shared.settings,
                config,
            );
            *current = Arc::new(inner);
        }
        current.clone()
    }

    /// The snapshot in use, without asking the settings store.
    fn current(&self) -> Arc<AppInner> {
        self.snapshot_for(self.shared.settings.current())
    }

    /// The configuration in use (the environment's, with the settings store's overrides).
    pub fn config(&self) -> Arc<Config> {
        self.current().config.clone()
    }

    /// The video jobs.
    pub fn jobs(&self) -> Jobs {
        self.current().jobs.clone()
    }

    /// Takes one step of a video job (for hosts that drive jobs themselves: a Durable Object
    /// alarm calls this once per invocation and re-arms for the `next` it returns).
    ///
    /// # Errors
    /// Storage failures; the host retries the step later.
    pub async fn step_job(&self, id: &str) -> Result<StepOutcome, StorageError> {
        let inner = self.inner().await;
        let outcome = inner.jobs.step(id).await;
        inner.flush_captcha_stats().await;
        outcome
    }

    /// Schedules every unfinished job again (a restarted process calls this once).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn resume_jobs(&self) -> Result<usize, StorageError> {
        let inner = self.inner().await;
        inner.jobs.resume(&*inner.runner).await
    }

    /// Warns the remote browser service (`remote_browser`, §10.4 of the protocol dossier) of
    /// the image generations to come in each active account's current project, so that its
    /// first solves find the page open; returns how many accounts were prefilled. Does
    /// nothing when no account's method chain includes `remote_browser`. The native host
    /// calls it once at start; the service's answers are ignored, and each call is bounded by
    /// the solver's prefill deadline.
    ///
    /// # Errors
    /// Storage failures listing the accounts.
    pub async fn prefill_captcha(&self) -> Result<usize, StorageError> {
        let inner = self.inner().await;
        let uses = |method: Option<&str>| {
            method.is_some_and(|m| {
                m.split(',')
                    .any(|m| m.trim() == crate::captcha::REMOTE_BROWSER)
            })
        };
        let global = uses(Some(&inner.config.captcha_method));
        let mut cursor = None;
        let mut prefilled = 0;
        loop {
            let (page, next) = inner.pool.list_page(500, cursor.as_deref()).await?;
            let due: Vec<_> = page
                .into_iter()
                .filter(|a| a.active && a.image_enabled && !a.projects.is_empty())
                .filter(|a| match a.captcha_method.as_deref() {
                    Some(own) => uses(Some(own)),
                    None => global,
                })
                .collect();
            prefilled += due.len();
            // A few at a time: the service opens a page for each.
            for batch in due.chunks(8) {
                let calls = batch.iter().map(|a| inner.prefill_account(a));
                futures::future::join_all(calls).await;
            }
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(prefilled),
            }
        }
    }

    /// Deletes the media whose TTL has passed ([`MediaStore::purge_expired`]) and returns how
    /// many objects went. Hosts call it periodically: the cron at the edge, a background task
    /// natively ([`crate::native`]).
    ///
    /// # Errors
    /// The media store's failure; the next call tries again.
    pub async fn purge_media(&self) -> Result<u64, StorageError> {
        self.shared.deps.media.purge_expired().await
    }

    /// The account pool, for hosts that run background refreshes.
    pub fn pool(&self) -> AccountPool {
        self.current().pool.clone()
    }

    /// The tenant keys (what the `/api/keys` admin routes manage), for hosts and embedders
    /// that hand out keys themselves.
    pub fn tenants(&self) -> Tenants {
        self.current().tenants.clone()
    }

    /// Every setting with its current value (secrets masked) and where it comes from.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn settings(&self) -> Result<(u64, Vec<SettingView>), StorageError> {
        let overrides = crate::settings::load(&*self.shared.deps.sessions).await?;
        Ok((
            overrides.version,
            crate::settings::view(self.shared.settings.base(), &overrides),
        ))
    }

    /// Changes runtime settings (`None` removes an override); the next request of every
    /// process and isolate uses them, here at once, elsewhere within a second.
    ///
    /// # Errors
    /// [`SettingsError`] for invalid values, a stale `expected_version` or storage failures.
    pub async fn update_settings(
        &self,
        changes: &BTreeMap<String, Option<String>>,
        expected_version: Option<u64>,
    ) -> Result<u64, SettingsError> {
        let shared = &self.shared;
        let overrides = shared
            .settings
            .update(
                &*shared.deps.sessions,
                changes,
                expected_version,
                shared.deps.clock.now_ms(),
            )
            .await?;
        Ok(overrides.version)
    }

    /// Answers one request. Never panics on client input; every failure is a response.
    /// Runs [`check_head`](Self::check_head) first, so a host that did not call it gets the
    /// same answers.
    pub async fn handle(&self, req: Request<Bytes>) -> Response<Body> {
        let inner = self.inner().await;
        let (mut parts, body) = req.into_parts();
        // A head `check_head` passed carries its caller: not looked up twice.
        if parts.extensions.get::<Caller>().is_none() {
            if let Some(rejected) = inner.check_head(&mut parts).await {
                return rejected;
            }
        }
        inner.begin(&mut parts);
        let mut observed = inner.observed(&parts);
        // A host that read more than the limit (or announced nothing) gets the same answer.
        if body.len() > inner.body_limit(&parts) {
            let mut resp = inner.rejected(
                &parts,
                too_large(inner.body_limit(&parts)),
                dialect_of(parts.uri.path()),
            );
            inner.end(&observed, &mut resp);
            return resp;
        }
        observed.model = observe::model_label(&parts.method, parts.uri.path(), &body);
        let path = parts.uri.path().to_owned();
        let origin = parts.headers.get(header::ORIGIN).cloned();
        let mut resp = inner.clone().route(Request::from_parts(parts, body)).await;
        cors::apply(
            &mut resp,
            &path,
            origin.as_ref(),
            &inner.config.admin_cors_origins,
        );
        inner.end(&observed, &mut resp);
        resp
    }

    /// The answer to a request that can be refused from its head alone, before its body is
    /// read: an unknown route (404), a missing or wrong API key on an API route (401, or 503
    /// when no key is configured), a `Content-Length` over
    /// [`body_limit`](Self::body_limit) (413). `None`: read the body (at most `body_limit`
    /// bytes) and call [`handle`](Self::handle) with these `parts`. Hosts call this first so
    /// that such a request costs no body read (a client with a bad key cannot make the server
    /// take in 100 MB).
    ///
    /// The key is the root key (`API_KEY`, compared in constant time, no storage call) or a
    /// tenant's ([`crate::tenants`], one read of the tenant store, never cached, so a revoked
    /// key is refused at once). The [`Caller`] it resolves to is left in `parts.extensions`,
    /// so that [`handle`](Self::handle) does not look it up again.
    pub async fn check_head(&self, parts: &mut http::request::Parts) -> Option<Response<Body>> {
        self.current().check_head(parts).await
    }

    /// The in-process hub of the `extension` captcha method, which a host feeds from the
    /// sockets of `/captcha_ws` (§10.5); `None` when the builder was given another
    /// [`BrowserHub`](crate::captcha::BrowserHub).
    pub fn switchboard(&self) -> Option<Arc<crate::captcha::Switchboard>> {
        self.shared.deps.switchboard.clone()
    }

    /// Whether a `/captcha_ws` upgrade with this head may attach a solver: only the root key
    /// (`API_KEY`, in constant time) may, never a tenant's (§10.5: else close 1008).
    pub fn captcha_ws_allowed(&self, headers: &http::HeaderMap, uri: &http::Uri) -> bool {
        let config = self.config();
        match (
            &config.api_key,
            crate::captcha::given_key(headers, uri.query()),
        ) {
            (Some(expected), Some(given)) => expected.ct_eq(&given),
            _ => false,
        }
    }

    /// The largest body a request with this head may carry: `MAX_REQUEST_BYTES` for requests
    /// that send content (`POST`, `PUT`, `PATCH`) except the admin login, 64 KiB for the rest.
    /// A host reads no more than this; a body that runs past it is answered 413.
    pub fn body_limit(&self, parts: &http::request::Parts) -> usize {
        self.current().body_limit(parts)
    }

    /// A 413 in the client's dialect for a body that ran past
    /// [`body_limit`](Self::body_limit) while it was read (one that did not announce its
    /// length, or announced it wrongly).
    pub fn body_too_large(&self, parts: &http::request::Parts) -> Response<Body> {
        let inner = self.current();
        let limit = inner.body_limit(parts);
        let mut resp = inner.rejected(parts, too_large(limit), dialect_of(parts.uri.path()));
        inner.end(&inner.observed(parts), &mut resp);
        resp
    }
}

/// What a small request (no content, or a login) may carry.
const SMALL_BODY: usize = 64 * 1024;

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("The request body is larger than {limit} bytes (MAX_REQUEST_BYTES)."),
    )
    .code("request_too_large")
}

/// Whether a request comes from a Gemini client (google-genai sends its key as
/// `x-goog-api-key`), for the paths both dialects share.
fn is_gemini_client(headers: &http::HeaderMap) -> bool {
    headers.contains_key("x-goog-api-key")
}

/// Whether a path is one of Gemini's or Vertex AI's routes: `/v1beta/…`, `/v1/projects/…`,
/// `/v1/publishers/…`, and `/v1/models/{model}:{method}` (google-genai's default version).
fn is_gemini_path(segments: &[&str]) -> bool {
    match segments {
        ["v1beta" | "v1beta1", ..] | ["v1", "projects" | "publishers", ..] => true,
        ["v1", "models", call] => call.contains(':'),
        _ => false,
    }
}

/// The error dialect of a path: Gemini's for its and Vertex AI's routes, JSON-RPC for the MCP
/// endpoint, OpenAI's elsewhere.
fn dialect_of(path: &str) -> Dialect {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if is_gemini_path(&segments) {
        Dialect::Gemini
    } else if segments == ["mcp"] {
        Dialect::JsonRpc
    } else {
        Dialect::OpenAi
    }
}

impl AppInner {
    /// Adds this process's captcha counts to the shared totals when they are due
    /// ([`crate::captcha::FLUSH_EVERY`]): in the background where the host can run work beyond
    /// a request, else now. A failed flush keeps its counts for the next one.
    /// The metrics go with them ([`crate::metrics::FLUSH_EVERY`]), so that counts taken where
    /// no request ends (a job's step in its Durable Object) reach the totals too.
    pub(crate) async fn flush_captcha_stats(&self) {
        let stats = self.deps.captcha_stats.clone();
        let metrics = self.deps.metrics.clone();
        let store = self.deps.sessions.clone();
        let now = self.deps.clock.now_ms();
        let due = stats.flush_due(now) || metrics.flush_due(now);
        let flush = async move {
            let _ = stats.flush_if_due(&*store, now, false).await;
            let _ = metrics.flush_if_due(&*store, now, false).await;
        };
        match &self.deps.spawner {
            Some(spawner) if due => {
                spawner.spawn(crate::seams::boxed(flush));
            }
            Some(_) => {}
            None => flush.await,
        }
    }
}

impl AppInner {
    /// Everything derived from `config` over the shared seams. With `local`, jobs keep
    /// running on it; else a new local runner is made when the driver asks for one.
    #[allow(clippy::arc_with_non_send_sync)]
    fn build(
        deps: &Deps,
        driver: &JobDriver,
        local: Option<&LocalRunner>,
        settings: &Arc<SettingsCache>,
        config: Arc<Config>,
    ) -> (Self, Option<LocalRunner>) {
        // Every upstream call of this snapshot leaves as its settings say (`EGRESS_RELAY_URL`,
        // `PROXY_URL`) unless its account names its own way.
        let mut deps = deps.clone();
        deps.http = Arc::new(crate::egress::EgressHttp::from_config(
            deps.http.clone(),
            deps.clock.clone(),
            &config,
        ));
        let deps = &deps;
        let flow = FlowClient::new(
            deps.http.clone(),
            deps.clock.clone(),
            &config.labs_base_url,
            &config.api_base_url,
        );
        let captcha: Arc<dyn CaptchaSolver> = match &deps.captcha {
            // A solver the host brought is booked under its own name.
            Some(solver) => Arc::new(crate::captcha::ChainSolver::new(
                vec![("custom".to_owned(), solver.clone())],
                deps.captcha_stats.clone(),
                deps.clock.clone(),
            )),
            None => Arc::new(crate::captcha::from_config(
                deps.http.clone(),
                deps.clock.clone(),
                &config,
                deps.captcha_stats.clone(),
                Some(deps.browser_hub.clone()),
            )),
        };
        let tenants = Tenants::new(deps.tenants.clone(), deps.clock.clone());
        let pool = AccountPool::new(
            deps.storage.clone(),
            deps.coordinator.clone(),
            deps.spawner.clone(),
            flow.clone(),
            PoolSettings::from(&*config),
        )
        .with_metrics(deps.metrics.clone());
        let generator = Generator::new(
            flow,
            captcha,
            deps.media.clone(),
            config.max_retries,
            config.captcha_max_retries,
        )
        .with_captcha_stats(deps.captcha_stats.clone())
        .with_media_cache(config.media_cache)
        .with_media_ttl(config.media_ttl)
        .with_media_proxy(config.media_proxy_url.as_ref());
        // Accounts may name their own chain; a host-given solver serves every account.
        let generator = match deps.captcha {
            Some(_) => generator,
            None => generator.with_account_methods(Arc::new(crate::captcha::all_methods(
                deps.http.clone(),
                deps.clock.clone(),
                &config,
                deps.captcha_stats.clone(),
                Some(deps.browser_hub.clone()),
            ))),
        };
        let poll = PollSettings::within(config.poll_interval, config.video_timeout);
        let jobs = Jobs::new(
            deps.jobs.clone(),
            pool.clone(),
            generator.clone(),
            deps.clock.clone(),
            poll,
            JOB_TTL,
        )
        .with_record_shards(deps.job_shards.clone())
        .with_tenants(tenants.clone())
        .with_end_hook(Arc::new(recording::JobLog {
            logs: deps.logs.clone(),
            retention: crate::logs::retention(&config),
            pool: pool.clone(),
        }));
        let (runner, local): (Arc<dyn JobRunner>, Option<LocalRunner>) = match (driver, local) {
            (JobDriver::Runner(r), _) => (r.clone(), None),
            (JobDriver::Local(_), Some(l)) => {
                l.use_jobs(jobs.clone());
                (Arc::new(l.clone()), None)
            }
            (JobDriver::Local(spawner), None) => {
                let l =
                    LocalRunner::new(Arc::new(jobs.clone()), spawner.clone(), deps.clock.clone());
                (Arc::new(l.clone()), Some(l))
            }
        };
        (
            Self {
                config,
                deps: deps.clone(),
                pool,
                generator,
                jobs,
                runner,
                settings: settings.clone(),
                tenants,
            },
            local,
        )
    }

    /// The answer to a request that can be refused from its head alone, before its body is
    /// read: an unknown route (404), a missing or wrong API key on an API route (401, or 503
    /// when no key is configured), a `Content-Length` over
    /// [`App::max_request_bytes`] (413). `None`: read the body and call
    /// [`App::handle`]. Hosts call this first so that such a request costs no body
    /// read (a client with a bad key cannot make the server take in 100 MB).
    pub(crate) async fn check_head(
        &self,
        parts: &mut http::request::Parts,
    ) -> Option<Response<Body>> {
        self.begin(parts);
        let mut rejected = self.check_head_unobserved(parts).await?;
        self.end(&self.observed(parts), &mut rejected);
        Some(rejected)
    }

    /// [`check_head`](Self::check_head) without the request's bookkeeping.
    async fn check_head_unobserved(
        &self,
        parts: &mut http::request::Parts,
    ) -> Option<Response<Body>> {
        if parts.method == Method::OPTIONS {
            return None;
        }
        let path = parts.uri.path();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (needs_key, dialect) = match segments.as_slice() {
            ["health"] | ["metrics"] | ["media", _] | ["api", ..] => (false, Dialect::OpenAi),
            segs if console::is_console_path(segs) => (false, Dialect::OpenAi),
            ["mcp"] => (true, Dialect::JsonRpc),
            segs if is_gemini_path(segs) => (true, Dialect::Gemini),
            ["v1", "models", ..] if is_gemini_client(&parts.headers) => (true, Dialect::Gemini),
            ["v1", ..] => (true, Dialect::OpenAi),
            _ => {
                let e = ApiError::not_found(format!("No route for {} {path}", parts.method));
                return Some(self.rejected(parts, e, Dialect::OpenAi));
            }
        };
        if needs_key {
            match self.resolve_caller(&parts.headers, &parts.uri).await {
                Ok(caller) => {
                    parts.extensions.insert(caller);
                }
                Err(e) => return Some(self.rejected(parts, e, dialect)),
            }
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let limit = self.body_limit(parts);
        if declared.is_some_and(|n| n > limit as u64) {
            return Some(self.rejected(parts, too_large(limit), dialect));
        }
        None
    }

    /// See [`App::body_limit`].
    pub(crate) fn body_limit(&self, parts: &http::request::Parts) -> usize {
        // Small bodies only where a caller may not be an admin yet (and where nothing big
        // is ever sent): the connection token is checked after the body is read.
        let login = matches!(
            parts.uri.path().trim_end_matches('/'),
            "/api/login"
                | "/api/admin/login"
                | "/api/plugin/update-token"
                | "/api/plugin/check-tokens"
                | "/api/plugin/config"
                | "/api/tokens/st2at"
        );
        if !login && matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
            self.config.max_request_bytes
        } else {
            SMALL_BODY
        }
    }

    fn rejected(
        &self,
        parts: &http::request::Parts,
        e: ApiError,
        dialect: Dialect,
    ) -> Response<Body> {
        let mut resp = e.into_response(dialect);
        cors::apply(
            &mut resp,
            parts.uri.path(),
            parts.headers.get(header::ORIGIN),
            &self.config.admin_cors_origins,
        );
        resp
    }

    /// Routes one request; a generation request's log row is written when it ends.
    async fn route(self: Arc<Self>, mut req: Request<Bytes>) -> Response<Body> {
        let draft = recording::begin(&self, &mut req);
        let resp = self.clone().dispatch(req).await;
        match draft {
            Some(d) => recording::finish(&self, d, resp).await,
            None => resp,
        }
    }

    async fn dispatch(self: Arc<Self>, req: Request<Bytes>) -> Response<Body> {
        let inner = &self;
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        if method == Method::OPTIONS {
            return Response::builder()
                .status(StatusCode::NO_CONTENT)
                .body(Body::empty())
                .unwrap_or_else(|_| Response::new(Body::empty()));
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let result = match (&method, segments.as_slice()) {
            (&Method::GET, ["health"]) => Ok(inner.health().await),
            (&Method::GET, ["metrics"]) => inner.metrics(req.headers()).await,
            (_, segs) if console::is_console_path(segs) => {
                console::serve(&method, &path, segs, req.headers())
            }
            (&Method::GET, ["media", id]) => inner.serve_media(id, req.headers()).await,
            // What a player asks before it seeks: the same head, no body.
            (&Method::HEAD, ["media", id]) => {
                inner.serve_media(id, req.headers()).await.map(|resp| {
                    let (parts, _) = resp.into_parts();
                    Response::from_parts(parts, Body::empty())
                })
            }
            // One path, two dialects: google-genai (API version `v1`) sends `x-goog-api-key`.
            (&Method::GET, ["v1", "models"]) if is_gemini_client(req.headers()) => {
                caller_of(&req).map(|caller| gemini_video::list_models(&caller))
            }
            (&Method::GET, ["v1", "models"]) => {
                caller_of(&req).map(|caller| openai::models_response(&caller))
            }
            (&Method::GET, ["v1", "models", name]) if is_gemini_client(req.headers()) => {
                caller_of(&req).and_then(|caller| gemini_image::get_model(&caller, name))
            }
            (&Method::GET, ["v1", "models", id]) => {
                caller_of(&req).and_then(|caller| openai::model_response(&caller, id))
            }
            (&Method::POST, ["v1", "chat", "completions"]) => match caller_of(&req) {
                Ok(caller) => openai::chat_completions(inner.clone(), req, caller).await,
                Err(e) => Err(e),
            },
            (&Method::POST, ["v1", "images", what @ ("generations" | "edits")]) => {
                let kind = if *what == "edits" {
                    images::Kind::Edit
                } else {
                    images::Kind::Generation
                };
                match caller_of(&req) {
                    Ok(caller) => images::create(inner.clone(), req, caller, kind).await,
                    Err(e) => Err(e),
                }
            }
            (&Method::POST, ["v1", "images", "variations"]) => {
                caller_of(&req).and_then(|_| Err(images::variations()))
            }
            (_, ["v1", "videos", ..]) => {
                return match caller_of(&req) {
                    Ok(caller) => {
                        inner
                            .clone()
                            .video_route(&method, &segments[2..], req, &caller)
                            .await
                    }
                    Err(e) => Err(e),
                }
                .unwrap_or_else(|e| e.into_response(Dialect::OpenAi));
            }
            (_, ["mcp"]) => {
                return match caller_of(&req) {
                    Ok(caller) => mcp::handle(inner.clone(), req, caller).await,
                    Err(e) => e.into_response(Dialect::JsonRpc),
                };
            }
            (_, segs) if is_gemini_path(segs) => {
                return match caller_of(&req) {
                    Ok(caller) => {
                        inner
                            .clone()
                            .gemini_route(&method, &segments, req, &caller)
                            .await
                    }
                    Err(e) => Err(e),
                }
                .unwrap_or_else(|e| e.into_response(Dialect::Gemini));
            }
            (&Method::POST, ["api", "login"] | ["api", "admin", "login"]) => {
                inner.login(&req).await
            }
            (_, ["api", ..]) => inner.admin_route(&method, &segments[1..], &req).await,
            (
                _,
                ["v1", "models"]
                | ["v1", "chat", "completions"]
                | ["v1", "images", "generations" | "edits" | "variations"],
            ) => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed here"),
            )),
            _ => Err(ApiError::not_found(format!("No route for {method} {path}"))),
        };
        result.unwrap_or_else(|e| e.into_response(Dialect::OpenAi))
    }
}

impl AppInner {
    /// See [`App::prefill_captcha`].
    async fn prefill_account(&self, account: &crate::pool::Account) {
        let Some(project) = account.projects.first() else {
            return;
        };
        let action = crate::seams::CaptchaAction::ImageGeneration;
        self.generator
            .for_account(account)
            .prefill(account, project, action)
            .await;
    }

    /// `/v1/videos…` (OpenAI Videos).
    async fn video_route(
        self: Arc<Self>,
        method: &Method,
        rest: &[&str],
        req: Request<Bytes>,
        caller: &Caller,
    ) -> Result<Response<Body>, ApiError> {
        match (method, rest) {
            (&Method::POST, []) => videos::create(self, req, caller).await,
            (&Method::GET, []) => videos::list(&self, &req, caller).await,
            (&Method::GET, [id]) => videos::retrieve(&self, videos::valid_id(id)?, caller).await,
            (&Method::DELETE, [id]) => videos::delete(&self, videos::valid_id(id)?, caller).await,
            (&Method::GET, [id, "content"]) => {
                videos::content(&self, videos::valid_id(id)?, caller).await
            }
            (_, [] | [_] | [_, "content"]) => Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed here"),
            )),
            _ => Err(ApiError::not_found(format!(
                "No route for {method} /v1/videos/{}",
                rest.join("/")
            ))),
        }
    }

    /// `/v1beta/…` (Gemini Veo operations and the files their results point at), and the
    /// Vertex AI express-mode paths the same SDKs use (`/v1beta1/[projects/…/locations/…/]
    /// publishers/google/models/…`).
    async fn gemini_route(
        self: Arc<Self>,
        method: &Method,
        segments: &[&str],
        req: Request<Bytes>,
        caller: &Caller,
    ) -> Result<Response<Body>, ApiError> {
        let not_found =
            || ApiError::not_found(format!("No route for {method} /{}", segments.join("/")));
        // The resource prefix before `models/`: empty for the Gemini API, the publisher
        // (and project) path for Vertex AI; operation names repeat it.
        let rest = &segments[1..];
        let at = rest
            .iter()
            .position(|s| matches!(*s, "models" | "operations" | "files"))
            .ok_or_else(not_found)?;
        let prefix: String = rest[..at].iter().map(|s| format!("{s}/")).collect();
        let flavour = gemini_video::Flavour::from_prefix(&prefix);
        match (method, &rest[at..]) {
            (&Method::POST, ["models", call]) => match call.rsplit_once(':') {
                Some((model, action @ ("generateContent" | "streamGenerateContent"))) => {
                    let (model, stream) = (model.to_owned(), action == "streamGenerateContent");
                    gemini_image::generate_content(self, req, &model, caller, stream).await
                }
                Some((model, "predictLongRunning")) => {
                    let model = model.to_owned();
                    gemini_video::predict_long_running(self, req, &model, flavour, caller).await
                }
                Some((_, "fetchPredictOperation")) => {
                    gemini_video::fetch_predict_operation(&self, &req, flavour, caller).await
                }
                _ => Err(not_found()),
            },
            (&Method::GET, ["models"]) if prefix.is_empty() => {
                Ok(gemini_video::list_models(caller))
            }
            (&Method::GET, ["models", name]) if prefix.is_empty() => {
                gemini_image::get_model(caller, name)
            }
            (&Method::GET, ["models", _, "operations", id] | ["operations", id]) => {
                gemini_video::get_operation(&self, &req, id, flavour, caller).await
            }
            (&Method::GET, ["files", file]) if prefix.is_empty() => {
                let id = file.strip_suffix(":download").unwrap_or(file);
                videos::content(&self, videos::valid_id(id)?, caller).await
            }
            _ => Err(not_found()),
        }
    }

    /// Who the key of a request's head belongs to: the root key (`API_KEY`, compared first, in
    /// constant time, with no storage call), a live admin session sent as
    /// `Authorization: Bearer` (the console's playground; the root caller), or a tenant
    /// ([`Tenants::authenticate`]).
    async fn resolve_caller(
        &self,
        h: &http::HeaderMap,
        uri: &http::Uri,
    ) -> Result<Caller, ApiError> {
        let Some(expected) = &self.config.api_key else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "API_KEY is not configured on this server; set it to enable the API.",
            )
            .code("api_key_not_configured"));
        };
        let Some(given) = caller::given_key(h, uri) else {
            return Err(ApiError::unauthorized(
                "Missing API key: send Authorization: Bearer <key>, x-goog-api-key, or ?key=.",
            ));
        };
        if expected.ct_eq(&given) {
            return Ok(Caller::root());
        }
        // The console's admin session, sent as a bearer: the root caller while it lives. Only
        // a session-shaped bearer is looked up, so ordinary keys cost no extra read.
        if admin_auth::is_session_shaped(&given) && h.contains_key(header::AUTHORIZATION) {
            return if self.admin_session_live(&given).await? {
                Ok(Caller::root())
            } else {
                // A 64-hex API key that is wrong lands here too: the message covers both.
                Err(ApiError::unauthorized(
                    "Incorrect API key provided, or an admin session that has ended (log in again).",
                ))
            };
        }
        match self.tenants.authenticate(&given).await {
            Ok(Some(tenant)) => Ok(Caller::tenant_of(tenant)),
            Ok(None) => Err(ApiError::unauthorized("Incorrect API key provided.")),
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /media/{id}`: the object streamed, or the one byte range a `Range:` header asks
    /// for (`206` with `Content-Range`; `416` when it starts past the end; other range forms
    /// are ignored and the whole object is sent, as HTTP allows). Objects never change, so the
    /// id is the `ETag`: `If-None-Match` with it answers `304`, and an `If-Range` with another
    /// validator drops the range.
    pub(crate) async fn serve_media(
        &self,
        id: &str,
        headers: &http::HeaderMap,
    ) -> Result<Response<Body>, ApiError> {
        let etag = format!("\"{id}\"");
        let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let range_applies = header_str(header::IF_RANGE).is_none_or(|v| v.trim() == etag.as_str());
        let range = header_str(header::RANGE)
            .filter(|_| range_applies)
            .and_then(ByteRange::parse_header);
        let not_modified = header_str(header::IF_NONE_MATCH).is_some_and(|v| etag_matches(v, id));
        // Kept by clients for as long as the store keeps it, a day at most.
        let cache_control = format!(
            "public, max-age={}, immutable",
            self.config.media_ttl.as_secs().clamp(1, 86_400)
        );
        let object = match self.deps.media.get(id, range).await {
            Ok(MediaRead::Found(o)) => o,
            Ok(MediaRead::Missing) => {
                return Err(ApiError::not_found("No such media (it may have expired)."))
            }
            Ok(MediaRead::Unsatisfiable { total_len }) => {
                return Ok(Response::builder()
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{total_len}"))
                    .header(header::ACCEPT_RANGES, "bytes")
                    .body(Body::empty())
                    .unwrap_or_else(|_| Response::new(Body::empty())));
            }
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Media storage is unavailable.",
                )
                .retry_after(5))
            }
        };
        if not_modified {
            return Ok(Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header(header::ETAG, etag)
                .header(header::CACHE_CONTROL, cache_control)
                .body(Body::empty())
                .unwrap_or_else(|_| Response::new(Body::empty())));
        }
        let span = object.range.clone();
        let partial = object.is_partial();
        let total_len = object.total_len;
        // The declared type comes from the bytes where they are at hand (a body from its start),
        // else it must be one of the media types the store can hold: never a type a stored
        // object could use to make a browser run it as a page.
        let mut body = object.body;
        let mut first = None;
        let mut content_type = media::is_known_media_type(&object.content_type)
            .then_some(object.content_type.as_str());
        if span.start == 0 {
            first = body.next().await;
            if let Some(Ok(head)) = &first {
                content_type = media::sniff_media_type(head).or(content_type);
            }
        }
        let mut builder = Response::builder()
            .header(
                header::CONTENT_TYPE,
                content_type.unwrap_or("application/octet-stream"),
            )
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
            .header(header::CACHE_CONTROL, cache_control)
            .header(header::ETAG, etag)
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CONTENT_LENGTH, span.end - span.start);
        builder = if partial {
            builder.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", span.start, span.end - 1, total_len),
            )
        } else {
            builder.status(StatusCode::OK)
        };
        // A stream that breaks off ends the body early; the length tells the client.
        let body = futures::stream::iter(first)
            .chain(body)
            .take_while(|chunk| futures::future::ready(chunk.is_ok()))
            .filter_map(|chunk| futures::future::ready(chunk.ok()));
        Ok(builder
            .body(Body::Stream(crate::seams::boxed_stream(body)))
            .unwrap_or_else(|_| Response::new(Body::empty())))
    }

    /// Base URL for the gateway's own links (`/media/{id}`, video content): `PUBLIC_BASE_URL`;
    /// else, with `TRUST_FORWARDED_HEADERS`, the `X-Forwarded-Host`/`-Proto` a proxy set;
    /// else the request's `Host`. A host value that is not a plain `name[:port]` is replaced
    /// by `localhost`, so a client cannot smuggle markup or another path into links that end
    /// up in HTML, markdown and stored job records.
    pub(crate) fn public_base(&self, req: &Request<Bytes>) -> String {
        if let Some(b) = &self.config.public_base_url {
            return b.clone();
        }
        let h = req.headers();
        let first = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let trusted = self.config.trust_forwarded_headers;
        let host = trusted
            .then(|| first("x-forwarded-host"))
            .flatten()
            .or_else(|| first("host"))
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .filter(|h| is_plain_authority(h))
            .unwrap_or_else(|| "localhost".to_owned());
        let scheme = trusted
            .then(|| first("x-forwarded-proto"))
            .flatten()
            .or_else(|| req.uri().scheme_str().map(str::to_owned))
            .map(|s| s.to_ascii_lowercase())
            .filter(|s| s == "http" || s == "https")
            .unwrap_or_else(|| "http".to_owned());
        format!("{scheme}://{host}")
    }
}

/// The caller [`App::check_head`] left in a request's extensions (every API route's request
/// has one: [`App::handle`] runs the check when the host did not).
fn caller_of(req: &Request<Bytes>) -> Result<Caller, ApiError> {
    req.extensions().get::<Caller>().cloned().ok_or_else(|| {
        ApiError::unauthorized(
            "Missing API key: send Authorization: Bearer <key>, x-goog-api-key, or ?key=.",
        )
    })
}

/// Whether an `If-None-Match` value names the media object `id` (its `ETag` is the quoted
/// id; weak and strong forms compare alike here, as RFC 9110 asks of `If-None-Match`).
fn etag_matches(value: &str, id: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").trim_matches('"') == id)
}

/// `name[:port]` or `[v6]:port` with nothing else: letters, digits, `.-_:[]`.
fn is_plain_authority(host: &str) -> bool {
    host.len() <= 255
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        })
        && host.parse::<http::uri::Authority>().is_ok()
}

pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Body::Full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
