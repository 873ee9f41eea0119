"""The JSON API under /api/v1: bearer tokens, quotes (W-2, W-3), requests, usage, OpenAPI.

Who may call what is in test_permission_matrix (API rows); here is what the answers say.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from portal.models import (
    ApiToken,
    AuditEvent,
    Contract,
    ContractRequest,
    ContractStatus,
    Plan,
    PriceList,
    RequestStatus,
    Service,
    UsageReading,
    User,
)
from portal.permissions import Actor
from portal.services import api_tokens
from tests.factories import add_contract, add_plan, build_world, rows, sign_in, snapshot
from tests.web.routes import bearer, make_api_tokens

API = "/api/v1"
MISSING_ID = 987_654
# A refused or read-only call may note the token's last use, and nothing else.
UNTOUCHED = ("api_tokens",)


@pytest.fixture
def world(app):
    return build_world(app)


@pytest.fixture
def tokens(app, world) -> dict[str, str]:
    return make_api_tokens(app, world)


@pytest.fixture
def call(app, tokens):
    """call(actor, method, path, json=None, headers=None): one API request as that actor."""

    def request(
        actor: str,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ):
        return app.test_client().open(
            API + path,
            method=method,
            json=json,
            headers={**bearer(tokens, actor), **(headers or {})},
        )

    return request


def _error(response) -> dict[str, Any]:
    return response.get_json()["error"]


def _requests(app: Flask) -> list[ContractRequest]:
    return rows(app, ContractRequest)


def _audit_actions(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


# --- quotes: the worked examples --------------------------------------------------------


def test_w2_cancellation_quote_changes_nothing(app, world, call):
    """W-2: notice on 2027-03-01 ends W-1's contract on 2027-04-20 with 7 unexpired months:
    shortfall ¥350,000, tax ¥35,000, total ¥385,000 (R-30, R-31, R-32)."""
    before = snapshot(app, skip=UNTOUCHED)

    response = call(
        "admin", "POST", f"/contracts/{world.contract_a}/quotes", {"kind": "cancellation"}
    )

    assert response.status_code == 200, response.get_json()
    quote = response.get_json()
    assert quote["kind"] == "cancellation"
    assert quote["notice_on"] == "2027-03-01"
    assert quote["effective_on"] == "2027-04-20"
    assert quote["unexpired_months"] == 7
    assert quote["minimum_term_end"] == "2027-11-20"
    assert [(c["kind"], c["amount"], c["months"]) for c in quote["charges"]] == [
        ("shortfall", 350_000, 7)
    ]
    assert quote["subtotal"] == 350_000
    assert quote["tax_total"] == 35_000
    assert quote["total"] == 385_000
    assert quote["invoice_month"]["name"] == "2027-05"  # issued 2027-04-21
    assert quote["amounts_included"] is True
    assert quote["current_plan"]["code"] == "iw-50"
    assert quote["target_plan"] is None
    assert snapshot(app, skip=UNTOUCHED) == before


def test_w2_with_the_dates_given_explicitly_is_the_same_quote(app, world, call):
    url = f"/contracts/{world.contract_a}/quotes"
    earliest = call("admin", "POST", url, {"kind": "cancellation"}).get_json()
    explicit = call(
        "admin",
        "POST",
        url,
        {"kind": "cancellation", "date": "2027-04-20", "notice_on": "2027-03-01"},
    ).get_json()
    assert explicit == earliest
    # A later month end leaves fewer months of the minimum term (R-30: the customer may pick).
    later = call("admin", "POST", url, {"kind": "cancellation", "date": "2027-06-20"}).get_json()
    assert (later["unexpired_months"], later["total"]) == (5, 275_000)


def test_w3_upgrade_quote_for_a_future_notice_date(app, world, call):
    """W-3 in the future: notice 2027-03-05, effective 2027-03-15 (exactly 10 days, R-20):
    ¥50,000 initial fee difference + ¥5,000 change fee; ¥100,000 a month from billing month
    "2027-04" (2027-03-21 .. 2027-04-20), the month after the change (R-21)."""
    before = snapshot(app, skip=UNTOUCHED)
    body = {
        "kind": "upgrade",
        "plan_id": world.ids["plan_large"],
        "notice_on": "2027-03-05",
        "date": "2027-03-15",
    }

    response = call("admin", "POST", f"/contracts/{world.contract_a}/quotes", body)

    assert response.status_code == 200, response.get_json()
    quote = response.get_json()
    assert (quote["notice_on"], quote["effective_on"]) == ("2027-03-05", "2027-03-15")
    assert quote["earliest_effective_on"] == "2027-03-15"
    assert {c["kind"]: c["amount"] for c in quote["charges"]} == {
        "initial_fee_difference": 50_000,
        "change_fee": 5_000,
    }
    assert quote["subtotal"] == 55_000
    assert quote["tax_total"] == 5_500
    assert quote["new_monthly_fee"] == 100_000
    assert quote["new_fee_from"] == {"name": "2027-04", "start": "2027-03-21", "end": "2027-04-20"}
    assert quote["minimum_term_end"] == "2027-11-20"  # R-21 reading: not restarted
    assert quote["target_plan"]["name"] == "100 GB"
    assert quote["current_plan"]["name"] == "50 GB"
    assert snapshot(app, skip=UNTOUCHED) == before

    # Nine days is one too few.
    short = call(
        "admin", "POST", f"/contracts/{world.contract_a}/quotes", {**body, "date": "2027-03-14"}
    )
    assert short.status_code == 422
    assert (_error(short)["code"], _error(short)["field"]) == ("inside_lead_time", "date")


def test_a_notice_date_in_the_past_is_refused(app, world, call):
    """W-3's own dates (notice 2027-01-05) lie before today (2027-03-01): no quote."""
    response = call(
        "admin",
        "POST",
        f"/contracts/{world.contract_a}/quotes",
        {
            "kind": "upgrade",
            "plan_id": world.ids["plan_large"],
            "notice_on": "2027-01-05",
            "date": "2027-01-15",
        },
    )
    assert response.status_code == 422
    assert (_error(response)["code"], _error(response)["field"]) == ("notice_in_past", "notice_on")


