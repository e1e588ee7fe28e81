//! Runtime settings: overrides of [`SETTINGS`](crate::config::SETTINGS) kept in a strongly
//! consistent store (a Durable Object at the edge, SQLite natively), versioned, applied on top
//! of the host's environment without a restart.
//!
//! Every process or isolate keeps a [`SettingsCache`]: the current [`Config`] snapshot and when
//! the store was last asked. A request re-reads the overrides' version at most once per
//! [`REFRESH_EVERY`]; a higher version yields a new snapshot that the next request uses. A
//! change made through this process is applied at once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{self, Config, ConfigError};
use crate::seams::{Bytes, Expect, Storage, StorageError};

/// The key of the overrides record in the consistent store.
pub const SETTINGS_KEY: &str = "settings:overrides";
/// How often a cache asks the store whether the overrides changed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The stored overrides: setting name → raw value, and a version raised by every change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overrides {
    /// 0 when nothing was ever changed.
    pub version: u64,
    /// The overridden settings.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// When the last change was made (milliseconds since the Unix epoch).
    #[serde(default)]
    pub changed_at_ms: u64,
}

/// Why a settings change was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value is invalid or names no setting; nothing was changed.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// The overrides changed since the version the caller read.
    #[error("the settings changed meanwhile (now version {current}); read them again")]
    Conflict {
        /// The stored version.
        current: u64,
    },
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Reads the overrides from `store` (none stored: version 0).
///
/// # Errors
/// Storage failures; an unreadable record reads as a storage failure too.
pub async fn load(store: &dyn Storage) -> Result<Overrides, StorageError> {
    parse(store.get(SETTINGS_KEY).await?.as_deref())
}

/// The overrides in a stored record (`None`: never written).
fn parse(record: Option<&[u8]>) -> Result<Overrides, StorageError> {
    record.map_or(Ok(Overrides::default()), |bytes| {
        serde_json::from_slice(bytes)
            .map_err(|e| StorageError(format!("settings record unreadable: {e}")))
    })
}

/// One setting as an operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct SettingView {
    /// The variable name.
    pub name: &'static str,
    /// The current value, masked when secret; `None` when unset.
    pub value: Option<String>,
    /// `default`, `environment` or `override`.
    pub source: &'static str,
    /// The default, `None` when unset is meaningful.
    pub default: Option<&'static str>,
    /// What the setting accepts, in words.
    pub accepts: String,
    /// What it accepts, for a form: the kind of input and its bounds or choices.
    pub input: SettingInput,
    /// True for secrets (shown masked, never in clear).
    pub secret: bool,
    /// What it does.
    pub about: &'static str,
}

/// What a setting accepts, shaped for a form (the operator's console renders one input per
/// setting from it and checks values before sending them; the server checks again).
#[derive(Debug, Clone, Serialize)]
pub struct SettingInput {
    /// `url`, `text`, `secret`, `flag`, `integer`, `seconds`, `one_of`, `list_of`,
    /// `origins` or `proxy`.
    pub kind: &'static str,
    /// The smallest value (`integer`, `seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// The largest value (`integer`, `seconds`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The words accepted (`one_of`, `list_of`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub choices: Option<&'static [&'static str]>,
}

impl From<config::Accepts> for SettingInput {
    fn from(a: config::Accepts) -> Self {
        use config::Accepts as A;
        let plain = |kind| Self {
            kind,
            min: None,
            max: None,
            choices: None,
        };
        match a {
            A::Url => plain("url"),
            A::Text => plain("text"),
            A::Secret => plain("secret"),
            A::Flag => plain("flag"),
            A::Origins => plain("origins"),
            A::Proxy => plain("proxy"),
            // Bounds are far inside f64's exact integers.
            A::Integer { min, max } => Self {
                min: Some(min as f64),
                max: Some(max as f64),
                ..plain("integer")
            },
            A::Seconds { min, max } => Self {
                min: Some(min),
                max: Some(max),
                ..plain("seconds")
            },
            A::OneOf(words) => Self {
                choices: Some(words),
                ..plain("one_of")
            },
            A::ListOf(words) => Self {
                choices: Some(words),
                ..plain("list_of")
            },
        }
    }
}

