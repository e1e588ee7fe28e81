"""The original Flow2API's admin routes (§7.2 of the protocol dossier) on both servers: a script
written for the original's admin API runs unchanged; changes go through the settings store and
are honoured at once; the API key rotates; validation errors are 400 with success false;
secrets are masked; every change lands in the audit list.
"""

from __future__ import annotations

import secrets
import time

import httpx

from conftest import ADMIN_USERNAME, Gateway, ok_json


def original_admin_script(base: str, password: str, st: str) -> dict:
    """What an operator's script for the original does, word for word: log in, add a token,
    change the generation timeout, read the stats."""
    with httpx.Client(base_url=base, timeout=30, trust_env=False) as s:
        r = s.post("/api/login", json={"username": ADMIN_USERNAME, "password": password})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['token']}"}
        r = s.post("/api/tokens", json={"st": st, "remark": "from a script"}, headers=headers)
        r.raise_for_status()
        assert r.json()["success"] is True
        token_id = r.json()["token"]["id"]
        current = s.get("/api/config/generation", headers=headers).json()["config"]
        r = s.post("/api/config/generation", headers=headers, json={
            "image_timeout": 200,
            "video_timeout": current["video_timeout"],
            "max_retries": current["max_retries"],
        })
        r.raise_for_status()
        assert r.json()["success"] is True
        stats = s.get("/api/stats", headers=headers).json()
        return {"token_id": token_id, "stats": stats, "headers": headers}


