"""End-to-end video tests (Veo through Google Flow), against the native server and the worker
under `wrangler dev`, both pointed at the fake upstream (see conftest.py).

Covered: chat completions with video models (stream and not; t2v, first+last frame i2v, three
reference images r2v, a 1080p upsample; the gateway's /media fallback); a client hanging up
mid-generation; the OpenAI Videos API (`/v1/videos`: create as JSON and multipart, retrieve,
list paging, content, delete, Idempotency-Key, errors) by hand and through the official
`openai` package; Gemini `predictLongRunning` + operations by hand and through `google-genai`;
and, worker only, a job surviving a restart of `wrangler dev` and the subrequests each job step
(a Durable Object alarm) makes.

Every stack's POLL_INTERVAL is 0.05 s (conftest.gateway_env), so the fake's `pending_polls`
decide how long a job runs: 1 PENDING + 1 ACTIVE poll by default (set before every test, as
`POST /_fake/reset` does not clear the video settings).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from typing import Any, Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from conftest import (
    HTTP_TIMEOUT, Fake, Gateway, check_chunks, data_url, fake_mp4, fake_mp4_id, make_png, ok_json,
    openai_error,
    register_account, start_fake, start_worker, stop_stack, wait_until,
)

# The official SDKs mark their video methods deprecated (Sora shutdown; generate_videos'
# prompt= form); that is not what these tests are about.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The generate_videos method:DeprecationWarning"),
]

# Real ids from flow2api-sdk/src/models/videos.rs.
T2V = "veo_3_1_t2v_fast_landscape"      # text → video (E9)
T2V_ALIAS = "veo_3_1_t2v_fast"          # alias: landscape or portrait by size / aspect ratio
I2V = "veo_3_1_i2v_s_fast_fl"           # 1–2 frames: E10 (first) or E11 (first + last)
R2V = "veo_3_1_r2v_fast"                # 0–3 reference images (E12)
T2V_1080P = "veo_3_1_t2v_fast_1080p"    # E9, then an E14 upsample to 1080p
GEMINI_MODEL = "veo-3.1-fast-generate-preview"

VIDEO_ID = re.compile(r"^video_[0-9a-f]+$")
STATUSES = {"queued", "in_progress", "completed", "failed"}
VIDEO_TAG = re.compile(r"<video src='([^']+)' data-media-id='([^']*)' controls style='max-width:100%'></video>")
NON_STREAM_VIDEO = re.compile(r"^```html\n<video src='([^']+)' controls></video>\n```$")
FAKE_VIDEO_FILE = re.compile(r"/videos/([^/?#]+)\.mp4$")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STEP_LINE = re.compile(r"video-job step id=(\S+).*?subrequests=(\d+)")

# What every test starts from (and the fake's own defaults).
DEFAULT_VIDEO = {"pending_polls": 1, "active_polls": 1, "concat_polls": 1, "fife": True,
                 "redirect": "ok", "shape": "operations"}
SUBMITS = ("generate_video_text", "generate_video_start_image", "generate_video_start_end_image",
           "generate_video_reference_images", "extend_video", "upsample_video")
GENAI_OPERATION_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"

JOB_TIMEOUT = 90.0  # seconds for a short job (a few polls at 0.05 s; worker alarms are slower)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def user(text: str, *image_urls: str) -> list[dict]:
    if not image_urls:
        return [{"role": "user", "content": text}]
    parts: list[dict] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": u}} for u in image_urls]
    return [{"role": "user", "content": parts}]


def pngs(n: int) -> list[bytes]:
    """n distinct small PNGs."""
    colours = [(200, 30, 40), (30, 200, 40), (40, 30, 200), (220, 220, 20)]
    return [make_png(4 + i, 3, colours[i % len(colours)]) for i in range(n)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


GEMINI_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def gemini_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: expected {status}, got {r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/json"), r.headers
    err = r.json().get("error")
    assert isinstance(err, dict), r.text
    assert err.get("code") == status, err
    assert err.get("status") == GEMINI_STATUS[status], err
    assert isinstance(err.get("message"), str) and err["message"], err
    return err


def split_stream(datas: list[str]) -> list[dict]:
    """Checks the `[DONE]` terminator and returns the JSON events before it."""
    assert datas, "empty stream"
    assert datas[-1] == "[DONE]", f"last event is not [DONE]: {datas[-3:]}"
    assert datas.count("[DONE]") == 1, datas
    return [json.loads(d) for d in datas[:-1]]


def stream_chat(gw: Gateway, body: dict) -> tuple[httpx.Headers, list[dict]]:
    """A streaming chat completion: the response headers and the JSON events before [DONE]."""
    with connect_sse(gw.http, "POST", "/v1/chat/completions", json=body, headers=gw.auth()) as es:
        r = es.response
        if r.status_code != 200:
            r.read()
            pytest.fail(f"{gw.kind}: stream answered {r.status_code}: {r.text}")
        assert r.headers["content-type"].startswith("text/event-stream"), r.headers
        datas = [sse.data for sse in es.iter_sse()]
    return r.headers, split_stream(datas)


def only(records: list[dict], what: str) -> dict:
    assert len(records) == 1, f"expected one {what} request, got {len(records)}: {[r.get('url') for r in records]}"
    return records[0]


def submits(fake: Fake) -> list[dict]:
    return [r for r in fake.requests() if r["endpoint"] in SUBMITS]


def polled_names(fake: Fake) -> set[str]:
    """Every operation name the gateway asked the fake about (E15 bodies)."""
    names: set[str] = set()
    for rec in fake.requests("check_video_status"):
        names.update(UUID.findall(json.dumps(rec.get("json"))))
    return names


def first_request(rec: dict) -> dict:
    """`requests[0]` of a recorded video submit body."""
    reqs = (rec.get("json") or {}).get("requests") or []
    assert reqs, f"no requests[] in {rec.get('json')}"
    return reqs[0]


def download(url: str, gw: Gateway | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """GETs a video URL (following redirects, should the gateway answer one)."""
    r = httpx.get(url, headers=headers or {}, timeout=HTTP_TIMEOUT, trust_env=False, follow_redirects=True)
    assert r.status_code == 200, f"GET {url}: {r.status_code} {r.text[:300]}"
    return r


def assert_fake_mp4(content: bytes, expect_id: str | None = None) -> str:
    """`content` is exactly the fake's MP4 for some video id (`expect_id` if given); returns it."""
    vid = fake_mp4_id(content)
    assert vid is not None, f"not one of the fake's MP4s ({len(content)} bytes): {content[:64]!r}"
    if expect_id is not None:
        assert vid == expect_id, f"the MP4 is the fake's video {vid}, expected {expect_id}"
    assert content == fake_mp4(vid), f"the bytes differ from the fake's MP4 for {vid}"
    return vid


