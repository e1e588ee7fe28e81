//! Account records: add by ST or bulk import, update, enable, disable, delete, export.

use serde::{Deserialize, Serialize};

use crate::flow::{FlowError, Session};
use crate::models::Tier;
use crate::seams::StorageError;
use crate::secret::Secret;
use crate::util;

use super::{Account, AccountPool, PoolError, GRANT_EXPIRED};
use crate::coordination::AccountCommand;

/// Settings given when adding or updating an account (every field optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccountSettings {
    /// Free text.
    pub remark: Option<String>,
    /// Serves images.
    pub image_enabled: Option<bool>,
    /// Serves videos.
    pub video_enabled: Option<bool>,
    /// Image concurrency; -1 or null = unlimited.
    pub image_concurrency: Option<i64>,
    /// Video concurrency; -1 or null = unlimited.
    pub video_concurrency: Option<i64>,
    /// Its own captcha method chain (as `CAPTCHA_METHOD`); `""` goes back to the global one.
    pub captcha_method: Option<String>,
    /// Its browser extension's route key (stored for the `extension` method); `""` clears it.
    pub extension_route_key: Option<String>,
    /// Its own proxy in any `crate::proxy_url` form; `""` clears it (back to `PROXY_URL`).
    pub proxy_url: Option<Secret>,
    /// Its own egress relay's URL; `""` clears it (with the secret).
    pub egress_relay_url: Option<String>,
    /// Its relay's secret; `""` clears it.
    pub egress_relay_secret: Option<Secret>,
}

fn limit(v: i64) -> Option<u32> {
    (v >= 0).then(|| v.min(i64::from(u32::MAX)) as u32)
}

impl AccountSettings {
    /// Refuses a `captcha_method` that `CAPTCHA_METHOD` would refuse, or a route key that is
    /// not short plain text.
    ///
    /// # Errors
    /// [`PoolError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), PoolError> {
        if let Some(m) = self
            .captcha_method
            .as_deref()
            .filter(|m| !m.trim().is_empty())
        {
            crate::captcha::parse_methods(m)
                .map_err(|e| PoolError::Invalid(format!("`captcha_method`: {e}")))?;
        }
        if let Some(p) = &self.proxy_url {
            crate::proxy_url::normalize(p.expose())
                .map_err(|e| PoolError::Invalid(format!("`proxy_url`: {e}")))?;
        }
        if let Some(u) = self
            .egress_relay_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            crate::config::check("EGRESS_RELAY_URL", u)
                .map_err(|p| PoolError::Invalid(format!("`egress_relay_url`: {}", p.message)))?;
            if self
                .egress_relay_secret
                .as_ref()
                .is_none_or(|s| s.expose().trim().is_empty())
            {
                return Err(PoolError::Invalid(
                    "`egress_relay_url` needs `egress_relay_secret`.".into(),
                ));
            }
        }
        if let Some(k) = &self.extension_route_key {
            if k.len() > 128 || k.chars().any(char::is_control) {
                return Err(PoolError::Invalid(
                    "`extension_route_key` must be at most 128 printable characters.".into(),
                ));
            }
        }
        Ok(())
    }

    /// The way the account's calls leave that these settings name (its relay, else its
    /// proxy), for the calls made while adding it; `None`: the configured default.
    pub fn egress(&self) -> Option<crate::seams::Egress> {
        let proxy = self
            .proxy_url
            .as_ref()
            .and_then(|p| crate::proxy_url::normalize(p.expose()).ok().flatten())
            .map(Secret::new);
        let relay = self
            .egress_relay_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        crate::egress::account_egress(relay, self.egress_relay_secret.as_ref(), proxy.as_ref())
    }

    fn apply_to(&self, a: &mut Account) {
        if let Some(m) = &self.captcha_method {
            // Validated already; empty goes back to the global chain.
            a.captcha_method = crate::captcha::parse_methods(m)
                .ok()
                .filter(|m| !m.is_empty());
        }
        if let Some(k) = &self.extension_route_key {
            let k = k.trim();
            a.extension_route_key = (!k.is_empty()).then(|| k.to_owned());
        }
        if let Some(p) = &self.proxy_url {
            // Validated already; empty goes back to the global proxy.
            a.proxy_url = crate::proxy_url::normalize(p.expose())
                .ok()
                .flatten()
                .map(Secret::new);
        }
        if let Some(u) = &self.egress_relay_url {
            let u = u.trim().trim_end_matches('/');
            a.egress_relay_url = (!u.is_empty()).then(|| u.to_owned());
        }
        if let Some(s) = &self.egress_relay_secret {
            let s = s.expose().trim();
            a.egress_relay_secret = (!s.is_empty()).then(|| Secret::new(s));
        }
        if a.egress_relay_url.is_none() {
            a.egress_relay_secret = None;
        }
        if let Some(r) = &self.remark {
            a.remark = r.clone();
        }
        if let Some(v) = self.image_enabled {
            a.image_enabled = v;
        }
        if let Some(v) = self.video_enabled {
            a.video_enabled = v;
        }
        if let Some(v) = self.image_concurrency {
            a.image_concurrency = limit(v);
        }
        if let Some(v) = self.video_concurrency {
            a.video_concurrency = limit(v);
        }
    }
}

