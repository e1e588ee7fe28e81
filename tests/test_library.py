"""The SDK as a dependency.

* The README's "Use it as a library" snippet, built exactly as written as a fresh crate that
  depends on the SDK by path, serves `/v1/models`. The crate lives in a temporary directory;
  only the dependency path is rewritten to this checkout, and the workspace's Cargo.lock and
  target directory are reused so the build takes what the workspace already compiled.
* The library examples (`examples/examples/`, built once with `cargo build -p
  flow2api-examples --examples` into ROOT/target) run against the fake upstream:
  `axum_mount` (the gateway under `/flow` in an axum app, its links carrying the prefix) and
  `flow_client` (the typed Flow client alone: credits and one image, in at most 20 lines).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from conftest import (
    _GATEWAY_KEYS, FIFE_PNG, ROOT, YESCAPTCHA_KEY, Gateway, Proc, free_port, gateway_env, ok_json,
    openai_error, register_account, start_fake, stop_stack, upsampled_jpeg, wait_until,
)
from test_videos import (
    GEMINI_MODEL, T2V, VIDEO_TAG, assert_fake_mp4, check_completed, content, download,
    gateway_video_uri, gemini_start, gemini_wait, stream_chat, wait_video,
)

SECTION = "## Use it as a library"


def readme_blocks() -> tuple[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    toml = re.search(r"```toml\n(.*?)```", section, re.S)
    rust = re.search(r"```rust\n(.*?)```", section, re.S)
    assert toml and rust, "the section has a toml and a rust block"
    return toml.group(1), rust.group(1)


def test_readme_library_snippet_builds_and_serves_models() -> None:
    toml, main_rs = readme_blocks()
    assert len(toml.splitlines()) + len(main_rs.splitlines()) <= 30, "an app embeds it in ≤ 30 lines"
    sdk = (ROOT / "flow2api-sdk").as_posix()
    deps, n = re.subn(r'path = "[^"]*flow2api-sdk"', f'path = "{sdk}"', toml)
    assert n == 1, toml
    work = Path(tempfile.mkdtemp(prefix="flow2api-lib-"))
    try:
        (work / "src").mkdir()
        (work / "Cargo.toml").write_text(
            '[package]\nname = "embedder"\nversion = "0.1.0"\nedition = "2021"\n\n'
            + deps + "\n[workspace]\n")
        (work / "src" / "main.rs").write_text(main_rs)
        shutil.copy(ROOT / "Cargo.lock", work / "Cargo.lock")
        env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target" / "library-test")}
        build = subprocess.run(["cargo", "build", "--quiet"], cwd=work, env=env,
                               capture_output=True, text=True, timeout=1500)
        assert build.returncode == 0, build.stderr[-4000:]
        port = free_port()
        data = work / "data"
        proc = subprocess.Popen(
            [str(ROOT / "target" / "library-test" / "debug" / "embedder")],
            env={**os.environ, "API_KEY": "sk-library", "LISTEN_ADDR": f"127.0.0.1:{port}",
                 "DATA_DIR": str(data)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/v1/models",
                                  headers={"Authorization": "Bearer sk-library"}, trust_env=False)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                    assert time.monotonic() < deadline, "the embedder did not start listening"
                    time.sleep(0.2)
            assert r.status_code == 200, r.text
            ids = [m["id"] for m in r.json()["data"]]
            assert "gemini-3.1-flash-image-landscape" in ids and len(ids) > 100
            assert (data / "flow2api.db").exists(), "state under DATA_DIR"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The library examples
# ---------------------------------------------------------------------------------------------

EXAMPLES = ROOT / "examples" / "examples"
EXAMPLE_BINS = ROOT / "target" / "debug" / "examples"
PREFIX = "/flow"


@pytest.fixture(scope="module")
def examples() -> Path:
    """`cargo build -p flow2api-examples --examples` once, into ROOT/target (debug)."""
    env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target")}
    build = subprocess.run(["cargo", "build", "--quiet", "-p", "flow2api-examples", "--examples"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert build.returncode == 0, build.stderr[-4000:]
    return EXAMPLE_BINS


def test_axum_mount_example_serves_the_gateway_under_a_prefix(examples: Path) -> None:
    """The gateway nested under /flow in an axum app: the app's own route answers, the API
    answers under the prefix, and every link the gateway makes (upsampled images, video media,
    Gemini file downloads) carries the prefix and serves the bytes. PUBLIC_BASE_URL is left to
    the example (http://LISTEN_ADDR/flow). Private image URLs are refused here, so a /media link
    sent back as an input is served from the media store only if the gateway knows it for its
    own under the prefix."""
    fake = start_fake("fake-axum")
    data = Path(tempfile.mkdtemp(prefix="flow2api-axum-"))
    proc: Proc | None = None
    gw: Gateway | None = None
    try:
        port = free_port()
        api_key, admin_password = f"sk-axum-{secrets.token_hex(8)}", secrets.token_hex(12)
        env = {k: v for k, v in os.environ.items() if k not in _GATEWAY_KEYS}
        env.update(gateway_env(fake, api_key, admin_password, allow_private=False))
        env.update({"LISTEN_ADDR": f"127.0.0.1:{port}", "DATA_DIR": str(data / "data")})
        proc = Proc("axum-mount", [str(examples / "axum_mount")], env=env, cwd=data)
        app = f"http://127.0.0.1:{port}"

        def own_route() -> httpx.Response | None:
            try:
                return httpx.get(f"{app}/", timeout=5, trust_env=False)
            except httpx.TransportError:
                return None

        home = wait_until(own_route, 60, "waiting for the axum app", proc, interval=0.2)
        assert home.status_code == 200 and "host app" in home.text, home.text
        gw = Gateway(kind="axum", base=app + PREFIX, proc=proc, fake=fake, api_key=api_key,
                     admin_password=admin_password)
        register_account(gw)  # admin login and POST /api/tokens, through the prefix

        health = ok_json(gw.http.get("/health"))
        assert health["status"] == "ok" and health["backend_running"] is True, health
        models = ok_json(gw.http.get("/v1/models", headers=gw.auth()))
        assert "gemini-3.1-flash-image-landscape" in [m["id"] for m in models["data"]]
        openai_error(gw.http.get("/v1/models"), 401)
        assert httpx.get(f"{app}/v1/models", headers=gw.auth(), trust_env=False).status_code == 404

        # An upsampled image is kept by the gateway: its link carries the prefix.
        def image(model: str, *inputs: str) -> str:
            parts = [{"type": "text", "text": "a lighthouse"}]
            parts += [{"type": "image_url", "image_url": {"url": u}} for u in inputs]
            body = ok_json(gw.chat({"model": model, "messages": [{"role": "user", "content": parts}]}))
            m = re.search(r"!\[Generated Image\]\((\S+?)\)", body["choices"][0]["message"]["content"])
            assert m, body
            return m.group(1)

        url = image("gemini-3.1-flash-image-landscape-2k")
        assert url.startswith(f"{app}{PREFIX}/media/"), url
        r = httpx.get(url, timeout=60, trust_env=False)
        assert r.status_code == 200 and r.content == upsampled_jpeg("2K"), r.status_code
        # Sent back as an input: read from the media store (a loopback URL would be refused).
        fake.reset()
        image("gemini-3.1-flash-image-landscape", url)
        uploads = fake.requests("upload_image")
        assert len(uploads) == 1, uploads
        assert uploads[0]["json"]["imageBytes"] == base64.b64encode(r.content).decode()

        # A video whose bytes the gateway keeps: streamed through axum, linked under the
        # prefix, and its OpenAI Videos content served from the same store.
        fake.video(pending_polls=1, active_polls=1, redirect="empty", fife=False)
        headers, events = stream_chat(gw, {"model": T2V, "stream": True, "messages": [
            {"role": "user", "content": "a red kite"}]})
        m = VIDEO_TAG.search(events[-1]["choices"][0]["delta"].get("content") or "")
        assert m and m.group(1).startswith(f"{app}{PREFIX}/media/"), events[-1]
        name = assert_fake_mp4(download(m.group(1)).content)
        check_completed(wait_video(gw, headers["x-video-id"], timeout=30))
        assert_fake_mp4(content(gw, headers["x-video-id"]), name)

        # Gemini: the finished operation's file link is on the gateway, under the prefix.
        fake.video(redirect="ok", fife=True)
        op = ok_json(gemini_start(gw, GEMINI_MODEL, {"prompt": "a heron"}))
        done = gemini_wait(gw, op["name"])
        uri = done["response"]["generateVideoResponse"]["generatedSamples"][0]["video"]["uri"]
        gateway_video_uri(gw, uri, op["name"])
        assert_fake_mp4(download(uri, headers={"x-goog-api-key": api_key}).content)
    finally:
        if gw is not None:
            gw.close()
        if proc is not None:
            proc.stop()
        stop_stack(None, fake)
        shutil.rmtree(data, ignore_errors=True)


def test_flow_client_example_reads_credits_and_makes_one_image(examples: Path) -> None:
    """The typed Flow client alone, in at most 20 lines: the account's credits and one image
    (project, captcha and generation) from a session token, no secret printed."""
    source = (EXAMPLES / "flow_client.rs").read_text()
    assert len(source.splitlines()) <= 20, "the whole file, use lines and comments included"
    fake = start_fake("fake-flow-client")
    try:
        st = f"st-client-{secrets.token_hex(16)}"
        fake.add_account(st, "client@example.com", tier="PAYGATE_TIER_TWO", credits=4321)
        env = {k: v for k, v in os.environ.items() if k not in _GATEWAY_KEYS}
        env.update({
            "FLOW_ST": st,
            "FLOW_LABS_BASE_URL": fake.labs_base,
            "FLOW_API_BASE_URL": fake.api_base,
            "YESCAPTCHA_BASE_URL": fake.yescaptcha_base,
            "YESCAPTCHA_API_KEY": YESCAPTCHA_KEY,
            "CAPTCHA_POLL_INTERVAL": "0.05",
        })
        run = subprocess.run([str(examples / "flow_client")], env=env, capture_output=True,
                             text=True, timeout=120, stdin=subprocess.DEVNULL)
        out = run.stdout + run.stderr
        assert run.returncode == 0, out
        assert "credits: 4321 (" in run.stdout, out
        m = re.search(r"^image: (http://127\.0\.0\.1:\d+/fife/\S+)$", run.stdout, re.M)
        assert m, out
        assert st not in out and YESCAPTCHA_KEY not in out, "a secret was printed"
        r = httpx.get(m.group(1), timeout=30, trust_env=False)
        assert r.status_code == 200 and r.content == FIFE_PNG
        generated = fake.requests("generate_image")
        assert len(generated) == 1, generated
        assert "a lighthouse at dawn" in json.dumps(generated[0]["json"])
        assert len(fake.requests("create_project")) == 1

        # A dead session token is an error, not a crash.
        bad = subprocess.run([str(examples / "flow_client"), "st-unknown"], env=env,
                             capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert bad.returncode != 0 and "st-unknown" not in bad.stdout + bad.stderr
    finally:
        stop_stack(None, fake)
