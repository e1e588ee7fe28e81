//! The `extension` captcha method (§10.5) in process: the app's own switchboard, with
//! in-memory "browsers" that answer `get_token` with tokens FakeFlow's Google accepts.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use flow2api_sdk::captcha::{BrowserHub, BrowserSocket, Switchboard, TokenAsk};
use flow2api_sdk::seams::CaptchaErrorKind;
use flow2api_sdk::testing::{Endpoint, FakeFlow};
use serde_json::{json, Value};

const MODEL: &str = "gemini-3.1-flash-image-landscape";

/// One browser: records what it is sent; when `answers`, replies to each `get_token` with a
/// token the fake accepts (from a task, as a socket's reader would).
struct Browser {
    id: String,
    sent: Mutex<Vec<Value>>,
    asks: tokio::sync::mpsc::UnboundedSender<Value>,
}

impl BrowserSocket for Browser {
    fn send_text(&self, text: &str) -> bool {
        let v: Value = serde_json::from_str(text).expect("JSON frames");
        self.sent.lock().unwrap().push(v.clone());
        if v["type"] == "get_token" {
            let _ = self.asks.send(v);
        }
        true
    }
}

impl Browser {
    fn asked(&self) -> Vec<Value> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|v| v["type"] == "get_token")
            .cloned()
            .collect()
    }
}

/// Attaches browser `id` with `route_key` to `board`; it answers when `answers`.
fn browser(
    board: &Arc<Switchboard>,
    fake: &FakeFlow,
    id: &str,
    route_key: &str,
    answers: bool,
) -> Arc<Browser> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let b = Arc::new(Browser {
        id: id.to_owned(),
        sent: Mutex::default(),
        asks: tx,
    });
    board.attach(id, route_key, "test", b.clone());
    let (board, fake, id) = (board.clone(), fake.clone(), id.to_owned());
    tokio::spawn(async move {
        while let Some(ask) = rx.recv().await {
            if answers {
                let token = fake.browser_token(ask["action"].as_str().unwrap());
                let reply = json!({"req_id": ask["req_id"], "status": "success", "token": token});
                board.on_text(&id, &reply.to_string());
            }
        }
    });
    b
}

