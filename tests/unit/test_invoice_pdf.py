"""The PDF of an issued invoice or credit note (R-40, R-42, R-53): the items of a qualified
invoice, in the document's language, with an embedded font, the same bytes every time."""

from __future__ import annotations

import dataclasses
from datetime import date
from io import BytesIO

import pytest
from flask import Flask
from flask_babel import force_locale
from flask_babel import gettext as _
from pypdf import PdfReader

from portal.documents.invoices import (
    InvoiceDocument,
    InvoiceLineDocument,
    invoice_document,
    render_invoice_pdf,
)
from portal.domain.money import TaxSummary
from portal.models.invoices import DocumentKind, Invoice, InvoiceLine

PROVIDER = {
    "provider_name": "株式会社イメージワークス",
    "provider_registration_number": "T1234567890123",
    "provider_address": "東京都港区芝公園1-2-3",
}
RECIPIENT = {
    "recipient_name": "株式会社サンプル商事",
    "recipient_postal_code": "100-0005",
    "recipient_address": "東京都千代田区丸の内1-1-1",
}

# The invoice of billing month 2027-05 after W-2: the month's fee in advance, the
# minimum-term shortfall of 7 months and a change fee; 10% on all of it.
MONTHLY_FEE = InvoiceLineDocument(
    description_ja="月額料金（2027-05月度）",
    description_en="Monthly fee, billing month 2027-05",
    amount=50_000,
    tax_rate_percent=10,
)
SHORTFALL = InvoiceLineDocument(
    description_ja="最低利用期間の残存分（7か月度）",
    description_en="Minimum-term shortfall (7 billing months)",
    amount=350_000,
    tax_rate_percent=10,
)
CHANGE_FEE = InvoiceLineDocument(
    description_ja="変更手数料",
    description_en="Change fee",
    amount=5_000,
    tax_rate_percent=10,
)


def w2_invoice(**changes: object) -> InvoiceDocument:
    doc = InvoiceDocument(
        kind=DocumentKind.INVOICE,
        locale="en",
        number="INV-00000123",
        issued_on=date(2027, 4, 21),  # the first day of billing month 2027-05
        due_on=date(2027, 5, 10),
        billing_month="2027-05",
        period_start=date(2027, 4, 21),
        period_end=date(2027, 5, 20),
        **RECIPIENT,
        **PROVIDER,
        lines=(MONTHLY_FEE, SHORTFALL, CHANGE_FEE),
        tax_summary=(TaxSummary(rate_percent=10, taxable=405_000, tax=40_500),),
        subtotal=405_000,
        tax_total=40_500,
        total=445_500,
    )
    return dataclasses.replace(doc, **changes)


def credit_note(**changes: object) -> InvoiceDocument:
    """R-42: the change fee of the invoice above was charged in error and is returned."""
    values: dict[str, object] = dict(
        kind=DocumentKind.CREDIT_NOTE,
        number="CRN-00000007",
        issued_on=date(2027, 4, 28),
        due_on=date(2027, 4, 28),
        lines=(
            InvoiceLineDocument(
                description_ja="変更手数料の返還（INV-00000123）",
                description_en="Change fee returned (INV-00000123)",
                amount=5_000,
                tax_rate_percent=10,
            ),
        ),
        tax_summary=(TaxSummary(rate_percent=10, taxable=5_000, tax=500),),
        subtotal=5_000,
        tax_total=500,
        total=5_500,
        original_number="INV-00000123",
        original_issued_on=date(2027, 4, 21),
        reason="Change fee charged twice",
    )
    return w2_invoice(**{**values, **changes})


def render(app: Flask, doc: InvoiceDocument) -> bytes:
    with app.app_context():
        return render_invoice_pdf(doc)


def text_of(pdf: bytes) -> str:
    """The PDF's text with every run of white space, line breaks included, as one space."""
    text = " ".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)
    return " ".join(text.split())


def labels(app: Flask, locale: str, *labels: tuple[str, dict[str, object]]) -> list[str]:
    """The labels as the catalog gives them in `locale` today, translated or not yet."""
    with app.app_context(), force_locale(locale):
        return [_(msgid, **values) for msgid, values in labels]


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


