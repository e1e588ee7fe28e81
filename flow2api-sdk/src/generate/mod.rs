//! The generation pipeline. It runs once per request, whatever the client's dialect, and
//! reports progress as English lines through a [`Progress`] sink; the API layer encodes those
//! lines and the final result for each dialect.

mod image;
mod keep;
pub mod video;

use std::borrow::Cow;
use std::sync::Arc;

use futures::channel::mpsc;

use crate::flow::{headers::project_page, Blame, FlowClient, FlowError, RECAPTCHA_SITE_KEY};
use crate::pool::{AccountPool, Lease};
use crate::seams::SlotKind;
use crate::seams::{
    CaptchaAction, CaptchaError, CaptchaErrorKind, CaptchaRequest, CaptchaSolution, CaptchaSolver,
    Clock, Egress, MediaStore,
};

pub use image::ImageRequest;

/// Where progress lines go. Cloning is cheap; a sink whose receiver is gone drops lines.
#[derive(Debug, Clone)]
pub struct Progress(Option<mpsc::UnboundedSender<String>>);

impl Progress {
    /// A sink and the receiving end of its lines.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded();
        (Self(Some(tx)), rx)
    }

    /// A sink that discards everything (non-streaming requests).
    pub fn discard() -> Self {
        Self(None)
    }

    /// Reports one line (a trailing newline is added).
    pub fn line(&self, text: impl Into<String>) {
        if let Some(tx) = &self.0 {
            let mut t = text.into();
            t.push('\n');
            let _ = tx.unbounded_send(t);
        }
    }
}

/// Why a generation failed after it started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// Upstream kept failing, or failed in a way that is not retried.
    #[error("{0}")]
    Upstream(FlowError),
    /// No captcha token could be had within the budget.
    #[error("{0}")]
    Captcha(CaptchaError),
    /// The account has no Flow project.
    #[error("the account has no Flow project")]
    NoProject,
    /// A submitted video failed, or its result could not be had.
    #[error("{0}")]
    VideoFailed(String),
    /// A submitted video did not finish in time.
    #[error("{0}")]
    VideoTimeout(String),
}

impl GenerateError {
    /// Whose fault the failure is (see [`Blame`]).
    pub fn blame(&self) -> Blame {
        match self {
            Self::Upstream(e) => e.blame(),
            Self::Captcha(_) => Blame::Captcha,
            Self::NoProject => Blame::Account,
            // Google's verdict on one generation: not the account's fault, not worth another.
            Self::VideoFailed(_) | Self::VideoTimeout(_) => Blame::Client,
        }
    }
}

/// Accounts one request may try before it gives up.
pub const MAX_ACCOUNTS_PER_REQUEST: usize = 3;

/// What a finished generation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The URL the client receives (upstream, `/media/{id}`, or a `data:` URL).
    pub url: String,
    /// `image` or `video`.
    pub kind: &'static str,
    /// A video's media id (`video_media_id`, `docs/upstream.md#video-url-resolution`: the UUID of
    /// `/video/<uuid>` in its URL, else the media name), for `data-media-id` and `extend://`;
    /// `None` for images.
    pub media_id: Option<String>,
}

/// Runs generations: the Flow client, the captcha solver and the media store, with the retry
/// budgets.
#[derive(Clone)]
pub struct Generator {
    pub(crate) flow: FlowClient,
    pub(crate) captcha: Arc<dyn CaptchaSolver>,
    pub(crate) media: Arc<dyn MediaStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) max_retries: u32,
    pub(crate) captcha_max_retries: u32,
    /// Every built method, for accounts that name their own chain (`None`: a host-given
    /// solver serves every account).
    pub(crate) methods: Option<Arc<crate::captcha::ChainSolver>>,
    /// Where solves and Google's verdicts on tokens are counted, per account.
    pub(crate) captcha_stats: Arc<crate::captcha::CaptchaStats>,
    /// `MEDIA_CACHE`: results are copied into `media` and linked from there.
    pub(crate) media_cache: bool,
    /// `MEDIA_TTL` as the settings now say: what every object stored here is kept for
    /// (`None`: the store's own default).
    pub(crate) media_ttl: Option<std::time::Duration>,
    /// The egress of this generation's calls (its account's own; [`Generator::for_account`]),
    /// set on the solver's calls and the submit; `None`: the HTTP client's default.
    pub(crate) egress: Option<Egress>,
    /// `MEDIA_PROXY_URL`: the egress of media downloads.
    pub(crate) media_egress: Option<Egress>,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("max_retries", &self.max_retries)
            .field("captcha_max_retries", &self.captcha_max_retries)
            .field("media_cache", &self.media_cache)
            .field("media_ttl", &self.media_ttl)
            .finish_non_exhaustive()
    }
}

