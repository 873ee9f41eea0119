"""A partner company's people (issue 14, R-71, R-63): its administrators (and the provider's
support staff) invite its agents and administrators; its administrators re-invite and remove
them and see which agent acted for which client.

Invitations, links and the end of sessions are the accounts' (services/accounts.py); what is
the company's own is here: who may, the company's last administrator, and its agents' entries
into clients.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.models import (
    AccountEntry,
    EntryKind,
    Organisation,
    PartnerCompany,
    PartnerRole,
    User,
    UserKind,
)
from portal.paging import Page, paginate
from portal.permissions import Actor, can_manage_partner_people, can_manage_partners
from portal.services import accounts, audit
from portal.services.accounts import OrganisationUser
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.services.partners import end_agent_entries
from portal.transaction import begin_writing

REMOVED = "agent_removed"  # why a removed agent's sessions and entries ended
ACTIVITY_PER_PAGE = 50
MAX_NAME_LENGTH = 100  # users.name


def _own_company(actor: Actor, partner: PartnerCompany) -> bool:
    return can_manage_partner_people(actor) and actor.user.partner_id == partner.id


def _refuse_unless_managing(actor: Actor, partner: PartnerCompany) -> None:
    if not _own_company(actor, partner):
        raise NotAllowed(_("Only the company's administrators manage its agents."))


def _on_company_record(actor: Actor) -> Actor:
    """The company's own affairs are not the client's: an administrator who manages people
    from inside a client's portal is on the record as himself, outside it (R-73)."""
    return Actor(actor.user)


def people_of(partner: PartnerCompany) -> list[OrganisationUser]:
    """The company's agents (active first, administrators first) with their invitations."""
    return accounts.with_invitations(
        db.session.scalars(
            sa.select(User)
            .where(User.partner_id == partner.id, User.kind == UserKind.AGENT)
            .order_by(
                User.active.desc(),
                sa.case((User.partner_role == PartnerRole.ADMINISTRATOR, 0), else_=1),
                User.name,
                User.id,
            )
        )
    )


def invite(
    actor: Actor,
    partner: PartnerCompany,
    *,
    name: str,
    email: str,
    role: PartnerRole,
    locale: str,
    ip: str = "",
) -> User:
    """R-71/R-63: a named agent (or administrator) of the company, who sets their own password
    from the e-mailed link. The company's administrators invite, and the provider's support
    staff, e.g. a new company's first administrator. Two invitations of one address at once:
    the unique index lets one through (the caller catches IntegrityError)."""
    if not (can_manage_partners(actor) or _own_company(actor, partner)):
        raise NotAllowed(_("Only the company's administrators manage its agents."))
    name = " ".join((name or "").split())
    if not name:
        raise PortalError(_("Enter the person's name."), field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise PortalError(_("Use at most %(max)d characters.", max=MAX_NAME_LENGTH), field="name")
    address = accounts.address_for_new_user(
        email, ours=lambda holder: holder.partner_id == partner.id
    )
    user = accounts.add_invitee(
        User(
            email=address,
            name=name,
            locale=locale,
            kind=UserKind.AGENT,
            partner_id=partner.id,
            partner_role=role,
            active=True,
        ),
        invited_by=actor.user,
    )
    audit.record(
        "agent.invited",
        actor=_on_company_record(actor),
        subject=user,
        ip=ip,
        email=address,
        role=role.value,
        partner=partner.name,
    )
    return user


def resend_invitation(actor: Actor, user: User, *, ip: str = "") -> None:
    """A new link for an agent who has not set a password yet; earlier links stop working."""
    _refuse_unless_managing(actor, user.partner)
    accounts.reissue_invitation(user, invited_by=actor.user)
    audit.record("agent.invitation_resent", actor=_on_company_record(actor), subject=user, ip=ip)


def check_removal(actor: Actor, user: User) -> None:
    """What refuses a removal, asked before the administrator confirms it (`remove` asks
    again under the company's lock)."""
    _refuse_unless_managing(actor, user.partner)
    if user.id == actor.user.id:
        raise Conflict(_("You cannot remove yourself."))
    if not user.active:
        raise Conflict(_("This user was already removed."))
    if user.partner_role == PartnerRole.ADMINISTRATOR and not _other_administrators(user):
        raise Conflict(_("The company needs at least one administrator."))


def _other_administrators(user: User) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(User)
        .where(
            User.partner_id == user.partner_id,
            User.kind == UserKind.AGENT,
            User.partner_role == PartnerRole.ADMINISTRATOR,
            User.active.is_(True),
            User.id != user.id,
        )
    )


