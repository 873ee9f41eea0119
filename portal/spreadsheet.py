"""Cells of the CSV files the portal hands out, made safe for spreadsheets (CSV injection).

Excel and LibreOffice run a cell that starts with = + - @ (also in their full-width forms,
which Japanese input methods type: ＝ ＋ － ＠), or with a tab or carriage return, as a formula.
A value such text could come from (a name, an e-mail, a title) is written with a leading
apostrophe, which the spreadsheet shows as text and does not print.
"""

from __future__ import annotations

FORMULA_START = ("=", "+", "-", "@", "＝", "＋", "－", "＠", "\t", "\r")


def starts_like_a_formula(text: str) -> bool:
    """Whether a spreadsheet would run the text as a formula (leading spaces skipped, as Excel
    does for "  =1+1")."""
    return text.lstrip(" \u3000").startswith(FORMULA_START) or text.startswith(("\t", "\r"))


def safe_cell(value: object) -> object:
    """The value to write: text that would run as a formula, kept as text; anything else as is."""
    if isinstance(value, str) and starts_like_a_formula(value):
        return "'" + value
    return value