def create_video(gw: Gateway, body: dict | None = None, *, files: list | None = None,
                 data: dict | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """POST /v1/videos: JSON `body`, or multipart `data` + `files`."""
    h = {**gw.auth(), **(headers or {})}
    if files is not None or data is not None:
        return gw.http.post("/v1/videos", data=data or {}, files=files or [], headers=h)
    return gw.http.post("/v1/videos", json=body, headers=h)


def check_video_object(v: dict, *, model: str | None = None, prompt: str | None = None,
                       size: str | None = None, seconds: str | None = "8") -> dict:
    assert isinstance(v.get("id"), str) and VIDEO_ID.match(v["id"]), v
    assert v.get("object") == "video", v
    assert v.get("status") in STATUSES, v
    assert isinstance(v.get("progress"), int) and 0 <= v["progress"] <= 100, v
    assert isinstance(v.get("created_at"), int) and abs(v["created_at"] - time.time()) < 86400, v
    if model is not None:
        assert v.get("model") == model, v
    if prompt is not None:
        assert v.get("prompt") == prompt, v
    if size is not None:
        assert v.get("size") == size, v
    if seconds is not None:
        assert v.get("seconds") == seconds, v
    return v


def get_video(gw: Gateway, vid: str) -> dict:
    return ok_json(gw.http.get(f"/v1/videos/{vid}", headers=gw.auth()))


def wait_video(gw: Gateway, vid: str, timeout: float = JOB_TIMEOUT, interval: float = 0.1) -> dict:
    """Polls GET /v1/videos/{id} until completed or failed; progress never goes down."""
    deadline = time.monotonic() + timeout
    last: dict | None = None
    trace: list[tuple[str, int]] = []
    while True:
        gw.proc.check_alive(f"waiting for {vid}")
        v = get_video(gw, vid)
        assert v.get("id") == vid, v
        assert v.get("status") in STATUSES, v
        if last is not None and v["status"] != "failed":
            assert v["progress"] >= last["progress"], f"progress went down: {trace + [(v['status'], v['progress'])]}"
        if not trace or trace[-1] != (v["status"], v["progress"]):
            trace.append((v["status"], v["progress"]))
        last = v
        if v["status"] in ("completed", "failed"):
            return v
        if time.monotonic() >= deadline:
            pytest.fail(f"{gw.kind}: {vid} not finished after {timeout:.0f}s; (status, progress): {trace}")
        time.sleep(interval)


def check_completed(v: dict) -> dict:
    assert v["status"] == "completed", v
    assert v["progress"] == 100, v
    assert isinstance(v.get("completed_at"), int) and v["completed_at"] >= v["created_at"], v
    assert not v.get("error"), v
    return v


def content(gw: Gateway, vid: str) -> bytes:
    r = gw.http.get(f"/v1/videos/{vid}/content", headers=gw.auth(), follow_redirects=True)
    assert r.status_code == 200, f"GET /v1/videos/{vid}/content: {r.status_code} {r.text[:300]}"
    assert r.headers["content-type"].startswith("video/mp4"), r.headers
    return r.content


def gemini_headers(gw: Gateway) -> dict[str, str]:
    return {"x-goog-api-key": gw.api_key}


def gemini_start(gw: Gateway, model: str, instance: dict, parameters: dict | None = None) -> httpx.Response:
    body = {"instances": [instance], "parameters": parameters or {"aspectRatio": "16:9", "durationSeconds": 8,
                                                                  "resolution": "720p"}}
    return gw.http.post(f"/v1beta/models/{model}:predictLongRunning", json=body, headers=gemini_headers(gw))


def gemini_wait(gw: Gateway, name: str, timeout: float = JOB_TIMEOUT) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        gw.proc.check_alive(f"waiting for {name}")
        op = ok_json(gw.http.get(f"/v1beta/{name}", headers=gemini_headers(gw)))
        assert op.get("name") == name, op
        if op.get("done"):
            return op
        assert "response" not in op and "error" not in op, op
        if time.monotonic() >= deadline:
            pytest.fail(f"{gw.kind}: {name} not done after {timeout:.0f}s: {op}")
        time.sleep(0.1)


def gateway_video_uri(gw: Gateway, uri: str | None, operation: str) -> str:
    """A Gemini result's `video.uri` is a download link on the gateway itself, for the job the
    operation names: `/v1/videos/<id>/content`, or the Files-API shape
    `/v1beta/files/<id>:download?alt=media`. Returns the id."""
    base = re.escape(gw.base)
    m = (re.fullmatch(base + r"/v1/videos/(video_[0-9a-f]+)/content", uri or "")
         or re.fullmatch(base + r"/v1beta/files/(video_[0-9a-f]+):download(\?alt=media)?", uri or ""))
    assert m, f"video uri {uri!r} is not a download link on the gateway {gw.base}"
    assert operation.endswith(f"/operations/{m.group(1)}"), (operation, uri)
    print(f"{gw.kind}: {operation} -> {uri}")
    return m.group(1)


def step_lines(text: str) -> list[tuple[str, int]]:
    return [(m.group(1), int(m.group(2))) for m in STEP_LINE.finditer(text)]


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def vs(server: Gateway) -> Iterator[Gateway]:
    """`server` (both kinds) with the fake's video settings at their defaults, before and after."""
    server.fake.video(**DEFAULT_VIDEO)
    yield server
    server.fake.video(**DEFAULT_VIDEO)


# ---------------------------------------------------------------------------------------------
# chat completions
# ---------------------------------------------------------------------------------------------

CHAT_CASES = {
    # id: (model, images, submit endpoint)
    "t2v": (T2V, 0, "generate_video_text"),
    "i2v-first-last": (I2V, 2, "generate_video_start_end_image"),
    "r2v-3-refs": (R2V, 3, "generate_video_reference_images"),
    "t2v-1080p": (T2V_1080P, 0, "generate_video_text"),
}


@pytest.mark.parametrize("case", list(CHAT_CASES))
def test_chat_stream_video(vs: Gateway, case: str):
    """Streams progress as reasoning_content, names the job in `x-video-id`, ends with the
    video tag and [DONE]; the URL serves the fake's MP4, and the job is visible (completed) in
    the Videos API with the same bytes. Checks what was uploaded and submitted upstream; for the
    1080p model, that an E14 upsample to 1080p ran and its result is what is delivered."""
    model, n_images, submit = CHAT_CASES[case]
    images = pngs(n_images)
    prompt = f"a paper boat on a stream, {case} {secrets.token_hex(3)}"
    body = {"model": model, "stream": True, "messages": user(prompt, *(data_url(p) for p in images))}
    headers, events = stream_chat(vs, body)

    vid = headers.get("x-video-id")
    assert vid and VIDEO_ID.match(vid), f"x-video-id: {vid!r}"
    deltas = check_chunks(events, model)
    reasoning = [d["reasoning_content"] for d in deltas if d.get("reasoning_content")]
    assert reasoning, f"no reasoning_content progress: {deltas}"
    assert any(re.search(r"\d+\s*%", line) for line in reasoning), f"no percentage among {reasoning}"

    final = events[-1]["choices"][0]
    assert final["finish_reason"] == "stop", final
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1]), events
    assert not any(VIDEO_TAG.search(d.get("content") or "") for d in deltas[:-1]), deltas
    m = VIDEO_TAG.search(final["delta"].get("content") or "")
    assert m, f"no video tag in {final['delta']!r}"
    url, media_id = m.group(1), m.group(2)

    # The fake's own file (redirect mode "ok"), and exactly its bytes.
    assert url.startswith(f"{vs.fake.base}/videos/"), url
    name = FAKE_VIDEO_FILE.search(url).group(1)
    r = download(url)
    assert r.headers["content-type"].startswith("video/mp4"), r.headers
    assert_fake_mp4(r.content, name)
    assert name in polled_names(vs.fake), f"{name} was never polled"

    # Upstream: uploads in order, one submit of the right kind with the prompt.
    uploads = vs.fake.requests("upload_image")
    assert [u["json"]["imageBytes"] for u in uploads] == [b64(p) for p in images], "uploads differ"
    gen = only(vs.fake.requests(submit), submit)
    assert prompt in json.dumps(gen["json"]), gen["json"]
    req = first_request(gen)
    assert req.get("aspectRatio") == "VIDEO_ASPECT_RATIO_LANDSCAPE", req
    if case == "i2v-first-last":
        assert req.get("startImage", {}).get("mediaId") and req.get("endImage", {}).get("mediaId"), req
    if case == "r2v-3-refs":
        assert len(req.get("referenceImages") or []) == 3, req

    if case == "t2v-1080p":
        up = only(vs.fake.requests("upsample_video"), "upsample_video")
        ureq = first_request(up)
        assert ureq.get("resolution") == "VIDEO_RESOLUTION_1080P", ureq
        assert ureq.get("videoModelKey") == "veo_3_1_upsampler_1080p", ureq
        source = ureq["videoInput"]["mediaId"]
        assert source != name, "the original video was delivered, not the upsampled one"
        assert source in polled_names(vs.fake)
        assert len(submits(vs.fake)) == 2, [r["endpoint"] for r in submits(vs.fake)]
    else:
        assert vs.fake.requests("upsample_video") == []
        assert len(submits(vs.fake)) == 1, [r["endpoint"] for r in submits(vs.fake)]

    # The same job through the Videos API.
    v = check_completed(wait_video(vs, vid, timeout=30))
    assert v["model"] == model, v
    assert v["prompt"] == prompt, v
    assert_fake_mp4(content(vs, vid), name)

    # data-media-id is the UUID after /video/ in the URL, else the media name (docs/upstream.md
    # "URL resolution"; here the URL is <fake>/videos/<name>.mp4, so the media name).
    assert media_id == name, f"data-media-id {media_id!r}, expected the media name {name!r} ({url})"


