"""Delivering the outbox (`flask portal send-mail`): SMTP, or .eml files in development.

Each e-mail is claimed by a conditional UPDATE (so that two workers never send the same row),
sent, and marked sent in its own transaction. A failure is recorded with the next attempt
after an exponential backoff; nothing is dropped while the SMTP server is down, and once it
is back every e-mail goes out once. The window between the server's acceptance and our
commit is the only place a crash could send an e-mail twice; its Message-ID, fixed when the
e-mail was written, is then the same, so receivers can tell.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from portal.clock import clock
from portal.extensions import db
from portal.models import OutboxEmail

# A worker claims BATCH e-mails at a time; a crashed worker's claim expires after LEASE, which
# outlasts a batch sent at the SMTP timeout (20 x 20 s).
BATCH = 20
LEASE = timedelta(minutes=10)
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)
REDACTED = "(This e-mail contained a single-use link. It was removed after sending.)\n"


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, … minutes after the n-th failed attempt, at most 6 hours."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), LONGEST_RETRY)


def build_message(email: OutboxEmail, sender: str, sender_name: str = "") -> EmailMessage:
    """An RFC 5322 message; Japanese subjects and bodies encoded as UTF-8 (RFC 2047 / base64)."""
    message = EmailMessage()
    message["From"] = formataddr((sender_name, sender)) if sender_name else sender
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.created_at)
    message["Message-ID"] = email.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(email.body, charset="utf-8")
    message["Content-Language"] = email.locale  # after set_content, which resets Content-*
    return message


class Transport(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SMTPTransport:
    """One SMTP connection per run, opened when the first e-mail is sent."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        smtp = smtplib.SMTP(
            config["MAIL_SERVER"], config["MAIL_PORT"], timeout=config["MAIL_TIMEOUT_SECONDS"]
        )
        if config["MAIL_USE_TLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if config["MAIL_USERNAME"]:
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
        return smtp

    def send(self, message: EmailMessage) -> None:
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._smtp.send_message(message)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()
            raise

    def close(self) -> None:
        if self._smtp is not None:
            with suppress(smtplib.SMTPException, OSError):
                self._smtp.quit()
            self._smtp = None


class FileTransport:
    """Development: each e-mail becomes <dir>/<outbox id>-<kind>.eml, readable as is."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.directory = Path(config["MAIL_FILE_DIR"])

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = message["X-Portal-Outbox-Id"] + "-" + message["X-Portal-Kind"] + ".eml"
        tmp = self.directory / (name + ".tmp")
        tmp.write_bytes(bytes(message))
        tmp.replace(self.directory / name)

    def close(self) -> None:
        pass


TRANSPORTS = {"smtp": SMTPTransport, "file": FileTransport}


@dataclass
class Delivery:
    sent: int = 0  # marked sent in the database after the server took them
    failed: int = 0  # attempts that failed and will be retried
    given_up: int = 0  # failed for the last time
    # What this worker holds when the database drops out mid-run: ids the server took but
    # not yet marked sent, and ids claimed but not tried. settle() deals with them once the
    # database is back, so the first are not sent again when their claim expires.
    accepted: list[int] = field(default_factory=list)
    claimed: list[int] = field(default_factory=list)


@contextmanager
def transport_for(config: dict[str, Any]) -> Iterator[Transport]:
    transport = TRANSPORTS[config["MAIL_TRANSPORT"]](config)
    try:
        yield transport
    finally:
        transport.close()


def _unsent_and_free(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        OutboxEmail.sent_at.is_(None),
        OutboxEmail.failed_at.is_(None),
        sa.or_(OutboxEmail.locked_until.is_(None), OutboxEmail.locked_until < now),
    )


def _claim_batch(limit: int, result: Delivery) -> list[OutboxEmail]:
    """Take up to `limit` due e-mails for this worker, in one conditional UPDATE: a row another
    worker claimed meanwhile is not taken (on PostgreSQL the UPDATE waits for the other's
    commit and then sees its claim). The claim is noted in `result` as soon as it is made."""
    now = clock.now()
    due = (
        sa.select(OutboxEmail.id)
        .where(_unsent_and_free(now), OutboxEmail.next_attempt_at <= now)
        .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
        .limit(limit)
    )
    claimed = list(
        db.session.scalars(
            sa.update(OutboxEmail)
            .where(OutboxEmail.id.in_(list(db.session.scalars(due))), _unsent_and_free(now))
            .values(locked_until=now + LEASE)
            .returning(OutboxEmail.id)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    result.claimed = claimed
    if not claimed:
        return []
    return list(
        db.session.scalars(
            sa.select(OutboxEmail)
            .where(OutboxEmail.id.in_(claimed))
            .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
        )
    )


def _release(email_ids: list[int]) -> None:
    """Give back claimed e-mails this run did not try, for the next run."""
    if email_ids:
        db.session.execute(
            sa.update(OutboxEmail)
            .where(OutboxEmail.id.in_(email_ids), OutboxEmail.sent_at.is_(None))
            .values(locked_until=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


def settle(result: Delivery) -> None:
    """After the database dropped out of a run: mark sent what the server took meanwhile
    (counted as sent only where this marks a row) and give back the claims not tried."""
    if result.accepted:
        marked = db.session.execute(
            sa.update(OutboxEmail)
            .where(OutboxEmail.id.in_(result.accepted), OutboxEmail.sent_at.is_(None))
            .values(
                sent_at=clock.now(),
                attempts=OutboxEmail.attempts + 1,
                locked_until=None,
                last_error="",
                body=sa.case((OutboxEmail.sensitive, REDACTED), else_=OutboxEmail.body),
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        db.session.commit()
        result.sent += marked
        result.accepted = []
    _release(result.claimed)
    result.claimed = []


# The server took the connection but refused this message (e.g. 451 try later, 550 no such
# mailbox): the others may still go.
MESSAGE_REFUSED = (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused)


def deliver_due(
    config: dict[str, Any], *, batch: int = BATCH, result: Delivery | None = None
) -> Delivery:
    """Send every e-mail that is due, batch by batch; each is marked sent in its own commit
    right after the server took it. When the server cannot be reached the run stops at once:
    the rest wait for the next run rather than hammer a server that is down (only the e-mail
    that found it down counts an attempt).

    A database error is raised as it comes, with `result` (when given) holding what was done
    and what is held; calling again with the same `result` settles that first."""
    result = result if result is not None else Delivery()
    sender = config["MAIL_FROM"]
    max_attempts = config["MAIL_MAX_ATTEMPTS"]
    if result.accepted or result.claimed:
        settle(result)
    with transport_for(config) as transport:
        while emails := _claim_batch(batch, result):
            ids = [e.id for e in emails]  # read now: each commit below expires the rows
            for email, email_id in zip(emails, ids, strict=True):
                message = build_message(email, sender)
                message["X-Portal-Outbox-Id"] = str(email_id)
                message["X-Portal-Kind"] = email.kind
                try:
                    transport.send(message)
                except MESSAGE_REFUSED as exc:  # this e-mail only: go on with the others
                    _record_failure(email, exc, max_attempts, result)
                    result.claimed.remove(email_id)
                    continue
                except (smtplib.SMTPException, OSError) as exc:  # the server: stop this run
                    _record_failure(email, exc, max_attempts, result)
                    result.claimed.remove(email_id)
                    _release(result.claimed)
                    result.claimed = []
                    return result
                result.claimed.remove(email_id)
                result.accepted.append(email_id)
                _record_sent(email)
                result.accepted.remove(email_id)
                result.sent += 1
    return result


def _record_sent(email: OutboxEmail) -> None:
    email.sent_at = clock.now()
    email.attempts += 1
    email.locked_until = None
    email.last_error = ""
    if email.sensitive:
        email.body = REDACTED
    db.session.commit()


def _record_failure(
    email: OutboxEmail, exc: Exception, max_attempts: int, result: Delivery
) -> None:
    now = clock.now()
    email.attempts += 1
    email.locked_until = None
    email.last_error = f"{type(exc).__name__}: {exc}"[:500]
    if email.attempts >= max_attempts:
        email.failed_at = now
        result.given_up += 1
    else:
        email.next_attempt_at = now + retry_delay(email.attempts)
        result.failed += 1
    db.session.commit()


def retry_failed(email_ids: list[int] | None = None) -> int:
    """Staff put e-mails that were given up back in the queue (after fixing the cause)."""
    query = (
        sa.update(OutboxEmail)
        .where(OutboxEmail.failed_at.is_not(None), OutboxEmail.sent_at.is_(None))
        .values(failed_at=None, attempts=0, next_attempt_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if email_ids is not None:
        query = query.where(OutboxEmail.id.in_(email_ids))
    return db.session.execute(query).rowcount  # type: ignore[attr-defined]
