"""Tenants end to end, on both servers (the native server and the worker under `wrangler dev`):
API keys the admin makes (`/api/keys`), used with the official `openai` and `google-genai`
clients; one key's video job invisible to another (and visible to the root key); a daily
image quota (429 `insufficient_quota` with `Retry-After` to midnight UTC); `concurrent_jobs`;
model patterns (403 and a filtered `/v1/models`); a deleted key refused at once; usage per
day; the key never listed."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone
from typing import Iterator

import httpx
import openai
import pytest

from conftest import Gateway, ok_json

pytestmark = [
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]

IMAGE = "gemini-3.1-flash-image-landscape"
T2V = "veo_3_1_t2v_fast_landscape"
GEMINI_MODEL = "veo-3.1-fast-generate-preview"
DEFAULT_VIDEO = {"pending_polls": 1, "active_polls": 1, "concat_polls": 1, "fife": True,
                 "redirect": "ok", "shape": "operations"}
JOB_TIMEOUT = 90.0


@pytest.fixture
def gw(server: Gateway) -> Iterator[Gateway]:
    """`server` with the fake's video settings at their defaults, before and after."""
    server.fake.video(**DEFAULT_VIDEO)
    yield server
    server.fake.video(**DEFAULT_VIDEO)


def make_key(gw: Gateway, **body) -> dict:
    body.setdefault("name", f"tenant-{secrets.token_hex(4)}")
    r = gw.http.post("/api/keys", json=body, headers=gw.admin_headers())
    assert r.status_code == 201, f"{gw.kind}: POST /api/keys: {r.status_code} {r.text}"
    return r.json()


