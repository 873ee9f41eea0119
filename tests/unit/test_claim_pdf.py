"""The PDF of an SLA compensation claim (R-52): the claim a customer keeps, in its language,
with an embedded font, the same bytes every time, and no rule ids in its text."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime
from io import BytesIO

import pytest
from flask import Flask
from flask_babel import force_locale
from flask_babel import gettext as _
from pypdf import PdfReader

from portal.documents.claims import ClaimDocument, render_claim_pdf

# W-4 (RULES.md): F = ¥50,000; an unannounced outage from 2027-02-03 09:00 to 2027-02-04 15:00
# Tokyo (30 hours), its recovery announced 90 minutes late; claimable until 2027-05-04.
REASONING = {
    "en": (
        "Outage February 3, 2027 09:00 – February 4, 2027 15:00: 1,800 minutes counted; "
        "¥50,000 × 1,800 / 43,200 = ¥2,083",
        "Recovery not announced within 60 minutes: ¥50,000 / 30 = ¥1,666",
    ),
    "ja": (
        "障害 2027年2月3日 09:00 – 2027年2月4日 15:00：1,800分を算入。"
        "¥50,000 × 1,800 / 43,200 = ¥2,083",
        "復旧の告知が60分以内になかったもの：¥50,000 / 30 = ¥1,666",
    ),
}


def w4_claim(locale: str = "en", **changes: object) -> ClaimDocument:
    doc = ClaimDocument(
        locale=locale,
        number="SLA-000001",
        filed_at=datetime(2027, 3, 1, 1, 0, tzinfo=UTC),  # 10:00 Tokyo
        claimed_on=date(2027, 3, 1),
        paper=False,
        provider_name="株式会社イメージワークス",
        provider_registration_number="T1234567890123",
        provider_address="東京都港区芝公園1-2-3",
        organisation_name="株式会社サンプル商事",
        contract_id=7,
        service_name="イメージストレージ" if locale == "ja" else "Image Storage",
        plan_name="Standard 100 GB",
        filed_by="山田 太郎",
        incident_reference="INC-2027-0001",
        incident_version=1,
        incident_title="ストレージ障害" if locale == "ja" else "Storage outage",
        incident_kind="Outage",
        started_at=datetime(2027, 2, 3, 0, 0, tzinfo=UTC),  # 09:00 Tokyo
        ended_at=datetime(2027, 2, 4, 6, 0, tzinfo=UTC),  # 15:00 Tokyo
        occurrence_announced_at=datetime(2027, 2, 3, 0, 30, tzinfo=UTC),
        recovery_announced_at=datetime(2027, 2, 4, 7, 30, tzinfo=UTC),  # 90 minutes late
        billing_month="2027-02",
        monthly_fee=50_000,
        reasoning=REASONING[locale],
        amount=3_749,
        tax_rate_percent=10,
        claim_deadline=date(2027, 5, 4),
    )
    return dataclasses.replace(doc, **changes)


def render(app: Flask, doc: ClaimDocument) -> bytes:
    with app.app_context():
        return render_claim_pdf(doc)


def pages_of(pdf: bytes) -> list[str]:
    """Each page's text with every run of white space, line breaks included, as one space."""
    return [" ".join(page.extract_text().split()) for page in PdfReader(BytesIO(pdf)).pages]


def text_of(pdf: bytes) -> str:
    return " ".join(pages_of(pdf))


def labels(app: Flask, locale: str, *labels: tuple[str, dict[str, object]]) -> list[str]:
    """The labels as the catalog gives them in `locale` today, translated or not yet."""
    with app.app_context(), force_locale(locale):
        return [_(msgid, **values) for msgid, values in labels]


def test_an_english_claim_shows_the_claim_the_incident_and_the_computation(app: Flask):
    text = text_of(render(app, w4_claim()))

    assert text.startswith("SLA compensation claim")
    assert "Registration number: T1234567890123" in text
    assert "Claim number SLA-000001" in text
    assert "Claimed by 株式会社サンプル商事" in text
    assert "Filed on 1 March 2027 10:00 JST" in text
    assert "Contract Contract no. 7, Image Storage, Standard 100 GB" in text
    assert "Incident INC-2027-0001 (version 1): Storage outage" in text
    assert "Began 3 February 2027 09:00 JST Ended 4 February 2027 15:00 JST" in text
    assert "Recovery announced 4 February 2027 16:30 JST" in text
    assert "Monthly fee in that month ¥50,000" in text
    assert "Claimable until 4 May 2027" in text
    # The computation line by line, numbered, and the amount claimed.
    assert f"1. {REASONING['en'][0]} 2. {REASONING['en'][1]}" in text
    assert "¥2,083" in text and "¥1,666" in text
    assert "Compensation claimed (tax excluded) ¥3,749 Tax rate 10%" in text
    assert "Page 1 of 1" in text
    assert "登録番号" not in text


