//! Tenants through `App::handle` against FakeFlow: keys made, listed, changed and revoked by the
//! admin; their daily quotas, concurrency and model patterns; their jobs invisible to each
//! other (and all visible to the root key); their usage per day.

mod common;

use std::time::Duration;

use common::*;
use flow2api_sdk::seams::Clock;
use flow2api_sdk::testing::{Endpoint, Fault};
use serde_json::{json, Value};

const IMAGE: &str = "gemini-3.1-flash-image-landscape";
const T2V: &str = "veo_3_1_t2v_fast_landscape";

async fn setup() -> Harness {
    harness_with(&[("POLL_INTERVAL", "0.01")], Some("PAYGATE_TIER_TWO")).await
}

/// Makes a key; its id and the key itself.
async fn make_key(h: &Harness, body: Value) -> (String, String) {
    let r = h.admin_call("POST", "/api/keys", Some(body)).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    )
}

async fn as_key(h: &Harness, key: &str, method: &str, path: &str, body: Option<Value>) -> Reply {
    let auth = format!("Bearer {key}");
    h.call(method, path, &[("authorization", &auth)], body)
        .await
}

async fn image(h: &Harness, key: &str) -> Reply {
    as_key(
        h,
        key,
        "POST",
        "/v1/chat/completions",
        Some(json!({"model": IMAGE, "messages": user(json!("a red apple"))})),
    )
    .await
}

async fn video(h: &Harness, key: &str) -> Reply {
    as_key(
        h,
        key,
        "POST",
        "/v1/videos",
        Some(json!({"model": T2V, "prompt": "a lighthouse"})),
    )
    .await
}

