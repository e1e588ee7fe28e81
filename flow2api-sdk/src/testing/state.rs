//! The fake's mutable state: accounts, tokens, projects, media, captcha tasks, faults and the
//! request log.

use std::collections::HashMap;
use std::time::Duration;

use super::{
    Endpoint, FakeAccount, FakeProject, Fault, GeneratedMedia, RecordedRequest, SolverFault,
    UploadedMedia, DEFAULT_YESCAPTCHA_KEY, FAKE_SOLVERS,
};

/// Settings changed through the setters and `/_fake/config`.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) at_lifetime: Duration,
    pub(super) polls_before_ready: u32,
    /// Per solver (`yescaptcha`, `capmonster`, `ezcaptcha`, `capsolver`): the `clientKey` it
    /// accepts.
    pub(super) solver_keys: HashMap<String, String>,
    /// Per solver: how it misbehaves until the next reset.
    pub(super) solver_faults: HashMap<String, SolverFault>,
    pub(super) upload_array: bool,
}

#[derive(Debug, Clone)]
pub(super) struct AccountEntry {
    pub(super) account: FakeAccount,
    pub(super) st_expired: bool,
    /// The session still yields ATs, but Google refuses every one (a revoked grant).
    pub(super) grant_revoked: bool,
}

#[derive(Debug, Clone)]
pub(super) struct AccessToken {
    pub(super) email: String,
    pub(super) expires_ms: u64,
    pub(super) revoked: bool,
}

/// A task of one of the fake solvers.
#[derive(Debug, Clone)]
pub(super) struct Task {
    /// Which solver (`capsolver`…) took it.
    pub(super) solver: String,
    pub(super) polls_left: u32,
    pub(super) unsolvable: bool,
    pub(super) page_action: String,
    /// The token, once the task is ready.
    pub(super) solution: Option<String>,
}

/// A token issued by the fake solver.
#[derive(Debug, Clone)]
pub(super) struct IssuedToken {
    pub(super) user_agent: String,
    pub(super) page_action: String,
    pub(super) used: bool,
    /// Headers (name, value) the generate call must also carry: the browser identity a
    /// browser-based solver reported. A `cookie` must be among the request's cookies.
    pub(super) headers: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub(super) struct FaultRule {
    pub(super) endpoint: Endpoint,
    pub(super) fault: Fault,
    /// `Some(n)`: the next n calls; `None`: forever, at `percent` %.
    pub(super) remaining: Option<u32>,
    pub(super) percent: u8,
    /// Only calls made with this account's access token.
    pub(super) email: Option<String>,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) config: Config,
    pub(super) accounts: Vec<AccountEntry>,
    pub(super) access_tokens: HashMap<String, AccessToken>,
    pub(super) projects: HashMap<String, FakeProject>,
    pub(super) uploads: Vec<UploadedMedia>,
    pub(super) generated: Vec<GeneratedMedia>,
    pub(super) tasks: HashMap<String, Task>,
    pub(super) tokens: HashMap<String, IssuedToken>,
    pub(super) faults: Vec<FaultRule>,
    pub(super) requests: Vec<RecordedRequest>,
    pub(super) in_flight: HashMap<String, u32>,
    pub(super) max_in_flight: HashMap<String, u32>,
    pub(super) rejections: Vec<String>,
    pub(super) video: super::video::VideoState,
}

impl State {
    pub(super) fn new() -> Self {
        Self {
            config: Config {
                at_lifetime: Duration::from_secs(90 * 60),
                polls_before_ready: 1,
                solver_keys: FAKE_SOLVERS
                    .iter()
                    .map(|s| {
                        let key = if *s == "yescaptcha" {
                            DEFAULT_YESCAPTCHA_KEY.to_owned()
                        } else {
                            super::fake_solver_key(s)
                        };
                        ((*s).to_owned(), key)
                    })
                    .chain([(
                        super::FAKE_REMOTE_BROWSER.to_owned(),
                        super::fake_solver_key(super::FAKE_REMOTE_BROWSER),
                    )])
                    .collect(),
                solver_faults: HashMap::new(),
                upload_array: false,
            },
            accounts: Vec::new(),
            access_tokens: HashMap::new(),
            projects: HashMap::new(),
            uploads: Vec::new(),
            generated: Vec::new(),
            tasks: HashMap::new(),
            tokens: HashMap::new(),
            faults: Vec::new(),
            requests: Vec::new(),
            in_flight: HashMap::new(),
            max_in_flight: HashMap::new(),
            rejections: Vec::new(),
            video: super::video::VideoState::default(),
        }
    }

    pub(super) fn add_account(&mut self, account: FakeAccount) {
        self.accounts
            .retain(|a| a.account.email != account.email && a.account.st != account.st);
        self.accounts.push(AccountEntry {
            account,
            st_expired: false,
            grant_revoked: false,
        });
    }

    pub(super) fn expire_st(&mut self, st: &str) {
        for entry in self.accounts.iter_mut().filter(|a| a.account.st == st) {
            entry.st_expired = true;
        }
    }

