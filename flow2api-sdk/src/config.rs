//! Configuration: one table of settings ([`SETTINGS`]), read from the same names on every host
//! (environment variables natively; `[vars]`, secrets and `.dev.vars` at the edge), validated
//! into a [`Config`] snapshot. A value that does not parse, is out of range or names something
//! this build lacks is a [`ConfigError`] naming the setting and what it accepts; nothing falls
//! back to a default silently.

use std::fmt;
use std::time::Duration;

use crate::secret::Secret;

/// Default Labs base URL (session and project calls; see `docs/upstream.md`).
pub const DEFAULT_LABS_BASE_URL: &str = "https://labs.google/fx/api";
/// Default sandbox base URL (generation, upload, credits; see `docs/upstream.md`).
pub const DEFAULT_API_BASE_URL: &str = "https://aisandbox-pa.googleapis.com/v1";
/// Default YesCaptcha base URL.
pub const DEFAULT_YESCAPTCHA_BASE_URL: &str = "https://api.yescaptcha.com";
/// Default YesCaptcha task type.
pub const DEFAULT_YESCAPTCHA_TASK_TYPE: &str = "RecaptchaV3TaskProxylessM1S9";

/// Default CapMonster base URL.
pub const DEFAULT_CAPMONSTER_BASE_URL: &str = "https://api.capmonster.cloud";
/// Default EzCaptcha base URL.
pub const DEFAULT_EZCAPTCHA_BASE_URL: &str = "https://api.ez-captcha.com";
/// Default CapSolver base URL.
pub const DEFAULT_CAPSOLVER_BASE_URL: &str = "https://api.capsolver.com";

/// The captcha methods this build implements; `CAPTCHA_METHOD` lists one or more of them.
pub const CAPTCHA_METHODS: &[&str] = &[
    "yescaptcha",
    "capmonster",
    "ezcaptcha",
    "capsolver",
    "remote_browser",
    "extension",
];
/// Methods the original Flow2API offers that this build does not implement yet: naming one is
/// an error, not a silent fallback.
const UNBUILT_CAPTCHA_METHODS: &[&str] = &["browser", "personal"];

/// What a setting accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Accepts {
    /// An `http://` or `https://` URL.
    Url,
    /// Any non-empty text.
    Text,
    /// Any non-empty text, kept secret (never shown, masked in lists).
    Secret,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Flag,
    /// A whole number within the bounds.
    Integer {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A number of seconds (fractions allowed) within the bounds.
    Seconds {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// One of these words (case-insensitive).
    OneOf(&'static [&'static str]),
    /// One or more of these words, comma-separated, each at most once (case-insensitive).
    ListOf(&'static [&'static str]),
    /// Comma-separated web origins (`scheme://host[:port]`, http or https).
    Origins,
    /// A proxy address in one of [`crate::proxy_url`]'s forms, normalised; a secret (it may
    /// carry credentials): masked in lists, never repeated in errors.
    Proxy,
}

impl fmt::Display for Accepts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url => f.write_str("an http:// or https:// URL"),
            Self::Text | Self::Secret => f.write_str("non-empty text"),
            Self::Flag => f.write_str("true or false"),
            Self::Integer { min, max } => write!(f, "a whole number from {min} to {max}"),
            Self::Seconds { min, max } => write!(f, "a number of seconds from {min} to {max}"),
            Self::OneOf(words) => write!(f, "one of: {}", words.join(", ")),
            Self::ListOf(words) => write!(
                f,
                "one or more of (comma-separated, tried in order): {}",
                words.join(", ")
            ),
            Self::Origins => f.write_str("comma-separated origins such as https://console.example"),
            Self::Proxy => write!(f, "a proxy address: {}", crate::proxy_url::ACCEPTED_FORMS),
        }
    }
}

/// One setting: its name, what it accepts, its default and what it does.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Setting {
    /// The variable name, e.g. `FLOW_MAX_RETRIES`.
    pub name: &'static str,
    /// What values it accepts.
    pub accepts: Accepts,
    /// The value when unset; `None` means unset is meaningful (see `about`).
    pub default: Option<&'static str>,
    /// What it does.
    pub about: &'static str,
}

impl Setting {
    /// True for settings whose value is a secret.
    pub fn is_secret(&self) -> bool {
        matches!(self.accepts, Accepts::Secret | Accepts::Proxy)
    }
}

const fn setting(
    name: &'static str,
    accepts: Accepts,
    default: Option<&'static str>,
    about: &'static str,
) -> Setting {
    Setting {
        name,
        accepts,
        default,
        about,
    }
}

const fn int(min: i64, max: i64) -> Accepts {
    Accepts::Integer { min, max }
}

const fn secs(min: f64, max: f64) -> Accepts {
    Accepts::Seconds { min, max }
}

const DAY: f64 = 86_400.0;

/// Every setting the gateway reads, in one place: [`Config::from_lookup`] validates against
/// it, hosts enumerate it (a Worker must ask for each binding by name), and the settings store
/// checks overrides with it.
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    setting("FLOW_LABS_BASE_URL", Accepts::Url, Some(DEFAULT_LABS_BASE_URL), "Base URL of the Flow Labs API (session and project calls)."),
    setting("FLOW_API_BASE_URL", Accepts::Url, Some(DEFAULT_API_BASE_URL), "Base URL of the Flow sandbox API (generation, uploads, credits)."),
    setting("CAPTCHA_METHOD", Accepts::ListOf(CAPTCHA_METHODS), Some("yescaptcha"), "How reCAPTCHA tokens are solved: one method, or several comma-separated, tried in order until one gives a token."),
    setting("YESCAPTCHA_BASE_URL", Accepts::Url, Some(DEFAULT_YESCAPTCHA_BASE_URL), "YesCaptcha API base URL."),
    setting("YESCAPTCHA_API_KEY", Accepts::Secret, None, "YesCaptcha client key; unset, generations fail with a captcha error."),
    setting("YESCAPTCHA_TASK_TYPE", Accepts::OneOf(&["RecaptchaV3TaskProxyless", "RecaptchaV3TaskProxylessM1", "RecaptchaV3TaskProxylessM1S7", "RecaptchaV3TaskProxylessM1S9"]), Some(DEFAULT_YESCAPTCHA_TASK_TYPE), "YesCaptcha task type (M1S7/M1S9 ask for a minimum score of 0.7/0.9)."),
    setting("CAPMONSTER_BASE_URL", Accepts::Url, Some(DEFAULT_CAPMONSTER_BASE_URL), "CapMonster Cloud API base URL."),
    setting("CAPMONSTER_API_KEY", Accepts::Secret, None, "CapMonster client key; unset, the capmonster method gives no token."),
    setting("EZCAPTCHA_BASE_URL", Accepts::Url, Some(DEFAULT_EZCAPTCHA_BASE_URL), "EzCaptcha API base URL."),
    setting("EZCAPTCHA_API_KEY", Accepts::Secret, None, "EzCaptcha client key; unset, the ezcaptcha method gives no token."),
    setting("CAPSOLVER_BASE_URL", Accepts::Url, Some(DEFAULT_CAPSOLVER_BASE_URL), "CapSolver API base URL."),
    setting("CAPSOLVER_API_KEY", Accepts::Secret, None, "CapSolver client key; unset, the capsolver method gives no token."),
    setting("REMOTE_BROWSER_BASE_URL", Accepts::Url, None, "Base URL of the remote browser service the remote_browser method asks for tokens (its /api/v1/solve…)."),
    setting("REMOTE_BROWSER_API_KEY", Accepts::Secret, None, "Bearer key of the remote browser service; unset, the remote_browser method gives no token."),
    setting("REMOTE_BROWSER_TIMEOUT", secs(5.0, 600.0), Some("60"), "Seconds a remote browser solve may take, capped at 35 (image) or 45 (video) and never under 12."),
    setting("CAPTCHA_POLL_INTERVAL", secs(0.0, 60.0), Some("3"), "Seconds between polls of a captcha task."),
    setting("CAPTCHA_MAX_POLLS", int(1, 1000), Some("40"), "Polls of a captcha task before giving up."),
    setting("POLL_INTERVAL", secs(0.0, 600.0), Some("3"), "Seconds between video status polls."),
    setting("API_KEY", Accepts::Secret, None, "The client API key; unset, every API route answers 503."),
    setting("ADMIN_USERNAME", Accepts::Text, Some("admin"), "Admin login name."),
    setting("ADMIN_PASSWORD", Accepts::Secret, None, "Admin password, plain or a bcrypt hash ($2b$…); unset disables admin login."),
    setting("ADMIN_PASSWORD_COST", int(4, 16), Some("10"), "bcrypt cost of a password changed through the admin API; each step doubles the CPU of a login."),
    setting("LOGIN_MAX_FAILURES", int(1, 1000), Some("5"), "Failed admin logins per client address within LOGIN_WINDOW; then the address is locked out until the window ends."),
    setting("LOGIN_MAX_FAILURES_GLOBAL", int(1, 1_000_000), Some("100"), "Failed admin logins from all addresses within LOGIN_WINDOW; then every login is locked out until the window ends."),
    setting("LOGIN_WINDOW", secs(1.0, DAY), Some("300"), "Seconds over which failed admin logins are counted, from the first one."),
    setting("ADMIN_CORS_ORIGINS", Accepts::Origins, None, "Comma-separated origins allowed to call /api/* from a browser; unset, /api/* sends no CORS headers."),
    setting("ALLOW_PRIVATE_IMAGE_URLS", Accepts::Flag, Some("false"), "Allow image URLs on loopback, private and link-local addresses."),
    setting("FLOW_MAX_RETRIES", int(1, 20), Some("3"), "Attempts per upstream generation call."),
    setting("MAX_IMAGES", int(1, 64), Some("16"), "Reference images per request."),
    setting("MAX_IMAGE_BYTES", int(1, 100 * 1024 * 1024), Some("20971520"), "Decoded bytes per reference image."),
    setting("MAX_PROMPT_CHARS", int(1, 1_000_000), Some("32000"), "Characters per prompt."),
    setting("PUBLIC_BASE_URL", Accepts::Url, None, "Base of the gateway's own links (/media, files, jobs), a path allowed; unset, derived from the request's Host."),
    setting("TRUST_FORWARDED_HEADERS", Accepts::Flag, Some("false"), "Trust X-Forwarded-For/-Host/-Proto from the client (only behind a proxy that sets them)."),
    setting("KEEPALIVE_INTERVAL", secs(0.1, 300.0), Some("15"), "Seconds between keep-alive comments in event streams."),
    setting("MEDIA_TTL", secs(1.0, 365.0 * DAY), Some("86400"), "Seconds generated media is kept (over KV at least 60: KV's own floor)."),
    setting("MEDIA_CACHE", Accepts::Flag, Some("false"), "Keep a copy of every result (images, upscales, videos) in the media store and link to it, not to Google's expiring URL."),
    setting("CAPTCHA_MAX_RETRIES", int(1, 50), Some("6"), "Attempts on captcha failures, images and videos alike."),
    setting("QUOTA_COOLDOWN", secs(0.0, 30.0 * DAY), Some("3600"), "Seconds an account rests when its quota is spent."),
    setting("RATE_LIMIT_COOLDOWN", secs(0.0, DAY), Some("60"), "Seconds an account rests after rate limits outlast the retries."),
    setting("ERROR_BAN_THRESHOLD", int(0, 1000), Some("3"), "Consecutive counted errors that disable an account; 0 never disables."),
    setting("SLOT_WAIT_TIMEOUT", secs(0.0, 3600.0), Some("60"), "Seconds a request waits for a free account slot."),
    setting("IMAGE_SLOT_LEASE", secs(1.0, DAY), Some("600"), "Seconds an image slot is held at most."),
    setting("VIDEO_SLOT_LEASE", secs(1.0, DAY), Some("600"), "Seconds a video slot is held unless renewed."),
    setting("SELECTION_STRATEGY", Accepts::OneOf(&["least_loaded", "round_robin", "credit_aware"]), Some("least_loaded"), "How an account is picked (the original's default and polling are accepted as aliases)."),
    setting("CREDIT_FLOOR", int(0, 1_000_000_000), Some("0"), "With credit_aware, skip accounts with fewer credits."),
    setting("PROJECT_POOL_SIZE", int(1, 50), Some("4"), "Flow projects per account, used in turn."),
    setting("IMPORT_BATCH_SIZE", int(1, 500), Some("10"), "Accounts a bulk import adds per step; larger imports answer 202 and go on in the background."),
    setting("ACCOUNT_CACHE_TTL", secs(0.0, 60.0), Some("2"), "Seconds a host may cache the account list."),
    setting("MAX_REQUEST_BYTES", int(1 << 16, 1 << 30), Some("67108864"), "Largest request body in bytes (413 beyond); announced lengths are refused before the body is read."),
    setting("IMAGE_FETCH_TIMEOUT", secs(1.0, 600.0), Some("30"), "Seconds for fetching every image URL of one request, together."),
    setting("IMAGE_TIMEOUT", secs(10.0, 3600.0), Some("300"), "Seconds an image generation request may take in all, from its arrival to its result (504 beyond)."),
    setting("VIDEO_TIMEOUT", secs(30.0, 7200.0), Some("600"), "Seconds a video job polls for its result before failing with video_timeout (three times that for models with an upscale step)."),
    setting("LOG_MAX_ENTRIES", int(1, 10_000_000), Some("10000"), "Request log rows kept (the newest); older ones are deleted as new ones come. The counters behind /api/stats are kept regardless."),
    setting("LOG_MAX_AGE_DAYS", int(1, 3650), Some("30"), "Days a request log row is kept."),
    setting("PROXY_URL", Accepts::Proxy, None, "Proxy for every upstream call (Flow and captcha solvers) of accounts without their own; native hosts only (the edge uses EGRESS_RELAY_URL)."),
    setting("MEDIA_PROXY_URL", Accepts::Proxy, None, "Proxy for media downloads (results copied into the media cache); unset, they leave like the generation's other calls."),
    setting("EGRESS_RELAY_URL", Accepts::Url, None, "An egress relay (flow2api-server --relay) every upstream call goes through, for accounts without their own; needs EGRESS_RELAY_SECRET."),
    setting("EGRESS_RELAY_SECRET", Accepts::Secret, None, "The relay's RELAY_SECRET, which signs each relayed request."),
];

