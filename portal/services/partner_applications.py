"""Applications for a new client sent by a partner's agent (issue 14, R-71).

An agent of a sales agent or of an agency applies for a company (its details, contacts, first
administrator, the plan and the service start wished; for I-NET SERVICE the registration's
contacts). Staff approve or refuse it in the back office. On approval the company is onboarded
as staff onboard any application (organisation, first administrator invited by e-mail, first
contract) and assigned to the partner; nobody consents to the terms for it: agents never
consent (R-60, R-71), its administrator does, himself, in the portal.

Each decision (approve, refuse, or the partner's withdrawal) is one conditional UPDATE of a
pending application, so two decisions at once leave exactly one; approving also locks the
application first, so that two approvals at once onboard once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from portal.clock import clock
from portal.domain import calendar
from portal.domain.money import tax_on
from portal.extensions import db
from portal.models import (
    ApplicationStatus,
    InetRegistration,
    Organisation,
    PartnerApplication,
    PartnerCompany,
    PartnerKind,
    Plan,
    RegistrationChannel,
    User,
)
from portal.permissions import (
    Actor,
    can_apply_for_clients,
    can_decide_partner_applications,
)
from portal.presentation import long_date
from portal.services import audit, inet_registrations, information, mail
from portal.services import organisations as onboarding
from portal.services.accounts import address_not_usable
from portal.services.auth import normalise_email
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.transaction import begin_writing

MAX_LISTED = 200  # applications on a list page (each list is bounded)
MAX_MONTHS_AHEAD = 12  # the wished service start: from today to a year ahead
MIN_REASON_LENGTH, MAX_REASON_LENGTH = 10, 1000  # a refusal's reason
MAX_NAME_LENGTH, MAX_EMAIL_LENGTH = 100, 254

# The company's registered information the application gives, and those of its fields an
# application must fill (the company's reading, address and phone besides the portal's own).
ORGANISATION_FIELDS = information.FIELDS
REQUIRED_FIELDS = frozenset({"legal_name_kana", "postal_code", "address", "phone"})
# I-NET SERVICE (IN 16): the registration's contacts, named as in inet_registrations.Contacts.
INET_FIELDS = tuple(f"inet_{f.name}" for f in fields(inet_registrations.Contacts))

# Lazy: rendered in the reader's language (a page's, or an e-mail's recipient's).
STATUS_NAMES = {
    ApplicationStatus.PENDING: _l("Waiting for the provider"),
    ApplicationStatus.APPROVED: _l("Approved"),
    ApplicationStatus.REFUSED: _l("Refused"),
    ApplicationStatus.WITHDRAWN: _l("Withdrawn"),
}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# Whose an address is (another customer's user, an agent, the provider's staff, another
# partner's applicant) is nobody's to learn from this form (issue 13): one answer for all,
# accounts.invite's.
_address_not_usable = address_not_usable


class InvalidApplication(inet_registrations.InvalidInput):
    """Input the rules refuse, with a message for each field concerned."""


@dataclass
class Draft:
    """What the agent's form gives: the customer's application (利用申込書) for the company."""

    legal_name: str
    billing_email: str
    admin_name: str
    admin_email: str
    plan_id: int | None
    service_start: date | None
    legal_name_kana: str = ""
    postal_code: str = ""
    address: str = ""
    phone: str = ""
    contract_contact_name: str = ""
    contract_contact_email: str = ""
    operations_contact_name: str = ""
    operations_contact_email: str = ""
    locale: str = "ja"
    inet_application_contact_name: str = ""
    inet_application_contact_email: str = ""
    inet_operations_manager_name: str = ""
    inet_operations_manager_email: str = ""


# --- fees (R-11) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fees:
    """What the new contract costs, as quotes show it: R-11, the initial fee is one monthly
    fee, billed once on the first invoice; tax once per charge at the plan's rate (R-13)."""

    monthly_fee: int
    tax_rate_percent: int

    @property
    def initial_fee(self) -> int:
        return self.monthly_fee

    @property
    def initial_tax(self) -> int:
        return tax_on(self.initial_fee, self.tax_rate_percent)

    @property
    def initial_total(self) -> int:
        return self.initial_fee + self.initial_tax

    @property
    def monthly_tax(self) -> int:
        return tax_on(self.monthly_fee, self.tax_rate_percent)

    @property
    def monthly_total(self) -> int:
        return self.monthly_fee + self.monthly_tax


