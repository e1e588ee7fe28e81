//! `/health`, `/metrics` and `x-request-id` in process: App → pipeline → FakeFlow.

mod common;

use common::*;
use serde_json::json;

const TOKEN: &str = "metrics-token-0123456789";

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(start_paused = true)]
async fn metrics_need_the_token_and_are_absent_without_one() {
    let h = harness().await;
    let r = h.call("GET", "/metrics", &[], None).await;
    assert_eq!(r.status, 404, "{}", r.text());

    let h = harness_with(&[("METRICS_TOKEN", TOKEN)], Some("PAYGATE_TIER_TWO")).await;
    let r = h.call("GET", "/metrics", &[], None).await;
    assert_eq!(r.status, 401);
    let wrong = bearer("metrics-token-0123456788");
    let r = h
        .call("GET", "/metrics", &[("authorization", &wrong)], None)
        .await;
    assert_eq!(r.status, 401);
    // The API key is not the metrics token.
    let r = h
        .call(
            "GET",
            "/metrics",
            &[("authorization", &bearer(API_KEY))],
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    let r = h
        .call(
            "GET",
            "/metrics",
            &[("authorization", &bearer(TOKEN))],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text();
    assert_eq!(sample(&text, "flow2api_up"), Some(1.0));
    assert_eq!(sample(&text, "flow2api_tokens"), Some(1.0));
    assert_eq!(sample(&text, "flow2api_tokens_active"), Some(1.0));
}

#[tokio::test(start_paused = true)]
async fn a_generation_moves_the_counters() {
    let h = harness_with(&[("METRICS_TOKEN", TOKEN)], Some("PAYGATE_TIER_TWO")).await;
    let model = "gemini-3.1-flash-image-landscape";
    let r = h
        .chat(json!({"model": model, "messages": user(json!("a red apple"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = h
        .call(
            "GET",
            "/metrics",
            &[("authorization", &bearer(TOKEN))],
            None,
        )
        .await;
    let text = r.text();
    let labels = format!("route=\"/v1/chat/completions\",model=\"{model}\",status=\"200\"");
    assert_eq!(
        sample(&text, &format!("flow2api_http_requests_total{{{labels}}}")),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("flow2api_http_request_duration_seconds_count{{{labels}}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("flow2api_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "flow2api_generation_requests_total{generation_type=\"image\",result=\"success\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "flow2api_captcha_solves_total{solver=\"yescaptcha\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // The slot was given back.
    assert_eq!(
        sample(&text, "flow2api_slots_in_use{kind=\"image\"}"),
        Some(0.0)
    );
    // No secret reaches the text.
    for secret in [ST, API_KEY, TOKEN, "secret-pw"] {
        assert!(!text.contains(secret), "{secret} in /metrics");
    }
    // Every sample belongs to a family with help and type.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
            .unwrap_or(name);
        assert!(text.contains(&format!("# HELP {family} ")), "{line}");
    }
}

#[tokio::test(start_paused = true)]
async fn health_counts_accounts_from_the_summary() {
    let h = harness().await;
    let r = h.call("GET", "/health", &[], None).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["backend_running"], true);
    assert_eq!(v["has_active_tokens"], true);
    assert_eq!(v["total_tokens"], 1);
    assert_eq!(v["active_tokens"], 1);
    assert_eq!(v["tokens_missing_at"], 0);
    assert_eq!(v["tokens_expired"], 0);
    assert_eq!(v["captcha_method"], "yescaptcha");
    assert_eq!(v["remote_browser_configured"], false);

    let id = h
        .add_account(
            "st-bob-0123456789abcdef",
            "bob@example.com",
            "PAYGATE_TIER_ONE",
            10,
            json!({}),
        )
        .await;
    let r = h
        .admin_call("POST", &format!("/api/tokens/{id}/disable"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = h.call("GET", "/health", &[], None).await.json();
    assert_eq!(v["total_tokens"], 2);
    assert_eq!(v["active_tokens"], 1);
    let r = h
        .admin_call("DELETE", &format!("/api/tokens/{id}"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = h.call("GET", "/health", &[], None).await.json();
    assert_eq!(v["total_tokens"], 1);
    // No secret in the answer.
    assert!(!r.text().contains(ST));
    let text = h.call("GET", "/health", &[], None).await.text();
    assert!(!text.contains(ST) && !text.contains(API_KEY));
}

#[tokio::test(start_paused = true)]
async fn every_answer_carries_a_request_id() {
    let h = harness().await;
    let r = h
        .call(
            "GET",
            "/health",
            &[("x-request-id", "client-id.1_2-3")],
            None,
        )
        .await;
    assert_eq!(r.headers["x-request-id"], "client-id.1_2-3");
    let r = h
        .call("GET", "/health", &[("x-request-id", "bad id")], None)
        .await;
    let id = r.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 32);
    // Refused from the head (no key) and unknown routes too.
    let r = h.call("GET", "/v1/models", &[], None).await;
    assert_eq!(r.status, 401);
    assert!(r.headers.contains_key("x-request-id"));
    let r = h.call("GET", "/nowhere", &[], None).await;
    assert_eq!(r.status, 404);
    assert!(r.headers.contains_key("x-request-id"));
}
