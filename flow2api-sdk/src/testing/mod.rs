//! [`FakeFlow`]: an in-process fake of the Google Flow upstream and of the task-API captcha
//! solvers (YesCaptcha, CapMonster, EzCaptcha, CapSolver).
//!
//! `FakeFlow` implements [`HttpClient`], so a test hands it to the SDK in place of the real
//! network; the `flow2api-fake-upstream` binary in `flow2api-examples` serves the same fake over
//! loopback HTTP for end-to-end tests. It answers in exactly the shapes of
//! `docs/upstream.md`, records every request, and injects faults.
//!
//! # Base URLs
//!
//! Requests are routed by the end of their path, whatever the host, so one fake answers for every
//! base URL. With `base` the public base given to [`FakeFlow::new`], point the real client at:
//!
//! | Setting | Value | Accessor |
//! |---|---|---|
//! | `FLOW_LABS_BASE_URL` | `<base>/fx/api` | [`FakeFlow::labs_base`] |
//! | `FLOW_API_BASE_URL` | `<base>/v1` | [`FakeFlow::api_base`] |
//! | `YESCAPTCHA_BASE_URL` | `<base>/yescaptcha` | [`FakeFlow::yescaptcha_base`] |
//! | `CAPMONSTER_BASE_URL`, `EZCAPTCHA_BASE_URL`, `CAPSOLVER_BASE_URL` | `<base>/<solver>` | [`FakeFlow::solver_base`] |
//!
//! Generated images get `fifeUrl`s `<base>/fife/<mediaId>.png`, which the fake also serves.
//!
//! # Endpoints
//!
//! | [`Endpoint`] | Request | Checks |
//! |---|---|---|
//! | `Session` (session-to-access-token) | `GET …/auth/session` | ST cookie `__Secure-next-auth.session-token`; unknown or expired ST → 200 `{}` |
//! | `Credits` (credits) | `GET …/credits` | `authorization: Bearer <AT>`; unknown or expired AT, or a revoked grant ([`FakeFlow::revoke_grant`]) → 401 |
//! | `CreateProject` (create-project) | `POST …/trpc/project.createProject` | ST cookie, `toolName` `PINHOLE` |
//! | `UploadImage` (upload-image) | `POST …/flow/uploadImage` | AT, base64 `imageBytes`, `mimeType`, own project |
//! | `GenerateImage` (generate-image) | `POST …/projects/{PID}/flowMedia:batchGenerateImages` | AT, own project, captcha token, User-Agent, inputs |
//! | `UpsampleImage` (upsample-image) | `POST …/flow/upsampleImage` | AT, own project, captcha token, User-Agent, own generated media |
//! | `CreateTask` | `POST …/<solver>/createTask` | the solver's `clientKey` ([`fake_solver_key`]), its task type, [`SolverFault`]s |
//! | `GetTaskResult` | `POST …/<solver>/getTaskResult` | the solver's `clientKey`, known task |
//! | `ScoreVerify` | `POST …/score/verify` | `{"g-recaptcha-response"}` a token the fake issued → `{"success":true,"score":0.9,"action"}` |
//! | `Fife` | `GET …/fife/{id}.png` | generated id, else 404 |
//! | `GenerateVideoText` (video-submit-text) | `POST …/video:batchAsyncGenerateVideoText` | AT, own project, `VIDEO_GENERATION` captcha token, User-Agent, video-submit body |
//! | `GenerateVideoStartImage` (video-submit-start-image) | `POST …/video:batchAsyncGenerateVideoStartImage` | as video-submit-text, `startImage.mediaId` uploaded by the account |
//! | `GenerateVideoStartEndImage` (video-submit-start-end-image) | `POST …/video:batchAsyncGenerateVideoStartAndEndImage` | as video-submit-start-image, and `endImage.mediaId` |
//! | `GenerateVideoReferenceImages` (video-submit-reference-images) | `POST …/video:batchAsyncGenerateVideoReferenceImages` | as video-submit-text, 1–3 uploaded `referenceImages` (`IMAGE_USAGE_TYPE_ASSET`) |
//! | `ExtendVideo` (video-submit-extend) | `POST …/video:batchAsyncGenerateVideoExtendVideo` | as video-submit-text, `videoInput.mediaId` a finished video of the account, `metadata.workflowId` |
//! | `UpsampleVideo` (video-submit-upsample) | `POST …/video:batchAsyncGenerateVideoUpsampleVideo` | as video-submit-extend without `textInput`, `resolution`, `metadata.sceneId` |
//! | `CheckVideoStatus` (video-status) | `POST …/video:batchCheckAsyncVideoGenerationStatus` | AT, `media[].name` (or `operations[]`) of the account's operations |
//! | `MediaUrlRedirect` (media-url-redirect) | `GET …/trpc/media.getMediaUrlRedirect?name=…&mediaUrlType=MEDIA_URL_TYPE_FULL_MEDIA` | ST cookie, finished video → 307 `Location: <base>/videos/<id>.mp4` |
//! | `MediaBytes` (media-bytes) | `GET …/media/{name}` | AT, finished video → `{"name","video":{"encodedVideo",…}}` |
//! | `Concatenate` (concat-submit) | `POST …:runVideoFxConcatenation` | AT, ≥ 2 finished `inputVideos` |
//! | `ConcatenationStatus` (concat-status) | `POST …:runVideoFxCheckConcatenationStatus` | AT, known operation |
//! | `VideoFile` | `GET …/videos/{id}.mp4` | finished video or concatenation → [`fake_mp4`], else 404 |
//! | `WarmUp` | the front end's warm-up tRPC GETs, `submitBatchLog`, `:checkAppAvailability` | none; 200 `{}` |
//! | `RemoteBrowserSolve` | `POST …/api/v1/solve` | `Authorization: Bearer` [`fake_solver_key`]`("remote_browser")`, `project_id`, a generation `action`; answers a token bound to the reported fingerprint ([`REMOTE_BROWSER_USER_AGENT`], [`REMOTE_BROWSER_LANGUAGE`], [`REMOTE_BROWSER_PLATFORM`], an `NID` cookie), or 503 with the `no_slot` solver fault |
//! | `RemoteBrowserPrefill`, `RemoteBrowserFinish`, `RemoteBrowserError` | `POST …/api/v1/prefill`, `…/sessions/{id}/finish`, `…/sessions/{id}/error` | the key; 200 `{"ok":true}` |
//! | `RemoteBrowserCustomScore` | `POST …/api/v1/custom-score` | the key; a verdict with score 0.9 |
//! | `RemoteBrowserHealth` | `GET …/api/v1/health` | the key; `{"ok":false}` with the `no_slot` fault |
//!
//! Video submits answer the legacy `{"operations":[{"operation":{"name"},"sceneId","status":
//! "MEDIA_GENERATION_STATUS_PENDING"}],"remainingCredits"}` (or, with [`VideoShape::Workflows`],
//! the media-centric `workflows` + `media`). The operation name is also the media name. Each
//! operation is PENDING for `pending_polls` polls, ACTIVE for `active_polls` polls, then
//! SUCCESSFUL (with `operation.metadata.video` and `media[].video.fifeUrl`), or the outcome
//! queued by [`FakeFlow::fail_next_video`] / [`FakeFlow::error_status_next_video`]. Video
//! tokens must be solved for `VIDEO_GENERATION`, with the same single-use and User-Agent rules.
//!
//! The solver is the path segment before `createTask` (`yescaptcha`, `capmonster`, `ezcaptcha`,
//! `capsolver`; any other is YesCaptcha); its tokens read `03AFcWeA-fake-<solver>-…`, so a test
//! can tell which solver's token a generate call carried.
//!
//! A captcha token is accepted once, only if this fake's solver issued it for `IMAGE_GENERATION`,
//! and only with the `User-Agent` the solver returned with it ([`SOLVER_USER_AGENT`], which
//! differs from the UA the client sends to `createTask`, as Google's real solvers do). Rejections
//! are the spec's 403 `PUBLIC_ERROR_UNUSUAL_ACTIVITY: reCAPTCHA evaluation failed`; the reason
//! the fake refused a request is kept in [`FakeFlow::rejections`].
//!
//! # Control API
//!
//! For the loopback server, the same [`HttpClient`] also answers (all JSON, never recorded):
//!
//! - `POST /_fake/accounts` — a [`FakeAccount`] (`st`, `email`; `name`, `tier`, `credits`
//!   optional) → `{"ok":true}`;
//! - `POST /_fake/faults` —
//!   `{"endpoint":"generate_image","status":429,"reason":"…","message":"…","times":1}` (optional
//!   `"email"`: only calls made with that account's access token) or
//!   `{"endpoint":…,"kind":"malformed_json"|"latency"|"captcha_unsolvable"|"captcha_error"|
//!   "quota"|"rate_limited"|"unusual_activity"|"unsafe_generation"|"internal","latency_ms":…,
//!   "times":…}` (`times` defaults to 1: the fault answers exactly the next call); with
//!   `"percent":p` instead of `times` the fault applies to p % of calls forever;
//! - `POST /_fake/captcha` — `{"polls_before_ready":n}`;
//! - `POST /_fake/browser_token` — `{"action":"IMAGE_GENERATION"}` → `{"token":…}`: a token as
//!   the captcha extension's browser solves it ([`FakeFlow::browser_token`]);
//! - `POST /_fake/config` — any of `{"polls_before_ready","at_lifetime_ms","yescaptcha_key",
//!   "upload_response_array","solver_keys":{solver:key},"solver_faults":{solver:
//!   "zero_balance"|"no_slot"|"poll_error"|null}}` (solver faults last until `reset`);
//! - `POST /_fake/video` — any of `{"pending_polls","active_polls","concat_polls",
//!   "redirect":"ok"|"empty"|"lost","shape":"operations"|"workflows",
//!   "fail_next":{"code","message"},"error_status_next":"MEDIA_GENERATION_STATUS_ERROR_…"}`
//!   (see [`VideoRedirect`], [`VideoShape`]);
//! - `POST /_fake/expire_st` — `{"st":…}`: session-to-access-token answers `{}` for it;
//! - `POST /_fake/revoke_grant` — `{"st":…}`: ATs still issued, all refused (401);
//! - `GET /_fake/requests` — the recorded requests, oldest first (each with `at_ms`, its
//!   arrival on the fake's clock);
//! - `POST /_fake/reset` — clears faults, recordings, rejections and in-flight peaks (keeps
//!   accounts and media);
//! - `GET /_fake/stats` — `{"max_in_flight":{email:n},"generated":n,"rejections":[…]}`.

