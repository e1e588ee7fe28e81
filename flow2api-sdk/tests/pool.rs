//! The account pool against FakeFlow: error classes and their effect on accounts,
//! single-flight refresh, enforced slots, waiting, strategies, records.

mod common;

use std::time::Duration;

use common::*;
use flow2api_sdk::testing::{Endpoint, Fault};
use serde_json::{json, Value};

const MODEL: &str = "gemini-3.1-flash-image-landscape";
const ULTRA: &str = "PAYGATE_TIER_TWO";

fn body() -> Value {
    json!({"model": MODEL, "messages": user(json!("a lighthouse"))})
}

/// The email of the account the fake saw generate last.
fn last_generator(h: &Harness) -> String {
    let gens = h.fake.generated();
    gens.last().expect("a generation").email.clone()
}

async fn two_accounts(extra: &[(&str, &str)]) -> Harness {
    let h = harness_with(extra, None).await;
    h.add_account(
        "st-a-0123456789abcdef",
        "a@example.com",
        ULTRA,
        1000,
        json!({}),
    )
    .await;
    h.add_account(
        "st-b-0123456789abcdef",
        "b@example.com",
        ULTRA,
        1000,
        json!({}),
    )
    .await;
    h.fake.clear_requests();
    h
}

#[tokio::test(start_paused = true)]
async fn single_flight_refresh_ten_concurrent_requests_one_exchange() {
    let h = harness().await;
    // 31 minutes on, less than an hour is left on the 90-minute AT.
    tokio::time::advance(Duration::from_secs(31 * 60)).await;
    let replies = futures::future::join_all((0..10).map(|_| h.chat(body()))).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(
        h.fake.requests_to(Endpoint::Session).len(),
        1,
        "one session-to-access-token for ten requests"
    );
    assert_eq!(h.fake.requests_to(Endpoint::GenerateImage).len(), 10);
}