/// One item of a bulk import, and of the export (the original's import item; browser-only fields
/// are accepted and ignored).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportItem {
    /// Email (export only; the import reads it from the session).
    pub email: Option<String>,
    /// The session token (required).
    pub session_token: Option<Secret>,
    /// Whether the account is active: `false` imports it disabled (as exported).
    pub is_active: Option<bool>,
    /// Serves images.
    pub image_enabled: Option<bool>,
    /// Serves videos.
    pub video_enabled: Option<bool>,
    /// Image concurrency (-1 = unlimited).
    pub image_concurrency: Option<i64>,
    /// Video concurrency (-1 = unlimited).
    pub video_concurrency: Option<i64>,
    /// Free text.
    pub remark: Option<String>,
    /// Its own captcha method chain (as `CAPTCHA_METHOD`); absent or `""`: the global one.
    pub captcha_method: Option<String>,
    /// Its browser extension's route key.
    pub extension_route_key: Option<String>,
    /// Its own proxy (any accepted format; exported canonical).
    pub proxy_url: Option<Secret>,
}

/// The remark of an account the Token Updater extension added (the original's words).
pub const PUSHED_REMARK: &str = "Added by Chrome Extension";
/// The status reason of an expired account whose ST was updated while
/// `auto_enable_on_update` was off.
const NOT_AUTO_ENABLED: &str =
    "disabled: session token updated; enable it (auto_enable_on_update is off)";

/// What [`AccountPool::push_session`] did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The account as stored afterwards.
    pub account: Account,
    /// A new account (`false`: an existing one took the ST).
    pub added: bool,
    /// An inactive account was enabled again.
    pub enabled: bool,
}

/// What a bulk import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Accounts added.
    pub added: usize,
    /// Accounts updated (same email).
    pub updated: usize,
    /// One line per failed item (no secrets).
    pub errors: Vec<String>,
}

impl AccountPool {
    /// Adds an account from its session token: session-to-access-token → AT, credits → credits and
    /// tier (a failure is tolerated), create-project × `PROJECT_POOL_SIZE` → the project pool.
    ///
    /// # Errors
    /// [`PoolError::Duplicate`], [`PoolError::Rejected`], storage failures.
    pub async fn add(&self, st: Secret, settings: &AccountSettings) -> Result<Account, PoolError> {
        let st = Secret::new(st.expose().trim());
        if st.is_empty() {
            return Err(PoolError::Invalid("`st` must not be empty.".into()));
        }
        settings.validate()?;
        if let Some(existing) = self.holder_of(&st).await? {
            return Err(PoolError::Duplicate(existing));
        }
        // Its own way out (proxy or relay) from the first call on.
        let session = self
            .flow_for(settings)
            .session(&st)
            .await
            .map_err(PoolError::Rejected)?;
        self.add_exchanged(st, session, settings, true).await
    }

