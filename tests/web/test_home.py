"""The home page at "/": what needs doing, for each kind of user, most urgent first.

One world for the module, at 2027-03-01 10:00 Tokyo, with something to do in every category:
org A (W-1's contract_a, sold through the assigned sales agent, and contract "a2", which started
2026-04-21, so its notice against renewal is due 2027-03-21) has invoices overdue (one of them
partly credited) and one not yet due, a pending upgrade taking effect 2027-03-15, new terms
from 2027-04-01, 60 GB used of contract_a's 50 GB, an open incident of its own and W-4's ended
outage to claim. Org B (another partner's client) has the same kinds of things, which nobody
of A's side may ever see: its own open incident, a pending upgrade taking effect 2027-03-03 and
a claim under review.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import unescape

import pytest
import sqlalchemy as sa

from portal.clock import TOKYO, clock
from portal.domain.quotes import RequestKind
from portal.domain.sla import IncidentKind
from portal.extensions import db
from portal.models import (
    Contract,
    DocumentKind,
    Incident,
    Invoice,
    InvoiceState,
    InvoiceStatus,
    MisuseReport,
    Organisation,
    OutboxEmail,
    TermsVersion,
    UsageReading,
    UsageSource,
    User,
)
from portal.permissions import Actor
from portal.services import claims, incidents, invoicing
from portal.services import home as home_service
from portal.services import requests as request_service
from portal.services.incidents import IncidentFacts
from portal.services.requests import Choice
from tests.conftest import DEFAULT_NOW
from tests.factories import add_contract, become, signed_in_client


@dataclass
class Home:
    a2: int = 0  # org A's contract whose notice deadline is 20 days away
    b2: int = 0
    upgrade_a: int = 0  # pending, takes effect 2027-03-15
    upgrade_b: int = 0  # pending, takes effect 2027-03-03 (this week)
    open_a: int = 0  # incidents still open, of A only and of B only
    open_b: int = 0
    w4: int = 0  # ended, claimable until 2027-05-04
    terms: int = 0
    credited: int = 0  # an overdue invoice of A with a credit note


def _at(day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC))  # 10:00 in Tokyo


def _actor(user_id: int) -> Actor:
    return Actor(db.session.get(User, user_id))


def _incident(world, title: str, start: datetime, end: datetime | None, org: int) -> int:
    facts = IncidentFacts(
        kind=IncidentKind.OUTAGE,
        title_ja=title,
        title_en=title,
        service_ids=(world.ids["service_image_works"],),
        organisation_ids=(org,) if org else (),
        started_at=start,
        ended_at=end,
        occurrence_announced_at=start.replace(minute=20) if end else None,
        recovery_announced_at=end.replace(hour=end.hour + 1, minute=30) if end else None,
    )
    return incidents.record(_actor(world.ids["support"]), facts).id


@pytest.fixture(scope="module")
def home(shared) -> Home:
    app, world = shared.app, shared.world
    found = Home()
    _at(date(2027, 2, 21))
    found.a2 = add_contract(
        app, world.org_a, service_start=date(2026, 4, 21), partner_id=world.ids["sales_partner"]
    )
    found.b2 = add_contract(app, world.org_b, service_start=date(2026, 4, 21))
    with app.test_request_context():
        for day in (date(2026, 11, 5), date(2026, 11, 21), date(2026, 12, 21), date(2027, 1, 21)):
            invoicing.issue_invoices(day)
        invoicing.issue_invoices(date(2027, 2, 21))
        overdue = db.session.scalar(
            sa.select(Invoice)
            .where(Invoice.organisation_id == world.org_a, Invoice.due_on == date(2027, 2, 20))
            .order_by(Invoice.id)
        )
        invoicing.issue_credit_note(
            _actor(world.ids["billing"]),
            overdue,
            amount=10_000,
            tax_rate_percent=10,
            reason="A discount agreed on the phone",
            ip="127.0.0.1",
        )
        found.credited = overdue.id
        # B's upgrade, asked on 2027-02-21, takes effect ten days later.
        found.upgrade_b = request_service.submit(
            _actor(world.ids["other_admin"]),
            db.session.get(Contract, world.contract_b),
            Choice(RequestKind.UPGRADE, world.ids["plan_large"], date(2027, 3, 3)),
            ip="127.0.0.1",
        ).id
        db.session.commit()
    clock.set(DEFAULT_NOW)
    with app.test_request_context():
        found.upgrade_a = request_service.submit(
            _actor(world.ids["admin"]),
            db.session.get(Contract, world.contract_a),
            Choice(RequestKind.UPGRADE, world.ids["plan_large"], date(2027, 3, 15)),
            ip="127.0.0.1",
        ).id
        version = TermsVersion(
            service_id=world.ids["service_image_works"],
            version=1,
            title_ja="利用規約",
            title_en="Terms of Service",
            body_ja="第1条 適用",
            body_en="Art. 1 Scope",
            effective_on=date(2027, 4, 1),
        )
        db.session.add(version)
        db.session.add(
            UsageReading(
                contract_id=world.contract_a,
                used_gb=60,
                measured_at=datetime(2027, 2, 28, 9, 0, tzinfo=TOKYO),
                source=UsageSource.STAFF,
            )
        )
        found.open_a = _incident(
            world, "Upload errors", datetime(2027, 3, 1, 8, 0, tzinfo=TOKYO), None, world.org_a
        )
        found.open_b = _incident(
            world, "Login failures", datetime(2027, 3, 1, 7, 0, tzinfo=TOKYO), None, world.org_b
        )
        # W-4: 30 hours, its recovery announced 90 minutes late; every contract of the service.
        found.w4 = _incident(
            world,
            "Storage outage",
            datetime(2027, 2, 3, 9, 0, tzinfo=TOKYO),
            datetime(2027, 2, 4, 15, 0, tzinfo=TOKYO),
            0,
        )
        claims.file(
            _actor(world.ids["other_admin"]),
            db.session.get(Contract, world.contract_b),
            db.session.get(Incident, found.w4),
        )
        db.session.add(MisuseReport(user_id=world.ids["member"], organisation_id=world.org_a))
        db.session.get(Organisation, world.org_a).legal_name_kana = "アルファ"
        db.session.execute(
            sa.update(OutboxEmail)
            .where(OutboxEmail.id == sa.select(sa.func.min(OutboxEmail.id)).scalar_subquery())
            .values(failed_at=clock.now(), attempts=16)
        )
        db.session.commit()
        found.terms = version.id
    return found


def _get(shared, actor: str, path: str = "/") -> tuple[int, str]:
    client = shared.app.test_client()
    become(shared.app, client, shared.world, actor)
    response = client.get(path)
    return response.status_code, response.get_data(as_text=True)


def _main(page: str) -> str:
    start = page.index("<main")
    return page[start : page.index("</main>", start)]


def _text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _block(page: str, testid: str, tag: str = "li") -> str | None:
    """The text of the element with this data-testid (up to its closing tag)."""
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</{tag}>', page, re.S)
    return _text(match.group(1)) if match else None


def _testids(page: str, prefix: str) -> list[str]:
    """The data-testids starting with `prefix`, in the order of the page."""
    return re.findall(rf'data-testid="({re.escape(prefix)}[^"]*)"', page)


def _open_invoices(app, organisation_id: int) -> dict[str, int]:
    """Org's open invoices, by number, with their amounts due, as billing computes them."""
    with app.app_context():
        found = list(
            db.session.scalars(
                sa.select(Invoice)
                .join(InvoiceState)
                .where(
                    Invoice.organisation_id == organisation_id,
                    Invoice.kind == DocumentKind.INVOICE,
                    InvoiceState.status == InvoiceStatus.OPEN,
                )
            )
        )
        dues = invoicing.amounts_due(found)
        return {i.number: dues[i.id] for i in found if dues[i.id] > 0}


