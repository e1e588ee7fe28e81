"""The seams' conformance suites (flow2api_sdk::testing::conformance) inside workerd, against
the worker's own implementations: KV and Durable Object storage, the per-account Durable Object
coordinator.

The worker's test-only route `POST /__conformance/{seam}/{backend}/{case}` runs one case per
request (edge-worker/src/conformance.rs); it answers only when `wrangler dev` gets
`--var CONFORMANCE_ROUTE:1`, which wrangler.toml never sets. The 1,001-key listing case is seeded
over several requests so that no invocation comes near its subrequest budget.
"""

from __future__ import annotations

import secrets
from typing import Iterator

import httpx
import pytest

from conftest import ROOT, Gateway, start_fake, start_worker, stop_stack

# The case names of the Rust suites (storage::CASES, coordinator::CASES), minus the listing
# case, which runs split below.
STORAGE_CASES = ["get_put_delete", "list_prefix_order", "read_your_writes", "conditional_write",
                 "conditional_write_race", "ttl", "min_ttl"]
COORDINATOR_CASES = ["slots_never_exceed_the_limit", "release", "lease_expiry_and_renewal",
                     "errors_and_cooldown", "single_flight_refresh"]
MANY_KEYS = 1001
SEED_CHUNK = 40  # writes per invocation: well under the free plan's 50 subrequests


@pytest.fixture(scope="module")
def conformance_worker() -> Iterator[Gateway]:
    fake = start_fake("fake-conformance")
    gw = None
    try:
        # The worker in build/ as it is when there is one (the session's other worker, or
        # scripts/build.sh, made it from these sources): no second build.
        built = (ROOT / "build" / "index.js").exists()
        gw = start_worker("conformance", fake, extra={"CONFORMANCE_ROUTE": "1"}, build=not built)
        yield gw
    finally:
        stop_stack(gw, fake)


def run_case(gw: Gateway, path: str, args: dict | None = None) -> dict:
    r = httpx.post(f"{gw.base}/__conformance/{path}", json=args or {}, timeout=120)
    assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    return r.json()


def expect_pass(answer: dict, path: str, *, may_skip: bool = False) -> None:
    allowed = ("passed", "skipped") if may_skip else ("passed",)
    assert answer["outcome"] in allowed, f"{path}: {answer}"


@pytest.mark.parametrize("backend", ["kv", "do"])
@pytest.mark.parametrize("case", STORAGE_CASES)
def test_storage_case(conformance_worker: Gateway, backend: str, case: str) -> None:
    path = f"storage/{backend}/{case}"
    answer = run_case(conformance_worker, path)
    # What each backend claims, pinned: KV is eventually consistent, keeps at least 60 s and
    # has no conditional write (its case checks that put_if refuses); the Durable Object store
    # is strong with atomic conditional writes and any TTL.
    skips = {
        "kv": {"read_your_writes", "conditional_write", "conditional_write_race"},
        "do": {"min_ttl"},
    }[backend]
    if case in skips:
        assert answer["outcome"] == "skipped", f"{path}: {answer}"
    elif backend == "kv" and case == "ttl":
        # KV's 60 s minimum is too long to wait for in real time: checked from the early side
        # (min_ttl) and skipped here.
        expect_pass(answer, path, may_skip=True)
    else:
        expect_pass(answer, path)


@pytest.mark.parametrize("backend", ["kv", "do"])
def test_storage_listing_past_1000_keys(conformance_worker: Gateway, backend: str) -> None:
    prefix = f"conformance/listing-{secrets.token_hex(6)}/"
    for start in range(0, MANY_KEYS, SEED_CHUNK):
        end = min(start + SEED_CHUNK, MANY_KEYS)
        expect_pass(run_case(conformance_worker, f"storage/{backend}/seed",
                             {"prefix": prefix, "from": start, "to": end}), f"seed {start}..{end}")
    expect_pass(run_case(conformance_worker, f"storage/{backend}/check_listing",
                         {"prefix": prefix, "count": MANY_KEYS}), "check_listing")


@pytest.mark.parametrize("case", COORDINATOR_CASES)
def test_coordinator_case(conformance_worker: Gateway, case: str) -> None:
    path = f"coordinator/do/{case}"
    expect_pass(run_case(conformance_worker, path), path)


def test_unknown_cases_fail(conformance_worker: Gateway) -> None:
    answer = run_case(conformance_worker, "storage/do/no_such_case")
    assert answer["outcome"] == "failed", answer


def test_the_route_is_off_without_its_variable(conformance_worker: Gateway) -> None:
    # The same build, started without the variable (as every deployment is).
    built = (ROOT / "build" / "index.js").exists()
    plain = start_worker("conformance-off", conformance_worker.fake, build=not built)
    try:
        r = httpx.post(f"{plain.base}/__conformance/storage/do/get_put_delete", json={},
                       timeout=60)
        assert r.status_code == 404, r.text
        assert "outcome" not in r.text
    finally:
        plain.close()
        plain.proc.stop()
