"""The back office's invoices: search and CSV (R-42), one document, payments by bank transfer
or direct debit (R-43), credit notes (R-42), overdue invoices and reminders (R-33).

The world: W-1's two contracts (Alpha, Beta), a second contract for Beta on an 8% plan from
2026-12-01 and a third organisation (ガンマ商事株式会社) on the ¥100,000 plan from 2027-01-10, with
every invoice issued up to 2027-03-01; one invoice paid, one fully and one partly credited.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import date, datetime, time
from io import BytesIO

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from portal.clock import TOKYO, clock
from portal.extensions import db
from portal.models import (
    AuditEvent,
    DocumentKind,
    Invoice,
    InvoiceState,
    Organisation,
    OutboxEmail,
    Payment,
    PaymentReminder,
    Plan,
    Provider,
    StaffRole,
    User,
    UserKind,
)
from portal.payments import service as payments
from portal.permissions import Actor
from portal.services import billing, invoicing
from tests.conftest import DEFAULT_NOW
from tests.factories import (
    add_contract,
    add_organisation,
    add_plan,
    add_user,
    become,
    build_world,
    rows,
    signed_in_client,
    snapshot,
)

TODAY = date(2027, 3, 1)  # DEFAULT_NOW in Tokyo
# Invoice runs: service starts (initial fees) and the 21st of each month.
RUNS = (
    date(2026, 11, 5),
    date(2026, 11, 21),
    date(2026, 12, 1),
    date(2026, 12, 21),
    date(2027, 1, 10),
    date(2027, 1, 21),
    date(2027, 2, 21),
)
SESSIONS = ("user_sessions",)  # touched by signing in, not by what is tested


def inv(n: int) -> str:
    return f"INV-{n:08d}"


def crn(n: int) -> str:
    return f"CRN-{n:08d}"


ALPHA = {inv(n) for n in (1, 3, 5, 8, 11)}
BETA = {inv(n) for n in (2, 4, 6, 9, 12)} | {crn(1), crn(2)}
GAMMA = {inv(n) for n in (7, 10, 13)}
EVERYTHING = ALPHA | BETA | GAMMA


def at(day: date) -> None:
    clock.set(datetime.combine(day, time(10), TOKYO))


def staff_actor(app, world, kind: str = "billing") -> Actor:
    return Actor(db.session.get(User, world.ids[kind]))


def state_of(app, invoice_id: int) -> InvoiceState:
    with app.app_context():
        state = db.session.get(InvoiceState, invoice_id)
        db.session.expunge_all()
        return state


def invoice_id(app, number: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Invoice.id).where(Invoice.number == number))


@pytest.fixture
def world(app):
    """Every document of the module docstring; the clock back at 2027-03-01 10:00 Tokyo."""
    world = build_world(app)
    add_plan(app, world, code="iw-200", fee=80_000, capacity=200)
    with app.app_context():
        db.session.get(Plan, world.ids["iw-200"]).tax_rate_percent = 8
        gamma = add_organisation("ガンマ商事株式会社", "gamma.example")
        db.session.commit()
        world.ids["org_c"] = gamma.id
    add_contract(app, world.org_b, service_start=date(2026, 12, 1), plan="iw-200")
    add_contract(app, world.ids["org_c"], service_start=date(2027, 1, 10), plan="iw-100")
    for day in RUNS:
        at(day)
        with app.app_context():
            invoicing.issue_invoices(day)
    with app.app_context():
        billing_staff = staff_actor(app, world)
        by_number = {i.number: i for i in db.session.scalars(sa.select(Invoice))}
        at(date(2026, 12, 10))
        invoicing.issue_credit_note(  # CRN-1: all of INV-4 (¥55,000)
            billing_staff,
            by_number[inv(4)],
            amount=50_000,
            tax_rate_percent=10,
            reason="Service not provided",
            ip="",
        )
        at(date(2026, 12, 15))
        payments.record_manual_payment(
            billing_staff,
            by_number[inv(3)],
            method="bank_transfer",
            received_on=date(2026, 12, 15),
            reference="Furikomi ALPHA 1215",
        )
        at(date(2027, 1, 15))
        invoicing.issue_credit_note(  # CRN-2: ¥10,000 at 8% of INV-6
            billing_staff,
            by_number[inv(6)],
            amount=10_000,
            tax_rate_percent=8,
            reason="Discount agreed",
            ip="",
        )
        db.session.commit()
    clock.set(DEFAULT_NOW)
    return world


def billing_staff_on(app, world, day: date):
    """Billing staff signed in afresh on another day (the old session is idle by then)."""
    at(day)
    return signed_in_client(app, world.emails["billing"])


@pytest.fixture
def staff(app, world):
    return signed_in_client(app, world.emails["billing"])


@pytest.fixture
def support(app, world):
    return signed_in_client(app, world.emails["support"])


def _numbers(page: str) -> set[str]:
    return set(re.findall(r'data-testid="row-([A-Z]+-\d+)"', page))


def _error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return match.group(1) if match else None


def _csv(response) -> tuple[list[str], list[dict[str, str]]]:
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff"), "Excel needs the BOM to read UTF-8"
    reader = csv.DictReader(io.StringIO(text[1:], newline=""))
    found = list(reader)
    return list(reader.fieldnames or []), found


# --- search (R-42) ------------------------------------------------------------------------------

SEARCHES = {
    "nothing: every document": ({}, EVERYTHING),
    "issued from": ({"issued_from": "2027-01-01"}, {inv(n) for n in range(7, 14)} | {crn(2)}),
    "issued to": ({"issued_to": "2026-11-30"}, {inv(1), inv(2), inv(3), inv(4)}),
    "issued in December": (
        {"issued_from": "2026-12-01", "issued_to": "2026-12-31"},
        {inv(5), inv(6), crn(1)},
    ),
    "one day, written with slashes": (
        {"issued_from": "2026/11/05", "issued_to": "2026/11/05"},
        {inv(1), inv(2)},
    ),
    "amount from": ({"amount_min": "100000"}, {inv(n) for n in (6, 7, 9, 10, 12, 13)}),
    "amount to": (
        {"amount_max": "55000"},
        {inv(n) for n in (1, 2, 3, 4, 5, 8, 11)} | {crn(1), crn(2)},
    ),
    "amount range, ends included": (
        {"amount_min": "110,000", "amount_max": "¥141,400"},
        {inv(n) for n in (7, 9, 10, 12, 13)},
    ),
    "amount in full-width digits": ({"amount_min": "２２７，８００円"}, {inv(6)}),
    "counterparty": ({"counterparty": "beta"}, BETA),
    "counterparty in another case": ({"counterparty": "ALPHA k.k."}, ALPHA),
    "counterparty in Japanese": ({"counterparty": "ガンマ"}, GAMMA),
    "counterparty common part": ({"counterparty": "K.K."}, ALPHA | BETA),
    "a % is a percent sign": ({"counterparty": "%"}, set()),
    "an _ is an underscore": ({"counterparty": "_"}, set()),
    "credit notes": ({"kind": "credit_note"}, {crn(1), crn(2)}),
    "invoices": ({"kind": "invoice"}, EVERYTHING - {crn(1), crn(2)}),
    "paid": ({"status": "paid"}, {inv(3)}),
    "credited": ({"status": "credited"}, {inv(4)}),
    "open": ({"status": "open"}, {inv(n) for n in (1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13)}),
    "overdue": ({"status": "overdue"}, {inv(n) for n in (1, 2, 5, 6, 7, 8, 9, 10)}),
    "date, amount and counterparty": (
        {"issued_from": "2027-01-01", "amount_min": "100000", "counterparty": "beta"},
        {inv(9), inv(12)},
    ),
    "date range and counterparty": (
        {"issued_from": "2026-12-01", "issued_to": "2027-01-31", "counterparty": "ガンマ"},
        {inv(7), inv(10)},
    ),
    "counterparty, kind and amount": (
        {"counterparty": "beta", "kind": "credit_note", "amount_max": "20000"},
        {crn(2)},
    ),
    "overdue of one counterparty up to an amount": (
        {"status": "overdue", "counterparty": "alpha", "amount_max": "55000"},
        {inv(1), inv(5), inv(8)},
    ),
    "empty boxes mean any": (
        {"issued_from": "", "amount_max": " ", "counterparty": "", "kind": "", "status": ""},
        EVERYTHING,
    ),
}


@pytest.mark.parametrize("query, expected", SEARCHES.values(), ids=SEARCHES.keys())
def test_search_by_each_criterion_alone_and_combined(staff, query, expected):
    response = staff.get("/staff/invoices", query_string=query)
    assert response.status_code == 200
    assert _numbers(response.get_data(as_text=True)) == expected


def test_results_show_the_document_as_frozen_newest_first(app, staff):
    page = staff.get("/staff/invoices").get_data(as_text=True)
    order = re.findall(r'data-testid="row-([A-Z]+-\d+)"', page)
    assert order[:3] == [inv(13), inv(12), inv(11)]  # 2027-02-21, highest id first
    row = re.search(rf'data-testid="row-{inv(6)}">(.*?)</tr>', page, re.S).group(1)
    cells = [
        re.sub(r"<[^>]+>|\s+", " ", c).strip()
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]
    assert cells == [
        inv(6),
        "Invoice",
        "2026-12-21",
        "Beta K.K.",
        "2027-01",
        "¥227,800",
        "Overdue",
        "2027-01-20",
        "40",
    ]
    note = re.search(rf'data-testid="row-{crn(2)}">(.*?)</tr>', page, re.S).group(1)
    assert f"for {inv(6)}" in note and "Credit note" in note and "¥10,800" in note


BAD_INPUT = {
    "not a date": ({"issued_from": "2027-02-30"}, "issued_from", "Enter a date as YYYY-MM-DD."),
    "end before start": (
        {"issued_from": "2027-02-01", "issued_to": "2027-01-01"},
        "issued_to",
        "The end date is before the start date.",
    ),
    "not an amount": (
        {"amount_min": "55k"},
        "amount_min",
        "Enter an amount in whole yen, e.g. 55000.",
    ),
    "a fraction of a yen": (
        {"amount_max": "100.5"},
        "amount_max",
        "Enter an amount in whole yen, e.g. 55000.",
    ),
    "a negative amount": (
        {"amount_min": "-1"},
        "amount_min",
        "Enter an amount in whole yen, e.g. 55000.",
    ),
    "upper below lower": (
        {"amount_min": "100000", "amount_max": "50000"},
        "amount_max",
        "The upper amount is below the lower amount.",
    ),
    "a long name": ({"counterparty": "x" * 201}, "counterparty", "Use at most 200 characters."),
    "no such kind": ({"kind": "receipt"}, "kind", None),
    "no such status": ({"status": "lost"}, "status", None),
}


@pytest.mark.parametrize("query, field, message", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_shown_next_to_the_field_with_422_and_no_results(staff, query, field, message):
    for path in ("/staff/invoices", "/staff/invoices.csv"):
        response = staff.get(
            path, query_string={**query, "counterparty": query.get("counterparty", "beta")}
        )
        page = response.get_data(as_text=True)
        assert response.status_code == 422, path
        assert _error(page, field) is not None, path
        if message:
            assert _error(page, field) == message
        assert _numbers(page) == set()
        assert 'data-testid="search-refused"' in page
        # What was typed stays in the box.
        if field == "counterparty":
            assert 'value="' + "x" * 201 + '"' in page


def test_live_search_answers_the_fragment_and_shows_errors_in_it(staff):
    htmx = {"HX-Request": "true"}
    response = staff.get("/staff/invoices", query_string={"counterparty": "ガンマ"}, headers=htmx)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in page and page.lstrip().startswith('<div id="invoice-search"')
    assert _numbers(page) == GAMMA
    # The language switch follows the search.
    assert "data-hx-swap-oob=\"outerHTML:form.language-switch input[name='next']\"" in page
    assert "HX-Request" in response.headers["Vary"]  # a cache never mixes page and fragment
    # htmx swaps only 2xx answers: an error is shown in the fragment (the full page says 422).
    response = staff.get("/staff/invoices", query_string={"amount_min": "abc"}, headers=htmx)
    assert response.status_code == 200
    assert _error(response.get_data(as_text=True), "amount_min")
    assert _numbers(response.get_data(as_text=True)) == set()


def test_results_come_in_pages_that_keep_the_criteria(staff, monkeypatch):
    monkeypatch.setattr(billing, "PER_PAGE", 4)
    query = {"counterparty": "k.k."}  # Alpha's and Beta's 12 documents
    first = staff.get("/staff/invoices", query_string=query).get_data(as_text=True)
    assert _numbers(first) == {inv(11), inv(12), inv(9), inv(8)}
    assert "12 documents" in first and "page 1 of 3" in first
    next_link = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert "counterparty=k.k." in next_link and "page=2" in next_link
    second = staff.get(next_link).get_data(as_text=True)
    assert _numbers(second) == {crn(2), inv(6), inv(5), crn(1)}
    last = staff.get("/staff/invoices", query_string={**query, "page": "99"}).get_data(as_text=True)
    assert _numbers(last) == {inv(4), inv(3), inv(2), inv(1)}


# --- CSV (R-42) -----------------------------------------------------------------------------------


def test_csv_for_excel_with_every_document_field(staff):
    response = staff.get("/staff/invoices.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="invoices-20270301.csv"'
    header, found = _csv(response)
    assert header == [
        "number",
        "kind",
        "issued_on",
        "billing_month",
        "period_start",
        "period_end",
        "counterparty",
        "issuer_registration_number",
        "subtotal",
        "taxable_10%",
        "tax_10%",
        "taxable_8%",
        "tax_8%",
        "tax_total",
        "total",
        "due_on",
        "status",
        "paid_at",
        "original_number",
    ]
    assert [r["number"] for r in found][:4] == [inv(1), inv(2), inv(3), inv(4)]  # oldest first
    assert {r["number"] for r in found} == EVERYTHING
    by_number = {r["number"]: r for r in found}
    assert by_number[inv(6)] == {
        "number": inv(6),
        "kind": "invoice",
        "issued_on": "2026-12-21",
        "billing_month": "2027-01",
        "period_start": "2026-12-21",
        "period_end": "2027-01-20",
        "counterparty": "Beta K.K.",
        "issuer_registration_number": "T1234567890123",
        "subtotal": "210000",
        "taxable_10%": "50000",
        "tax_10%": "5000",
        "taxable_8%": "160000",
        "tax_8%": "12800",
        "tax_total": "17800",
        "total": "227800",
        "due_on": "2027-01-20",
        "status": "open",
        "paid_at": "",
        "original_number": "",
    }
    assert by_number[inv(3)]["status"] == "paid"
    assert by_number[inv(3)]["paid_at"] == "2026-12-15 10:00:00"  # Tokyo time
    assert by_number[inv(4)]["status"] == "credited"
    assert (by_number[crn(2)]["kind"], by_number[crn(2)]["original_number"]) == (
        "credit_note",
        inv(6),
    )
    assert (by_number[crn(2)]["taxable_8%"], by_number[crn(2)]["tax_8%"]) == ("10000", "800")
    assert (by_number[crn(2)]["taxable_10%"], by_number[crn(2)]["total"]) == ("", "10800")
    assert by_number[crn(2)]["status"] == by_number[crn(2)]["due_on"] == ""
    assert by_number[inv(7)]["counterparty"] == "ガンマ商事株式会社"
    for row in found:  # amounts are whole yen, plain integers
        for column in ("subtotal", "tax_total", "total"):
            assert re.fullmatch(r"\d+", row[column]), (row["number"], column)
        assert int(row["subtotal"]) + int(row["tax_total"]) == int(row["total"])


@pytest.mark.parametrize(
    "query",
    [
        {"counterparty": "alpha"},
        {"issued_from": "2026-12-01", "issued_to": "2027-01-31"},
        {"amount_min": "100000", "amount_max": "150000"},
        {"status": "overdue", "counterparty": "beta"},
        {"kind": "credit_note"},
    ],
)
def test_csv_holds_what_the_search_shows(staff, query):
    shown = _numbers(staff.get("/staff/invoices", query_string=query).get_data(as_text=True))
    header, found = _csv(staff.get("/staff/invoices.csv", query_string=query))
    assert {r["number"] for r in found} == shown
    assert len(found) == len(shown)


def test_csv_has_a_column_pair_per_tax_rate_found(staff):
    header, _found = _csv(staff.get("/staff/invoices.csv", query_string={"counterparty": "alpha"}))
    assert [h for h in header if "%" in h] == ["taxable_10%", "tax_10%"]
    header, found = _csv(staff.get("/staff/invoices.csv", query_string={"counterparty": "nobody"}))
    assert found == [] and "number" in header


def test_csv_is_streamed_in_batches(staff, monkeypatch):
    monkeypatch.setattr(billing, "CSV_BATCH", 4)
    response = staff.get("/staff/invoices.csv", buffered=False)
    assert response.is_streamed
    chunks = list(response.response)
    response.close()
    assert len(chunks) == 4  # the header with 4 rows, 4, 4, and the last 3
    text = "".join(c.decode() if isinstance(c, bytes) else c for c in chunks)
    assert text.count("\r\n") == 16


def test_a_name_excel_would_run_as_a_formula_is_exported_as_text(app, world, staff):
    with app.app_context():
        risky = add_organisation('=HYPERLINK("http://x") K.K.', "risky.example")
        db.session.commit()
        risky_id = risky.id
    add_contract(app, risky_id, service_start=TODAY)
    with app.app_context():
        invoicing.issue_invoices(TODAY)
    _header, found = _csv(
        staff.get("/staff/invoices.csv", query_string={"counterparty": "hyperlink"})
    )
    assert [r["counterparty"] for r in found] == ['\'=HYPERLINK("http://x") K.K.']


# --- one document ---------------------------------------------------------------------------------


def test_detail_shows_the_frozen_document_its_payment_and_credit_notes(app, staff):
    page = staff.get(f"/staff/invoices/{invoice_id(app, inv(6))}").get_data(as_text=True)
    assert "Invoice INV-00000006" in page
    assert "Registration number T1234567890123" in page
    assert 'data-testid="recipient"' in page and "Beta K.K." in page
    assert "40 days overdue" in page
    assert "Monthly fee" in page and "Initial fee" in page
    assert re.search(r'data-testid="tax-10">¥5,000<', page)
    assert re.search(r'data-testid="tax-8">¥12,800<', page)
    assert re.search(r'data-testid="invoice-total">¥227,800<', page)
    assert f'href="/staff/invoices/{invoice_id(app, inv(6))}/pdf"' in page
    assert crn(2) in page and "Discount agreed" in page
    assert "left to credit: ¥217,000" in page
    # the amount due (less the credit note), what the payment form records, and the
    # account to pay into as the invoice was issued with it.
    assert 'data-testid="amount-due">¥217,000<' in page
    assert "Record a bank transfer or a direct debit of ¥217,000" in page
    assert re.search(
        r'data-testid="bank-transfer">.*テスト銀行.*7654321.*テストテイキヨウシヤ', page, re.S
    )
    assert "Tel. 03-1234-5678" in page
    # Billing staff see the forms.
    assert 'data-testid="payment-form"' in page and 'data-testid="credit-note-form"' in page
    assert 'data-testid="send-reminder"' in page

    paid = staff.get(f"/staff/invoices/{invoice_id(app, inv(3))}").get_data(as_text=True)
    assert 'data-testid="payment"' in paid and "Bank transfer" in paid
    assert "Furikomi ALPHA 1215" in paid
    assert 'data-testid="amount-due">¥0<' in paid  # less its payment
    assert 'data-testid="payment-form"' not in paid and 'data-testid="send-reminder"' not in paid

    note = staff.get(f"/staff/invoices/{invoice_id(app, crn(1))}").get_data(as_text=True)
    heading = re.search(r"<h1>(.*?)</h1>", note, re.S).group(1)
    assert re.sub(r"<[^>]+>|\s+", " ", heading).strip() == "Credit note CRN-00000001"
    assert re.search(rf'data-testid="original"><a href="/staff/invoices/\d+">{inv(4)}</a>', note)
    assert "Service not provided" in note
    assert 'data-testid="payment-form"' not in note and 'data-testid="credit-note-form"' not in note


def test_missing_documents_are_404(staff):
    for path in ("/staff/invoices/9999", "/staff/invoices/9999/pdf"):
        assert staff.get(path).status_code == 404, path
    for path in ("payments", "credit-notes", "reminders"):
        assert staff.post(f"/staff/invoices/9999/{path}", data={}).status_code == 404, path


def _store_pdf(app, number: str, content: bytes) -> None:
    """A stored PDF, as the renderer leaves it (the renderer itself is tested elsewhere)."""
    with app.app_context():
        db.session.execute(
            sa.update(Invoice)
            .where(Invoice.number == number)
            .values(pdf=content, pdf_sha256=hashlib.sha256(content).hexdigest())
        )
        db.session.commit()


def test_pdf_is_served_as_stored(app, staff, support):
    content = b"%PDF-1.7 stored at issue\n%%EOF\n"
    _store_pdf(app, inv(6), content)
    for client in (staff, support):
        response = client.get(f"/staff/invoices/{invoice_id(app, inv(6))}/pdf")
        assert response.status_code == 200
        assert response.mimetype == "application/pdf"
        assert response.headers["Content-Disposition"] == f'attachment; filename="{inv(6)}.pdf"'
        assert response.get_data() == content


# --- payments (R-43) ------------------------------------------------------------------------------


def _summary(page: str) -> str:
    block = re.search(r'data-testid="confirm-summary">(.*?)</ul>', page, re.S).group(1)
    return re.sub(r"<[^>]+>|\s+", " ", block).strip()


def test_a_payment_asks_first_and_changes_nothing_until_confirmed(app, staff):
    """Recording a payment cannot be undone: a page says what will happen (the amount due
    after the credit note, R-44) and the same form goes back with confirmed=yes or edit."""
    target = invoice_id(app, inv(6))  # ¥227,800 less CRN-2's ¥10,800
    payment = {"method": "direct_debit", "received_on": "2027-02-27", "reference": "BETA 0227"}
    before = snapshot(app, skip=SESSIONS)
    page = staff.post(f"/staff/invoices/{target}/payments", data=payment)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    summary = _summary(html)
    assert "¥217,000" in summary and "¥227,800" not in summary
    assert "Direct debit" in summary and inv(6) in summary and "BETA 0227" in summary
    assert f'action="/staff/invoices/{target}/payments"' in html
    assert 'name="confirmed" value="yes"' in html and 'name="confirmed" value="edit"' in html
    assert 'name="reference" value="BETA 0227"' in html  # the form as typed, sent again
    assert snapshot(app, skip=SESSIONS) == before
    # "Go back and change" shows the form as typed, still nothing recorded.
    edit = staff.post(f"/staff/invoices/{target}/payments", data={**payment, "confirmed": "edit"})
    assert edit.status_code == 200
    assert 'data-testid="payment-form"' in edit.get_data(as_text=True)
    assert 'value="BETA 0227"' in edit.get_data(as_text=True)
    assert snapshot(app, skip=SESSIONS) == before
    done = staff.post(f"/staff/invoices/{target}/payments", data={**payment, "confirmed": "yes"})
    assert done.status_code == 302
    (recorded,) = rows(app, Payment, invoice_id=target)
    assert (recorded.method, recorded.amount) == ("direct_debit", 217_000)


def test_a_bank_transfer_is_recorded_once(app, world, staff):
    number = inv(8)
    target = invoice_id(app, number)
    payment = {
        "method": "bank_transfer",
        "received_on": "2027-02-27",
        "reference": "ALPHA 0227",
        "confirmed": "yes",
    }
    response = staff.post(f"/staff/invoices/{target}/payments", data=payment)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/invoices/{target}"
    (recorded,) = rows(app, Payment, invoice_id=target)
    assert (recorded.method, recorded.amount) == ("bank_transfer", 55_000)
    assert (recorded.received_on, recorded.reference) == (date(2027, 2, 27), "ALPHA 0227")
    assert recorded.recorded_by_id == world.ids["billing"]
    state = state_of(app, target)
    assert state.status == "paid" and state.paid_at == DEFAULT_NOW

    before = snapshot(app, skip=SESSIONS)
    again = {"method": "direct_debit", "received_on": "2027-02-28", "reference": "DD 0228"}
    for confirmed in ("", "yes"):  # refused on the confirmation page and on confirming
        response = staff.post(
            f"/staff/invoices/{target}/payments", data={**again, "confirmed": confirmed}
        )
        assert response.status_code == 409
    assert "This invoice is already paid." in response.get_data(as_text=True)
    assert snapshot(app, skip=SESSIONS) == before
    assert len(rows(app, Payment, invoice_id=target)) == 1
    # Paid: it is no longer overdue, and the search says so.
    found = staff.get("/staff/invoices", query_string={"status": "paid"}).get_data(as_text=True)
    assert _numbers(found) == {inv(3), number}


@pytest.mark.parametrize(
    "form, field",
    [
        ({"method": "cash", "received_on": "2027-02-27", "reference": "x"}, "method"),
        ({"method": "bank_transfer", "received_on": "", "reference": "x"}, "received_on"),
        ({"method": "bank_transfer", "received_on": "27/02/2027", "reference": "x"}, "received_on"),
        ({"method": "bank_transfer", "received_on": "2027-03-02", "reference": "x"}, "received_on"),
        # Issue 13: not before the invoice was issued, nor in a year the portal cannot mean.
        ({"method": "bank_transfer", "received_on": "2026-01-05", "reference": "x"}, "received_on"),
        ({"method": "bank_transfer", "received_on": "0001-01-01", "reference": "x"}, "received_on"),
        (
            {"method": "bank_transfer", "received_on": "2027-02-27", "reference": "\x00"},
            "reference",
        ),
        ({"method": "bank_transfer", "received_on": "2027-02-27", "reference": ""}, "reference"),
        (
            {"method": "bank_transfer", "received_on": "2027-02-27", "reference": "x" * 201},
            "reference",
        ),
    ],
)
def test_a_payment_form_with_errors_changes_nothing(app, staff, form, field):
    before = snapshot(app, skip=SESSIONS)
    response = staff.post(f"/staff/invoices/{invoice_id(app, inv(8))}/payments", data=form)
    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), field)
    assert snapshot(app, skip=SESSIONS) == before


def test_credited_or_credit_note_documents_are_not_paid(app, staff):
    form = {"method": "bank_transfer", "received_on": "2027-02-27", "reference": "x"}
    before = snapshot(app, skip=SESSIONS)
    for number in (inv(4), crn(1)):
        response = staff.post(f"/staff/invoices/{invoice_id(app, number)}/payments", data=form)
        assert response.status_code == 409, number
    assert snapshot(app, skip=SESSIONS) == before


# --- credit notes (R-42) --------------------------------------------------------------------------


def test_credit_notes_reference_the_original_and_settle_it_when_full(app, world, staff):
    original = invoice_id(app, inv(5))  # ¥55,000 at 10%
    form = {"amount": "20,000", "tax_rate_percent": "10", "reason": "Two weeks of outage"}
    # An issued credit note never changes: first what will be issued, and nothing changes.
    before = snapshot(app, skip=SESSIONS)
    page = staff.post(f"/staff/invoices/{original}/credit-notes", data=form)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    summary = _summary(html)
    assert "¥20,000" in summary and "¥2,000" in summary and "¥22,000" in summary
    assert "Two weeks of outage" in summary
    assert f"Amount due on {inv(5)} afterwards: ¥33,000." in summary
    assert 'name="amount" value="20,000"' in html  # as typed
    assert snapshot(app, skip=SESSIONS) == before
    edit = staff.post(
        f"/staff/invoices/{original}/credit-notes", data={**form, "confirmed": "edit"}
    )
    assert edit.status_code == 200 and 'value="20,000"' in edit.get_data(as_text=True)
    assert 'data-testid="credit-note-form"' in edit.get_data(as_text=True)
    assert snapshot(app, skip=SESSIONS) == before
    response = staff.post(
        f"/staff/invoices/{original}/credit-notes", data={**form, "confirmed": "yes"}
    )
    assert response.status_code == 302
    (first,) = rows(app, Invoice, number=crn(3))
    assert response.headers["Location"] == f"/staff/invoices/{first.id}"
    assert (first.kind, first.original_invoice_id) == (DocumentKind.CREDIT_NOTE, original)
    assert (first.subtotal, first.tax_total, first.total) == (20_000, 2_000, 22_000)
    assert first.recipient_name == "Alpha K.K." and first.issued_on == TODAY
    assert first.created_by_id == world.ids["billing"]
    assert state_of(app, original).status == "open"
    page = staff.get(response.headers["Location"]).get_data(as_text=True)
    assert "Credit note CRN-00000003" in page and inv(5) in page

    # More than is left (¥33,000 tax included) is refused next to the amount.
    before = snapshot(app, skip=SESSIONS)
    too_much = {"amount": "30001", "tax_rate_percent": "10", "reason": "The rest of it"}
    response = staff.post(f"/staff/invoices/{original}/credit-notes", data=too_much)
    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), "amount") == (
        "At most ¥33,000 (tax included) is left to credit."
    )
    assert snapshot(app, skip=SESSIONS) == before

    rest = {
        "amount": "30000",
        "tax_rate_percent": "10",
        "reason": "The rest of it",
        "confirmed": "yes",
    }
    response = staff.post(f"/staff/invoices/{original}/credit-notes", data=rest)
    assert response.status_code == 302
    (second,) = rows(app, Invoice, number=crn(4))
    assert second.total == 33_000 and second.original_invoice_id == original
    assert state_of(app, original).status == "credited"
    assert inv(5) not in _overdue_page(staff)  # settled: no longer overdue


@pytest.mark.parametrize(
    "form, field",
    [
        ({"amount": "", "tax_rate_percent": "10", "reason": "A good reason"}, "amount"),
        ({"amount": "0", "tax_rate_percent": "10", "reason": "A good reason"}, "amount"),
        ({"amount": "1.5", "tax_rate_percent": "10", "reason": "A good reason"}, "amount"),
        (
            {"amount": "1000", "tax_rate_percent": "8", "reason": "A good reason"},
            "tax_rate_percent",
        ),
        ({"amount": "1000", "tax_rate_percent": "10", "reason": "abc"}, "reason"),
    ],
)
def test_a_credit_note_form_with_errors_changes_nothing(app, staff, form, field):
    before = snapshot(app, skip=SESSIONS)
    response = staff.post(f"/staff/invoices/{invoice_id(app, inv(5))}/credit-notes", data=form)
    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), field)
    assert snapshot(app, skip=SESSIONS) == before


def test_a_credit_note_is_not_itself_credited(app, staff):
    before = snapshot(app, skip=SESSIONS)
    response = staff.post(
        f"/staff/invoices/{invoice_id(app, crn(2))}/credit-notes",
        data={"amount": "1000", "tax_rate_percent": "8", "reason": "A good reason"},
    )
    assert response.status_code == 422
    assert snapshot(app, skip=SESSIONS) == before


# --- overdue invoices and reminders (R-33) ------------------------------------------------------


def _overdue_page(staff) -> dict[str, dict[str, str]]:
    page = staff.get("/staff/invoices/overdue").get_data(as_text=True)
    table = {}
    for number, row in re.findall(r'data-testid="overdue-([A-Z]+-\d+)">(.*?)</tr>', page, re.S):
        cells = {
            name: re.sub(r"<[^>]+>|\s+", " ", value).strip()
            for name, value in re.findall(r'data-testid="([a-z-]+)">(.*?)</td>', row, re.S)
        }
        cells["can-remind"] = 'data-testid="send-reminder"' in row
        table[number] = cells
    return table


def test_overdue_lists_open_invoices_past_due_with_days_overdue(staff):
    table = _overdue_page(staff)
    assert {n: r["days-overdue"] for n, r in table.items()} == {
        inv(1): "101",  # due 2026-11-20
        inv(2): "101",
        inv(5): "40",  # due 2027-01-20
        inv(6): "40",
        inv(7): "40",
        inv(8): "9",  # due 2027-02-20
        inv(9): "9",
        inv(10): "9",
    }  # not INV-3 (paid), INV-4 (credited), nor those due 2027-03-20
    assert all(r["reminders"] == "—" and r["may-end"] == "—" for r in table.values())
    assert all(r["can-remind"] for r in table.values())
    page = staff.get("/staff/invoices/overdue").get_data(as_text=True)
    assert "¥217,000" in page  # INV-6 less its credit note


def test_a_reminder_is_recorded_once_a_day_with_its_notice(app, world, staff):
    target = invoice_id(app, inv(6))
    response = staff.post(f"/staff/invoices/{target}/reminders", data={})
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/invoices/overdue"
    (reminder,) = rows(app, PaymentReminder, invoice_id=target)
    assert (reminder.sent_on, reminder.days_overdue) == (TODAY, 40)
    assert reminder.sent_by_id == world.ids["billing"]
    state = state_of(app, target)
    assert (state.status, state.last_reminded_on, state.reminders_sent) == ("open", TODAY, 1)
    (notice,) = rows(app, OutboxEmail, kind="payment_reminder")
    assert notice.organisation_id == world.org_b and notice.sent_at is None  # waits for send-mail
    assert notice.is_notice and not notice.affects_contract
    assert notice.to_address == rows(app, Organisation, id=world.org_b)[0].billing_email
    # The amount due is INV-6's total less its credit note; the days overdue as of today.
    assert inv(6) in notice.subject
    assert "¥217,000" in notice.body and "¥227,800" not in notice.body
    assert "7654321" in notice.body and "テストテイキヨウシヤ" in notice.body  # how to pay
    assert "40" in notice.body and f"/invoices/{target}" in notice.body
    (event,) = rows(app, AuditEvent, action="invoice.reminder_sent")
    assert (event.user_id, event.organisation_id) == (world.ids["billing"], world.org_b)
    assert event.details["invoice_number"] == inv(6)
    row = _overdue_page(staff)[inv(6)]
    assert row["reminders"] == "1 sent: 2027-03-01"
    assert not row["can-remind"]  # reminded today

    # A second the same day is refused and changes nothing (unique invoice + day).
    before = snapshot(app, skip=SESSIONS)
    response = staff.post(f"/staff/invoices/{target}/reminders", data={})
    assert response.status_code == 409
    assert "already sent today" in response.get_data(as_text=True)
    assert snapshot(app, skip=SESSIONS) == before

    # The next day another may go out.
    staff = billing_staff_on(app, world, date(2027, 3, 2))
    response = staff.post(f"/staff/invoices/{target}/reminders", data={"back": "detail"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/invoices/{target}"
    assert [r.sent_on for r in rows(app, PaymentReminder, invoice_id=target)] == [
        TODAY,
        date(2027, 3, 2),
    ]
    state = state_of(app, target)
    assert (state.last_reminded_on, state.reminders_sent) == (date(2027, 3, 2), 2)
    assert len(rows(app, OutboxEmail, kind="payment_reminder")) == 2
    page = staff.get(f"/staff/invoices/{target}").get_data(as_text=True)
    assert "2 days overdue" not in page and "41 days overdue" in page


def test_reminders_are_only_for_open_overdue_invoices(app, staff):
    before = snapshot(app, skip=SESSIONS)
    for number in (inv(3), inv(4), inv(11), crn(1)):  # paid, credited, not yet due, credit note
        response = staff.post(f"/staff/invoices/{invoice_id(app, number)}/reminders", data={})
        assert response.status_code == 409, number
    assert snapshot(app, skip=SESSIONS) == before


def test_r33_flags_invoices_unpaid_15_days_after_a_reminder(app, world, staff):
    assert staff.post(f"/staff/invoices/{invoice_id(app, inv(1))}/reminders").status_code == 302
    staff = billing_staff_on(app, world, date(2027, 3, 10))
    for number in (inv(1), inv(2)):
        assert staff.post(f"/staff/invoices/{invoice_id(app, number)}/reminders").status_code == 302
    # 15 days after the first reminder have not yet passed on the 16th (IW 17(1)①).
    table = _overdue_page(billing_staff_on(app, world, date(2027, 3, 16)))
    assert table[inv(1)]["may-end"] == "May be ended from March 17, 2027 if still unpaid"
    assert table[inv(1)]["reminders"] == "2 sent: 2027-03-01, 2027-03-10"
    table = _overdue_page(billing_staff_on(app, world, date(2027, 3, 17)))
    assert table[inv(1)]["may-end"] == "May be ended since March 17, 2027"
    assert table[inv(1)]["days-overdue"] == "117"
    assert table[inv(2)]["may-end"] == "May be ended from March 26, 2027 if still unpaid"
    assert table[inv(5)]["may-end"] == "—"


# --- who may do what ------------------------------------------------------------------------------

GETS = ("", ".csv", "/overdue", "/{id}", "/{id}/pdf")
POSTS = ("/{id}/payments", "/{id}/credit-notes", "/{id}/reminders")


@pytest.mark.parametrize(
    "kind",
    ["member", "admin", "other_admin", "sales_agent", "agency_agent", "other_sales_agent"],
)
def test_customers_and_agents_get_404_on_every_route(app, world, kind):
    client = app.test_client()
    become(app, client, world, kind)
    target = invoice_id(app, inv(1))  # org A's own invoice
    before = snapshot(app, skip=SESSIONS + ("account_entries", "audit_events"))
    for path in GETS:
        assert client.get("/staff/invoices" + path.format(id=target)).status_code == 404, path
    for path in POSTS:
        assert client.post("/staff/invoices" + path.format(id=target), data={}).status_code == 404
    assert snapshot(app, skip=SESSIONS + ("account_entries", "audit_events")) == before


def test_staff_viewing_as_a_customer_get_403_and_anonymous_sign_in(app, world):
    _store_pdf(app, inv(1), b"%PDF-1.7\n")
    target = invoice_id(app, inv(1))
    viewing = app.test_client()
    become(app, viewing, world, "support_viewing")
    anonymous = app.test_client()
    for path in GETS:
        url = "/staff/invoices" + path.format(id=target)
        assert viewing.get(url).status_code == 403, path
        response = anonymous.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    for path in POSTS:
        url = "/staff/invoices" + path.format(id=target)
        assert viewing.post(url, data={}).status_code == 403, path
        assert anonymous.post(url, data={}).status_code == 302, path


def test_support_staff_look_but_do_not_touch(app, support):
    _store_pdf(app, inv(1), b"%PDF-1.7\n")
    target = invoice_id(app, inv(1))
    for path in GETS:
        assert support.get("/staff/invoices" + path.format(id=target)).status_code == 200, path
    page = support.get(f"/staff/invoices/{target}").get_data(as_text=True)
    assert 'data-testid="payment-form"' not in page
    assert 'data-testid="credit-note-form"' not in page
    assert 'data-testid="send-reminder"' not in page
    assert 'data-testid="send-reminder"' not in support.get("/staff/invoices/overdue").get_data(
        as_text=True
    )
    forms = {
        "/{id}/payments": {
            "method": "bank_transfer",
            "received_on": "2027-02-27",
            "reference": "x",
        },
        "/{id}/credit-notes": {"amount": "1000", "tax_rate_percent": "10", "reason": "A reason"},
        "/{id}/reminders": {},
    }
    before = snapshot(app, skip=SESSIONS)
    for path, form in forms.items():
        response = support.post("/staff/invoices" + path.format(id=target), data=form)
        assert response.status_code == 403, path
    assert snapshot(app, skip=SESSIONS) == before


# --- the provider's settings: issuer and bank account (R-40, R-44) ---------------------------

NEW_SETTINGS = {
    "name_ja": "テスト提供者",
    "name_en": "Test Provider",
    "registration_number": "ｔ１２３４５６７８９０１２３",  # typed with a Japanese IME
    "address": "東京都港区芝公園1-2-3",
    "phone": "０３－９８７６－５４３２",
    "contact_email": "billing@provider.example",
    "bank_name": "みらい銀行",
    "bank_branch": "芝支店",
    "bank_account_type": "current",
    "bank_account_number": "１２３４５６７",
    "bank_account_holder_kana": "ｶ)ﾃｽﾄﾃｲｷｮｳｼｬ",
}


@pytest.fixture
def light(app):
    """W-1's world with a staff administrator, and the first invoices (2026-11-05)."""
    world = build_world(app)
    with app.app_context():
        add_user(
            "admin@provider.example",
            "Staff administrator",
            kind=UserKind.STAFF,
            staff_role=StaffRole.ADMINISTRATOR,
        )
        db.session.commit()
        invoicing.issue_invoices(date(2026, 11, 5))
    return world


