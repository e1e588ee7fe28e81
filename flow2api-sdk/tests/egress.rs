//! Egress choice in process: every request of a generation carries the way it must leave
//! (`docs/egress.md`). The HTTP client records each request's `Egress` before the fake
//! answers it.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flow2api_sdk::captcha::{Provider, TaskApiConfig, TaskApiSolver};

use flow2api_sdk::seams::{
    boxed, BoxFuture, CaptchaError, CaptchaRequest, CaptchaSolution, CaptchaSolver, Egress,
    HttpClient, HttpRequest,
};
use flow2api_sdk::testing::{FakeAccount, FakeFlow, DEFAULT_YESCAPTCHA_KEY};
use flow2api_sdk::Secret;
use serde_json::json;

use common::{builder, config, logged_in, user, TokioClock, ST};

type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// The fake behind a client that notes each request's path and egress.
fn recording(fake: &FakeFlow, log: Log) -> Arc<dyn HttpClient> {
    let fake = fake.clone();
    Arc::new(move |req: HttpRequest| {
        let egress = req.extensions().get::<Egress>().map(|e| format!("{e:?}"));
        log.lock()
            .unwrap()
            .push((req.uri().path().to_owned(), egress));
        let fake = fake.clone();
        async move { fake.call(req).await }
    })
}

/// A host-given solver that names the submit's egress (as `remote_browser` may): the fake's
/// YesCaptcha solves, the answer names `proxy_url`.
struct Naming(Option<&'static str>, Option<TaskApiSolver>);

impl CaptchaSolver for Naming {
    fn solve<'a>(
        &'a self,
        request: &'a CaptchaRequest,
    ) -> BoxFuture<'a, Result<CaptchaSolution, CaptchaError>> {
        boxed(async move {
            let inner = self.1.as_ref().expect("attached");
            let mut solution = inner.solve(request).await?;
            solution.proxy_url = self.0.map(str::to_owned);
            Ok(solution)
        })
    }
}

