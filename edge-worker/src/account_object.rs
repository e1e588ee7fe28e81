//! `AccountObject`: one Durable Object per account (addressed by `id_from_name(account_id)`),
//! holding that account's [`AccountState`] (slots, token and refresh lock, errors, cooldown)
//! so that its rules hold across every isolate.

use std::cell::RefCell;

use flow2api_sdk::pool::state::AccountState;
// `#[durable_object]` expands to code that names `wasm_bindgen` unqualified.
use worker::wasm_bindgen;
use worker::{durable_object, Date, DurableObject, Env, Request, Response, Result, State};

use crate::protocol::{
    apply_account_command, decode_account_command, decode_account_state, ACCOUNT_STATE_KEY,
};

/// The Durable Object class bound as `ACCOUNTS`.
#[durable_object]
pub struct AccountObject {
    state: State,
    /// The state as last persisted (or being persisted), loaded on the first command.
    account: RefCell<Option<AccountState>>,
}

impl std::fmt::Debug for AccountObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountObject").finish_non_exhaustive()
    }
}

impl AccountObject {
    /// Loads the stored state into memory unless it is there already. Two first commands may
    /// both read storage; the first to finish fills the cell and the other keeps it.
    async fn ensure_loaded(&self) -> Result<()> {
        if self.account.borrow().is_some() {
            return Ok(());
        }
        // Stored as a JSON string: exact u64s, and the shape the SDK serialises.
        let json: Option<String> = self.state.storage().get(ACCOUNT_STATE_KEY).await?;
        let loaded = decode_account_state(json.as_deref());
        self.account.borrow_mut().get_or_insert(loaded);
        Ok(())
    }
}

impl DurableObject for AccountObject {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            account: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command = match decode_account_command(&req.text().await?) {
            Ok(c) => c,
            Err(e) => return Response::error(e.to_string(), 400),
        };
        self.ensure_loaded().await?;
        // Applied in memory with no await in between, so commands never interleave; the
        // write's output gate holds the reply back until it is durable.
        let (reply, persist) = {
            let mut cell = self.account.borrow_mut();
            let account = cell.get_or_insert_with(AccountState::default);
            apply_account_command(account, command, Date::now().as_millis())?
        };
        if let Some(json) = persist {
            if let Err(e) = self.state.storage().put(ACCOUNT_STATE_KEY, json).await {
                // Memory is ahead of storage: reload on the next command.
                self.account.borrow_mut().take();
                return Err(e);
            }
        }
        Response::from_json(&reply)
    }
}
