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

/// The chain of solvers `CAPTCHA_METHOD` lists, over `http`, booking into `stats`.
/// Validation only lets built methods through, so every listed method is a task API.
#[allow(clippy::arc_with_non_send_sync)] // one thread on wasm32, where the seams are not Send
pub fn from_config(
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: &crate::config::Config,
    stats: Arc<CaptchaStats>,
) -> ChainSolver {
    let solvers = methods(config)
        .into_iter()
        .filter_map(Provider::from_method)
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
