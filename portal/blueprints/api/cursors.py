"""GET /api/v1/contracts by cursor (issue 15): `limit` (1..100, default 50) and `cursor`, the
`next_cursor` of the previous answer.

Why a cursor and not page numbers (as the card endpoints have): contracts are listed by
organisation and service start, and a new contract can land anywhere in that order while a
client walks the list; an offset would then show a contract twice or skip one. The cursor
holds the position of the last contract sent (its organisation, service start and id, none of
which ever changes), so the next page starts right after it: every contract that exists for
the whole walk comes exactly once, and each page is a range of an index, not an OFFSET.

The cursor is opaque to clients (base64url); they send back what they got. A cursor that is
not in the documented alphabet is a bad request (400); one in it that the API did not make is
refused with 422 (`invalid_cursor`). Neither reveals anything: a made-up cursor only moves
within the contracts the token's user may see.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import date

from flask import request
from flask_babel import gettext as _

from portal.blueprints.api.errors import ApiError, bad_request

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
CURSOR_PATTERN = "^[A-Za-z0-9_-]{1,64}$"
_CURSOR = re.compile(CURSOR_PATTERN)
_PAYLOAD = re.compile(r"^v1\.([0-9]{1,10})\.([0-9]{4}-[0-9]{2}-[0-9]{2})\.([0-9]{1,10})$")
_MAX_ID = 2**31 - 1  # ids are the database's integers


@dataclass(frozen=True)
class ContractKey:
    """Where a contract stands in the list's order."""

    organisation_id: int
    service_start: date
    contract_id: int


def limit() -> int:
    raw = request.args.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and 1 <= int(raw) <= MAX_LIMIT):
        raise bad_request(_("Give a whole number from 1 to %(top)s.", top=MAX_LIMIT), field="limit")
    return int(raw)


def encode(key: ContractKey) -> str:
    payload = f"v1.{key.organisation_id}.{key.service_start.isoformat()}.{key.contract_id}"
    return base64.urlsafe_b64encode(payload.encode("ascii")).decode("ascii").rstrip("=")


def after() -> ContractKey | None:
    """The position `cursor` names, or None for the first page."""
    raw = request.args.get("cursor")
    if raw is None:
        return None
    if not _CURSOR.match(raw):
        raise bad_request(_("This is not a cursor from this list."), field="cursor")
    try:
        payload = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
        found = _PAYLOAD.match(payload)
        if found is None:
            raise ValueError(payload)
        organisation_id, contract_id = int(found[1]), int(found[3])
        start = date.fromisoformat(found[2])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _not_ours() from None
    if not (1 <= organisation_id <= _MAX_ID and 1 <= contract_id <= _MAX_ID):
        raise _not_ours()
    return ContractKey(organisation_id, start, contract_id)


def _not_ours() -> ApiError:
    return ApiError(
        422,
        "invalid_cursor",
        _("This is not a cursor from this list. Send the next_cursor of the previous answer."),
        field="cursor",
    )