def test_chat_non_stream_video(vs: Gateway):
    prompt = f"a lighthouse at dusk {secrets.token_hex(3)}"
    body = ok_json(vs.chat({"model": T2V, "messages": user(prompt)}))
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-"), body
    assert body["model"] == T2V
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    assert choice["message"]["role"] == "assistant"
    m = NON_STREAM_VIDEO.match(choice["message"]["content"] or "")
    assert m, f"not the fenced video block: {choice['message']['content']!r}"
    url = m.group(1)
    assert url.startswith(f"{vs.fake.base}/videos/"), url
    assert_fake_mp4(download(url).content, FAKE_VIDEO_FILE.search(url).group(1))
    only(vs.fake.requests("generate_video_text"), "generate_video_text")


def test_chat_video_fife_url_when_redirect_empty(vs: Gateway):
    """E16 answers an empty URL: the `fifeUrl` of the status is delivered, with no E17."""
    vs.fake.video(redirect="empty")
    _, events = stream_chat(vs, {"model": T2V, "stream": True, "messages": user("a blue kite")})
    m = VIDEO_TAG.search(events[-1]["choices"][0]["delta"].get("content") or "")
    assert m and m.group(1).endswith(".mp4?token=fake-fife"), events[-1]
    assert not vs.fake.requests("media_bytes"), "E17 was called"
    assert_fake_mp4(download(m.group(1)).content)


