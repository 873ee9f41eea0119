"""The PDF of a request's quote, confirmation or withdrawal: plan change, cancellation, renewal.

`render_request_pdf()` sets out everything a `Quote` holds for its kind (dates, charges, tax
per rate, the invoice that will carry them) with the provider, the customer and who made the
request from where (R-20 reading, R-32). A withdrawal (R-23) is its own document: what was
withdrawn, by whom and when, and that nothing is billed. It takes plain values only, so the
same input renders the same bytes, and an agency's copy can leave out every amount (R-71).
Rule IDs stay in this code: the customer reads what each rule says, never its number.

Strings go through Flask-Babel in the document's locale; the caller renders within an app
context (it may also wrap the call in `force_locale`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from io import BytesIO
from xml.sax.saxutils import escape

from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from portal.documents.common import GRID as _GRID
from portal.documents.common import (
    LOCALES,
    billing_month_parts,
    format_day,
    format_instant,
    format_rate,
    format_yen,
)
from portal.documents.common import MARGIN as _MARGIN
from portal.documents.common import MUTED as _MUTED
from portal.documents.common import PAGE as _PAGE
from portal.documents.common import SHADE as _SHADE
from portal.documents.common import WIDTH as _WIDTH
from portal.documents.fonts import register_fonts
from portal.domain.calendar import BillingMonth
from portal.domain.quotes import Charge, ChargeKind, Quote, RequestKind

_KIND_LABELS = {
    RequestKind.UPGRADE: _l("Plan upgrade"),
    RequestKind.DOWNGRADE: _l("Plan downgrade"),
    RequestKind.CANCELLATION: _l("Cancellation"),
    RequestKind.NON_RENEWAL: _l("Notice against renewal"),
    RequestKind.AGENCY_RENEWAL: _l("Agency renewal application"),
}


@dataclass(frozen=True)
class RequestDocument:
    """What the PDF of one request shows: plain values, already loaded and scoped."""

    locale: str  # "ja" or "en"
    is_confirmation: bool  # False: a quote only; True: the confirmed request
    issued_at: datetime  # aware; printed in Tokyo time
    provider_name: str
    provider_registration_number: str  # "T" + 13 digits
    provider_address: str
    organisation_name: str
    contract_id: int
    service_name: str
    current_plan_name: str
    requested_by: str
    quote: Quote
    target_plan_name: str | None = None
    reference: str | None = None  # the confirmed request's reference, e.g. "R-000123"
    acting_agent: str | None = None  # the agent who acted for the customer, if one did
    requested_from: str | None = None  # IP address the request came from (R-20 reading)
    show_amounts: bool = True  # False for agencies, who never see fees
    # A withdrawal: issued_at is when it was withdrawn; who withdrew it.
    withdrawn_by: str | None = None
    withdrawing_agent: str | None = None  # the agent who withdrew it for the customer

    def __post_init__(self) -> None:
        if self.locale not in LOCALES:
            raise ValueError(f"locale must be one of {LOCALES}, got {self.locale!r}")
        if self.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")
        if self.is_confirmation and not self.reference:
            raise ValueError("a confirmation needs the request's reference")
        if self.withdrawn_by and not self.is_confirmation:
            raise ValueError("only a confirmed request can be withdrawn")

    @property
    def is_withdrawal(self) -> bool:
        return self.withdrawn_by is not None

    @property
    def amounts(self) -> bool:
        """Whether amounts are printed: a withdrawal bills nothing, so it prints none."""
        return self.show_amounts and not self.is_withdrawal


# --- the document -----------------------------------------------------------------------


def render_request_pdf(doc: RequestDocument) -> bytes:
    """The A4 PDF of a request's quote (R-32), confirmation or withdrawal (R-23), in
    `doc.locale`.

    The same document gives the same bytes (reportlab's invariant mode fixes the timestamps
    and the file id), so a stored copy can be checked against a new rendering.
    """
    font = register_fonts()
    with force_locale(doc.locale):
        return _Renderer(doc, font).render()


# A fact: its label and its value, one row of a two-column table.
Fact = tuple[str, str]


class _Renderer:
    def __init__(self, doc: RequestDocument, font: str) -> None:
        self.doc = doc
        self.quote = doc.quote
        self.font = font
        wrap = "CJK" if doc.locale == "ja" else None
        self.body = ParagraphStyle("body", fontName=font, fontSize=9, leading=13, wordWrap=wrap)
        self.right = ParagraphStyle("right", parent=self.body, alignment=2)
        self.strong = ParagraphStyle("strong", parent=self.body, fontSize=10.5, leading=15)
        self.strong_right = ParagraphStyle("strong_right", parent=self.strong, alignment=2)
        self.small = ParagraphStyle(
            "small", parent=self.body, fontSize=7, leading=9, textColor=_MUTED
        )
        self.title = ParagraphStyle(
            "title", parent=self.body, fontSize=16, leading=22, spaceAfter=2
        )
        self.heading = ParagraphStyle(
            "heading", parent=self.body, fontSize=11, leading=15, spaceBefore=10, spaceAfter=4
        )

    # -- helpers --

    def p(self, text: object, style: ParagraphStyle | None = None) -> Paragraph:
        """A paragraph of plain text: user and translated text is escaped, never markup."""
        lines = str(text).split("\n")
        return Paragraph("<br/>".join(escape(line) for line in lines), style or self.body)

    def day(self, value: date) -> str:
        return format_day(value, self.doc.locale)

    def month_name(self, name: str) -> str:
        """R-02: "2027年2月度" in Japanese, "billing month 2027-02" in English."""
        first = date(int(name[:4]), int(name[5:7]), 1)  # the days are not part of the name
        return billing_month_parts(name, first, first, self.doc.locale)[0]

    def month(self, value: BillingMonth) -> str:
        name, days = billing_month_parts(value.name, value.start, value.end, self.doc.locale)
        return f"{name} {days}" if self.doc.locale == "en" else f"{name}{days}"

    def months(self, count: int) -> str:
        return ngettext("%(num)d billing month", "%(num)d billing months", count)

    def table(
        self, rows: list[list[Flowable]], widths: list[float], extra: list | None = None
    ) -> Table:
        table = Table(rows, colWidths=widths, hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), self.font),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LINEBELOW", (0, 0), (-1, -1), 0.4, _GRID),
                    ("TOPPADDING", (0, 0), (-1, -1), 3),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                    *(extra or []),
                ]
            )
        )
        return table

    def facts(self, rows: list[Fact]) -> Table:
        """Label and value, one fact a row."""
        label_width = 72 * mm
        return self.table(
            [[self.p(label), self.p(value)] for label, value in rows],
            [label_width, _WIDTH - label_width],
            [("BACKGROUND", (0, 0), (0, -1), _SHADE)],
        )

    # -- parts --

    def heading_text(self) -> str:
        kind = str(_KIND_LABELS[self.quote.kind])
        if self.doc.is_withdrawal:
            return _("Withdrawal of a request: %(kind)s", kind=kind)
        if self.doc.is_confirmation:
            return _("Request confirmation: %(kind)s", kind=kind)
        return _("Quote: %(kind)s", kind=kind)

    def header(self) -> list[Flowable]:
        doc = self.doc
        provider = "\n".join(
            [
                doc.provider_name,
                _("Registration number: %(number)s", number=doc.provider_registration_number),
                doc.provider_address,
            ]
        )
        if doc.is_withdrawal:
            when = _("Withdrawal received")
        elif doc.is_confirmation:
            when = _("Request received")
        else:
            when = _("Issued")
        meta: list[Fact] = [(when, format_instant(doc.issued_at, doc.locale))]
        if doc.reference:
            meta.append((_("Reference"), doc.reference))
        top = Table(
            [[self.p(self.heading_text(), self.title), self.p(provider)]],
            colWidths=[_WIDTH * 0.58, _WIDTH * 0.42],
            hAlign="LEFT",
        )
        top.setStyle(
            TableStyle(
                [
                    ("FONTNAME", (0, 0), (-1, -1), self.font),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (0, -1), 0),
                    ("RIGHTPADDING", (-1, 0), (-1, -1), 0),
                ]
            )
        )
        return [top, Spacer(1, 4 * mm), self.facts(meta)]

    def customer(self) -> list[Flowable]:
        doc = self.doc
        rows: list[Fact] = [
            (_("Customer"), doc.organisation_name),
            (_("Contract"), _("Contract no. %(id)d", id=doc.contract_id)),
            (_("Service"), doc.service_name),
            (_("Current plan"), doc.current_plan_name),
        ]
        if doc.target_plan_name:
            rows.append((_("New plan"), doc.target_plan_name))
        if doc.is_confirmation:
            rows.append((_("Requested by"), doc.requested_by))
        else:
            rows.append((_("Quote requested by"), doc.requested_by))
        if doc.acting_agent:
            rows.append((_("Made by an agent for the customer"), doc.acting_agent))
        if doc.requested_from:
            rows.append((_("IP address of the request"), doc.requested_from))
        if doc.withdrawn_by:
            rows.append((_("Withdrawn by"), doc.withdrawn_by))
        if doc.withdrawing_agent:
            rows.append((_("Withdrawn by an agent for the customer"), doc.withdrawing_agent))
        return [self.p(_("Customer and contract"), self.heading), self.facts(rows)]

    def dates(self) -> list[Flowable]:
        q = self.quote
        rows: list[Fact] = [(_("Notice date (request received)"), self.day(q.notice_on))]
        rows.extend(_KIND_DATES[q.kind](self))
        if self.doc.is_withdrawal:
            heading = _("The request withdrawn: what would have happened")
        else:
            heading = _("Dates and terms")
        return [self.p(heading, self.heading), self.facts(rows)]

    def _upgrade_dates(self) -> list[Fact]:
        q = self.quote
        rows = [(_("The new plan applies from"), self.day(q.effective_on))]
        if q.earliest_effective_on:
            rows.append((_("Earliest possible date"), self.day(q.earliest_effective_on)))
        if q.new_monthly_fee is not None and self.doc.amounts:
            rows.append((_("New monthly fee"), format_yen(q.new_monthly_fee)))
        if q.new_fee_from:
            rows.append((_("New monthly fee applies from"), self.month(q.new_fee_from)))
        if q.minimum_term_end:
            rows.append(
                (
                    _("Minimum term ends (not restarted by the upgrade)"),
                    self.day(q.minimum_term_end),
                )
            )
        return rows

    def _termination_dates(self, label: str) -> list[Fact]:
        q = self.quote
        end = q.effective_on
        # a termination date is the last day of a billing month, named by its end.
        month = self.month_name(f"{end.year:04d}-{end.month:02d}")
        rows = [(label, self.day(end) + "\n" + _("the last day of %(month)s", month=month))]
        if q.minimum_term_end:
            rows.append((_("Minimum term ends"), self.day(q.minimum_term_end)))
        if q.unexpired_months is not None:
            rows.append(
                (
                    _("Billing months of the minimum term not yet elapsed"),
                    self.months(q.unexpired_months),
                )
            )
        return rows

    def _downgrade_dates(self) -> list[Fact]:
        q = self.quote
        rows = self._termination_dates(_("The current contract ends on"))
        if q.new_service_start:
            rows.append((_("The new contract starts on"), self.day(q.new_service_start)))
        if q.new_term_anchor:
            rows.append((_("Term anchor of the new contract"), self.day(q.new_term_anchor)))
        if q.new_minimum_months:
            rows.append((_("Minimum term of the new contract"), self.months(q.new_minimum_months)))
        if q.new_minimum_term_end:
            rows.append(
                (_("Minimum term of the new contract ends"), self.day(q.new_minimum_term_end))
            )
        if self.doc.amounts:
            if q.new_monthly_fee is not None:
                rows.append((_("New monthly fee"), format_yen(q.new_monthly_fee)))
            initial = [c for c in q.charges if c.kind == ChargeKind.INITIAL_FEE]
            if initial:
                rows.append(
                    (
                        _("Initial fee of the new contract"),
                        format_yen(sum(c.amount for c in initial)),
                    )
                )
        return rows

    def _cancellation_dates(self) -> list[Fact]:
        return self._termination_dates(_("Termination date (last day of service)"))

    def _non_renewal_dates(self) -> list[Fact]:
        q = self.quote
        rows = [(_("The current term ends, and with it the contract"), self.day(q.effective_on))]
        if q.renewal_notice_deadline:
            rows.append(
                (
                    _("Last day to give notice against renewal"),
                    self.day(q.renewal_notice_deadline),
                )
            )
        return rows

    def _agency_renewal_dates(self) -> list[Fact]:
        q = self.quote
        period = q.next_period
        if period is None:
            return [(_("Next period starts"), self.day(q.effective_on))]
        return [
            (_("Next period starts"), self.day(period.start)),
            (_("Next period ends"), self.day(period.end)),
        ]

    def charge_label(self, charge: Charge) -> str:
        if charge.kind == ChargeKind.SHORTFALL:
            return ngettext(
                "Minimum-term shortfall: the monthly fee for %(num)d billing month",
                "Minimum-term shortfall: the monthly fee for %(num)d billing months",
                charge.months or 0,
            )
        if charge.kind == ChargeKind.INITIAL_FEE_DIFFERENCE:
            return _("Initial fee difference (new plan less current plan)")
        if charge.kind == ChargeKind.CHANGE_FEE:
            return _("Change fee")
        if charge.on_new_contract:
            return _("Initial fee of the new contract")
        return _("Initial fee")

    def sum_row(self, label: str, amount: int, strong: bool = False) -> list:
        """A row under the charges: label, no rate, amount."""
        return [
            self.p(label, self.strong if strong else self.body),
            "",
            self.p(format_yen(amount), self.strong_right if strong else self.right),
        ]

    def charges(self) -> list[Flowable]:
        q = self.quote
        out: list[Flowable] = [self.p(_("Charges"), self.heading)]
        if self.doc.is_withdrawal:
            out.append(self.p(_("Nothing is billed for a withdrawn request.")))
            return out
        if not self.doc.show_amounts:
            out.append(
                self.p(
                    _(
                        "Amounts are not shown on this copy; they are shown to the customer's "
                        "administrators."
                    )
                )
            )
            return out + self.invoice()
        if not q.charges:
            out.append(self.p(_("This request carries no charges.")))
            return out

        rate_width, amount_width = 20 * mm, 32 * mm
        widths = [_WIDTH - rate_width - amount_width, rate_width, amount_width]
        rows: list[list[Flowable]] = [
            [self.p(_("Item")), self.p(_("Tax rate")), self.p(_("Amount"), self.right)]
        ]
        for charge in q.charges:
            rows.append(
                [
                    self.p(self.charge_label(charge)),
                    self.p(format_rate(charge.tax_rate_percent)),
                    self.p(format_yen(charge.amount), self.right),
                ]
            )
        first_summary = len(rows)
        rows.append(self.sum_row(_("Subtotal (tax excluded)"), q.subtotal))
        # tax once per rate, on the total of the charges at that rate.
        for summary in q.tax:
            rows.append(
                self.sum_row(
                    _(
                        "Consumption tax at %(rate)s on %(amount)s",
                        rate=format_rate(summary.rate_percent),
                        amount=format_yen(summary.taxable),
                    ),
                    summary.tax,
                )
            )
        rows.append(self.sum_row(_("Total (tax included)"), q.total, strong=True))
        table = self.table(
            rows,
            widths,
            [
                ("BACKGROUND", (0, 0), (-1, 0), _SHADE),
                ("LINEABOVE", (0, first_summary), (-1, first_summary), 0.8, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
                ("BACKGROUND", (0, -1), (-1, -1), _SHADE),
            ],
        )
        return [*out, table, *self.invoice()]

    def invoice(self) -> list[Flowable]:
        q = self.quote
        if not q.charges or q.invoice_month is None:
            return []
        month = q.invoice_month
        value = _(
            "The invoice for %(month)s, issued on %(date)s",
            month=self.month_name(month.name),
            date=self.day(month.start),
        )
        return [
            Spacer(1, 3 * mm),
            self.facts([(_("Invoice that will carry the charges"), value)]),
        ]

    def notes(self) -> list[Flowable]:
        doc = self.doc
        lines = []
        if doc.is_withdrawal:
            lines.append(
                _(
                    "This request was withdrawn before its effective date: it does not take "
                    "effect, and nothing is billed for it."
                )
            )
        elif doc.is_confirmation:
            lines.append(
                _(
                    "Your request was received as a written request. It can be withdrawn in "
                    "the portal before its effective date."
                )
            )
        else:
            lines.append(
                _(
                    "This is a quote: nothing has been requested yet. The request is made only "
                    "when it is confirmed in the portal."
                )
            )
        if doc.amounts:
            lines.append(
                _("Dates are in Tokyo time. Amounts are in yen, tax excluded unless stated.")
            )
        else:
            lines.append(_("Dates are in Tokyo time."))
        if doc.amounts and self.quote.charges:
            lines.append(
                _(
                    "Consumption tax is computed once per tax rate on the total of the charges "
                    "at that rate and rounded down."
                )
            )
        return [Spacer(1, 6 * mm), *(self.p(line, self.small) for line in lines)]

    def footer(self) -> Callable[[Canvas, SimpleDocTemplate], None]:
        doc = self.doc
        issuer = "  ".join(
            [
                doc.provider_name,
                _("Registration number: %(number)s", number=doc.provider_registration_number),
            ]
        )
        font = self.font

        def draw(canvas: Canvas, template: SimpleDocTemplate) -> None:
            canvas.saveState()
            canvas.setFont(font, 7)
            canvas.setFillColor(_MUTED)
            canvas.drawString(_MARGIN, 10 * mm, issuer)
            canvas.drawRightString(
                _PAGE[0] - _MARGIN, 10 * mm, _("Page %(page)d", page=canvas.getPageNumber())
            )
            canvas.restoreState()

        return draw

    def render(self) -> bytes:
        doc = self.doc
        heading = self.heading_text()
        buffer = BytesIO()
        template = SimpleDocTemplate(
            buffer,
            pagesize=_PAGE,
            leftMargin=_MARGIN,
            rightMargin=_MARGIN,
            topMargin=_MARGIN,
            bottomMargin=_MARGIN + 4 * mm,
            title=f"{heading} {doc.reference}" if doc.reference else heading,
            author=doc.provider_name,
            subject=f"{doc.organisation_name}: " + _("Contract no. %(id)d", id=doc.contract_id),
            creator=_("Contract portal"),
            lang=doc.locale,
            invariant=True,
            initialFontName=self.font,
        )
        story: list[Flowable] = [
            *self.header(),
            *self.customer(),
            *self.dates(),
            *self.charges(),
            *self.notes(),
        ]
        footer = self.footer()
        template.build(story, onFirstPage=footer, onLaterPages=footer)
        return buffer.getvalue()


_KIND_DATES: dict[RequestKind, Callable[[_Renderer], list[Fact]]] = {
    RequestKind.UPGRADE: _Renderer._upgrade_dates,
    RequestKind.DOWNGRADE: _Renderer._downgrade_dates,
    RequestKind.CANCELLATION: _Renderer._cancellation_dates,
    RequestKind.NON_RENEWAL: _Renderer._non_renewal_dates,
    RequestKind.AGENCY_RENEWAL: _Renderer._agency_renewal_dates,
}
