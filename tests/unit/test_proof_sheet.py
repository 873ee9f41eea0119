"""The proof sheet of a card order (R-85: for production's printer): one card per card
ordered, at ID-1 size, with the holders' Japanese names, and never a rule ID or an amount
(R-80: the service is free)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import BytesIO

import pytest
from flask import Flask
from flask_babel import force_locale
from pypdf import PdfReader

from portal.documents.proof_sheet import (
    CARDS_PER_PAGE,
    ProofSheet,
    card_sheet_cards,
    render_proof_sheet,
)
from portal.domain.inet import CardDesign
from tests.factories import sample_jpeg
from tests.unit.test_invoice_pdf import fonts_of


@dataclass
class _Item:
    name: str
    name_kana: str
    employee_number: str
    department: str
    title: str
    quantity: int


ITEMS = [
    _Item("山田 太郎", "ヤマダ タロウ", "E-001", "総務部", "課長", 3),
    _Item("佐藤 花子", "サトウ ハナコ", "E-002", "経理部", "", 1),
    _Item("髙橋 一郎", "タカハシ イチロウ", "E-003", "営業部 第一営業課", "主任", 2),
    _Item("鈴木 次郎", "スズキ ジロウ", "E-004", "開発部", "", 4),
]


@pytest.fixture(scope="module")
def app() -> Flask:
    app = Flask(__name__)
    from flask_babel import Babel

    Babel(app)
    return app


def _sheet(design: CardDesign, items=ITEMS, *, photo: bytes | None = None) -> ProofSheet:
    return ProofSheet(
        order_number="IC-000123",
        organisation="アルファ株式会社",
        design=design,
        design_name=design.value,
        cards=card_sheet_cards(items, lambda item: photo),
        locale="ja",
    )


def _text(pdf: bytes) -> tuple[int, str]:
    reader = PdfReader(BytesIO(pdf))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


@pytest.mark.parametrize("design", list(CardDesign))
def test_ten_cards_ordered_are_ten_cards_on_two_pages_with_the_japanese_names(app, design):
    """Quantities 3 + 1 + 2 + 4 give ten cards: eight on the first A4 page, two on the next;
    each card carries its holder's name and employee number."""
    photo = sample_jpeg()
    with app.test_request_context(), force_locale("en"):
        pdf = render_proof_sheet(_sheet(design, photo=photo))
    pages, text = _text(pdf)
    assert pages == 2 == -(-10 // CARDS_PER_PAGE)
    compact = text.replace(" ", "")
    for item in ITEMS:
        assert compact.count(item.name.replace(" ", "")) == item.quantity, item.name
        assert compact.count(f"No.{item.employee_number}") == item.quantity
    assert "タカハシイチロウ" in compact
    assert text.count("IC-000123") == 2  # the order number on every page
    assert compact.count("アルファ株式会社") == 2 + 10  # each page's header and each card


def test_pages_are_a4_and_only_the_embedded_japanese_font_is_used(app):
    with app.test_request_context():
        pdf = render_proof_sheet(_sheet(CardDesign.NAVY))
    reader = PdfReader(BytesIO(pdf))
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)
    fonts = fonts_of(pdf)
    assert fonts
    for font in fonts:
        assert str(font["/BaseFont"]).endswith("+IPAexGothic"), font["/BaseFont"]
        assert "/FontFile2" in font["/FontDescriptor"].get_object()


def test_a_missing_photo_is_marked_for_the_printer_and_no_rule_id_or_amount_appears(app):
    with app.test_request_context(), force_locale("en"):
        pdf = render_proof_sheet(_sheet(CardDesign.STANDARD, ITEMS[:1], photo=None))
    pages, text = _text(pdf)
    assert pages == 1
    assert text.count("No photo") == 3
    assert not re.search(r"\bR-\d\d\b", text)
    assert "¥" not in text and "円" not in text and "yen" not in text.lower()


def test_a_photo_that_cannot_be_read_is_shown_as_missing(app):
    with app.test_request_context(), force_locale("en"):
        pdf = render_proof_sheet(_sheet(CardDesign.VISITOR, ITEMS[1:2], photo=b"not a jpeg"))
    assert "No photo" in _text(pdf)[1]