impl Generator {
    /// Runs an image generation on `first`, moving to another account when the failure says
    /// the account was at fault or rate-limited (at most [`MAX_ACCOUNTS_PER_REQUEST`]). Every
    /// outcome is reported to the pool and every slot released.
    ///
    /// # Errors
    /// The last generation error.
    pub async fn generate_image_with_failover(
        &self,
        pool: &AccountPool,
        first: Lease,
        request: &ImageRequest,
        media_base: &str,
        progress: &Progress,
    ) -> Result<Output, GenerateError> {
        let mut lease = first;
        let mut tried = Vec::new();
        let mut auth_retried = false;

        loop {
            let result = self
                .generate_image(&lease, request, media_base, progress)
                .await;
            let account = lease.account.clone();
            match result {
                Ok(output) => {
                    pool.finish(lease, None).await;
                    return Ok(output);
                }
                Err(e) => {
                    let blame = e.blame();
                    pool.finish(lease, Some((blame, e.to_string()))).await;
                    // A refused token is refreshed and the same account tried once more.
                    if blame == Blame::Auth && !auth_retried {
                        auth_retried = true;
                    } else {
                        tried.push(account.id);
                    }
                    if !blame.try_another_account() || tried.len() >= MAX_ACCOUNTS_PER_REQUEST {
                        return Err(e);
                    }
                    let model = request.model;
                    match pool
                        .acquire(SlotKind::Image, model.min_tier(), model.id, &tried)
                        .await
                    {
                        Ok(next) => {
                            progress.line(format!(
                                "That account failed ({e}); retrying on another account..."
                            ));
                            lease = next;
                        }
                        Err(_) => return Err(e),
                    }
                }
            }
        }
    }

    /// A generator. `max_retries` bounds attempts on upstream errors, `captcha_max_retries`
    /// attempts on captcha failures (which never count against an account).
    pub fn new(
        flow: FlowClient,
        captcha: Arc<dyn CaptchaSolver>,
        media: Arc<dyn MediaStore>,
        max_retries: u32,
        captcha_max_retries: u32,
    ) -> Self {
        let clock = flow.clock().clone();
        Self {
            flow,
            captcha,
            media,
            clock,
            max_retries: max_retries.max(1),
            captcha_max_retries: captcha_max_retries.max(1),
            captcha_stats: Arc::default(),
            methods: None,
            media_cache: false,
            media_ttl: None,
            egress: None,
            media_egress: None,
        }
    }

    /// The same generator downloading media through `proxy` (`MEDIA_PROXY_URL`, normalised).
    #[must_use]
    pub fn with_media_proxy(mut self, proxy: Option<&crate::secret::Secret>) -> Self {
        self.media_egress = proxy.map(|p| Egress::Proxy(Arc::from(p.expose())));
        self
    }

