//! The `extension` method (dossier §10.5): a browser running the original Flow2API's captcha
//! extension keeps a WebSocket open on `/captcha_ws`; a solve sends it `get_token` and waits
//! for the reply that carries the same `req_id`, from the same connection.
//!
//! The pieces, so that both hosts share every rule and only move bytes:
//! - [`FromExtension`] / [`ToExtension`]: the protocol's messages, parsed tolerantly.
//! - [`Switchboard`]: the connected browsers, their route keys and the solves in flight; a host
//!   feeds it each socket's text ([`Switchboard::on_text`]) and it sends through
//!   [`BrowserSocket`]. The native server holds one; at the edge a Durable Object does.
//! - [`BrowserHub`]: "ask a browser for a token", which the [`ExtensionSolver`] uses. The
//!   switchboard is one; the edge's is a fetch to the object that holds the sockets.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::channel::oneshot;
use serde::{Deserialize, Serialize};

use crate::seams::{
    boxed, BoxFuture, CaptchaAction, CaptchaError, CaptchaErrorKind, CaptchaRequest,
    CaptchaSolution, CaptchaSolver, Clock, MaybeSend, MaybeSync,
};
use crate::secret::Secret;
use crate::transport::FALLBACK_USER_AGENT;

/// The method's name in `CAPTCHA_METHOD`.
pub const EXTENSION_METHOD: &str = "extension";

/// How long an image solve waits for the browser (the original's 25 s).
pub const IMAGE_TIMEOUT: Duration = Duration::from_secs(25);
/// How long a video solve waits for the browser (the original's 45 s).
pub const VIDEO_TIMEOUT: Duration = Duration::from_secs(45);

/// The longest route key or client label kept; longer ones are cut (they are only labels).
const MAX_LABEL: usize = 128;

/// The WebSocket close code for a refused key (policy violation), as the original sends.
pub const CLOSE_POLICY: u16 = 1008;

// ---------------------------------------------------------------------------------------------
// Protocol
// ---------------------------------------------------------------------------------------------

/// Every field any message from the extension may carry; a field of the wrong type, or
/// anything that is not a JSON object, makes the message [`FromExtension::Other`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Incoming {
    #[serde(rename = "type")]
    kind: Option<String>,
    route_key: Option<String>,
    client_label: Option<String>,
    req_id: Option<String>,
    status: Option<String>,
    token: Option<String>,
    error: Option<String>,
}

/// A message from the extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromExtension {
    /// `{"type":"register","route_key","client_label"}`: the connection's route key and label
    /// (a field left out keeps what the connection had from its URL).
    Register {
        /// The route key, if given.
        route_key: Option<String>,
        /// The client label, if given.
        client_label: Option<String>,
    },
    /// `{"type":"ping"}`, every 20 s; not answered.
    Ping,
    /// A reply to `get_token`: `status: "success"` with `token`, else `error`.
    Reply {
        /// The request it answers.
        req_id: String,
        /// The token, or the extension's reason.
        outcome: Result<String, String>,
    },
    /// Anything else; ignored.
    Other,
}

impl FromExtension {
    /// Parses one text frame; never fails (unknown shapes are [`FromExtension::Other`]).
    pub fn parse(text: &str) -> Self {
        let Ok(m) = serde_json::from_str::<Incoming>(text) else {
            return Self::Other;
        };
        match m.kind.as_deref() {
            Some("register") => Self::Register {
                route_key: m.route_key.map(|k| clip(&k)),
                client_label: m.client_label.map(|l| clip(&l)),
            },
            Some("ping") => Self::Ping,
            _ => match m.req_id {
                Some(req_id) => {
                    let outcome = match (m.status.as_deref(), m.token) {
                        (Some("success"), Some(token)) if !token.is_empty() => Ok(token),
                        _ => Err(m
                            .error
                            .unwrap_or_else(|| "the extension returned no token".to_owned())),
                    };
                    Self::Reply { req_id, outcome }
                }
                None => Self::Other,
            },
        }
    }
}

