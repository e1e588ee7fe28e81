//! reCAPTCHA solving (`docs/upstream.md#recaptcha`): the task-API providers
//! ([`TaskApiSolver`] for YesCaptcha, CapMonster, EzCaptcha and CapSolver), the method chain
//! `CAPTCHA_METHOD` lists ([`ChainSolver`]), the accounting of both ([`CaptchaStats`]) and
//! the `extension` method ([`ExtensionSolver`] over a [`BrowserHub`], §10.5).

mod chain;
mod extension;
mod stats;
mod task_api;

use std::sync::Arc;

pub use chain::ChainSolver;
pub use extension::{
    given_key, route_of_query, AskReply, BrowserHub, BrowserSocket, ExtensionSolver, FromExtension,
    Registered, Switchboard, ToExtension, TokenAsk, CLOSE_POLICY, EXTENSION_METHOD, IMAGE_TIMEOUT,
    VIDEO_TIMEOUT,
};
pub use stats::{CaptchaCounters, CaptchaStats, CaptchaStatsView};
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

/// Every method as a solver, keyed by method, for the chains accounts name: the task-API
/// providers, and `extension` when a [`BrowserHub`] is given.
pub fn all_methods(
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: &crate::config::Config,
    stats: Arc<CaptchaStats>,
    hub: Option<Arc<dyn BrowserHub>>,
) -> ChainSolver {
    let names = Provider::ALL
        .iter()
        .map(|p| p.method())
        .chain([EXTENSION_METHOD]);
    chain_of(names, http, clock, config, stats, hub)
}

/// The chain of solvers `CAPTCHA_METHOD` lists, over `http` (and `hub` for `extension`),
/// booking into `stats`. Validation only lets built methods through.
pub fn from_config(
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: &crate::config::Config,
    stats: Arc<CaptchaStats>,
    hub: Option<Arc<dyn BrowserHub>>,
) -> ChainSolver {
    chain_of(methods(config), http, clock, config, stats, hub)
}

/// A chain of the solvers `names` names, in that order; `extension` without a hub, and
/// unknown names, are left out.
#[allow(clippy::arc_with_non_send_sync)] // one thread on wasm32, where the seams are not Send
fn chain_of<'n>(
    names: impl IntoIterator<Item = &'n str>,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: &crate::config::Config,
    stats: Arc<CaptchaStats>,
    hub: Option<Arc<dyn BrowserHub>>,
) -> ChainSolver {
    let solvers = names
        .into_iter()
        .filter_map(|name| {
            let solver: Arc<dyn CaptchaSolver> = match Provider::from_method(name) {
                Some(p) => Arc::new(TaskApiSolver::new(
                    http.clone(),
                    clock.clone(),
                    TaskApiConfig::for_provider(p, config),
                )),
                None if name == EXTENSION_METHOD => Arc::new(ExtensionSolver::new(hub.clone()?)),
                None => return None,
            };
            Some((name.to_owned(), solver))
        })
        .collect();
    ChainSolver::new(solvers, stats, clock)
}