def admin(gw: Gateway, token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def settings_by_name(gw: Gateway, token: str) -> dict[str, dict]:
    body = ok_json(gw.http.get("/api/settings", headers=admin(gw, token)))
    return {s["name"]: s for s in body["settings"]}


def restore(gw: Gateway, token: str, names: list[str]) -> None:
    r = gw.http.patch("/api/settings", headers=admin(gw, token),
                      json={"values": {n: None for n in names}})
    assert r.status_code == 200, r.text


def until(predicate, what: str, timeout: float = 3.0):
    """Other isolates see a change within a second: allow for that."""
    deadline = time.monotonic() + timeout
    while True:
        got = predicate()
        if got or time.monotonic() > deadline:
            assert got, what
            return got
        time.sleep(0.1)


def test_a_script_for_the_original_runs_unchanged(server: Gateway) -> None:
    st = f"st-compat-{secrets.token_hex(16)}"
    email = f"compat-{secrets.token_hex(3)}@example.com"
    server.fake.add_account(st, email, tier="PAYGATE_TIER_TWO", credits=4321)
    token = server.login()
    out = original_admin_script(server.base, server.admin_password, st)
    try:
        stats = out["stats"]
        for field in ("total_tokens", "active_tokens", "total_errors"):
            assert isinstance(stats[field], int), stats
        assert stats["total_tokens"] >= 1 and stats["active_tokens"] >= 1, stats
        for field in ("total_images", "total_videos", "today_images", "today_videos", "today_errors"):
            assert field in stats, stats

        # The changed timeout is what every route now reports, including PATCH's view.
        gen = ok_json(server.http.get("/api/generation/timeout", headers=admin(server, token)))
        assert gen["success"] is True and gen["config"]["image_timeout"] == 200, gen
        listed = settings_by_name(server, token)["IMAGE_TIMEOUT"]
        assert (listed["value"], listed["source"]) == ("200", "override"), listed

        info = ok_json(server.http.get("/api/system/info", headers=admin(server, token)))["info"]
        assert info["total_tokens"] >= 1 and info["total_credits"] >= 4321, info

        # The per-account routes under the original's names.
        tid = out["token_id"]
        r = ok_json(server.http.post(f"/api/tokens/{tid}/refresh-credits", headers=admin(server, token)))
        assert r["success"] is True and r["credits"] == 4321, r
        r = ok_json(server.http.post(f"/api/tokens/{tid}/refresh-at", headers=admin(server, token)))
        assert r["token"]["email"] == email and r["token"]["at_expires"], r
        for action in ("disable", "enable"):
            ok_json(server.http.post(f"/api/tokens/{tid}/{action}", headers=admin(server, token)))

        # Every change is in the audit list, newest first, with no value in it.
        audit = ok_json(server.http.get("/api/audit?limit=20", headers=admin(server, token)))
        actions = [e["action"] for e in audit["entries"]]
        assert actions[:5] == [
            f"POST /api/tokens/{tid}/enable",
            f"POST /api/tokens/{tid}/disable",
            f"POST /api/tokens/{tid}/refresh-at",
            f"POST /api/tokens/{tid}/refresh-credits",
            "POST /api/config/generation",
        ], actions
        gen_entry = audit["entries"][4]
        assert gen_entry["settings"] == ["FLOW_MAX_RETRIES", "IMAGE_TIMEOUT", "VIDEO_TIMEOUT"], gen_entry
        assert "POST /api/tokens" in actions, actions
        assert st not in str(audit)
    finally:
        ok_json(server.http.delete(f"/api/tokens/{out['token_id']}", headers=admin(server, token)))
        restore(server, token, ["IMAGE_TIMEOUT", "VIDEO_TIMEOUT", "FLOW_MAX_RETRIES"])


def test_the_api_key_rotates_and_secrets_stay_masked(server: Gateway) -> None:
    token = server.login()
    config = ok_json(server.http.get("/api/admin/config", headers=admin(server, token)))
    assert set(config) == {"admin_username", "api_key", "error_ban_threshold", "debug_enabled"}, config
    assert config["admin_username"] == ADMIN_USERNAME and config["debug_enabled"] is False
    assert server.api_key not in str(config) and "…" in config["api_key"], config
    new_key = f"sk-rotated-{secrets.token_hex(12)}"
    try:
        r = ok_json(server.http.post("/api/admin/apikey", headers=admin(server, token),
                                     json={"new_api_key": new_key}))
        assert r["success"] is True and new_key not in str(r), r
        assert r["api_key"] == f"{new_key[:6]}…{new_key[-4:]}", r
        # The new key works at once; the old one is refused.
        until(lambda: server.http.get("/v1/models", headers=server.auth(new_key)).status_code == 200,
              "the new key is accepted")
        until(lambda: server.http.get("/v1/models", headers=server.auth()).status_code == 401,
              "the old key is refused")
        shown = ok_json(server.http.get("/api/admin/config", headers=admin(server, token)))
        assert new_key not in str(shown) and shown["api_key"] == r["api_key"], shown
        assert new_key not in server.http.get("/api/settings", headers=admin(server, token)).text
        audit = ok_json(server.http.get("/api/audit?limit=5", headers=admin(server, token)))
        assert audit["entries"][0]["action"] == "POST /api/admin/apikey", audit
        assert audit["entries"][0]["settings"] == ["API_KEY"], audit
        assert new_key not in str(audit)
    finally:
        restore(server, token, ["API_KEY"])
    until(lambda: server.http.get("/v1/models", headers=server.auth()).status_code == 200,
          "the environment's key is back")


def test_validation_errors_are_400_with_success_false(server: Gateway) -> None:
    token = server.login()
    before = settings_by_name(server, token)
    for path, body in [
        ("/api/config/generation", {"max_retries": 0}),
        ("/api/config/generation", {"image_timeout": "soon"}),
        ("/api/generation/timeout", {"image_timeout": 1}),
        ("/api/admin/config", {"error_ban_threshold": -1}),
        ("/api/admin/config", {}),
        ("/api/admin/apikey", {"new_api_key": ""}),
        ("/api/call-logic/config", {"call_mode": "fastest"}),
        ("/api/cache/config", {"timeout": -5}),
        ("/api/cache/config", {"base_url": "not a url"}),
        ("/api/cache/enabled", {"enabled": "yes"}),
        ("/api/token-refresh/enabled", {"enabled": True}),
    ]:
        r = server.http.post(path, json=body, headers=admin(server, token))
        assert r.status_code == 400, f"{path} {body}: {r.status_code} {r.text}"
        assert r.json()["success"] is False and r.json()["message"], r.text
    after = settings_by_name(server, token)
    assert [(n, s["value"]) for n, s in before.items()] == [(n, s["value"]) for n, s in after.items()]


def test_call_mode_cache_and_refresh_config(server: Gateway) -> None:
    token = server.login()
    h = admin(server, token)
    try:
        cl = ok_json(server.http.get("/api/call-logic/config", headers=h))["config"]
        assert cl == {**cl, "call_mode": "default", "polling_mode_enabled": False}, cl
        r = ok_json(server.http.post("/api/call-logic/config", headers=h, json={"call_mode": "polling"}))
        assert r["config"]["call_mode"] == "polling" and r["config"]["polling_mode_enabled"] is True, r
        assert settings_by_name(server, token)["SELECTION_STRATEGY"]["value"] == "round_robin"

        cache = ok_json(server.http.get("/api/cache/config", headers=h))["config"]
        assert set(cache) >= {"enabled", "timeout", "base_url", "effective_base_url"}, cache
        ok_json(server.http.post("/api/cache/enabled", headers=h, json={"enabled": True}))
        r = ok_json(server.http.post("/api/cache/config", headers=h,
                                     json={"timeout": 3600, "base_url": "https://cdn.example.test"}))
        assert r["config"] == {"enabled": True, "timeout": 3600, "base_url": "https://cdn.example.test",
                               "effective_base_url": "https://cdn.example.test"}, r
        r = ok_json(server.http.post("/api/cache/base-url", headers=h, json={"base_url": ""}))
        assert r["config"]["base_url"] == "" and r["config"]["effective_base_url"].startswith("http"), r
        listed = settings_by_name(server, token)
        assert (listed["MEDIA_CACHE"]["value"], listed["MEDIA_TTL"]["value"]) == ("true", "3600")
        assert listed["PUBLIC_BASE_URL"]["value"] is None or listed["PUBLIC_BASE_URL"]["source"] != "override"

        tr = ok_json(server.http.get("/api/token-refresh/config", headers=h))
        assert tr["success"] is True and tr["config"]["at_auto_refresh_enabled"] is True, tr
        ok_json(server.http.post("/api/token-refresh/enabled", headers=h, json={"enabled": False}))
    finally:
        restore(server, token, ["SELECTION_STRATEGY", "MEDIA_CACHE", "MEDIA_TTL", "PUBLIC_BASE_URL"])