mod assets;
#[cfg(test)]
mod captcha_tests;
/// The seams' conformance suites (also available alone, feature `conformance`).
pub use crate::conformance;
mod control;
mod remote_browser;
mod reply;
mod routes;
mod state;
#[cfg(test)]
mod tests;
mod video;
mod video_routes;
#[cfg(test)]
mod video_tests;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::seams::TransportError;
use crate::seams::{boxed, BoxFuture, Bytes, Clock, HttpClient, HttpRequest, HttpResponse};

pub use crate::probe::ProbeStorage;
pub use assets::{FIFE_PNG, UPSAMPLE_JPEG};
pub use remote_browser::{
    FAKE_REMOTE_BROWSER, REMOTE_BROWSER_LANGUAGE, REMOTE_BROWSER_PLATFORM,
    REMOTE_BROWSER_USER_AGENT,
};
use state::State;
pub use video::{fake_mp4, FakeVideo, VideoKind, VideoOutcome, VideoRedirect, VideoShape};

/// The API key the fake YesCaptcha accepts unless [`FakeFlow::set_yescaptcha_key`] changes it.
pub const DEFAULT_YESCAPTCHA_KEY: &str = "fake-yescaptcha-key";

/// The solvers the fake serves, each under `<base>/<solver>`.
pub const FAKE_SOLVERS: &[&str] = &["yescaptcha", "capmonster", "ezcaptcha", "capsolver"];

