"""End-to-end fixtures: real processes on loopback ports.

Per server kind ("native", "worker") a session-scoped *stack* is started on first use:

* its own ``flow2api-fake-upstream --port 0`` (fake Google Flow + YesCaptcha);
* the gateway: ``target/release/flow2api-server`` (native) or ``wrangler dev`` (worker),
  configured to talk to that fake;
* one fake Google account with its own ST, registered in the fake through its control API and
  in the gateway through ``POST /api/login`` + ``POST /api/tokens``.

The function-scoped ``server`` fixture is parametrised over both kinds, so every test that takes
it runs once per server. It clears the fake's faults and recordings before each test.

A separate ``strict_server`` (a second native server *without* ALLOW_PRIVATE_IMAGE_URLS) serves
the private-URL refusal test; see test_e2e_images.test_private_image_url_refused.

Tests that need other settings start stacks of their own: ``stack(kind, name, extra={...})``
(a context manager: its own fake plus a gateway with ``extra`` settings, as env natively and
``--var`` for wrangler), or ``start_fake`` + ``start_native``/``start_worker`` directly
(``start_worker(..., persist=gw.persist, api_key=gw.api_key, admin_password=gw.admin_password)``
restarts a worker on an earlier instance's state). See test_pool.py.

Every child runs in its own process group (start_new_session) with stdin closed and its output
in a log file under a temporary directory. Groups are killed at session end, and again from
atexit or on SIGTERM/SIGHUP should pytest be stopped. When a test failed, the last lines of each
log are printed in the terminal summary and the directory is kept (its path is printed).
"""

from __future__ import annotations

import atexit
import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import tomllib
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Where cargo put the release binaries: CARGO_TARGET_DIR when set, as cargo itself reads it.
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "release"
FAKE_BIN = RELEASE / "flow2api-fake-upstream"
SERVER_BIN = RELEASE / "flow2api-server"
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"

# Loopback traffic must never go through a proxy configured in the environment.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"

# Timeouts (seconds). Generous: CI has 2 cores, and other compiles may compete.
FAKE_START_TIMEOUT = 60
NATIVE_START_TIMEOUT = 60
WORKER_START_TIMEOUT = 180
HTTP_TIMEOUT = httpx.Timeout(120.0, connect=10.0)

YESCAPTCHA_KEY = "fake-yescaptcha-key"
ADMIN_USERNAME = "admin"

# The fake's assets, read from the Rust source that defines them, so that the tests compare
# against exactly what the fake serves.
ASSETS_RS = ROOT / "flow2api-sdk" / "src" / "testing" / "assets.rs"


def _rust_bytes(const: str) -> bytes:
    src = ASSETS_RS.read_text()
    body = src.split(f"pub const {const}: &[u8] = &[", 1)[1].split("];", 1)[0]
    body = re.sub(r"//[^\n]*", "", body)
    return bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{2})", body))


# The PNG the fake serves at <fake>/fife/<id>.png.
FIFE_PNG = _rust_bytes("FIFE_PNG")


def upsampled_jpeg(label: str) -> bytes:
    """What the fake's upsampleImage answers (base64-decoded) for "2K" or "4K": UPSAMPLE_JPEG
    with a COM segment naming the resolution after the 20-byte SOI+APP0 header (assets.rs,
    `upsampled_jpeg`)."""
    jpeg = _rust_bytes("UPSAMPLE_JPEG")
    comment = f"flow2api-fake upsample {label}".encode()
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return jpeg[:20] + segment + jpeg[20:]


def _mp4_box(kind: bytes, payload: bytes) -> bytes:
    return (len(payload) + 8).to_bytes(4, "big") + kind + payload