def fees_of(plan: Plan) -> Fees | None:
    """The plan's fees; None for a free service (I-NET SERVICE has no price at all, R-80).
    Callers show them only to those who may see fees (never agencies, R-71)."""
    if not plan.price_list.service.paid:
        return None
    return Fees(plan.monthly_fee, plan.tax_rate_percent)


def is_inet_plan(plan: Plan) -> bool:
    return plan.price_list.service.code == inet_registrations.INET_SERVICE_CODE


# --- checking and sending ---------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """An application nothing refuses: its values as they will be stored, and its plan."""

    values: dict[str, object]
    plan: Plan

    @property
    def fees(self) -> Fees | None:
        return fees_of(self.plan)


def _admin_email(value: str | None, errors: dict[str, str]) -> str:
    """The first administrator's address: valid, and nobody's yet (no user has it, no other
    pending application names it)."""
    address = normalise_email(value or "")
    if not address or _CONTROL.search(address) or len(address) > MAX_EMAIL_LENGTH:
        errors["admin_email"] = _("Enter a valid e-mail address.")
        return ""
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        errors["admin_email"] = _("Enter a valid e-mail address.")
        return ""
    taken = db.session.scalar(
        sa.select(
            sa.exists().where(User.email == address)
            | sa.exists().where(
                PartnerApplication.admin_email == address,
                PartnerApplication.status == ApplicationStatus.PENDING,
            )
        )
    )
    if taken:
        errors["admin_email"] = _address_not_usable()
    return address


def _service_start(value: date | None, errors: dict[str, str]) -> date | None:
    """Not in the past (Tokyo's today, R-01) and at most a year ahead."""
    if value is None:
        errors["service_start"] = _("Enter the service start date.")
        return None
    today = clock.today()
    latest = calendar.add_months_clamped(today, MAX_MONTHS_AHEAD)
    if not today <= value <= latest:
        errors["service_start"] = _(
            "Choose a service start from today (%(today)s) to %(latest)s.",
            today=long_date(today),
            latest=long_date(latest),
        )
    return value


def _plan(plan_id: int | None, errors: dict[str, str]) -> Plan | None:
    plan = next((p for p in onboarding.sellable_plans() if p.id == plan_id), None)
    if plan is None:
        errors["plan_id"] = _("Choose a plan that is on sale.")
    return plan


def _inet_contacts(draft: Draft, errors: dict[str, str]) -> dict[str, str]:
    """IN 16: the registration's contacts, required for an I-NET SERVICE plan."""
    contacts = inet_registrations.Contacts(
        **{f.name: getattr(draft, f"inet_{f.name}") for f in fields(inet_registrations.Contacts)}
    )
    try:
        cleaned = inet_registrations.check_contacts(contacts)
    except inet_registrations.InvalidInput as exc:
        errors.update({f"inet_{field}": message for field, message in exc.errors.items()})
        return {}
    return {f"inet_{f.name}": getattr(cleaned, f.name) for f in fields(cleaned)}