/// The `clientKey` the fake `solver` accepts by default: `fake-<solver>-key`.
pub fn fake_solver_key(solver: &str) -> String {
    format!("fake-{solver}-key")
}

/// How a fake solver misbehaves (`POST /_fake/config` `solver_faults`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SolverFault {
    /// `createTask` answers `ERROR_ZERO_BALANCE`.
    ZeroBalance,
    /// `createTask` answers `ERROR_NO_SLOT_AVAILABLE`.
    NoSlot,
    /// `getTaskResult` answers `errorId` 1 `ERROR_CAPTCHA_UNSOLVABLE`.
    PollError,
}

/// The User-Agent the fake solver returns with every token; generate-image and upsample-image must
/// be sent with it.
pub const SOLVER_USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/147.0.0.0 Safari/537.36";

/// The cookie that carries the session token (ST).
pub const SESSION_COOKIE: &str = "__Secure-next-auth.session-token";

/// Which upstream endpoint a request was routed to. Serialised in snake_case
/// (`generate_image`…) for the control API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// session-to-access-token `GET …/auth/session`.
    Session,
    /// credits `GET …/credits`.
    Credits,
    /// create-project `POST …/trpc/project.createProject`.
    CreateProject,
    /// upload-image `POST …/flow/uploadImage`.
    UploadImage,
    /// generate-image `POST …/projects/{PID}/flowMedia:batchGenerateImages`.
    GenerateImage,
    /// upsample-image `POST …/flow/upsampleImage`.
    UpsampleImage,
    /// A solver's `POST …/createTask`.
    CreateTask,
    /// A solver's `POST …/getTaskResult`.
    GetTaskResult,
    /// A reCAPTCHA score checker's `POST …/score/verify` (for the admin score test).
    ScoreVerify,
    /// `GET …/fife/{id}.png`, the generated image bytes.
    Fife,
    /// video-submit-text `POST …/video:batchAsyncGenerateVideoText`.
    GenerateVideoText,
    /// video-submit-start-image `POST …/video:batchAsyncGenerateVideoStartImage`.
    GenerateVideoStartImage,
    /// video-submit-start-end-image `POST …/video:batchAsyncGenerateVideoStartAndEndImage`.
    GenerateVideoStartEndImage,
    /// video-submit-reference-images `POST …/video:batchAsyncGenerateVideoReferenceImages`.
    GenerateVideoReferenceImages,
    /// video-submit-extend `POST …/video:batchAsyncGenerateVideoExtendVideo`.
    ExtendVideo,
    /// video-submit-upsample `POST …/video:batchAsyncGenerateVideoUpsampleVideo`.
    UpsampleVideo,
    /// video-status `POST …/video:batchCheckAsyncVideoGenerationStatus`.
    CheckVideoStatus,
    /// media-url-redirect `GET …/trpc/media.getMediaUrlRedirect?name=…&mediaUrlType=…`.
    MediaUrlRedirect,
    /// media-bytes `GET …/media/{name}`.
    MediaBytes,
    /// concat-submit `POST …:runVideoFxConcatenation`.
    Concatenate,
    /// concat-status `POST …:runVideoFxCheckConcatenationStatus`.
    ConcatenationStatus,
    /// `GET …/videos/{id}.mp4`, the generated video bytes.
    VideoFile,
    /// The video front end's warm-up calls (`docs/upstream.md#warm-up`), answered 200 `{}`.
    WarmUp,
    /// The remote browser service's `POST …/api/v1/solve`.
    RemoteBrowserSolve,
    /// Its `POST …/api/v1/prefill`.
    RemoteBrowserPrefill,
    /// Its `POST …/api/v1/sessions/{id}/finish`.
    RemoteBrowserFinish,
    /// Its `POST …/api/v1/sessions/{id}/error`.
    RemoteBrowserError,
    /// Its `POST …/api/v1/custom-score`.
    RemoteBrowserCustomScore,
    /// Its `GET …/api/v1/health`.
    RemoteBrowserHealth,
    /// Anything else (answered 404).
    Unknown,
}

