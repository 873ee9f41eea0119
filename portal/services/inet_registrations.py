"""I-NET SERVICE registrations (R-80, R-83, R-84).

The three functions at the top are what the holders and orders pages use; the registration
pages and commands build on them.

An organisation registers in its portal (an administrator, who consents to the I-NET terms in
force for it, R-60; or a sales agent or agency for its client, who never consents, R-71), from
the public application page after its e-mail address is verified, or through staff onboarding
(staff never consent either: the organisation's administrators do, in the portal). The service
is free (R-80): nothing here knows an amount. At most one registration of an organisation is
open (a partial unique index); it ends when an administrator withdraws it or when staff cancel
a dormant one (R-84), and its card holders' photos are deleted one month later (R-83, see
services/inet_retention.py).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal.clock import TOKYO, clock, tokyo_date
from portal.domain import inet as rules
from portal.domain.inet import OrderState
from portal.extensions import db
from portal.models import (
    CardOrder,
    CustomerRole,
    InetApplication,
    InetRegistration,
    Organisation,
    RegistrationChannel,
    RegistrationEnd,
    Service,
    TermsConsent,
    TermsVersion,
    User,
    UserKind,
)
from portal.permissions import (
    Actor,
    can_apply_for_inet,
    can_consent_to_terms,
    can_end_inet_registration,
    can_manage_inet_registrations,
    is_agent,
)
from portal.services import audit, information, mail, terms
from portal.services.auth import check_password_strength, hash_password, normalise_email
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.transaction import begin_writing

INET_SERVICE_CODE = terms.INET_SERVICE_CODE


def open_registration(organisation_id: int) -> InetRegistration | None:
    """The organisation's open registration, if any (at most one, by a unique index)."""
    return db.session.scalar(
        sa.select(InetRegistration).where(
            InetRegistration.organisation_id == organisation_id,
            InetRegistration.ended_at.is_(None),
        )
    )


def photos_delete_on(organisation_id: int) -> date | None:
    """R-83: the day the organisation's photos will be deleted, when its usage period has
    ended and they are not deleted yet; None while it is registered."""
    if open_registration(organisation_id) is not None:
        return None
    return db.session.scalar(
        sa.select(InetRegistration.photos_delete_on)
        .where(
            InetRegistration.organisation_id == organisation_id,
            InetRegistration.photos_deleted_at.is_(None),
            InetRegistration.photos_delete_on.is_not(None),
        )
        .order_by(InetRegistration.ended_at.desc())
        .limit(1)
    )


def ordering_refusal(organisation_id: int, today: date) -> str | None:
    """Why the organisation cannot order cards today, in the customer's words (translated by
    the caller's locale), or None when it can: it must be registered (R-80) and have consented
    to the I-NET terms in force (R-60: explicitly, on the application, or deemed by use after
    their effective date, as the terms pages record it)."""
    if open_registration(organisation_id) is None:
        return _("Your organisation is not registered for I-NET SERVICE.")
    version = terms_in_force(today)
    if version is not None and terms.consent_of(organisation_id, version.id) is None:
        return _(
            "An administrator of your organisation must first consent to the I-NET SERVICE "
            "terms of service in the portal."
        )
    return None


# --- reading ---------------------------------------------------------------------------------


def inet_service() -> Service | None:
    return db.session.scalar(sa.select(Service).where(Service.code == INET_SERVICE_CODE))


def terms_in_force(today: date) -> TermsVersion | None:
    """The I-NET terms version in force today (R-60), if one was published."""
    service = inet_service()
    return terms.in_force(service.id, today) if service is not None else None


def latest_registration(organisation_id: int) -> InetRegistration | None:
    """The open registration, or else the one that ended last."""
    return db.session.scalar(
        sa.select(InetRegistration)
        .where(InetRegistration.organisation_id == organisation_id)
        .order_by(InetRegistration.ended_at.is_not(None), InetRegistration.id.desc())
        .limit(1)
    )


def registrations_of(organisation_id: int) -> list[InetRegistration]:
    """Every registration of the organisation, newest first."""
    return list(
        db.session.scalars(
            sa.select(InetRegistration)
            .options(joinedload(InetRegistration.registered_by))
            .where(InetRegistration.organisation_id == organisation_id)
            .order_by(InetRegistration.id.desc())
        )
    )


