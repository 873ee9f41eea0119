"""The PDF of a request's quote, confirmation (R-32) or withdrawal (R-23): embedded font,
amounts (the tax once), dates, and no rule ID anywhere in the text."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime
from io import BytesIO

import pytest
from flask import Flask
from flask_babel import force_locale
from pypdf import PdfReader

from portal.documents.fonts import FONT_NAME, register_fonts
from portal.documents.requests import RequestDocument, render_request_pdf
from portal.domain import quotes
from portal.domain.quotes import Quote

# W-1: S = 2026-11-05, anchor day 21, M = 12, monthly fee ¥50,000.
W1 = quotes.ContractState(
    service_id=1,
    plan_id=1,
    monthly_fee=50_000,
    minimum_months=12,
    service_start=date(2026, 11, 5),
    anchor_day=21,
)
PRICES = quotes.PriceTerms(
    change_fee=5_000,
    plans=(
        quotes.PlanTerms(
            id=1, service_id=1, monthly_fee=50_000, minimum_months=12, capacity_gb=100
        ),
        quotes.PlanTerms(
            id=2, service_id=1, monthly_fee=100_000, minimum_months=12, capacity_gb=200
        ),
        quotes.PlanTerms(id=3, service_id=1, monthly_fee=30_000, minimum_months=6, capacity_gb=50),
    ),
)
ISSUED_AT = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
# A rule ID as RULES.md writes them; a request's reference (R-000123) is not one.
RULE_ID = re.compile(r"\bR-\d{2}\b")


def _quote(result: Quote | quotes.Refusal) -> Quote:
    assert isinstance(result, Quote), result
    return result


def w2_quote() -> Quote:
    """W-2: notice 2027-03-01 against the contract of W-1."""
    return _quote(quotes.quote_cancellation(W1, date(2027, 3, 1)))


def document(quote: Quote, **changes: object) -> RequestDocument:
    doc = RequestDocument(
        locale="en",
        is_confirmation=False,
        issued_at=ISSUED_AT,
        provider_name="株式会社イメージワークス",
        provider_registration_number="T1234567890123",
        provider_address="東京都千代田区丸の内1-1-1",
        organisation_name="株式会社サンプル商事",
        contract_id=123,
        service_name="Image Storage",
        current_plan_name="Standard 100 GB",
        requested_by="山田 太郎",
        quote=quote,
    )
    return dataclasses.replace(doc, **changes)


def render(app: Flask, doc: RequestDocument) -> bytes:
    with app.app_context(), force_locale(doc.locale):
        return render_request_pdf(doc)


def text_of(pdf: bytes) -> str:
    """The PDF's text with every run of white space, line breaks included, as one space."""
    text = " ".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)
    return " ".join(text.split())


def fonts_of(pdf: bytes) -> list:
    """Every font a page of the PDF uses, with Type0 fonts resolved to their descendants."""
    found = []
    for page in PdfReader(BytesIO(pdf)).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            found.extend(
                [d.get_object() for d in font["/DescendantFonts"]]
                if font["/Subtype"] == "/Type0"
                else [font]
            )
    return found


def test_the_ipaex_font_is_embedded_as_a_subset_and_no_font_is_left_out(app: Flask):
    pdf = render(app, document(w2_quote(), locale="ja"))

    assert pdf.startswith(b"%PDF-")
    assert b"/FontFile2" in pdf
    assert b"HeiseiKakuGo" not in pdf and b"HeiseiMin" not in pdf
    fonts = fonts_of(pdf)
    assert fonts
    for font in fonts:
        # A subset is named "ABCDEF+Name"; a font without a FontFile2 is not embedded.
        assert str(font["/BaseFont"]).endswith("+IPAexGothic"), font["/BaseFont"]
        assert "/FontFile2" in font["/FontDescriptor"].get_object(), font["/BaseFont"]


def test_the_font_is_registered_once_and_renders_latin_text_too():
    assert register_fonts() == register_fonts() == FONT_NAME
    from reportlab.pdfbase import pdfmetrics

    font = pdfmetrics.getFont(FONT_NAME)
    assert font.stringWidth("Total ¥385,000", 10) > 0
    assert font.stringWidth("合計", 10) > 0


def test_w2_quote_in_english_shows_the_dates_and_amounts(app: Flask):
    text = text_of(render(app, document(w2_quote())))

    assert "Quote: Cancellation" in text
    assert "1 March 2027" in text  # notice
    assert "20 April 2027" in text  # termination, a billing month end
    assert "the last day of billing month 2027-04" in text
    assert "20 November 2027" in text  # minimum term end E of W-1
    assert "7 billing months" in text  # unexpired
    assert "Minimum-term shortfall: the monthly fee for 7 billing months" in text
    assert "¥350,000" in text
    assert "Consumption tax at 10% on ¥350,000 ¥35,000" in text
    assert "¥385,000" in text
    # the invoice of billing month 2027-05 carries them, issued on its first day.
    assert "The invoice for billing month 2027-05, issued on 21 April 2027" in text
    assert "1 March 2027 10:00 JST" in text  # issued, in Tokyo time
    assert "T1234567890123" in text


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_the_tax_is_printed_once_and_no_rule_id_anywhere(app: Flask, locale: str):
    """R-13: one rate, one tax line (it printed the tax of the rate and again as a total).
    Rule IDs are for the code: the customer's document prints none (it printed R-30, R-31,
    R-13, R-40 ...), on quotes, confirmations and withdrawals alike."""
    quote = w2_quote()
    for doc in (
        document(quote, locale=locale),
        document(quote, locale=locale, is_confirmation=True, reference="R-000123"),
        document(
            quote, locale=locale, is_confirmation=True, reference="R-000123", withdrawn_by="X"
        ),
        document(
            _quote(quotes.quote_upgrade(W1, PRICES, date(2027, 1, 5), plan_id=2)), locale=locale
        ),
    ):
        text = text_of(render(app, doc))
        assert not RULE_ID.search(text), RULE_ID.search(text)
    text = text_of(render(app, document(quote, locale=locale)))
    assert text.count("¥35,000") == 1
    assert text.count("¥385,000") == 1
    assert text.count("¥350,000") == 3  # the shortfall, the subtotal, the taxable amount


def test_w2_quote_in_japanese_shows_japanese_dates_and_the_same_amounts(app: Flask):
    text = text_of(render(app, document(w2_quote(), locale="ja")))

    assert "株式会社サンプル商事" in text
    assert "2027年3月1日" in text
    assert "2027年4月20日" in text
    assert "2027年11月20日" in text
    assert "2027年4月21日" in text  # the invoice's issue date
    assert "2027年5月度" in text  # the billing month, as written in Japanese
    assert "2027年3月1日 10:00 JST" in text
    assert "¥350,000" in text
    assert "¥35,000" in text
    assert "¥385,000" in text
    assert "April" not in text


def test_an_agency_copy_shows_no_amount_at_all(app: Flask):
    doc = document(
        w2_quote(),
        is_confirmation=True,
        reference="R-000123",
        acting_agent="佐藤 (取次店 Example Co.)",
        show_amounts=False,
    )
    pdf = render(app, doc)
    text = text_of(pdf)

    assert "¥" not in text
    assert "350,000" not in text and "385,000" not in text
    assert "shown to the customer's administrators" in text
    assert "20 April 2027" in text
    assert "R-000123" in text
    assert "佐藤 (取次店 Example Co.)" in text


def test_the_metadata_name_the_document_and_its_issuer(app: Flask):
    doc = document(w2_quote(), is_confirmation=True, reference="R-000123")
    metadata = PdfReader(BytesIO(render(app, doc))).metadata

    assert metadata.title == "Request confirmation: Cancellation R-000123"
    assert metadata.author == "株式会社イメージワークス"