def fake_mp4(video_id: str) -> bytes:
    """The MP4 the fake serves for video `video_id` (at <fake>/videos/<id>.mp4, and base64 in
    E17): `fake_mp4` in flow2api-sdk/src/testing/video.rs, byte for byte — `ftyp` (isom),
    `moov` with a version-0 `mvhd` (timescale 1000, 8 s), a `free` box naming the id and a
    4 KiB `mdat` of a fixed pattern."""
    ftyp = b"isom" + (0x200).to_bytes(4, "big") + b"isomiso2avc1mp41"
    mvhd = bytes(4)  # version 0, flags 0
    mvhd += (0).to_bytes(4, "big") + (0).to_bytes(4, "big")  # creation, modification time
    mvhd += (1000).to_bytes(4, "big") + (8000).to_bytes(4, "big")  # timescale, duration
    mvhd += (0x0001_0000).to_bytes(4, "big") + (0x0100).to_bytes(2, "big") + bytes(10)
    for m in (0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000):
        mvhd += m.to_bytes(4, "big")  # unity matrix
    mvhd += bytes(24) + (2).to_bytes(4, "big")  # pre_defined, next track id
    mdat = bytes((i * 31 % 251) for i in range(4096))
    return (_mp4_box(b"ftyp", ftyp)
            + _mp4_box(b"moov", _mp4_box(b"mvhd", mvhd))
            + _mp4_box(b"free", f"flow2api-fake video {video_id}".encode())
            + _mp4_box(b"mdat", mdat))


_FAKE_MP4_ID = re.compile(rb"flow2api-fake video ([!-~]+)")


def fake_mp4_id(content: bytes) -> str | None:
    """The video id named in the `free` box of one of the fake's MP4s, if any."""
    m = _FAKE_MP4_ID.search(content[:512])
    return m.group(1).decode() if m else None


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

_TMP = Path(tempfile.mkdtemp(prefix="flow2api-e2e-"))
_PROCS: list["Proc"] = []
_FAILED = False


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bound once by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process in its own process group, output to a log file."""

    def __init__(self, name: str, cmd: list[str], *, env: dict[str, str], cwd: Path,
                 stop_signal: int = signal.SIGTERM):
        self.name = name
        self.cmd = cmd
        self.stop_signal = stop_signal
        self.log_path = _TMP / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            cmd,
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _PROCS.append(self)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check_alive(self, what: str) -> None:
        if not self.alive():
            raise RuntimeError(
                f"{self.name} exited with {self.popen.returncode} while {what}.\n"
                f"command: {' '.join(self.cmd)}\n--- log tail ---\n{self.log_tail()}"
            )

    def stop(self) -> None:
        """Signals the whole group, waits, then SIGKILLs whatever is left of it."""
        pgid = self.popen.pid  # start_new_session: the child leads its own group
        if self.alive():
            _killpg(pgid, self.stop_signal)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        _killpg(pgid, signal.SIGKILL)  # stragglers (workerd children), and a hung leader
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if not self._log.closed:
            self._log.close()


    def kill(self) -> None:
        """SIGKILLs the whole group at once (a crash: no clean shutdown) and reaps the leader."""
        _killpg(self.popen.pid, signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if not self._log.closed:
            self._log.close()

    def group_alive(self) -> bool:
        """Whether any process of the group is left."""
        try:
            os.killpg(self.popen.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def _kill_all() -> None:
    for p in list(_PROCS):
        p.stop()


def _on_terminate(signum, _frame) -> None:
    """SIGTERM/SIGHUP to pytest: stop the children, then die of the same signal."""
    _kill_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_terminate)


def wait_until(predicate, timeout: float, what: str, proc: Proc | None = None,
               interval: float = 0.1):
    """Polls `predicate` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None:
            proc.check_alive(what)
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            tail = f"\n--- {proc.name} log tail ---\n{proc.log_tail()}" if proc else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s {what}{tail}")
        time.sleep(interval)


def wait_healthy(base: str, proc: Proc, timeout: float) -> None:
    def ok() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ok, timeout, f"waiting for {base}/health to answer 200", proc, interval=0.25)


def require_file(path: Path, hint: str) -> None:
    if not path.exists():
        pytest.fail(f"{path} is missing: {hint}", pytrace=False)


# ---------------------------------------------------------------------------------------------
# The fake upstream
# ---------------------------------------------------------------------------------------------

