//! The `extension` captcha method at the edge (§10.5): the browsers' `/captcha_ws` sockets
//! end in one `CaptchaHubObject` per route key (the key of the socket's URL), accepted with the
//! WebSocket Hibernation API, and every isolate's solve is one fetch to the object of the
//! account's route key ([`DoBrowserHub`]).
//!
//! A socket's `register` may rename its route key after it landed in the object of its URL's
//! key, and a solve for a key nobody serves must list every connected route. So each hub
//! object tells one more object of the same class, the directory, which keys it serves
//! (whenever that changes); a hub asked for a key it does not serve looks there, hands the
//! solve to the hub that does, or answers with every connected route.
//!
//! A hub may hibernate between messages: each socket's attachment (connection id, route key,
//! label, the hub's own name) survives, and the switchboard is rebuilt from the accepted
//! sockets on every event. A solve in flight keeps the object awake (its fetch is pending), so
//! the waits of the switchboard stay in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use flow2api_sdk::captcha::{
    no_browser_for, route_of_query, AskReply, BrowserHub, BrowserSocket, Switchboard, TokenAsk,
    CLOSE_POLICY,
};
use flow2api_sdk::seams::{boxed, BoxFuture, CaptchaError, CaptchaErrorKind};
use serde::{Deserialize, Serialize};
// `#[durable_object]` expands to code that names `wasm_bindgen` unqualified.
use worker::wasm_bindgen;
use worker::{
    durable_object, web_sys, DurableObject, Env, ListOptions, ObjectNamespace, Request, Response,
    Result, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

use crate::clock::WorkerClock;
use crate::do_client::{call, Object};
use crate::fetch_http::Subrequests;

/// The binding of the hubs' namespace.
pub const BINDING: &str = "CAPTCHA_HUB";
/// The directory's instance name (no route key's hub is named so: theirs start `route:`).
const DIRECTORY: &str = "directory";
/// The made-up URLs of a solve, and of the directory's two commands.
const ASK_URL: &str = "https://captcha-hub/ask";
const SET_URL: &str = "https://captcha-hub/directory/set";
const GET_URL: &str = "https://captcha-hub/directory/get";
/// The directory's storage keys: one per hub, holding the route keys it serves.
const HUB_PREFIX: &str = "hub:";

/// The hub object of route key `route_key`.
fn hub_name(route_key: &str) -> String {
    format!("route:{route_key}")
}

fn object(hubs: &ObjectNamespace, name: &str) -> Result<Object> {
    Ok(hubs.id_from_name(name)?.get_stub()?.into())
}

/// A solve sent to the hub named `hub`; `forwarded` when another hub handed it on (which is
/// then answered here or not at all, so a stale directory cannot send it round in circles).
#[derive(Debug, Serialize, Deserialize)]
struct HubAsk {
    hub: String,
    forwarded: bool,
    ask: TokenAsk,
}

/// The route keys hub `hub` serves now (none: it holds no socket).
#[derive(Debug, Serialize, Deserialize)]
struct HubRoutes {
    hub: String,
    routes: Vec<String>,
}

/// Every hub's route keys, as the directory knows them.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Directory {
    hubs: BTreeMap<String, Vec<String>>,
}

/// What a socket remembers across hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Attachment {
    id: String,
    route_key: String,
    client_label: String,
    /// The name of the hub holding it (its URL's route key's).
    #[serde(default)]
    hub: String,
}

/// A fresh connection id: 16 random bytes in hex (ids only need to differ).
fn connection_id() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A hibernatable socket as the switchboard's outlet.
struct HubSocket(WebSocket);

impl BrowserSocket for HubSocket {
    fn send_text(&self, text: &str) -> bool {
        self.0.send_with_str(text).is_ok()
    }
}

/// The Durable Object class bound as `CAPTCHA_HUB`: the hub of one route key, or the
/// directory (the instance named [`DIRECTORY`]).
#[durable_object]
pub struct CaptchaHubObject {
    state: State,
    env: Env,
    board: Switchboard,
}

impl std::fmt::Debug for CaptchaHubObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptchaHubObject").finish_non_exhaustive()
    }
}

impl CaptchaHubObject {
    /// Attaches every accepted socket the switchboard does not know yet (all of them after a
    /// wake from hibernation).
    fn sync(&self) {
        for ws in self.state.get_websockets() {
            if let Ok(Some(a)) = ws.deserialize_attachment::<Attachment>() {
                if !self.board.has(&a.id) {
                    self.board.attach(
                        &a.id,
                        &a.route_key,
                        &a.client_label,
                        Arc::new(HubSocket(ws)),
                    );
                }
            }
        }
    }

