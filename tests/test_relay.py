"""Egress: the relay (`flow2api-server --relay`) and proxies, end to end (`docs/egress.md`).

* The relay itself: a request signed as documented is forwarded; a bad signature is 401, a
  replayed nonce 401, a host outside its allow-list 403 (checked with a signer written here
  from the documented header format, so the format is pinned).
* Both hosts with `EGRESS_RELAY_URL`: an image is generated and every call the fake upstream
  saw (session, credits, projects, captcha, generate) came through the relay: the relay's
  count of forwarded requests equals the fake's count of requests. The same per account, on
  the shared stacks (`egress_relay_url` on the account). A relay that is down answers 503 with
  `Retry-After`, and the account is not penalised.
* Natively: a generation through an HTTP proxy (with credentials) and through a SOCKS5 proxy
  (small asyncio proxies over loopback, counting what they carry); an account's proxy beats
  the global one; `/api/proxy/config` normalises and masks; `/api/proxy/test` works. At the
  edge a proxy is refused clearly rather than bypassed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import struct
import threading
import time
from typing import Iterator

import httpx
import pytest

from conftest import (Fake, Gateway, Proc, SERVER_BIN, _TMP, free_port, ok_json, register_account,
                      start_fake, start_gateway, stop_stack, wait_until)

MODEL = "gemini-3.1-flash-image-landscape"
RELAY_SECRET = "relay-secret-" + secrets.token_hex(8)


# ---------------------------------------------------------------------------------------------
# The relay process and a signer written from the documented format
# ---------------------------------------------------------------------------------------------

class Relay:
    def __init__(self, name: str, fake: Fake, port: int | None = None,
                 extra: dict[str, str] | None = None) -> None:
        self.name = name
        self.fake = fake
        self.extra = extra or {}
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.start()

    def start(self) -> None:
        env = {
            "PATH": "/usr/bin:/bin",
            "RELAY_SECRET": RELAY_SECRET,
            "LISTEN_ADDR": f"127.0.0.1:{self.port}",
            "FLOW_LABS_BASE_URL": self.fake.labs_base,
            "FLOW_API_BASE_URL": self.fake.api_base,
            "YESCAPTCHA_BASE_URL": self.fake.yescaptcha_base,
            "RELAY_ALLOW_HOSTS": "allowed.invalid",
            **self.extra,
        }
        self.proc = Proc(self.name, [str(SERVER_BIN), "--relay"], env=env, cwd=_TMP)

        def up() -> bool:
            try:
                return httpx.get(f"{self.base}/healthz", timeout=2, trust_env=False).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 30, f"relay {self.name} listening", self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def forwarded(self) -> int:
        return httpx.get(f"{self.base}/healthz", timeout=5, trust_env=False).json()["forwarded"]


def signed_headers(method: str, url: str, body: bytes, *, secret: str = RELAY_SECRET,
                   nonce: str | None = None, ts: int | None = None) -> dict[str, str]:
    """The four X-Relay-* headers, exactly as docs/egress.md describes them."""
    nonce = nonce or secrets.token_hex(16)
    ts = int(time.time()) if ts is None else ts
    canonical = "\n".join(["v1", method.upper(), url, str(ts), nonce, hashlib.sha256(body).hexdigest()])
    sig = hmac.new(secret.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return {"X-Relay-Url": url, "X-Relay-Timestamp": str(ts), "X-Relay-Nonce": nonce,
            "X-Relay-Signature": f"v1={sig}"}


def send(relay: Relay, method: str, url: str, body: bytes = b"", **kw) -> httpx.Response:
    return httpx.request(method, f"{relay.base}/relay", content=body, timeout=10, trust_env=False,
                         headers=signed_headers(method, url, body, **kw))


def generate(gw: Gateway) -> httpx.Response:
    return gw.chat({"model": MODEL, "messages": [{"role": "user", "content": "a red kite"}]}, timeout=120)


def account_id(gw: Gateway) -> str:
    (acc,) = [a for a in gw.accounts() if a["email"] == gw.email]
    return acc["id"]


def account(gw: Gateway) -> dict:
    (acc,) = [a for a in gw.accounts() if a["email"] == gw.email]
    return acc


# ---------------------------------------------------------------------------------------------
# A gateway whose every upstream call goes through a relay (EGRESS_RELAY_URL), per host
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["native", "worker"])
def relayed(request) -> Iterator[tuple[Gateway, Relay]]:
    kind = request.param
    fake = start_fake(f"fake-relayed-{kind}")
    relay = gw = None
    try:
        relay = Relay(f"relay-{kind}", fake)
        gw = start_gateway(kind, f"relayed-{kind}", fake, extra={
            "EGRESS_RELAY_URL": relay.base, "EGRESS_RELAY_SECRET": RELAY_SECRET,
        })
        register_account(gw)
        yield gw, relay
    finally:
        if relay is not None:
            relay.stop()
        stop_stack(gw, fake)


def test_the_relay_checks_signature_nonce_window_and_host(relayed: tuple[Gateway, Relay]) -> None:
    gw, relay = relayed
    url = f"{gw.fake.base}/_fake/stats"
    # Signed as documented: forwarded, the upstream's answer comes back as it is.
    r = send(relay, "GET", url)
    assert r.status_code == 200 and "x-relay-error" not in r.headers, r.text
    assert "max_in_flight" in r.json()
    # Another secret: 401.
    r = send(relay, "GET", url, secret="not-the-secret-at-all")
    assert r.status_code == 401 and r.headers["x-relay-error"] == "bad_signature", r.text
    # A body other than the one signed: 401.
    h = signed_headers("POST", url, b"signed body")
    r = httpx.post(f"{relay.base}/relay", content=b"other body", headers=h, trust_env=False)
    assert r.status_code == 401 and r.headers["x-relay-error"] == "bad_signature", r.text
    # Outside the ±60 s window: 401.
    r = send(relay, "GET", url, ts=int(time.time()) - 120)
    assert r.status_code == 401 and r.headers["x-relay-error"] == "stale", r.text
    # The same nonce twice: the second is refused.
    nonce = secrets.token_hex(16)
    h = signed_headers("GET", url, b"", nonce=nonce)
    assert httpx.get(f"{relay.base}/relay", headers=h, trust_env=False).status_code == 200
    r = httpx.get(f"{relay.base}/relay", headers=h, trust_env=False)
    assert r.status_code == 401 and r.headers["x-relay-error"] == "replayed", r.text
    # A host it does not serve: 403, nothing sent.
    before = relay.forwarded()
    r = send(relay, "GET", "http://example.com/")
    assert r.status_code == 403 and r.headers["x-relay-error"] == "forbidden_host", r.text
    assert relay.forwarded() == before
    # A large body announced with its hash is streamed on, its end held back until the hash
    # matches: the signed body arrives whole; another body with the signed hash never does.
    big = secrets.token_bytes(300_000)
    h = signed_headers("POST", f"{gw.fake.base}/_fake/echo-nowhere", big)
    h["X-Relay-Body-Sha256"] = hashlib.sha256(big).hexdigest()
    r = httpx.post(f"{relay.base}/relay", content=big, headers=h, trust_env=False, timeout=10)
    assert "x-relay-error" not in r.headers, (r.status_code, r.text)
    other = secrets.token_bytes(300_000)
    h = signed_headers("POST", f"{gw.fake.base}/_fake/echo-nowhere", big)
    h["X-Relay-Body-Sha256"] = hashlib.sha256(big).hexdigest()
    r = httpx.post(f"{relay.base}/relay", content=other, headers=h, trust_env=False, timeout=10)
    assert r.status_code == 401 and r.headers["x-relay-error"] == "bad_signature", r.text
    # Unsigned: refused as malformed.
    r = httpx.get(f"{relay.base}/relay", headers={"X-Relay-Url": url}, trust_env=False)
    assert r.status_code == 400, r.text


def test_every_upstream_call_goes_through_the_relay(relayed: tuple[Gateway, Relay]) -> None:
    gw, relay = relayed
    gw.fake.reset()
    before = relay.forwarded()
    body = ok_json(generate(gw))
    assert "![" in body["choices"][0]["message"]["content"], body
    seen = gw.fake.requests()
    endpoints = {r["endpoint"] for r in seen}
    assert "generate_image" in str(endpoints) or len(seen) >= 2, endpoints
    # Every request the fake saw was one the relay forwarded, and none carried relay headers.
    assert relay.forwarded() - before == len(seen), (relay.forwarded() - before, endpoints)
    for r in seen:
        assert not any(k.lower().startswith("x-relay-") for k, _ in r["headers"]), r["headers"]


def test_a_relay_that_is_down_is_a_503_and_no_account_is_blamed(relayed: tuple[Gateway, Relay]) -> None:
    gw, relay = relayed
    relay.stop()
    gw.fake.reset()
    try:
        r = generate(gw)
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) > 0, r.headers
        assert r.json()["error"]["code"] == "egress_unavailable", r.text
        acc = account(gw)
        assert acc["is_active"] is True, acc
        assert acc["consecutive_error_count"] == 0, acc
        # Nothing left directly while the relay was down.
        assert gw.fake.requests() == [], [r["endpoint"] for r in gw.fake.requests()]
    finally:
        relay.start()
    # Back up: generations work again.
    body = ok_json(generate(gw))
    assert "![" in body["choices"][0]["message"]["content"], body


def test_an_account_may_have_its_own_relay(server: Gateway) -> None:
    """On the shared stacks (no global relay): the account's `egress_relay_url` takes every
    call of its generation through that relay."""
    gw = server
    gw.admin_token = gw.login()
    relay = Relay(f"relay-account-{gw.kind}-{secrets.token_hex(2)}", gw.fake)
    aid = account_id(gw)
    try:
        r = gw.http.put(f"/api/tokens/{aid}", headers=gw.admin_headers(), json={
            "egress_relay_url": relay.base, "egress_relay_secret": RELAY_SECRET})
        view = ok_json(r)["token"]
        assert view["egress_relay_url"] == relay.base and view["egress_relay_secret"] == "***", view
        assert RELAY_SECRET not in r.text
        time.sleep(2.5)  # the account cache (ACCOUNT_CACHE_TTL)
        gw.fake.reset()
        before = relay.forwarded()
        body = ok_json(generate(gw))
        assert "![" in body["choices"][0]["message"]["content"], body
        seen = gw.fake.requests()
        assert len(seen) >= 2 and relay.forwarded() - before == len(seen), (relay.forwarded(), seen)
    finally:
        ok_json(gw.http.put(f"/api/tokens/{aid}", headers=gw.admin_headers(),
                            json={"egress_relay_url": "", "egress_relay_secret": ""}))
        relay.stop()
        time.sleep(2.5)


# ---------------------------------------------------------------------------------------------
# Proxies: small asyncio HTTP and SOCKS5 proxies on loopback
# ---------------------------------------------------------------------------------------------

class LoopProxies:
    """An HTTP proxy (absolute-form and CONNECT, Basic credentials required) and a SOCKS5
    proxy (user/password required), each counting the connections it carried."""

    USER, PASSWORD = "puser", "p:ss@word"

    def __init__(self) -> None:
        self.http_port, self.socks_port = free_port(), free_port()
        self.counts = {"http": 0, "socks": 0, "refused": 0, "http_bytes": 0, "socks_bytes": 0}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()
        assert self.ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            await asyncio.start_server(self._http, "127.0.0.1", self.http_port)
            await asyncio.start_server(self._socks, "127.0.0.1", self.socks_port)
            self.ready.set()

        self.loop.run_until_complete(main())
        self.loop.run_forever()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, kind: str = "") -> None:
        try:
            while data := await r.read(65536):
                if kind:
                    self.counts[kind] += len(data)
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                w.close()
            except (OSError, RuntimeError):  # RuntimeError: the loop is gone (interpreter exit)
                pass

    async def _splice(self, kind: str, r, w, ur, uw, first: bytes = b"") -> None:
        """Pipes both ways, counting the bytes the client sends through (`<kind>_bytes`): a
        request on a connection kept alive counts too."""
        if first:
            self.counts[kind] += len(first)
            uw.write(first)
            await uw.drain()
        await asyncio.gather(self._pipe(r, uw, kind), self._pipe(ur, w))

    async def _http(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = await r.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        creds = base64.b64encode(f"{self.USER}:{self.PASSWORD}".encode()).decode()
        if not any(l.lower() == f"proxy-authorization: basic {creds}".lower() for l in lines[1:]):
            self.counts["refused"] += 1
            w.write(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            await w.drain()
            w.close()
            return
        self.counts["http"] += 1
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            ur, uw = await asyncio.open_connection(host, int(port))
            w.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await w.drain()
            await self._splice("http_bytes", r, w, ur, uw)
            return
        hostport = target.split("://", 1)[1].split("/", 1)[0]
        host, port = hostport.rsplit(":", 1)
        ur, uw = await asyncio.open_connection(host, int(port))
        # The absolute-form request goes on as it is (HTTP/1.1 servers accept it); the
        # connection carries the rest of the client's requests unchanged.
        await self._splice("http_bytes", r, w, ur, uw, first=head)

    async def _socks(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ver, n = await r.readexactly(2)
        methods = await r.readexactly(n)
        if ver != 5 or 2 not in methods:
            self.counts["refused"] += 1
            w.write(b"\x05\xff")
            w.close()
            return
        w.write(b"\x05\x02")
        await w.drain()
        _, ulen = await r.readexactly(2)
        user = (await r.readexactly(ulen)).decode()
        (plen,) = await r.readexactly(1)
        password = (await r.readexactly(plen)).decode()
        if (user, password) != (self.USER, self.PASSWORD):
            self.counts["refused"] += 1
            w.write(b"\x01\x01")
            w.close()
            return
        w.write(b"\x01\x00")
        _, cmd, _, atyp = await r.readexactly(4)
        if atyp == 1:
            host = ".".join(str(b) for b in await r.readexactly(4))
        elif atyp == 3:
            (hl,) = await r.readexactly(1)
            host = (await r.readexactly(hl)).decode()
        else:
            w.close()
            return
        (port,) = struct.unpack("!H", await r.readexactly(2))
        ur, uw = await asyncio.open_connection(host, port)
        self.counts["socks"] += 1
        w.write(b"\x05\x00\x00\x01" + bytes(4) + struct.pack("!H", 0))
        await w.drain()
        await self._splice("socks_bytes", r, w, ur, uw)

    def http_url(self) -> str:
        return f"http://{self.USER}:{self.PASSWORD.replace(':', '%3A').replace('@', '%40')}@127.0.0.1:{self.http_port}"

    def reset(self) -> None:
        for k in self.counts:
            self.counts[k] = 0

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def proxies() -> Iterator[LoopProxies]:
    p = LoopProxies()
    yield p
    p.close()


def set_proxy(gw: Gateway, body: dict) -> httpx.Response:
    r = gw.http.post("/api/proxy/config", json=body, headers=gw.admin_headers())
    time.sleep(1.1 if gw.kind == "worker" else 0)
    return r


def test_native_generations_through_http_and_socks5_proxies(server: Gateway, proxies: LoopProxies) -> None:
    gw = server
    if gw.kind != "native":
        pytest.skip("Workers cannot use proxies (the edge's way out is the relay)")
    gw.admin_token = gw.login()
    aid = account_id(gw)
    try:
        # Global proxy: HTTP with credentials (the bare host:port:user:pass form).
        r = set_proxy(gw, {"proxy_enabled": True,
                           "proxy_url": f"127.0.0.1:{proxies.http_port}:{proxies.USER}:{proxies.PASSWORD}"})
        assert ok_json(r)["success"] is True
        shown = ok_json(gw.http.get("/api/proxy/config", headers=gw.admin_headers()))
        assert shown == {"proxy_enabled": True,
                         "proxy_url": f"http://***:***@127.0.0.1:{proxies.http_port}",
                         "media_proxy_enabled": False, "media_proxy_url": None}, shown
        assert proxies.PASSWORD not in gw.http.get("/api/settings", headers=gw.admin_headers()).text
        proxies.reset()
        ok_json(generate(gw))
        assert proxies.counts["http_bytes"] > 0 and proxies.counts["socks_bytes"] == 0, proxies.counts

        # The account's own SOCKS5 proxy (the `st5` form) beats the global one.
        r = gw.http.put(f"/api/tokens/{aid}", headers=gw.admin_headers(), json={
            "proxy_url": f"st5 {proxies.USER}:{proxies.PASSWORD}@127.0.0.1:{proxies.socks_port}"})
        view = ok_json(r)["token"]
        assert view["proxy_url"] == f"socks5://***:***@127.0.0.1:{proxies.socks_port}", view
        assert proxies.PASSWORD not in r.text
        time.sleep(2.5)
        proxies.reset()
        ok_json(generate(gw))
        assert proxies.counts["socks_bytes"] > 0 and proxies.counts["http_bytes"] == 0, proxies.counts
        assert proxies.counts["refused"] == 0, proxies.counts

        # MEDIA_PROXY_URL: with MEDIA_CACHE on, the result's download goes through the media
        # proxy (HTTP), the generation's own calls through the account's (SOCKS5).
        ok_json(gw.http.patch("/api/settings", json={"values": {"MEDIA_CACHE": "true"}},
                              headers=gw.admin_headers()))
        r = set_proxy(gw, {"proxy_enabled": False, "media_proxy_enabled": True,
                           "media_proxy_url": proxies.http_url()})
        assert ok_json(r)["success"] is True
        proxies.reset()
        body = ok_json(generate(gw))
        assert "/media/" in body["choices"][0]["message"]["content"], body
        assert proxies.counts["socks_bytes"] > 0 and proxies.counts["http_bytes"] > 0, proxies.counts

        # /api/proxy/test through the HTTP proxy, then a proxy that is not there.
        proxies.reset()
        t = ok_json(gw.http.post("/api/proxy/test", headers=gw.admin_headers(), json={
            "proxy_url": proxies.http_url(), "test_url": f"{gw.fake.base}/_fake/stats", "timeout_seconds": 5}))
        assert t["success"] is True and t["status_code"] == 200 and proxies.counts["http_bytes"] > 0, (t, proxies.counts)
        t = ok_json(gw.http.post("/api/proxy/test", headers=gw.admin_headers(), json={
            "proxy_url": f"socks5://127.0.0.1:{free_port()}", "test_url": f"{gw.fake.base}/_fake/stats",
            "timeout_seconds": 5}))
        assert t["success"] is False and t["message"], t
    finally:
        ok_json(gw.http.put(f"/api/tokens/{aid}", headers=gw.admin_headers(), json={"proxy_url": ""}))
        ok_json(set_proxy(gw, {"proxy_enabled": False, "media_proxy_enabled": False}))
        ok_json(gw.http.patch("/api/settings", json={"values": {"MEDIA_CACHE": None}},
                              headers=gw.admin_headers()))
        time.sleep(2.5)


def test_proxy_config_refuses_bad_formats_clearly(server: Gateway) -> None:
    gw = server
    gw.admin_token = gw.login()
    r = set_proxy(gw, {"proxy_enabled": True, "proxy_url": "ftp://user:hunter22@h:21"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["success"] is False and "accepted: http://user:pass@host:port" in body["message"], body
    assert "hunter22" not in r.text
    r = gw.http.post("/api/config/proxy", json={"proxy_enabled": True, "proxy_url": "no-port-here"},
                     headers=gw.admin_headers())
    assert r.status_code == 400 and r.json()["success"] is False, r.text
    r = gw.http.post("/api/proxy/test", json={"proxy_url": "host:notaport"}, headers=gw.admin_headers())
    assert r.status_code == 400 and r.json()["success"] is False, r.text
    shown = ok_json(gw.http.get("/api/config/proxy", headers=gw.admin_headers()))
    assert shown["success"] is True and shown["config"]["enabled"] is False, shown


def test_the_edge_refuses_a_proxy_rather_than_bypass_it(server: Gateway) -> None:
    gw = server
    if gw.kind != "worker":
        pytest.skip("the edge only")
    gw.admin_token = gw.login()
    t = ok_json(gw.http.post("/api/proxy/test", headers=gw.admin_headers(), json={
        "proxy_url": "http://127.0.0.1:9", "test_url": f"{gw.fake.base}/_fake/stats", "timeout_seconds": 5}))
    assert t["success"] is False and "EGRESS_RELAY_URL" in t["message"], t


def test_the_relay_leaves_through_its_own_proxy(server: Gateway, proxies: LoopProxies) -> None:
    """`RELAY_PROXY_URL`: what the relay forwards goes through its own upstream proxy."""
    if server.kind != "native":
        pytest.skip("the relay is the native binary either way: once is enough")
    relay = Relay(f"relay-proxied-{secrets.token_hex(2)}", server.fake, extra={
        "RELAY_PROXY_URL": f"st5 {proxies.USER}:{proxies.PASSWORD}@127.0.0.1:{proxies.socks_port}"})
    try:
        proxies.reset()
        r = send(relay, "GET", f"{server.fake.base}/_fake/stats")
        assert r.status_code == 200 and "max_in_flight" in r.json(), r.text
        assert proxies.counts["socks_bytes"] > 0, proxies.counts
    finally:
        relay.stop()