/// A fault to answer instead of (or before) the normal response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An HTTP error with a Google error body
    /// `{"error":{"code","message","status","details":[{"@type","reason"}]}}`; `details` only
    /// when `reason` is set, `status` named from the code (400 `INVALID_ARGUMENT`…).
    Status {
        /// The HTTP status.
        status: u16,
        /// The `details[0].reason`, e.g. `PUBLIC_ERROR_USER_QUOTA_REACHED`.
        reason: Option<String>,
        /// The `error.message`.
        message: String,
    },
    /// 200 with the truncated body `{"media": [`.
    MalformedJson,
    /// Sleeps this long on the fake's clock, then answers normally.
    Latency(Duration),
    /// On `GetTaskResult`: answers `processing`. On `CreateTask`: the task created is never
    /// ready. Ignored elsewhere.
    CaptchaUnsolvable,
    /// On `CreateTask` and `GetTaskResult`: `{"errorId":1,"errorCode":"ERROR_NO_SLOT_AVAILABLE"}`.
    /// Ignored elsewhere.
    CaptchaError,
}

impl Fault {
    /// A Google error fault.
    pub fn status(status: u16, reason: Option<&str>, message: &str) -> Self {
        Self::Status {
            status,
            reason: reason.map(str::to_owned),
            message: message.to_owned(),
        }
    }

