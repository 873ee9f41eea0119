"""Customer organisations: search and onboarding from an application."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from portal.domain import calendar
from portal.extensions import db
from portal.models import (
    Contract,
    ContractEvent,
    CustomerRole,
    Organisation,
    PartnerAssignment,
    PartnerCompany,
    PartnerKind,
    Plan,
    PriceList,
    SalesChannel,
    User,
    UserKind,
)
from portal.paging import Page, paginate
from portal.permissions import Actor, can_onboard
from portal.services import audit, information, terms
from portal.services.accounts import invite_first_administrator
from portal.services.apply import charge_initial_fee
from portal.services.auth import normalise_email
from portal.services.errors import NotAllowed, PortalError

ORGANISATIONS_PER_PAGE = 50


def search(text: str, *, page: int = 1) -> Page[Organisation]:
    """Staff search by name, kana, e-mail, phone or id; in the order of the names' readings
    (kana, as staff look names up), those without a reading after them by name; by page."""
    no_reading = sa.func.coalesce(Organisation.legal_name_kana, "") == ""
    query = sa.select(Organisation).order_by(
        sa.case((no_reading, 1), else_=0),
        Organisation.legal_name_kana,
        Organisation.legal_name,
        Organisation.id,
    )
    # Characters no name holds (NUL: PostgreSQL refuses it in a query) are not searched for;
    # % and _ are searched as themselves, not as LIKE wildcards.
    text = "".join(c for c in text if c.isprintable()).strip()
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped.lower()}%"
        conditions = [
            sa.func.lower(Organisation.legal_name).like(pattern, escape="\\"),
            sa.func.lower(Organisation.legal_name_kana).like(pattern, escape="\\"),
            sa.func.lower(Organisation.billing_email).like(pattern, escape="\\"),
            Organisation.phone.like(f"%{escaped}%", escape="\\"),
        ]
        if text.isascii() and text.isdigit() and len(text) < 10:
            conditions.append(Organisation.id == int(text))
        query = query.where(sa.or_(*conditions))
    return paginate(query, page, ORGANISATIONS_PER_PAGE)


def users_of(organisation: Organisation) -> list[User]:
    """The organisation's users, administrators first."""
    return list(
        db.session.scalars(
            sa.select(User)
            .where(User.organisation_id == organisation.id)
            .order_by(User.customer_role, User.id)
        )
    )


def sellable_plans() -> list[Plan]:
    """Plans of the newest price list of each service that are still sold (R-10)."""
    newest = (
        sa.select(PriceList.service_id, sa.func.max(PriceList.version).label("version"))
        .group_by(PriceList.service_id)
        .subquery()
    )
    return list(
        db.session.scalars(
            sa.select(Plan)
            .join(PriceList)
            .join(
                newest,
                sa.and_(
                    newest.c.service_id == PriceList.service_id,
                    newest.c.version == PriceList.version,
                ),
            )
            .where(Plan.sold.is_(True))
            .order_by(PriceList.service_id, Plan.capacity_gb)
        )
    )


@dataclass
class Application:
    """What the customer's application form (利用申込書) gives the provider."""

    legal_name: str
    billing_email: str
    admin_name: str
    admin_email: str
    plan_id: int
    service_start: date
    legal_name_kana: str = ""
    postal_code: str = ""
    address: str = ""
    phone: str = ""
    contract_contact_name: str = ""
    contract_contact_email: str = ""
    operations_contact_name: str = ""
    operations_contact_email: str = ""
    locale: str = "ja"
    anchor_day: int = calendar.DEFAULT_ANCHOR_DAY
    partner_id: int | None = None


@dataclass
class Onboarded:
    organisation: Organisation
    administrator: User
    contract: Contract
    invitation_expires_at: datetime


@dataclass(frozen=True)
class Checked:
    """An application nothing refuses: the plan it is for, the partner it came through and
    the company name's reading as kept."""

    plan: Plan
    partner: PartnerCompany | None
    legal_name_kana: str