# --- the customer's portal ------------------------------------------------------------------


def test_an_administrator_sees_everything_to_do_with_links(shared, fixed_clock, home):
    app, world = shared.app, shared.world
    status, page = _get(shared, "admin")
    assert status == 200
    main = _main(page)

    # the amount due is every open invoice's amount due, credit notes deducted.
    dues = _open_invoices(app, world.org_a)
    assert len(dues) >= 2
    assert _block(main, "amount-due", "strong") == f"¥{sum(dues.values()):,}"
    with app.app_context():
        credited = db.session.get(Invoice, home.credited)
        assert dues[credited.number] == credited.total - 11_000
        overdue_ids = set(
            db.session.scalars(
                sa.select(Invoice.id).where(
                    Invoice.organisation_id == world.org_a,
                    Invoice.kind == DocumentKind.INVOICE,
                    Invoice.due_on < date(2027, 3, 1),
                )
            )
        )
    credited_item = _block(main, f"home-invoice-{home.credited}")
    assert f"¥{dues[credited.number]:,}" in credited_item
    assert "days overdue" in credited_item
    # Each invoice links to its page, with a Pay link for those who pay.
    for invoice_id in overdue_ids:
        assert f'href="/invoices/{invoice_id}"' in main
        assert f'data-testid="pay-{invoice_id}"' in main
    assert _block(main, "overdue-count", "span") == f"{len(overdue_ids)} invoices are overdue"

    # R-05, R-23: deadlines soonest first: the upgrade (03-15), then a2's notice (03-21).
    assert _testids(main, "deadline-") == [
        f"deadline-{world.contract_a}-request",
        f"deadline-{home.a2}-renewal_notice",
        f"deadline-{world.contract_a}-renewal_notice",
    ]
    upgrade = _block(main, f"deadline-{world.contract_a}-request")
    assert "Upgrade pending: takes effect on March 15, 2027." in upgrade
    assert "14 days left" in upgrade
    assert f'href="/contracts/{world.contract_a}/requests/{home.upgrade_a}"' in main
    notice = _block(main, f"deadline-{home.a2}-renewal_notice")
    assert "Notice against renewal by March 21, 2027 (20 days left)" in notice
    assert f'href="/contracts/{home.a2}"' in main

    # new terms, usage over capacity, the open incident, the claim.
    assert "take effect on April 1, 2027" in _block(main, f"home-terms-{home.terms}")
    assert f'href="/terms/{home.terms}">Read and consent' in main
    usage = _block(main, f"home-usage-{world.contract_a}")
    assert "60.00 GB of 50 GB (120%)" in usage and "Over the plan's capacity" in usage
    assert "Upload errors" in _block(main, f"home-incident-{home.open_a}")
    assert f'href="/system/incidents/{home.open_a}"' in main
    claim = _block(main, f"home-claim-{world.contract_a}-{home.w4}")
    assert "¥3,749" in claim and "Claimable until May 4, 2027" in claim
    assert f'href="/contracts/{world.contract_a}/claims/new/{home.w4}"' in main

    # Nothing of org B: its incident, its request, its invoices.
    assert "Login failures" not in page
    assert f"/requests/{home.upgrade_b}" not in page
    assert set(_open_invoices(app, world.org_b)).isdisjoint(_text(main).split())
    ids = re.findall(r' id="([^"]+)"', main)
    assert len(ids) == len(set(ids)), "ids on the page are unique"


