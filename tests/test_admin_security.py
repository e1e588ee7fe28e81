"""The admin API's defences end to end, on the native server and the worker under `wrangler dev`:
failed logins throttled per client address (429 with Retry-After, the right password refused
too while locked out), logout, password changes that end every session, and CORS on /api/*
only for the origins ADMIN_CORS_ORIGINS lists.

These tests lock addresses out and change the admin password, so they run on a private stack
per server kind (`conftest.stack`), shared by the tests of this module, with
TRUST_FORWARDED_HEADERS on: each test speaks for its own client address through
X-Forwarded-For, so one test's lockout does not touch another's. The lockout test itself uses
the connection's own address (natively the TCP peer, at the edge CF-Connecting-IP, which
`wrangler dev` sets like Cloudflare does).
"""

from __future__ import annotations

import secrets
from typing import Iterator

import httpx
import pytest

from conftest import ADMIN_USERNAME, Gateway, ok_json, openai_error, stack

LISTED_ORIGIN = "https://console.example"
OTHER_ORIGIN = "https://elsewhere.example"
MAX_FAILURES = 5      # LOGIN_MAX_FAILURES (the default)
WINDOW = 300          # LOGIN_WINDOW (the default)

SECURITY_SETTINGS = {
    "TRUST_FORWARDED_HEADERS": "true",
    "ADMIN_CORS_ORIGINS": LISTED_ORIGIN,
    # bcrypt's cheapest cost: the tests hash and check new passwords several times.
    "ADMIN_PASSWORD_COST": "4",
    "LOG_REQUESTS": "0",
}


@pytest.fixture(scope="module", params=["native", "worker"])
def gw(request) -> Iterator[Gateway]:
    """A private stack with SECURITY_SETTINGS and no account."""
    with stack(request.param, f"{request.param}-admin-security", extra=SECURITY_SETTINGS,
               account=False) as g:
        yield g


def client(n: int) -> dict[str, str]:
    """Headers that make a request come from client address 198.51.100.n (for the proxy the
    private stack trusts)."""
    return {"X-Forwarded-For": f"198.51.100.{n}"}


