"""Plan changes, cancellation and renewal through the pages (R-05, R-06, R-20..R-32).

W-2 and W-3 come out exactly on the pages; a confirmed request is the written notice; bad
input is refused next to the field and stores nothing; one pending request per contract,
even when twenty confirmations race.
"""

from __future__ import annotations

import hashlib
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from io import BytesIO

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Contract,
    ContractRequest,
    LedgerCharge,
    Organisation,
    OutboxEmail,
    RequestDocument,
    RequestStatus,
)
from tests.factories import (
    add_contract,
    add_plan,
    build_world,
    enter_client,
    row_counts,
    rows,
    signed_in_client,
    view_as,
)


@pytest.fixture
def world(app):
    return build_world(app)


@pytest.fixture
def admin(app, world):
    return signed_in_client(app, world.emails["admin"])


def _at(day: date, hour: int = 10) -> None:
    """Fix the clock at a Tokyo hour of a day (R-01)."""
    clock.set(datetime(day.year, day.month, day.day, hour - 9, 0, tzinfo=UTC))


# A rule ID as RULES.md writes them; a request's reference (R-000123) is not one.
RULE_ID = re.compile(r"\bR-\d{2}\b")


def _text(response) -> str:
    return response.get_data(as_text=True)


def _pdf_text(pdf: bytes) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(BytesIO(pdf)).pages).split())


def _testid(page: str, testid: str) -> str:
    """The text of the element with this data-testid (first match, tags stripped)."""
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', page, re.S)
    assert match, f"no {testid}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", match.group(2))).strip()


def _confirm(client, contract_id: int, page: str, **overrides: str):
    """Send back the confirm form of a quote page, as the browser would."""
    form = re.search(r'data-testid="confirm-form">(.*?)</form>', page, re.S)
    assert form, "no confirm form on the page"
    data = dict(re.findall(r'name="(\w+)" type="hidden" value="([^"]*)"', form.group(1)))
    data.update(overrides)
    return client.post(f"/contracts/{contract_id}/requests", data=data)


# --- W-2 and W-3 on the pages ---------------------------------------------------------------


def test_w2_cancellation_quote_on_the_page(admin, world):
    """W-2: notice 2027-03-01 -> ends 2027-04-20, 7 months, ¥350,000 + ¥35,000 = ¥385,000."""
    page = _text(admin.get(f"/contracts/{world.contract_a}/end?lang=en"))
    assert _testid(page, "quote-termination-on") == "April 20, 2027"
    assert _testid(page, "quote-unexpired-months") == "7"
    assert _testid(page, "charge-shortfall") == "¥350,000"
    assert _testid(page, "quote-tax-10") == "¥35,000"
    assert _testid(page, "quote-total") == "¥385,000"
    assert "2027-05" in _testid(page, "quote-invoice")


def test_w3_upgrade_quote_on_the_page(app, admin, world):
    """W-3: requested 2027-01-05 for 2027-01-15: ¥50,000 + ¥5,000; ¥100,000 from "2027-02"."""
    _at(date(2027, 1, 5))
    url = f"/contracts/{world.contract_a}/change?plan={world.ids['plan_large']}&on=2027-01-15"
    page = _text(admin.get(url))
    assert _testid(page, "charge-initial_fee_difference") == "¥50,000"
    assert _testid(page, "charge-change_fee") == "¥5,000"
    assert _testid(page, "quote-subtotal") == "¥55,000"
    assert _testid(page, "quote-total") == "¥60,500"
    new_fee = _testid(page, "quote-new-fee")
    assert "¥100,000" in new_fee and "2027-02" in new_fee
    assert "January 21, 2027" in new_fee and "February 20, 2027" in new_fee

    # One day less than the lead time is refused next to the date.
    refused = admin.get(url.replace("2027-01-15", "2027-01-14"))
    page = _text(refused)
    assert 'id="on-error"' in page and "January 15, 2027" in page
    assert 'data-testid="confirm-form"' not in page


def test_the_quote_updates_in_place_with_htmx(admin, world):
    response = admin.get(f"/contracts/{world.contract_a}/end", headers={"HX-Request": "true"})
    page = _text(response)
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="request-panel"')
    assert "<html" not in page
    assert _testid(page, "quote-total") == "¥385,000"
    later = _text(
        admin.get(
            f"/contracts/{world.contract_a}/end?on=2027-05-20", headers={"HX-Request": "true"}
        )
    )
    assert _testid(later, "quote-unexpired-months") == "6"
    assert _testid(later, "quote-total") == "¥330,000"


