"""What every PDF document shares: the languages, the formats of dates and yen, the page.

Formats are not translations: a date or an amount is written the same way whatever the
catalog holds, so they live here as plain functions of the document's locale.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from functools import partial
from io import BytesIO
from typing import Any

from flask_babel import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import SimpleDocTemplate
from reportlab.platypus.flowables import Flowable

from portal.clock import TOKYO

LOCALES = ("ja", "en")

PAGE = A4
MARGIN = 18 * mm
WIDTH = PAGE[0] - 2 * MARGIN
GRID = colors.HexColor("#b8b8b8")
SHADE = colors.HexColor("#f0f0f0")
MUTED = colors.HexColor("#555555")

_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def format_day(day: date, locale: str) -> str:
    """A date as "2027年4月20日" in Japanese and "20 April 2027" in English."""
    if locale == "ja":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day.day} {_EN_MONTHS[day.month - 1]} {day.year}"


def billing_month_parts(billing_month: str, start: date, end: date, locale: str) -> tuple[str, str]:
    """A billing month and its days, in two parts to set one above the other or side by side:
    "2027年2月度", "（2027年1月21日～2027年2月20日）" in Japanese and "billing month 2027-02",
    "(21 January 2027 – 20 February 2027)" in English."""
    first, last = format_day(start, locale), format_day(end, locale)
    if locale == "ja":
        year, month = (int(part) for part in billing_month.split("-"))
        return f"{year}年{month}月度", f"（{first}～{last}）"
    return f"billing month {billing_month}", f"({first} – {last})"


def format_instant(instant: datetime, locale: str) -> str:
    """R-01: an instant in Tokyo time, to the minute."""
    tokyo = instant.astimezone(TOKYO)
    return f"{format_day(tokyo.date(), locale)} {tokyo:%H:%M} JST"


def format_yen(amount: int) -> str:
    """R-13: whole yen, "¥385,000", in both languages."""
    return f"-¥{-amount:,}" if amount < 0 else f"¥{amount:,}"


def format_rate(rate_percent: int) -> str:
    return f"{rate_percent}%"


class PagedCanvas(Canvas):
    """A canvas that draws each page's footer once the number of pages is known, so that a
    footer can say "page n of m". Build with `canvasmaker=partial(PagedCanvas, footer=...)`."""

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


def build_pdf(
    story: list[Flowable], *, title: str, author: str, subject: str, locale: str, footer: str
) -> bytes:
    """An A4 document of the portal: the story, and on every page the `footer` text with
    "page n of m". Call within the document's force_locale. reportlab runs in invariant mode
    and nothing here reads the clock, so the same story gives the same bytes (R-42)."""
    from portal.documents.fonts import FONT_NAME

    buffer = BytesIO()
    template = SimpleDocTemplate(
        buffer,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 4 * mm,
        title=title,
        author=author,
        subject=subject,
        creator=_("Contract portal"),
        lang=locale,
        invariant=True,
        initialFontName=FONT_NAME,
    )

    # Drawn when the canvas is saved, which build() does within force_locale.
    def draw(canvas: Canvas, pages: int) -> None:
        canvas.saveState()
        canvas.setFont(FONT_NAME, 7)
        canvas.setFillColor(MUTED)
        canvas.drawString(MARGIN, 10 * mm, footer)
        canvas.drawRightString(
            PAGE[0] - MARGIN,
            10 * mm,
            _("Page %(page)d of %(pages)d", page=canvas.getPageNumber(), pages=pages),
        )
        canvas.restoreState()

    template.build(story, canvasmaker=partial(PagedCanvas, footer=draw))
    return buffer.getvalue()


# Where a Japanese address may break (besides a space), so that no name is split: after the
# prefecture, after a city, ward or county name (市川市|八幡, 町田市|原町田; not 四日市|市), and
# before the building that follows the block number (1-1-1|サンプルビル, 1号|ビル).
_PREFECTURE = re.compile(r"北海道|東京都|京都府|大阪府|[^\s\d０-９]{2,3}県")
_MUNICIPALITY_END = re.compile(r"(?<=[^\s都道府県市区郡町村][市区郡])(?=[^\s\d０-９市区郡町村])")
_BUILDING_START = re.compile(
    r"(?:[\d０-９][-－‐−][\d０-９]{1,4}|[\d０-９]号|番地)(?=[^\s\d０-９\-－‐−号番地丁目の,，.、。)）])"
)


def _address_pieces(text: str) -> list[str]:
    """The address cut where a line may end; a piece that starts a new word keeps its space."""
    pieces: list[str] = []
    for index, word in enumerate(text.split()):
        cuts = {m.start() for m in _MUNICIPALITY_END.finditer(word)}
        cuts |= {m.end() for m in _BUILDING_START.finditer(word)}
        prefecture = _PREFECTURE.match(word)
        if prefecture:
            cuts.add(prefecture.end())
        bounds = [0, *sorted(c for c in cuts if 0 < c < len(word)), len(word)]
        parts = [word[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
        pieces.extend([(" " if index else "") + parts[0], *parts[1:]])
    return pieces


def address_lines(text: str, width: float, font_name: str, size: float) -> list[str]:
    """An address set in lines of at most `width` points, broken only where an address may
    break (_address_pieces), never inside a name. A piece longer than a whole line stays one
    line (a wrapping Paragraph then breaks it)."""
    if stringWidth(text, font_name, size) <= width:
        return [text]
    lines: list[str] = []
    current = ""
    for piece in _address_pieces(text):
        candidate = current + piece
        if current and stringWidth(candidate, font_name, size) > width:
            lines.append(current)
            current = piece.lstrip()
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines
