"""Who may do what. Views and templates ask here; nothing else derives roles.

Tenancy: every customer-owned row is loaded through a loader scoped to what the actor may
see, and anything outside that scope answers 404, so that ids reveal nothing (R-70, R-71).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import abort, g
from sqlalchemy.orm import joinedload

from portal.extensions import db
from portal.models import (
    AccountEntry,
    CardHolder,
    CardOrder,
    Contract,
    ContractRequest,
    ContractStatus,
    CustomerRole,
    EntryKind,
    Incident,
    InetRegistration,
    Invoice,
    Maintenance,
    MisuseReport,
    Organisation,
    OutboxEmail,
    PartnerApplication,
    PartnerAssignment,
    PartnerKind,
    PartnerRole,
    Service,
    SlaClaim,
    StaffRole,
    TermsVersion,
    User,
    UserKind,
)


@dataclass(frozen=True)
class Actor:
    """The signed-in user, and the customer account they are in when they entered one."""

    user: User
    entry: AccountEntry | None = None

    @property
    def organisation(self) -> Organisation | None:
        """The organisation whose portal this actor is in, if any."""
        if self.user.kind == UserKind.CUSTOMER:
            return self.user.organisation
        return self.entry.organisation if self.entry else None

    @property
    def organisation_id(self) -> int | None:
        org = self.organisation
        return org.id if org else None

    @property
    def is_staff_view(self) -> bool:
        """R-72: provider staff viewing the portal as a customer user."""
        return self.entry is not None and self.entry.kind == EntryKind.STAFF_VIEW

    @property
    def is_agent_entry(self) -> bool:
        return self.entry is not None and self.entry.kind == EntryKind.AGENT

    @property
    def as_user(self) -> User | None:
        """The customer user whose view staff are seeing."""
        return self.entry.as_user if self.is_staff_view and self.entry else None

    @property
    def customer_role(self) -> CustomerRole | None:
        if self.user.kind == UserKind.CUSTOMER:
            return self.user.customer_role
        if self.as_user is not None:
            return self.as_user.customer_role
        return None

    @property
    def partner_kind(self) -> PartnerKind | None:
        return self.user.partner.kind if self.user.partner else None


# --- predicates -------------------------------------------------------------------------


def is_customer_admin(actor: Actor) -> bool:
    return (
        actor.user.kind == UserKind.CUSTOMER and actor.customer_role == CustomerRole.ADMINISTRATOR
    )


def is_staff(actor: Actor) -> bool:
    """Staff in the back office (not while viewing a customer's portal)."""
    return actor.user.kind == UserKind.STAFF and not actor.is_staff_view


def _staff_in(actor: Actor, *roles: StaffRole) -> bool:
    """Staff in the back office with one of these roles."""
    return is_staff(actor) and actor.user.staff_role in roles


def is_agent(actor: Actor) -> bool:
    return actor.user.kind == UserKind.AGENT


def can_use_customer_portal(actor: Actor) -> bool:
    return actor.organisation is not None


def can_see_fees(actor: Actor) -> bool:
    """R-71: agencies (取次店) act for clients in everything except fees and invoices."""
    return actor.partner_kind != PartnerKind.AGENCY


def can_see_access_records(actor: Actor) -> bool:
    """R-73: access records are for the provider and, for its own account, the customer."""
    if not can_use_customer_portal(actor) or is_agent(actor):
        return False
    return actor.is_staff_view or is_customer_admin(actor)


def can_change_own_credentials(actor: Actor) -> bool:
    """R-72: staff viewing as a customer never change credentials."""
    return not actor.is_staff_view


def can_request_changes(actor: Actor) -> bool:
    """R-70/R-71: administrators and agents file plan changes, cancellation and renewal.

    Members see but cannot request; staff viewing as the customer see quotes only (R-72).
    """
    if actor.is_staff_view:
        return False
    if is_agent(actor):
        return True
    return is_customer_admin(actor)


def can_manage_api_tokens(actor: Actor) -> bool:
    """API tokens are credentials: never while staff view as the customer (R-72)."""
    return can_change_own_credentials(actor) and actor.user.active


def can_record_usage(actor: Actor) -> bool:
    """R-15: usage comes from the provider's systems (a staff token) or staff entry."""
    return is_staff(actor)


def can_see_invoices(actor: Actor) -> bool:
    """Administrators, sales agents for their clients, members when their administrator allows
    it, and staff viewing as the customer; agencies never (R-71)."""
    organisation = actor.organisation
    if organisation is None or not can_see_fees(actor):
        return False
    # Staff viewing as a customer see what that user sees: a member's view has no
    # invoices unless members may see them (issue 13).
    if is_agent(actor) or actor.customer_role == CustomerRole.ADMINISTRATOR:
        return True
    return actor.customer_role == CustomerRole.MEMBER and organisation.members_see_invoices


def can_pay_invoices(actor: Actor) -> bool:
    """Administrators and sales agents pay; never staff viewing as the customer (R-72)."""
    if actor.is_staff_view or not can_see_invoices(actor):
        return False
    return is_customer_admin(actor) or is_agent(actor)


def can_set_invoice_access(actor: Actor) -> bool:
    """The customer's own administrators decide whether members see invoices (R-70)."""
    return is_customer_admin(actor)


def can_search_invoices(actor: Actor) -> bool:
    """Every back-office role looks up documents (the Electronic Bookkeeping Act's search)."""
    return is_staff(actor)


def can_manage_billing(actor: Actor) -> bool:
    """Billing staff (and staff administrators) record payments and send reminders (R-33, R-43)."""
    return _staff_in(actor, StaffRole.BILLING, StaffRole.ADMINISTRATOR)


def can_issue_credit_notes(actor: Actor) -> bool:
    return can_manage_billing(actor)


def can_change_provider_settings(actor: Actor) -> bool:
    """The issuer's name, registration number, contact and bank account (R-40, R-44): staff
    administrators change them; every back-office role reads them."""
    return _staff_in(actor, StaffRole.ADMINISTRATOR)


def can_onboard(actor: Actor) -> bool:
    return _staff_in(actor, StaffRole.SUPPORT, StaffRole.ADMINISTRATOR)


def can_manage_partners(actor: Actor) -> bool:
    """R-71: support staff (and staff administrators) create partner companies and assign or
    withdraw their clients; the other back-office roles only look."""
    return _staff_in(actor, StaffRole.SUPPORT, StaffRole.ADMINISTRATOR)


def can_decide_partner_applications(actor: Actor) -> bool:
    """Issue 14: support staff (and staff administrators) approve or refuse a partner's
    application for a new client, as they onboard any application; the others only look."""
    return can_onboard(actor)


def can_apply_for_clients(actor: Actor) -> bool:
    """R-71: sales agents and agencies act for clients in sign-up: any agent of either kind
    applies for a new client (staff decide; the client's administrator consents, R-60)."""
    return is_agent(actor)


def is_partner_admin(actor: Actor) -> bool:
    """An administrator of a partner company: an agent who also manages its agents."""
    return is_agent(actor) and actor.user.partner_role == PartnerRole.ADMINISTRATOR


def can_manage_partner_people(actor: Actor) -> bool:
    """Issue 14: a partner company's administrators invite and remove its agents and see
    which agent acted for which client."""
    return is_partner_admin(actor)


def can_view_as_customer(actor: Actor) -> bool:
    """R-72: support staff (and staff administrators) may view the portal as a customer."""
    return can_onboard(actor)


def can_see_mail_queue(actor: Actor) -> bool:
    """Every back-office role sees the e-mail outbox (what waits, what was given up)."""
    return is_staff(actor)


def can_retry_mail(actor: Actor) -> bool:
    return _staff_in(actor, StaffRole.SUPPORT, StaffRole.ADMINISTRATOR)


def can_see_information(actor: Actor) -> bool:
    """R-62: everyone inside the customer's portal sees its registered information."""
    return can_use_customer_portal(actor)


def can_change_information(actor: Actor) -> bool:
    """R-62/R-70/R-71: administrators, and agents of both kinds for their clients, change the
    registered information; members only see it, and so do staff viewing as the customer
    (R-72)."""
    if actor.is_staff_view or not can_use_customer_portal(actor):
        return False
    return is_agent(actor) or is_customer_admin(actor)


def can_see_notices(actor: Actor) -> bool:
    """R-61: the notices kept for the organisation, for its administrators, its sales agents
    and staff viewing as the customer; never agencies, as notices carry fees (R-71)."""
    if not can_use_customer_portal(actor) or not can_see_fees(actor):
        return False
    return is_agent(actor) or actor.customer_role == CustomerRole.ADMINISTRATOR


def can_publish_terms(actor: Actor) -> bool:
    """R-60: new terms change every customer's contract: staff administrators only."""
    return _staff_in(actor, StaffRole.ADMINISTRATOR)


def can_read_terms(actor: Actor) -> bool:
    """Everyone inside the customer's portal reads the terms and the consent history."""
    return can_use_customer_portal(actor)


def can_consent_to_terms(actor: Actor) -> bool:
    """R-60/R-70: the customer's own administrators consent; never an agent (R-71, IW 27(4))
    nor staff viewing as the customer (R-72), whoever they view as."""
    return is_customer_admin(actor) and actor.entry is None


def use_counts_as_consent(actor: Actor) -> bool:
    """R-60 (IN 16(2)): only the customer's own users use the service; an agent's or viewing
    staff's requests never count as the customer's deemed consent."""
    return (
        actor.user.kind == UserKind.CUSTOMER
        and actor.entry is None
        and actor.user.organisation_id is not None
    )


def can_see_users(actor: Actor) -> bool:
    """R-70: the organisation's administrators see its users, and so do staff viewing as the
    customer (R-72); members and agents do not (agents act for clients, not on their users)."""
    if not can_use_customer_portal(actor):
        return False
    # Staff viewing as a member see what the member sees: no users (R-72, issue 13).
    return actor.customer_role == CustomerRole.ADMINISTRATOR


def can_manage_users(actor: Actor) -> bool:
    """R-70: the customer's own administrators invite and remove users; never staff viewing
    as the customer, as users' logins are credentials (R-72)."""
    return is_customer_admin(actor) and actor.entry is None


def can_report_misuse(actor: Actor) -> bool:
    """R-63: any user may report misuse of their own account; staff viewing as a customer are
    not that customer's user (R-72)."""
    return not actor.is_staff_view


def can_see_misuse_reports(actor: Actor) -> bool:
    return is_staff(actor)


def can_handle_misuse_reports(actor: Actor) -> bool:
    return _staff_in(actor, StaffRole.SUPPORT, StaffRole.ADMINISTRATOR)


def can_manage_incidents(actor: Actor) -> bool:
    """R-50: support staff and staff administrators record incidents and maintenance."""
    return _staff_in(actor, StaffRole.SUPPORT, StaffRole.ADMINISTRATOR)


def can_see_system_information(actor: Actor) -> bool:
    """R-52: everyone inside the customer's portal sees the incidents that touched its
    contracts and the maintenance ahead; incidents carry no amounts."""
    return can_use_customer_portal(actor)


def can_see_claims(actor: Actor) -> bool:
    """R-52/R-71: claims are compensation in yen: everyone inside the portal but agencies."""
    return can_use_customer_portal(actor) and can_see_fees(actor)


def can_file_claims(actor: Actor) -> bool:
    """R-52 reading: customer administrators and sales agents claim; not members, not
    agencies (amounts, R-71), not staff viewing as the customer (R-72)."""
    if actor.is_staff_view:
        return False
    if is_agent(actor):
        return actor.partner_kind == PartnerKind.SALES_AGENT
    return is_customer_admin(actor)


def can_record_paper_claims(actor: Actor) -> bool:
    """R-52 reading: staff record a claim received by letter or telephone."""
    return _staff_in(actor, StaffRole.SUPPORT, StaffRole.ADMINISTRATOR)


def can_review_claims(actor: Actor) -> bool:
    """R-52/R-53: billing staff and staff administrators approve or reject claims."""
    return _staff_in(actor, StaffRole.BILLING, StaffRole.ADMINISTRATOR)


def can_see_feed_addresses(actor: Actor) -> bool:
    """The secret addresses of the incident and maintenance feeds are the customer's own
    users'; agents and staff viewing as the customer do not take them away."""
    return actor.user.kind == UserKind.CUSTOMER and actor.entry is None


def can_rotate_feeds(actor: Actor) -> bool:
    """A new feed address ends every subscription: the customer's administrators decide."""
    return is_customer_admin(actor) and actor.entry is None


# --- I-NET SERVICE (R-80..R-85) ------------------------------------------------------------


@dataclass(frozen=True)
class Holdings:
    """What the organisation whose portal the actor is in has: IMAGE WORKS contracts, an
    open I-NET SERVICE registration, or both (the navigation shows what it has)."""

    contracts: bool
    inet: bool
    # an ended registration whose photos are still kept (their deletion day is shown).
    photos_kept: bool = False


def holdings(actor: Actor) -> Holdings:
    """Asked once per request (the navigation and pages share the answer)."""
    org_id = actor.organisation_id
    if org_id is None:
        return Holdings(contracts=False, inet=False)
    cached = g.get("holdings")
    if cached is not None and cached[0] == org_id:
        return cached[1]
    contracts = sa.exists().where(Contract.organisation_id == org_id)
    inet = sa.exists().where(
        InetRegistration.organisation_id == org_id, InetRegistration.ended_at.is_(None)
    )
    row = db.session.execute(sa.select(contracts, inet, photos_kept(org_id))).one()
    return remember_holdings(
        actor, Holdings(contracts=bool(row[0]), inet=bool(row[1]), photos_kept=bool(row[2]))
    )


def photos_kept(organisation_id) -> sa.Exists:
    """R-83: whether a registration of the organisation (an id or an SQL expression) ended with
    its photos not deleted yet."""
    return sa.exists().where(
        InetRegistration.organisation_id == organisation_id,
        InetRegistration.photos_deleted_at.is_(None),
        InetRegistration.photos_delete_on.is_not(None),
    )


def remember_holdings(actor: Actor, found: Holdings) -> Holdings:
    """The holdings of the actor's organisation for the rest of the request (read with the
    session: portal.services.auth.SignedIn)."""
    g.holdings = (actor.organisation_id, found)
    return found


def has_inet(actor: Actor) -> bool:
    """The actor's organisation has an open I-NET SERVICE registration."""
    return holdings(actor).inet


def is_production_staff(actor: Actor) -> bool:
    """The provider's production staff, in the back office (R-85)."""
    return _staff_in(actor, StaffRole.PRODUCTION)


def can_manage_inet_registrations(actor: Actor) -> bool:
    """R-80/R-84: support staff and staff administrators register organisations for I-NET
    SERVICE and cancel dormant registrations."""
    return _staff_in(actor, StaffRole.SUPPORT, StaffRole.ADMINISTRATOR)


def can_apply_for_inet(actor: Actor) -> bool:
    """R-80/R-71: the customer's administrators apply in their portal, and agents of both
    kinds for their clients (I-NET has no fees to hide); never staff viewing (R-72)."""
    if actor.is_staff_view or not can_use_customer_portal(actor):
        return False
    return is_agent(actor) or is_customer_admin(actor)


def can_end_inet_registration(actor: Actor) -> bool:
    """R-83: the customer's own administrators end its use (not agents, not staff viewing,
    R-72)."""
    return is_customer_admin(actor) and actor.entry is None


def can_see_inet(actor: Actor) -> bool:
    """Who finds I-NET SERVICE in the customer's portal (when the organisation is registered):
    administrators, agents (their own orders, R-85) and staff viewing (the order list)."""
    if not can_use_customer_portal(actor):
        return False
    return is_customer_admin(actor) or is_agent(actor) or actor.is_staff_view


def can_manage_card_holders(actor: Actor) -> bool:
    """R-85: card holders' names and photos are for the customer's own administrators (and
    production staff in the back office); not agents, not staff viewing as the customer."""
    return is_customer_admin(actor) and actor.entry is None


def can_see_card_photos(actor: Actor) -> bool:
    """R-85: photos are seen by the customer's own administrators and production staff."""
    return can_manage_card_holders(actor) or is_production_staff(actor)


def can_place_card_orders(actor: Actor) -> bool:
    """R-85 reading: the customer's administrators order cards, and agents for their clients
    (they then see the orders they placed); not staff viewing as the customer (R-72)."""
    if actor.is_staff_view or not can_use_customer_portal(actor):
        return False
    return is_customer_admin(actor) or is_agent(actor)


def can_cancel_card_orders(actor: Actor) -> bool:
    """R-82 reading: the customer cancels a confirmed order, in the portal: its own
    administrators; never agents, never staff viewing as the customer."""
    return is_customer_admin(actor) and actor.entry is None


def can_work_card_orders(actor: Actor) -> bool:
    """R-81/R-82: production staff confirm, accept, produce and ship orders."""
    return is_production_staff(actor)


# --- scoped loaders ---------------------------------------------------------------------


def contracts_visible(actor: Actor) -> sa.Select[tuple[Contract]]:
    """The contracts of the organisation whose portal the actor is in.

    An agent outside any client's portal (the API) sees its assigned clients' contracts (R-71).
    """
    org_id = actor.organisation_id
    query = sa.select(Contract)
    if org_id is None:
        if is_agent(actor) and actor.entry is None:
            return query.where(
                Contract.organisation_id.in_(
                    clients_of(actor).with_only_columns(Organisation.id).order_by(None)
                )
            )
        return query.where(sa.false())
    return query.where(Contract.organisation_id == org_id)


def get_contract_or_404(contract_id: int, actor: Actor) -> Contract:
    """The contract, with its service, plan, partner company and events in the same statement
    (every contract page reads them: issue 15)."""
    contract = (
        db.session.execute(
            contracts_visible(actor)
            .where(Contract.id == contract_id)
            .options(
                joinedload(Contract.service),
                joinedload(Contract.plan),
                joinedload(Contract.partner),
                joinedload(Contract.events),
            )
        )
        .unique()
        .scalar_one_or_none()
    )
    if contract is None:
        abort(404)
    return contract


def get_request_or_404(contract: Contract, request_id: int) -> ContractRequest:
    """A request of a contract already loaded for the actor; another contract's id is 404."""
    found = db.session.scalar(
        sa.select(ContractRequest).where(
            ContractRequest.id == request_id, ContractRequest.contract_id == contract.id
        )
    )
    if found is None:
        abort(404)
    return found


def get_invoice_or_404(invoice_id: int, actor: Actor) -> Invoice:
    """An invoice or credit note of the organisation whose portal the actor is in."""
    invoice = db.session.scalar(
        sa.select(Invoice).where(
            Invoice.id == invoice_id, Invoice.organisation_id == actor.organisation_id
        )
    )
    if invoice is None or actor.organisation_id is None:
        abort(404)
    return invoice


def get_contract_for_staff_or_404(contract_id: int, actor: Actor) -> Contract:
    if not is_staff(actor):
        abort(404)
    contract = db.session.get(Contract, contract_id)
    if contract is None:
        abort(404)
    return contract


def get_organisation_for_staff_or_404(organisation_id: int, actor: Actor) -> Organisation:
    if not is_staff(actor):
        abort(404)
    organisation = db.session.get(Organisation, organisation_id)
    if organisation is None:
        abort(404)
    return organisation


def clients_of(actor: Actor) -> sa.Select[tuple[Organisation]]:
    """R-71: an agent sees only the clients assigned to its partner company."""
    if not is_agent(actor):
        return sa.select(Organisation).where(sa.false())
    return (
        sa.select(Organisation)
        .join(PartnerAssignment, PartnerAssignment.organisation_id == Organisation.id)
        .where(PartnerAssignment.partner_id == actor.user.partner_id)
        .order_by(Organisation.legal_name)
    )


def get_partner_application_or_404(application_id: int, actor: Actor) -> PartnerApplication:
    """An agent sees its own partner company's applications; back-office staff every one."""
    application = db.session.get(PartnerApplication, application_id)
    if application is None:
        abort(404)
    if is_staff(actor) or (is_agent(actor) and application.partner_id == actor.user.partner_id):
        return application
    abort(404)


def get_partner_agent_or_404(user_id: int, actor: Actor) -> User:
    """An agent of the actor's own partner company (another company's answers 404)."""
    user = db.session.get(User, user_id)
    if (
        user is None
        or not is_agent(actor)
        or user.kind != UserKind.AGENT
        or user.partner_id != actor.user.partner_id
    ):
        abort(404)
    return user


def get_client_or_404(organisation_id: int, actor: Actor) -> Organisation:
    client = db.session.scalar(clients_of(actor).where(Organisation.id == organisation_id))
    if client is None:
        abort(404)
    return client


def get_notice_or_404(email_id: int, actor: Actor) -> OutboxEmail:
    """R-61: a notice sent to the organisation whose portal the actor is in. Account e-mails
    (a password reset, an invitation) are not notices and answer 404 like another's."""
    notice = db.session.scalar(
        sa.select(OutboxEmail).where(
            OutboxEmail.id == email_id,
            OutboxEmail.organisation_id == actor.organisation_id,
            OutboxEmail.is_notice.is_(True),
        )
    )
    if notice is None or actor.organisation_id is None:
        abort(404)
    return notice


def get_terms_version_or_404(version_id: int, actor: Actor) -> TermsVersion:
    """A version of the terms of a service the actor's organisation has a live contract for
    (for I-NET SERVICE: an open registration, R-80).

    Versions belong to services, not organisations: a version of a service the organisation
    does not use answers 404, like a nonexistent one."""
    org_id = actor.organisation_id
    registered = sa.exists().where(
        InetRegistration.organisation_id == org_id, InetRegistration.ended_at.is_(None)
    )
    in_use = sa.select(Service.id).where(
        sa.or_(
            Service.id.in_(
                sa.select(Contract.service_id).where(
                    Contract.organisation_id == org_id, Contract.status == ContractStatus.ACTIVE
                )
            ),
            sa.and_(Service.code == "inet", registered),  # services.terms.INET_SERVICE_CODE
        )
    )
    version = db.session.scalar(
        sa.select(TermsVersion).where(
            TermsVersion.id == version_id, TermsVersion.service_id.in_(in_use)
        )
    )
    if version is None or org_id is None:
        abort(404)
    return version


def get_organisation_user_or_404(user_id: int, actor: Actor) -> User:
    """A user of the organisation whose portal the actor is in (R-70)."""
    org_id = actor.organisation_id
    user = db.session.scalar(
        sa.select(User).where(User.id == user_id, User.organisation_id == org_id)
    )
    if user is None or org_id is None:
        abort(404)
    return user


def get_misuse_report_for_staff_or_404(report_id: int, actor: Actor) -> MisuseReport:
    if not is_staff(actor):
        abort(404)
    report = db.session.get(MisuseReport, report_id)
    if report is None:
        abort(404)
    return report


def get_claim_or_404(contract: Contract, claim_id: int) -> SlaClaim:
    """A claim of a contract already loaded for the actor; another contract's id is 404."""
    claim = db.session.scalar(
        sa.select(SlaClaim).where(SlaClaim.id == claim_id, SlaClaim.contract_id == contract.id)
    )
    if claim is None:
        abort(404)
    return claim


def get_incident_or_404(incident_id: int) -> Incident:
    """Any incident; whether the actor's organisation may see it is the caller's to ask
    (it must have touched the organisation's contracts), answering 404 otherwise."""
    incident = db.session.get(Incident, incident_id)
    if incident is None:
        abort(404)
    return incident


def get_incident_for_staff_or_404(incident_id: int, actor: Actor) -> Incident:
    if not is_staff(actor):
        abort(404)
    return get_incident_or_404(incident_id)


def get_maintenance_for_staff_or_404(maintenance_id: int, actor: Actor) -> Maintenance:
    if not is_staff(actor):
        abort(404)
    found = db.session.get(Maintenance, maintenance_id)
    if found is None:
        abort(404)
    return found


def get_claim_for_staff_or_404(claim_id: int, actor: Actor) -> SlaClaim:
    if not is_staff(actor):
        abort(404)
    claim = db.session.get(SlaClaim, claim_id)
    if claim is None:
        abort(404)
    return claim


# --- I-NET SERVICE loaders (R-85) -------------------------------------------------------------


def card_orders_visible(actor: Actor) -> sa.Select[tuple[CardOrder]]:
    """The orders of the organisation whose portal the actor is in; an agent sees only the
    orders it placed (R-85); nobody else any."""
    org_id = actor.organisation_id
    if org_id is None or not can_see_inet(actor):
        return sa.select(CardOrder).where(sa.false())
    query = sa.select(CardOrder).where(CardOrder.organisation_id == org_id)
    if is_agent(actor):
        query = query.where(CardOrder.placed_by_id == actor.user.id)
    return query


def get_card_order_or_404(order_id: int, actor: Actor) -> CardOrder:
    order = db.session.scalar(card_orders_visible(actor).where(CardOrder.id == order_id))
    if order is None:
        abort(404)
    return order


def get_card_holder_or_404(holder_id: int, actor: Actor) -> CardHolder:
    """A card holder of the organisation whose portal the actor is in, for those who may
    see holders (R-85); for anyone else every id is 404."""
    org_id = actor.organisation_id
    if org_id is None or not can_manage_card_holders(actor):
        abort(404)
    holder = db.session.scalar(
        sa.select(CardHolder).where(
            CardHolder.id == holder_id, CardHolder.organisation_id == org_id
        )
    )
    if holder is None:
        abort(404)
    return holder


def get_card_order_for_production_or_404(order_id: int, actor: Actor) -> CardOrder:
    if not is_staff(actor):
        abort(404)
    order = db.session.get(CardOrder, order_id)
    if order is None:
        abort(404)
    return order