    /// 429 `PUBLIC_ERROR_USER_QUOTA_REACHED` "Resource has been exhausted (e.g. check quota).".
    pub fn quota() -> Self {
        Self::status(
            429,
            Some("PUBLIC_ERROR_USER_QUOTA_REACHED"),
            "Resource has been exhausted (e.g. check quota).",
        )
    }

    /// A plain rate limit: 429 `RESOURCE_EXHAUSTED` "Resource has been exhausted (e.g. check
    /// quota)." without a `details` reason (unlike [`quota`](Self::quota)).
    pub fn rate_limited() -> Self {
        Self::status(429, None, "Resource has been exhausted (e.g. check quota).")
    }

    /// 403 `PUBLIC_ERROR_UNUSUAL_ACTIVITY` "reCAPTCHA evaluation failed".
    pub fn unusual_activity() -> Self {
        Self::status(
            403,
            Some("PUBLIC_ERROR_UNUSUAL_ACTIVITY"),
            "reCAPTCHA evaluation failed",
        )
    }

    /// 400 `PUBLIC_ERROR_UNSAFE_GENERATION`.
    pub fn unsafe_generation() -> Self {
        Self::status(
            400,
            Some("PUBLIC_ERROR_UNSAFE_GENERATION"),
            "Request contains an invalid argument.",
        )
    }

    /// 500 `PUBLIC_ERROR_SOMETHING_WENT_WRONG`.
    pub fn internal() -> Self {
        Self::status(
            500,
            Some("PUBLIC_ERROR_SOMETHING_WENT_WRONG"),
            "Internal error encountered.",
        )
    }
}

/// A Google account known to the fake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeAccount {
    /// The session token (cookie value).
    pub st: String,
    /// The account's email, its identity in every fake record.
    pub email: String,
    /// The display name.
    pub name: String,
    /// `PAYGATE_TIER_NOT_PAID`, `PAYGATE_TIER_ONE` or `PAYGATE_TIER_TWO`.
    pub tier: String,
    /// The credits that the credits endpoint reports.
    pub credits: i64,
}

impl FakeAccount {
    /// An Ultra (`PAYGATE_TIER_TWO`) account with 1000 credits, named after the email's local part.
    pub fn new(st: impl Into<String>, email: impl Into<String>) -> Self {
        let email = email.into();
        let name = email.split('@').next().unwrap_or_default().to_owned();
        Self {
            st: st.into(),
            email,
            name,
            tier: "PAYGATE_TIER_TWO".to_owned(),
            credits: 1000,
        }
    }
}

/// One request the fake received (control calls excluded).
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    /// The method, e.g. `POST`.
    pub method: String,
    /// The whole URL as received.
    pub url: String,
    /// The URL's path.
    pub path: String,
    /// Headers, names lower-case, in order.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, when it was JSON.
    pub json: Option<serde_json::Value>,
    /// Where it was routed.
    pub endpoint: Endpoint,
    /// When it arrived, in Unix ms on the fake's clock (so tests can check pauses).
    pub at_ms: u64,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A project created through create-project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeProject {
    /// The project id (a UUID).
    pub project_id: String,
    /// The owner's email.
    pub email: String,
    /// The `projectTitle` it was created with.
    pub title: String,
}