# --- requests: submit, the second one, withdraw -------------------------------------------


def test_submit_then_again_then_withdraw_twice(app, world, call):
    """R-20/R-32: the request is kept with its quote, marked as sent through the API; R-23:
    one pending at a time, withdrawn once."""
    url = f"/contracts/{world.contract_a}/requests"

    created = call("admin", "POST", url, {"kind": "cancellation"}, {"User-Agent": "erp-sync/1"})

    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert (
        created.headers["Location"] == f"{API}/contracts/{world.contract_a}/requests/{body['id']}"
    )
    assert body["reference"] == f"R-{body['id']:06d}"
    assert (body["kind"], body["status"]) == ("cancellation", "pending")
    assert (body["notice_on"], body["effective_on"]) == ("2027-03-01", "2027-04-20")
    assert body["quote"]["total"] == 385_000
    assert body["requested_at"] == "2027-03-01T10:00:00+09:00"
    assert body["requested_by"] == {"id": world.ids["admin"], "name": "admin"}
    assert body["via_api"] is True
    assert body["can_withdraw"] is True
    (stored,) = _requests(app)
    assert stored.via_api and stored.user_agent == "erp-sync/1"
    assert stored.requested_by_id == world.ids["admin"]
    assert "request.submitted" in _audit_actions(app)

    before = snapshot(app, skip=UNTOUCHED)
    again = call("admin", "POST", url, {"kind": "cancellation"})
    assert again.status_code == 409
    assert _error(again)["code"] == "pending_request"
    assert snapshot(app, skip=UNTOUCHED) == before

    listed = call("member", "GET", url).get_json()["requests"]
    assert [r["id"] for r in listed] == [body["id"]]
    assert listed[0]["can_withdraw"] is False  # members see it but may not withdraw it
    one = call("member", "GET", f"{url}/{body['id']}").get_json()
    assert one["quote"] == body["quote"]
    summary = call("admin", "GET", f"/contracts/{world.contract_a}").get_json()["pending_request"]
    assert summary == {
        "id": body["id"],
        "reference": body["reference"],
        "kind": "cancellation",
        "notice_on": "2027-03-01",
        "effective_on": "2027-04-20",
    }

    withdrawn = call("admin", "POST", f"{url}/{body['id']}/withdraw")
    assert withdrawn.status_code == 200
    assert withdrawn.get_json()["status"] == "withdrawn"
    assert withdrawn.get_json()["withdrawn_at"] == "2027-03-01T10:00:00+09:00"
    (stored,) = _requests(app)
    assert stored.status == RequestStatus.WITHDRAWN
    assert stored.withdrawn_by_id == world.ids["admin"]

    before = snapshot(app, skip=UNTOUCHED)
    twice = call("admin", "POST", f"{url}/{body['id']}/withdraw")
    assert twice.status_code == 409
    assert _error(twice)["code"] == "not_withdrawable"
    assert snapshot(app, skip=UNTOUCHED) == before
    assert _audit_actions(app).count("request.withdrawn") == 1

    # Withdrawn, the contract takes a new request.
    assert call("admin", "POST", url, {"kind": "cancellation"}).status_code == 201