    pub(super) fn revoke_grant(&mut self, st: &str) {
        for entry in self.accounts.iter_mut().filter(|a| a.account.st == st) {
            entry.grant_revoked = true;
        }
    }

    pub(super) fn revoke_access_tokens(&mut self, st: &str) {
        let Some(email) = self
            .accounts
            .iter()
            .find(|a| a.account.st == st)
            .map(|a| a.account.email.clone())
        else {
            return;
        };
        for at in self.access_tokens.values_mut().filter(|t| t.email == email) {
            at.revoked = true;
        }
    }

    /// The account whose live session token is `st`.
    pub(super) fn account_for_st(&self, st: Option<&str>) -> Option<&FakeAccount> {
        let st = st?;
        self.accounts
            .iter()
            .find(|a| a.account.st == st && !a.st_expired)
            .map(|a| &a.account)
    }

    /// The email of the account a live AT belongs to.
    pub(super) fn email_for_at(&self, at: Option<&str>, now_ms: u64) -> Option<String> {
        let token = self.access_tokens.get(at?)?;
        let granted = !self
            .accounts
            .iter()
            .any(|a| a.account.email == token.email && a.grant_revoked);
        (granted && !token.revoked && now_ms < token.expires_ms).then(|| token.email.clone())
    }

    /// The account a live AT belongs to.
    pub(super) fn account_for_at(&self, at: Option<&str>, now_ms: u64) -> Option<&FakeAccount> {
        let email = self.email_for_at(at, now_ms)?;
        self.accounts
            .iter()
            .find(|a| a.account.email == email)
            .map(|a| &a.account)
    }

    /// Whether `project_id` was created by `email`.
    pub(super) fn owns_project(&self, email: &str, project_id: &str) -> bool {
        self.projects
            .get(project_id)
            .is_some_and(|p| p.email == email)
    }

    pub(super) fn reject(&mut self, endpoint: Endpoint, why: impl Into<String>) {
        let why = why.into();
        self.rejections.push(format!("{endpoint:?}: {why}"));
    }

    pub(super) fn inject(
        &mut self,
        endpoint: Endpoint,
        fault: Fault,
        remaining: Option<u32>,
        percent: u8,
        email: Option<String>,
    ) {
        if remaining == Some(0) || percent == 0 {
            return;
        }
        self.faults.push(FaultRule {
            endpoint,
            fault,
            remaining,
            percent,
            email,
        });
    }

    /// The fault to apply to this call of `endpoint`, if any: the oldest counted one first, then
    /// the rate rules (each rolled in turn).
    pub(super) fn take_fault(&mut self, endpoint: Endpoint, email: Option<&str>) -> Option<Fault> {
        let applies = |r: &FaultRule| {
            r.endpoint == endpoint && r.email.as_deref().is_none_or(|e| Some(e) == email)
        };
        if let Some(i) = self
            .faults
            .iter()
            .position(|r| applies(r) && r.remaining.is_some())
        {
            let rule = &mut self.faults[i];
            let fault = rule.fault.clone();
            let left = rule.remaining.unwrap_or(1).saturating_sub(1);
            rule.remaining = Some(left);
            if left == 0 {
                self.faults.remove(i);
            }
            return Some(fault);
        }
        self.faults
            .iter()
            .filter(|r| applies(r) && r.remaining.is_none())
            .find(|r| r.percent >= 100 || crate::util::random_u64() % 100 < u64::from(r.percent))
            .map(|r| r.fault.clone())
    }

    pub(super) fn reset(&mut self) {
        self.faults.clear();
        self.config.solver_faults.clear();
        self.requests.clear();
        self.rejections.clear();
        self.max_in_flight = self
            .in_flight
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(e, n)| (e.clone(), *n))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_run_out_in_order() {
        let mut st = State::new();
        st.inject(Endpoint::Credits, Fault::quota(), Some(2), 100, None);
        st.inject(Endpoint::Credits, Fault::internal(), Some(1), 100, None);
        assert_eq!(st.take_fault(Endpoint::Session, None), None);
        assert_eq!(st.take_fault(Endpoint::Credits, None), Some(Fault::quota()));
        assert_eq!(st.take_fault(Endpoint::Credits, None), Some(Fault::quota()));
        assert_eq!(
            st.take_fault(Endpoint::Credits, None),
            Some(Fault::internal())
        );
        assert_eq!(st.take_fault(Endpoint::Credits, None), None);
    }

    #[test]
    fn rate_rules_stay() {
        let mut st = State::new();
        st.inject(Endpoint::Fife, Fault::MalformedJson, None, 100, None);
        for _ in 0..3 {
            assert_eq!(
                st.take_fault(Endpoint::Fife, None),
                Some(Fault::MalformedJson)
            );
        }
        st.inject(Endpoint::Credits, Fault::MalformedJson, None, 0, None);
        assert_eq!(st.take_fault(Endpoint::Credits, None), None);
    }
}
