"""Long lists by page: `?page=` read safely, one COUNT and one LIMIT/OFFSET statement.

Issue 15: a list that grows without bound (contracts, invoices, notices, the staff's queues)
shows a fixed number of rows per page, so that its cost stays the same however long it gets.
The controls are the `pager` macro in templates/_macros.html (previous / next, "page N of M",
"showing 21–40 of 95", the other query parameters kept).

Flask-SQLAlchemy's `db.paginate` does the same two statements, but it runs the page before the
count (a page past the end comes back empty, where we show the last page), reads `per_page`
from the request and answers 404 for a bad page; and notices are counted as groups of
e-mails, which it cannot do. Hence this small module. Each list's statement must be ordered
to the last key (an id), so that no row is on two pages or on none.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from portal.extensions import db

T = TypeVar("T")
U = TypeVar("U")

# A page number of more digits than this is "past the end" (the last page), and never reaches
# the database as an OFFSET.
_MAX_DIGITS = 9
PAST_THE_END = 10**_MAX_DIGITS


def page_number(args: Mapping[str, str], name: str = "page") -> int:
    """The page asked for, from 1: anything that is not a plain whole number (missing, empty,
    a word, negative, with NUL or full-width digits) is page 1; 0 is page 1; a number too long
    for a page is PAST_THE_END, which `paginate` turns into the last page."""
    raw = (args.get(name) or "").strip()
    if not raw or not raw.isascii() or not raw.isdigit():
        return 1
    if len(raw.lstrip("0")) > _MAX_DIGITS:
        return PAST_THE_END
    return max(1, int(raw))


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, which page it is (1..pages), and the whole list's size."""

    items: list[T]
    number: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first(self) -> int:
        """The position of the page's first item in the whole list, from 1 (0 when empty)."""
        return (self.number - 1) * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def map(self, convert: Callable[[list[T]], list[U]]) -> Page[U]:
        """The same page with its items converted (all at once: one statement for the page)."""
        return Page(convert(self.items), self.number, self.per_page, self.total)


def _within(page: int, total: int, per_page: int) -> int:
    return min(max(page, 1), max(1, math.ceil(total / per_page)))


def paginate(statement: sa.Select[Any], page: int, per_page: int) -> Page[Any]:
    """Page `page` (kept within 1..the last page) of an ordered statement of one entity or
    column: a COUNT of the whole statement, then its rows of that page."""
    if per_page < 1:
        raise ValueError("per_page must be at least 1")
    counted = sa.select(sa.func.count()).select_from(statement.order_by(None).subquery())
    total = db.session.scalar(counted) or 0
    number = _within(page, total, per_page)
    items: list[Any] = []
    if total:
        items = list(db.session.scalars(statement.limit(per_page).offset((number - 1) * per_page)))
    return Page(items, number, per_page, total)


def paginate_counted(
    total: int, page: int, per_page: int, fetch: Callable[[int, int], list[T]]
) -> Page[T]:
    """The same for a list that is not one statement's rows (e.g. notices, each a group of
    e-mails): `total` counted by the caller, `fetch(limit, offset)` reads one page."""
    number = _within(page, total, per_page)
    items = fetch(per_page, (number - 1) * per_page) if total else []
    return Page(items, number, per_page, total)
