"""Request logs and stats end to end, on both servers (the native server over SQLite and the
worker under `wrangler dev` with its LogObject Durable Object): every generation request gets
a row (a success, a stream, a failure with its summary, a video job at its end), the list
(the original's array and the cursor pages), its filters, a row's detail, DELETE, and the
counters behind /api/stats, /api/stats/series and /api/stats/accounts. No response carries a
secret. Retention by count runs on a stack of its own with LOG_MAX_ENTRIES=3."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any, Callable

import httpx
import pytest

from conftest import Gateway, ok_json, stack

IMAGE = "gemini-3.1-flash-image-landscape"
T2V = "veo_3_1_t2v_fast_landscape"
DEFAULT_VIDEO = {"pending_polls": 1, "active_polls": 1, "concat_polls": 1, "fife": True,
                 "redirect": "ok", "shape": "operations"}
WAIT = 30.0


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    """`probe()` once it is truthy (rows are written just after the answer, in the
    background)."""
    deadline = time.monotonic() + timeout
    while True:
        got = probe()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


class Admin:
    """Admin calls that remember every answer, so the test can check none holds a secret."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.seen: list[str] = []

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        r = self.gw.http.request(method, path, headers=self.gw.admin_headers(), **kw)
        self.seen.append(r.text)
        return r

    def get(self, path: str, **params: Any) -> Any:
        return ok_json(self.call("GET", path, params=params))

    def logs(self, **params: Any) -> list[dict]:
        rows = self.get("/api/logs", **params)
        assert isinstance(rows, list), rows
        return rows


def refused(r: httpx.Response) -> None:
    assert r.status_code == 400, f"{r.request.url}: {r.status_code} {r.text}"
    body = r.json()
    assert body["success"] is False and body["message"], body


def account_id(gw: Gateway) -> str:
    ids = [a["id"] for a in gw.accounts() if a.get("email") == gw.email]
    assert len(ids) == 1, gw.accounts()
    return str(ids[0])


