"""SLA claims through the pages (R-50..R-53): W-4 from the incident staff record to the
credit on the next invoice, and every refusal with nothing stored.

The world's contract_a is W-1's (start 2026-11-05, anchor day 21, ¥50,000, sold through the
assigned sales agent); the clock is at 2027-03-01 10:00 Tokyo.
"""

from __future__ import annotations

import hashlib
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from pypdf import PdfReader
from sqlalchemy.exc import DatabaseError

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Incident,
    IncidentVersion,
    Invoice,
    OutboxEmail,
    Service,
    SlaClaim,
    SlaCredit,
    User,
)
from portal.permissions import Actor
from portal.services import claims as claim_service
from portal.services import incidents as incident_service
from portal.services.invoicing import issue_invoices
from tests.factories import become, build_world, row_counts, rows, signed_in_client

W4 = {
    "kind": "outage",
    "title_ja": "ストレージ障害",
    "title_en": "Storage outage",
    "started_at": "2027-02-03T09:00",
    "ended_at": "2027-02-04T15:00",
    "occurrence_announced_at": "2027-02-03T09:20",
    "recovery_announced_at": "2027-02-04T16:30",  # 90 minutes after the end: late
    "organisation_ids": "",
}


@pytest.fixture
def world(app):
    return build_world(app)


def _service_id(app, code: str = "image_works") -> int:
    with app.app_context():
        return db.session.scalar(sa.select(Service.id).where(Service.code == code))


def _record(app, world, **overrides) -> int:
    """Support staff record an incident through the form, confirming on the second page."""
    client = signed_in_client(app, world.emails["support"])
    data = {**W4, "service_ids": [_service_id(app)], **overrides}
    first = client.post("/staff/incidents/new", data=data)
    assert first.status_code == 200, _errors(first)
    assert 'data-testid="confirm-summary"' in first.get_data(as_text=True)
    done = client.post("/staff/incidents/new", data={**data, "confirmed": "yes"})
    assert done.status_code == 302, done.get_data(as_text=True)[:2000]
    return int(done.headers["Location"].rsplit("/", 1)[1])


def _errors(response) -> str:
    """The messages shown next to the fields (for a failing test's report)."""
    import re

    return "; ".join(re.findall(r'class="error"[^>]*>([^<]+)<', response.get_data(as_text=True)))


def _card(response, incident_id: int) -> str:
    """The card of one incident on the claims page."""
    page = response.get_data(as_text=True)
    start = page.index(f'data-testid="option-{incident_id}"')
    return page[start : page.index("</section>", start)]


def _claims(app, world, actor="admin", contract_id=None):
    client = app.test_client()
    become(app, client, world, actor)
    return client, client.get(f"/contracts/{contract_id or world.contract_a}/claims")


def _file(client, contract_id: int, incident_id: int):
    return client.post(f"/contracts/{contract_id}/claims", data={"incident_id": incident_id})


def _past_invoices(app) -> None:
    """The invoices W-1's contracts had up to the clock's day, so the next one is plain."""
    with app.app_context():
        for day in (date(2026, 11, 5), date(2026, 11, 21), date(2026, 12, 21)):
            issue_invoices(day)
        for day in (date(2027, 1, 21), date(2027, 2, 21)):
            issue_invoices(day)


def _at(day: date, hour_utc: int = 1) -> None:
    clock.set(datetime(day.year, day.month, day.day, hour_utc, 0, tzinfo=UTC))


# --- W-4 end to end -------------------------------------------------------------------------


