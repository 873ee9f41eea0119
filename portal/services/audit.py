"""Writing the append-only audit log (R-72: every action with both identities)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from portal.extensions import db
from portal.models import AuditEvent, User

if TYPE_CHECKING:
    from portal.permissions import Actor


def record(
    action: str,
    *,
    actor: Actor | None = None,
    user: User | None = None,
    organisation_id: int | None = None,
    subject: Any = None,
    ip: str = "",
    **details: Any,
) -> AuditEvent:
    """Append one event. With an actor, both identities and the entry are kept."""
    event = AuditEvent(action=action, ip=ip, details=details)
    if actor is not None:
        event.user_id = actor.user.id
        event.as_user_id = actor.as_user.id if actor.as_user else None
        event.entry_id = actor.entry.id if actor.entry else None
        event.organisation_id = actor.organisation_id
    elif user is not None:
        event.user_id = user.id
        event.organisation_id = user.organisation_id
    if organisation_id is not None:
        event.organisation_id = organisation_id
    if subject is not None:
        event.subject_type = type(subject).__tablename__
        event.subject_id = subject.id
    db.session.add(event)
    return event
