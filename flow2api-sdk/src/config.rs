//! Configuration, read from the same names on every host: environment variables natively,
//! `[vars]`, secrets and `.dev.vars` on the edge.

use std::time::Duration;

use crate::secret::Secret;

/// Default Labs base URL (E1, E3).
pub const DEFAULT_LABS_BASE_URL: &str = "https://labs.google/fx/api";
/// Default sandbox base URL (E2, E5, E7, E8).
pub const DEFAULT_API_BASE_URL: &str = "https://aisandbox-pa.googleapis.com/v1";
/// Default YesCaptcha base URL.
pub const DEFAULT_YESCAPTCHA_BASE_URL: &str = "https://api.yescaptcha.com";
/// Default YesCaptcha task type.
pub const DEFAULT_YESCAPTCHA_TASK_TYPE: &str = "RecaptchaV3TaskProxylessM1S9";

/// Everything the gateway can be configured with.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FLOW_LABS_BASE_URL`.
    pub labs_base_url: String,
    /// `FLOW_API_BASE_URL`.
    pub api_base_url: String,
    /// `CAPTCHA_METHOD` (only `yescaptcha` is implemented).
    pub captcha_method: String,
    /// `YESCAPTCHA_BASE_URL`.
    pub yescaptcha_base_url: String,
    /// `YESCAPTCHA_API_KEY`.
    pub yescaptcha_api_key: Option<Secret>,
    /// `YESCAPTCHA_TASK_TYPE`.
    pub yescaptcha_task_type: String,
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
    /// `ALLOW_PRIVATE_IMAGE_URLS`: allow image URLs on loopback/private/link-local addresses.
    pub allow_private_image_urls: bool,
    /// `FLOW_MAX_RETRIES` (default 3): attempts per upstream generation call.
    pub max_retries: u32,
    /// `MAX_IMAGES` (default 16): reference images per request.
    pub max_images: usize,
    /// `MAX_IMAGE_BYTES` (default 20 MB): decoded bytes per image.
    pub max_image_bytes: usize,
    /// `MAX_PROMPT_CHARS` (default 32000).
    pub max_prompt_chars: usize,
    /// `PUBLIC_BASE_URL`: base of `/media/{id}` links; else derived from the request's Host.
    pub public_base_url: Option<String>,
    /// `KEEPALIVE_INTERVAL` (seconds, default 15): SSE comment heartbeat.
    pub keepalive_interval: Duration,
    /// `MEDIA_TTL` (seconds, default 86400): how long upsampled media is kept.
    pub media_ttl: Duration,
    /// `CAPTCHA_MAX_RETRIES` (default 6): attempts on captcha failures, images and videos alike.
    pub captcha_max_retries: u32,
    /// `QUOTA_COOLDOWN` (seconds, default 3600): rest for an account whose quota is spent.
    pub quota_cooldown: Duration,
    /// `RATE_LIMIT_COOLDOWN` (seconds, default 60): rest after a plain 429.
    pub rate_limit_cooldown: Duration,
    /// `ERROR_BAN_THRESHOLD` (default 3): consecutive counted errors that disable an account;
    /// 0 never disables.
    pub error_ban_threshold: u32,
    /// `SLOT_WAIT_TIMEOUT` (seconds, default 60): how long a request waits for a free slot.
    pub slot_wait_timeout: Duration,
    /// `IMAGE_SLOT_LEASE` (seconds, default 600): lease of an image slot.
    pub image_slot_lease: Duration,
    /// `VIDEO_SLOT_LEASE` (seconds, default 600): lease of a video slot (renewed while held).
    pub video_slot_lease: Duration,
    /// `SELECTION_STRATEGY`: `least_loaded` (default), `round_robin` or `credit_aware`.
    pub selection_strategy: crate::pool::Strategy,
    /// `CREDIT_FLOOR` (default 0): with `credit_aware`, skip accounts with fewer credits.
    pub credit_floor: i64,
    /// `PROJECT_POOL_SIZE` (default 4, 1–50): Flow projects per account, used round-robin.
    pub project_pool_size: usize,
    /// `ACCOUNT_CACHE_TTL` (seconds, default 2): how long a host may cache the account list.
    pub account_cache_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}

