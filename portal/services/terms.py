"""Terms of service: versions, the version in force, and each organisation's consent (R-60).

A version belongs to a service, not to an organisation. It concerns an organisation while the
organisation has a contract of that service that has not ended. Consent is one row per
organisation and version, whatever races: the database's unique constraint decides.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, joinedload

from portal.clock import TOKYO, clock
from portal.domain.calendar import add_months_clamped
from portal.extensions import db
from portal.models import (
    ConsentKind,
    Contract,
    ContractStatus,
    CustomerRole,
    InetRegistration,
    Organisation,
    Service,
    TermsConsent,
    TermsVersion,
    User,
)
from portal.permissions import Actor, can_consent_to_terms, can_publish_terms
from portal.presentation import long_date
from portal.services import audit, mail
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.spreadsheet import safe_cell
from portal.transaction import begin_writing

# The I-NET SERVICE's code in the catalogue: its registrations count as live contracts.
INET_SERVICE_CODE = "inet"
# IW 19 and IN 16(1) say only that the customer is told "in advance" (事前に), with no number
# of days, so a version may take effect at the earliest on the day after it is published.
MINIMUM_NOTICE_DAYS = 1
PUBLISH_ATTEMPTS = 3


# --- which versions, when --------------------------------------------------------------------


def services_in_use(organisation_id, *, correlate: tuple = ()) -> sa.Select[tuple[int]]:
    """The services the organisation has a contract for that has not ended, and I-NET SERVICE
    while it has an open registration (R-80: the registration is its contract).

    `organisation_id` may be an SQL expression of an enclosing query's tables, named in
    `correlate` (SQLAlchemy correlates only one level up by itself)."""
    contracts = sa.select(Contract.service_id).where(
        Contract.organisation_id == organisation_id, Contract.status == ContractStatus.ACTIVE
    )
    registered = sa.exists().where(
        InetRegistration.organisation_id == organisation_id,
        InetRegistration.ended_at.is_(None),
    )
    if correlate:
        contracts = contracts.correlate(*correlate)
        registered = registered.correlate(*correlate)
    return sa.select(Service.id).where(
        sa.or_(Service.id.in_(contracts), sa.and_(Service.code == INET_SERVICE_CODE, registered))
    )


def _not_superseded(today: date) -> sa.ColumnElement[bool]:
    """The version is in force today or still to come: no later version took effect yet."""
    newer = aliased(TermsVersion)
    return ~sa.exists().where(
        newer.service_id == TermsVersion.service_id,
        newer.effective_on <= today,
        sa.or_(
            newer.effective_on > TermsVersion.effective_on,
            sa.and_(
                newer.effective_on == TermsVersion.effective_on,
                newer.version > TermsVersion.version,
            ),
        ),
    )


def in_force(service_id: int, today: date) -> TermsVersion | None:
    """R-60: the version in force on a day is the one that took effect last."""
    return db.session.scalar(
        sa.select(TermsVersion)
        .where(TermsVersion.service_id == service_id, TermsVersion.effective_on <= today)
        .order_by(TermsVersion.effective_on.desc(), TermsVersion.version.desc())
        .limit(1)
    )


def upcoming(service_id: int, today: date) -> list[TermsVersion]:
    """Published versions that have not taken effect yet, soonest first."""
    return list(
        db.session.scalars(
            sa.select(TermsVersion)
            .where(TermsVersion.service_id == service_id, TermsVersion.effective_on > today)
            .order_by(TermsVersion.effective_on, TermsVersion.version)
        )
    )


def status_of(version: TermsVersion, today: date) -> str:
    """The version on the day: "upcoming", "in_force" or "superseded"."""
    if version.effective_on > today:
        return "upcoming"
    current = in_force(version.service_id, today)
    return "in_force" if current is not None and current.id == version.id else "superseded"


def _outstanding_where(
    organisation_id, today: date, correlate: tuple = ()
) -> tuple[sa.ColumnElement[bool], ...]:
    consented = (
        sa.exists()
        .where(
            TermsConsent.organisation_id == organisation_id,
            TermsConsent.terms_version_id == TermsVersion.id,
        )
        .correlate(TermsVersion, *correlate)
    )
    return (
        TermsVersion.service_id.in_(services_in_use(organisation_id, correlate=correlate)),
        _not_superseded(today),
        ~consented,
    )


def pending_exists(organisation_id, today: date, *, correlate: tuple = ()) -> sa.Exists:
    """Whether `outstanding` would find anything, as a column of another query: the request's
    one statement asks it for the organisation acted in (an SQL expression of the tables in
    `correlate`), issue 15."""
    return sa.exists().where(*_outstanding_where(organisation_id, today, correlate))


def outstanding(organisation_id: int, today: date) -> list[TermsVersion]:
    """Versions in force or to come, of services the organisation uses, that it has not
    consented to: what the banner announces (R-60). One query."""
    return list(
        db.session.scalars(
            sa.select(TermsVersion)
            .options(joinedload(TermsVersion.service))
            .where(*_outstanding_where(organisation_id, today))
            .order_by(TermsVersion.effective_on, TermsVersion.service_id, TermsVersion.version)
        )
    )


@dataclass
class ServiceTerms:
    """One service the organisation uses: the version in force and those to come."""

    service: Service
    in_force: TermsVersion | None
    upcoming: list[TermsVersion]


def terms_of(organisation_id: int, today: date) -> list[ServiceTerms]:
    """The terms that concern the organisation, by service."""
    services = db.session.scalars(
        sa.select(Service)
        .where(Service.id.in_(services_in_use(organisation_id)))
        .order_by(Service.id)
    )
    return [ServiceTerms(s, in_force(s.id, today), upcoming(s.id, today)) for s in services]


def consents_by_version(organisation_id: int) -> dict[int, TermsConsent]:
    found = db.session.scalars(
        sa.select(TermsConsent)
        .options(joinedload(TermsConsent.user))
        .where(TermsConsent.organisation_id == organisation_id)
    )
    return {c.terms_version_id: c for c in found}


def consent_of(organisation_id: int, version_id: int) -> TermsConsent | None:
    return db.session.scalar(
        sa.select(TermsConsent).where(
            TermsConsent.organisation_id == organisation_id,
            TermsConsent.terms_version_id == version_id,
        )
    )


def versions_by_service() -> list[tuple[Service, list[TermsVersion]]]:
    """For staff: every service with all its versions, newest first."""
    versions: dict[int, list[TermsVersion]] = defaultdict(list)
    for version in db.session.scalars(
        sa.select(TermsVersion)
        .options(joinedload(TermsVersion.published_by))
        .order_by(TermsVersion.service_id, TermsVersion.version.desc())
    ):
        versions[version.service_id].append(version)
    services = db.session.scalars(sa.select(Service).order_by(Service.id))
    return [(service, versions[service.id]) for service in services]


def latest_version(service_id: int) -> TermsVersion | None:
    return db.session.scalar(
        sa.select(TermsVersion)
        .where(TermsVersion.service_id == service_id)
        .order_by(TermsVersion.version.desc())
        .limit(1)
    )


# --- what changed ----------------------------------------------------------------------------


def previous_of(version: TermsVersion) -> TermsVersion | None:
    return db.session.scalar(
        sa.select(TermsVersion)
        .where(
            TermsVersion.service_id == version.service_id,
            TermsVersion.version < version.version,
        )
        .order_by(TermsVersion.version.desc())
        .limit(1)
    )


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "same", "added", "removed" or "gap" (unchanged lines left out)
    text: str = ""


def changes(old_text: str, new_text: str, *, context: int = 2) -> list[DiffLine]:
    """What changed, line by line, with a little unchanged text around each change."""
    old, new = old_text.splitlines(), new_text.splitlines()
    if old == new:
        return []
    lines: list[DiffLine] = []
    last = 0
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        if group[0][1] > last:
            lines.append(DiffLine("gap"))
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines.extend(DiffLine("same", line) for line in old[i1:i2])
            else:
                lines.extend(DiffLine("removed", line) for line in old[i1:i2])
                lines.extend(DiffLine("added", line) for line in new[j1:j2])
        last = group[-1][2]
    if last < len(old):
        lines.append(DiffLine("gap"))
    return lines


# --- publishing (staff) ----------------------------------------------------------------------


@dataclass
class Draft:
    service_id: int
    title_ja: str
    title_en: str
    body_ja: str
    body_en: str
    effective_on: date


MAX_MONTHS_AHEAD = 12


def earliest_effective_date(today: date) -> date:
    return today + timedelta(days=MINIMUM_NOTICE_DAYS)


@dataclass(frozen=True)
class Preview:
    """What publishing a draft will do, for the confirmation page."""

    service: Service
    version: int
    organisations_told: int


def check_draft(actor: Actor, draft: Draft) -> Preview:
    """What refuses a draft, asked before staff confirm it (publish asks again); if nothing
    does, the number the version would get and how many organisations would be told."""
    service, latest = _validate(actor, draft)
    told = db.session.scalar(
        sa.select(sa.func.count()).select_from(organisations_using(service.id).subquery())
    )
    return Preview(service, (latest.version if latest else 0) + 1, told or 0)


def _validate(actor: Actor, draft: Draft) -> tuple[Service, TermsVersion | None]:
    if not can_publish_terms(actor):
        raise NotAllowed(_("Only staff administrators may publish terms."))
    service = db.session.get(Service, draft.service_id)
    if service is None:
        raise PortalError(_("Choose a service."), field="service_id")
    for field in ("title_ja", "title_en", "body_ja", "body_en"):
        if not getattr(draft, field).strip():
            raise PortalError(_("This field is required."), field=field)
    earliest = earliest_effective_date(clock.today())
    if draft.effective_on < earliest:
        raise PortalError(
            _(
                "Customers are told in advance: the effective date must be %(date)s or later.",
                date=long_date(earliest),
            ),
            field="effective_on",
        )
    latest_allowed = add_months_clamped(clock.today(), MAX_MONTHS_AHEAD)
    if draft.effective_on > latest_allowed:
        # Customers are told now of terms that apply then: a year ahead at most (issue 13:
        # 9999-12-31 was published and e-mailed).
        raise PortalError(
            _("The effective date must be %(date)s or earlier.", date=long_date(latest_allowed)),
            field="effective_on",
        )
    latest = latest_version(service.id)
    _check_after(latest, draft)
    return service, latest


def _check_after(latest: TermsVersion | None, draft: Draft) -> None:
    if latest is not None and draft.effective_on <= latest.effective_on:
        # Otherwise the older version would come back into force after the newer one.
        raise PortalError(
            _(
                "Version %(version)s takes effect on %(date)s: a new version must take "
                "effect after it.",
                version=latest.version,
                date=long_date(latest.effective_on),
            ),
            field="effective_on",
        )


def publish(actor: Actor, draft: Draft, *, ip: str = "") -> TermsVersion:
    """R-60: a new version of a service's terms, numbered next for the service."""
    service, _latest = _validate(actor, draft)
    begin_writing()
    for _attempt in range(PUBLISH_ATTEMPTS):
        latest = latest_version(service.id)
        _check_after(latest, draft)
        version = TermsVersion(
            service_id=service.id,
            version=(latest.version if latest else 0) + 1,
            title_ja=draft.title_ja.strip(),
            title_en=draft.title_en.strip(),
            body_ja=_normalise(draft.body_ja),
            body_en=_normalise(draft.body_en),
            effective_on=draft.effective_on,
            published_at=clock.now(),
            published_by_id=actor.user.id,
        )
        try:
            # Two publications at once: the unique (service, version) lets one number through.
            with db.session.begin_nested():
                db.session.add(version)
                db.session.flush()
        except IntegrityError:
            continue
        audit.record(
            "terms_published",
            actor=actor,
            subject=version,
            ip=ip,
            service=service.code,
            version=version.version,
            effective_on=version.effective_on.isoformat(),
        )
        return version
    raise Conflict(_("Another version of these terms was published at the same time. Try again."))


