"""The customer's registered information and its history (R-62).

Administrators, and agents for their clients, change the company name, address, contacts,
billing e-mail, phone and the language of documents. Each changed field keeps who, when, old
and new; a change of e-mail address is announced to the old and the new address, any other
change to the notice address (R-61). Issued invoices keep the recipient they were issued
with (their snapshot is taken in portal.services.invoicing).

A form says which values it was based on. The update is conditional on the database still
holding those values, so two submissions at once record the change once and a form made
stale by someone else's change is refused with the values as they are now.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from portal.clock import clock
from portal.extensions import db
from portal.models import Organisation, OrganisationChange, PartnerCompany, User
from portal.paging import Page, paginate_counted
from portal.permissions import Actor, can_change_information
from portal.services import audit, mail
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.transaction import begin_writing

# The registered information, in the order the page shows it.
FIELDS: tuple[str, ...] = (
    "legal_name",
    "legal_name_kana",
    "postal_code",
    "address",
    "phone",
    "billing_email",
    "contract_contact_name",
    "contract_contact_email",
    "operations_contact_name",
    "operations_contact_email",
    "locale",
)
EMAIL_FIELDS = frozenset({"billing_email", "contract_contact_email", "operations_contact_email"})
REQUIRED = frozenset({"legal_name", "billing_email", "locale"})
LANGUAGES = {"ja": "日本語", "en": "English"}

FIELD_LABELS = {
    "legal_name": _l("Company name"),
    "legal_name_kana": _l("Company name (kana)"),
    "postal_code": _l("Postal code"),
    "address": _l("Address"),
    "phone": _l("Phone"),
    "billing_email": _l("Billing e-mail"),
    "contract_contact_name": _l("Contract contact"),
    "contract_contact_email": _l("Contract contact e-mail"),
    "operations_contact_name": _l("Operations contact"),
    "operations_contact_email": _l("Operations contact e-mail"),
    "locale": _l("Language of documents and e-mails"),
}

_DASHES = re.compile(r"[‐‑‒–—―−ーｰ－﹣]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_POSTAL_CODE = re.compile(r"^(\d{3})-?(\d{4})$")
_PHONE = re.compile(r"^\+?[0-9()\- ]+$")
_KANJI = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Hiragana to katakana: readings are kept in katakana, so that they sort in reading order.
_TO_KATAKANA = {c: c + 0x60 for c in (*range(0x3041, 0x3097), 0x309D, 0x309E)}


def label(field: str) -> str:
    return str(FIELD_LABELS.get(field, field))


def shown(field: str, value: str) -> str:
    """A stored value as people read it (the language by its name)."""
    return LANGUAGES.get(value, value) if field == "locale" else value


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str
    new: str

    @property
    def label(self) -> str:
        return label(self.field)

    @property
    def old_shown(self) -> str:
        return shown(self.field, self.old)

    @property
    def new_shown(self) -> str:
        return shown(self.field, self.new)


class InvalidInformation(PortalError):
    """Input the rules refuse, with a message for each field concerned."""

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        super().__init__(message, field=field)
        self.errors = errors


class StaleInformation(Conflict):
    """The form was based on values someone else has changed meanwhile."""

    def __init__(
        self,
        message: str,
        *,
        current: dict[str, str],
        changes: list[FieldChange],
        conflicting: list[str],
    ) -> None:
        super().__init__(message)
        self.current = current  # the registered information as it is now
        self.changes = changes  # what the refused form meant to change
        self.conflicting = conflicting  # fields changed both by the form and meanwhile


def registered(organisation: Organisation) -> dict[str, str]:
    """The registered information as the form shows it."""
    return {field: getattr(organisation, field) or "" for field in FIELDS}


def fingerprint(values: Mapping[str, str]) -> str:
    """What a form carries to say which values it was based on."""
    return json.dumps({field: values[field] for field in FIELDS}, ensure_ascii=False)


def parse_base(text: str | None) -> dict[str, str] | None:
    """The values a form was based on, or None when it does not say (or says it wrongly)."""
    try:
        values = json.loads(text or "")
    except ValueError:
        return None
    if not isinstance(values, dict) or not all(isinstance(values.get(f), str) for f in FIELDS):
        return None
    return {field: values[field] for field in FIELDS}


# --- the rules for each field ---------------------------------------------------------------


def _max_length(field: str) -> int:
    return Organisation.__table__.c[field].type.length


def _text(value: str) -> str:
    return _CONTROL.sub(" ", value).strip()


def _postal_code(value: str) -> str:
    """R-62: NNN-NNNN, from full-width digits, without a hyphen or with any kind of dash."""
    text = _DASHES.sub("-", unicodedata.normalize("NFKC", value)).replace("〒", "")
    match = _POSTAL_CODE.match(text.replace(" ", ""))
    if match is None:
        raise ValueError(_("Enter the postal code as seven digits, e.g. 100-0001."))
    return f"{match[1]}-{match[2]}"


def _phone(value: str) -> str:
    text = " ".join(_DASHES.sub("-", unicodedata.normalize("NFKC", value)).split())
    digits = sum(c.isdigit() for c in text)
    if not _PHONE.match(text) or "+" in text[1:] or not 10 <= digits <= 15:
        raise ValueError(
            _("Enter the phone number in digits, hyphens, + and parentheses, e.g. 03-1234-5678.")
        )
    return text


def kana_reading(value: str) -> str:
    """The company name's reading as kept: full-width katakana (from half-width kana or
    hiragana too), never kanji, so that organisations sort by their reading."""
    text = _text(unicodedata.normalize("NFKC", value)).translate(_TO_KATAKANA)
    if _KANJI.search(text):
        raise ValueError(_("Write the company name in kana, without kanji."))
    return text


def _email(value: str) -> str:
    text = value.strip().lower()
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        raise ValueError(_("Enter a valid e-mail address.")) from None
    return text


def _locale(value: str) -> str:
    if value not in LANGUAGES:
        raise ValueError(_("Choose Japanese or English."))
    return value


_RULES = {
    "legal_name_kana": kana_reading,
    "postal_code": _postal_code,
    "phone": _phone,
    "billing_email": _email,
    "contract_contact_email": _email,
    "operations_contact_email": _email,
    "locale": _locale,
}


def normalise(
    submitted: Mapping[str, str | None], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Each field as it will be stored, or InvalidInformation with a message per field.

    A field sent back exactly as registered is kept as it is, without the rules, so that
    information entered before the rules (at onboarding) does not block other changes.
    """
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for field in FIELDS:
        raw = submitted.get(field) or ""
        if base is not None and raw.strip() == base[field]:
            values[field] = base[field]
            continue
        text = _text(raw)
        if not text:
            if field in REQUIRED:
                errors[field] = _("This field is required.")
            values[field] = ""
            continue
        try:
            value = _RULES.get(field, _text)(text)
        except ValueError as exc:
            errors[field] = str(exc)
            continue
        if len(value) > _max_length(field):
            errors[field] = _("Use at most %(max)d characters.", max=_max_length(field))
            continue
        values[field] = value
    if errors:
        raise InvalidInformation(errors)
    return values