def test_chat_video_gateway_media_when_redirect_empty(vs: Gateway):
    """E16 answers an empty URL and the status has no `fifeUrl`: the gateway stores the E17
    bytes and links its own /media/."""
    vs.fake.video(redirect="empty", fife=False)
    headers, events = stream_chat(vs, {"model": T2V, "stream": True, "messages": user("a red kite")})
    final = events[-1]["choices"][0]
    assert final["finish_reason"] == "stop", final
    m = VIDEO_TAG.search(final["delta"].get("content") or "")
    assert m, final
    url = m.group(1)
    assert url.startswith(f"{vs.base}/media/"), url
    fetched = vs.fake.requests("media_bytes")
    assert fetched, "E17 was not called"
    name = fetched[-1]["path"].rstrip("/").rsplit("/", 1)[-1]
    r = download(url)  # no API key needed for media links
    assert r.headers["content-type"].startswith("video/mp4"), r.headers
    assert_fake_mp4(r.content, name)
    vid = headers.get("x-video-id")
    assert vid and VIDEO_ID.match(vid), vid
    check_completed(wait_video(vs, vid, timeout=30))
    assert_fake_mp4(content(vs, vid), name)


def test_chat_disconnect_mid_generation_job_completes(vs: Gateway):
    """The client hangs up after the first event; the job goes on and completes, and its video
    is served by /v1/videos/{id}/content."""
    pending = 40  # ≥ 2 s of polls at 0.05 s
    vs.fake.video(pending_polls=pending, active_polls=1)
    body = {"model": T2V, "stream": True, "messages": user(f"a slow sunrise {secrets.token_hex(3)}")}
    with httpx.Client(base_url=vs.base, timeout=HTTP_TIMEOUT, trust_env=False) as client:
        with client.stream("POST", "/v1/chat/completions", json=body, headers=vs.auth()) as r:
            assert r.status_code == 200, r.read()
            vid = r.headers.get("x-video-id")
            assert vid and VIDEO_ID.match(vid), f"x-video-id: {vid!r}"
            for line in r.iter_lines():
                if line.startswith("data:"):
                    assert "[DONE]" not in line and "<video" not in line, line
                    break
    # Hung up.
    polls_at_close = len(vs.fake.requests("check_video_status"))
    v = get_video(vs, vid)
    assert v["status"] in ("queued", "in_progress"), v
    assert polls_at_close < pending, f"{polls_at_close} polls already made when the client left"

    done = check_completed(wait_video(vs, vid))
    polls = vs.fake.requests("check_video_status")
    assert len(polls) >= pending + 2, f"only {len(polls)} polls for {pending} PENDING + 1 ACTIVE"
    assert_fake_mp4(content(vs, vid))
    assert done["model"] == T2V
    only(vs.fake.requests("generate_video_text"), "generate_video_text")


# ---------------------------------------------------------------------------------------------
# OpenAI Videos API by hand
# ---------------------------------------------------------------------------------------------

def test_videos_create_json_lifecycle(vs: Gateway):
    """JSON create → queued/in_progress object → completed (progress 100, completed_at) →
    content is the fake's MP4 → delete → 404 everywhere."""
    prompt = f"a cat chasing butterflies {secrets.token_hex(3)}"
    v = check_video_object(ok_json(create_video(vs, {"model": T2V, "prompt": prompt, "seconds": "8",
                                                     "size": "1280x720"})),
                           model=T2V, prompt=prompt, size="1280x720")
    assert v["status"] in ("queued", "in_progress"), v
    vid = v["id"]
    done = check_video_object(check_completed(wait_video(vs, vid)), model=T2V, prompt=prompt, size="1280x720")
    assert done["created_at"] == v["created_at"], (v, done)
    name = assert_fake_mp4(content(vs, vid))
    assert name in polled_names(vs.fake)
    req = first_request(only(vs.fake.requests("generate_video_text"), "generate_video_text"))
    assert req.get("aspectRatio") == "VIDEO_ASPECT_RATIO_LANDSCAPE", req
    assert prompt in json.dumps(req), req

    deleted = ok_json(vs.http.delete(f"/v1/videos/{vid}", headers=vs.auth()))
    assert deleted == {"id": vid, "object": "video.deleted", "deleted": True}, deleted
    openai_error(vs.http.get(f"/v1/videos/{vid}", headers=vs.auth()), 404)
    openai_error(vs.http.get(f"/v1/videos/{vid}/content", headers=vs.auth()), 404)
    openai_error(vs.http.delete(f"/v1/videos/{vid}", headers=vs.auth()), 404)
    listed = ok_json(vs.http.get("/v1/videos", params={"limit": 100}, headers=vs.auth()))
    assert vid not in {x["id"] for x in listed["data"]}, "a deleted video is still listed"


def test_videos_portrait_size_with_alias(vs: Gateway):
    """`size` 720x1280 with the alias picks the portrait model (9:16 ↔ 720x1280)."""
    v = check_video_object(ok_json(create_video(vs, {"model": T2V_ALIAS, "prompt": "a tall waterfall",
                                                     "seconds": "8", "size": "720x1280"})),
                           size="720x1280")
    check_completed(wait_video(vs, v["id"]))
    req = first_request(only(vs.fake.requests("generate_video_text"), "generate_video_text"))
    assert req.get("aspectRatio") == "VIDEO_ASPECT_RATIO_PORTRAIT", req


def test_videos_create_json_input_reference_image_url(vs: Gateway):
    """JSON `input_reference: {image_url: data:…}` on an i2v model: one upload, a first-frame
    submit (E10)."""
    png = pngs(1)[0]
    v = ok_json(create_video(vs, {"model": I2V, "prompt": "the flower opens", "seconds": "8",
                                  "size": "1280x720", "input_reference": {"image_url": data_url(png)}}))
    check_video_object(v, model=I2V)
    check_completed(wait_video(vs, v["id"]))
    upload = only(vs.fake.requests("upload_image"), "upload_image")
    assert upload["json"]["imageBytes"] == b64(png) and upload["json"]["mimeType"] == "image/png"
    req = first_request(only(vs.fake.requests("generate_video_start_image"), "generate_video_start_image"))
    assert req.get("startImage", {}).get("mediaId"), req
    assert_fake_mp4(content(vs, v["id"]))