/// Every setting with its current value and where it comes from.
pub fn view(base: &Config, overrides: &Overrides) -> Vec<SettingView> {
    config::SETTINGS
        .iter()
        .map(|s| {
            let (value, source) = match overrides.values.get(s.name) {
                Some(v) => (Some(v.as_str()), "override"),
                None => (base.raw_value(s.name).or(s.default), base.source_of(s.name)),
            };
            let value = value.map(|v| shown(s, v));
            SettingView {
                name: s.name,
                value,
                source,
                default: s.default,
                accepts: s.accepts.to_string(),
                input: s.accepts.into(),
                secret: s.is_secret(),
                about: s.about,
            }
        })
        .collect()
}

/// How `raw`, a value of `setting`, is shown to an operator: secrets masked.
fn shown(setting: &config::Setting, raw: &str) -> String {
    if setting.accepts == config::Accepts::Proxy {
        crate::proxy_url::normalize(raw)
            .ok()
            .flatten()
            .map_or_else(|| "***".to_owned(), |u| crate::proxy_url::mask(&u))
    } else if setting.is_secret() {
        crate::secret::Secret::new(raw).masked()
    } else {
        raw.to_owned()
    }
}

/// True when `posted` is how the secret setting `name`, now `current`, is shown: a console
/// posting back what it was shown means "unchanged", never "set it to the mask".
pub(crate) fn is_shown_secret(name: &str, posted: &str, current: Option<&str>) -> bool {
    match (config::setting_named(name), current) {
        (Some(s), Some(c)) if s.is_secret() => posted.trim() == shown(s, c),
        _ => false,
    }
}

/// The current configuration of one process or isolate, refreshed from the store.
pub struct SettingsCache {
    base: Config,
    state: Mutex<CacheState>,
}

struct CacheState {
    current: Arc<Config>,
    checked_at_ms: Option<u64>,
}

impl std::fmt::Debug for SettingsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsCache")
            .field("version", &self.current().version)
            .finish_non_exhaustive()
    }
}

impl SettingsCache {
    /// A cache over `base`, the configuration from the host's environment.
    pub fn new(base: Config) -> Self {
        Self {
            state: Mutex::new(CacheState {
                current: Arc::new(base.clone()),
                checked_at_ms: None,
            }),
            base,
        }
    }

    /// The environment's configuration, without overrides.
    pub fn base(&self) -> &Config {
        &self.base
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Config> {
        match self.state.lock() {
            Ok(s) => s.current.clone(),
            Err(poisoned) => poisoned.into_inner().current.clone(),
        }
    }

    /// Asks `store` for the overrides when the last look is [`REFRESH_EVERY`] old, and
    /// returns the current snapshot. A store failure keeps the snapshot (and is retried at the
    /// next interval): a settings outage must not stop requests.
    pub async fn refresh(&self, store: &dyn Storage, now_ms: u64) -> Arc<Config> {
        {
            let Ok(mut s) = self.state.lock() else {
                return self.current();
            };
            let due = s
                .checked_at_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= REFRESH_EVERY.as_millis() as u64);
            if !due {
                return s.current.clone();
            }
            // Marked before the read, so concurrent requests do not all ask.
            s.checked_at_ms = Some(now_ms);
        }
        if let Ok(overrides) = load(store).await {
            self.apply(&overrides);
        }
        self.current()
    }

    /// Makes `overrides` current when newer than the snapshot. Values that no longer validate
    /// (a record written by another version) leave the snapshot as it is.
    fn apply(&self, overrides: &Overrides) {
        if overrides.version <= self.current().version {
            return;
        }
        let pairs = overrides
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        if let Ok(config) = self.base.with_overrides(overrides.version, pairs) {
            if let Ok(mut s) = self.state.lock() {
                if config.version > s.current.version {
                    s.current = Arc::new(config);
                }
            }
        }
    }

