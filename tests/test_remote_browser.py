"""The `remote_browser` captcha method on both servers, against the fake's browser service
(`<fake>/api/v1/…`, the contract of the browser services users already run):

* an image generates with the service's token, and the generate call presents the browser's
  fingerprint: its User-Agent, Accept-Language, client hints and Google cookie;
* the service hears `prefill` before, `finish` after every submit and `error` when Google
  refused the token, each with the Bearer key;
* `remote_browser,capsolver` falls through to CapSolver when no browser is free;
* a video submit is preceded by the web app's warm-up (W1–W5) with the solver's User-Agent;
* the key never shows in settings or errors; the probe reaches `GET /api/captcha/stats`.

Settings are changed at runtime (PATCH /api/settings) on the shared stacks and put back.
"""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from conftest import Gateway, ok_json

MODEL = "gemini-3.1-flash-image-landscape"
VIDEO = "veo_3_1_t2v_fast_landscape"
KEY = "fake-remote_browser-key"
UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/146.0.0.0 Safari/537.36")
TOUCHED = ["CAPTCHA_METHOD", "REMOTE_BROWSER_BASE_URL", "REMOTE_BROWSER_API_KEY",
           "CAPSOLVER_API_KEY", "CAPSOLVER_BASE_URL"]
SERVICE = ["remote_browser_prefill", "remote_browser_solve", "remote_browser_finish",
           "remote_browser_error"]






def faults(gw: Gateway, **by_solver: str | None) -> None:
    gw.fake._control("POST", "config", {"solver_faults": by_solver})


@pytest.fixture
def admin(server: Gateway) -> Iterator[tuple[Gateway, str]]:
    token = server.login()
    server.apply_settings(token, {
        "CAPTCHA_METHOD": "remote_browser",
        # The service's base URL: the fake routes `/api/v1/…` under any prefix.
        "REMOTE_BROWSER_BASE_URL": f"{server.fake.base}/browser-service",
        "REMOTE_BROWSER_API_KEY": KEY,
    })
    try:
        yield server, token
    finally:
        ok_json(server.patch_settings(token, {k: None for k in TOUCHED}))
        faults(server, remote_browser=None)


def generate(gw: Gateway) -> dict:
    """One image through the OpenAI door after a reset of the fake; its generate call."""
    body = ok_json(gw.chat({"model": MODEL, "messages": [{"role": "user", "content": "a red kite"}]},
                           timeout=120))
    assert "![" in body["choices"][0]["message"]["content"], body
    gens = gw.fake.requests("generate_image")
    assert gens, "no generate call"
    return gens[-1]


def header(request: dict, name: str) -> str | None:
    for k, v in request["headers"]:
        if k == name:
            return v
    return None


def token_of(request: dict) -> str:
    return request["json"]["clientContext"]["recaptchaContext"]["token"]


def test_an_image_carries_the_browsers_token_and_fingerprint(admin: tuple[Gateway, str]) -> None:
    gw, token = admin
    gw.fake.reset()
    g = generate(gw)
    assert "-fake-remote_browser-" in token_of(g), token_of(g)
    assert header(g, "user-agent") == UA
    assert header(g, "accept-language") == "en-GB,en;q=0.8"
    assert header(g, "sec-ch-ua-platform") == '"Linux"'
    assert "NID=fake-nid-" in (header(g, "cookie") or "")
    assert gw.fake.stats()["rejections"] == [], gw.fake.stats()

    calls = [r for r in gw.fake.requests() if r["endpoint"] in SERVICE]
    assert [c["endpoint"] for c in calls] == SERVICE[:3], calls
    assert all(c["path"].startswith("/browser-service/api/v1/") for c in calls), calls
    assert all(header(c, "authorization") == f"Bearer {KEY}" for c in calls)
    solve = calls[1]["json"]
    assert solve["action"] == "IMAGE_GENERATION" and solve["project_id"], solve
    assert calls[2]["json"] == {"status": "success"}

    listed = ok_json(gw.http.get("/api/settings", headers={"Authorization": f"Bearer {token}"}))
    assert KEY not in str(listed)
    stats = ok_json(gw.http.get("/api/captcha/stats", headers={"Authorization": f"Bearer {token}"}))
    assert stats["remote_browser"]["up"] is True, stats
    assert KEY not in str(stats)


def test_a_refused_token_is_reported_and_solved_again(admin: tuple[Gateway, str]) -> None:
    gw, _ = admin
    gw.fake.reset()
    gw.fake.fault("generate_image", kind="unusual_activity", times=1)
    g = generate(gw)
    assert "-fake-remote_browser-" in token_of(g)
    calls = [r for r in gw.fake.requests() if r["endpoint"] in SERVICE[1:]]
    assert [c["endpoint"] for c in calls] == [
        "remote_browser_solve", "remote_browser_finish", "remote_browser_error",
        "remote_browser_solve", "remote_browser_finish"], calls
    assert calls[2]["json"] == {"error_reason": "PUBLIC_ERROR_UNUSUAL_ACTIVITY"}
    assert calls[4]["json"] == {"status": "success"}


def test_the_chain_falls_through_when_no_browser_is_free(admin: tuple[Gateway, str]) -> None:
    gw, token = admin
    gw.apply_settings(token, {
        "CAPTCHA_METHOD": "remote_browser,capsolver",
        "CAPSOLVER_BASE_URL": f"{gw.fake.base}/capsolver",
        "CAPSOLVER_API_KEY": "fake-capsolver-key",
    })
    gw.fake.reset()
    faults(gw, remote_browser="no_slot")
    g = generate(gw)
    assert "-fake-capsolver-" in token_of(g), token_of(g)
    assert header(g, "user-agent") != UA
    assert gw.fake.requests("remote_browser_solve"), "the browser service was asked first"
    assert not gw.fake.requests("remote_browser_finish")


def test_a_video_submit_follows_the_web_apps_warm_up(admin: tuple[Gateway, str]) -> None:
    gw, _ = admin
    gw.fake.reset()
    r = gw.http.post("/v1/videos", json={"model": VIDEO, "prompt": "waves at dusk"},
                     headers=gw.auth())
    job = ok_json(r)
    deadline = time.time() + 120
    while job["status"] not in ("completed", "failed") and time.time() < deadline:
        time.sleep(0.2)
        job = ok_json(gw.http.get(f"/v1/videos/{job['id']}", headers=gw.auth()))
    assert job["status"] == "completed", job
    seq = [r for r in gw.fake.requests()
           if r["endpoint"] in ("warm_up", "remote_browser_solve", "generate_video_text")]
    tails = [r["path"].replace(":", "/").rsplit("/", 1)[-1] for r in seq]
    assert tails == ["solve", "general.fetchUserPreferences", "videoFx.getFlowAppConfig",
                     "videoFx.getUserSettings", "general.submitBatchLog",
                     "checkAppAvailability", "batchAsyncGenerateVideoText"], tails
    for w in seq[1:6]:
        assert header(w, "user-agent") == UA
        assert header(w, "origin") == "https://labs.google"
    assert gw.st in (header(seq[1], "cookie") or "")
    assert header(seq[5], "authorization") is None
    assert header(seq[5], "x-goog-api-key"), seq[5]["headers"]
    assert seq[4]["json"]["json"]["appEvents"][0]["eventMetadata"]["sessionId"] == \
        seq[6]["json"]["clientContext"]["sessionId"]