# --- confirming, the written notice, withdrawal ------------------------------------------


def test_confirming_records_the_written_notice(app, admin, world):
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    response = _confirm(admin, world.contract_a, page)
    assert response.status_code == 302
    detail = _text(admin.get(response.headers["Location"]))
    assert _testid(detail, "request-status") == "Pending"
    assert _testid(detail, "quote-total") == "¥385,000"
    (request,) = rows(app, ContractRequest)
    assert request.kind == "cancellation"
    assert request.notice_on == date(2027, 3, 1)
    assert request.effective_on == date(2027, 4, 20)
    assert request.applies_on == date(2027, 4, 21)
    assert request.requested_by_id == world.ids["admin"]
    assert request.requested_from == "127.0.0.1"
    assert request.quote["total"] == 385_000
    (event,) = rows(app, AuditEvent, action="request.submitted")
    assert event.user_id == world.ids["admin"] and event.subject_id == request.id
    # The contract page shows it pending, with its effective date.
    contract_page = _text(admin.get(f"/contracts/{world.contract_a}"))
    assert "April 20, 2027" in _testid(contract_page, "pending-request")


def test_the_confirmation_pdf_is_rendered_once_at_confirmation_and_served_as_stored(
    app, admin, world
):
    """R-32: rendered when the request is confirmed, in the organisation's language, stored with
    its SHA-256 and served byte for byte: a later download, a renamed customer or another day
    changes nothing (it was rebuilt on every download, with a new status and time)."""
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    (stored,) = rows(app, RequestDocument, kind="confirmation")
    assert stored.locale == "ja"  # the organisation's language, not the reader's (English)
    with app.app_context():
        content = db.session.scalar(sa.select(RequestDocument.pdf))
    assert hashlib.sha256(content).hexdigest() == stored.pdf_sha256

    pdf = admin.get(f"{location}/document.pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.data == content
    assert pdf.headers["X-Content-SHA256"] == stored.pdf_sha256
    assert "attachment" in pdf.headers["Content-Disposition"]
    assert "confirmation-ja.pdf" in pdf.headers["Content-Disposition"]
    assert b"/FontFile2" in pdf.data  # the Japanese font is embedded

    with app.app_context():
        db.session.get(Organisation, world.org_a).legal_name = "Renamed K.K."
        db.session.commit()
    _at(date(2027, 3, 20))
    later = signed_in_client(app, world.emails["admin"]).get(f"{location}/document.pdf")
    assert later.data == content
    assert len(rows(app, RequestDocument)) == 2  # the customer's, and the agency's (below)


def test_the_pdf_shows_the_tax_once_and_no_rule_id(app, admin, world):
    """The quote's tax is printed once (it was printed twice), and rule IDs belong in the
    code: none appears in the document (it printed R-30, R-31, R-13, ...)."""
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    text = _pdf_text(admin.get(f"{location}/document.pdf").data)
    assert text.count("¥35,000") == 1  # the tax of W-2
    assert text.count("¥385,000") == 1
    assert not RULE_ID.search(text), RULE_ID.search(text)
    assert "2027年4月20日" in text  # in Japanese, the organisation's language


def test_an_agency_gets_its_own_stored_copy_without_amounts(app, admin, world):
    """R-71: the agency's copy leaves out every amount; it is stored too (at confirmation, as an
    agency acts for organisation A), so it does not change between downloads either."""
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    agent = signed_in_client(app, world.emails["agency_agent"])
    enter_client(agent, world.org_a)

    copy = agent.get(f"{location}/document.pdf")

    (stored,) = rows(app, RequestDocument, kind="agency_confirmation")
    assert copy.headers["X-Content-SHA256"] == stored.pdf_sha256
    assert hashlib.sha256(copy.data).hexdigest() == stored.pdf_sha256
    text = _pdf_text(copy.data)
    assert "¥" not in text and "385,000" not in text
    assert "2027年4月20日" in text
    assert agent.get(f"{location}/document.pdf").data == copy.data
    assert admin.get(f"{location}/document.pdf").data != copy.data


def test_a_request_confirmed_before_documents_were_stored_gets_one_on_first_download(
    app, admin, world, monkeypatch
):
    """A request confirmed before this change has no stored confirmation: the first download
    renders it as of the time the request was received, stores it, and later ones serve it."""
    from portal.services import documents

    monkeypatch.setattr(documents, "store_confirmation", lambda request: None)
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    monkeypatch.undo()
    assert rows(app, RequestDocument) == []

    _at(date(2027, 3, 10))
    client = signed_in_client(app, world.emails["admin"])
    first = client.get(f"{location}/document.pdf")

    (stored,) = rows(app, RequestDocument)
    assert (stored.kind, stored.locale) == ("confirmation", "ja")
    assert first.headers["X-Content-SHA256"] == stored.pdf_sha256
    assert "2027年3月1日 10:00 JST" in _pdf_text(first.data)  # received then, not rendered then
    _at(date(2027, 3, 11))
    assert signed_in_client(app, world.emails["admin"]).get(f"{location}/document.pdf").data == (
        first.data
    )
    assert len(rows(app, RequestDocument)) == 1


def test_a_second_request_is_refused_and_nothing_stored(app, admin, world):
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    assert _confirm(admin, world.contract_a, page).status_code == 302
    before = row_counts(app)
    again = _confirm(admin, world.contract_a, page)
    assert again.status_code == 409
    assert "already pending" in _text(again)
    assert row_counts(app) == before


def test_twenty_identical_confirmations_at_once_leave_one_request(app, world):
    clients = [signed_in_client(app, world.emails["admin"]) for _ in range(20)]
    page = _text(clients[0].get(f"/contracts/{world.contract_a}/end"))
    start = threading.Barrier(len(clients))

    def confirm(client):
        start.wait()
        return _confirm(client, world.contract_a, page).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = sorted(pool.map(confirm, clients))
    assert statuses == [302] + [409] * 19
    assert len(rows(app, ContractRequest)) == 1


def test_withdrawing_asks_first_and_then_bills_nothing(app, admin, world):
    """R-23: the request page links to a confirmation page (a GET, no JavaScript needed) that
    says what withdrawing does; only its "yes" withdraws, then post/redirect/get."""
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    detail = _text(admin.get(location))
    assert f'href="{location}/withdraw"' in detail
    assert 'action="' + location + '/withdraw"' not in detail  # no withdrawal in one click

    confirm = admin.get(f"{location}/withdraw")
    assert confirm.status_code == 200
    summary = _testid(_text(confirm), "confirm-summary")
    assert "The contract will not end on April 20, 2027." in summary
    assert "renews on November 21, 2027" in summary and "October 21, 2027" in summary
    assert "The ¥385,000 quoted (tax included) will not be billed." in summary
    assert "cannot be undone" in summary
    assert not RULE_ID.search(summary)
    before = row_counts(app)
    # Going back, or a form that was never confirmed, withdraws nothing.
    for data in ({"confirmed": "edit"}, {}):
        back = admin.post(f"{location}/withdraw", data=data)
        assert back.status_code == 302 and back.headers["Location"] == location
    assert row_counts(app) == before

    response = admin.post(f"{location}/withdraw", data={"confirmed": "yes"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/contracts/{world.contract_a}"
    (request,) = rows(app, ContractRequest)
    assert request.status == RequestStatus.WITHDRAWN
    assert request.withdrawn_by_id == world.ids["admin"]
    assert rows(app, AuditEvent, action="request.withdrawn")
    # Sending it again (a reload) withdraws nothing more and says why, on a GET page.
    again = admin.post(f"{location}/withdraw", data={"confirmed": "yes"})
    assert again.status_code == 302 and again.headers["Location"] == location
    assert "can no longer be withdrawn" in _text(admin.get(location))
    assert len(rows(app, AuditEvent, action="request.withdrawn")) == 1
    assert admin.get(f"{location}/withdraw").status_code == 302  # nothing left to confirm
    _at(date(2027, 4, 21))
    with app.app_context():
        from portal.services.apply import apply_due

        assert apply_due(clock.today()).applied == {}
        assert db.session.get(Contract, world.contract_a).status == "active"
    assert [c.kind for c in rows(app, LedgerCharge)] == ["initial_fee", "initial_fee"]


def test_a_withdrawal_is_its_own_stored_document(app, admin, world):
    """R-23: withdrawing renders and stores a document of its own, once; the confirmation
    stays as it was."""
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    assert admin.get(f"{location}/withdrawal.pdf").status_code == 404  # nothing withdrawn yet
    confirmation = admin.get(f"{location}/document.pdf").data
    _at(date(2027, 3, 5))
    admin = signed_in_client(app, world.emails["admin"])
    admin.post(f"{location}/withdraw", data={"confirmed": "yes"})

    (stored,) = rows(app, RequestDocument, kind="withdrawal")
    pdf = admin.get(f"{location}/withdrawal.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["X-Content-SHA256"] == stored.pdf_sha256
    assert hashlib.sha256(pdf.data).hexdigest() == stored.pdf_sha256
    assert "withdrawal-ja.pdf" in pdf.headers["Content-Disposition"]
    text = _pdf_text(pdf.data)
    assert "2027年3月5日 10:00 JST" in text  # when it was withdrawn
    assert "2027年4月20日" in text  # what would have happened
    assert "¥" not in text  # a withdrawal bills nothing
    assert not RULE_ID.search(text)
    assert admin.get(f"{location}/document.pdf").data == confirmation
    assert 'data-testid="withdrawal-pdf"' in _text(admin.get(location))
    agent = signed_in_client(app, world.emails["agency_agent"])
    enter_client(agent, world.org_a)
    assert agent.get(f"{location}/withdrawal.pdf").data == pdf.data  # one copy serves all


def test_withdrawal_is_refused_on_the_effective_date(app, admin, world):
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    _at(date(2027, 4, 20))
    admin = signed_in_client(app, world.emails["admin"])  # the old session went idle
    response = admin.post(f"{location}/withdraw", data={"confirmed": "yes"})
    assert response.status_code == 302 and response.headers["Location"] == location
    assert "can no longer be withdrawn" in _text(admin.get(location))
    assert rows(app, ContractRequest)[0].status == RequestStatus.PENDING
    assert rows(app, RequestDocument, kind="withdrawal") == []


# --- bad input: a message, nothing stored -------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "upgrade", "on": "2027-03-10"}, "at least 10 days"),
        ({"kind": "cancellation", "on": "2027-04-19"}, "end of a billing month"),
        ({"kind": "cancellation", "on": "2027-03-20"}, "at least 30 days"),
        ({"kind": "downgrade", "on": "2027-04-20"}, "must be to a cheaper plan"),
        ({"kind": "upgrade", "on": "2027-99-01"}, "YYYY-MM-DD"),
        ({"kind": "teleport"}, "Unknown kind"),
    ],
)
def test_bad_requests_are_refused_and_store_nothing(app, admin, world, data, message):
    data = {"plan": str(world.ids["plan_large"]), "quote": "stale", **data}
    before = row_counts(app)
    response = admin.post(f"/contracts/{world.contract_a}/requests", data=data)
    assert response.status_code == 422
    assert message in _text(response)
    assert row_counts(app) == before


def test_plans_not_sold_or_of_another_service_are_refused(app, admin, world):
    retired = add_plan(app, world, code="iw-200", fee=150_000, capacity=200, sold=False)
    before = row_counts(app)
    for plan_id, message in ((retired, "no longer sold"), (987_654, "not offered")):
        response = admin.post(
            f"/contracts/{world.contract_a}/requests",
            data={"kind": "upgrade", "plan": plan_id, "on": "2027-04-01", "quote": "stale"},
        )
        assert response.status_code == 422
        assert message in _text(response)
    assert row_counts(app) == before


def test_a_request_on_an_ended_contract_is_refused(app, admin, world):
    with app.app_context():
        contract = db.session.get(Contract, world.contract_a)
        contract.status, contract.ended_on = "ended", date(2027, 2, 20)
        db.session.commit()
    before = row_counts(app)
    response = admin.post(
        f"/contracts/{world.contract_a}/requests",
        data={"kind": "cancellation", "on": "2027-04-20", "quote": "stale"},
    )
    assert response.status_code == 422
    assert "ended on" in _text(response)
    assert row_counts(app) == before


def test_a_quote_that_changed_is_shown_again(app, admin, world):
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    response = _confirm(admin, world.contract_a, page, quote="a quote shown before a change")
    assert response.status_code == 409
    assert "has changed" in _text(response)
    assert rows(app, ContractRequest) == []


# --- who may ------------------------------------------------------------------------------


def test_members_see_the_quote_but_cannot_confirm(app, world):
    member = signed_in_client(app, world.emails["member"])
    page = _text(member.get(f"/contracts/{world.contract_a}/end"))
    assert _testid(page, "quote-total") == "¥385,000"
    assert 'data-testid="confirm-form"' not in page
    assert 'data-testid="may-not-confirm"' in page
    response = member.post(
        f"/contracts/{world.contract_a}/requests",
        data={"kind": "cancellation", "on": "2027-04-20", "quote": "stale"},
    )
    assert response.status_code == 403
    assert rows(app, ContractRequest) == []


def test_staff_viewing_as_the_customer_see_quotes_but_cannot_confirm_or_withdraw(app, world):
    staff = signed_in_client(app, world.emails["support"])
    view_as(staff, world.org_a, world.ids["admin"])
    quote = _text(staff.get(f"/contracts/{world.contract_a}/change"))
    assert 'data-testid="quote"' in quote and 'data-testid="confirm-form"' not in quote
    refused = staff.post(
        f"/contracts/{world.contract_a}/requests",
        data={"kind": "cancellation", "on": "2027-04-20", "quote": "stale"},
    )
    assert refused.status_code == 403
    admin = signed_in_client(app, world.emails["admin"])
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    assert staff.post(f"{location}/withdraw", data={"confirmed": "yes"}).status_code == 403
    assert staff.get(f"{location}/withdraw").status_code == 403
    assert rows(app, ContractRequest)[0].status == RequestStatus.PENDING
    assert 'data-testid="withdraw"' not in _text(staff.get(location))


def test_an_agency_agent_files_without_seeing_amounts_and_the_customer_is_told(app, world):
    agent = signed_in_client(app, world.emails["agency_agent"])
    enter_client(agent, world.org_a)
    page = _text(agent.get(f"/contracts/{world.contract_a}/end"))
    assert "¥" not in page.split('id="request-panel"')[1]
    assert 'data-testid="quote-amounts-hidden"' in page
    response = _confirm(agent, world.contract_a, page)
    assert response.status_code == 302
    (request,) = rows(app, ContractRequest)
    assert request.requested_by_id == world.ids["agency_agent"]
    assert request.entry_id is not None
    notices = rows(app, OutboxEmail, kind="request_submitted")
    assert notices and all(n.organisation_id == world.org_a for n in notices)
    assert all(n.is_notice and n.affects_contract and n.sent_at is None for n in notices)
    # The customer is told that the agency filed it, with the amount it will be charged.
    assert all("Agency Co." in n.body and "¥385,000" in n.body for n in notices)
    detail = _text(agent.get(response.headers["Location"]))
    assert "Agency Co." in _testid(detail, "requested-by")


def test_a_sales_agent_sees_amounts(app, world):
    agent = signed_in_client(app, world.emails["sales_agent"])
    enter_client(agent, world.org_a)
    page = _text(agent.get(f"/contracts/{world.contract_a}/end"))
    assert _testid(page, "quote-total") == "¥385,000"


# --- usage and the plan that fits (R-15) ----------------------------------------------------


def test_staff_record_usage_and_the_customer_sees_the_plan_that_fits(app, admin, world):
    staff = signed_in_client(app, world.emails["support"])
    response = staff.post(
        f"/staff/contracts/{world.contract_a}/usage",
        data={"used_gb": "61.5", "measured_at": "2027-03-01T08:30"},
    )
    assert response.status_code == 302
    page = _text(admin.get(f"/contracts/{world.contract_a}"))
    assert "61.50 GB of 50 GB" in _testid(page, "usage-figures")
    assert '<meter min="0" max="50" value="50"' in page  # full, never above its maximum
    assert 'data-testid="over-capacity"' in page
    assert "100 GB" in _testid(page, "suggested-plan")
    bad = staff.post(
        f"/staff/contracts/{world.contract_a}/usage",
        data={"used_gb": "-3", "measured_at": "2027-03-01T08:30"},
    )
    assert bad.status_code == 422
    assert "e.g. 123.45" in _text(bad)


# --- API tokens on the user's page ------------------------------------------------------------


def test_api_tokens_are_shown_once_and_can_be_revoked(app, admin, world):
    response = admin.post("/account/api-tokens", data={"name": "ERP"})
    assert response.status_code == 302  # post/redirect/get: shown on the page it leads to
    token = _testid(_text(admin.get(response.headers["Location"])), "token-value")
    assert token.startswith("ptk_")
    listing = _text(admin.get("/account/api-tokens"))
    assert token not in listing and token[:12] in listing
    with app.app_context():
        from portal.models import ApiToken

        stored = db.session.scalars(sa.select(ApiToken)).one()
        assert token not in (stored.token_hash, stored.prefix)
        token_id = stored.id
    revoke = f"/account/api-tokens/{token_id}/revoke"
    assert admin.post(revoke).status_code == 200  # asked first (tests/web/test_accounts.py)
    assert admin.post(revoke, data={"confirmed": "yes"}).status_code == 302
    assert "Revoked" in _text(admin.get("/account/api-tokens"))


def test_api_tokens_cannot_be_managed_while_viewing_as_the_customer(app, world):
    staff = signed_in_client(app, world.emails["support"])
    view_as(staff, world.org_a, world.ids["admin"])
    assert staff.get("/account/api-tokens").status_code == 403
    assert staff.post("/account/api-tokens", data={"name": "x"}).status_code == 403


def test_the_live_quote_keeps_the_language_switch_on_the_choice_shown(admin, world):
    """After an htmx swap, switching language returns to the choice now on screen."""
    url = f"/contracts/{world.contract_a}/end?kind=cancellation&on=2027-05-20"
    page = _text(admin.get(url, headers={"HX-Request": "true"}))
    escaped = url.replace("&", "&amp;")
    assert f'name="next" value="{escaped}" data-hx-swap-oob="outerHTML:' in page
    assert "hx-swap-oob" not in _text(admin.get(url))  # a full page has the form itself


def test_a_date_left_from_an_upgrade_gives_way_to_the_earliest_month_end(app, admin, world):
    """R-22: switching the plan to a cheaper one offers month ends, starting with the earliest."""
    cheap = add_plan(app, world, code="iw-30", fee=30_000, capacity=30)
    page = _text(admin.get(f"/contracts/{world.contract_a}/change?plan={cheap}&on=2027-03-11"))
    assert _testid(page, "quote-termination-on") == "April 20, 2027"
    assert _testid(page, "charge-initial_fee") == "¥30,000"
    assert _testid(page, "quote-new-start").startswith("April 21, 2027")


# --- the change page starts from the likely upgrade; dates stay with their kind ----------------


def _usage(app, contract_id: int, used_gb: str) -> None:
    """R-15: a reading of the storage used, as the service reports it."""
    from decimal import Decimal

    from portal.models import UsageSource
    from portal.services import usage

    with app.app_context():
        contract = db.session.get(Contract, contract_id)
        usage.record(contract, Decimal(used_gb), clock.now(), source=UsageSource.API, user=None)
        db.session.commit()


def _selected_plan(page: str) -> str:
    select = re.search(r'<select id="plan".*?</select>', page, re.S).group(0)
    return re.search(r'<option value="(\d*)" selected', select).group(1)


def test_the_change_page_starts_from_the_likely_upgrade_never_a_downgrade(app, admin, world):
    """R-21/R-22: it opened with a cheaper plan and its shortfall quote; now it starts from the
    cheapest dearer plan, and, for a contract over its capacity, the plan that holds it."""
    add_plan(app, world, code="iw-30", fee=30_000, capacity=30)
    medium = add_plan(app, world, code="iw-70", fee=70_000, capacity=70)
    page = _text(admin.get(f"/contracts/{world.contract_a}/change"))
    assert _selected_plan(page) == str(medium)
    assert _testid(page, "quote-effective-on").startswith("March 11, 2027")  # the earliest
    assert 'data-testid="charge-shortfall"' not in page

    _usage(app, world.contract_a, "80.00")  # over 50 GB: only the 100 GB plan holds it
    page = _text(admin.get(f"/contracts/{world.contract_a}/change"))
    assert _selected_plan(page) == str(world.ids["plan_large"])


def test_with_no_dearer_plan_nothing_is_chosen(app, admin, world):
    largest = add_contract(app, world.org_a, service_start=date(2026, 11, 5), plan="iw-100")
    page = _text(admin.get(f"/contracts/{largest}/change"))
    assert _selected_plan(page) == ""  # the placeholder: "Choose a plan"
    assert 'data-testid="choose-a-plan"' in page
    assert 'data-testid="quote"' not in page and 'data-testid="confirm-form"' not in page
    assert 'id="plan-error"' not in page  # nothing chosen is not an error


def test_a_date_is_never_carried_from_one_kind_to_another(app, admin, world):
    """Switching from a downgrade (a month end) to an upgrade starts from the upgrade's earliest
    date, and back; within one kind the date chosen stays."""
    cheap = add_plan(app, world, code="iw-30", fee=30_000, capacity=30)
    large = world.ids["plan_large"]
    url = f"/contracts/{world.contract_a}/change"
    down = _text(admin.get(f"{url}?plan={cheap}&on=2027-05-20&on_kind=downgrade"))
    assert _testid(down, "quote-termination-on") == "May 20, 2027"
    assert 'name="on_kind" value="downgrade"' in down

    up = _text(admin.get(f"{url}?plan={large}&on=2027-05-20&on_kind=downgrade"))
    assert _testid(up, "quote-effective-on").startswith("March 11, 2027")
    assert 'value="2027-03-11"' in up and 'name="on_kind" value="upgrade"' in up

    back = _text(admin.get(f"{url}?plan={cheap}&on=2027-03-25&on_kind=upgrade"))
    assert _testid(back, "quote-termination-on") == "April 20, 2027"
    same = _text(admin.get(f"{url}?plan={large}&on=2027-03-25&on_kind=upgrade"))
    assert _testid(same, "quote-effective-on").startswith("March 25, 2027")


# --- dead ends: a contract that ends before any date is possible --------------------------------


def test_a_contract_ending_within_30_days_explains_why_no_date_is_possible(app, world):
    """R-06/R-30: the agency contract's period ends on 2027-05-20, and on 2027-05-01 the
    earliest end by notice is 2027-06-20. The form said "choose a date up to 2027-05-20" with
    nothing to choose; it now says why and what to do instead, and links there."""
    cheap = add_plan(app, world, code="iw-30", fee=30_000, capacity=30)
    agency = add_contract(
        app, world.org_a, service_start=date(2026, 11, 5), partner_id=world.ids["agency_partner"]
    )
    _at(date(2027, 5, 1))
    admin = signed_in_client(app, world.emails["admin"])
    before = row_counts(app)

    for path in (f"/contracts/{agency}/end", f"/contracts/{agency}/change?plan={cheap}"):
        page = _text(admin.get(path))
        dead_end = _testid(page, "dead-end")
        assert "May 20, 2027" in dead_end and "apply for" in dead_end
        assert "choose a date up to" not in page
        assert 'id="on"' not in page and 'data-testid="confirm-form"' not in page
        assert f'href="/contracts/{agency}/renew" data-testid="dead-end-renew"' in page
    refused = admin.post(
        f"/contracts/{agency}/requests",
        data={"kind": "cancellation", "on": "2027-06-20", "quote": "stale"},
    )
    assert refused.status_code == 422
    assert "unless its renewal is applied for" in _text(refused)
    assert row_counts(app) == before

    # An upgrade still fits (10 days' lead time, R-20) until 2027-05-10; after that it does not.
    upgrade = _text(admin.get(f"/contracts/{agency}/change"))
    assert _testid(upgrade, "quote-effective-on").startswith("May 11, 2027")
    _at(date(2027, 5, 15))
    admin = signed_in_client(app, world.emails["admin"])
    upgrade = _text(admin.get(f"/contracts/{agency}/change"))
    assert "May 20, 2027" in _testid(upgrade, "dead-end")
    assert "May 25, 2027" in _testid(upgrade, "dead-end")  # the earliest date it would need


def test_the_usage_suggestion_never_leads_to_a_dead_end(app, world):
    """R-15: 20 GB fits the cheaper 30 GB plan, but the contract ends before a downgrade could
    take effect: the plan is named, with no link to a form that can only say no."""
    add_plan(app, world, code="iw-30", fee=30_000, capacity=30)
    agency = add_contract(
        app, world.org_a, service_start=date(2026, 11, 5), partner_id=world.ids["agency_partner"]
    )
    _usage(app, agency, "20.00")
    admin = signed_in_client(app, world.emails["admin"])
    page = _text(admin.get(f"/contracts/{agency}"))
    assert "30 GB" in _testid(page, "suggested-plan")
    assert 'data-testid="suggested-plan-quote"' in page  # on 2027-03-01 the change is possible

    _at(date(2027, 5, 1))
    page = _text(signed_in_client(app, world.emails["admin"]).get(f"/contracts/{agency}"))
    assert 'data-testid="suggested-plan-quote"' not in page
    assert "May 20, 2027" in _testid(page, "suggested-plan-closed")


# --- a later month end that costs less ----------------------------------------------------------


def test_a_later_month_end_without_shortfall_is_pointed_out(app, admin, world):
    """R-31: ending on 2027-04-20 owes 7 months of shortfall; ending when the minimum term ends,
    2027-11-20, owes none. The quote says so, and links to that quote."""
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    hint = _testid(page, "cheaper-end")
    assert "Ending on November 20, 2027 instead" in hint
    assert "costs ¥0 shortfall instead of ¥350,000" in hint
    assert "monthly fee is billed as usual until then" in hint
    link = re.search(r'href="([^"]+)"[^>]*data-testid="cheaper-end-quote"', page).group(1)
    assert "on=2027-11-20" in link

    later = _text(admin.get(link.replace("&amp;", "&")))
    assert _testid(later, "quote-termination-on") == "November 20, 2027"
    assert _testid(later, "quote-unexpired-months") == "0"
    assert 'data-testid="quote-no-charges"' in later
    assert 'data-testid="cheaper-end"' not in later
    assert '<option value="2027-11-20" selected' in later


def test_the_later_month_end_of_a_downgrade_and_for_an_agency(app, world):
    cheap = add_plan(app, world, code="iw-30", fee=30_000, capacity=30)
    admin = signed_in_client(app, world.emails["admin"])
    page = _text(admin.get(f"/contracts/{world.contract_a}/change?plan={cheap}"))
    assert "November 20, 2027" in _testid(page, "cheaper-end")
    agent = signed_in_client(app, world.emails["agency_agent"])
    enter_client(agent, world.org_a)
    page = _text(agent.get(f"/contracts/{world.contract_a}/end"))
    hint = _testid(page, "cheaper-end")
    assert "November 20, 2027" in hint and "no minimum-term shortfall" in hint
    assert "¥" not in hint


def test_customer_pages_of_requests_print_no_rule_id(app, admin, world):
    """Rule IDs (R-20, R-30 ...) belong in the code and tests, not in what customers read."""
    _usage(app, world.contract_a, "61.50")
    paths = [
        f"/contracts/{world.contract_a}",
        f"/contracts/{world.contract_a}/change",
        f"/contracts/{world.contract_a}/change?plan={world.ids['plan_large']}&on=2027-03-01",
        f"/contracts/{world.contract_a}/end",
        "/contracts",
    ]
    for path in paths:
        page = _text(admin.get(path))
        assert not RULE_ID.search(page), (path, RULE_ID.search(page))
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    for path in (location, f"{location}/withdraw", f"/contracts/{world.contract_a}"):
        page = _text(admin.get(path))
        assert not RULE_ID.search(page), (path, RULE_ID.search(page))


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "fragment"])
def test_an_agency_finds_no_amount_anywhere_in_the_quote_it_confirms(app, world, htmx):
    """R-71, issue 13: W-3's upgrade quote (¥60,500) for an agency: neither the page nor its
    htmx fragment carries an amount, not even in the confirm form's hidden fields, which send
    the quote's fingerprint instead; confirming it still works (R-32)."""
    _at(date(2027, 1, 5))
    agent = signed_in_client(app, world.emails["agency_agent"])
    enter_client(agent, world.org_a)
    url = f"/contracts/{world.contract_a}/change?plan={world.ids['plan_large']}&on=2027-01-15"
    page = _text(agent.get(url, headers={"HX-Request": "true"} if htmx else {}))
    assert 'data-testid="confirm-form"' in page
    for amount in ("60500", "60,500", "55000", "55,000", "50000", "50,000", "100000", "5000"):
        assert amount not in page, amount
    assert 'name="total"' not in page and 'name="quote"' in page
    assert _confirm(agent, world.contract_a, page).status_code == 302
    assert rows(app, ContractRequest)[0].kind == "upgrade"
