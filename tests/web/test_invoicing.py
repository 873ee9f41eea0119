"""The monthly run and the customer's invoices (R-11, R-13, R-40..R-42).

Invoices are issued once per organisation and billing month however often (or however
concurrently) the run goes, with gapless numbers; they carry the monthly fees in advance and
the ledger's charges; an issued invoice never changes, not even through SQL.
"""

from __future__ import annotations

import hashlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from portal.clock import clock
from portal.domain.quotes import RequestKind
from portal.extensions import db
from portal.models import (
    Contract,
    Invoice,
    InvoiceLine,
    LedgerCharge,
    Organisation,
    OutboxEmail,
    User,
)
from portal.payments import service as payments
from portal.permissions import Actor
from portal.services import invoicing
from portal.services import requests as request_service
from portal.services.apply import apply_due
from tests.factories import build_world, enter_client, rows, signed_in_client


@pytest.fixture
def world(app):
    return build_world(app)


def _at(day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC))  # 10:00 Tokyo


def _run(app, day: date) -> invoicing.IssueSummary:
    _at(day)
    with app.app_context():
        apply_due(day)
        return invoicing.issue_invoices(day)


def _invoices(app, **where) -> list[tuple]:
    with app.app_context():
        found = db.session.scalars(
            sa.select(Invoice).filter_by(**where).order_by(Invoice.sequence)
        ).all()
        return [
            (
                i.number,
                i.organisation_id,
                i.billing_month,
                i.issued_on,
                [(line.kind, line.amount) for line in i.lines],
                i.subtotal,
                i.tax_total,
                i.total,
            )
            for i in found
        ]


def test_the_first_invoice_at_service_start_carries_the_initial_fee(app, world):
    """R-11/R-41: W-1 starts 2026-11-05; its first invoice, that day, is the initial fee."""
    summary = _run(app, date(2026, 11, 5))
    assert summary.issued == 2
    assert _invoices(app, organisation_id=world.org_a) == [
        ("INV-00000001", world.org_a, "2026-11", date(2026, 11, 5),
         [("initial_fee", 50_000)], 50_000, 5_000, 55_000),
    ]  # fmt: skip


def test_monthly_invoices_carry_the_fee_in_advance_and_a_second_run_issues_nothing(app, world):
    """R-03: 2026-11 (lead-in) has no monthly fee; from 2026-12 each month is billed on the
    21st, once, whatever the number of runs."""
    _run(app, date(2026, 11, 5))
    assert _run(app, date(2026, 11, 21)).issued == 2
    assert _run(app, date(2026, 11, 21)).issued == 0
    assert _run(app, date(2026, 11, 25)).issued == 0
    december = _invoices(app, organisation_id=world.org_a, billing_month="2026-12")
    assert december == [
        ("INV-00000003", world.org_a, "2026-12", date(2026, 11, 21),
         [("monthly_fee", 50_000)], 50_000, 5_000, 55_000),
    ]  # fmt: skip
    with app.app_context():
        invoice = db.session.scalars(sa.select(Invoice).filter_by(number="INV-00000003")).one()
        assert (invoice.period_start, invoice.period_end) == (
            date(2026, 11, 21),
            date(2026, 12, 20),
        )
        assert invoice.due_on == date(2026, 12, 20)
        assert invoice.recipient_name == "Alpha K.K."
        assert invoice.provider_registration_number == "T1234567890123"
        assert invoice.tax_summary == [{"rate_percent": 10, "taxable": 50_000, "tax": 5_000}]


