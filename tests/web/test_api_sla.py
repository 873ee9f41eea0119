"""SLA incidents and claims through the JSON API (R-50..R-53): W-4 from the preview to the
claim, every refusal with nothing stored, agencies without amounts, races, the document.

Who may call what is in test_permission_matrix (API rows); here is what the answers say. The
world's contract_a is W-1's (start 2026-11-05, anchor day 21, ¥50,000, sold through the
assigned sales agent); the clock is at 2027-03-01 10:00 Tokyo.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal.clock import TOKYO, clock
from portal.domain.sla import IncidentKind
from portal.extensions import db
from portal.models import AuditEvent, OutboxEmail, Service, SlaClaim, UpdateStatus, User
from portal.permissions import Actor
from portal.services import claims as claim_service
from portal.services import incidents as incident_service
from portal.services.incidents import IncidentFacts, UpdateText
from portal.services.invoicing import issue_invoices
from tests.factories import add_contract, build_world, rows, snapshot
from tests.web.routes import bearer, make_api_tokens
from tests.web.test_api import (
    AMOUNT_KEYS,
    API,
    MISSING_ID,
    UNTOUCHED,
    _conforms,
    _error,
    _keys_and_numbers,
    _openapi,
)

# W-4: an unannounced outage of 30 hours whose recovery was announced 90 minutes late.
W4_START = datetime(2027, 2, 3, 9, 0, tzinfo=TOKYO)
W4_END = datetime(2027, 2, 4, 15, 0, tzinfo=TOKYO)
# What a claim or its preview must never show an agency, beside the API's amount keys.
CLAIM_AMOUNT_KEYS = AMOUNT_KEYS | {
    "computed_amount",
    "approved_amount",
    "credited_amount",
    "reasoning",
    "review_reason",
    "invoices",
}


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
        actor: str | None,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ):
        return app.test_client().open(
            API + path,
            method=method,
            json=json,
            headers={**bearer(tokens, actor or ""), **(headers or {})},
        )

    return request


def _facts(app: Flask, **overrides: Any) -> IncidentFacts:
    with app.app_context():
        service_id = db.session.scalar(sa.select(Service.id).where(Service.code == "image_works"))
    facts = IncidentFacts(
        kind=IncidentKind.OUTAGE,
        title_ja="ストレージ障害",
        title_en="Storage outage",
        service_ids=(service_id,),
        started_at=W4_START,
        ended_at=W4_END,
        occurrence_announced_at=datetime(2027, 2, 3, 9, 20, tzinfo=TOKYO),
        recovery_announced_at=datetime(2027, 2, 4, 16, 30, tzinfo=TOKYO),  # 90 minutes late
    )
    return replace(facts, **overrides)


def _record(app: Flask, world, update: UpdateText | None = None, **overrides: Any) -> int:
    """Support staff record an incident (W-4's, unless told otherwise)."""
    with app.test_request_context():
        support = Actor(db.session.get(User, world.ids["support"]))
        incident = incident_service.record(support, _facts(app, **overrides), update=update)
        db.session.commit()
        return incident.id


def _claims_url(contract_id: int) -> str:
    return f"/contracts/{contract_id}/claims"


def _audit_count(app: Flask, action: str) -> int:
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        )


# --- W-4 through the API ----------------------------------------------------------------------


