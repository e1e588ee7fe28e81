"""The MCP endpoint (`/mcp`, Streamable HTTP, stateless) through the official `mcp` Python SDK,
against both servers: the handshake and the tool list; `generate_image` (the image's bytes
decoded and checked, its link fetched), with reference images as a data URL and as bare
base64; `generate_video` followed with a progress callback, then `get_video` and the MP4 behind
its links; `list_models`, also through the high-level `mcp.Client` (whose `server/discover`
probe falls back to the handshake); a tenant's key scoped to its models and jobs; and bad
input answered in JSON-RPC (an `MCPError` in the client, `400` with `-32700`/`-32600` for
bodies that are not one message, `401` without a key, `405` for GET)."""

from __future__ import annotations

import base64
import secrets
from typing import Any, Awaitable, Callable

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client

from conftest import Gateway, data_url, fake_mp4_id, make_png

# The fake's video defaults (as test_videos.py): one PENDING and one ACTIVE poll.
DEFAULT_VIDEO = {"pending_polls": 1, "active_polls": 1, "concat_polls": 1, "fife": True,
                 "redirect": "ok", "shape": "operations"}
TOOLS = {"generate_image", "generate_video", "get_video", "list_models"}


def image_format(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def is_mp4(data: bytes) -> bool:
    return data[4:8] == b"ftyp"


def http_client(gw: Gateway, key: str | None) -> httpx2.AsyncClient:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(120.0, read=300.0),
                              trust_env=False)