def test_a_member_who_may_not_see_invoices_sees_no_amount_due(shared, fixed_clock, home):
    status, page = _get(shared, "member")
    main = _main(page)
    assert status == 200
    assert 'data-testid="home-invoices"' not in main and "/invoices/" not in main
    assert f"deadline-{shared.world.contract_a}-request" in main
    # members read the compensation (with its amount) but claim through nobody's link.
    assert f'href="/contracts/{shared.world.contract_a}/claims"' in main
    assert "/claims/new/" not in main
    # members read the terms; only administrators consent.
    assert "Read the new terms" in main and "Read and consent" not in main


def test_members_allowed_to_see_invoices_see_them_without_a_pay_link(shared, fixed_clock, home):
    app, world = shared.app, shared.world
    with app.app_context():
        db.session.get(Organisation, world.org_a).members_see_invoices = True
        db.session.commit()
    try:
        _status, page = _get(shared, "member")
    finally:
        with app.app_context():
            db.session.get(Organisation, world.org_a).members_see_invoices = False
            db.session.commit()
    main = _main(page)
    due = sum(_open_invoices(app, world.org_a).values())
    assert _block(main, "amount-due", "strong") == f"¥{due:,}"
    assert f'href="/invoices/{home.credited}"' in main
    assert 'data-testid="pay-' not in main