@dataclass(frozen=True)
class TermsState:
    """The I-NET terms in force and the organisation's consent to them, for the pages."""

    version: TermsVersion | None
    consent: TermsConsent | None

    @property
    def outstanding(self) -> bool:
        return self.version is not None and self.consent is None


def terms_state(organisation_id: int, today: date) -> TermsState:
    version = terms_in_force(today)
    consent = terms.consent_of(organisation_id, version.id) if version is not None else None
    return TermsState(version, consent)


# Lazy: a name put into an e-mail is rendered in the recipient's language, not the sender's.
CHANNEL_NAMES: dict[RegistrationChannel, Any] = {
    RegistrationChannel.PUBLIC: _l("Public application"),
    RegistrationChannel.STAFF: _l("Registered by the provider"),
    RegistrationChannel.AGENT: _l("Applied by a sales agent or agency"),
    RegistrationChannel.CUSTOMER: _l("Applied in the portal"),
}
END_REASON_NAMES: dict[RegistrationEnd, Any] = {
    RegistrationEnd.WITHDRAWN: _l("Ended by the customer"),
    RegistrationEnd.DORMANT: _l("Cancelled after three years without use"),
}


def channel_name(channel: RegistrationChannel) -> Any:
    """How the registration came in, in the reader's language (a lazy string)."""
    return CHANNEL_NAMES[RegistrationChannel(channel)]


def end_reason_name(reason: RegistrationEnd | None) -> Any:
    return "" if reason is None else END_REASON_NAMES[RegistrationEnd(reason)]


# --- contacts (IN 16) ------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME = 100
MAX_EMAIL = 254


@dataclass(frozen=True)
class Contacts:
    """The application contact and the operations manager (IN 16)."""

    application_contact_name: str
    application_contact_email: str
    operations_manager_name: str
    operations_manager_email: str


class InvalidInput(PortalError):
    """Input the rules refuse, with a message for each field concerned."""

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        super().__init__(message, field=field)
        self.errors = errors


def clean_name(value: str | None, errors: dict[str, str], field: str, limit: int = MAX_NAME) -> str:
    """A required text as stored: no control character, trimmed, at most `limit` characters;
    what is wrong goes into `errors` under `field` (the form shows it next to the field)."""
    if _CONTROL.search(value or ""):
        errors[field] = _("Remove the control characters from this field.")
        return ""
    text = (value or "").strip()
    if not text:
        errors[field] = _("This field is required.")
    elif len(text) > limit:
        errors[field] = _("Use at most %(max)d characters.", max=limit)
    return text


def _clean_email(value: str, errors: dict[str, str], field: str) -> str:
    text = normalise_email(value or "")
    if _CONTROL.search(text) or not text or len(text) > MAX_EMAIL:
        errors[field] = _("Enter a valid e-mail address.")
        return ""
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        errors[field] = _("Enter a valid e-mail address.")
    return text


def check_contacts(contacts: Contacts) -> Contacts:
    """The contacts as stored, or InvalidInput: names required and bounded, e-mails valid."""
    errors: dict[str, str] = {}
    cleaned = Contacts(
        application_contact_name=clean_name(
            contacts.application_contact_name, errors, "application_contact_name"
        ),
        application_contact_email=_clean_email(
            contacts.application_contact_email, errors, "application_contact_email"
        ),
        operations_manager_name=clean_name(
            contacts.operations_manager_name, errors, "operations_manager_name"
        ),
        operations_manager_email=_clean_email(
            contacts.operations_manager_email, errors, "operations_manager_email"
        ),
    )
    if errors:
        raise InvalidInput(errors)
    return cleaned


def contacts_of(registration: InetRegistration) -> Contacts:
    return Contacts(**{f.name: getattr(registration, f.name) for f in fields(Contacts)})


# --- registering -----------------------------------------------------------------------------


def _version_to_consent(terms_version_id: int | None, today: date) -> TermsVersion | None:
    """The version the applicant read, which must still be the one in force (else they would
    consent to text they have not seen)."""
    current = terms_in_force(today)
    if current is None:
        return None
    if terms_version_id != current.id:
        raise Conflict(
            _("The I-NET SERVICE terms changed while you were applying. Read the version in force.")
        )
    return current


def _insert_registration(registration: InetRegistration) -> None:
    """The unique index lets one open registration per organisation through, whatever races."""
    begin_writing()
    try:
        with db.session.begin_nested():
            db.session.add(registration)
            db.session.flush()
    except IntegrityError:
        raise Conflict(_("The organisation is already registered for I-NET SERVICE.")) from None