/// Looks a setting up by name.
pub fn setting_named(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// One invalid setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// The variable.
    pub name: &'static str,
    /// The value given; `None` for secrets, which are never repeated.
    pub value: Option<String>,
    /// What is wrong and what the setting accepts.
    pub message: String,
}

impl Problem {
    /// A name that is not in [`SETTINGS`].
    pub fn unknown(name: &str) -> Self {
        Self {
            name: "setting",
            value: Some(name.to_owned()),
            message: "no such setting".to_owned(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={v:?}: {}", self.name, self.message),
            None => write!(f, "{}: {}", self.name, self.message),
        }
    }
}

/// Settings that could not be used, every one of them (so one run shows all mistakes).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    /// The invalid settings, in [`SETTINGS`] order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Checks one raw value against its setting, as [`Config::from_lookup`] would.
///
/// # Errors
/// The [`Problem`] with that value.
pub fn check(name: &str, value: &str) -> Result<(), Problem> {
    let Some(setting) = setting_named(name) else {
        return Err(Problem::unknown(name));
    };
    let mut reader = Reader {
        lookup: &|n: &str| (n == name).then(|| value.to_owned()),
        problems: Vec::new(),
    };
    reader.read(setting);
    reader.problems.pop().map_or(Ok(()), Err)
}

/// A parsed value.
enum Value {
    Text(String),
    Flag(bool),
    Int(i64),
    Secs(Duration),
}

struct Reader<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    /// The value of `setting`: the given one if valid, else its default (after recording the
    /// problem, so that the caller fails). `None` when unset without a default.
    fn read(&mut self, setting: &'static Setting) -> Option<Value> {
        let given = (self.lookup)(setting.name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        let from_default = given.is_none();
        let raw = given.or_else(|| setting.default.map(str::to_owned))?;
        match parse(setting, &raw) {
            Ok(v) => Some(v),
            Err(message) => {
                // Defaults are valid by construction (a unit test checks every one).
                debug_assert!(!from_default, "default of {} invalid", setting.name);
                self.problems.push(Problem {
                    name: setting.name,
                    value: (!setting.is_secret()).then_some(raw),
                    message,
                });
                None
            }
        }
    }

    fn setting(name: &str) -> &'static Setting {
        setting_named(name).unwrap_or_else(|| unreachable!("{name} is not in SETTINGS"))
    }

    fn text(&mut self, name: &str) -> Option<String> {
        match self.read(Self::setting(name)) {
            Some(Value::Text(t)) => Some(t),
            _ => None,
        }
    }

