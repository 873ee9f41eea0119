"""Incidents, maintenance and SLA claims (R-50..R-53).

What staff record about an incident is kept as versions: a correction is a new version (who,
when, why), never an overwrite, so a claim always shows the facts it was computed from.
Versions, public updates, claim events and credits are frozen by database triggers (migration
0005); of a claim, only its review and how much of it was credited change.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.sla import IncidentKind
from portal.models.audit import AccountEntry
from portal.models.base import Base, enum_type, now
from portal.models.contracts import Contract
from portal.models.organisations import Organisation
from portal.models.users import User


class UpdateStatus(enum.StrEnum):
    """The stages of an incident's public timeline."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class VersionChange(enum.StrEnum):
    """Why a version of an incident was written."""

    RECORDED = "recorded"  # the first version
    ANNOUNCED = "announced"  # the first public update announced its occurrence
    RESOLVED = "resolved"  # the resolved update set its end and announced its recovery
    CORRECTED = "corrected"  # staff corrected the facts, with a reason


class Incident(Base):
    """An incident's identity; its facts are in its versions, the latest is current."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    current_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # Set when the incident records the downtime of maintenance (unannounced, or overrun).
    maintenance_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("maintenances.id"), unique=True
    )

    versions: Mapped[list[IncidentVersion]] = relationship(
        back_populates="incident", order_by="IncidentVersion.version"
    )
    updates: Mapped[list[IncidentUpdate]] = relationship(
        back_populates="incident", order_by="IncidentUpdate.posted_at"
    )
    maintenance: Mapped[Maintenance | None] = relationship(back_populates="incident")

    @property
    def reference(self) -> str:
        return f"INC-{self.id:06d}"


class IncidentVersion(Base):
    """One version of what staff recorded about an incident; never changed once written."""

    __tablename__ = "incident_versions"
    __table_args__ = (
        sa.UniqueConstraint("incident_id", "version"),
        sa.CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incidents.id"), index=True)
    version: Mapped[int]
    kind: Mapped[IncidentKind] = mapped_column(enum_type(IncidentKind, "incident_kind"))
    title_ja: Mapped[str] = mapped_column(sa.String(200))
    title_en: Mapped[str] = mapped_column(sa.String(200))
    # What it affected: these services and, if not all of their contracts, only these plans
    # or organisations (empty lists: no such restriction).
    service_ids: Mapped[list[int]] = mapped_column(sa.JSON)
    plan_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    organisation_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    occurrence_announced_at: Mapped[datetime | None]
    recovery_announced_at: Mapped[datetime | None]
    change: Mapped[VersionChange] = mapped_column(
        enum_type(VersionChange, "incident_version_change")
    )
    reason: Mapped[str] = mapped_column(sa.Text, default="")  # a correction's reason
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    incident: Mapped[Incident] = relationship(back_populates="versions")
    created_by: Mapped[User | None] = relationship()

    def title(self, locale: str) -> str:
        return self.title_ja if locale == "ja" else self.title_en


class IncidentUpdate(Base):
    """A public update of an incident's timeline, sent as a notice (R-61); never changed."""

    __tablename__ = "incident_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incidents.id"), index=True)
    status: Mapped[UpdateStatus] = mapped_column(enum_type(UpdateStatus, "incident_update_status"))
    message_ja: Mapped[str] = mapped_column(sa.Text)
    message_en: Mapped[str] = mapped_column(sa.Text)
    posted_at: Mapped[datetime] = mapped_column(default=now)
    posted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    notices_written: Mapped[int] = mapped_column(default=0)

    incident: Mapped[Incident] = relationship(back_populates="updates")

    def message(self, locale: str) -> str:
        return self.message_ja if locale == "ja" else self.message_en


