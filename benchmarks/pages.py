"""Benchmark of the signed-in pages against a ceiling, on gunicorn and PostgreSQL (issue 15).

    .venv/bin/python benchmarks/pages.py \
        [--database-url postgresql://postgres@127.0.0.1:5432/bench_pages] \
        [--duration 5] [--warmup 1] [--rounds 3] [--concurrency 16] [--workers 2] \
        [--loader auto|wrk|python] [--keep] [--reuse] [--profile [DIR]] [--strict]

1. Recreates the database (its name must contain "bench") with the migrations and fills it
   (benchmarks/_world.py): a background of 2,000 organisations and 10,000 contracts, an
   organisation whose administrator has 1 contract, one whose administrator has 100, daily
   usage readings, six monthly invoice runs and the PDFs of the two organisations' invoices.
2. Starts the portal as in production (`gunicorn --workers 2 'wsgi:app'`, PORTAL_ENV=production,
   rate limits on in Redis) and, with the same settings, a CEILING app: one primary-key read of
   a row with SQLAlchemy and a Jinja page, no sign-in: what this machine and stack give at best.
3. Signs the two administrators in (POST /login with the CSRF token; the session cookie kept)
   and measures each page with `--concurrency` connections for `--duration` seconds after a
   `--warmup`, in `--rounds` interleaved rounds, with wrk where installed (a generated Lua
   script sends the cookie and counts every answer other than 200 as an error), else with
   Python threads (http.client).
4. Prints, per page, the median round: requests per second, p50 and p99 in ms, errors (all
   rounds) and the ratio to the ceiling's requests per second, with the SQL statements one
   request of the page sends (counted in this process); then the targets of issue 15:
   the contract page and the home page at 0.4 of the ceiling or more, /contracts with 100
   contracts at most twice the p50 of /contracts with 1.

Exits 0 when the run worked, whatever the figures (--strict: 1 when a target is missed or a
page answered an error), 2 when the run itself failed (no sign-in, a page not answering).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import _world  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/bench_pages"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"

# The targets of issue 15.
CEILING_SHARE_TARGET = 0.4  # contract page and home page: at least this share of the ceiling
CONTRACTS_P50_FACTOR = 2.0  # /contracts with 100 contracts: p50 at most this times with 1


# --- the ceiling: what one row and one template cost on this stack -------------------------

CEILING_TEMPLATE = """<!doctype html>
<html lang="ja">
<head><meta charset="utf-8"><title>{{ row.legal_name }}</title></head>
<body>
<main>
  <h1>{{ row.legal_name }}</h1>
  <dl>
    <dt>ID</dt><dd>{{ row.id }}</dd>
    <dt>Address</dt><dd>{{ row.address }}</dd>
    <dt>Billing</dt><dd>{{ row.billing_email }}</dd>
  </dl>
