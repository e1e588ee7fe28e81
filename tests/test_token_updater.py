"""The Token Updater extension's routes end to end, on the native server and the worker under
`wrangler dev`, played the way `zy6p/Flow2API-Token-Updater` (background.js) plays them:

1. an admin session: `POST /api/login` (or the console's `localStorage.adminToken`);
2. `GET /api/plugin/config` → `config.connection_token`; when empty,
   `POST /api/plugin/config {"connection_token": "", "auto_enable_on_update": true}` →
   `connection_token` at the top level;
3. `POST /api/tokens/st2at {"st"}` with the admin session → `success`, `email`, `expires`
   (a 400/401/403 there marks the cookie stale);
4. `POST /api/plugin/update-token {"session_token"}` with `Authorization: Bearer <connection
   token>` → `success`, `action`, and a `message` the extension reads the email from; a 401
   makes it fetch the connection token again.

Also `POST /api/plugin/check-tokens`, the refusals (401 without the connection token, 400 for
bad bodies, in the admin API's `{"success": false, "message"}`), the two dead states an
account shows (`expired` with `status_reason` `session_expired` or `grant_expired`, and
`status_at`), and that no secret reaches a list, an error or the server's log.

The tests share the session's stacks (conftest `server`), so each adds its own fake accounts
under fresh emails and deletes them again; the connection token they set up stays (nothing
else uses it) and `auto_enable_on_update` is put back on.
"""

from __future__ import annotations

import re
import secrets
from contextlib import contextmanager
from typing import Any, Iterator

import httpx

from conftest import ADMIN_USERNAME, Gateway, ok_json

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A whole access token of the fake (lists show masked ones: `ya29.f…abcd`).
ACCESS_TOKEN = re.compile(r"ya29\.fake-[0-9a-f]{8,}")


# ---------------------------------------------------------------------------------------------
# the extension's side
# ---------------------------------------------------------------------------------------------