@dataclass
class Fake:
    """Client of one running fake upstream and its /_fake control API."""

    base: str
    proc: Proc
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base, timeout=HTTP_TIMEOUT, trust_env=False)

    def __repr__(self) -> str:
        return f"Fake({self.base})"

    @property
    def labs_base(self) -> str:
        return f"{self.base}/fx/api"

    @property
    def api_base(self) -> str:
        return f"{self.base}/v1"

    @property
    def yescaptcha_base(self) -> str:
        return f"{self.base}/yescaptcha"

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, f"/_fake/{path}", json=body)
        assert r.status_code == 200, f"fake control {method} {path} {body!r}: {r.status_code} {r.text}"
        return r.json()

    def add_account(self, st: str, email: str, **extra: Any) -> None:
        self._control("POST", "accounts", {"st": st, "email": email, **extra})

    def expire_st(self, st: str) -> None:
        """Session-to-access-token answers `{}` for `st` from now on (a signed-out session)."""
        self._control("POST", "expire_st", {"st": st})

    def revoke_grant(self, st: str) -> None:
        """`st` still yields access tokens, but every one of its account is refused (401):
        a revoked grant. Adding the account again restores it."""
        self._control("POST", "revoke_grant", {"st": st})

    def fault(self, endpoint: str, **spec: Any) -> None:
        self._control("POST", "faults", {"endpoint": endpoint, **spec})

    def set_captcha_polls(self, n: int) -> None:
        self._control("POST", "captcha", {"polls_before_ready": n})

    def video(self, **settings: Any) -> None:
        """POST /_fake/video: any of `pending_polls`, `active_polls`, `concat_polls`,
        `redirect` ("ok"|"empty"|"lost"), `fife` (bool), `shape` ("operations"|"workflows"), `fail_next`
        ({"code","message"}), `error_status_next`. Not cleared by `reset()`; the poll counts
        apply to operations submitted afterwards."""
        self._control("POST", "video", settings)

    def reset(self) -> None:
        self._control("POST", "reset")

    def requests(self, endpoint: str | None = None) -> list[dict]:
        recs = self._control("GET", "requests")
        return [r for r in recs if endpoint is None or r.get("endpoint") == endpoint]

    def stats(self) -> dict:
        return self._control("GET", "stats")

    def supports_fault_email(self) -> bool:
        """Whether POST /_fake/faults honours `email` (a fault for one account's calls only).
        Probes with a fault for an unknown email on `fife`, whose calls carry no account: with
        the filter the fault does not apply (404 for an unknown image), without it it does
        (500). Resets the fake (faults and recordings) before and after."""
        self.reset()
        self.fault("fife", status=500, email="nobody@probe.invalid", times=1)
        status = self.http.get("/fife/email-filter-probe.png").status_code
        self.reset()
        return status != 500

    def close(self) -> None:
        self.http.close()


_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def start_fake(name: str) -> Fake:
    require_file(FAKE_BIN, "run `cargo build --release -p flow2api-examples --features fake --bin flow2api-fake-upstream`")
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "info")
    proc = Proc(name, [str(FAKE_BIN), "--port", "0"], env=env, cwd=_TMP)

    def listening():
        m = _LISTENING.search(proc.log_text())
        return m.group(1) if m else None

    base = wait_until(listening, FAKE_START_TIMEOUT, f"waiting for {name} to print its address", proc,
                      interval=0.05)
    return Fake(base=base, proc=proc)


# ---------------------------------------------------------------------------------------------
# Gateways
# ---------------------------------------------------------------------------------------------

