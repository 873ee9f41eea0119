"""CSV cells a spreadsheet would run as formulas are written as text (issue 13: the consents CSV
did not neutralise them, and the invoice CSV missed the full-width forms)."""

from __future__ import annotations

import pytest

from portal.spreadsheet import safe_cell, starts_like_a_formula


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("http://x")',
        "+81 3 1234 5678",
        "-1+1",
        "@SUM(A1)",
        '＝HYPERLINK("http://x")',  # full-width, as a Japanese input method types it
        "＋１",
        "－１",
        "＠ｓｕｍ",
        "  =1+1",  # Excel skips leading spaces
        "\u3000＝1",  # and the ideographic space
        "\t=1",
        "\r=1",
    ],
)
def test_text_a_spreadsheet_would_run_is_kept_as_text(text):
    assert starts_like_a_formula(text)
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["山田 太郎", "admin@alpha.example", "K.K. = company", "", 42])
def test_anything_else_is_written_as_it_is(value):
    assert safe_cell(value) == value
