"""The security pass, end to end on both hosts: client image URLs (SSRF, bounded fetching),
request body caps, the generation deadline, and what the gateway writes into links and media
answers. The SSRF case of a *name* resolving to loopback needs a resolver override and is in
flow2api-sdk/tests/native_server.rs (`an_image_url_whose_name_resolves_to_loopback_is_never_fetched`).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from typing import Iterator

import httpx
import pytest

from conftest import Gateway, data_url, make_png, ok_json, openai_error, stack

MODEL = "gemini-3.1-flash-image-landscape"
IMAGE_MD = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")

# The hardened stacks' settings: private URLs refused, small caps, a short deadline.
MAX_REQUEST_BYTES = 65536
MAX_IMAGE_BYTES = 4096
IMAGE_TIMEOUT = 10
HARDENED = {
    "ALLOW_PRIVATE_IMAGE_URLS": "false",
    "MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
    "MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
    "IMAGE_TIMEOUT": str(IMAGE_TIMEOUT),
    # Native only (the worker ignores them): slow bodies and the connection limit.
    "BODY_READ_TIMEOUT": "2",
    "MAX_CONNECTIONS": "4",
}


@pytest.fixture(scope="module", params=["native", "worker"])
def hardened(request) -> Iterator[Gateway]:
    with stack(request.param, f"{request.param}-hardened", extra=HARDENED) as gw:
        yield gw


def user(text: str, *image_urls: str) -> list[dict]:
    parts = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": u}} for u in image_urls]
    return [{"role": "user", "content": parts}]


def gemini_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    err = r.json()["error"]
    assert err["code"] == status, err
    return err


# ---------------------------------------------------------------------------------------------
# Client image URLs
# ---------------------------------------------------------------------------------------------

def test_private_image_urls_are_refused_and_never_fetched(hardened: Gateway):
    fake = hardened.fake
    fake.reset()
    port = fake.base.rsplit(":", 1)[1]
    for url in (f"{fake.base}/fife/whatever.png", f"http://localhost:{port}/fife/a.png",
                f"http://2130706433:{port}/fife/a.png", f"http://[::ffff:7f00:1]:{port}/fife/a.png",
                f"http://[::1]:{port}/fife/a.png", "http://169.254.169.254/latest/meta-data/"):
        r = hardened.chat({"model": MODEL, "messages": user("edit this", url)})
        err = openai_error(r, 400)
        assert err["param"] == "messages", err
        assert err["message"].startswith("The image URL could not be fetched"), err
    assert fake.requests("fife") == [], "a private URL was fetched"


def test_only_the_last_assistant_image_is_fetched(server: Gateway):
    """The continuous-conversation rule: of every image in the history, only the last one the
    assistant returned is fetched, once, and it is sent along as a reference."""
    # Three real images from the fake, so that each URL could be fetched.
    urls = []
    for prompt in ("a red kite", "a blue kite", "a green kite"):
        body = ok_json(server.chat({"model": MODEL, "messages": user(prompt)}))
        urls.append(IMAGE_MD.search(body["choices"][0]["message"]["content"]).group(1))
    server.fake.reset()
    messages = [
        {"role": "user", "content": "a kite"},
        {"role": "assistant", "content": f"![a]({urls[0]}) ![b]({urls[1]})"},
        {"role": "user", "content": "another"},
        {"role": "assistant", "content": f"here: ![c]({urls[2]}) and ![b]({urls[1]})"},
        {"role": "user", "content": "make it yellow"},
    ]
    ok_json(server.chat({"model": MODEL, "messages": messages}))
    fetched = [r["url"] for r in server.fake.requests("fife")]
    assert len(fetched) == 1, fetched
    assert fetched[0].endswith(urls[1].rsplit("/", 1)[1]), (fetched, urls)
    gen = server.fake.requests("generate_image")[0]["json"]
    assert len(gen["requests"][0].get("imageInputs") or []) == 1, gen


def test_image_caps_on_every_way_in(hardened: Gateway):
    big = make_png(60, 60, (1, 2, 3)) + b"\0" * MAX_IMAGE_BYTES
    # A data URL in chat.
    err = openai_error(hardened.chat({"model": MODEL, "messages": user("x", data_url(big))}), 400)
    assert str(MAX_IMAGE_BYTES) in err["message"], err
    # A multipart file of the Videos API.
    r = hardened.http.post("/v1/videos", headers=hardened.auth(),
                           data={"model": "veo_3_1_i2v_s_fast_fl", "prompt": "a kite"},
                           files=[("input_reference", ("big.png", big, "image/png"))])
    err = openai_error(r, 400)
    assert str(MAX_IMAGE_BYTES) in err["message"], err
    # An inline image of Gemini's predictLongRunning.
    r = hardened.http.post(
        "/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning",
        headers={"x-goog-api-key": hardened.api_key},
        json={"instances": [{"prompt": "a kite", "image": {
            "bytesBase64Encoded": base64.b64encode(big).decode(), "mimeType": "image/png"}}]})
    err = gemini_error(r, 400)
    assert str(MAX_IMAGE_BYTES) in err["message"], err
    # More images than allowed.
    small = data_url(make_png(2, 2, (9, 9, 9)))
    err = openai_error(hardened.chat({"model": MODEL, "messages": user("x", *[small] * 17)}), 400)
    assert "16" in err["message"], err


# ---------------------------------------------------------------------------------------------
# Request bodies
# ---------------------------------------------------------------------------------------------

def test_bodies_over_the_cap_are_413_in_each_dialect(hardened: Gateway):
    body = json.dumps({"model": MODEL, "messages": user("x"), "pad": "x" * MAX_REQUEST_BYTES})
    r = hardened.http.post("/v1/chat/completions", content=body,
                           headers={**hardened.auth(), "content-type": "application/json"})
    err = openai_error(r, 413)
    assert err["code"] == "request_too_large", err
    assert str(MAX_REQUEST_BYTES) in err["message"], err
    r = hardened.http.post("/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                           content=body, headers={"x-goog-api-key": hardened.api_key})
    gemini_error(r, 413)

    # A wrong key is refused before the body counts.
    r = hardened.http.post("/v1/chat/completions", content=body,
                           headers={**hardened.auth("wrong"), "content-type": "application/json"})
    openai_error(r, 401)

    # No announced length (chunked): cut off at the cap, the same answer.
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 8192

    r = hardened.http.post("/v1/chat/completions", content=chunks(),
                           headers={**hardened.auth(), "content-type": "application/json"})
    assert "content-length" not in r.request.headers
    openai_error(r, 413)
    # Within the cap, the same chunked upload reaches the app.
    r = hardened.http.post("/v1/chat/completions", content=iter([b"{not json"]),
                           headers={**hardened.auth(), "content-type": "application/json"})
    openai_error(r, 400)


def raw_exchange(base: str, head: bytes, body: bytes = b"", wait: float = 10.0) -> bytes:
    """Sends `head` (and `body`) on a fresh connection and returns what comes back within
    `wait` seconds (until the server closes or a whole answer head arrived)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as s:
        s.sendall(head + body)
        s.settimeout(wait)
        got = b""
        try:
            while b"\r\n\r\n" not in got:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except TimeoutError:
            pass
        return got


