"""Writing e-mails into the outbox (R-61). `portal.mailer` delivers them.

Every e-mail is rendered here, in the recipient's language, and added to the session of the
change that causes it: it is committed with that change or not at all. Templates live in
`templates/email/<kind>.txt` with a `subject` and a `body` block.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    CustomerRole,
    Organisation,
    OutboxEmail,
    StaffRole,
    User,
    UserKind,
)
from portal.paging import Page, paginate, paginate_counted
from portal.transaction import begin_writing


def absolute_url(endpoint: str, **values: Any) -> str:
    """A link for an e-mail: BASE_URL and the route's path (the worker has no request)."""
    base = current_app.config["BASE_URL"].rstrip("/")
    adapter = current_app.url_map.bind("portal.invalid")
    return base + adapter.build(endpoint, values, force_external=False)


def render(kind: str, locale: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and body of an e-mail in the given language."""
    with force_locale(locale):
        env = current_app.jinja_env
        template = env.get_template(f"email/{kind}.txt")
        variables = {**context, "locale": locale, "portal_url": absolute_url("main.index")}
        ctx = template.new_context(vars=variables)
        subject = "".join(template.blocks["subject"](ctx)).strip()
        ctx = template.new_context(vars=variables)
        body = "".join(template.blocks["body"](ctx)).strip() + "\n"
    return " ".join(subject.split()), body


def enqueue(
    kind: str,
    *,
    to: str,
    locale: str,
    context: Mapping[str, Any] | None = None,
    organisation_id: int | None = None,
    user_id: int | None = None,
    contract_id: int | None = None,
    notice: bool = False,
    affects_contract: bool = False,
    sensitive: bool = False,
    dedupe_key: str | None = None,
) -> OutboxEmail | None:
    """Write one e-mail to the outbox, in the caller's transaction.

    With a dedupe_key, an e-mail already written for it is not written again (None returned),
    however many requests race: the unique index decides.
    """
    written = _write(
        kind,
        [to],
        locale,
        render(kind, locale, context or {}),
        dedupe_keys=[dedupe_key] if dedupe_key else None,
        organisation_id=organisation_id,
        user_id=user_id,
        contract_id=contract_id,
        is_notice=notice,
        affects_contract=affects_contract,
        sensitive=sensitive,
    )
    return written[0] if written else None


def notify_organisation(
    organisation: Organisation,
    kind: str,
    *,
    context: Mapping[str, Any] | None = None,
    to: Iterable[str] | None = None,
    contract_id: int | None = None,
    affects_contract: bool = False,
    dedupe_key: str | None = None,
) -> list[OutboxEmail]:
    """A notice to an organisation (R-61): to its registered address (or the addresses given),
    in its language, kept and shown on its notices page. Rendered once for all addresses;
    with a dedupe_key the whole notice is written once (nothing when it was written before)."""
    addresses = list(dict.fromkeys(a for a in (to or [notice_address(organisation)]) if a))
    if not addresses:
        return []
    return _write(
        kind,
        addresses,
        organisation.locale,
        render(kind, organisation.locale, {"organisation": organisation, **(context or {})}),
        dedupe_keys=[f"{dedupe_key}:{a}" for a in addresses] if dedupe_key else None,
        organisation_id=organisation.id,
        contract_id=contract_id,
        is_notice=True,
        affects_contract=affects_contract,
    )


@dataclass(frozen=True)
class _MergeName:
    """An organisation in a mail merge: its name is filled in after rendering."""

    legal_name: str = "\x00organisation\x00"


def notify_many(
    organisations: Iterable[tuple[Organisation, list[str]]],
    kind: str,
    *,
    context: Mapping[str, Any],
) -> int:
    """The same notice to many organisations (R-61), e.g. new terms (R-60): rendered once per
    language with the organisation's name merged in, written with one multi-row INSERT.
    `organisations` pairs each organisation with its addresses. Returns the e-mails written."""
    merge = _MergeName()
    rendered: dict[str, tuple[str, str]] = {}
    now = clock.now()
    rows = []
    for organisation, addresses in organisations:
        locale = organisation.locale
        if locale not in rendered:
            rendered[locale] = render(kind, locale, {**context, "organisation": merge})
        subject, body = (
            text.replace(merge.legal_name, organisation.legal_name) for text in rendered[locale]
        )
        for address in dict.fromkeys(a for a in addresses if a):
            rows.append(
                {
                    "kind": kind,
                    "organisation_id": organisation.id,
                    "is_notice": True,
                    "affects_contract": False,
                    "sensitive": False,
                    "to_address": address,
                    "locale": locale,
                    "subject": subject[:300],
                    "body": body,
                    "message_id": _message_id(),
                    "created_at": now,
                    "next_attempt_at": now,
                    "attempts": 0,
                    "last_error": "",
                }
            )
    if rows:
        db.session.execute(sa.insert(OutboxEmail), rows)
    return len(rows)


def _message_id() -> str:
    """A new Message-ID on the sender's domain, fixed when the e-mail is written."""
    domain = current_app.config["MAIL_FROM"].rpartition("@")[2] or "portal.invalid"
    return f"<{secrets.token_hex(16)}@{domain}>"


def _write(
    kind: str,
    addresses: list[str],
    locale: str,
    rendered: tuple[str, str],
    *,
    dedupe_keys: list[str] | None,
    **columns: Any,
) -> list[OutboxEmail]:
    subject, body = rendered
    emails = [
        OutboxEmail(
            kind=kind,
            to_address=address,
            locale=locale,
            subject=subject[:300],
            body=body,
            message_id=_message_id(),
            dedupe_key=dedupe_keys[n] if dedupe_keys else None,
            **columns,
        )
        for n, address in enumerate(addresses)
    ]
    if dedupe_keys is None:
        db.session.add_all(emails)
        return emails
    begin_writing()
    try:
        with db.session.begin_nested():
            db.session.add_all(emails)
            db.session.flush()
    except IntegrityError:
        return []
    return emails


def notice_address(organisation: Organisation) -> str:
    """R-61: notices go to the registered e-mail address for contracts, else for billing."""
    return organisation.contract_contact_email or organisation.billing_email


def contract_notice_addresses(organisation: Organisation) -> list[str]:
    """Notices about a contract: the registered address and every active administrator."""
    return [notice_address(organisation), *administrator_addresses(organisation)]


def administrator_addresses(organisation: Organisation) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(User.email)
            .where(
                User.organisation_id == organisation.id,
                User.customer_role == CustomerRole.ADMINISTRATOR,
                User.active.is_(True),
            )
            .order_by(User.id)
        )
    )