#[tokio::test(start_paused = true)]
async fn quota_cools_the_account_down_and_it_returns_by_itself() {
    let h = two_accounts(&[("QUOTA_COOLDOWN", "120")]).await;
    h.fake.inject_for_account(
        "a@example.com",
        Endpoint::GenerateImage,
        Fault::quota(),
        1000,
    );
    // Selection is random among equals: send requests until one lands on a (and moves to b).
    let mut sent = 0;
    while h.accounts().await["a@example.com"]["status"] != "cooling_down" {
        assert!(sent < 60, "a was never chosen");
        let r = h.chat(body()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(last_generator(&h), "b@example.com");
        sent += 1;
    }
    // While a rests, every request goes to b without trying a again.
    for _ in 0..5 {
        assert_eq!(h.chat(body()).await.status, 200);
        assert_eq!(last_generator(&h), "b@example.com");
    }
    let accounts = h.accounts().await;
    let a = &accounts["a@example.com"];
    assert_eq!(a["status"], "cooling_down", "{a}");
    assert!(a["cooldown_until"].is_string());
    assert!(
        a["cooldown_reason"].as_str().unwrap().contains("QUOTA"),
        "{a}"
    );
    assert_eq!(a["consecutive_error_count"], 0, "quota is not counted");
    assert_eq!(a["is_active"], true);
    // Exactly one quota hit: every request generated once on b, plus a's one refusal.
    assert_eq!(
        h.fake.requests_to(Endpoint::GenerateImage).len(),
        sent + 5 + 1
    );

    h.fake.clear_faults();
    tokio::time::advance(Duration::from_secs(121)).await;
    assert_eq!(h.accounts().await["a@example.com"]["status"], "active");
    let mut served_by_a = false;
    for _ in 0..60 {
        assert_eq!(h.chat(body()).await.status, 200);
        if last_generator(&h) == "a@example.com" {
            served_by_a = true;
            break;
        }
    }
    assert!(served_by_a, "a serves again");
}

#[tokio::test(start_paused = true)]
async fn credits_coming_back_end_a_quota_cooldown_early() {
    let h = harness_with(&[], None).await;
    h.add_account(
        "st-a-0123456789abcdef",
        "a@example.com",
        ULTRA,
        0,
        json!({}),
    )
    .await;
    h.fake.inject(Endpoint::GenerateImage, Fault::quota(), 1);
    assert_eq!(h.chat(body()).await.status, 429);
    assert_eq!(
        h.accounts().await["a@example.com"]["status"],
        "cooling_down"
    );
    // The background pass sees no credits yet: still resting.
    let r = h.admin_call("POST", "/api/tokens/refresh-due", None).await;
    assert_eq!(r.json()["cooldowns_cleared"], 0, "{}", r.text());
    // Credits come back.
    let mut acct =
        flow2api_sdk::testing::FakeAccount::new("st-a-0123456789abcdef", "a@example.com");
    acct.credits = 500;
    h.fake.add_account(acct);
    let r = h.admin_call("POST", "/api/tokens/refresh-due", None).await;
    assert_eq!(r.json()["cooldowns_cleared"], 1, "{}", r.text());
    let a = &h.accounts().await["a@example.com"];
    assert_eq!(a["status"], "active");
    assert_eq!(a["credits"], 500);
    assert_eq!(h.chat(body()).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn captcha_failures_are_retried_and_never_counted() {
    let h = harness().await;
    for _ in 0..5 {
        h.fake
            .inject(Endpoint::GenerateImage, Fault::unusual_activity(), 20);
        let r = h.chat(body()).await;
        assert_error(&r, 503, Some("upstream_captcha_rejected"));
        h.fake.clear_faults();
    }
    // Six attempts per request (CAPTCHA_MAX_RETRIES), all on the one account.
    assert_eq!(h.fake.requests_to(Endpoint::GenerateImage).len(), 30);
    h.fake
        .inject_forever(Endpoint::CreateTask, Fault::CaptchaError);
    for _ in 0..4 {
        assert_error(&h.chat(body()).await, 503, Some("captcha_failed"));
    }
    h.fake.clear_faults();
    let a = &h.accounts().await["alice@example.com"];
    assert_eq!(a["status"], "active", "{a}");
    assert_eq!(a["consecutive_error_count"], 0);
    assert_eq!(h.chat(body()).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_never_counted() {
    let h = harness().await;
    for _ in 0..5 {
        h.fake
            .inject(Endpoint::GenerateImage, Fault::unsafe_generation(), 1);
        assert_error(&h.chat(body()).await, 400, Some("content_policy_violation"));
        h.fake
            .inject(Endpoint::GenerateImage, Fault::status(400, None, "bad"), 1);
        assert_error(&h.chat(body()).await, 502, Some("upstream_error"));
        assert_error(
            &h.chat(json!({"model": MODEL, "messages": []})).await,
            400,
            None,
        );
    }
    let a = &h.accounts().await["alice@example.com"];
    assert_eq!(a["status"], "active");
    assert_eq!(a["consecutive_error_count"], 0);
}

#[tokio::test(start_paused = true)]
async fn upstream_errors_move_to_another_account_uncounted() {
    let h = two_accounts(&[]).await;
    h.fake.inject_rate_for_account(
        "a@example.com",
        Endpoint::GenerateImage,
        Fault::internal(),
        100,
    );
    for _ in 0..6 {
        let r = h.chat(body()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(last_generator(&h), "b@example.com");
    }
    let a = &h.accounts().await["a@example.com"];
    assert_eq!(a["status"], "active", "5xx never disable an account");
    assert_eq!(a["consecutive_error_count"], 0);
}

#[tokio::test(start_paused = true)]
async fn plain_429s_are_retried_then_the_account_rests_and_the_request_moves() {
    let h = two_accounts(&[("RATE_LIMIT_COOLDOWN", "60")]).await;
    h.fake.inject_rate_for_account(
        "a@example.com",
        Endpoint::GenerateImage,
        Fault::rate_limited(),
        100,
    );
    // Random selection: send requests until one lands on a; each still succeeds on b.
    let mut sent = 0;
    while h.accounts().await["a@example.com"]["status"] != "cooling_down" {
        assert!(sent < 60, "a was never chosen");
        let r = h.chat(body()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(last_generator(&h), "b@example.com");
        sent += 1;
    }
    // a was tried three times (the retry budget) before the request moved to b.
    let refused = h.fake.requests_to(Endpoint::GenerateImage).len() - h.fake.generated().len();
    assert_eq!(refused, 3);
    let a = &h.accounts().await["a@example.com"];
    assert_eq!(
        a["consecutive_error_count"], 0,
        "a rate limit is not counted: {a}"
    );
    assert_eq!(a["is_active"], true, "{a}");
    assert!(
        a["cooldown_reason"].as_str().unwrap().contains("429"),
        "{a}"
    );
    // It rests for the short cooldown only.
    h.fake.clear_faults();
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(h.accounts().await["a@example.com"]["status"], "active");
}

#[tokio::test(start_paused = true)]
async fn truncated_answers_move_to_another_account_and_never_disable() {
    let h = two_accounts(&[("ERROR_BAN_THRESHOLD", "2")]).await;
    h.fake.inject_rate_for_account(
        "a@example.com",
        Endpoint::GenerateImage,
        Fault::MalformedJson,
        100,
    );
    // Until a has been chosen more often than the threshold; every request ends on b.
    for _ in 0..100 {
        let refused = h.fake.requests_to(Endpoint::GenerateImage).len() - h.fake.generated().len();
        if refused >= 3 * 3 {
            break;
        }
        let r = h.chat(body()).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(last_generator(&h), "b@example.com");
    }
    let refused = h.fake.requests_to(Endpoint::GenerateImage).len() - h.fake.generated().len();
    assert!(
        refused >= 9 && refused % 3 == 0,
        "three attempts per visit: {refused}"
    );
    let a = &h.accounts().await["a@example.com"];
    assert_eq!(a["status"], "active", "{a}");
    assert_eq!(a["is_active"], true, "{a}");
    assert_eq!(a["consecutive_error_count"], 0, "{a}");
}

#[tokio::test(start_paused = true)]
async fn account_errors_count_and_disable_at_the_threshold() {
    let h = two_accounts(&[("ERROR_BAN_THRESHOLD", "3")]).await;
    let denied = Fault::status(403, None, "The caller does not have permission");
    h.fake
        .inject_rate_for_account("a@example.com", Endpoint::GenerateImage, denied, 100);
    // Random selection: keep going until a has failed three times (each request still
    // succeeds on b).
    for _ in 0..100 {
        if h.accounts().await["a@example.com"]["status"] == "disabled" {
            break;
        }
        assert_eq!(h.chat(body()).await.status, 200);
    }
    let a = &h.accounts().await["a@example.com"];
    assert_eq!(a["status"], "disabled", "{a}");

    assert_eq!(a["is_active"], false);
    let reason = a["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("3 consecutive errors") && reason.contains("403"),
        "{reason}"
    );
    // Re-enabling clears the count.
    h.fake.clear_faults();
    let id = a["id"].as_str().unwrap();
    assert_eq!(
        h.admin_call("POST", &format!("/api/tokens/{id}/enable"), None)
            .await
            .status,
        200
    );
    let a = &h.accounts().await["a@example.com"];
    assert_eq!(
        (a["status"].as_str(), a["consecutive_error_count"].as_i64()),
        (Some("active"), Some(0))
    );
}

#[tokio::test(start_paused = true)]
async fn refused_token_is_refreshed_and_dead_session_expires_the_account() {
    let h = harness().await;
    h.fake.revoke_access_tokens(ST);
    let r = h.chat(body()).await;
    assert_eq!(
        r.status,
        200,
        "a refused AT is refreshed and the request retried: {}",
        r.text()
    );
    assert_eq!(h.fake.requests_to(Endpoint::Session).len(), 1);

    h.fake.revoke_access_tokens(ST);
    h.fake.expire_st(ST);
    let r = h.chat(body()).await;
    assert!(r.status >= 500, "{}", r.text());
    let a = &h.accounts().await["alice@example.com"];
    assert_eq!(a["status"], "expired", "{a}");
    assert_eq!(a["status_reason"], "session_expired", "{a}");
    // Skipped until its ST is updated.
    assert_error(&h.chat(body()).await, 503, Some("no_account_available"));
    let mut acct =
        flow2api_sdk::testing::FakeAccount::new("st-alice-new-0123456789", "alice@example.com");
    acct.tier = ULTRA.into();
    h.fake.add_account(acct);
    let id = a["id"].as_str().unwrap();
    let r = h
        .admin_call(
            "PUT",
            &format!("/api/tokens/{id}"),
            Some(json!({"st": "st-alice-new-0123456789"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(h.accounts().await["alice@example.com"]["status"], "active");
    assert_eq!(h.chat(body()).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn concurrency_limits_are_enforced() {
    let h = harness_with(&[], None).await;
    for (st, email) in [
        ("st-a-0123456789abcdef", "a@example.com"),
        ("st-b-0123456789abcdef", "b@example.com"),
    ] {
        h.add_account(st, email, ULTRA, 1000, json!({"image_concurrency": 2}))
            .await;
    }
    h.fake.inject_rate(
        Endpoint::GenerateImage,
        Fault::Latency(Duration::from_secs(5)),
        100,
    );
    let replies = futures::future::join_all((0..12).map(|_| h.chat(body()))).await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "all wait for a slot within 60 s"
    );
    let peaks = h.fake.max_in_flight();
    assert_eq!(peaks.get("a@example.com"), Some(&2), "{peaks:?}");
    assert_eq!(peaks.get("b@example.com"), Some(&2), "{peaks:?}");
    let accounts = h.accounts().await;
    assert!(
        accounts.values().all(|a| a["in_flight"]["image"] == 0),
        "every slot released"
    );
}

#[tokio::test(start_paused = true)]
async fn slot_wait_timeout_answers_503_with_retry_after() {
    let h = harness_with(&[("SLOT_WAIT_TIMEOUT", "2")], None).await;
    h.add_account(
        "st-a-0123456789abcdef",
        "a@example.com",
        ULTRA,
        1000,
        json!({"image_concurrency": 1}),
    )
    .await;
    h.fake.inject_rate(
        Endpoint::GenerateImage,
        Fault::Latency(Duration::from_secs(10)),
        100,
    );
    let start = tokio::time::Instant::now();
    let (first, second) = tokio::join!(h.chat(body()), async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let r = h.chat(body()).await;
        (r, start.elapsed())
    });
    assert_eq!(first.status, 200);
    let (second, waited) = second;
    assert_error(&second, 503, Some("no_account_available"));
    assert!(second.headers.contains_key("retry-after"));
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn a_disconnected_stream_releases_its_slot() {
    let h = harness_with(&[], None).await;
    h.add_account(
        "st-a-0123456789abcdef",
        "a@example.com",
        ULTRA,
        1000,
        json!({"image_concurrency": 1}),
    )
    .await;
    h.fake.inject_rate(
        Endpoint::GenerateImage,
        Fault::Latency(Duration::from_secs(30)),
        100,
    );
    let req = http::Request::post("/v1/chat/completions")
        .header("authorization", format!("Bearer {API_KEY}"))
        .body(bytes::Bytes::from(
            json!({"model": MODEL, "stream": true, "messages": user(json!("x"))}).to_string(),
        ))
        .unwrap();
    let resp = h.app.handle(req).await;
    assert_eq!(resp.status(), 200);
    let flow2api_sdk::Body::Stream(mut stream) = resp.into_body() else {
        panic!("a stream")
    };
    use futures::StreamExt;
    let _first = stream.next().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(h.accounts().await["a@example.com"]["in_flight"]["image"], 1);
    drop(stream); // the client goes away
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.accounts().await["a@example.com"]["in_flight"]["image"], 0);
}

#[tokio::test(start_paused = true)]
async fn leases_lapse_when_nobody_releases_them() {
    let h = harness_with(&[("IMAGE_SLOT_LEASE", "5")], None).await;
    h.add_account(
        "st-a-0123456789abcdef",
        "a@example.com",
        ULTRA,
        1000,
        json!({"image_concurrency": 1}),
    )
    .await;
    h.fake.inject_rate(
        Endpoint::GenerateImage,
        Fault::Latency(Duration::from_secs(60)),
        100,
    );
    // A request that never finishes (its future is leaked, as when a process crashes).
    let pending = Box::pin(h.chat(body()));
    let mut pending = Some(pending);
    tokio::select! {
        _ = pending.as_mut().unwrap() => panic!("should still be running"),
        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
    }
    std::mem::forget(pending.take());
    assert_eq!(h.accounts().await["a@example.com"]["in_flight"]["image"], 1);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(h.accounts().await["a@example.com"]["in_flight"]["image"], 0);
}

#[tokio::test(start_paused = true)]
async fn round_robin_and_credit_aware_strategies() {
    let h = harness_with(&[("SELECTION_STRATEGY", "round_robin")], None).await;
    for (i, email) in ["a@example.com", "b@example.com", "c@example.com"]
        .iter()
        .enumerate()
    {
        h.add_account(
            &format!("st-{i}-0123456789abcdef"),
            email,
            ULTRA,
            1000,
            json!({}),
        )
        .await;
    }
    let mut order = Vec::new();
    for _ in 0..6 {
        assert_eq!(h.chat(body()).await.status, 200);
        order.push(last_generator(&h));
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    assert_ne!(order[0], order[1]);
    assert_ne!(order[1], order[2]);
    assert_eq!(order[0..3], order[3..6], "{order:?}");

    let h = harness_with(
        &[
            ("SELECTION_STRATEGY", "credit_aware"),
            ("CREDIT_FLOOR", "100"),
        ],
        None,
    )
    .await;
    h.add_account(
        "st-rich-0123456789abcdef",
        "rich@example.com",
        ULTRA,
        900,
        json!({}),
    )
    .await;
    h.add_account(
        "st-poor-0123456789abcdef",
        "poor@example.com",
        ULTRA,
        50,
        json!({}),
    )
    .await;
    h.add_account(
        "st-mid-0123456789abcdef",
        "mid@example.com",
        ULTRA,
        300,
        json!({}),
    )
    .await;
    for _ in 0..4 {
        assert_eq!(h.chat(body()).await.status, 200);
        assert_eq!(last_generator(&h), "rich@example.com");
    }
}

#[tokio::test(start_paused = true)]
async fn import_export_update_and_project_round_robin() {
    let h = harness_with(&[("PROJECT_POOL_SIZE", "3")], None).await;
    for (st, email) in [
        ("st-x-0123456789abcdef", "x@example.com"),
        ("st-y-0123456789abcdef", "y@example.com"),
    ] {
        h.fake
            .add_account(flow2api_sdk::testing::FakeAccount::new(st, email));
    }
    let r = h
        .admin_call("POST", "/api/tokens/import", Some(json!({"tokens": [
            {"session_token": "st-x-0123456789abcdef", "image_concurrency": 2, "video_enabled": false},
            {"session_token": "st-y-0123456789abcdef"},
            {"email": "nobody"},
            {"session_token": "st-dead-0123456789abcdef"},
        ]})))
        .await;
    let v = r.json();
    assert_eq!(
        (v["added"].as_u64(), v["updated"].as_u64()),
        (Some(2), Some(0)),
        "{v}"
    );
    assert_eq!(v["errors"].as_array().unwrap().len(), 2);
    assert!(
        !r.text().contains("st-dead-0123456789abcdef"),
        "secrets are not echoed"
    );
    // Importing again updates by email.
    let r = h
        .admin_call(
            "POST",
            "/api/tokens/import",
            Some(
                json!({"tokens": [{"session_token": "st-x-0123456789abcdef", "remark": "again",
                    "captcha_method": "CapSolver, yescaptcha", "extension_route_key": "desk"}]}),
            ),
        )
        .await;
    assert_eq!(r.json()["updated"], 1);

    let export = h.admin_call("GET", "/api/tokens/export", None).await.json();
    let x = export
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["email"] == "x@example.com")
        .unwrap()
        .clone();
    assert_eq!(x["session_token"], "st-x-0123456789abcdef");
    assert_eq!(x["image_concurrency"], 2);
    assert_eq!(x["video_enabled"], false);
    assert_eq!(x["remark"], "again");
    // The captcha route survives an export and re-import.
    assert_eq!(x["captcha_method"], "capsolver,yescaptcha");
    assert_eq!(x["extension_route_key"], "desk");
    let r = h
        .admin_call(
            "POST",
            "/api/tokens/import",
            Some(json!({"tokens": [{"session_token": "st-y-0123456789abcdef",
                "captcha_method": "nonsense"}]})),
        )
        .await;
    let v = r.json();
    assert_eq!(v["updated"], 0, "{v}");
    assert!(
        v["errors"][0].as_str().unwrap().contains("captcha_method"),
        "{v}"
    );

    // Three projects each, used in turn.
    let accounts = h.accounts().await;
    let x_view = &accounts["x@example.com"];
    assert_eq!(x_view["projects"].as_array().unwrap().len(), 3);
    let id = x_view["id"].as_str().unwrap();
    let r = h
        .admin_call(
            "PUT",
            &format!("/api/tokens/{id}"),
            Some(json!({"image_enabled": false})),
        )
        .await;
    assert_eq!(r.status, 200);
    h.fake.clear_requests();
    for _ in 0..6 {
        assert_eq!(h.chat(body()).await.status, 200);
        assert_eq!(
            last_generator(&h),
            "y@example.com",
            "x no longer serves images"
        );
    }
    let pids: Vec<String> = h
        .fake
        .requests_to(Endpoint::GenerateImage)
        .iter()
        .map(|r| {
            r.json.as_ref().unwrap()["clientContext"]["projectId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(pids[0..3], pids[3..6]);
    assert_ne!(pids[0], pids[1]);
    assert_ne!(pids[1], pids[2]);
}
