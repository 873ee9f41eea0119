"""I-NET SERVICE registrations (R-80, R-83, R-84).

The three functions at the top are what the holders and orders pages use; the registration
pages and commands build on them.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from portal.extensions import db
from portal.models import InetRegistration


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
    the caller's locale), or None when it can. The registration pages refine this (terms not
    yet consented to)."""
    from flask_babel import gettext as _

    if open_registration(organisation_id) is None:
        return _("Your organisation is not registered for I-NET SERVICE.")
    return None
