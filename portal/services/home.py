"""The home page: what needs doing, for each kind of user, most urgent first.

Everything is read in a few statements whatever the number of contracts, invoices or
clients: one query per kind of thing, never one per row.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager, selectinload, with_expression

from portal.domain import deadlines as rules
from portal.domain import sla
from portal.domain.inet import OrderState
from portal.extensions import db
from portal.models import (
    CardHolder,
    ClaimStatus,
    Contract,
    ContractRequest,
    ContractStatus,
    DocumentKind,
    Incident,
    IncidentVersion,
    Invoice,
    InvoiceState,
    InvoiceStatus,
    MisuseReport,
    Organisation,
    OutboxEmail,
    RequestStatus,
    SlaClaim,
    TermsVersion,
    UsageReading,
)
from portal.permissions import (
    Actor,
    can_manage_card_holders,
    can_see_claims,
    can_see_fees,
    can_see_inet,
    can_see_invoices,
    card_orders_visible,
    clients_of,
    contracts_visible,
    holdings,
)
from portal.services import claims, incidents, inet_registrations, invoicing, terms
from portal.services.incidents import IncidentView

NEAR_CAPACITY_PERCENT = 90  # usage this close to the capacity is worth a look
AGENT_HORIZON_DAYS = 60  # an agent's list shows the deadlines of the next two months
MAX_SEARCH = 100  # characters of an agent's search
SHOWN = 50  # items of each kind and clients an agent's page shows (a search narrows them)
INVOICES_SHOWN = 5  # the longest overdue; the invoice list has them all


# --- what each item is ------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadlineItem:
    contract: Contract
    deadline: rules.Deadline
    request: ContractRequest | None = None  # the pending request, for kind REQUEST


@dataclass(frozen=True)
class InvoiceItem:
    invoice: Invoice
    amount_due: int  # tax included, less credit notes and payments
    days_overdue: int


@dataclass(frozen=True)
class UsageItem:
    contract: Contract
    used_gb: Decimal
    percent: int
    over_capacity: bool


@dataclass(frozen=True)
class ClaimItem:
    contract: Contract
    option: claims.Option  # claimable: ended, in its window, not yet claimed, worth something


@dataclass
@dataclass(frozen=True)
class IdCardItems:
    """I-NET SERVICE on the customer's home page (R-81..R-83): what waits on the customer."""

    drafts: int  # put together but not sent
    cancellable: int  # confirmed: can still be cancelled until accepted
    under_way: int  # sent, accepted, in production or shipped: cards coming
    without_photo: int | None  # holders a card cannot be made for; None: not the actor's to see
    photos_delete_on: date | None  # the registration ended, photos go on this day

    @property
    def anything(self) -> bool:
        return bool(
            self.drafts
            or self.cancellable
            or self.under_way
            or self.without_photo
            or self.photos_delete_on
        )


@dataclass(frozen=True)
class CustomerHome:
    organisation: Organisation
    invoices: list[InvoiceItem] | None  # None: the actor may not see invoices
    deadlines: list[DeadlineItem]
    terms: list[TermsVersion]
    usage: list[UsageItem]
    incidents: list[IncidentView]  # open ones
    claims: list[ClaimItem] | None  # None: the actor may not see compensation
    id_cards: IdCardItems | None = None  # None: no I-NET SERVICE here, or not the actor's

    @property
    def amount_due(self) -> int:
        return sum(i.amount_due for i in self.invoices or ())

    @property
    def overdue(self) -> list[InvoiceItem]:
        return [i for i in self.invoices or () if i.days_overdue > 0]

    @property
    def invoices_shown(self) -> list[InvoiceItem]:
        return (self.invoices or [])[:INVOICES_SHOWN]

    @property
    def more_invoices(self) -> int:
        return max(0, len(self.invoices or ()) - INVOICES_SHOWN)

    @property
    def nothing_to_do(self) -> bool:
        return not (
            self.invoices
            or self.deadlines
            or self.terms
            or self.usage
            or self.incidents
            or self.claims
            or (self.id_cards is not None and self.id_cards.anything)
        )


@dataclass
class ClientItem:
    """One thing to do for one of an agent's clients; an open incident for all it touched."""

    organisation: Organisation
    deadline: DeadlineItem | None = None
    overdue: Overdue | None = None
    incident: IncidentView | None = None
    clients: list[Organisation] = field(default_factory=list)  # those the incident touched


@dataclass
class Overdue:
    """A client's overdue invoices, as one item: how many, how much, since when."""

    oldest: InvoiceItem
    count: int
    amount_due: int


@dataclass
class ClientSummary:
    organisation: Organisation
    next_deadline: DeadlineItem | None


@dataclass
class AgentHome:
    query: str
    items: list[ClientItem]  # deadlines soonest first, then overdue invoices, then incidents
    more_items: int  # left off the page
    clients: list[ClientSummary]
    more_clients: int