    /// This generator for one of `account`'s generations: when the account names its own
    /// egress (proxy or relay), a copy whose Flow calls and solver calls all leave that way;
    /// else this one, borrowed (nothing is copied on the common path).
    pub fn for_account(&self, account: &crate::pool::Account) -> Cow<'_, Self> {
        match account.egress() {
            None => Cow::Borrowed(self),
            Some(egress) => Cow::Owned(Self {
                flow: self.flow.with_egress(egress.clone()),
                egress: Some(egress),
                ..self.clone()
            }),
        }
    }

    /// The Flow client for the submit that uses `solution`: through the egress the solver
    /// named (its `proxy_url`), else this generator's.
    pub(crate) fn submit_flow(&self, solution: &CaptchaSolution) -> Cow<'_, FlowClient> {
        match solution
            .proxy_url
            .as_deref()
            .and_then(crate::egress::solver_egress)
        {
            Some(egress) => Cow::Owned(self.flow.with_egress(egress)),
            None => Cow::Borrowed(&self.flow),
        }
    }

    /// The same generator keeping a copy of every result in the media store (`MEDIA_CACHE`):
    /// images, upscales and videos are then linked at the gateway's own `/media/{id}` for the
    /// store's TTL, not at Google's signed URLs, which expire. A copy that fails leaves the
    /// upstream link in place.
    #[must_use]
    pub fn with_media_cache(mut self, on: bool) -> Self {
        self.media_cache = on;
        self
    }

    /// The same generator keeping what it stores for `ttl` rather than the store's default,
    /// so that a runtime change of `MEDIA_TTL` applies to the next object.
    #[must_use]
    pub fn with_media_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.media_ttl = Some(ttl);
        self
    }

    /// The same generator counting its solves, per account, into `stats` (which outlive
    /// configuration snapshots).
    #[must_use]
    pub fn with_captcha_stats(mut self, stats: Arc<crate::captcha::CaptchaStats>) -> Self {
        self.captcha_stats = stats;
        self
    }

    /// The same generator letting an account's own `captcha_method` pick from `methods`.
    #[must_use]
    pub fn with_account_methods(mut self, methods: Arc<crate::captcha::ChainSolver>) -> Self {
        self.methods = Some(methods);
        self
    }

    /// Stores `upload` for [`media_ttl`](Self::with_media_ttl) and returns its id.
    pub(crate) async fn store(
        &self,
        upload: crate::seams::MediaUpload,
    ) -> Result<String, crate::seams::StorageError> {
        let upload = match self.media_ttl {
            Some(ttl) => upload.with_ttl(ttl),
            None => upload,
        };
        self.media.put(upload).await
    }
}

/// Attempts left in the two budgets of one retried call.
pub(crate) struct Budget {
    pub(crate) upstream: u32,
    pub(crate) captcha: u32,
}

pub(crate) enum Step<T> {
    Done(T),
    Retry(String),
    Fail(GenerateError),
}

/// What a Flow submit in `project_id` for `account` needs solved.
fn flow_captcha(
    account: &crate::pool::Account,
    project_id: &str,
    action: CaptchaAction,
    egress: Option<Egress>,
) -> CaptchaRequest {
    CaptchaRequest {
        site_key: RECAPTCHA_SITE_KEY.to_owned(),
        page_url: project_page(project_id),
        action,
        page_action: None,
        project_id: project_id.to_owned(),
        account_id: Some(account.id.clone()),
        egress,
    }
}

impl Generator {
    /// One token for `account`'s call in `project_id`, counted against `account` in the
    /// captcha stats (never in the pool: a captcha failure is not the account's fault).
    pub(crate) async fn solve(
        &self,
        account: &crate::pool::Account,
        project_id: &str,
        action: CaptchaAction,
    ) -> Result<CaptchaSolution, CaptchaError> {
        let request = flow_captcha(account, project_id, action, self.egress.clone());
        let started = self.clock.now_ms();
        let out = match (&self.methods, account.captcha_method.as_deref()) {
            (Some(methods), Some(order)) => methods.solve_in(&request, order).await,
            _ => self.captcha.solve(&request).await,
        };
        let account = account.id.as_str();
        let ms = self.clock.now_ms().saturating_sub(started);
        self.captcha_stats
            .account_solve(account, out.as_ref().err().map(|e| e.kind), ms);
        out
    }