def test_an_agency_inside_the_clients_portal_sees_no_amount(shared, fixed_clock, home):
    """R-71: agencies act in everything but fees and invoices: no amount, no claim."""
    status, page = _get(shared, "agency_agent")
    main = _main(page)
    assert status == 200
    assert "¥" not in page
    assert 'data-testid="home-invoices"' not in main and 'data-testid="home-claims"' not in main
    assert f"deadline-{home.a2}-renewal_notice" in main
    assert f"home-incident-{home.open_a}" in main
    assert "Read the new terms" in main  # an agent never consents for the client


def test_staff_viewing_see_the_customers_home_but_neither_pay_nor_claim(shared, fixed_clock, home):
    """R-72: staff viewing as the administrator see what the customer sees, no more."""
    status, page = _get(shared, "support_viewing")
    main = _main(page)
    assert status == 200
    assert f'data-testid="home-invoice-{home.credited}"' in main
    assert 'data-testid="pay-' not in main
    assert "/claims/new/" not in main and f"home-claim-{shared.world.contract_a}-" in main
    assert "Read and consent" not in main


# --- agents outside a client's portal ------------------------------------------------------------


def test_a_sales_agent_sees_its_clients_to_dos_most_urgent_first(shared, fixed_clock, home):
    app, world = shared.app, shared.world
    client = signed_in_client(app, world.emails["sales_agent"])
    response = client.get("/")
    assert response.status_code == 200
    main = _main(response.get_data(as_text=True))
    todo = _testids(main, "todo-")
    # deadlines soonest first, then overdue invoices, then incidents; only client A's.
    assert todo == [
        f"todo-deadline-{world.contract_a}-request",
        f"todo-deadline-{home.a2}-renewal_notice",
        # contract_a's notice (2027-10-21) is beyond the two months shown
        f"todo-overdue-{world.org_a}",
        f"todo-incident-{home.open_a}",
    ]
    # the client's overdue invoices as one item, the credit note deducted.
    with app.app_context():
        overdue = list(
            db.session.scalars(
                sa.select(Invoice)
                .where(
                    Invoice.organisation_id == world.org_a,
                    Invoice.kind == DocumentKind.INVOICE,
                    Invoice.due_on < date(2027, 3, 1),
                )
                .order_by(Invoice.due_on)
            )
        )
        due = sum(invoicing.amounts_due(overdue).values())
        oldest = overdue[0]
    item = _block(main, f"todo-overdue-{world.org_a}")
    assert f"{len(overdue)} invoices are overdue · ¥{due:,}" in item
    assert f"The oldest, {oldest.number}, was due November 20, 2026." in item
    assert "Beta K.K." not in main and "Login failures" not in main
    # Each item leads to its client, whose card has the form to act for it.
    assert f'href="#client-{world.org_a}"' in main
    card = main[main.index(f'id="client-{world.org_a}"') :]
    assert f'action="/partner/clients/{world.org_a}/enter"' in card
    assert 'id="purpose-' + str(world.org_a) + '"' in card