fn carried(fake: &FakeFlow) -> String {
    let gens = fake.requests_to(Endpoint::GenerateImage);
    let last = gens.last().expect("a generate call");
    last.json.as_ref().unwrap()["clientContext"]["recaptchaContext"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn image(h: &Harness) -> Reply {
    h.chat(json!({"model": MODEL, "messages": user(json!("a red kite"))}))
        .await
}

fn ask(route_key: &str) -> TokenAsk {
    TokenAsk {
        route_key: route_key.to_owned(),
        action: "IMAGE_GENERATION".to_owned(),
        project_id: "p1".to_owned(),
        timeout_ms: 25_000,
    }
}

#[tokio::test]
async fn an_image_carries_the_token_the_browser_replied_with() {
    let h = harness_with(&[("CAPTCHA_METHOD", "extension")], Some("PAYGATE_TIER_TWO")).await;
    let board = h.app.switchboard().expect("an in-process hub");
    let b = browser(&board, &h.fake, "b1", "", true);
    let reg = board
        .on_text(
            "b1",
            r#"{"type":"register","route_key":"","client_label":"desk"}"#,
        )
        .expect("register is acknowledged");
    assert_eq!(
        serde_json::from_str::<Value>(&reg.ack).unwrap(),
        json!({"type": "register_ack", "route_key": "", "client_label": "desk"})
    );
    let r = image(&h).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = carried(&h.fake);
    assert!(token.contains("-fake-extension-"), "{token}");
    let asked = b.asked();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["action"], "IMAGE_GENERATION");
    assert!(asked[0]["req_id"].as_str().unwrap().starts_with("req_"));
    assert!(h.fake.rejections().is_empty(), "{:?}", h.fake.rejections());
    assert_eq!(b.id, "b1");
}

#[tokio::test]
async fn the_accounts_route_key_picks_the_browser() {
    let h = harness_with(&[("CAPTCHA_METHOD", "extension")], Some("PAYGATE_TIER_TWO")).await;
    let board = h.app.switchboard().unwrap();
    let plain = browser(&board, &h.fake, "plain", "", true);
    let desk = browser(&board, &h.fake, "desk", "", true);
    // `register` renames the connection's route.
    board.on_text("desk", r#"{"type":"register","route_key":"a"}"#);
    let id = h.accounts().await["alice@example.com"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let put = h
        .admin_call(
            "PUT",
            &format!("/api/tokens/{id}"),
            Some(json!({"extension_route_key": "a"})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let r = image(&h).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(desk.asked().len(), 1);
    assert!(plain.asked().is_empty());
    assert_eq!(desk.asked()[0]["route_key"], "a");

    // No browser holds the key: the error lists the connected routes, the account stays.
    h.admin_call(
        "PUT",
        &format!("/api/tokens/{id}"),
        Some(json!({"extension_route_key": "zz"})),
    )
    .await;
    let r = image(&h).await;
    let e = assert_error(&r, r.status, None);
    let message = e["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("available routes: \"\", \"a\""),
        "{message}"
    );
    assert!(h.accounts().await["alice@example.com"]["is_active"] == json!(true));
}

#[tokio::test]
async fn routing_follows_the_keys_exactly() {
    let (board, fake) = board();
    let e = board.ask(&ask("")).await.unwrap_err();
    assert_eq!(e.kind, CaptchaErrorKind::NoCapacity);
    assert!(
        e.message.contains("no captcha extension is connected"),
        "{e}"
    );
    let keyed = browser(&board, &fake, "k", "a", true);
    // An empty key only uses connections with an empty key.
    let e = board.ask(&ask("")).await.unwrap_err();
    assert!(e.message.contains("available routes: \"a\""), "{e}");
    assert!(board.ask(&ask("a")).await.is_ok());
    assert_eq!(keyed.asked().len(), 1);
    assert_eq!(board.routes(), vec!["a".to_owned()]);
    board.detach("k");
    assert!(board.routes().is_empty());
}

/// A board with no browser yet, and the fake whose tokens its browsers hand out.
fn board() -> (Arc<Switchboard>, FakeFlow) {
    let clock = Arc::new(TokioClock::new());
    let fake = FakeFlow::new("https://fake.flow.test", clock.clone());
    (Arc::new(Switchboard::new(clock)), fake)
}

/// Starts a solve for `route_key` and returns it once `b` has been asked its `n`th time, with
/// that ask's `req_id`.
async fn asked_of(
    board: &Arc<Switchboard>,
    b: &Browser,
    route_key: &str,
    n: usize,
) -> (
    tokio::task::JoinHandle<Result<String, flow2api_sdk::seams::CaptchaError>>,
    Value,
) {
    let waiting = {
        let (board, route_key) = (board.clone(), route_key.to_owned());
        tokio::spawn(async move { board.ask(&ask(&route_key)).await })
    };
    while b.asked().len() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (waiting, b.asked()[n - 1]["req_id"].clone())
}

#[tokio::test]
async fn a_reply_from_another_connection_is_ignored() {
    let (board, fake) = board();
    let asked = browser(&board, &fake, "asked", "a", false);
    let _other = browser(&board, &fake, "other", "b", false);
    let (waiting, req_id) = asked_of(&board, &asked, "a", 1).await;
    let forged = json!({"req_id": req_id, "status": "success", "token": "forged"});
    board.on_text("other", &forged.to_string());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !waiting.is_finished(),
        "a reply from another connection ended the wait"
    );
    let genuine = json!({"req_id": req_id, "status": "success", "token": "genuine"});
    board.on_text("asked", &genuine.to_string());
    assert_eq!(waiting.await.unwrap().unwrap(), "genuine");
}

#[tokio::test]
async fn an_error_reply_and_a_disconnect_end_the_wait_at_once() {
    let (board, fake) = board();
    let b = browser(&board, &fake, "b", "", false);
    let (waiting, req_id) = asked_of(&board, &b, "", 1).await;
    let reply = json!({"req_id": req_id, "status": "error", "error": "tab closed"});
    board.on_text("b", &reply.to_string());
    let e = waiting.await.unwrap().unwrap_err();
    assert_eq!(e.kind, CaptchaErrorKind::Provider);
    assert!(e.message.contains("tab closed"), "{e}");

    let (waiting, _) = asked_of(&board, &b, "", 2).await;
    board.detach("b");
    let e = waiting.await.unwrap().unwrap_err();
    assert_eq!(e.kind, CaptchaErrorKind::NoToken);
}

#[tokio::test(start_paused = true)]
async fn the_chain_falls_through_on_no_browser_and_on_timeout() {
    let h = harness_with(
        &[("CAPTCHA_METHOD", "extension,yescaptcha")],
        Some("PAYGATE_TIER_TWO"),
    )
    .await;
    // No browser at all.
    let r = image(&h).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(carried(&h.fake).contains("-fake-yescaptcha-"));

    // A browser that never answers: 25 s, then the next method.
    let board = h.app.switchboard().unwrap();
    let mute = browser(&board, &h.fake, "mute", "", false);
    let started = tokio::time::Instant::now();
    let r = image(&h).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(carried(&h.fake).contains("-fake-yescaptcha-"));
    assert_eq!(mute.asked().len(), 1);
    assert!(started.elapsed() >= Duration::from_secs(25));
    let stats = h.admin_call("GET", "/api/captcha/stats", None).await.json();
    let failures = &stats["solvers"]["extension"]["failures_by_kind"];
    assert_eq!(failures["no_capacity"], 1, "{stats}");
    assert_eq!(failures["no_token"], 1, "{stats}");
}
