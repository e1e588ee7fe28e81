//! The [`Storage`] suite: get/put/delete, listing in key order with pages past 1,000 keys,
//! read-your-writes where [`Consistency::Strong`] is claimed, the conditional write, and TTLs
//! (including a backend's minimum TTL). Every case checks the backend against its own
//! [`Capabilities`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::{check, check_eq, namespace, CaseResult, Report, Time};
use crate::seams::{
    list_all, Bytes, Capabilities, Consistency, Expect, ListPage, Storage, MAX_LIST_LIMIT,
};

/// A backend under test and how time passes for it.
#[derive(Clone)]
pub struct Subject {
    /// The backend.
    pub storage: Arc<dyn Storage>,
    /// Its time.
    pub time: Time,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl Subject {
    /// `storage` with `time`.
    pub fn new(storage: Arc<dyn Storage>, time: Time) -> Self {
        Self { storage, time }
    }

    fn caps(&self) -> Capabilities {
        self.storage.capabilities()
    }
}

/// Every case of the suite, by name, in the order [`suite`] runs them.
pub const CASES: &[&str] = &[
    "get_put_delete",
    "list_prefix_order",
    "list_past_1000_keys",
    "list_from_a_key",
    "read_your_writes",
    "conditional_write",
    "conditional_write_race",
    "ttl",
    "min_ttl",
];

/// Keys [`CASES`]' `list_past_1000_keys` writes: one more than a full page.
pub const MANY_KEYS: usize = MAX_LIST_LIMIT + 1;

/// Runs every case against a fresh subject from `factory` and reports each.
pub async fn suite<F, Fut>(factory: F) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = Subject>,
{
    super::run(CASES, |name| {
        let subject = factory();
        async move { case(name, &subject.await).await }
    })
    .await
}

/// Runs the case `name` of [`CASES`] (an unknown name fails).
///
/// # Errors
/// The failed check's message.
pub async fn case(name: &str, s: &Subject) -> CaseResult {
    match name {
        "get_put_delete" => get_put_delete(s).await.map(|()| None),
        "list_prefix_order" => list_prefix_order(s).await.map(|()| None),
        "list_past_1000_keys" => {
            let prefix = namespace();
            seed_keys(s, &prefix, 0..MANY_KEYS).await?;
            check_listing(s, &prefix, MANY_KEYS).await.map(|()| None)
        }
        "list_from_a_key" => list_from_a_key(s).await,
        "read_your_writes" => read_your_writes(s).await,
        "conditional_write" => conditional_write(s).await,
        "conditional_write_race" => conditional_write_race(s).await,
        "ttl" => ttl(s).await,
        "min_ttl" => min_ttl(s).await,
        other => Err(format!("no storage case named {other:?}")),
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn err(what: &str) -> impl FnOnce(crate::seams::StorageError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Runs `f` once on a strongly consistent backend; on an eventually consistent one, again
/// after a pause until it passes or about ten seconds of its time have passed.
async fn eventually<F, Fut>(s: &Subject, mut f: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let tries = match s.caps().consistency {
        Consistency::Strong => 1,
        Consistency::Eventual => 20,
    };
    let mut last = Ok(());
    for i in 0..tries {
        if i > 0 {
            s.time.pass(Duration::from_millis(500)).await;
        }
        last = f().await;
        if last.is_ok() {
            return last;
        }
    }
    last
}

async fn get_put_delete(s: &Subject) -> Result<(), String> {
    let st = &*s.storage;
    let ns = namespace();
    let k = format!("{ns}key");
    let got = st.get(&k).await.map_err(err("get of an absent key"))?;
    check_eq(got, None, "get of an absent key")?;
    st.put(&k, b("one"), None).await.map_err(err("put"))?;
    let k = k.as_str();
    eventually(s, || async move {
        let got = st.get(k).await.map_err(err("get"))?;
        check_eq(got, Some(b("one")), "get after put")
    })
    .await?;
    st.put(k, b("two"), None).await.map_err(err("overwrite"))?;
    eventually(s, || async move {
        let got = st.get(k).await.map_err(err("get"))?;
        check_eq(got, Some(b("two")), "get after overwrite")
    })
    .await?;
    // Values are bytes, not text: invalid UTF-8 and empty values round-trip.
    let binary = Bytes::from_static(&[0xff, 0x00, 0xfe, 0x80, b'"', b'\\']);
    let kb = format!("{ns}binary");
    let ke = format!("{ns}empty");
    st.put(&kb, binary.clone(), None)
        .await
        .map_err(err("put binary"))?;
    st.put(&ke, Bytes::new(), None)
        .await
        .map_err(err("put empty"))?;
    let (kb, ke) = (kb.as_str(), ke.as_str());
    eventually(s, || {
        let binary = binary.clone();
        async move {
            let got = st.get(kb).await.map_err(err("get binary"))?;
            check_eq(got, Some(binary), "binary value")?;
            let got = st.get(ke).await.map_err(err("get empty"))?;
            check_eq(got, Some(Bytes::new()), "empty value")
        }
    })
    .await?;
    let many = st
        .get_many(&[kb.to_owned(), format!("{ns}nothing"), k.to_owned()])
        .await
        .map_err(err("get_many"))?;
    check_eq(
        many,
        vec![Some(binary.clone()), None, Some(b("two"))],
        "get_many, in the order asked",
    )?;
    st.delete(k).await.map_err(err("delete"))?;
    st.delete(k)
        .await
        .map_err(err("deleting an absent key is not an error"))?;
    eventually(s, || async move {
        let got = st.get(k).await.map_err(err("get"))?;
        check_eq(got, None, "get after delete")
    })
    .await
}

async fn list_prefix_order(s: &Subject) -> Result<(), String> {
    let st = &*s.storage;
    let ns = namespace();
    // Written out of order; "a/" sorts before "ab" and "b" is outside the prefix.
    for k in ["b", "ab", "a/1", "a", "a/0", "a/10"] {
        st.put(&format!("{ns}{k}"), b(k), None)
            .await
            .map_err(err("put"))?;
    }
    let prefix = format!("{ns}a");
    let want: Vec<String> = ["a", "a/0", "a/1", "a/10", "ab"]
        .iter()
        .map(|k| format!("{ns}{k}"))
        .collect();
    let (prefix, want) = (prefix.as_str(), &want);
    eventually(s, || async move {
        let all = list_all(st, prefix).await.map_err(err("list"))?;
        check_eq(&all, want, "keys under the prefix, in key order")?;
        // Pages of two, following the cursor.
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = st
                .list(prefix, 2, cursor.as_deref())
                .await
                .map_err(err("list page"))?;
            check(page.keys.len() <= 2, || {
                format!("a page of limit 2 held {} keys", page.keys.len())
            })?;
            pages.push(page.keys);
            match page.cursor {
                Some(c) if pages.len() < 10 => cursor = Some(c),
                Some(_) => return Err("more than 10 pages for 5 keys".into()),
                None => break,
            }
        }
        check_eq(&pages.concat(), want, "the pages, concatenated")
    })
    .await?;
    let none = st
        .list(&format!("{ns}zzz"), 10, None)
        .await
        .map_err(err("list"))?;
    check_eq(none, ListPage::default(), "an empty prefix's page")
}

/// Writes `range` keys `<prefix><i:05>` (value: the index) — a slice of the keys
/// `list_past_1000_keys` needs, for hosts that spread the writes over several invocations.
///
/// # Errors
/// The first failed write.
pub async fn seed_keys(
    s: &Subject,
    prefix: &str,
    range: std::ops::Range<usize>,
) -> Result<(), String> {
    // A few at a time: as fast as one by one on a remote backend, without a thousand
    // concurrent requests.
    let keys: Vec<usize> = range.collect();
    for chunk in keys.chunks(16) {
        let writes = chunk.iter().map(|i| {
            let key = format!("{prefix}{i:05}");
            async move {
                s.storage
                    .put(&key, Bytes::from(i.to_string()), None)
                    .await
                    .map_err(err("seeding"))
            }
        });
        for r in join_all(writes).await {
            r?;
        }
    }
    Ok(())
}

/// Checks that `count` keys seeded by [`seed_keys`] under `prefix` list completely and in
/// order, in pages of at most [`MAX_LIST_LIMIT`] (a first page of a full 1,000, more after
/// it), and through a small limit too.
///
/// # Errors
/// The first failed check.
pub async fn check_listing(s: &Subject, prefix: &str, count: usize) -> Result<(), String> {
    let st = &*s.storage;
    let want: Vec<String> = (0..count).map(|i| format!("{prefix}{i:05}")).collect();
    let want = &want;
    eventually(s, || async move {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            // A limit above the maximum is clamped to it.
            let page = st
                .list(prefix, MAX_LIST_LIMIT + 500, cursor.as_deref())
                .await
                .map_err(err("list"))?;
            check(page.keys.len() <= MAX_LIST_LIMIT, || {
                format!(
                    "a page held {} keys, over {MAX_LIST_LIMIT}",
                    page.keys.len()
                )
            })?;
            pages += 1;
            all.extend(page.keys);
            match page.cursor {
                Some(c) if pages <= count / 10 + 2 => cursor = Some(c),
                Some(_) => return Err(format!("{pages} pages and still a cursor")),
                None => break,
            }
        }
        check(all.len() == want.len(), || {
            format!("listed {} keys of {}", all.len(), want.len())
        })?;
        check(all == *want, || "the keys are not all in key order".into())?;
        if count > MAX_LIST_LIMIT {
            check(pages >= 2, || format!("{count} keys came in one page"))?;
        }
        let all = list_all(st, prefix).await.map_err(err("list_all"))?;
        check(all == *want, || "list_all differs from the pages".into())?;
        // Three pages of 7 continue each other.
        let mut cursor: Option<String> = None;
        let mut small = Vec::new();
        for _ in 0..3 {
            let page = st
                .list(prefix, 7, cursor.as_deref())
                .await
                .map_err(err("list of 7"))?;
            small.extend(page.keys);
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        let n = small.len();
        check(n == count.min(21) && small[..] == want[..n], || {
            format!("pages of 7 gave {n} keys, not the first {}", count.min(21))
        })
    })
    .await
}

/// With [`Capabilities::key_cursors`]: any key given as the cursor, present or not, starts
/// the listing just after it.
async fn list_from_a_key(s: &Subject) -> CaseResult {
    if !s.caps().key_cursors {
        return Ok(Some("the backend's cursors are opaque".into()));
    }
    let st = &*s.storage;
    let ns = namespace();
    for k in ["a", "c", "e", "g"] {
        st.put(&format!("{ns}{k}"), b(k), None)
            .await
            .map_err(err("put"))?;
    }
    let keys = |ks: &[&str]| ks.iter().map(|k| format!("{ns}{k}")).collect::<Vec<_>>();
    let ns = ns.as_str();
    let page = st
        .list(ns, 10, Some(&format!("{ns}c")))
        .await
        .map_err(err("list from a key"))?;
    check_eq(page.keys, keys(&["e", "g"]), "the keys after a present key")?;
    let page = st
        .list(ns, 1, Some(&format!("{ns}d")))
        .await
        .map_err(err("list from a key"))?;
    check_eq(page.keys, keys(&["e"]), "the key after an absent key")?;
    check(page.cursor.is_some(), || {
        "a page that left a key out had no cursor".to_owned()
    })?;
    let page = st
        .list(ns, 10, Some(&format!("{ns}g")))
        .await
        .map_err(err("list from a key"))?;
    check_eq(
        page.keys,
        Vec::<String>::new(),
        "the keys after the last one",
    )?;
    Ok(None)
}

async fn read_your_writes(s: &Subject) -> CaseResult {
    if s.caps().consistency != Consistency::Strong {
        return Ok(Some("the backend is eventually consistent".into()));
    }
    let st = &*s.storage;
    let ns = namespace();
    let k = format!("{ns}counter");
    for i in 0..5 {
        st.put(&k, Bytes::from(i.to_string()), None)
            .await
            .map_err(err("put"))?;
        let got = st.get(&k).await.map_err(err("get"))?;
        check_eq(got, Some(Bytes::from(i.to_string())), "the write just made")?;
        let keys = st.list(&ns, 10, None).await.map_err(err("list"))?.keys;
        check_eq(keys, vec![k.clone()], "the listing right after a write")?;
    }
    st.delete(&k).await.map_err(err("delete"))?;
    check_eq(
        st.get(&k).await.map_err(err("get"))?,
        None,
        "the key right after its delete",
    )?;
    let keys = st.list(&ns, 10, None).await.map_err(err("list"))?.keys;
    check_eq(
        keys,
        Vec::<String>::new(),
        "the listing right after a delete",
    )?;
    Ok(None)
}

async fn conditional_write(s: &Subject) -> CaseResult {
    let st = &*s.storage;
    let ns = namespace();
    let k = format!("{ns}cas");
    if !s.caps().conditional_writes {
        let r = st.put_if(&k, b("x"), None, Expect::Absent).await;
        check(r.is_err(), || {
            format!("put_if answered {r:?} though capabilities say it is unsupported")
        })?;
        check_eq(
            st.get(&k).await.map_err(err("get"))?,
            None,
            "the key after an unsupported put_if",
        )?;
        return Ok(Some(
            "no conditional writes: checked that put_if refuses".into(),
        ));
    }
    let put_if = |v: &'static str, e: Expect| {
        let k = k.clone();
        async move { st.put_if(&k, b(v), None, e).await.map_err(err("put_if")) }
    };
    check_eq(
        put_if("1", Expect::Absent).await?,
        true,
        "put_if absent on a new key",
    )?;
    check_eq(
        put_if("2", Expect::Absent).await?,
        false,
        "put_if absent on a present key",
    )?;
    check_eq(
        st.get(&k).await.map_err(err("get"))?,
        Some(b("1")),
        "value kept",
    )?;
    check_eq(
        put_if("3", Expect::Value(b("nope"))).await?,
        false,
        "put_if with a wrong expected value",
    )?;
    check_eq(
        st.get(&k).await.map_err(err("get"))?,
        Some(b("1")),
        "value kept",
    )?;
    check_eq(
        put_if("4", Expect::Value(b("1"))).await?,
        true,
        "put_if with the current value",
    )?;
    check_eq(
        st.get(&k).await.map_err(err("get"))?,
        Some(b("4")),
        "value replaced",
    )?;
    check_eq(
        put_if("5", Expect::Value(b("1"))).await?,
        false,
        "put_if with the value it replaced",
    )?;
    st.delete(&k).await.map_err(err("delete"))?;
    check_eq(
        put_if("6", Expect::Value(b("4"))).await?,
        false,
        "put_if expecting a value on a deleted key",
    )?;
    check_eq(
        put_if("7", Expect::Absent).await?,
        true,
        "put_if absent after a delete",
    )?;
    check_eq(
        st.get(&k).await.map_err(err("get"))?,
        Some(b("7")),
        "value written",
    )?;
    Ok(None)
}

async fn conditional_write_race(s: &Subject) -> CaseResult {
    if !s.caps().conditional_writes {
        return Ok(Some("no conditional writes".into()));
    }
    let st = &*s.storage;
    let ns = namespace();
    let k = format!("{ns}claim");
    let k = k.as_str();
    let claims = (0..8).map(|i| async move {
        st.put_if(k, Bytes::from(format!("writer {i}")), None, Expect::Absent)
            .await
            .map_err(err("put_if"))
    });
    let won: Vec<bool> = join_all(claims)
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    let winners = won.iter().filter(|w| **w).count();
    check_eq(winners, 1, "concurrent put_if absent: winners")?;
    let i = won.iter().position(|w| *w).unwrap_or_default();
    check_eq(
        st.get(k).await.map_err(err("get"))?,
        Some(Bytes::from(format!("writer {i}"))),
        "the winner's value",
    )?;
    Ok(None)
}

async fn ttl(s: &Subject) -> CaseResult {
    let st = &*s.storage;
    let caps = s.caps();
    let ns = namespace();
    let (k, forever) = (format!("{ns}short"), format!("{ns}forever"));
    let ttl = Duration::from_secs(1);
    let lives = caps.effective_ttl(ttl);
    st.put(&k, b("v"), Some(ttl)).await.map_err(err("put"))?;
    st.put(&forever, b("v"), Some(ttl))
        .await
        .map_err(err("put"))?;
    // A later put without a TTL keeps the value for good.
    st.put(&forever, b("w"), None).await.map_err(err("put"))?;
    let (kr, fr) = (k.as_str(), forever.as_str());
    eventually(s, || async move {
        check_eq(
            st.get(kr).await.map_err(err("get"))?,
            Some(b("v")),
            "fresh entry",
        )
    })
    .await?;
    if s.time.is_manual() {
        // Just before the end of its life it still reads.
        s.time.pass(lives - Duration::from_millis(1)).await;
        if caps.consistency == Consistency::Strong {
            check_eq(
                st.get(kr).await.map_err(err("get"))?,
                Some(b("v")),
                "an entry 1 ms before its TTL ends",
            )?;
        }
        s.time.pass(Duration::from_millis(2)).await;
    } else if lives <= super::REAL_WAIT_BUDGET {
        s.time.pass(lives + Duration::from_millis(200)).await;
    } else {
        return Ok(Some(format!(
            "expiry after {lives:?} is too long to wait for in real time"
        )));
    }
    let ns = ns.as_str();
    eventually(s, || async move {
        check_eq(
            st.get(kr).await.map_err(err("get"))?,
            None,
            "an expired entry",
        )?;
        let keys = list_all(st, ns).await.map_err(err("list"))?;
        check_eq(keys, vec![fr.to_owned()], "the listing after expiry")?;
        check_eq(
            st.get(fr).await.map_err(err("get"))?,
            Some(b("w")),
            "an entry rewritten without a TTL",
        )
    })
    .await?;
    if caps.conditional_writes {
        let claimed = st
            .put_if(kr, b("again"), None, Expect::Absent)
            .await
            .map_err(err("put_if"))?;
        check_eq(claimed, true, "put_if absent on an expired key")?;
    }
    Ok(None)
}

async fn min_ttl(s: &Subject) -> CaseResult {
    let Some(min) = s.caps().min_ttl else {
        return Ok(Some("no minimum TTL".into()));
    };
    let st = &*s.storage;
    let ns = namespace();
    let k = format!("{ns}rounded");
    let kr = k.as_str();
    // Asked for 1 s, kept at least `min`: still there well after 1 s.
    st.put(kr, b("v"), Some(Duration::from_secs(1)))
        .await
        .map_err(err("put"))?;
    let wait = if s.time.is_manual() {
        min - Duration::from_millis(1)
    } else {
        Duration::from_millis(1_500).min(min / 2)
    };
    s.time.pass(wait).await;
    eventually(s, || async move {
        check_eq(
            st.get(kr).await.map_err(err("get"))?,
            Some(b("v")),
            "an entry with a TTL under the minimum, before the minimum",
        )
    })
    .await?;
    if s.time.is_manual() {
        s.time.pass(Duration::from_millis(2)).await;
        eventually(s, || async move {
            check_eq(
                st.get(kr).await.map_err(err("get"))?,
                None,
                "after the minimum",
            )
        })
        .await?;
    }
    Ok(None)
}