def diff(base: Mapping[str, str], new: Mapping[str, str]) -> list[FieldChange]:
    return [FieldChange(f, base[f], new[f]) for f in FIELDS if base[f] != new[f]]


# --- the change -----------------------------------------------------------------------------


def change(
    actor: Actor,
    organisation: Organisation,
    submitted: Mapping[str, str | None],
    *,
    based_on: Mapping[str, str] | None,
    ip: str = "",
) -> list[FieldChange]:
    """Change the registered information from a form based on `based_on` (R-62).

    Returns the fields changed: none when the form changed nothing, or when exactly this
    change was made meanwhile (the same form sent twice). Raises StaleInformation when a
    field the form changes no longer holds the value the form was based on.
    """
    if not can_change_information(actor):
        raise NotAllowed(_("Only administrators and agents change the registered information."))
    new = normalise(submitted, based_on)
    if based_on is None:
        current = _current(organisation.id)
        raise StaleInformation(
            _("The form did not say what it was based on. Check the values and save again."),
            current=current,
            changes=diff(current, new),
            conflicting=[],
        )
    changes = diff(based_on, new)
    if not changes:
        return []
    begin_writing()
    # The database decides: the row changes only while it still holds what the form saw.
    updated = db.session.execute(
        sa.update(Organisation)
        .where(Organisation.id == organisation.id)
        .where(*(getattr(Organisation, c.field) == c.old for c in changes))
        .values({c.field: c.new for c in changes})
        .execution_options(synchronize_session=False)
    ).rowcount
    if updated != 1:
        current = _current(organisation.id)
        if all(current[c.field] == c.new for c in changes):
            return []  # the same change, made meanwhile (a second click): nothing to record
        raise StaleInformation(
            _(
                "Someone changed the information while you were editing it. It is shown as it "
                "is now, with your changes; check them and save again."
            ),
            current=current,
            changes=changes,
            conflicting=[c.field for c in changes if current[c.field] != c.old],
        )
    db.session.expire(organisation)
    now = clock.now()
    entry_id = actor.entry.id if actor.is_agent_entry and actor.entry else None
    db.session.add_all(
        OrganisationChange(
            organisation_id=organisation.id,
            field=c.field,
            old_value=c.old,
            new_value=c.new,
            changed_at=now,
            user_id=actor.user.id,
            entry_id=entry_id,
        )
        for c in changes
    )
    audit.record(
        "organisation_information_changed",
        actor=actor,
        organisation_id=organisation.id,
        subject=organisation,
        ip=ip,
        fields=[c.field for c in changes],
    )
    _announce(organisation, changes, changed_by=who(actor.user), changed_at=now)
    return changes


