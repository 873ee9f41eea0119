"""The PDF of an issued invoice (適格請求書) or credit note (適格返還請求書) (R-40, R-42, R-53).

`invoice_document()` copies an issued `Invoice` row into plain values; `render_invoice_pdf()`
sets them out with every item the qualified-invoice rules ask for: issuer and registration
number, number and date, recipient, transaction period, lines with their rates, totals and
tax per rate, and the amount due. A credit note also names the invoice it corrects. An
invoice that carries credit lines (approved SLA claims, R-53) also prints the items of a
return invoice: each return with the transaction it returns, the returns and their tax per
rate, and per rate what was charged, what was returned and the total after returns.

The PDF is rendered once at issue and stored with its SHA-256 (R-42), so the same document
must give the same bytes: nothing here reads the clock, and reportlab runs in invariant mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from xml.sax.saxutils import escape

from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.flowables import Flowable

from portal.documents.common import (
    GRID,
    LOCALES,
    MUTED,
    SHADE,
    WIDTH,
    address_lines,
    billing_month_parts,
    build_pdf,
    format_day,
    format_rate,
    format_yen,
)
from portal.documents.fonts import FONT_NAME, register_fonts
from portal.domain.money import STANDARD_TAX_RATE_PERCENT, TaxSummary
from portal.models.invoices import DocumentKind, Invoice, InvoiceLine

REGISTRATION_NUMBER = re.compile(r"T\d{13}")
REDUCED_RATE_MARK = "※"


@dataclass(frozen=True)
class InvoiceLineDocument:
    """One line as issued: its description in both languages, amount (tax excluded), rate."""

    description_ja: str
    description_en: str
    amount: int
    tax_rate_percent: int
    # A credit line (negative, R-53) names the transaction it returns: a billing month and
    # its days, an item of a return invoice.
    returned_month: str | None = None  # e.g. "2027-02"
    returned_start: date | None = None
    returned_end: date | None = None

    def description(self, locale: str) -> str:
        return self.description_ja if locale == "ja" else self.description_en

    @property
    def is_return(self) -> bool:
        return self.amount < 0

    @property
    def names_returned_transaction(self) -> bool:
        return (
            self.returned_month is not None
            and self.returned_start is not None
            and self.returned_end is not None
        )

    @property
    def is_reduced_rate(self) -> bool:
        """R-40: a line taxed below the standard rate is marked as such (軽減税率対象)."""
        return 0 < self.tax_rate_percent < STANDARD_TAX_RATE_PERCENT


@dataclass(frozen=True)
class BankAccount:
    """R-44: the account to pay into by bank transfer, as frozen on the invoice at issue."""

    bank: str
    branch: str
    type: str  # "ordinary" (普通) or "current" (当座)
    number: str
    holder_kana: str

    @classmethod
    def of(cls, frozen: dict[str, str] | None) -> BankAccount | None:
        """From Invoice.provider_bank (None or empty for invoices issued without one)."""
        if not frozen:
            return None
        return cls(
            bank=frozen.get("bank", ""),
            branch=frozen.get("branch", ""),
            type=frozen.get("type", "ordinary"),
            number=frozen.get("number", ""),
            holder_kana=frozen.get("holder_kana", ""),
        )


@dataclass(frozen=True)
class ReturnsAtRate:
    """R-53: at one tax rate of an invoice with credit lines, what was charged and what was
    returned, each with its tax. The tax is computed once, on the total after returns, so the
    returns' tax is their effect on it: `charges_tax - returns_tax` is the rate's tax."""

    rate_percent: int
    charges: int
    charges_tax: int
    returns: int  # positive: the yen returned, tax excluded
    returns_tax: int


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
    returns: tuple[ReturnsAtRate, ...] = ()  # one row per rate with credit lines
    provider_phone: str = ""  # the issuer's phone, as on the day of issue
    provider_bank: BankAccount | None = None  # how to pay by bank transfer

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
        for line in self.lines:
            if line.returned_month is not None and not line.is_return:
                raise ValueError("only a credit line names a transaction it returns")
            start, end = line.returned_start, line.returned_end
            if start is not None and end is not None and start > end:
                raise ValueError("a returned transaction's period ends before it starts")
        if self.returns:
            self._check_returns()

    def _check_returns(self) -> None:
        """R-53: the returns printed are exactly the credit lines, each naming the transaction
        it returns, and per rate the charges less the returns are the taxed total and tax."""
        if any(line.is_return and not line.names_returned_transaction for line in self.lines):
            raise ValueError("every credit line names the transaction it returns")
        charged: dict[int, int] = {}
        returned: dict[int, int] = {}
        for line in self.lines:
            totals = returned if line.is_return else charged
            totals[line.tax_rate_percent] = totals.get(line.tax_rate_percent, 0) + abs(line.amount)
        if returned != {row.rate_percent: row.returns for row in self.returns}:
            raise ValueError("the returns per rate do not match the credit lines")
        taxed = {row.rate_percent: row for row in self.tax_summary}
        for row in self.returns:
            if row.charges != charged.get(row.rate_percent, 0):
                raise ValueError("the charges per rate do not match the lines")
            summary = taxed[row.rate_percent]
            if row.charges_tax - row.returns_tax != summary.tax:
                raise ValueError("the tax of the charges less the returns' is not the rate's tax")

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
            _line_document(line) for line in sorted(invoice.lines, key=lambda line: line.position)
        ),
        tax_summary=tuple(
            TaxSummary(
                rate_percent=int(row["rate_percent"]),
                taxable=int(row["taxable"]),
                tax=int(row["tax"]),
            )
            for row in invoice.tax_rows()
        ),
        returns=tuple(
            ReturnsAtRate(
                rate_percent=int(row["rate_percent"]),
                charges=int(row["charges"]),
                charges_tax=int(row["charges_tax"]),
                returns=int(row["returns"]),
                returns_tax=int(row["returns_tax"]),
            )
            for row in invoice.tax_rows()
            if row.get("returns")
        ),
        subtotal=invoice.subtotal,
        tax_total=invoice.tax_total,
        total=invoice.total,
        original_number=original.number if original is not None else None,
        original_issued_on=original.issued_on if original is not None else None,
        reason=invoice.reason or "",
        provider_phone=invoice.provider_phone or "",
        provider_bank=(
            BankAccount.of(invoice.provider_bank)
            if DocumentKind(invoice.kind) == DocumentKind.INVOICE
            else None
        ),
    )


def _line_document(line: InvoiceLine) -> InvoiceLineDocument:
    """An issued line; a credit line (R-53) with the billing month it returns, from the
    details it was issued with."""
    details = line.details or {}
    returned = line.amount < 0 and "period_start" in details
    return InvoiceLineDocument(
        description_ja=line.description_ja,
        description_en=line.description_en,
        amount=line.amount,
        tax_rate_percent=line.tax_rate_percent,
        returned_month=str(details["billing_month"]) if returned else None,
        returned_start=date.fromisoformat(details["period_start"]) if returned else None,
        returned_end=date.fromisoformat(details["period_end"]) if returned else None,
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
# The returns: what is returned, the transaction it returns, rate and amount, the last
# two in line with the lines above; the breakdown with returns needs longer labels.
_RETURNED_WIDTH = 62 * mm
_RETURN_DESCRIPTION_WIDTH = _DESCRIPTION_WIDTH - _RETURNED_WIDTH
_RETURN_LABEL_WIDTH = _DESCRIPTION_WIDTH
_RATE_LABEL_WIDTH = 48 * mm

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
_RETURNS = [
    *_BASE,
    ("SPAN", (0, 0), (-1, 0)),
    ("LEFTPADDING", (0, 0), (0, 0), 0),
    ("ALIGN", (2, 1), (-1, -1), "RIGHT"),
    ("BACKGROUND", (0, 1), (-1, 1), SHADE),
    ("LINEBELOW", (0, 0), (-1, -1), 0.4, GRID),
]
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

    def address(self, text: str, width: float) -> list[str]:
        """An address in the lines of a cell `width` wide, broken between its parts, never
        inside a name (the issuer's address broke mid-word when wrapped anywhere)."""
        if not text:
            return []
        return address_lines(text, width - 2 * _PADDING, FONT_NAME, _SIZE)

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
        if doc.is_credit_note:
            subtitle = ""
        elif doc.returns:
            subtitle = _("Qualified invoice and qualified return invoice")
        else:
            subtitle = _("Qualified invoice")
        title_width, issuer_width = _HEADER_WIDTHS
        phone = _("Tel. %(phone)s", phone=doc.provider_phone) if doc.provider_phone else ""
        issuer = "\n".join(
            line
            for line in (
                doc.provider_name,
                self.registration(),
                *self.address(doc.provider_address, issuer_width),
                phone,
            )
            if line
        )
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
        # "2027年5月度（2027年4月21日～2027年5月20日）", "billing month 2027-05 (21 April …)".
        month, days = billing_month_parts(
            doc.billing_month, doc.period_start, doc.period_end, doc.locale
        )
        period = f"{month}{days}" if doc.locale == "ja" else f"{month} {days}"
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
            address = "\n".join(self.address(doc.recipient_address, recipient_width))
            recipient.append(self.cell(address, recipient_width))
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

    def bank_transfer(self) -> list[Flowable]:
        """R-44: how to pay by bank transfer: the account as frozen at issue (bank, branch,
        account type in words, number, holder in kana) and the day to pay by."""
        doc = self.doc
        bank = doc.provider_bank
        if doc.is_credit_note or bank is None:
            return []
        kind = _("Current account") if bank.type == "current" else _("Ordinary account")
        label_width = _LABEL_WIDTH
        value_width = (WIDTH - 2 * _LABEL_WIDTH) / 2
        widths = [label_width, value_width, label_width, value_width]
        wide = WIDTH - label_width
        rows: list[list[str | Paragraph]] = [
            [self.cell(_("Payment by bank transfer"), WIDTH), "", "", ""],
            [
                self.cell(_("Bank"), label_width),
                self.cell(bank.bank, value_width),
                self.cell(_("Branch"), label_width),
                self.cell(bank.branch, value_width),
            ],
            [
                self.cell(_("Account type"), label_width),
                self.cell(kind, value_width),
                self.cell(_("Account number"), label_width),
                bank.number,
            ],
            [
                self.cell(_("Account holder"), label_width),
                self.cell(bank.holder_kana, wide),
                "",
                "",
            ],
            [self.cell(_("Transfer by"), label_width), self.day(doc.due_on), "", ""],
        ]
        style = TableStyle(
            [
                *_BASE,
                ("SPAN", (0, 0), (-1, 0)),
                ("LEFTPADDING", (0, 0), (0, 0), 0),
                ("SPAN", (1, 3), (-1, 3)),
                ("SPAN", (1, 4), (-1, 4)),
                ("BACKGROUND", (0, 1), (0, -1), SHADE),
                ("BACKGROUND", (2, 1), (2, 2), SHADE),
                ("LINEABOVE", (0, 1), (-1, 1), 0.4, GRID),
                ("LINEBELOW", (0, 1), (-1, -1), 0.4, GRID),
            ]
        )
        table = Table(rows, colWidths=widths, hAlign="LEFT", style=style)
        return [KeepTogether([table]), Spacer(1, 6 * mm)]

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

    def returns(self) -> list[Flowable]:
        """R-53: the items of a return invoice for the credit lines: each return with the
        transaction it returns (a billing month and its days), what it returns and its amount,
        then per rate the returns and their tax."""
        doc = self.doc
        if not doc.returns:
            return []
        widths = [_RETURN_DESCRIPTION_WIDTH, _RETURNED_WIDTH, _RATE_WIDTH, _AMOUNT_WIDTH]
        rows: list[list[str | Paragraph]] = [
            [_("Returns (qualified return invoice)"), "", "", ""],
            [
                self.cell(_("What is returned"), _RETURN_DESCRIPTION_WIDTH),
                self.cell(_("Transaction returned"), _RETURNED_WIDTH),
                self.cell(_("Tax rate"), _RATE_WIDTH),
                self.cell(_("Amount (tax excluded)"), _AMOUNT_WIDTH),
            ],
        ]
        for line in doc.lines:
            if not line.is_return:
                continue
            assert line.returned_month and line.returned_start and line.returned_end
            # The billing month above its days, so that no date breaks in two.
            month, days = billing_month_parts(
                line.returned_month, line.returned_start, line.returned_end, doc.locale
            )
            text = line.description(doc.locale)
            if line.is_reduced_rate:
                text = f"{text} {REDUCED_RATE_MARK}"
            rows.append(
                [
                    self.cell(text, _RETURN_DESCRIPTION_WIDTH),
                    self.cell(f"{month}\n{days}", _RETURNED_WIDTH),
                    format_rate(line.tax_rate_percent),
                    format_yen(line.amount),
                ]
            )
        first_total = len(rows)
        for row in doc.returns:
            rate = format_rate(row.rate_percent)
            for label, amount in (
                (_("Returns at %(rate)s (tax excluded)", rate=rate), row.returns),
                (_("Consumption tax on the returns at %(rate)s", rate=rate), row.returns_tax),
            ):
                rows.append([self.cell(label, _RETURN_LABEL_WIDTH), "", "", format_yen(-amount)])
        style = TableStyle(
            [
                *_RETURNS,
                ("LINEABOVE", (0, first_total), (-1, first_total), 0.8, colors.black),
                ("BACKGROUND", (0, first_total), (-1, -1), SHADE),
                *[("SPAN", (0, i), (2, i)) for i in range(first_total, len(rows))],
            ]
        )
        table = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=2, style=style)
        return [table, Spacer(1, 5 * mm)]

    def tax(self) -> list[Flowable]:
        """R-40: the total and the tax of each rate, as 「10%対象 ¥405,000 消費税 ¥40,500」."""
        if not self.doc.tax_summary:
            return []
        if self.doc.returns:
            return self.tax_with_returns()
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

    def tax_with_returns(self) -> list[Flowable]:
        """R-40/R-53: for a rate with returns, what was charged and its tax, what was returned
        and its tax effect, and the total after returns with its tax, computed once on it."""
        returns = {row.rate_percent: row for row in self.doc.returns}
        label_width = _RATE_LABEL_WIDTH
        widths = [label_width, _AMOUNT_WIDTH, _TAX_LABEL_WIDTH, _AMOUNT_WIDTH]
        tax_label = self.cell(_("Consumption tax"), _TAX_LABEL_WIDTH)
        rows: list[list[str | Paragraph]] = [[_("Breakdown by tax rate"), "", "", ""]]
        totals = []
        for summary in self.doc.tax_summary:
            rate = format_rate(summary.rate_percent)
            row = returns.get(summary.rate_percent)
            if row is None:
                rows.append(
                    [
                        self.cell(_("Taxable at %(rate)s", rate=rate), label_width),
                        format_yen(summary.taxable),
                        tax_label,
                        format_yen(summary.tax),
                    ]
                )
                continue
            rows.append(
                [
                    self.cell(_("Charged at %(rate)s", rate=rate), label_width),
                    format_yen(row.charges),
                    tax_label,
                    format_yen(row.charges_tax),
                ]
            )
            rows.append(
                [
                    self.cell(_("Returned at %(rate)s", rate=rate), label_width),
                    format_yen(-row.returns),
                    tax_label,
                    format_yen(-row.returns_tax),
                ]
            )
            totals.append(len(rows))
            rows.append(
                [
                    self.cell(_("Taxable at %(rate)s after returns", rate=rate), label_width),
                    format_yen(summary.taxable),
                    tax_label,
                    format_yen(summary.tax),
                ]
            )
        style = TableStyle(
            [
                *_TAX.getCommands(),
                *[("LINEABOVE", (0, i), (-1, i), 0.8, colors.black) for i in totals],
            ]
        )
        # Kept on one page: what was charged, returned and taxed at a rate reads as one sum.
        return [KeepTogether([Table(rows, colWidths=widths, hAlign="RIGHT", style=style)])]

    def notes(self) -> list[Flowable]:
        doc = self.doc
        lines = []
        if any(line.is_reduced_rate for line in doc.lines):
            lines.append(_("※ Reduced-rate item"))
        if doc.returns:
            lines.append(
                _(
                    "Returns are deducted from the charges at their rate; their consumption tax is "
                    "what they take off the tax of that rate."
                )
            )
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

    def render(self) -> bytes:
        doc = self.doc
        story: list[Flowable] = [
            *self.header(),
            *self.parties(),
            *self.transaction(),
            *self.amount_due(),
            *self.bank_transfer(),
            *self.lines(),
            *self.returns(),
            *self.tax(),
            *self.notes(),
        ]
        return build_pdf(
            story,
            title=f"{self.title()} {doc.number}",
            author=doc.provider_name,
            subject=doc.recipient_name,
            locale=doc.locale,
            footer="  ".join([doc.provider_name, self.registration(), doc.number]),
        )