def test_requests_charges_reach_the_invoice_of_their_month(app, world):
    """W-3 then W-2 on contract A: upgrade charges and the new fee on 2027-02; the shortfall of
    a later cancellation on the month after the contract's last day."""
    _at(date(2027, 1, 5))
    with app.app_context():
        admin = Actor(db.session.get(User, world.ids["admin"]))
        contract = db.session.get(Contract, world.contract_a)
        request_service.submit(
            admin,
            contract,
            request_service.Choice(RequestKind.UPGRADE, world.ids["plan_large"], date(2027, 1, 15)),
            ip="192.0.2.1",
        )
        db.session.commit()
    for day in (date(2026, 11, 5), date(2026, 11, 21), date(2026, 12, 21), date(2027, 1, 15)):
        _run(app, day)
    _run(app, date(2027, 1, 21))
    (february,) = _invoices(app, organisation_id=world.org_a, billing_month="2027-02")
    assert february[4] == [
        ("monthly_fee", 100_000),
        ("initial_fee_difference", 50_000),
        ("change_fee", 5_000),
    ]
    assert february[5:] == (155_000, 15_500, 170_500)

    _at(date(2027, 3, 1))
    with app.app_context():
        request_service.submit(
            Actor(db.session.get(User, world.ids["admin"])),
            db.session.get(Contract, world.contract_a),
            request_service.Choice(RequestKind.CANCELLATION),
            ip="192.0.2.1",
        )
        db.session.commit()
    for day in (date(2027, 2, 21), date(2027, 3, 21)):
        _run(app, day)
    (april,) = _invoices(app, organisation_id=world.org_a, billing_month="2027-04")
    assert april[4] == [("monthly_fee", 100_000)]  # the last month of service
    _run(app, date(2027, 4, 21))
    (may,) = _invoices(app, organisation_id=world.org_a, billing_month="2027-05")
    # W-2 with the upgraded fee: 7 unexpired months × ¥100,000; no fee after the end.
    assert may[4] == [("shortfall", 700_000)]
    assert may[5:] == (700_000, 70_000, 770_000)
    with app.app_context():
        assert (
            db.session.scalar(sa.select(sa.func.count()).where(LedgerCharge.invoice_id.is_(None)))
            == 0
        )


def test_runs_at_once_issue_each_invoice_once_with_gapless_numbers(app, world):
    _at(date(2026, 11, 21))
    start = threading.Barrier(4)

    def run(_):
        with app.app_context():
            start.wait()
            summary = invoicing.issue_invoices(date(2026, 11, 21), batch_size=1)
            db.session.remove()
            return summary.issued

    with ThreadPoolExecutor(4) as pool:
        issued = list(pool.map(run, range(4)))
    assert sum(issued) == 2
    numbers = [i[0] for i in _invoices(app)]
    assert numbers == ["INV-00000001", "INV-00000002"]


def test_an_issued_invoice_cannot_be_changed_or_deleted_even_by_sql(app, world):
    """R-42: the database refuses it."""
    _run(app, date(2026, 11, 5))
    with app.app_context():
        for statement in (
            sa.update(Invoice).values(total=1),
            sa.update(Invoice).values(recipient_name="Someone else"),
            sa.delete(Invoice),
            sa.update(InvoiceLine).values(amount=1),
            sa.delete(InvoiceLine),
        ):
            with pytest.raises(DatabaseError):
                db.session.execute(statement)
            db.session.rollback()
    assert [i[7] for i in _invoices(app)] == [55_000, 55_000]


def test_the_recipient_keeps_the_name_it_was_issued_with(app, world):
    """R-62: a later change of the registered name leaves issued invoices as they were."""
    _run(app, date(2026, 11, 5))
    with app.app_context():
        db.session.get(Organisation, world.org_a).legal_name = "Alpha Holdings K.K."
        db.session.commit()
    _run(app, date(2026, 11, 21))
    with app.app_context():
        names = db.session.execute(
            sa.select(Invoice.billing_month, Invoice.recipient_name)
            .where(Invoice.organisation_id == world.org_a)
            .order_by(Invoice.id)
        ).all()
    assert names == [("2026-11", "Alpha K.K."), ("2026-12", "Alpha Holdings K.K.")]


# --- the customer's pages -------------------------------------------------------------------


@pytest.fixture
def issued(app, world):
    _run(app, date(2026, 11, 5))
    _run(app, date(2026, 11, 21))
    _at(date(2027, 3, 1))
    with app.app_context():
        return {
            number: invoice_id
            for number, invoice_id in db.session.execute(
                sa.select(Invoice.number, Invoice.id).where(Invoice.organisation_id == world.org_a)
            )
        }


