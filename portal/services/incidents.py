"""Incidents and maintenance: what staff record, who they touched, and what customers see
(R-50, R-52, R-61).

An incident's facts are versions: recording it writes version 1; its first public update
announces it (a version with the announcement time, when none was given); the resolved update
sets its end and recovery announcement; a correction is a version with its reason. A version
is never changed (triggers, migration 0005), so a claim always names the facts it rests on.
Every public update is a notice (R-61) to the operations contact of each organisation the
incident touched, written to the outbox in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.clock import TOKYO, clock, tokyo_date
from portal.domain import sla
from portal.domain.sla import IncidentKind
from portal.extensions import db
from portal.models import (
    Contract,
    ContractEvent,
    ContractStatus,
    Incident,
    IncidentUpdate,
    IncidentVersion,
    Maintenance,
    Organisation,
    Plan,
    PriceList,
    Service,
    UpdateStatus,
    VersionChange,
)
from portal.paging import Page, paginate
from portal.permissions import Actor, can_manage_incidents
from portal.presentation import tokyo_minute
from portal.services import audit, mail
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.transaction import begin_writing

MAX_TITLE = 200
MAX_MESSAGE = 4000
MAX_REASON = 1000
MIN_REASON = 5
# Instants staff may enter: a typo in the year is caught, and nothing reaches the database
# that it cannot hold.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
HISTORY_DAYS = 365  # customers see the last 12 months of incidents
UPCOMING_DAYS = 60  # maintenance shown ahead
MAX_SCOPE_IDS = 500


# --- input -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentFacts:
    """What staff enter about an incident (instants aware; Tokyo time in the forms)."""

    kind: IncidentKind
    title_ja: str
    title_en: str
    service_ids: tuple[int, ...]
    started_at: datetime
    plan_ids: tuple[int, ...] = ()
    organisation_ids: tuple[int, ...] = ()
    ended_at: datetime | None = None
    occurrence_announced_at: datetime | None = None
    recovery_announced_at: datetime | None = None

    @classmethod
    def of(cls, version: IncidentVersion) -> IncidentFacts:
        return cls(
            kind=version.kind,
            title_ja=version.title_ja,
            title_en=version.title_en,
            service_ids=tuple(version.service_ids),
            plan_ids=tuple(version.plan_ids or ()),
            organisation_ids=tuple(version.organisation_ids or ()),
            started_at=version.started_at,
            ended_at=version.ended_at,
            occurrence_announced_at=version.occurrence_announced_at,
            recovery_announced_at=version.recovery_announced_at,
        )


@dataclass(frozen=True)
class UpdateText:
    """A public update of the timeline, in both languages (notices go out in each
    organisation's language)."""

    status: UpdateStatus
    message_ja: str
    message_en: str


@dataclass(frozen=True)
class MaintenanceFacts:
    service_ids: tuple[int, ...]
    title_ja: str
    title_en: str
    planned_start: datetime
    planned_end: datetime


def to_minute(instant: datetime | None) -> datetime | None:
    """Instants are recorded to the minute (R-50 reading)."""
    return None if instant is None else instant.replace(second=0, microsecond=0)


def _check_instant(value: datetime | None, name: str, now: datetime) -> None:
    if value is None:
        return
    if value.tzinfo is None:
        raise PortalError(_("Enter a date and time."), field=name)
    if value < EARLIEST:
        raise PortalError(_("Enter a date after 2000."), field=name)
    if value > now:
        raise PortalError(_("This time is in the future."), field=name)


def _text(value: str, name: str, limit: int, *, required: bool = True) -> str:
    value = (value or "").strip()
    if "\x00" in value:
        raise PortalError(_("This text contains a character that cannot be kept."), field=name)
    if required and not value:
        raise PortalError(_("This field is required."), field=name)
    if len(value) > limit:
        raise PortalError(_("Use at most %(max)d characters.", max=limit), field=name)
    return value


def _check_scope(facts: IncidentFacts | MaintenanceFacts) -> None:
    services = set(facts.service_ids)
    if not services:
        raise PortalError(_("Choose the services affected."), field="service_ids")
    known = set(db.session.scalars(sa.select(Service.id).where(Service.id.in_(services))))
    if known != services:
        raise PortalError(_("Choose the services affected."), field="service_ids")
    if not isinstance(facts, IncidentFacts):
        return
    if len(facts.plan_ids) > MAX_SCOPE_IDS or len(facts.organisation_ids) > MAX_SCOPE_IDS:
        raise PortalError(_("Choose fewer plans or organisations."), field="plan_ids")
    plans = set(facts.plan_ids)
    if plans:
        found = set(
            db.session.scalars(
                sa.select(Plan.id)
                .join(PriceList, PriceList.id == Plan.price_list_id)
                .where(Plan.id.in_(plans), PriceList.service_id.in_(services))
            )
        )
        if found != plans:
            raise PortalError(_("Choose plans of the services affected."), field="plan_ids")
    organisations = set(facts.organisation_ids)
    if organisations:
        found = set(
            db.session.scalars(sa.select(Organisation.id).where(Organisation.id.in_(organisations)))
        )
        if found != organisations:
            raise PortalError(_("Choose existing organisations."), field="organisation_ids")


def validate(facts: IncidentFacts, now: datetime) -> IncidentFacts:
    """Check what staff entered; the facts to the minute, texts trimmed."""
    facts = replace(
        facts,
        title_ja=_text(facts.title_ja, "title_ja", MAX_TITLE),
        title_en=_text(facts.title_en, "title_en", MAX_TITLE),
        service_ids=tuple(sorted(set(facts.service_ids))),
        plan_ids=tuple(sorted(set(facts.plan_ids))),
        organisation_ids=tuple(sorted(set(facts.organisation_ids))),
        started_at=to_minute(facts.started_at),
        ended_at=to_minute(facts.ended_at),
        occurrence_announced_at=to_minute(facts.occurrence_announced_at),
        recovery_announced_at=to_minute(facts.recovery_announced_at),
    )
    if facts.kind not in IncidentKind:
        raise PortalError(_("Choose the kind of incident."), field="kind")
    for name in ("started_at", "ended_at", "occurrence_announced_at", "recovery_announced_at"):
        _check_instant(getattr(facts, name), name, now)
    if facts.ended_at is not None and facts.ended_at < facts.started_at:
        raise PortalError(_("The end must come after the start."), field="ended_at")
    announced = facts.occurrence_announced_at
    if announced is not None and announced < facts.started_at:
        raise PortalError(
            _("An occurrence is announced after it began."), field="occurrence_announced_at"
        )
    recovered = facts.recovery_announced_at
    if recovered is not None:
        if facts.ended_at is None:
            raise PortalError(
                _("Enter the end before the announcement of the recovery."), field="ended_at"
            )
        if recovered < facts.ended_at:
            raise PortalError(
                _("A recovery is announced after the end."), field="recovery_announced_at"
            )
    _check_scope(facts)
    return facts


def _check_update(update: UpdateText) -> UpdateText:
    if update.status not in UpdateStatus:
        raise PortalError(_("Choose the status."), field="status")
    return replace(
        update,
        message_ja=_text(update.message_ja, "message_ja", MAX_MESSAGE),
        message_en=_text(update.message_en, "message_en", MAX_MESSAGE),
    )


def _check_reason(reason: str) -> str:
    reason = _text(reason, "reason", MAX_REASON)
    if len(reason) < MIN_REASON:
        raise PortalError(
            _("Give the reason in %(min)d to %(max)d characters.", min=MIN_REASON, max=MAX_REASON),
            field="reason",
        )
    return reason


# --- recording, updating, correcting -----------------------------------------------------------


def _allowed(actor: Actor) -> None:
    if not can_manage_incidents(actor):
        raise NotAllowed(_("Only support staff and staff administrators record incidents."))


def record(
    actor: Actor,
    facts: IncidentFacts,
    *,
    update: UpdateText | None = None,
    ip: str = "",
    maintenance: Maintenance | None = None,
) -> Incident:
    """Record an incident (version 1), and publish its first update if one is given."""
    _allowed(actor)
    now = to_minute(clock.now())
    facts = validate(facts, clock.now())
    if update is not None:
        update = _check_update(update)
        if facts.occurrence_announced_at is None:
            # The update being published now is the announcement of the occurrence.
            facts = replace(facts, occurrence_announced_at=max(now, facts.started_at))
        if update.status == UpdateStatus.RESOLVED:
            if facts.ended_at is None:
                raise PortalError(_("Enter when the service recovered."), field="ended_at")
            if facts.recovery_announced_at is None:
                facts = replace(facts, recovery_announced_at=max(now, facts.ended_at))
        elif facts.ended_at is not None:
            raise PortalError(
                _("An incident that has ended takes a resolved update."), field="status"
            )
    incident = Incident(created_by_id=actor.user.id, maintenance=maintenance)
    db.session.add(incident)
    db.session.flush()
    version = _version(incident, 1, facts, VersionChange.RECORDED, actor)
    db.session.add(version)
    db.session.flush()
    audit.record(
        "incident.recorded",
        actor=actor,
        subject=incident,
        ip=ip,
        kind=facts.kind.value,
        started_at=facts.started_at.isoformat(),
        ended_at=facts.ended_at.isoformat() if facts.ended_at else None,
    )
    if update is not None:
        _publish(actor, incident, version, update)
    return incident


def post_update(
    actor: Actor,
    incident: Incident,
    update: UpdateText,
    *,
    ended_at: datetime | None = None,
    ip: str = "",
) -> IncidentUpdate:
    """Publish an update of the timeline (R-61). The first update announces the occurrence;
    the resolved update sets the end (when not recorded yet) and announces the recovery."""
    _allowed(actor)
    update = _check_update(update)
    now = to_minute(clock.now())
    current = current_version(incident)
    facts = IncidentFacts.of(current)
    changes: list[VersionChange] = []
    if facts.occurrence_announced_at is None:
        facts = replace(facts, occurrence_announced_at=max(now, facts.started_at))
        changes.append(VersionChange.ANNOUNCED)
    if update.status == UpdateStatus.RESOLVED:
        if facts.ended_at is None:
            if ended_at is None:
                raise PortalError(_("Enter when the service recovered."), field="ended_at")
            facts = replace(facts, ended_at=to_minute(ended_at))
        if facts.recovery_announced_at is None:
            facts = replace(facts, recovery_announced_at=max(now, facts.ended_at))
        if facts != IncidentFacts.of(current):
            changes.append(VersionChange.RESOLVED)
    elif facts.ended_at is not None:
        raise PortalError(_("An incident that has ended takes a resolved update."), field="status")
    if changes:
        facts = validate(facts, clock.now())
        current = _new_version(actor, incident, current, facts, changes[-1])
    published = _publish(actor, incident, current, update)
    audit.record(
        "incident.updated",
        actor=actor,
        subject=incident,
        ip=ip,
        status=update.status.value,
        version=current.version,
    )
    return published


def correct(
    actor: Actor, incident: Incident, facts: IncidentFacts, *, reason: str, ip: str = ""
) -> IncidentVersion:
    """A correction is a new version with its reason, never an overwrite (R-50 reading)."""
    _allowed(actor)
    reason = _check_reason(reason)
    current = current_version(incident)
    facts = validate(facts, clock.now())
    if facts == IncidentFacts.of(current):
        raise PortalError(_("Nothing was changed."), field="reason")
    version = _new_version(actor, incident, current, facts, VersionChange.CORRECTED, reason)
    audit.record(
        "incident.corrected",
        actor=actor,
        subject=incident,
        ip=ip,
        version=version.version,
        reason=reason,
    )
    return version


def _version(
    incident: Incident,
    number: int,
    facts: IncidentFacts,
    change: VersionChange,
    actor: Actor,
    reason: str = "",
) -> IncidentVersion:
    return IncidentVersion(
        incident_id=incident.id,
        version=number,
        kind=facts.kind,
        title_ja=facts.title_ja,
        title_en=facts.title_en,
        service_ids=list(facts.service_ids),
        plan_ids=list(facts.plan_ids),
        organisation_ids=list(facts.organisation_ids),
        started_at=facts.started_at,
        ended_at=facts.ended_at,
        occurrence_announced_at=facts.occurrence_announced_at,
        recovery_announced_at=facts.recovery_announced_at,
        change=change,
        reason=reason,
        created_by_id=actor.user.id,
    )


def _new_version(
    actor: Actor,
    incident: Incident,
    current: IncidentVersion,
    facts: IncidentFacts,
    change: VersionChange,
    reason: str = "",
) -> IncidentVersion:
    """The next version, if nobody wrote one meanwhile (two corrections at once: one wins)."""
    begin_writing()
    number = current.version + 1
    moved = db.session.execute(
        sa.update(Incident)
        .where(Incident.id == incident.id, Incident.current_version == current.version)
        .values(current_version=number)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(_("Someone changed this incident meanwhile. Check it and try again."))
    version = _version(incident, number, facts, change, actor, reason)
    try:
        with db.session.begin_nested():
            db.session.add(version)
    except IntegrityError as exc:
        raise Conflict(
            _("Someone changed this incident meanwhile. Check it and try again.")
        ) from exc
    db.session.refresh(incident)
    return version


def _publish(
    actor: Actor, incident: Incident, version: IncidentVersion, update: UpdateText
) -> IncidentUpdate:
    """The update, and a notice of it to the operations contact of each organisation the
    incident touched (R-61), in the organisation's language."""
    published = IncidentUpdate(
        incident_id=incident.id,
        status=update.status,
        message_ja=update.message_ja,
        message_en=update.message_en,
        posted_by_id=actor.user.id,
    )
    db.session.add(published)
    db.session.flush()
    recipients = [
        (organisation, [organisation.operations_contact_email or mail.notice_address(organisation)])
        for organisation in affected_organisations(version)
    ]
    published.notices_written = mail.notify_many(
        recipients,
        "incident_update",
        context={
            "incident": incident,
            "version": version,
            "update": published,
            "services": _service_names(version.service_ids),
            "incident_url": mail.absolute_url("sla.incident", incident_id=incident.id),
        },
    )
    return published


def _service_names(service_ids: Iterable[int]) -> list[Service]:
    return list(db.session.scalars(sa.select(Service).where(Service.id.in_(list(service_ids)))))


# --- maintenance (R-50) ----------------------------------------------------------------------


def _check_maintenance(facts: MaintenanceFacts) -> MaintenanceFacts:
    facts = replace(
        facts,
        title_ja=_text(facts.title_ja, "title_ja", MAX_TITLE),
        title_en=_text(facts.title_en, "title_en", MAX_TITLE),
        service_ids=tuple(sorted(set(facts.service_ids))),
        planned_start=to_minute(facts.planned_start),
        planned_end=to_minute(facts.planned_end),
    )
    latest = clock.now() + timedelta(days=366)
    for name in ("planned_start", "planned_end"):
        value = getattr(facts, name)
        if value.tzinfo is None:
            raise PortalError(_("Enter a date and time."), field=name)
        if value < EARLIEST or value > latest:
            raise PortalError(_("Enter a time within the next 12 months."), field=name)
    if facts.planned_end <= facts.planned_start:
        raise PortalError(_("The end must come after the start."), field="planned_end")
    _check_scope(facts)
    return facts


def announce_maintenance(actor: Actor, facts: MaintenanceFacts, *, ip: str = "") -> Maintenance:
    """Extra maintenance announced now, before it starts (R-50): a window that does not
    count as downtime; the affected organisations are told (R-61)."""
    _allowed(actor)
    facts = _check_maintenance(facts)
    now = clock.now()
    if facts.planned_start <= now:
        raise PortalError(
            _(
                "Maintenance is announced before it starts. Record maintenance that was not "
                "announced as such."
            ),
            field="planned_start",
        )
    maintenance = Maintenance(
        service_ids=list(facts.service_ids),
        title_ja=facts.title_ja,
        title_en=facts.title_en,
        announced_at=now,
        planned_start=facts.planned_start,
        planned_end=facts.planned_end,
        created_by_id=actor.user.id,
    )
    db.session.add(maintenance)
    db.session.flush()
    recipients = [
        (organisation, [organisation.operations_contact_email or mail.notice_address(organisation)])
        for organisation in organisations_using(facts.service_ids, on=tokyo_date(now))
    ]
    mail.notify_many(
        recipients,
        "maintenance_announced",
        context={
            "maintenance": maintenance,
            "services": _service_names(facts.service_ids),
            "system_url": mail.absolute_url("sla.system"),
        },
    )
    audit.record(
        "maintenance.announced",
        actor=actor,
        subject=maintenance,
        ip=ip,
        planned_start=facts.planned_start.isoformat(),
        planned_end=facts.planned_end.isoformat(),
    )
    return maintenance


def record_unannounced_maintenance(
    actor: Actor, facts: MaintenanceFacts, *, ip: str = ""
) -> Maintenance:
    """Maintenance carried out without announcement (R-50: it counts in full as downtime):
    recorded after the fact, from its start to its end, with the incident of its downtime."""
    _allowed(actor)
    facts = _check_maintenance(facts)
    if facts.planned_end > clock.now():
        raise PortalError(_("This time is in the future."), field="planned_end")
    maintenance = Maintenance(
        service_ids=list(facts.service_ids),
        title_ja=facts.title_ja,
        title_en=facts.title_en,
        announced_at=None,
        planned_start=facts.planned_start,
        planned_end=facts.planned_end,
        actual_end=facts.planned_end,
        completed_at=clock.now(),
        completed_by_id=actor.user.id,
        created_by_id=actor.user.id,
    )
    db.session.add(maintenance)
    db.session.flush()
    _record_downtime(actor, maintenance, ip=ip)
    audit.record("maintenance.recorded_unannounced", actor=actor, subject=maintenance, ip=ip)
    return maintenance


def complete_maintenance(
    actor: Actor, maintenance: Maintenance, actual_end: datetime, *, ip: str = ""
) -> Maintenance:
    """Record when announced maintenance actually ended; time past its announced end is
    downtime (R-50), recorded as an incident and told to the affected organisations."""
    _allowed(actor)
    actual_end = to_minute(actual_end)
    _check_instant(actual_end, "actual_end", clock.now())
    if actual_end <= maintenance.planned_start:
        raise PortalError(_("The end must come after the start."), field="actual_end")
    done = db.session.execute(
        sa.update(Maintenance)
        .where(Maintenance.id == maintenance.id, Maintenance.actual_end.is_(None))
        .values(actual_end=actual_end, completed_at=clock.now(), completed_by_id=actor.user.id)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(_("The end of this maintenance is already recorded."))
    db.session.refresh(maintenance)
    if maintenance_window(maintenance) is None or actual_end > maintenance.planned_end:
        _record_downtime(actor, maintenance, ip=ip)
    audit.record(
        "maintenance.completed",
        actor=actor,
        subject=maintenance,
        ip=ip,
        actual_end=actual_end.isoformat(),
    )
    return maintenance


def _record_downtime(actor: Actor, maintenance: Maintenance, *, ip: str) -> Incident:
    """The downtime of unannounced or overrunning maintenance, as an outage incident over the
    whole maintenance: its announced window (if any) does not count, the rest does (R-50)."""
    assert maintenance.actual_end is not None
    announced = maintenance_window(maintenance) is not None
    texts = {}
    for locale in ("ja", "en"):
        with force_locale(locale):
            title = maintenance.title(locale)
            if announced:
                texts[locale] = (
                    _("Maintenance ran past its announced end: %(title)s", title=title),
                    _(
                        "The maintenance announced until %(end)s ended at %(actual)s. The time "
                        "after the announced end counts as downtime.",
                        end=tokyo_minute(maintenance.planned_end),
                        actual=tokyo_minute(maintenance.actual_end),
                    ),
                )
            else:
                texts[locale] = (
                    _("Maintenance without announcement: %(title)s", title=title),
                    _(
                        "Maintenance was carried out from %(start)s to %(actual)s without "
                        "announcement. All of it counts as downtime.",
                        start=tokyo_minute(maintenance.planned_start),
                        actual=tokyo_minute(maintenance.actual_end),
                    ),
                )
    facts = IncidentFacts(
        kind=IncidentKind.OUTAGE,
        title_ja=texts["ja"][0][:MAX_TITLE],
        title_en=texts["en"][0][:MAX_TITLE],
        service_ids=tuple(maintenance.service_ids),
        started_at=maintenance.planned_start,
        ended_at=maintenance.actual_end,
        # Announced in advance, the maintenance was public from its start; no announcement is
        # owed for its downtime anyway (sla.Incident.maintenance).
        occurrence_announced_at=maintenance.planned_start if announced else None,
    )
    update = UpdateText(UpdateStatus.RESOLVED, texts["ja"][1], texts["en"][1])
    return record(actor, facts, update=update, ip=ip, maintenance=maintenance)


def maintenance_window(maintenance: Maintenance) -> sla.Window | None:
    """R-50: extra maintenance is a window only if announced before it started."""
    return sla.announced_window(
        maintenance.planned_start, maintenance.planned_end, maintenance.announced_at
    )


# --- who an incident touched (R-52) ----------------------------------------------------------


def current_version(incident: Incident) -> IncidentVersion:
    return db.session.scalars(
        sa.select(IncidentVersion).where(
            IncidentVersion.incident_id == incident.id,
            IncidentVersion.version == incident.current_version,
        )
    ).one()


def scope_of(version: IncidentVersion) -> sla.Scope:
    return sla.Scope(
        service_ids=frozenset(version.service_ids),
        plan_ids=frozenset(version.plan_ids or ()),
        organisation_ids=frozenset(version.organisation_ids or ()),
    )


def facts_of(version: IncidentVersion) -> sla.Incident:
    """The domain's view of a version (R-50 reading)."""
    return sla.Incident(
        kind=version.kind,
        started_at=version.started_at,
        ended_at=version.ended_at,
        occurrence_announced_at=version.occurrence_announced_at,
        recovery_announced_at=version.recovery_announced_at,
        maintenance=version.incident.maintenance_id is not None,
    )


def contract_facts(contract: Contract) -> sla.ContractFacts:
    """A contract's plans and fees over time, from its plan-change events (R-21, R-51)."""
    changes = sorted(
        (e for e in contract.events if e.kind == "plan_changed"),
        key=lambda e: (e.effective_on, e.id),
    )
    plans = [
        (
            change.effective_on,
            (changes[n + 1].details if n + 1 < len(changes) else {}).get(
                "from_plan_id", contract.plan_id
            ),
        )
        for n, change in enumerate(changes)
    ]
    first_plan = changes[0].details.get("from_plan_id", contract.plan_id) if changes else None
    initial_fee = (
        changes[0].details.get("monthly_fee_before", contract.monthly_fee)
        if changes
        else contract.monthly_fee
    )
    return sla.ContractFacts(
        organisation_id=contract.organisation_id,
        service_id=contract.service_id,
        anchor_day=contract.anchor_day,
        service_start=contract.service_start,
        ended_on=contract.ended_on,
        plans=((contract.service_start, first_plan or contract.plan_id), *plans),
        initial_fee=int(initial_fee),
        fee_changes=tuple(
            (date.fromisoformat(e.details["fee_from"]), int(e.details["monthly_fee"]))
            for e in changes
            if "fee_from" in e.details and "monthly_fee" in e.details
        ),
    )


def _running_query(version: IncidentVersion) -> sa.Select[tuple[Contract]]:
    """Contracts of the incident's services (and organisations) that ran during it."""
    query = sa.select(Contract).where(Contract.service_id.in_(list(version.service_ids)))
    if version.organisation_ids:
        query = query.where(Contract.organisation_id.in_(list(version.organisation_ids)))
    # An incident still open touches the contracts that have started by now.
    query = query.where(Contract.service_start <= tokyo_date(version.ended_at or clock.now()))
    query = query.where(
        sa.or_(Contract.ended_on.is_(None), Contract.ended_on >= tokyo_date(version.started_at))
    )
    return query.options(selectinload(Contract.events)).order_by(Contract.id)


def touched(version: IncidentVersion, contract: Contract) -> bool:
    """R-52: whether the incident touched the contract; one still open, up to now."""
    return sla.touches(
        scope_of(version),
        version.started_at,
        version.ended_at or clock.now(),
        contract_facts(contract),
    )


def affected_contracts(version: IncidentVersion) -> list[Contract]:
    return [c for c in db.session.scalars(_running_query(version)) if touched(version, c)]


def affected_organisations(version: IncidentVersion) -> list[Organisation]:
    """The organisations whose contracts the incident touched. Without a plan in its scope
    the database answers alone (an incident of a whole service touches 100,000 contracts);
    with plans, only the contracts that are or were on one of them are looked at closely."""
    running = _running_query(version)
    if not version.plan_ids:
        ids = sa.select(running.subquery().c.organisation_id).distinct()
    else:
        changed = sa.select(ContractEvent.contract_id).where(ContractEvent.kind == "plan_changed")
        candidates = running.where(
            sa.or_(Contract.plan_id.in_(list(version.plan_ids)), Contract.id.in_(changed))
        )
        ids = sorted(
            {c.organisation_id for c in db.session.scalars(candidates) if touched(version, c)}
        )
    return list(
        db.session.scalars(
            sa.select(Organisation).where(Organisation.id.in_(ids)).order_by(Organisation.id)
        )
    )


def organisations_using(service_ids: Iterable[int], *, on: date) -> list[Organisation]:
    """Organisations with a contract of these services that has not ended by `on`."""
    ids = sa.select(Contract.organisation_id).where(
        Contract.service_id.in_(list(service_ids)),
        sa.or_(Contract.ended_on.is_(None), Contract.ended_on >= on),
    )
    return list(
        db.session.scalars(
            sa.select(Organisation).where(Organisation.id.in_(ids)).order_by(Organisation.id)
        )
    )


# --- what customers see ----------------------------------------------------------------------


@dataclass
class IncidentView:
    """An incident as one organisation sees it: its current facts and its updates."""

    incident: Incident
    version: IncidentVersion
    contracts: list[Contract] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.version.ended_at is None

    @property
    def updates(self) -> list[IncidentUpdate]:
        return sorted(self.incident.updates, key=lambda u: (u.posted_at, u.id), reverse=True)


def _current_versions(since: datetime | None = None) -> sa.Select[tuple[IncidentVersion]]:
    query = (
        sa.select(IncidentVersion)
        .join(Incident, Incident.id == IncidentVersion.incident_id)
        .where(IncidentVersion.version == Incident.current_version)
        .options(
            selectinload(IncidentVersion.incident).selectinload(Incident.updates),
        )
        .order_by(IncidentVersion.started_at.desc(), IncidentVersion.id.desc())
    )
    if since is not None:
        query = query.where(
            sa.or_(IncidentVersion.ended_at.is_(None), IncidentVersion.ended_at >= since)
        )
    return query


def organisation_contracts(organisation_id: int) -> list[Contract]:
    return list(
        db.session.scalars(
            sa.select(Contract)
            .where(Contract.organisation_id == organisation_id)
            .options(
                selectinload(Contract.events),
                selectinload(Contract.plan),
                selectinload(Contract.service),
            )
            .order_by(Contract.id)
        )
    )


def for_organisation(organisation_id: int, now: datetime) -> list[IncidentView]:
    """R-52: the incidents of the last 12 months (and those still open) that touched the
    organisation's contracts, newest first."""
    return for_contracts(organisation_contracts(organisation_id), now)


def for_contracts(contracts: list[Contract], now: datetime) -> list[IncidentView]:
    since = now - timedelta(days=HISTORY_DAYS)
    found = []
    for version in db.session.scalars(_current_versions(since)):
        touching = [c for c in contracts if touched(version, c)]
        if touching:
            found.append(IncidentView(version.incident, version, touching))
    return found


def all_for_staff(*, limit: int = 200) -> list[IncidentView]:
    return [
        IncidentView(v.incident, v) for v in db.session.scalars(_current_versions().limit(limit))
    ]


ENDED_PER_PAGE = 50


def ongoing_for_staff() -> list[IncidentView]:
    """Every incident not ended yet (a few at any time): all on the staff's list."""
    query = _current_versions().where(IncidentVersion.ended_at.is_(None))
    return [IncidentView(v.incident, v) for v in db.session.scalars(query)]


def ended_for_staff(page: int) -> Page[IncidentView]:
    """The ended incidents, the latest begun first, by page (issue 15: they only grow)."""
    query = _current_versions().where(IncidentVersion.ended_at.is_not(None))
    return paginate(query, page, ENDED_PER_PAGE).map(
        lambda versions: [IncidentView(v.incident, v) for v in versions]
    )


def view_for_organisation(incident: Incident, organisation_id: int) -> IncidentView | None:
    """The incident, if it touched the organisation (else None: 404 for the page)."""
    version = current_version(incident)
    touching = [c for c in organisation_contracts(organisation_id) if touched(version, c)]
    return IncidentView(incident, version, touching) if touching else None


# --- maintenance as customers see it -----------------------------------------------------------


@dataclass(frozen=True)
class MaintenanceItem:
    """A maintenance window ahead (or under way): the rule's, or extra announced ones."""

    start: datetime
    end: datetime
    regular: bool
    maintenance: Maintenance | None = None

    def title(self, locale: str) -> str:
        if self.maintenance is not None:
            return self.maintenance.title(locale)
        with force_locale(locale):
            return _("Regular maintenance")

    @property
    def uid(self) -> str:
        if self.maintenance is not None:
            return f"maintenance-{self.maintenance.id}"
        return f"regular-{self.start.astimezone(TOKYO):%Y%m%d}"


def sla_services(service_ids: Iterable[int]) -> set[int]:
    """The services the SLA and its regular maintenance apply to: the paid ones."""
    ids = list(service_ids)
    if not ids:
        return set()
    return set(db.session.scalars(sa.select(Service.id).where(Service.id.in_(ids), Service.paid)))


def maintenance_for(
    service_ids: Iterable[int], start: datetime, end: datetime
) -> list[MaintenanceItem]:
    """Regular windows (for the services under the SLA) and announced extra maintenance of
    these services between start and end, in order."""
    services = set(service_ids)
    items: list[MaintenanceItem] = []
    if sla_services(services):
        items.extend(
            MaintenanceItem(w.start, w.end, regular=True) for w in sla.regular_windows(start, end)
        )
    extras = db.session.scalars(
        sa.select(Maintenance).where(
            Maintenance.planned_start < end,
            sa.func.coalesce(Maintenance.actual_end, Maintenance.planned_end) > start,
            Maintenance.announced_at.is_not(None),
        )
    )
    for extra in extras:
        if services & set(extra.service_ids):
            items.append(
                MaintenanceItem(
                    extra.planned_start, extra.actual_end or extra.planned_end, False, extra
                )
            )
    return sorted(items, key=lambda i: (i.start, i.end))


def upcoming_maintenance(organisation_id: int, now: datetime) -> list[MaintenanceItem]:
    services = {
        c.service_id
        for c in db.session.scalars(
            sa.select(Contract).where(
                Contract.organisation_id == organisation_id,
                Contract.status == ContractStatus.ACTIVE,
            )
        )
    }
    return maintenance_for(services, now, now + timedelta(days=UPCOMING_DAYS))


def windows_for(service_id: int, start: datetime, end: datetime) -> list[sla.Window]:
    """R-50: the windows that do not count as downtime for a service between two instants."""
    windows: list[sla.Window] = []
    if sla_services([service_id]):
        windows.extend(sla.regular_windows(start, end))
    extras = db.session.scalars(
        sa.select(Maintenance).where(
            Maintenance.planned_start < end, Maintenance.planned_end > start
        )
    )
    for extra in extras:
        window = maintenance_window(extra)
        if window is not None and service_id in extra.service_ids:
            windows.append(window)
    return windows


def maintenances_for_staff(*, limit: int = 200) -> list[Maintenance]:
    return list(
        db.session.scalars(
            sa.select(Maintenance).order_by(Maintenance.planned_start.desc()).limit(limit)
        )
    )
