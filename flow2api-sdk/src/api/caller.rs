//! Who a request comes from: the root key (`API_KEY`) or a tenant's key. [`App::check_head`]
//! resolves it from the request's head and leaves it in the request's extensions, where the
//! routes read it.
//!
//! [`App::check_head`]: super::App::check_head

use std::sync::Arc;

use http::{header, HeaderMap, Uri};

use crate::tenants::Tenant;

/// The API key a request was let in with. Only [`App::check_head`](super::App::check_head)
/// makes one (a host cannot forge a caller by inserting its own).
///
/// A generation request's caller also carries the request's log draft (the private
/// `recording` module), so that the handlers, which all receive the caller, can note what the
/// log row should say.
#[derive(Debug, Clone)]
pub struct Caller(Kind, Option<super::recording::LogDraft>);

#[derive(Debug, Clone)]
enum Kind {
    Root,
    Tenant(Arc<Tenant>),
}

impl Caller {
    pub(crate) fn root() -> Self {
        Self(Kind::Root, None)
    }

    pub(crate) fn tenant_of(t: Tenant) -> Self {
        Self(Kind::Tenant(Arc::new(t)), None)
    }

    /// The name logs give the key: the tenant key's id, `root` for the root key. Never the
    /// key itself.
    pub(crate) fn log_key(&self) -> String {
        self.tenant()
            .map_or_else(|| "root".to_owned(), |t| t.id.clone())
    }

    /// Gives the caller its request's log draft.
    pub(crate) fn attach_log(&mut self, draft: super::recording::LogDraft) {
        self.1 = Some(draft);
    }

    /// The request's log draft, for a generation request.
    pub(crate) fn log(&self) -> Option<&super::recording::LogDraft> {
        self.1.as_ref()
    }

    /// The root key (`API_KEY`): no quotas, every model, every job.
    pub fn is_root(&self) -> bool {
        matches!(self.0, Kind::Root)
    }

    /// The tenant whose key it was; `None` for the root key.
    pub fn tenant(&self) -> Option<&Tenant> {
        match &self.0 {
            Kind::Root => None,
            Kind::Tenant(t) => Some(t),
        }
    }

    /// The owner of what the caller creates (jobs, idempotency keys): its tenant id, `None`
    /// for the root key.
    pub(crate) fn owner(&self) -> Option<&str> {
        self.tenant().map(|t| t.id.as_str())
    }

    /// Whether the caller may see something owned by `owner`: the root key sees everything,
    /// a tenant only its own.
    pub(crate) fn may_see(&self, owner: Option<&str>) -> bool {
        self.is_root() || self.owner() == owner
    }
}

/// The key a request carries: `Authorization: Bearer` (alone when present), `x-goog-api-key`,
/// else `?key=`.
pub(crate) fn given_key(h: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(auth) = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        auth.strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .map(str::trim)
            .map(str::to_owned)
    } else if let Some(k) = h.get("x-goog-api-key").and_then(|v| v.to_str().ok()) {
        Some(k.trim().to_owned())
    } else {
        uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "key")
                .map(|(_, v)| v.into_owned())
        })
    }
}
