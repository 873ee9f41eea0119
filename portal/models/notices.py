"""The e-mail outbox: every e-mail the portal sends, and the notices it keeps (R-61).

An e-mail is written here in the same transaction as the change that causes it, and
`flask portal send-mail` delivers it later over SMTP with retries, so that nothing is lost
when the mail server is down and nothing is sent for a change that was rolled back.
Rows marked `is_notice` are notices to the organisation: kept and shown to it with the time
they were sent (R-61); account e-mails (password reset, invitation) are not.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, now
from portal.models.organisations import Organisation


class OutboxEmail(Base):
    __tablename__ = "outbox_emails"
    __table_args__ = (
        # The worker's queue: unsent rows by their next attempt.
        sa.Index(
            "ix_outbox_emails_due",
            "next_attempt_at",
            sqlite_where=sa.text("sent_at IS NULL AND failed_at IS NULL"),
            postgresql_where=sa.text("sent_at IS NULL AND failed_at IS NULL"),
        ),
        sa.Index("ix_outbox_emails_notices", "organisation_id", "is_notice", "created_at"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))  # the template: email/<kind>.txt
    organisation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organisations.id"))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    contract_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contracts.id"))
    # a notice to the organisation, kept and viewable; and whether it starts, changes
    # or ends a contract (those take effect when they arrive).
    is_notice: Mapped[bool] = mapped_column(default=False)
    affects_contract: Mapped[bool] = mapped_column(default=False)
    to_address: Mapped[str] = mapped_column(sa.String(254))
    locale: Mapped[str] = mapped_column(sa.String(5))
    subject: Mapped[str] = mapped_column(sa.String(300))
    body: Mapped[str] = mapped_column(sa.Text)
    # A body with a secret (a reset or invitation link) is blanked once it has been sent.
    sensitive: Mapped[bool] = mapped_column(default=False)
    # The Message-ID header, fixed when the e-mail is written, so that a receiver can tell
    # a redelivery after a lost acknowledgement from a second e-mail.
    message_id: Mapped[str] = mapped_column(sa.String(200), unique=True)
    # Set for e-mails that one event must cause at most once (the database guarantees it).
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=now)
    # A worker's claim: another worker leaves the row alone until it expires.
    locked_until: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(sa.String(500), default="")
    sent_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]  # given up after the last retry; staff see these

    organisation: Mapped[Organisation | None] = relationship()
