"""The account pool end to end, against the native server and the worker under `wrangler dev`:
per-account concurrency limits under load, quota cooldowns and captcha rejections, and (worker
only) slot leases surviving a crash of the runtime.

These tests need settings the shared stacks of conftest.py do not have (a short slot wait and
quota cooldown, a short image slot lease), so they start their own stacks (`conftest.stack`,
`conftest.start_worker`): one per server kind for the load and fault tests, and one more worker
with its own fake and state directory for the crash test. Each test adds its own fake accounts
and deletes them again.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterator

import httpx
import pytest

from conftest import Fake, Gateway, stack, start_fake, start_worker, stop_stack, wait_until

MODEL = "gemini-3.1-flash-image-landscape"
IMAGE_MD = re.compile(r"!\[Generated Image\]\((\S+?)\)")

SLOT_WAIT = 4.0          # SLOT_WAIT_TIMEOUT (s)
QUOTA_COOLDOWN = 5.0     # QUOTA_COOLDOWN (s)
ACCOUNT_CACHE_TTL = 1.0  # ACCOUNT_CACHE_TTL (s): hosts may serve a list this old

POOL_SETTINGS = {
    "SLOT_WAIT_TIMEOUT": f"{SLOT_WAIT:g}",
    "QUOTA_COOLDOWN": f"{QUOTA_COOLDOWN:g}",
    "ACCOUNT_CACHE_TTL": f"{ACCOUNT_CACHE_TTL:g}",
    # The defaults, spelled out because the fault test depends on them: three counted errors
    # in a row would disable an account; six captcha attempts per generation.
    "ERROR_BAN_THRESHOLD": "3",
    "CAPTCHA_MAX_RETRIES": "6",
    "SELECTION_STRATEGY": "least_loaded",
    "LOG_REQUESTS": "0",
}

LOAD_REQUESTS = 200
LOAD_LATENCY_MS = 300
LOAD_LIMIT = 2

FAULT_REQUESTS = 300  # in two halves: before and after the quota cooldown
FAULT_CONCURRENCY = 16
CAPTCHA_PERCENT = 20

CRASH_LEASE = 8.0            # IMAGE_SLOT_LEASE (s) of the crash test's worker
CRASH_LATENCY_MS = 30_000    # generate_image latency while the worker is killed
CRASH_SLACK = 5.0            # seconds allowed beyond the lease


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

@dataclass
class Acct:
    id: str
    email: str
    st: str


@dataclass
class Outcome:
    """One client request: what came back, when it was sent and how long it took."""

    index: int
    sent_wall: float
    elapsed: float
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    error: str | None = None

    @property
    def done_wall(self) -> float:
        return self.sent_wall + self.elapsed

    def image_ok(self) -> bool:
        if self.status != 200:
            return False
        try:
            content = json.loads(self.text)["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return False
        return bool(IMAGE_MD.search(content or ""))

    def brief(self) -> str:
        if self.error:
            return f"#{self.index}: {self.error} after {self.elapsed:.2f}s"
        return f"#{self.index}: {self.status} after {self.elapsed:.2f}s {self.text[:300]}"


def add_accounts(gw: Gateway, n: int, label: str, **settings: Any) -> list[Acct]:
    """n fresh Ultra accounts: in the fake, then in the gateway with `settings`."""
    out = []
    for i in range(n):
        st = f"st-{label}-{i}-{secrets.token_hex(16)}"
        email = f"{label}{i}-{secrets.token_hex(3)}@example.com"
        gw.fake.add_account(st, email, name=f"{label} {i}", tier="PAYGATE_TIER_TWO", credits=5000)
        r = gw.add_token(st, **settings)
        assert r.status_code == 200, f"POST /api/tokens {settings} on {gw.kind}: {r.status_code} {r.text}"
        view = r.json()["token"]
        assert view["email"] == email, view
        for k, v in settings.items():
            assert view.get(k) == v, f"POST /api/tokens {settings}: answered {k}={view.get(k)!r}"
        out.append(Acct(id=view["id"], email=email, st=st))
    # Let any cached account list lapse, so that every request sees exactly these accounts.
    time.sleep(ACCOUNT_CACHE_TTL + 0.5)
    return out


def by_id(gw: Gateway) -> dict[str, dict]:
    return {a["id"]: a for a in gw.accounts()}


def parse_time(value: str) -> float:
    """An RFC 3339 time (as the admin API writes them) as Unix seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def chat_body(prompt: str) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}