def test_an_english_invoice_shows_every_item_of_a_qualified_invoice(app: Flask):
    text = text_of(render(app, w2_invoice()))

    assert "Invoice" in text and "Qualified invoice" in text
    # The issuer and its registration number.
    assert "株式会社イメージワークス" in text
    assert "Registration number: T1234567890123" in text
    # The document's number and date, the recipient as frozen in it.
    assert "Invoice number INV-00000123" in text
    assert "Issue date 21 April 2027" in text
    assert "To: 株式会社サンプル商事" in text
    assert "100-0005" in text and "東京都千代田区丸の内1-1-1" in text
    # The transaction period: the billing month.
    assert "Transaction period billing month 2027-05 (21 April 2027 – 20 May 2027)" in text
    # The lines, with their rates and amounts.
    assert "Monthly fee, billing month 2027-05 10% ¥50,000" in text
    assert "Minimum-term shortfall (7 billing months) 10% ¥350,000" in text
    assert "Change fee 10% ¥5,000" in text
    # Totals and tax per rate, tax once per rate, and the total due.
    assert "Subtotal (tax excluded) ¥405,000" in text
    assert "Taxable at 10% ¥405,000 Consumption tax ¥40,500" in text
    assert "Amount due (tax included) ¥445,500" in text
    assert "Due date 10 May 2027" in text
    assert "by card in the portal or by bank transfer" in text
    assert "Page 1 of 1" in text
    # No line is at a reduced rate, so none is marked.
    assert "※" not in text
    # Japanese descriptions stay out of an English document.
    assert "月額料金" not in text


def test_a_japanese_invoice_shows_japanese_dates_and_descriptions(app: Flask):
    text = text_of(render(app, w2_invoice(locale="ja")))

    assert "T1234567890123" in text
    assert "INV-00000123" in text
    assert "株式会社サンプル商事" in text
    assert "〒100-0005" in text
    assert "2027年4月21日" in text  # issued, and the period's first day
    assert "2027年5月20日" in text  # the period's last day
    assert "2027年5月10日" in text  # due
    assert "2027-05" in text
    assert "月額料金（2027-05月度） 10% ¥50,000" in text
    assert "最低利用期間の残存分（7か月度） 10% ¥350,000" in text
    assert "変更手数料 10% ¥5,000" in text
    assert "¥405,000" in text and "¥40,500" in text and "¥445,500" in text
    assert "April" not in text and "May 2027" not in text
    assert "Monthly fee" not in text


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_the_labels_are_in_the_documents_language(app: Flask, locale: str):
    """Each label as the catalog translates it (请求書, 御中, 10%対象, 消費税, ご請求金額 ...
    once the Japanese catalog has them; the English text until then)."""
    text = text_of(render(app, w2_invoice(locale=locale)))
    day = {"en": "21 April 2027", "ja": "2027年4月21日"}[locale]
    last = {"en": "20 May 2027", "ja": "2027年5月20日"}[locale]

    for label in labels(
        app,
        locale,
        ("Invoice", {}),
        ("Qualified invoice", {}),
        ("Registration number: %(number)s", {"number": "T1234567890123"}),
        ("Invoice number", {}),
        ("Issue date", {}),
        ("Due date", {}),
        ("To: %(name)s", {"name": "株式会社サンプル商事"}),
        ("Transaction period", {}),
        (
            "billing month %(month)s (%(start)s – %(end)s)",
            {"month": "2027-05", "start": day, "end": last},
        ),
        ("Description", {}),
        ("Tax rate", {}),
        ("Amount (tax excluded)", {}),
        ("Subtotal (tax excluded)", {}),
        ("Taxable at %(rate)s", {"rate": "10%"}),
        ("Consumption tax", {}),
        ("Amount due (tax included)", {}),
        ("Breakdown by tax rate", {}),
        ("Please pay by the due date, by card in the portal or by bank transfer.", {}),
        ("Page %(page)d of %(pages)d", {"page": 1, "pages": 1}),
    ):
        assert label in text, label


def test_reduced_rate_lines_are_marked_and_taxed_apart(app: Flask):
    reduced = InvoiceLineDocument(
        description_ja="飲料（軽減税率）",
        description_en="Beverages",
        amount=1_000,
        tax_rate_percent=8,
    )
    doc = w2_invoice(
        lines=(MONTHLY_FEE, reduced),
        tax_summary=(
            TaxSummary(rate_percent=10, taxable=50_000, tax=5_000),
            TaxSummary(rate_percent=8, taxable=1_000, tax=80),
        ),
        subtotal=51_000,
        tax_total=5_080,
        total=56_080,
    )
    text = text_of(render(app, doc))

    assert "Beverages ※ 8% ¥1,000" in text
    assert "Monthly fee, billing month 2027-05 10% ¥50,000" in text  # not marked
    assert "Taxable at 10% ¥50,000 Consumption tax ¥5,000" in text
    assert "Taxable at 8% ¥1,000 Consumption tax ¥80" in text
    assert "※ Reduced-rate item" in text