def admin_session(gw: Gateway) -> str:
    r = gw.http.post("/api/login", json={"username": ADMIN_USERNAME, "password": gw.admin_password})
    body = ok_json(r)
    assert body["success"] is True and body["token"], body
    return body["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def ensure_connection(gw: Gateway, admin: str) -> str:
    """ensurePluginConfig: the token the console shows, or one drawn for the extension."""
    r = gw.http.get("/api/plugin/config", headers=bearer(admin))
    config = ok_json(r)["config"]
    assert config["connection_url"].endswith("/api/plugin/update-token"), config
    token = (config.get("connection_token") or "").strip()
    if token:
        return token
    r = gw.http.post("/api/plugin/config", headers=bearer(admin),
                     json={"connection_token": "", "auto_enable_on_update": True})
    body = ok_json(r)
    assert body["success"] is True, body
    token = body["connection_token"].strip()
    assert len(token) >= 32, "a drawn token is long"
    return token


def st2at(gw: Gateway, admin: str, st: str) -> httpx.Response:
    return gw.http.post("/api/tokens/st2at", headers=bearer(admin), json={"st": st})


def push(gw: Gateway, connection: str, st: str) -> httpx.Response:
    return gw.http.post("/api/plugin/update-token", headers=bearer(connection),
                        json={"session_token": st})


def refusal(r: httpx.Response, status: int) -> str:
    """The admin API's refusal: `{"success": false, "message"}` with `status`."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    body = r.json()
    assert body.get("success") is False and body.get("message"), body
    return body["message"]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def fresh_account(gw: Gateway, tag: str) -> tuple[str, str]:
    """A new fake account (not yet in the gateway): its ST and email."""
    st = f"st-upd-{tag}-{secrets.token_hex(16)}"
    email = f"upd-{tag}-{secrets.token_hex(3)}@example.com"
    gw.fake.add_account(st, email, name=f"Updater {tag}", tier="PAYGATE_TIER_TWO", credits=100)
    return st, email


def view(gw: Gateway, admin: str, email: str) -> dict[str, Any] | None:
    r = gw.http.get("/api/tokens", headers=bearer(admin))
    for a in ok_json(r):
        if a["email"] == email:
            return a
    return None


@contextmanager
def cleanup(gw: Gateway, admin: str, *emails: str) -> Iterator[None]:
    """Deletes the accounts with `emails` afterwards and puts auto-enable back on."""
    try:
        yield
    finally:
        for email in emails:
            a = view(gw, admin, email)
            if a is not None:
                gw.http.delete(f"/api/tokens/{a['id']}", headers=bearer(admin))
        gw.http.post("/api/plugin/config", headers=bearer(admin),
                     json={"auto_enable_on_update": True})


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------

def test_the_extension_adds_then_updates_an_account_by_email(server: Gateway) -> None:
    gw = server
    admin = admin_session(gw)
    connection = ensure_connection(gw, admin)
    # Asked again, the console shows the same token.
    assert ensure_connection(gw, admin) == connection
    st, email = fresh_account(gw, "flow")
    with cleanup(gw, admin, email):
        checked = ok_json(st2at(gw, admin, st))
        assert checked["success"] is True and checked["email"] == email, checked
        assert checked["expires"].endswith("Z"), checked
        assert "access_token" not in checked

        r = push(gw, connection, st)
        body = ok_json(r)
        assert (body["success"], body["action"]) == (True, "added"), body
        assert EMAIL.search(body["message"]).group(0) == email, body
        account = view(gw, admin, email)
        assert account is not None and account["id"] == body["token_id"], account
        assert (account["status"], account["remark"]) == ("active", "Added by Chrome Extension")

        # The admin disables it; the browser's cookie changes; the push updates the same
        # account and enables it again.
        ok_json(gw.http.post(f"/api/tokens/{account['id']}/disable", headers=bearer(admin)))
        st2 = f"{st}-renewed"
        gw.fake.add_account(st2, email, name="Updater flow", tier="PAYGATE_TIER_TWO", credits=100)
        body = ok_json(push(gw, connection, st2))
        assert (body["action"], body["auto_enabled"], body["token_id"]) == \
            ("updated", True, account["id"]), body
        assert EMAIL.search(body["message"]).group(0) == email, body
        again = view(gw, admin, email)
        assert (again["status"], again["is_active"]) == ("active", True), again
        assert sum(1 for a in ok_json(gw.http.get("/api/tokens", headers=bearer(admin)))
                   if a["email"] == email) == 1

        # With auto_enable_on_update off, a disabled account takes the ST and stays off.
        ok_json(gw.http.post("/api/plugin/config", headers=bearer(admin),
                             json={"auto_enable_on_update": False}))
        ok_json(gw.http.post(f"/api/tokens/{account['id']}/disable", headers=bearer(admin)))
        body = ok_json(push(gw, connection, st2))
        assert (body["action"], body["auto_enabled"]) == ("updated", False), body
        assert view(gw, admin, email)["status"] == "disabled"

        # check-tokens: the account's health, filtered by email, case-insensitively.
        r = gw.http.post("/api/plugin/check-tokens", headers=bearer(connection),
                         json={"emails": [email.upper()]})
        tokens = ok_json(r)["tokens"]
        assert [t["email"] for t in tokens] == [email], tokens
        assert {"is_active", "needs_refresh", "at_expires", "credits", "status",
                "status_reason"} <= tokens[0].keys(), tokens[0]
        everyone = ok_json(gw.http.post("/api/plugin/check-tokens", headers=bearer(connection)))
        assert {gw.email, email} <= {t["email"] for t in everyone["tokens"]}


def test_pushes_without_the_connection_token_are_refused(server: Gateway) -> None:
    gw = server
    admin = admin_session(gw)
    connection = ensure_connection(gw, admin)
    body = {"session_token": gw.st}
    for headers in ({}, bearer("wrong-" + secrets.token_hex(20)), bearer(connection + "x"),
                    bearer(admin)):
        for path in ("/api/plugin/update-token", "/api/plugin/check-tokens"):
            r = gw.http.post(path, headers=headers, json=body)
            assert "connection token" in refusal(r, 401).lower(), r.text
    # The plugin config needs an admin session, and the connection token is none.
    for headers in ({}, bearer(connection)):
        assert gw.http.get("/api/plugin/config", headers=headers).status_code == 401
        assert gw.http.post("/api/tokens/st2at", headers=headers,
                            json={"st": gw.st}).status_code == 401
    # The raw token, without "Bearer", is accepted as the original accepts it.
    r = gw.http.post("/api/plugin/check-tokens", headers={"Authorization": connection})
    assert ok_json(r)["success"] is True


def test_bad_input_gets_a_clear_error_and_counts_against_nobody(server: Gateway) -> None:
    gw = server
    admin = admin_session(gw)
    connection = ensure_connection(gw, admin)
    unknown_st = f"st-unknown-{secrets.token_hex(16)}"
    headers = {**bearer(connection), "Content-Type": "application/json"}
    cases = [
        (b"{not json", "invalid json"),
        (b"[]", "object"),
        (b"{}", "session_token"),
        (b'{"session_token": ""}', "session_token"),
        (b'{"session_token": 7}', "string"),
        (f'{{"session_token": "{unknown_st}"}}'.encode(), "invalid session token"),
    ]
    for raw, needle in cases:
        r = gw.http.post("/api/plugin/update-token", headers=headers, content=raw)
        message = refusal(r, 400)
        assert needle in message.lower(), message
        assert unknown_st not in r.text
    # st2at: a dead ST is a 400 the extension recognises; a missing one too.
    message = refusal(st2at(gw, admin, unknown_st), 400)
    assert "invalid session token" in message.lower() and unknown_st not in message
    refusal(gw.http.post("/api/tokens/st2at", headers=bearer(admin), json={}), 400)
    # The config refuses unfit tokens and types.
    for payload, needle in (({"connection_token": "short"}, "32"),
                            ({"connection_token": "a" * 40 + " b"}, "printable"),
                            ({"auto_enable_on_update": "yes"}, "true or false")):
        r = gw.http.post("/api/plugin/config", headers=bearer(admin), json=payload)
        assert needle in refusal(r, 400), r.text
    assert ensure_connection(gw, admin) == connection, "refusals change nothing"
    # None of it touched the session's account.
    a = view(gw, admin, gw.email)
    assert (a["status"], a["consecutive_error_count"]) == ("active", 0), a


def test_dead_sessions_and_revoked_grants_show_as_expired(server: Gateway) -> None:
    gw = server
    admin = admin_session(gw)
    connection = ensure_connection(gw, admin)
    st, email = fresh_account(gw, "dead")
    with cleanup(gw, admin, email):
        account_id = ok_json(push(gw, connection, st))["token_id"]

        # Signed out: the ST yields nothing any more.
        gw.fake.expire_st(st)
        r = gw.http.post(f"/api/tokens/{account_id}/refresh", headers=bearer(admin))
        assert r.status_code == 400, r.text
        a = view(gw, admin, email)
        assert (a["status"], a["status_reason"], a["is_active"]) == \
            ("expired", "session_expired", False), a
        assert a["status_at"] and a["status_at"].endswith("Z"), a
        # The extension's check says so too, and st2at marks the cookie stale.
        tokens = ok_json(gw.http.post("/api/plugin/check-tokens", headers=bearer(connection),
                                      json={"emails": [email]}))["tokens"]
        assert (tokens[0]["status"], tokens[0]["status_reason"]) == ("expired", "session_expired")
        refusal(st2at(gw, admin, st), 400)

        # The browser signs in again: the pushed ST mends the same account.
        st2 = f"{st}-back"
        gw.fake.add_account(st2, email, name="Updater dead", tier="PAYGATE_TIER_TWO", credits=100)
        body = ok_json(push(gw, connection, st2))
        assert (body["token_id"], body["status"], body["auto_enabled"]) == \
            (account_id, "active", True), body
        a = view(gw, admin, email)
        assert (a["status"], a["status_reason"]) == ("active", None), a

        # The grant is revoked: the ST still yields tokens, credits refuses them.
        gw.fake.revoke_grant(st2)
        r = gw.http.post(f"/api/tokens/{account_id}/refresh", headers=bearer(admin))
        assert r.status_code == 400, r.text
        a = view(gw, admin, email)
        assert (a["status"], a["status_reason"], a["is_active"]) == \
            ("expired", "grant_expired", False), a
        assert a["status_at"], a
        # Pushing that ST again changes nothing: still a dead grant, whatever auto-enable says.
        body = ok_json(push(gw, connection, st2))
        assert (body["status"], body["status_reason"]) == ("expired", "grant_expired"), body
        # A fresh sign-in brings it back.
        st3 = f"{st}-again"
        gw.fake.add_account(st3, email, name="Updater dead", tier="PAYGATE_TIER_TWO", credits=100)
        assert ok_json(push(gw, connection, st3))["status"] == "active"
    # The session's own account never noticed.
    assert view(gw, admin, gw.email)["status"] == "active"


def test_secrets_stay_out_of_lists_errors_and_logs(server: Gateway) -> None:
    gw = server
    admin = admin_session(gw)
    connection = ensure_connection(gw, admin)
    st, email = fresh_account(gw, "secret")
    dead_st = f"st-dead-{secrets.token_hex(16)}"
    with cleanup(gw, admin, email):
        answers = [push(gw, connection, st), push(gw, connection, dead_st), st2at(gw, admin, st),
                   gw.http.post("/api/plugin/check-tokens", headers=bearer(connection)),
                   gw.http.get("/api/tokens", headers=bearer(admin)),
                   gw.http.get("/api/settings", headers=bearer(admin)),
                   gw.http.post("/api/plugin/update-token", headers=bearer("x" * 40),
                                json={"session_token": st})]
        for r in answers:
            for secret in (st, dead_st, connection):
                assert secret not in r.text, f"{r.request.url.path}: a secret in the answer"
            assert not ACCESS_TOKEN.search(r.text), \
                f"{r.request.url.path}: an access token in the answer"
        # Only the plugin config shows the connection token.
        assert connection in gw.http.get("/api/plugin/config", headers=bearer(admin)).text
    log = gw.proc.log_text()
    for secret in (st, dead_st, connection):
        assert secret not in log, "a secret in the server's log"
    assert not ACCESS_TOKEN.search(log), "an access token in the server's log"
