"""The CSV + ZIP import of card holders, its files (R-83, R-85 readings): the encodings
Japanese offices save (UTF-8 with or without BOM, Shift_JIS / CP932 from Excel), Japanese or
English headers, the text rules of the one-holder form (half-width kana made full-width,
formulas refused), and a ZIP whose directory is checked before any photo is read."""

from __future__ import annotations

import io
import zipfile

import pytest
from flask import Flask

from portal.services import card_holders
from portal.services.card_imports import (
    MAX_ROWS,
    ImportRefused,
    decode_csv,
    open_zip,
    read_table,
)


@pytest.fixture(scope="module", autouse=True)
def app_context():
    app = Flask(__name__)
    from flask_babel import Babel

    Babel(app)
    with app.test_request_context():
        yield


CSV_JA = "氏名,フリガナ,社員番号,部署,役職,写真\n山田 太郎,ﾔﾏﾀﾞ ﾀﾛｳ,E001,総務部,課長,yamada.jpg\n"


def make_zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


# --- encodings ------------------------------------------------------------------------------


def test_utf8_with_a_bom_is_read_without_the_bom():
    text = decode_csv(b"\xef\xbb\xbf" + CSV_JA.encode())
    assert text.startswith("氏名")
    assert read_table(text).columns["name"] == 0


def test_utf8_without_a_bom_is_read():
    assert decode_csv(CSV_JA.encode()) == CSV_JA


def test_cp932_from_excel_is_read_with_its_half_width_kana():
    data = CSV_JA.encode("cp932")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = decode_csv(data)
    assert "ﾔﾏﾀﾞ ﾀﾛｳ" in text
    table = read_table(text)
    (number, cells) = table.records[0]
    assert number == 2
    details, problems = card_holders.clean(
        {column: cells[index] for column, index in table.columns.items()}
    )
    assert problems == {}
    assert details.name_kana == "ヤマダ タロウ"  # full-width, the dakuten joined


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("氏名,社員番号\n".encode("utf-16"), "neither UTF-8 nor Shift_JIS"),
        (b"\x81\x00\xff\xfe garbage", "neither UTF-8 nor Shift_JIS"),
        (make_zip({"[Content_Types].xml": b"<x/>"}), "Excel workbook"),
        (b"\xef\xbb\xbf\x82\xa0", "neither UTF-8 nor Shift_JIS"),  # a BOM, then Shift_JIS
    ],
)
def test_other_encodings_are_refused_with_what_to_do(data, message):
    with pytest.raises(ImportRefused, match=message):
        decode_csv(data)


# --- the header and rows ----------------------------------------------------------------------


def test_english_headers_in_any_case_and_order_are_accepted_and_others_ignored():
    table = read_table("Employee Number,NAME,Notes,photo\nE1,Taro,x,t.jpg\n")
    assert table.columns == {"employee_number": 0, "name": 1, "photo": 3}
    assert table.ignored == ["Notes"]


def test_a_tab_separated_file_is_read():
    table = read_table("氏名\t社員番号\n山田\tE1\n")
    assert table.records == [(2, ["山田", "E1"])]


def test_rows_of_empty_cells_left_by_excel_are_skipped():
    table = read_table("氏名,社員番号\n山田,E1\n,\n , \n佐藤,E2\n")
    assert [number for number, _cells in table.records] == [2, 5]


def test_a_file_without_name_and_employee_number_columns_is_refused():
    with pytest.raises(ImportRefused, match="must name the columns"):
        read_table("山田,E1\n佐藤,E2\n")


def test_a_file_with_only_a_header_is_refused():
    with pytest.raises(ImportRefused, match="no holders"):
        read_table("氏名,社員番号\n")


def test_more_rows_than_the_limit_are_refused():
    text = "氏名,社員番号\n" + "".join(f"N,E{i}\n" for i in range(MAX_ROWS + 1))
    with pytest.raises(ImportRefused, match="at most 2000"):
        read_table(text)


# --- the text rules (shared with the one-holder form) ------------------------------------------


@pytest.mark.parametrize(
    "value", ['=HYPERLINK("http://x")', "+81", "-1", "@SUM(A1)", "  =1", "＝1", "　＋1", "\t@x"]
)
def test_a_value_that_looks_like_a_formula_is_refused(value):
    problem = card_holders.text_problem("name", value)
    assert problem and "formula" in problem


def test_a_nul_byte_or_control_character_is_refused():
    assert "cannot be used" in card_holders.text_problem("department", "総務\x00部")
    assert "cannot be used" in card_holders.text_problem("title", "課長\x1b")


def test_lengths_are_bounded_after_normalising():
    assert card_holders.text_problem("name", "あ" * 100) is None
    assert "at most 100" in card_holders.text_problem("name", "あ" * 101)
    assert "at most 40" in card_holders.text_problem("employee_number", "1" * 41)


def test_the_employee_number_is_stored_in_plain_width():
    assert card_holders.normalise("employee_number", " Ｅ００１ ") == "E001"
    assert card_holders.normalise("name", "ｶﾞｯｺｳ　") == "ガッコウ"
    assert card_holders.normalise("name", "ＡＢＣ") == "ＡＢＣ"  # only half-width kana change


# --- the ZIP's directory -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../../x.jpg", "/etc/passwd", "photos/../../x.jpg", "C:\\x.jpg"])
def test_a_zip_with_an_unsafe_path_is_refused(name):
    with pytest.raises(ImportRefused, match="unsafe path"):
        open_zip(make_zip({"ok.jpg": b"x", name: b"x"}))


def test_a_zip_whose_directory_promises_too_much_is_refused_before_reading(monkeypatch):
    """The limit (400 MB) scaled down to 1 MB: five members of 300 KB of zeros, a ZIP of a
    few KB, refused from its directory alone."""
    from portal.services import card_imports

    monkeypatch.setattr(card_imports, "MAX_ZIP_UNCOMPRESSED", 1024 * 1024)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(5):
            archive.writestr(f"p{i}.jpg", b"\x00" * 300_000)
    assert len(out.getvalue()) < 20_000
    monkeypatch.setattr(zipfile.ZipFile, "open", None)  # reading a member would fail
    with pytest.raises(ImportRefused, match="unpack to more than 1 MB"):
        open_zip(out.getvalue())


def test_a_file_that_is_not_a_zip_is_refused():
    with pytest.raises(ImportRefused, match="could not be read"):
        open_zip(b"not a zip at all")


def test_zip_members_named_in_cp932_by_japanese_windows_are_found_by_their_names():
    name = "山田.jpg".encode("cp932")
    # Japanese Windows writes the name in CP932 without the UTF-8 flag: a name of the same
    # length written by Python, then its bytes replaced in both headers.
    archive = make_zip({"ABCD.jpg": b"data"})
    assert len(name) == len(b"ABCD.jpg")
    data = archive.replace(b"ABCD.jpg", name)
    assert "山田.jpg" in open_zip(data).members


def test_folders_are_kept_in_member_names():
    assert set(open_zip(make_zip({"photos/a.jpg": b"1", "b.jpg": b"2"})).members) == {
        "photos/a.jpg",
        "b.jpg",
    }