    fn text_or_default(&mut self, name: &str) -> String {
        self.text(name)
            .or_else(|| Self::setting(name).default.map(str::to_owned))
            .unwrap_or_default()
    }

    fn flag(&mut self, name: &str) -> bool {
        matches!(self.read(Self::setting(name)), Some(Value::Flag(true)))
    }

    fn int(&mut self, name: &str) -> i64 {
        match self.read(Self::setting(name)) {
            Some(Value::Int(n)) => n,
            _ => 0,
        }
    }

    fn secs(&mut self, name: &str) -> Duration {
        match self.read(Self::setting(name)) {
            Some(Value::Secs(d)) => d,
            _ => Duration::ZERO,
        }
    }
}

fn parse(setting: &Setting, raw: &str) -> Result<Value, String> {
    let accepts = setting.accepts;
    let expected = || format!("expected {accepts}");
    match accepts {
        Accepts::Text | Accepts::Secret => Ok(Value::Text(raw.to_owned())),
        Accepts::Url => {
            let url = url::Url::parse(raw).map_err(|e| format!("{e}; expected {accepts}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(expected());
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(format!("{} (no query or fragment)", expected()));
            }
            Ok(Value::Text(raw.trim_end_matches('/').to_owned()))
        }
        Accepts::Flag => match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(Value::Flag(true)),
            "0" | "false" | "no" | "off" => Ok(Value::Flag(false)),
            _ => Err(expected()),
        },
        Accepts::Integer { min, max } => raw
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .map(Value::Int)
            .ok_or_else(expected),
        Accepts::Seconds { min, max } => raw
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && (min..=max).contains(s))
            .map(|s| Value::Secs(Duration::from_secs_f64(s)))
            .ok_or_else(expected),
        Accepts::Origins => parse_origins(raw).map(Value::Text),
        Accepts::Proxy => match crate::proxy_url::normalize(raw) {
            Ok(Some(url)) => Ok(Value::Text(url)),
            Ok(None) => Err(expected()),
            Err(e) => Err(e.to_string()),
        },
        Accepts::ListOf(words) => {
            let mut out: Vec<&str> = Vec::new();
            for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let word = entry.to_ascii_lowercase().replace('-', "_");
                let Some(w) = words.iter().find(|w| w.eq_ignore_ascii_case(&word)) else {
                    if setting.name == "CAPTCHA_METHOD"
                        && UNBUILT_CAPTCHA_METHODS.contains(&word.as_str())
                    {
                        return Err(format!(
                            "{word} is not built into this version; expected {accepts}"
                        ));
                    }
                    return Err(format!("{entry:?} is not known; expected {accepts}"));
                };
                if out.contains(w) {
                    return Err(format!("{w} is listed twice; expected {accepts}"));
                }
                out.push(w);
            }
            if out.is_empty() {
                return Err(expected());
            }
            Ok(Value::Text(out.join(",")))
        }
        Accepts::OneOf(words) => {
            let word = raw.to_ascii_lowercase().replace('-', "_");
            if let Some(w) = words.iter().find(|w| w.eq_ignore_ascii_case(&word)) {
                return Ok(Value::Text((*w).to_owned()));
            }
            if setting.name == "SELECTION_STRATEGY" {
                if let Some(s) = Strategy::parse(&word) {
                    return Ok(Value::Text(s.as_str().to_owned()));
                }
            }
            Err(expected())
        }
    }
}

/// A list of web origins in the form browsers send them (`https://host[:port]`, lower case,
/// default port left out), comma-joined; an entry with a path, query or credentials is refused.
fn parse_origins(raw: &str) -> Result<String, String> {
    let mut out = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || format!("{entry:?} is not an origin; expected {}", Accepts::Origins);
        let url = url::Url::parse(entry).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
            || url.path() != "/"
        {
            return Err(bad());
        }
        out.push(url.origin().ascii_serialization());
    }
    Ok(out.join(","))
}