def test_w4_from_the_incident_to_the_credit_on_the_next_invoice(app, world):
    """W-4: ¥2,083 for 30 hours, + ¥1,666 for the late recovery notice, claimable until
    2027-05-04; filed, approved, and deducted from the invoice of billing month 2027-04."""
    _past_invoices(app)
    incident_id = _record(app, world)

    client, page = _claims(app, world)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "¥50,000 × 1,800 / 43,200 = ¥2,083" in text
    assert "Recovery not announced within 60 minutes: ¥50,000 / 30 = ¥1,666" in text
    assert "¥3,749" in text
    assert "May 4, 2027" in text  # the users of the world read English

    confirm = client.get(f"/contracts/{world.contract_a}/claims/new/{incident_id}")
    assert confirm.status_code == 200
    assert 'data-testid="claim-amount">¥3,749<' in confirm.get_data(as_text=True)
    filed = _file(client, world.contract_a, incident_id)
    assert filed.status_code == 302, filed.get_data(as_text=True)[:1000]
    claim_url = filed.headers["Location"]
    (claim,) = rows(app, SlaClaim)
    assert (claim.computed_amount, claim.monthly_fee, claim.billing_month) == (
        3_749,
        50_000,
        "2027-02",
    )
    assert claim.counted_minutes == 1_800 and claim.claimed_on == date(2027, 3, 1)
    assert [line["amount"] for line in claim.lines] == [2_083, 1_666]

    page = client.get(claim_url).get_data(as_text=True)
    assert "version 1" in page and "Under review" in page
    pdf = client.get(claim_url + "/document.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["X-Content-SHA256"] == hashlib.sha256(pdf.data).hexdigest()
    content = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.data)).pages)
    assert "¥3,749" in content and "¥2,083" in content and "¥1,666" in content
    assert client.get(claim_url + "/document.pdf").data == pdf.data  # stored once

    billing = signed_in_client(app, world.emails["billing"])
    review = {"decision": "approve", "reason": ""}
    asked = billing.post(f"/staff/claims/{claim.id}/review", data=review)
    assert asked.status_code == 200 and "Approve SLA-" in asked.get_data(as_text=True)
    assert rows(app, SlaClaim)[0].status == "filed"  # nothing happens before confirming
    done = billing.post(f"/staff/claims/{claim.id}/review", data={**review, "confirmed": "yes"})
    assert done.status_code == 302
    assert rows(app, SlaClaim)[0].approved_amount == 3_749

    _at(date(2027, 3, 21))
    with app.app_context():
        issue_invoices(date(2027, 3, 21))
        invoice = db.session.scalar(
            sa.select(Invoice).where(
                Invoice.organisation_id == world.org_a, Invoice.billing_month == "2027-04"
            )
        )
        lines = [(line.kind, line.amount) for line in invoice.lines]
        assert lines == [("monthly_fee", 50_000), ("sla_credit", -3_749)]
        assert (invoice.subtotal, invoice.tax_total, invoice.total) == (46_251, 4_625, 50_876)
        (row,) = invoice.tax_summary
        assert row == {
            "rate_percent": 10,
            "taxable": 46_251,
            "tax": 4_625,
            "charges": 50_000,
            "charges_tax": 5_000,
            "returns": 3_749,
            "returns_tax": 375,
        }
        invoice_number, invoice_id = invoice.number, invoice.id
    claim = rows(app, SlaClaim)[0]
    assert claim.credited_amount == 3_749
    client = signed_in_client(app, world.emails["admin"])  # a new day, a new session
    page = client.get(claim_url).get_data(as_text=True)
    assert invoice_number in page and "Credited" in page
    invoice_pdf = client.get(f"/invoices/{invoice_id}/pdf").data
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(invoice_pdf)).pages)
    assert "3,749" in text and claim.number in text


def test_a_credit_larger_than_the_invoice_is_carried_to_the_next_one(app, world):
    """R-53: an invoice never goes below zero; what is left waits for the next invoice."""
    _past_invoices(app)
    incident_id = _record(
        app,
        world,
        kind="data_lost",
        title_en="Data lost",
        title_ja="データ消失",
        ended_at="2027-02-03T09:30",
        recovery_announced_at="2027-02-03T09:40",
        occurrence_announced_at="2027-02-03T09:10",
    )
    client, _page = _claims(app, world)
    assert _file(client, world.contract_a, incident_id).status_code == 302
    (claim,) = rows(app, SlaClaim)
    assert claim.computed_amount == 50_000  # F
    with app.app_context():
        billing = db.session.get(User, world.ids["billing"])
        found = db.session.get(SlaClaim, claim.id)
        claim_service.review(Actor(billing), found, claim_service.Decision.APPROVE)
        db.session.commit()
    # The next invoice of org A: the monthly fee of contract_a only (¥50,000): all of it.
    _at(date(2027, 3, 21))
    with app.app_context():
        issue_invoices(date(2027, 3, 21))
    credits = rows(app, SlaCredit)
    assert [(c.amount) for c in credits] == [50_000]
    with app.app_context():
        invoice = db.session.get(Invoice, credits[0].invoice_id)
        assert invoice.total == 0 and invoice.subtotal == 0


# --- refusals: a message next to the field, nothing stored ------------------------------------


