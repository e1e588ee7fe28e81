#!/usr/bin/env python3
"""Benchmark (not a test): prints numbers for the native server and for the worker under
`wrangler dev`, both against the loopback fake upstream.

  * GET /v1/models requests per second at 64 connections (wrk, 2 threads, 10 s);
  * server CPU per streamed image generation at 16 concurrent requests
    (process CPU time from /proc divided by completed requests);
  * the gzip size `wrangler deploy --dry-run` reports;
  * the pool-size ratio: CPU per image with 1 account, then with BENCH_POOL (10,000) more
    disabled accounts imported in one call, on one server (native and workerd; target <= 1.2).

Run with `bash scripts/bench.sh` (it builds what is needed first).
Targets: native <= 0.5 ms CPU/image and >= 28,000 req/s; gzip <= 1 MiB; workerd CPU per image
<= 1.2 x the floor's: the same streamed images through a plain JS worker that does the least
one needs (scripts/bench-floor/index.js: a Durable Object slot taken and released with storage
writes, the captcha task created and polled, the generate call and its JSON, the SSE chunks),
under `wrangler dev` like ours. workerd CPU counts both workerd processes `wrangler dev` runs.
`python scripts/bench.py worker` runs the worker and its floor only (BENCH_INSPECTOR=0: both
without wrangler's DevTools inspector), `... pool` the pool-size ratio only (the worker's
without the inspector, which cannot carry the 10,000-account import: see dev_worker). Image
figures are measured over BENCH_ROUNDS rounds (default 5); see bench_native and bench_worker.

"""
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_KEY = "bench-key"
ADMIN_PASSWORD = "bench-admin"
TICK = os.sysconf("SC_CLK_TCK")
IMAGES_NATIVE = int(os.environ.get("BENCH_IMAGES_NATIVE", "800"))
IMAGES_WORKER = int(os.environ.get("BENCH_IMAGES_WORKER", "200"))
# Image measurements are repeated this many times (native: min and median; worker and floor:
# alternating rounds).
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
CONCURRENCY = 16
# The worker and its floor run under `wrangler dev` (the setting the targets were set in);
# BENCH_INSPECTOR=0 runs both without wrangler's DevTools inspector instead (dev_worker).
INSPECTOR = os.environ.get("BENCH_INSPECTOR", "1") != "0"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, headers=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def wait_http(url, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def wait_http_any(url, timeout=180):
    """Waits until `url` answers anything at all (an error status included)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def start(cmd, env=None, **kw):
    return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, start_new_session=True, **kw)


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGINT)
        p.wait(timeout=15)
    except Exception:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except Exception:
            pass


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except FileNotFoundError:
            pass
    return total / TICK


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            pass
    return out


def by_name(pids, name):
    found = []
    for p in pids:
        try:
            with open(f"/proc/{p}/comm") as f:
                if name in f.read():
                    found.append(p)
        except FileNotFoundError:
            pass
    return found


def start_fake():
    p = start([f"{ROOT}/target/release/flow2api-fake-upstream", "--port", "0"], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    base = re.search(r"http://\S+", line).group(0)
    return p, base


def settings(fake):
    return {
        "API_KEY": API_KEY,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "FLOW_LABS_BASE_URL": f"{fake}/fx/api",
        "FLOW_API_BASE_URL": f"{fake}/v1",
        "YESCAPTCHA_BASE_URL": f"{fake}/yescaptcha",
        "YESCAPTCHA_API_KEY": "fake-yescaptcha-key",
        "CAPTCHA_POLL_INTERVAL": "0.01",
        "ALLOW_PRIVATE_IMAGE_URLS": "true",
    }


def add_accounts(base, fake, prefix, n=4):
    token = http("POST", f"{base}/api/login", {"username": "admin", "password": ADMIN_PASSWORD})["token"]
    for i in range(n):
        st = f"st-bench-{prefix}-{i}-{os.getpid()}-0123456789"
        http("POST", f"{fake}/_fake/accounts", {"st": st, "email": f"{prefix}{i}@bench.test"})
        http("POST", f"{base}/api/tokens", {"st": st}, {"authorization": f"Bearer {token}"})


def wrk_models(base):
    out = subprocess.run(
        ["wrk", "-t2", "-c64", "-d10s", "-H", f"Authorization: Bearer {API_KEY}", f"{base}/v1/models"],
        capture_output=True, text=True, check=True,
    ).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return float(m.group(1)), int(errors.group(1)) if errors else 0


async def images(base, total, model="gemini-3.1-flash-image-landscape"):
    import httpx

    ok = 0
    sem = asyncio.Semaphore(CONCURRENCY)
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "a benchmark cat"}]}
    headers = {"authorization": f"Bearer {API_KEY}"}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def one():
            nonlocal ok
            async with sem:
                async with client.stream("POST", f"{base}/v1/chat/completions", json=body, headers=headers) as r:
                    text = (await r.aread()).decode()
                    if r.status_code == 200 and "![Generated Image](" in text and text.rstrip().endswith("data: [DONE]"):
                        ok += 1

        await asyncio.gather(*(one() for _ in range(total)))
    return ok


def measure_images(base, pids, total):
    asyncio.run(images(base, 32))  # warm-up: connections, caches, JIT
    before = cpu_seconds(pids)
    t0 = time.time()
    ok = asyncio.run(images(base, total))
    wall = time.time() - t0
    cpu = cpu_seconds(pids) - before
    return ok, cpu * 1000 / max(ok, 1), wall


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2] + xs[(n - 1) // 2]) / 2


def bench_native(results):
    """Requests/s of GET /v1/models, then CPU per image over ROUNDS rounds: the minimum is the
    figure least disturbed by whatever else the machine runs, the median how typical it is."""
    fake, fake_base = start_fake()
    port = free_port()
    state = tempfile.mkdtemp(prefix="flow2api-bench-native-")
    env = dict(os.environ, **settings(fake_base), LISTEN_ADDR=f"127.0.0.1:{port}", LOG_REQUESTS="0",
               DATA_DIR=state)
    server = start([f"{ROOT}/target/release/flow2api-server"], env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health")
        add_accounts(base, fake_base, "native")
        rps, errors = wrk_models(base)
        rounds = [measure_images(base, [server.pid], IMAGES_NATIVE) for _ in range(ROUNDS)]
        cpu = [r[1] for r in rounds]
        results["native"] = dict(models_rps=rps, models_errors=errors,
                                 images_ok=sum(r[0] for r in rounds), images_total=IMAGES_NATIVE * ROUNDS,
                                 cpu_ms_per_image=min(cpu), cpu_ms_per_image_median=median(cpu),
                                 cpu_ms_per_image_rounds=cpu)
    finally:
        stop(server)
        stop(fake)
        shutil.rmtree(state, ignore_errors=True)


def nobuild_config(state):
    """wrangler.toml without its [build] table and with an absolute `main`: `wrangler dev`
    serves build/ as bench.sh built it, instead of rebuilding and watching the sources (a
    rebuild in the middle of a measurement would restart the worker)."""
    lines, skipping = [], False
    for line in open(f"{ROOT}/wrangler.toml").read().splitlines():
        if line.strip().startswith("["):
            skipping = line.strip() == "[build]"
        if skipping:
            continue
        if re.match(r"\s*main\s*=", line):
            line = f'main = "{ROOT}/build/index.js"'
        lines.append(line)
    path = os.path.join(state, "wrangler.toml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def dev_worker(config, port, state, env_vars, cwd, inspector=True):
    """A worker served locally: by `wrangler dev` itself (the targets' setting), or, with
    `inspector=False`, the same way without its DevTools inspector (scripts/dev-worker.mjs).
    The inspector turns every subrequest's network events into requests to wrangler's Node
    process, counted as workerd CPU; under thousands of subrequests (the pool import) it
    exhausts workerd's sockets and drops connections."""
    if inspector:
        args = [f"{ROOT}/node_modules/.bin/wrangler", "dev", "--config", config, "--ip", "127.0.0.1",
                "--port", str(port), "--inspector-port", str(free_port()), "--persist-to", state,
                "--log-level", "warn"]
    else:
        args = ["node", f"{ROOT}/scripts/dev-worker.mjs", "--config", config, "--ip", "127.0.0.1",
                "--port", str(port), "--persist-to", state]
    for k, v in env_vars.items():
        args += ["--var", f"{k}:{v}"]
    env = dict(os.environ, WRANGLER_SEND_METRICS="false", CI="true")
    return start(args, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_ours(fake_base, state, extra=None, accounts=4, inspector=True):
    port = free_port()
    wrangler = dev_worker(nobuild_config(state), port, state,
                          dict(settings(fake_base), **(extra or {})), ROOT, inspector)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/health", timeout=600)
    add_accounts(base, fake_base, "worker", n=accounts)
    return wrangler, base


def floor_accounts(fake, n=4):
    """Accounts for the floor worker, made on the fake the way the gateway makes them: an
    access token from the session token, and one Flow project each."""
    out = []
    for i in range(n):
        st = f"st-bench-floor-{i}-{os.getpid()}-0123456789"
        email = f"floor{i}@bench.test"
        http("POST", f"{fake}/_fake/accounts", {"st": st, "email": email})
        cookie = {"cookie": f"__Secure-next-auth.session-token={st}"}
        at = http("GET", f"{fake}/fx/api/auth/session", headers=cookie)["access_token"]
        project = http("POST", f"{fake}/fx/api/trpc/project.createProject",
                       {"json": {"projectTitle": "floor", "toolName": "PINHOLE"}}, cookie)
        out.append({"id": f"floor-{i}", "at": at, "masked": "f***@bench.test",
                    "project": project["result"]["data"]["json"]["result"]["projectId"]})
    return out


def start_floor(fake_base, state, inspector=True):
    """A plain JS worker doing the least one streamed image needs (scripts/bench-floor/index.js):
    what workerd under `wrangler dev` spends before any of the gateway's code runs."""
    port = free_port()
    accounts = json.dumps(floor_accounts(fake_base), separators=(",", ":"))
    floor = f"{ROOT}/scripts/bench-floor"
    wrangler = dev_worker(f"{floor}/wrangler.toml", port, state,
                          dict(settings(fake_base), FLOOR_ACCOUNTS=accounts), floor, inspector)
    base = f"http://127.0.0.1:{port}"
    wait_http_any(base)
    return wrangler, base


def bench_worker(results):
    """Ours and the floor up side by side on one fake, measured in alternating rounds (ours,
    floor, ours, floor, ...) so that a change in the machine's speed during the run hits both
    alike; the ratio is of the total CPU over all rounds, with each round's ratio alongside."""
    fake, fake_base = start_fake()
    ours_state = tempfile.mkdtemp(prefix="flow2api-bench-")
    floor_state = tempfile.mkdtemp(prefix="flow2api-floor-")
    ours = floor = None
    try:
        ours, ours_base = start_ours(fake_base, ours_state, inspector=INSPECTOR)
        floor, floor_base = start_floor(fake_base, floor_state, inspector=INSPECTOR)
        ours_pids = by_name(descendants(ours.pid), "workerd")
        floor_pids = by_name(descendants(floor.pid), "workerd")
        rps, errors = wrk_models(ours_base)
        rounds = []
        for _ in range(ROUNDS):
            rounds.append((measure_images(ours_base, ours_pids, IMAGES_WORKER),
                           measure_images(floor_base, floor_pids, IMAGES_WORKER)))
        ours_cpu = [o[1] for o, _ in rounds]
        floor_cpu = [f[1] for _, f in rounds]
        results["worker"] = dict(models_rps=rps, models_errors=errors,
                                 images_ok=sum(o[0] for o, _ in rounds), images_total=IMAGES_WORKER * ROUNDS,
                                 cpu_ms_per_image=sum(ours_cpu) / ROUNDS, cpu_ms_per_image_rounds=ours_cpu,
                                 workerd_pids=len(ours_pids))
        results["floor"] = dict(images_ok=sum(f[0] for _, f in rounds), images_total=IMAGES_WORKER * ROUNDS,
                                cpu_ms_per_image=sum(floor_cpu) / ROUNDS, cpu_ms_per_image_rounds=floor_cpu)
        results["ratio_rounds"] = [round(o / f, 3) for o, f in zip(ours_cpu, floor_cpu)]
    finally:
        for p in (ours, floor):
            if p is not None:
                stop(p)
        stop(fake)
        shutil.rmtree(ours_state, ignore_errors=True)
        shutil.rmtree(floor_state, ignore_errors=True)


POOL = int(os.environ.get("BENCH_POOL", "10000"))
# Images per round of the pool-size ratio: the native server's CPU is read in 10 ms ticks.
IMAGES_POOL = {"native": IMAGES_NATIVE, "worker": IMAGES_WORKER}


def import_disabled(base, fake, n, first=0):
    """`n` accounts imported disabled in one call (202, then the job runner), waited for."""
    token = http("POST", f"{base}/api/login", {"username": "admin", "password": ADMIN_PASSWORD})["token"]
    auth = {"authorization": f"Bearer {token}"}
    items = []
    for i in range(first, first + n):
        st = f"st-bench-off-{i}-{os.getpid()}-0123456789"
        items.append({"st": st, "email": f"off{i}@bench.test", "tier": "PAYGATE_TIER_TWO"})
    for it in items:
        http("POST", f"{fake}/_fake/accounts", it)
    tokens = [{"session_token": it["st"], "is_active": False} for it in items]
    started = http("POST", f"{base}/api/tokens/import", {"tokens": tokens}, auth, timeout=300)
    t0 = time.time()
    while True:
        p = http("GET", f"{base}/api/tokens/import/{started['import_id']}", headers=auth)
        if p["status"] == "done":
            break
        time.sleep(1)
    assert p["added"] == n and not p["errors"], {k: p[k] for k in ("added", "updated", "done")}
    return time.time() - t0


def pool_rounds(base, pids, kind):
    return min(measure_images(base, pids, IMAGES_POOL[kind])[1] for _ in range(ROUNDS))


def bench_pool(results, kind):
    """CPU per image on one server with 1 account, then with POOL more, disabled: the best of
    ROUNDS rounds each (the import between them cannot be undone to alternate)."""
    fake, fake_base = start_fake()
    state = tempfile.mkdtemp(prefix=f"flow2api-bench-pool-{kind}-")
    server = None
    extra = {"PROJECT_POOL_SIZE": "1", "IMPORT_BATCH_SIZE": "500" if kind == "native" else "50"}
    try:
        if kind == "native":
            port = free_port()
            env = dict(os.environ, **settings(fake_base), **extra, LISTEN_ADDR=f"127.0.0.1:{port}",
                       LOG_REQUESTS="0", DATA_DIR=state)
            server = start([f"{ROOT}/target/release/flow2api-server"], env=env, stdout=subprocess.DEVNULL)
            base = f"http://127.0.0.1:{port}"
            wait_http(f"{base}/health")
            add_accounts(base, fake_base, "pool", n=1)
            pids = [server.pid]
        else:
            server, base = start_ours(fake_base, state, extra=extra, accounts=1, inspector=False)
            pids = by_name(descendants(server.pid), "workerd")
        alone = pool_rounds(base, pids, kind)
        import_s = import_disabled(base, fake_base, POOL)
        if kind != "native":
            # Measured on a freshly started process, like the first phase.
            stop(server)
            server, base = start_ours(fake_base, state, extra=extra, accounts=0, inspector=False)
            pids = by_name(descendants(server.pid), "workerd")
        crowded = pool_rounds(base, pids, kind)
        results[f"pool_{kind}"] = dict(accounts_disabled=POOL, import_seconds=round(import_s, 1),
                                       cpu_ms_per_image_alone=alone, cpu_ms_per_image_crowded=crowded,
                                       ratio=round(crowded / alone, 3))
        print(f"pool {kind}: {results[f'pool_{kind}']}", file=sys.stderr, flush=True)
    finally:
        if server is not None:
            stop(server)
        stop(fake)
        shutil.rmtree(state, ignore_errors=True)


def dry_run_size(results):
    out = subprocess.run(
        [f"{ROOT}/node_modules/.bin/wrangler", "deploy", "--dry-run", "--outdir", tempfile.mkdtemp()],
        cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, WRANGLER_SEND_METRICS="false", CI="true"),
    )
    m = re.search(r"Total Upload:\s*([\d.]+ KiB) / gzip:\s*([\d.]+ KiB)", out.stdout + out.stderr)
    results["dry_run"] = dict(total=m.group(1), gzip=m.group(2)) if m else dict(output=(out.stdout + out.stderr)[-500:])


def main():
    results = {}
    which = sys.argv[1:] or ["native", "worker", "size", "pool"]
    if "native" in which:
        bench_native(results)
    if "worker" in which:
        bench_worker(results)
    if "size" in which:
        dry_run_size(results)
    for kind in ("native", "worker"):
        if "pool" in which or f"pool-{kind}" in which:
            bench_pool(results, kind)
    print(json.dumps(results, indent=2))
    n, w, f = results.get("native"), results.get("worker"), results.get("floor")
    print()
    if n:
        print(f"native  GET /v1/models      {n['models_rps']:>10.0f} req/s   (target >= 28000)")
        print(f"native  CPU per image       {n['cpu_ms_per_image']:>10.3f} ms      (target <= 0.5)  "
              f"[{n['images_ok']}/{n['images_total']} ok] min of {ROUNDS} rounds, "
              f"median {n['cpu_ms_per_image_median']:.3f}")
    if w:
        print(f"workerd GET /v1/models      {w['models_rps']:>10.0f} req/s")
        print(f"workerd CPU per image       {w['cpu_ms_per_image']:>10.3f} ms      "
              f"[{w['images_ok']}/{w['images_total']} ok]")
    if f:
        print(f"workerd floor per image     {f['cpu_ms_per_image']:>10.3f} ms      "
              f"[{f['images_ok']}/{f['images_total']} ok] (a plain JS worker doing the same minimum)")
    if w and f:
        print(f"workerd / floor             {w['cpu_ms_per_image'] / f['cpu_ms_per_image']:>10.2f}         "
              f"(target <= 1.2)  rounds {results.get('ratio_rounds')}"
              f"{'' if INSPECTOR else '  (no inspector)'}")
    if "dry_run" in results and "gzip" in results["dry_run"]:
        print(f"wrangler deploy --dry-run   {results['dry_run']['gzip']:>10} gzip (target <= 1024 KiB)")
    for kind in ("native", "worker"):
        p = results.get(f"pool_{kind}")
        if p:
            print(f"{kind:<7} pool-size ratio     {p['ratio']:>10.2f}         (target <= 1.2)  "
                  f"{p['cpu_ms_per_image_alone']:.3f} ms/image with 1 account, "
                  f"{p['cpu_ms_per_image_crowded']:.3f} ms with {p['accounts_disabled']} more disabled "
                  f"(imported in {p['import_seconds']} s)")


if __name__ == "__main__":
    main()
