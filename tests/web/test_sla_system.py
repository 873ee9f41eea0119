"""System information, maintenance and the secret feeds (R-50, R-52, R-61).

The clock is at 2027-03-01 10:00 Tokyo, a Monday: its regular window (02:00-06:00) is over;
the next ones are on 15 March and 5 April.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import icalendar
import pytest
import sqlalchemy as sa

from portal.clock import TOKYO, clock
from portal.extensions import db
from portal.models import Incident, IncidentVersion, Maintenance, OutboxEmail
from portal.services import feeds
from tests.factories import build_world, row_counts, rows, signed_in_client
from tests.web.routes import incident_form

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def world(app):
    return build_world(app)


def _confirmed_post(client, url: str, data: dict):
    asked = client.post(url, data=data)
    assert asked.status_code == 200, asked.get_data(as_text=True)[-3000:]
    done = client.post(url, data={**data, "confirmed": "yes"})
    assert done.status_code == 302, done.get_data(as_text=True)[-3000:]
    return done


def _incident(app, world, org: str | None = None, **overrides) -> int:
    support = signed_in_client(app, world.emails["support"])
    data = {**incident_form(world, org), **overrides}
    done = _confirmed_post(support, "/staff/incidents/new", data)
    return int(done.headers["Location"].rsplit("/", 1)[1])


def _announce(app, world, support=None, **overrides):
    support = support or signed_in_client(app, world.emails["support"])
    data = {
        "mode": "announce",
        "service_ids": [world.ids["service_image_works"]],
        "title_ja": "ストレージ増設",
        "title_en": "Adding storage",
        "planned_start": "2027-03-03T01:00",
        "planned_end": "2027-03-03T05:00",
        **overrides,
    }
    return support, support.post("/staff/maintenance/new", data={**data, "confirmed": "yes"})


# --- System information ------------------------------------------------------------------------


def test_system_information_shows_current_incidents_and_maintenance_first(app, world):
    past = _incident(app, world)
    current = _incident(
        app,
        world,
        title_en="Slow uploads",
        started_at="2027-03-01T08:00",
        ended_at="",
        occurrence_announced_at="",
        recovery_announced_at="",
        publish="y",
        message_en="Uploads are slow; we are looking into it.",
    )
    _support, announced = _announce(app, world)
    assert announced.status_code == 302
    admin = signed_in_client(app, world.emails["admin"])
    page = admin.get("/system").get_data(as_text=True)
    current_at = page.index(f'data-testid="incident-{current}"')
    maintenance_at = page.index('data-testid="maintenance"')
    past_at = page.index(f'data-testid="incident-{past}"')
    assert current_at < maintenance_at < past_at
    assert "Uploads are slow; we are looking into it." in page
    assert "Adding storage" in page
    assert "March 15, 2027 02:00" in page  # the next regular window
    assert "March 1, 2027 02:00" not in page  # today's is over


def test_incidents_of_more_than_12_months_ago_are_not_listed(app, world):
    old = _incident(
        app,
        world,
        started_at="2026-02-01T09:00",
        ended_at="2026-02-01T12:00",
        occurrence_announced_at="2026-02-01T09:10",
        recovery_announced_at="2026-02-01T12:10",
    )
    admin = signed_in_client(app, world.emails["admin"])
    assert f'data-testid="incident-{old}"' not in admin.get("/system").get_data(as_text=True)


def test_refused_incident_forms_say_why_next_to_the_field_and_store_nothing(app, world):
    support = signed_in_client(app, world.emails["support"])
    before = row_counts(app)
    cases = {
        "ended_at": {"ended_at": "2027-02-03T08:00"},
        "started_at": {"started_at": "2027-03-02T09:00"},  # in the future
        "recovery_announced_at": {"recovery_announced_at": "2027-02-04T14:00"},
        "service_ids": {"service_ids": []},
        "title_en": {"title_en": "x" * 201},
    }
    for field, change in cases.items():
        response = support.post("/staff/incidents/new", data={**incident_form(world), **change})
        assert response.status_code == 422, field
        assert f'id="{field}-error"' in response.get_data(as_text=True), field
    # A year the portal cannot mean, and a NUL byte, are refused, not a server error.
    for change in ({"started_at": "0001-01-01T00:00"}, {"title_ja": "a\x00b"}):
        response = support.post("/staff/incidents/new", data={**incident_form(world), **change})
        assert response.status_code == 422
    assert row_counts(app) == before


def test_an_ended_incident_takes_only_a_resolved_update(app, world):
    incident_id = _incident(app, world)
    support = signed_in_client(app, world.emails["support"])
    before = row_counts(app)
    response = support.post(
        f"/staff/incidents/{incident_id}/updates",
        data={
            "status": "monitoring",
            "message_ja": "監視中",
            "message_en": "Monitoring",
            "confirmed": "yes",
        },
    )
    assert response.status_code == 422
    assert "takes a resolved update" in response.get_data(as_text=True)
    assert row_counts(app) == before


# --- maintenance (R-50) --------------------------------------------------------------------------


def test_announced_maintenance_is_told_and_its_overrun_counts_as_downtime(app, world):
    support, announced = _announce(app, world)
    assert announced.status_code == 302
    (maintenance,) = rows(app, Maintenance)
    told = [e for e in rows(app, OutboxEmail) if e.kind == "maintenance_announced"]
    assert sorted(e.to_address for e in told) == ["billing@alpha.example", "billing@beta.example"]

    clock.set(datetime(2027, 3, 5, 1, 0, tzinfo=UTC))
    support = signed_in_client(app, world.emails["support"])
    url = f"/staff/maintenance/{maintenance.id}/end"
    assert support.post(url, data={"actual_end": "2027-03-04T07:00"}).status_code == 302
    assert support.post(url, data={"actual_end": "2027-03-04T08:00"}).status_code == 409
    (incident,) = rows(app, Incident)
    assert incident.maintenance_id == maintenance.id
    (version,) = rows(app, IncidentVersion)
    assert version.started_at == datetime(2027, 3, 3, 1, 0, tzinfo=TOKYO)
    assert version.ended_at == datetime(2027, 3, 4, 7, 0, tzinfo=TOKYO)
    # 01:00 on the 3rd to 07:00 on the 4th: 30 hours, of which the 4 announced ones do not
    # count; 26 hours = 1,560 minutes of downtime, nothing owed for announcements.
    admin = signed_in_client(app, world.emails["admin"])
    page = admin.get(f"/contracts/{world.contract_a}/claims").get_data(as_text=True)
    assert "1,560 minutes counted (240 minutes inside maintenance windows do not count)" in page
    assert "= ¥1,805" in page
    assert "announced within 60 minutes" not in page


def test_unannounced_maintenance_counts_in_full(app, world):
    support = signed_in_client(app, world.emails["support"])
    data = {
        "mode": "unannounced",
        "service_ids": [world.ids["service_image_works"]],
        "title_ja": "緊急メンテナンス",
        "title_en": "Emergency maintenance",
        "planned_start": "2027-02-10T00:00",
        "planned_end": "2027-02-11T06:00",
    }
    _confirmed_post(support, "/staff/maintenance/new", data)
    (version,) = rows(app, IncidentVersion)
    assert version.title_en == "Maintenance without announcement: Emergency maintenance"
    admin = signed_in_client(app, world.emails["admin"])
    page = admin.get(f"/contracts/{world.contract_a}/claims").get_data(as_text=True)
    assert "1,800 minutes counted; ¥50,000 × 1,800 / 43,200 = ¥2,083" in page


def test_maintenance_is_announced_before_it_starts(app, world):
    support = signed_in_client(app, world.emails["support"])
    before = row_counts(app)
    _support, response = _announce(app, world, support, planned_start="2027-03-01T09:00")
    assert response.status_code == 422
    assert 'id="planned_start-error"' in response.get_data(as_text=True)
    _support, response = _announce(app, world, support, planned_end="2027-03-03T00:30")
    assert response.status_code == 422
    assert 'id="planned_end-error"' in response.get_data(as_text=True)
    assert row_counts(app) == before


# --- the secret feeds ------------------------------------------------------------------------


def _addresses(app, organisation_id: int) -> dict[str, str]:
    with app.test_request_context():
        return {
            k: v.removeprefix(app.config["BASE_URL"])
            for k, v in feeds.addresses(organisation_id).items()
        }


def test_the_incident_feed_shows_the_organisations_incidents_only(app, world):
    ours = _incident(app, world, org="a", title_en="Alpha outage", title_ja="アルファの障害")
    theirs = _incident(app, world, org="b", title_en="Beta outage", title_ja="ベータの障害")
    client = app.test_client()  # no sign-in: the address is the key
    response = client.get(_addresses(app, world.org_a)["atom"])
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    feed = ET.fromstring(response.data)  # noqa: S314 - the portal's own feed
    assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "ja"
    entries = feed.findall(f"{ATOM}entry")
    assert [e.findtext(f"{ATOM}id").rsplit(":", 1)[1] for e in entries] == [str(ours)]
    assert "アルファの障害" in entries[0].findtext(f"{ATOM}title")
    assert entries[0].find(f"{ATOM}link").get("href").endswith(f"/system/incidents/{ours}")
    assert "ベータの障害" not in response.get_data(as_text=True) and theirs != ours
    assert "¥" not in response.get_data(as_text=True)
    # B's number with A's secret, or a wrong secret: no such address.
    token = _addresses(app, world.org_a)["atom"].split("/")[3]
    assert client.get(f"/feeds/{world.org_b}/{token}/incidents.atom").status_code == 404
    assert client.get(f"/feeds/{world.org_a}/{'x' * 32}/incidents.atom").status_code == 404


def test_the_maintenance_calendar_has_the_regular_and_the_announced_windows(app, world):
    _support, announced = _announce(app, world)
    assert announced.status_code == 302
    response = app.test_client().get(_addresses(app, world.org_a)["ics"])
    assert response.status_code == 200 and response.mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(response.data)
    events = {str(e["uid"]).split("@")[0]: e for e in calendar.walk("VEVENT")}
    regular = events["regular-20270315"]
    assert regular.decoded("dtstart") == datetime(2027, 3, 14, 17, 0, tzinfo=UTC)
    assert regular.decoded("dtend") == datetime(2027, 3, 14, 21, 0, tzinfo=UTC)
    (extra,) = [e for uid, e in events.items() if uid.startswith("maintenance-")]
    assert extra.decoded("dtstart") == datetime(2027, 3, 2, 16, 0, tzinfo=UTC)
    assert str(extra["summary"]) == "ストレージ増設"  # the organisation's language
    # Three months back and six ahead: the windows of December 2026 to August 2027.
    days = sorted(e.decoded("dtstart").astimezone(TOKYO).date() for e in events.values())
    assert days[0] == date(2026, 12, 7) and days[-1] >= date(2027, 8, 16)


def test_an_administrator_rotates_the_feed_addresses_after_confirming(app, world):
    old = _addresses(app, world.org_a)
    admin = signed_in_client(app, world.emails["admin"])
    system = admin.get("/system").get_data(as_text=True)
    assert old["atom"] in system and old["ics"] in system
    assert admin.get("/system/feeds/rotate").status_code == 200  # asks first
    assert admin.post("/system/feeds/rotate").status_code == 302
    new = _addresses(app, world.org_a)
    assert new != old
    client = app.test_client()
    assert client.get(old["atom"]).status_code == 404
    assert client.get(old["ics"]).status_code == 404
    assert client.get(new["atom"]).status_code == 200
    assert new["atom"] in admin.get("/system").get_data(as_text=True)
    # Members see the addresses; agents and staff viewing as the customer never do.
    member = signed_in_client(app, world.emails["member"]).get("/system").get_data(as_text=True)
    assert new["atom"] in member and "Get new addresses" not in member
    with app.app_context():
        rotated = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(sa.table("audit_events", sa.column("action")))
            .where(sa.column("action") == "feeds.rotated")
        )
    assert rotated == 1


def test_an_incident_of_some_plans_is_told_only_to_their_contracts_holders(app, world):
    """R-50 reading: the scope may name plans; only organisations with a contract on one of
    them (on the incident's first day) are affected and told."""
    from tests.factories import add_contract

    add_contract(app, world.org_b, service_start=date(2026, 11, 5), plan="iw-100")
    _incident(
        app,
        world,
        plan_ids=[world.ids["plan_large"]],
        ended_at="",
        occurrence_announced_at="",
        recovery_announced_at="",
        publish="y",
    )
    told = [e.to_address for e in rows(app, OutboxEmail) if e.kind == "incident_update"]
    assert told == ["billing@beta.example"]
    admin = signed_in_client(app, world.emails["admin"])
    assert "Storage outage" not in admin.get("/system").get_data(as_text=True)
