"""The service level agreement: downtime, maintenance windows, compensation and the claim
window (R-50..R-53, with their readings in RULES.md).

Pure functions over aware datetimes and dates. Nothing here knows what time it is: callers
pass the instants recorded by staff and the Tokyo business date (R-01) a claim is made on.

F is the monthly fee in force for the contract in the billing month the incident started in
(R-51 reading). Per billing month the portal pays, on claim:

- an outage whose counted downtime (its minutes outside the maintenance windows) is over
  24 hours: floor(F x minutes / 43,200), i.e. F x 1/30 x hours / 24 to the minute;
- registered data lost and not restored: F;
- an incident over 60 minutes whose occurrence or recovery was announced more than 60 minutes
  late: floor(F / 30), once per incident;
- a failure of the security obligations: floor(F / 30) per case;

and never more than F for one billing month in all.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from portal.domain import calendar

TOKYO = ZoneInfo("Asia/Tokyo")

# F x 1/30 x hours / 24 = F x minutes / (30 x 24 x 60).
MINUTES_DIVISOR = 30 * 24 * 60  # 43,200
# only a continuous outage over 24 hours is compensated.
CONTINUOUS_OUTAGE_MINUTES = 24 * 60
# occurrence and recovery are announced within 60 minutes, for incidents over 60 minutes.
ANNOUNCEMENT_MINUTES = 60
# a late announcement and a security failure each pay one thirtieth of F.
DAYS_PER_MONTH = 30
# the right to compensation lapses three months after the event.
CLAIM_WINDOW_MONTHS = 3
# regular maintenance on the first and third Monday of each month, 02:00-06:00 Tokyo.
REGULAR_WINDOW_MONDAYS = (1, 3)
REGULAR_WINDOW_START = time(2, 0)
REGULAR_WINDOW_END = time(6, 0)

_MINUTE = timedelta(minutes=1)
_MONDAY = 0


class IncidentKind(enum.StrEnum):
    """R-50 reading: what staff record."""

    OUTAGE = "outage"
    DATA_LOST = "data_lost"  # registered data lost and not restored
    SECURITY_FAILURE = "security_failure"  # a failure of the security obligations


class CompensationKind(enum.StrEnum):
    """R-51: the four grounds of compensation."""

    OUTAGE = "outage"
    DATA_LOST = "data_lost"
    LATE_ANNOUNCEMENT = "late_announcement"
    SECURITY_FAILURE = "security_failure"


class WindowKind(enum.StrEnum):
    REGULAR = "regular"  # the rule's first and third Monday
    ANNOUNCED = "announced"  # extra maintenance announced before it started


@dataclass(frozen=True)
class Window:
    """A maintenance window: downtime inside it does not count (R-50)."""

    start: datetime
    end: datetime
    kind: WindowKind

    def __post_init__(self) -> None:
        _require_aware(self.start, self.end)
        if self.end <= self.start:
            raise ValueError("a maintenance window ends after it starts")


@dataclass(frozen=True)
class Incident:
    """The facts of one version of an incident, as staff recorded them (R-50 reading).

    `maintenance` marks the downtime of maintenance carried out unannounced or past its
    announced end: the SLA reflects it in availability only (IW SLA, メンテナンス告知), so
    no announcement is owed for it.
    """

    kind: IncidentKind
    started_at: datetime
    ended_at: datetime | None  # None while the incident is open
    occurrence_announced_at: datetime | None = None
    recovery_announced_at: datetime | None = None
    maintenance: bool = False

    def __post_init__(self) -> None:
        _require_aware(
            self.started_at,
            self.ended_at,
            self.occurrence_announced_at,
            self.recovery_announced_at,
        )
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("an incident ends after it starts")

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


@dataclass(frozen=True)
class CompensationLine:
    """One ground of compensation with what it was computed from."""

    kind: CompensationKind
    amount: int
    minutes: int | None = None  # the counted minutes of an outage
    late_occurrence: bool = False
    late_recovery: bool = False


@dataclass(frozen=True)
class Assessment:
    """What one incident is worth to one contract (R-51), and until when it can be claimed."""

    billing_month: calendar.BillingMonth
    monthly_fee: int  # F
    total_minutes: int  # start to end
    counted_minutes: int  # outside maintenance windows
    lines: tuple[CompensationLine, ...]
    subtotal: int  # before the month's cap
    cap_left: int  # F less what the billing month's other claims already take
    claim_deadline: date

    @property
    def amount(self) -> int:
        """R-51: the compensation, never more than what the month's cap leaves."""
        return min(self.subtotal, self.cap_left)

    @property
    def capped(self) -> bool:
        return self.amount < self.subtotal

    @property
    def maintenance_minutes(self) -> int:
        return self.total_minutes - self.counted_minutes