def test_a_claim_after_the_window_is_refused_and_says_why(app, world):
    incident_id = _record(app, world)
    _at(date(2027, 5, 5))
    client, page = _claims(app, world)
    assert "The time to claim for this incident ended on May 4, 2027." in page.get_data(
        as_text=True
    )
    before = row_counts(app)
    refused = _file(client, world.contract_a, incident_id)
    assert refused.status_code == 422
    # The message stands next to what was chosen: in the incident's card.
    card = _card(refused, incident_id)
    assert 'data-testid="claim-error">The time to claim for this incident ended on May 4' in card
    assert row_counts(app) == before


def test_a_claim_on_an_incident_that_did_not_touch_the_contract_is_refused(app, world):
    incident_id = _record(app, world, organisation_ids=str(world.org_b))
    client, page = _claims(app, world)
    assert f'data-testid="option-{incident_id}"' not in page.get_data(as_text=True)
    before = row_counts(app)
    refused = _file(client, world.contract_a, incident_id)
    assert refused.status_code == 422
    assert "did not affect this contract" in refused.get_data(as_text=True)
    assert row_counts(app) == before


def test_a_second_claim_is_refused(app, world):
    incident_id = _record(app, world)
    client, _page = _claims(app, world)
    assert _file(client, world.contract_a, incident_id).status_code == 302
    before = row_counts(app)
    again = _file(client, world.contract_a, incident_id)
    assert again.status_code == 409
    assert "already filed" in _card(again, incident_id)
    assert row_counts(app) == before


def test_an_outage_of_24_hours_or_less_earns_nothing_and_cannot_be_claimed(app, world):
    incident_id = _record(
        app, world, ended_at="2027-02-04T09:00", recovery_announced_at="2027-02-04T09:10"
    )
    client, page = _claims(app, world)
    text = page.get_data(as_text=True)
    assert "1,440 minutes counted, not over 24 hours" in text
    assert "earns no compensation" in text
    assert _file(client, world.contract_a, incident_id).status_code == 422
    assert rows(app, SlaClaim) == []


@pytest.mark.parametrize(
    ("actor", "status"),
    [("member", 403), ("agency_agent", 403), ("support_viewing", 403), ("sales_agent", 302)],
)
def test_who_may_file(app, world, actor, status):
    """R-52 reading: administrators and sales agents claim; members, agencies and staff
    viewing as the customer may not."""
    incident_id = _record(app, world)
    client = app.test_client()
    become(app, client, world, actor)
    response = _file(client, world.contract_a, incident_id)
    assert response.status_code == status
    assert len(rows(app, SlaClaim)) == (1 if status == 302 else 0)


def test_an_agency_sees_the_incident_but_no_amount(app, world):
    _record(app, world)
    client = app.test_client()
    become(app, client, world, "agency_agent")
    system = client.get("/system").get_data(as_text=True)
    assert "Storage outage" in system and "¥" not in system
    assert client.get(f"/contracts/{world.contract_a}/claims").status_code == 403
    detail = client.get(f"/contracts/{world.contract_a}").get_data(as_text=True)
    assert 'data-testid="claims-link"' not in detail


def test_twenty_identical_claims_at_once_leave_one(app, world):
    """R-52: one claim per contract and incident, whatever races."""
    incident_id = _record(app, world)
    clients = [signed_in_client(app, world.emails["admin"]) for _ in range(20)]
    start = threading.Barrier(len(clients))

    def submit(client):
        start.wait()
        return _file(client, world.contract_a, incident_id).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = sorted(pool.map(submit, clients))
    assert statuses == [302] + [409] * 19
    assert len(rows(app, SlaClaim)) == 1
    with app.app_context():
        filed = db.session.scalar(
            sa.select(sa.func.count()).where(AuditEvent.action == "claim.filed")
        )
    assert filed == 1


# --- paper claims and reviews --------------------------------------------------------------------


def test_staff_record_a_claim_received_on_paper_with_its_date(app, world):
    incident_id = _record(app, world)
    _at(date(2027, 5, 10))
    support = signed_in_client(app, world.emails["support"])
    url = f"/staff/contracts/{world.contract_a}/claims/new"
    late = support.post(url, data={"incident_id": incident_id, "received_on": "2027-05-05"})
    assert late.status_code == 422 and "ended on May 4, 2027" in late.get_data(as_text=True)
    done = support.post(url, data={"incident_id": incident_id, "received_on": "2027-05-04"})
    assert done.status_code == 302, done.get_data(as_text=True)[:1000]
    (claim,) = rows(app, SlaClaim)
    assert (claim.channel, claim.claimed_on, claim.computed_amount) == (
        "paper",
        date(2027, 5, 4),
        3_749,
    )
    billing = signed_in_client(app, world.emails["billing"])
    assert billing.post(url, data={"incident_id": incident_id}).status_code == 403