@dataclass
class Gateway:
    """One running gateway (native or worker) with its fake upstream and account."""

    kind: str
    base: str
    proc: Proc
    fake: Fake
    api_key: str
    admin_password: str
    st: str = ""
    email: str = ""
    admin_token: str = ""
    # The settings beyond gateway_env's it was started with, and (worker) its --persist-to.
    extra: dict[str, str] = field(default_factory=dict)
    persist: Path | None = None
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base, timeout=HTTP_TIMEOUT, trust_env=False)

    def __repr__(self) -> str:  # no secrets in failure reports
        return f"Gateway({self.kind} at {self.base}, fake at {self.fake.base})"

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key if key is None else key}"}

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def login(self) -> str:
        r = self.http.post("/api/login", json={"username": ADMIN_USERNAME, "password": self.admin_password})
        assert r.status_code == 200, f"login: {r.status_code} {r.text}"
        body = r.json()
        assert body.get("success") is True and body.get("token"), body
        return body["token"]

    def add_token(self, st: str, **settings: Any) -> httpx.Response:
        return self.http.post("/api/tokens", json={"st": st, **settings}, headers=self.admin_headers())

    def accounts(self) -> list[dict]:
        """GET /api/tokens (needs `admin_token`)."""
        r = self.http.get("/api/tokens", headers=self.admin_headers())
        assert r.status_code == 200, f"GET /api/tokens on {self.kind}: {r.status_code} {r.text}"
        body = r.json()
        assert isinstance(body, list), body
        return body

    def chat(self, body: Any, key: str | None = None, **kw: Any) -> httpx.Response:
        return self.http.post("/v1/chat/completions", json=body, headers=self.auth(key), **kw)

    def patch_settings(self, token: str, values: dict, **extra: Any) -> httpx.Response:
        """PATCH /api/settings with `values` (None removes an override) as admin `token`."""
        return self.http.patch("/api/settings", json={"values": values, **extra},
                               headers={"Authorization": f"Bearer {token}"})

    def apply_settings(self, token: str, values: dict) -> None:
        """Changes settings and waits until every isolate reads them (at most a second old)."""
        ok_json(self.patch_settings(token, values))
        time.sleep(1.1 if self.kind == "worker" else 0)

    def close(self) -> None:
        self.http.close()


def gateway_env(fake: Fake, api_key: str, admin_password: str, *, allow_private: bool) -> dict[str, str]:
    """The settings every gateway gets (env natively, --var for wrangler)."""
    cfg = {
        "API_KEY": api_key,
        "ADMIN_USERNAME": ADMIN_USERNAME,
        "ADMIN_PASSWORD": admin_password,
        "FLOW_LABS_BASE_URL": fake.labs_base,
        "FLOW_API_BASE_URL": fake.api_base,
        "YESCAPTCHA_BASE_URL": fake.yescaptcha_base,
        "YESCAPTCHA_API_KEY": YESCAPTCHA_KEY,
        "CAPTCHA_POLL_INTERVAL": "0.05",
        "POLL_INTERVAL": "0.05",
        "KEEPALIVE_INTERVAL": "2",
        "CAPTCHA_METHOD": "yescaptcha",
    }
    if allow_private:
        cfg["ALLOW_PRIVATE_IMAGE_URLS"] = "true"
    return cfg


def start_native(name: str, fake: Fake, *, allow_private: bool = True,
                 extra: dict[str, str] | None = None, api_key: str | None = None,
                 admin_password: str | None = None) -> Gateway:
    """A native server on a free loopback port; `extra` adds or overrides settings (env).
    Its DATA_DIR is `<tmp>/<name>/data` unless `extra` names one; pass an earlier instance's
    `gw.extra["DATA_DIR"]`, `gw.api_key` and `gw.admin_password` to restart on its state."""
    require_file(SERVER_BIN, "run `cargo build --release -p flow2api-examples --bin flow2api-server`")
    port = free_port()
    api_key = api_key or f"sk-e2e-{secrets.token_hex(12)}"
    admin_password = admin_password or secrets.token_hex(12)
    env = {k: v for k, v in os.environ.items() if k not in _GATEWAY_KEYS}
    env.update(gateway_env(fake, api_key, admin_password, allow_private=allow_private))
    workdir = _TMP / name
    workdir.mkdir(exist_ok=True)
    # Its own state (flow2api.db, media/) in the temporary directory; `extra` may name another
    # (a restart on an earlier instance's DATA_DIR).
    env["DATA_DIR"] = str(workdir / "data")
    env.update(extra or {})
    env["LISTEN_ADDR"] = f"127.0.0.1:{port}"
    env.setdefault("RUST_LOG", "info")
    proc = Proc(name, [str(SERVER_BIN)], env=env, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, proc, NATIVE_START_TIMEOUT)
    return Gateway(kind="native", base=base, proc=proc, fake=fake, api_key=api_key,
                   admin_password=admin_password,
                   extra={"DATA_DIR": env["DATA_DIR"], **(extra or {})})


