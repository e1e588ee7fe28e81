//! [`SqliteStorage`]: the [`Storage`] seam over one namespace of the `kv` table.

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, OptionalExtension};

use super::{sweep, to_sql_ms, SqliteDb};
use crate::seams::{
    boxed, BoxFuture, Bytes, Capabilities, Expect, ListPage, Storage, StorageError, MAX_LIST_LIMIT,
};

/// A [`Storage`] over the rows of one namespace of a [`SqliteDb`]. Take one per namespace with
/// [`SqliteDb::storage`]; cheap to clone.
///
/// A row with an expiry reads as absent from that instant on (by the database's clock) and is
/// deleted by a sweep that a write starts at most once a minute. A `put` or `delete` has
/// returned only once it is committed, so it survives the process being killed.
#[derive(Debug, Clone)]
pub struct SqliteStorage {
    db: SqliteDb,
    ns: Arc<str>,
}

impl SqliteStorage {
    pub(super) fn new(db: SqliteDb, namespace: &str) -> Self {
        Self {
            db,
            ns: Arc::from(namespace),
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.ns
    }
}

/// The smallest string greater than every string that starts with `prefix`, or `None` when
/// there is none (an empty prefix, or one of only `char::MAX`). UTF-8 orders bytes as code
/// points, so SQLite's byte-wise comparison of TEXT agrees with it.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (last as u32 + 1..=char::MAX as u32).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Up to ?5 live keys of namespace ?1 at time ?2 after ?3 (or from it, when ?4 is 1) and
/// below ?6 (none when NULL), in key order.
const LIST_PAGE: &str = "SELECT key FROM kv WHERE ns = ?1
    AND (key > ?3 OR (?4 = 1 AND key = ?3)) AND (?6 IS NULL OR key < ?6)
    AND (expires_ms IS NULL OR expires_ms > ?2) ORDER BY key LIMIT ?5";

impl Storage for SqliteStorage {
    fn capabilities(&self) -> Capabilities {
        // One writer connection and committed-before-return writes: every reader of this
        // database sees every acknowledged write, and `put_if` runs in one transaction.
        Capabilities::strong()
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StorageError>> {
        let (ns, key, now) = (self.ns.clone(), key.to_owned(), self.db.now_ms());
        boxed(async move {
            let value = self
                .db
                .read(move |c| {
                    c.prepare_cached(
                        "SELECT value FROM kv WHERE ns = ?1 AND key = ?2
                         AND (expires_ms IS NULL OR expires_ms > ?3)",
                    )?
                    .query_row(params![&*ns, key, to_sql_ms(now)], |r| {
                        r.get::<_, Vec<u8>>(0)
                    })
                    .optional()
                })
                .await?;
            Ok(value.map(Bytes::from))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        let (ns, key, now) = (self.ns.clone(), key.to_owned(), self.db.now_ms());
        let expires = ttl.map(|t| to_sql_ms(now.saturating_add(t.as_millis() as u64)));
        let sweep_now = self.db.sweep_due(now);
        boxed(async move {
            self.db
                .write(move |c| {
                    c.prepare_cached(
                        "INSERT INTO kv (ns, key, value, expires_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (ns, key) DO UPDATE
                         SET value = excluded.value, expires_ms = excluded.expires_ms",
                    )?
                    .execute(params![&*ns, key, &value[..], expires])?;
                    if sweep_now {
                        sweep(c, now)?;
                    }
                    Ok(())
                })
                .await?;
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        let (ns, key) = (self.ns.clone(), key.to_owned());
        boxed(async move {
            self.db
                .write(move |c| {
                    c.prepare_cached("DELETE FROM kv WHERE ns = ?1 AND key = ?2")?
                        .execute(params![&*ns, key])
                })
                .await?;
            Ok(())
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ListPage, StorageError>> {
        let (ns, now) = (self.ns.clone(), self.db.now_ms());
        let limit = limit.clamp(1, MAX_LIST_LIMIT);
        let end = prefix_end(prefix);
        // The cursor is the last key of the previous page; a foreign one is clamped into the
        // prefix's range so it can never list keys outside it.
        let (start, inclusive) = match cursor {
            Some(c) if c >= prefix => (c.to_owned(), 0),
            _ => (prefix.to_owned(), 1),
        };
        boxed(async move {
            let mut keys = self
                .db
                .read(move |c| {
                    // A range on the primary key: an index seek, not a scan of the namespace.
                    let mut stmt = c.prepare_cached(LIST_PAGE)?;
                    let rows = stmt.query_map(
                        params![
                            &*ns,
                            to_sql_ms(now),
                            start,
                            inclusive,
                            limit as i64 + 1,
                            end
                        ],
                        |r| r.get::<_, String>(0),
                    )?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                })
                .await?;
            let more = keys.len() > limit;
            keys.truncate(limit);
            let cursor = if more { keys.last().cloned() } else { None };
            Ok(ListPage { keys, cursor })
        })
    }

    fn put_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: Expect,
    ) -> BoxFuture<'a, Result<bool, StorageError>> {
        let (ns, key, now) = (self.ns.clone(), key.to_owned(), self.db.now_ms());
        let expires = ttl.map(|t| to_sql_ms(now.saturating_add(t.as_millis() as u64)));
        boxed(async move {
            self.db
                .write(move |c| {
                    // The single writer connection makes read-compare-write atomic; the
                    // transaction makes it one commit.
                    let tx = c.unchecked_transaction()?;
                    let current = tx
                        .prepare_cached(
                            "SELECT value FROM kv WHERE ns = ?1 AND key = ?2
                             AND (expires_ms IS NULL OR expires_ms > ?3)",
                        )?
                        .query_row(params![&*ns, key, to_sql_ms(now)], |r| {
                            r.get::<_, Vec<u8>>(0)
                        })
                        .optional()?;
                    let matches = expect.matches(current.as_deref());
                    if matches {
                        tx.prepare_cached(
                            "INSERT INTO kv (ns, key, value, expires_ms) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT (ns, key) DO UPDATE
                             SET value = excluded.value, expires_ms = excluded.expires_ms",
                        )?
                        .execute(params![
                            &*ns,
                            key,
                            &value[..],
                            expires
                        ])?;
                    }
                    tx.commit()?;
                    Ok(matches)
                })
                .await
                .map_err(StorageError::from)
        })
    }

    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, StorageError>> {
        let (ns, keys, now) = (self.ns.clone(), keys.to_vec(), self.db.now_ms());
        boxed(async move {
            let values = self
                .db
                .read(move |c| {
                    // One read transaction: every value from the same state of the database.
                    let tx = c.unchecked_transaction()?;
                    let mut stmt = tx.prepare_cached(
                        "SELECT value FROM kv WHERE ns = ?1 AND key = ?2
                         AND (expires_ms IS NULL OR expires_ms > ?3)",
                    )?;
                    let mut out = Vec::with_capacity(keys.len());
                    for key in &keys {
                        let value = stmt
                            .query_row(params![&*ns, key, to_sql_ms(now)], |r| {
                                r.get::<_, Vec<u8>>(0)
                            })
                            .optional()?;
                        out.push(value.map(Bytes::from));
                    }
                    drop(stmt);
                    tx.commit()?;
                    Ok(out)
                })
                .await?;
            Ok(values)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_bounds_exactly_the_keys_with_the_prefix() {
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("account:").as_deref(), Some("account;"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        // Skips the surrogate range, which no `char` holds.
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        let end = prefix_end("video/").unwrap();
        assert!("video/zzz\u{10FFFF}" < end.as_str() && "video0" >= end.as_str());
    }
}