def _provider(app) -> dict[str, str]:
    with app.app_context():
        provider = db.session.scalars(sa.select(Provider)).one()
        return {name: getattr(provider, name) for name in billing.PROVIDER_FIELDS}


def test_staff_read_the_provider_settings_and_only_administrators_change_them(app, light):
    before = _provider(app)
    for kind in ("support", "billing"):
        client = signed_in_client(app, light.emails[kind])
        page = client.get("/staff/provider").get_data(as_text=True)
        assert 'data-testid="provider-settings"' in page and "7654321" in page
        assert 'data-testid="provider-form"' not in page
        assert client.post("/staff/provider", data=NEW_SETTINGS).status_code == 403
    assert _provider(app) == before
    assert rows(app, AuditEvent, action="provider.settings_changed") == []
    admin = signed_in_client(app, "admin@provider.example")
    page = admin.get("/staff/provider").get_data(as_text=True)
    assert 'data-testid="provider-form"' in page and 'value="7654321"' in page


PROVIDER_ERRORS = {
    "registration_number": ({"registration_number": "T123"}, "Enter T and the 13 digits"),
    "name_ja": ({"name_ja": " "}, "This field is required."),
    "phone": ({"phone": "call us"}, "Enter a phone number"),
    "contact_email": ({"contact_email": "billing@"}, "Enter a valid e-mail address."),
    "bank_account_number": ({"bank_account_number": "12345"}, "7 digits"),
    "bank_account_holder_kana": ({"bank_account_holder_kana": "Test Provider"}, "katakana"),
    # An account is printed whole or not at all.
    "bank_branch": ({"bank_branch": ""}, "Give every detail of the bank account"),
}