/// The raw values a [`Config`] was read from (trimmed, non-empty), kept so that runtime
/// overrides can be applied on top; `Debug` never shows them (some are secrets).
#[derive(Clone, Default)]
struct RawValues(std::sync::Arc<std::collections::BTreeMap<&'static str, String>>);

impl fmt::Debug for RawValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Everything the gateway can be configured with: a validated snapshot of [`SETTINGS`].
///
/// Build it with [`Config::from_lookup`] (or [`Config::default`] for all defaults); change it
/// at run time through the settings store, which yields a new snapshot with a higher
/// [`version`](Config::version).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Which snapshot this is: 0 for the environment alone, else the settings store's version
    /// of the overrides applied on top.
    pub version: u64,
    /// `FLOW_LABS_BASE_URL`.
    pub labs_base_url: String,
    /// `FLOW_API_BASE_URL`.
    pub api_base_url: String,
    /// `CAPTCHA_METHOD`: one or more of [`CAPTCHA_METHODS`], comma-joined, in the order they
    /// are tried ([`crate::captcha::methods`] splits it).
    pub captcha_method: String,
    /// `YESCAPTCHA_BASE_URL`.
    pub yescaptcha_base_url: String,
    /// `YESCAPTCHA_API_KEY`.
    pub yescaptcha_api_key: Option<Secret>,
    /// `YESCAPTCHA_TASK_TYPE`.
    pub yescaptcha_task_type: String,
    /// `CAPMONSTER_BASE_URL`.
    pub capmonster_base_url: String,
    /// `CAPMONSTER_API_KEY`.
    pub capmonster_api_key: Option<Secret>,
    /// `EZCAPTCHA_BASE_URL`.
    pub ezcaptcha_base_url: String,
    /// `EZCAPTCHA_API_KEY`.
    pub ezcaptcha_api_key: Option<Secret>,
    /// `CAPSOLVER_BASE_URL`.
    pub capsolver_base_url: String,
    /// `CAPSOLVER_API_KEY`.
    pub capsolver_api_key: Option<Secret>,
    /// `REMOTE_BROWSER_BASE_URL`.
    pub remote_browser_base_url: Option<String>,
    /// `REMOTE_BROWSER_API_KEY`.
    pub remote_browser_api_key: Option<Secret>,
    /// `REMOTE_BROWSER_TIMEOUT` (seconds, default 60).
    pub remote_browser_timeout: Duration,
    /// `CAPTCHA_POLL_INTERVAL` (seconds, default 3).
    pub captcha_poll_interval: Duration,
    /// `CAPTCHA_MAX_POLLS` (default 40).
    pub captcha_max_polls: u32,
    /// `POLL_INTERVAL` (seconds, default 3): video status polling.
    pub poll_interval: Duration,
    /// `API_KEY`; unset means every API route answers 503.
    pub api_key: Option<Secret>,
    /// `ADMIN_USERNAME` (default `admin`).
    pub admin_username: String,
    /// `ADMIN_PASSWORD`: plain text or a bcrypt hash (`$2b$…`); unset disables admin login.
    pub admin_password: Option<Secret>,
    /// `ADMIN_PASSWORD_COST` (default 10, 4–16): bcrypt cost of a password changed through the
    /// admin API.
    pub admin_password_cost: u32,
    /// `LOGIN_MAX_FAILURES` (default 5): failed admin logins per client address within
    /// `login_window` before that address is locked out until the window ends.
    pub login_max_failures: u32,
    /// `LOGIN_MAX_FAILURES_GLOBAL` (default 100): failed admin logins from every address
    /// together within `login_window` before every login is locked out until it ends.
    pub login_max_failures_global: u32,
    /// `LOGIN_WINDOW` (seconds, default 300): the span failed logins are counted over.
    pub login_window: Duration,
    /// `ADMIN_CORS_ORIGINS`: origins (`https://host[:port]`) whose pages may call `/api/*`;
    /// empty, `/api/*` answers carry no CORS headers.
    pub admin_cors_origins: Vec<String>,
    /// `ALLOW_PRIVATE_IMAGE_URLS`: allow image URLs on loopback/private/link-local addresses.
    pub allow_private_image_urls: bool,
    /// `FLOW_MAX_RETRIES` (default 3): attempts per upstream generation call.
    pub max_retries: u32,
    /// `MAX_IMAGES` (default 16): reference images per request.
    pub max_images: usize,
    /// `MAX_IMAGE_BYTES` (default 20 MiB): decoded bytes per image.
    pub max_image_bytes: usize,
    /// `MAX_PROMPT_CHARS` (default 32000).
    pub max_prompt_chars: usize,
    /// `PUBLIC_BASE_URL`: base of the gateway's own links, a path allowed; else derived from
    /// the request's Host.
    pub public_base_url: Option<String>,
    /// `TRUST_FORWARDED_HEADERS` (default false): trust X-Forwarded-* headers (behind a proxy that sets them).
    pub trust_forwarded_headers: bool,
    /// `KEEPALIVE_INTERVAL` (seconds, default 15): SSE comment heartbeat.
    pub keepalive_interval: Duration,
    /// `MEDIA_TTL` (seconds, default 86400): how long generated media is kept.
    pub media_ttl: Duration,
    /// `MEDIA_CACHE` (default false): copy every result into the media store and answer with
    /// the gateway's own `/media/{id}` link rather than Google's signed URL, which expires.
    pub media_cache: bool,
    /// `CAPTCHA_MAX_RETRIES` (default 6): attempts on captcha failures, images and videos alike.
    pub captcha_max_retries: u32,
    /// `QUOTA_COOLDOWN` (seconds, default 3600): rest for an account whose quota is spent.
    pub quota_cooldown: Duration,
    /// `RATE_LIMIT_COOLDOWN` (seconds, default 60): rest after rate limits outlast the retries.
    pub rate_limit_cooldown: Duration,
    /// `ERROR_BAN_THRESHOLD` (default 3): consecutive counted errors that disable an account;
    /// 0 never disables.
    pub error_ban_threshold: u32,
    /// `LOG_MAX_ENTRIES` (default 10000): request log rows kept, the newest.
    pub log_max_entries: u64,
    /// `LOG_MAX_AGE_DAYS` (default 30): days a request log row is kept.
    pub log_max_age_days: u64,
    /// `SLOT_WAIT_TIMEOUT` (seconds, default 60): how long a request waits for a free slot.
    pub slot_wait_timeout: Duration,
    /// `IMAGE_SLOT_LEASE` (seconds, default 600): lease of an image slot.
    pub image_slot_lease: Duration,
    /// `VIDEO_SLOT_LEASE` (seconds, default 600): lease of a video slot (renewed while held).
    pub video_slot_lease: Duration,
    /// `SELECTION_STRATEGY`: `least_loaded` (default), `round_robin` or `credit_aware`.
    pub selection_strategy: Strategy,
    /// `CREDIT_FLOOR` (default 0): with `credit_aware`, skip accounts with fewer credits.
    pub credit_floor: i64,
    /// `PROJECT_POOL_SIZE` (default 4, 1–50): Flow projects per account, used round-robin.
    pub project_pool_size: usize,
    /// `IMPORT_BATCH_SIZE` (default 10, 1–500): accounts one step of a bulk import adds; an
    /// import of more answers 202 and goes on in the background, one batch per step (at the
    /// edge each step is its own invocation, with its own subrequest budget).
    pub import_batch_size: usize,
    /// `ACCOUNT_CACHE_TTL` (seconds, default 2): how long a host may cache the account list.
    pub account_cache_ttl: Duration,
    /// `MAX_REQUEST_BYTES` (default 64 MiB): the largest request body.
    pub max_request_bytes: usize,
    /// `IMAGE_FETCH_TIMEOUT` (seconds, default 30): every image URL of one request, together.
    pub image_fetch_timeout: Duration,
    /// `IMAGE_TIMEOUT` (seconds, default 300): an image generation request from arrival to
    /// result.
    pub image_timeout: Duration,
    /// `VIDEO_TIMEOUT` (seconds, default 600): how long a video job polls for its result
    /// (three times that for models with an upscale step).
    pub video_timeout: Duration,
    /// `PROXY_URL`, normalised: the proxy of every upstream call of accounts without their own.
    pub proxy_url: Option<Secret>,
    /// `MEDIA_PROXY_URL`, normalised: the proxy of media downloads.
    pub media_proxy_url: Option<Secret>,
    /// `EGRESS_RELAY_URL`: the relay every upstream call of accounts without their own goes
    /// through (with `egress_relay_secret`).
    pub egress_relay_url: Option<String>,
    /// `EGRESS_RELAY_SECRET`: signs relayed requests.
    pub egress_relay_secret: Option<Secret>,
    raw: RawValues,
}