async fn generate(
    extra: &[(&str, &str)],
    account: serde_json::Value,
    solver: Option<Naming>,
) -> Vec<(String, Option<String>)> {
    let clock = Arc::new(TokioClock::new());
    let fake = FakeFlow::new("https://fake.flow.test", clock.clone());
    fake.add_account(FakeAccount::new(ST, "alice@example.com"));
    let log = Log::default();
    let mut b =
        builder(config(extra, &fake), &fake, clock.clone()).http(recording(&fake, log.clone()));
    if let Some(mut s) = solver {
        s.1 = Some(TaskApiSolver::new(
            Arc::new(fake.clone()),
            clock.clone(),
            TaskApiConfig {
                provider: Provider::YesCaptcha,
                base_url: fake.yescaptcha_base(),
                api_key: Some(Secret::new(DEFAULT_YESCAPTCHA_KEY)),
                task_type: String::new(),
                poll_interval: Duration::from_millis(10),
                max_polls: 40,
            },
        ));
        b = b.captcha(Arc::new(s));
    }
    let h = logged_in(b.build().unwrap(), fake, clock).await;
    let mut body = json!({"st": ST});
    body.as_object_mut()
        .unwrap()
        .extend(account.as_object().unwrap().clone());
    let added = h.admin_call("POST", "/api/tokens", Some(body)).await;
    assert_eq!(added.status, 200, "{}", added.text());
    log.lock().unwrap().clear();
    let r = h
        .chat(
            json!({"model": "gemini-3.1-flash-image-landscape", "messages": user(json!("a kite"))}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let out = log.lock().unwrap().clone();
    assert!(
        out.iter()
            .any(|(p, _)| p.ends_with("flowMedia:batchGenerateImages")),
        "{out:?}"
    );
    out
}

const ACCOUNT_PROXY: &str = "Proxy(socks5://***:***@10.0.0.9:1080)";
const GLOBAL_PROXY: &str = "Proxy(http://***:***@10.0.0.1:3128)";

#[tokio::test]
async fn the_solver_and_the_submit_leave_through_the_accounts_proxy_before_the_global_one() {
    let log = generate(
        &[("PROXY_URL", "10.0.0.1:3128:g:pw")],
        json!({"proxy_url": "st5 10.0.0.9:1080:u:p"}),
        None,
    )
    .await;
    // createTask, getTaskResult and the generate call: all through the account's proxy.
    assert!(
        log.iter().any(|(p, _)| p.ends_with("createTask")),
        "{log:?}"
    );
    for (path, egress) in &log {
        assert_eq!(egress.as_deref(), Some(ACCOUNT_PROXY), "{path}");
    }
}

#[tokio::test]
async fn without_its_own_an_account_uses_the_global_proxy() {
    let log = generate(
        &[("PROXY_URL", "http://g:pw@10.0.0.1:3128")],
        json!({}),
        None,
    )
    .await;
    for (path, egress) in &log {
        assert_eq!(egress.as_deref(), Some(GLOBAL_PROXY), "{path}");
    }
}

#[tokio::test]
async fn a_solver_that_names_a_proxy_forces_the_submits_egress() {
    // A proxy of its own.
    let log = generate(
        &[("PROXY_URL", "10.0.0.1:3128:g:pw")],
        json!({"proxy_url": "st5 10.0.0.9:1080:u:p"}),
        Some(Naming(Some("10.0.0.7:8080"), None)),
    )
    .await;
    let submit = log
        .iter()
        .find(|(p, _)| p.ends_with("batchGenerateImages"))
        .unwrap();
    assert_eq!(submit.1.as_deref(), Some("Proxy(http://10.0.0.7:8080)"));
    // `""`: direct, whatever the account and the settings say.
    let log = generate(
        &[("PROXY_URL", "10.0.0.1:3128:g:pw")],
        json!({"proxy_url": "st5 10.0.0.9:1080:u:p"}),
        Some(Naming(Some(""), None)),
    )
    .await;
    let submit = log
        .iter()
        .find(|(p, _)| p.ends_with("batchGenerateImages"))
        .unwrap();
    assert_eq!(submit.1, None, "direct: no proxy on the request");
}

#[tokio::test]
async fn a_bad_account_proxy_is_refused_clearly() {
    let clock = Arc::new(TokioClock::new());
    let fake = FakeFlow::new("https://fake.flow.test", clock.clone());
    fake.add_account(FakeAccount::new(ST, "alice@example.com"));
    let h = logged_in(
        builder(config(&[], &fake), &fake, clock.clone())
            .build()
            .unwrap(),
        fake,
        clock,
    )
    .await;
    let r = h
        .admin_call(
            "POST",
            "/api/tokens",
            Some(json!({"st": ST, "proxy_url": "ftp://u:hunter22@h:21"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("accepted: http://user:pass@host:port"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("hunter22"));
}

#[tokio::test]
async fn adding_an_account_with_its_own_proxy_uses_it_from_the_first_call() {
    let clock = Arc::new(TokioClock::new());
    let fake = FakeFlow::new("https://fake.flow.test", clock.clone());
    fake.add_account(FakeAccount::new(ST, "alice@example.com"));
    let log = Log::default();
    let b = builder(
        config(&[("PROXY_URL", "10.0.0.1:3128:g:pw")], &fake),
        &fake,
        clock.clone(),
    )
    .http(recording(&fake, log.clone()));
    let h = logged_in(b.build().unwrap(), fake, clock).await;
    let added = h
        .admin_call(
            "POST",
            "/api/tokens",
            Some(json!({"st": ST, "proxy_url": "st5 10.0.0.9:1080:u:p"})),
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.text());
    let log = log.lock().unwrap().clone();
    // Session, credits and the projects: all through the account's proxy.
    assert!(log.len() >= 3, "{log:?}");
    for (path, egress) in &log {
        assert_eq!(egress.as_deref(), Some(ACCOUNT_PROXY), "{path}");
    }
}
