"""The customer's contract pages: the calendar of R-02..R-06, in Japanese and English.

The clock is fixed at 2027-03-01 10:00 in Tokyo (conftest.DEFAULT_NOW). Language is asserted
through stable markers (<html lang>, the date formats), not through translated sentences.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from portal.clock import clock
from portal.domain.quotes import RequestKind
from portal.extensions import db
from portal.models import Contract, Plan, User
from portal.permissions import Actor
from portal.services import requests as request_service
from portal.services.requests import Choice
from tests.factories import PASSWORD, add_contract, add_plan, build_world, sign_in


@pytest.fixture
def world(app):
    return build_world(app)


def _signed_in(app, world, kind: str = "admin", *, locale: str | None = None):
    if locale is not None:
        with app.app_context():
            db.session.get(User, world.ids[kind]).locale = locale
            db.session.commit()
    client = app.test_client()
    sign_in(app, client, world.emails[kind])
    return client


def _testid(page: str, testid: str) -> str | None:
    """The text of the element with this data-testid, tags stripped and spaces joined."""
    match = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(dd|p|span|td)>', page, re.S)
    if match is None:
        return None
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def _lang(page: str) -> str:
    return re.search(r'<html lang="([^"]+)"', page).group(1)


def _calendar(page: str, contract_id: int) -> str:
    match = re.search(rf'data-testid="calendar-{contract_id}".*?</dl>', page, re.S)
    assert match, f"no calendar for contract {contract_id}"
    return match.group(0)


# --- W-1 ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/contracts", "/contracts/{contract_a}"])
def test_home_and_contract_page_show_the_w1_calendar(app, world, path):
    """W-1: S = 2026-11-05, anchor day 21, M = 12, seen on 2027-03-01 (Tokyo)."""
    page = (
        _signed_in(app, world).get(path.format(contract_a=world.contract_a)).get_data(as_text=True)
    )
    calendar = _calendar(page, world.contract_a)

    assert _testid(calendar, "term-anchor") == "November 21, 2026"
    assert _testid(calendar, "minimum-term-end").startswith("November 20, 2027")
    assert "in minimum term" in _testid(calendar, "minimum-term-end")
    assert _testid(calendar, "current-term") == "November 21, 2026 – November 20, 2027"
    assert _testid(calendar, "next-renewal").startswith("November 21, 2027")
    # notice no later than E - 30 days; 234 days from 2027-03-01.
    assert _testid(calendar, "notice-deadline") == "October 21, 2027 (234 days left)"
    assert _testid(calendar, "monthly-fee").startswith("¥50,000")
    assert _testid(calendar, "agency-renewal-due") is None  # R-06 is for agency contracts
    assert "March 1, 2027" in page  # today, in Tokyo


def test_days_left_follow_the_tokyo_date(app, world):
    """R-01: at 2027-03-01 23:30 UTC it is already 2 March in Tokyo: one day fewer."""
    clock.set(datetime(2027, 3, 1, 23, 30, tzinfo=UTC))
    client = _signed_in(app, world)
    page = client.get(f"/contracts/{world.contract_a}").get_data(as_text=True)
    assert _testid(page, "notice-deadline") == "October 21, 2027 (233 days left)"
    assert "March 2, 2027" in page


def test_a_renewed_contract_shows_its_renewal_term_and_history(app, world):
    """R-05: started 2025-11-05, the minimum term ended 2026-11-20; renewed for 12 months."""
    renewed = add_contract(app, world.org_a, service_start=date(2025, 11, 5))
    page = _signed_in(app, world).get(f"/contracts/{renewed}").get_data(as_text=True)

    assert _testid(page, "term-anchor") == "November 21, 2025"
    assert _testid(page, "minimum-term-end") == "November 20, 2026"  # no "in minimum term"
    assert _testid(page, "current-term") == "November 21, 2026 – November 20, 2027"
    assert _testid(page, "notice-deadline") == "October 21, 2027 (234 days left)"
    history = re.search(r"<h2>History</h2>.*?</table>", page, re.S).group(0)
    assert "Renewed automatically: November 21, 2026 – November 20, 2027" in history
    assert "Term anchor" in history and "November 21, 2025" in history


def test_an_agency_contract_shows_the_renewal_application_due_date(app, world):
    """R-06: 6 billing months from A = 2026-11-21; no auto-renewal, so no notice deadline."""
    agency = add_contract(
        app,
        world.org_a,
        service_start=date(2026, 11, 5),
        partner_id=world.ids["agency_partner"],
    )
    page = _signed_in(app, world).get(f"/contracts/{agency}").get_data(as_text=True)

    assert _testid(page, "current-term") == "November 21, 2026 – May 20, 2027"
    due = _testid(page, "agency-renewal-due")
    assert due.startswith("May 20, 2027 (80 days left)")
    assert _testid(page, "notice-deadline") is None
    assert _testid(page, "next-renewal") is None


# --- language -------------------------------------------------------------------------------


def test_a_japanese_browser_gets_japanese(app, client):
    page = client.get("/login", headers={"Accept-Language": "ja,en;q=0.5"}).get_data(as_text=True)
    assert _lang(page) == "ja"
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(
        as_text=True
    )
    assert _lang(page) == "en"
    assert _lang(client.get("/login").get_data(as_text=True)) == "ja"  # the default


@pytest.mark.parametrize(
    ("locale", "anchor", "deadline"),
    [("ja", "2026年11月21日", "2027年10月21日"), ("en", "November 21, 2026", "October 21, 2027")],
)
def test_a_user_sees_the_calendar_in_their_language(app, world, locale, anchor, deadline):
    client = _signed_in(app, world, locale=locale)
    # The user's own setting wins over what the browser asks for.
    other = "en" if locale == "ja" else "ja"
    response = client.get(f"/contracts/{world.contract_a}", headers={"Accept-Language": other})
    page = response.get_data(as_text=True)

    assert _lang(page) == locale
    assert _testid(page, "term-anchor") == anchor
    assert _testid(page, "notice-deadline").startswith(deadline)
    assert "234" in _testid(page, "notice-deadline")


def test_the_language_switch_changes_the_language_and_remembers_it(app, world):
    client = _signed_in(app, world, locale="en")

    response = client.post("/language", data={"locale": "ja", "next": "/contracts"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/contracts"
    page = client.get(f"/contracts/{world.contract_a}").get_data(as_text=True)
    assert _lang(page) == "ja"
    assert _testid(page, "term-anchor") == "2026年11月21日"
    with app.app_context():
        assert db.session.get(User, world.ids["admin"]).locale == "ja"
    # The choice is the user's: a new sign-in elsewhere is in Japanese too.
    elsewhere = app.test_client()
    sign_in(app, elsewhere, world.emails["admin"])
    assert _lang(elsewhere.get("/contracts").get_data(as_text=True)) == "ja"


def test_the_language_chosen_before_signing_in_is_kept(app, world, client):
    """A visitor who switches the sign-in page to English is not switched back at sign-in."""
    with app.app_context():
        db.session.get(User, world.ids["admin"]).locale = "ja"
        db.session.commit()
    client.post("/language", data={"locale": "en", "next": "/login"})
    assert _lang(client.get("/login").get_data(as_text=True)) == "en"

    response = client.post(
        "/login",
        data={"email": world.emails["admin"], "password": PASSWORD},
    )

    assert response.status_code == 302
    assert _lang(client.get("/contracts").get_data(as_text=True)) == "en"


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)"],
)
def test_the_language_switch_stays_on_this_site(client, target):
    response = client.post("/language", data={"locale": "en", "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert _lang(client.get("/login").get_data(as_text=True)) == "en"


def test_an_unknown_language_is_ignored(client):
    client.post("/language", data={"locale": "fr", "next": "/login"})
    assert _lang(client.get("/login").get_data(as_text=True)) == "ja"


# --- the truth while a request is pending (R-05, R-06, R-23) -------------------------------


def _pending(app, world, contract_id: int, kind: RequestKind, plan: str | None = None) -> None:
    """A confirmed request of A's administrator on the contract (the earliest date)."""
    with app.app_context():
        plan_id = db.session.scalar(sa.select(Plan.id).where(Plan.code == plan)) if plan else None
        request_service.submit(
            Actor(db.session.get(User, world.ids["admin"])),
            db.session.get(Contract, contract_id),
            Choice(kind, plan_id),
            ip="127.0.0.1",
        )
        db.session.commit()


