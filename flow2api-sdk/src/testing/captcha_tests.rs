//! The task-API solvers and the method chain against the fake solvers.

use std::sync::Arc;
use std::time::Duration;

use futures::executor::block_on;

use super::tests::setup;
use super::*;
use crate::captcha::{CaptchaStats, ChainSolver, Provider, TaskApiConfig, TaskApiSolver};
use crate::seams::{CaptchaAction, CaptchaErrorKind, CaptchaRequest, CaptchaSolver};
use crate::secret::Secret;

fn request() -> CaptchaRequest {
    CaptchaRequest {
        site_key: "6LdsFiUsAAAAAIjVDZcuLhaHiDn5nnHVXVRQGeMV".into(),
        page_url: "https://labs.google/fx/tools/flow/project/p1".into(),
        action: CaptchaAction::ImageGeneration,
        page_action: None,
        project_id: "p1".into(),
        account_id: None,
        egress: None,
    }
}

fn solver(fake: &FakeFlow, clock: Arc<dyn Clock>, p: Provider, key: Option<&str>) -> TaskApiSolver {
    TaskApiSolver::new(
        Arc::new(fake.clone()),
        clock,
        TaskApiConfig {
            provider: p,
            base_url: format!("{}/", fake.solver_base(p.method())),
            api_key: key.map(Secret::new),
            task_type: String::new(),
            poll_interval: Duration::from_millis(10),
            max_polls: 40,
        },
    )
}

fn chain(
    fake: &FakeFlow,
    clock: Arc<dyn Clock>,
    methods: &[(Provider, Option<&str>)],
) -> (ChainSolver, Arc<CaptchaStats>) {
    let stats = Arc::new(CaptchaStats::new());
    let solvers = methods
        .iter()
        .map(|(p, key)| {
            let s: Arc<dyn CaptchaSolver> = Arc::new(solver(fake, clock.clone(), *p, *key));
            (p.method().to_owned(), s)
        })
        .collect();
    (ChainSolver::new(solvers, stats.clone(), clock), stats)
}

#[test]
fn every_provider_solves_with_its_own_task_type_and_token() {
    let (fake, clock) = setup();
    for p in Provider::ALL {
        let key = fake_solver_key(p.method());
        let key = if p == Provider::YesCaptcha {
            DEFAULT_YESCAPTCHA_KEY.to_owned()
        } else {
            key
        };
        let s = solver(&fake, clock.clone(), p, Some(&key));
        let solution = block_on(s.solve(&request())).expect("a token");
        assert!(
            solution
                .token
                .expose()
                .contains(&format!("-fake-{}-", p.method())),
            "{p:?}"
        );
        assert_eq!(solution.user_agent, SOLVER_USER_AGENT);
        assert_eq!(solution.method, p.method());
        let created = fake.requests_to(Endpoint::CreateTask);
        let task = &created.last().unwrap().json.as_ref().unwrap()["task"];
        assert_eq!(task["type"], p.default_task_type(), "{p:?}");
        assert_eq!(task["pageAction"], "IMAGE_GENERATION");
        assert_eq!(
            task.get("minScore").is_some(),
            p == Provider::YesCaptcha,
            "{p:?}"
        );
        assert!(created
            .last()
            .unwrap()
            .path
            .starts_with(&format!("/{}/", p.method())));
    }
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
}

