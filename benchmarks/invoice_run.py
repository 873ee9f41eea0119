"""Benchmark of the monthly invoice run and of the invoice PDF, on PostgreSQL at full size.

    .venv/bin/python benchmarks/invoice_run.py \
        [--database-url postgresql://postgres@127.0.0.1:5432/portal_bench] \
        [--organisations 20000] [--contracts 100000] [--run-date 2027-04-21] [--keep] \
        [--render-all [--workers N]]

1. (Re)creates the database (dropped and created fresh) and builds the schema with the
   project's migrations (flask_migrate.upgrade(), as tests/conftest.py does).
2. Fills it with PostgreSQL COPY: the provider, IMAGE WORKS and a price list with four plans,
   partner companies, the organisations, the contracts (1-10 each) and a few thousand pending
   ledger charges. Then ANALYZE, as autovacuum would have done on a live database.
3. Times `issue_invoices(run_date)` on the first day of a billing month, then a second run of
   the same day (it must issue nothing).
4. Times the PDF of one issued invoice with many lines (median and p95 of N renders after a
   warm-up) and `render_pending_pdfs(limit=500)` (render + SHA-256 + UPDATE + commit, in this
   process).
5. With --render-all: renders and stores every remaining PDF of the month through the code
   path of `flask portal render-invoices --workers N` (`portal.cli.render_pdfs`: N worker
   processes, each claiming its own batches), and prints PDFs/s and the total seconds.
6. Prints a summary and exits 1 when a target is missed: the run in under 60 s, nothing issued
   by the second run, a PDF in under 20 ms (median); with --render-all, 20,000 PDFs rendered
   and stored in under 3 minutes (judged at the rate measured when fewer were waiting).

The database is dropped at the end unless --keep is given. `--profile FILE` runs the first
invoice run under cProfile (slower: its time is then not comparable with the target), writes
the stats to FILE and prints the heaviest functions.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from psycopg import sql  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from portal import create_app  # noqa: E402
from portal.clock import TOKYO, clock  # noqa: E402
from portal.config import database_url  # noqa: E402
from portal.domain import calendar  # noqa: E402
from portal.extensions import db  # noqa: E402

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/portal_bench"

# The targets of the issue.
RUN_TARGET_SECONDS = 60.0
PDF_TARGET_MS = 20.0
MONTH_OF_PDFS = 20_000
MONTH_OF_PDFS_TARGET_SECONDS = 180.0

APP_CONFIG = {  # as the test suite passes it (tests/conftest.py): no rate limits, no CSRF
    "TESTING": True,
    "SECRET_KEY": "benchmark-secret-key-that-is-long-enough-0123456789",
    "WTF_CSRF_ENABLED": False,
    "RATELIMIT_ENABLED": False,
    "SERVER_NAME": None,
}

ANCHOR = calendar.DEFAULT_ANCHOR_DAY
PLANS = (  # code, name, capacity, monthly fee, minimum months, share of contracts
    ("iw-50", "Standard 50 GB", 50, 30_000, 12, 40),
    ("iw-100", "Standard 100 GB", 100, 50_000, 12, 30),
    ("iw-300", "Business 300 GB", 300, 100_000, 12, 20),
    ("iw-1000", "Enterprise 1 TB", 1000, 200_000, 24, 10),
)
CHANGE_FEE = 5_000
SALES_AGENTS = 10
AGENCIES = 10


def log(message: str) -> None:
    print(message, flush=True)


# --- the database --------------------------------------------------------------------------


def libpq_url(url: str) -> str:
    """The URL for psycopg itself (no SQLAlchemy driver suffix)."""
    return (
        make_url(database_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


def recreate_database(url: str) -> None:
    target = make_url(libpq_url(url))
    name = target.database
    if not name:
        raise SystemExit("the database URL names no database")
    admin = target.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))


def drop_database(url: str) -> None:
    target = make_url(libpq_url(url))
    admin = target.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(target.database)
            )
        )


def migrate(url: str) -> None:
    from flask_migrate import upgrade

    app = create_app({**APP_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url(url)})
    with app.app_context():
        upgrade()
        db.engine.dispose()


# --- the data ------------------------------------------------------------------------------


def tokyo_instant(day: date, hour: int = 10) -> datetime:
    return datetime.combine(day, dtime(hour), tzinfo=TOKYO).astimezone(UTC)


def spread(rng: random.Random, items: int, total: int, low: int = 1, high: int = 10) -> list[int]:
    """`items` counts in low..high that add up to `total`."""
    if not items * low <= total <= items * high:
        raise SystemExit(f"{total} contracts do not fit {items} organisations at {low}-{high} each")
    counts = [rng.randint(low, high) for _ in range(items)]
    excess = sum(counts) - total
    while excess:
        i = rng.randrange(items)
        if excess > 0 and counts[i] > low:
            counts[i] -= 1
            excess -= 1
        elif excess < 0 and counts[i] < high:
            counts[i] += 1
            excess += 1
    return counts


class Dataset:
    """Every row, generated up front (deterministic for a seed)."""

    def __init__(self, organisations: int, contracts: int, run_date: date, seed: int) -> None:
        rng = random.Random(seed)
        self.run_date = run_date
        self.month = calendar.billing_month_of(run_date, ANCHOR)
        created = tokyo_instant(run_date - timedelta(days=3 * 365 + 30))
        self.providers = [
            (
                1,
                "株式会社イメージワークス・ベンチ",
                "Image Works Bench K.K.",
                "T1234567890123",
                "〒100-0005 東京都千代田区丸の内1-1-1（ベンチ）",
                "03-0000-0000",
            )
        ]
        self.services = [(1, "image_works", "IMAGE WORKS", "IMAGE WORKS", True, ANCHOR)]
        self.price_lists = [
            (1, 1, 1, date(2024, 1, 1), CHANGE_FEE, 10, True, "ベンチマーク価格 / bench", created)
        ]
        self.plans = [
            (i, 1, code, name, name, gb, fee, months, 10, True)
            for i, (code, name, gb, fee, months, _share) in enumerate(PLANS, start=1)
        ]
        plan_ids = [row[0] for row in self.plans]
        plan_weights = [share for *_rest, share in PLANS]
        plan_terms = {
            i: (fee, months) for i, (_c, _n, _g, fee, months, _s) in enumerate(PLANS, start=1)
        }

        self.partners = [
            (i, f"ベンチ販売代理店{i:02d}株式会社", "sales_agent", created)
            for i in range(1, SALES_AGENTS + 1)
        ] + [
            (SALES_AGENTS + i, f"ベンチ取次店{i:02d}合同会社", "agency", created)
            for i in range(1, AGENCIES + 1)
        ]

        # Organisations: mostly direct, some through a sales agent, a few through an agency.
        self.organisations = []
        self.assignments = []
        org_partner: dict[int, tuple[str, int | None]] = {}
        for org in range(1, organisations + 1):
            roll = rng.random()
            if roll < 0.85:
                channel, partner = "direct", None
            elif roll < 0.95:
                channel, partner = "sales_agent", rng.randint(1, SALES_AGENTS)
            else:
                channel, partner = "agency", SALES_AGENTS + rng.randint(1, AGENCIES)
            org_partner[org] = (channel, partner)
            locale = "en" if rng.random() < 0.1 else "ja"
            domain = f"bench{org:06d}.example"
            self.organisations.append(
                (
                    org,
                    f"株式会社ベンチ商事{org:06d}",
                    f"ベンチショウジ{org:06d}",
                    f"{100 + org % 900:03d}-{org % 10000:04d}",
                    f"東京都千代田区丸の内{1 + org % 3}-{1 + org % 50}-{1 + org % 20}（ベンチ）",
                    "03-0000-0000",
                    f"billing@{domain}",
                    "契約 担当",
                    f"contract@{domain}",
                    "運用 担当",
                    f"ops@{domain}",
                    channel,
                    locale,
                    False,
                    created,
                )
            )
            if partner is not None:
                self.assignments.append((partner, org, created))

        # Contracts: service starts over the last three years (some in the lead-in, many inside
        # the minimum term, the older ones renewed); mostly anchor day 21; some ended.
        first_start = run_date - timedelta(days=3 * 365)
        span = (run_date - first_start).days
        self.contracts = []
        self.charges = []
        contract_id = 0
        charge_id = 0
        counts = spread(rng, organisations, contracts)
        recent = run_date - timedelta(days=30)
        for org, count in enumerate(counts, start=1):
            channel, partner = org_partner[org]
            for _ in range(count):
                contract_id += 1
                plan = rng.choices(plan_ids, plan_weights)[0]
                fee, months = plan_terms[plan]
                if rng.random() < 0.02:
                    # Signed up, service starting later in this billing month: in the lead-in
                    # no fee yet; its initial fee bills on its service start.
                    start = run_date + timedelta(days=rng.randint(1, 19))
                else:
                    start = first_start + timedelta(days=rng.randint(0, span))
                anchor_day = ANCHOR if rng.random() < 0.95 else rng.randint(1, 28)
                term_anchor = calendar.term_anchor(start, anchor_day)
                status, ended_on, periods = "active", None, None
                if channel == "agency":
                    # granted periods cover today, except for the ones that lapsed.
                    elapsed = max(0, _billing_months_between(term_anchor, run_date))
                    needed = elapsed // calendar.AGENCY_PERIOD_MONTHS + 1
                    periods = needed + (1 if rng.random() < 0.2 else 0)
                    if needed > 1 and rng.random() < 0.1:
                        periods = needed - 1
                        status = "ended"
                        ended_on = calendar.agency_period(term_anchor, periods - 1).end
                if status == "active" and rng.random() < 0.05:
                    ends = _month_ends_between(term_anchor, run_date, anchor_day)
                    if ends:
                        status, ended_on = "ended", rng.choice(ends)
                self.contracts.append(
                    (
                        contract_id,
                        org,
                        1,
                        plan,
                        fee,
                        months,
                        start,
                        anchor_day,
                        status,
                        channel,
                        partner,
                        periods,
                        ended_on,
                        tokyo_instant(start) - timedelta(days=7),
                    )
                )
                # Pending charges: the initial fee of each contract started in the
                # last 30 days or starting later this month (R-11; it bills on its service
                # start, so the later ones are not due yet), change fees of recent plan
                # changes and the shortfall of contracts ended early inside their
                # minimum term.
                if status == "active" and start >= recent:
                    charge_id += 1
                    self.charges.append(
                        _charge(
                            charge_id,
                            org,
                            contract_id,
                            "initial_fee",
                            fee,
                            None,
                            start,
                            start,
                            anchor_day,
                        )
                    )
                elif status == "active" and rng.random() < 0.006:
                    charge_id += 1
                    accrued = run_date - timedelta(days=rng.randint(0, 45))
                    month = calendar.billing_month_of(accrued, anchor_day)
                    self.charges.append(
                        _charge(
                            charge_id,
                            org,
                            contract_id,
                            "change_fee",
                            CHANGE_FEE,
                            None,
                            accrued,
                            month.start,
                            anchor_day,
                        )
                    )
                elif (
                    status == "ended"
                    and ended_on >= run_date - timedelta(days=62)
                    and ended_on < calendar.minimum_term_end(term_anchor, months)
                ):
                    charge_id += 1
                    short = rng.randint(1, 11)
                    month = calendar.billing_month_of(ended_on, anchor_day)
                    self.charges.append(
                        _charge(
                            charge_id,
                            org,
                            contract_id,
                            "shortfall",
                            fee * short,
                            short,
                            ended_on,
                            month.start,
                            anchor_day,
                        )
                    )

    def counts(self) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for row in self.charges:
            if row[9] > self.run_date:
                continue
            kinds[row[4]] = kinds.get(row[4], 0) + 1
        return {
            "organisations": len(self.organisations),
            "contracts": len(self.contracts),
            "active": sum(1 for c in self.contracts if c[8] == "active"),
            "agency": sum(1 for c in self.contracts if c[9] == "agency"),
            "ended": sum(1 for c in self.contracts if c[8] == "ended"),
            "lead_in": sum(
                1
                for c in self.contracts
                if c[8] == "active" and calendar.term_anchor(c[6], c[7]) > self.month.start
            ),
            "charges_due": sum(1 for c in self.charges if c[9] <= self.run_date),
            **{f"due_{k}": v for k, v in sorted(kinds.items())},
            "charges_later": sum(1 for c in self.charges if c[9] > self.run_date),
        }


def _billing_months_between(anchor: date, on: date) -> int:
    if on < anchor:
        return -1
    months = (on.year - anchor.year) * 12 + (on.month - anchor.month)
    return months - 1 if on.day < anchor.day else months


def _month_ends_between(start: date, before: date, anchor_day: int) -> list[date]:
    """Billing-month ends (the day before an anchor day) from `start` up to `before`."""
    ends = []
    end = calendar.billing_month_of(start, anchor_day).end
    while end < before:
        ends.append(end)
        end = calendar.add_billing_months(end + timedelta(days=1), 1) - timedelta(days=1)
    return ends


def _charge(
    charge_id: int,
    org: int,
    contract: int,
    kind: str,
    amount: int,
    months: int | None,
    accrued_on: date,
    bills_on: date,
    anchor_day: int,
) -> tuple:
    month = calendar.billing_month_of(accrued_on, anchor_day)
    return (
        charge_id,
        org,
        contract,
        None,  # request_id
        kind,
        amount,
        10,
        months,
        month.name,
        bills_on,
        accrued_on,
        tokyo_instant(accrued_on),
        None,  # invoice_id
    )


TABLES: Sequence[tuple[str, str, Sequence[str]]] = (
    (
        "providers",
        "providers",
        ("id", "name_ja", "name_en", "registration_number", "address", "phone"),
    ),
    ("services", "services", ("id", "code", "name_ja", "name_en", "paid", "default_anchor_day")),
    (
        "price_lists",
        "price_lists",
        (
            "id",
            "service_id",
            "version",
            "effective_from",
            "change_fee",
            "change_fee_tax_rate_percent",
            "is_demo",
            "note",
            "created_at",
        ),
    ),
    (
        "plans",
        "plans",
        (
            "id",
            "price_list_id",
            "code",
            "name_ja",
            "name_en",
            "capacity_gb",
            "monthly_fee",
            "minimum_months",
            "tax_rate_percent",
            "sold",
        ),
    ),
    ("partners", "partner_companies", ("id", "name", "kind", "created_at")),
    (
        "organisations",
        "organisations",
        (
            "id",
            "legal_name",
            "legal_name_kana",
            "postal_code",
            "address",
            "phone",
            "billing_email",
            "contract_contact_name",
            "contract_contact_email",
            "operations_contact_name",
            "operations_contact_email",
            "sales_channel",
            "locale",
            "members_see_invoices",
            "created_at",
        ),
    ),
    ("assignments", "partner_assignments", ("partner_id", "organisation_id", "assigned_at")),
    (
        "contracts",
        "contracts",
        (
            "id",
            "organisation_id",
            "service_id",
            "plan_id",
            "monthly_fee",
            "minimum_months",
            "service_start",
            "anchor_day",
            "status",
            "sales_channel",
            "partner_id",
            "agency_periods_granted",
            "ended_on",
            "created_at",
        ),
    ),
    (
        "charges",
        "ledger_charges",
        (
            "id",
            "organisation_id",
            "contract_id",
            "request_id",
            "kind",
            "amount",
            "tax_rate_percent",
            "months",
            "billing_month",
            "bills_on",
            "accrued_on",
            "created_at",
            "invoice_id",
        ),
    ),
)


def copy_rows(cur: psycopg.Cursor, table: str, columns: Sequence[str], rows: Iterable[tuple]):
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def fill(url: str, data: Dataset) -> None:
    """One transaction of COPYs, the id sequences moved past the ids given, then ANALYZE."""
    with psycopg.connect(libpq_url(url)) as conn:
        with conn.cursor() as cur:
            for attribute, table, columns in TABLES:
                copy_rows(cur, table, columns, getattr(data, attribute))
                if "id" in columns:
                    cur.execute(
                        sql.SQL(
                            "SELECT setval(pg_get_serial_sequence({t}, 'id'), "
                            "(SELECT max(id) FROM {i}))"
                        ).format(t=sql.Literal(table), i=sql.Identifier(table))
                    )
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")


# --- the timings ---------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def time_runs(run_date: date, profile: str | None) -> dict[str, float]:
    from portal.services import invoicing

    out: dict[str, float] = {}
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    summary = invoicing.issue_invoices(run_date)
    if profiler:
        profiler.disable()
    out["run_s"] = time.perf_counter() - started
    out["run_cpu_s"] = time.process_time() - cpu
    out["issued"] = summary.issued
    out["lines"] = summary.lines
    out["total_yen"] = summary.total
    log(
        f"first run  {run_date}: billing month {summary.billing_month}, "
        f"{summary.issued:,} invoices, {summary.lines:,} lines, ¥{summary.total:,}, "
        f"skipped {summary.skipped}: {out['run_s']:.2f} s "
        f"({out['run_cpu_s']:.1f} s CPU in this process; the rest is PostgreSQL and waiting)"
        + ("  (under cProfile)" if profiler else "")
    )
    if profiler:
        profiler.dump_stats(profile)
        stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs().sort_stats("cumulative")
        log(f"cProfile stats written to {profile}; heaviest by cumulative time:")
        stats.print_stats(35)
        stats.sort_stats("tottime").print_stats(25)

    started = time.perf_counter()
    second = invoicing.issue_invoices(run_date)
    out["second_s"] = time.perf_counter() - started
    out["second_issued"] = second.issued
    log(
        f"second run {run_date}: {second.issued} invoices, skipped {second.skipped}: "
        f"{out['second_s']:.2f} s"
    )
    return out


def time_pdfs(renders: int, store: int) -> dict[str, float]:
    from sqlalchemy.orm import selectinload

    from portal.documents.invoices import invoice_document, render_invoice_pdf
    from portal.models import Invoice, InvoiceLine
    from portal.services import invoicing

    out: dict[str, float] = {}
    # A Japanese invoice with the most lines: the heaviest common case.
    counted = (
        sa.select(InvoiceLine.invoice_id, sa.func.count().label("n"))
        .group_by(InvoiceLine.invoice_id)
        .subquery()
    )
    invoice_id, lines = db.session.execute(
        sa.select(Invoice.id, counted.c.n)
        .join(counted, counted.c.invoice_id == Invoice.id)
        .where(Invoice.locale == "ja")
        .order_by(counted.c.n.desc(), Invoice.id)
        .limit(1)
    ).one()
    invoice = db.session.scalars(
        sa.select(Invoice)
        .where(Invoice.id == invoice_id)
        .options(selectinload(Invoice.lines), selectinload(Invoice.original))
    ).one()

    first = time.perf_counter()
    pdf = render_invoice_pdf(invoice_document(invoice))  # warm-up: font registration etc.
    out["pdf_first_ms"] = (time.perf_counter() - first) * 1000
    timings, cpu = [], []
    for _ in range(renders):
        started, cpu_started = time.perf_counter(), time.process_time()
        render_invoice_pdf(invoice_document(invoice))
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    out["pdf_lines"] = lines
    out["pdf_bytes"] = len(pdf)
    out["pdf_median_ms"] = statistics.median(timings)
    out["pdf_p95_ms"] = percentile(timings, 0.95)
    out["pdf_cpu_median_ms"] = statistics.median(cpu)
    log(
        f"PDF of {invoice.number} ({lines} lines, {len(pdf):,} bytes): first "
        f"{out['pdf_first_ms']:.1f} ms, then {renders} renders: median "
        f"{out['pdf_median_ms']:.1f} ms, p95 {out['pdf_p95_ms']:.1f} ms"
    )
    db.session.commit()
    if store <= 0:
        return out

    started = time.perf_counter()
    stored = invoicing.render_pending_pdfs(limit=store)
    seconds = time.perf_counter() - started
    out["stored"] = stored
    out["store_s"] = seconds
    out["store_per_s"] = stored / seconds if seconds else 0.0
    log(
        f"render_pending_pdfs(limit={store}): {stored} PDFs stored in {seconds:.2f} s = "
        f"{out['store_per_s']:.1f} PDFs/s ({seconds / max(stored, 1) * 1000:.1f} ms each)"
    )
    return out


def render_all(workers: int | None) -> dict[str, float]:
    """Every PDF still waiting, as `flask portal render-invoices --workers N` renders them."""
    from portal.cli import render_pdfs

    out: dict[str, float] = {"render_load_before": os.getloadavg()[0]}
    run = render_pdfs(workers, progress=lambda line: log(f"  {line}"))
    out["all_stored"] = run.stored
    out["all_s"] = run.seconds
    out["all_per_s"] = run.rate
    out["all_workers"] = len(run.per_worker)
    out["render_load_after"] = os.getloadavg()[0]
    # The month's 20,000 at the rate measured (the data set issues a few fewer invoices).
    out["month_s"] = MONTH_OF_PDFS / run.rate if run.rate else float("inf")
    log(
        f"render-all: {run.summary()} Per worker: "
        + ", ".join(f"{n:,}" for n in run.per_worker)
        + f". Load average {out['render_load_before']:.2f} before, "
        f"{out['render_load_after']:.2f} after."
    )
    return out


# --- main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--organisations", type=int, default=20_000)
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument(
        "--run-date",
        type=date.fromisoformat,
        default=date(2027, 4, 21),
        help="the first day of a billing month (a 21st)",
    )
    parser.add_argument("--pdf-renders", type=int, default=50)
    parser.add_argument(
        "--store-pdfs",
        type=int,
        default=None,
        help="PDFs stored by render_pending_pdfs here (default 500; 0 with --render-all)",
    )
    parser.add_argument(
        "--render-all",
        action="store_true",
        help="then render every remaining PDF as `flask portal render-invoices` does",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes for --render-all (default: one per core)",
    )
    parser.add_argument("--seed", type=int, default=20270421)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--profile", metavar="FILE", help="run the first invoice run under cProfile into FILE"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="allow dropping a database whose name does not contain 'bench'",
    )
    args = parser.parse_args(argv)
    if args.store_pdfs is None:
        args.store_pdfs = 0 if args.render_all else 500
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be 1 or more")
    if args.run_date.day != ANCHOR:
        parser.error(f"--run-date must be the first day of a billing month (day {ANCHOR})")
    name = make_url(libpq_url(args.database_url)).database or ""
    if "bench" not in name and not args.force:
        parser.error(f"refusing to drop and recreate {name!r}: use a *bench* name or --force")
    return args


def code_versions() -> str:
    """Short SHA-256 of the files under test: they change while the benchmark is used."""
    parts = []
    for name in ("portal/services/invoicing.py", "portal/documents/invoices.py"):
        digest = hashlib.sha256((ROOT / name).read_bytes()).hexdigest()[:10]
        parts.append(f"{name.rsplit('/', 1)[1]} {digest}")
    return ", ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        log(
            f"note: load average {load_before:.2f} before the start: other processes share the "
            "CPUs and the timings will be slower than on an idle machine"
        )
    url = database_url(args.database_url)
    shown = make_url(url).render_as_string(hide_password=True)
    figures: dict[str, float] = {}

    started = time.perf_counter()
    recreate_database(url)
    migrate(url)
    figures["schema_s"] = time.perf_counter() - started
    log(f"database {shown} recreated and migrated: {figures['schema_s']:.1f} s")

    started = time.perf_counter()
    data = Dataset(args.organisations, args.contracts, args.run_date, args.seed)
    figures["generate_s"] = time.perf_counter() - started
    started = time.perf_counter()
    fill(url, data)
    figures["fill_s"] = time.perf_counter() - started
    counts = data.counts()
    log(
        f"data generated in {figures['generate_s']:.1f} s, loaded with COPY + ANALYZE in "
        f"{figures['fill_s']:.1f} s: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
    )

    app = create_app({**APP_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    clock.set(tokyo_instant(args.run_date, 10))
    try:
        with app.app_context():
            figures.update(time_runs(args.run_date, args.profile))
            figures.update(time_pdfs(args.pdf_renders, args.store_pdfs))
            if args.render_all:
                figures.update(render_all(args.workers))
            db.session.remove()
            db.engine.dispose()
    finally:
        clock.set(None)
        if not args.keep:
            drop_database(url)
            log(f"database {shown} dropped (--keep keeps it)")

    missed = []
    if figures["run_s"] >= RUN_TARGET_SECONDS:
        missed.append(
            f"invoice run took {figures['run_s']:.1f} s (target < {RUN_TARGET_SECONDS:.0f} s)"
        )
    if figures["second_issued"]:
        missed.append(f"second run issued {figures['second_issued']:.0f} invoices (must be 0)")
    if figures["pdf_median_ms"] >= PDF_TARGET_MS:
        missed.append(
            f"PDF median {figures['pdf_median_ms']:.1f} ms (target < {PDF_TARGET_MS:.0f} ms)"
        )
    month_met = figures.get("month_s", 0.0) < MONTH_OF_PDFS_TARGET_SECONDS
    if args.render_all and not month_met:
        missed.append(
            f"{MONTH_OF_PDFS:,} PDFs would take {figures['month_s']:.0f} s "
            f"(target < {MONTH_OF_PDFS_TARGET_SECONDS:.0f} s)"
        )

    log("")
    log("=== invoice run benchmark ===")
    log(
        f"machine            {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end"
    )
    log(f"code               {code_versions()}")
    log(
        f"data               {counts['organisations']:,} organisations, "
        f"{counts['contracts']:,} contracts, {counts['charges_due']:,} pending charges due"
    )
    log(
        f"fill (COPY)        {figures['fill_s']:.1f} s (+ {figures['generate_s']:.1f} s to "
        f"generate, {figures['schema_s']:.1f} s schema)"
    )
    run_label = f"run {args.run_date}"
    pdf_label = f"PDF, {figures['pdf_lines']:.0f} lines"
    log(
        f"{run_label:19s}{figures['run_s']:.2f} s: {figures['issued']:,.0f} invoices, "
        f"{figures['lines']:,.0f} lines"
        + f" ({figures['run_cpu_s']:.1f} s CPU)"
        + ("  (cProfile on)" if args.profile else "")
        + f"  [target < {RUN_TARGET_SECONDS:.0f} s]"
    )
    log(
        f"second run         {figures['second_s']:.2f} s: {figures['second_issued']:.0f} "
        "invoices  [must be 0]"
    )
    log(
        f"{pdf_label:19s}median {figures['pdf_median_ms']:.1f} ms, "
        f"p95 {figures['pdf_p95_ms']:.1f} ms (CPU median {figures['pdf_cpu_median_ms']:.1f} ms)"
        f"  [target median < {PDF_TARGET_MS:.0f} ms]"
    )
    if "stored" in figures:
        log(
            f"render+store PDFs  {figures['store_per_s']:.1f} PDFs/s "
            f"({figures['stored']:.0f} in {figures['store_s']:.2f} s, this process)"
        )
    if args.render_all:
        log(
            f"render-invoices    {figures['all_per_s']:.1f} PDFs/s with "
            f"{figures['all_workers']:.0f} worker process(es): {figures['all_stored']:,.0f} PDFs "
            f"in {figures['all_s']:.1f} s (load average {figures['render_load_before']:.2f} "
            f"before, {figures['render_load_after']:.2f} after)"
        )
        log(
            f"{MONTH_OF_PDFS:,} PDFs in under {MONTH_OF_PDFS_TARGET_SECONDS / 60:.0f} minutes: "
            f"{'met' if month_met else 'not met'} ({figures['month_s']:.1f} s at this rate)"
        )
    if missed:
        log("MISSED: " + "; ".join(missed))
        return 1
    log("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