/// A message to the extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToExtension {
    /// Asks for one token.
    GetToken {
        /// `req_<32 hex>`; the reply carries it back.
        req_id: String,
        /// The reCAPTCHA action (`IMAGE_GENERATION`…).
        action: String,
        /// The Flow project the token is for.
        project_id: String,
        /// The route key the connection was picked for.
        route_key: String,
    },
    /// Answers `register` with what the connection is now known by.
    RegisterAck {
        /// The connection's route key.
        route_key: String,
        /// The connection's label.
        client_label: String,
    },
}

impl ToExtension {
    /// The message as the JSON text frame sent.
    pub fn to_text(&self) -> String {
        // A derived Serialize of strings only cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn clip(s: &str) -> String {
    s.trim().chars().take(MAX_LABEL).collect()
}

/// The route key and client label a `/captcha_ws` URL's query names (empty when absent).
pub fn route_of_query(query: Option<&str>) -> (String, String) {
    let (mut route, mut label) = (String::new(), String::new());
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "route_key" => route = clip(&v),
            "client_label" => label = clip(&v),
            _ => {}
        }
    }
    (route, label)
}

/// The API key a `/captcha_ws` upgrade carries: `Authorization: Bearer`, `x-goog-api-key`, or
/// the `key` / `api_key` query parameter (§10.5).
pub fn given_key(headers: &http::HeaderMap, query: Option<&str>) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(k) = header("authorization").and_then(|a| {
        a.strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("bearer "))
    }) {
        return Some(k.trim().to_owned());
    }
    if let Some(k) = header("x-goog-api-key") {
        return Some(k.trim().to_owned());
    }
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "key" || k == "api_key")
        .map(|(_, v)| v.into_owned())
}

// ---------------------------------------------------------------------------------------------
// The hub
// ---------------------------------------------------------------------------------------------

/// One solve asked of a browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenAsk {
    /// The account's `extension_route_key` (empty: only connections with an empty key serve).
    pub route_key: String,
    /// The reCAPTCHA action.
    pub action: String,
    /// The Flow project.
    pub project_id: String,
    /// How long to wait for the reply, in milliseconds.
    pub timeout_ms: u64,
}

/// What [`BrowserHub::ask`] answered, as one JSON value, for a host that carries the answer
/// between processes (the edge's Durable Object).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AskReply {
    /// The token, on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The [`CaptchaErrorKind`] name, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The failure's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl AskReply {
    /// `result` as a reply.
    pub fn from_result(result: Result<String, CaptchaError>) -> Self {
        match result {
            Ok(token) => Self {
                token: Some(token),
                ..Self::default()
            },
            Err(e) => Self {
                kind: Some(e.kind.as_str().to_owned()),
                error: Some(e.message),
                ..Self::default()
            },
        }
    }

    /// The result it carries.
    ///
    /// # Errors
    /// The failure it carries (a reply with neither is a provider error).
    pub fn into_result(self) -> Result<String, CaptchaError> {
        if let Some(token) = self.token {
            return Ok(token);
        }
        let kind = match self.kind.as_deref() {
            Some("not_configured") => CaptchaErrorKind::NotConfigured,
            Some("no_capacity") => CaptchaErrorKind::NoCapacity,
            Some("no_token") => CaptchaErrorKind::NoToken,
            _ => CaptchaErrorKind::Provider,
        };
        Err(CaptchaError::new(
            kind,
            self.error
                .unwrap_or_else(|| "the browser hub gave no answer".to_owned()),
        ))
    }
}

/// The failure of a solve for `route_key` when no connected browser serves it, naming the
/// `connected` routes (§10.5); the chain moves on to its next method.
pub fn no_browser_for<'a>(
    route_key: &str,
    connected: impl IntoIterator<Item = &'a str>,
) -> CaptchaError {
    let mut routes: Vec<String> = connected.into_iter().map(|r| format!("{r:?}")).collect();
    routes.sort();
    routes.dedup();
    let message = if routes.is_empty() {
        "no captcha extension is connected".to_owned()
    } else {
        format!(
            "no captcha extension is connected for route key {route_key:?}; available routes: {}",
            routes.join(", ")
        )
    };
    CaptchaError::new(CaptchaErrorKind::NoCapacity, message)
}