/// An image uploaded through upload-image.
#[derive(Debug, Clone)]
pub struct UploadedMedia {
    /// The media id answered.
    pub media_id: String,
    /// The uploader's email.
    pub email: String,
    /// `clientContext.projectId`, when given.
    pub project_id: Option<String>,
    /// `mimeType` as sent.
    pub mime_type: String,
    /// The decoded `imageBytes`.
    pub bytes: Bytes,
}

/// An image generated through generate-image (one per entry of `requests`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedMedia {
    /// The media id (`media[i].name`).
    pub media_id: String,
    /// The account's email.
    pub email: String,
    /// The project from the path.
    pub project_id: String,
    /// `imageModelName`, e.g. `NARWHAL`.
    pub model: String,
    /// `imageAspectRatio`, e.g. `IMAGE_ASPECT_RATIO_LANDSCAPE`.
    pub aspect_ratio: String,
    /// The `structuredPrompt.parts[].text`, concatenated.
    pub prompt: String,
    /// `seed`, when numeric.
    pub seed: Option<i64>,
    /// The `imageInputs[].name`s.
    pub image_inputs: Vec<String>,
}

/// The fake upstream. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeFlow {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
    public_base: Arc<str>,
}

impl fmt::Debug for FakeFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeFlow")
            .field("public_base", &self.public_base)
            .finish_non_exhaustive()
    }
}

