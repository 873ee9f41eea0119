"""The font every PDF document is set in: IPAexGothic, vendored in portal/static/fonts/.

reportlab embeds a TrueType font registered through `TTFont` as a subset of the glyphs a
document uses, so the PDF shows the same on a reader without Japanese fonts. Its built-in CID
fonts (HeiseiKakuGo-W5 and the like) are never embedded and must not be used.
"""

from __future__ import annotations

import threading
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIR = Path(__file__).resolve().parent.parent / "static" / "fonts"
FONT_NAME = "IPAexGothic"
FONT_FILE = FONT_DIR / "ipaexg.ttf"

_lock = threading.Lock()


def register_fonts() -> str:
    """Register IPAexGothic with reportlab once per process and return its font name.

    The face has Latin, kana and kanji, so one font serves Japanese and English documents.
    It has no bold or italic: the family maps them to the regular face so that <b> and <i>
    in a Paragraph do not fail.
    """
    if FONT_NAME in pdfmetrics.getRegisteredFontNames():
        return FONT_NAME
    with _lock:
        if FONT_NAME not in pdfmetrics.getRegisteredFontNames():
            # The family first: other threads take the registered font name as "ready".
            pdfmetrics.registerFontFamily(
                FONT_NAME,
                normal=FONT_NAME,
                bold=FONT_NAME,
                italic=FONT_NAME,
                boldItalic=FONT_NAME,
            )
            font = TTFont(FONT_NAME, str(FONT_FILE))
            _keep_tables(font)
            pdfmetrics.registerFont(font)
    return FONT_NAME


def _keep_tables(font: TTFont) -> None:
    """Keep the font's tables once read, instead of slicing them out of the file again.

    reportlab makes each document's subset from the parsed font, but copies the whole glyph
    table (5.6 MB of IPAexGothic) for every subset it makes: about 1.3 ms of each document.
    The tables come from the immutable bytes of the file, so the copy kept (5.6 MB once per
    process) is as good as a new one, and the PDFs come out byte for byte the same.
    """
    face = font.face
    read = face.get_table
    tables: dict[str, bytes] = {}

    def get_table(tag: str) -> bytes:
        data = tables.get(tag)
        if data is None:
            data = tables[tag] = read(tag)
        return data

    face.get_table = get_table
