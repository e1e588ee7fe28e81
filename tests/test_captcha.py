"""Captcha methods on both servers, against the fake's four task-API solvers (YesCaptcha,
CapMonster, EzCaptcha, CapSolver, each under `<fake>/<solver>` with its own key and task type):

* each method alone generates an image, and the generate call carries that solver's token;
* a chain (`CAPTCHA_METHOD=a,b,c`) falls through a method with no key, one out of balance and
  one whose poll answers an `errorId`, to the next;
* `GET /api/captcha/stats` counts solves, failures, latency and Google's rejections per solver
  and per account; `POST /api/captcha/score-test` solves for a score-checking site and reports
  its verdict;
* bad input is refused clearly, and solver keys never show in settings, errors or stats.

Settings are changed at runtime (PATCH /api/settings) on the shared stacks and put back, so no
extra server is started.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from conftest import Gateway, ok_json, openai_error

MODEL = "gemini-3.1-flash-image-landscape"
SOLVERS = ["capmonster", "ezcaptcha", "capsolver", "yescaptcha"]
SETTING_PREFIX = {s: s.upper() for s in SOLVERS}
# The settings this module changes, put back to the environment's values afterwards.
TOUCHED = ["CAPTCHA_METHOD"] + [f"{p}_{k}" for p in ("CAPMONSTER", "EZCAPTCHA", "CAPSOLVER")
                                for k in ("API_KEY", "BASE_URL")]


def key(solver: str) -> str:
    return f"fake-{solver}-key"






def solver_settings(gw: Gateway, *solvers: str) -> dict:
    """Base URL and key of each solver, pointed at the fake."""
    out = {}
    for s in solvers:
        if s != "yescaptcha":
            out[f"{s.upper()}_BASE_URL"] = f"{gw.fake.base}/{s}"
            out[f"{s.upper()}_API_KEY"] = key(s)
    return out


@pytest.fixture
def admin(server: Gateway) -> Iterator[tuple[Gateway, str]]:
    token = server.login()
    try:
        yield server, token
    finally:
        ok_json(server.patch_settings(token, {k: None for k in TOUCHED}))
        faults(server, **{s: None for s in SOLVERS})


def faults(gw: Gateway, **by_solver: str | None) -> None:
    """Makes the fake's solvers misbehave (until the next reset)."""
    gw.fake._control("POST", "config", {"solver_faults": by_solver})


def generate(gw: Gateway, **solver_faults: str) -> str:
    """One image through the OpenAI door (the fake reset first, then `solver_faults` set);
    the token its generate call carried."""
    gw.fake.reset()
    faults(gw, **solver_faults)
    body = ok_json(gw.chat({"model": MODEL, "messages": [{"role": "user", "content": "a red kite"}]},
                           timeout=120))
    assert "![" in body["choices"][0]["message"]["content"], body
    gens = gw.fake.requests("generate_image")
    assert gens, "no generate call"
    return gens[-1]["json"]["clientContext"]["recaptchaContext"]["token"]


def stats(gw: Gateway, token: str) -> dict:
    return ok_json(gw.http.get("/api/captcha/stats", headers={"Authorization": f"Bearer {token}"}))


def test_each_method_generates_with_its_own_token(admin: tuple[Gateway, str]) -> None:
    gw, token = admin
    gw.apply_settings(token, solver_settings(gw, *SOLVERS))
    for solver in SOLVERS:
        gw.apply_settings(token, {"CAPTCHA_METHOD": solver})
        carried = generate(gw)
        assert f"-fake-{solver}-" in carried, (solver, carried)
        tasks = gw.fake.requests("create_task")
        assert tasks and all(t["path"].startswith(f"/{solver}/") for t in tasks), tasks
        assert gw.fake.stats()["rejections"] == [], gw.fake.stats()
    counted = stats(gw, token)["solvers"]
    for solver in SOLVERS:
        assert counted[solver]["solves"] >= 1, counted