def test_the_same_input_gives_the_same_bytes(app: Flask):
    doc = document(w2_quote(), is_confirmation=True, reference="R-000123")

    first = render(app, doc)
    assert render(app, doc) == first
    assert render(app, dataclasses.replace(doc, reference="R-000124")) != first


def test_w3_upgrade_shows_the_charges_and_the_new_fee_from_the_next_billing_month(app: Flask):
    quote = _quote(
        quotes.quote_upgrade(
            W1, PRICES, date(2027, 1, 5), plan_id=2, effective_on=date(2027, 1, 15)
        )
    )
    text = text_of(render(app, document(quote, target_plan_name="Premium 200 GB")))

    assert "15 January 2027" in text
    assert "¥50,000" in text  # initial fee difference
    assert "¥5,000" in text  # change fee
    assert "¥55,000" in text  # before tax
    assert "¥5,500" in text and "¥60,500" in text
    assert "¥100,000" in text  # the new monthly fee ...
    assert "billing month 2027-02 (21 January 2027 – 20 February 2027)" in text  # ... from here


def test_downgrade_shows_the_new_contract_and_its_initial_fee(app: Flask):
    quote = _quote(quotes.quote_downgrade(W1, PRICES, date(2027, 3, 1), plan_id=3))
    text = text_of(render(app, document(quote, target_plan_name="Light 50 GB")))

    assert "20 April 2027" in text  # the old contract ends
    assert "21 April 2027" in text  # the new one starts and is anchored
    assert "6 billing months" in text
    assert "20 October 2027" in text  # the new minimum term end
    assert "¥30,000" in text  # the new monthly and initial fee
    assert "¥350,000" in text  # shortfall of the old contract


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        # W-1: the last day for notice against renewal of the term ending 2027-11-20.
        (lambda: quotes.quote_non_renewal(W1, date(2027, 3, 1)), ["21 October 2027"]),
        (
            lambda: quotes.quote_agency_renewal(
                dataclasses.replace(W1, via_agency=True, agency_periods_granted=1),
                date(2027, 3, 1),
            ),
            ["21 May 2027", "20 November 2027"],
        ),
    ],
    ids=["non_renewal", "agency_renewal"],
)
def test_requests_without_charges_show_their_dates(app: Flask, result, expected):
    text = text_of(render(app, document(_quote(result()))))

    assert "This request carries no charges." in text
    assert "¥" not in text
    for day in expected:
        assert day in text


def test_a_document_refuses_values_it_cannot_print():
    with pytest.raises(ValueError, match="locale"):
        document(w2_quote(), locale="fr")
    with pytest.raises(ValueError, match="aware"):
        document(w2_quote(), issued_at=datetime(2027, 3, 1, 10, 0))
    with pytest.raises(ValueError, match="reference"):
        document(w2_quote(), is_confirmation=True)
    with pytest.raises(ValueError, match="withdrawn"):
        document(w2_quote(), withdrawn_by="someone")


def test_a_withdrawal_is_its_own_document_without_amounts(app: Flask):
    """R-23: what was withdrawn, by whom and when; nothing is billed, so no amount is printed
    (one stored document serves customers and agencies alike)."""
    withdrawn_at = datetime(2027, 3, 5, 2, 30, tzinfo=UTC)
    doc = document(
        w2_quote(),
        is_confirmation=True,
        reference="R-000123",
        issued_at=withdrawn_at,
        withdrawn_by="鈴木 花子",
        withdrawing_agent="佐藤 (Agency Co.)",
    )
    text = text_of(render(app, doc))

    assert "Withdrawal of a request: Cancellation" in text
    assert "5 March 2027 11:30 JST" in text  # when it was withdrawn
    assert "鈴木 花子" in text and "佐藤 (Agency Co.)" in text
    assert "20 April 2027" in text  # what would have happened
    assert "Nothing is billed for a withdrawn request." in text
    assert "¥" not in text
    assert render(app, doc) != render(app, dataclasses.replace(doc, withdrawn_by=None))
