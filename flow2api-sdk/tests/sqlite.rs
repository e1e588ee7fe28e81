//! The SQLite backend: storage semantics (namespaces, prefix lists in key order, TTL by the
//! database's clock, concurrent writers), the coordinator's durable account state across a
//! reopen, and the import of the old JSON state file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flow2api_sdk::memory::ManualClock;
use flow2api_sdk::native::{SqliteCoordinator, SqliteDb, DB_FILE, SNAPSHOT_FILE};
use flow2api_sdk::pool::state::{AccountCommand, TokenState};
use flow2api_sdk::seams::list_all;
use flow2api_sdk::seams::{Bytes, SlotKind, SlotRequest};
use flow2api_sdk::{Clock, Coordinator, Secret, Storage};

const HOUR_MS: u64 = 3_600_000;

fn open(dir: &Path, clock: &Arc<ManualClock>) -> SqliteDb {
    let clock: Arc<dyn Clock> = clock.clone();
    SqliteDb::open(dir.join(DB_FILE), clock).expect("the database opens")
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn get_put_delete_and_list_in_key_order_per_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let db = open(dir.path(), &clock);
    let records = db.storage("records");
    let sessions = db.storage("sessions");

    for key in [
        "account:b",
        "account:a",
        "account;",
        "accoun",
        "account:c/1",
        "video/x",
    ] {
        records.put(key, b(key), None).await.unwrap();
    }
    sessions.put("account:z", b("other"), None).await.unwrap();
    records
        .put("bin", Bytes::from_static(&[0, 159, 146, 150]), None)
        .await
        .unwrap();

    assert_eq!(
        list_all(&records, "account:").await.unwrap(),
        ["account:a", "account:b", "account:c/1"],
        "only the prefix's keys, in key order, and none of another namespace"
    );
    assert_eq!(list_all(&records, "").await.unwrap().len(), 7);
    assert_eq!(list_all(&sessions, "").await.unwrap(), ["account:z"]);
    assert_eq!(
        list_all(&records, "nothing").await.unwrap(),
        Vec::<String>::new()
    );

    assert_eq!(
        records.get("account:a").await.unwrap(),
        Some(b("account:a"))
    );
    assert_eq!(
        records.get("bin").await.unwrap().unwrap(),
        &[0, 159, 146, 150][..],
        "values are bytes, not text"
    );
    assert_eq!(sessions.get("account:a").await.unwrap(), None);
    records.put("account:a", b("again"), None).await.unwrap();
    assert_eq!(records.get("account:a").await.unwrap(), Some(b("again")));

    records.delete("account:a").await.unwrap();
    records.delete("account:a").await.unwrap();
    assert_eq!(records.get("account:a").await.unwrap(), None);
    assert_eq!(
        list_all(&records, "account:").await.unwrap(),
        ["account:b", "account:c/1"]
    );
    let keys = vec![
        "account:b".to_owned(),
        "gone".to_owned(),
        "video/x".to_owned(),
    ];
    assert_eq!(
        records.get_many(&keys).await.unwrap(),
        vec![Some(b("account:b")), None, Some(b("video/x"))]
    );

    // Committed writes are in the file: a second handle on it reads them.
    drop((records, sessions, db));
    let again = open(dir.path(), &clock);
    assert_eq!(
        again.storage("records").get("account:b").await.unwrap(),
        Some(b("account:b"))
    );
    assert_eq!(
        again.storage("sessions").get("account:z").await.unwrap(),
        Some(b("other"))
    );
}

