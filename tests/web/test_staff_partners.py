"""Staff manage partner companies (issue 14, item 3; R-71): create one, assign and withdraw
its clients, each change on the record and told to the client's administrators."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from html import unescape

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import (
    AccountEntry,
    AuditEvent,
    EntryKind,
    OutboxEmail,
    PartnerAssignment,
    PartnerCompany,
)
from tests.factories import become, build_world, enter_client, rows, signed_in_client


@pytest.fixture
def world(app):
    return build_world(app)


@pytest.fixture
def staff(app, world):
    return signed_in_client(app, world.emails["support"])


def _error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return unescape(match.group(1)) if match else None


def _partners(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [
            (p.name, p.kind.value)
            for p in db.session.scalars(sa.select(PartnerCompany).order_by(PartnerCompany.id))
        ]


def _assigned(app, partner_id: int) -> set[int]:
    with app.app_context():
        return set(
            db.session.scalars(
                sa.select(PartnerAssignment.organisation_id).where(
                    PartnerAssignment.partner_id == partner_id
                )
            )
        )


def _agent_sees(app, world, agent: str, organisation_id: int) -> bool:
    """Whether the agent's client list (R-71) offers to act for the organisation."""
    page = signed_in_client(app, world.emails[agent]).get("/partner/clients")
    assert page.status_code == 200
    return f"/partner/clients/{organisation_id}/enter" in page.get_data(as_text=True)


# --- the list and a new partner company ------------------------------------------------------


def test_r71_staff_list_partners_with_their_clients_and_agents(app, world, staff):
    page = staff.get("/staff/partners")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    sales = world.ids["sales_partner"]
    row = re.search(rf'<tr data-testid="partner-row">\s*<td>{sales}</td>(.*?)</tr>', text, re.S)
    assert row, text
    cells = re.findall(r"<td>(.*?)</td>", row.group(1), re.S)
    assert "Sales Agent Co." in cells[0]
    assert cells[2:] == ["1", "2"]  # client A; its agent and its partner administrator
    assert 'href="/staff/partners/new"' in text
    assert 'href="/staff/partners"' in staff.get("/staff/organisations").get_data(as_text=True)