def _normalise(text: str) -> str:
    """Line ends as \\n and no trailing blanks, so that the comparison shows real changes."""
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def organisations_using(service_id: int) -> sa.Select[tuple[int]]:
    """Organisations with a live contract of the service; for I-NET SERVICE, those with an
    open registration (R-80)."""
    contracts = sa.select(Contract.organisation_id).where(
        Contract.service_id == service_id, Contract.status == ContractStatus.ACTIVE
    )
    registered = sa.select(InetRegistration.organisation_id).where(
        InetRegistration.ended_at.is_(None),
        sa.exists().where(Service.id == service_id, Service.code == INET_SERVICE_CODE),
    )
    return sa.select(Organisation.id).where(
        sa.or_(Organisation.id.in_(contracts), Organisation.id.in_(registered))
    )


def notify_published(version: TermsVersion) -> int:
    """R-60: tell each organisation using the service, in advance, by e-mail: its
    administrators and the contract and operations contacts of its application (IN 16(1)).
    Returns the number of organisations told. Called once, in the transaction that creates
    the version, so it needs no dedupe key (and no savepoint per organisation)."""
    users = organisations_using(version.service_id)
    organisations = list(
        db.session.scalars(
            sa.select(Organisation).where(Organisation.id.in_(users)).order_by(Organisation.id)
        )
    )
    administrators: dict[int, list[str]] = defaultdict(list)
    for organisation_id, email in db.session.execute(
        sa.select(User.organisation_id, User.email)
        .where(
            User.organisation_id.in_(users),
            User.customer_role == CustomerRole.ADMINISTRATOR,
            User.active.is_(True),
        )
        .order_by(User.id)
    ):
        administrators[organisation_id].append(email)
    if version.service.code == INET_SERVICE_CODE:
        # IN 16(1): an I-NET SERVICE registration names its application contact and
        # operations manager; they are told too.
        for organisation_id, *contacts in db.session.execute(
            sa.select(
                InetRegistration.organisation_id,
                InetRegistration.application_contact_email,
                InetRegistration.operations_manager_email,
            ).where(InetRegistration.ended_at.is_(None))
        ):
            administrators[organisation_id].extend(contacts)
    mail.notify_many(
        (
            (
                organisation,
                [
                    *administrators[organisation.id],
                    mail.notice_address(organisation),
                    organisation.operations_contact_email,
                ],
            )
            for organisation in organisations
        ),
        "terms_published",
        context={
            "version": version,
            "service": version.service,
            "version_url": mail.absolute_url("terms.version", version_id=version.id),
        },
    )
    return len(organisations)