</main>
</body>
</html>
"""


def ceiling_app():
    """Gunicorn's `pages:ceiling_app()`: GET /row/<id> reads one organisation by primary key
    (Flask-SQLAlchemy, the portal's engine options) and renders a small Jinja template."""
    from flask import Flask, abort, render_template
    from flask_sqlalchemy import SQLAlchemy
    from jinja2 import DictLoader

    from portal.config import Config

    class Base(DeclarativeBase):
        pass

    ceiling_db = SQLAlchemy(model_class=Base)

    class Row(ceiling_db.Model):
        __tablename__ = "organisations"
        id: Mapped[int] = mapped_column(primary_key=True)
        legal_name: Mapped[str] = mapped_column(sa.String(200))
        address: Mapped[str] = mapped_column(sa.String(300))
        billing_email: Mapped[str] = mapped_column(sa.String(254))

    config = Config()  # PORTAL_DATABASE_URL and the engine options, as the portal reads them
    app = Flask("ceiling")
    app.config["SQLALCHEMY_DATABASE_URI"] = config.SQLALCHEMY_DATABASE_URI
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = config.SQLALCHEMY_ENGINE_OPTIONS
    app.jinja_loader = DictLoader({"row.html": CEILING_TEMPLATE})
    ceiling_db.init_app(app)

    @app.get("/row/<int:row_id>")
    def row(row_id: int):
        found = ceiling_db.session.get(Row, row_id)
        if found is None:
            abort(404)
        return render_template("row.html", row=found)

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app


# --- a browser: the session cookie, CSRF token and forwarded headers -----------------------


class Browser:
    """One person's browser behind the TLS proxy: keeps the session cookie itself."""

    def __init__(self, port: int, address: str) -> None:
        self.port = port
        self.address = address
        self.cookie: str | None = None

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {
            "Host": f"127.0.0.1:{self.port}",
            "User-Agent": "bench-pages",
            "Accept-Language": "ja",
            "X-Forwarded-For": self.address,
            "X-Forwarded-Proto": "https",
        }
        if self.cookie:
            headers["Cookie"] = f"{_world.SESSION_COOKIE}={self.cookie}"
        return headers | (extra or {})

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, **extra: str
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = self.headers(extra)
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            answer = conn.getresponse()
            content = answer.read()
        finally:
            conn.close()
        for value in answer.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            if name == _world.SESSION_COOKIE:
                cookie = rest.split(";", 1)[0]
                self.cookie = cookie or None
        return answer.status, answer.headers, content

    def sign_in(self, email: str) -> None:
        status, _headers, page = self.request("GET", "/login")
        match = _world.CSRF_INPUT.search(page.decode())
        if status != 200 or match is None:
            raise RuntimeError(f"GET /login answered {status} without a CSRF token")
        status, headers, _page = self.request(
            "POST",
            "/login",
            {"email": email, "password": _world.PASSWORD, "csrf_token": match.group(1)},
            Referer=f"https://127.0.0.1:{self.port}/login",  # Flask-WTF checks it over HTTPS
        )
        if status != 302 or headers.get("Location") != "/":
            raise RuntimeError(f"POST /login as {email} answered {status}")
        status, _headers, _page = self.request("GET", "/")  # the session settles here
        if status != 200:
            raise RuntimeError(f"the home page after signing in as {email} answered {status}")


# --- the pages ------------------------------------------------------------------------------


@dataclass
class Page:
    name: str
    server: str  # "portal" or "ceiling"
    path: str
    headers: dict[str, str]
    expect: tuple[bytes, ...]  # one is found in a correct answer (checked before the rounds)
    key: str = ""  # the name the targets use


@dataclass
class Result:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    client_cpu: float | None = None  # the Python load generator's CPU share of one core

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Measured:
    page: Page
    rounds: list[Result] = field(default_factory=list)

    def median_round(self) -> Result:
        ordered = sorted(self.rounds, key=lambda r: r.per_second)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)


def pages_of(world: _world.World, browsers: dict[str, Browser], port: int) -> list[Page]:
    one, hundred = world.customers
    contract = one.contract_ids[0]
    quote_path = f"/contracts/{contract}/change?plan={one.quote_plans[contract]}"
    htmx = {
        "HX-Request": "true",
        "HX-Target": "request-panel",
        "HX-Current-URL": f"https://127.0.0.1:{port}/contracts/{contract}/change",
    }
    links = tuple(f'/contracts/{c}"'.encode() for c in hundred.contract_ids)
    return [
        Page(
            "ceiling: 1 row + template",
            "ceiling",
            f"/row/{one.organisation_id}",
            {},
            (one.legal_name.encode(),),
            "ceiling",
        ),
        Page("home (1 contract)", "portal", "/", browsers["one"].headers(), (b"<main",), "home"),
        Page("home (100 contracts)", "portal", "/", browsers["hundred"].headers(), (b"<main",)),
        Page(
            "/contracts (1 contract)",
            "portal",
            "/contracts",
            browsers["one"].headers(),
            (f'/contracts/{contract}"'.encode(),),
            "contracts_1",
        ),
        Page(
            "/contracts (100 contracts)",
            "portal",
            "/contracts",
            browsers["hundred"].headers(),
            links,
            "contracts_100",
        ),
        Page(
            "contract page",
            "portal",
            f"/contracts/{contract}",
            browsers["one"].headers(),
            (b"<main",),
            "contract",
        ),
        Page(
            "/invoices (6 invoices)",
            "portal",
            "/invoices",
            browsers["one"].headers(),
            (f"/invoices/{one.invoice_ids[0]}".encode(),),
        ),
        Page(
            "live quote (htmx)",
            "portal",
            quote_path,
            browsers["one"].headers(htmx),
            (b'id="request-panel"',),
        ),
        Page(
            "invoice PDF download",
            "portal",
            f"/invoices/{one.invoice_ids[0]}/pdf",
            browsers["one"].headers(),
            (b"%PDF-",),
        ),
    ]