def test_the_chain_falls_through_to_the_next_method(admin: tuple[Gateway, str]) -> None:
    gw, token = admin
    before = stats(gw, token)
    # CapMonster has no key, EzCaptcha is out of balance, CapSolver's poll answers an errorId;
    # YesCaptcha (last) gives the token.
    values = solver_settings(gw, "ezcaptcha", "capsolver")
    values["CAPTCHA_METHOD"] = "capmonster,ezcaptcha,capsolver,yescaptcha"
    gw.apply_settings(token, values)
    carried = generate(gw, ezcaptcha="zero_balance", capsolver="poll_error")
    assert "-fake-yescaptcha-" in carried, carried
    # The poll error ended CapSolver's solve at once (one poll, not the two-minute budget).
    polls = [r for r in gw.fake.requests("get_task_result") if r["path"].startswith("/capsolver/")]
    assert len(polls) == 1, polls
    # No call at all to the method without a key.
    assert not [r for r in gw.fake.requests() if r["path"].startswith("/capmonster/")]

    after = stats(gw, token)
    assert after["methods"] == ["capmonster", "ezcaptcha", "capsolver", "yescaptcha"]

    def grew(solver: str, field: str, kind: str | None = None) -> bool:
        def get(view: dict) -> int:
            c = view["solvers"].get(solver, {})
            return c.get("failures_by_kind", {}).get(kind, 0) if kind else c.get(field, 0)
        return get(after) > get(before)

    assert grew("capmonster", "failures", "not_configured"), after
    assert grew("ezcaptcha", "failures", "no_capacity"), after
    assert grew("capsolver", "failures", "provider"), after
    assert grew("yescaptcha", "solves"), after
    rows = {a["email"]: a for a in after["accounts"]}
    assert rows[gw.email]["solves"] >= 1 and rows[gw.email]["latency_ms_total"] >= 0, rows

    # Every method failing: a captcha error naming each reason, no key, and the account is
    # not blamed (it stays usable).
    gw.apply_settings(token, {"CAPTCHA_METHOD": "capmonster,ezcaptcha"})
    faults(gw, ezcaptcha="zero_balance")
    r = gw.chat({"model": MODEL, "messages": [{"role": "user", "content": "a red kite"}]},
                timeout=120)
    err = openai_error(r, r.status_code)
    assert r.status_code >= 500, r.text
    assert "CAPMONSTER_API_KEY is not set" in err["message"], err
    assert "ERROR_ZERO_BALANCE" in err["message"], err
    assert key("ezcaptcha") not in r.text
    gw.apply_settings(token, {"CAPTCHA_METHOD": None})
    assert "-fake-yescaptcha-" in generate(gw)
    assert any(a["email"] == gw.email and a["is_active"] for a in gw.accounts())


def test_google_rejections_are_counted_per_solver_and_account(admin: tuple[Gateway, str]) -> None:
    gw, token = admin
    gw.apply_settings(token, {**solver_settings(gw, "capsolver"), "CAPTCHA_METHOD": "capsolver"})
    before = stats(gw, token)
    gw.fake.reset()
    gw.fake.fault("generate_image", kind="unusual_activity", times=1)
    body = ok_json(gw.chat({"model": MODEL, "messages": [{"role": "user", "content": "a red kite"}]},
                           timeout=120))
    assert "![" in body["choices"][0]["message"]["content"], body
    after = stats(gw, token)
    was = before["solvers"].get("capsolver", {}).get("google_rejected", 0)
    assert after["solvers"]["capsolver"]["google_rejected"] == was + 1, after
    row = {a["email"]: a for a in after["accounts"]}[gw.email]
    old = {a["email"]: a for a in before["accounts"]}.get(gw.email, {}).get("google_rejected", 0)
    assert row["google_rejected"] == old + 1, row


