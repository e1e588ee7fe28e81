//! The SDK's [`Coordinator`] at the edge: each call is one command to the account's
//! `AccountObject`, one subrequest.

use flow2api_sdk::seams::{
    boxed, AccountCommand, AccountReply, BoxFuture, Coordinator, StorageError,
};
use worker::ObjectNamespace;

use crate::do_client::call;
use crate::fetch_http::Subrequests;
use crate::protocol::ACCOUNT_URL;

/// Per-account state held in one Durable Object per account.
#[derive(Debug)]
pub struct DoCoordinator {
    accounts: ObjectNamespace,
    subrequests: Subrequests,
}

impl DoCoordinator {
    /// A coordinator over the `ACCOUNTS` namespace, counting into `subrequests`.
    pub fn new(accounts: ObjectNamespace, subrequests: Subrequests) -> Self {
        Self {
            accounts,
            subrequests,
        }
    }
}

impl Coordinator for DoCoordinator {
    fn apply<'a>(
        &'a self,
        account_id: &'a str,
        command: AccountCommand,
    ) -> BoxFuture<'a, Result<AccountReply, StorageError>> {
        boxed(async move {
            let stub = self
                .accounts
                .id_from_name(account_id)
                .and_then(|id| id.get_stub())
                .map_err(|e| StorageError(format!("account object: {e}")))?;
            call(&stub.into(), ACCOUNT_URL, &command, &self.subrequests).await
        })
    }
}
