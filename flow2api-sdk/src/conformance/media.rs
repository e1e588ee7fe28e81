//! The [`MediaStore`] suite: whole round trips, streamed uploads and reads, byte ranges
//! (including past the end), per-object TTLs, and purging the expired objects alone.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{check, check_eq, CaseResult, Report, Time};
use crate::seams::{
    boxed_stream, ByteRange, Bytes, Media, MediaRead, MediaStore, MediaUpload, StorageError,
};

/// A media store under test and how time passes for it.
#[derive(Clone)]
pub struct Subject {
    /// The store.
    pub media: Arc<dyn MediaStore>,
    /// Its time.
    pub time: Time,
    /// The shortest TTL the store keeps to (a store over KV keeps everything at least 60 s);
    /// the TTL case waits that long before it expects an object gone.
    pub min_ttl: Duration,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl Subject {
    /// `media` with `time`.
    pub fn new(media: Arc<dyn MediaStore>, time: Time) -> Self {
        Self {
            media,
            time,
            min_ttl: Duration::ZERO,
        }
    }

    /// The same subject over a store that keeps every object at least `min_ttl` (such as
    /// [`StorageMediaStore`](crate::memory::StorageMediaStore) over a backend whose
    /// [`Capabilities::min_ttl`](crate::seams::Capabilities::min_ttl) is not zero).
    pub fn with_min_ttl(mut self, min_ttl: Duration) -> Self {
        self.min_ttl = min_ttl;
        self
    }
}

/// Every case, by name, in the order [`suite`] runs them.
pub const CASES: &[&str] = &["round_trip", "streaming", "ranges", "ttl", "purge"];

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
        "round_trip" => round_trip(s).await.map(|()| None),
        "streaming" => streaming(s).await.map(|()| None),
        "ranges" => ranges(s).await.map(|()| None),
        "ttl" => ttl(s).await,
        "purge" => purge(s).await,
        other => Err(format!("no media case named {other:?}")),
    }
}