def _wrangler_config() -> list[str]:
    if (ROOT / "wrangler.toml").exists():
        return []
    for candidate in (ROOT / "edge-worker" / "wrangler.toml",):
        if candidate.exists():
            return ["--config", str(candidate)]
    pytest.fail("no wrangler.toml found (looked in the repo root and edge-worker/)", pytrace=False)


def _nobuild_config(main: Path | None = None) -> Path:
    """A copy of wrangler.toml without its [build] table and with an absolute `main`, so that
    `wrangler dev` serves a worker already built instead of rebuilding it (~20 s of wasm-opt):
    build/ by default, or `main` (the test-only build-conformance/index.js). Same worker name
    and the same bindings and migrations, so the same kind of local state."""
    src_path = ROOT / "wrangler.toml"
    if not src_path.exists():
        pytest.fail("serving a built worker needs wrangler.toml in the repo root", pytrace=False)
    if main is None:
        main = ROOT / tomllib.loads(src_path.read_text())["main"]
    path = _TMP / f"wrangler-nobuild-{main.parent.name}.toml"
    if path.exists():
        return path
    lines, skipping = [], False
    for line in src_path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            skipping = stripped == "[build]"
        if skipping:
            continue
        if re.match(r"\s*main\s*=", line):
            line = f"main = {json.dumps(str(main))}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


_WORKER_SOURCES = ("edge-worker/src", "edge-worker/Cargo.toml", "flow2api-sdk/src", "flow2api-sdk/console",
                   "flow2api-sdk/Cargo.toml", "Cargo.lock")


def ensure_worker_built() -> None:
    """Builds the worker into build/ (`bash scripts/build.sh`) when it is missing or older
    than any of its sources; a no-op right after CI's own build step. The workers the tests
    start then serve build/ as it is: with wrangler's [build] table, `wrangler dev` would
    rebuild on every start (~20 s of wasm-opt) and again whenever its file watcher fires,
    restarting the worker under a running test ("Your worker restarted mid-request")."""
    wasm = ROOT / "build" / "index_bg.wasm"
    built = wasm.stat().st_mtime if wasm.exists() else 0.0
    newest = 0.0
    for source in _WORKER_SOURCES:
        path = ROOT / source
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    if built >= newest:
        return
    done = subprocess.run(["bash", str(ROOT / "scripts" / "build.sh")], cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"building the worker failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}",
                    pytrace=False)