def test_generation_requests_are_logged_and_counted(server: Gateway) -> None:
    gw = server
    admin = Admin(gw)
    assert ok_json(admin.call("DELETE", "/api/logs"))["success"] is True
    stats0 = admin.get("/api/stats")
    acc = account_id(gw)
    accounts0 = {a["token_id"]: a for a in admin.get("/api/stats/accounts")}
    r = gw.http.post("/api/keys", json={"name": f"logs-{secrets.token_hex(3)}"},
                     headers=gw.admin_headers())
    assert r.status_code == 201, r.text
    tenant = r.json()
    tenant_key = tenant["key"]
    try:
        # A non-streamed image, a streamed one (root key), and a failure (a tenant's key, a
        # model that does not exist).
        ok = gw.chat({"model": IMAGE, "messages": [{"role": "user", "content": "a red apple"}]})
        assert ok.status_code == 200, ok.text
        with gw.http.stream("POST", "/v1/chat/completions", headers=gw.auth(),
                            json={"model": IMAGE, "stream": True,
                                  "messages": [{"role": "user", "content": "a green pear"}]}) as s:
            assert s.status_code == 200
            streamed = "".join(s.iter_text())
        assert "[DONE]" in streamed, streamed[-500:]
        bad = gw.chat({"model": "no-such-model-xyz", "messages": [{"role": "user", "content": "x"}]},
                      key=tenant_key)
        assert 400 <= bad.status_code < 500, bad.text

        rows = wait_for("three rows", lambda: (lambda r: r if len(r) >= 3 else None)(admin.logs()))
        assert len(rows) == 3, rows
        ids = [row["id"] for row in rows]
        assert ids == sorted(ids, reverse=True), ids
        fields = {"id", "token_id", "token_email", "token_username", "operation", "model", "key",
                  "status_code", "duration", "status_text", "progress", "created_at",
                  "updated_at", "error_summary"}
        for row in rows:
            assert fields <= set(row), row
            assert row["token_username"] is None
            assert isinstance(row["duration"], (int, float)) and row["duration"] >= 0, row
            assert row["created_at"].endswith("Z") and row["updated_at"] >= row["created_at"], row
        failed, streamed_row, plain = rows
        assert failed["status_code"] == bad.status_code, failed
        assert failed["model"] == "no-such-model-xyz" and failed["key"] == tenant["id"], failed
        assert failed["operation"] == "generate_unknown" and failed["status_text"] == "failed"
        assert failed["error_summary"] and "no-such-model-xyz" in failed["error_summary"], failed
        assert failed["token_id"] is None, failed
        for row in (streamed_row, plain):
            assert row["status_code"] == 200 and row["status_text"] == "completed", row
            assert row["operation"] == "generate_image" and row["model"] == IMAGE, row
            assert row["key"] == "root" and row["progress"] == 100, row
            assert str(row["token_id"]) == acc and row["token_email"] == gw.email, row
            assert row["error_summary"] is None, row

        # Detail: the bodies, as JSON text; an unknown id is 404.
        detail = admin.get(f"/api/logs/{plain['id']}")
        request_body = json.loads(detail["request_body"])
        assert request_body == {"model": IMAGE, "prompt": "a red apple", "has_images": False}
        response_body = json.loads(detail["response_body"])
        assert response_body["success"] is True and len(response_body["urls"]) == 1, response_body
        assert response_body["urls"][0].startswith("http"), response_body
        assert json.loads(admin.get(f"/api/logs/{failed['id']}")["response_body"])["error"]
        assert admin.call("GET", "/api/logs/99999999").status_code == 404
        assert admin.call("GET", "/api/logs/not-a-number").status_code == 404

        # Cursor pages: two, then one, then the end.
        page = admin.get("/api/logs", cursor="", limit=2)
        assert [r["id"] for r in page["logs"]] == ids[:2] and page["next_cursor"], page
        page2 = admin.get("/api/logs", cursor=page["next_cursor"], limit=2)
        assert [r["id"] for r in page2["logs"]] == ids[2:], page2
        assert page2["next_cursor"] is None, page2
        refused(admin.call("GET", "/api/logs", params={"cursor": "garbage"}))

        # Filters, in both forms.
        def listed(**params: Any) -> list[int]:
            return [r["id"] for r in admin.logs(**params)]

        assert listed(status="200") == ids[1:]
        assert listed(status="2xx") == ids[1:]
        assert listed(status="4xx") == ids[:1]
        assert listed(status="5xx") == []
        assert listed(model=IMAGE) == ids[1:]
        assert listed(account=acc) == ids[1:]
        assert listed(key=tenant["id"]) == ids[:1]
        assert listed(key="root", status="200") == ids[1:]
        assert listed(operation="generate_image") == ids[1:]
        assert listed(since=str(int(time.time()) + 3600)) == []
        assert listed(until="2001-01-01T00:00:00Z") == []
        assert listed(since="2001-01-01T00:00:00Z", until=str(int(time.time()) + 60)) == ids
        paged = admin.get("/api/logs", cursor="", status="200", limit=1)
        assert [r["id"] for r in paged["logs"]] == ids[1:2] and paged["next_cursor"], paged
        refused(admin.call("GET", "/api/logs", params={"status": "teapot"}))
        refused(admin.call("GET", "/api/logs", params={"since": "yesterday"}))
        refused(admin.call("GET", "/api/logs", params={"limit": "many"}))
        assert len(admin.logs(limit=0)) == 1  # clamped to 1–100
        assert len(admin.logs(limit=500)) == 3

        # Counters: two images and an error today, per account too.
        stats = admin.get("/api/stats")
        assert stats["today_images"] - stats0["today_images"] == 2, (stats0, stats)
        assert stats["total_images"] - stats0["total_images"] == 2, (stats0, stats)
        assert stats["today_errors"] - stats0["today_errors"] == 1, (stats0, stats)
        assert stats["today_videos"] == stats0["today_videos"], (stats0, stats)
        day = admin.get("/api/stats/series", range="24h")
        assert day["range"] == "24h" and len(day["buckets"]) == 24, day
        starts = [b["start"] for b in day["buckets"]]
        assert starts == sorted(starts), starts
        assert day["buckets"][-1]["images"] >= 2 and day["buckets"][-1]["errors"] >= 1, day
        week = admin.get("/api/stats/series", range="7d")
        assert len(week["buckets"]) == 7 and week["buckets"][-1]["images"] >= 2, week
        assert sum(b["images"] for b in week["buckets"]) >= stats["today_images"], week
        refused(admin.call("GET", "/api/stats/series", params={"range": "1y"}))
        accounts = {a["token_id"]: a for a in admin.get("/api/stats/accounts")}
        mine = accounts[acc]
        before = accounts0.get(acc, {"today_images": 0, "total_images": 0, "today_errors": 0})
        assert mine["email"] == gw.email, mine
        assert mine["today_images"] - before["today_images"] == 2, (before, mine)
        assert mine["total_images"] - before["total_images"] == 2, (before, mine)
        assert mine["today_errors"] == before["today_errors"], mine  # the failure had no account

        # DELETE empties the list and keeps the counters.
        cleared = ok_json(admin.call("DELETE", "/api/logs"))
        assert cleared == {"success": True, "deleted": 3}, cleared
        assert admin.logs() == []
        assert admin.get("/api/stats")["today_images"] == stats["today_images"]

        # Admin only.
        assert gw.http.get("/api/logs").status_code == 401
        assert gw.http.get("/api/logs", headers=gw.auth()).status_code == 401
        assert gw.http.delete("/api/logs", headers=gw.auth(tenant_key)).status_code == 401
    finally:
        gw.http.delete(f"/api/keys/{tenant['id']}", headers=gw.admin_headers())
    for text in admin.seen + [ok.text, streamed, bad.text]:
        for secret in (gw.st, gw.api_key, tenant_key, gw.admin_password):
            assert secret not in text, f"a secret in {text[:300]}"


