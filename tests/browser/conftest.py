"""Browser journeys: one Chromium per session, a new context per test, a live server per test.

Chromium comes from the system (Debian's `chromium`), never from Playwright's downloads:
PORTAL_CHROMIUM names the executable, /usr/bin/chromium by default. Without it the journeys
are skipped, unless PORTAL_REQUIRE_BROWSER=1 (CI), which turns the skip into a failure.
A failed journey leaves a full-page screenshot in test-artifacts/.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

CHROMIUM = os.environ.get("PORTAL_CHROMIUM") or "/usr/bin/chromium"
REQUIRE_BROWSER = os.environ.get("PORTAL_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 10_000


def _unavailable(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"PORTAL_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(f"browser journeys skipped: {reason} (set PORTAL_CHROMIUM or install chromium)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item, so fixtures can tell that the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium executable at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@dataclass
class LiveServer:
    app: Flask
    url: str


@pytest.fixture
def live_config() -> dict[str, object]:
    """Extra settings of the live server; a test module overrides it (e.g. its SMTP server)."""
    return {}


@pytest.fixture
def live_server(make_app, live_config: dict[str, object]) -> Iterator[LiveServer]:
    """The portal on this test's database, served by werkzeug in a background thread.

    CSRF protection is on, unlike in tests/web: the browser submits the real forms.
    """
    app = make_app(WTF_CSRF_ENABLED=True, **live_config)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="live-server", daemon=True
    )
    thread.start()
    try:
        yield LiveServer(app=app, url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class BrowserErrors:
    """JavaScript errors and console errors (CSP violations, failed loads) seen by the page."""

    messages: list[str] = field(default_factory=list)
    checked: bool = False

    def on_console(self, message: ConsoleMessage) -> None:
        # Every error counts, a failed load (the favicon included) as much as a CSP violation.
        if message.type == "error":
            url = message.location.get("url", "")
            self.messages.append(f"console: {message.text} ({url})")

    def on_page_error(self, error: Exception) -> None:
        self.messages.append(f"pageerror: {error}")

    def assert_none(self) -> None:
        self.checked = True
        if self.messages:
            pytest.fail("the browser reported errors:\n" + "\n".join(self.messages))


@pytest.fixture
def browser_errors() -> BrowserErrors:
    return BrowserErrors()


def _artifact_name(nodeid: str) -> str:
    """tests/browser/test_x.py::test_y[p] -> test_x.test_y-p.png"""
    name = nodeid.removeprefix("tests/browser/").replace(".py::", ".").replace("::", ".")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:180] + ".png"


@pytest.fixture
def page(
    request: pytest.FixtureRequest,
    browser: Browser,
    live_server: LiveServer,
    browser_errors: BrowserErrors,
) -> Iterator[Page]:
    """A page in a fresh context (no cookies), Japanese browser, Tokyo time zone."""
    context = browser.new_context(
        base_url=live_server.url,
        locale="ja-JP",
        timezone_id="Asia/Tokyo",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("console", browser_errors.on_console)
    page.on("pageerror", browser_errors.on_page_error)
    yield page
    report = getattr(request.node, "report_call", None)
    failed = report is not None and report.failed
    unchecked = bool(browser_errors.messages) and not browser_errors.checked
    try:
        if failed or unchecked:
            _screenshot(page, request)
        if failed and browser_errors.messages:
            print("the browser reported errors:", *browser_errors.messages, sep="\n")
    finally:
        context.close()
    if unchecked and not failed:
        pytest.fail("the browser reported errors:\n" + "\n".join(browser_errors.messages))


def _screenshot(page: Page, request: pytest.FixtureRequest) -> None:
    directory = request.config.rootpath / "test-artifacts"
    directory.mkdir(exist_ok=True)
    path = directory / _artifact_name(request.node.nodeid)
    try:
        page.screenshot(path=str(path), full_page=True)
    except Exception as exc:  # the test's own failure is what matters
        print(f"no screenshot: {exc}")
    else:
        print(f"screenshot: {path}")
