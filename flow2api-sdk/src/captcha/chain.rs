//! A method chain (`CAPTCHA_METHOD=capmonster,capsolver`): each solve tries the methods in order
//! and takes the first token; every failure moves on to the next method, since each kind of
//! [`CaptchaError`] means "this method cannot help now" (no key, no capacity, no token).

use std::sync::Arc;

use crate::seams::{
    boxed, BoxFuture, CaptchaError, CaptchaRequest, CaptchaSolution, CaptchaSolver, Clock,
};

use super::stats::CaptchaStats;

/// Several solvers tried in order, each solve booked in [`CaptchaStats`] under the method's
/// name.
pub struct ChainSolver {
    methods: Vec<(String, Arc<dyn CaptchaSolver>)>,
    stats: Arc<CaptchaStats>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ChainSolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainSolver")
            .field(
                "methods",
                &self.methods.iter().map(|(m, _)| m).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ChainSolver {
    /// A chain over `methods` (name, solver), in order. An empty chain fails every solve.
    pub fn new(
        methods: Vec<(String, Arc<dyn CaptchaSolver>)>,
        stats: Arc<CaptchaStats>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            methods,
            stats,
            clock,
        }
    }

    /// The methods' names, in order.
    pub fn methods(&self) -> impl Iterator<Item = &str> {
        self.methods.iter().map(|(m, _)| m.as_str())
    }

    /// Solves with the methods `order` names (comma-separated, in that order) instead of the
    /// chain's own order; names it does not hold are skipped.
    pub async fn solve_in(
        &self,
        request: &CaptchaRequest,
        order: &str,
    ) -> Result<CaptchaSolution, CaptchaError> {
        let picked = order
            .split(',')
            .filter_map(|m| self.methods.iter().find(|(name, _)| name == m.trim()));
        self.solve_over(request, picked).await
    }

    /// The solver `name`s, when the chain holds it.
    pub fn method(&self, name: &str) -> Option<&Arc<dyn CaptchaSolver>> {
        self.methods
            .iter()
            .find(|(m, _)| m == name)
            .map(|(_, solver)| solver)
    }

    /// Prefills the methods `order` names (see [`solve_in`](Self::solve_in)).
    pub async fn prefill_in(&self, request: &CaptchaRequest, order: &str) {
        for name in order.split(',') {
            if let Some(solver) = self.method(name.trim()) {
                solver.prefill(request).await;
            }
        }
    }

    async fn solve_inner(&self, request: &CaptchaRequest) -> Result<CaptchaSolution, CaptchaError> {
        self.solve_over(request, self.methods.iter()).await
    }

    async fn solve_over<'s>(
        &'s self,
        request: &CaptchaRequest,
        methods: impl Iterator<Item = &'s (String, Arc<dyn CaptchaSolver>)>,
    ) -> Result<CaptchaSolution, CaptchaError> {
        let mut last: Option<CaptchaError> = None;
        let mut why = Vec::new();
        for (name, solver) in methods {
            let started = self.clock.now_ms();
            match solver.solve(request).await {
                Ok(mut solution) => {
                    let ms = self.clock.now_ms().saturating_sub(started);
                    self.stats.solver_solved(name, ms);
                    if solution.method.is_empty() {
                        solution.method.clone_from(name);
                    }
                    return Ok(solution);
                }
                Err(e) => {
                    let ms = self.clock.now_ms().saturating_sub(started);
                    self.stats.solver_failed(name, e.kind, ms);
                    why.push(e.message.clone());
                    last = Some(e);
                }
            }
        }
        Err(match last {
            // One method: its own error as it was.
            Some(e) if why.len() == 1 => e,
            Some(e) => CaptchaError::new(e.kind, why.join("; ")),
            None => CaptchaError::new(
                crate::seams::CaptchaErrorKind::NotConfigured,
                "no captcha method is configured",
            ),
        })
    }
}

impl CaptchaSolver for ChainSolver {
    fn solve<'a>(
        &'a self,
        request: &'a CaptchaRequest,
    ) -> BoxFuture<'a, Result<CaptchaSolution, CaptchaError>> {
        boxed(self.solve_inner(request))
    }

    /// Passes the outcome to the method that solved `solution`.
    fn finish<'a>(
        &'a self,
        solution: &'a CaptchaSolution,
        failure: Option<&'a str>,
    ) -> BoxFuture<'a, ()> {
        boxed(async move {
            if let Some(solver) = self.method(&solution.method) {
                solver.finish(solution, failure).await;
            }
        })
    }

    /// Prefills every method of the chain (those without a use for it ignore it).
    fn prefill<'a>(&'a self, request: &'a CaptchaRequest) -> BoxFuture<'a, ()> {
        boxed(async move {
            for (_, solver) in &self.methods {
                solver.prefill(request).await;
            }
        })
    }
}
