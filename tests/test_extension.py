"""The `extension` captcha method (§10.5) on both servers: a Python client plays the original
Flow2API's captcha extension on `GET /captcha_ws` (register, ping, get_token replies).

* an image generates with `CAPTCHA_METHOD=extension` and its generate call carries the token
  the extension replied with; `register` is answered `register_ack`;
* a bad key, no key and a tenant's key are closed with 1008 (only the root key attaches);
* replies from another connection than the one asked are ignored;
* route keys: an account with route key K is served by the connection registered with K, not
  by the one with the empty key, whether K was in its URL or only in `register` (at the edge:
  in another hub object than K's); no match is an error listing every connected route;
* `extension,capsolver` falls through to CapSolver when no browser serves the route, and when
  the browser does not answer within 25 s.

Settings and the account's route key are changed at runtime on the shared stacks and put back.
Each test uses route keys of its own, so sockets another test left closing cannot serve it.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from typing import Any, Iterator

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from conftest import Gateway, ok_json, openai_error

MODEL = "gemini-3.1-flash-image-landscape"
TOUCHED = ["CAPTCHA_METHOD", "CAPSOLVER_API_KEY", "CAPSOLVER_BASE_URL"]


def change(gw: Gateway, values: dict) -> None:
    gw.apply_settings(gw.admin_token, values)


def set_route(gw: Gateway, route_key: str) -> None:
    """Gives every account of the stack `route_key` (empty: none)."""
    for a in gw.accounts():
        ok_json(gw.http.put(f"/api/tokens/{a['id']}", json={"extension_route_key": route_key},
                            headers=gw.admin_headers()))
    time.sleep(2.1 if gw.kind == "worker" else 0)  # the worker's account cache


@pytest.fixture
def gw(server: Gateway) -> Iterator[Gateway]:
    server.admin_token = server.login()
    try:
        yield server
    finally:
        set_route(server, "")
        ok_json(server.patch_settings(server.admin_token, {k: None for k in TOUCHED}))


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def ws_url(gw: Gateway, **query: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return gw.base.replace("http://", "ws://") + "/captcha_ws" + (f"?{q}" if q else "")


class Extension:
    """One browser running the extension: registers, then answers each `get_token` (unless
    `answer` is False) with a token the fake's Google accepts, from a thread."""

    def __init__(self, gw: Gateway, route_key: str, label: str, *, answer: bool = True,
                 url_route: str | None = None, delay: float = 0.0) -> None:
        self.gw, self.label, self.answer, self.delay = gw, label, answer, delay
        self.asked: list[dict] = []
        self.tokens: list[str] = []
        self.on_ask = None  # called with each get_token before the answer
        # Entered by hand: the connection outlives this call (closed by `close`).
        self.ws: ClientConnection = connect(
            ws_url(gw, key=gw.api_key, route_key=route_key if url_route is None else url_route,
                   client_label=label),
            proxy=None, open_timeout=15).__enter__()
        self.ws.send(json.dumps({"type": "register", "route_key": route_key, "client_label": label}))
        self.ack = json.loads(self.ws.recv(timeout=15))
        self.ws.send(json.dumps({"type": "ping"}))
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for frame in self.ws:
                m = json.loads(frame)
                if m.get("type") != "get_token":
                    continue
                self.asked.append(m)
                if self.on_ask:
                    self.on_ask(m)
                if not self.answer:
                    continue
                time.sleep(self.delay)
                # Solved "in the page": the fake's Google accepts it once, for that action.
                token = self.gw.fake._control("POST", "browser_token", {"action": m["action"]})["token"]
                self.tokens.append(token)
                self.reply(m["req_id"], token)
        except ConnectionClosed:
            pass

    def reply(self, req_id: str, token: str) -> None:
        self.ws.send(json.dumps({"req_id": req_id, "status": "success", "token": token}))

    def close(self) -> None:
        self.ws.close()
        self.thread.join(timeout=10)


def generate(gw: Gateway) -> Any:
    gw.fake.reset()
    return gw.chat({"model": MODEL, "messages": [{"role": "user", "content": "a red kite"}]},
                   timeout=120)


def carried(gw: Gateway) -> str:
    """The captcha token of the last generate call the fake saw."""
    gens = gw.fake.requests("generate_image")
    assert gens, "no generate call"
    return gens[-1]["json"]["clientContext"]["recaptchaContext"]["token"]


def generated_token(gw: Gateway) -> str:
    r = generate(gw)
    body = ok_json(r)
    assert "![" in body["choices"][0]["message"]["content"], body
    return carried(gw)


def capsolver(gw: Gateway) -> dict:
    return {"CAPSOLVER_BASE_URL": f"{gw.fake.base}/capsolver", "CAPSOLVER_API_KEY": "fake-capsolver-key"}


def closed_with(gw: Gateway, url: str, headers: dict | None = None) -> int:
    with connect(url, proxy=None, open_timeout=15, additional_headers=headers) as ws:
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=15)
        assert e.value.rcvd is not None, e.value
        return e.value.rcvd.code