def login(gw: Gateway, password: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return gw.http.post("/api/login", json={"username": ADMIN_USERNAME, "password": password},
                        headers=headers or {})


def session(gw: Gateway, headers: dict[str, str]) -> str:
    r = login(gw, gw.admin_password, headers)
    body = ok_json(r)
    assert body["success"] is True and body["token"], body
    return body["token"]


def bearer(token: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **(headers or {})}


def retry_after(r: httpx.Response) -> int:
    """The Retry-After of a lockout: 429 in the OpenAI error shape, a whole number of seconds."""
    err = openai_error(r, 429)
    assert err["code"] == "too_many_login_attempts", err
    value = r.headers.get("retry-after", "")
    assert value.isdigit(), r.headers
    assert 0 < int(value) <= WINDOW, value
    return int(value)


def test_failed_logins_are_locked_out_with_retry_after(gw: Gateway) -> None:
    statuses = [login(gw, "wrong-" + secrets.token_hex(4)) for _ in range(30)]
    assert [r.status_code for r in statuses[:MAX_FAILURES]] == [401] * MAX_FAILURES, \
        [(r.status_code, r.text) for r in statuses[:MAX_FAILURES]]
    for r in statuses[MAX_FAILURES:]:
        retry_after(r)
    # Locked out, the right password is refused too (it is not even checked).
    retry_after(login(gw, gw.admin_password))
    # Other clients may still log in.
    session(gw, client(10))


def test_logout_ends_the_session(gw: Gateway) -> None:
    token = session(gw, client(20))
    other = session(gw, client(20))
    ok_json(gw.http.get("/api/tokens", headers=bearer(token)))
    body = ok_json(gw.http.post("/api/logout", headers=bearer(token)))
    assert body["success"] is True, body
    assert gw.http.get("/api/tokens", headers=bearer(token)).status_code == 401
    assert gw.http.post("/api/logout", headers=bearer(token)).status_code == 401
    # The alias, and only the session it names ends.
    ok_json(gw.http.get("/api/tokens", headers=bearer(other)))
    ok_json(gw.http.post("/api/admin/logout", headers=bearer(other)))
    assert gw.http.get("/api/tokens", headers=bearer(other)).status_code == 401


def change_password(gw: Gateway, token: str, old: str, new: str,
                    headers: dict[str, str]) -> httpx.Response:
    return gw.http.post("/api/admin/change-password",
                        json={"old_password": old, "new_password": new},
                        headers=bearer(token, headers))


def test_change_password(gw: Gateway) -> None:
    old = gw.admin_password
    new = "changed-" + secrets.token_hex(8)
    first = session(gw, client(30))
    second = session(gw, client(31))

    # A wrong old password is refused and counts like a failed login.
    for _ in range(MAX_FAILURES):
        r = change_password(gw, second, "not-" + old, new, client(31))
        assert r.status_code in (400, 401), r.text
        assert r.json()["success"] is False, r.text
    retry_after(change_password(gw, second, old, new, client(31)))
    # A new password under 8 characters is refused.
    r = change_password(gw, first, old, "short", client(30))
    assert r.status_code == 400 and r.json()["success"] is False, r.text

    body = ok_json(gw.http.post("/api/admin/password",
                                json={"old_password": old, "new_password": new},
                                headers=bearer(first, client(30))))
    assert body["success"] is True, body
    gw.admin_password = new  # for the module's later tests and any later login

    # Every session has ended; the old password no longer logs in, the new one does.
    for token in (first, second):
        assert gw.http.get("/api/tokens", headers=bearer(token)).status_code == 401
    openai_error(login(gw, old, client(32)), 401)
    fresh = session(gw, client(32))
    ok_json(gw.http.get("/api/tokens", headers=bearer(fresh)))


def test_cors_only_for_listed_origins(gw: Gateway) -> None:
    def preflight(origin: str) -> httpx.Response:
        return gw.http.options("/api/login", headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        })

    r = preflight(OTHER_ORIGIN)
    assert r.status_code < 300, r.text
    assert "access-control-allow-origin" not in r.headers, r.headers
    assert "access-control-allow-methods" not in r.headers, r.headers
    r = login(gw, "wrong", {"Origin": OTHER_ORIGIN, **client(40)})
    assert r.status_code == 401, r.text
    assert "access-control-allow-origin" not in r.headers, r.headers

    r = preflight(LISTED_ORIGIN)
    assert r.headers.get("access-control-allow-origin") == LISTED_ORIGIN, r.headers
    assert "origin" in r.headers.get("vary", "").lower(), r.headers
    assert "authorization" in r.headers.get("access-control-allow-headers", ""), r.headers
    r = login(gw, gw.admin_password, {"Origin": LISTED_ORIGIN, **client(41)})
    assert r.status_code == 200, r.text
    assert r.headers.get("access-control-allow-origin") == LISTED_ORIGIN, r.headers

    # The API routes still allow any origin.
    r = gw.http.get("/v1/models", headers={"Origin": OTHER_ORIGIN, **gw.auth()})
    assert r.status_code == 200, r.text
    assert r.headers.get("access-control-allow-origin") == "*", r.headers


def test_no_cors_on_the_admin_api_by_default(server: Gateway) -> None:
    """The shared stacks list no origin: /api/* answers carry no CORS headers at all."""
    r = server.http.options("/api/login", headers={
        "Origin": LISTED_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers, r.headers
    r = server.http.get("/api/tokens", headers={"Origin": LISTED_ORIGIN})
    assert r.status_code == 401
    assert "access-control-allow-origin" not in r.headers, r.headers
    r = server.http.get("/v1/models", headers={"Origin": LISTED_ORIGIN, **server.auth()})
    assert r.headers.get("access-control-allow-origin") == "*", r.headers