def test_administrators_list_and_read_their_invoices(app, world, issued):
    admin = signed_in_client(app, world.emails["admin"])
    page = admin.get("/invoices").get_data(as_text=True)
    assert 'data-testid="invoice-INV-00000001"' in page
    assert 'data-testid="invoice-INV-00000003"' in page
    assert "INV-00000002" not in page  # org B's
    detail = admin.get(f"/invoices/{issued['INV-00000003']}").get_data(as_text=True)
    assert "T1234567890123" in detail
    assert '"invoice-total">¥55,000<' in detail
    assert "days overdue" in detail  # due 2026-12-20, today 2027-03-01


def test_the_downloaded_pdf_is_the_stored_one_byte_for_byte(app, world, issued):
    """R-42: rendered once, stored with its SHA-256, served as stored."""
    admin = signed_in_client(app, world.emails["admin"])
    first = admin.get(f"/invoices/{issued['INV-00000001']}/pdf")
    assert first.status_code == 200 and first.mimetype == "application/pdf"
    assert 'filename="INV-00000001.pdf"' in first.headers["Content-Disposition"]
    again = admin.get(f"/invoices/{issued['INV-00000001']}/pdf")
    with app.app_context():
        stored, digest = db.session.execute(
            sa.select(Invoice.pdf, Invoice.pdf_sha256).where(Invoice.number == "INV-00000001")
        ).one()
    assert first.data == again.data == stored
    assert hashlib.sha256(first.data).hexdigest() == digest == first.headers["X-Content-SHA256"]
    with app.app_context(), pytest.raises(DatabaseError):
        db.session.execute(sa.update(Invoice).values(pdf=b"%PDF-forged", pdf_sha256="0" * 64))


def test_members_see_invoices_only_when_their_administrator_allows_it(app, world, issued):
    member = signed_in_client(app, world.emails["member"])
    assert member.get("/invoices").status_code == 403
    admin = signed_in_client(app, world.emails["admin"])
    assert admin.post("/invoices/access", data={"members_see_invoices": "y"}).status_code == 302
    assert member.get("/invoices").status_code == 200
    assert member.get(f"/invoices/{issued['INV-00000001']}").status_code == 200


def test_agencies_never_see_invoices_and_other_organisations_ids_are_404(app, world, issued):
    agency = signed_in_client(app, world.emails["agency_agent"])
    enter_client(agency, world.org_a)
    assert agency.get("/invoices").status_code == 403
    other = signed_in_client(app, world.emails["other_admin"])
    assert other.get(f"/invoices/{issued['INV-00000001']}").status_code == 404
    assert other.get(f"/invoices/{issued['INV-00000001']}/pdf").status_code == 404
    sales = signed_in_client(app, world.emails["sales_agent"])
    enter_client(sales, world.org_a)
    assert sales.get(f"/invoices/{issued['INV-00000001']}").status_code == 200


def test_a_credit_note_references_the_original_and_never_changes_it(app, world, issued):
    with app.test_request_context():
        billing = Actor(db.session.get(User, world.ids["billing"]))
        original = db.session.get(Invoice, issued["INV-00000003"])
        note = invoicing.issue_credit_note(
            billing, original, amount=10_000, tax_rate_percent=10, reason="Outage credit", ip=""
        )
        db.session.commit()
        assert (note.number, note.total, note.original_invoice_id) == (
            "CRN-00000001",
            11_000,
            original.id,
        )
        with pytest.raises(invoicing.PortalError):
            invoicing.issue_credit_note(
                billing, original, amount=40_001, tax_rate_percent=10, reason="Too much", ip=""
            )
        db.session.rollback()
        assert db.session.get(Invoice, issued["INV-00000003"]).total == 55_000
    assert len(rows(app, Invoice, kind="credit_note")) == 1


