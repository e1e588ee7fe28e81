//! The operator's console through `App::handle`: its files at `/admin` and `/manage` (policy,
//! validator, 304), and the admin session it calls the API routes with.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn the_console_is_served_at_admin_and_manage_with_its_policy() {
    let h = harness().await;
    for path in ["/admin", "/admin/", "/manage", "/manage/"] {
        let r = h.call("GET", path, &[], None).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["cache-control"], "no-cache");
        // Same origin only: no CORS headers, unlike the API routes.
        assert!(!r.headers.contains_key("access-control-allow-origin"));
        assert!(r.text().contains("console.js"));
    }
    // No key needed, but one that is wrong is no reason to refuse the page either.
    let r = h
        .call("GET", "/admin", &[("authorization", "Bearer wrong")], None)
        .await;
    assert_eq!(r.status, 200);

    let js = h.call("GET", "/manage/console.js", &[], None).await;
    assert_eq!(js.status, 200);
    let etag = js.headers["etag"].to_str().unwrap().to_owned();
    let again = h
        .call(
            "GET",
            "/admin/console.js",
            &[("if-none-match", &etag)],
            None,
        )
        .await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    let head = h.call("HEAD", "/admin/console.css", &[], None).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    assert_eq!(
        h.call("GET", "/admin/other.js", &[], None).await.status,
        404
    );
    assert_eq!(h.call("GET", "/admin/a/b", &[], None).await.status, 404);
    assert_eq!(h.call("DELETE", "/manage", &[], None).await.status, 405);
}

#[tokio::test(start_paused = true)]
async fn an_admin_session_is_the_root_caller_on_the_api_routes_while_it_lives() {
    let h = harness().await;
    let bearer = format!("Bearer {}", h.admin);
    let auth = [("authorization", bearer.as_str())];
    let models = h.call("GET", "/v1/models", &auth, None).await;
    assert_eq!(models.status, 200, "{}", models.text());
    let gemini = h.call("GET", "/v1beta/models", &auth, None).await;
    assert_eq!(gemini.status, 200, "{}", gemini.text());
    // A generation runs with it (the harness has one account).
    let chat = h
        .call(
            "POST",
            "/v1/chat/completions",
            &auth,
            Some(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("a cat"))})),
        )
        .await;
    assert_eq!(chat.status, 200, "{}", chat.text());

    // Not as `?key=`: session tokens stay out of URLs.
    let r = h
        .call("GET", &format!("/v1/models?key={}", h.admin), &[], None)
        .await;
    assert_error(&r, 401, Some("invalid_api_key"));

    // Ended: 401 in the route's dialect.
    let out = h.call("POST", "/api/logout", &auth, None).await;
    assert_eq!(out.status, 200);
    let r = h.call("GET", "/v1/models", &auth, None).await;
    let v = assert_error(&r, 401, Some("invalid_api_key"));
    assert!(
        v["error"]["message"].as_str().unwrap().contains("session"),
        "{v}"
    );
    let r = h.call("GET", "/v1beta/models", &auth, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["status"], "UNAUTHENTICATED");
    // A made-up session is refused the same way.
    let forged = format!("Bearer {}", "ab".repeat(32));
    let r = h
        .call("GET", "/v1/models", &[("authorization", &forged)], None)
        .await;
    assert_error(&r, 401, Some("invalid_api_key"));
}

#[tokio::test(start_paused = true)]
async fn settings_describe_their_inputs() {
    let h = harness().await;
    let v = h.admin_call("GET", "/api/settings", None).await.json();
    let find = |name: &str| {
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["input"]
            .clone()
    };
    assert_eq!(find("MEDIA_CACHE"), json!({"kind": "flag"}));
    assert_eq!(
        find("FLOW_MAX_RETRIES"),
        json!({"kind": "integer", "min": 1.0, "max": 20.0})
    );
    assert_eq!(find("IMAGE_TIMEOUT")["kind"], "seconds");
    assert_eq!(find("SELECTION_STRATEGY")["choices"][0], "least_loaded");
    assert_eq!(find("CAPTCHA_METHOD")["kind"], "list_of");
    assert_eq!(find("API_KEY"), json!({"kind": "secret"}));
    assert_eq!(find("PROXY_URL"), json!({"kind": "proxy"}));
}