class Maintenance(Base):
    """Extra maintenance (R-50): a window only if announced before its planned start."""

    __tablename__ = "maintenances"
    __table_args__ = (
        sa.CheckConstraint("planned_end > planned_start", name="ends_after_start"),
        sa.CheckConstraint(
            "actual_end IS NULL OR actual_end > planned_start", name="actual_end_after_start"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_ids: Mapped[list[int]] = mapped_column(sa.JSON)
    title_ja: Mapped[str] = mapped_column(sa.String(200))
    title_en: Mapped[str] = mapped_column(sa.String(200))
    # None: carried out without announcement (R-50: counts as downtime in full).
    announced_at: Mapped[datetime | None]
    planned_start: Mapped[datetime] = mapped_column(index=True)
    planned_end: Mapped[datetime]
    actual_end: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    incident: Mapped[Incident | None] = relationship(back_populates="maintenance")

    def title(self, locale: str) -> str:
        return self.title_ja if locale == "ja" else self.title_en

    @property
    def reference(self) -> str:
        return f"MNT-{self.id:06d}"


class ClaimStatus(enum.StrEnum):
    FILED = "filed"  # waiting for review
    APPROVED = "approved"  # credited on the next invoices
    REJECTED = "rejected"


class ClaimChannel(enum.StrEnum):
    PORTAL = "portal"
    API = "api"
    PAPER = "paper"  # received by letter or telephone; staff recorded it (R-52 reading)


class SlaClaim(Base):
    """R-52: a customer's claim for one incident on one contract, with the compensation the
    portal computed and how (the incident version it rests on). The filed columns are frozen
    (migration 0005); the review and the credited amount change."""

    __tablename__ = "sla_claims"
    __table_args__ = (
        # R-52 reading: one claim per contract and incident, whatever races.
        sa.UniqueConstraint("contract_id", "incident_id"),
        sa.CheckConstraint("computed_amount > 0", name="computed_amount_positive"),
        sa.CheckConstraint(
            "approved_amount IS NULL OR (approved_amount > 0"
            " AND approved_amount <= computed_amount)",
            name="approved_within_computed",
        ),
        # never credited beyond what was approved.
        sa.CheckConstraint(
            "credited_amount >= 0 AND credited_amount <= COALESCE(approved_amount, 0)",
            name="credited_within_approved",
        ),
        sa.CheckConstraint(
            "(status = 'approved') = (approved_amount IS NOT NULL)", name="approved_has_amount"
        ),
        sa.CheckConstraint("(status = 'filed') = (reviewed_at IS NULL)", name="reviewed_at_set"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(sa.ForeignKey("contracts.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    incident_id: Mapped[int] = mapped_column(sa.ForeignKey("incidents.id"), index=True)
    incident_version_id: Mapped[int] = mapped_column(sa.ForeignKey("incident_versions.id"))
    billing_month: Mapped[str] = mapped_column(sa.String(7))  # the incident's month
    monthly_fee: Mapped[int]  # F
    total_minutes: Mapped[int]
    counted_minutes: Mapped[int]
    lines: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)  # the reasoning, line by line
    subtotal: Mapped[int]  # before the month's cap
    cap_left: Mapped[int]
    computed_amount: Mapped[int]  # yen, tax excluded
    tax_rate_percent: Mapped[int]  # the contract's (R-53 reading)
    claimed_on: Mapped[date]  # the Tokyo date the claim reached the provider
    channel: Mapped[ClaimChannel] = mapped_column(enum_type(ClaimChannel, "claim_channel"))
    filed_at: Mapped[datetime] = mapped_column(default=now)
    filed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account_entries.id"))
    filed_from: Mapped[str] = mapped_column(sa.String(64), default="")
    locale: Mapped[str] = mapped_column(sa.String(5))  # the language of its PDF
    pdf: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    pdf_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[ClaimStatus] = mapped_column(
        enum_type(ClaimStatus, "claim_status"), default=ClaimStatus.FILED, index=True
    )
    approved_amount: Mapped[int | None]
    credited_amount: Mapped[int] = mapped_column(default=0)
    reviewed_at: Mapped[datetime | None]
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    review_reason: Mapped[str] = mapped_column(sa.Text, default="")

    contract: Mapped[Contract] = relationship()
    organisation: Mapped[Organisation] = relationship()
    incident: Mapped[Incident] = relationship()
    incident_version: Mapped[IncidentVersion] = relationship()
    filed_by: Mapped[User] = relationship(foreign_keys=[filed_by_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
    entry: Mapped[AccountEntry | None] = relationship()
    events: Mapped[list[SlaClaimEvent]] = relationship(
        back_populates="claim", order_by="SlaClaimEvent.id"
    )
    credits: Mapped[list[SlaCredit]] = relationship(back_populates="claim", order_by="SlaCredit.id")

    @property
    def number(self) -> str:
        return f"SLA-{self.id:06d}"

    @property
    def uncredited(self) -> int:
        """R-53: what is approved and not yet deducted from an invoice."""
        return (self.approved_amount or 0) - self.credited_amount


class SlaClaimEvent(Base):
    """A step of a claim's review, as the customer sees it in its history; never changed."""

    __tablename__ = "sla_claim_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(sa.ForeignKey("sla_claims.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))  # filed, approved, rejected, credited
    at: Mapped[datetime] = mapped_column(default=now)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    amount: Mapped[int | None]
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    invoice_id: Mapped[int | None] = mapped_column(sa.ForeignKey("invoices.id"))

    claim: Mapped[SlaClaim] = relationship(back_populates="events")
    user: Mapped[User | None] = relationship()


class SlaCredit(Base):
    """R-53: the part of an approved claim deducted from one invoice; never changed."""

    __tablename__ = "sla_credits"
    __table_args__ = (
        sa.UniqueConstraint("claim_id", "invoice_id"),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[int] = mapped_column(sa.ForeignKey("sla_claims.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    amount: Mapped[int]  # yen, tax excluded
    tax_rate_percent: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=now)

    claim: Mapped[SlaClaim] = relationship(back_populates="credits")
    invoice: Mapped[Any] = relationship("Invoice")


class OrganisationFeed(Base):
    """The secret of an organisation's incident and maintenance feeds: the URLs carry an HMAC
    of it (with the app's secret key), so the database alone does not reveal them; rotating
    it ends every subscription."""

    __tablename__ = "organisation_feeds"

    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id"), primary_key=True
    )
    nonce: Mapped[str] = mapped_column(sa.String(64))
    rotated_at: Mapped[datetime] = mapped_column(default=now)
    rotated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