def register(
    actor: Actor,
    organisation: Organisation,
    contacts: Contacts,
    *,
    consent: bool = False,
    terms_version_id: int | None = None,
    ip: str = "",
) -> InetRegistration:
    """R-80: register the organisation for I-NET SERVICE (free).

    - the organisation's own administrator applies in its portal and must consent to the
      terms in force (`consent`, for the version `terms_version_id` they read): the consent is
      the organisation's (R-60), recorded once per version;
    - a sales agent or agency applies for its client (R-71), and staff register from the back
      office: neither consents, the client's administrators are asked to, in the portal.
    """
    if can_manage_inet_registrations(actor):
        channel = RegistrationChannel.STAFF
    elif can_apply_for_inet(actor) and actor.organisation_id == organisation.id:
        channel = RegistrationChannel.AGENT if is_agent(actor) else RegistrationChannel.CUSTOMER
    else:
        raise NotAllowed(
            _("Only the organisation's administrators and its agents apply for I-NET SERVICE.")
        )
    cleaned = check_contacts(contacts)
    today = clock.today()
    version = None
    if can_consent_to_terms(actor):
        version = _version_to_consent(terms_version_id, today)
        if version is not None and not consent:
            raise InvalidInput({"consent": _("Consent to the I-NET SERVICE terms to apply.")})
    if open_registration(organisation.id) is not None:
        raise Conflict(_("The organisation is already registered for I-NET SERVICE."))
    registration = InetRegistration(
        organisation_id=organisation.id,
        channel=channel,
        **{f.name: getattr(cleaned, f.name) for f in fields(Contacts)},
        terms_version_id=version.id if version is not None else None,
        registered_at=clock.now(),
        registered_by_id=actor.user.id,
    )
    _insert_registration(registration)
    if version is not None:
        terms.consent_on_application(
            version, organisation_id=organisation.id, user=actor.user, actor=actor, ip=ip
        )
    audit.record(
        "inet_registered",
        actor=actor,
        organisation_id=organisation.id,
        subject=registration,
        ip=ip,
        channel=channel.value,
        terms_version_id=registration.terms_version_id,
    )
    _announce_registration(organisation, registration, today)
    return registration


def _registration_addresses(organisation: Organisation, registration: InetRegistration):
    return [
        *mail.contract_notice_addresses(organisation),
        registration.application_contact_email,
        registration.operations_manager_email,
    ]


def _announce_registration(
    organisation: Organisation, registration: InetRegistration, today: date
) -> None:
    """R-61: the registration starts the organisation's use; it is told, and asked to consent
    to the terms when nobody consented on the application (an agent or staff applied)."""
    state = terms_state(organisation.id, today)
    mail.notify_organisation(
        organisation,
        "inet_registration_registered",
        to=_registration_addresses(organisation, registration),
        dedupe_key=f"inet_registration_registered:{registration.id}",
        context={
            "registration": registration,
            "channel": channel_name(registration.channel),
            "terms_version": state.version if state.outstanding else None,
            "terms_url": (
                mail.absolute_url("terms.version", version_id=state.version.id)
                if state.version is not None
                else ""
            ),
            "inet_url": mail.absolute_url("inet.home"),
        },
    )