def test_a_run_over_the_demo_data_can_be_checked_by_hand(app):
    """Issue 4: the demo loaded on 2027-03-01 with its past invoices; the run of 2027-03-21
    bills billing month 2027-04 in advance: each direct contract its monthly fee plus 10% tax
    (R-13, R-41); the agency contract whose 6-month period ends 2027-03-20 without a renewal
    application is not billed (R-06); a second run issues nothing."""
    from portal import demo

    load_day = date(2027, 3, 1)
    _at(load_day)
    with app.app_context():
        demo.load(load_day)
        db.session.commit()
        assert demo.issue_past_invoices(load_day) > 0
        assert invoicing.issue_invoices(load_day).issued == 0  # history complete
        fees = {
            c.organisation.legal_name: (c.monthly_fee, c.sales_channel.value)
            for c in db.session.scalars(sa.select(Contract))
        }
    summary = _run(app, date(2027, 3, 21))
    expected = {
        name: (fee, fee // 10, fee + fee // 10)
        for name, (fee, channel) in fees.items()
        if channel != "agency"
    }
    with app.app_context():
        april = {
            i.recipient_name: (i.subtotal, i.tax_total, i.total)
            for i in db.session.scalars(sa.select(Invoice).filter_by(billing_month="2027-04"))
        }
        for invoice in db.session.scalars(sa.select(Invoice).filter_by(billing_month="2027-04")):
            assert [line.kind for line in invoice.lines] == ["monthly_fee"]
            assert invoice.issued_on == date(2027, 3, 21)
            assert invoice.due_on == date(2027, 4, 20)
            assert invoice.provider_registration_number.startswith("T")
    assert april == expected
    assert summary.issued == len(expected) == 3
    assert _run(app, date(2027, 3, 21)).issued == 0


def test_r61_each_document_is_announced_to_the_billing_address_once_its_pdf_is_stored(
    app, world, issued
):
    """The e-mail goes when the document can be read: with its stored PDF, once, however
    often the PDF is rendered or downloaded."""
    assert rows(app, OutboxEmail, kind="invoice_issued") == []  # issued, no PDF yet
    with app.app_context():
        rendered = invoicing.render_pending_pdfs()
        assert invoicing.render_pending_pdfs() == 0
    announced = rows(app, OutboxEmail, kind="invoice_issued")
    assert len(announced) == rendered >= len(issued)
    assert all(any(number in e.subject for e in announced) for number in issued)
    admin = signed_in_client(app, world.emails["admin"])
    admin.get(f"/invoices/{issued['INV-00000001']}/pdf")
    assert len(rows(app, OutboxEmail, kind="invoice_issued")) == rendered
    first = next(e for e in announced if "INV-00000001" in e.subject)
    (organisation,) = rows(app, Organisation, id=first.organisation_id)
    assert first.to_address == organisation.billing_email
    assert first.is_notice and not first.affects_contract
    assert f"/invoices/{issued['INV-00000001']}" in first.body


# --- one amount due everywhere (R-44) -------------------------------------------------------


def _row(page: str, number: str) -> str:
    return re.search(rf'data-testid="invoice-{number}">(.*?)</tr>', page, re.S).group(1)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_amount_due_is_the_total_less_credit_notes_and_payments_everywhere(app, world, issued):
    """After a credit note: the list, its outstanding total, the Pay buttons and the invoice
    page all say ¥44,000 for a ¥55,000 invoice; after a payment, nothing is due on it."""
    with app.test_request_context():
        billing_staff = Actor(db.session.get(User, world.ids["billing"]))
        invoicing.issue_credit_note(
            billing_staff,
            db.session.get(Invoice, issued["INV-00000003"]),
            amount=10_000,
            tax_rate_percent=10,
            reason="Outage credit",
            ip="",
        )
        db.session.commit()
    admin = signed_in_client(app, world.emails["admin"])
    page = admin.get("/invoices").get_data(as_text=True)
    # INV-1 ¥55,000 and INV-3 ¥44,000, both past due on 2027-03-01.
    assert _text(re.search(r'data-testid="outstanding">(.*?)</section>', page, re.S).group(1)) == (
        "Outstanding · 2 invoices to pay ¥99,000 Overdue: ¥99,000 on 2 invoices"
    )
    row = _row(page, "INV-00000003")
    assert 'data-testid="due-INV-00000003">¥44,000<' in row
    assert ">¥55,000<" in row  # the total stays what was issued
    assert re.search(r'data-testid="pay-INV-00000003">\s*Pay ¥44,000\s*<', row)
    assert f'action="/invoices/{issued["INV-00000003"]}/pay"' in row
    assert "−¥11,000" in _row(page, "CRN-00000001")

    detail = admin.get(f"/invoices/{issued['INV-00000003']}").get_data(as_text=True)
    assert re.search(r'data-testid="pay">\s*Pay ¥44,000 by card\s*<', detail)
    assert "¥55,000 by card" not in detail
    assert 'data-testid="amount-due">¥44,000<' in detail
    assert 'data-testid="credited">−¥11,000<' in detail
    assert '"invoice-total">¥55,000<' in detail  # the lines as issued
    # How to pay: the account the invoice was issued with, the due date, the issuer's phone.
    how = _text(re.search(r'data-testid="how-to-pay">(.*?)</section>', detail, re.S).group(1))
    assert "Please pay ¥44,000 by December 20, 2026" in how
    assert "Bank テスト銀行 Branch 本店 Account type Ordinary account" in how
    assert "Account number 7654321 Account holder テストテイキヨウシヤ" in how
    assert "Transfer by December 20, 2026" in how
    assert "03-1234-5678" in detail

    with app.test_request_context():
        payments.record_manual_payment(
            Actor(db.session.get(User, world.ids["billing"])),
            db.session.get(Invoice, issued["INV-00000001"]),
            method="bank_transfer",
            received_on=date(2027, 2, 27),
        )
        db.session.commit()
    page = admin.get("/invoices").get_data(as_text=True)
    assert 'data-testid="outstanding-total">¥44,000<' in page
    row = _row(page, "INV-00000001")
    assert 'data-testid="due-INV-00000001">¥0<' in row and "Pay" not in row
    paid = admin.get(f"/invoices/{issued['INV-00000001']}").get_data(as_text=True)
    assert 'data-testid="amount-due">¥0<' in paid
    assert 'data-testid="pay"' not in paid and 'data-testid="how-to-pay"' not in paid


def test_who_may_not_pay_sees_the_amounts_but_no_pay_button(app, world, issued):
    """Members allowed to see invoices and staff viewing as the customer read, never pay."""
    admin = signed_in_client(app, world.emails["admin"])
    assert admin.post("/invoices/access", data={"members_see_invoices": "y"}).status_code == 302
    member = signed_in_client(app, world.emails["member"])
    page = member.get("/invoices").get_data(as_text=True)
    assert 'data-testid="outstanding-total">¥110,000<' in page
    assert 'data-testid="pay-' not in page
    detail = member.get(f"/invoices/{issued['INV-00000003']}").get_data(as_text=True)
    assert 'data-testid="pay"' not in detail and 'data-testid="bank-transfer"' in detail


def test_a_credit_notes_heading_names_it_once(app, world, issued):
    with app.test_request_context():
        note = invoicing.issue_credit_note(
            Actor(db.session.get(User, world.ids["billing"])),
            db.session.get(Invoice, issued["INV-00000003"]),
            amount=10_000,
            tax_rate_percent=10,
            reason="Outage credit",
            ip="",
        )
        db.session.commit()
        note_id = note.id
    admin = signed_in_client(app, world.emails["admin"])
    page = admin.get(f"/invoices/{note_id}").get_data(as_text=True)
    heading = re.search(r'data-testid="document-heading">(.*?)</h1>', page, re.S).group(1)
    assert _text(heading) == "Credit note CRN-00000001"
    assert 'data-testid="how-to-pay"' not in page and 'data-testid="amount-due"' not in page
    invoice = admin.get(f"/invoices/{issued['INV-00000003']}").get_data(as_text=True)
    heading = re.search(r'data-testid="document-heading">(.*?)</h1>', invoice, re.S).group(1)
    assert _text(heading) == "Invoice INV-00000003 Overdue"