def test_an_agent_submits_for_its_client(app, world, call):
    """R-71: the sales agent assigned to A requests for A; the request names the agent."""
    response = call(
        "sales_agent",
        "POST",
        f"/contracts/{world.contract_a}/requests",
        {"kind": "upgrade", "plan_id": world.ids["plan_large"], "date": "2027-03-21"},
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["requested_by"]["id"] == world.ids["sales_agent"]
    assert body["effective_on"] == "2027-03-21"
    assert body["quote"]["target_plan"]["code"] == "iw-100"


@pytest.mark.parametrize("actor", ["member", "support", "billing"])
def test_members_and_staff_may_not_submit_or_withdraw(app, world, call, actor):
    """R-70: members see but do not request; R-72: staff neither."""
    url = f"/contracts/{world.contract_a}/requests"
    before = snapshot(app, skip=UNTOUCHED)
    refused = call(actor, "POST", url, {"kind": "cancellation"})
    assert refused.status_code == 403
    assert _error(refused)["code"] == "forbidden"
    assert snapshot(app, skip=UNTOUCHED) == before

    pending = call("admin", "POST", url, {"kind": "cancellation"}).get_json()
    before = snapshot(app, skip=UNTOUCHED)
    assert call(actor, "POST", f"{url}/{pending['id']}/withdraw").status_code == 403
    assert snapshot(app, skip=UNTOUCHED) == before


# --- refusals by the rules: 422 with code and field, nothing stored ---------------------


def _extra_plans(app: Flask, world) -> dict[str, int]:
    """A plan of another service (I-NET SERVICE), and a dearer IMAGE WORKS plan not sold."""
    with app.app_context():
        inet = db.session.scalar(sa.select(Service).where(Service.code == "inet"))
        prices = PriceList(service=inet, version=1, effective_from=date(2026, 1, 1), change_fee=0)
        other = Plan(
            price_list=prices,
            code="inet-std",
            name_ja="標準",
            name_en="Standard",
            capacity_gb=None,
            monthly_fee=200_000,
            minimum_months=1,
        )
        db.session.add_all([prices, other])
        db.session.commit()
        other_id = other.id
    retired = add_plan(app, world, code="iw-200", fee=180_000, capacity=200, sold=False)
    return {"other_service": other_id, "not_sold": retired}


REFUSALS = [
    # (name, body, code, field)
    (
        "inside the 10-day lead time",
        {"kind": "upgrade", "plan": "large", "date": "2027-03-10"},
        "inside_lead_time",
        "date",
    ),
    ("not a month end", {"kind": "cancellation", "date": "2027-04-15"}, "not_month_end", "date"),
    (
        "before the earliest month end",
        {"kind": "cancellation", "date": "2027-03-20"},
        "termination_too_early",
        "date",
    ),
    ("a dearer downgrade", {"kind": "downgrade", "plan": "large"}, "not_a_downgrade", "plan_id"),
    ("the same plan", {"kind": "upgrade", "plan": "small"}, "same_plan", "plan_id"),
    (
        "a plan of another service",
        {"kind": "upgrade", "plan": "other_service"},
        "plan_not_offered",
        "plan_id",
    ),
    ("a plan no longer sold", {"kind": "upgrade", "plan": "not_sold"}, "plan_not_sold", "plan_id"),
    ("an upgrade without a plan", {"kind": "upgrade"}, "plan_required", "plan_id"),
    ("an unknown kind", {"kind": "refund"}, "unknown_kind", "kind"),
    ("a date that is none", {"kind": "cancellation", "date": "2027-02-30"}, "bad_date", "date"),
]


@pytest.mark.parametrize("endpoint", ["quotes", "requests"])
@pytest.mark.parametrize(
    ("body", "code", "field"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refusals_answer_422_with_code_and_field_and_store_nothing(
    app, world, call, endpoint, body, code, field
):
    plans = {"large": world.ids["plan_large"], "small": world.ids["plan_small"]}
    plans.update(_extra_plans(app, world))
    sent = {k: v for k, v in body.items() if k != "plan"}
    if "plan" in body:
        sent["plan_id"] = plans[body["plan"]]
    before = snapshot(app, skip=UNTOUCHED)

    response = call("admin", "POST", f"/contracts/{world.contract_a}/{endpoint}", sent)

    assert response.status_code == 422, response.get_json()
    error = _error(response)
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"] and error["message"] != code
    assert snapshot(app, skip=UNTOUCHED) == before


@pytest.mark.parametrize("endpoint", ["quotes", "requests"])
def test_an_ended_contract_takes_no_request(app, world, call, endpoint):
    ended = add_contract(app, world.org_a, service_start=date(2025, 1, 5))
    with app.app_context():
        contract = db.session.get(Contract, ended)
        contract.status, contract.ended_on = ContractStatus.ENDED, date(2026, 1, 20)
        db.session.commit()
    before = snapshot(app, skip=UNTOUCHED)

    response = call("admin", "POST", f"/contracts/{ended}/{endpoint}", {"kind": "cancellation"})

    assert response.status_code == 422
    assert (_error(response)["code"], _error(response)["field"]) == ("contract_ended", None)
    assert "2026" in _error(response)["message"]
    assert snapshot(app, skip=UNTOUCHED) == before
    listed = call("admin", "GET", "/contracts").get_json()["contracts"]
    (shown,) = [c for c in listed if c["id"] == ended]
    assert (shown["status"], shown["ended_on"], shown["request_kinds"]) == (
        "ended",
        "2026-01-20",
        [],
    )


BAD_BODIES = [
    # (name, keyword arguments of the request, field)
    ("a form, not JSON", {"data": {"kind": "cancellation"}}, None),
    ("broken JSON", {"data": "{", "content_type": "application/json"}, None),
    ("a JSON array", {"json": ["cancellation"]}, None),
    ("no kind", {"json": {"date": "2027-04-20"}}, "kind"),
    ("a plan id as text", {"json": {"kind": "upgrade", "plan_id": "2"}}, "plan_id"),
    ("a plan id as true", {"json": {"kind": "upgrade", "plan_id": True}}, "plan_id"),
    ("a date as a number", {"json": {"kind": "cancellation", "date": 20270420}}, "date"),
    # a request's notice date is the day it arrives; it cannot be chosen.
    ("a notice date", {"json": {"kind": "cancellation", "notice_on": "2027-03-01"}}, "notice_on"),
]


@pytest.mark.parametrize(
    ("kwargs", "field"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
def test_malformed_bodies_answer_400_and_store_nothing(app, world, tokens, kwargs, field):
    before = snapshot(app, skip=UNTOUCHED)
    response = app.test_client().post(
        f"{API}/contracts/{world.contract_a}/requests", headers=bearer(tokens, "admin"), **kwargs
    )
    assert response.status_code == 400
    assert response.is_json
    assert (_error(response)["code"], _error(response)["field"]) == ("bad_request", field)
    assert snapshot(app, skip=UNTOUCHED) == before


# --- tokens, never cookies ----------------------------------------------------------------


def _revoke(app: Flask, user_id: int) -> None:
    with app.app_context():
        user = db.session.get(User, user_id)
        for token in db.session.scalars(sa.select(ApiToken).where(ApiToken.user_id == user_id)):
            api_tokens.revoke(Actor(user), token, ip="127.0.0.1")
        db.session.commit()


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "unauthorized"),
        ("", "unauthorized"),
        ("Bearer", "unauthorized"),
        ("Basic YWRtaW46cGFzc3dvcmQ=", "unauthorized"),
        ("Bearer not-a-token", "invalid_token"),
        ("Bearer ptk_" + "x" * 43, "invalid_token"),
    ],
)
def test_missing_or_invalid_tokens_answer_401(app, world, authorization, code):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = app.test_client().get(f"{API}/contracts", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["Cache-Control"] == "no-store"
    assert _error(response)["code"] == code
    assert "contracts" not in response.get_json()


def test_the_scheme_name_is_case_insensitive(app, world, tokens):
    token = tokens["admin"]
    response = app.test_client().get(
        f"{API}/contracts", headers={"Authorization": f"bearer {token}"}
    )
    assert response.status_code == 200


def test_a_revoked_token_or_a_deactivated_user_answers_401(app, world, tokens, call):
    assert call("admin", "GET", "/contracts").status_code == 200
    _revoke(app, world.ids["admin"])
    assert call("admin", "GET", "/contracts").status_code == 401

    assert call("member", "GET", "/contracts").status_code == 200
    with app.app_context():
        db.session.get(User, world.ids["member"]).active = False
        db.session.commit()
    response = call("member", "GET", "/contracts")
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_token"


def test_a_token_notes_its_last_use_even_when_refused(app, world, call):
    (token,) = rows(app, ApiToken, user_id=world.ids["member"])
    assert token.last_used_at is None
    assert call("member", "POST", f"/contracts/{world.contract_a}/usage", {}).status_code == 403
    (token,) = rows(app, ApiToken, user_id=world.ids["member"])
    assert token.last_used_at is not None


def test_a_signed_in_browser_cookie_does_not_authenticate_the_api(app, world):
    """A cookie would let any page the user visits call the API in their name (CSRF)."""
    browser = app.test_client()
    sign_in(app, browser, world.emails["admin"])
    assert browser.get("/contracts").status_code == 200  # the cookie works for the pages
    before = snapshot(app, skip=("user_sessions",))

    listed = browser.get(f"{API}/contracts")
    submitted = browser.post(
        f"{API}/contracts/{world.contract_a}/requests", json={"kind": "cancellation"}
    )

    assert (listed.status_code, submitted.status_code) == (401, 401)
    assert snapshot(app, skip=("user_sessions",)) == before


def test_a_browser_cookie_beside_the_token_changes_nothing(app, world, tokens):
    """The API acts for the token's user only: a cookie of a session that must change its
    password (or is viewing as a customer) neither redirects the call nor records it."""
    with app.app_context():
        db.session.get(User, world.ids["support"]).must_change_password = True
        db.session.commit()
    browser = app.test_client()
    sign_in(app, browser, world.emails["support"])
    assert browser.get("/staff/organisations").status_code == 302  # pages: change it first
    before = _audit_actions(app)
    listed = browser.get(f"{API}/contracts", headers=bearer(tokens, "admin"))
    assert listed.status_code == 200
    assert {c["id"] for c in listed.get_json()["contracts"]} == {world.contract_a}
    assert _audit_actions(app) == before


def test_the_api_needs_no_csrf_token_but_its_bearer_token(make_app):
    """With CSRF on (as in production), the API is exempt: a token, not a cookie, proves
    the caller, and a forged cross-site form cannot set an Authorization header."""
    app = make_app(WTF_CSRF_ENABLED=True)
    world = build_world(app)
    tokens = make_api_tokens(app, world)
    url = f"{API}/contracts/{world.contract_a}/requests"

    response = app.test_client().post(
        url, json={"kind": "cancellation"}, headers=bearer(tokens, "admin")
    )

    assert response.status_code == 201, response.get_json()
    browser = app.test_client()
    sign_in(app, browser, world.emails["admin"])
    assert browser.post(url, json={"kind": "cancellation"}).status_code == 401


# --- what each user may see ---------------------------------------------------------------


def test_another_organisations_ids_and_missing_ids_answer_alike(app, world, call):
    """R-70: B's contract answers A's administrator exactly as a contract that is not there."""
    other = call("admin", "GET", f"/contracts/{world.contract_b}")
    missing = call("admin", "GET", f"/contracts/{MISSING_ID}")
    assert other.status_code == missing.status_code == 404
    assert other.get_json() == missing.get_json()
    assert _error(other)["code"] == "not_found"

    # A request of B's contract under A's contract id is not found either.
    b_request = call(
        "other_admin", "POST", f"/contracts/{world.contract_b}/requests", {"kind": "cancellation"}
    ).get_json()
    under_a = f"/contracts/{world.contract_a}/requests/{b_request['id']}"
    assert call("admin", "GET", under_a).status_code == 404
    before = snapshot(app, skip=UNTOUCHED)
    assert call("admin", "POST", f"{under_a}/withdraw").status_code == 404
    assert snapshot(app, skip=UNTOUCHED) == before


@pytest.mark.parametrize(
    ("actor", "visible"),
    [
        ("admin", {"a"}),
        ("member", {"a"}),
        ("other_admin", {"b"}),
        ("sales_agent", {"a"}),  # its partner's clients only
        ("agency_agent", {"a"}),
        ("other_sales_agent", {"b"}),
        ("support", {"a", "b"}),
        ("billing", {"a", "b"}),
    ],
)
def test_each_user_lists_the_contracts_it_may_see(world, call, actor, visible):
    listed = call(actor, "GET", "/contracts").get_json()["contracts"]
    ids = {"a": world.contract_a, "b": world.contract_b}
    assert {c["id"] for c in listed} == {ids[x] for x in visible}


def test_a_contract_comes_with_its_calendar(world, call):
    """W-1: S 2026-11-05, anchor day 21, M 12: A 2026-11-21, E 2027-11-20, notice by
    2027-10-21, renewal from 2027-11-21 (R-03..R-05)."""
    (listed,) = call("admin", "GET", "/contracts").get_json()["contracts"]
    assert listed["service"] == {"code": "image_works", "name": "IMAGE WORKS"}
    assert listed["plan"] == {
        "id": world.ids["plan_small"],
        "code": "iw-50",
        "name": "50 GB",
        "capacity_gb": 50,
        "minimum_months": 12,
        "monthly_fee": 50_000,
    }
    assert listed["monthly_fee"] == 50_000
    assert listed["service_start"] == "2026-11-05"
    assert listed["anchor_day"] == 21
    assert listed["term_anchor"] == "2026-11-21"
    assert listed["minimum_term_end"] == "2027-11-20"
    assert listed["in_minimum_term"] is True
    assert listed["current_term"] == {"start": "2026-11-21", "end": "2027-11-20", "number": 0}
    assert listed["renewal_notice_deadline"] == "2027-10-21"
    assert listed["days_to_notice_deadline"] == 234
    assert listed["next_renewal_start"] == "2027-11-21"
    assert listed["agency_renewal_due"] is None
    assert (listed["status"], listed["ended_on"]) == ("active", None)
    assert listed["pending_request"] is None
    assert listed["request_kinds"] == ["upgrade", "downgrade", "cancellation", "non_renewal"]

    detail = call("admin", "GET", f"/contracts/{world.contract_a}").get_json()
    assert {k: detail[k] for k in listed} == listed
    assert detail["requests"] == []
    assert detail["usage"]["latest"] is None


def test_an_agency_contract_shows_its_renewal_due_date(app, world, call):
    """R-06: six billing months from A, then a renewal application, no auto-renewal."""
    contract_id = add_contract(
        app,
        world.org_a,
        service_start=date(2027, 1, 5),
        partner_id=world.ids["agency_partner"],
    )
    detail = call("admin", "GET", f"/contracts/{contract_id}").get_json()
    assert detail["sales_channel"] == "agency"
    assert detail["term_anchor"] == "2027-01-21"
    assert detail["agency_renewal_due"] == "2027-07-20"
    assert (detail["renewal_notice_deadline"], detail["next_renewal_start"]) == (None, None)
    assert "agency_renewal" in detail["request_kinds"]


AMOUNT_KEYS = {"monthly_fee", "amount", "subtotal", "tax", "tax_total", "total", "new_monthly_fee"}


def _keys_and_numbers(value: Any, keys: set[str], numbers: set[int]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            keys.add(key)
            _keys_and_numbers(item, keys, numbers)
    elif isinstance(value, list):
        for item in value:
            _keys_and_numbers(item, keys, numbers)
    elif isinstance(value, int) and not isinstance(value, bool):
        numbers.add(value)


def _record_usage(call, contract_id: int, used_gb: str) -> None:
    response = call(
        "support",
        "POST",
        f"/contracts/{contract_id}/usage",
        {"used_gb": used_gb, "measured_at": "2027-03-01T09:00:00+09:00"},
    )
    assert response.status_code == 201, response.get_json()


def _everything_an_actor_reads(world, call, actor: str) -> list[Any]:
    url = f"/contracts/{world.contract_a}"
    upgrade = {"kind": "upgrade", "plan_id": world.ids["plan_large"], "date": "2027-03-21"}
    return [
        call(actor, "GET", "/contracts").get_json(),
        call(actor, "GET", url).get_json(),
        call(actor, "POST", f"{url}/quotes", {"kind": "cancellation"}).get_json(),
        call(actor, "POST", f"{url}/quotes", upgrade).get_json(),
        call(actor, "POST", f"{url}/quotes", {**upgrade, "kind": "downgrade"}).get_json(),
        call(actor, "GET", f"{url}/requests").get_json(),
    ]


def test_an_agency_never_receives_an_amount(app, world, call):
    """R-71: agencies act in plan changes and cancellations but never see fees: no monthly
    fee, charge amount, tax or total anywhere, in any answer."""
    _record_usage(call, world.contract_a, "60.00")  # over 50 GB, the 100 GB plan fits
    submitted = call(
        "agency_agent",
        "POST",
        f"/contracts/{world.contract_a}/requests",
        {"kind": "cancellation"},
    )
    assert submitted.status_code == 201
    answers = [submitted.get_json(), *_everything_an_actor_reads(world, call, "agency_agent")]

    keys: set[str] = set()
    numbers: set[int] = set()
    _keys_and_numbers(answers, keys, numbers)
    assert keys & AMOUNT_KEYS == set()
    assert numbers & {5_000, 35_000, 50_000, 100_000, 350_000, 385_000} == set()
    # What the agency does get: the dates and months it needs to act.
    quote = answers[0]["quote"]
    assert (quote["effective_on"], quote["unexpired_months"]) == ("2027-04-20", 7)
    assert quote["charges"] == [
        {"kind": "shortfall", "tax_rate_percent": 10, "on_new_contract": False, "months": 7}
    ]
    assert quote["amounts_included"] is False
    detail = answers[2]
    assert detail["usage"]["suggested_plan"]["code"] == "iw-100"

    # The sales agent of the same client sees every amount.
    seen: set[str] = set()
    _keys_and_numbers(_everything_an_actor_reads(world, call, "sales_agent"), seen, set())
    assert seen >= AMOUNT_KEYS


# --- usage from the provider's systems (R-15) --------------------------------------------


def test_staff_record_usage_once_per_measurement(app, world, call):
    url = f"/contracts/{world.contract_a}/usage"
    body = {"used_gb": "123.45", "measured_at": "2027-03-01T09:00:00+09:00"}

    first = call("support", "POST", url, body)
    again = call("support", "POST", url, body)
    # The same instant written in UTC is the same measurement.
    in_utc = call("support", "POST", url, {**body, "measured_at": "2027-03-01T00:00:00Z"})

    assert first.status_code == 201, first.get_json()
    reading = first.get_json()
    assert reading["used_gb"] == "123.45"
    assert reading["measured_at"] == "2027-03-01T09:00:00+09:00"
    assert reading["source"] == "api"
    assert (again.status_code, again.get_json()) == (200, reading)
    assert (in_utc.status_code, in_utc.get_json()) == (200, reading)
    (stored,) = rows(app, UsageReading)
    assert stored.recorded_by_id == world.ids["support"]
    assert _audit_actions(app).count("usage.recorded") == 1

    detail = call("admin", "GET", f"/contracts/{world.contract_a}").get_json()["usage"]
    assert detail["latest"] == reading
    assert (detail["capacity_gb"], detail["percent"], detail["over_capacity"]) == (50, 246, True)
    assert detail["suggested_plan"] is None  # no plan on sale holds 123.45 GB


def test_a_different_value_for_a_kept_measurement_is_a_conflict(app, world, call):
    url = f"/contracts/{world.contract_a}/usage"
    body = {"used_gb": "10", "measured_at": "2027-03-01T09:00:00+09:00"}
    assert call("billing", "POST", url, body).status_code == 201
    before = snapshot(app, skip=UNTOUCHED)
    response = call("billing", "POST", url, {**body, "used_gb": "11"})
    assert response.status_code == 409
    assert (_error(response)["code"], _error(response)["field"]) == (
        "different_reading",
        "used_gb",
    )
    assert snapshot(app, skip=UNTOUCHED) == before


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"used_gb": "lots", "measured_at": "2027-03-01T09:00:00+09:00"}, 422, "used_gb"),
        ({"used_gb": "-1", "measured_at": "2027-03-01T09:00:00+09:00"}, 422, "used_gb"),
        ({"used_gb": "1", "measured_at": "yesterday"}, 422, "measured_at"),
        ({"used_gb": "1", "measured_at": "2027-03-01T09:00:00"}, 422, "measured_at"),  # no zone
        ({"used_gb": "1", "measured_at": "2027-03-02T09:00:00+09:00"}, 422, "measured_at"),
        # Issue 13: not before the service began (W-1: 2026-11-05), nor in year 0001 (whose
        # reading made the API answer a time with an offset of +09:18:59).
        ({"used_gb": "1", "measured_at": "2026-11-04T23:59:00+09:00"}, 422, "measured_at"),
        ({"used_gb": "1", "measured_at": "0001-01-01T00:00:00+00:00"}, 422, "measured_at"),
        ({"used_gb": "1"}, 400, "measured_at"),
        ({"used_gb": True, "measured_at": "2027-03-01T09:00:00+09:00"}, 400, "used_gb"),
    ],
)
def test_usage_that_cannot_be_kept_is_refused(app, world, call, body, status, field):
    before = snapshot(app, skip=UNTOUCHED)
    response = call("support", "POST", f"/contracts/{world.contract_a}/usage", body)
    assert response.status_code == status, response.get_json()
    assert _error(response)["field"] == field
    assert snapshot(app, skip=UNTOUCHED) == before