def test_score_test_solves_and_reports_the_verdict(admin: tuple[Gateway, str]) -> None:
    gw, token = admin
    gw.apply_settings(token, {**solver_settings(gw, "capsolver"), "CAPTCHA_METHOD": "capsolver"})
    h = {"Authorization": f"Bearer {token}"}
    gw.fake.reset()
    r = ok_json(gw.http.post("/api/captcha/score-test", headers=h, json={
        "website_url": "https://score.example/detector/",
        "website_key": "site-key-1",
        "action": "homepage",
        "verify_url": f"{gw.fake.base}/score/verify",
    }, timeout=60))
    assert r["success"] is True and r["score"] == 0.9 and r["method"] == "capsolver", r
    assert r["verify_http_status"] == 200 and r["verify_result"]["action"] == "homepage", r
    task = gw.fake.requests("create_task")[-1]["json"]["task"]
    assert task["websiteURL"] == "https://score.example/detector/" and task["websiteKey"] == "site-key-1"
    assert task["pageAction"] == "homepage", task
    # A verify URL that is not one, or a field of the wrong shape, is a 400 naming it.
    r = gw.http.post("/api/captcha/score-test", headers=h, json={"verify_url": "ftp://x"})
    assert r.status_code == 400 and "verify_url" in r.text, r.text
    r = gw.http.post("/api/captcha/score-test", headers=h, json={"nonsense": 1})
    assert r.status_code == 400, r.text
    # Admin routes need a session.
    assert gw.http.get("/api/captcha/stats").status_code == 401
    assert gw.http.post("/api/captcha/score-test", json={}).status_code == 401


def test_bad_methods_are_refused_and_keys_never_listed(admin: tuple[Gateway, str]) -> None:
    gw, token = admin
    for bad, says in [("extension", "extension is not built"),
                      ("capsolver,personal", "personal is not built"),
                      ("capsolver,nonsense", "nonsense"),
                      ("capsolver,capsolver", "twice")]:
        r = gw.patch_settings(token, {"CAPTCHA_METHOD": bad})
        assert r.status_code == 400 and says in r.text, (bad, r.text)
        assert "CAPTCHA_METHOD" in r.text
    r = gw.patch_settings(token, {"CAPSOLVER_BASE_URL": "not a url"})
    assert r.status_code == 400 and "CAPSOLVER_BASE_URL" in r.text, r.text
    gw.apply_settings(token, solver_settings(gw, "capmonster", "ezcaptcha", "capsolver"))
    listed = ok_json(gw.http.get("/api/settings", headers={"Authorization": f"Bearer {token}"}))
    by_name = {s["name"]: s for s in listed["settings"]}
    for solver in ("capmonster", "ezcaptcha", "capsolver"):
        row = by_name[f"{solver.upper()}_API_KEY"]
        assert row["secret"] is True and row["source"] == "override", row
        assert key(solver) not in str(row), row
    text = gw.http.get("/api/captcha/stats", headers={"Authorization": f"Bearer {token}"}).text
    assert not any(key(s) in text for s in SOLVERS)
    # The method names are normalised (case, spaces).
    gw.apply_settings(token, {"CAPTCHA_METHOD": " CapSolver , YESCAPTCHA "})
    assert stats(gw, token)["methods"] == ["capsolver", "yescaptcha"]
    assert "-fake-capsolver-" in generate(gw)


def test_an_account_may_carry_its_own_method(admin: tuple[Gateway, str]) -> None:
    gw, token = admin
    gw.admin_token = token
    gw.apply_settings(token, solver_settings(gw, "capsolver"))  # the global chain stays yescaptcha
    ids = [a["id"] for a in gw.accounts()]

    def put(account: str, body: dict):
        return gw.http.put(f"/api/tokens/{account}", json=body, headers=gw.admin_headers())

    r = put(ids[0], {"captcha_method": "extension"})
    assert r.status_code == 400 and "captcha_method" in r.text and "not built" in r.text, r.text
    try:
        for i in ids:
            ok_json(put(i, {"captcha_method": " CapSolver , yescaptcha", "extension_route_key": "desk-1"}))
        row = next(a for a in gw.accounts() if a["id"] == ids[0])
        assert row["captcha_method"] == "capsolver,yescaptcha", row
        assert row["extension_route_key"] == "desk-1", row
        assert "-fake-capsolver-" in generate(gw)
        # The account's own chain falls through too.
        assert "-fake-yescaptcha-" in generate(gw, capsolver="zero_balance")
    finally:
        for i in ids:
            ok_json(put(i, {"captcha_method": "", "extension_route_key": ""}))
    row = next(a for a in gw.accounts() if a["id"] == ids[0])
    assert row["captcha_method"] is None and row["extension_route_key"] is None, row
    assert "-fake-yescaptcha-" in generate(gw)