def test_a_bad_key_is_refused_before_a_large_body_is_sent(native_stack: Gateway):
    """Natively, a request announcing a 50 MB body (under the default cap of 64 MiB) without a
    valid key gets its 401 while not one byte of the body was sent. (At the edge the runtime
    hands the worker a request as its head arrives, and the worker answers from the head the
    same way; `wrangler dev`'s local proxy in front of it waits for bodies, so that host is
    checked with bodies sent whole in `test_bodies_over_the_cap_are_413_in_each_dialect`.)"""
    for gw in (native_stack,):
        head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
                f"authorization: Bearer wrong-key\r\ncontent-type: application/json\r\n"
                f"content-length: 50000000\r\n\r\n").encode()
        started = time.monotonic()
        answer = raw_exchange(gw.base, head)
        assert answer.startswith(b"HTTP/1.1 401"), (gw.kind, answer[:200])
        assert time.monotonic() - started < 5, "the answer waited for the body"


def test_native_slow_bodies_and_connection_limit(hardened: Gateway):
    if hardened.kind != "native":
        pytest.skip("BODY_READ_TIMEOUT and MAX_CONNECTIONS are the native server's")
    # A body announced and never sent: 408 after BODY_READ_TIMEOUT (2 s).
    head = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n"
            f"authorization: Bearer {hardened.api_key}\r\ncontent-type: application/json\r\n"
            f"content-length: 1000\r\n\r\n").encode()
    started = time.monotonic()
    answer = raw_exchange(hardened.base, head, b"{", wait=15)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert 1.5 < time.monotonic() - started < 10

    # MAX_CONNECTIONS=4: four idle connections hold every slot; a fifth is not served until
    # one of them closes.
    host, port = hardened.base.removeprefix("http://").split(":")
    hardened.http.close()  # its kept-alive connection would hold a slot
    time.sleep(0.5)  # the closed connections give their slots back
    idle = []
    try:
        for _ in range(4):
            idle.append(socket.create_connection((host, int(port)), timeout=5))
            time.sleep(0.1)
        fifth = socket.create_connection((host, int(port)), timeout=5)
        fifth.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        fifth.settimeout(1.0)
        with pytest.raises(TimeoutError):
            fifth.recv(1024)
        idle.pop(0).close()  # the oldest: surely one the server took
        fifth.settimeout(10)
        assert fifth.recv(1024).startswith(b"HTTP/1.1 200"), "served once a slot freed"
        fifth.close()
    finally:
        for s in idle:
            s.close()
        hardened.__post_init__()  # a fresh client for the tests that follow