    /// The solvers `account`'s solves go through: its own method order when it has one.
    fn solver_for(&self, account: &crate::pool::Account) -> &dyn crate::seams::CaptchaSolver {
        match (&self.methods, account.captcha_method.as_deref()) {
            (Some(methods), Some(_)) => &**methods,
            _ => &*self.captcha,
        }
    }

    /// Warns `account`'s solvers that a generation in `project_id` is starting (a browser
    /// service opens the page; the others ignore it).
    pub(crate) async fn prefill(
        &self,
        account: &crate::pool::Account,
        project_id: &str,
        action: CaptchaAction,
    ) {
        let request = flow_captcha(account, project_id, action, self.egress.clone());
        match (&self.methods, account.captcha_method.as_deref()) {
            (Some(methods), Some(order)) => methods.prefill_in(&request, order).await,
            _ => self.captcha.prefill(&request).await,
        }
    }

    /// Tells the method that solved `solution` how the submit that used it ended.
    pub(crate) async fn finish<T>(
        &self,
        account: &crate::pool::Account,
        solution: &CaptchaSolution,
        outcome: &Result<T, FlowError>,
    ) {
        let failure = outcome.as_ref().err().map(|e| match e.reason() {
            Some(reason) => reason.to_owned(),
            None => crate::util::truncate(e.message(), 300),
        });
        self.solver_for(account)
            .finish(solution, failure.as_deref())
            .await;
    }

    /// Books Google's refusal of `solution`'s token (`reCAPTCHA evaluation failed`) against
    /// the method that solved it and `account`.
    pub(crate) fn note_submit(&self, account: &str, solution: &CaptchaSolution, err: &FlowError) {
        if err.is_captcha_rejected() {
            self.captcha_stats
                .google_rejected(&solution.method, account);
        }
    }

    /// Classifies one failed attempt against the budgets: captcha failures spend the captcha
    /// budget; upstream failures and plain rate limits spend the upstream budget; anything else
    /// (quota, auth, account, client) ends the call at once. A retry pauses 1 s and solves a
    /// new captcha (the callers' loops).
    pub(crate) fn judge<T>(
        &self,
        budget: &mut Budget,
        err: Result<FlowError, CaptchaError>,
    ) -> Step<T> {
        match err {
            // The egress (relay or proxy) is down: retrying now only repeats that; the client
            // is told to come back later and no account is blamed.
            Err(c) if c.kind == CaptchaErrorKind::Egress => Step::Fail(GenerateError::Captcha(c)),
            Ok(e) if e.is_egress() => Step::Fail(GenerateError::Upstream(e)),
            Err(c) => {
                budget.captcha = budget.captcha.saturating_sub(1);
                if budget.captcha == 0 {
                    Step::Fail(GenerateError::Captcha(c))
                } else {
                    Step::Retry(format!("captcha not solved ({}), retrying", c.message))
                }
            }
            Ok(e) if e.blame() == Blame::Captcha => {
                budget.captcha = budget.captcha.saturating_sub(1);
                if budget.captcha == 0 {
                    Step::Fail(GenerateError::Upstream(e))
                } else {
                    Step::Retry("reCAPTCHA evaluation failed, retrying with a new token".to_owned())
                }
            }
            // A plain rate limit is usually a one-off: repeat the call (with a new token) before
            // the account rests; spent, it is reported as `RateLimited` and the account rests.
            Ok(e) if matches!(e.blame(), Blame::Upstream | Blame::RateLimited) => {
                budget.upstream = budget.upstream.saturating_sub(1);
                if budget.upstream == 0 {
                    Step::Fail(GenerateError::Upstream(e))
                } else if e.blame() == Blame::RateLimited {
                    Step::Retry(format!("rate limited ({e}), retrying"))
                } else {
                    Step::Retry(format!("upstream error ({e}), retrying"))
                }
            }
            Ok(e) => Step::Fail(GenerateError::Upstream(e)),
        }
    }
}
