"""Benchmark of incidents and SLA claims at full size, on PostgreSQL (R-50..R-53).

    .venv/bin/python benchmarks/sla.py [--database-url postgresql://...] \
        [--organisations 20000] [--contracts 100000] [--claims 2000] [--keep]

1. Builds the same database as benchmarks/invoice_run.py (its schema and COPY fill).
2. Records an IMAGE WORKS-wide outage and times its first public update
   (`incidents.post_update()`): finding every organisation it touched among all contracts and
   writing one notice to each (R-61), in one transaction as the staff's request does; then
   the resolved update (its end, a new version, and the notices again).
3. Times `claims.options_for()` of one contract (the claims page's computation) with 50 more
   incidents of the last 12 months on record.
4. Files `--claims` claims (staff recording claims received on paper: the same use case as a
   customer's claim, with its PDF rendered and stored), approves them, then times the next
   monthly run (`invoicing.issue_invoices()`) that deducts them (R-53), and checks each claim
   was credited once.

Exits 1 when a target is missed: an update told to every organisation in under 30 s (it runs
in a web request), the claims page's computation under 1 s, a claim filed in under 0.25 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date, datetime, timedelta
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

from portal import create_app  # noqa: E402
from portal.clock import TOKYO, clock  # noqa: E402
from portal.config import database_url  # noqa: E402
from portal.domain.sla import IncidentKind  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import (  # noqa: E402
    ClaimChannel,
    Contract,
    ContractStatus,
    OutboxEmail,
    Service,
    SlaClaim,
    StaffRole,
    UpdateStatus,
    User,
    UserKind,
)
from portal.permissions import Actor  # noqa: E402
from portal.services import claims, incidents, invoicing  # noqa: E402

UPDATE_TARGET_S = 30.0
OPTIONS_TARGET_S = 1.0
FILE_TARGET_S = 0.25


def _staff(role: StaffRole, email: str) -> Actor:
    user = User(
        email=email,
        name=email.split("@")[0],
        password_hash="$argon2id$not-used",  # noqa: S106 - nobody signs in with it
        kind=UserKind.STAFF,
        staff_role=role,
    )
    db.session.add(user)
    db.session.flush()
    return Actor(user)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, datetime.min.time(), TOKYO).replace(hour=hour, minute=minute)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--organisations", type=int, default=20_000)
    parser.add_argument("--contracts", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=2_000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = database_url(args.database_url)
    today = date(2027, 4, 10)  # the run on 2027-04-21 deducts what is approved by then
    recreate_database(url)
    migrate(url)
    fill(url, Dataset(args.organisations, args.contracts, date(2027, 4, 21), 20270421))
    log(f"filled: {args.organisations:,} organisations, {args.contracts:,} contracts")

    app = create_app({**APP_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    figures: dict[str, float] = {}
    try:
        with app.test_request_context():
            clock.set(tokyo_instant(today, 10))
            support = _staff(StaffRole.SUPPORT, "support@bench.example")
            billing = _staff(StaffRole.BILLING, "billing@bench.example")
            service = db.session.scalars(
                sa.select(Service).where(Service.code == "image_works")
            ).one()
            db.session.commit()

            # 2. An outage of every IMAGE WORKS customer, announced, then resolved.
            started = _at(today - timedelta(days=7), 9)  # a Saturday: clear of the windows
            facts = incidents.IncidentFacts(
                kind=IncidentKind.OUTAGE,
                title_ja="ストレージ障害",
                title_en="Storage outage",
                service_ids=(service.id,),
                started_at=started,
            )
            incident = incidents.record(support, facts)
            db.session.commit()
            clock.set(started + timedelta(minutes=20))
            began = time.perf_counter()
            update = incidents.post_update(
                support,
                incident,
                incidents.UpdateText(UpdateStatus.INVESTIGATING, "調査中です。", "Investigating."),
            )
            db.session.commit()
            figures["update_s"] = time.perf_counter() - began
            log(
                f"post_update (investigating): {update.notices_written:,} notices in "
                f"{figures['update_s']:.1f} s"
            )
            clock.set(started + timedelta(hours=31, minutes=30))
            began = time.perf_counter()
            update = incidents.post_update(
                support,
                incident,
                incidents.UpdateText(UpdateStatus.RESOLVED, "復旧しました。", "Resolved."),
                ended_at=started + timedelta(hours=30),
            )
            db.session.commit()
            figures["resolve_s"] = time.perf_counter() - began
            log(
                f"post_update (resolved, a new version): {update.notices_written:,} notices in "
                f"{figures['resolve_s']:.1f} s"
            )

            # 3. The claims page of one contract with 50 more incidents in the last 12 months.
            clock.set(tokyo_instant(today, 10))
            contract = db.session.scalars(
                sa.select(Contract)
                .where(
                    Contract.status == ContractStatus.ACTIVE,
                    Contract.service_start < today - timedelta(days=400),
                )
                .order_by(Contract.id)
                .limit(1)
            ).one()
            for n in range(50):
                day = today - timedelta(days=7 * n + 9)
                incidents.record(
                    support,
                    incidents.IncidentFacts(
                        kind=IncidentKind.OUTAGE,
                        title_ja=f"障害 {n}",
                        title_en=f"Outage {n}",
                        service_ids=(service.id,),
                        organisation_ids=(contract.organisation_id,),
                        started_at=_at(day, 12),
                        ended_at=_at(day, 14),
                        occurrence_announced_at=_at(day, 12, 30),
                        recovery_announced_at=_at(day, 14, 10),
                    ),
                )
            db.session.commit()
            timings = []
            for _ in range(5):
                began = time.perf_counter()
                options = claims.options_for(contract, clock.now(), today)
                timings.append(time.perf_counter() - began)
                db.session.rollback()
            figures["options_s"] = sorted(timings)[2]
            log(
                f"options_for one contract: {len(options)} incidents, median of 5 "
                f"{figures['options_s'] * 1000:.0f} ms"
            )

            # 4. Claims filed and approved, then deducted by the next monthly run.
            first_of_each = (
                sa.select(sa.func.min(Contract.id))
                .where(Contract.status == ContractStatus.ACTIVE, Contract.service_id == service.id)
                .where(Contract.service_start < started.date())
                .group_by(Contract.organisation_id)
            )
            chosen = db.session.scalars(
                sa.select(Contract)
                .where(Contract.id.in_(first_of_each))
                .order_by(Contract.id)
                .limit(args.claims)
            ).all()
            began = time.perf_counter()
            filed = []
            for found in chosen:
                claim = claims.file(
                    support, found, incident, channel=ClaimChannel.PAPER, received_on=today
                )
                filed.append(claim.id)
                db.session.commit()
            figures["file_s"] = (time.perf_counter() - began) / max(1, len(filed))
            log(
                f"claims filed: {len(filed):,}, {figures['file_s'] * 1000:.0f} ms each "
                "(computation, PDF, notice, commit)"
            )
            began = time.perf_counter()
            for claim_id in filed:
                claims.review(billing, db.session.get(SlaClaim, claim_id), claims.Decision.APPROVE)
                db.session.commit()
            log(f"claims approved in {time.perf_counter() - began:.1f} s")
            run_day = date(2027, 4, 21)
            clock.set(tokyo_instant(run_day, 10))
            began = time.perf_counter()
            summary = invoicing.issue_invoices(run_day)
            figures["run_s"] = time.perf_counter() - began
            credited = db.session.scalar(
                sa.select(sa.func.count()).where(
                    SlaClaim.credited_amount == SlaClaim.approved_amount
                )
            )
            log(
                f"issue_invoices {run_day}: {summary.issued:,} invoices in "
                f"{figures['run_s']:.1f} s; claims credited in full {credited:,} of {len(filed):,}"
            )
            figures["credited_all"] = float(credited == len(filed))
            written = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail))
            log(f"outbox: {written:,} e-mails written in all")
            db.session.remove()
            db.engine.dispose()
    finally:
        clock.set(None)
        if not args.keep:
            drop_database(url)

    log(f"load average at the end {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    missed = []
    if figures["update_s"] >= UPDATE_TARGET_S:
        missed.append(f"an update took {figures['update_s']:.1f} s")
    if figures["options_s"] >= OPTIONS_TARGET_S:
        missed.append(f"the claims page's computation took {figures['options_s']:.2f} s")
    if figures["file_s"] >= FILE_TARGET_S:
        missed.append(f"filing a claim took {figures['file_s']:.2f} s")
    if not figures["credited_all"]:
        missed.append("not every approved claim was credited in full")
    for line in missed:
        log(f"MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