# ---------------------------------------------------------------------------------------------
# The generation deadline
# ---------------------------------------------------------------------------------------------

def test_a_generation_past_image_timeout_is_504(hardened: Gateway):
    hardened.fake.reset()
    hardened.fake.fault("generate_image", kind="latency", latency_ms=60_000, times=1)
    started = time.monotonic()
    r = hardened.chat({"model": MODEL, "messages": user("a slow kite")}, timeout=60)
    elapsed = time.monotonic() - started
    err = openai_error(r, 504)
    assert "IMAGE_TIMEOUT" in err["message"], err
    assert IMAGE_TIMEOUT - 1 < elapsed < IMAGE_TIMEOUT + 15, elapsed
    hardened.fake.reset()


# ---------------------------------------------------------------------------------------------
# What the gateway writes
# ---------------------------------------------------------------------------------------------

def test_forwarded_host_is_not_trusted_and_media_is_nosniff(server: Gateway):
    """Without PUBLIC_BASE_URL and TRUST_FORWARDED_HEADERS, links are built on the request's
    own host, never on X-Forwarded-Host; /media answers with the type of its bytes and
    `X-Content-Type-Options: nosniff`."""
    evil = "evil.test'><script>alert(1)</script>"
    r = server.http.post("/v1/chat/completions", headers={
        **server.auth(), "x-forwarded-host": evil, "x-forwarded-proto": "javascript"},
        json={"model": "gemini-3.0-pro-image-square-4k", "messages": user("a lake")})
    content = ok_json(r)["choices"][0]["message"]["content"]
    url = IMAGE_MD.search(content).group(1)
    assert url.startswith(f"{server.base}/media/"), url
    assert "evil" not in content and "<" not in content, content
    m = httpx.get(url, timeout=60, trust_env=False)
    assert m.status_code == 200
    assert m.headers["x-content-type-options"] == "nosniff", m.headers
    assert m.headers["content-type"] == "image/jpeg", m.headers


def test_a_host_header_with_markup_never_reaches_links(native_stack: Gateway):
    """Natively the Host header reaches the gateway as sent: one that is not a plain
    `name[:port]` is replaced, so it cannot break out of the markdown link."""
    gw = native_stack
    r = gw.http.post("/v1/chat/completions", headers={**gw.auth(), "host": "a)b<x>"},
                     json={"model": "gemini-3.0-pro-image-square-4k", "messages": user("a lake")})
    content = ok_json(r)["choices"][0]["message"]["content"]
    url = IMAGE_MD.search(content).group(1)
    assert url.startswith("http://localhost/media/"), content
