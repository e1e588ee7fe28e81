//! reCAPTCHA solving (`docs/upstream.md#recaptcha`): the task-API providers
//! ([`TaskApiSolver`] for YesCaptcha, CapMonster, EzCaptcha and CapSolver), the method chain
//! `CAPTCHA_METHOD` lists ([`ChainSolver`]) and the accounting of both ([`CaptchaStats`]).

mod chain;
mod stats;
mod task_api;

use std::sync::Arc;

pub use chain::ChainSolver;
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

/// Every task-API provider as a solver, keyed by method, for the chains accounts name.
pub fn all_methods(
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: &crate::config::Config,
    stats: Arc<CaptchaStats>,
) -> ChainSolver {
    chain_of(Provider::ALL, http, clock, config, stats)
}

/// The chain of solvers `CAPTCHA_METHOD` lists, over `http`, booking into `stats`.
/// Validation only lets built methods through, so every listed method is a task API.
pub fn from_config(
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: &crate::config::Config,
    stats: Arc<CaptchaStats>,
) -> ChainSolver {
    let providers = methods(config)
        .into_iter()
        .filter_map(Provider::from_method);
    chain_of(providers, http, clock, config, stats)
}

/// A chain of `providers`' solvers, in that order.
#[allow(clippy::arc_with_non_send_sync)] // one thread on wasm32, where the seams are not Send
fn chain_of(
    providers: impl IntoIterator<Item = Provider>,
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: &crate::config::Config,
    stats: Arc<CaptchaStats>,
) -> ChainSolver {
    let solvers = providers
        .into_iter()
        .map(|p| {
            let solver: Arc<dyn CaptchaSolver> = Arc::new(TaskApiSolver::new(
                http.clone(),
                clock.clone(),
                TaskApiConfig::for_provider(p, config),
            ));
            (p.method().to_owned(), solver)
        })
        .collect();
    ChainSolver::new(solvers, stats, clock)
}