# --- consent ---------------------------------------------------------------------------------


def _insert_consent(
    version: TermsVersion,
    kind: ConsentKind,
    *,
    organisation_id: int,
    user: User,
    actor: Actor | None = None,
    ip: str = "",
) -> TermsConsent | None:
    """Insert the organisation's consent, with its audit event, unless there is one already
    (then None: the unique constraint decides when requests race)."""
    consent = TermsConsent(
        organisation_id=organisation_id,
        terms_version_id=version.id,
        kind=kind,
        user_id=user.id,
        consented_at=clock.now(),
        ip=ip[:64],
    )
    begin_writing()
    try:
        with db.session.begin_nested():
            db.session.add(consent)
            db.session.flush()
    except IntegrityError:
        return None
    audit.record(
        "terms_consented",
        actor=actor,
        user=user,
        subject=version,
        ip=ip,
        kind=kind.value,
        version=version.version,
        service_id=version.service_id,
    )
    return consent


def consent(actor: Actor, version: TermsVersion, *, ip: str = "") -> tuple[TermsConsent, bool]:
    """R-60: an administrator consents explicitly. Returns the consent on record and whether
    this request made it (False: the organisation had already consented)."""
    if not can_consent_to_terms(actor):
        # agents and staff viewing as the customer never consent for it.
        raise NotAllowed(_("Only the customer's administrators may consent to the terms."))
    organisation_id = actor.organisation_id
    assert organisation_id is not None
    existing = consent_of(organisation_id, version.id)
    if existing is not None:
        return existing, False
    if status_of(version, clock.today()) == "superseded":
        raise Conflict(_("A later version of these terms is in force; read that one instead."))
    made = _insert_consent(
        version,
        ConsentKind.EXPLICIT,
        organisation_id=organisation_id,
        user=actor.user,
        actor=actor,
        ip=ip,
    )
    if made is None:  # consented at the same moment in another request
        found = consent_of(organisation_id, version.id)
        assert found is not None
        return found, False
    return made, True