@dataclass
class StaffHome:
    overdue_invoices: int
    claims_to_review: int
    given_up_emails: int
    misuse_reports: int
    open_incidents: int
    requests: list[ContractRequest]  # pending, taking effect within the week
    week: tuple[date, date]


# --- the customer's portal ----------------------------------------------------------------------


def for_customer(
    actor: Actor,
    *,
    today: date,
    now: datetime,
    outstanding_terms: list[TermsVersion] | None = None,
) -> CustomerHome:
    """What the organisation whose portal the actor is in has to do, as far as the actor may
    see it. `outstanding_terms` is terms.outstanding() when the caller already has it."""
    organisation = actor.organisation
    assert organisation is not None
    contracts = _with_facts(contracts_visible(actor))
    views = incidents.for_contracts(contracts, now)
    if outstanding_terms is None:
        outstanding_terms = terms.outstanding(organisation.id, today)
    return CustomerHome(
        organisation=organisation,
        invoices=(
            _open_invoices(Invoice.organisation_id == organisation.id, today)
            if can_see_invoices(actor)
            else None
        ),
        deadlines=_deadlines(contracts, today),
        terms=outstanding_terms,
        usage=_usage(contracts),
        incidents=[v for v in views if v.is_open],
        claims=_claimable(views, now, today) if can_see_claims(actor) else None,
        id_cards=_id_cards(actor),
    )


def _id_cards(actor: Actor) -> IdCardItems | None:
    """Orders by where they are (the actor's, R-85) and holders without a photo (for those who
    see holders), in one statement; None when the organisation has no I-NET SERVICE."""
    organisation_id = actor.organisation_id
    if organisation_id is None or not can_see_inet(actor):
        return None
    held = holdings(actor)  # read with the session (issue 15)
    if not held.inet and not held.photos_kept:
        return None
    # the deletion day only after the registration ended (None while registered).
    delete_on = None if held.inet else inet_registrations.photos_delete_on(organisation_id)
    if not held.inet and delete_on is None:
        return None
    orders = card_orders_visible(actor).subquery()

    def orders_in(*states: OrderState) -> sa.ScalarSelect[int]:
        return (
            sa.select(sa.func.count())
            .select_from(orders)
            .where(orders.c.state.in_([s.value for s in states]))
            .scalar_subquery()
        )

    without_photo = (
        sa.select(sa.func.count())
        .select_from(CardHolder)
        .where(CardHolder.organisation_id == organisation_id, CardHolder.photo_key.is_(None))
        .scalar_subquery()
    )
    row = db.session.execute(
        sa.select(
            orders_in(OrderState.DRAFT),
            orders_in(OrderState.CONFIRMED),
            orders_in(
                OrderState.SUBMITTED,
                OrderState.ACCEPTED,
                OrderState.IN_PRODUCTION,
                OrderState.SHIPPED,
            ),
            without_photo,
        )
    ).one()
    return IdCardItems(
        drafts=row[0],
        cancellable=row[1],
        under_way=row[2],
        without_photo=row[3] if can_manage_card_holders(actor) else None,
        photos_delete_on=delete_on,
    )


def _with_facts(query: sa.Select[tuple[Contract]]) -> list[Contract]:
    """Contracts with what their calendars, names, deadlines, usage and incident scopes read:
    plan, service, pending request (R-23) and latest usage reading (R-15) in the contracts'
    own statement, events in one more (whether an incident touched a contract depends on its
    plans over time). Issue 15: the home page's statements do not grow with its contracts."""
    latest_used = (
        sa.select(UsageReading.used_gb)
        .where(UsageReading.contract_id == Contract.id)
        .order_by(UsageReading.measured_at.desc(), UsageReading.id.desc())
        .limit(1)
        .correlate(Contract)
        .scalar_subquery()
    )
    return list(
        db.session.scalars(
            query.join(Contract.plan)
            .join(Contract.service)
            .outerjoin(Contract.pending_request)
            .options(
                contains_eager(Contract.plan),
                contains_eager(Contract.service),
                contains_eager(Contract.pending_request),
                with_expression(Contract.latest_used_gb, latest_used),
                selectinload(Contract.events),
            )
            .order_by(Contract.organisation_id, Contract.service_start, Contract.id)
        )
    )


def _deadlines(contracts: list[Contract], today: date) -> list[DeadlineItem]:
    """R-05, R-06, R-23: every running contract's deadlines, soonest first. A free service
    (R-80) has nothing to renew or give notice of."""
    running = [c for c in contracts if c.status == ContractStatus.ACTIVE and c.service.paid]
    items = []
    for contract in running:
        request = contract.pending_request  # loaded with the contract (_with_facts)
        found = rules.deadlines_of(
            contract.calendar(today),
            today,
            (request.kind, request.effective_on) if request is not None else None,
        )
        items.extend(
            DeadlineItem(contract, d, request if d.kind == rules.DeadlineKind.REQUEST else None)
            for d in found
        )
    return sorted(items, key=lambda i: (i.deadline.on, i.contract.id))