impl Default for Config {
    /// Every setting at its default.
    fn default() -> Self {
        Self::from_lookup(|_| None)
            .unwrap_or_else(|e| unreachable!("the defaults are valid (unit-tested): {e}"))
    }
}

impl Config {
    /// Reads and validates every setting through `lookup` (an environment, a Worker `Env`…);
    /// an unset or empty value takes the setting's default.
    ///
    /// # Errors
    /// [`ConfigError`] listing every value that does not parse, is out of range or names
    /// something this build lacks.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let raw: std::collections::BTreeMap<&'static str, String> = SETTINGS
            .iter()
            .filter_map(|s| {
                let v = lookup(s.name)?.trim().to_owned();
                (!v.is_empty()).then_some((s.name, v))
            })
            .collect();
        let mut r = Reader {
            lookup: &|name: &str| raw.get(name).cloned(),
            problems: Vec::new(),
        };
        let secret = |t: Option<String>| t.map(Secret::new);
        // Bounds are enforced by SETTINGS, so the narrowing casts below cannot truncate.
        let config = Self {
            version: 0,
            labs_base_url: r.text_or_default("FLOW_LABS_BASE_URL"),
            api_base_url: r.text_or_default("FLOW_API_BASE_URL"),
            captcha_method: r.text_or_default("CAPTCHA_METHOD"),
            yescaptcha_base_url: r.text_or_default("YESCAPTCHA_BASE_URL"),
            yescaptcha_api_key: secret(r.text("YESCAPTCHA_API_KEY")),
            yescaptcha_task_type: r.text_or_default("YESCAPTCHA_TASK_TYPE"),
            capmonster_base_url: r.text_or_default("CAPMONSTER_BASE_URL"),
            capmonster_api_key: secret(r.text("CAPMONSTER_API_KEY")),
            ezcaptcha_base_url: r.text_or_default("EZCAPTCHA_BASE_URL"),
            ezcaptcha_api_key: secret(r.text("EZCAPTCHA_API_KEY")),
            capsolver_base_url: r.text_or_default("CAPSOLVER_BASE_URL"),
            capsolver_api_key: secret(r.text("CAPSOLVER_API_KEY")),
            remote_browser_base_url: r.text("REMOTE_BROWSER_BASE_URL"),
            remote_browser_api_key: secret(r.text("REMOTE_BROWSER_API_KEY")),
            remote_browser_timeout: r.secs("REMOTE_BROWSER_TIMEOUT"),
            captcha_poll_interval: r.secs("CAPTCHA_POLL_INTERVAL"),
            captcha_max_polls: r.int("CAPTCHA_MAX_POLLS") as u32,
            poll_interval: r.secs("POLL_INTERVAL"),
            api_key: secret(r.text("API_KEY")),
            admin_username: r.text_or_default("ADMIN_USERNAME"),
            admin_password: secret(r.text("ADMIN_PASSWORD")),
            admin_password_cost: r.int("ADMIN_PASSWORD_COST") as u32,
            login_max_failures: r.int("LOGIN_MAX_FAILURES") as u32,
            login_max_failures_global: r.int("LOGIN_MAX_FAILURES_GLOBAL") as u32,
            login_window: r.secs("LOGIN_WINDOW"),
            admin_cors_origins: r
                .text("ADMIN_CORS_ORIGINS")
                .map(|list| list.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            allow_private_image_urls: r.flag("ALLOW_PRIVATE_IMAGE_URLS"),
            max_retries: r.int("FLOW_MAX_RETRIES") as u32,
            max_images: r.int("MAX_IMAGES") as usize,
            max_image_bytes: r.int("MAX_IMAGE_BYTES") as usize,
            max_prompt_chars: r.int("MAX_PROMPT_CHARS") as usize,
            public_base_url: r.text("PUBLIC_BASE_URL"),
            trust_forwarded_headers: r.flag("TRUST_FORWARDED_HEADERS"),
            keepalive_interval: r.secs("KEEPALIVE_INTERVAL"),
            media_ttl: r.secs("MEDIA_TTL"),
            media_cache: r.flag("MEDIA_CACHE"),
            captcha_max_retries: r.int("CAPTCHA_MAX_RETRIES") as u32,
            quota_cooldown: r.secs("QUOTA_COOLDOWN"),
            rate_limit_cooldown: r.secs("RATE_LIMIT_COOLDOWN"),
            error_ban_threshold: r.int("ERROR_BAN_THRESHOLD") as u32,
            log_max_entries: r.int("LOG_MAX_ENTRIES") as u64,
            log_max_age_days: r.int("LOG_MAX_AGE_DAYS") as u64,
            slot_wait_timeout: r.secs("SLOT_WAIT_TIMEOUT"),
            image_slot_lease: r.secs("IMAGE_SLOT_LEASE"),
            video_slot_lease: r.secs("VIDEO_SLOT_LEASE"),
            selection_strategy: Strategy::parse(&r.text_or_default("SELECTION_STRATEGY"))
                .unwrap_or_default(),
            credit_floor: r.int("CREDIT_FLOOR"),
            project_pool_size: r.int("PROJECT_POOL_SIZE") as usize,
            import_batch_size: r.int("IMPORT_BATCH_SIZE") as usize,
            account_cache_ttl: r.secs("ACCOUNT_CACHE_TTL"),
            max_request_bytes: r.int("MAX_REQUEST_BYTES") as usize,
            image_fetch_timeout: r.secs("IMAGE_FETCH_TIMEOUT"),
            image_timeout: r.secs("IMAGE_TIMEOUT"),
            video_timeout: r.secs("VIDEO_TIMEOUT"),
            proxy_url: secret(r.text("PROXY_URL")),
            media_proxy_url: secret(r.text("MEDIA_PROXY_URL")),
            egress_relay_url: r.text("EGRESS_RELAY_URL"),
            egress_relay_secret: secret(r.text("EGRESS_RELAY_SECRET")),
            raw: RawValues::default(),
        };
        if config.egress_relay_url.is_some() && config.egress_relay_secret.is_none() {
            r.problems.push(Problem {
                name: "EGRESS_RELAY_SECRET",
                value: None,
                message: "EGRESS_RELAY_URL is set: the relay's secret is needed too".to_owned(),
            });
        }
        if r.problems.is_empty() {
            Ok(Self {
                raw: RawValues(std::sync::Arc::new(raw)),
                ..config
            })
        } else {
            Err(ConfigError {
                problems: r.problems,
            })
        }
    }

