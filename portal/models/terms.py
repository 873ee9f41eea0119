"""Versions of the terms of service and each organisation's consent to them (R-60)."""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, enum_type, now
from portal.models.catalog import Service
from portal.models.users import User


class TermsVersion(Base):
    """A published version of a service's terms. Published text is never edited."""

    __tablename__ = "terms_versions"
    __table_args__ = (sa.UniqueConstraint("service_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(sa.ForeignKey("services.id"))
    version: Mapped[int]
    title_ja: Mapped[str] = mapped_column(sa.String(200))
    title_en: Mapped[str] = mapped_column(sa.String(200))
    body_ja: Mapped[str] = mapped_column(sa.Text)
    body_en: Mapped[str] = mapped_column(sa.Text)
    effective_on: Mapped[date]
    published_at: Mapped[datetime] = mapped_column(default=now)
    published_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))

    service: Mapped[Service] = relationship()
    published_by: Mapped[User | None] = relationship()

    def title(self, locale: str) -> str:
        return self.title_ja if locale == "ja" else self.title_en

    def body(self, locale: str) -> str:
        return self.body_ja if locale == "ja" else self.body_en


class ConsentKind(enum.StrEnum):
    EXPLICIT = "explicit"  # an administrator consented in the portal
    DEEMED = "deemed"  # the organisation used the service after the effective date
    APPLICATION = "application"  # consented on the application form at onboarding


class TermsConsent(Base):
    """One organisation's consent to one version: at most one, whatever races (R-60)."""

    __tablename__ = "terms_consents"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "terms_version_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    terms_version_id: Mapped[int] = mapped_column(sa.ForeignKey("terms_versions.id"))
    kind: Mapped[ConsentKind] = mapped_column(enum_type(ConsentKind, "consent_kind"))
    # The customer user who consented or whose use counted; for APPLICATION, the new
    # organisation's first administrator (the staff member who entered it is in the audit log).
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    consented_at: Mapped[datetime] = mapped_column(default=now)
    ip: Mapped[str] = mapped_column(sa.String(64), default="")

    terms_version: Mapped[TermsVersion] = relationship()
    user: Mapped[User | None] = relationship()