/// Asks a connected browser for a token.
pub trait BrowserHub: MaybeSend + MaybeSync {
    /// Sends `ask` to a browser its route key allows and waits for that browser's reply.
    fn ask<'a>(&'a self, ask: &'a TokenAsk) -> BoxFuture<'a, Result<String, CaptchaError>>;
}

/// Sends text frames down one connection.
pub trait BrowserSocket: MaybeSend + MaybeSync {
    /// Sends one text frame; false when the connection is gone.
    fn send_text(&self, text: &str) -> bool;
}

/// What a `register` changed, for the host to answer and (at the edge) to remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The connection's route key now.
    pub route_key: String,
    /// The connection's label now.
    pub client_label: String,
    /// The `register_ack` frame to send back (the switchboard sends it too).
    pub ack: String,
}

struct Conn {
    route_key: String,
    label: String,
    socket: Arc<dyn BrowserSocket>,
}

struct Pending {
    conn: String,
    reply: oneshot::Sender<Result<String, String>>,
}

#[derive(Default)]
struct Board {
    conns: BTreeMap<String, Conn>,
    pending: HashMap<String, Pending>,
}

/// The connected browsers and the solves in flight (§10.5's routing), in memory.
pub struct Switchboard {
    clock: Arc<dyn Clock>,
    board: Mutex<Board>,
}

impl std::fmt::Debug for Switchboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switchboard")
            .field("routes", &self.routes())
            .finish_non_exhaustive()
    }
}