impl Config {
    /// Reads the configuration through `lookup` (an environment, a Worker `Env`…).
    /// Unparsable numbers fall back to their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| {
            lookup(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let num = |k: &str, d: u64| get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
        let secs = |k: &str, d: f64| {
            let v = get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(d);
            Duration::from_secs_f64(if v.is_finite() && v >= 0.0 { v } else { d })
        };
        let flag = |k: &str| {
            get(k).is_some_and(|v| {
                matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
            })
        };
        let base = |k: &str, d: &str| {
            get(k)
                .unwrap_or_else(|| d.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        Self {
            labs_base_url: base("FLOW_LABS_BASE_URL", DEFAULT_LABS_BASE_URL),
            api_base_url: base("FLOW_API_BASE_URL", DEFAULT_API_BASE_URL),
            captcha_method: get("CAPTCHA_METHOD").unwrap_or_else(|| "yescaptcha".into()),
            yescaptcha_base_url: base("YESCAPTCHA_BASE_URL", DEFAULT_YESCAPTCHA_BASE_URL),
            yescaptcha_api_key: get("YESCAPTCHA_API_KEY").map(Secret::new),
            yescaptcha_task_type: get("YESCAPTCHA_TASK_TYPE")
                .unwrap_or_else(|| DEFAULT_YESCAPTCHA_TASK_TYPE.into()),
            captcha_poll_interval: secs("CAPTCHA_POLL_INTERVAL", 3.0),
            captcha_max_polls: num("CAPTCHA_MAX_POLLS", 40).clamp(1, 1000) as u32,
            poll_interval: secs("POLL_INTERVAL", 3.0),
            api_key: get("API_KEY").map(Secret::new),
            admin_username: get("ADMIN_USERNAME").unwrap_or_else(|| "admin".into()),
            admin_password: get("ADMIN_PASSWORD").map(Secret::new),
            allow_private_image_urls: flag("ALLOW_PRIVATE_IMAGE_URLS"),
            max_retries: num("FLOW_MAX_RETRIES", 3).clamp(1, 20) as u32,
            max_images: num("MAX_IMAGES", 16) as usize,
            max_image_bytes: num("MAX_IMAGE_BYTES", 20 * 1024 * 1024) as usize,
            max_prompt_chars: num("MAX_PROMPT_CHARS", 32_000) as usize,
            public_base_url: get("PUBLIC_BASE_URL").map(|v| v.trim_end_matches('/').to_owned()),
            keepalive_interval: secs("KEEPALIVE_INTERVAL", 15.0).max(Duration::from_millis(100)),
            media_ttl: Duration::from_secs(num("MEDIA_TTL", 86_400).max(60)),
            captcha_max_retries: num("CAPTCHA_MAX_RETRIES", 6).clamp(1, 50) as u32,
            quota_cooldown: secs("QUOTA_COOLDOWN", 3600.0),
            rate_limit_cooldown: secs("RATE_LIMIT_COOLDOWN", 60.0),
            error_ban_threshold: num("ERROR_BAN_THRESHOLD", 3) as u32,
            slot_wait_timeout: secs("SLOT_WAIT_TIMEOUT", 60.0),
            image_slot_lease: secs("IMAGE_SLOT_LEASE", 600.0).max(Duration::from_secs(1)),
            video_slot_lease: secs("VIDEO_SLOT_LEASE", 600.0).max(Duration::from_secs(1)),
            selection_strategy: get("SELECTION_STRATEGY")
                .and_then(|v| crate::pool::Strategy::parse(&v))
                .unwrap_or_default(),
            credit_floor: get("CREDIT_FLOOR")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            project_pool_size: num("PROJECT_POOL_SIZE", 4).clamp(1, 50) as usize,
            account_cache_ttl: secs("ACCOUNT_CACHE_TTL", 2.0),
        }
    }

    /// The names [`Config::from_lookup`] reads, for hosts that must enumerate them (Workers).
    pub const NAMES: &'static [&'static str] = &[
        "FLOW_LABS_BASE_URL",
        "FLOW_API_BASE_URL",
        "CAPTCHA_METHOD",
        "YESCAPTCHA_BASE_URL",
        "YESCAPTCHA_API_KEY",
        "YESCAPTCHA_TASK_TYPE",
        "CAPTCHA_POLL_INTERVAL",
        "CAPTCHA_MAX_POLLS",
        "POLL_INTERVAL",
        "API_KEY",
        "ADMIN_USERNAME",
        "ADMIN_PASSWORD",
        "ALLOW_PRIVATE_IMAGE_URLS",
        "FLOW_MAX_RETRIES",
        "MAX_IMAGES",
        "MAX_IMAGE_BYTES",
        "MAX_PROMPT_CHARS",
        "PUBLIC_BASE_URL",
        "KEEPALIVE_INTERVAL",
        "MEDIA_TTL",
        "CAPTCHA_MAX_RETRIES",
        "QUOTA_COOLDOWN",
        "RATE_LIMIT_COOLDOWN",
        "ERROR_BAN_THRESHOLD",
        "SLOT_WAIT_TIMEOUT",
        "IMAGE_SLOT_LEASE",
        "VIDEO_SLOT_LEASE",
        "SELECTION_STRATEGY",
        "CREDIT_FLOOR",
        "PROJECT_POOL_SIZE",
        "ACCOUNT_CACHE_TTL",
    ];
}
