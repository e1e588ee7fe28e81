//! [`MediaStore`] over an R2 bucket (the binding `MEDIA`): generated images and videos as R2
//! objects, streamed both ways, with ranged reads done by R2 itself.
//!
//! Each object's key is `media/{id}`, and its id begins with its expiry
//! ([`expiring_media_id`]): keys sort by expiry, so a read knows an object has expired without
//! asking R2, and [`purge_expired`](MediaStore::purge_expired) (run by the cron) lists only the
//! expired keys plus one, deleting them a thousand at a time. R2 needs a stream's length before
//! it takes it: an upload that announces its length ([`MediaUpload::len`], a download's
//! `Content-Length`) goes in as a fixed-length stream, any other is read whole first.

use std::time::Duration;

use flow2api_sdk::seams::media::{expiring_media_id, media_id_expiry};
use flow2api_sdk::seams::{
    boxed, boxed_stream, BoxFuture, ByteRange, Bytes, Clock, MediaObject, MediaRead, MediaStore,
    MediaUpload, StorageError,
};
use futures::StreamExt;
use worker::{Bucket, Data, FixedLengthStream, HttpMetadata, Object, Range};

use crate::clock::WorkerClock;

/// The prefix of every key this store writes: other objects in the bucket are left alone.
const PREFIX: &str = "media/";
/// R2 lists and deletes at most a thousand keys per call.
const PAGE: u32 = 1000;
/// Pages one purge goes through at most, to stay within an invocation's subrequests; the
/// next cron goes on.
const MAX_PURGE_PAGES: usize = 20;

/// Media in an R2 bucket, each object kept for its upload's TTL or `ttl`.
#[derive(Debug)]
pub struct R2MediaStore {
    bucket: Bucket,
    ttl: Duration,
}

impl R2MediaStore {
    /// The store over `bucket`, keeping objects `ttl` unless their upload says otherwise.
    pub fn new(bucket: Bucket, ttl: Duration) -> Self {
        Self { bucket, ttl }
    }
}

fn r2_error(op: &str, e: worker::Error) -> StorageError {
    StorageError(format!("R2 {op}: {e}"))
}

fn key(id: &str) -> String {
    format!("{PREFIX}{id}")
}

fn now_ms() -> u64 {
    WorkerClock.now_ms()
}

/// An object's bytes as the SDK's stream.
fn body_of(object: &Object) -> Result<flow2api_sdk::seams::MediaStream, StorageError> {
    let Some(body) = object.body() else {
        return Ok(boxed_stream(futures::stream::empty()));
    };
    let stream = body.stream().map_err(|e| r2_error("read", e))?;
    Ok(boxed_stream(stream.map(|chunk| {
        chunk.map(Bytes::from).map_err(|e| r2_error("read", e))
    })))
}

impl MediaStore for R2MediaStore {
    fn put(&self, upload: MediaUpload) -> BoxFuture<'_, Result<String, StorageError>> {
        boxed(async move {
            let ttl = upload.ttl.unwrap_or(self.ttl);
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            let id = expiring_media_id(now_ms().saturating_add(ttl_ms))?;
            let data = match upload.len {
                Some(len) => {
                    let chunks = upload.body.map(|chunk| {
                        chunk
                            .map(|b| b.to_vec())
                            .map_err(|e| worker::Error::RustError(e.0))
                    });
                    Data::Stream(FixedLengthStream::wrap(chunks, len))
                }
                None => {
                    let mut body = upload.body;
                    let mut whole = Vec::new();
                    while let Some(chunk) = body.next().await {
                        whole.extend_from_slice(&chunk?);
                    }
                    Data::Bytes(whole)
                }
            };
            self.bucket
                .put(key(&id), data)
                .http_metadata(HttpMetadata {
                    content_type: Some(upload.content_type),
                    ..HttpMetadata::default()
                })
                .execute()
                .await
                .map_err(|e| r2_error("put", e))?;
            Ok(id)
        })
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        range: Option<ByteRange>,
    ) -> BoxFuture<'a, Result<MediaRead, StorageError>> {
        boxed(async move {
            // Not one of ours, or expired (the cron deletes it later): nothing to ask R2.
            match media_id_expiry(id) {
                Some(expires) if now_ms() < expires => {}
                _ => return Ok(MediaRead::Missing),
            }
            let (object, span) = match range {
                None => {
                    let got = self.bucket.get(key(id)).execute().await;
                    let Some(object) = got.map_err(|e| r2_error("get", e))? else {
                        return Ok(MediaRead::Missing);
                    };
                    let span = 0..object.size();
                    (object, span)
                }
                // The length first, so that a range past the end is told apart and every
                // other range asked of R2 is one it can serve.
                Some(range) => {
                    let head = self.bucket.head(key(id)).await;
                    let Some(head) = head.map_err(|e| r2_error("head", e))? else {
                        return Ok(MediaRead::Missing);
                    };
                    let total_len = head.size();
                    let Some(span) = range.resolve(total_len) else {
                        return Ok(MediaRead::Unsatisfiable { total_len });
                    };
                    let got = self
                        .bucket
                        .get(key(id))
                        .range(Range::OffsetWithLength {
                            offset: span.start,
                            length: span.end - span.start,
                        })
                        .execute()
                        .await;
                    let Some(object) = got.map_err(|e| r2_error("get", e))? else {
                        return Ok(MediaRead::Missing);
                    };
                    (object, span)
                }
            };
            let content_type = object
                .http_metadata()
                .content_type
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            Ok(MediaRead::Found(MediaObject {
                content_type,
                total_len: object.size(),
                range: span,
                body: body_of(&object)?,
            }))
        })
    }

    fn purge_expired(&self) -> BoxFuture<'_, Result<u64, StorageError>> {
        boxed(async move {
            let now = now_ms();
            let mut deleted = 0u64;
            let mut cursor: Option<String> = None;
            for _ in 0..MAX_PURGE_PAGES {
                let mut list = self.bucket.list().prefix(PREFIX).limit(PAGE);
                if let Some(c) = cursor.take() {
                    list = list.cursor(c);
                }
                let page = list.execute().await.map_err(|e| r2_error("list", e))?;
                let mut expired = Vec::new();
                let mut reached_live = false;
                for object in page.objects() {
                    let k = object.key();
                    match k.strip_prefix(PREFIX).and_then(media_id_expiry) {
                        Some(expires) if expires <= now => expired.push(k),
                        // Keys sort by expiry: the rest are live too.
                        Some(_) => {
                            reached_live = true;
                            break;
                        }
                        None => {}
                    }
                }
                if !expired.is_empty() {
                    let n = expired.len() as u64;
                    self.bucket
                        .delete_multiple(expired)
                        .await
                        .map_err(|e| r2_error("delete", e))?;
                    deleted += n;
                }
                cursor = page.cursor();
                if reached_live || !page.truncated() || cursor.is_none() {
                    break;
                }
            }
            Ok(deleted)
        })
    }
}
