//! The Token Updater extension's routes in process: the connection token, pushes that add
//! and update accounts by email, st2at, check-tokens, and the two dead states an account
//! can reach (`session_expired`, `grant_expired`).

mod common;

use common::{harness, Harness, Reply, ST};
use flow2api_sdk::testing::{Endpoint, FakeAccount};
use serde_json::{json, Value};

async fn connection_token(h: &Harness) -> String {
    let r = h
        .admin_call(
            "POST",
            "/api/plugin/config",
            Some(json!({"connection_token": "", "auto_enable_on_update": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json()["connection_token"].as_str().unwrap().to_owned();
    assert!(token.len() >= 32, "{token}");
    token
}

async fn push(h: &Harness, token: &str, body: Value) -> Reply {
    let auth = format!("Bearer {token}");
    h.call(
        "POST",
        "/api/plugin/update-token",
        &[("authorization", &auth)],
        Some(body),
    )
    .await
}

fn refusal(r: &Reply, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert_eq!(v["success"], false, "{v}");
    v["message"].as_str().unwrap().to_owned()
}

#[tokio::test(start_paused = true)]
async fn the_config_draws_a_token_once_and_shows_it_only_there() {
    let h = harness().await;
    let r = h.admin_call("GET", "/api/plugin/config", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["config"]["connection_token"], "");
    assert_eq!(v["config"]["auto_enable_on_update"], true);
    assert_eq!(
        v["config"]["connection_url"],
        "http://gateway.test/api/plugin/update-token"
    );

    let token = connection_token(&h).await;
    let r = h.admin_call("GET", "/api/plugin/config", None).await;
    assert_eq!(r.json()["config"]["connection_token"], token.as_str());
    // A POST without a token keeps it; "" draws a new one.
    let r = h
        .admin_call(
            "POST",
            "/api/plugin/config",
            Some(json!({"auto_enable_on_update": false})),
        )
        .await;
    assert_eq!(r.json()["connection_token"], token.as_str());
    assert_eq!(r.json()["config"]["auto_enable_on_update"], false);
    let again = connection_token(&h).await;
    assert_ne!(again, token);
    // Nowhere else: not in the settings, the account list or the export.
    for path in ["/api/settings", "/api/tokens", "/api/tokens/export"] {
        let r = h.admin_call("GET", path, None).await;
        assert!(!r.text().contains(&again), "{path}: {}", r.text());
    }

    // Without an admin session: 401.
    let r = h.call("GET", "/api/plugin/config", &[], None).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let auth = format!("Bearer {again}");
    let r = h
        .call(
            "GET",
            "/api/plugin/config",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(r.status, 401, "the connection token is no admin session");
}

#[tokio::test(start_paused = true)]
async fn chosen_tokens_and_bad_bodies_are_refused_clearly() {
    let h = harness().await;
    for (body, needle) in [
        (json!({"connection_token": "short"}), "32"),
        (
            json!({"connection_token": format!("{} x", "a".repeat(40))}),
            "printable",
        ),
        (json!({"connection_token": 5}), "string"),
        (json!({"auto_enable_on_update": "yes"}), "true or false"),
        (json!([]), "object"),
    ] {
        let r = h.admin_call("POST", "/api/plugin/config", Some(body)).await;
        assert!(refusal(&r, 400).contains(needle), "{}", r.text());
    }
    let chosen = "c".repeat(40);
    let r = h
        .admin_call(
            "POST",
            "/api/plugin/config",
            Some(json!({"connection_token": chosen})),
        )
        .await;
    assert_eq!(r.json()["connection_token"], chosen.as_str());
}

#[tokio::test(start_paused = true)]
async fn pushes_need_the_connection_token() {
    let h = harness().await;
    let body = json!({"session_token": ST});
    // None set yet: everyone is refused, even with an empty header.
    let r = h
        .call(
            "POST",
            "/api/plugin/update-token",
            &[("authorization", "Bearer ")],
            Some(body.clone()),
        )
        .await;
    refusal(&r, 401);
    let token = connection_token(&h).await;
    for auth in [
        String::new(),
        "Bearer wrong".to_owned(),
        format!("Bearer {token}x"),
        format!("Bearer {}", h.admin),
    ] {
        let headers: Vec<(&str, &str)> = if auth.is_empty() {
            vec![]
        } else {
            vec![("authorization", &auth)]
        };
        let r = h
            .call(
                "POST",
                "/api/plugin/update-token",
                &headers,
                Some(body.clone()),
            )
            .await;
        let m = refusal(&r, 401);
        assert!(m.contains("connection token"), "{m}");
        let r = h
            .call("POST", "/api/plugin/check-tokens", &headers, None)
            .await;
        refusal(&r, 401);
    }
    // The raw token without `Bearer` is accepted, as the original does.
    let r = h
        .call(
            "POST",
            "/api/plugin/update-token",
            &[("authorization", &token)],
            Some(body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(h.fake.requests_to(Endpoint::Session).len() == 1);
}

#[tokio::test(start_paused = true)]
async fn a_push_adds_then_updates_by_email_and_re_enables() {
    let h = harness().await;
    let token = connection_token(&h).await;
    let st = "st-bob-0123456789abcdef-one";
    h.fake.add_account(FakeAccount::new(st, "bob@example.com"));
    let r = push(&h, &token, json!({"session_token": st})).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (&v["success"], &v["action"], &v["message"]),
        (
            &json!(true),
            &json!("added"),
            &json!("Token added for bob@example.com")
        ),
        "{v}"
    );
    let id = v["token_id"].as_str().unwrap().to_owned();
    assert!(!r.text().contains(st), "no ST in the answer");
    let bob = &h.accounts().await["bob@example.com"];
    assert_eq!(bob["remark"], "Added by Chrome Extension");
    assert_eq!(bob["status"], "active");

    // Disabled by the admin, then a new ST for the same email: updated and enabled again.
    let r = h
        .admin_call("POST", &format!("/api/tokens/{id}/disable"), None)
        .await;
    assert_eq!(r.status, 200);
    let st2 = "st-bob-0123456789abcdef-two";
    h.fake.add_account(FakeAccount::new(st2, "bob@example.com"));
    let r = push(&h, &token, json!({"session_token": st2})).await;
    let v = r.json();
    assert_eq!(
        (&v["action"], &v["auto_enabled"], &v["token_id"]),
        (&json!("updated"), &json!(true), &json!(id)),
        "{v}"
    );
    assert_eq!(
        v["message"],
        "Token updated and auto-enabled for bob@example.com"
    );
    let bob = &h.accounts().await["bob@example.com"];
    assert_eq!(
        (bob["status"].as_str(), bob["is_active"].as_bool()),
        (Some("active"), Some(true))
    );
    assert_eq!(h.accounts().await.len(), 2, "no second account for bob");

    // With auto_enable_on_update off a disabled account stays off.
    h.admin_call(
        "POST",
        "/api/plugin/config",
        Some(json!({"auto_enable_on_update": false})),
    )
    .await;
    h.admin_call("POST", &format!("/api/tokens/{id}/disable"), None)
        .await;
    let r = push(&h, &token, json!({"session_token": st2})).await;
    let v = r.json();
    assert_eq!(
        (&v["action"], &v["auto_enabled"]),
        (&json!("updated"), &json!(false)),
        "{v}"
    );
    assert_eq!(v["message"], "Token updated for bob@example.com");
    assert_eq!(h.accounts().await["bob@example.com"]["status"], "disabled");
}

#[tokio::test(start_paused = true)]
async fn bad_pushes_are_client_mistakes_and_count_against_nobody() {
    let h = harness().await;
    let token = connection_token(&h).await;
    let secret_st = "st-nobody-knows-this-0123456789";
    for (body, status, needle) in [
        (json!({}), 400, "session_token"),
        (json!({"session_token": ""}), 400, "session_token"),
        (json!({"session_token": 42}), 400, "string"),
        (
            json!({"session_token": secret_st}),
            400,
            "Invalid session token",
        ),
    ] {
        let r = push(&h, &token, body).await;
        let m = refusal(&r, status);
        assert!(m.contains(needle), "{m}");
        assert!(!r.text().contains(secret_st), "{}", r.text());
    }
    let auth = format!("Bearer {token}");
    let r = h
        .raw(
            "POST",
            "/api/plugin/update-token",
            &[("authorization", &auth)],
            "{not json".into(),
        )
        .await;
    assert!(refusal(&r, 400).contains("Invalid JSON"), "{}", r.text());
    let alice = &h.accounts().await["alice@example.com"];
    assert_eq!(
        (alice["status"].as_str(), alice["error_count"].as_i64()),
        (Some("active"), Some(0)),
        "{alice}"
    );
}

#[tokio::test(start_paused = true)]
async fn st2at_answers_email_and_expiry_but_no_token() {
    let h = harness().await;
    let r = h
        .admin_call("POST", "/api/tokens/st2at", Some(json!({"st": ST})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (&v["success"], &v["email"]),
        (&json!(true), &json!("alice@example.com"))
    );
    assert!(v["expires"].as_str().unwrap().ends_with('Z'), "{v}");
    assert!(
        v.get("access_token").is_none() && !r.text().contains("ya29."),
        "{v}"
    );

    let r = h
        .admin_call(
            "POST",
            "/api/tokens/st2at",
            Some(json!({"st": "st-unknown-0123456789"})),
        )
        .await;
    assert!(refusal(&r, 400).contains("Invalid session token"));
    let r = h
        .admin_call("POST", "/api/tokens/st2at", Some(json!({})))
        .await;
    refusal(&r, 400);
    let r = h
        .call("POST", "/api/tokens/st2at", &[], Some(json!({"st": ST})))
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test(start_paused = true)]
async fn check_tokens_lists_health_without_secrets() {
    let h = harness().await;
    let token = connection_token(&h).await;
    let auth = format!("Bearer {token}");
    let r = h
        .call(
            "POST",
            "/api/plugin/check-tokens",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let tokens = v["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["email"], "alice@example.com");
    assert_eq!(tokens[0]["is_active"], true);
    assert_eq!(tokens[0]["needs_refresh"], false);
    assert!(!r.text().contains(ST) && !r.text().contains("ya29."));

    let r = h
        .call(
            "POST",
            "/api/plugin/check-tokens",
            &[("authorization", &auth)],
            Some(json!({"emails": ["NOBODY@example.com"]})),
        )
        .await;
    assert_eq!(r.json()["tokens"], json!([]));
    let r = h
        .call(
            "POST",
            "/api/plugin/check-tokens",
            &[("authorization", &auth)],
            Some(json!({"emails": ["ALICE@example.com"]})),
        )
        .await;
    assert_eq!(r.json()["tokens"].as_array().unwrap().len(), 1);
    let r = h
        .call(
            "POST",
            "/api/plugin/check-tokens",
            &[("authorization", &auth)],
            Some(json!({"emails": "alice@example.com"})),
        )
        .await;
    refusal(&r, 400);
}

#[tokio::test(start_paused = true)]
async fn a_dead_session_and_a_revoked_grant_show_as_expired_and_a_push_mends_them() {
    let h = harness().await;
    let token = connection_token(&h).await;
    let id = h.accounts().await["alice@example.com"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    h.fake.expire_st(ST);
    let r = h
        .admin_call("POST", &format!("/api/tokens/{id}/refresh"), None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let a = &h.accounts().await["alice@example.com"];
    assert_eq!(
        (a["status"].as_str(), a["status_reason"].as_str()),
        (Some("expired"), Some("session_expired")),
        "{a}"
    );
    assert!(
        a["status_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{a}"
    );

    // The extension pushes the browser's new ST: the same account, active again.
    let st2 = "st-alice-0123456789abcdef-fresh";
    let mut acct = FakeAccount::new(st2, "alice@example.com");
    acct.tier = "PAYGATE_TIER_TWO".into();
    h.fake.add_account(acct);
    let r = push(&h, &token, json!({"session_token": st2})).await;
    assert_eq!(r.json()["auto_enabled"], true, "{}", r.text());
    let a = &h.accounts().await["alice@example.com"];
    assert_eq!(
        (a["status"].as_str(), &a["status_reason"]),
        (Some("active"), &Value::Null)
    );

    // The grant goes: the session still answers tokens, credits refuses them.
    h.fake.revoke_grant(st2);
    let r = h.admin_call("POST", "/api/tokens/refresh-due", None).await;
    assert_eq!(r.status, 200);
    let r = h
        .admin_call("POST", &format!("/api/tokens/{id}/refresh"), None)
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let a = &h.accounts().await["alice@example.com"];
    assert_eq!(
        (a["status"].as_str(), a["status_reason"].as_str()),
        (Some("expired"), Some("grant_expired")),
        "{a}"
    );
    // Pushing the same dead grant keeps it expired, whatever auto-enable says.
    let r = push(&h, &token, json!({"session_token": st2})).await;
    let v = r.json();
    assert_eq!(
        (&v["status"], &v["status_reason"]),
        (&json!("expired"), &json!("grant_expired")),
        "{v}"
    );
    // Signed in again in the browser: a working ST brings it back.
    let st3 = "st-alice-0123456789abcdef-again";
    let mut acct = FakeAccount::new(st3, "alice@example.com");
    acct.tier = "PAYGATE_TIER_TWO".into();
    h.fake.add_account(acct);
    let r = push(&h, &token, json!({"session_token": st3})).await;
    assert_eq!(r.json()["status"], "active", "{}", r.text());
}

#[tokio::test(start_paused = true)]
async fn a_grant_revoked_mid_use_expires_the_account_on_its_next_request() {
    let h = harness().await;
    let chat = json!({
        "model": "gemini-3.1-flash-image-landscape",
        "messages": [{"role": "user", "content": "a lighthouse"}],
    });
    assert_eq!(h.chat(chat.clone()).await.status, 200);
    // Every token of the account is refused from now on, new ones included.
    h.fake.revoke_grant(ST);
    let r = h.chat(chat.clone()).await;
    assert!(r.status >= 500, "{}", r.text());
    let a = &h.accounts().await["alice@example.com"];
    assert_eq!(
        (a["status"].as_str(), a["status_reason"].as_str()),
        (Some("expired"), Some("grant_expired")),
        "{a}"
    );
    // Not counted as the account's errors: the reason stays the dead grant.
    assert_eq!(a["consecutive_error_count"], 0, "{a}");
    let r = h.chat(chat).await;
    assert_eq!(r.status, 503, "{}", r.text());
}