    /// Changes settings: each `Some` value overrides its setting, each `None` removes the
    /// override (back to the environment or default). Validates everything first, then writes
    /// a new version and makes it current here at once.
    ///
    /// With `expected_version`, refuses when the stored version differs (another operator
    /// changed something meanwhile).
    ///
    /// # Errors
    /// [`SettingsError`]: invalid values (nothing written), a version conflict, or storage.
    pub async fn update(
        &self,
        store: &dyn Storage,
        changes: &BTreeMap<String, Option<String>>,
        expected_version: Option<u64>,
        now_ms: u64,
    ) -> Result<Overrides, SettingsError> {
        let previous = store.get(SETTINGS_KEY).await?;
        let mut overrides = parse(previous.as_deref())?;
        if expected_version.is_some_and(|v| v != overrides.version) {
            return Err(SettingsError::Conflict {
                current: overrides.version,
            });
        }
        for (name, value) in changes {
            let current = overrides
                .values
                .get(name)
                .map(String::as_str)
                .or_else(|| self.base.raw_value(name));
            match value.as_deref().map(str::trim) {
                Some(v) if is_shown_secret(name, v, current) => {}
                Some(v) if !v.is_empty() => {
                    config::check(name, v).map_err(|p| ConfigError { problems: vec![p] })?;
                    overrides.values.insert(name.clone(), v.to_owned());
                }
                _ if config::setting_named(name).is_none() => {
                    let problems = vec![config::Problem::unknown(name)];
                    return Err(ConfigError { problems }.into());
                }
                _ => {
                    overrides.values.remove(name);
                }
            }
        }
        overrides.version += 1;
        overrides.changed_at_ms = now_ms;
        // Validates the whole set against this environment before anything is written.
        let pairs = overrides
            .values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()));
        self.base.with_overrides(overrides.version, pairs)?;
        let bytes = serde_json::to_vec(&overrides)
            .map_err(|e| StorageError(format!("settings record: {e}")))?;
        if store.capabilities().conditional_writes {
            // Two operators saving at once: the second finds the record changed and is told,
            // rather than silently undoing the first one's change.
            let expect = previous.map_or(Expect::Absent, Expect::Value);
            if !store
                .put_if(SETTINGS_KEY, Bytes::from(bytes), None, expect)
                .await?
            {
                let current = load(store).await?.version;
                return Err(SettingsError::Conflict { current });
            }
        } else {
            store.put(SETTINGS_KEY, Bytes::from(bytes), None).await?;
        }
        self.apply(&overrides);
        Ok(overrides)
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;
    use crate::memory::MemoryStorage;
    use crate::seams::Clock;

    struct Fixed;
    impl Clock for Fixed {
        fn now_ms(&self) -> u64 {
            1_000
        }
        fn sleep(&self, _: Duration) -> crate::seams::BoxFuture<'static, ()> {
            crate::seams::boxed(async {})
        }
    }

    fn changes(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned)))
            .collect()
    }

    #[test]
    fn a_change_reaches_another_cache_within_the_refresh_interval() {
        let store = MemoryStorage::new(Arc::new(Fixed));
        let here = SettingsCache::new(Config::default());
        let there = SettingsCache::new(Config::default());
        assert_eq!(block_on(there.refresh(&store, 0)).max_retries, 3);
        let o = block_on(here.update(
            &store,
            &changes(&[("FLOW_MAX_RETRIES", Some("7"))]),
            None,
            5,
        ))
        .unwrap();
        assert_eq!(o.version, 1);
        assert_eq!(here.current().max_retries, 7);
        // Not yet due: the other cache keeps its snapshot...
        assert_eq!(block_on(there.refresh(&store, 999)).max_retries, 3);
        // ...and takes the change once a second has passed.
        let c = block_on(there.refresh(&store, 1_000));
        assert_eq!((c.version, c.max_retries), (1, 7));
        // Removing the override goes back to the environment.
        block_on(here.update(&store, &changes(&[("FLOW_MAX_RETRIES", None)]), Some(1), 6)).unwrap();
        assert_eq!(block_on(there.refresh(&store, 2_000)).max_retries, 3);
    }

    #[test]
    fn invalid_values_and_stale_versions_change_nothing() {
        let store = MemoryStorage::new(Arc::new(Fixed));
        let cache = SettingsCache::new(Config::default());
        let e = block_on(cache.update(
            &store,
            &changes(&[("FLOW_MAX_RETRIES", Some("0"))]),
            None,
            1,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("FLOW_MAX_RETRIES"), "{e}");
        assert!(block_on(cache.update(&store, &changes(&[("NOPE", Some("1"))]), None, 1)).is_err());
        assert_eq!(block_on(load(&store)).unwrap().version, 0);
        block_on(cache.update(&store, &changes(&[("MAX_IMAGES", Some("4"))]), None, 1)).unwrap();
        let e = block_on(cache.update(&store, &changes(&[("MAX_IMAGES", Some("5"))]), Some(0), 1))
            .unwrap_err();
        assert!(matches!(e, SettingsError::Conflict { current: 1 }), "{e}");
    }

    #[test]
    fn secrets_are_masked_in_the_view() {
        let base = Config::from_lookup(|k| (k == "API_KEY").then(|| "sk-0123456789abcdef".into()))
            .unwrap();
        let v = view(&base, &Overrides::default());
        let key = v.iter().find(|s| s.name == "API_KEY").unwrap();
        assert_eq!(key.value.as_deref(), Some("sk-012…cdef"));
        assert_eq!(key.source, "environment");
        let retries = v.iter().find(|s| s.name == "FLOW_MAX_RETRIES").unwrap();
        assert_eq!(
            (retries.value.as_deref(), retries.source),
            (Some("3"), "default")
        );
    }

    #[test]
    fn a_secret_posted_back_masked_is_left_unchanged() {
        let store = MemoryStorage::new(Arc::new(Fixed));
        let cache = SettingsCache::new(Config::default());
        let set = |pairs: &[(&str, Option<&str>)]| {
            block_on(cache.update(&store, &changes(pairs), None, 1)).unwrap()
        };
        set(&[
            ("CAPSOLVER_API_KEY", Some("CAP-0123456789abcdef")),
            ("PROXY_URL", Some("http://user:pw@10.0.0.1:8080")),
        ]);
        let shown = |o: &Overrides, name: &str| {
            view(cache.base(), o)
                .into_iter()
                .find(|s| s.name == name)
                .and_then(|s| s.value)
                .unwrap()
        };
        let o = block_on(load(&store)).unwrap();
        let (key, proxy) = (shown(&o, "CAPSOLVER_API_KEY"), shown(&o, "PROXY_URL"));
        assert_ne!(key, "CAP-0123456789abcdef");
        // The console sends every field back as shown, with one real change.
        let o = set(&[
            ("CAPSOLVER_API_KEY", Some(&key)),
            ("PROXY_URL", Some(&proxy)),
            ("FLOW_MAX_RETRIES", Some("5")),
        ]);
        assert_eq!(o.values["CAPSOLVER_API_KEY"], "CAP-0123456789abcdef");
        assert_eq!(o.values["PROXY_URL"], "http://user:pw@10.0.0.1:8080");
        assert_eq!(cache.current().max_retries, 5);
        // A new value still replaces it.
        let o = set(&[("CAPSOLVER_API_KEY", Some("CAP-new"))]);
        assert_eq!(o.values["CAPSOLVER_API_KEY"], "CAP-new");
    }
}