def test_w4_preview_then_claim_then_a_second_claim(app, world, call):
    """W-4: ¥50,000 × 30 / 720 = ¥2,083 for the outage, + ¥1,666 for the late recovery
    notice: ¥3,749, claimable until 2027-05-04 (R-51, R-52). The preview changes nothing;
    the claim keeps the amount computed when it is filed; one claim per contract and
    incident."""
    incident_id = _record(app, world)
    url = _claims_url(world.contract_a)
    before = snapshot(app, skip=UNTOUCHED)

    preview = call("admin", "GET", url)

    assert preview.status_code == 200, preview.get_json()
    assert snapshot(app, skip=UNTOUCHED) == before
    listed = preview.get_json()
    assert (listed["contract_id"], listed["can_file"], listed["claims"]) == (
        world.contract_a,
        True,
        [],
    )
    (option,) = listed["incidents"]
    assert option["incident"] == {
        "id": incident_id,
        "reference": f"INC-{incident_id:06d}",
        "version": 1,
        "kind": "outage",
        "title": "Storage outage",
        "started_at": "2027-02-03T09:00:00+09:00",
        "ended_at": "2027-02-04T15:00:00+09:00",
        "occurrence_announced_at": "2027-02-03T09:20:00+09:00",
        "recovery_announced_at": "2027-02-04T16:30:00+09:00",
        "state": "ended",
    }
    assert (option["claimable"], option["refusal"], option["claim_id"]) == (True, None, None)
    computed = option["compensation"]
    assert computed["amount"] == 3_749
    assert [(line["kind"], line["amount"], line["minutes"]) for line in computed["lines"]] == [
        ("outage", 2_083, 1_800),
        ("late_announcement", 1_666, None),
    ]
    assert computed["lines"][1]["late_recovery"] is True
    assert computed["lines"][1]["late_occurrence"] is False
    assert computed["claim_deadline"] == "2027-05-04"
    assert (computed["billing_month"], computed["monthly_fee"]) == ("2027-02", 50_000)
    assert (computed["total_minutes"], computed["counted_minutes"]) == (1_800, 1_800)
    assert computed["subtotal"] == 3_749
    assert computed["amounts_included"] is True
    assert computed["reasoning"] == [
        "Outage February 3, 2027 09:00 – February 4, 2027 15:00: 1,800 minutes counted; "
        "¥50,000 × 1,800 / 43,200 = ¥2,083",
        "Recovery not announced within 60 minutes: ¥50,000 / 30 = ¥1,666",
    ]

    filed = call("admin", "POST", url, {"incident_id": incident_id})

    assert filed.status_code == 201, filed.get_json()
    claim = filed.get_json()
    assert filed.headers["Location"] == f"{API}{url}/{claim['id']}"
    assert claim["number"] == f"SLA-{claim['id']:06d}"
    assert (claim["contract_id"], claim["incident_id"], claim["incident_version"]) == (
        world.contract_a,
        incident_id,
        1,
    )
    assert (claim["status"], claim["channel"], claim["billing_month"]) == (
        "filed",
        "api",
        "2027-02",
    )
    assert claim["computed_amount"] == 3_749
    assert (claim["approved_amount"], claim["credited_amount"]) == (None, 0)
    assert (claim["claimed_on"], claim["filed_at"]) == ("2027-03-01", "2027-03-01T10:00:00+09:00")
    assert (claim["reviewed_at"], claim["review_reason"], claim["invoices"]) == (None, "", [])
    assert claim["compensation"] == computed  # kept as it was previewed
    assert claim["amounts_included"] is True
    (stored,) = rows(app, SlaClaim)
    assert (stored.channel, stored.filed_by_id, stored.computed_amount) == (
        "api",
        world.ids["admin"],
        3_749,
    )
    assert stored.pdf_sha256  # the claim the customer keeps, stored once
    assert _audit_count(app, "claim.filed") == 1
    assert [e.kind for e in rows(app, OutboxEmail) if e.kind == "claim_filed"]

    assert call("member", "GET", f"{url}/{claim['id']}").get_json() == claim
    listed = call("member", "GET", url).get_json()
    assert listed["claims"] == [claim]
    assert listed["can_file"] is False  # members read claims but do not file them
    (option,) = listed["incidents"]
    assert (option["claimable"], option["claim_id"]) == (False, claim["id"])
    assert option["refusal"]["code"] == "already_claimed"

    before = snapshot(app, skip=UNTOUCHED)
    again = call("admin", "POST", url, {"incident_id": incident_id})
    assert again.status_code == 409
    assert (_error(again)["code"], _error(again)["field"]) == ("already_claimed", "incident_id")
    assert (
        _error(again)["message"] == "A claim for this incident on this contract was already filed."
    )
    assert snapshot(app, skip=UNTOUCHED) == before


def test_a_sales_agent_files_for_its_client(app, world, call):
    """R-52 reading, R-71: the sales agent assigned to A claims for A's contract."""
    incident_id = _record(app, world)
    response = call(
        "sales_agent", "POST", _claims_url(world.contract_a), {"incident_id": incident_id}
    )
    assert response.status_code == 201, response.get_json()
    (stored,) = rows(app, SlaClaim)
    assert (stored.filed_by_id, stored.contract_id) == (world.ids["sales_agent"], world.contract_a)