class ClaimRefusal(enum.StrEnum):
    """Why an incident cannot be claimed for on a day (R-52)."""

    OPEN = "incident_open"  # the incident has not ended: its compensation is not known yet
    BEFORE_END = "before_end"  # a claim dated before the incident ended
    WINDOW_CLOSED = "window_closed"  # filed after the claim window: the right has lapsed
    NOTHING_TO_CLAIM = "nothing_to_claim"  # the incident earns no compensation


@dataclass(frozen=True)
class Scope:
    """What an incident affected (R-50 reading): these services and, when the sets are not
    empty, only these plans or these organisations."""

    service_ids: frozenset[int]
    plan_ids: frozenset[int] = frozenset()
    organisation_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ContractFacts:
    """What the SLA needs of a contract: who holds it, when it ran, its plans and fees."""

    organisation_id: int
    service_id: int
    anchor_day: int
    service_start: date
    ended_on: date | None
    # The plan from each day on (the first from the start); an upgrade switches on its
    # effective date.
    plans: tuple[tuple[date, int], ...]
    initial_fee: int
    # The fee from the first day of a billing month on (R-21: the month after the change).
    fee_changes: tuple[tuple[date, int], ...] = ()

    def plan_on(self, day: date) -> int:
        plan = self.plans[0][1]
        for since, plan_id in self.plans:
            if since <= day:
                plan = plan_id
        return plan

    def monthly_fee_in(self, month: calendar.BillingMonth) -> int:
        return monthly_fee_in(month, self.initial_fee, self.fee_changes)


def touches(
    scope: Scope, started_at: datetime, ended_at: datetime | None, contract: ContractFacts
) -> bool:
    """R-52: whether an incident touched a contract: the contract's service, plan (on the
    day the incident started) and organisation are in its scope, and the contract ran at
    some time during it."""
    _require_aware(started_at, ended_at)
    first = started_at.astimezone(TOKYO).date()
    last = ended_at.astimezone(TOKYO).date() if ended_at is not None else None
    if contract.service_id not in scope.service_ids:
        return False
    if scope.organisation_ids and contract.organisation_id not in scope.organisation_ids:
        return False
    if last is not None and contract.service_start > last:
        return False
    if contract.ended_on is not None and contract.ended_on < first:
        return False
    if scope.plan_ids:
        return contract.plan_on(max(first, contract.service_start)) in scope.plan_ids
    return True


# --- maintenance windows (R-50) ------------------------------------------------------------


