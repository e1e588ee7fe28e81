"""The README's "Use it as a library" snippet, built exactly as written as a fresh crate that
depends on the SDK by path, serves `/v1/models`.

The crate lives in a temporary directory; only the dependency path is rewritten to this
checkout, and the workspace's Cargo.lock and target directory are reused so the build takes
what the workspace already compiled.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from conftest import ROOT, free_port

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