def test_an_image_carries_the_token_the_extension_replied_with(gw: Gateway) -> None:
    route = unique("desk")
    change(gw, {"CAPTCHA_METHOD": "extension"})
    set_route(gw, route)
    ext = Extension(gw, route, "e2e-browser")
    try:
        assert ext.ack == {"type": "register_ack", "route_key": route, "client_label": "e2e-browser"}
        token = generated_token(gw)
        assert token == ext.tokens[-1], (token, ext.tokens)
        ask = ext.asked[-1]
        assert set(ask) == {"type", "req_id", "action", "project_id", "route_key"}, ask
        assert re.fullmatch(r"req_[0-9a-f]{32}", ask["req_id"]), ask
        assert ask["action"] == "IMAGE_GENERATION" and ask["route_key"] == route, ask
        assert ask["project_id"], ask
        # Booked under the method's name.
        stats = ok_json(gw.http.get("/api/captcha/stats", headers=gw.admin_headers()))
        assert stats["solvers"]["extension"]["solves"] >= 1, stats
    finally:
        ext.close()


def test_only_the_root_key_attaches(gw: Gateway) -> None:
    # A plain GET is no upgrade.
    assert gw.http.get("/captcha_ws", params={"key": gw.api_key}).status_code == 400
    assert closed_with(gw, ws_url(gw, key="wrong-key")) == 1008
    assert closed_with(gw, ws_url(gw)) == 1008
    r = gw.http.post("/api/keys", json={"name": unique("tenant")}, headers=gw.admin_headers())
    assert r.status_code == 201, r.text
    tenant = r.json()["key"]
    assert closed_with(gw, ws_url(gw, key=tenant)) == 1008
    assert closed_with(gw, ws_url(gw), {"Authorization": f"Bearer {tenant}"}) == 1008
    # The root key in a header or as api_key is let in.
    for url, headers in [(ws_url(gw), {"x-goog-api-key": gw.api_key}),
                         (ws_url(gw, api_key=gw.api_key), None)]:
        with connect(url, proxy=None, open_timeout=15, additional_headers=headers) as ws:
            ws.send(json.dumps({"type": "register", "route_key": unique("k"), "client_label": "x"}))
            assert json.loads(ws.recv(timeout=15))["type"] == "register_ack"


def test_a_reply_from_another_connection_is_ignored(gw: Gateway) -> None:
    route = unique("desk")
    change(gw, {"CAPTCHA_METHOD": "extension"})
    set_route(gw, route)
    asked = Extension(gw, route, "asked", delay=1.0)
    other = Extension(gw, unique("elsewhere"), "other")
    # The other connection answers every ask it hears of first, with a forged token.
    asked.on_ask = lambda m: other.reply(m["req_id"], "forged-token")
    try:
        token = generated_token(gw)
        assert token == asked.tokens[-1] and token != "forged-token", token
        assert other.asked == [], other.asked
    finally:
        asked.close()
        other.close()


def test_route_keys_pick_the_browser(gw: Gateway) -> None:
    route = unique("desk")
    change(gw, {"CAPTCHA_METHOD": "extension"})
    set_route(gw, route)
    plain = Extension(gw, "", "plain")
    # Registers under the route key its URL did not name: `register` decides (at the edge the
    # socket stays in the hub object of its URL's key, and the directory sends solves there).
    keyed = Extension(gw, route, "keyed", url_route="")
    # One whose URL names its key: at the edge, in a hub object of its own.
    apart = unique("apart")
    other = Extension(gw, apart, "apart")
    try:
        assert keyed.ack["route_key"] == route, keyed.ack
        assert generated_token(gw) == keyed.tokens[-1]
        assert len(keyed.asked) == 1 and plain.asked == [], (keyed.asked, plain.asked)
        set_route(gw, apart)
        assert generated_token(gw) == other.tokens[-1]
        # No connection has the account's key: the error lists every connected route.
        missing = unique("missing")
        set_route(gw, missing)
        r = generate(gw)
        assert r.status_code >= 500, r.text
        err = openai_error(r, r.status_code)
        assert "available routes" in err["message"], err
        assert f'"{route}"' in err["message"] and f'"{apart}"' in err["message"], err
        assert missing in err["message"], err
        assert gw.api_key not in r.text
        assert plain.asked == [] and len(keyed.asked) == 1, (plain.asked, keyed.asked)
        # The account is not blamed for it.
        assert all(a["is_active"] for a in gw.accounts())
        # A browser that leaves is forgotten: its key is no longer offered.
        other.close()
        time.sleep(1)
        r = generate(gw)
        err = openai_error(r, r.status_code)
        assert f'"{apart}"' not in err["message"] and f'"{route}"' in err["message"], err
    finally:
        plain.close()
        keyed.close()
        other.close()


def test_the_chain_falls_through_when_no_browser_serves(gw: Gateway) -> None:
    change(gw, {**capsolver(gw), "CAPTCHA_METHOD": "extension,capsolver"})
    set_route(gw, unique("nobody"))
    assert "-fake-capsolver-" in generated_token(gw)
    stats = ok_json(gw.http.get("/api/captcha/stats", headers=gw.admin_headers()))
    assert stats["methods"] == ["extension", "capsolver"], stats
    assert stats["solvers"]["extension"]["failures_by_kind"]["no_capacity"] >= 1, stats


def test_a_browser_that_does_not_answer_falls_through_after_25_s(gw: Gateway) -> None:
    route = unique("slow")
    change(gw, {**capsolver(gw), "CAPTCHA_METHOD": "extension,capsolver"})
    set_route(gw, route)
    mute = Extension(gw, route, "mute", answer=False)
    try:
        started = time.monotonic()
        token = generated_token(gw)
        took = time.monotonic() - started
        assert "-fake-capsolver-" in token, token
        assert len(mute.asked) == 1, mute.asked
        assert 24 <= took < 60, took
        # A late reply to the ask that timed out changes nothing.
        mute.reply(mute.asked[0]["req_id"], "too-late")
    finally:
        mute.close()
