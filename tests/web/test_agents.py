"""R-71: agents of sales agents (販売代理店) and agencies (取次店) act for their partner's
assigned clients only; agencies never see fees; R-73: the client sees who acted for it."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import AccountEntry, AuditEvent, EntryKind
from tests.factories import build_world, enter_client, row_counts, rows, signed_in_client


@pytest.fixture
def world(app):
    return build_world(app)


def _agent(app, world, kind: str):
    return signed_in_client(app, world.emails[kind])


def _entries(app) -> list[AccountEntry]:
    return rows(app, AccountEntry)


def test_an_agent_lists_only_its_partners_clients(app, world):
    for kind, mine, not_mine in (
        ("sales_agent", world.org_a, world.org_b),
        ("agency_agent", world.org_a, world.org_b),
        ("other_sales_agent", world.org_b, world.org_a),
    ):
        page = _agent(app, world, kind).get("/partner/clients").get_data(as_text=True)
        assert f'data-testid="client-{mine}"' in page, kind
        assert f'data-testid="client-{not_mine}"' not in page, kind
        assert f"/partner/clients/{not_mine}/enter" not in page, kind


def test_entering_an_assigned_client_shows_its_contracts_under_the_agent_banner(app, world):
    agent = _agent(app, world, "sales_agent")

    enter_client(agent, world.org_a, purpose="Plan change on the client's request")
    page = agent.get("/contracts").get_data(as_text=True)

    assert f'data-testid="contract-{world.contract_a}"' in page
    assert f'data-testid="contract-{world.contract_b}"' not in page
    banner = re.search(r'<div [^>]*data-testid="entry-banner".*?</div>', page, re.S)[0]
    assert "Alpha K.K." in banner and "Sales Agent Co." in banner
    assert 'action="/leave"' in banner
    (entry,) = _entries(app)
    assert (entry.kind, entry.organisation_id, entry.user_id) == (
        EntryKind.AGENT,
        world.org_a,
        world.ids["sales_agent"],
    )
    assert entry.reason == "Plan change on the client's request"


def test_entering_an_unassigned_client_answers_404_and_records_nothing(app, world):
    agent = _agent(app, world, "sales_agent")
    before = row_counts(app)

    response = agent.post(f"/partner/clients/{world.org_b}/enter", data={"purpose": ""})

    assert response.status_code == 404
    assert row_counts(app) == before
    assert agent.get("/contracts").status_code == 404  # not inside anyone's portal


def test_an_agency_agent_never_sees_fees(app, world):
    """R-71: agencies act for clients in everything except fees and invoices."""
    agent = _agent(app, world, "agency_agent")
    pages = {"/partner/clients": agent.get("/partner/clients")}
    enter_client(agent, world.org_a)
    for path in ("/contracts", f"/contracts/{world.contract_a}", "/partner/clients"):
        pages[f"inside {path}"] = agent.get(path)
    for where, response in pages.items():
        assert response.status_code == 200, where
        page = response.get_data(as_text=True)
        assert "¥" not in page, where
        assert "50,000" not in page, where
        assert 'data-testid="monthly-fee"' not in page, where


def test_a_sales_agent_sees_fees(app, world):
    agent = _agent(app, world, "sales_agent")
    enter_client(agent, world.org_a)
    for path in ("/contracts", f"/contracts/{world.contract_a}"):
        page = agent.get(path).get_data(as_text=True)
        fee = re.search(r'data-testid="monthly-fee">([^<]*)<', page)
        assert fee and fee.group(1).strip() == "¥50,000", path


def test_leaving_ends_the_entry(app, world):
    agent = _agent(app, world, "agency_agent")
    enter_client(agent, world.org_a)

    response = agent.post("/leave")

    assert response.status_code == 302
    assert response.headers["Location"] == "/partner/clients"
    (entry,) = _entries(app)
    assert entry.ended_reason == "stopped"
    assert agent.get("/contracts").status_code == 404
    assert agent.get(f"/contracts/{world.contract_a}").status_code == 404
    with app.app_context():
        actions = list(
            db.session.scalars(
                sa.select(AuditEvent.action)
                .where(AuditEvent.entry_id == entry.id)
                .order_by(AuditEvent.id)
            )
        )
    assert actions == ["agent_entry_started", "agent_entry_ended"]


def test_requests_inside_a_client_are_on_the_record(app, world):
    agent = _agent(app, world, "sales_agent")
    enter_client(agent, world.org_a)
    agent.get(f"/contracts/{world.contract_a}")
    (entry,) = _entries(app)
    with app.app_context():
        (event,) = db.session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.entry_id == entry.id, AuditEvent.action == "request"
            )
        )
        assert event.user_id == world.ids["sales_agent"]
        assert event.organisation_id == world.org_a
        assert event.details["path"] == f"/contracts/{world.contract_a}"


def test_an_agent_does_not_see_the_clients_access_records(app, world):
    """R-73: access records are for the provider and the customer itself."""
    agent = _agent(app, world, "sales_agent")
    enter_client(agent, world.org_a)
    assert agent.get("/access-records").status_code == 403
    assert 'href="/access-records"' not in agent.get("/contracts").get_data(as_text=True)


def test_the_clients_administrator_sees_the_agent_in_the_access_records(app, world):
    agent = _agent(app, world, "agency_agent")
    enter_client(agent, world.org_a, purpose="Renewal application")
    agent.post("/leave")
    admin = _agent(app, world, "admin")

    page = admin.get("/access-records").get_data(as_text=True)

    table = re.search(r'data-testid="access-records".*?</table>', page, re.S)[0]
    assert "Agency Co." in table  # the agent's partner company
    assert world.emails["agency_agent"].split("@")[0] in table  # the agent's name
    assert "Renewal application" in table
    other = _agent(app, world, "other_admin").get("/access-records").get_data(as_text=True)
    assert "Renewal application" not in other
