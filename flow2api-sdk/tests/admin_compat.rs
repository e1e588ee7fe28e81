//! The original's admin config routes (`/api/admin/config`, `/api/admin/apikey`,
//! `/api/config/generation`, `/api/call-logic/config`, `/api/cache/*`, `/api/token-refresh/*`,
//! `/api/system/info`, `/api/stats`, per-account `refresh-credits`/`refresh-at`) over the
//! settings store, and the audit list of admin changes.

mod common;

use common::*;
use serde_json::{json, Value};

fn setting(settings: &Value, name: &str) -> Value {
    settings["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .clone()
}

#[tokio::test(start_paused = true)]
async fn generation_config_is_the_settings_store_under_the_originals_names() {
    let h = harness().await;
    for path in ["/api/config/generation", "/api/generation/timeout"] {
        let v = h.admin_call("GET", path, None).await.json();
        assert_eq!(v["success"], true);
        assert_eq!(v["config"]["image_timeout"], 300, "{v}");
        assert_eq!(v["config"]["max_retries"], 3);
        assert_eq!(v["config"]["video_timeout"], 600, "{v}");
    }
    let r = h
        .admin_call(
            "POST",
            "/api/config/generation",
            Some(json!({"image_timeout": 120, "video_timeout": 1500, "max_retries": 5})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["config"]["image_timeout"], 120);
    assert_eq!(v["config"]["video_timeout"], 1500);
    assert_eq!(h.app.config().image_timeout.as_secs(), 120);
    assert_eq!(h.app.config().video_timeout.as_secs(), 1500);
    assert_eq!(h.app.config().max_retries, 5);
    let s = h.admin_call("GET", "/api/settings", None).await.json();
    assert_eq!(setting(&s, "IMAGE_TIMEOUT")["source"], "override");
    assert_eq!(setting(&s, "FLOW_MAX_RETRIES")["value"], "5");
    // The alias writes too.
    let r = h
        .admin_call(
            "POST",
            "/api/generation/timeout",
            Some(json!({"image_timeout": 90.5})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["config"]["image_timeout"], 90.5);

    // Validation errors are 400 with success false, and change nothing.
    for bad in [
        json!({"max_retries": 0}),
        json!({"max_retries": "many"}),
        json!({"image_timeout": 5}),
        json!({"image_timeout": -1}),
        json!({"video_timeout": "soon"}),
        json!({"video_timeout": 10}),
        json!([1]),
    ] {
        let r = h
            .admin_call("POST", "/api/config/generation", Some(bad.clone()))
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["success"], false, "{bad}");
        assert!(r.json()["message"].is_string());
    }
    assert_eq!(h.app.config().max_retries, 5);
}

#[tokio::test(start_paused = true)]
async fn the_api_key_rotates_at_once_and_is_shown_masked() {
    let h = harness().await;
    let v = h.admin_call("GET", "/api/admin/config", None).await.json();
    assert_eq!(v["admin_username"], "admin");
    assert_eq!(v["error_ban_threshold"], 3);
    assert_eq!(v["debug_enabled"], false);
    assert!(!v.to_string().contains(API_KEY), "{v}");
    assert!(v["api_key"].as_str().unwrap().contains('…'), "{v}");

    let new_key = "sk-rotated-0123456789abcdef";
    for bad in [
        json!({}),
        json!({"new_api_key": ""}),
        json!({"new_api_key": "a b"}),
    ] {
        let r = h.admin_call("POST", "/api/admin/apikey", Some(bad)).await;
        assert_eq!(r.status, 400, "{}", r.text());
        assert_eq!(r.json()["success"], false);
    }
    let r = h
        .admin_call(
            "POST",
            "/api/admin/apikey",
            Some(json!({"new_api_key": new_key})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains(new_key), "{}", r.text());
    assert_eq!(r.json()["api_key"], "sk-rot…cdef");

    let old = h.api("GET", "/v1/models", None).await;
    assert_eq!(old.status, 401, "{}", old.text());
    let auth = format!("Bearer {new_key}");
    let new = h
        .call("GET", "/v1/models", &[("authorization", &auth)], None)
        .await;
    assert_eq!(new.status, 200, "{}", new.text());
    let s = h.admin_call("GET", "/api/settings", None).await;
    assert!(!s.text().contains(new_key));

    let r = h
        .admin_call(
            "POST",
            "/api/admin/config",
            Some(json!({"error_ban_threshold": 7})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(h.app.config().error_ban_threshold, 7);
    for bad in [
        json!({}),
        json!({"error_ban_threshold": -1}),
        json!({"error_ban_threshold": "x"}),
    ] {
        let r = h.admin_call("POST", "/api/admin/config", Some(bad)).await;
        assert_eq!(r.status, 400, "{}", r.text());
    }
}

#[tokio::test(start_paused = true)]
async fn call_mode_cache_and_token_refresh() {
    let h = harness().await;
    let v = h
        .admin_call("GET", "/api/call-logic/config", None)
        .await
        .json();
    assert_eq!(v["config"]["call_mode"], "default");
    assert_eq!(v["config"]["polling_mode_enabled"], false);
    let r = h
        .admin_call(
            "POST",
            "/api/call-logic/config",
            Some(json!({"call_mode": "polling"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["config"]["call_mode"], "polling");
    assert_eq!(
        h.app.config().selection_strategy,
        flow2api_sdk::config::Strategy::RoundRobin
    );
    let r = h
        .admin_call(
            "POST",
            "/api/call-logic/config",
            Some(json!({"call_mode": "fastest"})),
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["success"], false);

    let v = h.admin_call("GET", "/api/cache/config", None).await.json();
    assert_eq!(v["config"]["enabled"], false);
    assert_eq!(v["config"]["timeout"], 86400);
    assert_eq!(v["config"]["base_url"], "");
    assert_eq!(v["config"]["effective_base_url"], "http://gateway.test");
    let r = h
        .admin_call("POST", "/api/cache/enabled", Some(json!({"enabled": true})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(h.app.config().media_cache);
    let r = h
        .admin_call(
            "POST",
            "/api/cache/config",
            Some(json!({"timeout": 7200, "base_url": "https://cdn.example.test/flow"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["config"]["effective_base_url"],
        "https://cdn.example.test/flow"
    );
    assert_eq!(h.app.config().media_ttl.as_secs(), 7200);
    let r = h
        .admin_call("POST", "/api/cache/base-url", Some(json!({"base_url": ""})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(h.app.config().public_base_url, None);
    for (path, bad) in [
        ("/api/cache/config", json!({"timeout": 0})),
        ("/api/cache/config", json!({"timeout": "x"})),
        ("/api/cache/config", json!({"base_url": "ftp://x"})),
        ("/api/cache/enabled", json!({"enabled": "yes"})),
        ("/api/cache/base-url", json!({})),
    ] {
        let r = h.admin_call("POST", path, Some(bad.clone())).await;
        assert_eq!(r.status, 400, "{path} {bad}: {}", r.text());
        assert_eq!(r.json()["success"], false);
    }

    let v = h
        .admin_call("GET", "/api/token-refresh/config", None)
        .await
        .json();
    assert_eq!(v["config"]["at_auto_refresh_enabled"], true);
    assert_eq!(v["config"]["protocol_refresh_enabled"], false);
    let r = h
        .admin_call(
            "POST",
            "/api/token-refresh/enabled",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = h
        .admin_call(
            "POST",
            "/api/token-refresh/enabled",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = h
        .admin_call(
            "POST",
            "/api/token-refresh/config",
            Some(json!({"refresh_interval_minutes": 30})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test(start_paused = true)]
async fn system_info_stats_and_the_per_account_refreshes() {
    let h = harness().await;
    let id = h.accounts().await["alice@example.com"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("x"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    let v = h.admin_call("GET", "/api/system/info", None).await.json();
    assert_eq!(v["info"]["total_tokens"], 1, "{v}");
    assert_eq!(v["info"]["active_tokens"], 1);
    assert!(v["info"]["total_credits"].as_i64().unwrap() > 0, "{v}");
    // The request log's row is written in the background, just after the answer.
    let mut v = h.admin_call("GET", "/api/stats", None).await.json();
    for _ in 0..50 {
        if v["total_images"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        v = h.admin_call("GET", "/api/stats", None).await.json();
    }
    assert_eq!(v["total_tokens"], 1, "{v}");
    assert_eq!(v["total_generations"], 1, "{v}");
    assert_eq!(v["total_errors"], 0);
    // From the request log's counters: the one image, today.
    assert_eq!(v["total_images"], 1, "{v}");
    assert_eq!(v["today_images"], 1, "{v}");
    assert_eq!(v["today_videos"], 0, "{v}");

    let r = h
        .admin_call("POST", &format!("/api/tokens/{id}/refresh-credits"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["credits"].is_i64(), "{}", r.text());
    let r = h
        .admin_call("POST", &format!("/api/tokens/{id}/refresh-at"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["token"]["email"], "alice@example.com");
    assert!(r.json()["token"]["at_expires"].is_string(), "{}", r.text());
    let r = h
        .admin_call("POST", "/api/tokens/nope/refresh-at", None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[tokio::test(start_paused = true)]
async fn every_admin_change_is_audited_newest_first_without_values() {
    let h = harness().await;
    let id = h.accounts().await["alice@example.com"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = "sk-audited-0123456789abcdef";
    let calls: [(&str, String, Option<Value>); 5] = [
        (
            "POST",
            "/api/admin/apikey".into(),
            Some(json!({"new_api_key": key})),
        ),
        (
            "PATCH",
            "/api/settings".into(),
            Some(json!({"values": {"MAX_IMAGES": "4"}})),
        ),
        ("POST", format!("/api/tokens/{id}/disable"), None),
        ("POST", format!("/api/tokens/{id}/enable"), None),
        ("DELETE", format!("/api/tokens/{id}"), None),
    ];
    for (method, path, body) in calls {
        let r = h.admin_call(method, &path, body).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
    }
    // Refusals and reads are no changes.
    h.admin_call("POST", "/api/admin/apikey", Some(json!({})))
        .await;
    h.admin_call("GET", "/api/stats", None).await;

    let r = h.admin_call("GET", "/api/audit", None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!r.text().contains(key));
    let entries = r.json()["entries"].as_array().unwrap().clone();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            format!("DELETE /api/tokens/{id}").as_str(),
            &format!("POST /api/tokens/{id}/enable"),
            &format!("POST /api/tokens/{id}/disable"),
            "PATCH /api/settings",
            "POST /api/admin/apikey",
            // The harness's own account.
            "POST /api/tokens",
        ]
    );
    assert_eq!(entries[0]["account"], id.as_str());
    assert_eq!(entries[3]["settings"], json!(["MAX_IMAGES"]));
    assert_eq!(entries[4]["settings"], json!(["API_KEY"]));
    assert_eq!(entries[5]["account"], id.as_str());
    assert!(entries[0]["at"].as_str().unwrap().ends_with('Z'));

    // Tenant keys too: the route, never the key.
    let r = h
        .admin_call("POST", "/api/keys", Some(json!({"name": "audited"})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let minted = r.json()["key"].as_str().unwrap().to_owned();
    let r = h.admin_call("GET", "/api/audit?limit=1", None).await;
    assert_eq!(r.json()["entries"][0]["action"], "POST /api/keys");
    assert!(!r.text().contains(&minted));

    let r = h.admin_call("GET", "/api/audit?limit=2", None).await;
    assert_eq!(r.json()["entries"].as_array().unwrap().len(), 2);
    let r = h.admin_call("GET", "/api/audit?limit=0", None).await;
    assert_eq!(r.status, 400);
}

#[tokio::test(start_paused = true)]
async fn the_audit_list_is_bounded() {
    let h = harness().await;
    for n in 0..205 {
        let v = 1 + n % 30;
        let r = h
            .admin_call(
                "POST",
                "/api/admin/config",
                Some(json!({"error_ban_threshold": v})),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let r = h.admin_call("GET", "/api/audit?limit=200", None).await;
    let entries = r.json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 200);
    assert!(entries
        .iter()
        .all(|e| e["action"] == "POST /api/admin/config"));
}
