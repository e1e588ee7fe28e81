//! The `extension` captcha method at the edge (§10.5): the browsers' `/captcha_ws` sockets
//! end in one `CaptchaHubObject`, accepted with the WebSocket Hibernation API, and every
//! isolate's solve is a fetch to that object ([`DoBrowserHub`]).
//!
//! One object holds every socket, not one per route key: the extension names its route key
//! both in the URL and later in `register` (which may change it), and a solve for a key no
//! browser holds must list the keys that are connected; in one object both are the SDK's
//! [`Switchboard`] as it is, with no directory to keep in step. The socket count of one
//! browser per solver machine is far below what one object accepts.
//!
//! The object may hibernate between messages: each socket's attachment (connection id, route
//! key, label) survives, and the switchboard is rebuilt from the accepted sockets on every
//! event. A solve in flight keeps the object awake (its fetch is pending), so the waits of
//! the switchboard stay in memory.

use std::sync::Arc;

use flow2api_sdk::captcha::{
    route_of_query, AskReply, BrowserHub, BrowserSocket, Switchboard, TokenAsk, CLOSE_POLICY,
};
use flow2api_sdk::seams::{boxed, BoxFuture, CaptchaError, CaptchaErrorKind};
use serde::{Deserialize, Serialize};
// `#[durable_object]` expands to code that names `wasm_bindgen` unqualified.
use worker::wasm_bindgen;
use worker::{
    durable_object, web_sys, DurableObject, Env, ObjectNamespace, Request, Response, Result, State,
    WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

use crate::clock::WorkerClock;
use crate::do_client::call;
use crate::fetch_http::Subrequests;

/// The binding of the hub's namespace.
pub const BINDING: &str = "CAPTCHA_HUB";
/// The one instance's name.
const INSTANCE: &str = "captcha-hub";
/// The made-up URL of a solve.
const ASK_URL: &str = "https://captcha-hub/ask";

/// What a socket remembers across hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Attachment {
    id: String,
    route_key: String,
    client_label: String,
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

/// The Durable Object class bound as `CAPTCHA_HUB`.
#[durable_object]
pub struct CaptchaHubObject {
    state: State,
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

    fn accept(&self, req: &Request) -> Result<Response> {
        let url = req.url()?;
        let (route_key, client_label) = route_of_query(url.query());
        let pair = WebSocketPair::new()?;
        let a = Attachment {
            id: connection_id(),
            route_key,
            client_label,
        };
        self.state.accept_web_socket(&pair.server);
        pair.server.serialize_attachment(&a)?;
        self.sync();
        Response::from_websocket(pair.client)
    }
}

impl DurableObject for CaptchaHubObject {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            board: Switchboard::new(Arc::new(WorkerClock)),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
        if upgrade.eq_ignore_ascii_case("websocket") {
            return self.accept(&req);
        }
        let ask: TokenAsk = match serde_json::from_str(&req.text().await?) {
            Ok(a) => a,
            Err(e) => return Response::error(format!("bad ask: {e}"), 400),
        };
        self.sync();
        let reply = AskReply::from_result(self.board.ask(&ask).await);
        Response::from_json(&reply)
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
            // Remembered across hibernation; the socket stays in this object whatever key
            // `register` names (one object holds every route).
            a.route_key = registered.route_key;
            a.client_label = registered.client_label;
            ws.serialize_attachment(&a)?;
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
        if let Ok(Some(a)) = ws.deserialize_attachment::<Attachment>() {
            self.board.detach(&a.id);
        }
        // Completes the closing handshake; the socket may already be closed.
        let code = u16::try_from(code)
            .ok()
            .filter(|c| *c >= 1000 && *c != 1005 && *c != 1006);
        let _ = ws.close(code.or(Some(1000)), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        if let Ok(Some(a)) = ws.deserialize_attachment::<Attachment>() {
            self.board.detach(&a.id);
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
    let stub = env
        .durable_object(BINDING)?
        .id_from_name(INSTANCE)?
        .get_stub()?;
    stub.fetch_with_request(Request::from(req)).await
}

/// The SDK's [`BrowserHub`] over the hub object: one subrequest per solve.
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
            let stub = self
                .hubs
                .id_from_name(INSTANCE)
                .and_then(|id| id.get_stub())
                .map_err(|e| fail(&e))?;
            let reply: AskReply = call(&stub.into(), ASK_URL, ask, &self.subrequests)
                .await
                .map_err(|e| fail(&e))?;
            reply.into_result()
        })
    }
}
