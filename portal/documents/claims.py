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
from functools import partial
from io import BytesIO
from typing import Any
from xml.sax.saxutils import escape

from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
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
    format_instant,
    format_rate,
    format_yen,
)
from portal.documents.fonts import FONT_NAME, register_fonts
from portal.domain.money import tax_on
from portal.domain.sla import claim_deadline
from portal.models import ClaimChannel, Provider, SlaClaim
from portal.presentation import incident_kind_name

_LABEL_WIDTH = 42 * mm
_SIZE = 9


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

    @property
    def tax(self) -> int:
        """The consumption tax the credit will return with it, at the contract's rate."""
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
    """The A4 PDF of a claim in `doc.locale`; the same document gives the same bytes."""
    register_fonts()
    with force_locale(doc.locale):
        return _Renderer(doc).render()


_BASE = [
    ("FONTNAME", (0, 0), (-1, -1), FONT_NAME),
    ("FONTSIZE", (0, 0), (-1, -1), _SIZE),
    ("LEADING", (0, 0), (-1, -1), 13),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("TOPPADDING", (0, 0), (-1, -1), 3),
    ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
]
_FACTS = TableStyle(
    [
        *_BASE,
        ("BACKGROUND", (0, 0), (0, -1), SHADE),
        ("LINEABOVE", (0, 0), (-1, 0), 0.4, GRID),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, GRID),
    ]
)
_AMOUNT = TableStyle(
    [
        *_BASE,
        ("FONTSIZE", (0, 0), (-1, -1), 12),
        ("LEADING", (0, 0), (-1, -1), 16),
        ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        ("BACKGROUND", (0, 0), (-1, -1), SHADE),
        ("BOX", (0, 0), (-1, -1), 0.8, colors.black),
        ("TOPPADDING", (0, 0), (-1, -1), 5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
    ]
)


class _Renderer:
    def __init__(self, doc: ClaimDocument) -> None:
        self.doc = doc
        wrap = "CJK" if doc.locale == "ja" else None
        self.style = ParagraphStyle(
            "claim", fontName=FONT_NAME, fontSize=_SIZE, leading=13, wordWrap=wrap
        )
        self.small = ParagraphStyle(
            "claim-small",
            parent=self.style,
            fontSize=7.5,
            leading=10,
            textColor=MUTED,
        )
        self.title_style = ParagraphStyle("claim-title", parent=self.style, fontSize=16, leading=22)

    def p(self, text: str, style: ParagraphStyle | None = None) -> Paragraph:
        return Paragraph(escape(text).replace("\n", "<br/>"), style or self.style)

    def instant(self, value: datetime | None) -> str:
        return format_instant(value, self.doc.locale) if value is not None else _("not announced")

    def facts(self, rows: list[tuple[str, str]]) -> Table:
        value_width = WIDTH - _LABEL_WIDTH
        return Table(
            [[self.p(label), self.p(value)] for label, value in rows],
            colWidths=[_LABEL_WIDTH, value_width],
            hAlign="LEFT",
            style=_FACTS,
        )

    def story(self) -> list[Flowable]:
        doc = self.doc
        issuer = "\n".join(
            part
            for part in (
                doc.provider_name,
                _("Registration number: %(number)s", number=doc.provider_registration_number)
                if doc.provider_registration_number
                else "",
                doc.provider_address,
            )
            if part
        )
        header = Table(
            [[self.p(_("SLA compensation claim"), self.title_style), self.p(issuer)]],
            colWidths=[WIDTH * 0.55, WIDTH * 0.45],
            hAlign="LEFT",
            style=TableStyle([*_BASE, ("LEFTPADDING", (0, 0), (0, -1), 0)]),
        )
        claim_rows = [
            (_("Claim number"), doc.number),
            (_("Claimed by"), doc.organisation_name),
            (_("Filed by"), doc.filed_by),
            (
                _("Received on") if doc.paper else _("Filed on"),
                format_day(doc.claimed_on, doc.locale)
                if doc.paper
                else format_instant(doc.filed_at, doc.locale),
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
            claim_rows.append((_("How it was received"), _("By letter or telephone")))
        incident_rows = [
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
            (_("Billing month"), doc.billing_month),
            (_("Monthly fee in that month"), format_yen(doc.monthly_fee)),
            (_("Claimable until"), format_day(doc.claim_deadline, doc.locale)),
        ]
        reasoning = Table(
            [[self.p(f"{n}. {line}")] for n, line in enumerate(doc.reasoning, start=1)],
            colWidths=[WIDTH],
            hAlign="LEFT",
            style=TableStyle([*_BASE, ("LINEBELOW", (0, 0), (-1, -1), 0.4, GRID)]),
        )
        amount = Table(
            [
                [self.p(_("Compensation claimed (tax excluded)")), format_yen(doc.amount)],
                [
                    self.p(
                        _(
                            "Consumption tax at %(rate)s returned with it",
                            rate=format_rate(doc.tax_rate_percent),
                        )
                    ),
                    format_yen(doc.tax),
                ],
            ],
            colWidths=[WIDTH * 0.6, WIDTH * 0.25],
            hAlign="LEFT",
            style=_AMOUNT,
        )
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
        return [
            header,
            Spacer(1, 6 * mm),
            self.facts(claim_rows),
            Spacer(1, 5 * mm),
            self.p(_("The incident, as recorded")),
            Spacer(1, 1 * mm),
            self.facts(incident_rows),
            Spacer(1, 5 * mm),
            self.p(_("How the compensation is computed")),
            Spacer(1, 1 * mm),
            reasoning,
            Spacer(1, 5 * mm),
            amount,
            Spacer(1, 6 * mm),
            *[self.p(note, self.small) for note in notes],
        ]

    def footer(self, canvas: Canvas, _template: Any) -> None:
        doc = self.doc
        canvas.saveState()
        canvas.setFont(FONT_NAME, 7)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN, 10 * mm, f"{doc.provider_name}  {doc.number}")
        canvas.drawRightString(
            PAGE[0] - MARGIN, 10 * mm, _("Page %(page)d", page=canvas.getPageNumber())
        )
        canvas.restoreState()

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
            title=f"{_('SLA compensation claim')} {doc.number}",
            author=doc.provider_name,
            subject=doc.organisation_name,
            creator=_("Contract portal"),
            lang=doc.locale,
            invariant=True,
            initialFontName=FONT_NAME,
        )
        template.build(
            self.story(),
            onFirstPage=partial(_Renderer.footer, self),
            onLaterPages=partial(_Renderer.footer, self),
        )
        return buffer.getvalue()