@pytest.mark.parametrize("actor", ["admin", "sales_agent"])
def test_customers_and_agents_may_not_record_usage(app, world, call, actor):
    before = snapshot(app, skip=UNTOUCHED)
    response = call(
        actor,
        "POST",
        f"/contracts/{world.contract_a}/usage",
        {"used_gb": "1.00", "measured_at": "2027-03-01T09:00:00+09:00"},
    )
    assert response.status_code == 403
    assert snapshot(app, skip=UNTOUCHED) == before


# --- language --------------------------------------------------------------------------


def _set_locale(app: Flask, user_id: int, locale: str) -> None:
    with app.app_context():
        db.session.get(User, user_id).locale = locale
        db.session.commit()


def test_messages_are_in_the_users_language_unless_accept_language_asks(app, world, call):
    url = f"/contracts/{MISSING_ID}"
    english = "There is nothing here, or you may not see it."
    japanese = "お探しのページは存在しないか、閲覧する権限がありません。"

    response = call("admin", "GET", url)  # the factories' users read English
    assert (_error(response)["message"], response.headers["Content-Language"]) == (english, "en")
    assert _error(call("admin", "GET", url, headers={"Accept-Language": "ja"}))["message"] == (
        japanese
    )

    _set_locale(app, world.ids["admin"], "ja")
    response = call("admin", "GET", url)
    assert (_error(response)["message"], response.headers["Content-Language"]) == (japanese, "ja")
    assert (
        _error(call("admin", "GET", url, headers={"Accept-Language": "en-GB,en;q=0.8"}))["message"]
        == english
    )
    # A language the portal does not speak leaves the user's own.
    assert _error(call("admin", "GET", url, headers={"Accept-Language": "fr"}))["message"] == (
        japanese
    )


