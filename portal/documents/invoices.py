"""The PDF of an issued invoice (適格請求書) or credit note (適格返還請求書) (R-40, R-42, R-53).

`invoice_document()` copies an issued `Invoice` row into plain values; `render_invoice_pdf()`
sets them out with every item the qualified-invoice rules ask for: issuer and registration
number, number and date, recipient, transaction period, lines with their rates, totals and
tax per rate, and the amount due. A credit note also names the invoice it corrects.

The PDF is rendered once at issue and stored with its SHA-256 (R-42), so the same document
must give the same bytes: nothing here reads the clock, and reportlab runs in invariant mode.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import cache, partial
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from portal.documents.common import (
    GRID,
    LOCALES,
    MARGIN,
    MUTED,
    PAGE,
    SHADE,
    WIDTH,
    format_day,
    format_rate,
    format_yen,
)
from portal.documents.fonts import FONT_NAME, register_fonts
from portal.domain.money import STANDARD_TAX_RATE_PERCENT, TaxSummary
from portal.models.invoices import DocumentKind, Invoice

REGISTRATION_NUMBER = re.compile(r"T\d{13}")
REDUCED_RATE_MARK = "※"


@dataclass(frozen=True)
class InvoiceLineDocument:
    """One line as issued: its description in both languages, amount (tax excluded), rate."""

    description_ja: str
    description_en: str
    amount: int
    tax_rate_percent: int

    def description(self, locale: str) -> str:
        return self.description_ja if locale == "ja" else self.description_en

    @property
    def is_reduced_rate(self) -> bool:
        """R-40: a line taxed below the standard rate is marked as such (軽減税率対象)."""
        return 0 < self.tax_rate_percent < STANDARD_TAX_RATE_PERCENT


@dataclass(frozen=True)
class InvoiceDocument:
    """What the PDF of one issued invoice or credit note shows: plain values, frozen (R-42).

    A credit note's amounts are positive and mean money returned.
    """

    kind: DocumentKind
    locale: str  # "ja" or "en": the language the document was issued in
    number: str  # e.g. "INV-00000123"
    issued_on: date
    due_on: date
    billing_month: str  # e.g. "2027-05"
    period_start: date  # the transaction period
    period_end: date
    recipient_name: str  # as registered on the day of issue
    recipient_postal_code: str
    recipient_address: str
    provider_name: str
    provider_registration_number: str  # "T" + 13 digits
    provider_address: str
    lines: tuple[InvoiceLineDocument, ...]
    tax_summary: tuple[TaxSummary, ...]  # one row per rate
    subtotal: int
    tax_total: int
    total: int
    original_number: str | None = None  # a credit note's original invoice
    original_issued_on: date | None = None
    reason: str = ""  # why a credit note was issued

    def __post_init__(self) -> None:
        if self.locale not in LOCALES:
            raise ValueError(f"locale must be one of {LOCALES}, got {self.locale!r}")
        if not REGISTRATION_NUMBER.fullmatch(self.provider_registration_number):
            raise ValueError("the registration number must be T and 13 digits (R-40)")
        if self.is_credit_note and not (self.original_number and self.original_issued_on):
            raise ValueError("a credit note names its original invoice and its date (R-42)")
        # a qualified invoice whose figures do not add up must never be printed.
        if self.subtotal + self.tax_total != self.total:
            raise ValueError("subtotal and tax do not add up to the total")
        if sum(line.amount for line in self.lines) != self.subtotal:
            raise ValueError("the lines do not add up to the subtotal")
        if sum(row.tax for row in self.tax_summary) != self.tax_total:
            raise ValueError("the tax per rate does not add up to the tax total")
        per_rate: dict[int, int] = {}
        for line in self.lines:
            per_rate[line.tax_rate_percent] = per_rate.get(line.tax_rate_percent, 0) + line.amount
        if per_rate != {row.rate_percent: row.taxable for row in self.tax_summary}:
            raise ValueError("the tax summary does not match the lines' totals per rate")

    @property
    def is_credit_note(self) -> bool:
        return self.kind == DocumentKind.CREDIT_NOTE


def invoice_document(invoice: Invoice) -> InvoiceDocument:
    """The plain values of an issued `Invoice` (with its `lines`, and `original` for a
    credit note). Reads the row only: what it was issued with is what the PDF shows (R-42)."""
    original = invoice.original
    return InvoiceDocument(
        kind=DocumentKind(invoice.kind),
        locale=invoice.locale,
        number=invoice.number,
        issued_on=invoice.issued_on,
        due_on=invoice.due_on,
        billing_month=invoice.billing_month,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        recipient_name=invoice.recipient_name,
        recipient_postal_code=invoice.recipient_postal_code or "",
        recipient_address=invoice.recipient_address or "",
        provider_name=invoice.provider_name,
        provider_registration_number=invoice.provider_registration_number,
        provider_address=invoice.provider_address or "",
        lines=tuple(
            InvoiceLineDocument(
                description_ja=line.description_ja,
                description_en=line.description_en,
                amount=line.amount,
                tax_rate_percent=line.tax_rate_percent,
            )
            for line in sorted(invoice.lines, key=lambda line: line.position)
        ),
        tax_summary=tuple(
            TaxSummary(
                rate_percent=int(row["rate_percent"]),
                taxable=int(row["taxable"]),
                tax=int(row["tax"]),
            )
            for row in invoice.tax_rows()
        ),
        subtotal=invoice.subtotal,
        tax_total=invoice.tax_total,
        total=invoice.total,
        original_number=original.number if original is not None else None,
        original_issued_on=original.issued_on if original is not None else None,
        reason=invoice.reason or "",
    )


# --- layout, built once per process -------------------------------------------------------

# Tables of plain strings draw many times faster than Paragraphs (a Japanese Paragraph measures
# every character to find its breaks), so cells hold strings, and text becomes a Paragraph only
# when it does not fit its cell (Renderer.cell).
_SIZE = 9
_LEADING = 13
_SMALL = 7.5
_TITLE = 16
_PADDING = 6  # a cell's left and right padding, reportlab's default
_LABEL_WIDTH = 34 * mm
_RATE_WIDTH = 20 * mm
_AMOUNT_WIDTH = 40 * mm
_DESCRIPTION_WIDTH = WIDTH - _RATE_WIDTH - _AMOUNT_WIDTH
_HEADER_WIDTHS = [WIDTH * 0.6, WIDTH * 0.4]
_PARTY_WIDTHS = [WIDTH * 0.46, WIDTH * 0.04, _LABEL_WIDTH, WIDTH * 0.5 - _LABEL_WIDTH]
_TAX_LABEL_WIDTH = 30 * mm

_BASE = [
    ("FONTNAME", (0, 0), (-1, -1), FONT_NAME),
    ("FONTSIZE", (0, 0), (-1, -1), _SIZE),
    ("LEADING", (0, 0), (-1, -1), _LEADING),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("TOPPADDING", (0, 0), (-1, -1), 3),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
]
_HEADER = TableStyle(
    [
        *_BASE,
        ("FONTSIZE", (0, 0), (0, 0), _TITLE),
        ("LEADING", (0, 0), (0, 0), 22),
        ("TEXTCOLOR", (0, 1), (0, 1), MUTED),
        ("SPAN", (1, 0), (1, 1)),
        ("ALIGN", (1, 0), (1, 0), "RIGHT"),
        ("LEFTPADDING", (0, 0), (0, -1), 0),
        ("RIGHTPADDING", (1, 0), (1, -1), 0),
    ]
)
_FACTS = TableStyle(
    [
        *_BASE,
        ("BACKGROUND", (0, 0), (0, -1), SHADE),
        ("LINEABOVE", (0, 0), (-1, 0), 0.4, GRID),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, GRID),
    ]
)
_AMOUNT_DUE = TableStyle(
    [
        *_BASE,
        ("FONTSIZE", (0, 0), (-1, -1), 13),
        ("LEADING", (0, 0), (-1, -1), 17),
        ("ALIGN", (1, 0), (1, 0), "RIGHT"),
        ("BACKGROUND", (0, 0), (-1, -1), SHADE),
        ("BOX", (0, 0), (-1, -1), 0.8, colors.black),
        ("TOPPADDING", (0, 0), (-1, -1), 6),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
    ]
)
_LINES = [
    *_BASE,
    ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
    ("BACKGROUND", (0, 0), (-1, 0), SHADE),
    ("LINEBELOW", (0, 0), (-1, -1), 0.4, GRID),
    ("BACKGROUND", (0, -1), (-1, -1), SHADE),
]
_TAX = TableStyle(
    [
        *_BASE,
        ("SPAN", (0, 0), (-1, 0)),
        ("LEFTPADDING", (0, 0), (0, 0), 0),
        ("ALIGN", (1, 1), (-1, -1), "RIGHT"),
        ("BACKGROUND", (0, 1), (0, -1), SHADE),
        ("BACKGROUND", (2, 1), (2, -1), SHADE),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, GRID),
    ]
)
_NOTES = TableStyle(
    [
        *_BASE,
        ("FONTSIZE", (0, 0), (-1, -1), _SMALL),
        ("LEADING", (0, 0), (-1, -1), 10),
        ("TEXTCOLOR", (0, 0), (-1, -1), MUTED),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 0),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
    ]
)


@cache
def _paragraph_style(locale: str, size: float) -> ParagraphStyle:
    # Japanese breaks between any two characters; English between words only.
    return ParagraphStyle(
        f"invoice-{locale}-{size}",
        fontName=FONT_NAME,
        fontSize=size,
        leading=round(size * 1.4, 1),
        wordWrap="CJK" if locale == "ja" else None,
    )


# --- the document ------------------------------------------------------------------------


def render_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """The A4 PDF of an issued invoice or credit note, in `doc.locale` (R-40).

    Call it within an app context. The same document gives the same bytes (R-42): the PDF's
    dates and file id are fixed by reportlab's invariant mode, and no clock is read.
    """
    register_fonts()
    with force_locale(doc.locale):
        return _Renderer(doc).render()


class _PagedCanvas(Canvas):
    """A canvas that draws each page's footer once the number of pages is known."""

    def __init__(self, *args: Any, footer: Callable[[Canvas, int], None], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._footer = footer
        self._page_states: list[dict[str, Any]] = []

    def showPage(self) -> None:  # reportlab's name
        self._page_states.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        for state in self._page_states:
            self.__dict__.update(state)
            self._footer(self, len(self._page_states))
            super().showPage()
        super().save()


class _Renderer:
    def __init__(self, doc: InvoiceDocument) -> None:
        self.doc = doc

    # -- helpers --

    def cell(self, text: str, width: float, size: float = _SIZE) -> str | Paragraph:
        """Text for a table cell `width` wide: a string when every line fits, else a Paragraph
        that wraps. User and translated text is escaped in a Paragraph, never markup."""
        lines = text.split("\n")
        usable = width - 2 * _PADDING
        if all(stringWidth(line, FONT_NAME, size) <= usable for line in lines):
            return text
        style = _paragraph_style(self.doc.locale, size)
        return Paragraph("<br/>".join(escape(line) for line in lines), style)

    def day(self, value: date) -> str:
        return format_day(value, self.doc.locale)

    def title(self) -> str:
        if self.doc.is_credit_note:
            return _("Credit note (qualified return invoice)")
        return _("Invoice")

    def registration(self) -> str:
        return _("Registration number: %(number)s", number=self.doc.provider_registration_number)

    def total_label(self) -> str:
        if self.doc.is_credit_note:
            return _("Amount credited (tax included)")
        return _("Amount due (tax included)")

    # -- parts --

    def header(self) -> list[Flowable]:
        """The title, and the issuer with its registration number (R-40)."""
        doc = self.doc
        subtitle = "" if doc.is_credit_note else _("Qualified invoice")
        issuer = "\n".join(
            line for line in (doc.provider_name, self.registration(), doc.provider_address) if line
        )
        title_width, issuer_width = _HEADER_WIDTHS
        rows = [
            [self.cell(self.title(), title_width, _TITLE), self.cell(issuer, issuer_width)],
            [subtitle, ""],
        ]
        return [Table(rows, colWidths=_HEADER_WIDTHS, hAlign="LEFT", style=_HEADER)]

    def facts(self) -> list[tuple[str, str]]:
        """The short facts that stand beside the recipient."""
        doc = self.doc
        number_label = _("Credit note number") if doc.is_credit_note else _("Invoice number")
        rows = [(number_label, doc.number), (_("Issue date"), self.day(doc.issued_on))]
        if not doc.is_credit_note:
            rows.append((_("Due date"), self.day(doc.due_on)))
        return rows

    def transaction(self) -> list[Flowable]:
        """R-40: the transaction period; for a credit note, the invoice it corrects and why."""
        doc = self.doc
        period = _(
            "billing month %(month)s (%(start)s – %(end)s)",
            month=doc.billing_month,
            start=self.day(doc.period_start),
            end=self.day(doc.period_end),
        )
        rows = [(_("Transaction period"), period)]
        if doc.is_credit_note:
            assert doc.original_issued_on is not None  # the document checks it
            original = _(
                "%(number)s, issued on %(date)s",
                number=doc.original_number,
                date=self.day(doc.original_issued_on),
            )
            rows.append((_("Original invoice"), original))
            if doc.reason:
                rows.append((_("Reason"), doc.reason))
        value_width = WIDTH - _LABEL_WIDTH
        table = Table(
            [
                [self.cell(label, _LABEL_WIDTH), self.cell(value, value_width)]
                for label, value in rows
            ],
            colWidths=[_LABEL_WIDTH, value_width],
            hAlign="LEFT",
            style=_FACTS,
        )
        return [table, Spacer(1, 6 * mm)]

    def parties(self) -> list[Flowable]:
        """The recipient as frozen in the document (R-62) beside the document's facts."""
        doc = self.doc
        recipient_width, _gap, label_width, value_width = _PARTY_WIDTHS
        recipient = [self.cell(_("To: %(name)s", name=doc.recipient_name), recipient_width, 12)]
        if doc.recipient_postal_code:
            mark = "〒" if doc.locale == "ja" else ""
            recipient.append(mark + doc.recipient_postal_code)
        if doc.recipient_address:
            recipient.append(self.cell(doc.recipient_address, recipient_width))
        facts = self.facts()
        rows = [
            [
                recipient[i] if i < len(recipient) else "",
                "",
                self.cell(facts[i][0], label_width) if i < len(facts) else "",
                self.cell(facts[i][1], value_width) if i < len(facts) else "",
            ]
            for i in range(max(len(recipient), len(facts)))
        ]
        last = len(facts) - 1
        style = TableStyle(
            [
                *_BASE,
                ("FONTSIZE", (0, 0), (0, 0), 12),
                ("LEADING", (0, 0), (0, 0), 17),
                ("LEFTPADDING", (0, 0), (0, -1), 0),
                ("BACKGROUND", (2, 0), (2, last), SHADE),
                ("LINEABOVE", (2, 0), (3, 0), 0.4, GRID),
                ("LINEBELOW", (2, 0), (3, last), 0.4, GRID),
            ]
        )
        table = Table(rows, colWidths=_PARTY_WIDTHS, hAlign="LEFT", style=style)
        return [Spacer(1, 6 * mm), table, Spacer(1, 4 * mm)]

    def amount_due(self) -> list[Flowable]:
        label_width, amount_width = WIDTH * 0.45, WIDTH * 0.2
        table = Table(
            [[self.cell(self.total_label(), label_width, 13), format_yen(self.doc.total)]],
            colWidths=[label_width, amount_width],
            hAlign="LEFT",
            style=_AMOUNT_DUE,
        )
        return [table, Spacer(1, 6 * mm)]

    def lines(self) -> list[Flowable]:
        """The lines with their rates, reduced-rate lines marked (R-40), and the totals."""
        doc = self.doc
        rows: list[list[str | Paragraph]] = [
            [
                self.cell(_("Description"), _DESCRIPTION_WIDTH),
                self.cell(_("Tax rate"), _RATE_WIDTH),
                self.cell(_("Amount (tax excluded)"), _AMOUNT_WIDTH),
            ]
        ]
        for line in doc.lines:
            text = line.description(doc.locale)
            if line.is_reduced_rate:
                text = f"{text} {REDUCED_RATE_MARK}"
            rows.append(
                [
                    self.cell(text, _DESCRIPTION_WIDTH),
                    format_rate(line.tax_rate_percent),
                    format_yen(line.amount),
                ]
            )
        first_total = len(rows)
        for label, amount in (
            (_("Subtotal (tax excluded)"), doc.subtotal),
            (_("Consumption tax"), doc.tax_total),
            (self.total_label(), doc.total),
        ):
            rows.append([self.cell(label, _DESCRIPTION_WIDTH), "", format_yen(amount)])
        style = TableStyle(
            [*_LINES, ("LINEABOVE", (0, first_total), (-1, first_total), 0.8, colors.black)]
        )
        table = Table(
            rows,
            colWidths=[_DESCRIPTION_WIDTH, _RATE_WIDTH, _AMOUNT_WIDTH],
            hAlign="LEFT",
            repeatRows=1,
            style=style,
        )
        return [table, Spacer(1, 5 * mm)]

    def tax(self) -> list[Flowable]:
        """R-40: the total and the tax of each rate, as 「10%対象 ¥405,000 消費税 ¥40,500」."""
        if not self.doc.tax_summary:
            return []
        widths = [_TAX_LABEL_WIDTH, _AMOUNT_WIDTH, _TAX_LABEL_WIDTH, _AMOUNT_WIDTH]
        rows: list[list[str | Paragraph]] = [[_("Breakdown by tax rate"), "", "", ""]]
        rows.extend(
            [
                self.cell(
                    _("Taxable at %(rate)s", rate=format_rate(row.rate_percent)), _TAX_LABEL_WIDTH
                ),
                format_yen(row.taxable),
                self.cell(_("Consumption tax"), _TAX_LABEL_WIDTH),
                format_yen(row.tax),
            ]
            for row in self.doc.tax_summary
        )
        return [Table(rows, colWidths=widths, hAlign="RIGHT", style=_TAX)]

    def notes(self) -> list[Flowable]:
        doc = self.doc
        lines = []
        if any(line.is_reduced_rate for line in doc.lines):
            lines.append(_("※ Reduced-rate item"))
        if doc.is_credit_note:
            lines.append(
                _(
                    "This credit note reduces the amount of the original invoice by the amount "
                    "shown."
                )
            )
        else:
            lines.append(
                _("Please pay by the due date, by card in the portal or by bank transfer.")
            )
        lines.append(
            _(
                "Consumption tax is computed once per tax rate on the total of the charges "
                "at that rate and rounded down."
            )
        )
        rows = [[self.cell(line, WIDTH + _PADDING, _SMALL)] for line in lines]
        return [Spacer(1, 6 * mm), Table(rows, colWidths=[WIDTH], hAlign="LEFT", style=_NOTES)]

    def footer(self) -> Callable[[Canvas, int], None]:
        """The issuer and the document's number on every page, and "page n of m"."""
        doc = self.doc
        issuer = "  ".join([doc.provider_name, self.registration(), doc.number])

        # Drawn when the canvas is saved, which build() does within force_locale.
        def draw(canvas: Canvas, pages: int) -> None:
            canvas.saveState()
            canvas.setFont(FONT_NAME, 7)
            canvas.setFillColor(MUTED)
            canvas.drawString(MARGIN, 10 * mm, issuer)
            canvas.drawRightString(
                PAGE[0] - MARGIN,
                10 * mm,
                _("Page %(page)d of %(pages)d", page=canvas.getPageNumber(), pages=pages),
            )
            canvas.restoreState()

        return draw

    def render(self) -> bytes:
        doc = self.doc
        buffer = BytesIO()
        template = SimpleDocTemplate(
            buffer,
            pagesize=PAGE,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=MARGIN + 4 * mm,
            title=f"{self.title()} {doc.number}",
            author=doc.provider_name,
            subject=doc.recipient_name,
            creator=_("Contract portal"),
            lang=doc.locale,
            invariant=True,
            initialFontName=FONT_NAME,
        )
        story: list[Flowable] = [
            *self.header(),
            *self.parties(),
            *self.transaction(),
            *self.amount_due(),
            *self.lines(),
            *self.tax(),
            *self.notes(),
        ]
        template.build(story, canvasmaker=partial(_PagedCanvas, footer=self.footer()))
        return buffer.getvalue()
