"""Account records under racing writers, end to end on both hosts: admin edits, token refreshes,
enables and disables sent at the same moment all land; a deleted account stays deleted however
many writers race its delete. (At the edge the records live in a Durable Object written by
conditional writes; natively in SQLite.)"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

from conftest import Gateway, ok_json

ROUNDS = 6


def _add(gw: Gateway, label: str) -> tuple[str, str]:
    st = f"st-race-{label}-{secrets.token_hex(12)}"
    email = f"race-{label}-{secrets.token_hex(3)}@example.com"
    gw.fake.add_account(st, email, tier="PAYGATE_TIER_TWO", credits=100)
    body = ok_json(gw.add_token(st))
    return body["token"]["id"], st


def _view(gw: Gateway, account_id: str) -> dict | None:
    return next((a for a in gw.accounts() if a["id"] == account_id), None)


def _all(*calls):
    """Runs the calls at the same moment; their responses."""
    with ThreadPoolExecutor(len(calls)) as ex:
        return [f.result() for f in [ex.submit(c) for c in calls]]


def test_racing_edits_refreshes_and_disables_all_land(server: Gateway):
    gw = server
    account_id, _ = _add(gw, gw.kind)
    h = gw.admin_headers()
    path = f"/api/tokens/{account_id}"
    try:
        for i in range(ROUNDS):
            remark = f"round {i}"
            responses = _all(
                lambda: gw.http.put(path, json={"remark": remark}, headers=h),
                lambda: gw.http.put(path, json={"video_concurrency": i + 1}, headers=h),
                lambda: gw.http.post(f"{path}/refresh", headers=h),
                lambda: gw.http.post(f"{path}/{'disable' if i % 2 == 0 else 'enable'}", headers=h),
            )
            for r in responses:
                assert r.status_code == 200, f"round {i}: {r.status_code} {r.text}"
            view = _view(gw, account_id)
            assert view is not None
            assert view["remark"] == remark, (i, view)
            assert view["video_concurrency"] == i + 1, (i, view)
            assert view["is_active"] is (i % 2 == 1), (i, view)
            assert view["at"], view
    finally:
        gw.http.delete(path, headers=h)


def test_a_deleted_account_never_comes_back(server: Gateway):
    gw = server
    h = gw.admin_headers()
    account_id, _ = _add(gw, f"{gw.kind}-del")
    path = f"/api/tokens/{account_id}"
    responses = _all(
        lambda: gw.http.put(path, json={"remark": "late edit"}, headers=h),
        lambda: gw.http.post(f"{path}/enable", headers=h),
        lambda: gw.http.delete(path, headers=h),
        lambda: gw.http.post(f"{path}/refresh", headers=h),
        lambda: gw.http.post(f"{path}/disable", headers=h),
    )
    assert responses[2].status_code == 200, responses[2].text
    for r in responses:
        assert r.status_code in (200, 404), f"{r.status_code} {r.text}"
    # Gone from the list, to every route, and after a background pass.
    assert _view(gw, account_id) is None
    assert gw.http.put(path, json={"remark": "again"}, headers=h).status_code == 404
    assert gw.http.post(f"{path}/enable", headers=h).status_code == 404
    ok_json(gw.http.post("/api/tokens/refresh-due", headers=h))
    assert _view(gw, account_id) is None
    # The gateway's own account still serves.
    r = gw.chat({"model": "gemini-3.1-flash-image-landscape",
                 "messages": [{"role": "user", "content": "a kite"}]})
    assert r.status_code == 200, r.text
