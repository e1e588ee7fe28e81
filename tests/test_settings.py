"""Runtime settings (GET/PATCH /api/settings): a change is honoured by the very next request,
on both servers, without a restart; invalid values are refused and change nothing; secrets are
listed masked.
"""

from __future__ import annotations


from conftest import Gateway, ok_json, openai_error

MODEL = "gemini-3.1-flash-image-landscape"
PROMPT = "a lighthouse at dusk over a calm sea"  # 36 characters


def chat(gw: Gateway) -> object:
    return gw.chat({"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]})


def settings(gw: Gateway, token: str) -> dict:
    return ok_json(gw.http.get("/api/settings", headers={"Authorization": f"Bearer {token}"}))


def change(gw: Gateway, token: str, values: dict, **extra) -> object:
    return gw.http.patch("/api/settings", json={"values": values, **extra},
                         headers={"Authorization": f"Bearer {token}"})


def test_a_setting_change_is_honoured_by_the_next_request(server: Gateway) -> None:
    token = server.login()
    before = settings(server, token)
    by_name = {s["name"]: s for s in before["settings"]}
    # Secrets are never listed in clear.
    assert by_name["API_KEY"]["secret"] is True
    assert by_name["API_KEY"]["value"] != server.api_key
    assert by_name["MAX_PROMPT_CHARS"]["source"] in ("default", "environment")
    ok_json(chat(server))
    try:
        version = ok_json(change(server, token, {"MAX_PROMPT_CHARS": "10"}))["version"]
        assert version == before["version"] + 1
        # The next request, with no restart, already uses the new limit.
        err = openai_error(chat(server), 400)
        assert "10" in err["message"], err
        listed = {s["name"]: s for s in settings(server, token)["settings"]}
        assert listed["MAX_PROMPT_CHARS"] == {**listed["MAX_PROMPT_CHARS"], "value": "10", "source": "override"}

        # Invalid values and unknown names are refused and change nothing.
        r = change(server, token, {"MAX_PROMPT_CHARS": "lots"})
        assert r.status_code == 400 and r.json()["success"] is False, r.text
        assert "MAX_PROMPT_CHARS" in r.json()["message"], r.text
        r = change(server, token, {"NO_SUCH_SETTING": "1"})
        assert r.status_code == 400, r.text
        # A stale version is a conflict, not a silent overwrite.
        r = change(server, token, {"MAX_PROMPT_CHARS": "20"}, version=before["version"])
        assert r.status_code == 409 and r.json()["success"] is False, r.text
        assert settings(server, token)["version"] == version
        openai_error(chat(server), 400)
    finally:
        # Removing the override goes back to the environment's value, again at once.
        ok_json(change(server, token, {"MAX_PROMPT_CHARS": None}))
    ok_json(chat(server))


def test_settings_need_an_admin_session(server: Gateway) -> None:
    assert server.http.get("/api/settings").status_code == 401
    r = server.http.patch("/api/settings", json={"values": {"MAX_PROMPT_CHARS": "1"}})
    assert r.status_code == 401