def nth_monday(year: int, month: int, n: int) -> date:
    """The n-th Monday of a calendar month (n from 1)."""
    first = date(year, month, 1)
    offset = (_MONDAY - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def regular_window_on(day: date) -> Window:
    """R-50: the regular window of a maintenance Monday, 02:00-06:00 Tokyo."""
    return Window(
        start=datetime.combine(day, REGULAR_WINDOW_START, TOKYO),
        end=datetime.combine(day, REGULAR_WINDOW_END, TOKYO),
        kind=WindowKind.REGULAR,
    )


def regular_windows(start: datetime, end: datetime) -> list[Window]:
    """R-50: the regular windows (1st and 3rd Monday, 02:00-06:00 Tokyo) that overlap
    [start, end), in order."""
    _require_aware(start, end)
    first = start.astimezone(TOKYO).date()
    last = end.astimezone(TOKYO).date()
    index = first.year * 12 + first.month - 1
    found = []
    while index <= last.year * 12 + last.month - 1:
        year, month = divmod(index, 12)
        for n in REGULAR_WINDOW_MONDAYS:
            window = regular_window_on(nth_monday(year, month + 1, n))
            if window.start < end and window.end > start:
                found.append(window)
        index += 1
    return found


def announced_window(
    planned_start: datetime, planned_end: datetime, announced_at: datetime | None
) -> Window | None:
    """R-50 reading: extra maintenance is a window only if announced before it started, and
    only up to its announced end (an overrun counts as downtime)."""
    _require_aware(planned_start, planned_end, announced_at)
    if announced_at is None or announced_at >= planned_start or planned_end <= planned_start:
        return None
    return Window(planned_start, planned_end, WindowKind.ANNOUNCED)


# --- downtime ----------------------------------------------------------------------------------


def minutes_between(start: datetime, end: datetime) -> int:
    """Whole minutes from start to end (instants are recorded to the minute)."""
    _require_aware(start, end)
    return max(0, int((end - start) // _MINUTE))


def _merged(windows: Iterable[Window], start: datetime, end: datetime) -> list[tuple]:
    """The windows clipped to [start, end) and merged where they overlap."""
    spans = sorted(
        (max(w.start, start), min(w.end, end)) for w in windows if w.start < end and w.end > start
    )
    merged: list[list[datetime]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [tuple(span) for span in merged]


def counted_minutes(start: datetime, end: datetime, windows: Iterable[Window]) -> int:
    """R-50 reading: an outage's minutes less those inside a regular or announced window
    (overlapping windows count once)."""
    inside = sum(minutes_between(s, e) for s, e in _merged(windows, start, end))
    return minutes_between(start, end) - inside


def downtime_start(start: datetime, end: datetime, windows: Iterable[Window]) -> datetime:
    """The first instant of an outage outside every window: when it became downtime."""
    at = start
    for s, e in _merged(windows, start, end):
        if s <= at < e:
            at = e
    return min(at, end)


# --- compensation (R-51) -------------------------------------------------------------------


def monthly_fee_in(
    month: calendar.BillingMonth, initial_fee: int, changes: Sequence[tuple[date, int]] = ()
) -> int:
    """R-51 reading: F, the monthly fee in force in a billing month. `changes` are the fee's
    changes as (first day it applies, new fee); after an upgrade the new fee applies from its
    billing month (R-21)."""
    fee = initial_fee
    for applies_from, new_fee in sorted(changes):
        if applies_from <= month.start:
            fee = new_fee
    return fee


def claim_deadline(ended_at: datetime) -> date:
    """R-52 reading: a claim may be filed until the same day three months after the incident
    ended (Tokyo date, inclusive); a day that month lacks is its last day."""
    return calendar.add_months_clamped(ended_at.astimezone(TOKYO).date(), CLAIM_WINDOW_MONTHS)


def billing_month_of_incident(incident: Incident, anchor_day: int) -> calendar.BillingMonth:
    """R-51 reading: an incident belongs to the billing month it started in (Tokyo date)."""
    return calendar.billing_month_of(incident.started_at.astimezone(TOKYO).date(), anchor_day)


def assess(
    incident: Incident,
    *,
    monthly_fee: int,
    anchor_day: int,
    windows: Iterable[Window] = (),
    already_this_month: int = 0,
) -> Assessment:
    """R-50/R-51: the compensation one ended incident earns a contract whose fee in the
    incident's billing month is `monthly_fee`, given the maintenance windows and what the
    month's other claims already take (`already_this_month`, for the cap of F)."""
    if incident.ended_at is None:
        raise ValueError("an open incident has no compensation yet")
    if monthly_fee < 0 or already_this_month < 0:
        raise ValueError("fees and amounts are not negative")
    windows = list(windows)
    start, end = incident.started_at, incident.ended_at
    total = minutes_between(start, end)
    counted = counted_minutes(start, end, windows) if incident.kind == IncidentKind.OUTAGE else 0
    fee = monthly_fee
    lines: list[CompensationLine] = []

    if incident.kind == IncidentKind.OUTAGE and counted > CONTINUOUS_OUTAGE_MINUTES:
        lines.append(
            CompensationLine(
                CompensationKind.OUTAGE, fee * counted // MINUTES_DIVISOR, minutes=counted
            )
        )
    elif incident.kind == IncidentKind.DATA_LOST:
        lines.append(CompensationLine(CompensationKind.DATA_LOST, fee))
    elif incident.kind == IncidentKind.SECURITY_FAILURE:
        lines.append(CompensationLine(CompensationKind.SECURITY_FAILURE, fee // DAYS_PER_MONTH))

    late = late_announcements(incident, windows)
    if late is not None:
        late_occurrence, late_recovery = late
        lines.append(
            CompensationLine(
                CompensationKind.LATE_ANNOUNCEMENT,
                fee // DAYS_PER_MONTH,
                late_occurrence=late_occurrence,
                late_recovery=late_recovery,
            )
        )
    earned = tuple(line for line in lines if line.amount > 0)
    return Assessment(
        billing_month=billing_month_of_incident(incident, anchor_day),
        monthly_fee=fee,
        total_minutes=total,
        counted_minutes=counted if incident.kind == IncidentKind.OUTAGE else total,
        lines=earned,
        subtotal=sum(line.amount for line in earned),
        cap_left=max(0, fee - already_this_month),
        claim_deadline=claim_deadline(end),
    )


def late_announcements(
    incident: Incident, windows: Iterable[Window] = ()
) -> tuple[bool, bool] | None:
    """R-51 reading: for an incident over 60 minutes (an outage: of counted downtime), whether
    its occurrence was announced more than 60 minutes after it began (an outage: after its
    downtime began) and whether its recovery was announced more than 60 minutes after its end.
    None when neither was late, or the incident was not over 60 minutes. Never announced is
    late."""
    if incident.ended_at is None or incident.maintenance:
        return None
    windows = list(windows)
    start, end = incident.started_at, incident.ended_at
    if incident.kind == IncidentKind.OUTAGE:
        length = counted_minutes(start, end, windows)
        start = downtime_start(start, end, windows)
    else:
        length = minutes_between(start, end)
    if length <= ANNOUNCEMENT_MINUTES:
        return None
    allowed = timedelta(minutes=ANNOUNCEMENT_MINUTES)
    occurrence = incident.occurrence_announced_at
    recovery = incident.recovery_announced_at
    late_occurrence = occurrence is None or occurrence > start + allowed
    late_recovery = recovery is None or recovery > end + allowed
    if not (late_occurrence or late_recovery):
        return None
    return late_occurrence, late_recovery


def claim_refusal(incident: Incident, on: date) -> ClaimRefusal | None:
    """R-52: whether a claim made (or received) on the Tokyo date `on` is in time."""
    if incident.ended_at is None:
        return ClaimRefusal.OPEN
    if on < incident.ended_at.astimezone(TOKYO).date():
        return ClaimRefusal.BEFORE_END
    if on > claim_deadline(incident.ended_at):
        return ClaimRefusal.WINDOW_CLOSED
    return None


def _require_aware(*instants: datetime | None) -> None:
    for instant in instants:
        if instant is not None and instant.tzinfo is None:
            raise ValueError("instants must be timezone-aware")