def test_a_lower_amount_or_a_rejection_needs_a_reason_and_is_told(app, world):
    incident_id = _record(app, world)
    client, _page = _claims(app, world)
    _file(client, world.contract_a, incident_id)
    (claim,) = rows(app, SlaClaim)
    billing = signed_in_client(app, world.emails["billing"])
    url = f"/staff/claims/{claim.id}/review"
    no_reason = billing.post(url, data={"decision": "approve_lower", "amount": "2000"})
    assert no_reason.status_code == 422
    too_much = billing.post(
        url, data={"decision": "approve_lower", "amount": "3749", "reason": "Partial outage."}
    )
    assert too_much.status_code == 422 and "below the computed" in too_much.get_data(as_text=True)
    done = billing.post(
        url,
        data={
            "decision": "approve_lower",
            "amount": "２，０８３",
            "reason": "The notice was sent in time by telephone.",
            "confirmed": "yes",
        },
    )
    assert done.status_code == 302
    claim = rows(app, SlaClaim)[0]
    assert (claim.status, claim.approved_amount) == ("approved", 2_083)
    again = billing.post(url, data={"decision": "reject", "reason": "Twice.", "confirmed": "yes"})
    assert again.status_code == 409
    told = [e for e in rows(app, OutboxEmail) if e.kind == "claim_reviewed"]
    assert told and all("2,083" in e.body for e in told)
    page = client.get(f"/contracts/{world.contract_a}/claims/{claim.id}").get_data(as_text=True)
    assert "The notice was sent in time by telephone." in page
    support = signed_in_client(app, world.emails["support"])
    assert support.post(url, data={"decision": "approve"}).status_code == 403


# --- versions ------------------------------------------------------------------------------------


def test_a_correction_is_a_new_version_and_the_claim_keeps_its_own(app, world):
    incident_id = _record(app, world)
    client, _page = _claims(app, world)
    _file(client, world.contract_a, incident_id)
    support = signed_in_client(app, world.emails["support"])
    correction = {
        **W4,
        "service_ids": [_service_id(app)],
        "ended_at": "2027-02-04T17:00",
        "recovery_announced_at": "2027-02-04T17:30",
        "reason": "The storage came back at 17:00, not 15:00.",
    }
    url = f"/staff/incidents/{incident_id}/correct"
    assert support.post(url, data=correction).status_code == 200  # the confirmation page
    assert support.post(url, data={**correction, "confirmed": "yes"}).status_code == 302
    versions = rows(app, IncidentVersion, incident_id=incident_id)
    assert [(v.version, v.change) for v in versions] == [(1, "recorded"), (2, "corrected")]
    assert versions[1].reason == "The storage came back at 17:00, not 15:00."
    claim = rows(app, SlaClaim)[0]
    assert claim.incident_version_id == versions[0].id and claim.computed_amount == 3_749
    page = client.get(f"/contracts/{world.contract_a}/claims/{claim.id}").get_data(as_text=True)
    assert "version 1" in page and "corrected after this claim was filed" in page
    # Neither the version nor the claim's computation can be overwritten, even in SQL.
    with app.app_context(), pytest.raises(DatabaseError):
        db.session.execute(
            sa.update(IncidentVersion)
            .where(IncidentVersion.id == versions[0].id)
            .values(ended_at=datetime(2027, 2, 4, 8, tzinfo=UTC))
        )
    with app.app_context(), pytest.raises(DatabaseError):
        db.session.execute(
            sa.update(SlaClaim).where(SlaClaim.id == claim.id).values(computed_amount=99_999)
        )


