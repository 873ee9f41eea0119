"""I-NET SERVICE through the JSON API (R-81, R-82, R-85): card holders for the customer's own
administrators, orders and their state, cancelling inside the window and the plain refusal
outside it; every answer in the OpenAPI document, and nothing stored by a refusal.

Who may call what is in test_permission_matrix (API rows); here is what the answers say.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from portal.domain.inet import OrderState
from portal.extensions import db
from portal.models import CardOrder, CardOrderEvent, Organisation, OutboxEmail, User
from tests.factories import (
    add_card_holder,
    add_card_order,
    add_inet_registration,
    build_world,
    snapshot,
)
from tests.web.routes import bearer, make_api_tokens
from tests.web.test_api import API, _conforms, _error, _openapi


@pytest.fixture
def world(app):
    return build_world(app)


@pytest.fixture
def tokens(app, world) -> dict[str, str]:
    return make_api_tokens(app, world)


@pytest.fixture
def call(app, tokens):
    def request(actor: str, method: str, path: str, json: Any = None):
        return app.test_client().open(
            API + path, method=method, json=json, headers=bearer(tokens, actor)
        )

    return request


@pytest.fixture
def cards(app, world) -> dict[str, int]:
    """Org A: three holders (one without a photo), an order confirmed (window open), one
    accepted (window closed), and one placed by the sales agent for A (R-71)."""
    with app.app_context():
        org = db.session.get(Organisation, world.org_a)
        registration = add_inet_registration(org)
        holders = [
            add_card_holder(org, "E-001", name="山田 太郎"),
            add_card_holder(org, "E-002", name="佐藤 花子"),
            add_card_holder(org, "E-003", name="鈴木 一郎", photo=False),
        ]
        admin = db.session.get(User, world.ids["admin"])
        agent = db.session.get(User, world.ids["sales_agent"])
        confirmed = add_card_order(registration, admin, holders[:2])
        accepted = add_card_order(registration, admin, holders[:1], state=OrderState.ACCEPTED)
        by_agent = add_card_order(registration, agent, holders[1:2], state=OrderState.SUBMITTED)
        db.session.commit()
        return {
            "holder": holders[0].id,
            "confirmed": confirmed.id,
            "accepted": accepted.id,
            "by_agent": by_agent.id,
        }


def _schema(app, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    document = _openapi(app)
    return document["components"]["schemas"][name], document


def test_administrators_page_through_their_holders(app, call, cards):
    """R-85: the organisation's own administrators list its holders, by page; photos never
    travel through the API, only whether one is kept."""
    first = call("admin", "GET", "/card-holders?per_page=2")
    assert first.status_code == 200
    body = first.get_json()
    schema, document = _schema(app, "CardHolderList")
    _conforms(body, schema, document)
    assert (body["page"], body["per_page"], body["total"], body["next_page"]) == (1, 2, 3, 2)
    assert [h["employee_number"] for h in body["holders"]] == ["E-001", "E-002"]
    last = call("admin", "GET", "/card-holders?per_page=2&page=2").get_json()
    assert [h["has_photo"] for h in last["holders"]] == [False] and last["next_page"] is None
    one = call("admin", "GET", f"/card-holders/{cards['holder']}").get_json()
    assert one["name"] == "山田 太郎" and one["has_photo"] is True


@pytest.mark.parametrize(
    "query", ["page=0", "per_page=0", "per_page=201", "page=abc", "page=99999999999999"]
)
def test_page_parameters_out_of_bounds_are_a_json_400(call, cards, query):
    response = call("admin", "GET", f"/card-orders?{query}")
    assert response.status_code == 400 and response.is_json
    assert _error(response)["field"] in ("page", "per_page")


def test_orders_show_where_each_is_and_whether_it_can_still_be_cancelled(app, call, cards):
    """R-82: confirmed orders are cancellable; accepted ones say why not."""
    response = call("admin", "GET", "/card-orders")
    schema, document = _schema(app, "CardOrderList")
    _conforms(response.get_json(), schema, document)
    by_id = {o["id"]: o for o in response.get_json()["orders"]}
    assert by_id[cards["confirmed"]]["cancellable"] is True
    assert by_id[cards["accepted"]]["cancel_refusal"] == "accepted"
    assert by_id[cards["confirmed"]]["cards"] == 2
    only_accepted = call("admin", "GET", "/card-orders?state=accepted").get_json()["orders"]
    assert [o["id"] for o in only_accepted] == [cards["accepted"]]
    assert call("admin", "GET", "/card-orders?state=lost").status_code == 400

    detail = call("admin", "GET", f"/card-orders/{cards['confirmed']}").get_json()
    schema, document = _schema(app, "CardOrderDetail")
    _conforms(detail, schema, document)
    assert [i["name"] for i in detail["items"]] == ["山田 太郎", "佐藤 花子"]


def test_an_agent_sees_only_the_orders_it_placed(call, cards):
    """R-85: agents see the orders they placed for a client, nothing else of it."""
    orders = call("sales_agent", "GET", "/card-orders").get_json()["orders"]
    assert [o["id"] for o in orders] == [cards["by_agent"]]
    assert call("sales_agent", "GET", f"/card-orders/{cards['confirmed']}").status_code == 404
    assert call("sales_agent", "GET", "/card-holders").status_code == 403


def test_cancelling_inside_the_window_cancels_once_and_tells_the_customer(app, call, cards):
    """R-82: a confirmed order, cancelled by the customer's administrator: cancelled, one
    event, one notice; a second cancel is refused plainly (409) and changes nothing."""
    response = call("admin", "POST", f"/card-orders/{cards['confirmed']}/cancel")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["state"] == "cancelled" and body["cancellable"] is False
    assert body["events"][-1]["to_state"] == "cancelled"
    with app.app_context():
        events = db.session.scalars(
            sa.select(CardOrderEvent).where(
                CardOrderEvent.order_id == cards["confirmed"],
                CardOrderEvent.to_state == OrderState.CANCELLED,
            )
        ).all()
        assert len(events) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) >= 1
    before = snapshot(app, skip=("api_tokens",))
    again = call("admin", "POST", f"/card-orders/{cards['confirmed']}/cancel")
    assert again.status_code == 409 and _error(again)["code"] == "not_cancellable"
    assert snapshot(app, skip=("api_tokens",)) == before


def test_an_accepted_order_cannot_be_cancelled_and_the_answer_says_why(app, call, cards):
    """R-82: after the acceptance e-mail the window is closed: 409, nothing changes."""
    before = snapshot(app, skip=("api_tokens",))
    response = call("admin", "POST", f"/card-orders/{cards['accepted']}/cancel")
    assert response.status_code == 409 and response.is_json
    error = _error(response)
    assert error["code"] == "not_cancellable" and error["message"]
    assert snapshot(app, skip=("api_tokens",)) == before
    with app.app_context():
        assert db.session.get(CardOrder, cards["accepted"]).state == OrderState.ACCEPTED


def test_production_staff_see_every_order_but_never_cancel_for_the_customer(call, cards):
    """R-82 reading: the customer cancels, on the web; staff never do it for them."""
    orders = call("production", "GET", "/card-orders").get_json()["orders"]
    assert {cards["confirmed"], cards["accepted"], cards["by_agent"]} <= {o["id"] for o in orders}
    response = call("production", "POST", f"/card-orders/{cards['confirmed']}/cancel")
    assert response.status_code == 403 and response.is_json