@pytest.mark.parametrize("path", ["/contracts", "/contracts/{contract_a}"])
def test_a_pending_cancellation_says_when_the_contract_ends_and_no_renewal(app, world, path):
    """W-2's cancellation ends the contract on 2027-04-20: the page said it renews on
    2027-11-21 with 234 days left for notice; neither is true while the request is pending."""
    _pending(app, world, world.contract_a, RequestKind.CANCELLATION)
    page = _signed_in(app, world).get(path.format(contract_a=world.contract_a))
    calendar = _calendar(page.get_data(as_text=True), world.contract_a)

    assert _testid(calendar, "ends-on") == "April 20, 2027, as requested; it will not renew."
    assert _testid(calendar, "next-renewal") is None
    assert _testid(calendar, "notice-deadline") is None
    assert "days left" not in calendar
    assert _testid(calendar, "minimum-term-end").startswith("November 20, 2027")


def test_a_pending_request_replaces_the_request_buttons_with_why(app, world):
    _pending(app, world, world.contract_a, RequestKind.CANCELLATION)
    page = _signed_in(app, world).get(f"/contracts/{world.contract_a}").get_data(as_text=True)

    for button in ("change-plan", "end-contract", "apply-renewal"):
        assert f'data-testid="{button}"' not in page
    withheld = _testid(page, "requests-withheld")
    assert "withdraw this request first" in withheld
    assert re.search(rf'href="/contracts/{world.contract_a}/requests/\d+/withdraw"', page)
    # Members may not withdraw: the sentence says who can.
    member = _signed_in(app, world, "member").get(f"/contracts/{world.contract_a}")
    withheld = _testid(member.get_data(as_text=True), "requests-withheld")
    assert "administrator (or its agent) can withdraw it" in withheld
    assert 'data-testid="withdraw-pending"' not in member.get_data(as_text=True)


