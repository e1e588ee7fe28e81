//! Account records under racing writers, and the index that keeps selection's cost flat: no
//! update lost, a deleted account never back, the same reads with 1 account or with hundreds
//! more disabled, a damaged index repaired.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use flow2api_sdk::memory::MemoryCoordinator;
use flow2api_sdk::memory::MemoryStorage;
use flow2api_sdk::pool::PoolError;
use flow2api_sdk::pool::{AccountCommand, AccountReply};
use flow2api_sdk::seams::{BoxFuture, Bytes, Coordinator, StorageError};
use flow2api_sdk::testing::{FakeAccount, FakeFlow, ProbeStorage};
use serde_json::json;

/// The gateway over a store that yields before every operation, logged in, with one Ultra account; the store.
async fn racy_harness() -> (Harness, Arc<ProbeStorage>) {
    let clock = Arc::new(TokioClock::new());
    let fake = FakeFlow::new("https://fake.flow.test", clock.clone());
    let mut acct = FakeAccount::new(ST, "alice@example.com");
    acct.tier = "PAYGATE_TIER_TWO".to_owned();
    fake.add_account(acct);
    let storage = Arc::new(ProbeStorage::yielding(Arc::new(MemoryStorage::new(
        clock.clone(),
    ))));
    let app = builder(config(&[], &fake), &fake, clock.clone())
        .storage(storage.clone())
        .build()
        .unwrap();
    let h = logged_in(app, fake, clock).await;
    let added = h
        .admin_call("POST", "/api/tokens", Some(json!({"st": ST})))
        .await;
    assert_eq!(added.status, 200, "{}", added.text());
    (h, storage)
}

async fn first_id(h: &Harness) -> String {
    h.app.pool().list().await.unwrap()[0].id.clone()
}

#[tokio::test]
async fn racing_edits_all_land() {
    let (h, _) = racy_harness().await;
    let pool = h.app.pool();
    let id = first_id(&h).await;
    // Twenty writers, each adding its own mark to the remark, all reading before any writes.
    let edits = (0..20).map(|i| {
        let pool = pool.clone();
        let id = id.clone();
        async move {
            pool.modify(&id, |a| a.remark.push_str(&format!("<{i}>")))
                .await
                .unwrap()
        }
    });
    futures::future::join_all(edits).await;
    let remark = pool.get(&id).await.unwrap().remark;
    for i in 0..20 {
        assert!(
            remark.contains(&format!("<{i}>")),
            "edit {i} lost: {remark}"
        );
    }
    // Admin edits and a background disable racing: both land.
    let path = format!("/api/tokens/{id}");
    let (a, b) = tokio::join!(
        h.admin_call("PUT", &path, Some(json!({"remark": "from the admin"}))),
        pool.deactivate(&id, "disabled: test".into()),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    b.unwrap();
    let account = pool.get(&id).await.unwrap();
    assert_eq!(account.remark, "from the admin");
    assert!(!account.active);
}

#[tokio::test]
async fn a_deleted_account_never_comes_back() {
    let (h, _) = racy_harness().await;
    let pool = h.app.pool();
    let id = first_id(&h).await;
    let writers = (0..10).map(|i| {
        let pool = pool.clone();
        let id = id.clone();
        async move {
            let _ = if i % 2 == 0 {
                pool.set_active(&id, true).await
            } else {
                pool.modify(&id, |a| a.remark = format!("w{i}")).await
            };
        }
    });
    let delete = async {
        tokio::task::yield_now().await;
        pool.delete(&id).await.unwrap();
    };
    tokio::join!(futures::future::join_all(writers), delete);
    // Writers that lost the race found nothing to change.
    assert!(matches!(pool.get(&id).await, Err(PoolError::NotFound(_))));
    assert!(matches!(
        pool.modify(&id, |a| a.remark.clear()).await,
        Err(PoolError::NotFound(_))
    ));
    assert!(pool.list().await.unwrap().is_empty());
    let r = h
        .chat(
            json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("a cat"))}),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    // And the same ST can be added again, as a new account.
    let again = h
        .admin_call("POST", "/api/tokens", Some(json!({"st": ST})))
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
}

#[tokio::test]
async fn selection_reads_the_same_with_hundreds_of_disabled_accounts() {
    let (h, storage) = racy_harness().await;
    let body =
        json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("a cat"))});
    // Warm: the token is fresh and the index built.
    assert_eq!(h.chat(body.clone()).await.status, 200);
    let before = storage.ops();
    assert_eq!(h.chat(body.clone()).await.status, 200);
    let alone = storage.ops() - before;

    let pool = h.app.pool();
    let template = pool.list().await.unwrap()[0].clone();
    for i in 0..300 {
        let mut a = template.clone();
        a.id = format!("off{i:04}");
        a.st = flow2api_sdk::Secret::new(format!("st-off-{i}"));
        a.email = format!("off{i}@example.com");
        a.active = false;
        a.status_reason = Some("disabled: by the admin".into());
        storage
            .inner()
            .put(
                &format!("account:{}", a.id),
                Bytes::from(serde_json::to_vec(&a).unwrap()),
                None,
            )
            .await
            .unwrap();
    }
    // Written behind the pool's back: the background pass puts them in the index.
    let report = pool.refresh_due().await.unwrap();
    assert_eq!(report.index_repairs, 600, "{report}");
    let before = storage.ops();
    assert_eq!(h.chat(body).await.status, 200);
    let crowded = storage.ops() - before;
    assert_eq!(
        alone, crowded,
        "storage operations per image: {alone} alone, {crowded} with 300 disabled accounts"
    );
}

