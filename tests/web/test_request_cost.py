"""What a signed-in request costs the database (issue 15): statements per page, within a
budget that does not grow with the organisation's contracts, and no write on a GET.

The session, its user, the user's organisation and partner company, an open view-as or agent
entry, whether the organisation holds contracts or I-NET SERVICE and whether it has terms to
consent to (R-60) are read in one statement (portal.services.auth.load_session). A GET writes
nothing unless something must be recorded: the session's last-seen instant at most once a
minute, the request of someone inside a customer's portal (R-72), deemed consent (R-60).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.clock import clock
from portal.extensions import db
from portal.models import UsageReading, UsageSource
from tests.factories import add_contract, become, build_world
from tests.web.routes import pending_request

# Statements per page for a customer administrator, whatever the number of contracts.
BUDGET = {
    "/": 5,  # session; contracts with plan, service, pending request and usage; events;
    #          incidents; open invoices
    "/contracts/{contract}": 5,  # session; contract with its events; requests; usage; plans
    "/contracts": 3,  # session; the count for the pager; a page of contracts with their facts
    "/invoices": 3,
}


@dataclass
class Statements:
    sql: list[str] = field(default_factory=list)
    commits: int = 0

    @property
    def writes(self) -> list[str]:
        return [s for s in self.sql if s.lstrip().split(None, 1)[0].upper() != "SELECT"]


@contextmanager
def counted(app: Flask) -> Iterator[Statements]:
    """Every statement and COMMIT the app's engine sends while the block runs."""
    seen = Statements()

    def statement(_conn, _cursor, sql, _params, _context, _many) -> None:
        seen.sql.append(sql)

    def commit(_conn) -> None:
        seen.commits += 1

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)


@pytest.fixture
def world(app):
    """Org A with something on every part of its pages: W-1's contract using 48 of its 50 GB
    (R-15) with a pending cancellation (R-23)."""
    world = build_world(app)
    with app.app_context():
        db.session.add(
            UsageReading(
                contract_id=world.contract_a,
                used_gb=Decimal("48.00"),
                measured_at=clock.now() - timedelta(hours=2),
                source=UsageSource.API,
            )
        )
        db.session.commit()
    pending_request(app, world.contract_a, world.ids["admin"])
    return world


def _listed(seen: Statements) -> str:
    """The statements, one line each, for a failure's message."""
    return "\n".join(sql[:300].replace("\n", " ") for sql in seen.sql)


def _more_contracts(app: Flask, world, count: int) -> None:
    for n in range(count):
        add_contract(app, world.org_a, service_start=date(2026, 6, 1) + timedelta(days=n))


def _page(path: str, world) -> str:
    return path.format(contract=world.contract_a)


@pytest.mark.parametrize("path", list(BUDGET))
def test_a_signed_in_page_stays_within_its_statement_budget_and_writes_nothing(
    app, world, fixed_clock, path
):
    client = app.test_client()
    become(app, client, world, "admin")
    assert client.get(_page(path, world)).status_code == 200  # the first look may write
    with counted(app) as one:
        assert client.get(_page(path, world)).status_code == 200
    _more_contracts(app, world, 20)
    with counted(app) as many:
        assert client.get(_page(path, world)).status_code == 200
    assert len(one.sql) <= BUDGET[path], _listed(one)
    assert len(many.sql) == len(one.sql), "statements grow with the contracts"
    assert one.writes == [] and one.commits == 0
    assert many.writes == [] and many.commits == 0


def test_the_home_page_shows_what_the_single_statements_read(app, world, fixed_clock):
    """The facts read with the contracts are the ones the page shows: the usage near capacity
    (R-15: 48 of 50 GB) and the pending cancellation's date (R-23)."""
    client = app.test_client()
    become(app, client, world, "admin")
    page = client.get("/").get_data(as_text=True)
    assert "96%" in page
    assert "April 20, 2027" in page  # the cancellation takes effect at W-2's month end


def test_last_seen_is_written_at_most_once_a_minute(app, world, fixed_clock):
    client = app.test_client()
    become(app, client, world, "admin")
    client.get("/invoices")
    clock.set(fixed_clock + timedelta(seconds=50))
    with counted(app) as within:
        client.get("/invoices")
    clock.set(fixed_clock + timedelta(seconds=61 + 50))
    with counted(app) as after:
        client.get("/invoices")
    assert within.writes == [] and within.commits == 0
    assert [s.split()[0:2] for s in after.writes] == [["UPDATE", "user_sessions"]]
    assert after.commits == 1


def test_the_terms_banner_costs_a_statement_only_when_there_is_something_to_consent_to(
    app, world, fixed_clock
):
    """R-60: with every version consented to, nothing is read for the banner; with a new
    version announced, the banner reads it (and says so on every page)."""
    from tests.web.test_terms import add_version  # noqa: PLC0415

    client = app.test_client()
    become(app, client, world, "admin")
    client.get("/invoices")
    with counted(app) as before:
        page = client.get("/invoices").get_data(as_text=True)
    assert "New terms of service" not in page
    add_version(app, world.ids["service_image_works"], 1, date(2027, 4, 1))
    with counted(app) as announced:
        page = client.get("/invoices").get_data(as_text=True)
    assert "New terms of service" in page
    assert len(announced.sql) == len(before.sql) + 1


@pytest.mark.parametrize("actor", ["sales_agent", "support_viewing"])
def test_inside_a_customers_portal_the_only_write_is_the_record_of_the_request(
    app, world, fixed_clock, actor
):
    """R-71/R-72: an agent's or viewing staff's request is on the record: one INSERT and its
    COMMIT, and otherwise the same statements as the customer's own."""
    client = app.test_client()
    become(app, client, world, actor)
    path = _page("/contracts/{contract}", world)
    client.get(path)
    with counted(app) as seen:
        assert client.get(path).status_code == 200
    assert [s.split()[0:3] for s in seen.writes] == [["INSERT", "INTO", "audit_events"]]
    assert seen.commits == 1
    assert len(seen.sql) <= BUDGET["/contracts/{contract}"] + 1, _listed(seen)


def test_the_session_statement_reads_a_view_as_customer_with_both_identities(
    app, world, fixed_clock
):
    """R-72: the one statement brings the entry, the organisation viewed and the customer user
    whose view it is; the banner names them without asking again."""
    client = app.test_client()
    become(app, client, world, "support_viewing")
    client.get("/invoices")
    with counted(app) as seen:
        page = client.get("/invoices").get_data(as_text=True)
    assert "Alpha K.K." in page
    selects = [s for s in seen.sql if s.lstrip().upper().startswith("SELECT")]
    assert not any("FROM account_entries" in s.split("WHERE")[0] for s in selects[1:])