def test_videos_create_multipart_two_frames(vs: Gateway):
    """Multipart with two `input_reference` file parts on an i2v model: first and last frame,
    uploaded in order, E11."""
    first, last = pngs(2)
    files = [("input_reference", ("first.png", first, "image/png")),
             ("input_reference", ("last.png", last, "image/png"))]
    data = {"model": I2V, "prompt": "from red to green", "seconds": "8", "size": "1280x720"}
    v = check_video_object(ok_json(create_video(vs, files=files, data=data)), model=I2V,
                           prompt="from red to green", size="1280x720")
    check_completed(wait_video(vs, v["id"]))
    uploads = vs.fake.requests("upload_image")
    assert [u["json"]["imageBytes"] for u in uploads] == [b64(first), b64(last)]
    req = first_request(only(vs.fake.requests("generate_video_start_end_image"),
                             "generate_video_start_end_image"))
    assert req["startImage"]["mediaId"] != req["endImage"]["mediaId"], req
    assert_fake_mp4(content(vs, v["id"]))


def test_videos_content_before_completion_is_409(vs: Gateway):
    vs.fake.video(pending_polls=40, active_polls=1)
    v = ok_json(create_video(vs, {"model": T2V, "prompt": "not yet", "seconds": "8", "size": "1280x720"}))
    err = openai_error(vs.http.get(f"/v1/videos/{v['id']}/content", headers=vs.auth()), 409)
    print(f"{vs.kind}: content before completion: {err}")
    check_completed(wait_video(vs, v["id"]))
    assert_fake_mp4(content(vs, v["id"]))


def test_videos_idempotency_key(vs: Gateway):
    """Same key and body → the same video (one upstream submit); same key, another body → 409;
    another key → a new video."""
    key = f"idem-{secrets.token_hex(8)}"
    body = {"model": T2V, "prompt": f"idempotent {secrets.token_hex(3)}", "seconds": "8", "size": "1280x720"}
    first = ok_json(create_video(vs, body, headers={"Idempotency-Key": key}))
    again = ok_json(create_video(vs, body, headers={"Idempotency-Key": key}))
    assert again["id"] == first["id"], (first, again)
    openai_error(create_video(vs, {**body, "prompt": body["prompt"] + " (changed)"},
                              headers={"Idempotency-Key": key}), 409)
    check_completed(wait_video(vs, first["id"]))
    # After completion too.
    third = ok_json(create_video(vs, body, headers={"Idempotency-Key": key}))
    assert third["id"] == first["id"], third
    assert len(vs.fake.requests("generate_video_text")) == 1, "the repeated create submitted again"

    other = ok_json(create_video(vs, body, headers={"Idempotency-Key": key + "-2"}))
    assert other["id"] != first["id"]
    check_completed(wait_video(vs, other["id"]))
    assert len(vs.fake.requests("generate_video_text")) == 2


def _walk(gw: Gateway, order: str, limit: int) -> list[dict]:
    """Every video, page by page (`after` = the previous page's last_id)."""
    out: list[dict] = []
    after: str | None = None
    for _ in range(500):
        params: dict[str, Any] = {"order": order, "limit": limit}
        if after:
            params["after"] = after
        page = ok_json(gw.http.get("/v1/videos", params=params, headers=gw.auth()))
        assert page.get("object") == "list", page
        data = page["data"]
        assert isinstance(data, list) and len(data) <= limit, page
        assert isinstance(page.get("has_more"), bool), page
        if data:
            assert page.get("first_id") == data[0]["id"] and page.get("last_id") == data[-1]["id"], page
        for v in data:
            check_video_object(v, seconds=None)
        out += data
        if not page["has_more"]:
            return out
        assert data, f"has_more with an empty page: {page}"
        after = data[-1]["id"]
    pytest.fail(f"more than 500 pages of {limit}: `after` seems ignored")


def test_videos_list_paging(vs: Gateway):
    created = []
    for i in range(3):
        v = ok_json(create_video(vs, {"model": T2V, "prompt": f"list {i} {secrets.token_hex(3)}",
                                      "seconds": "8", "size": "1280x720"}))
        created.append(v["id"])
    for vid in created:
        check_completed(wait_video(vs, vid))

    desc = _walk(vs, "desc", 2)
    ids = [v["id"] for v in desc]
    assert len(ids) == len(set(ids)), f"a video listed twice: {ids}"
    assert set(created) <= set(ids), (created, ids)
    stamps = [v["created_at"] for v in desc]
    assert stamps == sorted(stamps, reverse=True), stamps

    asc = _walk(vs, "asc", 2)
    assert sorted(v["id"] for v in asc) == sorted(ids)
    stamps = [v["created_at"] for v in asc]
    assert stamps == sorted(stamps), stamps

    one = ok_json(vs.http.get("/v1/videos", params={"limit": 1, "order": "desc"}, headers=vs.auth()))
    assert len(one["data"]) == 1 and one["has_more"] is True, one
    # One page as large as the walk: the same ids in the same order.
    if len(ids) <= 100:
        page = ok_json(vs.http.get("/v1/videos", params={"limit": 100, "order": "desc"}, headers=vs.auth()))
        assert [v["id"] for v in page["data"]] == ids and page["has_more"] is False, page
    # `after` one of ours: exactly what follows it.
    i = ids.index(created[1])
    page = ok_json(vs.http.get("/v1/videos", params={"limit": 100, "order": "desc", "after": created[1]},
                               headers=vs.auth()))
    assert [v["id"] for v in page["data"]] == ids[i + 1:i + 101], page


def test_videos_failed_generation(vs: Gateway):
    """A FAILED operation upstream: the video is `failed` with an error; Gemini's operation is
    done with an error."""
    vs.fake.video(fail_next={"code": 13, "message": "fake upstream says no"})
    v = ok_json(create_video(vs, {"model": T2V, "prompt": "doomed", "seconds": "8", "size": "1280x720"}))
    done = wait_video(vs, v["id"])
    assert done["status"] == "failed", done
    err = done.get("error")
    assert isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"], done
    assert "code" in err, err
    assert "fake upstream says no" in err["message"], err
    r = vs.http.get(f"/v1/videos/{v['id']}/content", headers=vs.auth())
    assert r.status_code >= 400, f"content of a failed video: {r.status_code}"

    vs.fake.video(fail_next={"code": 13, "message": "fake upstream says no again"})
    op = ok_json(gemini_start(vs, GEMINI_MODEL, {"prompt": "doomed too"}))
    done = gemini_wait(vs, op["name"])
    assert "response" not in done, done
    gerr = done.get("error")
    assert isinstance(gerr, dict) and isinstance(gerr.get("code"), int), done
    assert isinstance(gerr.get("message"), str) and gerr["message"], done
    assert isinstance(gerr.get("status"), str) and gerr["status"], done