def _current(organisation_id: int) -> dict[str, str]:
    """The registered information as committed now (not as this session remembers it)."""
    columns = [getattr(Organisation, field) for field in FIELDS]
    row = db.session.execute(sa.select(*columns).where(Organisation.id == organisation_id)).one()
    return {field: value or "" for field, value in zip(FIELDS, row, strict=True)}


def _announce(
    organisation: Organisation, changes: list[FieldChange], *, changed_by: str, changed_at: datetime
) -> None:
    """R-61/R-62: a new e-mail address is announced to the old and the new address; other
    changes to the notice address. Both in the organisation's (possibly new) language."""
    context = {"changed_by": changed_by, "changed_at": changed_at}
    emails = [c for c in changes if c.field in EMAIL_FIELDS]
    others = [c for c in changes if c.field not in EMAIL_FIELDS]
    if emails:
        addresses = [address for c in emails for address in (c.old, c.new)]
        mail.notify_organisation(
            organisation, "email_changed", to=addresses, context={**context, "changes": emails}
        )
    if others:
        mail.notify_organisation(
            organisation, "information_changed", context={**context, "changes": others}
        )


def who(user: User) -> str:
    """A person as the history names them: an agent always with its partner company (R-71)."""
    return f"{user.name} ({user.partner.name})" if user.partner is not None else user.name


# --- the history ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    changed_at: datetime
    who: str
    by_agent: bool
    change: FieldChange


HISTORY_PER_PAGE = 50


def history_page(organisation: Organisation, page: int) -> Page[HistoryRow]:
    """R-62, issue 15: one page of the history, newest first."""
    total = (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(OrganisationChange)
            .where(OrganisationChange.organisation_id == organisation.id)
        )
        or 0
    )
    return paginate_counted(
        total,
        page,
        HISTORY_PER_PAGE,
        lambda limit, offset: history(organisation, limit=limit, offset=offset),
    )


def history(organisation: Organisation, *, limit: int = 50, offset: int = 0) -> list[HistoryRow]:
    """R-62: every change of the registered information, newest first."""
    query = (
        sa.select(OrganisationChange, User.name, PartnerCompany.name)
        .join(User, User.id == OrganisationChange.user_id)
        .outerjoin(PartnerCompany, PartnerCompany.id == User.partner_id)
        .where(OrganisationChange.organisation_id == organisation.id)
        .order_by(OrganisationChange.changed_at.desc(), OrganisationChange.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [
        HistoryRow(
            changed_at=row.changed_at,
            who=f"{name} ({partner})" if partner else name,
            by_agent=partner is not None or row.entry_id is not None,
            change=FieldChange(row.field, row.old_value, row.new_value),
        )
        for row, name, partner in db.session.execute(query)
    ]