def check(actor: Actor, draft: Draft) -> Checked:
    """What refuses an application, each message for its field (InvalidApplication); asked
    before the agent confirms it, and again when it is sent."""
    if not can_apply_for_clients(actor):
        raise NotAllowed(_("Only agents of sales agents and agencies apply for new clients."))
    errors: dict[str, str] = {}
    submitted = {field: getattr(draft, field) for field in ORGANISATION_FIELDS}
    try:
        values: dict[str, object] = dict(information.normalise(submitted))
    except information.InvalidInformation as exc:
        errors.update(exc.errors)
        values = {}
    for field in REQUIRED_FIELDS:
        if field not in errors and not (submitted[field] or "").strip():
            errors[field] = _("This field is required.")
    values["admin_name"] = inet_registrations.clean_name(
        draft.admin_name, errors, "admin_name", MAX_NAME_LENGTH
    )
    values["admin_email"] = _admin_email(draft.admin_email, errors)
    plan = _plan(draft.plan_id, errors)
    values["service_start"] = _service_start(draft.service_start, errors)
    if plan is not None and is_inet_plan(plan):
        values.update(_inet_contacts(draft, errors))
    else:
        values.update(dict.fromkeys(INET_FIELDS, ""))  # asked only for I-NET SERVICE
    if errors:
        raise InvalidApplication(errors)
    assert plan is not None
    values["plan_id"] = plan.id
    values["anchor_day"] = plan.price_list.service.default_anchor_day
    return Checked(values, plan)


def submit(actor: Actor, draft: Draft, *, ip: str = "") -> PartnerApplication:
    """R-71: the agent's company applies for a new client; staff are told. The same
    application sent twice at once is taken once (the partial unique index on the pending
    first administrator's address decides; the other is told as for a taken address)."""
    checked = check(actor, draft)
    application = PartnerApplication(
        partner_id=actor.user.partner_id,
        submitted_by_id=actor.user.id,
        submitted_at=clock.now(),
        status=ApplicationStatus.PENDING,
        **checked.values,
    )
    begin_writing()
    try:
        with db.session.begin_nested():
            db.session.add(application)
            db.session.flush()
    except IntegrityError:
        raise InvalidApplication({"admin_email": _address_not_usable()}) from None
    audit.record(
        "partner_application_submitted",
        actor=actor,
        subject=application,
        ip=ip,
        partner_id=application.partner_id,
        legal_name=application.legal_name,
        plan=checked.plan.code,
    )
    # Those who decide are told at once, as of a misuse report (no amount: just what to look at).
    mail.alert_staff(
        "partner_application_submitted",
        {
            "application": application,
            "partner": db.session.get(PartnerCompany, application.partner_id),
            "agent": actor.user,
            "plan": checked.plan,
            "application_url": mail.absolute_url(
                "staff.partner_application", application_id=application.id
            ),
        },
    )
    return application


# --- reading -----------------------------------------------------------------------------------


def _listing() -> sa.Select[tuple[PartnerApplication]]:
    return sa.select(PartnerApplication).options(
        joinedload(PartnerApplication.partner),
        joinedload(PartnerApplication.submitted_by),
        joinedload(PartnerApplication.plan).joinedload(Plan.price_list),
    )