def record_deemed_consent(
    user: User, versions: Iterable[TermsVersion], *, ip: str = ""
) -> list[TermsConsent]:
    """R-60 (IN 16(2)): using the service on or after a version's effective date counts as
    consent to it. `user` is the customer user whose use it was (never an agent or staff).

    Only a version that took effect after the organisation joined: one already in force when
    it joined was never announced to it, and is consented to explicitly by its administrator
    (issue 14: a client signed up through a partner, whose agent may not consent, R-71)."""
    assert user.organisation_id is not None
    today = clock.today()
    joined = user.organisation.created_at.astimezone(TOKYO).date()
    made = []
    for version in versions:
        if version.effective_on > today or version.effective_on <= joined:
            continue
        consent_ = _insert_consent(
            version, ConsentKind.DEEMED, organisation_id=user.organisation_id, user=user, ip=ip
        )
        if consent_ is not None:
            made.append(consent_)
    return made


def consent_on_application(
    version: TermsVersion, *, organisation_id: int, user: User, actor: Actor | None, ip: str = ""
) -> TermsConsent | None:
    """R-60/R-80: an I-NET SERVICE application's consent to the version the applicant read,
    for the organisation; None when it had consented to that version already (one consent per
    version, whatever races)."""
    return _insert_consent(
        version,
        ConsentKind.APPLICATION,
        organisation_id=organisation_id,
        user=user,
        actor=actor,
        ip=ip,
    )