@pytest.mark.parametrize("actor", ["member", "agency_agent", "support", "billing"])
def test_members_agencies_and_staff_may_not_file(app, world, call, actor):
    """R-52 reading: not members, not agencies (amounts, R-71), not staff (R-72; staff record
    claims received on paper in the back office)."""
    incident_id = _record(app, world)
    before = snapshot(app, skip=UNTOUCHED)
    response = call(actor, "POST", _claims_url(world.contract_a), {"incident_id": incident_id})
    assert response.status_code == 403
    assert _error(response)["code"] == "forbidden"
    assert snapshot(app, skip=UNTOUCHED) == before
    assert call(actor, "GET", _claims_url(world.contract_a)).get_json()["can_file"] is False


# --- refusals by the rules: 422 with the code and field, nothing stored -----------------------


def test_a_claim_after_the_window_is_refused_and_says_why(app, world, call):
    """R-52: the right lapses three months after the incident's end (W-4: 2027-05-04)."""
    incident_id = _record(app, world)
    clock.set(datetime(2027, 5, 5, 1, 0, tzinfo=UTC))  # 2027-05-05 10:00 Tokyo
    url = _claims_url(world.contract_a)
    (option,) = call("admin", "GET", url).get_json()["incidents"]
    assert option["claimable"] is False
    assert option["refusal"] == {
        "code": "window_closed",
        "message": "The time to claim for this incident ended on May 4, 2027.",
    }
    assert option["compensation"]["amount"] == 3_749  # still explained, no longer claimable
    before = snapshot(app, skip=UNTOUCHED)

    refused = call("admin", "POST", url, {"incident_id": incident_id})

    assert refused.status_code == 422
    assert (_error(refused)["code"], _error(refused)["field"]) == ("window_closed", "incident_id")
    assert "May 4, 2027" in _error(refused)["message"]
    assert snapshot(app, skip=UNTOUCHED) == before
    assert rows(app, SlaClaim) == []

    clock.set(datetime(2027, 5, 4, 14, 59, tzinfo=UTC))  # 2027-05-04 23:59 Tokyo: in time
    assert call("admin", "POST", url, {"incident_id": incident_id}).status_code == 201


REFUSALS = [
    # (name, incident overrides, code)
    ("still open", {"ended_at": None, "recovery_announced_at": None}, "incident_open"),
    (
        "24 hours exactly, announced in time",
        {
            "ended_at": datetime(2027, 2, 4, 9, 0, tzinfo=TOKYO),
            "recovery_announced_at": datetime(2027, 2, 4, 9, 10, tzinfo=TOKYO),
        },
        "nothing_to_claim",
    ),
    ("only B's contracts", {"organisation_ids": ("org_b",)}, "not_touched"),
]


