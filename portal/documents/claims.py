"""The PDF of an SLA compensation claim (R-52): the claim a customer keeps.

`claim_document()` copies a filed claim into plain values (its reasoning already written in
the document's language); `render_claim_pdf()` sets out the provider, the customer and the
contract, the incident as recorded in the version the claim rests on, the computation line by
line, and the amount claimed. The PDF is rendered once at filing and stored with its SHA-256
(portal/services/claims.py), so the same document gives the same bytes: nothing here reads the
clock, and reportlab runs in invariant mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from xml.sax.saxutils import escape

from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from portal.documents.common import (
    GRID,
    LOCALES,
    MUTED,
    SHADE,
    WIDTH,
    build_pdf,
    format_day,
    format_instant,
    format_rate,
    format_yen,
)
from portal.documents.fonts import FONT_NAME, register_fonts
from portal.domain.money import tax_on
from portal.domain.sla import claim_deadline
from portal.models import ClaimChannel, Provider, SlaClaim
from portal.presentation import incident_kind_name


@dataclass(frozen=True)
class ClaimDocument:
    """What the PDF of one claim shows: plain values, frozen at filing."""

    locale: str
    number: str  # e.g. "SLA-000001"
    filed_at: datetime
    claimed_on: date  # the day the claim reached the provider
    paper: bool  # received by letter or telephone and recorded by staff
    provider_name: str
    provider_registration_number: str
    provider_address: str
    organisation_name: str
    contract_id: int
    service_name: str
    plan_name: str
    filed_by: str
    incident_reference: str
    incident_version: int
    incident_title: str
    incident_kind: str
    started_at: datetime
    ended_at: datetime
    occurrence_announced_at: datetime | None
    recovery_announced_at: datetime | None
    billing_month: str
    monthly_fee: int
    reasoning: tuple[str, ...]  # the computation, line by line, in `locale`
    amount: int  # tax excluded
    tax_rate_percent: int
    claim_deadline: date

    def __post_init__(self) -> None:
        if self.locale not in LOCALES:
            raise ValueError(f"locale must be one of {LOCALES}, got {self.locale!r}")
        if self.amount <= 0:
            raise ValueError("a claim is for an amount above zero")
        # instants print in Tokyo time; a naive one would print in the machine's zone,
        # and the same claim would not give the same bytes everywhere.
        instants = (
            self.filed_at,
            self.started_at,
            self.ended_at,
            self.occurrence_announced_at,
            self.recovery_announced_at,
        )
        if any(i is not None and i.utcoffset() is None for i in instants):
            raise ValueError("instants must be timezone-aware")

    @property
    def tax(self) -> int:
        """The consumption tax on the amount alone, at the contract's rate. Not printed: the
        invoice that carries the credit taxes each rate once, on its total after returns, so
        the credit's effect on that tax can differ from this by a yen (R-40, R-53)."""
        return tax_on(self.amount, self.tax_rate_percent)


def claim_document(
    claim: SlaClaim, provider: Provider | None, reasoning: list[str]
) -> ClaimDocument:
    """The plain values of a filed claim, in its language (call within force_locale)."""
    version = claim.incident_version
    contract = claim.contract
    locale = claim.locale
    agent = claim.filed_by.partner
    filed_by = claim.filed_by.name + (f" ({agent.name})" if agent is not None else "")
    assert version.ended_at is not None
    return ClaimDocument(
        locale=locale,
        number=claim.number,
        filed_at=claim.filed_at,
        claimed_on=claim.claimed_on,
        paper=claim.channel == ClaimChannel.PAPER,
        provider_name=provider.name(locale) if provider else "",
        provider_registration_number=provider.registration_number if provider else "",
        provider_address=provider.address if provider else "",
        organisation_name=claim.organisation.legal_name,
        contract_id=contract.id,
        service_name=contract.service.name(locale),
        plan_name=contract.plan.name(locale),
        filed_by=filed_by,
        incident_reference=claim.incident.reference,
        incident_version=version.version,
        incident_title=version.title(locale),
        incident_kind=incident_kind_name(version.kind),
        started_at=version.started_at,
        ended_at=version.ended_at,
        occurrence_announced_at=version.occurrence_announced_at,
        recovery_announced_at=version.recovery_announced_at,
        billing_month=claim.billing_month,
        monthly_fee=claim.monthly_fee,
        reasoning=tuple(reasoning),
        amount=claim.computed_amount,
        tax_rate_percent=claim.tax_rate_percent,
        claim_deadline=claim_deadline(version.ended_at),
    )


