"""Shared by benchmarks/pages.py and benchmarks/load.py (issue 15): the database they measure
and the portal served by gunicorn as in production.

`build()` recreates a `*bench*` database with the project's migrations, fills a background of
organisations and contracts with invoice_run.py's COPY, adds the people who sign in with the
portal's own models and services (`open_contract`), issues the invoices of the last months with
the portal clock fixed on each run date (`issue_invoices`), stores the PDFs of the people who
sign in (`pdf_of`, as `portal issue-invoices` does after a run) and returns who is who.

`Gunicorn` starts `wsgi:app` (or the benchmark's ceiling app) with the production settings of
README's Production section, behind an imagined TLS proxy: PORTAL_TRUSTED_PROXIES=1, and the
clients send `X-Forwarded-Proto: https` and an `X-Forwarded-For` of their own, as the proxy
would. The session cookie is then `__Host-portal_session` and Secure: the clients keep it
themselves (a cookie jar would not send a Secure cookie over plain HTTP).
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from invoice_run import (  # noqa: E402
    APP_CONFIG,
    Dataset,
    drop_database,
    fill,
    libpq_url,
    migrate,
    recreate_database,
    tokyo_instant,
)
from sqlalchemy.engine import make_url  # noqa: E402

from portal import create_app  # noqa: E402
from portal.clock import clock  # noqa: E402
from portal.config import database_url  # noqa: E402
from portal.domain import calendar  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import (  # noqa: E402
    Contract,
    CustomerRole,
    Invoice,
    LedgerCharge,
    Organisation,
    PartnerAssignment,
    Plan,
    Provider,
    SalesChannel,
    Service,
    StaffRole,
    User,
    UserKind,
)
from portal.services import invoicing  # noqa: E402
from portal.services.auth import hash_password  # noqa: E402
from portal.services.organisations import open_contract  # noqa: E402

__all__ = ["drop_database", "libpq_url"]  # re-exported for the scripts

# The password of every account the benchmarks sign in with (they are made for the run).
PASSWORD = "bench-pages-sign-in-2026"  # noqa: S105
SESSION_COOKIE = "__Host-portal_session"  # PORTAL_ENV=production (portal/config.py)
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

PLAN_WEIGHTS = {"iw-50": 40, "iw-100": 30, "iw-300": 20, "iw-1000": 10}  # as invoice_run.py


def log(message: str) -> None:
    print(message, flush=True)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# --- who is who ------------------------------------------------------------------------------


@dataclass
class Customer:
    """An organisation's administrator, with what its pages show."""

    label: str
    email: str
    organisation_id: int
    legal_name: str
    contract_ids: list[int]
    # For each contract, a plan the change page offers (an upgrade where there is one).
    quote_plans: dict[int, int]
    invoice_ids: list[int]


@dataclass
class Agent:
    """A sales agent's person with the clients it may enter (R-71)."""

    email: str
    partner_id: int
    client_ids: list[int]


@dataclass
class World:
    database_url: str
    run_date: str
    customers: list[Customer] = field(default_factory=list)
    agents: list[Agent] = field(default_factory=list)
    staff: list[str] = field(default_factory=list)  # billing staff e-mails
    # What billing staff type into the search: parts of counterparties' names.
    counterparties: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> World:
        raw = json.loads(path.read_text(encoding="utf-8"))
        customers = [
            Customer(**{**c, "quote_plans": {int(k): v for k, v in c["quote_plans"].items()}})
            for c in raw.pop("customers")
        ]
        agents = [Agent(**a) for a in raw.pop("agents")]
        return cls(customers=customers, agents=agents, **raw)


@dataclass
class Spec:
    """What to build. `customers`: (label, number of contracts) per signed-in organisation."""

    customers: list[tuple[str, int]]
    background_organisations: int = 2_000
    background_contracts: int = 10_000
    months: int = 6  # monthly invoice runs, the last on the latest 21st
    agents: int = 0  # people of the first sales agent company, whose clients are background
    staff: int = 0  # billing staff
    seed: int = 20261121


def world_file(url: str) -> Path:
    """Where --keep leaves who is who, for a later --reuse of the same database."""
    return Path(tempfile.gettempdir()) / f"{database_name(url)}.world.json"