def change_contacts(
    actor: Actor, registration: InetRegistration, contacts: Contacts, *, ip: str = ""
) -> bool:
    """IN 16: the administrators, and agents for their clients, name new contacts. Returns
    whether anything changed."""
    if not can_apply_for_inet(actor) or actor.organisation_id != registration.organisation_id:
        raise NotAllowed(
            _("Only the organisation's administrators and its agents change the contacts.")
        )
    cleaned = check_contacts(contacts)
    before = contacts_of(registration)
    if cleaned == before:
        return False
    begin_writing()
    changed = db.session.execute(
        sa.update(InetRegistration)
        .where(InetRegistration.id == registration.id, InetRegistration.ended_at.is_(None))
        .values(**{f.name: getattr(cleaned, f.name) for f in fields(Contacts)})
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise Conflict(_("This registration has ended."))
    db.session.expire(registration)
    audit.record(
        "inet_contacts_changed",
        actor=actor,
        organisation_id=registration.organisation_id,
        subject=registration,
        ip=ip,
        fields=[
            f.name for f in fields(Contacts) if getattr(before, f.name) != getattr(cleaned, f.name)
        ],
    )
    return True


# --- ending ----------------------------------------------------------------------------------

# Orders that still need the holders' photos or the registration: the registration cannot be
# ended under them.
ORDERS_IN_PROGRESS = (
    OrderState.SUBMITTED,
    OrderState.CONFIRMED,
    OrderState.ACCEPTED,
    OrderState.IN_PRODUCTION,
)


def _close(
    registration_id: int, reason: RegistrationEnd, actor: Actor, today: date, *conditions: Any
) -> bool:
    """End the registration today, if it is still open (and `conditions` hold): a conditional
    UPDATE, so that of two requests at once exactly one ends it."""
    begin_writing()
    ended = db.session.execute(
        sa.update(InetRegistration)
        .where(InetRegistration.id == registration_id, InetRegistration.ended_at.is_(None))
        .where(*conditions)
        .values(
            ended_on=today,
            ended_at=clock.now(),
            ended_by_id=actor.user.id,
            end_reason=reason,
            photos_delete_on=rules.photos_delete_on(today),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    return ended == 1


def end_registration(
    actor: Actor, registration: InetRegistration, *, ip: str = ""
) -> InetRegistration:
    """R-83: the customer ends its use today; its photos are deleted one month later, and it
    is told the date. It may register again."""
    own = actor.organisation_id == registration.organisation_id
    if not (can_end_inet_registration(actor) and own):
        raise NotAllowed(_("Only the organisation's administrators end its I-NET SERVICE."))
    in_progress = sa.exists().where(
        CardOrder.registration_id == registration.id, CardOrder.state.in_(ORDERS_IN_PROGRESS)
    )
    if db.session.scalar(sa.select(in_progress)):
        raise Conflict(
            _(
                "Orders of your organisation are still in progress. End I-NET SERVICE once "
                "they are delivered, withdrawn or cancelled."
            )
        )
    today = clock.today()
    if not _close(registration.id, RegistrationEnd.WITHDRAWN, actor, today, ~in_progress):
        raise Conflict(_("This registration has already ended."))
    return _ended(registration, "inet_registration_ended", "inet_registration_ended", actor, ip)


def _ended(
    registration: InetRegistration, action: str, notice: str, actor: Actor, ip: str
) -> InetRegistration:
    """After `_close`: the record (R-83/R-84, on the audit log) and the notice of the end."""
    db.session.expire(registration)
    audit.record(
        action,
        actor=actor,
        organisation_id=registration.organisation_id,
        subject=registration,
        ip=ip,
        ended_on=registration.ended_on.isoformat(),
        photos_delete_on=registration.photos_delete_on.isoformat(),
    )
    _announce_end(registration, notice)
    return registration


def _announce_end(registration: InetRegistration, kind: str) -> None:
    """R-61/R-83: the notice that the use ended, with the day the photos will be deleted."""
    organisation = registration.organisation
    mail.notify_organisation(
        organisation,
        kind,
        to=_registration_addresses(organisation, registration),
        affects_contract=True,
        dedupe_key=f"{kind}:{registration.id}",
        context={
            "registration": registration,
            "inet_url": mail.absolute_url("inet.home"),
        },
    )


# --- dormant registrations (R-84) ------------------------------------------------------------


def _last_uses() -> tuple[Any, Any]:
    """Per organisation: its users' last sign-in and its last order (created or submitted)."""
    sign_ins = (
        sa.select(User.organisation_id, sa.func.max(User.last_login_at).label("at"))
        .where(User.organisation_id.is_not(None))
        .group_by(User.organisation_id)
        .subquery()
    )
    orders = (
        sa.select(
            CardOrder.organisation_id,
            sa.func.max(CardOrder.created_at).label("created"),
            sa.func.max(CardOrder.submitted_at).label("submitted"),
        )
        .group_by(CardOrder.organisation_id)
        .subquery()
    )
    return sign_ins, orders


@dataclass(frozen=True)
class RegistrationRow:
    """A registration as the back office lists it, with its last use (R-84)."""

    registration: InetRegistration
    last_sign_in: datetime | None
    last_order: datetime | None
    today: date

    @property
    def last_used_on(self) -> date:
        """R-84: the latest of the registration, a sign-in and an order (Tokyo dates)."""
        instants = [
            i
            for i in (self.registration.registered_at, self.last_sign_in, self.last_order)
            if i is not None
        ]
        return max(tokyo_date(_aware(i)) for i in instants)

    @property
    def dormant_since(self) -> date:
        return rules.dormant_since(self.last_used_on)

    @property
    def is_dormant(self) -> bool:
        return self.registration.is_open and rules.is_dormant(self.last_used_on, self.today)


def _aware(instant: datetime) -> datetime:
    """SQLite hands back naive UTC instants from aggregates."""
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


STATE_FILTERS = ("open", "dormant", "ended", "all")
MAX_LISTED = 200


def registration_rows(
    today: date, *, state: str = "open", q: str = "", organisation_id: int | None = None
) -> list[RegistrationRow]:
    """Registrations for the back office: open, dormant (open and unused for three years,
    R-84), ended or all; optionally those of organisations whose name holds `q`."""
    sign_ins, orders = _last_uses()
    query = (
        sa.select(
            InetRegistration,
            sign_ins.c.at,
            sa.func.coalesce(orders.c.submitted, orders.c.created),
            orders.c.created,
        )
        .join(Organisation, Organisation.id == InetRegistration.organisation_id)
        .outerjoin(sign_ins, sign_ins.c.organisation_id == InetRegistration.organisation_id)
        .outerjoin(orders, orders.c.organisation_id == InetRegistration.organisation_id)
        .options(joinedload(InetRegistration.organisation))
        .order_by(Organisation.legal_name, InetRegistration.id.desc())
    )
    if state in ("open", "dormant"):
        query = query.where(InetRegistration.ended_at.is_(None))
    elif state == "ended":
        query = query.where(InetRegistration.ended_at.is_not(None))
    if organisation_id is not None:
        query = query.where(InetRegistration.organisation_id == organisation_id)
    text = "".join(c for c in q if c.isprintable()).strip()[:100]
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped.lower()}%"
        query = query.where(
            sa.or_(
                sa.func.lower(Organisation.legal_name).like(pattern, escape="\\"),
                sa.func.lower(Organisation.legal_name_kana).like(pattern, escape="\\"),
            )
        )
    rows = []
    for registration, sign_in, submitted, created in db.session.execute(query):
        last_order = max((i for i in (submitted, created) if i is not None), default=None)
        row = RegistrationRow(registration, sign_in, last_order, today)
        if state != "dormant" or row.is_dormant:
            rows.append(row)
        if len(rows) >= MAX_LISTED:
            break
    return rows


def row_of(registration: InetRegistration, today: date) -> RegistrationRow:
    (row,) = [
        r
        for r in registration_rows(today, state="all", organisation_id=registration.organisation_id)
        if r.registration.id == registration.id
    ]
    return row


def _used_since(today: date) -> datetime:
    """The first instant whose use keeps a registration out of dormancy today (R-84): a use
    on the Tokyo day after the last day d with d + 3 years <= today."""
    last = date(today.year - rules.DORMANT_YEARS, today.month, 1)  # dormant: a start
    while rules.is_dormant(last + timedelta(days=1), today):
        last += timedelta(days=1)
    return datetime.combine(last + timedelta(days=1), time(0), TOKYO)


def cancel_dormant(
    actor: Actor, registration: InetRegistration, *, ip: str = ""
) -> InetRegistration:
    """R-84: staff cancel a registration unused (no sign-in, no order) for three years. The
    UPDATE holds only while it is still open and still unused, so a sign-in or an order that
    came meanwhile, or a second cancellation at once, leaves it as it is."""
    if not can_manage_inet_registrations(actor):
        raise NotAllowed(_("Only support staff cancel dormant registrations."))
    today = clock.today()
    if not registration.is_open:
        raise Conflict(_("This registration has already ended."))
    if not row_of(registration, today).is_dormant:
        raise Conflict(_("This registration was used in the last three years: it is not dormant."))
    since = _used_since(today)
    signed_in = sa.exists().where(
        User.organisation_id == registration.organisation_id, User.last_login_at >= since
    )
    ordered = sa.exists().where(
        CardOrder.organisation_id == registration.organisation_id,
        sa.or_(CardOrder.created_at >= since, CardOrder.submitted_at >= since),
    )
    unused = (InetRegistration.registered_at < since, ~signed_in, ~ordered)
    if not _close(registration.id, RegistrationEnd.DORMANT, actor, today, *unused):
        raise Conflict(_("The registration was used or ended meanwhile: it was not cancelled."))
    action, notice = "inet_registration_cancelled_dormant", "inet_registration_cancelled"
    return _ended(registration, action, notice, actor, ip)


# --- the public application (R-80) -----------------------------------------------------------

APPLICATION_LIFETIME = timedelta(hours=24)
# Applications that expired this long ago are deleted (their details are personal data).
APPLICATION_KEPT_AFTER_EXPIRY = timedelta(days=7)
COMPANY_FIELDS = ("legal_name", "legal_name_kana", "postal_code", "address", "phone")


@dataclass(frozen=True)
class PublicApplication:
    """What the public application page sends."""

    legal_name: str
    legal_name_kana: str
    postal_code: str
    address: str
    phone: str
    application_contact_name: str
    application_contact_email: str
    operations_manager_name: str
    operations_manager_email: str
    admin_name: str
    admin_email: str
    locale: str
    consent: bool
    terms_version_id: int | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_application(application: PublicApplication) -> dict[str, str]:
    """The application's details as they will be stored, or InvalidInput with a message for
    each field (the company's fields by the rules of the registered information, R-62)."""
    errors: dict[str, str] = {}
    company: dict[str, str] = {}
    submitted = {f: getattr(application, f) or "" for f in COMPANY_FIELDS}
    for field, value in submitted.items():
        if _CONTROL.search(value):
            errors[field] = _("Remove the control characters from this field.")
    if not errors:
        try:
            company = information.normalise(
                {
                    **submitted,
                    "billing_email": application.application_contact_email,
                    "locale": application.locale,
                }
            )
        except information.InvalidInformation as exc:
            errors.update(
                {
                    ("application_contact_email" if k == "billing_email" else k): v
                    for k, v in exc.errors.items()
                }
            )
    for field in ("address", "phone", "postal_code"):
        if not errors.get(field) and not (company.get(field) or "").strip():
            errors[field] = _("This field is required.")
    try:
        contacts = check_contacts(
            Contacts(
                application.application_contact_name,
                application.application_contact_email,
                application.operations_manager_name,
                application.operations_manager_email,
            )
        )
    except InvalidInput as exc:
        errors = {**exc.errors, **errors}
        contacts = None
    admin_name = clean_name(application.admin_name, errors, "admin_name")
    admin_email = _clean_email(application.admin_email, errors, "admin_email")
    if not application.consent:
        errors["consent"] = _("Consent to the I-NET SERVICE terms to apply.")
    if errors:
        raise InvalidInput(errors)
    assert contacts is not None
    return {
        **{f: company[f] for f in COMPANY_FIELDS},
        "locale": company["locale"],
        **{f.name: getattr(contacts, f.name) for f in fields(Contacts)},
        "admin_name": admin_name,
        "admin_email": admin_email,
    }


def submit_application(application: PublicApplication, *, ip: str = "") -> InetApplication | None:
    """R-80: an application from the public page waits for its e-mail address to be verified:
    a link that works once, for 24 hours, goes to the first administrator's address; only the
    SHA-256 of its secret is kept. An address that already has an account gets an e-mail
    telling it to sign in instead, and the page answers the same (no account enumeration)."""
    details = check_application(application)
    today = clock.today()
    version = terms_in_force(today)
    if version is None or version.id != application.terms_version_id:
        raise Conflict(
            _("The I-NET SERVICE terms changed while you were applying. Read the version in force.")
        )
    email = details["admin_email"]
    existing = db.session.scalar(sa.select(User).where(User.email == email))
    if existing is not None:
        mail.enqueue(
            "inet_application_existing_account",
            to=email,
            locale=existing.locale,
            context={
                "user": existing,
                "login_url": mail.absolute_url("auth.login"),
                "forgot_url": mail.absolute_url("auth.forgot_password"),
            },
            user_id=existing.id,
            sensitive=True,
        )
        audit.record("inet_application_existing_account", user=existing, ip=ip)
        return None
    plain = secrets.token_urlsafe(32)
    created = InetApplication(
        email=email,
        token_sha256=_digest(plain),
        details=details,
        locale=details["locale"],
        terms_version_id=version.id,
        created_at=clock.now(),
        expires_at=clock.now() + APPLICATION_LIFETIME,
        ip=ip[:64],
    )
    db.session.add(created)
    db.session.flush()
    mail.enqueue(
        "inet_application_verify",
        to=email,
        locale=created.locale,
        context={
            "details": details,
            "link": mail.absolute_url("inet_public.verify", token=plain),
            "expires_at": created.expires_at,
        },
        sensitive=True,
    )
    audit.record("inet_application_submitted", subject=created, ip=ip)
    return created


class ApplicationUnusable(PortalError):
    """The link is unknown, expired or already used."""


def pending_application(plain: str) -> InetApplication:
    """The application of a link, while it can still be verified; ApplicationUnusable else."""
    found = db.session.scalar(
        sa.select(InetApplication).where(InetApplication.token_sha256 == _digest(plain[:200]))
    )
    if found is None:
        raise ApplicationUnusable(_("This link is not valid."))
    if found.verified_at is not None:
        raise ApplicationUnusable(_("This link was already used."))
    if _aware(found.expires_at) <= clock.now():
        raise ApplicationUnusable(_("This link has expired. Please apply again."))
    return found


@dataclass(frozen=True)
class Verified:
    organisation: Organisation
    administrator: User
    registration: InetRegistration


def verify_application(plain: str, password: str, *, ip: str = "") -> Verified:
    """R-80: the applicant opened the e-mailed link and chose a password: the organisation,
    its first administrator, its registration (public channel) and its consent to the terms
    version the applicant read are created together. The link works once: a conditional
    UPDATE lets one of two submissions through."""
    application = pending_application(plain)
    details: dict[str, str] = dict(application.details)
    if db.session.scalar(sa.select(User.id).where(User.email == application.email)):
        raise ApplicationUnusable(
            _("An account with this e-mail address exists already. Sign in instead.")
        )
    check_password_strength(password, User(email=application.email))
    password_hash = hash_password(password)  # slow on purpose: before the write lock
    now = clock.now()
    begin_writing()
    spent = db.session.execute(
        sa.update(InetApplication)
        .where(
            InetApplication.id == application.id,
            InetApplication.verified_at.is_(None),
            InetApplication.expires_at > now,
        )
        .values(verified_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if spent != 1:
        raise ApplicationUnusable(_("This link was already used."))
    organisation = Organisation(
        legal_name=details["legal_name"],
        legal_name_kana=details["legal_name_kana"],
        postal_code=details["postal_code"],
        address=details["address"],
        phone=details["phone"],
        # The application contact's address is the registered one; nothing is billed.
        billing_email=details["application_contact_email"],
        contract_contact_name=details["application_contact_name"],
        contract_contact_email=details["application_contact_email"],
        operations_contact_name=details["operations_manager_name"],
        operations_contact_email=details["operations_manager_email"],
        locale=details["locale"],
    )
    db.session.add(organisation)
    administrator = User(
        email=application.email,
        name=details["admin_name"],
        password_hash=password_hash,
        password_changed_at=now,
        locale=details["locale"],
        kind=UserKind.CUSTOMER,
        organisation=organisation,
        customer_role=CustomerRole.ADMINISTRATOR,
    )
    db.session.add(administrator)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        # The address got an account meanwhile (onboarded, or invited elsewhere).
        raise ApplicationUnusable(
            _("An account with this e-mail address exists already. Sign in instead.")
        ) from None
    registration = InetRegistration(
        organisation_id=organisation.id,
        channel=RegistrationChannel.PUBLIC,
        **{f.name: details[f.name] for f in fields(Contacts)},
        terms_version_id=application.terms_version_id,
        registered_at=now,
        registered_by_id=administrator.id,
    )
    db.session.add(registration)
    db.session.flush()
    db.session.execute(
        sa.update(InetApplication)
        .where(InetApplication.id == application.id)
        .values(organisation_id=organisation.id)
        .execution_options(synchronize_session=False)
    )
    version = db.session.get_one(TermsVersion, application.terms_version_id)
    terms.consent_on_application(
        version, organisation_id=organisation.id, user=administrator, actor=None, ip=ip
    )
    audit.record(
        "inet_application_verified",
        user=administrator,
        organisation_id=organisation.id,
        subject=registration,
        ip=ip,
        application_id=application.id,
        terms_version_id=version.id,
    )
    _announce_registration(organisation, registration, clock.today())
    return Verified(organisation, administrator, registration)


def delete_stale_applications(now: datetime) -> int:
    """Applications that expired more than a week ago go (their details are personal data)."""
    return (
        db.session.execute(
            sa.delete(InetApplication).where(
                InetApplication.expires_at < now - APPLICATION_KEPT_AFTER_EXPIRY
            )
        ).rowcount
        or 0
    )
