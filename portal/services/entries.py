"""Entering a customer's portal: staff "view as customer" (R-72) and agents acting (R-71)."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext as _

from portal.clock import clock
from portal.extensions import db
from portal.models import AccountEntry, CustomerRole, EntryKind, Organisation, User, UserSession
from portal.permissions import Actor, can_view_as_customer, get_client_or_404, is_agent
from portal.services import audit
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.services.organisations import users_of

MIN_REASON_LENGTH = 10
MAX_REASON_LENGTH = 1000


def _refuse_if_inside(actor: Actor) -> None:
    if actor.entry is not None:
        raise Conflict(_("Leave the customer's portal you are in first."))


def start_staff_view(
    actor: Actor,
    organisation: Organisation,
    *,
    as_user: User | None,
    reason: str,
    user_session: UserSession,
    max_minutes: int,
    ip: str,
) -> AccountEntry:
    """R-72: staff view the portal as a customer user, with a reason, for a limited time."""
    if not can_view_as_customer(actor):
        raise NotAllowed(_("Only support staff may view the portal as a customer."))
    _refuse_if_inside(actor)
    reason = reason.strip()
    if not MIN_REASON_LENGTH <= len(reason) <= MAX_REASON_LENGTH:
        raise PortalError(
            _(
                "Give the reason in %(min)d to %(max)d characters.",
                min=MIN_REASON_LENGTH,
                max=MAX_REASON_LENGTH,
            ),
            field="reason",
        )
    if as_user is None:
        as_user = next(
            (
                u
                for u in users_of(organisation)
                if u.active and u.customer_role == CustomerRole.ADMINISTRATOR
            ),
            None,
        )
    if as_user is None or as_user.organisation_id != organisation.id or not as_user.active:
        raise PortalError(_("Choose an active user of this organisation."), field="as_user_id")
    now = clock.now()
    entry = AccountEntry(
        kind=EntryKind.STAFF_VIEW,
        user=actor.user,
        organisation=organisation,
        as_user=as_user,
        user_session_id=user_session.id,
        reason=reason,
        started_at=now,
        expires_at=now + timedelta(minutes=max_minutes),
    )
    db.session.add(entry)
    db.session.flush()
    audit.record(
        "staff_view_started",
        actor=Actor(actor.user, entry),
        subject=entry,
        ip=ip,
        reason=reason,
        as_user=as_user.email,
        expires_at=entry.expires_at.isoformat() if entry.expires_at else None,
    )
    return entry


def start_agent_entry(
    actor: Actor, organisation_id: int, *, purpose: str, user_session: UserSession, ip: str
) -> AccountEntry:
    """R-71: an agent enters an assigned client's portal to act for it, on the record."""
    if not is_agent(actor):
        raise NotAllowed(_("Only partner agents may act for client organisations."))
    client = get_client_or_404(organisation_id, actor)
    _refuse_if_inside(actor)
    entry = AccountEntry(
        kind=EntryKind.AGENT,
        user=actor.user,
        organisation=client,
        user_session_id=user_session.id,
        reason=purpose.strip(),
        started_at=clock.now(),
    )
    db.session.add(entry)
    db.session.flush()
    audit.record(
        "agent_entry_started",
        actor=Actor(actor.user, entry),
        subject=entry,
        ip=ip,
        partner=actor.user.partner.name if actor.user.partner else None,
    )
    return entry


def stop(actor: Actor, *, reason: str, ip: str = "") -> AccountEntry | None:
    """End the entry the actor is in (stopped by hand, or expired)."""
    entry = actor.entry
    if entry is None or entry.ended_at is not None:
        return None
    entry.ended_at = clock.now()
    entry.ended_reason = reason
    action = "staff_view_ended" if entry.kind == EntryKind.STAFF_VIEW else "agent_entry_ended"
    audit.record(action, actor=actor, subject=entry, ip=ip, reason=reason)
    return entry


def is_expired(entry: AccountEntry) -> bool:
    return entry.has_expired(clock.now())
