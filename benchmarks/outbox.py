"""Benchmark of the e-mail outbox at full size, on PostgreSQL.

    .venv/bin/python benchmarks/outbox.py [--database-url postgresql://...] \
        [--organisations 20000] [--contracts 100000] [--deliver 5000] [--keep]

1. Builds the same database as benchmarks/invoice_run.py (its schema and COPY fill).
2. Publishes a new version of the IMAGE WORKS terms and times `terms.notify_published()`: one
   notice per organisation using the service, to each of its addresses (R-60, R-61), written
   in one transaction as the staff's publish request does.
3. Times `mailer.deliver_due()` for `--deliver` of those e-mails to a real SMTP server on
   loopback (aiosmtpd, from the test extra): e-mails per second, claim and commit included.

Exits 1 when a target is missed: publishing for every organisation in under 30 s (it runs in a
web request), and delivery of at least 50 e-mails/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import sqlalchemy as sa  # noqa: E402
from invoice_run import (  # noqa: E402
    APP_CONFIG,
    DEFAULT_URL,
    Dataset,
    drop_database,
    fill,
    log,
    migrate,
    recreate_database,
    tokyo_instant,
)

from portal import create_app, mailer  # noqa: E402
from portal.clock import clock  # noqa: E402
from portal.config import database_url  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import OutboxEmail, Service, TermsVersion  # noqa: E402
from portal.services import terms  # noqa: E402

PUBLISH_TARGET_S = 30.0
DELIVERY_TARGET_PER_S = 50.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--organisations", type=int, default=20_000)
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--deliver", type=int, default=5_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = database_url(args.database_url)
    today = date(2027, 4, 21)
    recreate_database(url)
    migrate(url)
    fill(url, Dataset(args.organisations, args.contracts, today, 20270421))
    log(f"filled: {args.organisations:,} organisations, {args.contracts:,} contracts")

    from tests.smtp_server import SmtpSink

    sink = SmtpSink().start()
    app = create_app(
        {**APP_CONFIG, "SQLALCHEMY_DATABASE_URI": url, **sink.config(), "MAIL_MAX_ATTEMPTS": 3}
    )
    clock.set(tokyo_instant(today, 10))
    figures: dict[str, float] = {}
    try:
        with app.app_context():
            service = db.session.scalars(sa.select(Service).where(Service.code == "image_works"))
            version = TermsVersion(
                service=service.one(),
                version=99,
                title_ja="IMAGE WORKS 利用規約（改訂）",
                title_en="IMAGE WORKS Terms of Service (revised)",
                body_ja="第1条 適用\n" * 200,
                body_en="Art. 1 Scope\n" * 200,
                effective_on=today + timedelta(days=30),
            )
            db.session.add(version)
            db.session.flush()
            started = time.perf_counter()
            if os.environ.get("PROFILE"):
                import cProfile
                import pstats

                profile = cProfile.Profile()
                told = profile.runcall(terms.notify_published, version)
                pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
            else:
                told = terms.notify_published(version)
            db.session.commit()
            figures["publish_s"] = time.perf_counter() - started
            written = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))
            log(
                f"notify_published: {told:,} organisations, {written:,} e-mails written in "
                f"{figures['publish_s']:.1f} s"
            )
            # Deliver only the first N: the rest are moved out of the way for this run.
            db.session.execute(
                sa.update(OutboxEmail)
                .where(OutboxEmail.id > args.deliver)
                .values(next_attempt_at=clock.now() + timedelta(days=1))
            )
            db.session.commit()
            started = time.perf_counter()
            result = mailer.deliver_due(dict(app.config))
            figures["deliver_s"] = time.perf_counter() - started
            figures["per_s"] = result.sent / figures["deliver_s"]
            log(
                f"deliver_due: {result.sent:,} sent, {result.failed} failed in "
                f"{figures['deliver_s']:.1f} s = {figures['per_s']:.0f} e-mails/s; "
                f"the server received {len(sink.messages):,}"
            )
            db.session.remove()
            db.engine.dispose()
    finally:
        sink.stop()
        clock.set(None)
        if not args.keep:
            drop_database(url)

    log(f"load average at the end {os.getloadavg()[0]:.2f}")
    missed = []
    if figures["publish_s"] >= PUBLISH_TARGET_S:
        missed.append(f"publishing took {figures['publish_s']:.1f} s")
    if figures["per_s"] < DELIVERY_TARGET_PER_S:
        missed.append(f"delivery {figures['per_s']:.0f} e-mails/s")
    for line in missed:
        log(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