impl Switchboard {
    /// An empty switchboard timing its waits on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            board: Mutex::new(Board::default()),
        }
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        // A panic elsewhere leaves the maps consistent (every change is one insert/remove).
        self.board
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds connection `id` (unique per host) with the route key and label of its URL.
    pub fn attach(
        &self,
        id: &str,
        route_key: &str,
        client_label: &str,
        socket: Arc<dyn BrowserSocket>,
    ) {
        self.board().conns.insert(
            id.to_owned(),
            Conn {
                route_key: clip(route_key),
                label: clip(client_label),
                socket,
            },
        );
    }

    /// Whether connection `id` is attached.
    pub fn has(&self, id: &str) -> bool {
        self.board().conns.contains_key(id)
    }

    /// Removes connection `id`; the solves waiting on it fail at once rather than time out.
    pub fn detach(&self, id: &str) {
        let mut board = self.board();
        board.conns.remove(id);
        // Dropping a sender ends its wait.
        board.pending.retain(|_, p| p.conn != id);
    }

    /// The route keys of the connected browsers, sorted, each once.
    pub fn routes(&self) -> Vec<String> {
        let mut routes: Vec<String> = self
            .board()
            .conns
            .values()
            .map(|c| c.route_key.clone())
            .collect();
        routes.sort();
        routes.dedup();
        routes
    }

    /// Handles one text frame from connection `id`: a `register` renames the connection and
    /// is acknowledged (returned, and sent); a reply ends the solve that asked this very
    /// connection (a reply from another connection is ignored); the rest is ignored.
    pub fn on_text(&self, id: &str, text: &str) -> Option<Registered> {
        match FromExtension::parse(text) {
            FromExtension::Register {
                route_key,
                client_label,
            } => {
                let mut board = self.board();
                let conn = board.conns.get_mut(id)?;
                if let Some(k) = route_key {
                    conn.route_key = k;
                }
                if let Some(l) = client_label {
                    conn.label = l;
                }
                let ack = ToExtension::RegisterAck {
                    route_key: conn.route_key.clone(),
                    client_label: conn.label.clone(),
                }
                .to_text();
                conn.socket.send_text(&ack);
                Some(Registered {
                    route_key: conn.route_key.clone(),
                    client_label: conn.label.clone(),
                    ack,
                })
            }
            FromExtension::Reply { req_id, outcome } => {
                let mut board = self.board();
                if board.pending.get(&req_id).is_some_and(|p| p.conn == id) {
                    if let Some(p) = board.pending.remove(&req_id) {
                        let _ = p.reply.send(outcome);
                    }
                }
                None
            }
            FromExtension::Ping | FromExtension::Other => None,
        }
    }

    /// Whether a connected browser serves `route_key` (equal keys only).
    pub fn serves(&self, route_key: &str) -> bool {
        self.board()
            .conns
            .values()
            .any(|c| c.route_key == route_key)
    }

    /// Picks the connection for `route_key` (§10.5: equal keys only; the least busy), or why
    /// none serves.
    fn pick(
        board: &Board,
        route_key: &str,
    ) -> Result<(String, Arc<dyn BrowserSocket>), CaptchaError> {
        let busy = |id: &str| board.pending.values().filter(|p| p.conn == id).count();
        board
            .conns
            .iter()
            .filter(|(_, c)| c.route_key == route_key)
            .min_by_key(|(id, _)| busy(id))
            .map(|(id, c)| (id.clone(), c.socket.clone()))
            .ok_or_else(|| {
                let routes: Vec<&str> = board.conns.values().map(|c| &*c.route_key).collect();
                no_browser_for(route_key, routes)
            })
    }

    async fn ask_inner(&self, ask: &TokenAsk) -> Result<String, CaptchaError> {
        let req_id = format!("req_{}", crate::util::random_hex(16));
        let (tx, rx) = oneshot::channel();
        let socket = {
            let mut board = self.board();
            let (conn, socket) = Self::pick(&board, &ask.route_key)?;
            board
                .pending
                .insert(req_id.clone(), Pending { conn, reply: tx });
            socket
        };
        let frame = ToExtension::GetToken {
            req_id: req_id.clone(),
            action: ask.action.clone(),
            project_id: ask.project_id.clone(),
            route_key: ask.route_key.clone(),
        }
        .to_text();
        if !socket.send_text(&frame) {
            self.board().pending.remove(&req_id);
            return Err(CaptchaError::new(
                CaptchaErrorKind::NoCapacity,
                "the captcha extension's connection is closed",
            ));
        }
        let timeout = Duration::from_millis(ask.timeout_ms);
        let out = futures::future::select(rx, self.clock.sleep(timeout)).await;
        match out {
            futures::future::Either::Left((Ok(Ok(token)), _)) => Ok(token),
            futures::future::Either::Left((Ok(Err(why)), _)) => Err(CaptchaError::new(
                CaptchaErrorKind::Provider,
                format!("the captcha extension failed: {}", clip(&why)),
            )),
            futures::future::Either::Left((Err(_), _)) => Err(CaptchaError::new(
                CaptchaErrorKind::NoToken,
                "the captcha extension disconnected before answering",
            )),
            futures::future::Either::Right(_) => {
                self.board().pending.remove(&req_id);
                Err(CaptchaError::new(
                    CaptchaErrorKind::NoToken,
                    format!(
                        "the captcha extension did not answer within {} s",
                        timeout.as_secs()
                    ),
                ))
            }
        }
    }
}

impl BrowserHub for Switchboard {
    fn ask<'a>(&'a self, ask: &'a TokenAsk) -> BoxFuture<'a, Result<String, CaptchaError>> {
        boxed(self.ask_inner(ask))
    }
}

// ---------------------------------------------------------------------------------------------
// The solver
// ---------------------------------------------------------------------------------------------

/// The `extension` captcha method: asks a browser through a [`BrowserHub`]. The token comes
/// from a real browser with no fingerprint reported, so the submit uses the fallback UA.
pub struct ExtensionSolver {
    hub: Arc<dyn BrowserHub>,
}

impl std::fmt::Debug for ExtensionSolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionSolver").finish_non_exhaustive()
    }
}

impl ExtensionSolver {
    /// A solver over `hub`.
    pub fn new(hub: Arc<dyn BrowserHub>) -> Self {
        Self { hub }
    }

