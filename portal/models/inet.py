"""I-NET SERVICE: registrations, card holders and their photos, card orders (R-80..R-85)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.inet import CardDesign, OrderState
from portal.models.base import Base, enum_type, now
from portal.models.organisations import Organisation
from portal.models.terms import TermsVersion
from portal.models.users import User


class RegistrationChannel(enum.StrEnum):
    """How the application for I-NET SERVICE came in (R-80 reading)."""

    PUBLIC = "public"  # the public application page, e-mail verified
    STAFF = "staff"  # staff onboarding
    AGENT = "agent"  # a sales agent or agency for its client
    CUSTOMER = "customer"  # an administrator of an organisation that already uses the portal


class RegistrationEnd(enum.StrEnum):
    WITHDRAWN = "withdrawn"  # the customer ended its use
    DORMANT = "dormant"  # cancelled by staff under R-84


class InetRegistration(Base):
    """An organisation's registration for I-NET SERVICE. Free: no fee, no invoice (R-80).

    At most one open registration per organisation (a partial unique index); an ended one
    stays as the record, and the organisation may register again (R-84).
    """

    __tablename__ = "inet_registrations"
    __table_args__ = (
        sa.Index(
            "uq_inet_registrations_open",
            "organisation_id",
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    channel: Mapped[RegistrationChannel] = mapped_column(
        enum_type(RegistrationChannel, "registration_channel")
    )
    # IN 16: the application contact and the operations manager.
    application_contact_name: Mapped[str] = mapped_column(sa.String(100))
    application_contact_email: Mapped[str] = mapped_column(sa.String(254))
    operations_manager_name: Mapped[str] = mapped_column(sa.String(100))
    operations_manager_email: Mapped[str] = mapped_column(sa.String(254))
    # The I-NET terms version consented to on the application.
    terms_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("terms_versions.id"))
    registered_at: Mapped[datetime] = mapped_column(default=now)
    registered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    # The day the usage period ended (Tokyo date, R-83) and how.
    ended_on: Mapped[date | None]
    ended_at: Mapped[datetime | None]
    ended_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    end_reason: Mapped[RegistrationEnd | None] = mapped_column(
        enum_type(RegistrationEnd, "registration_end")
    )
    # ended_on + one month; set when the registration ends.
    photos_delete_on: Mapped[date | None] = mapped_column(index=True)
    photos_deleted_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()
    terms_version: Mapped[TermsVersion | None] = relationship()
    registered_by: Mapped[User | None] = relationship(foreign_keys=[registered_by_id])
    ended_by: Mapped[User | None] = relationship(foreign_keys=[ended_by_id])

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class InetApplication(Base):
    """An application from the public page, waiting for its e-mail address to be verified.

    Only the SHA-256 of the link's secret is stored; the link works once, before it expires.
    """

    __tablename__ = "inet_applications"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), index=True)  # the first administrator
    token_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # the form as sent
    locale: Mapped[str] = mapped_column(sa.String(5), default="ja")
    terms_version_id: Mapped[int] = mapped_column(sa.ForeignKey("terms_versions.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime]
    ip: Mapped[str] = mapped_column(sa.String(64), default="")
    verified_at: Mapped[datetime | None]
    organisation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organisations.id"))


class StoredPhoto(Base):
    """The bytes of one photo, in the database (the default photo storage).

    A JPEG re-encoded by the portal (no metadata), cropped to the card's aspect. Deleting
    the row deletes the photo: exactly, and in the same transaction as its record.
    """

    __tablename__ = "stored_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    byte_size: Mapped[int]
    width: Mapped[int]
    height: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=now)


class CardHolder(Base):
    """An employee who gets an ID card (R-85: personal data, seen by few)."""

    __tablename__ = "card_holders"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "employee_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    name_kana: Mapped[str] = mapped_column(sa.String(100), default="")
    employee_number: Mapped[str] = mapped_column(sa.String(40))
    department: Mapped[str] = mapped_column(sa.String(100), default="")
    title: Mapped[str] = mapped_column(sa.String(100), default="")
    # The photo's key in the photo storage (a StoredPhoto id for the database storage).
    photo_key: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(default=now)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=now, onupdate=now)

    organisation: Mapped[Organisation] = relationship()


class CardOrder(Base):
    """An order for ID cards. States move only by conditional updates (see services)."""

    __tablename__ = "card_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    registration_id: Mapped[int] = mapped_column(sa.ForeignKey("inet_registrations.id"))
    state: Mapped[OrderState] = mapped_column(
        enum_type(OrderState, "card_order_state"), default=OrderState.DRAFT, index=True
    )
    design: Mapped[CardDesign] = mapped_column(enum_type(CardDesign, "card_design"))
    delivery_name: Mapped[str] = mapped_column(sa.String(100))
    delivery_postal_code: Mapped[str] = mapped_column(sa.String(10))
    delivery_address: Mapped[str] = mapped_column(sa.String(300))
    delivery_phone: Mapped[str] = mapped_column(sa.String(40))
    note: Mapped[str] = mapped_column(sa.String(500), default="")
    # Who placed it: a customer administrator, or an agent inside the client's portal (R-85:
    # agents see the orders they placed).
    placed_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    placed_entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account_entries.id"))
    created_at: Mapped[datetime] = mapped_column(default=now)
    submitted_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]  # the contract is formed
    accepted_at: Mapped[datetime | None]  # the cancel window closed
    production_started_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    carrier: Mapped[str] = mapped_column(sa.String(60), default="")
    tracking_number: Mapped[str] = mapped_column(sa.String(60), default="")

    organisation: Mapped[Organisation] = relationship()
    registration: Mapped[InetRegistration] = relationship()
    placed_by: Mapped[User] = relationship()
    items: Mapped[list[CardOrderItem]] = relationship(
        back_populates="order", order_by="CardOrderItem.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[CardOrderEvent]] = relationship(
        back_populates="order", order_by="CardOrderEvent.id"
    )

    @property
    def number(self) -> str:
        """The order number a customer quotes on the phone."""
        return f"IC-{self.id:06d}"

    @property
    def card_count(self) -> int:
        return sum(item.quantity for item in self.items)


class CardOrderItem(Base):
    """One holder's cards in an order, with the holder's details as sent (the card is printed
    from these, whatever changes later; the photo is the holder's until production)."""

    __tablename__ = "card_order_items"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "holder_id"),
        sa.CheckConstraint("quantity BETWEEN 1 AND 10", name="quantity_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("card_orders.id"), index=True)
    holder_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("card_holders.id", ondelete="SET NULL"), index=True
    )
    quantity: Mapped[int] = mapped_column(default=1)
    name: Mapped[str] = mapped_column(sa.String(100))
    name_kana: Mapped[str] = mapped_column(sa.String(100), default="")
    employee_number: Mapped[str] = mapped_column(sa.String(40))
    department: Mapped[str] = mapped_column(sa.String(100), default="")
    title: Mapped[str] = mapped_column(sa.String(100), default="")

    order: Mapped[CardOrder] = relationship(back_populates="items")
    holder: Mapped[CardHolder | None] = relationship()


