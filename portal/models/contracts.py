"""Contracts and their history (R-02..R-06, R-10)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, query_expression, relationship

from portal.domain import calendar
from portal.models.base import Base, enum_type, now
from portal.models.catalog import Plan, Service
from portal.models.organisations import Organisation, PartnerCompany, SalesChannel

if TYPE_CHECKING:
    from portal.models.requests import ContractRequest


class ContractStatus(enum.StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        sa.CheckConstraint("anchor_day BETWEEN 1 AND 28", name="anchor_day_range"),
        sa.CheckConstraint("monthly_fee >= 0", name="monthly_fee_not_negative"),
        sa.CheckConstraint("minimum_months >= 1", name="minimum_months_positive"),
        sa.CheckConstraint(
            "(sales_channel = 'direct' AND partner_id IS NULL)"
            " OR (sales_channel <> 'direct' AND partner_id IS NOT NULL)",
            name="partner_matches_channel",
        ),
        sa.CheckConstraint(
            "(sales_channel = 'agency') = (agency_periods_granted IS NOT NULL)",
            name="agency_periods_only_for_agency",
        ),
        sa.CheckConstraint(
            "(status = 'ended') = (ended_on IS NOT NULL)", name="ended_on_matches_status"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    service_id: Mapped[int] = mapped_column(sa.ForeignKey("services.id"))
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id"))
    # the price it was sold at, kept until a plan change.
    monthly_fee: Mapped[int]
    minimum_months: Mapped[int]
    service_start: Mapped[date]  # the date on the start notice
    anchor_day: Mapped[int] = mapped_column(default=calendar.DEFAULT_ANCHOR_DAY)
    status: Mapped[ContractStatus] = mapped_column(
        enum_type(ContractStatus, "contract_status"), default=ContractStatus.ACTIVE
    )
    sales_channel: Mapped[SalesChannel] = mapped_column(
        enum_type(SalesChannel, "sales_channel"), default=SalesChannel.DIRECT
    )
    partner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("partner_companies.id"))
    # 6-month periods granted so far (1 at sign-up, +1 per renewal application).
    agency_periods_granted: Mapped[int | None]
    ended_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(default=now)

    organisation: Mapped[Organisation] = relationship()
    service: Mapped[Service] = relationship()
    plan: Mapped[Plan] = relationship()
    partner: Mapped[PartnerCompany | None] = relationship()
    events: Mapped[list[ContractEvent]] = relationship(
        back_populates="contract", order_by="ContractEvent.id"
    )
    # at most one request pending (a partial unique index), read with the contract where
    # a page lists contracts with their deadlines (services.home, issue 15).
    pending_request: Mapped[ContractRequest | None] = relationship(
        "ContractRequest",
        primaryjoin="and_(ContractRequest.contract_id == Contract.id,"
        " ContractRequest.status == 'pending')",
        viewonly=True,
        uselist=False,
    )
    # the latest usage reading's GB, where a query asks for it (with_expression).
    latest_used_gb: Mapped[Decimal | None] = query_expression()

    def calendar(self, on: date) -> calendar.ContractCalendar:
        """Where this contract stands on a day (R-03..R-06)."""
        return calendar.contract_calendar(
            service_start=self.service_start,
            anchor_day=self.anchor_day,
            minimum_months=self.minimum_months,
            on=on,
            via_agency=self.sales_channel == SalesChannel.AGENCY,
            agency_periods_granted=self.agency_periods_granted,
            ended_on=self.ended_on,
        )


class ContractEvent(Base):
    """What happened to a contract, in the order it was recorded."""

    __tablename__ = "contract_events"
    # The scheduled command records renewals and expiries; once per contract, kind and day.
    __table_args__ = (sa.UniqueConstraint("contract_id", "kind", "effective_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(sa.ForeignKey("contracts.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(40))  # e.g. "created", "plan_changed", "ended"
    effective_on: Mapped[date]
    recorded_at: Mapped[datetime] = mapped_column(default=now)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    as_user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    contract: Mapped[Contract] = relationship(back_populates="events")