def record_application_consent(
    organisation: Organisation, service_id: int, administrator: User
) -> TermsConsent | None:
    """Onboarding: the application form (利用申込書) consents to the version in force."""
    version = in_force(service_id, clock.today())
    if version is None:
        return None
    consent_ = TermsConsent(
        organisation_id=organisation.id,
        terms_version_id=version.id,
        kind=ConsentKind.APPLICATION,
        user_id=administrator.id,
        consented_at=clock.now(),
    )
    db.session.add(consent_)
    return consent_


# --- history ---------------------------------------------------------------------------------


def history(organisation_id: int) -> list[TermsConsent]:
    """Every consent of the organisation, newest first: version, who, when, kind (R-60)."""
    return list(
        db.session.scalars(
            sa.select(TermsConsent)
            .options(
                joinedload(TermsConsent.terms_version).joinedload(TermsVersion.service),
                joinedload(TermsConsent.user),
            )
            .where(TermsConsent.organisation_id == organisation_id)
            .order_by(TermsConsent.consented_at.desc(), TermsConsent.id.desc())
        )
    )


def kind_label(kind: ConsentKind) -> str:
    return {
        ConsentKind.EXPLICIT: _("Explicit"),
        ConsentKind.DEEMED: _("Deemed (used after the effective date)"),
        ConsentKind.APPLICATION: _("On the application form"),
    }[kind]


def history_csv(organisation_id: int, locale: str) -> str:
    """The consent history as CSV for Excel in Japan (UTF-8 with a BOM), times in Tokyo."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(
        [
            _("Service"),
            _("Version"),
            _("Title"),
            _("Effective date"),
            _("Consent"),
            _("Consented by"),
            _("E-mail"),
            _("Consented at (Tokyo)"),
        ]
    )
    for row in history(organisation_id):
        version = row.terms_version
        writer.writerow(
            [
                version.service.name(locale),
                version.version,
                safe_cell(version.title(locale)),
                version.effective_on.isoformat(),
                kind_label(row.kind),
                safe_cell(row.user.name if row.user else ""),
                safe_cell(row.user.email if row.user else ""),
                row.consented_at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M:%S"),
            ]
        )
    return buffer.getvalue()