def render_claim_pdf(doc: ClaimDocument) -> bytes:
    """The A4 PDF of a claim in `doc.locale`; the same document gives the same bytes.

    Call it within an app context. The PDF's dates and file id are fixed by reportlab's
    invariant mode, and no clock is read.
    """
    register_fonts()
    with force_locale(doc.locale):
        return _Renderer(doc).render()


_SIZE = 9
_LEADING = 13
_SMALL = 7.5
_LABEL_WIDTH = 42 * mm
_NUMBER_WIDTH = 8 * mm
_AMOUNT_LABEL_WIDTH = WIDTH * 0.55
_AMOUNT_WIDTH = WIDTH * 0.2

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
_REASONING = TableStyle(
    [
        *_BASE,
        ("LINEABOVE", (0, 0), (-1, 0), 0.4, GRID),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, GRID),
        ("RIGHTPADDING", (0, 0), (0, -1), 0),
    ]
)
_AMOUNT = TableStyle(
    [
        *_BASE,
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        ("BACKGROUND", (0, 0), (-1, -1), SHADE),
        ("BOX", (0, 0), (-1, -1), 0.8, colors.black),
        ("LINEBELOW", (0, 0), (-1, 0), 0.4, GRID),
        ("FONTSIZE", (1, 0), (1, 0), 13),
        ("LEADING", (1, 0), (1, 0), 17),
        ("TOPPADDING", (0, 0), (-1, -1), 5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
    ]
)


class _Renderer:
    def __init__(self, doc: ClaimDocument) -> None:
        self.doc = doc
        # Japanese breaks between any two characters; English between words only.
        wrap = "CJK" if doc.locale == "ja" else None
        self.style = ParagraphStyle(
            "claim", fontName=FONT_NAME, fontSize=_SIZE, leading=_LEADING, wordWrap=wrap
        )
        self.issuer_style = ParagraphStyle("claim-issuer", parent=self.style, alignment=TA_RIGHT)
        self.heading = ParagraphStyle(
            "claim-heading", parent=self.style, spaceAfter=1 * mm, keepWithNext=1
        )
        self.amount_style = ParagraphStyle(
            "claim-amount", parent=self.style, fontSize=13, leading=17
        )
        self.small = ParagraphStyle(
            "claim-small", parent=self.style, fontSize=_SMALL, leading=10, textColor=MUTED
        )
        self.title_style = ParagraphStyle("claim-title", parent=self.style, fontSize=16, leading=22)

    def p(self, text: str, style: ParagraphStyle | None = None) -> Paragraph:
        """A Paragraph of plain text: user and translated text is escaped, never markup."""
        return Paragraph(escape(text).replace("\n", "<br/>"), style or self.style)

    def billing_month(self) -> str:
        """The incident's billing month as people write it: 2027年2月度, 2027-02."""
        if self.doc.locale != "ja":
            return self.doc.billing_month
        year, month = (int(part) for part in self.doc.billing_month.split("-"))
        return f"{year}年{month}月度"

    def day(self, value: date) -> str:
        return format_day(value, self.doc.locale)

    def instant(self, value: datetime | None) -> str:
        return format_instant(value, self.doc.locale) if value is not None else _("not announced")

    def registration(self) -> str:
        number = self.doc.provider_registration_number
        return _("Registration number: %(number)s", number=number) if number else ""

    def facts(self, rows: list[tuple[str, str]]) -> Table:
        value_width = WIDTH - _LABEL_WIDTH
        return Table(
            [[self.p(label), self.p(value)] for label, value in rows],
            colWidths=[_LABEL_WIDTH, value_width],
            hAlign="LEFT",
            style=_FACTS,
        )

    def header(self) -> list[Flowable]:
        """The title, and the provider the claim is addressed to."""
        doc = self.doc
        issuer = "\n".join(
            part for part in (doc.provider_name, self.registration(), doc.provider_address) if part
        )
        table = Table(
            [
                [
                    self.p(_("SLA compensation claim"), self.title_style),
                    self.p(issuer, self.issuer_style),
                ]
            ],
            colWidths=[WIDTH * 0.55, WIDTH * 0.45],
            hAlign="LEFT",
            style=_HEADER,
        )
        return [table, Spacer(1, 6 * mm)]

    def claim(self) -> list[Flowable]:
        """Who claims, when the claim reached the provider, and for which contract (R-52)."""
        doc = self.doc
        rows = [
            (_("Claim number"), doc.number),
            (_("Claimed by"), doc.organisation_name),
            (_("Filed by"), doc.filed_by),
            (
                (_("Claim received on"), self.day(doc.claimed_on))
                if doc.paper
                else (_("Filed on"), format_instant(doc.filed_at, doc.locale))
            ),
            (
                _("Contract"),
                _(
                    "Contract no. %(id)d, %(service)s, %(plan)s",
                    id=doc.contract_id,
                    service=doc.service_name,
                    plan=doc.plan_name,
                ),
            ),
        ]
        if doc.paper:
            rows.append((_("How it was received"), _("By letter or telephone")))
        return [self.facts(rows), Spacer(1, 5 * mm)]

    def incident(self) -> list[Flowable]:
        """The incident in the version the claim rests on, and the time left to claim."""
        doc = self.doc
        rows = [
            (
                _("Incident"),
                _(
                    "%(reference)s (version %(version)d): %(title)s",
                    reference=doc.incident_reference,
                    version=doc.incident_version,
                    title=doc.incident_title,
                ),
            ),
            (_("Kind"), doc.incident_kind),
            (_("Began"), format_instant(doc.started_at, doc.locale)),
            (_("Ended"), format_instant(doc.ended_at, doc.locale)),
            (_("Occurrence announced"), self.instant(doc.occurrence_announced_at)),
            (_("Recovery announced"), self.instant(doc.recovery_announced_at)),
            (_("Billing month"), self.billing_month()),
            (_("Monthly fee in that month"), format_yen(doc.monthly_fee)),
            (_("Claimable until"), self.day(doc.claim_deadline)),
        ]
        return [
            self.p(_("The incident, as recorded"), self.heading),
            self.facts(rows),
            Spacer(1, 5 * mm),
        ]

    def reasoning(self) -> list[Flowable]:
        """The computation, one numbered line per step, wrapped lines hanging under the text."""
        text_width = WIDTH - _NUMBER_WIDTH
        table = Table(
            [[f"{n}.", self.p(line)] for n, line in enumerate(self.doc.reasoning, start=1)],
            colWidths=[_NUMBER_WIDTH, text_width],
            hAlign="LEFT",
            style=_REASONING,
        )
        return [
            self.p(_("How the compensation is computed"), self.heading),
            table,
            Spacer(1, 5 * mm),
        ]

    def amount(self) -> list[Flowable]:
        """The amount claimed, tax excluded, and the contract's tax rate. The tax itself is
        not printed: the invoice that carries the credit computes it once per rate on its
        total after returns, so the credit's effect on it is only known there (R-53)."""
        doc = self.doc
        table = Table(
            [
                [
                    self.p(_("Compensation claimed (tax excluded)"), self.amount_style),
                    format_yen(doc.amount),
                ],
                [self.p(_("Tax rate")), format_rate(doc.tax_rate_percent)],
            ],
            colWidths=[_AMOUNT_LABEL_WIDTH, _AMOUNT_WIDTH],
            hAlign="LEFT",
            style=_AMOUNT,
        )
        return [table, Spacer(1, 6 * mm)]

    def notes(self) -> list[Flowable]:
        notes = [
            _(
                "The compensation is computed by the portal from the incident as recorded, the "
                "monthly fee in force in its billing month and the maintenance windows; at most "
                "one monthly fee per billing month."
            ),
            _(
                "Once approved, it is deducted from your next invoice, with its consumption tax; "
                "an invoice never goes below zero and what is left is deducted from the next one."
            ),
        ]
        return [self.p(note, self.small) for note in notes]

    def render(self) -> bytes:
        doc = self.doc
        story: list[Flowable] = [
            *self.header(),
            *self.claim(),
            *self.incident(),
            *self.reasoning(),
            *self.amount(),
            *self.notes(),
        ]
        return build_pdf(
            story,
            title=f"{_('SLA compensation claim')} {doc.number}",
            author=doc.provider_name,
            subject=doc.organisation_name,
            locale=doc.locale,
            footer="  ".join(p for p in (doc.provider_name, self.registration(), doc.number) if p),
        )