    /// This configuration with `overrides` (setting name → value) on top of the values it was
    /// read from, as snapshot `version`.
    ///
    /// # Errors
    /// [`ConfigError`] when an override is invalid or names no setting.
    pub fn with_overrides<'a>(
        &self,
        version: u64,
        overrides: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut values = (*self.raw.0).clone();
        let mut problems = Vec::new();
        for (name, value) in overrides {
            match setting_named(name) {
                Some(s) => {
                    values.insert(s.name, value.to_owned());
                }
                None => problems.push(Problem::unknown(name)),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        let mut config = Self::from_lookup(|name| values.get(name).cloned())?;
        config.version = version;
        // Overrides apply to the environment's values, never to earlier overrides.
        config.raw = self.raw.clone();
        Ok(config)
    }

    /// Where a setting's current value comes from: `environment` when the host set it,
    /// `default` otherwise (overrides are the settings store's to report).
    pub fn source_of(&self, name: &str) -> &'static str {
        if self.raw.0.contains_key(name) {
            "environment"
        } else {
            "default"
        }
    }

    /// The raw value a setting was read from, `None` when it took its default.
    pub fn raw_value(&self, name: &str) -> Option<&str> {
        self.raw.0.get(name).map(String::as_str)
    }

    /// The names [`Config::from_lookup`] reads, for hosts that must enumerate them (Workers).
    pub fn names() -> impl Iterator<Item = &'static str> {
        SETTINGS.iter().map(|s| s.name)
    }
}

/// How the pool chooses the next account (`SELECTION_STRATEGY`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Fewest slots in use first, ties at random.
    #[default]
    LeastLoaded,
    /// Least recently used first.
    RoundRobin,
    /// Most remaining credits first; accounts under `CREDIT_FLOOR` are skipped.
    CreditAware,
}