#[tokio::test]
async fn a_damaged_index_is_repaired_and_selection_never_trusts_it() {
    let (h, storage) = racy_harness().await;
    let pool = h.app.pool();
    let id = first_id(&h).await;
    let body =
        json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("a cat"))});
    // The account's eligibility key lost: the request still finds it (from the records)…
    storage
        .inner()
        .delete(&format!("index:v1:image:ultra:{id}"))
        .await
        .unwrap();
    // …and a stale key for an account that is gone leads nowhere.
    storage
        .inner()
        .put("index:v1:image:ultra:ghost", Bytes::new(), None)
        .await
        .unwrap();
    let r = h.chat(body.clone()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let report = pool.refresh_due().await.unwrap();
    assert_eq!(report.index_repairs, 2, "{report}");
    assert_eq!(pool.repair_index().await.unwrap(), 0);
    // The background pass compares the whole index at most daily.
    assert_eq!(pool.refresh_due().await.unwrap().index_repairs, 0);
    assert!(storage
        .inner()
        .get(&format!("index:v1:image:ultra:{id}"))
        .await
        .unwrap()
        .is_some());
}

/// A memory coordinator that remembers which accounts it was asked about.
struct Recording {
    inner: MemoryCoordinator,
    asked: Mutex<HashSet<String>>,
}

impl Coordinator for Recording {
    fn apply<'a>(
        &'a self,
        account_id: &'a str,
        command: AccountCommand,
    ) -> BoxFuture<'a, Result<AccountReply, StorageError>> {
        self.asked.lock().unwrap().insert(account_id.to_owned());
        self.inner.apply(account_id, command)
    }
}

#[tokio::test]
async fn a_large_import_answers_202_and_goes_on_in_batches() {
    let clock = Arc::new(TokioClock::new());
    let fake = FakeFlow::new("https://fake.flow.test", clock.clone());
    let coordinator = Arc::new(Recording {
        inner: MemoryCoordinator::new(clock.clone()),
        asked: Mutex::new(HashSet::new()),
    });
    let config = config(
        &[("IMPORT_BATCH_SIZE", "3"), ("PROJECT_POOL_SIZE", "1")],
        &fake,
    );
    let app = builder(config, &fake, clock.clone())
        .coordinator(coordinator.clone())
        .build()
        .unwrap();
    let h = logged_in(app, fake, clock).await;
    let mut items = Vec::new();
    for i in 0..8 {
        let st = format!("st-import-{i}-0123456789abcdef");
        let mut acct = FakeAccount::new(&st, format!("imp{i}@example.com"));
        acct.tier = "PAYGATE_TIER_TWO".to_owned();
        h.fake.add_account(acct);
        items.push(json!({"session_token": st, "video_enabled": i % 2 == 0, "is_active": i != 7}));
    }
    items.push(json!({"session_token": "st-nobody-knows-this-one"}));
    items.push(json!({"remark": "no token"}));
    let r = h
        .admin_call("POST", "/api/tokens/import", Some(json!({"tokens": items})))
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let started = r.json();
    assert_eq!(started["total"], 10);
    assert_eq!(started["status"], "running");
    assert!(started.get("pieces").is_none(), "{started}");
    let id = started["import_id"].as_str().unwrap().to_owned();

    let mut progress = started;
    for _ in 0..200 {
        if progress["status"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = h
            .admin_call("GET", &format!("/api/tokens/import/{id}"), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        progress = r.json();
    }
    assert_eq!(progress["status"], "done", "{progress}");
    // The account imported disabled was never put in its coordinator (at the edge, no Durable
    // Object for it); the others were, with their tokens.
    let records = h.app.pool().list().await.unwrap();
    let asked = coordinator.asked.lock().unwrap().clone();
    for a in &records {
        let want = a.email != "imp7@example.com";
        assert_eq!(asked.contains(&a.id), want, "{} asked: {}", a.email, !want);
    }
    assert_eq!(progress["done"], 10);
    assert_eq!(progress["added"], 8, "{progress}");
    assert_eq!(progress["updated"], 0);
    let errors = progress["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{progress}");
    assert!(
        errors[0].as_str().unwrap().starts_with("item 9:"),
        "{progress}"
    );
    assert!(
        errors[1].as_str().unwrap().starts_with("item 10:"),
        "{progress}"
    );
    assert!(
        !progress.to_string().contains("st-nobody"),
        "no secrets in progress"
    );

    let accounts = h.accounts().await;
    assert_eq!(accounts.len(), 8);
    assert_eq!(accounts["imp1@example.com"]["video_enabled"], false);
    assert_eq!(accounts["imp2@example.com"]["video_enabled"], true);
    // As exported: a disabled account comes back disabled.
    assert_eq!(accounts["imp7@example.com"]["is_active"], false);
    assert_eq!(accounts["imp6@example.com"]["is_active"], true);
    // Unknown or malformed ids are 404.
    for bad in ["import_00ff", "nope", "import_../x"] {
        let r = h
            .admin_call("GET", &format!("/api/tokens/import/{bad}"), None)
            .await;
        assert_eq!(r.status, 404, "{bad}: {}", r.text());
    }
    // A small import keeps the original's synchronous answer.
    let r = h
        .admin_call(
            "POST",
            "/api/tokens/import",
            Some(json!({"tokens": [{"session_token": "st-import-1-0123456789abcdef"}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["updated"], 1);
}