impl FakeFlow {
    /// A fake reachable under `public_base` (e.g. `https://fake.flow.test` in-process, or
    /// `http://127.0.0.1:9100` when served), whose AT expiries and latency faults use `clock`.
    pub fn new(public_base: &str, clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::new())),
            clock,
            public_base: public_base.trim_end_matches('/').into(),
        }
    }

    /// The public base URL, without a trailing slash.
    pub fn public_base(&self) -> &str {
        &self.public_base
    }

    /// `<base>/fx/api`, for `FLOW_LABS_BASE_URL`.
    pub fn labs_base(&self) -> String {
        format!("{}/fx/api", self.public_base)
    }

    /// `<base>/v1`, for `FLOW_API_BASE_URL`.
    pub fn api_base(&self) -> String {
        format!("{}/v1", self.public_base)
    }

    /// `<base>/yescaptcha`, for `YESCAPTCHA_BASE_URL`.
    pub fn yescaptcha_base(&self) -> String {
        format!("{}/yescaptcha", self.public_base)
    }

    /// `<base>/<solver>` (one of [`FAKE_SOLVERS`]), for that solver's `*_BASE_URL`.
    pub fn solver_base(&self, solver: &str) -> String {
        format!("{}/{solver}", self.public_base)
    }

    /// `<base>/score/verify`, a score checker for the admin score test.
    pub fn score_verify_url(&self) -> String {
        format!("{}/score/verify", self.public_base)
    }

    /// Sets the `clientKey` `solver` accepts (default [`fake_solver_key`]).
    pub fn set_solver_key(&self, solver: &str, key: &str) {
        self.lock()
            .config
            .solver_keys
            .insert(solver.to_owned(), key.to_owned());
    }

    /// Makes `solver` misbehave until the next [`reset`](Self::reset) (`None`: behave).
    pub fn set_solver_fault(&self, solver: &str, fault: Option<SolverFault>) {
        let mut st = self.lock();
        match fault {
            Some(f) => st.config.solver_faults.insert(solver.to_owned(), f),
            None => st.config.solver_faults.remove(solver),
        };
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Adds an account, replacing any with the same email.
    pub fn add_account(&self, account: FakeAccount) {
        self.lock().add_account(account);
    }

    /// Makes `st` unknown to session-to-access-token (which then answers `{}`). ATs already issued
    /// stay valid.
    pub fn expire_st(&self, st: &str) {
        self.lock().expire_st(st);
    }

    /// Revokes the grant of the account with session token `st`: session-to-access-token
    /// still answers ATs, but every AT of the account (old and new) is refused with 401, by
    /// credits among others. Adding the account again restores it.
    pub fn revoke_grant(&self, st: &str) {
        self.lock().revoke_grant(st);
    }

    /// Invalidates every AT issued for the account with session token `st`.
    pub fn revoke_access_tokens(&self, st: &str) {
        self.lock().revoke_access_tokens(st);
    }

    /// Sets how long an AT issued by session-to-access-token lives (default 1 h 30 min).
    pub fn set_at_lifetime(&self, lifetime: Duration) {
        self.lock().config.at_lifetime = lifetime;
    }

    /// A token as a browser running the captcha extension would solve it for `action`
    /// (`03AFcWeA-fake-extension-…`): accepted once, with the gateway's fallback User-Agent,
    /// since the extension reports no fingerprint (§10.5).
    pub fn browser_token(&self, action: &str) -> String {
        let token = format!("03AFcWeA-fake-extension-{}", crate::util::random_hex(32));
        self.lock().tokens.insert(
            token.clone(),
            state::IssuedToken {
                user_agent: crate::transport::FALLBACK_USER_AGENT.to_owned(),
                page_action: action.to_owned(),
                used: false,
                headers: Vec::new(),
            },
        );
        token
    }

    /// Sets how many `getTaskResult` polls answer `processing` before `ready` (default 1), for
    /// tasks created from now on.
    pub fn set_captcha_polls_before_ready(&self, polls: u32) {
        self.lock().config.polls_before_ready = polls;
    }

    /// Sets the YesCaptcha `clientKey` the fake accepts (default [`DEFAULT_YESCAPTCHA_KEY`]).
    pub fn set_yescaptcha_key(&self, key: &str) {
        self.set_solver_key("yescaptcha", key);
    }

    /// Makes upload-image answer `{"media":[{"name":…}]}` instead of `{"media":{"name":…}}`.
    pub fn set_upload_response_array(&self, array: bool) {
        self.lock().config.upload_array = array;
    }

    /// Queues `fault` for the next `times` calls of `endpoint`. Queued faults are used in order,
    /// before any [`inject_rate`](Self::inject_rate) rule.
    pub fn inject(&self, endpoint: Endpoint, fault: Fault, times: u32) {
        self.lock().inject(endpoint, fault, Some(times), 100, None);
    }

    /// Like [`inject`](Self::inject), for calls made with `email`'s access token only.
    pub fn inject_for_account(&self, email: &str, endpoint: Endpoint, fault: Fault, times: u32) {
        self.lock()
            .inject(endpoint, fault, Some(times), 100, Some(email.to_owned()));
    }

    /// Like [`inject_rate`](Self::inject_rate), for calls made with `email`'s access token only.
    pub fn inject_rate_for_account(
        &self,
        email: &str,
        endpoint: Endpoint,
        fault: Fault,
        percent: u8,
    ) {
        self.lock().inject(
            endpoint,
            fault,
            None,
            percent.min(100),
            Some(email.to_owned()),
        );
    }

    /// Answers `fault` on every call of `endpoint` until [`clear_faults`](Self::clear_faults).
    pub fn inject_forever(&self, endpoint: Endpoint, fault: Fault) {
        self.inject_rate(endpoint, fault, 100);
    }

    /// Answers `fault` on about `percent` % of the calls of `endpoint`, until
    /// [`clear_faults`](Self::clear_faults).
    pub fn inject_rate(&self, endpoint: Endpoint, fault: Fault, percent: u8) {
        self.lock()
            .inject(endpoint, fault, None, percent.min(100), None);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Clears faults, recorded requests, rejections and in-flight peaks. Accounts, tokens,
    /// projects and media stay.
    pub fn reset(&self) {
        self.lock().reset();
    }

    /// Every request received so far (control calls excluded), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// The recorded requests routed to `endpoint`.
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        let st = self.lock();
        st.requests
            .iter()
            .filter(|r| r.endpoint == endpoint)
            .cloned()
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Per account email, the largest number of generate-image calls ever in flight at once.
    pub fn max_in_flight(&self) -> HashMap<String, u32> {
        self.lock().max_in_flight.clone()
    }

    /// Per account email, the generate-image calls in flight now.
    pub fn in_flight(&self) -> HashMap<String, u32> {
        self.lock().in_flight.clone()
    }

    /// The projects created through create-project.
    pub fn projects(&self) -> Vec<FakeProject> {
        let mut v: Vec<_> = self.lock().projects.values().cloned().collect();
        v.sort_by(|a, b| a.project_id.cmp(&b.project_id));
        v
    }

    /// The images uploaded through upload-image, oldest first.
    pub fn uploads(&self) -> Vec<UploadedMedia> {
        self.lock().uploads.clone()
    }

    /// The images generated through generate-image, oldest first.
    pub fn generated(&self) -> Vec<GeneratedMedia> {
        self.lock().generated.clone()
    }

    /// Why the fake refused requests (bad token, UA mismatch, foreign project…), oldest first.
    /// Faults injected on purpose are not listed.
    pub fn rejections(&self) -> Vec<String> {
        self.lock().rejections.clone()
    }

    async fn handle(&self, request: HttpRequest) -> HttpResponse {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path().replace("%3A", ":").replace("%3a", ":");
        if let Some(rest) = control::control_path(&path) {
            return control::handle(self, &parts.method, rest, &body);
        }
        let endpoint = routes::classify(&parts.method, &path);
        let incoming = routes::Incoming {
            json: serde_json::from_slice(&body).ok(),
            method: parts.method,
            path,
            headers: parts.headers,
            query: parts.uri.query().unwrap_or_default().to_owned(),
        };
        let in_flight = {
            let mut st = self.lock();
            st.requests
                .push(record(&parts.uri, &incoming, endpoint, self.clock.now_ms()));
            if endpoint == Endpoint::GenerateImage {
                let now = self.clock.now_ms();
                st.email_for_at(bearer(&incoming.headers), now)
                    .map(|email| InFlight::enter(&self.state, &mut st, email))
            } else {
                None
            }
        };
        let fault = {
            let mut st = self.lock();
            let email = st.email_for_at(bearer(&incoming.headers), self.clock.now_ms());
            st.take_fault(endpoint, email.as_deref())
        };

        let mut unsolvable_task = false;
        match fault {
            None => {}
            Some(Fault::Latency(d)) => self.clock.sleep(d).await,
            Some(fault) => match reply::fault_response(endpoint, &fault) {
                Some(response) => return response,
                None => unsolvable_task = fault == Fault::CaptchaUnsolvable,
            },
        }
        let ctx = routes::Ctx {
            now_ms: self.clock.now_ms(),
            public_base: &self.public_base,
            unsolvable_task,
        };
        let response = routes::handle(&mut self.lock(), &ctx, endpoint, &incoming);
        drop(in_flight);
        response
    }
}

impl HttpClient for FakeFlow {
    fn call(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        boxed(async move { Ok(self.handle(request).await) })
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The token of an `authorization: Bearer <AT>` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn record(
    uri: &http::Uri,
    req: &routes::Incoming,
    endpoint: Endpoint,
    at_ms: u64,
) -> RecordedRequest {
    RecordedRequest {
        method: req.method.to_string(),
        url: uri.to_string(),
        path: uri.path().to_owned(),
        headers: req
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        json: req.json.clone(),
        endpoint,
        at_ms,
    }
}

/// Counts one generate-image call in flight for an account until dropped (also when the future is
/// dropped).
struct InFlight {
    state: Arc<Mutex<State>>,
    email: String,
}

impl InFlight {
    fn enter(shared: &Arc<Mutex<State>>, st: &mut State, email: String) -> Self {
        let n = st.in_flight.entry(email.clone()).or_insert(0);
        *n += 1;
        let n = *n;
        let max = st.max_in_flight.entry(email.clone()).or_insert(0);
        *max = (*max).max(n);
        Self {
            state: Arc::clone(shared),
            email,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        if let Some(n) = st.in_flight.get_mut(&self.email) {
            *n = n.saturating_sub(1);
        }
    }
}
