"""The agent's worklist at /partner/clients and its CSV (R-71): every client, the most urgent
first, searchable; agencies never see an amount (R-71), the CSV is safe for spreadsheets.

The clock is at 2027-03-01 (Tokyo). Clients of the sales agent, besides org A:
- org A "Alpha K.K." (W-1's contract_a, notice by 2027-10-21) has overdue invoices (R-33);
- "Epsilon K.K." has a pending upgrade taking effect 2027-03-15 (R-23);
- "Gamma K.K." has a contract whose notice against renewal is due 2027-03-21 (R-05);
- "Aardvark K.K." has nothing to do.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date

import pytest
import sqlalchemy as sa

from portal.domain.quotes import RequestKind
from portal.extensions import db
from portal.models import (
    Contract,
    CustomerRole,
    DocumentKind,
    Invoice,
    Organisation,
    PartnerAssignment,
    PartnerCompany,
    User,
    UserKind,
)
from portal.permissions import Actor
from portal.services import invoicing
from portal.services import requests as request_service
from portal.services.requests import Choice
from tests.factories import add_contract, add_organisation, add_user, become, build_world
from tests.web.routes import agency_contract, first_invoice

HYPERLINK = '=HYPERLINK("http://evil.example/","Click")'


def _client_of(partner_id: int, name: str, domain: str) -> int:
    org = add_organisation(name, domain)
    db.session.add(
        PartnerAssignment(partner=db.session.get(PartnerCompany, partner_id), organisation=org)
    )
    db.session.flush()
    return org.id


@pytest.fixture
def world(app):
    world = build_world(app)
    first_invoice(app, world, "a")  # org A's first invoices, overdue by 2027-03-01
    sales = world.ids["sales_partner"]
    with app.app_context():
        for key, name, domain in (
            ("gamma", "Gamma K.K.", "gamma.example"),
            ("epsilon", "Epsilon K.K.", "epsilon.example"),
            ("aardvark", "Aardvark K.K.", "aardvark.example"),
        ):
            world.ids[key] = _client_of(sales, name, domain)
        admin = add_user(
            "admin@epsilon.example",
            organisation=db.session.get(Organisation, world.ids["epsilon"]),
            customer_role=CustomerRole.ADMINISTRATOR,
            kind=UserKind.CUSTOMER,
        )
        db.session.commit()
        world.ids["epsilon_admin"] = admin.id
    # Notice against renewal due 2027-03-21, as the home page's contract "a2".
    add_contract(app, world.ids["gamma"], service_start=date(2026, 4, 21), partner_id=sales)
    world.ids["epsilon_contract"] = add_contract(
        app, world.ids["epsilon"], service_start=date(2026, 11, 5), partner_id=sales
    )
    with app.test_request_context():
        request_service.submit(
            Actor(db.session.get(User, world.ids["epsilon_admin"])),
            db.session.get(Contract, world.ids["epsilon_contract"]),
            Choice(RequestKind.UPGRADE, world.ids["plan_large"], date(2027, 3, 15)),
            ip="127.0.0.1",
        )
        db.session.commit()
    return world


def _agent(app, world, kind: str):
    client = app.test_client()
    become(app, client, world, kind)
    return client


def _row_ids(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="client-(\d+)"', page)]


def _row(page: str, org_id: int) -> str:
    return re.search(rf'<tr id="client-{org_id}".*?</tr>', page, re.S)[0]


def _overdue_due(app, org_id: int) -> int:
    """R-44: what org A owes on its invoices overdue at 2027-03-01, tax included."""
    with app.app_context():
        overdue = list(
            db.session.scalars(
                sa.select(Invoice).where(
                    Invoice.organisation_id == org_id,
                    Invoice.kind == DocumentKind.INVOICE,
                    Invoice.due_on < date(2027, 3, 1),
                )
            )
        )
        assert overdue
        return sum(invoicing.amounts_due(overdue).values())


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # UTF-8 with a BOM, for Excel in Japan
    return list(csv.reader(io.StringIO(text[1:])))


def test_r71_worklist_shows_the_most_urgent_client_first(app, world):
    agent = _agent(app, world, "sales_agent")
    response = agent.get("/partner/clients")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    # Overdue invoices, then the pending request (03-15), then the notice (03-21); nothing last.
    assert _row_ids(page) == [
        world.org_a,
        world.ids["epsilon"],
        world.ids["gamma"],
        world.ids["aardvark"],
    ]
    assert "Beta K.K." not in page  # another partner's client
    epsilon = _row(page, world.ids["epsilon"])
    assert f"todo-deadline-{world.ids['epsilon_contract']}-request" in epsilon
    assert "pending: takes effect on March 15, 2027." in epsilon
    assert "Notice against renewal by March 21, 2027" in _row(page, world.ids["gamma"])
    assert "Nothing to do" in _row(page, world.ids["aardvark"])
    # The button to act for each client posts as before.
    row_a = _row(page, world.org_a)
    assert f'action="/partner/clients/{world.org_a}/enter"' in row_a
    assert f'<label for="purpose-{world.org_a}">' in row_a
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))

    rows = _csv(agent.get("/partner/clients.csv"))
    assert [r[0] for r in rows[1:]] == ["Alpha K.K.", "Epsilon K.K.", "Gamma K.K.", "Aardvark K.K."]
    assert rows[2][4:6] == ["2027-03-15", "14"]
    assert rows[3][4:6] == ["2027-03-21", "20"]
    assert rows[4][2:6] == ["", "", "", ""]


def test_r71_a_sales_agent_sees_the_overdue_amount(app, world):
    agent = _agent(app, world, "sales_agent")
    due = _overdue_due(app, world.org_a)

    row_a = _row(agent.get("/partner/clients").get_data(as_text=True), world.org_a)
    assert f"todo-overdue-{world.org_a}" in row_a
    assert f"¥{due:,}" in row_a

    rows = _csv(agent.get("/partner/clients.csv"))
    header, alpha = rows[0], rows[1]
    assert header[-2:] == ["Overdue invoices", "Amount due (tax included, yen)"]
    assert alpha[0] == "Alpha K.K." and int(alpha[-1]) == due
    assert int(alpha[5]) < 0  # days left: overdue


def test_r71_an_agency_sees_no_amount_on_the_page_or_in_the_csv(app, world):
    agency_contract(app, world)
    agent = _agent(app, world, "agency_agent")
    due = _overdue_due(app, world.org_a)

    page = agent.get("/partner/clients").get_data(as_text=True)
    body = agent.get("/partner/clients.csv").get_data(as_text=True)

    assert _row_ids(page) == [world.org_a]
    assert "Renewal application due" in _row(page, world.org_a)
    assert f"todo-overdue-{world.org_a}" not in page
    page = re.sub(r'name="csrf_token" value="[^"]*"', "", page)  # random, could hold digits
    for text in (page, body):
        assert "¥" not in text and "円" not in text
        assert f"{due:,}" not in text and str(due) not in text
    header = next(csv.reader(io.StringIO(body[1:])))
    assert "Amount due (tax included, yen)" not in header
    assert "Overdue invoices" not in header


def test_search_narrows_the_worklist_and_its_csv(app, world):
    agent = _agent(app, world, "sales_agent")

    page = agent.get("/partner/clients", query_string={"q": "GAMMA"}).get_data(as_text=True)
    assert _row_ids(page) == [world.ids["gamma"]]
    assert 'value="GAMMA"' in page
    assert "/partner/clients.csv?q=GAMMA" in page
    rows = _csv(agent.get("/partner/clients.csv", query_string={"q": "gamma"}))
    assert [r[0] for r in rows[1:]] == ["Gamma K.K."]


def test_search_escapes_like_wildcards(app, world):
    with app.app_context():
        percent = _client_of(world.ids["sales_partner"], "50% Off K.K.", "off.example")
        underscore = _client_of(world.ids["sales_partner"], "Half_Moon K.K.", "moon.example")
        db.session.commit()
    agent = _agent(app, world, "sales_agent")

    for query, found in (
        ("%", [percent]),
        ("_", [underscore]),
        ("a_f", []),
        ("a%k", []),
        ("0%", [percent]),
    ):
        response = agent.get("/partner/clients", query_string={"q": query})
        assert response.status_code == 200
        assert _row_ids(response.get_data(as_text=True)) == found, query
    page = agent.get("/partner/clients", query_string={"q": "a_f"}).get_data(as_text=True)
    assert "No client matches your search." in page


def test_control_characters_are_dropped_and_never_a_500(app, world):
    agent = _agent(app, world, "sales_agent")

    for path in ("/partner/clients", "/partner/clients.csv"):
        assert agent.get(f"{path}?q=%00").status_code == 200, path
    page = agent.get("/partner/clients?q=gam%00ma%07").get_data(as_text=True)
    assert _row_ids(page) == [world.ids["gamma"]]
    assert 'value="gamma"' in page
    rows = _csv(agent.get("/partner/clients.csv?q=gam%00ma%07"))
    assert [r[0] for r in rows[1:]] == ["Gamma K.K."]


def test_a_search_too_long_is_refused_next_to_the_field(app, world):
    agent = _agent(app, world, "sales_agent")

    for path in ("/partner/clients", "/partner/clients.csv"):
        response = agent.get(path, query_string={"q": "a" * 101})
        page = response.get_data(as_text=True)
        assert response.status_code == 422, path
        assert response.mimetype == "text/html"
        assert '<p class="error" id="q-error">Use at most 100 characters.</p>' in page
        assert 'aria-describedby="q-error"' in page
    assert agent.get("/partner/clients", query_string={"q": "a" * 100}).status_code == 200


def test_the_csv_keeps_a_formula_name_as_text(app, world):
    with app.app_context():
        _client_of(world.ids["sales_partner"], HYPERLINK, "formula.example")
        db.session.commit()
    agent = _agent(app, world, "sales_agent")

    response = agent.get("/partner/clients.csv")
    rows = _csv(response)
    assert "'" + HYPERLINK in [r[0] for r in rows]
    assert HYPERLINK not in [r[0] for r in rows]
    assert response.headers["Content-Disposition"] == 'attachment; filename="clients-20270301.csv"'


def test_the_csv_columns_are_in_the_users_language(app, world):
    agent = _agent(app, world, "sales_agent")
    agent.post("/language", data={"locale": "ja", "next": "/partner/clients"})

    header = _csv(agent.get("/partner/clients.csv"))[0]
    assert "フリガナ" in header and "Name in kana" not in header
