"""Everyone who signs in: customer users, partner agents and provider staff (R-70..R-72)."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, enum_type, now
from portal.models.organisations import Organisation, PartnerCompany


class UserKind(enum.StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    STAFF = "staff"


class CustomerRole(enum.StrEnum):
    ADMINISTRATOR = "administrator"
    MEMBER = "member"


class PartnerRole(enum.StrEnum):
    """An agent's place in its partner company (issue 14): every agent acts for the company's
    clients (R-71); its administrators also manage the company's agents."""

    AGENT = "agent"
    ADMINISTRATOR = "administrator"


def _default_partner_role(context) -> str | None:
    """Agents are plain agents unless made administrators; nobody else has a partner role."""
    return (
        PartnerRole.AGENT.value
        if context.get_current_parameters().get("kind")
        in (
            UserKind.AGENT,
            UserKind.AGENT.value,
        )
        else None
    )


class StaffRole(enum.StrEnum):
    SUPPORT = "support"
    BILLING = "billing"
    ADMINISTRATOR = "administrator"
    # I-NET SERVICE production: the card order queue, holders' photos and proof sheets (R-85).
    PRODUCTION = "production"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        # Exactly one kind of identity per login (R-63: login IDs belong to named users).
        sa.CheckConstraint(
            "(kind = 'customer' AND organisation_id IS NOT NULL AND customer_role IS NOT NULL"
            " AND partner_id IS NULL AND staff_role IS NULL AND partner_role IS NULL)"
            " OR (kind = 'agent' AND partner_id IS NOT NULL AND partner_role IS NOT NULL"
            " AND organisation_id IS NULL AND customer_role IS NULL AND staff_role IS NULL)"
            " OR (kind = 'staff' AND staff_role IS NOT NULL AND organisation_id IS NULL"
            " AND customer_role IS NULL AND partner_id IS NULL AND partner_role IS NULL)",
            name="one_kind",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)  # stored lower-case
    name: Mapped[str] = mapped_column(sa.String(100))
    password_hash: Mapped[str] = mapped_column(sa.String(200))
    locale: Mapped[str] = mapped_column(sa.String(5), default="ja")
    kind: Mapped[UserKind] = mapped_column(enum_type(UserKind, "user_kind"))
    organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id"), index=True
    )
    customer_role: Mapped[CustomerRole | None] = mapped_column(
        enum_type(CustomerRole, "customer_role")
    )
    partner_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("partner_companies.id"), index=True
    )
    partner_role: Mapped[PartnerRole | None] = mapped_column(
        enum_type(PartnerRole, "partner_role"), default=_default_partner_role
    )
    staff_role: Mapped[StaffRole | None] = mapped_column(enum_type(StaffRole, "staff_role"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    password_changed_at: Mapped[datetime | None]
    # Set for an initial password handed over at onboarding: changed at first sign-in.
    must_change_password: Mapped[bool] = mapped_column(default=False)
    last_login_at: Mapped[datetime | None]

    organisation: Mapped[Organisation | None] = relationship()
    partner: Mapped[PartnerCompany | None] = relationship()

    # Flask-Login: the cookie names a server-side session, never the user id itself, so that
    # ending a session on the server (logout, password change) really ends it.
    session_token = None  # set per request by the session loader; not a column

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str | None:
        return self.session_token


class UserSession(Base):
    """A signed-in browser. Ending it here signs that browser out on its next request."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_seen_at: Mapped[datetime] = mapped_column(default=now)
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(sa.String(40))
    ip: Mapped[str] = mapped_column(sa.String(64), default="")
    user_agent: Mapped[str] = mapped_column(sa.String(300), default="")

    user: Mapped[User] = relationship()