impl Strategy {
    /// Parses `least_loaded`, `round_robin` (or `polling`) and `credit_aware`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "least_loaded" | "default" | "random" => Some(Self::LeastLoaded),
            "round_robin" | "polling" => Some(Self::RoundRobin),
            "credit_aware" | "credits" => Some(Self::CreditAware),
            _ => None,
        }
    }

    /// The canonical name, as [`Strategy::parse`] reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeastLoaded => "least_loaded",
            Self::RoundRobin => "round_robin",
            Self::CreditAware => "credit_aware",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn every_default_is_valid() {
        for s in SETTINGS {
            if let Some(d) = s.default {
                assert!(check(s.name, d).is_ok(), "{}", s.name);
            }
        }
        let c = Config::default();
        assert_eq!(c.max_retries, 3);
        assert_eq!(c.media_ttl, Duration::from_secs(86_400));
        assert_eq!(c.captcha_method, "yescaptcha");
        assert_eq!(c.version, 0);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = Config::names().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SETTINGS.len());
    }

    #[test]
    fn unparsable_numbers_are_errors_naming_the_variable() {
        let e = with(&[("FLOW_MAX_RETRIES", "three"), ("POLL_INTERVAL", "-1")]).unwrap_err();
        assert_eq!(e.problems.len(), 2);
        assert_eq!(e.problems[0].name, "POLL_INTERVAL");
        assert_eq!(e.problems[1].name, "FLOW_MAX_RETRIES");
        let text = e.to_string();
        assert!(
            text.contains("FLOW_MAX_RETRIES=\"three\": expected a whole number from 1 to 20"),
            "{text}"
        );
        assert!(text.contains("seconds from 0 to 600"), "{text}");
    }

    #[test]
    fn out_of_range_values_are_errors() {
        for (name, value) in [
            ("FLOW_MAX_RETRIES", "0"),
            ("PROJECT_POOL_SIZE", "51"),
            ("MEDIA_TTL", "0.5"),
            ("KEEPALIVE_INTERVAL", "0"),
            ("POLL_INTERVAL", "NaN"),
            ("CAPTCHA_MAX_POLLS", "99999999999999999999"),
        ] {
            let e = with(&[(name, value)]).unwrap_err();
            assert_eq!(e.problems[0].name, name, "{value}");
        }
    }

    #[test]
    fn an_unbuilt_captcha_method_is_an_error_not_yescaptcha() {
        let e = with(&[("CAPTCHA_METHOD", "personal")]).unwrap_err();
        assert!(e.to_string().contains("personal is not built"), "{e}");
        assert!(with(&[("CAPTCHA_METHOD", "extension,capsolver")]).is_ok());
        let e = with(&[("CAPTCHA_METHOD", "capsolver,browser")]).unwrap_err();
        assert!(e.to_string().contains("browser is not built"), "{e}");
        assert!(with(&[("CAPTCHA_METHOD", "nonsense")]).is_err());
        assert_eq!(
            with(&[("CAPTCHA_METHOD", "YesCaptcha")])
                .unwrap()
                .captcha_method,
            "yescaptcha"
        );
    }

    #[test]
    fn captcha_methods_are_a_list_of_built_ones() {
        let c = with(&[("CAPTCHA_METHOD", " CapMonster , capsolver,")]).unwrap();
        assert_eq!(c.captcha_method, "capmonster,capsolver");
        for bad in ["capsolver,capsolver", ",", "yescaptcha,nonsense"] {
            assert!(with(&[("CAPTCHA_METHOD", bad)]).is_err(), "{bad}");
        }
        let c = with(&[("CAPTCHA_METHOD", "remote_browser,capsolver")]).unwrap();
        assert_eq!(c.captcha_method, "remote_browser,capsolver");
        assert_eq!(c.remote_browser_timeout, Duration::from_secs(60));
        let c = with(&[("CAPSOLVER_API_KEY", "k")]).unwrap();
        assert_eq!(c.capsolver_base_url, DEFAULT_CAPSOLVER_BASE_URL);
        assert!(c.capmonster_api_key.is_none());
    }

    #[test]
    fn flags_urls_and_choices() {
        assert!(with(&[("ALLOW_PRIVATE_IMAGE_URLS", "maybe")]).is_err());
        assert!(
            with(&[("ALLOW_PRIVATE_IMAGE_URLS", "On")])
                .unwrap()
                .allow_private_image_urls
        );
        assert!(with(&[("FLOW_API_BASE_URL", "ftp://x")]).is_err());
        assert!(with(&[("FLOW_API_BASE_URL", "not a url")]).is_err());
        let c = with(&[
            ("PUBLIC_BASE_URL", "https://example.test/flow/"),
            ("SELECTION_STRATEGY", "polling"),
        ])
        .unwrap();
        assert_eq!(
            c.public_base_url.as_deref(),
            Some("https://example.test/flow")
        );
        assert_eq!(c.selection_strategy, Strategy::RoundRobin);
        assert!(with(&[("SELECTION_STRATEGY", "fastest")]).is_err());
    }

    #[test]
    fn secrets_are_never_repeated_in_errors() {
        let problem = Problem {
            name: "API_KEY",
            value: None,
            message: "expected non-empty text".into(),
        };
        assert_eq!(problem.to_string(), "API_KEY: expected non-empty text");
        let c = with(&[("API_KEY", " sk-1 ")]).unwrap();
        assert_eq!(c.api_key.unwrap().expose(), "sk-1");
    }

    #[test]
    fn overrides_apply_on_top_of_the_environment() {
        let base = with(&[("FLOW_MAX_RETRIES", "4"), ("MAX_IMAGES", "8")]).unwrap();
        let c = base.with_overrides(7, [("FLOW_MAX_RETRIES", "9")]).unwrap();
        assert_eq!((c.version, c.max_retries, c.max_images), (7, 9, 8));
        // A second override set starts again from the environment.
        let d = c.with_overrides(8, [("MAX_IMAGES", "2")]).unwrap();
        assert_eq!((d.max_retries, d.max_images), (4, 2));
        assert!(base.with_overrides(9, [("FLOW_MAX_RETRIES", "x")]).is_err());
        assert!(base.with_overrides(9, [("NOPE", "1")]).is_err());
        let secret = with(&[("API_KEY", "sk-very-secret")]).unwrap();
        assert!(!format!("{secret:?}").contains("sk-very-secret"));
    }

    #[test]
    fn cors_origins_are_normalised_and_checked() {
        let c = with(&[(
            "ADMIN_CORS_ORIGINS",
            " https://Console.Example/ , http://127.0.0.1:8080,https://a.test:443",
        )])
        .unwrap();
        assert_eq!(
            c.admin_cors_origins,
            [
                "https://console.example",
                "http://127.0.0.1:8080",
                "https://a.test"
            ]
        );
        assert!(Config::default().admin_cors_origins.is_empty());
        for bad in [
            "*",
            "console.example",
            "https://a.test/admin",
            "ftp://a.test",
            "https://u:p@a.test",
            "https://a.test?x=1",
        ] {
            let e = with(&[("ADMIN_CORS_ORIGINS", bad)]).unwrap_err();
            assert_eq!(e.problems[0].name, "ADMIN_CORS_ORIGINS", "{bad}");
        }
    }

    #[test]
    fn check_validates_one_value() {
        assert!(check("FLOW_MAX_RETRIES", "5").is_ok());
        assert!(check("FLOW_MAX_RETRIES", "50").is_err());
        assert!(check("NO_SUCH", "1").is_err());
    }
}