def test_videos_errors(vs: Gateway):
    """OpenAI dialect: unknown model 404, missing prompt 400, wrong image counts 400 (Videos API
    and chat), unknown id 404, no key 401; nothing reaches the upstream's video endpoints."""
    base = {"prompt": "x", "seconds": "8", "size": "1280x720"}
    err = openai_error(create_video(vs, {**base, "model": "no-such-video-model"}), 404)
    assert err["code"] == "model_not_found", err
    openai_error(create_video(vs, {"model": T2V, "seconds": "8", "size": "1280x720"}), 400)
    openai_error(create_video(vs, {**base, "model": T2V, "prompt": ""}), 400)

    # An i2v model needs 1–2 frames; r2v takes at most 3 references.
    openai_error(create_video(vs, {**base, "model": I2V}), 400)
    three = [("input_reference", (f"{i}.png", p, "image/png")) for i, p in enumerate(pngs(3))]
    openai_error(create_video(vs, files=three, data={**base, "model": I2V}), 400)
    four = [("input_reference", (f"{i}.png", p, "image/png")) for i, p in enumerate(pngs(4))]
    openai_error(create_video(vs, files=four, data={**base, "model": R2V}), 400)
    # The same rules in chat.
    err = openai_error(vs.chat({"model": I2V, "messages": user("x", *(data_url(p) for p in pngs(3)))}), 400)
    assert err["type"] == "invalid_request_error", err
    openai_error(vs.chat({"model": R2V, "messages": user("x", *(data_url(p) for p in pngs(4)))}), 400)

    missing = "video_" + "0" * 32
    openai_error(vs.http.get(f"/v1/videos/{missing}", headers=vs.auth()), 404)
    openai_error(vs.http.get(f"/v1/videos/{missing}/content", headers=vs.auth()), 404)
    openai_error(vs.http.delete(f"/v1/videos/{missing}", headers=vs.auth()), 404)
    err = openai_error(vs.http.get("/v1/videos"), 401)
    assert err["type"] == "authentication_error", err
    openai_error(vs.http.post("/v1/videos", json={**base, "model": T2V}), 401)

    assert submits(vs.fake) == [], [r["endpoint"] for r in submits(vs.fake)]
    assert vs.fake.requests("upload_image") == []


# ---------------------------------------------------------------------------------------------
# the official openai package
# ---------------------------------------------------------------------------------------------

def _openai(gw: Gateway):
    import openai
    return openai.OpenAI(api_key=gw.api_key, base_url=f"{gw.base}/v1", max_retries=0, timeout=120.0)


def test_openai_sdk_videos(vs: Gateway):
    """create_and_poll (the SDK sends multipart/form-data), download_content, list, delete."""
    import openai

    prompt = f"a snowy owl takes off {secrets.token_hex(3)}"
    with _openai(vs) as c:
        video = c.videos.create_and_poll(model=T2V, prompt=prompt, seconds="8", size="1280x720",
                                         poll_interval_ms=200)
        assert video.status == "completed", video
        assert VIDEO_ID.match(video.id), video.id
        assert video.model == T2V and video.prompt == prompt, video
        assert video.seconds == "8" and video.size == "1280x720", video
        assert video.progress == 100 and video.completed_at and video.completed_at >= video.created_at, video

        downloaded = c.videos.download_content(video.id)
        data = downloaded.read()
        assert data == downloaded.content
        name = assert_fake_mp4(data)
        assert name in polled_names(vs.fake)
        req = first_request(only(vs.fake.requests("generate_video_text"), "generate_video_text"))
        assert prompt in json.dumps(req) and req.get("aspectRatio") == "VIDEO_ASPECT_RATIO_LANDSCAPE", req

        assert c.videos.retrieve(video.id).status == "completed"
        listed = [v.id for v in c.videos.list(limit=5)]  # iterates every page
        assert video.id in listed and len(listed) == len(set(listed)), listed

        deleted = c.videos.delete(video.id)
        assert deleted.id == video.id and deleted.deleted is True and deleted.object == "video.deleted"
        with pytest.raises(openai.NotFoundError):
            c.videos.retrieve(video.id)
        assert video.id not in [v.id for v in c.videos.list(limit=100)]

        with pytest.raises(openai.NotFoundError) as exc:
            c.videos.create(model="no-such-video-model", prompt="x", seconds="8", size="1280x720")
        assert exc.value.status_code == 404


def test_openai_sdk_input_reference_file(vs: Gateway):
    """An i2v model with `input_reference` as a file (a multipart file part)."""
    png = pngs(1)[0]
    with _openai(vs) as c:
        video = c.videos.create_and_poll(model=I2V, prompt="the first frame comes alive",
                                         input_reference=("frame.png", png, "image/png"),
                                         seconds="8", size="1280x720", poll_interval_ms=200)
        assert video.status == "completed", video
        assert_fake_mp4(c.videos.download_content(video.id).read())
    upload = only(vs.fake.requests("upload_image"), "upload_image")
    assert upload["json"]["imageBytes"] == b64(png), "the file part was not uploaded as sent"
    assert upload["json"]["mimeType"] == "image/png"
    only(vs.fake.requests("generate_video_start_image"), "generate_video_start_image")


def test_openai_sdk_content_before_completion(vs: Gateway):
    import openai

    vs.fake.video(pending_polls=40, active_polls=1)
    with _openai(vs) as c:
        video = c.videos.create(model=T2V, prompt="patience", seconds="8", size="1280x720")
        assert video.status in ("queued", "in_progress"), video
        with pytest.raises(openai.ConflictError):
            c.videos.download_content(video.id)
        done = c.videos.poll(video.id, poll_interval_ms=100)
        assert done.status == "completed", done