def test_an_agency_sees_its_clients_deadlines_but_no_invoice(shared, fixed_clock, home):
    client = signed_in_client(shared.app, shared.world.emails["agency_agent"])
    response = client.get("/")
    main = _main(response.get_data(as_text=True))
    assert response.status_code == 200
    assert "¥" not in main and "todo-overdue-" not in main
    assert f"todo-deadline-{home.a2}-renewal_notice" in main
    assert f"todo-incident-{home.open_a}" in main


def test_another_partners_agent_never_sees_client_a(shared, fixed_clock, home):
    client = signed_in_client(shared.app, shared.world.emails["other_sales_agent"])
    main = _main(client.get("/").get_data(as_text=True))
    assert "Alpha K.K." not in main and "Upload errors" not in main
    assert f"todo-deadline-{shared.world.contract_b}-request" in main
    assert f"todo-incident-{home.open_b}" in main


@pytest.mark.parametrize(
    ("query", "found"),
    [("alpha", True), ("ALPHA k.k.", True), ("あるふぁ", True), ("ｱﾙﾌｧ", True), ("beta", False)],
)
def test_agents_search_their_clients_by_name_or_kana(shared, fixed_clock, home, query, found):
    app, world = shared.app, shared.world
    client = signed_in_client(app, world.emails["sales_agent"])
    response = client.get("/", query_string={"q": query})
    main = _main(response.get_data(as_text=True))
    assert response.status_code == 200
    assert (f'data-testid="client-{world.org_a}"' in main) is found
    assert (f"todo-deadline-{home.a2}-renewal_notice" in main) is found
    assert "Beta K.K." not in main
    if not found:
        assert "No client matches your search." in main


@pytest.mark.parametrize(
    ("query", "everyone"),
    [("%", False), ("_", False), ("\\", False), ("' OR 1=1 --", False), ("\x00", True)],
)
def test_a_search_of_any_text_answers_without_error(shared, fixed_clock, home, query, everyone):
    """Wildcards are searched for as they are; what cannot be searched for is left out."""
    client = signed_in_client(shared.app, shared.world.emails["sales_agent"])
    response = client.get("/", query_string={"q": query})
    assert response.status_code == 200
    assert ("Alpha K.K." in _main(response.get_data(as_text=True))) is everyone


def test_a_search_too_long_is_refused_next_to_the_field(shared, fixed_clock, home):
    client = signed_in_client(shared.app, shared.world.emails["sales_agent"])
    response = client.get("/", query_string={"q": "x" * 101})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert '<p class="error" id="q-error">Use at most 100 characters.</p>' in page
    assert 'aria-describedby="q-error"' in page
    assert f'data-testid="client-{shared.world.org_a}"' in page  # the page still works


def test_long_lists_show_the_most_urgent_and_say_how_many_more(
    shared, fixed_clock, home, monkeypatch
):
    """Each kind keeps its place: many deadlines never push the overdue invoices off."""
    monkeypatch.setattr(home_service, "SHOWN", 1)
    monkeypatch.setattr(home_service, "INVOICES_SHOWN", 2)
    agent = signed_in_client(shared.app, shared.world.emails["sales_agent"])
    main = _main(agent.get("/").get_data(as_text=True))
    assert _testids(main, "todo-") == [
        f"todo-deadline-{shared.world.contract_a}-request",
        f"todo-overdue-{shared.world.org_a}",
        f"todo-incident-{home.open_a}",
    ]
    assert "1 more item is not shown: search for a client to narrow the list." in main
    _status, page = _get(shared, "admin")
    main = _main(page)
    assert len(_testids(main, "home-invoice-")) == 2
    more = len(_open_invoices(shared.app, shared.world.org_a)) - 2
    assert f"{more} more invoices to pay: see all invoices" in main


