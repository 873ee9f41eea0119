"""The provider, its services and the versioned price list (R-10..R-13)."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, now


class Provider(Base):
    """The issuer of invoices: one row. R-40 needs its qualified-invoice registration number."""

    __tablename__ = "providers"
    __table_args__ = (
        sa.CheckConstraint(
            "length(registration_number) = 14 AND substr(registration_number, 1, 1) = 'T'",
            name="registration_number_format",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name_ja: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))
    registration_number: Mapped[str] = mapped_column(sa.String(14))
    address: Mapped[str] = mapped_column(sa.String(300), default="")
    phone: Mapped[str] = mapped_column(sa.String(40), default="")
    contact_email: Mapped[str] = mapped_column(
        sa.String(254), default="", server_default=sa.text("''")
    )
    # the account customers pay into by bank transfer, printed on every invoice.
    bank_name: Mapped[str] = mapped_column(sa.String(100), default="", server_default=sa.text("''"))
    bank_branch: Mapped[str] = mapped_column(
        sa.String(100), default="", server_default=sa.text("''")
    )
    bank_account_type: Mapped[str] = mapped_column(
        sa.String(20), default="ordinary", server_default="ordinary"
    )  # ordinary (普通) or current (当座)
    bank_account_number: Mapped[str] = mapped_column(
        sa.String(20), default="", server_default=sa.text("''")
    )
    bank_account_holder_kana: Mapped[str] = mapped_column(
        sa.String(100), default="", server_default=sa.text("''")
    )

    def name(self, locale: str) -> str:
        return self.name_ja if locale == "ja" else self.name_en

    def bank_account(self) -> dict[str, str]:
        """R-44: the bank account as an invoice freezes it at issue (empty: none set)."""
        if not (self.bank_name and self.bank_account_number):
            return {}
        return {
            "bank": self.bank_name,
            "branch": self.bank_branch,
            "type": self.bank_account_type,
            "number": self.bank_account_number,
            "holder_kana": self.bank_account_holder_kana,
        }


class Service(Base):
    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name_ja: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))
    paid: Mapped[bool] = mapped_column(default=True)
    default_anchor_day: Mapped[int] = mapped_column(default=21)

    def name(self, locale: str) -> str:
        return self.name_ja if locale == "ja" else self.name_en


class PriceList(Base):
    """R-10: a version of a service's prices; contracts keep the price they were sold at."""

    __tablename__ = "price_lists"
    __table_args__ = (
        sa.UniqueConstraint("service_id", "version"),
        sa.CheckConstraint("change_fee >= 0", name="change_fee_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(sa.ForeignKey("services.id"))
    version: Mapped[int]
    effective_from: Mapped[date]
    change_fee: Mapped[int]  # R-12, yen, tax excluded
    change_fee_tax_rate_percent: Mapped[int] = mapped_column(
        default=10, server_default="10"
    )
    is_demo: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str] = mapped_column(sa.String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=now)

    service: Mapped[Service] = relationship()
    plans: Mapped[list[Plan]] = relationship(
        back_populates="price_list", order_by="Plan.capacity_gb"
    )


class Plan(Base):
    """R-10: a capacity plan; R-11: its initial fee is one monthly fee."""

    __tablename__ = "plans"
    __table_args__ = (
        sa.UniqueConstraint("price_list_id", "code"),
        sa.CheckConstraint("monthly_fee >= 0", name="monthly_fee_not_negative"),
        sa.CheckConstraint("minimum_months >= 1", name="minimum_months_positive"),
        sa.CheckConstraint("capacity_gb IS NULL OR capacity_gb > 0", name="capacity_positive"),
        sa.CheckConstraint("tax_rate_percent >= 0", name="tax_rate_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    price_list_id: Mapped[int] = mapped_column(sa.ForeignKey("price_lists.id"))
    code: Mapped[str] = mapped_column(sa.String(40))
    name_ja: Mapped[str] = mapped_column(sa.String(200))
    name_en: Mapped[str] = mapped_column(sa.String(200))
    capacity_gb: Mapped[int | None]  # None for services not sold by capacity (I-NET SERVICE)
    monthly_fee: Mapped[int]  # yen, tax excluded
    minimum_months: Mapped[int]
    tax_rate_percent: Mapped[int] = mapped_column(default=10)
    sold: Mapped[bool] = mapped_column(default=True)

    price_list: Mapped[PriceList] = relationship(back_populates="plans")

    @property
    def initial_fee(self) -> int:
        """R-11: one month of the plan's monthly fee."""
        return self.monthly_fee

    def name(self, locale: str) -> str:
        return self.name_ja if locale == "ja" else self.name_en
