"""An agent's worklist: every client, with what needs doing soonest across its contracts.

Built from what the agent's home page collects (home.agent_items): notice deadlines (R-05),
agency renewal application due dates (R-06), pending requests with their effective date
(R-23) and, for sales agents only, overdue invoices with the amount due (R-33, R-44). R-71:
an agency never sees an amount, on the page or in the CSV.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from flask_babel import ngettext

from portal.domain.deadlines import DeadlineKind
from portal.domain.quotes import RequestKind
from portal.models import Organisation
from portal.permissions import Actor, can_see_fees
from portal.services import home
from portal.services.home import DeadlineItem, Overdue
from portal.spreadsheet import safe_cell

SHOWN = 200  # clients the page shows (a search narrows them; the CSV has them all)
ITEMS_SHOWN = 5  # items of one client the page shows


@dataclass(frozen=True)
class WorkItem:
    """One thing to do: a deadline of a contract, or the client's overdue invoices."""

    on: date  # the deadline, or the due date of the oldest overdue invoice
    days_left: int  # negative: overdue by that many days
    deadline: DeadlineItem | None = None
    overdue: Overdue | None = None


@dataclass
class WorklistRow:
    organisation: Organisation
    items: list[WorkItem]  # soonest first

    @property
    def next(self) -> WorkItem | None:
        return self.items[0] if self.items else None

    @property
    def items_shown(self) -> list[WorkItem]:
        return self.items[:ITEMS_SHOWN]

    @property
    def more_items(self) -> int:
        return max(0, len(self.items) - ITEMS_SHOWN)


@dataclass
class Worklist:
    query: str
    rows: list[WorklistRow]  # the most urgent first, clients with nothing to do last
    with_amounts: bool  # sales agents; never agencies

    @property
    def rows_shown(self) -> list[WorklistRow]:
        return self.rows[:SHOWN]

    @property
    def more_rows(self) -> int:
        return max(0, len(self.rows) - SHOWN)


def for_agent(actor: Actor, *, today: date, query: str = "") -> Worklist:
    """R-71: one row per client matching the search, the most urgent first (overdue invoices
    before any deadline, then the earliest date); clients with nothing to do after, by kana
    reading, as are clients whose next item falls on the same day."""
    collected = home.agent_items(actor, today=today, query=query)
    items: dict[int, list[WorkItem]] = {o.id: [] for o in collected.clients}
    for late in collected.overdue.values():
        oldest = late.oldest
        items[oldest.invoice.organisation_id].append(
            WorkItem(oldest.invoice.due_on, -oldest.days_overdue, overdue=late)
        )
    for found in collected.deadlines:  # soonest first, so each client's list stays sorted
        deadline = found.deadline
        items[found.contract.organisation_id].append(
            WorkItem(deadline.on, deadline.days_left, deadline=found)
        )
    rows = [WorklistRow(o, items[o.id]) for o in collected.clients]
    # sorted() is stable: the kana reading order of _clients breaks ties.
    rows = sorted(rows, key=lambda r: (r.next is None, r.next.on if r.next else date.max))
    return Worklist(query=query, rows=rows, with_amounts=can_see_fees(actor))


# --- the CSV ---------------------------------------------------------------------------------


def _request_kind(kind: RequestKind | None) -> str:
    return {
        RequestKind.UPGRADE: _("Upgrade"),
        RequestKind.DOWNGRADE: _("Downgrade"),
        RequestKind.CANCELLATION: _("Cancellation"),
        RequestKind.NON_RENEWAL: _("Notice against renewal"),
        RequestKind.AGENCY_RENEWAL: _("Agency renewal application"),
    }.get(kind, str(kind or ""))


def item_text(item: WorkItem) -> str:
    """What is to be done, in words (the date is a column of its own)."""
    if item.overdue is not None:
        count = item.overdue.count
        return ngettext("%(num)d invoice is overdue", "%(num)d invoices are overdue", count)
    assert item.deadline is not None
    deadline = item.deadline.deadline
    if deadline.kind == DeadlineKind.RENEWAL_NOTICE:
        return _("Last day for notice against renewal")
    if deadline.kind == DeadlineKind.AGENCY_RENEWAL:
        return _("Renewal application due")
    return _("Pending request: %(kind)s", kind=_request_kind(deadline.request_kind))


def _contract_text(item: WorkItem, locale: str) -> str:
    if item.deadline is None:
        return ""
    contract = item.deadline.contract
    return _(
        "%(service)s · %(plan)s (contract no. %(id)d)",
        service=contract.service.name(locale),
        plan=contract.plan.name(locale),
        id=contract.id,
    )


def csv_text(worklist: Worklist, locale: str) -> str:
    """The whole worklist as CSV for Excel in Japan (UTF-8 with a BOM), one row per client.
    An agency's file has no invoice column at all (R-71)."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)  # RFC 4180: CRLF line ends, quotes where needed
    header = [
        _("Client"),
        _("Name in kana"),
        _("Most urgent"),
        _("Contract"),
        _("Date"),
        _("Days left (negative: overdue)"),
        _("Other items"),
    ]
    if worklist.with_amounts:
        header += [_("Overdue invoices"), _("Amount due (tax included, yen)")]
    writer.writerow(header)
    for row in worklist.rows:
        org = row.organisation
        first = row.next
        cells: list[object] = [
            safe_cell(org.legal_name),
            safe_cell(org.legal_name_kana or ""),
            safe_cell(item_text(first)) if first else "",
            safe_cell(_contract_text(first, locale)) if first else "",
            first.on.isoformat() if first else "",
            first.days_left if first else "",
            max(0, len(row.items) - 1),
        ]
        if worklist.with_amounts:
            late = next((i.overdue for i in row.items if i.overdue is not None), None)
            cells += [late.count if late else 0, late.amount_due if late else 0]
        writer.writerow(cells)
    return buffer.getvalue()