def test_a_credit_note_names_the_original_invoice_and_the_reason(app: Flask):
    text = text_of(render(app, credit_note()))

    assert "Credit note (qualified return invoice)" in text
    assert "Credit note number CRN-00000007" in text
    assert "Original invoice INV-00000123, issued on 21 April 2027" in text
    assert "Reason Change fee charged twice" in text
    assert "Registration number: T1234567890123" in text
    assert "Transaction period billing month 2027-05" in text
    assert "Taxable at 10% ¥5,000 Consumption tax ¥500" in text
    assert "Amount credited (tax included) ¥5,500" in text
    # Nothing is to be paid on a credit note.
    assert "Amount due" not in text
    assert "Due date" not in text
    assert "Please pay" not in text


def test_a_japanese_credit_note_shows_the_originals_number_and_date(app: Flask):
    text = text_of(render(app, credit_note(locale="ja", reason="変更手数料の二重請求")))

    assert "INV-00000123" in text
    assert "2027年4月21日" in text  # the original's issue date
    assert "2027年4月28日" in text  # the credit note's
    assert "変更手数料の返還（INV-00000123）" in text
    assert "変更手数料の二重請求" in text
    assert "¥5,500" in text
    for label in labels(
        app,
        "ja",
        ("Credit note (qualified return invoice)", {}),
        ("%(number)s, issued on %(date)s", {"number": "INV-00000123", "date": "2027年4月21日"}),
        ("Amount credited (tax included)", {}),
    ):
        assert label in text, label


def test_the_ipaex_font_is_embedded_and_no_font_is_left_out(app: Flask):
    for doc in (w2_invoice(locale="ja"), credit_note()):
        pdf = render(app, doc)

        assert pdf.startswith(b"%PDF-")
        assert b"/FontFile2" in pdf
        assert b"HeiseiKakuGo" not in pdf and b"HeiseiMin" not in pdf
        fonts = fonts_of(pdf)
        assert fonts
        for font in fonts:
            assert str(font["/BaseFont"]).endswith("+IPAexGothic"), font["/BaseFont"]
            assert "/FontFile2" in font["/FontDescriptor"].get_object(), font["/BaseFont"]


def test_the_same_document_gives_the_same_bytes(app: Flask):
    """R-42: the stored PDF and its SHA-256 can be checked against a new rendering."""
    doc = w2_invoice(locale="ja")

    first = render(app, doc)
    assert render(app, w2_invoice(locale="ja")) == first
    assert render(app, dataclasses.replace(doc, number="INV-00000124")) != first
    assert render(app, dataclasses.replace(doc, locale="en")) != first


def test_the_metadata_name_the_document_and_its_issuer(app: Flask):
    metadata = PdfReader(BytesIO(render(app, w2_invoice()))).metadata

    assert metadata.title == "Invoice INV-00000123"
    assert metadata.author == "株式会社イメージワークス"
    assert metadata.subject == "株式会社サンプル商事"


def test_a_long_invoice_runs_over_pages_that_say_how_many_there_are(app: Flask):
    line = InvoiceLineDocument(
        description_ja="月額料金", description_en="Monthly fee", amount=1_000, tax_rate_percent=10
    )
    doc = w2_invoice(
        lines=(line,) * 60,
        tax_summary=(TaxSummary(rate_percent=10, taxable=60_000, tax=6_000),),
        subtotal=60_000,
        tax_total=6_000,
        total=66_000,
    )
    pages = [
        " ".join(page.extract_text().split()) for page in PdfReader(BytesIO(render(app, doc))).pages
    ]

    assert len(pages) > 1
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        assert "Registration number: T1234567890123" in page  # the issuer on every page
        assert "INV-00000123" in page
        assert "Description Tax rate Amount (tax excluded)" in page  # the header repeats
    assert "Amount due (tax included) ¥66,000" in pages[-1]


def test_a_document_refuses_what_a_qualified_invoice_cannot_be():
    with pytest.raises(ValueError, match="locale"):
        w2_invoice(locale="fr")
    with pytest.raises(ValueError, match="registration number"):
        w2_invoice(provider_registration_number="1234567890123")
    with pytest.raises(ValueError, match="registration number"):
        w2_invoice(provider_registration_number="T123456789012")
    with pytest.raises(ValueError, match="original invoice"):
        credit_note(original_number=None)
    with pytest.raises(ValueError, match="total"):
        w2_invoice(total=445_501)
    with pytest.raises(ValueError, match="lines"):
        w2_invoice(lines=(MONTHLY_FEE, SHORTFALL))
    with pytest.raises(ValueError, match="tax total"):
        w2_invoice(tax_summary=(TaxSummary(rate_percent=10, taxable=405_000, tax=40_000),))
    with pytest.raises(ValueError, match="per rate"):
        w2_invoice(tax_summary=(TaxSummary(rate_percent=8, taxable=405_000, tax=40_500),))


