//! `MEDIA_CACHE`: results copied into the media store and served from `/media/{id}` with
//! ranges and validators; without it, Google's links as before.

mod common;

use common::*;
use flow2api_sdk::testing::{fake_mp4, Endpoint, Fault, FIFE_PNG};
use serde_json::json;

const T2V: &str = "veo_3_1_t2v_fast_landscape";

/// The path of one of the gateway's own links, or a panic naming what it was.
fn own_path(url: &str) -> String {
    let path = url
        .strip_prefix("http://gateway.test")
        .unwrap_or_else(|| panic!("not the gateway's own link: {url}"));
    assert!(path.starts_with("/media/"), "{url}");
    path.to_owned()
}

async fn generated_image(h: &Harness) -> String {
    let r = h
        .chat(json!({"model": "gemini-3.1-flash-image", "messages": user(json!("a red apple"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    image_url(
        r.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    )
}

#[tokio::test(start_paused = true)]
async fn with_the_cache_an_image_links_to_its_copy() {
    let h = harness_with(&[("MEDIA_CACHE", "true")], Some("PAYGATE_TIER_TWO")).await;
    let url = generated_image(&h).await;
    let path = own_path(&url);
    // Copied once, from Google's link.
    assert_eq!(h.fake.requests_to(Endpoint::Fife).len(), 1);
    let got = h.call("GET", &path, &[], None).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.headers["content-type"], "image/png");
    assert_eq!(&got.body[..], FIFE_PNG);
    // b64_json reads the copy, not Google.
    let r = h
        .api(
            "POST",
            "/v1/images/generations",
            Some(json!({"prompt": "a pear", "response_format": "b64_json"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(h.fake.requests_to(Endpoint::Fife).len(), 2, "one copy each");
}

#[tokio::test(start_paused = true)]
async fn without_the_cache_an_image_links_to_google() {
    let h = harness().await;
    let url = generated_image(&h).await;
    assert!(url.starts_with("https://fake.flow.test/fife/"), "{url}");
    assert!(h.fake.requests_to(Endpoint::Fife).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_copy_keeps_the_upstream_link() {
    let h = harness_with(&[("MEDIA_CACHE", "true")], Some("PAYGATE_TIER_TWO")).await;
    h.fake.inject(Endpoint::Fife, Fault::internal(), 1);
    let url = generated_image(&h).await;
    assert!(url.starts_with("https://fake.flow.test/fife/"), "{url}");
}

#[tokio::test(start_paused = true)]
async fn with_the_cache_a_video_is_served_by_range_and_validated() {
    let h = harness_with(
        &[("MEDIA_CACHE", "true"), ("POLL_INTERVAL", "0.01")],
        Some("PAYGATE_TIER_TWO"),
    )
    .await;
    let r = h
        .chat(json!({"model": T2V, "messages": user(json!("a cat chasing butterflies"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let src = content
        .split("src='")
        .nth(1)
        .and_then(|s| s.split('\'').next())
        .unwrap_or_else(|| panic!("no video link in {content}"));
    let path = own_path(src);
    let videos = h.fake.videos();
    let whole = fake_mp4(&videos[0].name);
    assert!(whole.len() > 100);

    let part = h.call("GET", &path, &[("range", "bytes=0-99")], None).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body.len(), 100);
    assert_eq!(&part.body[..], &whole[..100]);
    assert_eq!(part.headers["accept-ranges"], "bytes");
    assert_eq!(
        part.headers["content-range"],
        format!("bytes 0-99/{}", whole.len()).as_str()
    );
    let etag = part.headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let full = h.call("GET", &path, &[], None).await;
    assert_eq!(full.status, 200);
    assert_eq!(full.headers["content-type"], "video/mp4");
    assert_eq!(&full.body[..], &whole[..]);

    for tag in [etag.clone(), format!("\"other\", W/{etag}"), "*".to_owned()] {
        let again = h.call("GET", &path, &[("if-none-match", &tag)], None).await;
        assert_eq!(again.status, 304, "{tag}");
        assert!(again.body.is_empty());
        assert_eq!(again.headers["etag"], etag.as_str());
    }
    let changed = h
        .call(
            "GET",
            &path,
            &[("if-none-match", "\"something-else\"")],
            None,
        )
        .await;
    assert_eq!(changed.status, 200);
    // An If-Range that is not ours sends the whole object.
    let stale = h
        .call(
            "GET",
            &path,
            &[("range", "bytes=0-9"), ("if-range", "\"stale\"")],
            None,
        )
        .await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body.len(), whole.len());
    let head = h.call("HEAD", &path, &[], None).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.headers["content-length"],
        whole.len().to_string().as_str()
    );
    // The OpenAI content route reads the copy too.
    let fetched = h.fake.requests_to(Endpoint::VideoFile).len();
    assert_eq!(fetched, 1, "copied once");
}

#[tokio::test(start_paused = true)]
async fn cached_media_expires_after_media_ttl() {
    let h = harness_with(
        &[("MEDIA_CACHE", "true"), ("MEDIA_TTL", "2")],
        Some("PAYGATE_TIER_TWO"),
    )
    .await;
    let path = own_path(&generated_image(&h).await);
    assert_eq!(h.call("GET", &path, &[], None).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let gone = h.call("GET", &path, &[], None).await;
    assert_eq!(gone.status, 404, "{}", gone.text());
}