def check_page(port: int, page: Page) -> bytes:
    """One request before the rounds: 200 and the answer the page should give."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", page.path, headers=page.headers | {"Host": f"127.0.0.1:{port}"})
        answer = conn.getresponse()
        body = answer.read()
    finally:
        conn.close()
    found = any(expected in body for expected in page.expect)
    if answer.status != 200 or not found:
        raise RuntimeError(
            f"{page.name} ({page.path}) answered {answer.status} "
            f"{'with' if found else 'without'} {page.expect[0]!r}"
        )
    if page.headers.get("HX-Request") and b"<html" in body:
        raise RuntimeError(f"{page.name}: a whole page where htmx asked for the panel")
    return body


@dataclass
class Statements:
    """What one request of a page asks the database: statements, their time, the slowest."""

    count: int = 0
    seconds: float = 0.0
    slowest: tuple[float, str] = (0.0, "")
    request_seconds: float = 0.0  # the whole request, in this process, nothing else running


def count_statements(env: dict[str, str], pages: list[Page]) -> dict[str, Statements]:
    """The SQL each portal page sends, seen in this process: the portal made with the
    servers' environment (the same secret key, so the browsers' cookies are good here), each
    page asked three times through the test client and the last answer counted."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from portal import create_app
        from portal.extensions import db

        app = create_app()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    seen = Statements()
    started: list[float] = []

    def before(*_args, **_kwargs) -> None:
        started.append(time.perf_counter())

    def after(_conn, _cursor, statement, *_args, **_kwargs) -> None:
        took = time.perf_counter() - started.pop()
        seen.count += 1
        seen.seconds += took
        if took > seen.slowest[0]:
            text = " ".join(statement.split())
            where = text.find(" FROM ")
            if where > 60:  # the column list says little: what it reads from says more
                text = f"{text[:40]} ...{text[where:]}"
            seen.slowest = (took, text[:200])

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "after_cursor_execute", after)
    client = app.test_client(use_cookies=False)
    found = {}
    try:
        for page in pages:
            if page.server != "portal":
                continue
            headers = {k: v for k, v in page.headers.items() if k != "Host"}
            for _ in range(3):
                seen = Statements()
                began = time.perf_counter()
                answer = client.get(page.path, headers=headers)
                seen.request_seconds = time.perf_counter() - began
            found[page.name] = seen if answer.status_code == 200 else Statements(-1)
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "after_cursor_execute", after)
        with app.app_context():
            db.engine.dispose()
    return found


# --- load generators ------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def python_load(port: int, page: Page, concurrency: int, warmup: float, duration: float) -> Result:
    """`concurrency` threads, each one request at a time over http.client (a new connection
    whenever the server closes one: gunicorn's sync workers close after every answer)."""
    headers = page.headers | {"Host": f"127.0.0.1:{port}"}
    begin = time.perf_counter() + warmup
    end = begin + duration
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency

    def worker(i: int) -> None:
        conn: http.client.HTTPConnection | None = None
        mine, bad = latencies[i], 0
        while True:
            started = time.perf_counter()
            if started >= end:
                break
            ok = False
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", page.path, headers=headers)
                answer = conn.getresponse()
                answer.read()
                ok = answer.status == 200
                if answer.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            finished = time.perf_counter()
            if started >= begin and finished <= end:
                mine.append(finished - started)
                bad += not ok
        if conn is not None:
            conn.close()
        errors[i] = bad

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    cpu = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = time.process_time() - cpu
    every = [x for mine in latencies for x in mine]
    return Result(
        requests=len(every),
        seconds=duration,
        errors=sum(errors),
        p50_ms=percentile(every, 0.50) * 1000,
        p99_ms=percentile(every, 0.99) * 1000,
        client_cpu=cpu / (warmup + duration),
    )


