//! Captcha accounting across processes: what one process (at the edge, one isolate or one job
//! object) counts reaches the shared totals every other one reads.

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