def build_or_reuse(url: str, spec: Spec, *, reuse: bool, keep: bool) -> World:
    """A fresh database, or with `reuse` the one an earlier run kept (--keep)."""
    saved = world_file(url)
    if reuse:
        if not saved.exists():
            raise SystemExit(f"--reuse: {saved} is missing: run once with --keep first")
        world = World.load(saved)
        try:
            psycopg.connect(libpq_url(world.database_url)).close()
        except psycopg.OperationalError as exc:
            raise SystemExit(
                f"--reuse: the kept database is gone ({exc}); run with --keep"
            ) from exc
        log(f"reusing the database kept by an earlier run ({saved})")
        return world
    world = build(url, spec)
    if keep:
        world.save(saved)
        log(f"who is who saved in {saved} (for --reuse)")
    return world


def latest_run_date(today: date) -> date:
    """The first day of the billing month of `today` (the 21st on or before it, R-41)."""
    return calendar.billing_month_of(today, calendar.DEFAULT_ANCHOR_DAY).start


def build(url: str, spec: Spec) -> World:
    """Recreate the database at `url` and fill it as `spec` says (a minute or two)."""
    url = database_url(url)
    started = time.perf_counter()
    recreate_database(url)
    migrate(url)
    log(f"database recreated and migrated: {time.perf_counter() - started:.1f} s")

    run_date = latest_run_date(clock.today())
    runs = [calendar.add_billing_months(run_date, -k) for k in range(spec.months - 1, -1, -1)]
    started = time.perf_counter()
    if spec.background_organisations:
        fill(
            url,
            Dataset(spec.background_organisations, spec.background_contracts, run_date, spec.seed),
        )
    log(
        f"background: {spec.background_organisations:,} organisations, "
        f"{spec.background_contracts:,} contracts (COPY): {time.perf_counter() - started:.1f} s"
    )

    world = World(database_url=url, run_date=run_date.isoformat())
    app = create_app({**APP_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    rng = random.Random(spec.seed)
    try:
        with app.app_context():
            started = time.perf_counter()
            clock.set(tokyo_instant(runs[0] - timedelta(days=10)))
            _catalog()
            contract_ids = _people(world, spec, rng, first_run=runs[0])
            db.session.commit()
            _usage(contract_ids, run_date)
            log(
                f"people: {len(world.customers)} customer administrators, "
                f"{len(world.agents)} agents, {len(world.staff)} billing staff: "
                f"{time.perf_counter() - started:.1f} s"
            )

            started = time.perf_counter()
            issued = 0
            for day in runs:
                clock.set(tokyo_instant(day, 0) + timedelta(minutes=20))  # 00:20 JST
                issued += invoicing.issue_invoices(day).issued
            log(
                f"invoice runs {runs[0]} .. {runs[-1]}: {issued:,} invoices: "
                f"{time.perf_counter() - started:.1f} s"
            )

            started = time.perf_counter()
            pdfs = _store_pdfs(world)
            log(
                f"PDFs of the signed-in customers: {pdfs} stored: "
                f"{time.perf_counter() - started:.1f} s"
            )
            world.counts = _counts()
            db.session.remove()
            db.engine.dispose()
    finally:
        clock.set(None)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # as autovacuum would have done on a live database
    return world


def _catalog() -> None:
    """invoice_run.py's provider gets its bank account (R-44); I-NET SERVICE exists too."""
    provider = db.session.scalars(sa.select(Provider).order_by(Provider.id)).first()
    provider.bank_name = "ベンチ銀行"
    provider.bank_branch = "本店"
    provider.bank_account_type = "ordinary"
    provider.bank_account_number = "1234567"
    provider.bank_account_holder_kana = "カ）イメージワークスベンチ"
    if db.session.scalar(sa.select(Service).where(Service.code == "inet")) is None:
        db.session.add(
            Service(code="inet", name_ja="I-NET SERVICE", name_en="I-NET SERVICE", paid=False)
        )
    db.session.flush()


def _people(world: World, spec: Spec, rng: random.Random, *, first_run: date) -> list[int]:
    """The signed-in customers (with their contracts), agents and billing staff; returns the
    ids of the customers' contracts."""
    password = hash_password(PASSWORD)
    plans = {p.code: p for p in db.session.scalars(sa.select(Plan).where(Plan.sold))}
    codes = [c for c in PLAN_WEIGHTS if c in plans]
    weights = [PLAN_WEIGHTS[c] for c in codes]
    by_fee = sorted(plans.values(), key=lambda p: p.monthly_fee)
    contract_ids: list[int] = []
    made: list[tuple[str, Organisation, User, list[Contract]]] = []
    for label, count in spec.customers:
        domain = f"{label}.bench.example"
        organisation = Organisation(
            legal_name=f"株式会社ベンチ顧客{label}",
            legal_name_kana=f"ベンチコキャク{label}",
            postal_code="100-0005",
            address="東京都千代田区丸の内1-1-1（ベンチ）",
            phone="03-0000-0000",
            billing_email=f"billing@{domain}",
            contract_contact_name="契約 担当",
            contract_contact_email=f"contract@{domain}",
            operations_contact_name="運用 担当",
            operations_contact_email=f"ops@{domain}",
            sales_channel=SalesChannel.DIRECT,
            locale="ja",
        )
        admin = User(
            email=f"admin@{domain}",
            name=f"管理者 {label}",
            password_hash=password,
            locale="ja",
            kind=UserKind.CUSTOMER,
            organisation=organisation,
            customer_role=CustomerRole.ADMINISTRATOR,
        )
        db.session.add_all([organisation, admin])
        contracts = []
        for _ in range(count):
            plan = plans[rng.choices(codes, weights)[0]]
            # Older than the invoice history, most past their minimum term (all requests open).
            start = first_run - timedelta(days=rng.randint(60, 1_100))
            contracts.append(
                open_contract(organisation, plan, service_start=start, anchor_day=21, partner=None)
            )
        made.append((label, organisation, admin, contracts))
    db.session.flush()
    # Their initial fees were invoiced long before the history built here.
    db.session.execute(
        sa.delete(LedgerCharge).where(
            LedgerCharge.contract_id.in_([c.id for *_, cs in made for c in cs]),
            LedgerCharge.invoice_id.is_(None),
            LedgerCharge.bills_on < first_run,
        )
    )
    for label, organisation, admin, contracts in made:
        quote_plans = {}
        for contract in contracts:
            higher = [p for p in by_fee if p.monthly_fee > contract.monthly_fee]
            lower = [p for p in by_fee if p.monthly_fee < contract.monthly_fee]
            quote_plans[contract.id] = (higher[0] if higher else lower[-1]).id
        world.customers.append(
            Customer(
                label=label,
                email=admin.email,
                organisation_id=organisation.id,
                legal_name=organisation.legal_name,
                contract_ids=[c.id for c in contracts],
                quote_plans=quote_plans,
                invoice_ids=[],
            )
        )
        contract_ids.extend(c.id for c in contracts)

    if spec.agents:
        partner_id = 1  # invoice_run.py's first sales agent company
        clients = sorted(
            db.session.scalars(
                sa.select(PartnerAssignment.organisation_id)
                .join(Contract, Contract.organisation_id == PartnerAssignment.organisation_id)
                .where(PartnerAssignment.partner_id == partner_id)
                .distinct()
            )
        )
        for i in range(spec.agents):
            agent = User(
                email=f"agent{i:02d}@sales.bench.example",
                name=f"代理店 担当{i:02d}",
                password_hash=password,
                locale="ja",
                kind=UserKind.AGENT,
                partner_id=partner_id,
            )
            db.session.add(agent)
            world.agents.append(Agent(agent.email, partner_id, clients))
    for i in range(spec.staff):
        staff = User(
            email=f"billing{i:02d}@provider.bench.example",
            name=f"請求 担当{i:02d}",
            password_hash=password,
            locale="ja",
            kind=UserKind.STAFF,
            staff_role=StaffRole.BILLING,
        )
        db.session.add(staff)
        world.staff.append(staff.email)
    # Parts of names as staff type them: background organisations and signed-in customers.
    world.counterparties = [f"ベンチ商事{n:04d}" for n in range(1, 20)] + ["ベンチ顧客"]
    return contract_ids


def _usage(contract_ids: list[int], today: date) -> None:
    """R-15: a daily reading of the storage used for the last 90 days of each contract."""
    if not contract_ids:
        return
    db.session.execute(
        sa.text(
            """
            INSERT INTO usage_readings (contract_id, used_gb, measured_at, recorded_at, source)
            SELECT c.id,
                   round((p.capacity_gb * (0.3 + 0.6 * ((c.id * 7 + d) % 90) / 90.0))::numeric, 2),
                   ts, ts, 'api'
            FROM contracts c
            JOIN plans p ON p.id = c.plan_id
            CROSS JOIN generate_series(1, 90) AS d
            CROSS JOIN LATERAL (SELECT (CAST(:today AS date) - d) + time '03:00' AS local) l
            CROSS JOIN LATERAL (SELECT l.local AT TIME ZONE 'Asia/Tokyo' AS ts) t
            WHERE c.id = ANY(:ids)
            """
        ),
        {"today": today, "ids": contract_ids},
    )
    db.session.commit()


def _store_pdfs(world: World) -> int:
    """Each signed-in customer's invoices, newest first, with their PDFs stored (R-42)."""
    stored = 0
    for customer in world.customers:
        invoices = db.session.scalars(
            sa.select(Invoice)
            .where(Invoice.organisation_id == customer.organisation_id)
            .order_by(Invoice.issued_on.desc(), Invoice.id.desc())
        ).all()
        customer.invoice_ids = [i.id for i in invoices]
        for invoice in invoices:
            invoicing.pdf_of(invoice)  # renders and stores it, in its own commit
            stored += 1
    return stored


def _counts() -> dict[str, int]:
    tables = {
        "organisations": Organisation,
        "contracts": Contract,
        "invoices": Invoice,
        "users": User,
    }
    counts = {
        name: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for name, model in tables.items()
    }
    counts["usage_readings"] = db.session.scalar(sa.text("SELECT count(*) FROM usage_readings"))
    counts["invoice_lines"] = db.session.scalar(sa.text("SELECT count(*) FROM invoice_lines"))
    return counts


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clear_rate_limits(redis_url: str) -> int:
    """Forget the sign-in counters of an earlier run (Flask-Limiter's keys only)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match="LIMITS:*", count=1_000))
    if keys:
        client.delete(*keys)
    client.close()
    return len(keys)


def production_env(url: str, redis_url: str) -> dict[str, str]:
    """README's Production environment, for plain HTTP behind an imagined TLS proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env.update(
        {
            "PORTAL_ENV": "production",
            "PORTAL_SECRET_KEY": secrets.token_urlsafe(48),
            "PORTAL_DATABASE_URL": url,
            "PORTAL_RATELIMIT_STORAGE_URL": redis_url,
            "PORTAL_BASE_URL": "https://portal.bench.example",
            "PORTAL_TRUSTED_PROXIES": "1",
            "PORTAL_MAIL_FROM": "portal@bench.example",
            # Never reached: e-mails wait in the outbox for `portal send-mail`.
            "PORTAL_SMTP_HOST": "127.0.0.1",
        }
    )
    return env


class Gunicorn:
    """`gunicorn --workers N --bind 127.0.0.1:<free port> APP` until stop()."""

    def __init__(
        self,
        app: str,
        env: dict[str, str],
        *,
        workers: int = 2,
        chdir: Path = ROOT,
        health: str = "/healthz",
        name: str = "portal",
    ) -> None:
        self.port = free_port()
        self.name = name
        self.health = health
        self.log_path = Path(tempfile.gettempdir()) / f"bench-{name}-{self.port}.log"
        command = [
            str(GUNICORN),
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--chdir",
            str(chdir),
            "--log-level",
            "warning",
            "--error-logfile",
            str(self.log_path),
            app,
        ]
        self.process = subprocess.Popen(  # noqa: S603 - our own command line
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._wait_ready()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) exited: see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + self.health, timeout=5) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn ({self.name}) did not answer {self.health}: {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own process group only
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def database_name(url: str) -> str:
    return make_url(libpq_url(url)).database or ""
