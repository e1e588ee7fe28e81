"""Monitoring on both servers: GET /health (§11.1 shape, counts), GET /metrics (Prometheus text
behind METRICS_TOKEN, valid for `promtool check metrics` with its lint), and x-request-id on
every answer.

The shared stacks run without METRICS_TOKEN (/metrics answers 404 there); a stack of its own
per server kind sets it."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess

import pytest

from conftest import YESCAPTCHA_KEY, Gateway, ok_json, stack

MODEL = "gemini-3.1-flash-image-landscape"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def sample(text: str, prefix: str) -> float | None:
    """The value of the sample whose name and labels are `prefix`."""
    for line in text.splitlines():
        if line.startswith(prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def promtool_check(text: str) -> None:
    """`promtool check metrics` reads the exposition from stdin: exit 0 and nothing said (its
    lint problems are printed, with exit 3)."""
    assert shutil.which(PROMTOOL) or PROMTOOL, "promtool missing: run scripts/install-tools.sh"
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=60)
    said = (r.stdout + r.stderr).decode()
    assert r.returncode == 0 and not said.strip(), f"promtool check metrics: {r.returncode}: {said}"


# ---------------------------------------------------------------------------------------------
# Shared stacks (no METRICS_TOKEN)
# ---------------------------------------------------------------------------------------------

def test_metrics_absent_without_a_token(server: Gateway):
    r = server.http.get("/metrics")
    assert r.status_code == 404, r.text
    r = server.http.get("/metrics", headers={"Authorization": f"Bearer {server.api_key}"})
    assert r.status_code == 404, r.text


def test_request_id_echoed_or_generated(server: Gateway):
    given = f"e2e-{secrets.token_hex(6)}.x_y"
    r = server.http.get("/health", headers={"x-request-id": given})
    assert r.headers["x-request-id"] == given
    # An id that is not sane is replaced, not echoed.
    for bad in ("has space", "x" * 65, "<b>"):
        r = server.http.get("/health", headers={"x-request-id": bad})
        assert r.headers["x-request-id"] != bad
        assert ID_RE.match(r.headers["x-request-id"]), r.headers["x-request-id"]
    # Generated, and a different one each time; on refusals and API routes too.
    a = server.http.get("/health").headers["x-request-id"]
    b = server.http.get("/health").headers["x-request-id"]
    assert a != b and ID_RE.match(a) and ID_RE.match(b)
    r = server.http.get("/v1/models")
    assert r.status_code == 401 and ID_RE.match(r.headers["x-request-id"])
    r = server.http.get("/v1/models", headers={**server.auth(), "x-request-id": given})
    assert r.status_code == 200 and r.headers["x-request-id"] == given
    r = server.http.get(f"/no-such-route-{secrets.token_hex(3)}")
    assert r.status_code == 404 and ID_RE.match(r.headers["x-request-id"])
    # The id is in the server's log line of the request.
    server.http.get("/health", headers={"x-request-id": given + "-log"})
    from conftest import wait_until
    wait_until(lambda: given + "-log" in server.proc.log_text(), 30,
               "waiting for the request's log line", server.proc, interval=0.2)


def test_health_shape(server: Gateway):
    body = ok_json(server.http.get("/health"))
    assert body["status"] == "ok"
    assert body["backend_running"] is True
    for key in ("total_tokens", "active_tokens", "tokens_missing_at", "tokens_expired",
                "tokens_expiring_within_1h", "banned_429_tokens"):
        assert isinstance(body[key], int) and body[key] >= 0, (key, body)
    assert body["has_active_tokens"] is (body["active_tokens"] > 0)
    assert body["captcha_method"] == "yescaptcha"
    assert body["remote_browser_configured"] is False
    text = server.http.get("/health").text
    for secret in (server.api_key, server.admin_password, server.st, YESCAPTCHA_KEY):
        assert secret not in text


# ---------------------------------------------------------------------------------------------
# A stack per kind with METRICS_TOKEN
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["native", "worker"])
def metered(request):
    token = f"mt-{secrets.token_hex(16)}"
    with stack(request.param, f"metrics-{request.param}", extra={"METRICS_TOKEN": token}) as gw:
        gw.extra["METRICS_TOKEN"] = token
        yield gw


def scrape(gw: Gateway) -> str:
    r = gw.http.get("/metrics", headers={"Authorization": f"Bearer {gw.extra['METRICS_TOKEN']}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4"), r.headers
    return r.text


def test_metrics_token_is_checked(metered: Gateway):
    token = metered.extra["METRICS_TOKEN"]
    assert metered.http.get("/metrics").status_code == 401
    for wrong in (token[:-1] + ("0" if token[-1] != "0" else "1"), metered.api_key, token + "x"):
        r = metered.http.get("/metrics", headers={"Authorization": f"Bearer {wrong}"})
        assert r.status_code == 401, (wrong, r.status_code)
    assert metered.http.get("/metrics", headers={"Authorization": token}).status_code == 401
    scrape(metered)


def test_generation_moves_the_counters_and_passes_promtool(metered: Gateway):
    before = scrape(metered)
    labels = f'route="/v1/chat/completions",model="{MODEL}",status="200"'
    requests_before = sample(before, f"flow2api_http_requests_total{{{labels}}}") or 0
    solves_before = sample(before, 'flow2api_captcha_solves_total{solver="yescaptcha"}') or 0
    images_before = sample(
        before, 'flow2api_generation_requests_total{generation_type="image",result="success"}') or 0

    r = metered.chat({"model": MODEL, "messages": user(f"a lighthouse {secrets.token_hex(3)}")})
    assert r.status_code == 200, r.text

    text = scrape(metered)
    assert sample(text, f"flow2api_http_requests_total{{{labels}}}") == requests_before + 1, text
    assert sample(text, f"flow2api_http_request_duration_seconds_count{{{labels}}}") == requests_before + 1
    assert sample(text, f'flow2api_http_request_duration_seconds_bucket{{{labels},le="+Inf"}}') \
        == requests_before + 1
    assert sample(text, 'flow2api_captcha_solves_total{solver="yescaptcha"}') == solves_before + 1, text
    assert sample(text, 'flow2api_generation_requests_total{generation_type="image",result="success"}') \
        == images_before + 1
    assert sample(text, 'flow2api_slots_in_use{kind="image"}') == 0
    assert sample(text, "flow2api_up") == 1
    assert sample(text, "flow2api_tokens_active") >= 1

    promtool_check(text)
    for secret in (metered.api_key, metered.admin_password, metered.st, YESCAPTCHA_KEY,
                   metered.extra["METRICS_TOKEN"]):
        assert secret not in text, "a secret in /metrics"
    # The original's gauges named like counters are renamed.
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if not line.startswith("#")}
    for old in ("flow2api_tokens_total", "flow2api_image_inflight_total", "flow2api_token_credits_total"):
        assert old not in names
    assert {"flow2api_tokens", "flow2api_image_inflight", "flow2api_tokens_credits"} <= names


def test_health_counts_follow_the_accounts(metered: Gateway):
    before = ok_json(metered.http.get("/health"))
    st = f"st-metrics-{secrets.token_hex(12)}"
    metered.fake.add_account(st, f"m-{secrets.token_hex(3)}@example.com", tier="PAYGATE_TIER_TWO",
                             credits=100)
    r = metered.add_token(st)
    assert r.status_code == 200, r.text
    added = ok_json(metered.http.get("/health"))
    assert added["total_tokens"] == before["total_tokens"] + 1
    assert added["active_tokens"] == before["active_tokens"] + 1
    tid = r.json()["token"]["id"]
    r = metered.http.post(f"/api/tokens/{tid}/disable", headers=metered.admin_headers())
    assert r.status_code == 200, r.text
    disabled = ok_json(metered.http.get("/health"))
    assert disabled["total_tokens"] == before["total_tokens"] + 1
    assert disabled["active_tokens"] == before["active_tokens"]
    assert disabled["has_active_tokens"] is True
    text = scrape(metered)
    assert sample(text, "flow2api_tokens") == disabled["total_tokens"]
    assert sample(text, "flow2api_tokens_inactive") == disabled["total_tokens"] - disabled["active_tokens"]
    r = metered.http.delete(f"/api/tokens/{tid}", headers=metered.admin_headers())
    assert r.status_code == 200, r.text
    assert ok_json(metered.http.get("/health"))["total_tokens"] == before["total_tokens"]