def test_r71_support_creates_a_partner_company_on_the_record(app, world, staff):
    assert staff.get("/staff/partners/new").status_code == 200
    response = staff.post(
        "/staff/partners/new", data={"name": "  Gamma  Agency ", "kind": "agency"}
    )
    assert response.status_code == 302
    assert _partners(app)[-1] == ("Gamma Agency", "agency")
    (event,) = rows(app, AuditEvent, action="partner_created")
    assert event.user_id == world.ids["support"]
    assert response.headers["Location"] == f"/staff/partners/{event.subject_id}"
    page = staff.get(response.headers["Location"]).get_data(as_text=True)
    assert "Gamma Agency" in page
    assert "Gamma Agency was created." in page
    assert re.search(r'data-testid="partner-kind">Agency<', page)


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"name": "", "kind": "agency"}, "name", "This field is required."),
        ({"name": "x" * 201, "kind": "agency"}, "name", "Use at most 200 characters."),
        ({"name": "Gamma", "kind": "reseller"}, "kind", "Choose sales agent or agency."),
        ({"name": "Gamma"}, "kind", "Choose sales agent or agency."),
        # One name, one company: the existing one, in other letters and spacing.
        ({"name": " sales  agent co. ", "kind": "sales_agent"}, "name", "already exists"),
    ],
)
def test_bad_partner_input_is_refused_next_to_the_field(app, world, staff, form, field, message):
    before = _partners(app)
    response = staff.post("/staff/partners/new", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in (_error(page, field) or ""), page
    assert _partners(app) == before
    assert rows(app, AuditEvent, action="partner_created") == []


# --- assigning a client ---------------------------------------------------------------------


def test_r71_assigning_a_client_is_recorded_told_and_shown_to_the_agents(app, world, staff):
    sales = world.ids["sales_partner"]
    assert not _agent_sees(app, world, "sales_agent", world.org_b)
    page = staff.get(f"/staff/partners/{sales}").get_data(as_text=True)
    assert f'<option value="{world.org_b}">Beta K.K.' in page
    assert f'<option value="{world.org_a}"' not in page  # already its client

    response = staff.post(f"/staff/partners/{sales}/clients", data={"organisation_id": world.org_b})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/staff/partners/{sales}"
    assert _assigned(app, sales) == {world.org_a, world.org_b}
    (event,) = rows(app, AuditEvent, action="partner_client_assigned")
    assert (event.user_id, event.organisation_id, event.subject_id) == (
        world.ids["support"],
        world.org_b,
        sales,
    )
    (notice,) = rows(app, OutboxEmail, kind="partner_assigned")
    assert notice.to_address == world.emails["other_admin"]
    assert notice.organisation_id == world.org_b
    assert "Sales Agent Co." in notice.subject
    assert _agent_sees(app, world, "sales_agent", world.org_b)
    assert not _agent_sees(app, world, "agency_agent", world.org_b)  # another partner
    page = staff.get(f"/staff/partners/{sales}").get_data(as_text=True)
    assert "Beta K.K. is now a client of Sales Agent Co." in page


@pytest.mark.parametrize("organisation", ["org_a", "missing", "text"])
def test_assigning_an_assigned_or_unknown_organisation_is_refused(app, world, staff, organisation):
    sales = world.ids["sales_partner"]
    value = {"org_a": world.org_a, "missing": 999999, "text": "Beta"}[organisation]
    response = staff.post(f"/staff/partners/{sales}/clients", data={"organisation_id": value})
    assert response.status_code == 422
    assert _error(response.get_data(as_text=True), "organisation_id")
    assert _assigned(app, sales) == {world.org_a}
    assert rows(app, OutboxEmail, kind="partner_assigned") == []
    assert rows(app, AuditEvent, action="partner_client_assigned") == []


def test_the_same_partner_created_twice_at_once_is_created_once(app, world):
    """A partner's name is its own whatever its case: the unique index on the lowered name takes
    one of two creations sent at once, and the other is told next to the field."""
    clients = [signed_in_client(app, world.emails["support"]) for _ in range(4)]
    start = threading.Barrier(len(clients))
    names = ["Kita Hanbai", "KITA HANBAI", "kita hanbai", "Kita Hanbai"]

    def submit(pair):
        client, name = pair
        start.wait()
        response = client.post("/staff/partners/new", data={"name": name, "kind": "agency"})
        return response.status_code, _error(response.get_data(as_text=True), "name")

    with ThreadPoolExecutor(len(clients)) as pool:
        answers = sorted(pool.map(submit, zip(clients, names, strict=True)), key=str)
    assert [status for status, _ in answers] == [302] + [422] * (len(clients) - 1)
    assert {error for _, error in answers[1:]} == {
        "A partner company with this name already exists."
    }
    assert [name.lower() for name, _ in _partners(app)].count("kita hanbai") == 1
    assert len(rows(app, AuditEvent, action="partner_created")) == 1


def test_assigning_twice_at_once_assigns_once(app, world):
    sales = world.ids["sales_partner"]
    clients = [signed_in_client(app, world.emails["support"]) for _ in range(4)]
    start = threading.Barrier(len(clients))

    def submit(client):
        start.wait()
        return client.post(
            f"/staff/partners/{sales}/clients", data={"organisation_id": world.org_b}
        ).status_code

    with ThreadPoolExecutor(len(clients)) as pool:
        statuses = sorted(pool.map(submit, clients))
    assert statuses == [302] + [422] * (len(clients) - 1)
    assert _assigned(app, sales) == {world.org_a, world.org_b}
    assert len(rows(app, OutboxEmail, kind="partner_assigned")) == 1
    assert len(rows(app, AuditEvent, action="partner_client_assigned")) == 1


# --- withdrawing a client ------------------------------------------------------------------


def test_r71_withdrawing_asks_first_then_ends_the_agents_entry_and_tells(app, world, staff):
    sales, url = world.ids["sales_partner"], None
    agent = signed_in_client(app, world.emails["sales_agent"])
    enter_client(agent, world.org_a)
    url = f"/staff/partners/{sales}/clients/{world.org_a}/withdraw"
    assert f'action="{url}"' in staff.get(f"/staff/partners/{sales}").get_data(as_text=True)

    confirm = staff.post(url, data={})
    assert confirm.status_code == 200
    summary = confirm.get_data(as_text=True)
    assert 'data-testid="confirm-summary"' in summary
    assert "Withdraw Alpha K.K. from Sales Agent Co." in unescape(summary)
    back = staff.post(url, data={"confirmed": "edit"})
    assert back.headers["Location"] == f"/staff/partners/{sales}"
    assert _assigned(app, sales) == {world.org_a}  # nothing changed yet
    assert rows(app, OutboxEmail, kind="partner_withdrawn") == []

    done = staff.post(url, data={"confirmed": "yes"})
    assert done.status_code == 302
    assert done.headers["Location"] == f"/staff/partners/{sales}"
    assert _assigned(app, sales) == set()
    (entry,) = rows(app, AccountEntry, kind=EntryKind.AGENT, user_id=world.ids["sales_agent"])
    assert entry.ended_at is not None
    assert entry.ended_reason == "partner_withdrawn"
    (event,) = rows(app, AuditEvent, action="partner_client_withdrawn")
    assert (event.user_id, event.organisation_id) == (world.ids["support"], world.org_a)
    assert event.details["entries_ended"] == 1
    (notice,) = rows(app, OutboxEmail, kind="partner_withdrawn")
    assert notice.to_address == world.emails["admin"]
    assert notice.organisation_id == world.org_a
    # The agent is out of A's portal and no longer finds A; the agency keeps it.
    assert agent.get(f"/contracts/{world.contract_a}").status_code == 404
    assert not _agent_sees(app, world, "sales_agent", world.org_a)
    assert _agent_sees(app, world, "agency_agent", world.org_a)
    # Sent again (a second tab): nothing more to withdraw.
    again = staff.post(url, data={"confirmed": "yes"})
    assert again.status_code == 404
    assert len(rows(app, OutboxEmail, kind="partner_withdrawn")) == 1


def test_withdrawing_a_client_the_partner_does_not_have_answers_404(app, world, staff):
    sales = world.ids["sales_partner"]
    url = f"/staff/partners/{sales}/clients/{world.org_b}/withdraw"
    assert staff.post(url, data={"confirmed": "yes"}).status_code == 404
    assert staff.get("/staff/partners/999999").status_code == 404
    assert _assigned(app, world.ids["other_sales_partner"]) == {world.org_b}


# --- who may -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["billing", "production"])
def test_r71_other_staff_may_look_but_not_change(app, world, kind):
    client = signed_in_client(app, world.emails[kind])
    sales = world.ids["sales_partner"]
    listing = client.get("/staff/partners")
    assert listing.status_code == 200
    assert 'href="/staff/partners/new"' not in listing.get_data(as_text=True)
    page = client.get(f"/staff/partners/{sales}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Alpha K.K." in text
    assert "/withdraw" not in text and '/clients"' not in text
    assert client.get("/staff/partners/new").status_code == 403
    assert (
        client.post("/staff/partners/new", data={"name": "G", "kind": "agency"}).status_code == 403
    )
    assigned = client.post(
        f"/staff/partners/{sales}/clients", data={"organisation_id": world.org_b}
    )
    assert assigned.status_code == 403
    url = f"/staff/partners/{sales}/clients/{world.org_a}/withdraw"
    assert client.post(url, data={"confirmed": "yes"}).status_code == 403
    assert _assigned(app, sales) == {world.org_a}
    assert len(_partners(app)) == 4


@pytest.mark.parametrize("kind", ["admin", "member", "sales_agent", "agency_agent"])
def test_customers_and_agents_find_no_partner_pages(app, world, kind):
    client = app.test_client()
    become(app, client, world, kind)
    sales = world.ids["sales_partner"]
    for path in ("/staff/partners", "/staff/partners/new", f"/staff/partners/{sales}"):
        assert client.get(path).status_code == 404, path
    assert (
        client.post("/staff/partners/new", data={"name": "G", "kind": "agency"}).status_code == 404
    )


def test_r72_staff_viewing_as_a_customer_get_403(app, world):
    client = app.test_client()
    become(app, client, world, "support_viewing")
    sales = world.ids["sales_partner"]
    for path in ("/staff/partners", "/staff/partners/new", f"/staff/partners/{sales}"):
        assert client.get(path).status_code == 403, path
    url = f"/staff/partners/{sales}/clients/{world.org_a}/withdraw"
    assert client.post(url, data={"confirmed": "yes"}).status_code == 403
    assert _assigned(app, sales) == {world.org_a}