def test_a_video_job_is_logged_at_its_end(server: Gateway) -> None:
    gw = server
    gw.fake.video(**DEFAULT_VIDEO)
    admin = Admin(gw)
    ok_json(admin.call("DELETE", "/api/logs"))
    r = gw.http.post("/v1/videos", headers=gw.auth(),
                     json={"model": T2V, "prompt": "waves on a beach"})
    assert r.status_code == 200, r.text
    video_id = r.json()["id"]

    def done() -> dict | None:
        v = ok_json(gw.http.get(f"/v1/videos/{video_id}", headers=gw.auth()))
        return v if v["status"] in ("completed", "failed") else None

    assert wait_for("the video", done, timeout=90)["status"] == "completed"
    rows = wait_for("the video's row", lambda: admin.logs(operation="generate_video"))
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["status_code"] == 200 and row["progress"] == 100, row
    assert row["model"] == T2V and row["key"] == "root", row
    assert row["token_email"] == gw.email, row
    detail = admin.get(f"/api/logs/{row['id']}")
    assert json.loads(detail["request_body"])["prompt"] == "waves on a beach"
    stats = admin.get("/api/stats")
    assert stats["today_videos"] >= 1, stats
    for text in admin.seen:
        assert gw.st not in text and gw.api_key not in text


@pytest.mark.parametrize("kind", ["native", "worker"])
def test_retention_by_count(kind: str) -> None:
    with stack(kind, f"logs-retention-{kind}", extra={"LOG_MAX_ENTRIES": "3"}, account=False) as gw:
        admin = Admin(gw)
        for i in range(5):
            r = gw.chat({"model": f"missing-model-{i}", "messages": [{"role": "user", "content": "x"}]})
            assert 400 <= r.status_code < 500, r.text
            # One at a time, so the rows keep the requests' order.
            wait_for(f"row {i}", lambda: any(row["model"] == f"missing-model-{i}"
                                             for row in admin.logs()))
        rows = admin.logs()
        assert [row["model"] for row in rows] == [f"missing-model-{i}" for i in (4, 3, 2)], rows
        stats = admin.get("/api/stats")
        assert stats["total_errors"] == 5 and stats["today_errors"] == 5, stats
