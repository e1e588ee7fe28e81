//! The admin API's security: login throttling per client address and globally, logout,
//! password changes that end every session on every process, and CORS on `/api/*`.

mod common;

use std::time::Duration;

use bytes::Bytes;
use flow2api_sdk::api::ClientAddr;
use flow2api_sdk::App;
use serde_json::{json, Value};

use common::{assert_error, builder, config, harness_with, Harness, Reply, Stores};

/// One request to `app`, from `peer` (the address a host would insert) with `headers`.
async fn send(
    app: &App,
    method: &str,
    path: &str,
    peer: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut b = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "gateway.test");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = body.map(|v| Bytes::from(v.to_string())).unwrap_or_default();
    let mut req = b.body(body).unwrap();
    if let Some(p) = peer {
        req.extensions_mut().insert(ClientAddr(p.parse().unwrap()));
    }
    let (parts, body) = app.handle(req).await.into_parts();
    Reply {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await,
    }
}

async fn login(app: &App, password: &str, peer: Option<&str>, headers: &[(&str, &str)]) -> Reply {
    let body = json!({"username": "admin", "password": password});
    send(app, "POST", "/api/login", peer, headers, Some(body)).await
}

fn token(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["token"].as_str().unwrap().to_owned()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn assert_locked(r: &Reply) -> u32 {
    assert_error(r, 429, Some("too_many_login_attempts"));
    r.headers["retry-after"].to_str().unwrap().parse().unwrap()
}

async fn harness(extra: &[(&str, &str)]) -> Harness {
    harness_with(extra, None).await
}

#[tokio::test(start_paused = true)]
async fn failed_logins_lock_out_the_address_then_everyone() {
    let h = harness(&[("LOGIN_MAX_FAILURES_GLOBAL", "9")]).await;
    let (a, b) = (Some("198.51.100.1"), Some("198.51.100.2"));
    for _ in 0..5 {
        assert_error(&login(&h.app, "wrong", a, &[]).await, 401, None);
    }
    assert_eq!(assert_locked(&login(&h.app, "wrong", a, &[]).await), 300);
    // The right password is refused too while locked, and the lock counts down.
    tokio::time::advance(Duration::from_secs(100)).await;
    assert_eq!(
        assert_locked(&login(&h.app, "secret-pw", a, &[]).await),
        200
    );
    // Another address is not affected, and X-Forwarded-For is not trusted by default.
    token(&login(&h.app, "secret-pw", b, &[]).await);
    let spoofed = [("x-forwarded-for", "198.51.100.2")];
    assert_locked(&login(&h.app, "secret-pw", a, &spoofed).await);
    // The window over, the address may log in again.
    tokio::time::advance(Duration::from_secs(200)).await;
    token(&login(&h.app, "secret-pw", a, &[]).await);

    // Nine failures from nine addresses reach the global ceiling: everyone is locked out.
    for i in 0..9 {
        let peer = format!("203.0.113.{i}");
        assert_error(&login(&h.app, "wrong", Some(&peer), &[]).await, 401, None);
    }
    assert_locked(&login(&h.app, "secret-pw", b, &[]).await);
    // A request without an address counts under one shared one, locked out as well.
    assert_locked(&login(&h.app, "secret-pw", None, &[]).await);
    tokio::time::advance(Duration::from_secs(301)).await;
    token(&login(&h.app, "secret-pw", None, &[]).await);
}

#[tokio::test(start_paused = true)]
async fn a_trusted_proxy_names_the_client() {
    let h = harness(&[("TRUST_FORWARDED_HEADERS", "true")]).await;
    let proxy = Some("10.0.0.1");
    let first = [("x-forwarded-for", "198.51.100.7, 10.0.0.1")];
    for _ in 0..5 {
        login(&h.app, "wrong", proxy, &first).await;
    }
    assert_locked(&login(&h.app, "secret-pw", proxy, &first).await);
    // Another client behind the same proxy, and the proxy itself, are not locked out.
    let second = [("x-forwarded-for", "198.51.100.8")];
    token(&login(&h.app, "secret-pw", proxy, &second).await);
    token(&login(&h.app, "secret-pw", proxy, &[]).await);
}

#[tokio::test(start_paused = true)]
async fn logout_ends_the_session() {
    let h = harness(&[]).await;
    let t = token(&login(&h.app, "secret-pw", None, &[]).await);
    let other = token(&login(&h.app, "secret-pw", None, &[]).await);
    let auth = bearer(&t);
    let headers = [("authorization", auth.as_str())];
    assert_eq!(
        send(&h.app, "GET", "/api/tokens", None, &headers, None)
            .await
            .status,
        200
    );
    let out = send(&h.app, "POST", "/api/logout", None, &headers, None).await;
    assert_eq!(out.status, 200, "{}", out.text());
    assert_eq!(out.json()["success"], true);
    for (method, path) in [
        ("GET", "/api/tokens"),
        ("POST", "/api/logout"),
        ("POST", "/api/admin/logout"),
    ] {
        let r = send(&h.app, method, path, None, &headers, None).await;
        assert_error(&r, 401, None);
    }
    // Only that session ended.
    let auth = bearer(&other);
    let r = send(
        &h.app,
        "POST",
        "/api/admin/logout",
        None,
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(start_paused = true)]
async fn a_changed_password_holds_on_every_process_and_ends_every_session() {
    // Two processes over the same stores.
    let h = harness(&[("ADMIN_PASSWORD_COST", "4")]).await;
    let stores = Stores::new(h.clock.clone());
    let cfg = config(&[("ADMIN_PASSWORD_COST", "4")], &h.fake);
    let one = stores
        .attach(builder(cfg.clone(), &h.fake, h.clock.clone()))
        .build()
        .unwrap();
    let two = stores
        .attach(builder(cfg, &h.fake, h.clock.clone()))
        .build()
        .unwrap();
    let first = token(&login(&one, "secret-pw", None, &[]).await);
    let second = token(&login(&two, "secret-pw", None, &[]).await);
    let auth = bearer(&first);
    let change = |old: &str, new: &str| json!({"old_password": old, "new_password": new});

    let r = send(
        &one,
        "POST",
        "/api/admin/change-password",
        None,
        &[("authorization", &auth)],
        Some(change("secret-pw", "short")),
    )
    .await;
    assert_eq!((r.status, &r.json()["success"]), (400, &json!(false)));
    assert!(r.json()["message"].as_str().unwrap().contains('8'));
    let r = send(
        &one,
        "POST",
        "/api/admin/password",
        None,
        &[("authorization", &auth)],
        Some(change("not-it", "a-new-password")),
    )
    .await;
    assert_eq!((r.status, &r.json()["success"]), (400, &json!(false)));
    let r = send(
        &one,
        "POST",
        "/api/admin/change-password",
        None,
        &[("authorization", &auth)],
        Some(change("secret-pw", "a-new-password")),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["success"], true);

    // Every session of every process has ended.
    for (app, t) in [(&one, &first), (&two, &second), (&two, &first)] {
        let auth = bearer(t);
        let r = send(
            app,
            "GET",
            "/api/tokens",
            None,
            &[("authorization", &auth)],
            None,
        )
        .await;
        assert_error(&r, 401, None);
    }
    // The old password no longer opens one anywhere; the new one does, everywhere.
    assert_error(&login(&two, "secret-pw", None, &[]).await, 401, None);
    let fresh = token(&login(&two, "a-new-password", None, &[]).await);
    let auth = bearer(&fresh);
    let r = send(
        &one,
        "GET",
        "/api/tokens",
        None,
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(start_paused = true)]
async fn wrong_old_passwords_count_like_failed_logins() {
    let h = harness(&[]).await;
    let peer = Some("198.51.100.9");
    let t = token(&login(&h.app, "secret-pw", peer, &[]).await);
    let auth = bearer(&t);
    let headers = [("authorization", auth.as_str())];
    let body = json!({"old_password": "guess", "new_password": "a-new-password"});
    for _ in 0..5 {
        let r = send(
            &h.app,
            "POST",
            "/api/admin/change-password",
            peer,
            &headers,
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let right = json!({"old_password": "secret-pw", "new_password": "a-new-password"});
    let r = send(
        &h.app,
        "POST",
        "/api/admin/change-password",
        peer,
        &headers,
        Some(right),
    )
    .await;
    assert_locked(&r);
    assert_locked(&login(&h.app, "secret-pw", peer, &[]).await);
}

async fn preflight(app: &App, origin: &str) -> Reply {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    send(app, "OPTIONS", "/api/login", None, &headers, None).await
}

#[tokio::test(start_paused = true)]
async fn cors_on_the_admin_api_only_for_listed_origins() {
    let h = harness(&[("ADMIN_CORS_ORIGINS", "https://console.example")]).await;
    let listed = preflight(&h.app, "https://console.example").await;
    assert_eq!(
        listed.headers["access-control-allow-origin"],
        "https://console.example"
    );
    assert_eq!(listed.headers["vary"], "Origin");
    let other = preflight(&h.app, "https://evil.example").await;
    assert!(!other.headers.contains_key("access-control-allow-origin"));
    assert!(!other.headers.contains_key("access-control-allow-methods"));
    let r = login(&h.app, "wrong", None, &[("origin", "https://evil.example")]).await;
    assert_eq!(r.status, 401);
    assert!(!r.headers.contains_key("access-control-allow-origin"));
    // The API routes still allow any origin.
    let r = send(
        &h.app,
        "GET",
        "/v1/models",
        None,
        &[
            ("origin", "https://evil.example"),
            ("authorization", "Bearer test-api-key"),
        ],
        None,
    )
    .await;
    assert_eq!(r.headers["access-control-allow-origin"], "*");

    // Unlisted, the admin API sends no CORS headers at all.
    let plain = harness(&[]).await;
    let r = login(
        &plain.app,
        "wrong",
        None,
        &[("origin", "https://console.example")],
    )
    .await;
    assert!(!r.headers.contains_key("access-control-allow-origin"));
    assert!(!r.headers.contains_key("vary"));
}