#[test]
fn the_chain_falls_through_no_key_no_balance_and_poll_errors() {
    let (fake, clock) = setup();
    let cm = fake_solver_key("capmonster");
    let ez = fake_solver_key("ezcaptcha");
    let cs = fake_solver_key("capsolver");
    fake.set_solver_fault("capmonster", Some(SolverFault::ZeroBalance));
    fake.set_solver_fault("ezcaptcha", Some(SolverFault::PollError));
    let (c, stats) = chain(
        &fake,
        clock.clone(),
        &[
            (Provider::YesCaptcha, None),
            (Provider::CapMonster, Some(&cm)),
            (Provider::EzCaptcha, Some(&ez)),
            (Provider::CapSolver, Some(&cs)),
        ],
    );
    let solution = block_on(c.solve(&request())).expect("capsolver's token");
    assert_eq!(solution.method, "capsolver");
    assert!(solution.token.expose().contains("-fake-capsolver-"));
    // The poll error ended EzCaptcha's solve at its first poll, not after 40.
    let ez_polls = fake
        .requests_to(Endpoint::GetTaskResult)
        .iter()
        .filter(|r| r.path.starts_with("/ezcaptcha/"))
        .count();
    assert_eq!(ez_polls, 1);
    // YesCaptcha without a key made no call.
    assert!(fake
        .requests()
        .iter()
        .all(|r| !r.path.starts_with("/yescaptcha/")));
    let v = stats.snapshot();
    assert_eq!(
        v.solvers["yescaptcha"].failures_by_kind["not_configured"],
        1
    );
    assert_eq!(v.solvers["capmonster"].failures_by_kind["no_capacity"], 1);
    assert_eq!(v.solvers["ezcaptcha"].failures_by_kind["provider"], 1);
    assert_eq!(v.solvers["capsolver"].solves, 1);

    // All failing: one error naming each method's reason, never a key.
    fake.set_solver_fault("capsolver", Some(SolverFault::ZeroBalance));
    let e = block_on(c.solve(&request())).unwrap_err();
    for part in [
        "YESCAPTCHA_API_KEY is not set",
        "ERROR_ZERO_BALANCE",
        "ERROR_CAPTCHA_UNSOLVABLE",
    ] {
        assert!(e.message.contains(part), "{}", e.message);
    }
    for key in [&cm, &ez, &cs] {
        assert!(!e.message.contains(key.as_str()));
    }
    assert_eq!(e.kind, CaptchaErrorKind::NoCapacity);
}

#[test]
fn a_wrong_key_is_a_provider_error_without_the_key() {
    let (fake, clock) = setup();
    let s = solver(&fake, clock, Provider::CapSolver, Some("sk-secret-value"));
    let e = block_on(s.solve(&request())).unwrap_err();
    assert_eq!(e.kind, CaptchaErrorKind::Provider);
    assert!(
        e.message.contains("capsolver") && e.message.contains("ERROR_KEY_DOES_NOT_EXIST"),
        "{}",
        e.message
    );
    assert!(!e.message.contains("sk-secret-value"));
    assert!(!format!("{s:?}").contains("sk-secret-value"));
}

#[test]
fn no_slot_is_waited_out_only_by_yescaptcha() {
    let (fake, clock) = setup();
    fake.set_solver_fault("capmonster", Some(SolverFault::NoSlot));
    let cm = fake_solver_key("capmonster");
    let s = solver(&fake, clock.clone(), Provider::CapMonster, Some(&cm));
    let e = block_on(s.solve(&request())).unwrap_err();
    assert_eq!(e.kind, CaptchaErrorKind::NoCapacity);
    assert_eq!(fake.requests_to(Endpoint::CreateTask).len(), 1);
}

#[test]
fn an_account_chain_picks_its_own_order_from_every_method() {
    let (fake, clock) = setup();
    let (c, _) = chain(
        &fake,
        clock,
        &[
            (Provider::YesCaptcha, Some(DEFAULT_YESCAPTCHA_KEY)),
            (Provider::CapSolver, Some(&fake_solver_key("capsolver"))),
        ],
    );
    let s = block_on(c.solve_in(&request(), "capsolver,yescaptcha")).unwrap();
    assert_eq!(s.method, "capsolver");
    fake.set_solver_fault("capsolver", Some(SolverFault::ZeroBalance));
    let s = block_on(c.solve_in(&request(), "capsolver,yescaptcha")).unwrap();
    assert_eq!(s.method, "yescaptcha");
    assert_eq!(
        crate::captcha::parse_methods(" CapSolver , yescaptcha").unwrap(),
        "capsolver,yescaptcha"
    );
    assert!(crate::captcha::parse_methods("extension")
        .unwrap_err()
        .contains("not built"));
}