def test_bad_provider_settings_are_refused_next_to_the_field_and_change_nothing(app, light):
    admin = signed_in_client(app, "admin@provider.example")
    before = snapshot(app, skip=SESSIONS)
    for field, (bad, message) in PROVIDER_ERRORS.items():
        response = admin.post("/staff/provider", data={**NEW_SETTINGS, **bad})
        page = response.get_data(as_text=True)
        assert response.status_code == 422, field
        assert message in (_error(page, field) or ""), (field, _error(page, field))
        assert 'value="みらい銀行"' in page  # the rest as typed
    assert snapshot(app, skip=SESSIONS) == before


def _pdf_text(client, invoice_id: int) -> str:
    pdf = client.get(f"/invoices/{invoice_id}/pdf").get_data()
    return " ".join(" ".join(p.extract_text() for p in PdfReader(BytesIO(pdf)).pages).split())


def test_a_change_is_on_the_record_and_reaches_only_invoices_issued_after_it(app, light):
    """R-42/R-44: an invoice keeps the account it was issued with; the next ones carry the new."""
    admin = signed_in_client(app, "admin@provider.example")
    response = admin.post("/staff/provider", data=NEW_SETTINGS)
    assert response.status_code == 302 and response.headers["Location"] == "/staff/provider"
    saved = _provider(app)
    assert saved["registration_number"] == "T1234567890123"  # unchanged once half-width
    assert saved["phone"] == "03-9876-5432" and saved["bank_account_number"] == "1234567"
    assert saved["bank_account_holder_kana"] == "カ)テストテイキョウシャ"
    (event,) = rows(app, AuditEvent, action="provider.settings_changed")
    assert event.user_id is not None and event.subject_type == "providers"
    assert event.details["changes"]["bank_account_number"] == {"old": "7654321", "new": "1234567"}
    assert event.details["changes"]["phone"] == {"old": "03-1234-5678", "new": "03-9876-5432"}
    assert "registration_number" not in event.details["changes"]  # only what changed
    history = admin.get("/staff/provider").get_data(as_text=True)
    assert 'data-testid="provider-history"' in history and "1234567" in history
    # The same settings again change nothing and record nothing.
    assert admin.post("/staff/provider", data=NEW_SETTINGS).status_code == 302
    assert len(rows(app, AuditEvent, action="provider.settings_changed")) == 1

    at(date(2026, 11, 21))
    with app.app_context():
        invoicing.issue_invoices(date(2026, 11, 21))
    clock.set(DEFAULT_NOW)
    customer = signed_in_client(app, light.emails["admin"])
    before, after = invoice_id(app, inv(1)), invoice_id(app, inv(3))  # both Alpha's
    old_page = customer.get(f"/invoices/{before}").get_data(as_text=True)
    new_page = customer.get(f"/invoices/{after}").get_data(as_text=True)
    old_bank = re.search(r'data-testid="bank-transfer">(.*?)</dl>', old_page, re.S).group(1)
    new_bank = re.search(r'data-testid="bank-transfer">(.*?)</dl>', new_page, re.S).group(1)
    assert "テスト銀行" in old_bank and "7654321" in old_bank and "Ordinary account" in old_bank
    assert "みらい銀行" in new_bank and "1234567" in new_bank and "Current account" in new_bank
    assert "03-1234-5678" in old_page and "03-9876-5432" in new_page
    assert "billing@provider.example" in new_page  # the contact e-mail on the page
    old_pdf, new_pdf = _pdf_text(customer, before), _pdf_text(customer, after)
    assert "テスト銀行" in old_pdf and "7654321" in old_pdf and "03-1234-5678" in old_pdf
    assert "みらい銀行" in new_pdf and "1234567" in new_pdf and "03-9876-5432" in new_pdf
    assert "カ)テストテイキョウシャ" in new_pdf and "7654321" not in new_pdf