    fn hubs(&self) -> Result<ObjectNamespace> {
        self.env.durable_object(BINDING)
    }

    /// Tells the directory the route keys this hub (`hub`) serves now.
    async fn publish(&self, hub: &str) -> Result<()> {
        let routes = HubRoutes {
            hub: hub.to_owned(),
            routes: self.board.routes(),
        };
        let directory = object(&self.hubs()?, DIRECTORY)?;
        let _: bool = call(&directory, SET_URL, &routes, &Subrequests::default())
            .await
            .map_err(|e| worker::Error::RustError(e.0))?;
        Ok(())
    }

    async fn accept(&self, req: &Request) -> Result<Response> {
        let url = req.url()?;
        let (route_key, client_label) = route_of_query(url.query());
        let pair = WebSocketPair::new()?;
        let a = Attachment {
            id: connection_id(),
            hub: hub_name(&route_key),
            route_key,
            client_label,
        };
        self.state.accept_web_socket(&pair.server);
        pair.server.serialize_attachment(&a)?;
        self.sync();
        // Unlisted, the socket still serves its hub's own key; only renames need the directory.
        let _ = self.publish(&a.hub).await;
        Response::from_websocket(pair.client)
    }

    /// A solve: asked of a browser here when one serves the key; else handed to the hub the
    /// directory names for it, or refused with every connected route.
    async fn ask(&self, ask: HubAsk) -> std::result::Result<String, CaptchaError> {
        self.sync();
        if self.board.serves(&ask.ask.route_key) {
            return self.board.ask(&ask.ask).await;
        }
        let fail = |e: worker::Error| {
            CaptchaError::new(CaptchaErrorKind::Provider, format!("captcha hub: {e}"))
        };
        if ask.forwarded {
            // The directory was wrong about this hub: set it right for the next solve.
            let _ = self.publish(&ask.hub).await;
            return Err(no_browser_for(
                &ask.ask.route_key,
                self.board.routes().iter().map(String::as_str),
            ));
        }
        let hubs = self.hubs().map_err(fail)?;
        let directory: Directory = call(
            &object(&hubs, DIRECTORY).map_err(fail)?,
            GET_URL,
            &(),
            &Subrequests::default(),
        )
        .await
        .map_err(|e| fail(worker::Error::RustError(e.0)))?;
        let serving = directory
            .hubs
            .iter()
            .find(|(hub, routes)| **hub != ask.hub && routes.contains(&ask.ask.route_key));
        match serving {
            Some((hub, _)) => {
                let handed = HubAsk {
                    hub: hub.clone(),
                    forwarded: true,
                    ask: ask.ask,
                };
                let reply: AskReply = call(
                    &object(&hubs, hub).map_err(fail)?,
                    ASK_URL,
                    &handed,
                    &Subrequests::default(),
                )
                .await
                .map_err(|e| fail(worker::Error::RustError(e.0)))?;
                reply.into_result()
            }
            None => Err(no_browser_for(
                &ask.ask.route_key,
                directory.hubs.values().flatten().map(String::as_str),
            )),
        }
    }

    /// The directory's `set`: one hub's route keys (none: forgotten).
    async fn set_routes(&self, routes: HubRoutes) -> Result<bool> {
        let key = format!("{HUB_PREFIX}{}", routes.hub);
        let storage = self.state.storage();
        if routes.routes.is_empty() {
            storage.delete(&key).await?;
        } else {
            let json = serde_json::to_string(&routes.routes)?;
            storage.put(&key, json).await?;
        }
        Ok(true)
    }

    /// The directory's `get`: every hub's route keys.
    async fn directory(&self) -> Result<Directory> {
        let map = self
            .state
            .storage()
            .list_with_options(ListOptions::new().prefix(HUB_PREFIX))
            .await?;
        let mut out = Directory::default();
        map.for_each(&mut |value, key| {
            let (Some(key), Some(json)) = (key.as_string(), value.as_string()) else {
                return;
            };
            let Ok(routes) = serde_json::from_str::<Vec<String>>(&json) else {
                return;
            };
            if let Some(hub) = key.strip_prefix(HUB_PREFIX) {
                out.hubs.insert(hub.to_owned(), routes);
            }
        });
        Ok(out)
    }
}

