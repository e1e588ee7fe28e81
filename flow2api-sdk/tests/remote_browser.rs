//! The `remote_browser` captcha method against the fake browser service: the token and the
//! browser identity reach the submit, the service hears `prefill`, `finish` and `error`, a
//! chain falls through when no browser is free, and video submits are preceded by the web
//! app's warm-up (W1–W5).

mod common;

use std::time::Duration;

use common::*;
use flow2api_sdk::testing::{
    fake_solver_key, Endpoint, Fault, RecordedRequest, SolverFault, FAKE_REMOTE_BROWSER,
    REMOTE_BROWSER_LANGUAGE, REMOTE_BROWSER_PLATFORM, REMOTE_BROWSER_USER_AGENT,
};
use serde_json::{json, Value};

const IMAGE: &str = "gemini-3.1-flash-image-landscape";

async fn setup(method: &str, extra: &[(&str, &str)]) -> Harness {
    let key = fake_solver_key(FAKE_REMOTE_BROWSER);
    let capsolver = fake_solver_key("capsolver");
    let capsolver_base = "https://fake.flow.test/capsolver";
    let mut all = vec![
        ("CAPTCHA_METHOD", method),
        ("REMOTE_BROWSER_BASE_URL", "https://fake.flow.test/rb/"),
        ("REMOTE_BROWSER_API_KEY", key.as_str()),
        ("CAPSOLVER_API_KEY", capsolver.as_str()),
        ("CAPSOLVER_BASE_URL", capsolver_base),
        ("POLL_INTERVAL", "0.01"),
    ];
    all.extend_from_slice(extra);
    harness_with(&all, Some("PAYGATE_TIER_TWO")).await
}

