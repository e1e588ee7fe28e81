"""The native server's state survives `kill -9` (native only; the worker's state is KV and
Durable Objects, see test_pool.test_worker_crash_frees_slots_and_keeps_accounts).

One native server on a temporary DATA_DIR is given, as fast as it answers, 20 accounts, 5 video
jobs that the fake keeps pending, an admin session and one account resting after a quota error;
the moment the last of these is acknowledged the server is SIGKILLed (no shutdown, no flush),
then started again on the same DATA_DIR. Everything acknowledged is there: the accounts with
their settings, the jobs (which go on to complete, without being submitted again), the admin
session, and the cooldown (the account is still listed as resting, and an image request that
only it could serve is refused rather than sent to it).
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import Gateway, ok_json, openai_error, start_fake, start_native, stop_stack, wait_until

ACCOUNTS = 20
JOBS = 5
QUOTA_COOLDOWN = 600  # s: far longer than the test
# The fake answers PENDING to this many status polls per operation (POLL_INTERVAL is 0.05 s):
# the jobs are still running when the server is killed, and finish after the restart.
PENDING_POLLS = 150
IMAGE_MODEL = "gemini-3.1-flash-image-landscape"
VIDEO_MODEL = "veo_3_1_t2v_fast_landscape"
EXTRA = {"QUOTA_COOLDOWN": str(QUOTA_COOLDOWN), "LOG_REQUESTS": "0", "SLOT_WAIT_TIMEOUT": "1"}

# What must come back unchanged, per account.
STABLE = ("id", "email", "name", "st", "credits", "tier", "projects", "is_active",
          "image_enabled", "video_enabled", "image_concurrency", "video_concurrency", "created_at")


def add_account(gw: Gateway, i: int, **settings) -> dict:
    st = f"st-persist-{i}-{secrets.token_hex(16)}"
    email = f"persist{i}-{secrets.token_hex(3)}@example.com"
    gw.fake.add_account(st, email, name=f"persist {i}", tier="PAYGATE_TIER_TWO", credits=5000)
    return ok_json(gw.add_token(st, **settings))["token"]


def image_request(gw: Gateway, prompt: str):
    return gw.chat({"model": IMAGE_MODEL, "messages": [{"role": "user", "content": prompt}]})


def test_native_state_survives_kill_9():
    fake = start_fake("fake-persist")
    gw = gw2 = None
    try:
        gw = start_native("persist", fake, extra=EXTRA)
        fake.video(pending_polls=PENDING_POLLS, active_polls=0, concat_polls=1, fife=True,
                   redirect="ok", shape="operations")
        gw.admin_token = gw.login()
        t0 = time.monotonic()

        # 20 accounts, 8 requests at a time. Only the first serves images, so that the one image
        # request below lands on it and, after the restart, nothing else could serve images.
        first = add_account(gw, 0)
        with ThreadPoolExecutor(8) as pool:
            rest = list(pool.map(lambda i: add_account(gw, i, image_enabled=False), range(1, ACCOUNTS)))
        added = [first, *rest]

        # 5 video jobs, held pending by the fake.
        jobs = []
        for i in range(JOBS):
            body = {"model": VIDEO_MODEL, "prompt": f"persisted job {i} {secrets.token_hex(3)}",
                    "seconds": "8", "size": "1280x720"}
            r = gw.http.post("/v1/videos", json=body, headers=gw.auth())
            jobs.append(ok_json(r))

        # A quota error rests the only image account.
        fake.fault("generate_image", kind="quota", times=1)
        r = image_request(gw, "rest the image account")
        assert r.status_code in (429, 503), f"{r.status_code} {r.text[:300]}"
        resting = {a["id"]: a for a in gw.accounts()}[first["id"]]
        acknowledged = time.monotonic()
        assert resting["status"] == "cooling_down" and resting["cooldown_until"], resting

        # Crash at once: nothing gets a chance to be written after the answers.
        gw.proc.kill()
        print(f"native: {ACCOUNTS} accounts, {JOBS} jobs, a session and a cooldown acknowledged in "
              f"{acknowledged - t0:.2f}s, then SIGKILL")
        submitted = len(fake.requests("generate_video_text"))
        assert submitted == JOBS, f"{submitted} video submits before the crash"
        gw.close()

        gw2 = start_native("persist-restarted", fake, extra={**EXTRA, "DATA_DIR": gw.extra["DATA_DIR"]},
                           api_key=gw.api_key, admin_password=gw.admin_password)
        # The admin session of the first process is still valid.
        gw2.admin_token = gw.admin_token
        accounts = {a["id"]: a for a in gw2.accounts()}
        statuses = [get_video(gw2, j["id"]) for j in jobs]

        assert set(accounts) == {a["id"] for a in added}, "accounts lost in the crash"
        for a in added:
            for k in STABLE:
                assert accounts[a["id"]].get(k) == a.get(k), f"{a['email']} {k}: {a.get(k)!r} -> {accounts[a['id']].get(k)!r}"

        again = accounts[first["id"]]
        assert again["status"] == "cooling_down", again
        assert again["cooldown_until"] == resting["cooldown_until"], (resting, again)
        assert again["error_count"] == resting["error_count"] == 1, again

        for job, status in zip(jobs, statuses):
            assert status["id"] == job["id"] and status["prompt"] == job["prompt"], status
        # Every job's video slot is still held: read before the jobs, so none had finished yet
        # if the jobs read after it were all unfinished.
        if all(s["status"] in ("queued", "in_progress") for s in statuses):
            held = sum(a["in_flight"]["video"] for a in accounts.values())
            assert held == JOBS, f"{held} video slots held after the restart, {JOBS} jobs running"

        # Not selected while it rests: no other account serves images.
        r = image_request(gw2, "must not reach the resting account")
        openai_error(r, 503)
        assert r.headers.get("retry-after"), r.headers
        assert {a["id"]: a for a in gw2.accounts()}[first["id"]]["use_count"] == resting["use_count"]

        # The jobs go on where they were and complete, each submitted once.
        for job in jobs:
            done = wait_video(gw2, job["id"])
            assert done["status"] == "completed", done
        submits = len(fake.requests("generate_video_text"))
        assert submits == JOBS, f"{submits} submits for {JOBS} jobs: some were submitted again"
        wait_until(lambda: sum(a["in_flight"]["video"] for a in gw2.accounts()) == 0, 10,
                   "waiting for the finished jobs' slots to be released", gw2.proc)
    finally:
        if gw is not None and gw2 is None:
            gw.close()
            gw.proc.stop()
        stop_stack(gw2, fake)


def get_video(gw: Gateway, vid: str) -> dict:
    return ok_json(gw.http.get(f"/v1/videos/{vid}", headers=gw.auth()))


def wait_video(gw: Gateway, vid: str, timeout: float = 120.0) -> dict:
    def done():
        v = get_video(gw, vid)
        return v if v["status"] in ("completed", "failed") else None

    return wait_until(done, timeout, f"waiting for {vid} to finish", gw.proc, interval=0.25)