impl DurableObject for CaptchaHubObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            board: Switchboard::new(Arc::new(WorkerClock)),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
        if upgrade.eq_ignore_ascii_case("websocket") {
            return self.accept(&req).await;
        }
        let path = req.path();
        let text = req.text().await?;
        let bad = |e: serde_json::Error| Response::error(format!("bad command: {e}"), 400);
        match path.as_str() {
            "/directory/set" => match serde_json::from_str(&text) {
                Ok(routes) => Response::from_json(&self.set_routes(routes).await?),
                Err(e) => bad(e),
            },
            "/directory/get" => Response::from_json(&self.directory().await?),
            _ => match serde_json::from_str::<HubAsk>(&text) {
                Ok(ask) => Response::from_json(&AskReply::from_result(self.ask(ask).await)),
                Err(e) => bad(e),
            },
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        self.sync();
        let WebSocketIncomingMessage::String(text) = message else {
            return Ok(());
        };
        let Some(mut a) = ws.deserialize_attachment::<Attachment>()? else {
            return Ok(());
        };
        if let Some(registered) = self.board.on_text(&a.id, &text) {
            let renamed = registered.route_key != a.route_key;
            // Remembered across hibernation; the socket stays in this hub whatever key
            // `register` names, and the directory sends that key's solves here.
            a.route_key = registered.route_key;
            a.client_label = registered.client_label;
            ws.serialize_attachment(&a)?;
            if renamed {
                self.publish(&a.hub).await?;
            }
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        self.sync();
        if let Ok(Some(a)) = ws.deserialize_attachment::<Attachment>() {
            self.board.detach(&a.id);
            let _ = self.publish(&a.hub).await;
        }
        // Completes the closing handshake; the socket may already be closed.
        let code = u16::try_from(code)
            .ok()
            .filter(|c| *c >= 1000 && *c != 1005 && *c != 1006);
        let _ = ws.close(code.or(Some(1000)), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.sync();
        if let Ok(Some(a)) = ws.deserialize_attachment::<Attachment>() {
            self.board.detach(&a.id);
            let _ = self.publish(&a.hub).await;
        }
        Ok(())
    }
}

/// Answers `GET /captcha_ws`: a request that is no WebSocket upgrade gets 400; a key other
/// than the root key gets a socket closed at once with 1008 (as the original does); the root
/// key's is handed to the hub object.
pub async fn upgrade(env: &Env, req: web_sys::Request, allowed: bool) -> Result<Response> {
    let upgrade = req
        .headers()
        .get("upgrade")
        .ok()
        .flatten()
        .unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        // Only upgrades reach the hub object, whose other requests are solves.
        return Response::error(
            r#"{"detail":"/captcha_ws expects a WebSocket upgrade"}"#,
            400,
        );
    }
    if !allowed {
        let pair = WebSocketPair::new()?;
        pair.server.accept()?;
        pair.server
            .close(Some(CLOSE_POLICY), Some("invalid API key"))?;
        return Response::from_websocket(pair.client);
    }
    let url = req.url();
    let query = url.split_once('?').map(|(_, q)| q);
    let (route_key, _) = route_of_query(query);
    let stub = env
        .durable_object(BINDING)?
        .id_from_name(&hub_name(&route_key))?
        .get_stub()?;
    stub.fetch_with_request(Request::from(req)).await
}

/// The SDK's [`BrowserHub`] over the hub objects: one subrequest per solve, to the hub of the
/// account's route key.
#[derive(Debug)]
pub struct DoBrowserHub {
    hubs: ObjectNamespace,
    subrequests: Subrequests,
}

impl DoBrowserHub {
    /// A hub over the `CAPTCHA_HUB` namespace, counting into `subrequests`.
    pub fn new(hubs: ObjectNamespace, subrequests: Subrequests) -> Self {
        Self { hubs, subrequests }
    }
}

impl BrowserHub for DoBrowserHub {
    fn ask<'a>(
        &'a self,
        ask: &'a TokenAsk,
    ) -> BoxFuture<'a, std::result::Result<String, CaptchaError>> {
        boxed(async move {
            let fail = |e: &dyn std::fmt::Display| {
                CaptchaError::new(CaptchaErrorKind::Provider, format!("captcha hub: {e}"))
            };
            let hub = hub_name(&ask.route_key);
            let stub = object(&self.hubs, &hub).map_err(|e| fail(&e))?;
            let ask = HubAsk {
                hub,
                forwarded: false,
                ask: ask.clone(),
            };
            let reply: AskReply = call(&stub, ASK_URL, &ask, &self.subrequests)
                .await
                .map_err(|e| fail(&e))?;
            reply.into_result()
        })
    }
}