def run(gw: Gateway, body: Callable[[ClientSession], Awaitable[Any]], key: str | None = None) -> Any:
    """Runs `body` in an initialised session with `gw`'s `/mcp` (the root key unless `key`)."""
    async def main() -> Any:
        async with http_client(gw, gw.api_key if key is None else key) as http:
            async with streamable_http_client(f"{gw.base}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    init = await session.initialize()
                    assert init.server_info.name == "flow2api", init
                    assert init.capabilities.tools is not None, init
                    return await body(session)
    return anyio.run(main)


@pytest.fixture
def gw(server: Gateway):
    server.fake.video(**DEFAULT_VIDEO)
    yield server
    server.fake.video(**DEFAULT_VIDEO)


def test_initialize_and_list_tools(gw: Gateway):
    async def body(s: ClientSession):
        assert s.protocol_version == "2025-11-25"
        return await s.list_tools()
    tools = run(gw, body)
    assert {t.name for t in tools.tools} == TOOLS
    for t in tools.tools:
        assert t.input_schema["type"] == "object", t
        assert t.description, t
    image = next(t for t in tools.tools if t.name == "generate_image")
    assert image.input_schema["required"] == ["prompt"]


def test_generate_image_returns_the_image_and_a_link(gw: Gateway):
    result = run(gw, lambda s: s.call_tool("generate_image", {
        "prompt": "a red kite over hills", "aspect_ratio": "9:16"}))
    assert not result.is_error, result
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1, result.content
    data = base64.b64decode(images[0].data)
    fmt = image_format(data)
    assert fmt in ("png", "jpeg", "webp"), data[:16]
    assert images[0].mime_type == f"image/{fmt}"
    links = [c for c in result.content if c.type == "resource_link"]
    assert len(links) == 1, result.content
    url = str(links[0].uri)
    assert result.structured_content["url"] == url
    assert any(c.type == "text" and url in c.text for c in result.content), result.content
    fetched = httpx.get(url, timeout=30, follow_redirects=True, trust_env=False)
    assert fetched.status_code == 200, fetched.text[:200]
    assert image_format(fetched.content) == fmt
    generated = gw.fake.requests("generate_image")
    assert [r["json"]["requests"][0]["imageAspectRatio"] for r in generated] == \
        ["IMAGE_ASPECT_RATIO_PORTRAIT"]


def test_generate_image_takes_reference_images_as_data_urls_and_base64(gw: Gateway):
    first = make_png(4, 3, (10, 200, 30))
    second = make_png(3, 4, (200, 10, 30))
    result = run(gw, lambda s: s.call_tool("generate_image", {
        "prompt": "both in one frame",
        "images": [data_url(first), base64.b64encode(second).decode()],
    }))
    assert not result.is_error, result
    assert image_format(base64.b64decode(result.content[0].data)), result.content[0]
    assert len(gw.fake.requests("upload_image")) == 2
    generated = gw.fake.requests("generate_image")
    assert len(generated[0]["json"]["requests"][0]["imageInputs"]) == 2, generated[0]["json"]


def test_generate_video_reports_progress_then_get_video_has_the_mp4(gw: Gateway):
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async def body(s: ClientSession):
        done = await s.call_tool("generate_video", {"prompt": "waves at dusk"},
                                 progress_callback=on_progress)
        job = done.structured_content["id"]
        return done, await s.call_tool("get_video", {"id": job})

    done, got = run(gw, body)
    assert not done.is_error, done
    assert len(progress) >= 1, progress
    values = [v for v, _ in progress]
    assert values == sorted(values) and len(set(values)) == len(values), values
    assert all(m for _, m in progress), progress
    assert done.structured_content["status"] == "completed", done.structured_content
    assert not got.is_error, got
    video = got.structured_content
    assert video["status"] == "completed" and video["progress"] == 100, video
    assert video["id"].startswith("video_"), video
    assert video["url"] and any(c.type == "resource_link" and str(c.uri) == video["url"]
                                for c in got.content), got.content
    mp4 = httpx.get(video["url"], timeout=30, follow_redirects=True, trust_env=False)
    assert mp4.status_code == 200 and is_mp4(mp4.content), mp4.content[:16]
    content = gw.http.get(video["content_url"].removeprefix(gw.base), headers=gw.auth())
    assert content.status_code == 200 and is_mp4(content.content), content.content[:16]
    assert fake_mp4_id(content.content), content.content[:64]


def test_generate_video_without_a_progress_token_returns_at_once(gw: Gateway):
    async def body(s: ClientSession):
        started = await s.call_tool("generate_video", {"prompt": "a fox", "aspect_ratio": "9:16"})
        job = started.structured_content
        assert job["status"] in ("queued", "in_progress"), job
        assert job["content_url"].endswith(f"/v1/videos/{job['id']}/content"), job
        for _ in range(300):
            got = await s.call_tool("get_video", {"id": job["id"]})
            if got.structured_content["status"] in ("completed", "failed"):
                return got
            await anyio.sleep(0.3)
        raise AssertionError("the video did not finish")
    got = run(gw, body)
    assert got.structured_content["status"] == "completed", got.structured_content
    assert got.structured_content["url"], got.structured_content


def test_list_models_through_the_high_level_client(gw: Gateway):
    async def main():
        async with http_client(gw, gw.api_key) as http:
            async with Client(streamable_http_client(f"{gw.base}/mcp", http_client=http)) as c:
                videos = await c.call_tool("list_models", {"kind": "video"})
                everything = await c.call_tool("list_models", {})
                return videos, everything
    videos, everything = anyio.run(main)
    ids = [m["id"] for m in videos.structured_content["models"]]
    assert "veo_3_1_t2v_fast_landscape" in ids, ids[:5]
    assert all(m["kind"] == "video" for m in videos.structured_content["models"])
    kinds = {m["kind"] for m in everything.structured_content["models"]}
    assert kinds == {"image", "video"}
    listed = gw.http.get("/v1/models", headers=gw.auth()).json()["data"]
    assert len(everything.structured_content["models"]) == len(listed)


def test_a_tenant_key_sees_its_models_and_only_its_jobs(gw: Gateway):
    r = gw.http.post("/api/keys", headers=gw.admin_headers(), json={
        "name": f"mcp-{secrets.token_hex(4)}", "models": ["imagen-*"]})
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    root_job = run(gw, lambda s: s.call_tool("generate_video", {"prompt": "the root's"}))
    root_id = root_job.structured_content["id"]

    async def body(s: ClientSession):
        models = await s.call_tool("list_models", {})
        refused = await s.call_tool("generate_image", {"prompt": "not my model"})
        with pytest.raises(MCPError) as exc:
            await s.call_tool("get_video", {"id": root_id})
        return models, refused, exc.value
    models, refused, err = run(gw, body, key=key)
    ids = [m["id"] for m in models.structured_content["models"]]
    assert ids and all(i.startswith("imagen-") for i in ids), ids
    assert refused.is_error, refused
    assert "may not use" in refused.content[0].text, refused.content
    assert err.code == -32602, err.error
    assert root_id in err.error.message
    assert gw.fake.requests("generate_image") == []


@pytest.mark.parametrize("name, args, fragment", [
    ("generate_image", {}, "prompt"),
    ("generate_image", {"prompt": "x", "aspect_ratio": "2:1"}, "aspect_ratio"),
    ("generate_image", {"prompt": "x", "model": "dall-e-7"}, "dall-e-7"),
    ("generate_image", {"prompt": "x", "images": ["not base64 !"]}, "data URL"),
    ("generate_video", {"prompt": "x", "seconds": 5}, "seconds"),
    ("generate_video", {"prompt": "x", "n": 2}, "n"),
    ("get_video", {"id": "video_0000"}, "video_0000"),
    ("no_such_tool", {}, "no_such_tool"),
])
def test_bad_arguments_are_invalid_params(gw: Gateway, name: str, args: dict, fragment: str):
    async def body(s: ClientSession):
        with pytest.raises(MCPError) as exc:
            await s.call_tool(name, args)
        return exc.value
    err = run(gw, body)
    assert err.code == -32602, err.error
    assert fragment in err.error.message, err.error
    assert gw.fake.requests("generate_image") == []


def post(gw: Gateway, body: bytes | str, key: str | None = "", **headers: str) -> httpx.Response:
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if key is not None:
        h.update(gw.auth(key or None))
    h.update(headers)
    return gw.http.post("/mcp", content=body, headers=h)


def rpc_error(r: httpx.Response, status: int, code: int) -> dict:
    assert r.status_code == status, f"{r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert body["jsonrpc"] == "2.0" and "error" in body, body
    assert body["error"]["code"] == code, body
    return body


def test_bodies_that_are_not_one_message_get_400_in_json_rpc(gw: Gateway):
    assert rpc_error(post(gw, "{not json"), 400, -32700)["id"] is None
    rpc_error(post(gw, '[{"jsonrpc":"2.0","id":1,"method":"ping"}]'), 400, -32600)
    rpc_error(post(gw, '{"id":1,"method":"ping"}'), 400, -32600)
    rpc_error(post(gw, '{"jsonrpc":"2.0","id":1,"method":"ping"}', **{"mcp-protocol-version": "1999-01-01"}),
              400, -32600)
    # A well-formed request is answered 200, even when it fails.
    body = rpc_error(post(gw, '{"jsonrpc":"2.0","id":"x","method":"resources/list"}'), 200, -32601)
    assert body["id"] == "x"
    ping = post(gw, '{"jsonrpc":"2.0","id":7,"method":"ping"}')
    assert ping.status_code == 200 and ping.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}
    note = post(gw, '{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert note.status_code == 202 and note.content == b"", note.text


def test_keys_and_methods(gw: Gateway):
    r = post(gw, '{"jsonrpc":"2.0","id":1,"method":"ping"}', key=None)
    rpc_error(r, 401, -32000)
    assert r.headers["www-authenticate"] == "Bearer"
    rpc_error(post(gw, '{"jsonrpc":"2.0","id":1,"method":"ping"}', key="sk-wrong"), 401, -32000)
    for method in ("GET", "DELETE", "PUT"):
        r = gw.http.request(method, "/mcp", headers=gw.auth())
        assert r.status_code == 405, (method, r.status_code, r.text)
        assert r.headers["allow"] == "POST"

    async def no_key():
        async with http_client(gw, None) as http:
            async with streamable_http_client(f"{gw.base}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    with pytest.raises(MCPError) as exc:
                        await session.initialize()
                    return exc.value
    err = anyio.run(no_key)
    assert "API key" in err.error.message, err.error
