"""The append-only audit log and the record of who entered a customer's account (R-72, R-73)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, enum_type, now
from portal.models.organisations import Organisation
from portal.models.users import User


class EntryKind(enum.StrEnum):
    STAFF_VIEW = "staff_view"  # provider staff view the portal as a customer user
    AGENT = "agent"  # a partner's agent acts for an assigned client


class AccountEntry(Base):
    """Someone other than the customer's own users entered the customer's portal."""

    __tablename__ = "account_entries"
    __table_args__ = (
        # staff state a reason; an agent's purpose is optional.
        sa.CheckConstraint("kind = 'agent' OR length(trim(reason)) > 0", name="reason_given"),
        # One open entry per signed-in session, even when two "enter" requests race.
        sa.Index(
            "uq_account_entries_open_per_session",
            "user_session_id",
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[EntryKind] = mapped_column(enum_type(EntryKind, "entry_kind"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    as_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    user_session_id: Mapped[int] = mapped_column(sa.ForeignKey("user_sessions.id"))
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    started_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(sa.String(40))

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    as_user: Mapped[User | None] = relationship(foreign_keys=[as_user_id])
    organisation: Mapped[Organisation] = relationship()

    def has_expired(self, now: datetime) -> bool:
        """R-72: a view as customer is over at its time limit, even before anyone ends it."""
        return self.expires_at is not None and self.expires_at <= now


class AuditEvent(Base):
    """Append-only: the migration adds database triggers that refuse UPDATE and DELETE."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=now, index=True)
    action: Mapped[str] = mapped_column(sa.String(60), index=True)
    # Who did it; when staff view as a customer or an agent acts for one, both identities.
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    as_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account_entries.id"))
    organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id"), index=True
    )
    subject_type: Mapped[str | None] = mapped_column(sa.String(40))
    subject_id: Mapped[int | None]
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    ip: Mapped[str] = mapped_column(sa.String(64), default="")

    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    as_user: Mapped[User | None] = relationship(foreign_keys=[as_user_id])
