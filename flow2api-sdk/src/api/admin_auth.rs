//! Admin authentication state in the strongly consistent store: the password set through the
//! admin API, and the sessions logins open.
//!
//! A password changed through `POST /api/admin/change-password` is stored as a bcrypt hash in
//! one record, which from then on overrides `ADMIN_PASSWORD` on every process and isolate
//! (each login reads it). The record also holds the *epoch*, raised by every change: a session
//! record carries the epoch it was opened in and is valid only while that is still the current
//! one, so one conditional write ends every session at once, with no list of them to walk.

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::seams::{Bytes, Expect, Storage, StorageError};
use crate::secret::Secret;
use crate::util;

/// The record of the password set through the admin API.
pub(crate) const CREDENTIALS_KEY: &str = "admin:credentials";

/// Fewest characters a new admin password may have.
pub(crate) const MIN_PASSWORD_CHARS: usize = 8;
/// Most bytes of a new admin password: bcrypt reads no further, and silently ignoring the
/// rest would make a long password weaker than it looks.
pub(crate) const MAX_PASSWORD_BYTES: usize = 72;

/// The stored credentials (none stored: `ADMIN_PASSWORD`, epoch 0). No `Debug`: it holds a
/// password hash.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct Credentials {
    /// bcrypt hash of the password set through the API; `None`: `ADMIN_PASSWORD` applies.
    #[serde(default)]
    password_hash: Option<String>,
    /// Raised by every password change; sessions of an earlier epoch are over.
    #[serde(default)]
    pub(crate) epoch: u64,
    /// When the password was last changed (milliseconds since the Unix epoch).
    #[serde(default)]
    changed_at_ms: u64,
}

/// The credentials as read, with the bytes a conditional write must find to replace them.
pub(crate) struct Stored {
    pub(crate) credentials: Credentials,
    raw: Option<Bytes>,
}

impl Stored {
    /// The credentials in a record as read from the store (`None`: never written).
    ///
    /// # Errors
    /// An unreadable record, as a storage failure.
    pub(crate) fn from_record(raw: Option<Bytes>) -> Result<Self, StorageError> {
        let credentials = match raw.as_deref() {
            None => Credentials::default(),
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| StorageError(format!("admin credentials unreadable: {e}")))?,
        };
        Ok(Self { credentials, raw })
    }

    /// Whether `given` is the admin password: the stored one if any, else `configured`.
    pub(crate) fn verify(&self, configured: &Secret, given: &str) -> bool {
        match &self.credentials.password_hash {
            Some(hash) => bcrypt::verify(given, hash).unwrap_or(false),
            None => verify_password(configured, given),
        }
    }
}

/// Reads the stored credentials.
///
/// # Errors
/// Storage failures; an unreadable record reads as one too.
pub(crate) async fn load(store: &dyn Storage) -> Result<Stored, StorageError> {
    Stored::from_record(store.get(CREDENTIALS_KEY).await?)
}

/// Stores `hash` as the admin password and raises the epoch (ending every session), provided
/// the record is still what `previous` read; `Ok(false)` when it changed meanwhile.
///
/// # Errors
/// Storage failures.
pub(crate) async fn replace_password(
    store: &dyn Storage,
    previous: &Stored,
    hash: String,
    now_ms: u64,
) -> Result<bool, StorageError> {
    let next = Credentials {
        password_hash: Some(hash),
        epoch: previous.credentials.epoch + 1,
        changed_at_ms: now_ms,
    };
    let bytes = Bytes::from(
        serde_json::to_vec(&next).map_err(|e| StorageError(format!("admin credentials: {e}")))?,
    );
    if store.capabilities().conditional_writes {
        let expect = previous.raw.clone().map_or(Expect::Absent, Expect::Value);
        store.put_if(CREDENTIALS_KEY, bytes, None, expect).await
    } else {
        store.put(CREDENTIALS_KEY, bytes, None).await?;
        Ok(true)
    }
}

