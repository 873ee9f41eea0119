"""The proof sheet of a card order, for the printer (R-85: production staff only).

A4 pages with every card of the order drawn at ID-1 size (85.60 x 53.98 mm), two across and
four down, each with crop marks at its corners: the holder's photo, name, kana, employee
number, department and title, in the order's design; the order number, the organisation and
the page on every page.

Rendered on each request and never stored: it holds the holders' photos, which are deleted
on time (R-83) and must not outlive them in a document store. No amount is on it: the
service is free (R-80).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

from flask_babel import gettext as _
from flask_babel import ngettext
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from portal.documents.fonts import register_fonts
from portal.domain.inet import CardDesign

CARD_WIDTH = 85.60 * mm  # ISO/IEC 7810 ID-1
CARD_HEIGHT = 53.98 * mm
COLUMNS, ROWS = 2, 4
CARDS_PER_PAGE = COLUMNS * ROWS
GAP = 10 * mm  # between cards: room for the crop marks of both
CROP_OFFSET = 1.5 * mm
CROP_LENGTH = 3.5 * mm
HEADER = 26 * mm
PHOTO_WIDTH, PHOTO_HEIGHT = 24 * mm, 32 * mm  # 3:4, the photo box of every design


@dataclass(frozen=True)
class Colours:
    """How a design looks: the card, its band and the lettering on each."""

    card: colors.Color
    band: colors.Color
    band_text: colors.Color
    text: colors.Color
    accent: colors.Color


DESIGN_COLOURS: dict[CardDesign, Colours] = {
    CardDesign.STANDARD: Colours(
        card=colors.white,
        band=colors.white,
        band_text=colors.HexColor("#1d4ed8"),
        text=colors.HexColor("#111827"),
        accent=colors.HexColor("#1d4ed8"),
    ),
    CardDesign.NAVY: Colours(
        card=colors.white,
        band=colors.HexColor("#1b2a4a"),
        band_text=colors.white,
        text=colors.HexColor("#111827"),
        accent=colors.HexColor("#1b2a4a"),
    ),
    CardDesign.VISITOR: Colours(
        card=colors.HexColor("#fffaf0"),
        band=colors.HexColor("#c2410c"),
        band_text=colors.white,
        text=colors.HexColor("#111827"),
        accent=colors.HexColor("#c2410c"),
    ),
}


@dataclass(frozen=True)
class ProofCard:
    """One card as it will be printed (one per card ordered: a quantity of 3 is 3 cards)."""

    name: str
    name_kana: str
    employee_number: str
    department: str
    title: str
    photo: bytes | None


@dataclass(frozen=True)
class ProofSheet:
    order_number: str
    organisation: str
    design: CardDesign
    design_name: str
    cards: list[ProofCard]
    locale: str


def render_proof_sheet(sheet: ProofSheet) -> bytes:
    """The PDF, in memory."""
    font = register_fonts()
    out = BytesIO()
    canvas = Canvas(out, pagesize=A4, pageCompression=1, invariant=1, initialFontName=font)
    canvas.setTitle(_("Proof sheet %(number)s", number=sheet.order_number))
    canvas.setAuthor("I-NET SERVICE")
    pages = max(1, -(-len(sheet.cards) // CARDS_PER_PAGE))
    width, height = A4
    left = (width - (COLUMNS * CARD_WIDTH + (COLUMNS - 1) * GAP)) / 2
    top = height - HEADER - 12 * mm  # below the header line, with room for the crop marks
    for page in range(pages):
        _header(canvas, font, sheet, page + 1, pages)
        chunk = sheet.cards[page * CARDS_PER_PAGE : (page + 1) * CARDS_PER_PAGE]
        for n, card in enumerate(chunk):
            column, row = n % COLUMNS, n // COLUMNS
            x = left + column * (CARD_WIDTH + GAP)
            y = top - (row + 1) * CARD_HEIGHT - row * GAP
            _crop_marks(canvas, x, y)
            _card(canvas, font, sheet, card, x, y)
        canvas.showPage()
    canvas.save()
    return out.getvalue()


def _header(canvas: Canvas, font: str, sheet: ProofSheet, page: int, pages: int) -> None:
    width, height = A4
    margin = 15 * mm
    canvas.setFillColor(colors.black)
    canvas.setFont(font, 13)
    canvas.drawString(
        margin,
        height - margin - 2 * mm,
        _("Proof sheet %(number)s", number=sheet.order_number),
    )
    canvas.setFont(font, 9)
    canvas.drawString(margin, height - margin - 8 * mm, _fit(sheet.organisation, font, 9, 120 * mm))
    line = ngettext(
        "Design: %(design)s · %(num)d card",
        "Design: %(design)s · %(num)d cards",
        len(sheet.cards),
        design=sheet.design_name,
    )
    canvas.drawString(margin, height - margin - 13 * mm, line)
    canvas.drawRightString(
        width - margin, height - margin - 2 * mm, _("Page %(n)d of %(total)d", n=page, total=pages)
    )
    canvas.drawRightString(
        width - margin,
        height - margin - 8 * mm,
        _("Cards at actual size (85.60 × 53.98 mm)"),
    )
    canvas.setStrokeColor(colors.HexColor("#b8b8b8"))
    canvas.setLineWidth(0.5)
    canvas.line(margin, height - margin - 16 * mm, width - margin, height - margin - 16 * mm)


def _crop_marks(canvas: Canvas, x: float, y: float) -> None:
    """Short hairlines outside each corner, where the card is cut."""
    canvas.setStrokeColor(colors.black)
    canvas.setLineWidth(0.25)
    for cx, sx in ((x, -1), (x + CARD_WIDTH, 1)):
        for cy, sy in ((y, -1), (y + CARD_HEIGHT, 1)):
            start = CROP_OFFSET
            end = CROP_OFFSET + CROP_LENGTH
            canvas.line(cx + sx * start, cy, cx + sx * end, cy)  # horizontal mark
            canvas.line(cx, cy + sy * start, cx, cy + sy * end)  # vertical mark


def _fit(text: str, font: str, size: float, width: float) -> str:
    """The text, shortened with an ellipsis if it is wider than `width`."""
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text + "…"


def _line(
    canvas: Canvas, font: str, text: str, x: float, y: float, width: float, size: float
) -> None:
    """One line of the card, shrunk down to 70% before it is shortened."""
    smallest = size * 0.7
    while size > smallest and stringWidth(text, font, size) > width:
        size -= 0.5
    canvas.setFont(font, size)
    canvas.drawString(x, y, _fit(text, font, size, width))


def _card(
    canvas: Canvas, font: str, sheet: ProofSheet, card: ProofCard, x: float, y: float
) -> None:
    look = DESIGN_COLOURS[sheet.design]
    band = 10 * mm
    canvas.saveState()
    path = canvas.beginPath()
    path.roundRect(x, y, CARD_WIDTH, CARD_HEIGHT, 3 * mm)
    canvas.setFillColor(look.card)
    canvas.setStrokeColor(colors.HexColor("#9ca3af"))
    canvas.setLineWidth(0.4)
    canvas.drawPath(path, fill=1, stroke=1)
    canvas.clipPath(path, stroke=0, fill=0)
    # The band across the top with the organisation's name.
    canvas.setFillColor(look.band)
    canvas.rect(x, y + CARD_HEIGHT - band, CARD_WIDTH, band, stroke=0, fill=1)
    if sheet.design == CardDesign.STANDARD:
        canvas.setStrokeColor(look.accent)
        canvas.setLineWidth(0.8)
        canvas.line(
            x + 4 * mm, y + CARD_HEIGHT - band, x + CARD_WIDTH - 4 * mm, y + CARD_HEIGHT - band
        )
    canvas.setFillColor(look.band_text)
    _line(
        canvas,
        font,
        sheet.organisation,
        x + 4 * mm,
        y + CARD_HEIGHT - 6.5 * mm,
        CARD_WIDTH - 8 * mm,
        9,
    )
    # The photo on the left, 3:4.
    large = sheet.design == CardDesign.VISITOR
    pw, ph = (PHOTO_WIDTH * 1.12, PHOTO_HEIGHT * 1.12) if large else (PHOTO_WIDTH, PHOTO_HEIGHT)
    px, py = x + 4 * mm, y + CARD_HEIGHT - band - 2.5 * mm - ph
    _photo(canvas, font, card.photo, px, py, pw, ph)
    # The text on the right.
    tx = px + pw + 4 * mm
    tw = x + CARD_WIDTH - 4 * mm - tx
    ty = y + CARD_HEIGHT - band - 7 * mm
    canvas.setFillColor(look.text)
    # The large-photo design puts the department first, above the name.
    lines = [(card.department, 8.5)] if large else []
    lines += [(card.name, 13.0), (card.name_kana, 7.0)]
    if not large:
        lines.append((card.department, 8.0))
    lines.append((card.title, 8.0))
    for text, size in lines:
        if text:
            _line(canvas, font, text, tx, ty, tw, size)
        ty -= size * 0.45 * mm + 3 * mm
    canvas.setFillColor(look.accent)
    canvas.setFont(font, 7)
    canvas.drawString(tx, y + 4 * mm, _fit(f"No. {card.employee_number}", font, 7, tw))
    canvas.restoreState()


def _photo(
    canvas: Canvas, font: str, photo: bytes | None, x: float, y: float, w: float, h: float
) -> None:
    if photo:
        try:
            canvas.drawImage(ImageReader(BytesIO(photo)), x, y, w, h, preserveAspectRatio=False)
            return
        except (OSError, ValueError):
            pass  # a photo that cannot be read is shown as missing, for the printer to see
    canvas.setFillColor(colors.HexColor("#e5e7eb"))
    canvas.setStrokeColor(colors.HexColor("#dc2626"))
    canvas.rect(x, y, w, h, stroke=1, fill=1)
    canvas.setFillColor(colors.HexColor("#dc2626"))
    canvas.setFont(font, 7)
    canvas.drawCentredString(x + w / 2, y + h / 2, _("No photo"))


def card_sheet_cards(items: list, photo_of: Callable[[object], bytes | None]) -> list[ProofCard]:
    """One ProofCard per card ordered: an item for 3 cards is drawn 3 times."""
    cards = []
    for item in items:
        photo = photo_of(item)
        card = ProofCard(
            name=item.name,
            name_kana=item.name_kana,
            employee_number=item.employee_number,
            department=item.department,
            title=item.title,
            photo=photo,
        )
        cards.extend([card] * item.quantity)
    return cards
