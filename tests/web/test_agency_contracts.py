"""R-06 as now read (issue 14, item 1): a contract through an agency has no minimum term and so
no shortfall when it ends (IW 27(3) applies "regardless of article 4"); its calendar shows the
current period, the renewal application due date and the periods granted. The contract page,
the quote page, the API and the stored request agree.

The world's agency contract of org A: S = 2026-11-05, anchor day 21, the ¥25,000 plan
(minimum 12 months as sold), one period granted: 2026-11-21 .. 2027-05-20. The clock is at
2027-03-01.
"""

from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.models import ContractRequest
from tests.factories import become, build_world, quote_form
from tests.web.routes import agency_contract, bearer, make_api_tokens


@pytest.fixture
def world(app):
    return build_world(app)


def _client(app, world, actor: str):
    client = app.test_client()
    become(app, client, world, actor)
    return client


def _testid(page: str, testid: str) -> str | None:
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', page, re.S)
    if match is None:
        return None
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", match.group(2))).strip()


def test_r06_the_contract_page_shows_periods_not_a_minimum_term(app, world, fixed_clock):
    contract_id = agency_contract(app, world)
    page = _client(app, world, "admin").get(f"/contracts/{contract_id}?lang=en")
    html = page.get_data(as_text=True)
    assert _testid(html, "minimum-term-end") is None  # 2027-11-20 was shown before
    assert "None (a contract through an agency)" in _testid(html, "no-minimum-term")
    assert _testid(html, "current-term") == "November 21, 2026 – May 20, 2027"
    assert _testid(html, "agency-periods") == "November 21, 2026 – May 20, 2027"
    assert _testid(html, "agency-renewal-due").startswith("May 20, 2027")


@pytest.mark.parametrize("actor", ["admin", "agency_agent"])
def test_r06_r31_ending_an_agency_contract_owes_no_shortfall_on_the_page(
    app, world, fixed_clock, actor
):
    contract_id = agency_contract(app, world)
    client = _client(app, world, actor)
    html = client.get(f"/contracts/{contract_id}/end?lang=en").get_data(as_text=True)
    assert _testid(html, "quote-termination-on") == "April 20, 2027"
    assert "no minimum term" in _testid(html, "quote-no-minimum-term")
    assert _testid(html, "quote-unexpired-months") is None
    assert _testid(html, "charge-shortfall") is None
    assert "Unexpired months" not in html and "shortfall" not in html.lower()

    # Confirmed, the request stores a quote without a shortfall: nothing will be billed.
    data = {"kind": "cancellation", "on": "2027-04-20", **quote_form(app, contract_id)}
    assert client.post(f"/contracts/{contract_id}/requests", data=data).status_code == 302
    with app.app_context():
        stored = db.session.scalars(
            db.select(ContractRequest).where(ContractRequest.contract_id == contract_id)
        ).one()
        assert stored.quote["charges"] == []
        assert stored.quote["unexpired_months"] == 0
        assert stored.quote["minimum_term_end"] is None


def test_r06_r31_the_api_agrees(app, world, fixed_clock):
    contract_id = agency_contract(app, world)
    tokens = make_api_tokens(app, world)
    client = app.test_client()
    found = client.get(f"/api/v1/contracts/{contract_id}", headers=bearer(tokens, "admin"))
    body = found.get_json()
    assert (body["minimum_months"], body["minimum_term_end"], body["in_minimum_term"]) == (
        None,
        None,
        False,
    )
    assert body["agency_periods"] == [{"start": "2026-11-21", "end": "2027-05-20", "number": 0}]
    quote = client.post(
        f"/api/v1/contracts/{contract_id}/quotes",
        json={"kind": "cancellation"},
        headers=bearer(tokens, "admin"),
    ).get_json()
    assert quote["effective_on"] == "2027-04-20"
    assert quote["unexpired_months"] == 0
    assert quote["minimum_term_end"] is None
    assert quote["charges"] == []
    # The direct contract of W-2 beside it still owes 7 months.
    direct = client.post(
        f"/api/v1/contracts/{world.contract_a}/quotes",
        json={"kind": "cancellation"},
        headers=bearer(tokens, "admin"),
    ).get_json()
    assert direct["unexpired_months"] == 7


def test_r06_migration_0009_takes_the_shortfall_out_of_pending_agency_requests(
    make_app, owner_database_url, fixed_clock
):
    """A cancellation confirmed under the old reading (7 months of shortfall on the agency
    contract) and not yet carried out loses its shortfall, so the monthly run bills nothing; the
    direct contract's pending request keeps its own. The migrations run as the tables' owner,
    as in production (later migrations change the schema on the way down and up)."""
    from flask_migrate import downgrade, upgrade

    app = make_app(MIGRATION_DATABASE_URI=owner_database_url)
    world = build_world(app)

    contract_id = agency_contract(app, world)
    client = _client(app, world, "admin")
    for cid in (contract_id, world.contract_a):
        data = quote_form(app, cid)
        assert client.post(f"/contracts/{cid}/requests", data=data).status_code == 302
    with app.app_context():
        agency_request = db.session.scalars(
            db.select(ContractRequest).where(ContractRequest.contract_id == contract_id)
        ).one()
        direct_request = db.session.scalars(
            db.select(ContractRequest).where(ContractRequest.contract_id == world.contract_a)
        ).one()
        direct_before = dict(direct_request.quote)
        old = dict(agency_request.quote)
        assert old["charges"] == []
        # What the portal stored before this reading: 7 months of the ¥25,000 fee.
        old.update(
            charges=[
                {
                    "kind": "shortfall",
                    "amount": 175_000,
                    "tax_rate_percent": 10,
                    "on_new_contract": False,
                    "months": 7,
                }
            ],
            unexpired_months=7,
            minimum_term_end="2027-11-20",
            invoice_month=direct_before["invoice_month"],
        )
        agency_request.quote = old
        db.session.commit()

        downgrade(revision="0008")
        upgrade()
        db.session.expire_all()
        fixed = db.session.get(ContractRequest, agency_request.id).quote
        assert fixed["charges"] == [] and fixed["total"] == 0
        assert (fixed["unexpired_months"], fixed["minimum_term_end"]) == (0, None)
        assert fixed["invoice_month"] is None
        assert fixed["effective_on"] == "2027-04-20"
        assert db.session.get(ContractRequest, direct_request.id).quote == direct_before
        assert direct_before["unexpired_months"] == 7