# ---------------------------------------------------------------------------------------------
# Gemini: predictLongRunning and operations
# ---------------------------------------------------------------------------------------------

def _genai_poll(client, op):
    deadline = time.monotonic() + JOB_TIMEOUT
    while not op.done:
        assert time.monotonic() < deadline, f"operation not done after {JOB_TIMEOUT:.0f}s: {op}"
        time.sleep(0.2)
        op = client.operations.get(op)
    assert op.error is None, op.error
    return op


def _check_genai_result(vs: Gateway, op, prompt: str) -> None:
    videos = op.response.generated_videos
    assert videos and len(videos) == 1, op.response
    uri = videos[0].video.uri
    gateway_video_uri(vs, uri, op.name)
    assert op.result is not None and op.result.generated_videos[0].video.uri == uri

    r = download(uri, headers={"x-goog-api-key": vs.api_key})
    assert r.headers["content-type"].startswith("video/mp4"), r.headers
    name = assert_fake_mp4(r.content)
    assert name in polled_names(vs.fake)
    req = first_request(only(vs.fake.requests("generate_video_text"), "generate_video_text"))
    assert prompt in json.dumps(req) and req.get("aspectRatio") == "VIDEO_ASPECT_RATIO_LANDSCAPE", req


def test_genai_sdk_generate_videos(vs: Gateway):
    """The public google-genai API end to end. Version 3.6.1 generates videos only in its
    Vertex AI mode (in Gemini-API mode `generate_videos` raises before sending anything), so
    the client is `vertexai=True` with an API key and the gateway as base URL (express mode):
    `POST /v1beta1/publishers/google/models/{model}:predictLongRunning`, then
    `…:fetchPredictOperation` for each `operations.get`."""
    from google import genai
    from google.genai import types

    prompt = f"a hummingbird in slow motion {secrets.token_hex(3)}"
    client = genai.Client(vertexai=True, api_key=vs.api_key,
                          http_options=types.HttpOptions(base_url=vs.base))
    op = client.models.generate_videos(
        model=GEMINI_MODEL,
        source=types.GenerateVideosSource(prompt=prompt),
        config=types.GenerateVideosConfig(aspect_ratio="16:9", duration_seconds=8),
    )
    assert op.name and op.name.startswith(f"publishers/google/models/{GEMINI_MODEL}/operations/"), op
    assert not op.done, op
    op = _genai_poll(client, op)
    _check_genai_result(vs, op, prompt)


def test_genai_sdk_operations_get_gemini_api(vs: Gateway):
    """Gemini-API mode: an operation started over REST (`/v1beta/models/…:predictLongRunning`)
    is read with the SDK's own `operations.get` and result parser."""
    from google import genai
    from google.genai import types

    prompt = f"a lighthouse at night {secrets.token_hex(3)}"
    r = gemini_start(vs, GEMINI_MODEL, {"prompt": prompt}, {"aspectRatio": "16:9"})
    name = ok_json(r)["name"]
    assert name.startswith(f"models/{GEMINI_MODEL}/operations/"), name
    # This SDK defaults to API version v1; the Gemini API serves Veo under v1beta.
    client = genai.Client(api_key=vs.api_key,
                          http_options=types.HttpOptions(base_url=vs.base, api_version="v1beta"))
    op = _genai_poll(client, types.GenerateVideosOperation(name=name))
    _check_genai_result(vs, op, prompt)


def test_gemini_rest_first_and_last_frame(vs: Gateway):
    """By hand, with a Flow id: `image` + `lastFrame` → E11; the operation's shape when done."""
    first, last = pngs(2)
    instance = {"prompt": "dawn to dusk",
                "image": {"bytesBase64Encoded": b64(first), "mimeType": "image/png"},
                "lastFrame": {"bytesBase64Encoded": b64(last), "mimeType": "image/png"}}
    op = ok_json(gemini_start(vs, I2V, instance))
    assert op.get("done") in (False, None), op
    assert re.fullmatch(rf"models/{I2V}/operations/\S+", op.get("name") or ""), op
    done = gemini_wait(vs, op["name"])
    assert "error" not in done, done
    response = done["response"]
    assert response.get("@type") == GENAI_OPERATION_TYPE, response
    samples = response["generateVideoResponse"]["generatedSamples"]
    assert len(samples) == 1, response
    uri = samples[0]["video"]["uri"]
    gateway_video_uri(vs, uri, op["name"])
    assert_fake_mp4(download(uri, headers=gemini_headers(vs)).content)
    uploads = vs.fake.requests("upload_image")
    assert [u["json"]["imageBytes"] for u in uploads] == [b64(first), b64(last)]
    only(vs.fake.requests("generate_video_start_end_image"), "generate_video_start_end_image")


def test_gemini_errors(vs: Gateway):
    gemini_error(gemini_start(vs, "no-such-video-model", {"prompt": "x"}), 404)
    gemini_error(gemini_start(vs, GEMINI_MODEL, {}), 400)
    gemini_error(gemini_start(vs, GEMINI_MODEL, {"prompt": ""}), 400)
    refs = [{"image": {"bytesBase64Encoded": b64(p), "mimeType": "image/png"}, "referenceType": "asset"}
            for p in pngs(4)]
    gemini_error(gemini_start(vs, R2V, {"prompt": "four is too many", "referenceImages": refs}), 400)
    name = f"models/{GEMINI_MODEL}/operations/video_{'0' * 32}"
    gemini_error(vs.http.get(f"/v1beta/{name}", headers=gemini_headers(vs)), 404)
    gemini_error(vs.http.post(f"/v1beta/models/{GEMINI_MODEL}:predictLongRunning",
                              json={"instances": [{"prompt": "x"}]}), 401)
    assert submits(vs.fake) == [], [r["endpoint"] for r in submits(vs.fake)]


# ---------------------------------------------------------------------------------------------
# worker only
# ---------------------------------------------------------------------------------------------