async fn wait_done(h: &Harness, key: &str, id: &str) -> Value {
    for _ in 0..20_000 {
        let v = as_key(h, key, "GET", &format!("/v1/videos/{id}"), None)
            .await
            .json();
        if matches!(v["status"].as_str(), Some("completed" | "failed")) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("job {id} never finished");
}

async fn usage(h: &Harness, id: &str) -> Vec<Value> {
    let r = h
        .admin_call("GET", &format!("/api/keys/{id}/usage"), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["days"].as_array().unwrap().clone()
}

#[tokio::test(start_paused = true)]
async fn keys_are_made_shown_once_listed_changed_and_revoked() {
    let h = setup().await;
    // Admin routes need a session.
    let anon = h
        .call("POST", "/api/keys", &[], Some(json!({"name": "x"})))
        .await;
    assert_eq!(anon.status, 401, "{}", anon.text());
    let r = h
        .admin_call(
            "POST",
            "/api/keys",
            Some(json!({"name": "team a", "quota": {"images_per_day": 5}, "models": ["gemini-*"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("sk-f2a-") && key.len() == 7 + 64,
        "{created}"
    );
    assert_eq!(created["prefix"], key[..13]);
    assert_eq!(created["name"], "team a");
    assert_eq!(created["quota"]["images_per_day"], 5);
    assert!(created["quota"]["videos_per_day"].is_null());
    assert_eq!(created["models"], json!(["gemini-*"]));
    assert!(created["created_at"].is_string());

    // Listed, never with the key.
    let list = h.admin_call("GET", "/api/keys", None).await;
    assert_eq!(list.status, 200);
    assert!(!list.text().contains(&key), "{}", list.text());
    assert!(!list.text().contains(&key[13..]), "{}", list.text());
    let data = list.json()["data"].as_array().unwrap().clone();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["id"], id.as_str());
    assert!(data[0].get("key").is_none());

    // The key works where the root key does: Bearer, x-goog-api-key, ?key=.
    let models = as_key(&h, &key, "GET", "/v1/models", None).await;
    assert_eq!(models.status, 200, "{}", models.text());
    let goog = h
        .call("GET", "/v1/models", &[("x-goog-api-key", &key)], None)
        .await;
    assert_eq!(goog.status, 200);
    let query = h
        .call("GET", &format!("/v1/models?key={key}"), &[], None)
        .await;
    assert_eq!(query.status, 200);

    // Changed (PUT and PATCH alike).
    let put = h
        .admin_call(
            "PUT",
            &format!("/api/keys/{id}"),
            Some(json!({"name": "team b"})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(put.json()["name"], "team b");
    assert_eq!(put.json()["models"], json!(["gemini-*"]));
    let patch = h
        .admin_call(
            "PATCH",
            &format!("/api/keys/{id}"),
            Some(json!({"models": []})),
        )
        .await;
    assert_eq!(patch.json()["models"], json!(["*"]));
    let bad = h
        .admin_call("PUT", &format!("/api/keys/{id}"), Some(json!({"name": ""})))
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let unknown = h
        .admin_call("PUT", "/api/keys/key_0000000000000000", Some(json!({})))
        .await;
    assert_eq!(unknown.status, 404);

    // Revoked: refused from the next request on.
    let del = h
        .admin_call("DELETE", &format!("/api/keys/{id}"), None)
        .await;
    assert_eq!(del.status, 200, "{}", del.text());
    let after = as_key(&h, &key, "GET", "/v1/models", None).await;
    assert_error(&after, 401, Some("invalid_api_key"));
    let list = h.admin_call("GET", "/api/keys", None).await;
    assert!(list.json()["data"].as_array().unwrap().is_empty());
    // The root key is untouched.
    assert_eq!(h.api("GET", "/v1/models", None).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn a_keys_jobs_are_its_own_and_the_root_key_sees_all() {
    let h = setup().await;
    let (_, a) = make_key(&h, json!({"name": "a"})).await;
    let (_, b) = make_key(&h, json!({"name": "b"})).await;
    let r = video(&h, &a).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    wait_done(&h, &a, &id).await;

    for path in [
        format!("/v1/videos/{id}"),
        format!("/v1/videos/{id}/content"),
        format!("/v1beta/files/{id}:download?alt=media"),
        format!("/v1beta/operations/{id}"),
    ] {
        let other = as_key(&h, &b, "GET", &path, None).await;
        assert_eq!(other.status, 404, "{path}: {}", other.text());
        let own = as_key(&h, &a, "GET", &path, None).await;
        assert_eq!(own.status, 200, "{path}: {}", own.text());
        let root = h.api("GET", &path, None).await;
        assert_eq!(root.status, 200, "{path}: {}", root.text());
    }
    // Listings: each key its own, the root key everything.
    let listed = |r: Reply| -> Vec<String> {
        r.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        listed(as_key(&h, &a, "GET", "/v1/videos", None).await),
        vec![id.clone()]
    );
    assert!(listed(as_key(&h, &b, "GET", "/v1/videos", None).await).is_empty());
    assert_eq!(
        listed(h.api("GET", "/v1/videos", None).await),
        vec![id.clone()]
    );

    // Idempotency keys are per tenant: the same one from b makes b's own job.
    let with_key = |key: &str| format!("Bearer {key}");
    let body = json!({"model": T2V, "prompt": "once"});
    let (auth_a, auth_b) = (with_key(&a), with_key(&b));
    let first = h
        .call(
            "POST",
            "/v1/videos",
            &[("authorization", &auth_a), ("idempotency-key", "k1")],
            Some(body.clone()),
        )
        .await;
    let again = h
        .call(
            "POST",
            "/v1/videos",
            &[("authorization", &auth_a), ("idempotency-key", "k1")],
            Some(body.clone()),
        )
        .await;
    let other = h
        .call(
            "POST",
            "/v1/videos",
            &[("authorization", &auth_b), ("idempotency-key", "k1")],
            Some(body),
        )
        .await;
    assert_eq!(first.json()["id"], again.json()["id"]);
    assert_ne!(first.json()["id"], other.json()["id"]);

    // b cannot delete a's job; a can.
    let del = as_key(&h, &b, "DELETE", &format!("/v1/videos/{id}"), None).await;
    assert_eq!(del.status, 404, "{}", del.text());
    let del = as_key(&h, &a, "DELETE", &format!("/v1/videos/{id}"), None).await;
    assert_eq!(del.status, 200, "{}", del.text());
}

#[tokio::test(start_paused = true)]
async fn a_daily_quota_runs_out_until_midnight_utc() {
    let h = setup().await;
    let (id, key) = make_key(
        &h,
        json!({"name": "q", "quota": {"images_per_day": 1, "videos_per_day": 0}}),
    )
    .await;
    let first = image(&h, &key).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let second = image(&h, &key).await;
    let v = assert_error(&second, 429, Some("insufficient_quota"));
    assert_eq!(v["error"]["type"], "insufficient_quota", "{v}");
    let retry: u64 = second.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let to_midnight = 86_400 - (h.clock.now_ms() / 1000) % 86_400;
    assert!(retry.abs_diff(to_midnight) <= 1, "{retry} vs {to_midnight}");

    // Gemini's dialect: RESOURCE_EXHAUSTED.
    let g = h
        .call(
            "POST",
            "/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning",
            &[("x-goog-api-key", &key)],
            Some(json!({"instances": [{"prompt": "x"}]})),
        )
        .await;
    assert_eq!(g.status, 429, "{}", g.text());
    assert_eq!(g.json()["error"]["status"], "RESOURCE_EXHAUSTED");
    assert!(g.headers.contains_key("retry-after"));

    // The root key has no quota.
    assert_eq!(
        h.chat(json!({"model": IMAGE, "messages": user(json!("x"))}))
            .await
            .status,
        200
    );

    // The next UTC day, the quota is back.
    tokio::time::advance(Duration::from_secs(to_midnight + 1)).await;
    let next_day = image(&h, &key).await;
    assert_eq!(next_day.status, 200, "{}", next_day.text());
    let days = usage(&h, &id).await;
    assert_eq!(days.len(), 2, "{days:?}");
    assert_eq!(days[0]["images"], 1);
    assert_eq!(days[1]["images"], 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_jobs_are_limited_and_given_back_at_the_end() {
    let h = setup().await;
    h.fake.set_video_polls(200, 200);
    let (_, key) = make_key(&h, json!({"name": "c", "quota": {"concurrent_jobs": 1}})).await;
    let r = video(&h, &key).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    // Running: another generation of either kind waits for it.
    let busy = image(&h, &key).await;
    let v = assert_error(&busy, 429, Some("rate_limit_exceeded"));
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_error(&video(&h, &key).await, 429, Some("rate_limit_exceeded"));
    wait_done(&h, &key, &id).await;
    let free = image(&h, &key).await;
    assert_eq!(free.status, 200, "{}", free.text());
}

#[tokio::test(start_paused = true)]
async fn model_patterns_limit_the_models() {
    let h = setup().await;
    let (_, key) = make_key(&h, json!({"name": "m", "models": ["veo_3_1_t2v_fast*"]})).await;
    let models = as_key(&h, &key, "GET", "/v1/models", None).await.json();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(!ids.is_empty());
    assert!(
        ids.iter().all(|id| id.starts_with("veo_3_1_t2v_fast")),
        "{ids:?}"
    );
    let all = h.api("GET", "/v1/models", None).await.json();
    assert!(all["data"].as_array().unwrap().len() > ids.len());
    // Gemini's list too: the fast Gemini name (it resolves to a fast t2v model) and the
    // fast t2v ids, nothing else.
    let g = h
        .call("GET", "/v1beta/models", &[("x-goog-api-key", &key)], None)
        .await;
    assert_eq!(g.status, 200, "{}", g.text());
    let names: Vec<String> = g.json()["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        names.contains(&"models/veo-3.1-fast-generate-preview".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.contains(&"models/veo-3.1-generate-preview".to_owned()),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .all(|n| n == "models/veo-3.1-fast-generate-preview"
                || n.starts_with("models/veo_3_1_t2v_fast")),
        "{names:?}"
    );
    let root = h
        .call(
            "GET",
            "/v1beta/models",
            &[("x-goog-api-key", API_KEY)],
            None,
        )
        .await
        .json();
    assert!(root["models"].as_array().unwrap().len() > names.len() + 2);

    let refused = image(&h, &key).await;
    let v = assert_error(&refused, 403, Some("model_not_allowed"));
    assert_eq!(v["error"]["type"], "permission_error");
    // No account was asked.
    assert!(h.fake.requests_to(Endpoint::GenerateImage).is_empty());
    let g = h
        .call(
            "POST",
            "/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
            &[("x-goog-api-key", &key)],
            Some(json!({"instances": [{"prompt": "x"}]})),
        )
        .await;
    assert_eq!(g.status, 403, "{}", g.text());
    assert_eq!(g.json()["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(video(&h, &key).await.status, 200);
}

#[tokio::test(start_paused = true)]
async fn usage_counts_successes_and_failures_per_day() {
    let h = setup().await;
    let (id, key) = make_key(&h, json!({"name": "u"})).await;
    assert!(usage(&h, &id).await.is_empty());
    assert_eq!(image(&h, &key).await.status, 200);
    h.fake.inject(
        Endpoint::GenerateImage,
        Fault::status(400, None, "bad field"),
        1,
    );
    let failed = image(&h, &key).await;
    assert_eq!(failed.status, 502, "{}", failed.text());
    let r = video(&h, &key).await;
    let vid = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(wait_done(&h, &key, &vid).await["status"], "completed");
    // The root key's work is nobody's usage.
    assert_eq!(
        h.chat(json!({"model": IMAGE, "messages": user(json!("x"))}))
            .await
            .status,
        200
    );

    let days = usage(&h, &id).await;
    assert_eq!(days.len(), 1, "{days:?}");
    let today = &days[0];
    assert_eq!(today["images"], 1, "{today}");
    assert_eq!(today["errors"], 1, "{today}");
    assert_eq!(today["videos"], 1, "{today}");
    assert_eq!(today["video_seconds"], 8, "{today}");
    assert_eq!(
        today["date"].as_str().unwrap().len(),
        "2026-12-03".len(),
        "{today}"
    );
    let unknown = h
        .admin_call("GET", "/api/keys/key_0000000000000000/usage", None)
        .await;
    assert_eq!(unknown.status, 404);
}

/// Natively the keys live in the SQLite namespace `tenants`: a key made before a restart works
/// after it, and a revoked one stays revoked.
#[cfg(feature = "native")]
#[tokio::test]
async fn keys_survive_a_restart_of_the_native_host() {
    use std::collections::HashMap;
    use std::sync::Arc;

    use flow2api_sdk::memory::ManualClock;
    use flow2api_sdk::native::{Host, HostOptions, SqliteDb};
    use flow2api_sdk::seams::list_all;
    use flow2api_sdk::tenants::NewKey;
    use flow2api_sdk::Config;

    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let env: HashMap<&str, &str> = [("API_KEY", "root-key")].into_iter().collect();
        Config::from_lookup(|k| env.get(k).map(|v| (*v).to_owned())).unwrap()
    };
    let options = || HostOptions::in_memory().with_data_dir(dir.path());
    let models = |host: &Host, key: &str| {
        let req = http::Request::get("/v1/models")
            .header("authorization", format!("Bearer {key}"))
            .body(bytes::Bytes::new())
            .unwrap();
        let app = host.app().clone();
        async move { app.handle(req).await.status().as_u16() }
    };

    let host = Host::open(config(), options()).await.unwrap();
    let tenants = host.app().tenants();
    let kept = tenants
        .create(NewKey {
            name: "kept".into(),
            ..NewKey::default()
        })
        .await
        .unwrap();
    let revoked = tenants
        .create(NewKey {
            name: "revoked".into(),
            ..NewKey::default()
        })
        .await
        .unwrap();
    tenants.delete(&revoked.tenant.id).await.unwrap();
    assert_eq!(models(&host, kept.key.expose()).await, 200);
    host.close().await.unwrap();

    let host = Host::open(config(), options()).await.unwrap();
    assert_eq!(models(&host, kept.key.expose()).await, 200);
    assert_eq!(models(&host, revoked.key.expose()).await, 401);
    assert_eq!(models(&host, "root-key").await, 200);
    host.close().await.unwrap();

    // In their own namespace of the database, hashed.
    let db = SqliteDb::open(
        dir.path().join("flow2api.db"),
        Arc::new(ManualClock::new(0)),
    )
    .unwrap();
    let keys = list_all(&db.storage("tenants"), "").await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter().all(|k| !k.contains(kept.key.expose())),
        "{keys:?}"
    );
    assert!(list_all(&db.storage("sessions"), "apikey")
        .await
        .unwrap()
        .is_empty());
}

/// Requests racing for the last images of a day: exactly the quota gets through, the rest
/// are refused with 429, and the usage shows the quota.
#[tokio::test(start_paused = true)]
async fn racing_requests_never_go_past_the_quota() {
    let h = setup().await;
    let (id, key) = make_key(&h, json!({"name": "race", "quota": {"images_per_day": 3}})).await;
    let replies = futures::future::join_all((0..10).map(|_| image(&h, &key))).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let refused = replies
        .iter()
        .filter(|r| r.status == 429 && r.json()["error"]["code"] == "insufficient_quota")
        .count();
    assert_eq!(
        (ok, refused),
        (3, 7),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(usage(&h, &id).await[0]["images"], 3);
}