class CardOrderEvent(Base):
    """One step of an order's life: who moved it, from which state to which, when."""

    __tablename__ = "card_order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(sa.ForeignKey("card_orders.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(30))
    from_state: Mapped[OrderState | None] = mapped_column(
        enum_type(OrderState, "card_order_event_from")
    )
    to_state: Mapped[OrderState] = mapped_column(enum_type(OrderState, "card_order_event_to"))
    at: Mapped[datetime] = mapped_column(default=now)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    entry_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account_entries.id"))
    note: Mapped[str] = mapped_column(sa.String(300), default="")

    order: Mapped[CardOrder] = relationship(back_populates="events")
    user: Mapped[User | None] = relationship()


class PhotoDeletion(Base):
    """R-83: the record that a registration's photos were deleted (never the photos)."""

    __tablename__ = "photo_deletions"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    registration_id: Mapped[int | None] = mapped_column(sa.ForeignKey("inet_registrations.id"))
    holder_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("card_holders.id", ondelete="SET NULL")
    )
    photo_sha256: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.String(30))  # retention, replaced, holder_removed
    deleted_at: Mapped[datetime] = mapped_column(default=now)
    deleted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))


class CardImport(Base):
    """A CSV of card holders (and a ZIP of their photos) uploaded for import, kept between
    its preview and the import so that any app server can finish it (R-85: the organisation's
    own data, deleted when imported or cancelled, and after 24 hours at the latest).

    `consumed_at` is set by a conditional UPDATE when the import runs: an upload imports once,
    whatever the double clicks and open tabs.
    """

    __tablename__ = "card_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=now, index=True)
    csv_name: Mapped[str] = mapped_column(sa.String(255), default="")
    csv: Mapped[bytes] = mapped_column(sa.LargeBinary)
    zip_name: Mapped[str] = mapped_column(sa.String(255), default="")
    zip: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    sha256: Mapped[str] = mapped_column(sa.String(64))  # of the CSV and the ZIP, as previewed
    consumed_at: Mapped[datetime | None]
