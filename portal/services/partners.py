"""Partner companies in the back office: staff create them and assign or withdraw their
clients (R-71: each agent sees only the clients assigned to its partner company)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import gettext as _

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    AccountEntry,
    EntryKind,
    Organisation,
    PartnerAssignment,
    PartnerCompany,
    PartnerKind,
    User,
    UserKind,
)
from portal.permissions import Actor, can_manage_partners
from portal.services import audit, mail
from portal.services.errors import Conflict, NotAllowed, PortalError

MAX_NAME_LENGTH = 200  # partner_companies.name
WITHDRAWN = "partner_withdrawn"  # why an agent's entry into a withdrawn client ended


@dataclass(frozen=True)
class PartnerRow:
    partner: PartnerCompany
    clients: int
    agents: int


def _refuse_unless_allowed(actor: Actor) -> None:
    if not can_manage_partners(actor):
        raise NotAllowed(_("Only support staff may change partner companies."))


def listing() -> list[PartnerRow]:
    """Every partner company with its number of assigned clients and of agents, by name."""
    clients = (
        sa.select(sa.func.count())
        .select_from(PartnerAssignment)
        .where(PartnerAssignment.partner_id == PartnerCompany.id)
        .scalar_subquery()
    )
    agents = (
        sa.select(sa.func.count())
        .select_from(User)
        .where(User.partner_id == PartnerCompany.id, User.kind == UserKind.AGENT)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(PartnerCompany, clients, agents).order_by(PartnerCompany.name, PartnerCompany.id)
    )
    return [PartnerRow(p, c, a) for p, c, a in rows]


def agents_of(partner: PartnerCompany) -> list[User]:
    return list(
        db.session.scalars(
            sa.select(User)
            .where(User.partner_id == partner.id, User.kind == UserKind.AGENT)
            .order_by(User.name, User.id)
        )
    )


def assignments_of(partner: PartnerCompany) -> list[PartnerAssignment]:
    return list(
        db.session.scalars(
            sa.select(PartnerAssignment)
            .join(Organisation, Organisation.id == PartnerAssignment.organisation_id)
            .where(PartnerAssignment.partner_id == partner.id)
            .order_by(Organisation.legal_name, Organisation.id)
        )
    )


def assignable(partner: PartnerCompany) -> list[Organisation]:
    """The organisations not yet assigned to this partner, by name."""
    assigned = sa.select(PartnerAssignment.organisation_id).where(
        PartnerAssignment.partner_id == partner.id
    )
    return list(
        db.session.scalars(
            sa.select(Organisation)
            .where(Organisation.id.not_in(assigned))
            .order_by(Organisation.legal_name, Organisation.id)
        )
    )


def create(actor: Actor, *, name: str, kind: str, ip: str = "") -> PartnerCompany:
    """A new partner company: a name no other partner has, and one of the two kinds."""
    _refuse_unless_allowed(actor)
    name = " ".join((name or "").split())
    if not name:
        raise PortalError(_("Enter the company name."), field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise PortalError(_("Use at most %(max)d characters.", max=MAX_NAME_LENGTH), field="name")
    if kind not in {k.value for k in PartnerKind}:
        raise PortalError(_("Choose sales agent or agency."), field="kind")
    taken = db.session.scalar(
        sa.select(PartnerCompany.id).where(sa.func.lower(PartnerCompany.name) == name.lower())
    )
    if taken is not None:
        raise PortalError(_("A partner company with this name already exists."), field="name")
    partner = PartnerCompany(name=name, kind=PartnerKind(kind))
    db.session.add(partner)
    db.session.flush()
    audit.record("partner_created", actor=actor, subject=partner, ip=ip, name=name, kind=kind)
    return partner


def assign(
    actor: Actor, partner: PartnerCompany, organisation_id: int | None, *, ip: str = ""
) -> PartnerAssignment:
    """R-71: the partner's agents may act for this client from now on; the client's
    administrators are told. Two requests at once: the primary key lets one through (the
    caller catches IntegrityError)."""
    _refuse_unless_allowed(actor)
    organisation = db.session.get(Organisation, organisation_id) if organisation_id else None
    if organisation is None:
        raise PortalError(_("Choose an organisation."), field="organisation_id")
    if db.session.get(PartnerAssignment, (partner.id, organisation.id)) is not None:
        raise PortalError(
            _(
                "%(org)s is already a client of %(partner)s.",
                org=organisation.legal_name,
                partner=partner.name,
            ),
            field="organisation_id",
        )
    assignment = PartnerAssignment(partner_id=partner.id, organisation_id=organisation.id)
    db.session.add(assignment)
    db.session.flush()
    audit.record(
        "partner_client_assigned",
        actor=actor,
        organisation_id=organisation.id,
        subject=partner,
        ip=ip,
        partner=partner.name,
        kind=partner.kind.value,
    )
    _tell_administrators(organisation, partner, "partner_assigned")
    return assignment


def assignment_or_none(partner: PartnerCompany, organisation_id: int) -> PartnerAssignment | None:
    return db.session.get(PartnerAssignment, (partner.id, organisation_id))


def check_withdrawal(actor: Actor) -> None:
    _refuse_unless_allowed(actor)


def withdraw(actor: Actor, assignment: PartnerAssignment, *, ip: str = "") -> int:
    """R-71: the partner's agents no longer see this client: the assignment goes, any agent of
    the partner still inside the client's portal is let out, and the client's administrators
    are told. Returns how many entries were ended."""
    _refuse_unless_allowed(actor)
    partner, organisation = assignment.partner, assignment.organisation
    # Two withdrawals at once: the row goes once, the second is refused (nothing told twice).
    deleted = db.session.execute(
        sa.delete(PartnerAssignment)
        .where(
            PartnerAssignment.partner_id == partner.id,
            PartnerAssignment.organisation_id == organisation.id,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if deleted != 1:
        raise Conflict(
            _(
                "%(org)s is no longer a client of %(partner)s.",
                org=organisation.legal_name,
                partner=partner.name,
            )
        )
    db.session.expunge(assignment)
    ended = end_agent_entries(
        actor, reason=WITHDRAWN, ip=ip, partner_id=partner.id, organisation_id=organisation.id
    )
    audit.record(
        "partner_client_withdrawn",
        actor=actor,
        organisation_id=organisation.id,
        subject=partner,
        ip=ip,
        partner=partner.name,
        kind=partner.kind.value,
        entries_ended=ended,
    )
    _tell_administrators(organisation, partner, "partner_withdrawn")
    return ended


def end_agent_entries(
    actor: Actor,
    *,
    reason: str,
    ip: str = "",
    partner_id: int | None = None,
    organisation_id: int | None = None,
    user_id: int | None = None,
) -> int:
    """R-71: agents let out of the clients' portals they are in now: the agents of a partner
    company (in one client, or in any), or one agent. Each end is on the record of the client
    it concerns. Returns how many entries were ended."""
    query = (
        sa.select(AccountEntry)
        .join(User, User.id == AccountEntry.user_id)
        .where(AccountEntry.kind == EntryKind.AGENT, AccountEntry.ended_at.is_(None))
    )
    if partner_id is not None:
        query = query.where(User.partner_id == partner_id)
    if organisation_id is not None:
        query = query.where(AccountEntry.organisation_id == organisation_id)
    if user_id is not None:
        query = query.where(AccountEntry.user_id == user_id)
    open_entries = list(db.session.scalars(query))
    now = clock.now()
    for entry in open_entries:
        entry.ended_at = now
        entry.ended_reason = reason
        audit.record(
            "agent_entry_ended",
            actor=actor,
            organisation_id=entry.organisation_id,
            subject=entry,
            ip=ip,
            reason=reason,
            agent=entry.user.email,
        )
    return len(open_entries)


def _tell_administrators(organisation: Organisation, partner: PartnerCompany, kind: str) -> None:
    """The client's active administrators (its registered address when it has none), R-61."""
    mail.notify_organisation(
        organisation,
        kind,
        to=mail.administrator_addresses(organisation) or None,
        context={"partner": partner, "changed_at": clock.now()},
    )