# --- invoice_document(): from the issued rows --------------------------------------------


def _orm_invoice(**changes: object) -> Invoice:
    values: dict[str, object] = {
        "id": 1,
        "kind": DocumentKind.INVOICE,
        "sequence": 123,
        "number": "INV-00000123",
        "organisation_id": 1,
        "billing_month": "2027-05",
        "period_start": date(2027, 4, 21),
        "period_end": date(2027, 5, 20),
        "issued_on": date(2027, 4, 21),
        "due_on": date(2027, 5, 10),
        "locale": "ja",
        **RECIPIENT,
        **PROVIDER,
        "subtotal": 405_000,
        "tax_total": 40_500,
        "total": 445_500,
        "tax_summary": [{"rate_percent": 10, "taxable": 405_000, "tax": 40_500}],
        "reason": "",
    }
    values.update(changes)
    return Invoice(**values)


def _orm_line(position: int, line: InvoiceLineDocument, kind: str) -> InvoiceLine:
    return InvoiceLine(
        position=position,
        kind=kind,
        description_ja=line.description_ja,
        description_en=line.description_en,
        amount=line.amount,
        tax_rate_percent=line.tax_rate_percent,
        details={},
    )


def test_invoice_document_copies_an_issued_invoice_and_its_lines_in_order():
    invoice = _orm_invoice()
    # Appended out of order: the document follows the lines' positions.
    invoice.lines.append(_orm_line(3, CHANGE_FEE, "change_fee"))
    invoice.lines.append(_orm_line(1, MONTHLY_FEE, "monthly_fee"))
    invoice.lines.append(_orm_line(2, SHORTFALL, "shortfall"))

    doc = invoice_document(invoice)

    assert doc == w2_invoice(locale="ja")
    assert [line.position for line in invoice.lines] == [3, 1, 2]  # the row is only read


def test_invoice_document_copies_a_credit_notes_original(app: Flask):
    original = _orm_invoice()
    note = _orm_invoice(
        id=2,
        kind=DocumentKind.CREDIT_NOTE,
        sequence=7,
        number="CRN-00000007",
        issued_on=date(2027, 4, 28),
        due_on=date(2027, 4, 28),
        locale="en",
        subtotal=5_000,
        tax_total=500,
        total=5_500,
        tax_summary=[{"rate_percent": 10, "taxable": 5_000, "tax": 500}],
        reason="Change fee charged twice",
        original=original,
    )
    note.lines.append(_orm_line(1, credit_note().lines[0], "credit"))

    doc = invoice_document(note)

    assert doc == credit_note()
    assert "Original invoice INV-00000123, issued on 21 April 2027" in text_of(render(app, doc))


def test_an_sla_credit_is_a_negative_line_netted_before_tax(app: Flask):
    """R-53: an approved claim (W-4, ¥2,083) is deducted from the next invoice as a line."""
    credit = InvoiceLineDocument(
        description_ja="SLA補償（2027-02-03の障害）",
        description_en="SLA compensation (outage of 3 February 2027)",
        amount=-2_083,
        tax_rate_percent=10,
    )
    doc = w2_invoice(
        lines=(MONTHLY_FEE, credit),
        tax_summary=(TaxSummary(rate_percent=10, taxable=47_917, tax=4_791),),
        subtotal=47_917,
        tax_total=4_791,
        total=52_708,
    )
    text = text_of(render(app, doc))

    assert "SLA compensation (outage of 3 February 2027) 10% -¥2,083" in text
    assert "Taxable at 10% ¥47,917 Consumption tax ¥4,791" in text
    assert "Amount due (tax included) ¥52,708" in text


def test_text_longer_than_its_cell_wraps_within_it(app: Flask):
    long = "Minimum-term shortfall for the contract of Image Storage Standard 100 GB " * 3
    line = dataclasses.replace(SHORTFALL, description_en=long.strip())
    doc = w2_invoice(
        lines=(MONTHLY_FEE, line, CHANGE_FEE),
        recipient_address="東京都千代田区丸の内1-1-1 サンプルビルディング" * 3,
    )
    text = text_of(render(app, doc))

    assert long.strip() + " 10% ¥350,000" in text
    assert "サンプルビルディング東京都千代田区" in text.replace(" ", "")