WRK_SCRIPT = """-- written by benchmarks/pages.py: one page, its headers, every non-200 an error
wrk.method = "GET"
wrk.path = %(path)s
%(headers)s
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local non200 = 0
  for _, thread in ipairs(threads) do non200 = non200 + thread:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "non200": %%d, "socket": %%d, '
    .. '"p50_us": %%d, "p99_us": %%d}\\n',
    summary.requests, summary.duration, non200, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _lua(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid Lua string literal for these values


def wrk_load(
    wrk: str, port: int, page: Page, concurrency: int, warmup: float, duration: float
) -> Result:
    headers = "\n".join(
        f"wrk.headers[{_lua(k)}] = {_lua(v)}"
        for k, v in (page.headers | {"Host": f"127.0.0.1:{port}"}).items()
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"path": _lua(page.path), "headers": headers})
    threads = str(min(concurrency, os.cpu_count() or 1))
    base = [wrk, "-t", threads, "-c", str(concurrency), "--timeout", "30s", "-s", script.name]
    url = f"http://127.0.0.1:{port}"
    try:
        # wrk takes whole seconds.
        if warmup > 0:
            subprocess.run(  # noqa: S603
                [*base, "-d", f"{max(1, round(warmup))}s", url], capture_output=True, check=True
            )
        out = subprocess.run(  # noqa: S603
            [*base, "-d", f"{max(1, round(duration))}s", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    found = re.search(r"^WRK_JSON (.*)$", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"wrk printed no summary:\n{out}")
    raw = json.loads(found.group(1))
    return Result(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        errors=raw["non200"] + raw["socket"],
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )


# --- the profile (py-spy, if installed) -----------------------------------------------------


def find_py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def profile_pages(
    py_spy: str, server: _world.Gunicorn, pages: list[Page], load, seconds: float, out: Path
) -> None:
    """py-spy samples both workers (CPU only, not idle waits) while each page is loaded."""
    out.mkdir(parents=True, exist_ok=True)
    for page in pages:
        slug = re.sub(r"[^a-z0-9]+", "-", page.name.lower()).strip("-")
        raw = out / f"{slug}.txt"
        spy = subprocess.Popen(  # noqa: S603
            [
                py_spy,
                "record",
                "--pid",
                str(server.process.pid),
                "--subprocesses",
                "--format",
                "raw",
                "--rate",
                "200",
                "--nonblocking",
                "--duration",
                str(int(seconds) + 1),
                "-o",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
        load(page)
        spy.wait()
        if raw.exists():
            summarise_profile(page.name, raw)


def summarise_profile(name: str, raw: Path, top: int = 8) -> None:
    own: collections.Counter[str] = collections.Counter()
    inside: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        own[_frame(frames[-1])] += samples
        # Time spent under each portal function (counted once per stack).
        for frame in {_frame(f) for f in frames if "portal/" in f}:
            inside[frame] += samples
    if not total:
        return
    _world.log(f"profile of {name}: {total} samples (CPU), written to {raw}")
    _world.log(
        "  most time in (own):     "
        + "; ".join(f"{f} {n / total:.0%}" for f, n in own.most_common(top))
    )
    _world.log(
        "  under portal functions: "
        + "; ".join(f"{f} {n / total:.0%}" for f, n in inside.most_common(top))
    )


def _frame(frame: str) -> str:
    """`function (path/file.py:line)` as `file.py:function`."""
    found = re.match(r"\s*(.*?) \((.*?)(?::\d+)?\)$", frame)
    if not found:
        return frame.strip()
    function, path = found.groups()
    parts = Path(path).parts
    where = "/".join(parts[parts.index("portal") :]) if "portal" in parts else Path(path).name
    return f"{where}:{function}"


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument(
        "--redis-url", default=DEFAULT_REDIS, help="rate-limit storage (on, as in production)"
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per page")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument(
        "--loader",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="auto: wrk where installed, else Python threads",
    )
    parser.add_argument("--background-organisations", type=int, default=2_000)
    parser.add_argument("--background-contracts", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the database an earlier run kept (--keep) instead of building it again",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        nargs="?",
        const="bench-profile",
        help="after the rounds, sample each portal page with py-spy (if installed) into DIR",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed or a page erred"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="allow dropping a database whose name does not contain 'bench'",
    )
    args = parser.parse_args(argv)
    name = _world.database_name(args.database_url)
    if "bench" not in name and not args.force:
        parser.error(f"refusing to drop and recreate {name!r}: use a *bench* name or --force")
    if args.rounds < 1 or args.concurrency < 1 or args.duration <= 0:
        parser.error("--rounds, --concurrency and --duration must be positive")
    return args


def code_version() -> str:
    found = subprocess.run(  # noqa: S603 - read-only
        ["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return found.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = _world.load_average()
    if os.getloadavg()[0] > 0.5:
        _world.log(
            f"note: load average {load_before} before the start: the figures will be "
            "lower than on an idle machine"
        )
    wrk = shutil.which("wrk") if args.loader in ("auto", "wrk") else None
    if args.loader == "wrk" and wrk is None:
        _world.log("wrk is not installed (apt-get install wrk)")
        return 2
    spec = _world.Spec(
        customers=[("one", 1), ("hundred", 100)],
        background_organisations=args.background_organisations,
        background_contracts=args.background_contracts,
    )
    world = _world.build_or_reuse(args.database_url, spec, reuse=args.reuse, keep=args.keep)
    try:
        return run(args, world, wrk, load_before)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        _world.log(f"the run failed: {exc}")
        return 2
    finally:
        if not (args.keep or args.reuse):
            _world.drop_database(world.database_url)
            _world.log("database dropped (--keep keeps it)")


def run(args: argparse.Namespace, world: _world.World, wrk: str | None, load_before: str) -> int:
    env = _world.production_env(world.database_url, args.redis_url)
    cleared = _world.clear_rate_limits(args.redis_url)
    servers = {}
    try:
        servers["portal"] = _world.Gunicorn("wsgi:app", env, workers=args.workers)
        servers["ceiling"] = _world.Gunicorn(
            "pages:ceiling_app()",
            env,
            workers=args.workers,
            chdir=HERE,
            health="/healthz",
            name="ceiling",
        )
        port = servers["portal"].port
        browsers = {
            "one": Browser(port, "10.15.0.1"),
            "hundred": Browser(port, "10.15.0.2"),
        }
        for label, customer in zip(("one", "hundred"), world.customers, strict=True):
            browsers[label].sign_in(customer.email)
        pages = pages_of(world, browsers, port)
        listed = 0
        for page in pages:
            body = check_page(servers[page.server].port, page)
            if page.key == "contracts_100":
                listed = sum(link in body for link in page.expect)  # paged or not
        statements = count_statements(env, pages)

        def load(page: Page) -> Result:
            port = servers[page.server].port
            if wrk:
                return wrk_load(wrk, port, page, args.concurrency, args.warmup, args.duration)
            return python_load(port, page, args.concurrency, args.warmup, args.duration)

        measured = {page.name: Measured(page) for page in pages}
        for round_number in range(args.rounds):
            # Each round starts one page later: no page always runs first or last.
            shift = round_number % len(pages)
            for page in pages[shift:] + pages[:shift]:
                result = load(page)
                measured[page.name].rounds.append(result)
                _world.log(
                    f"round {round_number + 1}/{args.rounds}  {page.name:28s} "
                    f"{result.per_second:8.1f} req/s  p50 {result.p50_ms:7.1f} ms  "
                    f"p99 {result.p99_ms:7.1f} ms  errors {result.errors}"
                )
        load_after = _world.load_average()

        if args.profile:
            py_spy = find_py_spy()
            if py_spy is None:
                _world.log(
                    "--profile: py-spy is not installed (.venv/bin/pip install py-spy); skipped"
                )
            else:
                portal_pages = [p for p in pages if p.server == "portal"]
                profile_pages(
                    py_spy,
                    servers["portal"],
                    portal_pages,
                    load,
                    args.warmup + args.duration,
                    Path(args.profile),
                )
    finally:
        for server in servers.values():
            server.stop()

    return report(args, world, measured, wrk, load_before, load_after, cleared, listed, statements)


def report(args, world, measured, wrk, load_before, load_after, cleared, listed, statements) -> int:
    by_key = {m.page.key: m for m in measured.values() if m.page.key}
    ceiling = by_key["ceiling"].median_round().per_second
    if wrk:
        version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout  # noqa: S603
        loader = f"wrk ({version.split()[1] if version else '?'}, Lua script for the cookie)"
    else:
        why = "--loader python" if args.loader == "python" else "wrk not installed"
        cpu_ceiling = by_key["ceiling"].median_round().client_cpu or 0.0
        cpu_pages = statistics.median(
            r.client_cpu or 0.0
            for m in measured.values()
            if m.page.server == "portal"
            for r in m.rounds
        )
        loader = (
            f"Python threads over http.client ({why}); the generator itself used "
            f"{cpu_ceiling:.0%} of a core on the ceiling, {cpu_pages:.0%} on the portal's "
            "pages, taken from the servers"
        )
    counts = world.counts
    log = _world.log
    log("")
    log("=== page benchmark (issue 15, item 1) ===")
    log(
        f"machine     {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load_before} at start, {load_after} at the end of the rounds"
    )
    log(f"code        {code_version()}")
    log(
        f"server      gunicorn, {args.workers} sync workers, PORTAL_ENV=production behind an "
        f"imagined TLS proxy; rate limits on ({args.redis_url}; no measured page is limited"
        f"{f'; {cleared} old counters cleared' if cleared else ''})"
    )
    log(
        f"load        {loader}; {args.concurrency} connections, {args.rounds} interleaved "
        f"rounds of {args.duration:g} s after {args.warmup:g} s warm-up; the median round "
        "(by req/s) is shown, errors are of all rounds"
    )
    log(
        f"data        {counts['organisations']:,} organisations, {counts['contracts']:,} "
        f"contracts, {counts['invoices']:,} invoices, {counts['usage_readings']:,} usage "
        "readings"
    )
    log(f"            /contracts of the 100-contract organisation lists {listed} of them")
    log("")
    log(
        f"{'page':30s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} "
        f"{'x ceiling':>9s} {'SQL':>4s} {'SQL ms':>7s} {'alone ms':>8s}"
    )
    for m in measured.values():
        r = m.median_round()
        sql = statements.get(m.page.name)
        seen = (
            f"{sql.count:4d} {sql.seconds * 1000:7.1f} {sql.request_seconds * 1000:8.1f}"
            if sql is not None
            else f"{'1':>4s} {'-':>7s} {'-':>8s}"  # the ceiling: one primary-key read
        )
        log(
            f"{m.page.name:30s} {r.per_second:8.1f} {r.p50_ms:8.1f} {r.p99_ms:8.1f} "
            f"{m.errors:7d} {r.per_second / ceiling:9.2f} {seen}"
        )
    log(
        "(SQL, SQL ms, alone ms: the statements one request of the page sends, their time and "
        "the whole request's, seen once in this process, the servers idle)"
    )
    if args.profile:
        for name, sql in statements.items():
            log(f"slowest statement of {name}: {sql.slowest[0] * 1000:.1f} ms: {sql.slowest[1]}")
    log("")

    missed = []

    def target(label: str, ok: bool, detail: str) -> None:
        log(f"target {label}: {detail}: {'met' if ok else 'not met'}")
        if not ok:
            missed.append(label)

    for key, label in (("contract", "contract page"), ("home", "home page")):
        share = by_key[key].median_round().per_second / ceiling
        target(
            f"signed-in {label} >= {CEILING_SHARE_TARGET} x ceiling",
            share >= CEILING_SHARE_TARGET,
            f"{share:.2f}",
        )
    one = by_key["contracts_1"].median_round().p50_ms
    hundred = by_key["contracts_100"].median_round().p50_ms
    target(
        f"/contracts with 100 contracts p50 <= {CONTRACTS_P50_FACTOR:g} x with 1",
        hundred <= CONTRACTS_P50_FACTOR * one,
        f"{hundred:.1f} ms vs {one:.1f} ms ({hundred / one:.1f}x)",
    )
    erred = [m.page.name for m in measured.values() if m.errors]
    if erred:
        log("errors on: " + ", ".join(erred))
    if args.strict and (missed or erred):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