def test_plan_and_service_names_follow_the_language(app, world, call):
    _set_locale(app, world.ids["admin"], "ja")
    (contract,) = call("admin", "GET", "/contracts").get_json()["contracts"]
    assert contract["plan"]["name"] == "50GB"
    (contract,) = call("admin", "GET", "/contracts", headers={"Accept-Language": "en"}).get_json()[
        "contracts"
    ]
    assert contract["plan"]["name"] == "50 GB"


# --- the OpenAPI document -----------------------------------------------------------------


def _resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        assert part in node, f"unresolved {ref}"
        node = node[part]
    return node


JSON_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def _conforms(value: Any, schema: dict[str, Any], document: dict[str, Any], at: str = "$") -> None:
    """The part of JSON Schema the document uses, strictly: an answer's key the document does
    not describe fails too, so the document cannot fall behind the code."""
    if "$ref" in schema:
        return _conforms(value, _resolve(document, schema["$ref"]), document, at)
    if "oneOf" in schema:
        matches = 0
        for option in schema["oneOf"]:
            try:
                _conforms(value, option, document, at)
                matches += 1
            except AssertionError:
                pass
        assert matches == 1, f"{at}: {matches} of oneOf match {value!r}"
        return None
    if "allOf" in schema:
        parts = [_resolve(document, p["$ref"]) if "$ref" in p else p for p in schema["allOf"]]
        merged = {
            "type": "object",
            "required": [r for p in parts for r in p.get("required", [])],
            "properties": {k: v for p in parts for k, v in p.get("properties", {}).items()},
        }
        return _conforms(value, merged, document, at)
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        assert any(JSON_TYPES[k](value) for k in kinds), f"{at}: {value!r} is not {kinds}"
    if "enum" in schema:
        assert value in schema["enum"], f"{at}: {value!r} not in {schema['enum']}"
    if "pattern" in schema and isinstance(value, str):
        assert re.search(schema["pattern"], value), f"{at}: {value!r} !~ {schema['pattern']}"
    if isinstance(value, dict) and "properties" in schema:
        missing = set(schema.get("required", [])) - value.keys()
        assert not missing, f"{at}: missing {missing}"
        for key, item in value.items():
            assert key in schema["properties"], f"{at}: {key} is not in the document"
            _conforms(item, schema["properties"][key], document, f"{at}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _conforms(item, schema["items"], document, f"{at}[{index}]")
    return None


def _openapi(app: Flask) -> dict[str, Any]:
    response = app.test_client().get(f"{API}/openapi.json")  # public: no token
    assert response.status_code == 200
    return response.get_json()


def test_openapi_names_every_api_route_and_nothing_else(app):
    document = _openapi(app)
    (server,) = document["servers"]
    routes = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).removeprefix(server["url"]), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert routes == documented