def test_worker_video_job_steps_stay_under_subrequest_limit(worker_stack: Gateway):
    """A job of 101 polls (100 PENDING; no ACTIVE, whose 80-poll limit would end it) runs as
    one Durable Object alarm per step: at least 100 `video-job step` log lines, none with more
    than 40 subrequests."""
    gw = worker_stack
    gw.fake.reset()
    gw.fake.video(**{**DEFAULT_VIDEO, "pending_polls": 100, "active_polls": 0})
    try:
        offset = len(gw.proc.log_text())
        v = ok_json(create_video(gw, {"model": T2V, "prompt": f"a hundred polls {secrets.token_hex(3)}",
                                      "seconds": "8", "size": "1280x720"}))
        vid = v["id"]
        done = check_completed(wait_video(gw, vid, timeout=300, interval=0.5))
        assert_fake_mp4(content(gw, vid))
        polls = len(gw.fake.requests("check_video_status"))
        assert polls >= 101, f"{polls} polls"

        def mine() -> list[int]:
            steps = step_lines(gw.proc.log_text()[offset:])
            own = [n for i, n in steps if vid in i or i in vid]
            return own or [n for _, n in steps]  # ids other than the video id: only this job ran

        wait_until(lambda: len(mine()) >= 100, 30,
                   "waiting for 100 video-job step lines in the wrangler log", interval=0.5)
        time.sleep(1.0)  # the last lines may still be on their way to the log
        counts = mine()
        print(f"worker: {len(counts)} video-job steps for {vid} ({polls} polls), "
              f"subrequests max {max(counts)}, total {sum(counts)}; job took "
              f"{done['completed_at'] - done['created_at']}s")
        assert len(counts) >= 100, len(counts)
        assert max(counts) <= 40, f"a step made {max(counts)} subrequests: {sorted(counts)[-10:]}"
    finally:
        gw.fake.video(**DEFAULT_VIDEO)


# The worker's JSON line per request (keys in either order of serde_json's maps).
CHAT_SUBREQUESTS = re.compile(r'"method":"POST","path":"/v1/chat/completions",.*?"subrequests":(\d+)')


def test_worker_chat_stream_follows_a_long_job_in_few_subrequests(worker_stack: Gateway):
    """A chat completion streaming a job of 101 polls: its own invocation (creating the job,
    then following it) stays far under 40 subrequests, because the JobObject streams each
    change to one held request instead of being polled. The worker logs every request's
    count in its JSON line."""
    del worker_stack  # only so that build/ is fresh: the worker here starts with build=False
    fake = start_fake("fake-video-follow")
    gw = None
    try:
        gw = start_worker("video-follow", fake, build=False)
        register_account(gw)
        fake.video(**{**DEFAULT_VIDEO, "pending_polls": 100, "active_polls": 0})
        body = {"model": T2V, "stream": True,
                "messages": user(f"a long wait {secrets.token_hex(3)}")}
        headers, events = stream_chat(gw, body)
        final = events[-1]["choices"][0]
        assert final["finish_reason"] == "stop" and "<video src=" in final["delta"]["content"], final
        reasoning = [e["choices"][0]["delta"].get("reasoning_content") for e in events]
        assert sum(1 for r in reasoning if r and "Progress" in r) >= 10, reasoning
        polls = len(fake.requests("check_video_status"))
        assert polls >= 101, f"{polls} polls"
        wait_until(lambda: CHAT_SUBREQUESTS.search(gw.proc.log_text()), 30,
                   "waiting for the chat completion's subrequest log line", gw.proc, interval=0.2)
        n = int(CHAT_SUBREQUESTS.search(gw.proc.log_text()).group(1))
        print(f"worker: a chat stream following a {polls}-poll job ({headers['x-video-id']}) "
              f"made {n} subrequests")
        assert n <= 40, n
    finally:
        stop_stack(gw, fake)


def test_worker_restart_mid_job(worker_stack: Gateway):
    """`wrangler dev` is stopped while a job polls and restarted on the same --persist-to state:
    the job goes on from where it was (no second submit), completes, and its record is intact."""
    del worker_stack  # only so that build/ is fresh: the workers here start with build=False
    fake = start_fake("fake-video-restart")
    gw = gw2 = None
    try:
        gw = start_worker("video-restart", fake, build=False)
        register_account(gw)
        pending = 60
        fake.video(**{**DEFAULT_VIDEO, "pending_polls": pending, "active_polls": 0})
        prompt = f"survives a restart {secrets.token_hex(3)}"
        created = ok_json(create_video(gw, {"model": T2V, "prompt": prompt, "seconds": "8", "size": "1280x720"}))
        vid = created["id"]
        wait_until(lambda: len(fake.requests("check_video_status")) >= 3, 60,
                   "waiting for the job to start polling", gw.proc, interval=0.05)
        before = get_video(gw, vid)
        assert before["status"] in ("queued", "in_progress"), before

        gw.proc.stop()
        wait_until(lambda: not gw.proc.group_alive(), 15, "waiting for the wrangler process group to end")
        polls_at_stop = len(fake.requests("check_video_status"))
        assert polls_at_stop < pending, f"the job was nearly done ({polls_at_stop} polls) when stopped"
        gw.close()

        gw2 = start_worker("video-restart-2", fake, persist=gw.persist, api_key=gw.api_key,
                           admin_password=gw.admin_password, build=False)
        after = check_completed(wait_video(gw2, vid, timeout=120, interval=0.25))
        for k in ("id", "model", "prompt", "created_at", "seconds", "size"):
            assert after.get(k) == created.get(k), f"{k}: {created.get(k)!r} -> {after.get(k)!r}"
        assert after["prompt"] == prompt and after["model"] == T2V
        polls = len(fake.requests("check_video_status"))
        assert polls >= pending + 1, f"{polls} polls"
        assert len(fake.requests("generate_video_text")) == 1, "the job was submitted again"
        name = assert_fake_mp4(content(gw2, vid))
        assert name in polled_names(fake)
        print(f"worker restart: stopped after {polls_at_stop} polls, completed after {polls}")
    finally:
        if gw is not None and gw2 is None:
            gw.close()
            gw.proc.stop()
        stop_stack(gw2, fake)