def alert_staff(kind: str, context: Mapping[str, Any]) -> list[OutboxEmail]:
    """Alert the provider's staff at once (misuse reports): PORTAL_STAFF_ALERTS_TO, or every
    active support and administrator staff user, each in their language."""
    configured = [
        a.strip() for a in current_app.config["MAIL_STAFF_ALERTS_TO"].split(",") if a.strip()
    ]
    if configured:
        recipients = [(address, "ja", None) for address in configured]
    else:
        recipients = [
            (user.email, user.locale, user.id)
            for user in db.session.scalars(
                sa.select(User)
                .where(
                    User.kind == UserKind.STAFF,
                    User.staff_role.in_([StaffRole.SUPPORT, StaffRole.ADMINISTRATOR]),
                    User.active.is_(True),
                )
                .order_by(User.id)
            )
        ]
    written = []
    for address, locale, user_id in recipients:
        email = enqueue(kind, to=address, locale=locale, context=context, user_id=user_id)
        if email is not None:
            written.append(email)
    return written


@dataclass(frozen=True)
class Notice:
    """R-61: one notice as the organisation received it, with the e-mails written for it,
    one per recipient (the same subject and text, written together)."""

    emails: list[OutboxEmail]

    @property
    def first(self) -> OutboxEmail:
        return self.emails[0]

    @property
    def id(self) -> int:
        return self.first.id

    @property
    def kind(self) -> str:
        return self.first.kind

    @property
    def subject(self) -> str:
        return self.first.subject

    @property
    def body(self) -> str:
        return self.first.body

    @property
    def affects_contract(self) -> bool:
        return self.first.affects_contract

    @property
    def created_at(self) -> datetime:
        return self.first.created_at

    @property
    def to_addresses(self) -> list[str]:
        return [e.to_address for e in self.emails]

    @property
    def sent_at(self) -> datetime | None:
        """When the notice was first given: its first e-mail sent (R-61)."""
        sent = [e.sent_at for e in self.emails if e.sent_at is not None]
        return min(sent) if sent else None

    @property
    def failed_at(self) -> datetime | None:
        """Given up for a recipient and sent to nobody yet: the provider is looking into it."""
        failed = [e.failed_at for e in self.emails if e.failed_at is not None]
        return min(failed) if failed and self.sent_at is None else None


def _to_the_second(column: Any) -> Any:
    """An instant cut to the second. The e-mails of one notice are written in one
    transaction (notify_many gives them one instant; _write's column default, instants a few
    microseconds apart), so the second they were written in, with their subject and text,
    tells them apart from another notice."""
    if db.session.get_bind().dialect.name == "sqlite":
        return sa.func.strftime("%Y-%m-%d %H:%M:%S", column)
    return sa.func.date_trunc("second", column)