def check_application(actor: Actor, application: Application) -> Checked:
    """What refuses an application, asked before staff confirm it (onboard asks again)."""
    if not can_onboard(actor):
        raise NotAllowed(_("Only support staff may onboard organisations."))
    admin_email = normalise_email(application.admin_email)
    if db.session.scalar(sa.select(User.id).where(User.email == admin_email)) is not None:
        raise PortalError(_("A user with this e-mail address already exists."), field="admin_email")
    plan = next((p for p in sellable_plans() if p.id == application.plan_id), None)
    if plan is None:
        raise PortalError(_("Choose a plan that is on sale."), field="plan_id")
    try:
        calendar.validate_anchor_day(application.anchor_day)
    except ValueError:
        raise PortalError(_("The anchor day must be 1 to 28."), field="anchor_day") from None
    partner = None
    if application.partner_id is not None:
        partner = db.session.get(PartnerCompany, application.partner_id)
        if partner is None:
            raise PortalError(_("Choose a partner company."), field="partner_id")
    try:
        kana = information.kana_reading(application.legal_name_kana)
    except ValueError as exc:
        raise PortalError(str(exc), field="legal_name_kana") from None
    return Checked(plan, partner, kana)


def onboard(
    actor: Actor, application: Application, *, ip: str = "", consent_on_application: bool = True
) -> Onboarded:
    """Create the organisation, its first administrator and its first contract.

    `consent_on_application=False` (an application a partner's agent sent, issue 14): nobody
    consented for the organisation, as agents never consent (R-60, R-71); its administrator
    consents himself in the portal."""
    checked = check_application(actor, application)
    plan, partner = checked.plan, checked.partner
    admin_email = normalise_email(application.admin_email)

    organisation = Organisation(
        legal_name=application.legal_name.strip(),
        legal_name_kana=checked.legal_name_kana,
        postal_code=application.postal_code.strip(),
        address=application.address.strip(),
        phone=application.phone.strip(),
        billing_email=normalise_email(application.billing_email),
        contract_contact_name=application.contract_contact_name.strip(),
        contract_contact_email=normalise_email(application.contract_contact_email),
        operations_contact_name=application.operations_contact_name.strip(),
        operations_contact_email=normalise_email(application.operations_contact_email),
        sales_channel=channel_of(partner),
        locale=application.locale,
    )
    db.session.add(organisation)
    if partner is not None:
        db.session.add(PartnerAssignment(partner_id=partner.id, organisation=organisation))
    administrator = User(
        email=admin_email,
        name=application.admin_name.strip(),
        password_hash="",  # set by the invitation below: no usable password until accepted
        locale=application.locale,
        kind=UserKind.CUSTOMER,
        organisation=organisation,
        customer_role=CustomerRole.ADMINISTRATOR,
    )
    db.session.add(administrator)
    contract = open_contract(
        organisation,
        plan,
        service_start=application.service_start,
        anchor_day=application.anchor_day,
        partner=partner,
    )
    db.session.flush()
    if consent_on_application:
        # the application form (利用申込書) accepts the terms in force, for the organisation.
        terms.record_application_consent(organisation, contract.service_id, administrator)
    db.session.add(
        ContractEvent(
            contract=contract,
            kind="created",
            effective_on=application.service_start,
            user_id=actor.user.id,
            details={"plan": plan.code, "monthly_fee": plan.monthly_fee},
        )
    )
    audit.record(
        "organisation_onboarded",
        actor=actor,
        organisation_id=organisation.id,
        subject=organisation,
        ip=ip,
        contract_id=contract.id,
        administrator=admin_email,
    )
    invitation = invite_first_administrator(administrator, invited_by=actor.user)
    return Onboarded(organisation, administrator, contract, invitation.expires_at)


def channel_of(partner: PartnerCompany | None) -> SalesChannel:
    if partner is None:
        return SalesChannel.DIRECT
    return SalesChannel.AGENCY if partner.kind == PartnerKind.AGENCY else SalesChannel.SALES_AGENT


def open_contract(
    organisation: Organisation,
    plan: Plan,
    *,
    service_start: date,
    anchor_day: int,
    partner: PartnerCompany | None,
) -> Contract:
    """A contract at the plan's current price (R-10); agency contracts get their first period."""
    channel = channel_of(partner)
    contract = Contract(
        organisation=organisation,
        service=plan.price_list.service,
        plan=plan,
        monthly_fee=plan.monthly_fee,
        minimum_months=plan.minimum_months,
        service_start=service_start,
        anchor_day=anchor_day,
        sales_channel=channel,
        partner=partner,
        agency_periods_granted=1 if channel == SalesChannel.AGENCY else None,
    )
    db.session.add(contract)
    db.session.flush()
    if contract.service.paid:
        charge_initial_fee(contract)
    return contract