def client(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{gw.base}/v1", max_retries=0, timeout=120.0)


def image(c: openai.OpenAI, prompt: str = "a red apple"):
    return c.chat.completions.create(model=IMAGE, messages=[{"role": "user", "content": prompt}])


def usage(gw: Gateway, key_id: str) -> list[dict]:
    return ok_json(gw.http.get(f"/api/keys/{key_id}/usage", headers=gw.admin_headers()))["days"]


def wait_video(c: openai.OpenAI, video_id: str):
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        v = c.videos.retrieve(video_id)
        if v.status in ("completed", "failed"):
            return v
        assert time.monotonic() < deadline, f"video {video_id} not done: {v}"
        time.sleep(0.2)


def test_keys_made_listed_changed_and_never_shown_again(gw: Gateway):
    created = make_key(gw, quota={"images_per_day": 10, "concurrent_jobs": 2}, models=["gemini-*"])
    key, key_id = created["key"], created["id"]
    assert key.startswith("sk-f2a-") and len(key) == 7 + 64, created
    assert created["prefix"] == key[:13], created
    assert created["quota"] == {"images_per_day": 10, "videos_per_day": None,
                                "video_seconds_per_day": None, "concurrent_jobs": 2}, created
    assert created["models"] == ["gemini-*"]
    # No admin session: refused.
    assert gw.http.post("/api/keys", json={"name": "x"}).status_code == 401
    assert gw.http.get("/api/keys").status_code == 401

    listed = gw.http.get("/api/keys", headers=gw.admin_headers())
    assert listed.status_code == 200
    assert key not in listed.text and key[13:] not in listed.text
    mine = [k for k in listed.json()["data"] if k["id"] == key_id]
    assert len(mine) == 1 and "key" not in mine[0] and mine[0]["prefix"] == key[:13], mine
    one = ok_json(gw.http.get(f"/api/keys/{key_id}", headers=gw.admin_headers()))
    assert "key" not in one and key not in str(one)

    changed = gw.http.put(f"/api/keys/{key_id}", json={"name": "renamed", "models": ["*"]},
                          headers=gw.admin_headers())
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "renamed" and changed.json()["models"] == ["*"]
    assert changed.json()["quota"]["images_per_day"] == 10
    bad = gw.http.post("/api/keys", json={"name": ""}, headers=gw.admin_headers())
    assert bad.status_code == 400, bad.text
    assert gw.http.get("/api/keys/key_0000000000000000/usage",
                       headers=gw.admin_headers()).status_code == 404


def test_one_keys_video_job_is_404_for_another_and_seen_by_the_root_key(gw: Gateway):
    a, b = make_key(gw)["key"], make_key(gw)["key"]
    with client(gw, a) as ca, client(gw, b) as cb, client(gw, gw.api_key) as root:
        video = ca.videos.create(model=T2V, prompt=f"a fox {secrets.token_hex(3)}", seconds="8",
                                 size="1280x720")
        done = wait_video(ca, video.id)
        assert done.status == "completed", done
        with pytest.raises(openai.NotFoundError):
            cb.videos.retrieve(video.id)
        with pytest.raises(openai.NotFoundError):
            cb.videos.download_content(video.id)
        with pytest.raises(openai.NotFoundError):
            cb.videos.delete(video.id)
        assert video.id not in [v.id for v in cb.videos.list(limit=100)]
        assert [v.id for v in ca.videos.list(limit=100)] == [video.id]
        # The root key sees it, in the listing too.
        assert root.videos.retrieve(video.id).status == "completed"
        assert video.id in [v.id for v in root.videos.list(limit=100)]
        assert ca.videos.download_content(video.id).read()
    # Gemini's file link of the job: a's, not b's.
    url = f"{gw.base}/v1beta/files/{video.id}:download?alt=media"
    assert httpx.get(url, headers={"x-goog-api-key": b}, trust_env=False).status_code == 404
    assert httpx.get(url, headers={"x-goog-api-key": a}, trust_env=False).status_code == 200


def test_gemini_operations_belong_to_their_key(gw: Gateway):
    """google-genai (Vertex AI express mode) with a tenant key; the operation is another key's
    404."""
    from google import genai
    from google.genai import types

    a, b = make_key(gw)["key"], make_key(gw)["key"]
    ga = genai.Client(vertexai=True, api_key=a, http_options=types.HttpOptions(base_url=gw.base))
    op = ga.models.generate_videos(model=GEMINI_MODEL,
                                   source=types.GenerateVideosSource(prompt="a quiet harbour"))
    deadline = time.monotonic() + JOB_TIMEOUT
    while not op.done:
        assert time.monotonic() < deadline, op
        time.sleep(0.2)
        op = ga.operations.get(op)
    assert op.error is None, op.error
    gb = genai.Client(vertexai=True, api_key=b, http_options=types.HttpOptions(base_url=gw.base))
    with pytest.raises(Exception) as exc:
        gb.operations.get(op)
    assert "404" in str(exc.value) or "NOT_FOUND" in str(exc.value), exc.value


def test_daily_image_quota_of_one(gw: Gateway):
    created = make_key(gw, quota={"images_per_day": 1})
    with client(gw, created["key"]) as c:
        assert "![Generated Image](" in (image(c).choices[0].message.content or "")
        with pytest.raises(openai.RateLimitError) as exc:
            image(c)
    err = exc.value
    assert err.status_code == 429 and err.code == "insufficient_quota", err.body
    assert err.type == "insufficient_quota", err.body
    retry = int(err.response.headers["retry-after"])
    now = datetime.now(timezone.utc)
    to_midnight = 86_400 - (now.hour * 3600 + now.minute * 60 + now.second)
    assert abs(retry - to_midnight) <= 5, (retry, to_midnight)
    # The root key has no quota.
    with client(gw, gw.api_key) as root:
        assert image(root).choices[0].message.content
    days = usage(gw, created["id"])
    assert len(days) == 1 and days[0]["images"] == 1 and days[0]["errors"] == 0, days
    assert days[0]["date"] == now.strftime("%Y-%m-%d"), days


def test_video_quota_in_the_gemini_dialect(gw: Gateway):
    key = make_key(gw, quota={"videos_per_day": 0})["key"]
    r = gw.http.post(f"/v1beta/models/{GEMINI_MODEL}:predictLongRunning",
                     json={"instances": [{"prompt": "x"}]}, headers={"x-goog-api-key": key})
    assert r.status_code == 429, r.text
    assert r.json()["error"]["status"] == "RESOURCE_EXHAUSTED", r.text
    assert int(r.headers["retry-after"]) > 0


def test_concurrent_jobs(gw: Gateway):
    key = make_key(gw, quota={"concurrent_jobs": 1})["key"]
    gw.fake.video(pending_polls=30, active_polls=1)
    with client(gw, key) as c:
        video = c.videos.create(model=T2V, prompt="a slow sunrise", seconds="8", size="1280x720")
        assert video.status in ("queued", "in_progress"), video
        with pytest.raises(openai.RateLimitError) as exc:
            image(c)
        assert exc.value.code == "rate_limit_exceeded", exc.value.body
        with pytest.raises(openai.RateLimitError) as exc:
            c.videos.create(model=T2V, prompt="another", seconds="8", size="1280x720")
        assert exc.value.code == "rate_limit_exceeded", exc.value.body
        assert wait_video(c, video.id).status == "completed"
        # The job's end gave its place back.
        assert image(c).choices[0].message.content


def test_model_patterns(gw: Gateway):
    created = make_key(gw, models=["veo_3_1_t2v_fast*"])
    with client(gw, created["key"]) as c:
        ids = [m.id for m in c.models.list()]
        assert ids and all(i.startswith("veo_3_1_t2v_fast") for i in ids), ids
        with pytest.raises(openai.PermissionDeniedError) as exc:
            image(c)
        assert exc.value.status_code == 403 and exc.value.code == "model_not_allowed", exc.value.body
    with client(gw, gw.api_key) as root:
        assert len(list(root.models.list())) > len(ids)
    # Gemini's list, through google-genai: the key's models only.
    from google import genai
    from google.genai import types
    g = genai.Client(api_key=created["key"],
                     http_options=types.HttpOptions(base_url=gw.base, api_version="v1beta"))
    names = [m.name for m in g.models.list()]
    assert "models/veo-3.1-fast-generate-preview" in names, names
    assert "models/veo-3.1-generate-preview" not in names, names
    assert all(n == "models/veo-3.1-fast-generate-preview" or n.startswith("models/veo_3_1_t2v_fast")
               for n in names), names
    # (Each client kept in a variable: the pager reads through it after the call.)
    groot = genai.Client(api_key=gw.api_key,
                         http_options=types.HttpOptions(base_url=gw.base, api_version="v1beta"))
    root_names = [m.name for m in groot.models.list()]
    assert "models/veo-3.1-generate-preview" in root_names and len(root_names) > len(names)
    r = gw.http.post("/v1beta/models/veo-3.1-generate-preview:predictLongRunning",
                     json={"instances": [{"prompt": "x"}]},
                     headers={"x-goog-api-key": created["key"]})
    assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED", r.text


def test_deleted_key_is_refused_at_once(gw: Gateway):
    created = make_key(gw)
    with client(gw, created["key"]) as c:
        assert [m.id for m in c.models.list()]
        r = gw.http.delete(f"/api/keys/{created['id']}", headers=gw.admin_headers())
        assert r.status_code == 200, r.text
        with pytest.raises(openai.AuthenticationError) as exc:
            c.models.list()
        assert exc.value.status_code == 401
    assert created["id"] not in gw.http.get("/api/keys", headers=gw.admin_headers()).text


def test_usage_counts_successes_and_errors(gw: Gateway):
    created = make_key(gw)
    with client(gw, created["key"]) as c:
        image(c)
        gw.fake.fault("generate_image", status=400, reason="PUBLIC_ERROR_UNSAFE_GENERATION",
                      message="Request contains an invalid argument.", times=1)
        with pytest.raises(openai.BadRequestError):
            image(c, "unsafe")
        video = c.videos.create(model=T2V, prompt="a waterfall", seconds="8", size="1280x720")
        assert wait_video(c, video.id).status == "completed"
    # The worker counts a job's end in its step, which the reader may see first: wait a little.
    deadline = time.monotonic() + 10
    while True:
        days = usage(gw, created["id"])
        if days and days[-1]["videos"] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(days) == 1, days
    today = days[0]
    assert (today["images"], today["errors"], today["videos"], today["video_seconds"]) == (1, 1, 1, 8), today
