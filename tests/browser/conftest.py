"""Browser journeys: one Chromium per session, a new context per test, a live server per test.

Chromium comes from the system (Debian's `chromium`), never from Playwright's downloads:
PORTAL_CHROMIUM names the executable, /usr/bin/chromium by default. Without it the journeys
are skipped, unless PORTAL_REQUIRE_BROWSER=1 (CI), which turns the skip into a failure.
A failed journey leaves a full-page screenshot in test-artifacts/.

Every page a journey shows is checked with axe-core (issue 11), and any violation, of any
impact, fails the test with the page, the rule and the element; so does HTML a validator
refuses that axe-core does not look at (a repeated id, an `hx-` attribute, a required select
without a placeholder, a meter above its maximum, a label for nothing). Each document is
checked once parsed and after each htmx swap (a navigation away waits for the
result), and the last one again as the test leaves it.
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
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Page,
        Request,
        Route,
    )

CHROMIUM = os.environ.get("PORTAL_CHROMIUM") or "/usr/bin/chromium"
REQUIRE_BROWSER = os.environ.get("PORTAL_REQUIRE_BROWSER") == "1"
CHROMIUM_ARGS = [
    # A camera that needs no device and no prompt (the I-NET photo page's getUserMedia).
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
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


# axe-core as axe-playwright-python (the test extra) ships it, put into every document before
# the page's own scripts by the DevTools protocol, which the page's CSP does not govern
# (script-src 'self' stays as it is). In the main frame of a page of the portal it runs when
# the document is parsed and after each htmx swap, one run after the other, and reports
# through a binding: Playwright cannot evaluate in a page whose navigation is waiting, but
# the page's own scripts still run then, so a navigation can wait for the report.
_AXE_RUNNER = """
(() => {
  if (window !== window.top || !location.protocol.startsWith("http")) return;
  const doc = Math.random().toString(36).slice(2) + Date.now().toString(36);
  const report = window.__portalAxe;
  let chain = Promise.resolve();
  // What a validator would refuse and axe-core does not look at (issue 11).
  const htmlProblems = () => {
    const found = [];
    const add = (id, help, element) => found.push({
      id, impact: "invalid HTML", help, url: "https://html.spec.whatwg.org/",
      nodes: [{target: element.tagName.toLowerCase() + (element.id ? "#" + element.id : ""),
               html: element.outerHTML, summary: ""}],
    });
    const ids = new Set();
    for (const element of document.querySelectorAll("[id]")) {
      if (ids.has(element.id)) add("duplicate-id", `id "${element.id}" is not unique`, element);
      ids.add(element.id);
    }
    for (const element of document.querySelectorAll("*")) {
      const name = element.getAttributeNames().find((n) => n.startsWith("hx-"));
      if (name) add("hx-attribute", `${name} is not valid HTML: write data-${name}`, element);
    }
    for (const select of document.querySelectorAll("select[required]:not([multiple])")) {
      const first = select.options[0];
      if (select.size <= 1 && !(first && first.value === "" && first.parentElement === select)) {
        add("required-select", "a required select needs an empty first option", select);
      }
    }
    for (const meter of document.querySelectorAll("meter[value]")) {
      const max = Number(meter.getAttribute("max") ?? 1);
      if (Number(meter.getAttribute("value")) > max) {
        add("meter-value", "a meter's value is above its maximum", meter);
      }
    }
    for (const label of document.querySelectorAll("label[for]")) {
      if (!document.getElementById(label.htmlFor)) {
        add("label-for", `label for="${label.htmlFor}" names no element`, label);
      }
    }
    return found;
  };
  const run = (reason) => {
    report({event: "run", doc, reason});
    chain = chain.then(() => axe.run(document, {resultTypes: ["violations"]})).then(
      (results) => report({
        event: "done", doc, reason, path: location.pathname + location.search,
        title: document.title, width: innerWidth,
        violations: results.violations.map((v) => ({
          id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
          nodes: v.nodes.map((n) => ({
            target: n.target.join(" "), html: n.html, summary: n.failureSummary || "",
          })),
        })).concat(htmlProblems()),
      }),
      (error) => report({event: "error", doc, message: String(error)}),
    ).catch(() => {});  // a report that failed must not stop the next runs
    return chain;
  };
  report({event: "start", doc});
  window.__portalAxeRun = run;
  // Not "load": a test may leave a page before its icons are in, and a document left while
  // loading never fires it. The stylesheet is in by now (deferred scripts wait for it); a
  // click or a form sent before then (it may lead away) checks the page as it stands.
  let started = false;
  const first = (reason) => { if (!started) { started = true; run(reason); } };
  document.addEventListener("DOMContentLoaded", () => first("loaded"));
  document.addEventListener("click", () => first("click"), true);
  document.addEventListener("submit", () => first("submit"), true);
  document.addEventListener("htmx:afterSettle", () => run("htmx"));
})();
"""
# The last check of a test, on the page as the test left it (no navigation is waiting then).
_AXE_FINAL = """async () => {
  if (window.__portalAxeRun) await window.__portalAxeRun("end of test");
}"""
AXE_WAIT_MS = 8_000  # less than an action's timeout, so a slow check is told as such
AXE_START_MS = 1_000  # how long a page left before any check may take to say one started


@dataclass
class AxeCheck:
    """axe-core on every document a journey shows; what it found, page by page.

    A document of the main frame announces itself ("start"), each run ("run") and each
    result ("done"); a navigation away from it waits until it has been checked once since it
    loaded and no run is under way."""

    page: Page | None = None
    violations: dict[tuple[str, str, str], str] = field(default_factory=dict)
    pages: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    current: str | None = None
    pending: dict[str, int] = field(default_factory=dict)
    done: dict[str, int] = field(default_factory=dict)

    def install(self, context: BrowserContext, page: Page) -> None:
        from axe_playwright_python.base import AXE_SCRIPT

        self.page = page
        context.expose_binding("__portalAxe", self._on_report)
        context.add_init_script(AXE_SCRIPT + "\n" + _AXE_RUNNER)
        context.route("**/*", self._before_navigation)

    def _on_report(self, source: dict, message: dict) -> None:
        if source.get("frame") is not getattr(self.page, "main_frame", None):
            return
        doc, event = message["doc"], message["event"]
        if event == "start":
            self.current = doc
        elif event == "run":
            self.pending[doc] = self.pending.get(doc, 0) + 1
        else:
            self.pending[doc] = self.pending.get(doc, 1) - 1
            self.done[doc] = self.done.get(doc, 0) + 1
            if event == "error":
                print(f"axe-core could not check a page: {message['message']}")
            else:
                self._record(message)

    def _record(self, result: dict) -> None:
        path = result["path"]
        if path not in self.pages:
            self.pages.append(path)
        where = f"axe-core on {path} ({result['title']!r}, {result['width']} px wide)"
        for violation in result["violations"]:
            for node in violation["nodes"]:
                key = (path, violation["id"], node["target"])
                if key in self.violations:
                    continue
                html = re.sub(r"\s+", " ", node["html"])[:240]
                summary = re.sub(r"\s+", " ", node["summary"])[:400]
                self.violations[key] = (
                    f"{where}: [{violation['impact']}] {violation['id']}: {violation['help']}"
                    f" ({violation['url']})\n    at {node['target']}: {html}\n        {summary}"
                )

    def _checked(self) -> bool:
        doc = self.current
        return doc is None or (self.done.get(doc, 0) > 0 and self.pending.get(doc, 0) <= 0)

    def _started(self) -> bool:
        doc = self.current
        return doc is None or self.done.get(doc, 0) > 0 or self.pending.get(doc, 0) > 0

    def _wait_until(self, condition, limit_ms: int) -> bool:
        assert self.page is not None
        waited = 0
        while not condition() and waited < limit_ms:
            self.page.wait_for_timeout(20)
            waited += 20
        return condition()

    def wait(self) -> None:
        """Until the current document has been checked once and no run is under way. A
        document left before it was parsed (a test that goes on at once) was never shown:
        it is told, not failed; a check that started and gave no result fails the test."""
        assert self.page is not None
        doc = self.current or ""
        if not self._wait_until(self._started, AXE_START_MS):
            print(f"axe-core: {self.page.url} was left before it was parsed; not checked")
        elif not self._wait_until(self._checked, AXE_WAIT_MS):
            self.unchecked.append(
                f"{self.page.url} (runs under way {self.pending.get(doc, 0)},"
                f" done {self.done.get(doc, 0)}, waited {AXE_WAIT_MS} ms)"
            )

    def _before_navigation(self, route: Route, request: Request) -> None:
        """The document about to be replaced is checked before it goes."""
        try:
            if request.is_navigation_request() and request.frame == self.page.main_frame:
                self.wait()
        finally:
            route.fallback()

    def check_now(self) -> None:
        """Check the page as it is now (the end of a test), and wait for every result."""
        from playwright.sync_api import Error

        assert self.page is not None
        try:
            self.wait()
            self.page.evaluate(_AXE_FINAL)  # resolves once its result is recorded
        except Error as exc:  # the page closed: nothing left to check
            print(f"axe-core: no last check of {self.page.url}: {exc.message.splitlines()[0]}")

    def report(self) -> list[str]:
        return list(self.violations.values())


@dataclass
class BrowserErrors:
    """JavaScript errors and console errors (CSP violations, failed loads) seen by the page,
    and what axe-core found on its documents."""

    messages: list[str] = field(default_factory=list)
    checked: bool = False
    reported: bool = False
    axe: AxeCheck = field(default_factory=AxeCheck)

    def on_console(self, message: ConsoleMessage) -> None:
        # Every error counts, a failed load (the favicon included) as much as a CSP violation.
        if message.type == "error":
            url = message.location.get("url", "")
            self.messages.append(f"console: {message.text} ({url})")

    def on_page_error(self, error: Exception) -> None:
        self.messages.append(f"pageerror: {error}")

    def assert_none(self) -> None:
        """No browser error so far, and no accessibility violation on any page shown (the
        current one is checked now)."""
        self.checked = True
        if self.axe.page is not None:
            self.axe.check_now()
        failures = self.report()
        if failures:
            self.reported = True
            pytest.fail(failures, pytrace=False)

    def report(self) -> str:
        parts = []
        if self.messages:
            parts.append("the browser reported errors:\n" + "\n".join(self.messages))
        if self.axe.violations:
            parts.append(
                f"axe-core found {len(self.axe.violations)} violation(s):\n"
                + "\n".join(self.axe.report())
            )
        if self.axe.unchecked:
            parts.append("pages axe-core gave no result for:\n" + "\n".join(self.axe.unchecked))
        return "\n".join(parts)


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
    axe = browser_errors.axe
    axe.install(context, page)
    yield page
    report = getattr(request.node, "report_call", None)
    failed = report is not None and report.failed
    if not failed:
        axe.check_now()  # the last page, when the test did not end with assert_none()
    # Browser errors after assert_none() are not the test's; a violation always is.
    unchecked = bool(axe.violations or axe.unchecked) or (
        bool(browser_errors.messages) and not browser_errors.checked
    )
    problems = browser_errors.report()
    try:
        if failed or unchecked:
            _screenshot(page, request)
        if failed and problems and not browser_errors.reported:
            print(problems)
    finally:
        context.close()
    if unchecked and not failed:
        pytest.fail(problems, pytrace=False)


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