def test_updates_are_notices_to_the_affected_organisations_operations_contacts(app, world):
    """R-61: each public update goes to the operations contact (or the registered address) of
    every organisation the incident touched, through the outbox, kept under Notices."""
    with app.app_context():
        db.session.execute(
            sa.update(
                sa.table("organisations", sa.column("id"), sa.column("operations_contact_email"))
            )
            .where(sa.column("id") == world.org_a)
            .values(operations_contact_email="ops@alpha.example")
        )
        db.session.commit()
    incident_id = _record(
        app,
        world,
        ended_at="",
        recovery_announced_at="",
        occurrence_announced_at="",
        publish="y",
        status="investigating",
        message_ja="調査中です。",
        message_en="We are investigating.",
    )
    notices = [e for e in rows(app, OutboxEmail) if e.kind == "incident_update"]
    assert sorted(e.to_address for e in notices) == ["billing@beta.example", "ops@alpha.example"]
    assert all(e.is_notice for e in notices)
    (version,) = rows(app, IncidentVersion, incident_id=incident_id)
    assert version.occurrence_announced_at == clock.now().replace(second=0)

    _at(date(2027, 3, 2))
    support = signed_in_client(app, world.emails["support"])
    resolved = {
        "status": "resolved",
        "ended_at": "2027-03-02T09:30",
        "message_ja": "復旧しました。",
        "message_en": "The service is back.",
        "confirmed": "yes",
    }
    assert support.post(f"/staff/incidents/{incident_id}/updates", data=resolved).status_code == 302
    versions = rows(app, IncidentVersion, incident_id=incident_id)
    assert [v.change for v in versions] == ["recorded", "resolved"]
    assert versions[1].ended_at == datetime(2027, 3, 2, 0, 30, tzinfo=UTC)
    assert versions[1].recovery_announced_at == clock.now()
    admin = signed_in_client(app, world.emails["admin"])
    notices_page = admin.get("/notices").get_data(as_text=True)
    # In the organisation's language (Japanese): the investigation and the resolution.
    assert notices_page.count("ストレージ障害") == 2
    assert "[IMAGE WORKS] 調査中: ストレージ障害" in notices_page
    assert "[IMAGE WORKS] 復旧: ストレージ障害" in notices_page
    system = admin.get("/system").get_data(as_text=True)
    assert "We are investigating." in system and "The service is back." in system


def test_incident_and_claim_pages_of_another_organisation_answer_404(app, world):
    incident_id = _record(app, world, organisation_ids=str(world.org_b))
    admin = signed_in_client(app, world.emails["admin"])
    assert admin.get(f"/system/incidents/{incident_id}").status_code == 404
    other = signed_in_client(app, world.emails["other_admin"])
    assert other.get(f"/system/incidents/{incident_id}").status_code == 200
    with app.app_context():
        assert db.session.get(Incident, incident_id) is not None
        assert incident_service.current_version(db.session.get(Incident, incident_id)).version == 1


# --- credit: once, whatever runs at once (R-53) ------------------------------------------------


def _approve_all(app, world) -> None:
    with app.app_context():
        billing = Actor(db.session.get(User, world.ids["billing"]))
        for claim in db.session.scalars(sa.select(SlaClaim).where(SlaClaim.status == "filed")):
            claim_service.review(billing, claim, claim_service.Decision.APPROVE)
        db.session.commit()


def test_monthly_runs_at_once_credit_each_claim_once(app, world):
    _past_invoices(app)
    incident_id = _record(app, world)
    client, _page = _claims(app, world)
    assert _file(client, world.contract_a, incident_id).status_code == 302
    _approve_all(app, world)
    _at(date(2027, 3, 21))
    start = threading.Barrier(4)

    def run(_):
        with app.app_context():
            start.wait()
            summary = issue_invoices(date(2027, 3, 21), batch_size=1)
            db.session.remove()
            return summary.issued

    with ThreadPoolExecutor(4) as pool:
        assert sum(pool.map(run, range(4))) == 2  # A's and B's invoices, once each
    assert [c.amount for c in rows(app, SlaCredit)] == [3_749]
    assert rows(app, SlaClaim)[0].credited_amount == 3_749
    # Nothing is left to credit: the next month's invoice carries no credit line.
    _at(date(2027, 4, 21))
    with app.app_context():
        issue_invoices(date(2027, 4, 21))
    assert [c.amount for c in rows(app, SlaCredit)] == [3_749]


def test_the_claims_of_one_billing_month_never_pass_its_fee(app, world):
    """R-51: a second incident of February 2027 (data lost: F) is claimable only for what the
    first claim leaves of F = ¥50,000."""
    first = _record(app, world)
    second = _record(
        app,
        world,
        kind="data_lost",
        title_en="Data lost",
        title_ja="データ消失",
        started_at="2027-02-10T10:00",
        ended_at="2027-02-10T10:30",
        occurrence_announced_at="2027-02-10T10:10",
        recovery_announced_at="2027-02-10T10:40",
    )
    client, _page = _claims(app, world)
    assert _file(client, world.contract_a, first).status_code == 302
    page = client.get(f"/contracts/{world.contract_a}/claims").get_data(as_text=True)
    assert "other claims of that month already take ¥3,749, so ¥46,251 is left" in page
    assert _file(client, world.contract_a, second).status_code == 302
    amounts = sorted(c.computed_amount for c in rows(app, SlaClaim))
    assert amounts == [3_749, 46_251] and sum(amounts) == 50_000