fn err(what: &str) -> impl FnOnce(StorageError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// 300,000 bytes of a pattern that differs at every offset of a small range.
fn pattern(len: usize) -> Bytes {
    (0..len).map(|i| (i % 251) as u8).collect::<Vec<_>>().into()
}

async fn read(s: &Subject, id: &str, range: Option<ByteRange>) -> Result<MediaRead, String> {
    s.media.get(id, range).await.map_err(err("get"))
}

async fn round_trip(s: &Subject) -> Result<(), String> {
    let bytes = Bytes::from_static(b"\x89PNG\r\n\x1a\n not really an image");
    let id = s
        .media
        .put(
            Media {
                content_type: "image/png".into(),
                bytes: bytes.clone(),
            }
            .into(),
        )
        .await
        .map_err(err("put"))?;
    check(
        id.len() >= 16 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        || format!("id {id:?} is not URL-safe and long enough to be unguessable"),
    )?;
    let Some(o) = read(s, &id, None).await?.found() else {
        return Err("a stored object was not found".into());
    };
    check_eq(o.content_type.as_str(), "image/png", "content type")?;
    check_eq(o.total_len, bytes.len() as u64, "total length")?;
    check(!o.is_partial(), || "a whole read is partial".into())?;
    check_eq(o.collect().await.map_err(err("read"))?, bytes, "bytes")?;
    let empty = s
        .media
        .put(
            Media {
                content_type: "text/plain".into(),
                bytes: Bytes::new(),
            }
            .into(),
        )
        .await
        .map_err(err("put empty"))?;
    let o = read(s, &empty, None)
        .await?
        .found()
        .ok_or("the empty object is missing")?;
    check_eq(o.total_len, 0, "an empty object's length")?;
    for missing in ["0123456789abcdef0123456789abcdef", "../../etc/passwd", ""] {
        check(
            matches!(read(s, missing, None).await?, MediaRead::Missing),
            || format!("{missing:?} is not missing"),
        )?;
    }
    Ok(())
}

async fn streaming(s: &Subject) -> Result<(), String> {
    let whole = pattern(300_000);
    // Uneven pieces, as a network would deliver them.
    let pieces: Vec<Result<Bytes, StorageError>> = [0, 1, 70_000, 70_001, 200_000, 300_000]
        .windows(2)
        .map(|w| Ok(whole.slice(w[0]..w[1])))
        .collect();
    let upload = MediaUpload::new("video/mp4", boxed_stream(futures::stream::iter(pieces)));
    let id = s.media.put(upload).await.map_err(err("put"))?;
    let o = read(s, &id, None)
        .await?
        .found()
        .ok_or("the streamed object is missing")?;
    check_eq(o.total_len, 300_000, "length of a streamed upload")?;
    check_eq(
        o.collect().await.map_err(err("read"))?,
        whole.clone(),
        "bytes of a streamed upload",
    )?;
    // A stream that breaks off stores nothing readable under an id.
    let broken: Vec<Result<Bytes, StorageError>> = vec![
        Ok(whole.slice(0..10)),
        Err(StorageError("the source broke off".into())),
    ];
    let upload = MediaUpload::new("video/mp4", boxed_stream(futures::stream::iter(broken)));
    check(s.media.put(upload).await.is_err(), || {
        "an upload whose stream failed was stored".into()
    })
}

async fn ranges(s: &Subject) -> Result<(), String> {
    let whole = pattern(300_000);
    let id = s
        .media
        .put(
            Media {
                content_type: "video/mp4".into(),
                bytes: whole.clone(),
            }
            .into(),
        )
        .await
        .map_err(err("put"))?;
    let cases = [
        (ByteRange::Inclusive(0, 0), 0..1),
        (ByteRange::Inclusive(10, 19), 10..20),
        (ByteRange::Inclusive(299_990, 500_000), 299_990..300_000),
        (ByteRange::Inclusive(65_530, 200_010), 65_530..200_011),
        (ByteRange::From(299_000), 299_000..300_000),
        (ByteRange::Last(7), 299_993..300_000),
        (ByteRange::Last(1_000_000), 0..300_000),
    ];
    for (range, want) in cases {
        let o = read(s, &id, Some(range))
            .await?
            .found()
            .ok_or_else(|| format!("{range:?} found nothing"))?;
        check_eq(o.range.clone(), want.clone(), &format!("span of {range:?}"))?;
        check_eq(o.total_len, 300_000, "total length of a range read")?;
        let got = o.collect().await.map_err(err("read"))?;
        let expected = whole.slice(want.start as usize..want.end as usize);
        check(got == expected, || format!("the bytes of {range:?} differ"))?;
    }
    for past in [
        ByteRange::From(300_000),
        ByteRange::Inclusive(400_000, 400_010),
        ByteRange::Last(0),
    ] {
        match read(s, &id, Some(past)).await? {
            MediaRead::Unsatisfiable { total_len } => {
                check_eq(
                    total_len,
                    300_000,
                    "length given with an unsatisfiable range",
                )?;
            }
            other => return Err(format!("{past:?} answered {other:?}, not unsatisfiable")),
        }
    }
    check(
        matches!(
            read(
                s,
                "0123456789abcdef0123456789abcdef",
                Some(ByteRange::From(0))
            )
            .await?,
            MediaRead::Missing
        ),
        || "a range of a missing object is not missing".into(),
    )
}

async fn ttl(s: &Subject) -> CaseResult {
    let upload = |ttl: Option<Duration>| {
        let u = MediaUpload::from(Media {
            content_type: "image/jpeg".into(),
            bytes: Bytes::from_static(b"jpeg"),
        });
        match ttl {
            Some(t) => u.with_ttl(t),
            None => u,
        }
    };
    let short = s
        .media
        .put(upload(Some(Duration::from_secs(1))))
        .await
        .map_err(err("put"))?;
    let long = s
        .media
        .put(upload(Some(Duration::from_secs(3_600))))
        .await
        .map_err(err("put"))?;
    check(read(s, &short, None).await?.found().is_some(), || {
        "a fresh object with a TTL".into()
    })?;
    let lives = s.min_ttl.max(Duration::from_secs(1));
    if !s.time.is_manual() && lives > super::REAL_WAIT_BUDGET {
        return Ok(Some(format!(
            "expiry after {lives:?} is too long to wait for in real time"
        )));
    }
    s.time.pass(lives + Duration::from_millis(300)).await;
    check(
        matches!(read(s, &short, None).await?, MediaRead::Missing),
        || "an object past its own TTL".into(),
    )?;
    check(read(s, &long, None).await?.found().is_some(), || {
        "an object within its TTL".into()
    })?;
    Ok(None)
}

/// `purge_expired` after an object expired: it stays unreadable, and live objects (one with a
/// length announced, one without) are untouched.
async fn purge(s: &Subject) -> CaseResult {
    let bytes = pattern(1_000);
    let upload = |ttl: Duration, announce: bool| {
        let u = MediaUpload::from(Media {
            content_type: "video/mp4".into(),
            bytes: bytes.clone(),
        })
        .with_ttl(ttl);
        if announce {
            u
        } else {
            MediaUpload { len: None, ..u }
        }
    };
    let lives = s.min_ttl.max(Duration::from_secs(1));
    if !s.time.is_manual() && lives > super::REAL_WAIT_BUDGET {
        return Ok(Some(format!(
            "expiry after {lives:?} is too long to wait for in real time"
        )));
    }
    let short = s
        .media
        .put(upload(Duration::from_secs(1), true))
        .await
        .map_err(err("put"))?;
    let mut long = Vec::new();
    for announce in [true, false] {
        let id = s
            .media
            .put(upload(Duration::from_secs(3_600), announce))
            .await
            .map_err(err("put"))?;
        long.push(id);
    }
    s.time.pass(lives + Duration::from_millis(300)).await;
    s.media.purge_expired().await.map_err(err("purge"))?;
    check(
        matches!(read(s, &short, None).await?, MediaRead::Missing),
        || "an expired object after a purge".into(),
    )?;
    for id in &long {
        let o = read(s, id, None)
            .await?
            .found()
            .ok_or("a purge removed a live object")?;
        check_eq(
            o.collect().await.map_err(err("read"))?,
            bytes.clone(),
            "bytes after a purge",
        )?;
    }
    Ok(None)
}