def start_worker(name: str, fake: Fake, *, extra: dict[str, str] | None = None,
                 persist: Path | None = None, api_key: str | None = None,
                 admin_password: str | None = None, build: bool = False,
                 main: Path | None = None) -> Gateway:
    """`wrangler dev` on a free loopback port; `extra` adds or overrides settings (--var).

    `persist` (default: a fresh `<name>-state` directory) is the --persist-to directory; pass
    an earlier instance's `gw.persist`, `gw.api_key` and `gw.admin_password` to restart on the
    same local KV and Durable Object state. `build=False` skips wrangler's [build] step and
    serves build/ (see `ensure_worker_built`); `build=True` lets wrangler build and watch
    instead. `main` serves another build made beforehand (build-conformance/index.js),
    also without the [build] step."""
    require_file(WRANGLER, "run `bash scripts/install-tools.sh` (npm ci)")
    port = free_port()
    api_key = api_key or f"sk-e2e-{secrets.token_hex(12)}"
    admin_password = admin_password or secrets.token_hex(12)
    if persist is None:
        persist = _TMP / f"{name}-state"
    persist.mkdir(exist_ok=True)
    empty_env = _TMP / f"{name}.env"
    empty_env.write_text("")
    if main is not None or not build:
        if main is None:
            ensure_worker_built()
        config = ["--config", str(_nobuild_config(main))]
    else:
        config = _wrangler_config()
    cmd = [str(WRANGLER), "dev", *config,
           "--ip", "127.0.0.1", "--port", str(port),
           "--inspector-ip", "127.0.0.1", "--inspector-port", str(free_port()),
           # An empty env file, so that a developer's .dev.vars is not read.
           "--env-file", str(empty_env),
           # GET /__scheduled runs the cron handler (tests/test_media_cache.py).
           "--test-scheduled",
           "--persist-to", str(persist)]
    cfg = gateway_env(fake, api_key, admin_password, allow_private=True)
    cfg.update(extra or {})
    for k, v in cfg.items():
        cmd += ["--var", f"{k}:{v}"]
    env = {k: v for k, v in os.environ.items() if k not in _GATEWAY_KEYS and k != "CLOUDFLARE_API_TOKEN"}
    env.update({
        "WRANGLER_SEND_METRICS": "false",
        "CI": "true",
        "NO_COLOR": "1",
        "FORCE_COLOR": "0",
        "WRANGLER_LOG_PATH": str(_TMP / f"{name}-wrangler-logs"),
    })
    # SIGINT is how wrangler shuts down cleanly (it stops its workerd children).
    proc = Proc(name, cmd, env=env, cwd=ROOT, stop_signal=signal.SIGINT)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, proc, WORKER_START_TIMEOUT)
    return Gateway(kind="worker", base=base, proc=proc, fake=fake, api_key=api_key,
                   admin_password=admin_password, extra=dict(extra or {}), persist=persist)


def start_gateway(kind: str, name: str, fake: Fake, *, extra: dict[str, str] | None = None) -> Gateway:
    """A gateway of `kind` ("native" or "worker") talking to `fake`."""
    if kind == "native":
        return start_native(name, fake, extra=extra)
    if kind == "worker":
        return start_worker(name, fake, extra=extra)
    raise ValueError(f"unknown server kind {kind!r}")


def _config_names() -> set[str]:
    """Every setting in the SDK's `SETTINGS` table (config.rs)."""
    src = (ROOT / "flow2api-sdk" / "src" / "config.rs").read_text()
    body = src.split("pub const SETTINGS", 1)[1].split("];", 1)[0]
    names = set(re.findall(r'setting\("([A-Z0-9_]+)"', body))
    assert len(names) > 20, "SETTINGS parsed"
    return names


# Config names the gateways read: never inherited from the developer's environment.
_GATEWAY_KEYS = {
    "API_KEY", "ADMIN_USERNAME", "ADMIN_PASSWORD", "FLOW_LABS_BASE_URL", "FLOW_API_BASE_URL",
    "CAPTCHA_METHOD", "YESCAPTCHA_BASE_URL", "YESCAPTCHA_API_KEY", "YESCAPTCHA_TASK_TYPE",
    "CAPTCHA_POLL_INTERVAL", "CAPTCHA_MAX_POLLS", "POLL_INTERVAL", "ALLOW_PRIVATE_IMAGE_URLS",
    "FLOW_MAX_RETRIES", "MAX_IMAGES", "MAX_IMAGE_BYTES", "MAX_PROMPT_CHARS", "PUBLIC_BASE_URL",
    "KEEPALIVE_INTERVAL", "MEDIA_TTL", "LISTEN_ADDR", "DATA_DIR", "LOG_REQUESTS",
} | _config_names()


def register_account(gw: Gateway) -> None:
    """A fresh fake account with its own ST, added to the fake and then to the gateway."""
    gw.st = f"st-{gw.kind}-{secrets.token_hex(16)}"
    gw.email = f"{gw.kind}-{secrets.token_hex(3)}@example.com"
    gw.fake.add_account(gw.st, gw.email, name=f"E2E {gw.kind}", tier="PAYGATE_TIER_TWO", credits=5000)
    gw.admin_token = gw.login()
    r = gw.add_token(gw.st)
    assert r.status_code == 200, f"POST /api/tokens on {gw.kind}: {r.status_code} {r.text}"
    assert r.json().get("success") is True, r.text