    /// The Flow client for calls made for an account with `settings`.
    fn flow_for(
        &self,
        settings: &AccountSettings,
    ) -> std::borrow::Cow<'_, crate::flow::FlowClient> {
        match settings.egress() {
            Some(egress) => std::borrow::Cow::Owned(self.flow.with_egress(egress)),
            None => std::borrow::Cow::Borrowed(&self.flow),
        }
    }

    /// [`add`](Self::add) once the ST was exchanged; `active: false` adds it disabled (an
    /// import of an exported disabled account), without asking its coordinator anything
    /// (at the edge: no Durable Object for it until it is enabled).
    async fn add_exchanged(
        &self,
        st: Secret,
        session: Session,
        settings: &AccountSettings,
        active: bool,
    ) -> Result<Account, PoolError> {
        let flow = self.flow_for(settings);
        let credits = flow.credits(&session.access_token).await;
        let grant_expired = matches!(&credits, Err(e) if e.is_auth());
        let credits = credits.ok();
        let now = self.clock.now_ms();
        let projects = self
            .create_projects(&flow, &st, self.settings.project_pool_size, now)
            .await?;
        let email = session.email.clone().unwrap_or_default();
        let mut account = Account {
            id: util::random_hex(6),
            st,
            at: Some(session.access_token.clone()),
            at_expires_ms: session.expires_ms,
            name: session.name.unwrap_or_else(|| email.clone()),
            email,
            remark: String::new(),
            credits: credits.map_or(0, |c| c.credits),
            tier: credits.map_or(Tier::Free, |c| c.tier),
            projects,
            active: true,
            status_reason: None,
            status_at_ms: None,
            image_enabled: true,
            video_enabled: true,
            image_concurrency: None,
            video_concurrency: None,
            created_at_ms: now,
            captcha_method: None,
            extension_route_key: None,
            proxy_url: None,
            egress_relay_url: None,
            egress_relay_secret: None,
        };
        settings.apply_to(&mut account);
        if !active {
            account.active = false;
            account.status_reason = Some(super::DISABLED_BY_ADMIN.to_owned());
            account.status_at_ms = Some(now);
        }
        if grant_expired {
            // Kept, so that the next push of a working ST finds it by email.
            account.active = false;
            account.status_reason = Some(GRANT_EXPIRED.to_owned());
            account.status_at_ms = Some(now);
        }
        // A random id taken already is unlikely; draw again rather than overwrite.
        while !self.insert(&account).await? {
            account.id = util::random_hex(6);
        }
        if account.active {
            self.seed_token(&account).await;
        }
        Ok(account)
    }

    /// Creates `n` Flow projects (`Flow2API <date> P<i>`).
    async fn create_projects(
        &self,
        flow: &crate::flow::FlowClient,
        st: &Secret,
        n: usize,
        now: u64,
    ) -> Result<Vec<String>, PoolError> {
        let stamp = &util::format_rfc3339(now)[..16];
        let mut projects = Vec::with_capacity(n);
        for i in 1..=n.max(1) {
            let title = format!("Flow2API {stamp} P{i}");
            projects.push(
                flow.create_project(st, &title)
                    .await
                    .map_err(PoolError::Rejected)?,
            );
        }
        Ok(projects)
    }

    /// Puts the record's token into the coordinator, and clears old errors and cooldowns.
    async fn seed_token(&self, account: &Account) {
        let _ = self
            .coordinator
            .apply(&account.id, AccountCommand::Reset)
            .await;
        if let Some(token) = account.recorded_token() {
            let _ = self
                .coordinator
                .apply(
                    &account.id,
                    AccountCommand::FinishRefresh { token: Some(token) },
                )
                .await;
        }
    }

    /// Updates an account's settings and, with `st`, its session token (re-exchanged and
    /// re-activating the account, `docs/upstream.md#accounts`).
    ///
    /// # Errors
    /// Not found, a rejected ST, storage failures.
    pub async fn update(
        &self,
        id: &str,
        st: Option<Secret>,
        settings: &AccountSettings,
    ) -> Result<Account, PoolError> {
        settings.validate()?;
        let Some(st) = st.filter(|s| !s.expose().trim().is_empty()) else {
            return self.modify(id, |a| settings.apply_to(a)).await;
        };
        let st = Secret::new(st.expose().trim());
        self.get(id).await?;
        if let Some(holder) = self.holder_of(&st).await?.filter(|h| h != id) {
            return Err(PoolError::Duplicate(holder));
        }
        let session = self.flow.session(&st).await.map_err(PoolError::Rejected)?;
        self.update_exchanged(id, st, session, settings, true).await
    }

    /// [`update`](Self::update) with a new ST once it was exchanged. With `enable` the
    /// account is active afterwards (unless credits refuses the new token:
    /// [`GRANT_EXPIRED`]); without it an inactive account stays inactive.
    async fn update_exchanged(
        &self,
        id: &str,
        st: Secret,
        session: Session,
        settings: &AccountSettings,
        enable: bool,
    ) -> Result<Account, PoolError> {
        let current = self.get(id).await?;
        let projects = if current.projects.is_empty() {
            self.create_projects(
                &self.flow,
                &st,
                self.settings.project_pool_size,
                self.clock.now_ms(),
            )
            .await?
        } else {
            Vec::new()
        };
        let credits = self.flow.credits(&session.access_token).await;
        let grant_expired = matches!(&credits, Err(e) if e.is_auth());
        let credits = credits.ok();
        let now = self.clock.now_ms();
        let account = self
            .modify(id, |a| {
                settings.apply_to(a);
                if a.projects.is_empty() {
                    a.projects = projects.clone();
                }
                a.st = st.clone();
                a.at = Some(session.access_token.clone());
                a.at_expires_ms = session.expires_ms;
                if let Some(e) = &session.email {
                    a.email = e.clone();
                }
                if let Some(c) = credits {
                    a.credits = c.credits;
                    a.tier = c.tier;
                }
                if grant_expired {
                    a.active = false;
                    a.status_reason = Some(GRANT_EXPIRED.to_owned());
                    a.status_at_ms = Some(now);
                } else if enable {
                    a.active = true;
                    a.status_reason = None;
                    a.status_at_ms = None;
                } else if a.expired() {
                    // The new ST mends what expired it, but the account stays off as asked.
                    a.status_reason = Some(NOT_AUTO_ENABLED.to_owned());
                    a.status_at_ms = Some(now);
                }
            })
            .await?;
        if account.active {
            self.seed_token(&account).await;
        }
        Ok(account)
    }

    /// Enables or disables an account. Enabling clears errors and cooldown.
    ///
    /// # Errors
    /// Not found, storage failures.
    pub async fn set_active(&self, id: &str, active: bool) -> Result<Account, PoolError> {
        if !active {
            return self
                .deactivate(id, super::DISABLED_BY_ADMIN.to_owned())
                .await;
        }
        let account = self
            .modify(id, |a| {
                a.active = true;
                a.status_reason = None;
                a.status_at_ms = None;
            })
            .await?;
        let _ = self.coordinator.apply(id, AccountCommand::Reset).await;
        Ok(account)
    }

    /// Deletes an account (its Flow projects are left upstream). A change racing the delete
    /// finds no record and writes nothing ([`AccountPool::modify`]): a deleted account never
    /// comes back.
    ///
    /// # Errors
    /// Not found, storage failures.
    pub async fn delete(&self, id: &str) -> Result<(), PoolError> {
        let account = self.get(id).await?;
        self.storage.delete(&account.key()).await?;
        self.reindex(Some(&account), None).await?;
        let _ = self
            .coordinator
            .apply(id, AccountCommand::InvalidateToken)
            .await;
        Ok(())
    }

    /// Bulk import (`docs/upstream.md#accounts`): each item's ST is exchanged; an account with the
    /// same email is updated, otherwise one is added. An item that fails is reported and skipped.
    ///
    /// # Errors
    /// Storage failures listing accounts.
    pub async fn import(&self, items: Vec<ImportItem>) -> Result<ImportReport, PoolError> {
        let mut report = ImportReport::default();
        for (i, item) in items.into_iter().enumerate() {
            self.import_one(i + 1, item, &mut report).await?;
        }
        Ok(report)
    }

    /// Imports item number `n` (from 1) into `report`: its failures are reported there, only
    /// storage failures end the import.
    pub(crate) async fn import_one(
        &self,
        n: usize,
        item: ImportItem,
        report: &mut ImportReport,
    ) -> Result<(), StorageError> {
        let Some(st) = item
            .session_token
            .clone()
            .filter(|s| !s.expose().trim().is_empty())
        else {
            report
                .errors
                .push(format!("item {n}: session_token is required"));
            return Ok(());
        };
        let st = Secret::new(st.expose().trim());
        let settings = AccountSettings {
            remark: item.remark.clone(),
            image_enabled: item.image_enabled,
            video_enabled: item.video_enabled,
            image_concurrency: item.image_concurrency,
            video_concurrency: item.video_concurrency,
            captcha_method: item.captcha_method.clone(),
            extension_route_key: item.extension_route_key.clone(),
            proxy_url: item.proxy_url.clone(),
            ..AccountSettings::default()
        };
        if let Err(e) = settings.validate() {
            report.errors.push(format!("item {n}: {e}"));
            return Ok(());
        }
        let session = match self.flow.session(&st).await {
            Ok(s) => s,
            Err(e) => {
                report.errors.push(format!("item {n}: {}", short(&e)));
                return Ok(());
            }
        };
        // `is_active: false` (as the export writes it for a disabled account) comes back
        // disabled; an import never disables an account the admin had on otherwise.
        let disabled = item.is_active == Some(false);
        let email = session.email.clone().unwrap_or_default();
        let by_email = self.holder_of_email(&email).await?;
        let by_st = self.holder_of(&st).await?;
        // The account with this email takes the new ST, unless another account holds it.
        let result = match (by_email, by_st) {
            (Some(id), Some(holder)) if holder != id => Err(PoolError::Duplicate(holder)),
            (Some(id), _) => self
                .update_exchanged(&id, st, session, &settings, true)
                .await
                .map(|a| (false, a.id)),
            (None, Some(holder)) => Err(PoolError::Duplicate(holder)),
            (None, None) => self
                .add_exchanged(st, session, &settings, !disabled)
                .await
                .map(|a| (true, a.id)),
        };
        let result = match result {
            Ok((false, id)) if disabled => self.set_active(&id, false).await.map(|_| false),
            other => other.map(|(added, _)| added),
        };
        match result {
            Ok(true) => report.added += 1,
            Ok(false) => report.updated += 1,
            Err(PoolError::Storage(e)) => return Err(e),
            Err(e) => report.errors.push(format!("item {n}: {e}")),
        }
        Ok(())
    }

    /// Takes a session token pushed by the Token Updater extension: exchanged for its email,
    /// then the account with that email (or, failing that, the one holding this ST) takes
    /// it, else a new account is added with [`PUSHED_REMARK`]. With `auto_enable` an inactive
    /// account is enabled again; without it, it stays off. Either way an ST whose fresh token
    /// credits refuses leaves the account expired ([`GRANT_EXPIRED`]).
    ///
    /// # Errors
    /// [`PoolError::Invalid`] for an empty ST or a session without an email,
    /// [`PoolError::Rejected`] when the exchange (or a project creation) failed,
    /// [`PoolError::Duplicate`] when another account holds the ST, storage failures.
    pub async fn push_session(&self, st: Secret, auto_enable: bool) -> Result<Pushed, PoolError> {
        let st = Secret::new(st.expose().trim());
        if st.is_empty() {
            return Err(PoolError::Invalid(
                "`session_token` must not be empty.".into(),
            ));
        }
        let session = self.flow.session(&st).await.map_err(PoolError::Rejected)?;
        let email = session.email.clone().unwrap_or_default();
        if email.trim().is_empty() {
            return Err(PoolError::Invalid(
                "The session token's session has no email; it cannot be matched to an account."
                    .into(),
            ));
        }
        let by_email = self.holder_of_email(&email).await?;
        let by_st = self.holder_of(&st).await?;
        let target = match (by_email, by_st) {
            (Some(id), Some(holder)) if holder != id => return Err(PoolError::Duplicate(holder)),
            (Some(id), _) | (None, Some(id)) => Some(id),
            (None, None) => None,
        };
        let Some(id) = target else {
            let settings = AccountSettings {
                remark: Some(PUSHED_REMARK.to_owned()),
                ..AccountSettings::default()
            };
            let account = self.add_exchanged(st, session, &settings, true).await?;
            return Ok(Pushed {
                account,
                added: true,
                enabled: false,
            });
        };
        let was_active = self.get(&id).await?.active;
        let settings = AccountSettings::default();
        let account = self
            .update_exchanged(&id, st, session, &settings, auto_enable)
            .await?;
        Ok(Pushed {
            enabled: !was_active && account.active,
            account,
            added: false,
        })
    }

    /// Every account in the import format, for moving accounts between deployments.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn export(&self) -> Result<Vec<ImportItem>, PoolError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .map(|a| ImportItem {
                email: Some(a.email),
                session_token: Some(a.st),
                is_active: Some(a.active),
                image_enabled: Some(a.image_enabled),
                video_enabled: Some(a.video_enabled),
                image_concurrency: Some(a.image_concurrency.map_or(-1, i64::from)),
                video_concurrency: Some(a.video_concurrency.map_or(-1, i64::from)),
                remark: Some(a.remark),
                captcha_method: a.captcha_method,
                extension_route_key: a.extension_route_key,
                proxy_url: a.proxy_url,
            })
            .collect())
    }
}

fn short(e: &FlowError) -> String {
    if e.is_auth() {
        "the session token does not yield an access token".to_owned()
    } else {
        e.to_string()
    }
}
