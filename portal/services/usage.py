"""R-15: storage used against the plan's capacity, and the plan that fits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from portal.clock import clock, tokyo_date
from portal.domain import quotes
from portal.extensions import db
from portal.models import Contract, Plan, UsageReading, UsageSource, User
from portal.presentation import long_date
from portal.services import audit
from portal.services.errors import Conflict, PortalError
from portal.services.requests import price_terms
from portal.transaction import begin_writing

MAX_USED_GB = Decimal("9999999999.99")
# A reading may be a little ahead of our clock (the service's clock drifts), never days ahead.
MAX_CLOCK_SKEW = timedelta(minutes=10)


@dataclass(frozen=True)
class UsageView:
    reading: UsageReading | None
    capacity_gb: int | None
    percent: int | None
    over_capacity: bool
    suggested: Plan | None  # the cheapest plan on sale that holds the usage


def parse_used_gb(value: object) -> Decimal:
    try:
        used = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise PortalError(_("Enter the storage used in GB, e.g. 123.45."), field="used_gb") from exc
    if not used.is_finite() or used < 0 or used > MAX_USED_GB:
        raise PortalError(_("Enter the storage used in GB, e.g. 123.45."), field="used_gb")
    return used.quantize(Decimal("0.01"))


class DifferentReading(Conflict):
    """The same measurement time was already recorded with another value."""


def record(
    contract: Contract,
    used_gb: Decimal,
    measured_at: datetime,
    *,
    source: UsageSource,
    user: User | None,
    ip: str = "",
) -> tuple[UsageReading, bool]:
    """Keep one reading per measurement time; `created` is False when it was already kept.

    The same measurement sent twice (or twice at once) is kept once; another value for a time
    already recorded is refused rather than silently dropped.
    """
    if measured_at.tzinfo is None:
        raise PortalError(_("Give the measurement time with its time zone."), field="measured_at")
    if measured_at > clock.now() + MAX_CLOCK_SKEW:
        raise PortalError(_("The measurement time is in the future."), field="measured_at")
    if tokyo_date(measured_at) < contract.service_start:
        # Nothing was stored before the service began (issue 13: a reading of year 0001).
        raise PortalError(
            _(
                "The measurement time is before the service began (%(date)s).",
                date=long_date(contract.service_start),
            ),
            field="measured_at",
        )
    reading = UsageReading(
        contract=contract,
        used_gb=used_gb,
        measured_at=measured_at,
        source=source,
        recorded_by_id=user.id if user else None,
    )
    begin_writing()  # SQLite: the savepoint must not be the transaction (portal/transaction.py)
    try:
        with db.session.begin_nested():
            db.session.add(reading)
    except IntegrityError:
        existing = db.session.scalars(
            sa.select(UsageReading).where(
                UsageReading.contract_id == contract.id, UsageReading.measured_at == measured_at
            )
        ).one()
        if existing.used_gb != used_gb:
            raise DifferentReading(
                _("Another value is already recorded for this measurement time."),
                field="used_gb",
            ) from None
        return existing, False
    audit.record(
        "usage.recorded",
        user=user,
        organisation_id=contract.organisation_id,
        subject=reading,
        ip=ip,
        contract_id=contract.id,
        used_gb=str(used_gb),
        source=source.value,
    )
    return reading, True


def latest(contract: Contract) -> UsageReading | None:
    return db.session.scalar(
        sa.select(UsageReading)
        .where(UsageReading.contract_id == contract.id)
        .order_by(UsageReading.measured_at.desc())
        .limit(1)
    )


def view(contract: Contract) -> UsageView:
    reading = latest(contract)
    capacity = contract.plan.capacity_gb
    if reading is None or not capacity:
        return UsageView(reading, capacity, None, False, None)
    used = float(reading.used_gb)
    percent = int(used * 100 // capacity)
    over = used > capacity
    suggested: Plan | None = None
    terms = price_terms(contract.service)
    best = quotes.suggested_plan(terms.plans, used)
    # Suggest a change only when the usage does not fit, or a cheaper plan would hold it.
    if (
        best is not None
        and best.id != contract.plan_id
        and (over or best.monthly_fee < contract.monthly_fee)
    ):
        suggested = db.session.get(Plan, best.id)
    return UsageView(reading, capacity, percent, over, suggested)
