"""The operator's web console (/admin, /manage) in a real browser: Debian's Chromium driven by
Playwright for Python, against the native server and the worker under `wrangler dev`, each
with its own fake upstream (conftest.stack).

The walk: log in → add an account by its session token and see it in the table → generate an
image in the playground (the fake's result is on another origin: the console says so and loads
nothing from there) → turn MEDIA_CACHE on in the settings page → the next generation is served
from the gateway and the <img> loads → open its entry in the request log → log out. Screenshots
of every page at desktop (1280×800) and phone (390×844) width go to
`$CARGO_TARGET_DIR/console-screenshots/` (default `target/`). No request may leave the
gateway's origin.

Plus plain-HTTP checks of the console's routes and of the admin session on the API routes.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from conftest import ROOT, Gateway, make_png, ok_json, openai_error, stack

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "console-screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
IMAGE_MODEL = "gemini-3.1-flash-image-landscape"
VIDEO_MODEL = "veo_3_1_t2v_fast_landscape"
# Generous: the worker under wrangler dev on a busy 2-core machine.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/install-tools.sh` (Debian's chromium)",
                    pytrace=False)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(params=["native", "worker"], scope="module")
def console_gw(request) -> Iterator[Gateway]:
    """A gateway of its own (settings change here) with no account yet; the fake knows one."""
    with stack(request.param, f"console-{request.param}", account=False) as gw:
        gw.st = f"st-console-{secrets.token_hex(16)}"
        gw.email = f"console-{gw.kind}-{secrets.token_hex(3)}@example.com"
        gw.fake.add_account(gw.st, gw.email, name="Console Tester", tier="PAYGATE_TIER_TWO", credits=4200)
        yield gw


class Visit:
    """One browser context on one gateway: every request it makes is recorded, and dialogs
    (confirm) are accepted."""

    def __init__(self, browser: Browser, gw: Gateway, viewport: dict, label: str):
        self.gw = gw
        self.label = label
        self.context = browser.new_context(viewport=viewport, service_workers="block")
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: d.accept())
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # Script errors; the browser's own "Failed to load resource" lines for answers such
        # as 401 and 404, which the page handles, are not.
        self.page.on("console", lambda m: self.errors.append(m.text)
                     if m.type == "error" and not m.text.startswith("Failed to load resource") else None)

    def goto(self, path: str) -> None:
        self.page.goto(self.gw.base + path)

    def login(self, path: str = "/admin") -> None:
        self.goto(path)
        self.page.get_by_label("Username").fill("admin")
        self.page.get_by_label("Password").fill(self.gw.admin_password)
        self.page.get_by_role("button", name="Log in").click()
        expect(self.page.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()

    def open(self, page_name: str, heading: str) -> None:
        nav = self.page.get_by_role("navigation", name="Console pages")
        toggle = self.page.get_by_role("button", name="Menu")
        if toggle.is_visible():
            toggle.click()
        nav.get_by_role("link", name=page_name, exact=True).click()
        expect(self.page.get_by_role("heading", name=heading, exact=True)).to_be_visible()

    def shot(self, name: str) -> None:
        # No toast over the page, scrolled to the top.
        self.page.evaluate("document.getElementById('toast').className = 'toast'; window.scrollTo(0, 0)")
        self.page.wait_for_timeout(150)  # fonts, the scroll
        # The whole page, cut at three screens (the settings page is long).
        height = min(self.page.evaluate("document.documentElement.scrollHeight"),
                     3 * self.page.viewport_size["height"])
        self.page.screenshot(path=str(SHOTS / f"{self.gw.kind}-{name}-{self.label}.png"), full_page=True,
                             clip={"x": 0, "y": 0, "width": self.page.viewport_size["width"], "height": height})

    def token(self) -> str | None:
        return self.page.evaluate("localStorage.getItem('adminToken')")

    def foreign_requests(self) -> list[str]:
        origin = urlsplit(self.gw.base).netloc
        return [u for u in self.requests
                if not u.startswith(("data:", "blob:")) and urlsplit(u).netloc != origin]

    def close(self) -> None:
        self.context.close()


def ensure_account(gw: Gateway) -> None:
    """The fake's account in the gateway (the walkthrough adds it through the page; a test run
    alone adds it here)."""
    gw.admin_token = gw.login()
    if not any(a.get("email") == gw.email for a in gw.accounts()):
        ok_json(gw.add_token(gw.st))


def generate_in_playground(v: Visit, prompt: str, *, kind: str = "image", model: str = IMAGE_MODEL,
                           reference: bytes | None = None) -> None:
    page = v.page
    v.open("Playground", "Playground")
    page.get_by_label("Kind").select_option(kind)
    page.get_by_label("Model").select_option(model)
    page.get_by_label("Prompt").fill(prompt)
    if reference is not None:
        page.get_by_label("Reference images (optional)").set_input_files(
            files=[{"name": "reference.png", "mimeType": "image/png", "buffer": reference}])
        expect(page.get_by_role("img", name="attached image 1")).to_be_visible()
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#play-status")).to_have_text("Done.", timeout=120_000)


def test_console_walkthrough(browser: Browser, console_gw: Gateway) -> None:
    gw = console_gw
    v = Visit(browser, gw, DESKTOP, "desktop")
    page = v.page
    try:
        # The page and its policy.
        resp = page.goto(gw.base + "/admin")
        assert resp is not None and resp.status == 200
        csp = resp.headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "connect-src 'self'" in csp, csp
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        v.shot("login")

        # A wrong password is refused on the page.
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")

        v.login()
        assert v.token() and re.fullmatch(r"[0-9a-f]{64}", v.token())

        # Add the account by its session token (an empty pool opens the form at once): it
        # shows in the table, active, with its credits.
        expect(page.get_by_role("button", name="New account")).to_have_attribute("aria-expanded", "true")
        page.get_by_label("Session token").fill(gw.st)
        page.get_by_label("Remark").fill("added in the browser")
        page.get_by_role("button", name="Add account").click()
        row = page.get_by_role("row").filter(has_text=gw.email)
        expect(row).to_be_visible()
        expect(row).to_contain_text("active")
        expect(row).to_contain_text("added in the browser")
        expect(row).to_contain_text("4,200")
        assert gw.st not in page.content(), "the session token is shown"
        v.shot("accounts")

        # Edit it: a remark and an image limit, saved through the dialog.
        row.get_by_role("button", name=f"Edit {gw.email}").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("Remark").fill("edited in the browser")
        dialog.get_by_label("Image slots (-1: no limit)").fill("3")
        dialog.get_by_role("button", name="Save").click()
        expect(dialog).to_be_hidden()
        expect(row).to_contain_text("edited in the browser")
        expect(row).to_contain_text("image 0/3")

        # Export to a file, and import it back: the account is updated, not added twice.
        with page.expect_download() as dl:
            page.get_by_role("button", name="Export to file").click()
        exported = json.loads(Path(dl.value.path()).read_text())
        assert [a["email"] for a in exported] == [gw.email], exported
        page.locator("#import-file").set_input_files(
            files=[{"name": "accounts.json", "mimeType": "application/json",
                    "buffer": json.dumps(exported).encode()}])
        expect(page.get_by_role("status")).to_contain_text("Import finished: 0 added, 1 updated, 0 failed.")
        expect(page.get_by_role("row").filter(has_text=gw.email)).to_have_count(1)

        # Before MEDIA_CACHE: the result is the fake's URL, another origin, which the page
        # shows as a link and does not load.
        generate_in_playground(v, "a lighthouse before the cache", reference=make_png(16, 9, (200, 40, 40)))
        expect(page.locator("#play-progress")).not_to_be_empty()
        result = page.locator("#play-result")
        expect(result).to_contain_text("another origin")
        assert page.locator("#play-image").count() == 0
        link = result.get_by_role("link", name="Open the image").get_attribute("href")
        assert link and not link.startswith(gw.base), link
        v.shot("playground-foreign")

        # Settings: inline validation, the server's refusal next to its field, then a change.
        v.open("Settings", "Settings")
        retries = page.locator("#set-FLOW_MAX_RETRIES")
        retries.fill("0")
        expect(page.locator("#set-FLOW_MAX_RETRIES-err")).to_have_text("Between 1 and 20.")
        retries.fill("3")
        expect(page.locator("#set-FLOW_MAX_RETRIES-err")).to_have_text("")
        page.locator("#set-PROXY_URL").fill("ftp://not a proxy")
        page.get_by_role("button", name="Save PROXY_URL").click()
        expect(page.locator("#set-PROXY_URL-err")).not_to_have_text("")
        page.locator("#set-MEDIA_CACHE").select_option("true")
        page.get_by_role("button", name="Save MEDIA_CACHE").click()
        setting = page.locator(".setting[data-name='MEDIA_CACHE']")
        expect(setting).to_contain_text("set here")
        v.shot("settings")
        if gw.kind == "worker":
            time.sleep(1.1)  # every isolate reads it within a second

        # The next request honours it: the image comes from this gateway and loads.
        generate_in_playground(v, "a lighthouse in fog")
        img = page.locator("#play-image")
        expect(img).to_be_visible()
        src = img.get_attribute("src") or ""
        assert src.startswith(gw.base + "/media/"), src
        page.wait_for_function("document.getElementById('play-image').complete")
        assert page.evaluate("document.getElementById('play-image').naturalWidth") > 0
        v.shot("playground")

        # Its entry in the request log (where this gateway keeps one).
        v.open("Logs", "Request log")
        has_log = gw.http.get("/api/logs?limit=1", headers={"Authorization": f"Bearer {v.token()}"}).status_code != 404
        if has_log:
            first = page.get_by_role("row").filter(has_text=IMAGE_MODEL).first
            expect(first).to_be_visible()
            v.shot("logs")
            first.get_by_role("link").click()
            expect(page.get_by_role("heading", name=re.compile(r"^Request "))).to_be_visible()
            expect(page.locator("#log-request")).to_contain_text("lighthouse in fog")
            expect(page.locator("#log-request")).not_to_contain_text("data:image")  # no image bytes
            v.shot("log-entry")
            # Filters: both generations succeeded, so 2xx lists them and 4xx nothing.
            page.get_by_role("link", name="← Back to the log").click()
            page.get_by_label("Status").select_option("4xx")
            page.get_by_role("button", name="Apply filters").click()
            expect(page.get_by_text("No requests match.")).to_be_visible()
            page.get_by_label("Status").select_option("2xx")
            page.get_by_label("Model").fill(IMAGE_MODEL)
            page.get_by_role("button", name="Apply filters").click()
            expect(page.get_by_role("row").filter(has_text=IMAGE_MODEL)).to_have_count(2)
        else:
            expect(page.get_by_text("This gateway keeps no request log.")).to_be_visible()
            v.shot("logs")

        v.open("Stats", "Stats")
        expect(page.locator(".card").first).to_be_visible()
        if has_log:
            # Today's two images, in the cards, the charts and the account's row.
            expect(page.locator(".card").filter(has_text="Images today")).to_contain_text("2")
            expect(page.locator("svg.chart")).to_have_count(2)
            expect(page.get_by_role("row").filter(has_text=gw.email)).to_be_visible()
        v.shot("stats")
        v.open("Password", "Change password")
        v.shot("password")
        # The server's refusal shows on the page (a wrong current password changes nothing).
        page.get_by_label("Current password").fill("certainly-not-it")
        page.get_by_label("New password", exact=True).fill("a new password 1")
        page.get_by_label("New password again").fill("a new password 2")
        page.get_by_role("button", name="Change password").click()
        expect(page.locator("#" + page.get_by_label("New password again").get_attribute("id") + "-err")).to_have_text(
            "The two new passwords differ.")
        page.get_by_label("New password again").fill("a new password 1")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("alert")).to_have_text("The old password is wrong.")

        # Log out: back to the login form, the token gone and refused by the gateway.
        token = v.token()
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        assert v.token() is None
        r = gw.http.get("/api/tokens", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, r.text

        assert not v.foreign_requests(), v.foreign_requests()
        assert not v.errors, v.errors
    finally:
        v.close()


def test_playground_video(browser: Browser, console_gw: Gateway) -> None:
    """A video from the playground: the job is polled, then its MP4 (fetched with the session,
    from this gateway) plays in a <video> from a blob: URL."""
    gw = console_gw
    ensure_account(gw)
    v = Visit(browser, gw, DESKTOP, "video")
    page = v.page
    try:
        v.login()
        with page.expect_response(lambda r: r.url.endswith("/content"), timeout=120_000) as content:
            generate_in_playground(v, "waves on a beach", kind="video", model=VIDEO_MODEL)
        resp = content.value
        assert resp.status == 200 and resp.url.startswith(gw.base + "/v1/videos/"), resp.url
        # The same file as the API key gets (the worker streams it without a length).
        mp4 = gw.http.get(urlsplit(resp.url).path, headers=gw.auth())
        assert mp4.status_code == 200 and mp4.content[4:8] == b"ftyp", mp4.content[:16]
        size = len(mp4.content)
        expect(page.locator("#play-progress")).to_contain_text("completed 100%")
        video = page.locator("#play-video")
        expect(video).to_be_visible()
        assert (video.get_attribute("src") or "").startswith("blob:")
        # The whole file reached the page.
        expect(page.get_by_role("link", name=re.compile("^Download the video"))).to_have_text(
            f"Download the video ({size / 1024:.1f} KiB)")
        v.shot("playground-video")
        assert not v.foreign_requests(), v.foreign_requests()
        assert not v.errors, v.errors
    finally:
        v.close()


def test_console_at_phone_width(browser: Browser, console_gw: Gateway) -> None:
    """Every page at 390 px: the menu collapses behind a button, tables become cards, and
    nothing needs the page to scroll sideways."""
    gw = console_gw
    v = Visit(browser, gw, PHONE, "phone")
    page = v.page
    try:
        v.login()
        toggle = page.get_by_role("button", name="Menu")
        expect(toggle).to_be_visible()
        expect(page.get_by_role("link", name="Settings", exact=True)).to_be_hidden()
        v.shot("accounts")
        for name, heading, shot in [("Settings", "Settings", "settings"), ("Logs", "Request log", "logs"),
                                    ("Stats", "Stats", "stats"), ("Playground", "Playground", "playground"),
                                    ("Password", "Change password", "password")]:
            v.open(name, heading)
            page.wait_for_load_state("networkidle")
            v.shot(shot)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} scrolls sideways by {overflow}px at phone width"
        assert not v.foreign_requests(), v.foreign_requests()
        assert not v.errors, v.errors
    finally:
        v.close()


def test_manage_keeps_the_session_where_the_extension_looks(browser: Browser, console_gw: Gateway) -> None:
    """/manage (the original's path) logs in into localStorage.adminToken, which /admin on the
    same origin then uses too; the keyboard alone reaches the login form."""
    gw = console_gw
    v = Visit(browser, gw, DESKTOP, "manage")
    page = v.page
    try:
        v.goto("/manage")
        expect(page.get_by_label("Username")).to_be_focused()
        page.keyboard.type("admin")
        page.keyboard.press("Tab")
        page.keyboard.type(gw.admin_password)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()
        token = v.token()
        assert token and re.fullmatch(r"[0-9a-f]{64}", token)
        # The token is a live admin session.
        ok_json(gw.http.get("/api/plugin/config", headers={"Authorization": f"Bearer {token}"}))
        v.goto("/admin/#/settings")
        expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
        assert not v.foreign_requests(), v.foreign_requests()
    finally:
        v.close()


# ---------------------------------------------------------------------------------------------
# Plain HTTP: the console's routes and the admin session on the API routes
# ---------------------------------------------------------------------------------------------

def test_console_routes(server: Gateway) -> None:
    gw = server
    for path in ("/admin", "/admin/", "/manage", "/manage/"):
        r = gw.http.get(path)
        assert r.status_code == 200, (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["cache-control"] == "no-cache"
        assert "access-control-allow-origin" not in r.headers
        assert "console.js" in r.text and "<script>" not in r.text
    for path, kind in (("/admin/console.js", "text/javascript"), ("/manage/console.css", "text/css")):
        r = gw.http.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind), (path, r.headers)
        etag = r.headers["etag"]
        again = gw.http.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"", (path, again.status_code)
        assert gw.http.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    assert gw.http.get("/admin/console.js").content == gw.http.get("/manage/console.js").content
    assert gw.http.get("/admin/nothing-here").status_code == 404
    assert gw.http.post("/admin", content=b"").status_code == 405


def test_admin_session_on_api_routes(server: Gateway) -> None:
    """The console calls /v1/... with its admin session: accepted as the root key while the
    session lives, 401 in the route's dialect once it has ended."""
    gw = server
    session = gw.login()
    bearer = {"Authorization": f"Bearer {session}"}
    models = ok_json(gw.http.get("/v1/models", headers=bearer))
    assert any(m["id"] == IMAGE_MODEL for m in models["data"])
    ok_json(gw.http.get("/v1beta/models", headers=bearer))
    # Only as a bearer header: the same token as ?key= is not a session.
    openai_error(gw.http.get(f"/v1/models?key={session}"), 401)
    ok_json(gw.http.post("/api/logout", headers=bearer))
    err = openai_error(gw.http.get("/v1/models", headers=bearer), 401)
    assert "session" in err["message"], err
    r = gw.http.get("/v1beta/models", headers=bearer)
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED", r.text
    # A made-up session-shaped bearer is no better.
    forged = {"Authorization": f"Bearer {secrets.token_hex(32)}"}
    openai_error(gw.http.get("/v1/models", headers=forged), 401)
    r = gw.http.post("/v1/chat/completions", headers=forged,
                     json={"model": IMAGE_MODEL, "messages": [{"role": "user", "content": "x"}]})
    openai_error(r, 401)