async def _send(client: httpx.AsyncClient, gw: Gateway, index: int, prompt: str) -> Outcome:
    sent_wall, t0 = time.time(), time.monotonic()
    try:
        r = await client.post("/v1/chat/completions", json=chat_body(prompt), headers=gw.auth())
        return Outcome(index, sent_wall, time.monotonic() - t0, r.status_code,
                       {k.lower(): v for k, v in r.headers.items()}, r.text)
    except httpx.HTTPError as e:
        return Outcome(index, sent_wall, time.monotonic() - t0, error=repr(e))


def _async_client(gw: Gateway, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=gw.base, trust_env=False,
        timeout=httpx.Timeout(180.0, connect=30.0, pool=180.0),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def _watch_accounts(gw: Gateway, stop: asyncio.Event, interval: float) -> list[tuple[float, list[dict]]]:
    """Polls GET /api/tokens until `stop` is set; returns (wall time, listing) samples."""
    samples: list[tuple[float, list[dict]]] = []
    async with _async_client(gw, 2) as client:
        while not stop.is_set():
            try:
                r = await client.get("/api/tokens", headers=gw.admin_headers())
                if r.status_code == 200:
                    samples.append((time.time(), r.json()))
            except httpx.HTTPError:
                pass
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                pass
    return samples


async def run_requests(gw: Gateway, prompts: list[str], concurrency: int,
                       watch_interval: float = 0.2) -> tuple[list[Outcome], list[tuple[float, list[dict]]]]:
    """Sends one non-stream chat completion per prompt, at most `concurrency` at a time, while
    polling GET /api/tokens."""
    sem = asyncio.Semaphore(concurrency)
    stop = asyncio.Event()
    watcher = asyncio.create_task(_watch_accounts(gw, stop, watch_interval))
    async with _async_client(gw, concurrency + 10) as client:
        async def one(i: int, prompt: str) -> Outcome:
            async with sem:
                return await _send(client, gw, i, prompt)

        outcomes = await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
    stop.set()
    return list(outcomes), await watcher


def fail_list(outcomes: list[Outcome], limit: int = 10) -> str:
    bad = [o.brief() for o in outcomes if not o.image_ok()]
    return f"{len(bad)} not ok:\n" + "\n".join(bad[:limit])


def generate_records(fake: Fake) -> list[dict]:
    return fake.requests("generate_image")


def bearer_of(record: dict) -> str | None:
    for name, value in record.get("headers", []):
        if name == "authorization" and value.lower().startswith("bearer "):
            return value[7:].strip()
    return None


def masked(secret: str) -> str:
    return f"{secret[:6]}…{secret[-4:]}"


def assert_openai_error(o: Outcome, status: int) -> dict:
    assert o.status == status, o.brief()
    assert o.headers.get("content-type", "").startswith("application/json"), (o.headers, o.brief())
    body = json.loads(o.text)
    err = body.get("error")
    assert isinstance(err, dict), o.brief()
    assert set(err) >= {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"], err
    return err


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["native", "worker"])
def pool_server(request) -> Iterator[Gateway]:
    """A stack of its own per server kind with POOL_SETTINGS and no account."""
    kind = request.param
    with stack(kind, f"pool-{kind}", extra=POOL_SETTINGS, account=False) as gw:
        yield gw


@pytest.fixture
def pool(pool_server: Gateway) -> Iterator[Gateway]:
    """The pool stack with no account, no fault and no recording; the test's accounts are
    deleted and the faults cleared afterwards."""
    gw = pool_server
    gw.fake.reset()
    assert gw.accounts() == [], "accounts left over from an earlier test"
    try:
        yield gw
    finally:
        gw.fake.reset()
        for a in gw.accounts():
            gw.http.delete(f"/api/tokens/{a['id']}", headers=gw.admin_headers())


# ---------------------------------------------------------------------------------------------
# load: concurrency limits
# ---------------------------------------------------------------------------------------------

def test_concurrency_limit_under_load(pool: Gateway):
    """3 accounts × image_concurrency 2, 200 concurrent requests, 300 ms per generation: the
    fake never sees more than 2 generations in flight per account; every request either gets
    its image or, after waiting the whole SLOT_WAIT_TIMEOUT, a 503 with Retry-After and the
    OpenAI error envelope; 503s cost no upstream call; all slots are released afterwards."""
    gw = pool
    accts = add_accounts(gw, 3, "load", image_concurrency=LOAD_LIMIT)
    emails = {a.email for a in accts}
    gw.fake.fault("generate_image", kind="latency", latency_ms=LOAD_LATENCY_MS, percent=100)

    tag = secrets.token_hex(4)
    prompts = [f"load {tag} #{i}" for i in range(LOAD_REQUESTS)]
    started = time.monotonic()
    outcomes, samples = asyncio.run(run_requests(gw, prompts, concurrency=LOAD_REQUESTS, watch_interval=0.25))
    took = time.monotonic() - started

    ok = [o for o in outcomes if o.image_ok()]
    busy = [o for o in outcomes if o.status == 503]
    other = [o for o in outcomes if not o.image_ok() and o.status != 503]
    stats = gw.fake.stats()
    peaks = {e: n for e, n in stats["max_in_flight"].items() if e in emails}
    seen = Counter()
    for _, listing in samples:
        for a in listing:
            seen[a["id"]] = max(seen[a["id"]], a["in_flight"]["image"])
    def spread(xs: list[float]) -> str:
        xs = sorted(xs)
        return f"{xs[0]:.2f}/{xs[len(xs) // 2]:.2f}/{xs[-1]:.2f}s" if xs else "-"
    summary = (f"{gw.kind}: {len(ok)} ok (min/median/max {spread([o.elapsed for o in ok])}), "
               f"{len(busy)} x 503 ({spread([o.elapsed for o in busy])}), {len(other)} other, "
               f"in {took:.1f}s; fake peaks {peaks}; gateway in_flight peaks {dict(seen)} "
               f"over {len(samples)} GET /api/tokens samples")
    print(summary)

    # Every request got its image or a 503.
    assert not other, f"{summary}\n{fail_list(other)}"

    # The upstream never saw more than the limit on any account, and the limit was reached.
    assert set(peaks) == emails, f"not every account generated: {summary}"
    assert all(n <= LOAD_LIMIT for n in peaks.values()), f"concurrency limit exceeded: {summary}"
    assert all(n == LOAD_LIMIT for n in peaks.values()), f"the load did not saturate every account: {summary}"
    # The gateway's own count never showed more either.
    assert all(n <= LOAD_LIMIT for n in seen.values()), f"GET /api/tokens showed in_flight above the limit: {summary}"

    # Some requests waited out the slot wait (else the test did not exercise it).
    assert ok, summary
    assert busy, f"no request hit the slot wait: {summary}"
    for o in busy:
        err = assert_openai_error(o, 503)
        retry = o.headers.get("retry-after")
        assert retry is not None and retry.isdigit() and int(retry) >= 1, f"Retry-After {retry!r}: {o.brief()}"
        assert o.elapsed >= SLOT_WAIT - 0.05, f"503 before the slot wait ({SLOT_WAIT}s): {o.brief()}"
        assert o.elapsed <= SLOT_WAIT + 30, f"503 long after the slot wait: {o.brief()}"
        assert err["code"] == "no_account_available", err

    # A 503 cost no upstream generation: one generate_image call per image.
    calls = generate_records(gw.fake)
    assert len(calls) == len(ok), f"{len(calls)} generate_image calls for {len(ok)} images: {summary}"
    assert stats["rejections"] == [], stats["rejections"]

    # Every slot was given back.
    def all_free():
        listing = gw.accounts()
        return all(a["in_flight"]["image"] == 0 for a in listing) and listing
    wait_until(all_free, 15, "waiting for every image slot to be released")


# ---------------------------------------------------------------------------------------------
# faults: quota on one account, captcha rejections everywhere
# ---------------------------------------------------------------------------------------------

def test_quota_cooldown_and_captcha_rejections(pool: Gateway):
    """3 accounts; one gets a 429 PUBLIC_ERROR_USER_QUOTA_REACHED, and 20 % of all generate
    calls get a 403 PUBLIC_ERROR_UNUSUAL_ACTIVITY. Of 300 requests at least 99 % succeed; the
    quota account shows `cooling_down` with `cooldown_until`, is not chosen while it rests,
    is `active` again after QUOTA_COOLDOWN and serves again; captcha rejections disable nobody
    and leave no consecutive errors."""
    gw = pool
    accts = add_accounts(gw, 3, "fault")
    ids = {a.id for a in accts}
    email_filter = gw.fake.supports_fault_email()  # resets the fake
    target = accts[0] if email_filter else None
    gw.fake.fault("generate_image", kind="unusual_activity", percent=CAPTCHA_PERCENT)
    if target is not None:
        gw.fake.fault("generate_image", kind="quota", times=1, email=target.email)
    else:
        # No per-account faults in this fake: the first generate call of all gets the quota
        # error, so exactly one account (whichever served it) must cool down.
        gw.fake.fault("generate_image", kind="quota", times=1)
    print(f"{gw.kind}: fault email filter {'supported' if email_filter else 'NOT supported'}")

    tag = secrets.token_hex(4)
    half = FAULT_REQUESTS // 2
    first, samples = asyncio.run(run_requests(
        gw, [f"fault {tag} #{i}" for i in range(half)], FAULT_CONCURRENCY))

    # Which account cooled down, and until when (first sighting).
    cooling: dict[str, tuple[float, dict]] = {}
    for t, listing in samples:
        for a in listing:
            if a["status"] == "cooling_down" and a["id"] not in cooling:
                cooling[a["id"]] = (t, a)
    if not cooling:
        # Phase 1 may end before a poll caught it: look once more now.
        for a in gw.accounts():
            if a["status"] == "cooling_down":
                cooling[a["id"]] = (time.time(), a)
    assert len(cooling) == 1, f"expected exactly one account cooling down, saw {list(cooling)}: {samples[-1:]}"
    cooled_id, (seen_at, view) = next(iter(cooling.items()))
    if target is not None:
        assert cooled_id == target.id, f"{view['email']} cooled down, not the quota account {target.email}"
    assert view["is_active"] is True, view
    assert view.get("cooldown_until"), f"cooling_down without cooldown_until: {view}"
    until = parse_time(view["cooldown_until"])  # whole seconds, rounded down
    assert seen_at - 1 <= until + 1 and until <= seen_at + QUOTA_COOLDOWN + 1, (
        f"cooldown_until {view['cooldown_until']} seen at {datetime.fromtimestamp(seen_at).isoformat()}: {view}")
    print(f"{gw.kind}: {view['email']} cooling_down until {view['cooldown_until']} "
          f"(reason {view.get('cooldown_reason')!r}, status_reason {view.get('status_reason')!r})")

    # It comes back by itself after the cooldown.
    def back():
        a = by_id(gw)[cooled_id]
        return a if a["status"] == "active" else None
    again = wait_until(back, QUOTA_COOLDOWN + 6, f"waiting for {view['email']} to be active again")
    back_at = time.time()
    assert again["is_active"] is True and not again.get("cooldown_until"), again
    assert back_at <= until + 1 + 3, f"active again only {back_at - until:.1f}s after cooldown_until"
    uses_before = again["use_count"]

    second, _ = asyncio.run(run_requests(
        gw, [f"fault {tag} #{i}" for i in range(half, FAULT_REQUESTS)], FAULT_CONCURRENCY))
    outcomes = first + second

    # At least 99 % succeeded.
    ok = [o for o in outcomes if o.image_ok()]
    summary = f"{gw.kind}: {len(ok)}/{len(outcomes)} ok"
    print(summary)
    assert len(ok) >= 0.99 * len(outcomes), f"{summary}\n{fail_list(outcomes)}"

    # Which account served each generate call, by the (masked) access token it carried.
    final = by_id(gw)
    at_to_id = {a["at"]: i for i, a in final.items() if a.get("at")}
    assert len(at_to_id) == len(ids), f"cannot tell the accounts apart by their masked ATs: {final}"
    calls_by_index: dict[int, set[str]] = {}
    calls = generate_records(gw.fake)
    for rec in calls:
        m = re.search(rf"fault {tag} #(\d+)\b", json.dumps(rec.get("json")))
        at = bearer_of(rec)
        if m and at:
            calls_by_index.setdefault(int(m.group(1)), set()).add(at_to_id.get(masked(at), "?"))

    # Not chosen while it rested: requests sent after the quota error and finished before the
    # cooldown ended never reached it. (cooldown_until is rounded down to the second.)
    rest_start, rest_end = until + 1 - QUOTA_COOLDOWN + 0.3, until - 0.3
    inside = [o for o in first if o.sent_wall >= rest_start and o.done_wall <= rest_end]
    used_while_resting = [o.index for o in inside if cooled_id in calls_by_index.get(o.index, set())]
    print(f"{gw.kind}: {len(inside)} requests entirely inside the cooldown")
    assert not used_while_resting, f"requests {used_while_resting} used {view['email']} while it was cooling down"

    # And serves again afterwards.
    served_after = [o.index for o in second if cooled_id in calls_by_index.get(o.index, set())]
    assert served_after, f"{view['email']} served none of the {len(second)} requests after its cooldown"
    assert final[cooled_id]["use_count"] > uses_before, final[cooled_id]

    # The captcha faults really happened, and disabled nobody.
    quota_hits = 1
    rejected = len(calls) - len(ok) - quota_hits
    assert rejected >= 0.05 * len(outcomes), (
        f"only {rejected} captcha rejections for {len(calls)} generate calls: was the 20 % fault applied?")
    print(f"{gw.kind}: {len(calls)} generate calls, ~{rejected} captcha rejections")
    for a in final.values():
        assert a["is_active"] is True and a["status"] == "active", a
        assert a["consecutive_error_count"] == 0, a
        assert a["in_flight"]["image"] == 0, a
    assert gw.fake.stats()["rejections"] == [], gw.fake.stats()["rejections"]


# ---------------------------------------------------------------------------------------------
# crash: wrangler dev killed while slots are held
# ---------------------------------------------------------------------------------------------

# What must survive the crash unchanged, per account.
STABLE_FIELDS = ("id", "email", "name", "remark", "st", "credits", "tier", "user_paygate_tier",
                 "projects", "is_active", "image_enabled", "video_enabled", "image_concurrency",
                 "video_concurrency", "created_at")


def test_worker_crash_frees_slots_and_keeps_accounts():
    """Worker only. A worker with IMAGE_SLOT_LEASE=8 s holds image slots for 30 s generations;
    wrangler dev is SIGKILLed (whole process group) and restarted on the same --persist-to
    directory: the slots are free again within the lease (plus a few seconds) without any
    generation completing, every account record is intact, and a generation works."""
    extra = {"IMAGE_SLOT_LEASE": f"{CRASH_LEASE:g}", "SLOT_WAIT_TIMEOUT": "2", "LOG_REQUESTS": "0"}
    fake = start_fake("fake-crash")
    gw = gw2 = None
    threads: list[threading.Thread] = []
    try:
        gw = start_worker("crash-worker", fake, extra=extra)
        gw.admin_token = gw.login()
        settings = [
            {"image_concurrency": 2, "video_concurrency": 1, "remark": "alpha"},
            {"image_concurrency": 1, "video_enabled": False, "remark": "beta"},
            {},
        ]
        accts = [add_accounts(gw, 1, f"crash{i}", **s)[0] for i, s in enumerate(settings)]
        before = by_id(gw)
        assert set(before) == {a.id for a in accts}, before
        export_before = gw.http.get("/api/tokens/export", headers=gw.admin_headers())

        fake.reset()
        fake.fault("generate_image", kind="latency", latency_ms=CRASH_LATENCY_MS, percent=100)

        # Four generations that hang in the fake: 2 + 1 + 1 slots.
        results: list[str] = []

        def hang(i: int) -> None:
            try:
                with httpx.Client(base_url=gw.base, timeout=120, trust_env=False) as c:
                    r = c.post("/v1/chat/completions", json=chat_body(f"crash #{i}"), headers=gw.auth())
                    results.append(f"#{i}: {r.status_code} {r.text[:200]}")
            except httpx.HTTPError as e:
                results.append(f"#{i}: {e!r}")

        threads = [threading.Thread(target=hang, args=(i,), daemon=True) for i in range(4)]
        fired_at = time.monotonic()  # no lease was taken before this
        for t in threads:
            t.start()

        def all_generating():
            peaks = fake.stats()["max_in_flight"]
            return sum(peaks.values()) >= 4 and peaks
        wait_until(all_generating, 60, "waiting for 4 generations to reach the fake")
        held = {i: a["in_flight"]["image"] for i, a in by_id(gw).items()}
        acquired_by = time.monotonic()  # every lease was taken before this
        assert sum(held.values()) == 4, f"in_flight.image per account: {held}"
        assert results == [], results

        # Crash: SIGKILL the whole process group (wrangler and its workerd children).
        gw.proc.kill()
        wait_until(lambda: not gw.proc.group_alive(), 10, "waiting for the wrangler process group to die")
        killed_at = time.monotonic()
        for t in threads:
            t.join(timeout=15)
        assert not any(": 200 " in r for r in results), f"a generation completed: {results}"

        # Restarted as it was, on the same state; build/ is what the first start just built.
        gw2 = start_worker("crash-worker-restarted", fake, extra=extra, persist=gw.persist,
                           api_key=gw.api_key, admin_password=gw.admin_password, build=False)
        up_at = time.monotonic()
        gw2.admin_token = gw2.login()
        print(f"worker restarted {up_at - killed_at:.1f}s after the kill, "
              f"{up_at - acquired_by:.1f}s after the slots were taken (lease {CRASH_LEASE:g}s)")

        # The slots come free by themselves within the lease, no generation having completed.
        trace: list[tuple[float, int]] = []

        def free():
            n = sum(a["in_flight"]["image"] for a in gw2.accounts())
            trace.append((round(time.monotonic() - acquired_by, 2), n))
            return n == 0
        deadline = max(acquired_by + CRASH_LEASE + CRASH_SLACK, time.monotonic() + 2) - time.monotonic()
        wait_until(free, deadline, f"waiting for the held slots to lapse; (s since taken, in_flight): {trace}",
                   interval=0.25)
        print(f"in_flight after the restart (s since taken, total): {trace}")
        # If the worker was back before the first lease could end, the slots must have survived
        # the crash (Durable Object storage) until then, rather than been lost with it.
        earliest_end = fired_at - acquired_by + CRASH_LEASE
        if trace[0][0] < earliest_end - 0.5:
            assert trace[0][1] == 4, f"slots lost in the crash rather than lapsed: {trace}"
        assert fake.stats()["generated"] == 0, "a generation completed; the slots were not freed by their lease"

        # No account was lost or changed.
        after = by_id(gw2)
        assert set(after) == set(before), f"accounts before {sorted(before)}, after {sorted(after)}"
        for i, a in before.items():
            for k in STABLE_FIELDS:
                assert after[i].get(k) == a.get(k), f"{k} of {i} changed across the crash: {a.get(k)!r} -> {after[i].get(k)!r}"
        if export_before.status_code == 200:
            export_after = gw2.http.get("/api/tokens/export", headers=gw2.admin_headers())
            assert export_after.status_code == 200, export_after.text
            key = lambda item: item.get("email") or ""
            assert sorted(export_after.json(), key=key) == sorted(export_before.json(), key=key)

        # And it generates again.
        fake.reset()
        r = gw2.chat(chat_body("after the crash"))
        assert r.status_code == 200, r.text
        assert IMAGE_MD.search(r.json()["choices"][0]["message"]["content"]), r.text
        assert sum(a["in_flight"]["image"] for a in gw2.accounts()) == 0
    finally:
        if gw is not None:
            gw.close()
            gw.proc.stop()
        stop_stack(gw2, fake)