fn token_of(r: &RecordedRequest) -> String {
    r.json.as_ref().unwrap()["clientContext"]["recaptchaContext"]["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn image(h: &Harness) -> Reply {
    h.chat(json!({"model": IMAGE, "messages": user(json!("a lighthouse"))}))
        .await
}

/// The remote browser calls, in order, as `(endpoint, path tail, body)`.
fn service_calls(h: &Harness) -> Vec<(Endpoint, String, Value)> {
    h.fake
        .requests()
        .into_iter()
        .filter(|r| {
            matches!(
                r.endpoint,
                Endpoint::RemoteBrowserSolve
                    | Endpoint::RemoteBrowserPrefill
                    | Endpoint::RemoteBrowserFinish
                    | Endpoint::RemoteBrowserError
            )
        })
        .map(|r| {
            let tail = r.path.rsplit_once("/api/v1/").unwrap().1.to_owned();
            (r.endpoint, tail, r.json.unwrap_or_default())
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_submit_presents_the_remote_browsers_token_and_identity() {
    // One project, so that the second image is for the same (project, action, account).
    let h = setup("remote_browser", &[("PROJECT_POOL_SIZE", "1")]).await;
    let r = image(&h).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let gens = h.fake.requests_to(Endpoint::GenerateImage);
    assert_eq!(gens.len(), 1);
    let g = &gens[0];
    assert!(
        token_of(g).contains("-fake-remote_browser-"),
        "{}",
        token_of(g)
    );
    assert_eq!(g.header("user-agent"), Some(REMOTE_BROWSER_USER_AGENT));
    assert_eq!(g.header("accept-language"), Some(REMOTE_BROWSER_LANGUAGE));
    assert_eq!(
        g.header("sec-ch-ua-platform"),
        Some(REMOTE_BROWSER_PLATFORM)
    );
    assert!(g
        .header("cookie")
        .unwrap_or_default()
        .contains("NID=fake-nid-"));
    assert!(h.fake.rejections().is_empty(), "{:?}", h.fake.rejections());

    let calls = service_calls(&h);
    let kinds: Vec<Endpoint> = calls.iter().map(|c| c.0).collect();
    assert_eq!(
        kinds,
        [
            Endpoint::RemoteBrowserPrefill,
            Endpoint::RemoteBrowserSolve,
            Endpoint::RemoteBrowserFinish
        ]
    );
    let solve = &calls[1].2;
    assert_eq!(solve["action"], "IMAGE_GENERATION");
    assert!(solve["project_id"].as_str().is_some_and(|p| !p.is_empty()));
    let accounts = h.accounts().await;
    assert_eq!(solve["token_id"], accounts["alice@example.com"]["id"]);
    assert_eq!(calls[2].2, json!({"status": "success"}));
    // Bearer key on every call; never in the recorded gateway output.
    for r in h.fake.requests_to(Endpoint::RemoteBrowserSolve) {
        assert_eq!(
            r.header("authorization").map(str::to_owned),
            Some(format!("Bearer {}", fake_solver_key(FAKE_REMOTE_BROWSER)))
        );
    }
    assert!(!r.text().contains(&fake_solver_key(FAKE_REMOTE_BROWSER)));

    // A second image within 8 s: no second prefill.
    h.fake.clear_requests();
    assert_eq!(image(&h).await.status, 200);
    assert!(h
        .fake
        .requests_to(Endpoint::RemoteBrowserPrefill)
        .is_empty());
    tokio::time::sleep(Duration::from_secs(9)).await;
    h.fake.clear_requests();
    assert_eq!(image(&h).await.status, 200);
    assert_eq!(h.fake.requests_to(Endpoint::RemoteBrowserPrefill).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_token_is_reported_as_an_error_and_solved_again() {
    let h = setup("remote_browser", &[]).await;
    h.fake
        .inject(Endpoint::GenerateImage, Fault::unusual_activity(), 1);
    let r = image(&h).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let calls = service_calls(&h);
    let kinds: Vec<Endpoint> = calls.iter().map(|c| c.0).collect();
    assert_eq!(
        kinds,
        [
            Endpoint::RemoteBrowserPrefill,
            Endpoint::RemoteBrowserSolve,
            Endpoint::RemoteBrowserFinish,
            Endpoint::RemoteBrowserError,
            Endpoint::RemoteBrowserSolve,
            Endpoint::RemoteBrowserFinish,
        ]
    );
    assert_eq!(calls[2].2, json!({"status": "error"}));
    assert_eq!(
        calls[3].2["error_reason"], "PUBLIC_ERROR_UNUSUAL_ACTIVITY",
        "{:?}",
        calls[3]
    );
    // The error is reported for the session that failed, not the next one.
    assert_eq!(calls[2].1, calls[3].1.replace("/error", "/finish"));
    assert_ne!(calls[2].1, calls[5].1);
    let stats = h.admin_call("GET", "/api/captcha/stats", None).await.json();
    assert_eq!(stats["solvers"]["remote_browser"]["solves"], 2, "{stats}");
    assert_eq!(
        stats["solvers"]["remote_browser"]["google_rejected"], 1,
        "{stats}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_chain_falls_through_when_no_browser_is_free() {
    let h = setup("remote_browser,capsolver", &[]).await;
    h.fake
        .set_solver_fault(FAKE_REMOTE_BROWSER, Some(SolverFault::NoSlot));
    let r = image(&h).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let g = &h.fake.requests_to(Endpoint::GenerateImage)[0];
    assert!(token_of(g).contains("-fake-capsolver-"), "{}", token_of(g));
    // No finish for a solve that never happened at the browser service.
    assert!(h.fake.requests_to(Endpoint::RemoteBrowserFinish).is_empty());
    let stats = h.admin_call("GET", "/api/captcha/stats", None).await.json();
    assert_eq!(
        stats["solvers"]["remote_browser"]["failures_by_kind"]["no_capacity"], 1,
        "{stats}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wrong_key_is_a_captcha_failure_not_the_accounts() {
    let h = setup("remote_browser", &[("REMOTE_BROWSER_API_KEY", "wrong")]).await;
    let r = image(&h).await;
    assert_error(&r, 503, Some("captcha_failed"));
    assert!(r.text().contains("HTTP 401"), "{}", r.text());
    assert!(!r.text().contains("wrong"), "{}", r.text());
    let accounts = h.accounts().await;
    let a = accounts.values().next().unwrap();
    assert_eq!(a["status"], "active", "{a}");
    // Counted in the unfiltered total only, as every failed request is; never towards a ban.
    assert_eq!(a["consecutive_error_count"], 0, "{a}");
}

#[tokio::test(start_paused = true)]
async fn a_video_submit_follows_the_web_apps_warm_up() {
    let h = setup("remote_browser", &[]).await;
    let r = h
        .api(
            "POST",
            "/v1/videos",
            Some(json!({"model": "veo_3_1_t2v_fast_landscape", "prompt": "waves"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    for _ in 0..20_000 {
        let v = h.api("GET", &format!("/v1/videos/{id}"), None).await.json();
        if v["status"] == "completed" {
            break;
        }
        assert_ne!(v["status"], "failed", "{v}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let all = h.fake.requests();
    let seq: Vec<&RecordedRequest> = all
        .iter()
        .filter(|r| {
            matches!(
                r.endpoint,
                Endpoint::WarmUp | Endpoint::RemoteBrowserSolve | Endpoint::GenerateVideoText
            )
        })
        .collect();
    let tails: Vec<&str> = seq
        .iter()
        .map(|r| r.path.rsplit(['/', ':']).next().unwrap())
        .collect();
    assert_eq!(
        tails,
        [
            "solve",
            "general.fetchUserPreferences",
            "videoFx.getFlowAppConfig",
            "videoFx.getUserSettings",
            "general.submitBatchLog",
            "checkAppAvailability",
            "batchAsyncGenerateVideoText"
        ]
    );
    for w in &seq[1..6] {
        assert_eq!(w.header("user-agent"), Some(REMOTE_BROWSER_USER_AGENT));
        assert_eq!(w.header("origin"), Some("https://labs.google"));
    }
    assert!(seq[1].header("cookie").unwrap().contains(ST));
    assert!(seq[5].header("authorization").is_none());
    let session = seq[6].json.as_ref().unwrap()["clientContext"]["sessionId"].clone();
    assert_eq!(
        seq[4].json.as_ref().unwrap()["json"]["appEvents"][0]["eventMetadata"]["sessionId"],
        session
    );
}

#[tokio::test(start_paused = true)]
async fn the_score_test_and_the_probe_ask_the_browser_service() {
    let h = setup("remote_browser", &[]).await;
    let r = h
        .admin_call(
            "POST",
            "/api/captcha/score-test",
            Some(json!({"action": "login"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["method"], "remote_browser");
    assert_eq!(v["verify_result"]["score"], 0.9);
    assert!(v.get("token").is_none(), "{v}");
    let asked = &h.fake.requests_to(Endpoint::RemoteBrowserCustomScore)[0];
    let asked = asked.json.as_ref().unwrap();
    assert_eq!(asked["action"], "login");
    assert_eq!(
        asked["website_key"],
        "6LcR_okUAAAAAPYrPe-HK_0RULO1aZM15ENyM-Mf"
    );

    let stats = h.admin_call("GET", "/api/captcha/stats", None).await.json();
    assert_eq!(stats["remote_browser"]["up"], true, "{stats}");
    h.fake
        .set_solver_fault(FAKE_REMOTE_BROWSER, Some(SolverFault::NoSlot));
    let stats = h.admin_call("GET", "/api/captcha/stats", None).await.json();
    assert_eq!(stats["remote_browser"]["up"], false, "{stats}");
}

#[tokio::test(start_paused = true)]
async fn at_start_each_accounts_project_is_prefilled() {
    let h = setup("capsolver", &[]).await;
    let accounts = h.accounts().await;
    let alice = &accounts["alice@example.com"];
    let id = alice["id"].as_str().unwrap().to_owned();
    // No account's chain includes the remote browser: nothing to prefill.
    assert_eq!(h.app.prefill_captcha().await.unwrap(), 0);
    assert!(service_calls(&h).is_empty());

    // The account's own chain names it: its current project is prefilled for images.
    let put = h
        .admin_call(
            "PUT",
            &format!("/api/tokens/{id}"),
            Some(json!({"captcha_method": "remote_browser,capsolver"})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(h.app.prefill_captcha().await.unwrap(), 1);
    let calls = service_calls(&h);
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].0, Endpoint::RemoteBrowserPrefill);
    let project = h.app.pool().get(&id).await.unwrap().projects[0].clone();
    assert_eq!(
        calls[0].2,
        json!({"project_id": project, "action": "IMAGE_GENERATION", "token_id": id})
    );

    // A disabled account is left alone.
    h.admin_call("POST", &format!("/api/tokens/{id}/disable"), None)
        .await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    h.fake.clear_requests();
    assert_eq!(h.app.prefill_captcha().await.unwrap(), 0);
    assert!(service_calls(&h).is_empty());
}