    /// The ask for `request`: its route key, its action's timeout, and its project (the one
    /// its page URL names when the request carries none).
    pub fn ask_for(request: &CaptchaRequest) -> TokenAsk {
        let timeout = match request.action {
            CaptchaAction::ImageGeneration => IMAGE_TIMEOUT,
            CaptchaAction::VideoGeneration => VIDEO_TIMEOUT,
        };
        let from_page = request
            .page_url
            .rsplit_once("/project/")
            .map(|(_, id)| id.split(['/', '?', '#']).next().unwrap_or(""))
            .unwrap_or("");
        let project_id = if request.project_id.is_empty() {
            from_page.to_owned()
        } else {
            request.project_id.clone()
        };
        TokenAsk {
            route_key: request.route_key.clone().unwrap_or_default(),
            action: request.action_name().to_owned(),
            project_id,
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    async fn solve_inner(&self, request: &CaptchaRequest) -> Result<CaptchaSolution, CaptchaError> {
        let token = self.hub.ask(&Self::ask_for(request)).await?;
        Ok(CaptchaSolution {
            token: Secret::new(token),
            user_agent: FALLBACK_USER_AGENT.to_owned(),
            method: EXTENSION_METHOD.to_owned(),
            identity: Default::default(),
            proxy_url: None,
            session_id: None,
        })
    }
}

impl CaptchaSolver for ExtensionSolver {
    fn solve<'a>(
        &'a self,
        request: &'a CaptchaRequest,
    ) -> BoxFuture<'a, Result<CaptchaSolution, CaptchaError>> {
        boxed(self.solve_inner(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_parse_tolerantly() {
        assert_eq!(
            FromExtension::parse(r#"{"type":"register","route_key":"a","client_label":"x"}"#),
            FromExtension::Register {
                route_key: Some("a".into()),
                client_label: Some("x".into())
            }
        );
        assert_eq!(
            FromExtension::parse(r#"{"type":"ping","extra":1}"#),
            FromExtension::Ping
        );
        assert_eq!(
            FromExtension::parse(r#"{"req_id":"r","status":"success","token":"t"}"#),
            FromExtension::Reply {
                req_id: "r".into(),
                outcome: Ok("t".into())
            }
        );
        assert_eq!(
            FromExtension::parse(r#"{"req_id":"r","status":"error","error":"no tab"}"#),
            FromExtension::Reply {
                req_id: "r".into(),
                outcome: Err("no tab".into())
            }
        );
        assert_eq!(FromExtension::parse("not json"), FromExtension::Other);
        assert_eq!(FromExtension::parse(r#"{"type":5}"#), FromExtension::Other);
    }

    #[test]
    fn get_token_has_the_originals_shape() {
        let m = ToExtension::GetToken {
            req_id: "req_1".into(),
            action: "IMAGE_GENERATION".into(),
            project_id: "p".into(),
            route_key: "a".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&m.to_text()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"get_token","req_id":"req_1","action":"IMAGE_GENERATION",
                "project_id":"p","route_key":"a"})
        );
    }

    #[test]
    fn the_key_comes_from_headers_or_query() {
        let mut h = http::HeaderMap::new();
        assert_eq!(given_key(&h, Some("api_key=k1")), Some("k1".into()));
        assert_eq!(given_key(&h, Some("key=k2&route_key=a")), Some("k2".into()));
        h.insert("x-goog-api-key", "k3".parse().unwrap());
        assert_eq!(given_key(&h, Some("key=k2")), Some("k3".into()));
        h.insert("authorization", "Bearer k4".parse().unwrap());
        assert_eq!(given_key(&h, None), Some("k4".into()));
        assert_eq!(
            route_of_query(Some("key=x&route_key=a&client_label=b")),
            ("a".into(), "b".into())
        );
    }

    #[test]
    fn the_project_comes_from_the_page_url() {
        let request = CaptchaRequest {
            site_key: "s".into(),
            page_url: "https://labs.google/fx/tools/flow/project/p1".into(),
            action: CaptchaAction::VideoGeneration,
            page_action: None,
            project_id: String::new(),
            account_id: None,
            route_key: Some("a".into()),
            egress: None,
        };
        let ask = ExtensionSolver::ask_for(&request);
        assert_eq!(ask.project_id, "p1");
        assert_eq!(ask.route_key, "a");
        assert_eq!(ask.timeout_ms, 45_000);
        assert_eq!(ask.action, "VIDEO_GENERATION");
    }
}