def _open_invoices(
    whose: sa.ColumnElement[bool], today: date, *, overdue_only: bool = False
) -> list[InvoiceItem]:
    """Invoices still to be paid, the longest overdue first, each with its amount due."""
    query = (
        sa.select(Invoice)
        .join(InvoiceState, InvoiceState.invoice_id == Invoice.id)
        .where(
            whose,
            Invoice.kind == DocumentKind.INVOICE,
            InvoiceState.status == InvoiceStatus.OPEN,
        )
        .options(selectinload(Invoice.state))
        .order_by(Invoice.due_on, Invoice.id)
    )
    if overdue_only:
        query = query.where(Invoice.due_on < today)
    found = list(db.session.scalars(query))
    dues = invoicing.amounts_due(found)  # the one amount due, for all in one go
    items = [
        InvoiceItem(invoice, dues[invoice.id], max(0, (today - invoice.due_on).days))
        for invoice in found
    ]
    return [i for i in items if i.amount_due > 0]


def _usage(contracts: list[Contract]) -> list[UsageItem]:
    """R-15: running contracts whose latest reading is near or over the plan's capacity,
    fullest first (the latest readings came with the contracts: _with_facts)."""
    running = {
        c.id: c for c in contracts if c.status == ContractStatus.ACTIVE and c.plan.capacity_gb
    }
    if not running:
        return []
    items = []
    for contract in running.values():
        used = contract.latest_used_gb  # read with the contract (_with_facts)
        if used is None:
            continue
        capacity = contract.plan.capacity_gb
        # As the contract page computes it (services.usage.view).
        percent = int(float(used) * 100 // capacity)
        over = float(used) > capacity
        if over or percent >= NEAR_CAPACITY_PERCENT:
            items.append(UsageItem(contract, used, percent, over))
    return sorted(items, key=lambda i: (-i.percent, i.contract.id))


def _claimable(views: list[IncidentView], now: datetime, today: date) -> list[ClaimItem]:
    """R-52: compensation that can be claimed today, the claim window closing soonest first.
    Only the contracts an ended incident in its window touched, and that have not claimed it
    yet, are assessed (claims.options_for, per contract)."""
    in_window = [
        v for v in views if sla.claim_refusal(incidents.facts_of(v.version), today) is None
    ]
    touched = {c.id for v in in_window for c in v.contracts}
    if not touched:
        return []
    claimed = {
        (contract_id, incident_id)
        for contract_id, incident_id in db.session.execute(
            sa.select(SlaClaim.contract_id, SlaClaim.incident_id).where(
                SlaClaim.contract_id.in_(touched)
            )
        )
    }
    candidates: dict[int, Contract] = {}
    for view in in_window:
        candidates.update(
            (c.id, c) for c in view.contracts if (c.id, view.incident.id) not in claimed
        )
    items = [
        ClaimItem(contract, option)
        for contract in candidates.values()
        for option in claims.options_for(contract, now, today)
        if option.claimable
    ]
    return sorted(
        items,
        key=lambda i: (i.option.computation.claim_deadline, i.contract.id, i.option.incident.id),
    )


# --- an agent outside a client's portal -------------------------------------------------------


def search_text(raw: str | None) -> str:
    """What an agent typed in the search box, without what cannot be searched for."""
    text = unicodedata.normalize("NFKC", raw or "")
    return "".join(ch for ch in text if ch.isprintable()).strip()


def _kana(text: str) -> str:
    """Hiragana as katakana, as kana readings are written (フリガナ)."""
    return "".join(chr(ord(ch) + 0x60) if "ぁ" <= ch <= "ゖ" else ch for ch in text)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _clients(actor: Actor, query: str) -> sa.Select[tuple[Organisation]]:
    """R-71: the agent's clients, by kana reading, matching the search if there is one."""
    found = clients_of(actor).order_by(None)
    if query:
        found = found.where(
            sa.or_(
                sa.func.lower(Organisation.legal_name).like(_like(query.lower()), escape="\\"),
                Organisation.legal_name_kana.like(_like(_kana(query)), escape="\\"),
            )
        )
    reading = sa.func.coalesce(
        sa.func.nullif(Organisation.legal_name_kana, ""), Organisation.legal_name
    )
    return found.order_by(reading, Organisation.id)


@dataclass
class AgentItems:
    """What an agent's clients (those matching the search) have to do, collected once for the
    agent's home page and the worklist (services.worklist)."""

    clients: list[Organisation]  # by kana reading
    contracts: list[Contract]
    deadlines: list[DeadlineItem]  # every running contract's, soonest first
    overdue: dict[int, Overdue]  # by organisation id, longest overdue first; {} for agencies


def agent_items(actor: Actor, *, today: date, query: str = "") -> AgentItems:
    """R-71: the deadlines of every client matching the search and, for sales agents only
    (agencies never see fees or invoices), each client's overdue invoices as one item."""
    clients = list(db.session.scalars(_clients(actor, query)))
    ids = _clients(actor, query).with_only_columns(Organisation.id).order_by(None)
    contracts = _with_facts(sa.select(Contract).where(Contract.organisation_id.in_(ids)))
    late: dict[int, Overdue] = {}  # the longest overdue first, as the query sorts them
    if can_see_fees(actor):  # sales agents; agencies never see fees or invoices
        for i in _open_invoices(Invoice.organisation_id.in_(ids), today, overdue_only=True):
            found = late.setdefault(i.invoice.organisation_id, Overdue(i, 0, 0))
            found.count += 1
            found.amount_due += i.amount_due
    return AgentItems(clients, contracts, _deadlines(contracts, today), late)


def for_agent(actor: Actor, *, today: date, now: datetime, query: str = "") -> AgentHome:
    """R-71: across the agent's clients (those matching the search): deadlines of the next
    two months soonest first, then overdue invoices (sales agents only), then open incidents."""
    collected = agent_items(actor, today=today, query=query)
    clients, contracts, deadlines = collected.clients, collected.contracts, collected.deadlines
    late = collected.overdue
    by_id = {o.id: o for o in clients}
    soon = [
        ClientItem(by_id[d.contract.organisation_id], deadline=d)
        for d in deadlines
        if d.deadline.days_left <= AGENT_HORIZON_DAYS
    ]
    ongoing = []
    for view in incidents.for_contracts(contracts, now):
        if view.is_open:
            touched = {c.organisation_id for c in view.contracts}
            affected = [o for o in clients if o.id in touched]
            ongoing.append(ClientItem(affected[0], incident=view, clients=affected))
    # Each kind keeps its place however many of the one before it there are.
    kinds = [soon, [ClientItem(by_id[o], overdue=found) for o, found in late.items()], ongoing]
    next_deadline: dict[int, DeadlineItem] = {}
    for d in deadlines:
        next_deadline.setdefault(d.contract.organisation_id, d)
    summaries = [ClientSummary(o, next_deadline.get(o.id)) for o in clients]
    return AgentHome(
        query=query,
        items=[item for kind in kinds for item in kind[:SHOWN]],
        more_items=sum(max(0, len(kind) - SHOWN) for kind in kinds),
        clients=summaries[:SHOWN],
        more_clients=max(0, len(summaries) - SHOWN),
    )


# --- the back office ----------------------------------------------------------------------------


def for_staff(today: date) -> StaffHome:
    """The back office's queues, counted in one statement, and the requests of the week."""

    def count(model: type, *where: sa.ColumnElement[bool]) -> sa.ScalarSelect[int]:
        return sa.select(sa.func.count()).select_from(model).where(*where).scalar_subquery()

    overdue = (
        sa.select(sa.func.count())
        .select_from(Invoice)
        .join(InvoiceState, InvoiceState.invoice_id == Invoice.id)
        .where(
            Invoice.kind == DocumentKind.INVOICE,
            InvoiceState.status == InvoiceStatus.OPEN,
            Invoice.due_on < today,
        )
        .scalar_subquery()
    )
    open_incidents = (
        sa.select(sa.func.count())
        .select_from(IncidentVersion)
        .join(Incident, Incident.id == IncidentVersion.incident_id)
        .where(
            IncidentVersion.version == Incident.current_version,
            IncidentVersion.ended_at.is_(None),
        )
        .scalar_subquery()
    )
    counts = db.session.execute(
        sa.select(
            overdue,
            count(SlaClaim, SlaClaim.status == ClaimStatus.FILED),
            count(OutboxEmail, OutboxEmail.failed_at.is_not(None), OutboxEmail.sent_at.is_(None)),
            count(MisuseReport, MisuseReport.handled_at.is_(None)),
            open_incidents,
        )
    ).one()
    week = rules.week_ahead(today)
    this_week = list(
        db.session.scalars(
            sa.select(ContractRequest)
            .where(
                ContractRequest.status == RequestStatus.PENDING,
                ContractRequest.effective_on.between(*week),
            )
            .options(
                selectinload(ContractRequest.organisation),
                selectinload(ContractRequest.contract).selectinload(Contract.plan),
                selectinload(ContractRequest.contract).selectinload(Contract.service),
            )
            .order_by(ContractRequest.effective_on, ContractRequest.id)
        )
    )
    return StaffHome(*counts, requests=this_week, week=week)