#[tokio::test]
async fn entries_expire_by_the_clock_and_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let db = open(dir.path(), &clock);
    let s = db.storage("sessions");
    s.put("session:short", b("1"), Some(Duration::from_secs(10)))
        .await
        .unwrap();
    s.put("session:long", b("2"), Some(Duration::from_secs(100)))
        .await
        .unwrap();
    s.put("session:ever", b("3"), None).await.unwrap();
    // A put without a TTL makes a key permanent again.
    s.put(
        "session:made-permanent",
        b("4"),
        Some(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    s.put("session:made-permanent", b("4"), None).await.unwrap();

    clock.advance(Duration::from_millis(9_999));
    assert_eq!(s.get("session:short").await.unwrap(), Some(b("1")));
    clock.advance(Duration::from_millis(1));
    assert_eq!(
        s.get("session:short").await.unwrap(),
        None,
        "absent at its expiry"
    );
    assert_eq!(
        list_all(&s, "session:").await.unwrap(),
        ["session:ever", "session:long", "session:made-permanent"]
    );
    assert_eq!(
        s.get_many(&["session:short".to_owned(), "session:long".to_owned()])
            .await
            .unwrap(),
        vec![None, Some(b("2"))]
    );
    assert_eq!(
        db.sweep_expired().await.unwrap(),
        1,
        "the expired row is deleted"
    );

    // A write sweeps by itself once a minute has passed since the last sweep.
    clock.advance(Duration::from_secs(100));
    s.put("session:new", b("5"), None).await.unwrap();
    assert_eq!(
        db.sweep_expired().await.unwrap(),
        0,
        "the put already swept the long entry"
    );
    assert_eq!(
        list_all(&s, "session:").await.unwrap(),
        ["session:ever", "session:made-permanent", "session:new"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_from_many_tasks_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let db = open(dir.path(), &clock);
    let tasks: Vec<_> = (0..32)
        .map(|t| {
            let s = db.storage("records");
            tokio::spawn(async move {
                for i in 0..25 {
                    s.put(&format!("k:{t:02}:{i:02}"), b(&format!("{t}/{i}")), None)
                        .await
                        .unwrap();
                    // Reads interleave with the writes of other tasks.
                    assert_eq!(
                        s.get(&format!("k:{t:02}:{i:02}")).await.unwrap(),
                        Some(b(&format!("{t}/{i}"))),
                        "a writer reads its own write"
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    drop(db);
    let db = open(dir.path(), &clock);
    let s = db.storage("records");
    let keys = list_all(&s, "k:").await.unwrap();
    assert_eq!(keys.len(), 32 * 25);
    let values = s.get_many(&keys).await.unwrap();
    for (k, v) in keys.iter().zip(values) {
        let (t, i) = k[2..].split_once(':').unwrap();
        let want = format!(
            "{}/{}",
            t.parse::<u32>().unwrap(),
            i.parse::<u32>().unwrap()
        );
        assert_eq!(v, Some(b(&want)), "{k}");
    }
}

fn acquire(kind: SlotKind, lease_id: &str, limit: Option<u32>) -> AccountCommand {
    AccountCommand::Acquire {
        request: SlotRequest {
            kind,
            limit,
            lease_ms: HOUR_MS,
        },
        lease_id: lease_id.to_owned(),
    }
}

#[tokio::test]
async fn coordinator_keeps_cooldown_errors_token_and_video_leases_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let db = open(dir.path(), &clock);
    let coord = SqliteCoordinator::open(&db).await.unwrap();
    let a = "acct-a";
    assert!(
        coord
            .apply(a, acquire(SlotKind::Image, "img", Some(2)))
            .await
            .unwrap()
            .ok
    );
    assert!(
        coord
            .apply(a, acquire(SlotKind::Video, "vid", Some(1)))
            .await
            .unwrap()
            .ok
    );
    let token = TokenState {
        at: Secret::new("ya29.token"),
        expires_ms: Some(2_000_000),
    };
    coord
        .apply(
            a,
            AccountCommand::FinishRefresh {
                token: Some(token.clone()),
            },
        )
        .await
        .unwrap();
    // Usage alone is not written at once; it rides along with the next durable change.
    coord
        .apply(a, AccountCommand::Success { release: None })
        .await
        .unwrap();
    let counted = AccountCommand::Failure {
        counted: true,
        cooldown_ms: None,
        reason: "upstream 500".into(),
        ban_threshold: 10,
        release: None,
    };
    coord.apply(a, counted.clone()).await.unwrap();
    coord.apply(a, counted).await.unwrap();
    let quota = AccountCommand::Failure {
        counted: false,
        cooldown_ms: Some(HOUR_MS),
        reason: "quota".into(),
        ban_threshold: 10,
        release: None,
    };
    let before = coord.apply(a, quota).await.unwrap().status;
    assert!(
        coord
            .apply(a, AccountCommand::BeginRefresh { lock_ms: HOUR_MS })
            .await
            .unwrap()
            .ok
    );
    // Another account, changed only by image work: nothing of it needs keeping.
    assert!(
        coord
            .apply("acct-b", acquire(SlotKind::Image, "i2", None))
            .await
            .unwrap()
            .ok
    );
    assert_eq!(before.image_in_flight, 1);
    assert_eq!(before.video_in_flight, 1);
    assert_eq!(before.consecutive_errors, 2);

    // The process dies: nothing is closed or flushed.
    drop(coord);
    drop(db);
    clock.advance(Duration::from_secs(60));
    let db = open(dir.path(), &clock);
    let coord = SqliteCoordinator::open(&db).await.unwrap();
    let after = coord.apply(a, AccountCommand::Status).await.unwrap().status;
    assert_eq!(
        after.cooldown_until_ms, before.cooldown_until_ms,
        "cooldown kept"
    );
    assert!(after.cooling_down(clock.now_ms()));
    assert_eq!(after.cooldown_reason.as_deref(), Some("quota"));
    assert_eq!(after.consecutive_errors, 2, "consecutive errors kept");
    assert_eq!(after.error_count, 3);
    assert_eq!(
        after.use_count, 1,
        "usage written with the failures after it"
    );
    assert_eq!(after.token, Some(token), "the access token kept");
    assert!(!after.refreshing, "the refresh lock died with its holder");
    assert_eq!(
        after.image_in_flight, 0,
        "the image lease died with its request"
    );
    assert_eq!(after.video_in_flight, 1, "the video job's lease is kept");
    assert!(
        coord
            .apply(
                a,
                AccountCommand::Renew {
                    lease_id: "vid".into(),
                    lease_ms: HOUR_MS
                }
            )
            .await
            .unwrap()
            .ok,
        "the resumed job renews its lease"
    );
    let b_status = coord
        .apply("acct-b", AccountCommand::Status)
        .await
        .unwrap()
        .status;
    assert_eq!(b_status.image_in_flight, 0);

    // Changes after the reopen are kept too (versions go on from the stored ones).
    coord.apply(a, AccountCommand::Reset).await.unwrap();
    coord
        .apply(
            a,
            AccountCommand::Release {
                lease_id: "vid".into(),
            },
        )
        .await
        .unwrap();
    drop(coord);
    let coord = SqliteCoordinator::open(&db).await.unwrap();
    let last = coord.apply(a, AccountCommand::Status).await.unwrap().status;
    assert_eq!(last.consecutive_errors, 0);
    assert!(!last.cooling_down(clock.now_ms()));
    assert_eq!(last.video_in_flight, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_account_stay_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let db = open(dir.path(), &clock);
    let coord = Arc::new(SqliteCoordinator::open(&db).await.unwrap());
    let tasks: Vec<_> = (0..16)
        .map(|t| {
            let coord = coord.clone();
            tokio::spawn(async move {
                let mut held = 0;
                for i in 0..20 {
                    let fail = AccountCommand::Failure {
                        counted: true,
                        cooldown_ms: None,
                        reason: "x".into(),
                        ban_threshold: 0,
                        release: None,
                    };
                    coord.apply("hot", fail).await.unwrap();
                    let id = format!("v{t}-{i}");
                    if coord
                        .apply("hot", acquire(SlotKind::Video, &id, Some(3)))
                        .await
                        .unwrap()
                        .ok
                    {
                        held += 1;
                        let release = AccountCommand::Release { lease_id: id };
                        coord.apply("hot", release).await.unwrap();
                    }
                }
                held
            })
        })
        .collect();
    let mut acquired = 0;
    for t in tasks {
        acquired += t.await.unwrap();
    }
    assert!(acquired > 0);
    let live = coord
        .apply("hot", AccountCommand::Status)
        .await
        .unwrap()
        .status;
    assert_eq!(live.error_count, 16 * 20);
    assert_eq!(live.video_in_flight, 0);
    drop(coord);
    let coord = SqliteCoordinator::open(&db).await.unwrap();
    let stored = coord
        .apply("hot", AccountCommand::Status)
        .await
        .unwrap()
        .status;
    assert_eq!(
        stored.error_count,
        16 * 20,
        "the last write is the latest state"
    );
    assert_eq!(stored.consecutive_errors, 16 * 20);
    assert_eq!(stored.video_in_flight, 0);
}

fn namespace_of(key: &str) -> &'static str {
    if flow2api_sdk::jobs::is_job_key(key) {
        "jobs"
    } else {
        "records"
    }
}

const SNAPSHOT: &str = r#"{
  "version": 1,
  "entries": [
    {"key": "account:1", "text": "{\"id\":\"1\",\"st\":\"s\"}"},
    {"key": "bin", "base64": "AJ+Slg=="},
    {"key": "idem/ab", "text": "video_1", "expires_ms": 999999999999},
    {"key": "old", "text": "gone", "expires_ms": 500},
    {"key": "video/video_1", "text": "{}"}
  ]
}"#;

#[tokio::test]
async fn the_old_state_file_is_imported_once_then_renamed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SNAPSHOT_FILE), SNAPSHOT).unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let db = open(dir.path(), &clock);
    // The database wins over the file for keys it already has.
    db.storage("records")
        .put("bin", b("newer"), None)
        .await
        .unwrap();

    let report = db
        .import_snapshot(dir.path(), namespace_of)
        .await
        .unwrap()
        .expect("a file to import");
    assert_eq!(
        (report.imported, report.already_present, report.expired),
        (3, 1, 1)
    );
    assert_eq!(report.renamed_to, dir.path().join("store.json.imported"));
    assert!(!dir.path().join(SNAPSHOT_FILE).exists());
    assert!(report.renamed_to.exists());

    let records = db.storage("records");
    let jobs = db.storage("jobs");
    assert_eq!(list_all(&records, "").await.unwrap(), ["account:1", "bin"]);
    assert_eq!(records.get("bin").await.unwrap(), Some(b("newer")));
    assert_eq!(
        records.get("account:1").await.unwrap(),
        Some(b(r#"{"id":"1","st":"s"}"#))
    );
    assert_eq!(
        list_all(&jobs, "").await.unwrap(),
        ["idem/ab", "video/video_1"]
    );
    clock.advance(Duration::from_millis(999_999_999_999));
    assert_eq!(
        jobs.get("idem/ab").await.unwrap(),
        None,
        "expiries imported"
    );

    assert_eq!(
        db.import_snapshot(dir.path(), namespace_of).await.unwrap(),
        None,
        "nothing to import the second time"
    );
}

#[tokio::test]
async fn a_damaged_state_file_is_an_error_and_stays_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SNAPSHOT_FILE);
    std::fs::write(&path, r#"{"version":1,"entries":["#).unwrap();
    let db = open(dir.path(), &Arc::new(ManualClock::new(0)));
    assert!(db.import_snapshot(dir.path(), namespace_of).await.is_err());
    assert!(path.exists());
    assert_eq!(
        list_all(&db.storage("records"), "").await.unwrap(),
        Vec::<String>::new()
    );
}

/// The whole host: an old state file under the data directory becomes the database, and the
/// accounts are there after a restart.
#[cfg(feature = "native")]
#[tokio::test]
async fn host_imports_the_state_file_and_keeps_accounts_across_restarts() {
    use flow2api_sdk::native::{Host, HostOptions};
    use flow2api_sdk::Config;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(SNAPSHOT_FILE), SNAPSHOT).unwrap();
    let config = Config::default;
    let options = || HostOptions::in_memory().with_data_dir(dir.path());

    let host = Host::open(config(), options()).await.unwrap();
    let ids: Vec<String> = host
        .app()
        .pool()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, ["1"]);
    host.close().await.unwrap();
    assert!(dir.path().join(DB_FILE).exists());
    assert!(dir.path().join("store.json.imported").exists());

    let host = Host::open(config(), options()).await.unwrap();
    assert_eq!(host.app().pool().list().await.unwrap().len(), 1);
    host.close().await.unwrap();
}

/// The seams' conformance suites, run on SQLite as on every other backend.
#[cfg(feature = "testing")]
mod conformance {
    use std::sync::Arc;

    use flow2api_sdk::memory::ManualClock;
    use flow2api_sdk::native::{SqliteCoordinator, SqliteDb};
    use flow2api_sdk::seams::Capabilities;
    use flow2api_sdk::testing::conformance::{coordinator, storage, Outcome, Time};
    use flow2api_sdk::Storage;

    /// A database in a fresh directory that outlives the test (tests are short-lived
    /// processes; the OS temp dir is theirs to litter).
    fn db(clock: Arc<ManualClock>) -> SqliteDb {
        let dir = tempfile::tempdir().unwrap().keep();
        SqliteDb::open(dir.join("flow2api.db"), clock).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_storage_passes_the_storage_suite() {
        let report = storage::suite(|| async {
            let clock = Arc::new(ManualClock::new(1_000_000));
            let store = db(clock.clone()).storage("records");
            assert_eq!(store.capabilities(), Capabilities::strong());
            storage::Subject::new(Arc::new(store), Time::Manual(clock))
        })
        .await;
        report.assert_passed();
        assert!(
            report
                .cases
                .iter()
                .all(|(n, o)| *o == Outcome::Passed || *n == "min_ttl"),
            "{report}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_coordinator_passes_the_coordinator_suite() {
        let report = coordinator::suite(|| async {
            let clock = Arc::new(ManualClock::new(1_000_000));
            let coordinator = SqliteCoordinator::open(&db(clock.clone())).await.unwrap();
            coordinator::Subject::new(Arc::new(coordinator), Time::Manual(clock))
        })
        .await;
        report.assert_passed();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_logs_pass_the_log_store_suite() {
        use flow2api_sdk::testing::conformance::logs;
        let report = logs::suite(|| async {
            let clock = Arc::new(ManualClock::new(1_000_000));
            logs::Subject::new(Arc::new(db(clock).logs()))
        })
        .await;
        report.assert_passed();
        assert!(
            report.cases.iter().all(|(_, o)| *o == Outcome::Passed),
            "{report}"
        );
    }

    /// The log survives a reopen: rows, counters and the next id.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_logs_survive_a_reopen() {
        use flow2api_sdk::logs::{LogFilter, LogRecord, LogStore, Retention};
        let clock = Arc::new(ManualClock::new(1_000_000));
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("flow2api.db");
        let row = LogRecord {
            created_at_ms: 1_000_000,
            updated_at_ms: 1_001_000,
            operation: "generate_image".into(),
            status_code: 200,
            ..LogRecord::default()
        };
        let first = {
            let db = SqliteDb::open(&path, clock.clone()).unwrap();
            db.logs()
                .append(row.clone(), Retention::default())
                .await
                .unwrap()
        };
        let db = SqliteDb::open(&path, clock).unwrap();
        let logs = db.logs();
        let listed = logs.list(&LogFilter::default(), None, 10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, first);
        assert_eq!(logs.stats(0).await.unwrap().total.images, 1);
        let second = logs.append(row, Retention::default()).await.unwrap();
        assert!(second > first);
    }
}
