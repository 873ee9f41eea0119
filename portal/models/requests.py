"""Requests against a contract, the ledger of pending charges, usage and API tokens.

R-20..R-23, R-30..R-32: a confirmed request is the customer's written notice; it keeps the
quote the customer saw and who sent it, from where, and is applied on its date by the
scheduled command (`flask portal apply-due`). The charges it creates wait in the ledger for
the invoice of their billing month (R-41).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.quotes import ChargeKind, Quote, RequestKind
from portal.models.audit import AccountEntry
from portal.models.base import Base, enum_type, now
from portal.models.catalog import Plan
from portal.models.contracts import Contract
from portal.models.organisations import Organisation
from portal.models.users import User


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    WITHDRAWN = "withdrawn"


class ContractRequest(Base):
    """A plan change, cancellation, notice against renewal or agency renewal application."""

    __tablename__ = "contract_requests"
    __table_args__ = (
        # one pending request per contract, even when twenty confirmations race.
        sa.Index(
            "uq_contract_requests_pending_per_contract",
            "contract_id",
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        sa.CheckConstraint("effective_on >= notice_on", name="effective_after_notice"),
        sa.CheckConstraint(
            "(status = 'withdrawn') = (withdrawn_at IS NOT NULL)", name="withdrawn_at_matches"
        ),
        sa.CheckConstraint(
            "(status = 'applied') = (applied_at IS NOT NULL)", name="applied_at_matches"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(sa.ForeignKey("contracts.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    kind: Mapped[RequestKind] = mapped_column(enum_type(RequestKind, "request_kind"))
    status: Mapped[RequestStatus] = mapped_column(
        enum_type(RequestStatus, "request_status"), default=RequestStatus.PENDING
    )
    notice_on: Mapped[date]  # the day the written request reached the provider
    effective_on: Mapped[date]  # upgrade: plan switches; ending kinds: the last day
    applies_on: Mapped[date] = mapped_column(index=True)  # when `apply-due` carries it out
    from_plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id"))  # the plan when sent
    target_plan_id: Mapped[int | None] = mapped_column(sa.ForeignKey("plans.id"))
    quote: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # the quote the customer confirmed
    requested_at: Mapped[datetime] = mapped_column(default=now)
    requested_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account_entries.id"))
    requested_from: Mapped[str] = mapped_column(sa.String(64), default="")
    user_agent: Mapped[str] = mapped_column(sa.String(300), default="")
    via_api: Mapped[bool] = mapped_column(default=False)
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    withdrawn_entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account_entries.id"))
    applied_at: Mapped[datetime | None]
    new_contract_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contracts.id"))

    contract: Mapped[Contract] = relationship(foreign_keys=[contract_id])
    organisation: Mapped[Organisation] = relationship()
    from_plan: Mapped[Plan] = relationship(foreign_keys=[from_plan_id])
    target_plan: Mapped[Plan | None] = relationship(foreign_keys=[target_plan_id])
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    withdrawn_by: Mapped[User | None] = relationship(foreign_keys=[withdrawn_by_id])
    entry: Mapped[AccountEntry | None] = relationship(foreign_keys=[entry_id])
    new_contract: Mapped[Contract | None] = relationship(foreign_keys=[new_contract_id])

    @property
    def reference(self) -> str:
        return f"R-{self.id:06d}"

    def confirmed_quote(self) -> Quote:
        return Quote.from_json(self.quote, self.contract.anchor_day)


class RequestDocument(Base):
    """The PDF a request's customer keeps (R-32): its confirmation, rendered once when it was
    confirmed, and its withdrawal, rendered once when it was withdrawn; stored with their
    SHA-256 and served as stored, like invoices (R-42). Never changed (migration 0006)."""

    __tablename__ = "request_documents"
    __table_args__ = (sa.UniqueConstraint("request_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("contract_requests.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # confirmation, withdrawal
    locale: Mapped[str] = mapped_column(sa.String(5))
    pdf: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    pdf_sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(default=now)


class LedgerCharge(Base):
    """A one-off charge waiting for the invoice of its billing month (R-11, R-12, R-21, R-22)."""

    __tablename__ = "ledger_charges"
    __table_args__ = (
        sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
        sa.CheckConstraint("tax_rate_percent >= 0", name="tax_rate_not_negative"),
        # Applying a request twice (or twice at once) never charges twice.
        sa.Index(
            "uq_ledger_charges_per_request",
            "request_id",
            "contract_id",
            "kind",
            unique=True,
            sqlite_where=sa.text("request_id IS NOT NULL"),
            postgresql_where=sa.text("request_id IS NOT NULL"),
        ),
        # A contract's own initial fee is charged once.
        sa.Index(
            "uq_ledger_charges_initial_fee",
            "contract_id",
            unique=True,
            sqlite_where=sa.text("request_id IS NULL AND kind = 'initial_fee'"),
            postgresql_where=sa.text("request_id IS NULL AND kind = 'initial_fee'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    contract_id: Mapped[int] = mapped_column(sa.ForeignKey("contracts.id"), index=True)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contract_requests.id"))
    kind: Mapped[ChargeKind] = mapped_column(enum_type(ChargeKind, "charge_kind"))
    amount: Mapped[int]  # yen, tax excluded
    tax_rate_percent: Mapped[int]  # the tax category
    months: Mapped[int | None]  # a shortfall's unexpired billing months
    billing_month: Mapped[str] = mapped_column(sa.String(7), index=True)  # e.g. "2027-02"
    bills_on: Mapped[date]  # the first day of that billing month: the invoice's issue date
    accrued_on: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(default=now)
    # The invoice that carried it; None while it waits.
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"), index=True)

    contract: Mapped[Contract] = relationship()
    request: Mapped[ContractRequest | None] = relationship()


class UsageSource(enum.StrEnum):
    API = "api"  # the service reports it
    STAFF = "staff"  # entered by provider staff


class UsageReading(Base):
    """R-15: storage used by a contract, as measured by the service at a time."""

    __tablename__ = "usage_readings"
    __table_args__ = (
        sa.UniqueConstraint("contract_id", "measured_at"),
        sa.CheckConstraint("used_gb >= 0", name="used_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(sa.ForeignKey("contracts.id"), index=True)
    used_gb: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    measured_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=now)
    source: Mapped[UsageSource] = mapped_column(enum_type(UsageSource, "usage_source"))
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    contract: Mapped[Contract] = relationship()
    recorded_by: Mapped[User | None] = relationship()


class ApiToken(Base):
    """A user's token for /api/v1; only its SHA-256 is kept, the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()