/// Checks a password against `ADMIN_PASSWORD`: a bcrypt hash (`$2a$`/`$2b$`/`$2y$`) or plain
/// text compared in constant time.
pub(crate) fn verify_password(configured: &Secret, given: &str) -> bool {
    let c = configured.expose();
    if c.starts_with("$2a$") || c.starts_with("$2b$") || c.starts_with("$2y$") {
        bcrypt::verify(given, c).unwrap_or(false)
    } else {
        configured.ct_eq(given)
    }
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HashError {
    /// No salt could be drawn.
    #[error(transparent)]
    Randomness(#[from] util::RandomnessError),
    /// bcrypt refused (a cost out of its range; the setting's bounds keep it in).
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
}

/// A bcrypt hash of `password` at `cost`, salted from the CSPRNG.
///
/// # Errors
/// [`HashError`].
pub(crate) fn hash_password(password: &str, cost: u32) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    util::secret_fill(&mut salt)?;
    let parts = bcrypt::hash_with_salt(password, cost, salt)?;
    Ok(parts.format_for_version(bcrypt::Version::TwoB))
}

/// Where a session lives: only a hash of its token is stored, so a storage dump yields no
/// usable session.
pub(crate) fn session_key(token: &str) -> String {
    format!(
        "admin-session:{}",
        util::hex(&sha2::Sha256::digest(token.as_bytes()))
    )
}

/// How many hex digits a session token has (`POST /api/login` draws 32 random bytes).
pub(crate) const SESSION_TOKEN_HEX: usize = 64;

/// Whether `token` could be a session token (64 lowercase hex digits): only such a bearer on
/// an API route is looked up as an admin session, so an ordinary API key costs no extra read.
pub(crate) fn is_session_shaped(token: &str) -> bool {
    token.len() == SESSION_TOKEN_HEX
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A session record opened in `epoch`.
pub(crate) fn session_record(epoch: u64) -> Bytes {
    Bytes::from(serde_json::json!({ "epoch": epoch }).to_string())
}

/// The epoch a session record was opened in. Records from before epochs existed (`1`) count
/// as epoch 0, so an upgrade ends no session.
pub(crate) fn session_epoch(record: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Session {
        epoch: u64,
    }
    match serde_json::from_slice::<Session>(record) {
        Ok(s) => Some(s.epoch),
        Err(_) => (record == b"1").then_some(0),
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use std::sync::Arc;

    use super::*;
    use crate::memory::MemoryStorage;
    use crate::seams::{boxed, BoxFuture, Clock};

    struct Fixed;
    impl Clock for Fixed {
        fn now_ms(&self) -> u64 {
            1_000
        }
        fn sleep(&self, _: std::time::Duration) -> BoxFuture<'static, ()> {
            boxed(async {})
        }
    }

    #[test]
    fn a_stored_password_overrides_the_configured_one_and_raises_the_epoch() {
        let store = MemoryStorage::new(Arc::new(Fixed));
        let configured = Secret::new("from-the-environment");
        let first = block_on(load(&store)).unwrap();
        assert!(first.verify(&configured, "from-the-environment"));
        assert_eq!(first.credentials.epoch, 0);
        let hash = hash_password("a new password", 4).unwrap();
        assert!(hash.starts_with("$2b$04$"), "{hash}");
        assert!(block_on(replace_password(&store, &first, hash.clone(), 5)).unwrap());
        let second = block_on(load(&store)).unwrap();
        assert!(!second.verify(&configured, "from-the-environment"));
        assert!(second.verify(&configured, "a new password"));
        assert_eq!(second.credentials.epoch, 1);
        // A change based on the old read loses: someone else changed it meanwhile.
        assert!(!block_on(replace_password(&store, &first, hash, 6)).unwrap());
    }

    #[test]
    fn session_records_carry_their_epoch() {
        assert_eq!(session_epoch(&session_record(7)), Some(7));
        assert_eq!(session_epoch(b"1"), Some(0));
        assert_eq!(session_epoch(b"garbage"), None);
        assert_ne!(session_key("a"), session_key("b"));
        assert!(!session_key("token").contains("token"));
        assert!(is_session_shaped(&"0a".repeat(32)));
        assert!(!is_session_shaped(&"0A".repeat(32)));
        assert!(!is_session_shaped(&"0a".repeat(31)));
        assert!(!is_session_shaped("sk-f2a-0123"));
    }
}