def test_a_japanese_claim_shows_japanese_dates_and_its_reasoning(app: Flask):
    text = text_of(render(app, w4_claim("ja")))

    assert "SLA-000001" in text
    assert "2027年3月1日 10:00 JST" in text  # filed
    assert "2027年2月3日 09:00 JST" in text and "2027年2月4日 15:00 JST" in text
    assert "2027年5月4日" in text  # the last day to claim
    for line in REASONING["ja"]:
        assert line in text
    assert "¥2,083" in text and "¥1,666" in text and "¥3,749" in text
    assert "イメージストレージ" in text and "ストレージ障害" in text
    assert "February" not in text and "May 2027" not in text
    for label in labels(
        app,
        "ja",
        ("SLA compensation claim", {}),
        ("Registration number: %(number)s", {"number": "T1234567890123"}),
        ("Claim number", {}),
        ("Claimable until", {}),
        ("How the compensation is computed", {}),
        ("Compensation claimed (tax excluded)", {}),
        ("Tax rate", {}),
        ("Page %(page)d of %(pages)d", {"page": 1, "pages": 1}),
    ):
        assert label in text, label


@pytest.mark.parametrize("locale", ["en", "ja"])
def test_no_rule_id_is_printed(app: Flask, locale: str):
    text = text_of(render(app, w4_claim(locale)))

    assert not re.search(r"R-\d", text)


def test_the_tax_is_left_to_the_invoice_that_carries_the_credit(app: Flask):
    """R-53: tax once per rate on the invoice's total after returns; W-4's ¥3,749 takes ¥375
    off a ¥50,000 invoice's tax, not the ¥374 of 10% of it alone, so no tax amount is promised."""
    text = text_of(render(app, w4_claim()))

    assert "¥374" not in text and "¥375" not in text
    assert "Tax rate 10%" in text


def test_a_claim_received_on_paper_names_the_day_it_was_received(app: Flask):
    text = text_of(render(app, w4_claim(paper=True, claimed_on=date(2027, 3, 3))))

    assert "Claim received on 3 March 2027" in text
    assert "How it was received By letter or telephone" in text
    assert "Filed on" not in text


def test_the_ipaex_font_is_embedded_and_no_font_is_left_out(app: Flask):
    for doc in (w4_claim("ja"), w4_claim("en")):
        pdf = render(app, doc)

        assert pdf.startswith(b"%PDF-")
        assert b"HeiseiKakuGo" not in pdf and b"HeiseiMin" not in pdf
        for page in PdfReader(BytesIO(pdf)).pages:
            for ref in page["/Resources"]["/Font"].values():
                font = ref.get_object()
                for face in (
                    [d.get_object() for d in font["/DescendantFonts"]]
                    if font["/Subtype"] == "/Type0"
                    else [font]
                ):
                    assert str(face["/BaseFont"]).endswith("+IPAexGothic"), face["/BaseFont"]
                    assert "/FontFile2" in face["/FontDescriptor"].get_object()


def test_the_same_document_gives_the_same_bytes(app: Flask):
    """The claim's PDF is stored with its SHA-256 at filing and served as stored."""
    first = render(app, w4_claim("ja"))

    assert render(app, w4_claim("ja")) == first
    assert render(app, w4_claim("ja", number="SLA-000002")) != first
    assert render(app, w4_claim("en")) != render(app, w4_claim("en", amount=3_748))


def test_instants_must_be_aware_so_they_print_in_tokyo_time_everywhere():
    with pytest.raises(ValueError, match="timezone-aware"):
        w4_claim(started_at=datetime(2027, 2, 3, 9, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        w4_claim(recovery_announced_at=datetime(2027, 2, 4, 16, 30))
    with pytest.raises(ValueError, match="locale"):
        dataclasses.replace(w4_claim(), locale="fr")
    with pytest.raises(ValueError, match="above zero"):
        w4_claim(amount=0)


def test_japanese_text_wraps_between_characters_but_never_before_a_full_stop(app: Flask):
    """Japanese has no spaces to break at: a line breaks between any two characters (CJK
    wrapping), but never so that the next one starts with 。 or 、 (kinsoku). Of the two lines
    below, one comes to a break just before a 。 whatever the width of the cell."""
    reasoning = ("あ。" * 60, "う" + "あ。" * 60)
    pdf = render(app, w4_claim("ja", reasoning=reasoning))
    lines = [
        line for page in PdfReader(BytesIO(pdf)).pages for line in page.extract_text().splitlines()
    ]
    wrapped = [line for line in lines if "あ。あ" in line]

    assert len(wrapped) > len(reasoning)  # each runs over more than one line
    assert not [line for line in wrapped if line.startswith(("。", "、"))]
    assert "".join(lines).count("あ。") == 120  # nothing lost at the breaks


def test_a_long_claim_runs_over_pages_that_say_how_many_there_are(app: Flask):
    pages = pages_of(render(app, w4_claim(reasoning=REASONING["en"] * 30)))

    assert len(pages) > 1
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        assert "SLA-000001" in page  # the claim's number on every page
    assert "Compensation claimed (tax excluded) ¥3,749" in pages[-1]
