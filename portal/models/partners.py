"""Applications for a new client sent by a partner's agent (issue 14, R-71): an agent of a
sales agent or an agency applies for a company; staff approve or refuse it in the back office.
On approval the company is onboarded as staff onboard any application (its organisation,
first administrator and first contract) and assigned to the partner."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, enum_type, now
from portal.models.catalog import Plan
from portal.models.organisations import Organisation, PartnerCompany
from portal.models.users import User


class ApplicationStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"  # by the partner, before staff decided


class PartnerApplication(Base):
    __tablename__ = "partner_applications"
    __table_args__ = (
        # One pending application per first administrator's address: the same application
        # sent twice at once (or by two agents) is taken once.
        sa.Index(
            "uq_partner_applications_pending_admin_email",
            "admin_email",
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.CheckConstraint(
            "(status = 'approved') = (organisation_id IS NOT NULL)", name="approved_has_client"
        ),
        sa.CheckConstraint(
            "(status = 'pending') = (decided_at IS NULL)", name="decided_unless_pending"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partner_companies.id"), index=True)
    submitted_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    submitted_at: Mapped[datetime] = mapped_column(default=now)
    status: Mapped[ApplicationStatus] = mapped_column(
        enum_type(ApplicationStatus, "partner_application_status"),
        default=ApplicationStatus.PENDING,
        index=True,
    )
    # The company, as on the customer's application form (利用申込書).
    legal_name: Mapped[str] = mapped_column(sa.String(200))
    legal_name_kana: Mapped[str] = mapped_column(sa.String(200), default="")
    postal_code: Mapped[str] = mapped_column(sa.String(10), default="")
    address: Mapped[str] = mapped_column(sa.String(300), default="")
    phone: Mapped[str] = mapped_column(sa.String(40), default="")
    billing_email: Mapped[str] = mapped_column(sa.String(254))
    contract_contact_name: Mapped[str] = mapped_column(sa.String(100), default="")
    contract_contact_email: Mapped[str] = mapped_column(sa.String(254), default="")
    operations_contact_name: Mapped[str] = mapped_column(sa.String(100), default="")
    operations_contact_email: Mapped[str] = mapped_column(sa.String(254), default="")
    locale: Mapped[str] = mapped_column(sa.String(5), default="ja")
    # The first administrator, invited by e-mail on approval; consents himself.
    admin_name: Mapped[str] = mapped_column(sa.String(100))
    admin_email: Mapped[str] = mapped_column(sa.String(254))  # stored lower-case
    # The service and plan applied for, and the service start wished.
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id"))
    service_start: Mapped[date]
    anchor_day: Mapped[int] = mapped_column(default=21)
    # I-NET SERVICE (IN 16): the registration's contacts, when the plan is I-NET SERVICE's.
    inet_application_contact_name: Mapped[str] = mapped_column(sa.String(100), default="")
    inet_application_contact_email: Mapped[str] = mapped_column(sa.String(254), default="")
    inet_operations_manager_name: Mapped[str] = mapped_column(sa.String(100), default="")
    inet_operations_manager_email: Mapped[str] = mapped_column(sa.String(254), default="")
    # Staff's decision.
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    refusal_reason: Mapped[str] = mapped_column(sa.String(1000), default="")
    organisation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organisations.id"))

    partner: Mapped[PartnerCompany] = relationship()
    submitted_by: Mapped[User] = relationship(foreign_keys=[submitted_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    plan: Mapped[Plan] = relationship()
    organisation: Mapped[Organisation | None] = relationship()