def test_a_pending_downgrade_names_the_new_contract(app, world):
    add_plan(app, world, code="iw-30", fee=30_000, capacity=30)
    _pending(app, world, world.contract_a, RequestKind.DOWNGRADE, plan="iw-30")
    page = _signed_in(app, world).get(f"/contracts/{world.contract_a}").get_data(as_text=True)
    ends = _testid(page, "ends-on")
    assert ends.startswith("April 20, 2027, as requested")
    assert "30 GB plan starts on April 21, 2027" in ends
    assert _testid(page, "next-renewal") is None


def test_a_pending_upgrade_keeps_the_renewal_and_says_when_the_plan_changes(app, world):
    _pending(app, world, world.contract_a, RequestKind.UPGRADE, plan="iw-100")
    page = _signed_in(app, world).get(f"/contracts/{world.contract_a}").get_data(as_text=True)
    assert _testid(page, "plan-changes-on") == ("March 11, 2027, to the 100 GB plan, as requested.")
    assert _testid(page, "next-renewal").startswith("November 21, 2027")  # still true
    assert _testid(page, "notice-deadline").startswith("October 21, 2027")
    assert "Once it has taken effect on March 11, 2027" in _testid(page, "requests-withheld")


@pytest.mark.parametrize("path", ["/contracts", "/contracts/{agency}"])
def test_after_an_agency_renewal_application_the_renewal_is_no_longer_due(app, world, path):
    """R-06: with the application pending, the page says the next period is applied for, not
    that the application is due (and that the contract ends without one)."""
    agency = add_contract(
        app, world.org_a, service_start=date(2026, 11, 5), partner_id=world.ids["agency_partner"]
    )
    _pending(app, world, agency, RequestKind.AGENCY_RENEWAL)
    page = _signed_in(app, world).get(path.format(agency=agency)).get_data(as_text=True)
    calendar = _calendar(page, agency)

    assert _testid(calendar, "agency-renewal-due") is None
    assert "Without a renewal application" not in calendar
    assert _testid(calendar, "agency-renewal-applied") == (
        "May 21, 2027 – November 20, 2027, applied for; it begins on May 21, 2027."
    )
    if path != "/contracts":
        assert "next period has begun on May 21, 2027" in _testid(page, "requests-withheld")


def test_staff_see_the_pending_request_without_a_link_into_the_customers_portal(app, world):
    _pending(app, world, world.contract_a, RequestKind.CANCELLATION)
    staff = _signed_in(app, world, "support")
    page = staff.get(f"/staff/contracts/{world.contract_a}").get_data(as_text=True)
    pending = re.search(r'data-testid="pending-request".*?</p>', page, re.S).group(0)
    assert "/requests/" not in pending
    assert _testid(page, "ends-on").startswith("April 20, 2027")
