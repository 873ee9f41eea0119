"""Issue 15 (item 3): long lists come by page, and GET /api/v1/contracts by cursor.

Each list shows its first page and the next page has the rest (nothing twice, nothing left
out); a `page` that is not a page (a word, 0, negative, NUL, huge) answers 200 with the first
or the last page, never an error; the controls keep the list's search terms and filters, say
"page N of M" and mark the current page; what a list adds up (the outstanding total R-44, the
given-up e-mails) still counts every row, and the CSV export (R-42) still exports every row.
The page sizes are made small here so that a few rows make several pages.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from portal.clock import TOKYO, clock
from portal.domain.sla import IncidentKind
from portal.extensions import db
from portal.models import (
    Contract,
    Incident,
    MisuseReport,
    Organisation,
    OutboxEmail,
    User,
)
from portal.paging import PAST_THE_END, page_number
from portal.permissions import Actor
from portal.services import accounts, billing, claims, invoicing, mail
from portal.services import contracts as contract_service
from portal.services import incidents as incident_service
from portal.services import organisations as organisation_service
from portal.services.incidents import IncidentFacts
from tests.factories import add_contract, add_organisation, build_world, signed_in_client
from tests.web.routes import bearer, make_api_tokens

API = "/api/v1"
# What a `page` may be that is not a page: each answers 200 with page 1 ...
NOT_A_PAGE = ["abc", "0", "-1", "1.5", "", " ", "\x00", "1\x00", "２", "0x2", "+2", "1e3"]
# ... or, past the end, with the last page.
PAST_THE_LAST = ["3", "999", "2147483648", "99999999999999999999999999999999"]


@pytest.fixture
def world(app):
    return build_world(app)


def _text(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def _ids(page: str, testid: str) -> list[int]:
    return [int(n) for n in re.findall(rf'data-testid="{testid}-(\d+)"', page)]


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)" rel="{rel}">', page)
    return unescape(found.group(1)) if found else None


def _page_of(page: str) -> str:
    found = re.search(r'data-testid="pager-page">([^<]*)<', page)
    return found.group(1) if found else ""


def _walk(client, url: str, testid: str) -> list[list[int]]:
    """Every page of a list, following its "next" links from `url`."""
    pages = []
    while url:
        page = _text(client.get(url))
        pages.append(_ids(page, testid))
        url = _link(page, "next")
        assert len(pages) < 20
    return pages


def _at(day: date) -> None:
    clock.set(datetime.combine(day, time(10), TOKYO))


# --- the page number -------------------------------------------------------------------------


@pytest.mark.parametrize("raw", NOT_A_PAGE)
def test_anything_but_a_plain_whole_number_is_the_first_page(raw):
    assert page_number({"page": raw}) == 1
    assert page_number({}) == 1


def test_a_page_number_too_long_for_a_page_is_past_the_end():
    assert page_number({"page": "7"}) == 7
    assert page_number({"page": " 0012 "}) == 12
    assert page_number({"page": "1" * 10}) == PAST_THE_END
    assert page_number({"page": "9" * 400}) == PAST_THE_END


# --- the customer's contracts ----------------------------------------------------------------


@pytest.fixture
def many_contracts(app, world) -> list[int]:
    """A has 25 contracts (a page takes 20); several start on the same day (the id decides)."""
    for n in range(24):
        add_contract(app, world.org_a, service_start=date(2026, 12, 1) + timedelta(days=n % 3))
    with app.app_context():
        found = db.session.scalars(
            sa.select(Contract.id)
            .where(Contract.organisation_id == world.org_a)
            .order_by(Contract.status, Contract.service_start, Contract.id)
        )
        return list(found)


def test_contracts_come_twenty_a_page_each_once(app, world, many_contracts):
    assert contract_service.CONTRACTS_PER_PAGE == 20
    admin = signed_in_client(app, world.emails["admin"])
    first = _text(admin.get("/contracts"))
    assert _ids(first, "contract") == many_contracts[:20]
    assert _page_of(first) == "page 1 of 2" and "Showing 1–20 of 25" in first
    assert 'aria-current="page">1<' in first and _link(first, "prev") is None
    assert _link(first, "next") == "/contracts?page=2"
    second = _text(admin.get("/contracts?page=2"))
    assert _ids(second, "contract") == many_contracts[20:]
    assert "Showing 21–25 of 25" in second and _link(second, "next") is None
    assert _link(second, "prev") == "/contracts?page=1"
    # The pages are a labelled navigation (several lists' pages are told apart by name).
    assert '<nav class="pager" aria-label="Pages: Contracts"' in first


@pytest.mark.parametrize("raw", NOT_A_PAGE)
def test_contracts_with_a_page_that_is_not_a_page_show_the_first(app, world, many_contracts, raw):
    admin = signed_in_client(app, world.emails["admin"])
    page = _text(admin.get("/contracts", query_string={"page": raw}))
    assert _ids(page, "contract") == many_contracts[:20]


@pytest.mark.parametrize("raw", PAST_THE_LAST)
def test_contracts_past_the_last_page_show_the_last(app, world, many_contracts, raw):
    admin = signed_in_client(app, world.emails["admin"])
    page = _text(admin.get("/contracts", query_string={"page": raw}))
    assert _ids(page, "contract") == many_contracts[20:]
    assert _page_of(page) == "page 2 of 2"


def test_a_short_list_has_no_page_controls(app, world):
    admin = signed_in_client(app, world.emails["admin"])
    page = _text(admin.get("/contracts"))
    assert _ids(page, "contract") == [world.contract_a]
    assert 'data-testid="pager"' not in page


def test_the_pages_are_in_japanese_too(app, world, many_contracts):
    with app.app_context():
        db.session.get(User, world.ids["admin"]).locale = "ja"
        db.session.commit()
    admin = signed_in_client(app, world.emails["admin"])
    page = _text(admin.get("/contracts?page=2"))
    assert "2ページ中2ページ目" in page and "前のページ" in page


# --- the customer's invoices (R-44) ----------------------------------------------------------


INVOICE_RUNS = (date(2026, 11, 5), date(2026, 11, 21), date(2026, 12, 21), date(2027, 1, 21))


@pytest.fixture
def invoices(app, world) -> None:
    """A's and B's invoices of four runs (each organisation: four, all open)."""
    for day in INVOICE_RUNS:
        _at(day)
        with app.app_context():
            invoicing.issue_invoices(day)
    _at(date(2027, 3, 1))


def _numbers(page: str) -> list[str]:
    return re.findall(r'data-testid="invoice-((?:INV|CRN)-\d+)"', page)


def _outstanding(page: str) -> str:
    return re.search(r'data-testid="outstanding-total">([^<]*)<', page).group(1)


def test_r44_invoices_by_page_with_the_whole_outstanding_total(app, world, invoices, monkeypatch):
    admin = signed_in_client(app, world.emails["admin"])
    whole = _text(admin.get("/invoices"))
    everything, total = _numbers(whole), _outstanding(whole)
    assert len(everything) == 4 and 'data-testid="pager"' not in whole

    monkeypatch.setattr(billing, "DOCUMENTS_PER_PAGE", 3)
    first = _text(admin.get("/invoices"))
    second = _text(admin.get(_link(first, "next")))
    assert _numbers(first) == everything[:3] and _numbers(second) == everything[3:]
    # what is owed counts the open invoices of every page, not only those shown.
    assert _outstanding(first) == _outstanding(second) == total


# --- notices (R-61) ---------------------------------------------------------------------------


def test_r61_notices_are_counted_as_notices_not_e_mails(app, world, monkeypatch):
    monkeypatch.setattr(mail, "NOTICES_PER_PAGE", 2)
    with app.test_request_context():
        organisation = db.session.get(Organisation, world.org_a)
        for n in range(5):
            context = {"changes": [], "changed_by": f"Admin {n}", "changed_at": clock.now()}
            # The first notice goes to two addresses: still one notice, one row.
            to = ["billing@alpha.example", "admin@alpha.example"] if n == 0 else None
            mail.notify_organisation(organisation, "information_changed", context=context, to=to)
        db.session.commit()
    admin = signed_in_client(app, world.emails["admin"])
    pages = _walk(admin, "/notices", "notice")
    assert [len(p) for p in pages] == [2, 2, 1]
    listed = [n for p in pages for n in p]
    assert len(set(listed)) == 5 and listed == sorted(listed, reverse=True)  # newest first
    assert "Showing 5–5 of 5" in _text(admin.get("/notices?page=99"))


# --- the staff's lists ------------------------------------------------------------------------


def test_organisation_search_by_page_keeps_the_search(app, world, monkeypatch):
    monkeypatch.setattr(organisation_service, "ORGANISATIONS_PER_PAGE", 2)
    with app.app_context():
        for name in ("Gamma K.K.", "Delta K.K.", "Epsilon Co."):
            add_organisation(name, name.split()[0].lower() + ".example")
        db.session.commit()
    staff = signed_in_client(app, world.emails["support"])
    first = _text(staff.get("/staff/organisations", query_string={"q": "k.k."}))
    assert "q=k.k." in _link(first, "next") and "page=2" in _link(first, "next")
    pages = _walk(staff, "/staff/organisations?q=k.k.", "organisation")
    assert [len(p) for p in pages] == [2, 2]
    with app.app_context():
        kk = set(
            db.session.scalars(
                sa.select(Organisation.id).where(Organisation.legal_name.like("%K.K."))
            )
        )
    assert {n for p in pages for n in p} == kk  # Epsilon Co. does not match
    # The live search swaps the rows with their pages, the search kept.
    fragment = _text(
        staff.get("/staff/organisations?q=k.k.&page=2", headers={"HX-Request": "true"})
    )
    assert (
        "<html" not in fragment and _link(fragment, "prev") == "/staff/organisations?q=k.k.&page=1"
    )
    for raw in (*NOT_A_PAGE, *PAST_THE_LAST):
        assert (
            staff.get("/staff/organisations", query_string={"q": "k.k.", "page": raw}).status_code
            == 200
        )


@pytest.fixture
def overdue(app, world, invoices) -> list[str]:
    """The overdue invoices on 2027-03-01, the longest overdue first."""
    with app.app_context():
        return [row.invoice.number for row in billing.overdue_page(clock.today(), 1)]


def test_r33_overdue_invoices_by_page_and_a_reminder_returns_to_its_page(
    app, world, overdue, monkeypatch
):
    assert len(overdue) >= 5
    monkeypatch.setattr(billing, "OVERDUE_PER_PAGE", 2)
    staff = signed_in_client(app, world.emails["billing"])
    pages = []
    url = "/staff/invoices/overdue"
    while url:
        page = _text(staff.get(url))
        pages.append(re.findall(r'data-testid="overdue-(INV-\d+)"', page))
        url = _link(page, "next")
    assert [n for p in pages for n in p] == overdue and all(len(p) == 2 for p in pages[:-1])

    second = _text(staff.get("/staff/invoices/overdue?page=2"))
    form = re.search(r'<form method="post" action="([^"]+)">', second).group(1)
    assert form.endswith("?page=2")
    sent = staff.post(unescape(form))
    assert sent.status_code == 302 and sent.headers["Location"] == "/staff/invoices/overdue?page=2"


def test_r42_the_search_pages_keep_the_criteria_and_the_csv_has_every_row(
    app, world, invoices, monkeypatch
):
    monkeypatch.setattr(billing, "PER_PAGE", 2)
    staff = signed_in_client(app, world.emails["billing"])
    query = {"counterparty": "alpha", "kind": "invoice"}
    first = _text(staff.get("/staff/invoices", query_string=query))
    next_url = _link(first, "next")
    assert "counterparty=alpha" in next_url and "kind=invoice" in next_url
    seen = re.findall(r'data-testid="row-(INV-\d+)"', first)
    second = _text(staff.get(next_url))
    seen += re.findall(r'data-testid="row-(INV-\d+)"', second)
    assert len(seen) == len(set(seen)) == 4
    # The CSV is a download, not a page: every matching document, whatever the page size.
    exported = staff.get("/staff/invoices.csv", query_string=query)
    reader = csv.DictReader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff")))
    assert sorted(row["number"] for row in reader) == sorted(seen)
    everything = staff.get("/staff/invoices.csv").get_data(as_text=True).lstrip("\ufeff")
    assert len(list(csv.DictReader(io.StringIO(everything)))) == 8  # A's and B's


def test_r61_given_up_e_mails_by_page_all_of_them_counted(app, world, monkeypatch):
    monkeypatch.setattr(mail, "GIVEN_UP_PER_PAGE", 2)
    with app.test_request_context():
        organisation = db.session.get(Organisation, world.org_a)
        for n in range(5):
            context = {"changes": [], "changed_by": f"Admin {n}", "changed_at": clock.now()}
            mail.notify_organisation(organisation, "information_changed", context=context)
        db.session.execute(sa.update(OutboxEmail).values(failed_at=clock.now(), attempts=16))
        db.session.commit()
    staff = signed_in_client(app, world.emails["support"])
    counts = []
    url = "/staff/mail"
    while url:
        page = _text(staff.get(url))
        assert re.search(r'data-testid="given-up">5<', page)  # all of them, on every page
        counts.append(page.count('data-testid="given-up-row"'))
        url = _link(page, "next")
    assert counts == [2, 2, 1]


def _actor(user_id: int) -> Actor:
    return Actor(db.session.get(User, user_id))


def _incident(world, title: str, start: datetime, hours: int | None) -> int:
    end = start + timedelta(hours=hours) if hours else None
    facts = IncidentFacts(
        kind=IncidentKind.OUTAGE,
        title_ja=title,
        title_en=title,
        service_ids=(world.ids["service_image_works"],),
        organisation_ids=(),
        started_at=start,
        ended_at=end,
        occurrence_announced_at=start + timedelta(minutes=20) if end else None,
        recovery_announced_at=end + timedelta(minutes=30) if end else None,
    )
    return incident_service.record(_actor(world.ids["support"]), facts).id


def test_r50_ended_incidents_by_page_the_ongoing_always_shown(app, world, monkeypatch):
    monkeypatch.setattr(incident_service, "ENDED_PER_PAGE", 2)
    with app.test_request_context():
        ended = [
            _incident(world, f"Ended {n}", datetime(2027, 2, 1 + n, 9, tzinfo=TOKYO), 3)
            for n in range(3)
        ]
        ongoing = _incident(world, "Ongoing", datetime(2027, 2, 28, 9, tzinfo=TOKYO), None)
        db.session.commit()
    staff = signed_in_client(app, world.emails["support"])
    links = re.compile(r'href="/staff/incidents/(\d+)"')
    first = _text(staff.get("/staff/incidents"))
    second = _text(staff.get(_link(first, "next")))
    assert [int(n) for n in links.findall(first)] == [ongoing, ended[2], ended[1]]
    assert [int(n) for n in links.findall(second)] == [ongoing, ended[0]]


def test_r52_claims_by_page_keep_their_status_filter(app, world, monkeypatch):
    monkeypatch.setattr(claims, "CLAIMS_PER_PAGE", 1)
    with app.test_request_context():
        incident = _incident(world, "Outage", datetime(2027, 2, 3, 9, tzinfo=TOKYO), 30)
        db.session.commit()
        found = db.session.get(Incident, incident)
        for who, contract in (("admin", world.contract_a), ("other_admin", world.contract_b)):
            claims.file(_actor(world.ids[who]), db.session.get(Contract, contract), found)
        db.session.commit()
    staff = signed_in_client(app, world.emails["support"])
    first = _text(staff.get("/staff/claims", query_string={"status": "all"}))
    assert "status=all" in _link(first, "next") and _page_of(first) == "page 1 of 2"
    second = _text(staff.get(_link(first, "next")))
    assert _page_of(second) == "page 2 of 2"
    claim_link = re.compile(r'href="/staff/claims/(\d+)"')
    assert len(set(claim_link.findall(first) + claim_link.findall(second))) == 2


def test_r63_misuse_reports_by_page_handled_from_its_page(app, world, monkeypatch):
    monkeypatch.setattr(accounts, "MISUSE_REPORTS_PER_PAGE", 2)
    with app.app_context():
        for n in range(5):
            db.session.add(
                MisuseReport(
                    user_id=world.ids["member"],
                    organisation_id=world.org_a,
                    reported_at=datetime(2027, 2, 1, tzinfo=UTC) + timedelta(hours=n),
                    details=f"report {n}",
                )
            )
        db.session.commit()
    staff = signed_in_client(app, world.emails["support"])
    pages = _walk(staff, "/staff/misuse-reports", "misuse-report")
    assert [len(p) for p in pages] == [2, 2, 1]
    listed = [n for p in pages for n in p]
    assert len(set(listed)) == 5 and listed == sorted(listed, reverse=True)

    # Handled from page 2: asked first, then back to page 2.
    report = pages[1][0]
    url = f"/staff/misuse-reports/{report}/handled?page=2"
    asked = _text(staff.post(url, data={"note": "Called the customer."}))
    assert f'action="/staff/misuse-reports/{report}/handled?page=2"' in asked
    done = staff.post(url, data={"note": "Called the customer.", "confirmed": "yes"})
    assert done.headers["Location"] == "/staff/misuse-reports?page=2"
    # A refused note is shown on the page it was written on, with that page's reports.
    refused = staff.post(f"/staff/misuse-reports/{pages[1][1]}/handled?page=2", data={"note": " "})
    assert refused.status_code == 422
    assert pages[1][1] in _ids(refused.get_data(as_text=True), "misuse-report")
    assert _link(refused.get_data(as_text=True), "prev") == "/staff/misuse-reports?page=1"


def test_query_parameters_named_like_url_fors_own_are_not_kept(app, world, many_contracts):
    admin = signed_in_client(app, world.emails["admin"])
    query = {"_scheme": "x", "_external": "1", "_anchor": "y", "endpoint": "z", "q": "kept"}
    page = _text(admin.get("/contracts", query_string=query))
    assert _link(page, "next") == "/contracts?q=kept&page=2"


@pytest.mark.parametrize(
    ("actor", "path"),
    [
        ("admin", "/contracts"),
        ("admin", "/invoices"),
        ("admin", "/notices"),
        ("admin", "/organisation/history"),
        ("support", "/staff/organisations"),
        ("billing", "/staff/invoices"),
        ("billing", "/staff/invoices/overdue"),
        ("support", "/staff/mail"),
        ("support", "/staff/incidents"),
        ("support", "/staff/claims"),
        ("support", "/staff/misuse-reports"),
    ],
)
def test_every_paged_list_answers_any_page_calmly(app, world, actor, path):
    client = signed_in_client(app, world.emails[actor])
    for raw in (*NOT_A_PAGE, *PAST_THE_LAST):
        response = client.get(path, query_string={"page": raw})
        assert response.status_code == 200, (path, raw, response.status_code)


# --- GET /api/v1/contracts by cursor ----------------------------------------------------------


@pytest.fixture
def tokens(app, world) -> dict[str, str]:
    return make_api_tokens(app, world)


def _api(app, tokens, actor: str, **query):
    return app.test_client().get(
        f"{API}/contracts", query_string=query, headers=bearer(tokens, actor)
    )


def _api_walk(app, tokens, actor: str, limit: int) -> list[int]:
    seen: list[int] = []
    cursor = None
    for _ in range(50):
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = _api(app, tokens, actor, **query).get_json()
        assert len(body["contracts"]) <= limit
        seen += [c["id"] for c in body["contracts"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the cursor never ended")


@pytest.fixture
def spread(app, world) -> None:
    """Contracts for A and B, several starting on one day (the id decides among them)."""
    for n in range(6):
        org = world.org_a if n % 2 else world.org_b
        add_contract(app, org, service_start=date(2026, 12, 1) + timedelta(days=n // 3))


def _all_in_order(app, *where) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                sa.select(Contract.id)
                .where(*where)
                .order_by(Contract.organisation_id, Contract.service_start, Contract.id)
            )
        )


@pytest.mark.parametrize("limit", [1, 2, 3, 100])
def test_the_api_cursor_walks_every_contract_once(app, world, tokens, spread, limit):
    assert _api_walk(app, tokens, "support", limit) == _all_in_order(app)  # staff: every one
    mine = _all_in_order(app, Contract.organisation_id == world.org_a)
    assert _api_walk(app, tokens, "admin", limit) == mine  # A's only


def test_the_api_list_keeps_its_shape_fifty_by_default(app, world, tokens, spread):
    body = _api(app, tokens, "support").get_json()
    assert [c["id"] for c in body["contracts"]] == _all_in_order(app)
    assert body["next_cursor"] is None
    for _ in range(50):
        add_contract(app, world.org_b, service_start=date(2027, 1, 1))
    body = _api(app, tokens, "support").get_json()
    assert len(body["contracts"]) == 50 and body["next_cursor"]


def test_contracts_added_during_a_walk_never_repeat_or_hide_another(app, world, tokens, spread):
    before = _all_in_order(app)
    first = _api(app, tokens, "support", limit=4).get_json()
    # A contract that sorts before the cursor, and one after it.
    early = add_contract(app, world.org_a, service_start=date(2026, 1, 1))
    late = add_contract(app, world.org_b, service_start=date(2030, 1, 1))
    seen = [c["id"] for c in first["contracts"]]
    cursor = first["next_cursor"]
    while cursor:
        body = _api(app, tokens, "support", limit=4, cursor=cursor).get_json()
        seen += [c["id"] for c in body["contracts"]]
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen))
    assert [n for n in seen if n not in (early, late)] == before and late in seen


@pytest.mark.parametrize("limit", ["0", "101", "-1", "1.5", "abc", "", "9" * 30, "\x00", "５"])
def test_a_limit_out_of_bounds_is_a_bad_request(app, world, tokens, limit):
    response = _api(app, tokens, "admin", limit=limit)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "limit"


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("cursor", "status"),
    [
        ("", 400),
        ("not a cursor!", 400),
        ("a" * 65, 400),
        ("\x00", 400),
        ("abc", 422),  # in the alphabet, not one the API made
        ("A", 422),
        (_cursor("v1.1.2026-13-01.1"), 422),
        (_cursor("v1.1.2026-12-01.99999999999"), 422),  # beyond the database's integers
        (_cursor("v1.0.2026-12-01.1"), 422),
        (_cursor("v2.1.2026-12-01.1"), 422),
        (_cursor("v1.1.2026-12-01"), 422),
    ],
)
def test_a_cursor_the_api_did_not_make_is_refused(app, world, tokens, cursor, status):
    response = _api(app, tokens, "admin", cursor=cursor)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["field"] == "cursor"
    assert error["code"] == ("bad_request" if status == 400 else "invalid_cursor")


def test_a_made_up_cursor_moves_only_within_what_the_user_sees(app, world, tokens, spread):
    # Positioned before everything: A's administrator still gets A's contracts only.
    body = _api(app, tokens, "admin", cursor=_cursor("v1.1.2000-01-01.1")).get_json()
    assert [c["id"] for c in body["contracts"]] == _all_in_order(
        app, Contract.organisation_id == world.org_a
    )
    past = _api(app, tokens, "admin", cursor=_cursor("v1.2147483647.2099-01-01.1")).get_json()
    assert past == {"contracts": [], "next_cursor": None}


def test_the_openapi_document_describes_the_cursor(app):
    document = app.test_client().get(f"{API}/openapi.json").get_json()
    operation = document["paths"]["/contracts"]["get"]
    parameters = {p["name"]: p for p in operation["parameters"]}
    assert parameters["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 50,
    }
    assert parameters["cursor"]["in"] == "query" and "pattern" in parameters["cursor"]["schema"]
    assert {"200", "400", "401", "422"} <= set(operation["responses"])
    listed = document["components"]["schemas"]["ContractList"]
    assert set(listed["required"]) == {"contracts", "next_cursor"}
    assert listed["properties"]["next_cursor"]["type"] == ["string", "null"]