# --- the back office ---------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["support", "billing"])
def test_staff_see_their_queues_and_the_requests_of_the_week(shared, fixed_clock, home, actor):
    app, world = shared.app, shared.world
    status, page = _get(shared, actor)
    main = _main(page)
    assert status == 200
    with app.app_context():
        overdue = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Invoice)
            .join(InvoiceState)
            .where(
                Invoice.kind == DocumentKind.INVOICE,
                InvoiceState.status == InvoiceStatus.OPEN,
                Invoice.due_on < date(2027, 3, 1),
            )
        )
    assert overdue >= 6
    counts = {
        "queue-overdue": (overdue, "/staff/invoices/overdue"),
        "queue-claims": (1, "/staff/claims"),
        "queue-mail": (1, "/staff/mail"),
        "queue-misuse": (1, "/staff/misuse-reports"),
        "queue-incidents": (2, "/staff/incidents"),
    }
    for testid, (count, href) in counts.items():
        assert _block(main, f"{testid}-count", "strong") == str(count), testid
        assert f'href="{href}"' in _block_html(main, testid)
    # B's upgrade takes effect on 2027-03-03; A's (03-15) is not this week.
    row = _block(main, f"home-request-{home.upgrade_b}", "tr")
    assert row.startswith("March 3, 2027 Beta K.K.")
    assert f"Contract no. {world.contract_b}" in row and "Upgrade" in row
    assert f'href="/staff/contracts/{world.contract_b}"' in main
    assert f"home-request-{home.upgrade_a}" not in main


def _block_html(page: str, testid: str) -> str:
    start = page.index(f'data-testid="{testid}"')
    return page[start : page.index("</tr>", start)]


def test_anonymous_is_sent_to_sign_in(shared, fixed_clock):
    response = shared.app.test_client().get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/login"


def test_the_page_reads_in_japanese(shared, fixed_clock, home):
    app, world = shared.app, shared.world
    with app.app_context():
        db.session.get(User, world.ids["admin"]).locale = "ja"
        db.session.commit()
    try:
        _status, page = _get(shared, "admin")
    finally:
        with app.app_context():
            db.session.get(User, world.ids["admin"]).locale = "en"
            db.session.commit()
    assert '<html lang="ja">' in page
    assert "2027年3月21日" in _block(_main(page), f"deadline-{home.a2}-renewal_notice")


# --- few statements, whatever the number of rows ------------------------------------------------


def _statements(app, client, path: str = "/") -> int:
    with app.app_context():
        engine = db.engine
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(path).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_the_statement_count_does_not_grow_with_the_rows(shared, fixed_clock, home):
    """One query per kind of thing, never one per contract, request, invoice or client: one
    more contract with a pending cancellation, a usage reading near capacity and an open
    invoice costs every home page no statement more. (Claimable compensation is assessed per
    contract an incident in its claim window touched: this contract started after W-4.)"""
    app, world = shared.app, shared.world
    clients = {
        "admin": signed_in_client(app, world.emails["admin"]),
        "sales_agent": signed_in_client(app, world.emails["sales_agent"]),
        "support": signed_in_client(app, world.emails["support"]),
    }
    before = {actor: _statements(app, client) for actor, client in clients.items()}
    contract_id = add_contract(
        app, world.org_a, service_start=date(2027, 2, 21), partner_id=world.ids["sales_partner"]
    )
    with app.test_request_context():
        db.session.add(
            UsageReading(
                contract_id=contract_id,
                used_gb=49,
                measured_at=datetime(2027, 2, 28, 9, 0, tzinfo=TOKYO),
                source=UsageSource.STAFF,
            )
        )
        request_service.submit(
            _actor(world.ids["admin"]),
            db.session.get(Contract, contract_id),
            Choice(RequestKind.CANCELLATION),
            ip="127.0.0.1",
        )
        db.session.commit()
        assert invoicing.issue_invoices(date(2027, 3, 21)).issued == 2  # A's and B's
    after = {actor: _statements(app, client) for actor, client in clients.items()}
    assert after == before
    page = _main(clients["admin"].get("/").get_data(as_text=True))
    assert f"home-usage-{contract_id}" in page and f"deadline-{contract_id}-request" in page
