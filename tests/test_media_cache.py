"""MEDIA_CACHE=true, on both servers: every result (an image, a video) is copied into the
gateway's own media store (a directory natively, the R2 bucket `MEDIA` in the worker) and
linked at `/media/{id}`, which answers Range (206), ETag/If-None-Match (304) and HEAD; once
MEDIA_TTL has passed the link answers 404, and the clean-up (the native server's background
task, the worker's cron run through `GET /__scheduled`) deletes the object itself.

The settings are changed at runtime (PATCH /api/settings) on the shared stacks and put back
afterwards, so no extra server is started.
"""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from conftest import Gateway, fake_mp4, ok_json, wait_until

T2V = "veo_3_1_t2v_fast_landscape"
IMAGE_MODEL = "gemini-3.1-flash-image-landscape"
MEDIA_TTL = 4
OWN_MEDIA = re.compile(r"^(http://127\.0\.0\.1:\d+)/media/([0-9A-Za-z]{16,64})$")
VIDEO_BLOCK = re.compile(r"<video src='([^']+)'")
FAKE_VIDEO = re.compile(r"/videos/([^/?#]+)\.mp4$")
DEFAULT_VIDEO = {"pending_polls": 1, "active_polls": 1, "concat_polls": 1, "fife": True,
                 "redirect": "ok", "shape": "operations"}
MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"RIFF")


def change(gw: Gateway, token: str, values: dict) -> None:
    ok_json(gw.http.patch("/api/settings", json={"values": values},
                          headers={"Authorization": f"Bearer {token}"}))


@pytest.fixture
def cached(server: Gateway) -> Iterator[Gateway]:
    token = server.login()
    server.fake.video(**DEFAULT_VIDEO)
    change(server, token, {"MEDIA_CACHE": "true", "MEDIA_TTL": str(MEDIA_TTL)})
    # Other isolates (the worker's job objects) read settings at most a second old.
    time.sleep(1.2)
    try:
        yield server
    finally:
        change(server, token, {"MEDIA_CACHE": None, "MEDIA_TTL": None})


def own_id(gw: Gateway, url: str) -> str:
    m = OWN_MEDIA.match(url)
    assert m, f"{gw.kind}: not the gateway's own media link: {url}"
    assert m.group(1) == gw.base, url
    return m.group(2)


def chat_content(gw: Gateway, model: str, prompt: str) -> str:
    body = ok_json(gw.chat({"model": model, "messages": [{"role": "user", "content": prompt}]},
                           timeout=120))
    return body["choices"][0]["message"]["content"]


def stored_objects(gw: Gateway) -> set[str]:
    """What the media store holds on disk: the native server's media files, or the blobs of
    the worker's local R2 bucket (under `wrangler dev --persist-to`)."""
    if gw.kind == "native":
        root = Path(gw.extra["DATA_DIR"]) / "media"
        return {p.name for p in root.iterdir() if not p.name.endswith((".type", ".tmp"))}
    assert gw.persist is not None
    blobs = [p for p in gw.persist.rglob("*") if p.is_file() and "r2" in p.parts and "blobs" in p.parts]
    return {str(p) for p in blobs}


def test_an_image_is_served_from_the_gateway(cached: Gateway) -> None:
    gw = cached
    content = chat_content(gw, IMAGE_MODEL, "a red apple on a table")
    url = re.search(r"\]\(([^)]+)\)", content).group(1)
    own_id(gw, url)
    assert len(gw.fake.requests("fife")) == 1, "copied once from Google's link"
    r = httpx.get(url, timeout=30)
    assert r.status_code == 200, r.text
    assert r.content.startswith(MAGIC), r.content[:16]
    assert r.headers["content-type"].startswith("image/"), r.headers
    # b64_json reads the copy: one download per image, none again for the answer.
    before = len(gw.fake.requests("fife"))
    data = ok_json(gw.http.post("/v1/images/generations", headers=gw.auth(), timeout=120,
                                json={"prompt": "a pear", "response_format": "b64_json"}))
    assert base64.b64decode(data["data"][0]["b64_json"]).startswith(MAGIC)
    assert len(gw.fake.requests("fife")) == before + 1


def test_a_video_answers_ranges_validators_then_expires_and_is_deleted(cached: Gateway) -> None:
    gw = cached
    before = stored_objects(gw)
    content = chat_content(gw, T2V, "a paper boat on a stream")
    url = VIDEO_BLOCK.search(content).group(1)
    media_id = own_id(gw, url)
    # The fake's video file was read once (to copy it); its id names the expected bytes.
    files = [r["url"] for r in gw.fake.requests() if FAKE_VIDEO.search(r.get("url", ""))]
    assert len(files) == 1, files
    whole = fake_mp4(FAKE_VIDEO.search(files[0]).group(1))
    stored = stored_objects(gw) - before
    assert stored, f"{gw.kind}: nothing new in the media store"
    if gw.kind == "native":
        assert media_id in stored, stored

    part = httpx.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
    assert part.status_code == 206, part.text
    assert len(part.content) == 100 and part.content == whole[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(whole)}"
    assert part.headers["accept-ranges"] == "bytes"
    assert part.headers["content-type"] == "video/mp4"
    etag = part.headers["etag"]
    assert etag == f'"{media_id}"', etag
    tail = httpx.get(url, headers={"Range": "bytes=-10"}, timeout=30)
    assert tail.status_code == 206 and tail.content == whole[-10:]
    past = httpx.get(url, headers={"Range": f"bytes={len(whole)}-"}, timeout=30)
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(whole)}"
    same = httpx.get(url, headers={"If-None-Match": etag}, timeout=30)
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    full = httpx.get(url, headers={"If-None-Match": '"another"'}, timeout=30)
    assert full.status_code == 200 and full.content == whole
    head = httpx.head(url, timeout=30)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(whole))

    # Past MEDIA_TTL: the link is gone at once, the object once the clean-up has run.
    time.sleep(MEDIA_TTL + 0.5)
    gone = httpx.get(url, timeout=30)
    assert gone.status_code == 404, gone.text
    if gw.kind == "worker":
        r = httpx.get(f"{gw.base}/__scheduled", params={"cron": "*/10 * * * *"}, timeout=60)
        assert r.status_code == 200, r.text
        wait_until(lambda: re.search(r"media cron=.* purged=[1-9]", gw.proc.log_text()),
                   timeout=30, what="the cron's purge line")
    wait_until(lambda: not (stored_objects(gw) & stored), timeout=30,
               what=f"{gw.kind}: the expired objects deleted")