def of_partner(partner_id: int, *, limit: int = MAX_LISTED) -> list[PartnerApplication]:
    """The partner company's applications, newest first (every agent of it sees them)."""
    return list(
        db.session.scalars(
            _listing()
            .where(PartnerApplication.partner_id == partner_id)
            .order_by(PartnerApplication.submitted_at.desc(), PartnerApplication.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class StaffListing:
    pending: list[PartnerApplication]  # the oldest first: the longest waiting
    decided: list[PartnerApplication]  # the newest decision first


def for_staff(*, limit: int = MAX_LISTED) -> StaffListing:
    pending = _listing().where(PartnerApplication.status == ApplicationStatus.PENDING)
    decided = _listing().where(PartnerApplication.status != ApplicationStatus.PENDING)
    return StaffListing(
        pending=list(
            db.session.scalars(
                pending.order_by(PartnerApplication.submitted_at, PartnerApplication.id).limit(
                    limit
                )
            )
        ),
        decided=list(
            db.session.scalars(
                decided.order_by(
                    PartnerApplication.decided_at.desc(), PartnerApplication.id.desc()
                ).limit(limit)
            )
        ),
    )


# --- deciding ----------------------------------------------------------------------------------


class AlreadyDecided(Conflict):
    """The application no longer waits: approved, refused or withdrawn meanwhile."""


def _already_decided() -> AlreadyDecided:
    return AlreadyDecided(_("This application was already decided."))


def _onboarding_application(application: PartnerApplication) -> onboarding.Application:
    return onboarding.Application(
        **{field: getattr(application, field) for field in ORGANISATION_FIELDS},
        admin_name=application.admin_name,
        admin_email=application.admin_email,
        plan_id=application.plan_id,
        service_start=application.service_start,
        anchor_day=application.anchor_day,
        partner_id=application.partner_id,
    )


def check_approval(actor: Actor, application: PartnerApplication) -> onboarding.Checked:
    """What refuses the approval, asked before staff confirm it (approve asks again)."""
    if not can_decide_partner_applications(actor):
        raise NotAllowed(_("Only support staff decide applications."))
    if application.status != ApplicationStatus.PENDING:
        raise _already_decided()
    return onboarding.check_application(actor, _onboarding_application(application))


def _lock_pending(application: PartnerApplication) -> None:
    """Take the application's row for this transaction and check it still waits: of two
    approvals at once the second waits here, then finds it decided (and onboards nothing)."""
    begin_writing()  # SQLite: the write lock, so the read below is the latest
    status = db.session.scalar(
        sa.select(PartnerApplication.status)
        .where(PartnerApplication.id == application.id)
        .with_for_update()
    )
    if status != ApplicationStatus.PENDING:
        raise _already_decided()


def _decide(application: PartnerApplication, actor: Actor, **values: object) -> None:
    """The decision, if the application still waits: a conditional UPDATE."""
    begin_writing()
    changed = db.session.execute(
        sa.update(PartnerApplication)
        .where(
            PartnerApplication.id == application.id,
            PartnerApplication.status == ApplicationStatus.PENDING,
        )
        .values(decided_at=clock.now(), decided_by_id=actor.user.id, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise _already_decided()
    db.session.expire(application)


@dataclass(frozen=True)
class Approved:
    onboarded: onboarding.Onboarded
    registration: InetRegistration | None


def approve(actor: Actor, application: PartnerApplication, *, ip: str = "") -> Approved:
    """Onboard the company from the application, assigned to the partner (R-71), without any
    consent on the application (R-60: its administrator, invited by e-mail, consents himself);
    for an I-NET SERVICE plan, register it with the application's contacts. The agent who
    applied is told."""
    if not can_decide_partner_applications(actor):
        raise NotAllowed(_("Only support staff decide applications."))
    _lock_pending(application)
    onboarded = onboarding.onboard(
        actor, _onboarding_application(application), ip=ip, consent_on_application=False
    )
    organisation = onboarded.organisation
    registration = None
    if is_inet_plan(onboarded.contract.plan):
        registration = _register_inet(actor, application, organisation, ip=ip)
    _decide(
        application,
        actor,
        status=ApplicationStatus.APPROVED,
        organisation_id=organisation.id,
    )
    audit.record(
        "partner_application_approved",
        actor=actor,
        organisation_id=organisation.id,
        subject=application,
        ip=ip,
        partner_id=application.partner_id,
        contract_id=onboarded.contract.id,
    )
    _tell_agent(application, "partner_application_approved", organisation=organisation)
    return Approved(onboarded, registration)


def _register_inet(
    actor: Actor, application: PartnerApplication, organisation: Organisation, *, ip: str
) -> InetRegistration:
    """R-80/R-71: the registration the agent applied for, with its contacts: channel "agent",
    registered by the agent who applied, and no consent (agents never consent; the client's
    administrators are asked to, R-60). The organisation is new, so nothing else registers it.
    Told to the organisation as every registration is."""
    contacts = inet_registrations.check_contacts(
        inet_registrations.Contacts(
            **{
                f.name: getattr(application, f"inet_{f.name}")
                for f in fields(inet_registrations.Contacts)
            }
        )
    )
    registration = InetRegistration(
        organisation_id=organisation.id,
        channel=RegistrationChannel.AGENT,
        **{f.name: getattr(contacts, f.name) for f in fields(contacts)},
        terms_version_id=None,
        registered_at=clock.now(),
        registered_by_id=application.submitted_by_id,
    )
    db.session.add(registration)
    db.session.flush()
    audit.record(
        "inet_registered",
        actor=actor,
        organisation_id=organisation.id,
        subject=registration,
        ip=ip,
        channel=registration.channel.value,
        terms_version_id=None,
        partner_application_id=application.id,
    )
    state = inet_registrations.terms_state(organisation.id, clock.today())
    mail.notify_organisation(
        organisation,
        "inet_registration_registered",
        to=[
            *mail.contract_notice_addresses(organisation),
            registration.application_contact_email,
            registration.operations_manager_email,
        ],
        dedupe_key=f"inet_registration_registered:{registration.id}",
        context={
            "registration": registration,
            "channel": inet_registrations.channel_name(registration.channel),
            "terms_version": state.version if state.outstanding else None,
            "terms_url": (
                mail.absolute_url("terms.version", version_id=state.version.id)
                if state.version is not None
                else ""
            ),
            "inet_url": mail.absolute_url("inet.home"),
        },
    )
    return registration


def clean_reason(reason: str | None) -> str:
    """A refusal's reason as kept: control characters but line breaks refused, bounded."""
    text = (reason or "").replace("\r\n", "\n").strip()
    if re.search(r"[\x00-\x09\x0b-\x1f\x7f]", text):
        raise PortalError(_("Remove the control characters from this field."), field="reason")
    if not MIN_REASON_LENGTH <= len(text) <= MAX_REASON_LENGTH:
        raise PortalError(
            _(
                "Give the reason in %(min)d to %(max)d characters.",
                min=MIN_REASON_LENGTH,
                max=MAX_REASON_LENGTH,
            ),
            field="reason",
        )
    return text


def refuse(
    actor: Actor, application: PartnerApplication, reason: str | None, *, ip: str = ""
) -> PartnerApplication:
    """Staff refuse the application with a reason, which the agent who applied is told."""
    if not can_decide_partner_applications(actor):
        raise NotAllowed(_("Only support staff decide applications."))
    text = clean_reason(reason)
    _decide(application, actor, status=ApplicationStatus.REFUSED, refusal_reason=text)
    audit.record(
        "partner_application_refused",
        actor=actor,
        subject=application,
        ip=ip,
        partner_id=application.partner_id,
    )
    _tell_agent(application, "partner_application_refused")
    return application


def withdraw(actor: Actor, application: PartnerApplication, *, ip: str = "") -> PartnerApplication:
    """The partner takes its application back before staff decide (any agent of the company)."""
    if not can_apply_for_clients(actor) or application.partner_id != actor.user.partner_id:
        raise NotAllowed(_("Only agents of sales agents and agencies apply for new clients."))
    _decide(application, actor, status=ApplicationStatus.WITHDRAWN)
    audit.record(
        "partner_application_withdrawn",
        actor=actor,
        subject=application,
        ip=ip,
        partner_id=application.partner_id,
    )
    return application


def _tell_agent(application: PartnerApplication, kind: str, **context: object) -> None:
    """The decision, to the agent who applied, in his language; an agency's e-mail carries no
    amount (R-71)."""
    agent = application.submitted_by
    if not agent.active:
        return
    partner = application.partner
    shows_fees = partner.kind != PartnerKind.AGENCY
    mail.enqueue(
        kind,
        to=agent.email,
        locale=agent.locale,
        context={
            "application": application,
            "agent": agent,
            "partner": partner,
            "plan": application.plan,
            "fees": fees_of(application.plan) if shows_fees else None,
            "application_url": mail.absolute_url(
                "partners.application", application_id=application.id
            ),
            **context,
        },
        user_id=agent.id,
    )