@pytest.mark.parametrize(
    ("overrides", "code"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_refusals_answer_422_with_code_and_field_and_store_nothing(
    app, world, call, overrides, code
):
    if "organisation_ids" in overrides:
        overrides = {"organisation_ids": (world.org_b,)}
    incident_id = _record(app, world, **overrides)
    before = snapshot(app, skip=UNTOUCHED)

    response = call("admin", "POST", _claims_url(world.contract_a), {"incident_id": incident_id})

    assert response.status_code == 422, response.get_json()
    error = _error(response)
    assert (error["code"], error["field"]) == (code, "incident_id")
    assert error["message"] and error["message"] != code
    assert snapshot(app, skip=UNTOUCHED) == before


@pytest.mark.parametrize("incident_id", [MISSING_ID, 0, -1, 2**31, 2**63, 10**30])
def test_an_unknown_incident_answers_as_one_that_did_not_touch_the_contract(
    app, world, call, incident_id
):
    """Incident ids reveal nothing: one that touched only B and one that does not exist (or
    could not, beyond the database's integers) get the same answer, never a server error."""
    b_only = _record(app, world, organisation_ids=(world.org_b,))
    url = _claims_url(world.contract_a)
    before = snapshot(app, skip=UNTOUCHED)

    unknown = call("admin", "POST", url, {"incident_id": incident_id})
    not_touched = call("admin", "POST", url, {"incident_id": b_only})

    assert unknown.status_code == not_touched.status_code == 422
    assert unknown.get_json() == not_touched.get_json()
    assert _error(unknown)["code"] == "not_touched"
    assert snapshot(app, skip=UNTOUCHED) == before


BAD_BODIES = [
    # (name, keyword arguments of the request, field)
    ("a form, not JSON", {"data": {"incident_id": "1"}}, None),
    ("broken JSON", {"data": "{", "content_type": "application/json"}, None),
    ("a JSON array", {"json": [1]}, None),
    ("no incident", {"json": {}}, "incident_id"),
    ("a null incident", {"json": {"incident_id": None}}, "incident_id"),
    ("an incident id as text", {"json": {"incident_id": "1"}}, "incident_id"),
    ("an incident id as true", {"json": {"incident_id": True}}, "incident_id"),
    ("an incident id as a decimal", {"json": {"incident_id": 1.0}}, "incident_id"),
    # the amount is computed, never sent.
    ("an amount", {"json": {"incident_id": 1, "amount": 3_749}}, "amount"),
]


@pytest.mark.parametrize(
    ("kwargs", "field"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
def test_malformed_bodies_answer_400_and_store_nothing(app, world, tokens, kwargs, field):
    _record(app, world)
    before = snapshot(app, skip=UNTOUCHED)
    response = app.test_client().post(
        f"{API}{_claims_url(world.contract_a)}", headers=bearer(tokens, "admin"), **kwargs
    )
    assert response.status_code == 400
    assert (_error(response)["code"], _error(response)["field"]) == ("bad_request", field)
    assert snapshot(app, skip=UNTOUCHED) == before


# --- what each user may see -------------------------------------------------------------------


def test_another_organisations_claims_and_missing_ids_answer_alike(app, world, call):
    """R-70: B's contract and B's claim answer A's administrator as ids that are not there."""
    incident_id = _record(app, world)
    b_claim = call(
        "other_admin", "POST", _claims_url(world.contract_b), {"incident_id": incident_id}
    )
    assert b_claim.status_code == 201
    b_id = b_claim.get_json()["id"]
    missing = call("admin", "GET", _claims_url(MISSING_ID)).get_json()

    for path in (
        _claims_url(world.contract_b),
        f"{_claims_url(world.contract_b)}/{b_id}",
        f"{_claims_url(world.contract_a)}/{b_id}",  # B's claim under A's contract
        f"{_claims_url(world.contract_a)}/{MISSING_ID}",
    ):
        response = call("admin", "GET", path)
        assert (response.status_code, response.get_json()) == (404, missing), path
    # An id beyond the database's integers is no route at all: not found, never a server error.
    beyond = call("admin", "GET", f"{_claims_url(world.contract_a)}/{2**63}")
    assert (beyond.status_code, _error(beyond)["code"]) == (404, "not_found")
    before = snapshot(app, skip=UNTOUCHED)
    refused = call("admin", "POST", _claims_url(world.contract_b), {"incident_id": incident_id})
    assert (refused.status_code, refused.get_json()) == (404, missing)
    assert snapshot(app, skip=UNTOUCHED) == before


def _approve_and_credit(app: Flask, world, claim_id: int) -> None:
    """Billing staff approve ¥2,000 of the claim with a reason; the invoice of billing month
    2027-04 (issued 2027-03-21) deducts it (R-53)."""
    with app.test_request_context():
        for day in (date(2026, 11, 5), date(2026, 11, 21), date(2026, 12, 21)):
            issue_invoices(day)
        for day in (date(2027, 1, 21), date(2027, 2, 21)):
            issue_invoices(day)
        billing = Actor(db.session.get(User, world.ids["billing"]))
        claim_service.review(
            billing,
            db.session.get(SlaClaim, claim_id),
            claim_service.Decision.APPROVE_LOWER,
            amount=2_000,
            reason="¥2,000: the recovery was announced by telephone in time.",
        )
        db.session.commit()
    clock.set(datetime(2027, 3, 21, 1, 0, tzinfo=UTC))
    with app.test_request_context():
        issue_invoices(date(2027, 3, 21))


def test_an_agency_never_receives_an_amount(app, world, call):
    """R-71: an agency follows its client's incidents and claims (billing months, minutes,
    grounds, deadlines, status) but gets no fee, amount, reasoning in yen, review reason or
    invoice, in any answer; the sales agent of the same client gets them all."""
    incident_id = _record(app, world)
    _record(app, world, ended_at=None, recovery_announced_at=None)  # open: no compensation yet
    url = _claims_url(world.contract_a)
    claim_id = call("admin", "POST", url, {"incident_id": incident_id}).get_json()["id"]
    _approve_and_credit(app, world, claim_id)

    answers = [
        call("agency_agent", "GET", url).get_json(),
        call("agency_agent", "GET", f"{url}/{claim_id}").get_json(),
        call("agency_agent", "GET", "/incidents").get_json(),
    ]

    keys: set[str] = set()
    numbers: set[int] = set()
    _keys_and_numbers(answers, keys, numbers)
    assert keys & CLAIM_AMOUNT_KEYS == set()
    assert numbers & {50_000, 3_749, 2_083, 1_666, 2_000} == set()
    assert "¥" not in str(answers)
    listed, claim, _incidents = answers
    closed, _open = sorted(listed["incidents"], key=lambda o: o["incident"]["state"])
    assert closed["compensation"] == {
        "billing_month": "2027-02",
        "total_minutes": 1_800,
        "counted_minutes": 1_800,
        "lines": [
            {"kind": "outage", "minutes": 1_800, "late_occurrence": False, "late_recovery": False},
            {
                "kind": "late_announcement",
                "minutes": None,
                "late_occurrence": False,
                "late_recovery": True,
            },
        ],
        "claim_deadline": "2027-05-04",
        "amounts_included": False,
    }
    assert (claim["status"], claim["amounts_included"]) == ("approved", False)
    assert listed["claims"] == [claim]
    assert listed["can_file"] is False

    seen: set[str] = set()
    sales = call("sales_agent", "GET", f"{url}/{claim_id}").get_json()
    _keys_and_numbers(sales, seen, set())
    assert seen >= {"computed_amount", "approved_amount", "credited_amount", "reasoning"}
    assert (sales["approved_amount"], sales["credited_amount"]) == (2_000, 2_000)
    (invoice,) = sales["invoices"]
    assert invoice["amount"] == 2_000 and invoice["number"].startswith("INV-")
    assert sales["review_reason"].startswith("¥2,000")


# --- the incidents list ----------------------------------------------------------------------


def test_each_user_lists_the_incidents_that_touched_what_it_may_see(app, world, call):
    """R-52: the last 12 months and those still open, that touched the user's contracts;
    staff see every one. The updates come newest first, in the user's language."""
    older = add_contract(app, world.org_a, service_start=date(2025, 1, 5))
    everyone = _record(app, world)
    b_only = _record(app, world, organisation_ids=(world.org_b,), title_en="Beta's storage")
    under_way = _record(
        app,
        world,
        update=UpdateText(UpdateStatus.INVESTIGATING, "調査中です。", "We are investigating."),
        organisation_ids=(world.org_a,),
        started_at=datetime(2027, 3, 1, 9, 0, tzinfo=TOKYO),
        ended_at=None,
        occurrence_announced_at=None,
        recovery_announced_at=None,
    )
    # Ended more than 12 months ago (it touched the older contract): nobody lists it.
    _record(
        app,
        world,
        started_at=datetime(2026, 2, 1, 9, 0, tzinfo=TOKYO),
        ended_at=datetime(2026, 2, 1, 10, 0, tzinfo=TOKYO),
        occurrence_announced_at=datetime(2026, 2, 1, 9, 10, tzinfo=TOKYO),
        recovery_announced_at=datetime(2026, 2, 1, 10, 10, tzinfo=TOKYO),
    )

    def listed(actor: str, **headers: str) -> list[dict[str, Any]]:
        response = call(actor, "GET", "/incidents", headers=headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["incidents"]

    mine = listed("admin")
    assert [i["id"] for i in mine] == [under_way, everyone]  # newest first
    current, past = mine
    assert (current["state"], current["ended_at"]) == ("open", None)
    assert current["occurrence_announced_at"] == "2027-03-01T10:00:00+09:00"  # by the update
    assert current["contract_ids"] == [world.contract_a, older]
    assert current["updates"] == [
        {
            "status": "investigating",
            "message": "We are investigating.",
            "posted_at": "2027-03-01T10:00:00+09:00",
        }
    ]
    assert (past["state"], past["updates"]) == ("ended", [])
    japanese = listed("admin", **{"Accept-Language": "ja"})[0]
    assert (japanese["title"], japanese["updates"][0]["message"]) == (
        "ストレージ障害",
        "調査中です。",
    )
    for actor in ("member", "sales_agent", "agency_agent"):
        assert listed(actor) == mine, actor
    assert [i["id"] for i in listed("other_admin")] == [b_only, everyone]
    assert [i["id"] for i in listed("other_agency_agent")] == [b_only, everyone]
    assert listed("other_admin")[1]["contract_ids"] == [world.contract_b]

    staff = listed("support")
    assert [i["id"] for i in staff] == [under_way, b_only, everyone]
    assert all("contract_ids" not in i for i in staff)
    keys: set[str] = set()
    _keys_and_numbers([mine, staff], keys, set())
    assert keys & CLAIM_AMOUNT_KEYS == set()


# --- races (the real race is on PostgreSQL; SQLite serialises the writers) ----------------------


def test_twenty_identical_claims_at_once_leave_one(app, world, tokens):
    """R-52: one claim per contract and incident: the contract's row lock and the unique
    constraint let one through; the others answer 409, never a server error."""
    incident_id = _record(app, world)
    url = f"{API}{_claims_url(world.contract_a)}"
    clients = [app.test_client() for _ in range(20)]
    start = threading.Barrier(len(clients))

    def submit(client):
        start.wait()
        return client.post(url, json={"incident_id": incident_id}, headers=bearer(tokens, "admin"))

    with ThreadPoolExecutor(len(clients)) as pool:
        responses = list(pool.map(submit, clients))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (len(clients) - 1)
    assert {_error(r)["code"] for r in responses if r.status_code == 409} == {"already_claimed"}
    assert len(rows(app, SlaClaim)) == 1
    assert _audit_count(app, "claim.filed") == 1


# --- the OpenAPI document ---------------------------------------------------------------------


def test_answers_match_the_openapi_document(app, world, call):
    """Real answers, for an administrator, an agency and staff, against the document."""
    document = _openapi(app)
    schemas = document["components"]["schemas"]
    incident_id = _record(app, world)
    _record(
        app,
        world,
        update=UpdateText(UpdateStatus.INVESTIGATING, "調査中です。", "We are investigating."),
        started_at=datetime(2027, 3, 1, 9, 0, tzinfo=TOKYO),
        ended_at=None,
        occurrence_announced_at=None,
        recovery_announced_at=None,
    )
    url = _claims_url(world.contract_a)
    created = call("admin", "POST", url, {"incident_id": incident_id})
    assert created.status_code == 201
    _conforms(created.get_json(), schemas["Claim"], document)
    claim_id = created.get_json()["id"]

    for actor in ("admin", "agency_agent", "support"):
        _conforms(call(actor, "GET", "/incidents").get_json(), schemas["IncidentList"], document)
        listed = call(actor, "GET", url).get_json()
        _conforms(listed, schemas["ContractClaims"], document)
        assert {o["incident"]["state"] for o in listed["incidents"]} == {"open", "ended"}
        _conforms(call(actor, "GET", f"{url}/{claim_id}").get_json(), schemas["Claim"], document)
    for actor, body in (
        ("admin", {"incident_id": incident_id}),  # 409
        ("admin", {"incident_id": MISSING_ID}),  # 422
        ("admin", {"incident": incident_id}),  # 400
        ("member", {"incident_id": incident_id}),  # 403
    ):
        _conforms(call(actor, "POST", url, body).get_json(), schemas["Error"], document)
    operation = document["paths"]["/contracts/{contract_id}/claims"]["post"]
    assert {"201", "400", "401", "403", "404", "409", "422"} <= operation["responses"].keys()
