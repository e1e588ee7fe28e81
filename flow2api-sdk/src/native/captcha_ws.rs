//! `GET /captcha_ws` on the native server (§10.5): the WebSocket of the `extension` captcha
//! method, upgraded from hyper and framed by tokio-tungstenite. Every rule (who may attach,
//! routing, replies) is the SDK's [`Switchboard`]; this only moves frames.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::captcha::{route_of_query, BrowserSocket, Switchboard};
use crate::App;

/// The path of the extension's WebSocket.
pub(super) const PATH: &str = "/captcha_ws";

/// Connection ids, unique in this process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A connection's outgoing frames, written by its own task.
struct Outbox(tokio::sync::mpsc::UnboundedSender<String>);

impl BrowserSocket for Outbox {
    fn send_text(&self, text: &str) -> bool {
        self.0.send(text.to_owned()).is_ok()
    }
}

/// Answers the upgrade of `req` and serves the socket in a task of its own. A request that is
/// no WebSocket upgrade is answered 400. A key other than the root key is let upgrade and then
/// closed with 1008, as the original does, so the extension sees why.
pub(super) fn upgrade<B>(app: &App, board: Arc<Switchboard>, mut req: Request<B>) -> Response<Bytes>
where
    B: Send + 'static,
{
    let wants_ws = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| wants_ws)
    else {
        let mut response = Response::new(Bytes::from_static(
            b"{\"detail\":\"/captcha_ws expects a WebSocket upgrade\"}",
        ));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    let accept = derive_accept_key(key.as_bytes());
    let allowed = app.captcha_ws_allowed(req.headers(), req.uri());
    let (route_key, label) = route_of_query(req.uri().query());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        if !allowed {
            let _ = ws
                .close(Some(CloseFrame {
                    code: CloseCode::Policy,
                    reason: "invalid API key".into(),
                }))
                .await;
            // Reads the client's closing frame so the close completes cleanly.
            while let Some(Ok(_)) = ws.next().await {}
            return;
        }
        serve_socket(&board, ws, &route_key, &label).await;
    });
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    response
}

/// Feeds one socket's text frames to `board` until it closes.
async fn serve_socket<S>(board: &Switchboard, ws: WebSocketStream<S>, route_key: &str, label: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let id = format!("ws-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    board.attach(&id, route_key, label, Arc::new(Outbox(tx)));
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
        }
    });
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(Message::Text(text)) => {
                board.on_text(&id, text.as_str());
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    board.detach(&id);
    writer.abort();
}