def test_openapi_document_is_well_formed(app):
    """Checked by hand, not with a validator: 3.1, every $ref resolves, every path parameter is
    declared, every operation is secured by the bearer scheme (but the document itself) and
    says what 401 looks like."""
    document = _openapi(app)
    assert document["openapi"] == "3.1.0"
    assert {"title", "version"} <= document["info"].keys()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert document["security"] == [{"bearerAuth": []}]

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        _resolve(document, ref)

    operation_ids = []
    for path, item in document["paths"].items():
        parameters = [
            _resolve(document, p["$ref"]) if "$ref" in p else p for p in item.get("parameters", [])
        ]
        assert {p["name"] for p in parameters if p["in"] == "path"} == set(
            re.findall(r"{(\w+)}", path)
        ), path
        for method, operation in item.items():
            if method == "parameters":
                continue
            operation_ids.append(operation["operationId"])
            statuses = operation["responses"].keys()
            assert any(s.startswith("2") for s in statuses), (path, method)
            public = operation.get("security") == []
            assert public == (path == "/openapi.json"), (path, method)
            if not public:
                assert "401" in statuses, (path, method)
            if method == "post" and not path.endswith(("/withdraw", "/cancel")):  # no body
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                assert _resolve(document, body["$ref"])["additionalProperties"] is False
    assert len(operation_ids) == len(set(operation_ids))


