//! reCAPTCHA solving (`docs/upstream.md#recaptcha`): the task-API providers
//! ([`TaskApiSolver`] for YesCaptcha, CapMonster, EzCaptcha and CapSolver), a remote browser
//! service ([`RemoteBrowser`]), the `extension` method ([`ExtensionSolver`] over a
//! [`BrowserHub`], §10.5), the method chain `CAPTCHA_METHOD` lists ([`ChainSolver`]) and the
//! accounting of all of them ([`CaptchaStats`]).

mod chain;
mod extension;
mod remote_browser;
mod stats;
mod task_api;

use std::sync::Arc;

pub use chain::ChainSolver;
pub use extension::{
    given_key, no_browser_for, route_of_query, AskReply, BrowserHub, BrowserSocket,
    ExtensionSolver, FromExtension, Registered, Switchboard, ToExtension, TokenAsk, CLOSE_POLICY,
    EXTENSION_METHOD, IMAGE_TIMEOUT, VIDEO_TIMEOUT,
};
pub use remote_browser::{
    RemoteBrowser, RemoteBrowserConfig, RemoteBrowserHealth, METHOD as REMOTE_BROWSER,
    PREFILL_EVERY,
};
pub use stats::{
    load_shared, load_shared_solvers, CaptchaCounters, CaptchaStats, CaptchaStatsView, FLUSH_EVERY,
};
pub use task_api::{
    Provider, TaskApiConfig, TaskApiSolver, YesCaptcha, YesCaptchaConfig, YESCAPTCHA_TASK_TYPES,
};

use crate::seams::{CaptchaSolver, Clock, HttpClient};

/// The methods `config.captcha_method` lists, in order (`capmonster,capsolver` → both).
pub fn methods(config: &crate::config::Config) -> Vec<&str> {
    config
        .captcha_method
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .collect()
}

/// `raw` as `CAPTCHA_METHOD` takes it, normalised (`" CapSolver, yescaptcha"` →
/// `capsolver,yescaptcha`); empty for an empty one.
///
/// # Errors
/// Why `CAPTCHA_METHOD` would refuse it (an unknown or unbuilt method, a repeat).
pub fn parse_methods(raw: &str) -> Result<String, String> {
    crate::config::check("CAPTCHA_METHOD", raw).map_err(|p| p.message)?;
    Ok(raw
        .split(',')
        .map(|m| m.trim().to_ascii_lowercase().replace('-', "_"))
        .filter(|m| !m.is_empty())
        .collect::<Vec<_>>()
        .join(","))
}

/// Every built method as a solver, keyed by method, for the chains accounts name (`extension`
/// only when a [`BrowserHub`] is given).
pub fn all_methods(
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: &crate::config::Config,
    stats: Arc<CaptchaStats>,
    hub: Option<Arc<dyn BrowserHub>>,
) -> ChainSolver {
    chain_of(
        crate::config::CAPTCHA_METHODS.iter().copied(),
        http,
        clock,
        config,
        stats,
        hub,
    )
}

/// The chain of solvers `CAPTCHA_METHOD` lists, over `http` (and `hub` for `extension`),
/// booking into `stats`.
pub fn from_config(
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: &crate::config::Config,
    stats: Arc<CaptchaStats>,
    hub: Option<Arc<dyn BrowserHub>>,
) -> ChainSolver {
    chain_of(methods(config), http, clock, config, stats, hub)
}

/// A chain of the `methods`' solvers, in that order. Validation only lets built methods
/// through; any other word, and `extension` without a hub, is skipped.
#[allow(clippy::arc_with_non_send_sync)] // one thread on wasm32, where the seams are not Send
fn chain_of<'m>(
    methods: impl IntoIterator<Item = &'m str>,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: &crate::config::Config,
    stats: Arc<CaptchaStats>,
    hub: Option<Arc<dyn BrowserHub>>,
) -> ChainSolver {
    let solvers = methods
        .into_iter()
        .filter_map(|m| {
            let solver: Arc<dyn CaptchaSolver> = if m == REMOTE_BROWSER {
                Arc::new(
                    RemoteBrowser::new(
                        http.clone(),
                        clock.clone(),
                        RemoteBrowserConfig::from(config),
                    )
                    .with_stats(stats.clone()),
                )
            } else if m == EXTENSION_METHOD {
                Arc::new(ExtensionSolver::new(hub.clone()?))
            } else {
                Arc::new(TaskApiSolver::new(
                    http.clone(),
                    clock.clone(),
                    TaskApiConfig::for_provider(Provider::from_method(m)?, config),
                ))
            };
            Some((m.to_owned(), solver))
        })
        .collect();
    ChainSolver::new(solvers, stats, clock)
}
