"""Customer organisations and the partner companies that sell to them (R-70, R-71)."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, enum_type, now


class SalesChannel(enum.StrEnum):
    """How an organisation (or a contract) was sold."""

    DIRECT = "direct"
    SALES_AGENT = "sales_agent"  # 販売代理店, IW 27(1)
    AGENCY = "agency"  # 取次店, IW 27(2)


class PartnerKind(enum.StrEnum):
    SALES_AGENT = "sales_agent"
    AGENCY = "agency"


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_name: Mapped[str] = mapped_column(sa.String(200), index=True)
    legal_name_kana: Mapped[str] = mapped_column(sa.String(200), default="")
    postal_code: Mapped[str] = mapped_column(sa.String(10), default="")
    address: Mapped[str] = mapped_column(sa.String(300), default="")
    phone: Mapped[str] = mapped_column(sa.String(40), default="")
    billing_email: Mapped[str] = mapped_column(sa.String(254))
    contract_contact_name: Mapped[str] = mapped_column(sa.String(100), default="")
    contract_contact_email: Mapped[str] = mapped_column(sa.String(254), default="")
    operations_contact_name: Mapped[str] = mapped_column(sa.String(100), default="")
    operations_contact_email: Mapped[str] = mapped_column(sa.String(254), default="")
    sales_channel: Mapped[SalesChannel] = mapped_column(
        enum_type(SalesChannel, "sales_channel"), default=SalesChannel.DIRECT
    )
    locale: Mapped[str] = mapped_column(sa.String(5), default="ja")  # language of documents
    # Whether the administrators let members see invoices (issue 4, R-70).
    members_see_invoices: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(default=now)

    partners: Mapped[list[PartnerCompany]] = relationship(
        secondary="partner_assignments", back_populates="clients", viewonly=True
    )


class PartnerCompany(Base):
    __tablename__ = "partner_companies"
    __table_args__ = (
        # One partner per name, whatever its case: two creations at once make one.
        sa.Index("uq_partner_companies_name", sa.func.lower(sa.text("name")), unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[PartnerKind] = mapped_column(enum_type(PartnerKind, "partner_kind"))
    created_at: Mapped[datetime] = mapped_column(default=now)

    clients: Mapped[list[Organisation]] = relationship(
        secondary="partner_assignments",
        back_populates="partners",
        viewonly=True,
        order_by="Organisation.legal_name",
    )


class PartnerAssignment(Base):
    """R-71: each agent sees only the clients assigned to its partner company."""

    __tablename__ = "partner_assignments"

    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partner_companies.id"), primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id"), primary_key=True, index=True
    )
    assigned_at: Mapped[datetime] = mapped_column(default=now)

    partner: Mapped[PartnerCompany] = relationship()
    organisation: Mapped[Organisation] = relationship()


class OrganisationChange(Base):
    """R-62: one field of the registered information changed: who, when, old and new."""

    __tablename__ = "organisation_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    field: Mapped[str] = mapped_column(sa.String(40))
    old_value: Mapped[str] = mapped_column(sa.String(300))
    new_value: Mapped[str] = mapped_column(sa.String(300))
    changed_at: Mapped[datetime] = mapped_column(default=now)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    # Set when an agent changed it from inside the client's portal.
    entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account_entries.id"))