def _same_notice(columns: Any, bucket: Any) -> list[Any]:
    """The e-mails of one notice: the same kind, subject, text, contract and second."""
    return [
        OutboxEmail.kind == columns.kind,
        OutboxEmail.subject == columns.subject,
        OutboxEmail.body == columns.body,
        OutboxEmail.contract_id.is_not_distinct_from(columns.contract_id),
        OutboxEmail.affects_contract == columns.affects_contract,
        _to_the_second(OutboxEmail.created_at) == bucket,
    ]


NOTICES_PER_PAGE = 50


def _kept_notices(organisation_id: int) -> tuple[Any, ...]:
    return (OutboxEmail.organisation_id == organisation_id, OutboxEmail.is_notice.is_(True))


def _notice_groups(organisation_id: int) -> sa.Select[Any]:
    """One row per notice (its e-mails grouped, _same_notice), newest first."""
    bucket = _to_the_second(OutboxEmail.created_at)
    key = (
        OutboxEmail.kind,
        OutboxEmail.subject,
        OutboxEmail.body,
        OutboxEmail.contract_id,
        OutboxEmail.affects_contract,
    )
    first_id = sa.func.min(OutboxEmail.id).label("first_id")
    written = sa.func.max(OutboxEmail.created_at).label("written")
    return (
        sa.select(first_id, written, *key, bucket.label("bucket"))
        .where(*_kept_notices(organisation_id))
        .group_by(*key, bucket)
        .order_by(written.desc(), first_id.desc())
    )


def notices_page(organisation_id: int, page: int) -> Page[Notice]:
    """R-61, issue 15: one page of the organisation's notices (counted as notices)."""
    groups = _notice_groups(organisation_id).order_by(None).subquery()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(groups)) or 0
    return paginate_counted(
        total,
        page,
        NOTICES_PER_PAGE,
        lambda limit, offset: notices_of(organisation_id, limit=limit, offset=offset),
    )


def notices_of(organisation_id: int, *, limit: int = 50, offset: int = 0) -> list[Notice]:
    """R-61: the notices sent (or waiting to be sent) to an organisation, newest first; each
    notice once, with all its recipients (a page of `limit` notices, not e-mails)."""
    kept = _kept_notices(organisation_id)
    page = _notice_groups(organisation_id).limit(limit).offset(offset).subquery()
    found = db.session.execute(
        sa.select(OutboxEmail, page.c.first_id)
        .join(page, sa.and_(*_same_notice(page.c, page.c.bucket)))
        .where(*kept)
        .order_by(page.c.written.desc(), page.c.first_id.desc(), OutboxEmail.id)
    ).all()
    notices: dict[int, list[OutboxEmail]] = {}
    for email, group in found:
        notices.setdefault(group, []).append(email)
    return [Notice(emails) for emails in notices.values()]


def notice_containing(email: OutboxEmail) -> Notice:
    """The notice one of its e-mails belongs to, with its other recipients."""
    this = aliased(OutboxEmail)
    bucket = sa.select(_to_the_second(this.created_at)).where(this.id == email.id)
    emails = db.session.scalars(
        sa.select(OutboxEmail)
        .where(
            OutboxEmail.organisation_id == email.organisation_id,
            OutboxEmail.is_notice.is_(True),
            *_same_notice(email, bucket.scalar_subquery()),
        )
        .order_by(OutboxEmail.id)
    ).all()
    return Notice(list(emails) or [email])


@dataclass
class QueueState:
    waiting: int
    failing: int  # waiting, after at least one failed attempt
    given_up: Page[OutboxEmail]  # one page of them; .total counts all
    oldest_waiting: datetime | None


GIVEN_UP_PER_PAGE = 50


def queue_state(*, page: int = 1) -> QueueState:
    """For staff: how many e-mails wait, how many keep failing, and those given up (the most
    recently given up first, by page)."""
    unsent = sa.and_(OutboxEmail.sent_at.is_(None), OutboxEmail.failed_at.is_(None))
    waiting, failing, oldest = db.session.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(OutboxEmail.attempts > 0),
            sa.func.min(OutboxEmail.created_at),
        ).where(unsent)
    ).one()
    given_up = paginate(
        sa.select(OutboxEmail)
        .where(OutboxEmail.failed_at.is_not(None), OutboxEmail.sent_at.is_(None))
        .order_by(OutboxEmail.failed_at.desc(), OutboxEmail.id.desc()),
        page,
        GIVEN_UP_PER_PAGE,
    )
    return QueueState(waiting, failing, given_up, oldest)
