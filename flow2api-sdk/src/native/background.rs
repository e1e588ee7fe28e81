//! Background work of the native server: [`TokioSpawn`] for the SDK's clean-ups,
//! [`refresh_periodically`] for the account pool's refresh pass, and
//! [`purge_media_periodically`] for expired media.

use std::time::Duration;

use crate::pool::tokens::RefreshReport;
use crate::seams::{BoxFuture, Spawn};
use crate::App;

/// The [`Spawn`] of a tokio host: each future becomes a task on the current runtime.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSpawn;

impl Spawn for TokioSpawn {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        // Outside a runtime (only when one is shutting down) the work is dropped; what it would
        // have released (a slot) lapses with its lease.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(future);
        }
    }
}

/// Runs [`AccountPool::refresh_due`](crate::pool::AccountPool::refresh_due) every
/// `every` (the first pass one interval after the start), writing one line per pass to
/// stderr. Runs until dropped or aborted; a zero `every` runs no pass.
pub async fn refresh_periodically(app: App, every: Duration) {
    if every.is_zero() {
        return;
    }
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    // A pass that overran its interval is followed by the next one, not by a burst.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // Run outside the macro: a disabled event does not evaluate its arguments.
        let report = app.pool().refresh_due().await;
        tracing::info!("{}", report_line(&report));
    }
}

/// The interval [`purge_media_periodically`] suits a media TTL: the TTL itself, between one
/// second and ten minutes, so that an expired object does not outlive its TTL by much.
pub fn media_purge_interval(media_ttl: Duration) -> Duration {
    media_ttl.clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// Runs [`App::purge_media`] periodically, every [`media_purge_interval`] of the `MEDIA_TTL`
/// the settings say at the time (so a runtime change applies from the next pass), writing a
/// line to stderr when it deleted something or failed. Runs until dropped or aborted.
pub async fn purge_media_periodically(app: App) {
    let mut last = tokio::time::Instant::now();
    loop {
        // Looks once a second, so that a shorter TTL set at runtime is honoured within one.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if last.elapsed() < media_purge_interval(app.config().media_ttl) {
            continue;
        }
        last = tokio::time::Instant::now();
        match app.purge_media().await {
            Ok(0) => {}
            Ok(n) => tracing::info!("media: purged {n} expired object(s)"),
            Err(e) => tracing::warn!("media: purge failed: {e}"),
        }
    }
}

/// The log line of one pass: counts only, never an account's tokens.
pub fn report_line<E: std::fmt::Display>(result: &Result<RefreshReport, E>) -> String {
    match result {
        Ok(r) => format!("refresh: {r}"),

        Err(e) => format!("refresh failed: {e}"),
    }
}