def remove(actor: Actor, user: User, *, ip: str = "") -> int:
    """R-71/R-63: the agent can no longer sign in; every session of theirs ends now, and so
    does any entry into a client's portal. Returns how many entries into clients ended.

    The company always keeps an active administrator: the check runs under the company's row
    lock (SQLite: the database's write lock), so two administrators removing each other at
    once leave one of them.
    """
    _refuse_unless_managing(actor, user.partner)
    if user.id == actor.user.id:
        raise Conflict(_("You cannot remove yourself."))
    begin_writing()
    db.session.execute(
        sa.select(PartnerCompany.id).where(PartnerCompany.id == user.partner_id).with_for_update()
    )
    db.session.refresh(actor.user)
    db.session.refresh(user)
    if not actor.user.active:
        raise NotAllowed(_("Only the company's administrators manage its agents."))
    check_removal(actor, user)
    on_record = _on_company_record(actor)
    # Ended first, and on each client's record with the reason, before the sessions go.
    entries_ended = end_agent_entries(on_record, reason=REMOVED, ip=ip, user_id=user.id)
    sessions_ended = accounts.deactivate(user, reason=REMOVED)
    audit.record(
        "agent.removed",
        actor=on_record,
        subject=user,
        ip=ip,
        sessions_ended=sessions_ended,
        entries_ended=entries_ended,
    )
    return entries_ended


# --- which agent acted for which client -------------------------------------------------------


@dataclass(frozen=True)
class ActivityChoices:
    """What the activity page may be filtered by: the company's agents (removed ones too) and
    the clients its agents entered (withdrawn ones too)."""

    agents: list[User]
    clients: list[Organisation]


def _company_entries(partner: PartnerCompany) -> sa.Select:
    return (
        sa.select(AccountEntry)
        .join(User, User.id == AccountEntry.user_id)
        .where(AccountEntry.kind == EntryKind.AGENT, User.partner_id == partner.id)
    )


def activity_choices(partner: PartnerCompany) -> ActivityChoices:
    agents = db.session.scalars(
        sa.select(User)
        .where(User.partner_id == partner.id, User.kind == UserKind.AGENT)
        .order_by(User.name, User.id)
    )
    entered = _company_entries(partner).with_only_columns(AccountEntry.organisation_id)
    clients = db.session.scalars(
        sa.select(Organisation)
        .where(Organisation.id.in_(entered))
        .order_by(Organisation.legal_name, Organisation.id)
    )
    return ActivityChoices(list(agents), list(clients))


def activity(
    partner: PartnerCompany,
    *,
    agent_id: int | None = None,
    organisation_id: int | None = None,
    page: int = 1,
) -> Page[AccountEntry]:
    """R-71: the company's agents' entries into clients, newest first, by page; the ids are
    the caller's, checked against `activity_choices`."""
    query = _company_entries(partner).options(
        selectinload(AccountEntry.user), selectinload(AccountEntry.organisation)
    )
    if agent_id is not None:
        query = query.where(AccountEntry.user_id == agent_id)
    if organisation_id is not None:
        query = query.where(AccountEntry.organisation_id == organisation_id)
    query = query.order_by(AccountEntry.started_at.desc(), AccountEntry.id.desc())
    return paginate(query, page, ACTIVITY_PER_PAGE)