def stop_stack(gw: Gateway | None, fake: Fake | None) -> None:
    """Stops a gateway and its fake (either may be None)."""
    if gw is not None:
        gw.close()
        gw.proc.stop()
    if fake is not None:
        fake.close()
        fake.proc.stop()


@contextmanager
def stack(kind: str, name: str, *, extra: dict[str, str] | None = None,
          account: bool = True) -> Iterator[Gateway]:
    """Its own fake and a gateway of `kind` with `extra` settings, logged in as admin; with
    `account`, one fake account registered (`gw.st`, `gw.email`). Everything is stopped on
    exit. Names must be unique per session (they name the log files)."""
    fake = start_fake(f"fake-{name}")
    gw = None
    try:
        gw = start_gateway(kind, name, fake, extra=extra)
        if account:
            register_account(gw)
        else:
            gw.admin_token = gw.login()
        yield gw
    finally:
        stop_stack(gw, fake)


def _stack(kind: str) -> Iterator[Gateway]:
    with stack(kind, kind) as gw:
        yield gw


@pytest.fixture(scope="session")
def native_stack() -> Iterator[Gateway]:
    yield from _stack("native")


@pytest.fixture(scope="session")
def worker_stack() -> Iterator[Gateway]:
    yield from _stack("worker")


@pytest.fixture(params=["native", "worker"])
def server(request) -> Gateway:
    """Each test that takes it runs against both servers, with the fake's faults and
    recordings cleared first."""
    gw: Gateway = request.getfixturevalue(f"{request.param}_stack")
    gw.fake.reset()
    return gw


@pytest.fixture(scope="session")
def strict_server(native_stack: Gateway) -> Iterator[Gateway]:
    """A second native server without ALLOW_PRIVATE_IMAGE_URLS, sharing the native fake. It has
    no account: private image URLs are refused before an account is chosen."""
    gw = start_native("native-strict", native_stack.fake, allow_private=False)
    try:
        yield gw
    finally:
        gw.close()
        gw.proc.stop()


# ---------------------------------------------------------------------------------------------
# Helpers shared by the test modules
# ---------------------------------------------------------------------------------------------

def data_url(png: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(png).decode()}"


def make_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid, solid-colour RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


# ---------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        global _FAILED
        _FAILED = True


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not (_FAILED or exitstatus not in (0, 5)):
        return
    for p in _PROCS:
        terminalreporter.write_sep("-", f"log tail: {p.name} ({p.log_path})")
        terminalreporter.write_line(p.log_tail(80) or "(empty)")


def pytest_unconfigure(config):
    _kill_all()
    if not _FAILED:
        shutil.rmtree(_TMP, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Response checks shared by the test files
# ---------------------------------------------------------------------------------------------

def ok_json(r: httpx.Response) -> Any:
    """The JSON body of a 200 response."""
    assert r.status_code == 200, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def openai_error(r: httpx.Response, status: int) -> dict:
    """The `error` object of an OpenAI-dialect error response with `status`."""
    assert r.status_code == status, f"{r.request.method} {r.request.url}: expected {status}, got {r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    err = body.get("error")
    assert isinstance(err, dict), body
    assert set(err) >= {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"], err
    return err


def check_chunks(events: list[dict], model: str) -> list[dict]:
    """The chunks of one streamed completion carry no error, one `chatcmpl-` id and the model
    asked for; returns their deltas."""
    assert all("error" not in e for e in events), events
    ids = {e["id"] for e in events}
    assert len(ids) == 1 and next(iter(ids)).startswith("chatcmpl-"), ids
    assert {e["model"] for e in events} == {model}
    assert {e["object"] for e in events} == {"chat.completion.chunk"}
    return [e["choices"][0]["delta"] for e in events]
