//! The captcha admin routes: the accounting across processes (what one process — at the edge,
//! one isolate or one job object — counts reaches the shared totals every other one reads) and
//! the original's `/api/captcha/config` over the settings store.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test(start_paused = true)]
async fn every_process_reads_the_same_totals() {
    let h = harness().await;
    let stores = Stores::new(h.clock.clone());
    let cfg = config(&[], &h.fake);
    let build = || {
        stores
            .attach(builder(cfg.clone(), &h.fake, h.clock.clone()))
            .build()
            .unwrap()
    };
    let one = logged_in(build(), h.fake.clone(), h.clock.clone()).await;
    let two = logged_in(build(), h.fake.clone(), h.clock.clone()).await;
    let added = one
        .admin_call("POST", "/api/tokens", Some(json!({"st": ST})))
        .await;
    assert_eq!(added.status, 200, "{}", added.text());
    let r = one
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The first flush of a process is due at once; it runs in the background.
    tokio::time::sleep(Duration::from_millis(50)).await;

    let seen = two
        .admin_call("GET", "/api/captcha/stats", None)
        .await
        .json();
    assert_eq!(seen["scope"], "shared");
    assert_eq!(seen["solvers"]["yescaptcha"]["solves"], 1, "{seen}");
    let accounts = seen["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "{seen}");
    assert_eq!(accounts[0]["email"], "alice@example.com");
    assert_eq!(accounts[0]["solves"], 1);

    // A second image within the flush interval is not flushed yet, but the process that
    // counted it includes it when it is asked (it flushes before reading).
    let r = one
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("y"))}))
        .await;
    assert_eq!(r.status, 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let seen = two
        .admin_call("GET", "/api/captcha/stats", None)
        .await
        .json();
    assert_eq!(seen["solvers"]["yescaptcha"]["solves"], 1, "{seen}");
    let seen = one
        .admin_call("GET", "/api/captcha/stats", None)
        .await
        .json();
    assert_eq!(seen["solvers"]["yescaptcha"]["solves"], 2, "{seen}");
    // Nothing counted twice.
    let seen = two
        .admin_call("GET", "/api/captcha/stats", None)
        .await
        .json();
    assert_eq!(seen["solvers"]["yescaptcha"]["solves"], 2, "{seen}");
}

#[tokio::test(start_paused = true)]
async fn the_captcha_config_reads_and_writes_the_settings_store() {
    let h = harness().await;
    let v = h
        .admin_call("GET", "/api/captcha/config", None)
        .await
        .json();
    assert_eq!(v["success"], true);
    assert_eq!(v["captcha_method"], "yescaptcha");
    // A secret is masked; numbers are numbers; unset is empty.
    let shown = v["yescaptcha_api_key"].as_str().unwrap().to_owned();
    assert!(
        shown.contains('…') && !shown.contains("fake-yescaptcha-key"),
        "{v}"
    );
    assert_eq!(v["captcha_max_polls"], 40);
    assert_eq!(v["remote_browser_timeout"], 60);
    assert_eq!(v["capsolver_api_key"], "");

    // The whole form sent back, as a console does: the masked key keeps the real one, the
    // browser-mode fields are ignored.
    let mut form = v.clone();
    form["captcha_method"] = json!("capsolver,yescaptcha");
    form["capsolver_api_key"] = json!("new-capsolver-key");
    form["remote_browser_timeout"] = json!(30);
    form["browser_count"] = json!(2);
    form.as_object_mut().unwrap().remove("success");
    let r = h
        .admin_call("POST", "/api/captcha/config", Some(form))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let settings = h.admin_call("GET", "/api/settings", None).await.json();
    let by_name = |n: &str| {
        settings["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("CAPTCHA_METHOD")["value"], "capsolver,yescaptcha");
    assert_eq!(by_name("REMOTE_BROWSER_TIMEOUT")["value"], "30");
    assert_eq!(by_name("YESCAPTCHA_API_KEY")["source"], "environment");
    assert_eq!(by_name("CAPSOLVER_API_KEY")["source"], "override");
    // Generation still solves with the real YesCaptcha key.
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    for (bad, says) in [
        (
            json!({"captcha_method": "remote_browser"}),
            "remote_browser_base_url",
        ),
        (json!({"captcha_method": "nonsense"}), "CAPTCHA_METHOD"),
        (
            json!({"remote_browser_timeout": 1}),
            "REMOTE_BROWSER_TIMEOUT",
        ),
        (json!({"no_such_field": 1}), "no_such_field"),
        (json!([1]), "JSON object"),
    ] {
        let r = h
            .admin_call("POST", "/api/captcha/config", Some(bad.clone()))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        let v = r.json();
        assert_eq!(v["success"], false);
        assert!(v["message"].as_str().unwrap().contains(says), "{bad}: {v}");
    }
    let r = h
        .admin_call(
            "POST",
            "/api/captcha/config",
            Some(json!({"captcha_method": "remote_browser",
                "remote_browser_base_url": "http://127.0.0.1:9", "remote_browser_api_key": "k"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = h
        .admin_call("GET", "/api/captcha/config", None)
        .await
        .json();
    assert_eq!(v["captcha_method"], "remote_browser");
    assert_eq!(
        v["remote_browser_api_key"], "…",
        "a short secret shows nothing: {v}"
    );
}