def test_answers_match_the_openapi_document(app, world, call):
    """Real answers, for an administrator and for an agency, against the document's schemas."""
    document = _openapi(app)
    schemas = document["components"]["schemas"]
    _record_usage(call, world.contract_a, "60.00")
    url = f"/contracts/{world.contract_a}"
    upgrade = {"kind": "upgrade", "plan_id": world.ids["plan_large"], "date": "2027-03-21"}
    downgrade = {"kind": "downgrade", "plan_id": world.ids["plan_small"]}

    for actor in ("admin", "agency_agent"):
        for body in ({"kind": "cancellation"}, {"kind": "non_renewal"}, upgrade):
            quote = call(actor, "POST", f"{url}/quotes", body)
            assert quote.status_code == 200, quote.get_json()
            _conforms(quote.get_json(), schemas["Quote"], document)
        created = call(actor, "POST", f"{url}/requests", upgrade)
        assert created.status_code == 201, created.get_json()
        _conforms(created.get_json(), schemas["Request"], document)
        _conforms(call(actor, "GET", "/contracts").get_json(), schemas["ContractList"], document)
        _conforms(call(actor, "GET", url).get_json(), schemas["ContractDetail"], document)
        _conforms(
            call(actor, "GET", f"{url}/requests").get_json(), schemas["RequestList"], document
        )
        withdrawn = call(actor, "POST", f"{url}/requests/{created.get_json()['id']}/withdraw")
        _conforms(withdrawn.get_json(), schemas["Request"], document)
        refused = call(actor, "POST", f"{url}/quotes", downgrade)
        _conforms(refused.get_json(), schemas["Error"], document)
    reading = call(
        "support",
        "POST",
        f"{url}/usage",
        {"used_gb": 7, "measured_at": "2027-02-01T09:00:00+09:00"},
    )
    _conforms(reading.get_json(), schemas["UsageReading"], document)
    _conforms(call(None, "GET", "/contracts").get_json(), schemas["Error"], document)


# --- races (the real race is on PostgreSQL; SQLite serialises the writers) ----------------


def test_twenty_identical_submits_at_once_leave_one_request(app, world, tokens):
    """R-23: twenty confirmations at once with the same token: the partial unique index lets
    one through; the others answer 409, never a server error."""
    url = f"{API}/contracts/{world.contract_a}/requests"
    clients = [app.test_client() for _ in range(20)]
    start = threading.Barrier(len(clients))

    def submit(client):
        start.wait()
        return client.post(url, json={"kind": "cancellation"}, headers=bearer(tokens, "admin"))

    with ThreadPoolExecutor(len(clients)) as pool:
        responses = list(pool.map(submit, clients))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (len(clients) - 1)
    assert {_error(r)["code"] for r in responses if r.status_code == 409} == {"pending_request"}
    assert len(_requests(app)) == 1
    assert _audit_actions(app).count("request.submitted") == 1
