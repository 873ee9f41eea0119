"""The customer's contract pages: the calendar of R-02..R-06, in Japanese and English.

The clock is fixed at 2027-03-01 10:00 in Tokyo (conftest.DEFAULT_NOW). Language is asserted
through stable markers (<html lang>, the date formats), not through translated sentences.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from portal.clock import clock
from portal.extensions import db
from portal.models import User
from tests.factories import PASSWORD, add_contract, build_world, sign_in


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
