//! [`SqliteCoordinator`]: the [`Coordinator`] seam for one process, in memory and written
//! through to the `account_state` table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rusqlite::params;

use super::{lock, SqliteDb, SqliteError};
use crate::coordination::{AccountCommand, AccountReply, AccountState};
use crate::seams::{boxed, BoxFuture, Clock, Coordinator, SlotKind, StorageError};

/// A [`Coordinator`] whose account states survive a restart: each account's
/// [`AccountState`] lives in memory behind one mutex (so every command is atomic per account,
/// as with [`MemoryCoordinator`](crate::memory::MemoryCoordinator)), and whenever a command
/// changes its durable part the new durable part is committed to the database before the
/// command's reply is returned.
///
/// The durable part is everything but what dies with the process: cooldowns, consecutive and
/// total error counts, the access token and whether Google refused it, use counts, and the
/// leases of video slots (a video job is stored and resumed after a restart, so its slot
/// stays held). Image slot leases (their requests died with the process), the single-flight
/// refresh lock (its holder died too) and the project round-robin position are not written,
/// and are empty after [`SqliteCoordinator::open`]. Usage statistics (use count, last use) are
/// written along with the next durable change, not on their own: a crash may forget the last
/// successes counted, never a cooldown or an error. So an image generation that succeeds
/// writes nothing (one commit per image would be most of its CPU cost); a failure writes one
/// row.
///
/// One process per database: the memory is the authority while it runs.
pub struct SqliteCoordinator {
    db: SqliteDb,
    clock: Arc<dyn Clock>,
    states: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for SqliteCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCoordinator")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

struct Entry {
    state: AccountState,
    /// Bumped by every change of the durable part. Rows are only replaced by a higher version,
    /// so two commands whose writes finish out of order leave the later state in the database.
    version: u64,
    /// The durable part as last sent to the database; `None` after a failed write, so that the
    /// next command writes again.
    written: Option<AccountState>,
}

/// What of `state` is kept across a restart (see [`SqliteCoordinator`]).
fn durable(state: &AccountState) -> AccountState {
    let mut d = state.clone();
    d.slots.leases.retain(|l| l.kind == SlotKind::Video);
    d.refresh_lock_until_ms = 0;
    d.project_seq = 0;
    d
}

/// `durable` without the usage statistics, which alone do not call for a write.
fn must_write(written: Option<&AccountState>, durable: &AccountState) -> bool {
    let Some(written) = written else {
        return true;
    };
    let strip = |s: &AccountState| AccountState {
        use_count: 0,
        last_used_ms: 0,
        ..s.clone()
    };
    strip(written) != strip(durable)
}

impl SqliteCoordinator {
    /// Loads every account's stored state from `db`: cooldowns, error counts, tokens and video
    /// leases as they were; no image lease and no refresh lock.
    ///
    /// # Errors
    /// SQLite failures. A row that no longer parses is skipped with a warning on stderr (that
    /// account starts afresh), not fatal.
    pub async fn open(db: &SqliteDb) -> Result<Self, SqliteError> {
        let rows = db
            .read(|c| {
                let mut stmt = c.prepare("SELECT account_id, version, state FROM account_state")?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let mut states = HashMap::with_capacity(rows.len());
        for (id, version, raw) in rows {
            match serde_json::from_str::<AccountState>(&raw) {
                Ok(state) => {
                    let state = durable(&state);
                    states.insert(
                        id,
                        Entry {
                            written: Some(state.clone()),
                            state,
                            version: u64::try_from(version).unwrap_or(0),
                        },
                    );
                }
                Err(e) => tracing::warn!("account state of {id} is unreadable ({e}); reset"),
            }
        }
        Ok(Self {
            clock: db.inner.clock.clone(),
            db: db.clone(),
            states: Mutex::new(states),
        })
    }

    /// Commits `state` (JSON) as version `version` of `account_id`, unless a later version is
    /// already there.
    async fn write(
        &self,
        account_id: &str,
        version: u64,
        state: &AccountState,
    ) -> Result<(), SqliteError> {
        let json = serde_json::to_string(state)?;
        let id = account_id.to_owned();
        let version = super::to_sql_ms(version);
        self.db
            .write(move |c| {
                c.prepare_cached(
                    "INSERT INTO account_state (account_id, version, state) VALUES (?1, ?2, ?3)
                     ON CONFLICT (account_id) DO UPDATE
                     SET version = excluded.version, state = excluded.state
                     WHERE excluded.version > account_state.version",
                )?
                .execute(params![id, version, json])
            })
            .await?;
        Ok(())
    }
}

impl Coordinator for SqliteCoordinator {
    fn apply<'a>(
        &'a self,
        account_id: &'a str,
        command: AccountCommand,
    ) -> BoxFuture<'a, Result<AccountReply, StorageError>> {
        let now = self.clock.now_ms();
        let (reply, write) = {
            let mut states = lock(&self.states);
            let entry = states
                .entry(account_id.to_owned())
                .or_insert_with(|| Entry {
                    state: AccountState::default(),
                    version: 0,
                    written: Some(AccountState::default()),
                });
            let (reply, changed) = entry.state.apply(command, now);
            let mut write = None;
            if changed || entry.written.is_none() {
                let d = durable(&entry.state);
                if must_write(entry.written.as_ref(), &d) {
                    entry.version += 1;
                    write = Some((entry.version, d.clone()));
                    entry.written = Some(d);
                }
            }
            (reply, write)
        };
        boxed(async move {
            let Some((version, state)) = write else {
                return Ok(reply);
            };
            if let Err(e) = self.write(account_id, version, &state).await {
                if let Some(entry) = lock(&self.states).get_mut(account_id) {
                    if entry.version == version {
                        entry.written = None;
                    }
                }
                return Err(e.into());
            }
            Ok(reply)
        })
    }
}
