"""End-to-end image tests over real HTTP (httpx + httpx-sse), against the native server and the
worker under `wrangler dev`, both pointed at the fake upstream (see conftest.py)."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time

import httpx
import pytest
from httpx_sse import connect_sse

from conftest import FIFE_PNG, Gateway, check_chunks, data_url, make_png, ok_json, openai_error, upsampled_jpeg

IMAGE_MD = re.compile(r"!\[Generated Image\]\((\S+?)\)")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def user(text: str, *image_urls: str) -> list[dict]:
    if not image_urls:
        return [{"role": "user", "content": text}]
    parts = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": u}} for u in image_urls]
    return [{"role": "user", "content": parts}]


def stream_chat(gw: Gateway, body: dict) -> list[str]:
    """POSTs a streaming chat completion and returns every SSE `data` payload in order."""
    with connect_sse(gw.http, "POST", "/v1/chat/completions", json=body, headers=gw.auth()) as es:
        r = es.response
        if r.status_code != 200:
            r.read()
            pytest.fail(f"{gw.kind}: stream answered {r.status_code}: {r.text}")
        assert r.headers["content-type"].startswith("text/event-stream"), r.headers
        return [sse.data for sse in es.iter_sse()]


def split_stream(datas: list[str]) -> list[dict]:
    """Checks the `[DONE]` terminator and returns the JSON events before it."""
    assert datas, "empty stream"
    assert datas[-1] == "[DONE]", f"last event is not [DONE]: {datas[-3:]}"
    assert datas.count("[DONE]") == 1, datas
    return [json.loads(d) for d in datas[:-1]]


def image_url_of(content: str) -> str:
    m = IMAGE_MD.search(content or "")
    assert m, f"no image markdown in {content!r}"
    return m.group(1)


def generate(gw: Gateway, model: str, prompt: str, *image_urls: str, **extra) -> str:
    """A non-stream generation; returns the image URL."""
    body = ok_json(gw.chat({"model": model, "messages": user(prompt, *image_urls), **extra}))
    return image_url_of(body["choices"][0]["message"]["content"])


def only(records: list[dict], what: str) -> dict:
    assert len(records) == 1, f"expected one {what} request, got {len(records)}: {records}"
    return records[0]


def account_view(gw: Gateway, email: str) -> dict | None:
    r = gw.http.get("/api/tokens", headers=gw.admin_headers())
    for a in ok_json_list(r):
        if a.get("email") == email:
            return a
    return None


def ok_json_list(r: httpx.Response) -> list:
    assert r.status_code == 200, f"{r.request.url}: {r.status_code} {r.text}"
    body = r.json()
    assert isinstance(body, list), body
    return body


def assert_masked(masked: str, secret: str) -> None:
    """Secrets are shown as the first 6 characters, an ellipsis, the last 4."""
    assert masked == f"{secret[:6]}…{secret[-4:]}", (masked, secret)


def upstream_bearers(gw: Gateway) -> set[str]:
    """Every access token the gateway sent to the fake (recorded `authorization` headers)."""
    out = set()
    for rec in gw.fake.requests():
        for name, value in rec.get("headers", []):
            if name == "authorization" and value.lower().startswith("bearer "):
                out.add(value[7:].strip())
    return out


# ---------------------------------------------------------------------------------------------
# basics and admin
# ---------------------------------------------------------------------------------------------

def test_health_and_models(server: Gateway):
    assert ok_json(server.http.get("/health")) is not None
    models = ok_json(server.http.get("/v1/models", headers=server.auth()))
    assert models["object"] == "list"
    ids = {m["id"] for m in models["data"]}
    for wanted in ("gemini-3.1-flash-image-landscape", "imagen-4.0-generate-preview-portrait",
                   "gemini-3.0-pro-image-square-4k"):
        assert wanted in ids, f"{wanted} missing from /v1/models"
    err = openai_error(server.http.get("/v1/models"), 401)
    assert err["type"] == "authentication_error"


def test_admin_login_and_add_account_masked(server: Gateway):
    # Wrong password, and the token routes without a session.
    r = server.http.post("/api/login", json={"username": "admin", "password": "wrong-" + secrets.token_hex(4)})
    assert r.status_code == 401, r.text
    assert server.http.get("/api/tokens").status_code == 401
    assert server.http.get("/api/tokens", headers={"Authorization": "Bearer nope"}).status_code == 401

    token = server.login()
    admin = {"Authorization": f"Bearer {token}"}

    # The stack's own account is listed, masked.
    r = server.http.get("/api/tokens", headers=admin)
    listed = {a["email"]: a for a in ok_json_list(r)}
    assert server.email in listed, listed.keys()
    assert_masked(listed[server.email]["st"], server.st)
    assert server.st not in r.text

    # Add another account by ST: it is checked against the fake (ST -> AT), shown masked.
    st2 = f"st-extra-{secrets.token_hex(16)}"
    email2 = f"extra-{secrets.token_hex(3)}@example.com"
    server.fake.add_account(st2, email2)
    r = server.http.post("/api/tokens", json={"st": st2}, headers=admin)
    body = ok_json(r)
    assert body["success"] is True
    view = body["token"]
    assert view["email"] == email2
    assert_masked(view["st"], st2)
    assert st2 not in r.text
    assert server.fake.requests("session"), "the ST was not checked upstream"
    ats = upstream_bearers(server)

    r = server.http.get("/api/tokens", headers=admin)
    listed = {a["email"]: a for a in ok_json_list(r)}
    assert email2 in listed and listed[email2]["id"] == view["id"]
    assert_masked(listed[email2]["st"], st2)
    assert st2 not in r.text and server.st not in r.text
    for at in ats | upstream_bearers(server):
        assert at not in r.text, "an access token appears in GET /api/tokens"
    if listed[email2].get("at") is not None and ats:
        assert any(listed[email2]["at"] == f"{at[:6]}…{at[-4:]}" for at in ats), listed[email2]["at"]

    # Delete it again, so that later tests use the stack's own account only.
    ok_json(server.http.delete(f"/api/tokens/{view['id']}", headers=admin))
    r = server.http.get("/api/tokens", headers=admin)
    assert email2 not in {a["email"] for a in ok_json_list(r)}

    # An ST Google does not know is refused, and not echoed.
    bogus = f"st-unknown-{secrets.token_hex(16)}"
    r = server.http.post("/api/tokens", json={"st": bogus}, headers=admin)
    assert 400 <= r.status_code < 500, r.text
    assert bogus not in r.text


# ---------------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------------

def test_text_to_image_stream(server: Gateway):
    model = "gemini-3.1-flash-image-landscape"
    prompt = f"a red fox in fresh snow {secrets.token_hex(3)}"
    events = split_stream(stream_chat(server, {"model": model, "stream": True, "messages": user(prompt)}))

    deltas = check_chunks(events, model)
    reasoning = [d["reasoning_content"] for d in deltas if d.get("reasoning_content")]
    assert reasoning, f"no reasoning_content progress: {deltas}"

    final = events[-1]["choices"][0]
    assert final["finish_reason"] == "stop", final
    url = image_url_of(final["delta"].get("content"))
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1])
    assert not any(IMAGE_MD.search(d.get("content") or "") for d in deltas[:-1])

    # A plain (1K) image is the upstream's own link; it serves the PNG.
    assert url.startswith(f"{server.fake.base}/fife/") and url.endswith(".png"), url
    r = httpx.get(url, timeout=30, trust_env=False)
    assert r.status_code == 200 and r.content == FIFE_PNG

    gen = only(server.fake.requests("generate_image"), "generate_image")
    sent = json.dumps(gen["json"])
    assert prompt in sent and "IMAGE_ASPECT_RATIO_LANDSCAPE" in sent, sent


def test_text_to_image_non_stream(server: Gateway):
    model = "imagen-4.0-generate-preview-portrait"
    r = server.chat({"model": model, "messages": user("a lighthouse at dusk")})
    body = ok_json(r)
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == model
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    url = image_url_of(choice["message"]["content"])
    assert url.startswith(f"{server.fake.base}/fife/"), url

    gen = only(server.fake.requests("generate_image"), "generate_image")
    assert gen["json"]["requests"][0]["imageAspectRatio"] == "IMAGE_ASPECT_RATIO_PORTRAIT", gen["json"]


def test_image_to_image_data_url(server: Gateway):
    png = make_png(3, 2, (200, 30, 40))
    url = generate(server, "gemini-3.1-flash-image-square", "make it blue", data_url(png))
    assert url.startswith(f"{server.fake.base}/fife/"), url

    upload = only(server.fake.requests("upload_image"), "upload_image")
    assert upload["json"]["imageBytes"] == base64.b64encode(png).decode()
    assert upload["json"]["mimeType"] == "image/png"
    gen = only(server.fake.requests("generate_image"), "generate_image")
    assert len(gen["json"]["requests"][0].get("imageInputs") or []) == 1, gen["json"]


def test_image_to_image_http_url(server: Gateway):
    # First a generated image, so that the fake serves its /fife/<id>.png.
    source = generate(server, "gemini-3.1-flash-image-landscape", "a paper boat")
    assert source.startswith(f"{server.fake.base}/fife/"), source
    fetched = httpx.get(source, timeout=30, trust_env=False)
    assert fetched.status_code == 200, fetched.text
    server.fake.reset()

    url = generate(server, "gemini-3.1-flash-image-landscape", "the same boat at night", source)
    assert url.startswith(f"{server.fake.base}/fife/"), url

    fife = server.fake.requests("fife")
    assert any(r["url"].endswith(source.rsplit("/", 1)[1]) for r in fife), fife  # the gateway fetched it
    upload = only(server.fake.requests("upload_image"), "upload_image")
    assert upload["json"]["imageBytes"] == base64.b64encode(fetched.content).decode()


def test_4k_model_serves_upsampled_jpeg(server: Gateway):
    url = generate(server, "gemini-3.0-pro-image-square-4k", "a mountain lake, ultra detailed")
    assert url.startswith(f"{server.base}/media/"), url

    up = only(server.fake.requests("upsample_image"), "upsample_image")
    assert up["json"]["targetResolution"] == "UPSAMPLE_IMAGE_RESOLUTION_4K", up["json"]

    r = httpx.get(url, timeout=60, trust_env=False)  # no API key needed for media links
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("image/jpeg"), r.headers
    assert r.content[:2] == b"\xff\xd8"
    assert r.content == upsampled_jpeg("4K")


def test_alias_with_image_config(server: Gateway):
    """`gemini-3.1-flash-image` + generationConfig.imageConfig: 9:16 and 2K."""
    url = generate(server, "gemini-3.1-flash-image", "a tall waterfall",
                   generationConfig={"imageConfig": {"aspectRatio": "9:16", "imageSize": "2K"}})
    assert url.startswith(f"{server.base}/media/"), url
    gen = only(server.fake.requests("generate_image"), "generate_image")
    assert gen["json"]["requests"][0]["imageAspectRatio"] == "IMAGE_ASPECT_RATIO_PORTRAIT", gen["json"]
    up = only(server.fake.requests("upsample_image"), "upsample_image")
    assert up["json"]["targetResolution"] == "UPSAMPLE_IMAGE_RESOLUTION_2K", up["json"]
    r = httpx.get(url, timeout=60, trust_env=False)
    assert r.status_code == 200 and r.content == upsampled_jpeg("2K")


def test_stream_is_incremental_with_keepalive(server: Gateway):
    """With a slow upstream the stream starts at once, sends `: keep-alive` comments
    (KEEPALIVE_INTERVAL=2 s), and ends with the image and [DONE]."""
    server.fake.fault("generate_image", kind="latency", latency_ms=5000, times=1)
    body = {"model": "gemini-3.1-flash-image-landscape", "stream": True, "messages": user("slow one")}
    first_data_at = None
    comments = 0
    datas: list[str] = []
    start = time.monotonic()
    with server.http.stream("POST", "/v1/chat/completions", json=body, headers=server.auth()) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith(":"):
                comments += 1
            elif line.startswith("data:"):
                datas.append(line[5:].strip())
                if first_data_at is None:
                    first_data_at = time.monotonic() - start
    total = time.monotonic() - start
    events = split_stream(datas)
    image_url_of(events[-1]["choices"][0]["delta"].get("content"))
    assert total >= 4.5, total
    assert first_data_at is not None and first_data_at < total - 3, (first_data_at, total)
    assert comments >= 1, "no keep-alive comment during a 5 s wait"


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------

def test_bad_json_is_400(server: Gateway):
    r = server.http.post("/v1/chat/completions", content=b'{"model": "gemini-3.1-flash-image-landscape", ',
                         headers={**server.auth(), "content-type": "application/json"})
    err = openai_error(r, 400)
    assert err["type"] == "invalid_request_error"


def test_unknown_model_is_404(server: Gateway):
    err = openai_error(server.chat({"model": "no-such-model-xyz", "messages": user("hi")}), 404)
    assert err["code"] == "model_not_found"
    assert err["param"] == "model"
    assert server.fake.requests("generate_image") == []


def test_wrong_or_missing_key_is_401(server: Gateway):
    body = {"model": "gemini-3.1-flash-image-landscape", "messages": user("hi")}
    err = openai_error(server.chat(body, key="sk-wrong-" + secrets.token_hex(8)), 401)
    assert err["type"] == "authentication_error"
    assert err["code"] == "invalid_api_key"
    r = server.http.post("/v1/chat/completions", json=body)
    assert openai_error(r, 401)["type"] == "authentication_error"
    reached = [r["endpoint"] for r in server.fake.requests()
               if r["endpoint"] in ("create_task", "upload_image", "generate_image")]
    assert reached == [], f"a refused request reached the upstream: {reached}"


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": "   "}],
    [{"role": "user", "content": [{"type": "text", "text": ""}]}],
], ids=["empty", "blank", "empty-part"])
def test_empty_prompt_is_400(server: Gateway, messages):
    err = openai_error(server.chat({"model": "gemini-3.1-flash-image-landscape", "messages": messages}), 400)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == "messages"
    assert server.fake.requests("generate_image") == []


def test_private_image_url_refused(strict_server: Gateway):
    """Runs against a second native server started without ALLOW_PRIVATE_IMAGE_URLS (the main
    servers allow private URLs so that they can fetch the fake's /fife images). The worker is
    not covered here: a second `wrangler dev` would rebuild the worker concurrently; the check
    itself is SDK code shared by both hosts. Only loopback targets are used, so that nothing is
    sent elsewhere even if the check were broken."""
    fake = strict_server.fake
    fake.reset()
    for url in (f"{fake.base}/fife/whatever.png", "http://localhost:9/x.png",
                "http://127.1.2.3:9/x.png", "http://[::1]:9/x.png"):
        r = strict_server.chat({"model": "gemini-3.1-flash-image-landscape",
                                "messages": user("edit this", url)})
        err = openai_error(r, 400)
        assert err["type"] == "invalid_request_error", err
        assert err["param"] == "messages", err
        assert "private" in err["message"].lower() or "loopback" in err["message"].lower(), err
    assert fake.requests("fife") == [], "the strict server fetched a private URL"


def _inject_unsafe(gw: Gateway) -> None:
    gw.fake.fault("generate_image", status=400, reason="PUBLIC_ERROR_UNSAFE_GENERATION",
                  message="Request contains an invalid argument.", times=1)


def test_content_policy_non_stream(server: Gateway):
    _inject_unsafe(server)
    r = server.chat({"model": "gemini-3.1-flash-image-landscape", "messages": user("something unsafe")})
    err = openai_error(r, 400)
    assert err["code"] == "content_policy_violation", err
    assert err["type"] == "invalid_request_error", err
    # Not retried, and not held against the account.
    only(server.fake.requests("generate_image"), "generate_image")
    view = account_view(server, server.email)
    assert view is not None and view["is_active"] is True, view


def test_content_policy_stream(server: Gateway):
    _inject_unsafe(server)
    datas = stream_chat(server, {"model": "gemini-3.1-flash-image-landscape", "stream": True,
                                 "messages": user("something unsafe")})
    events = split_stream(datas)
    errors = [e for e in events if "error" in e]
    assert len(errors) == 1 and events[-1] is errors[0], events
    assert errors[0]["error"]["code"] == "content_policy_violation", errors[0]
    assert not any(IMAGE_MD.search((e.get("choices") or [{}])[0].get("delta", {}).get("content") or "")
                   for e in events), events
    only(server.fake.requests("generate_image"), "generate_image")


# ---------------------------------------------------------------------------------------------
# one-off upstream hiccups: retried on the same account with a new captcha token
# ---------------------------------------------------------------------------------------------

def _captcha_token(rec: dict) -> str:
    return rec["json"]["clientContext"]["recaptchaContext"]["token"]


@pytest.mark.parametrize("fault", [
    {"kind": "rate_limited"},     # 429 RESOURCE_EXHAUSTED without the quota reason
    {"kind": "malformed_json"},   # 200 whose body is cut off: {"media": [
])
def test_one_off_429_or_cut_off_answer_is_retried(server: Gateway, fault: dict):
    server.fake.fault("generate_image", times=1, **fault)
    generate(server, "gemini-3.1-flash-image-landscape", "a quiet harbour")
    first, second = server.fake.requests("generate_image")
    assert second["at_ms"] - first["at_ms"] >= 1000, (first["at_ms"], second["at_ms"])
    assert _captcha_token(first) != _captcha_token(second)
    # The account neither rests nor counts the hiccup.
    view = account_view(server, server.email)
    assert view is not None and view["status"] == "active", view
    assert view["consecutive_error_count"] == 0, view
