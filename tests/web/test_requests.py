"""Plan changes, cancellation and renewal through the pages (R-05, R-06, R-20..R-32).

W-2 and W-3 come out exactly on the pages; a confirmed request is the written notice; bad
input is refused next to the field and stores nothing; one pending request per contract,
even when twenty confirmations race.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Contract,
    ContractRequest,
    LedgerCharge,
    OutboxEmail,
    RequestStatus,
)
from tests.factories import (
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


def _text(response) -> str:
    return response.get_data(as_text=True)


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


def test_the_confirmation_pdf_downloads(app, admin, world):
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    pdf = admin.get(f"{location}/document.pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    assert "attachment" in pdf.headers["Content-Disposition"]
    assert b"/FontFile2" in pdf.data  # the Japanese font is embedded


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


def test_withdrawal_before_the_effective_date_bills_nothing(app, admin, world):
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    response = admin.post(f"{location}/withdraw")
    assert response.status_code == 302
    (request,) = rows(app, ContractRequest)
    assert request.status == RequestStatus.WITHDRAWN
    assert request.withdrawn_by_id == world.ids["admin"]
    assert rows(app, AuditEvent, action="request.withdrawn")
    # Withdrawing twice is refused; the daily run later applies nothing.
    assert admin.post(f"{location}/withdraw").status_code == 409
    _at(date(2027, 4, 21))
    with app.app_context():
        from portal.services.apply import apply_due

        assert apply_due(clock.today()).applied == {}
        assert db.session.get(Contract, world.contract_a).status == "active"
    assert [c.kind for c in rows(app, LedgerCharge)] == ["initial_fee", "initial_fee"]


def test_withdrawal_is_refused_on_the_effective_date(app, admin, world):
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    _at(date(2027, 4, 20))
    admin = signed_in_client(app, world.emails["admin"])  # the old session went idle
    assert admin.post(f"{location}/withdraw").status_code == 409
    assert rows(app, ContractRequest)[0].status == RequestStatus.PENDING


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
    data = {"plan": str(world.ids["plan_large"]), "total": "0", **data}
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
            data={"kind": "upgrade", "plan": plan_id, "on": "2027-04-01", "total": "0"},
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
        data={"kind": "cancellation", "on": "2027-04-20", "total": "0"},
    )
    assert response.status_code == 422
    assert "ended on" in _text(response)
    assert row_counts(app) == before


def test_a_quote_that_changed_is_shown_again(app, admin, world):
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    response = _confirm(admin, world.contract_a, page, total="1")
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
        data={"kind": "cancellation", "on": "2027-04-20", "total": "385000"},
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
        data={"kind": "cancellation", "on": "2027-04-20", "total": "385000"},
    )
    assert refused.status_code == 403
    admin = signed_in_client(app, world.emails["admin"])
    page = _text(admin.get(f"/contracts/{world.contract_a}/end"))
    location = _confirm(admin, world.contract_a, page).headers["Location"]
    assert staff.post(f"{location}/withdraw").status_code == 403
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
    assert response.status_code == 201
    token = _testid(_text(response), "token-value")
    assert token.startswith("ptk_")
    listing = _text(admin.get("/account/api-tokens"))
    assert token not in listing and token[:12] in listing
    with app.app_context():
        from portal.models import ApiToken

        stored = db.session.scalars(sa.select(ApiToken)).one()
        assert token not in (stored.token_hash, stored.prefix)
        token_id = stored.id
    assert admin.post(f"/account/api-tokens/{token_id}/revoke").status_code == 302
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
    assert f'id="next" name="next" value="{escaped}" hx-swap-oob="true"' in page
    assert "hx-swap-oob" not in _text(admin.get(url))  # a full page has the form itself


def test_a_date_left_from_an_upgrade_gives_way_to_the_earliest_month_end(app, admin, world):
    """R-22: switching the plan to a cheaper one offers month ends, starting with the earliest."""
    cheap = add_plan(app, world, code="iw-30", fee=30_000, capacity=30)
    page = _text(admin.get(f"/contracts/{world.contract_a}/change?plan={cheap}&on=2027-03-11"))
    assert _testid(page, "quote-termination-on") == "April 20, 2027"
    assert _testid(page, "charge-initial_fee") == "¥30,000"
    assert _testid(page, "quote-new-start").startswith("April 21, 2027")
