"""The production back office of I-NET SERVICE (R-81, R-82, R-85): the queue of orders by
state, an order's holders and photos, the steps from confirmation (注文確認連絡) to delivery,
each asked once more, the proof sheet for the printer, and a cancellation and an acceptance
that cross settling to exactly one.
"""

from __future__ import annotations

import itertools
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from io import BytesIO

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from portal.clock import clock
from portal.domain.inet import OrderState
from portal.extensions import db
from portal.models import (
    CardOrder,
    CardOrderEvent,
    InetRegistration,
    Organisation,
    OutboxEmail,
    User,
)
from portal.services import mail
from tests.factories import add_card_holder, add_card_order, become, row_counts, rows
from tests.web.routes import inet_world

RULE_ID = re.compile(r"\bR-\d\d\b")
_numbers = itertools.count(1)


def _client(shared, kind: str):
    client = shared.app.test_client()
    become(shared.app, client, shared.world, kind)
    return client


@pytest.fixture
def production(shared, fixed_clock):
    return _client(shared, "production")


def _order(
    shared,
    state: OrderState = OrderState.SUBMITTED,
    *,
    org: str = "a",
    quantities=(1,),
    photo: bool = True,
    at: datetime | None = None,
) -> int:
    """A fresh order of A's (or B's) administrator, one new holder per quantity."""
    ids = inet_world(shared.app, shared.world, org)
    if at is not None:
        clock.set(at)
    with shared.app.app_context():
        organisation = db.session.get(Organisation, getattr(shared.world, f"org_{org}"))
        holders = [
            add_card_holder(
                organisation,
                f"P-{org.upper()}-{next(_numbers):04d}",
                name=f"製作 太郎{n}",
                photo=photo,
            )
            for n in range(len(quantities))
        ]
        admin = "admin" if org == "a" else "other_admin"
        order = add_card_order(
            db.session.get(InetRegistration, ids["registration"]),
            db.session.get(User, shared.world.ids[admin]),
            holders,
            state=state,
        )
        for item, quantity in zip(order.items, quantities, strict=True):
            item.quantity = quantity
        db.session.commit()
        order_id = order.id
    if at is not None:
        clock.set(datetime(2027, 3, 1, 1, 0, tzinfo=UTC))
    return order_id


def _get(shared, order_id: int) -> CardOrder:
    with shared.app.app_context():
        found = db.session.get(CardOrder, order_id)
        db.session.expunge(found)
        return found


def _text(response) -> str:
    return response.get_data(as_text=True)


def _step(client, order_id: int, action: str, **data: object):
    return client.post(f"/staff/production/orders/{order_id}/step", data={"action": action, **data})


# --- the queue -----------------------------------------------------------------------------------


def test_the_queue_shows_waiting_orders_oldest_first_with_counts_by_state(shared, production):
    older = _order(shared, at=datetime(2027, 2, 1, 1, 0, tzinfo=UTC))
    newer = _order(shared, at=datetime(2027, 2, 20, 1, 0, tzinfo=UTC))
    delivered = _order(shared, OrderState.DELIVERED)
    page = _text(production.get("/staff/production/orders"))
    assert page.index(f"IC-{older:06d}") < page.index(f"IC-{newer:06d}")
    assert f"IC-{delivered:06d}" not in page  # history, not work
    with shared.app.app_context():
        submitted = db.session.scalar(
            sa.select(sa.func.count()).where(CardOrder.state == OrderState.SUBMITTED)
        )
    assert f'data-state="submitted">{submitted}<' in page
    assert 'data-state="draft"' not in page  # drafts are the customer's own

    done = _text(production.get("/staff/production/orders?state=delivered"))
    assert f"IC-{delivered:06d}" in done and f"IC-{older:06d}" not in done


def test_the_queue_filters_by_organisation_and_sent_days(shared, production):
    a_order = _order(shared, at=datetime(2027, 1, 10, 1, 0, tzinfo=UTC))
    b_order = _order(shared, org="b", at=datetime(2027, 1, 12, 1, 0, tzinfo=UTC))
    by_name = _text(production.get("/staff/production/orders?organisation=beta"))
    assert f"IC-{b_order:06d}" in by_name and f"IC-{a_order:06d}" not in by_name
    by_days = _text(
        production.get("/staff/production/orders?submitted_from=2027-01-10&submitted_to=2027-01-10")
    )
    assert f"IC-{a_order:06d}" in by_days and f"IC-{b_order:06d}" not in by_days
    # "%" is searched as itself, not as a wildcard.
    assert f"IC-{a_order:06d}" not in _text(
        production.get("/staff/production/orders?organisation=%25")
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("organisation=a%00b", "cannot be kept"),
        ("organisation=" + "x" * 101, "Use at most 100 characters."),
        ("submitted_from=2027-13-40", "Enter a date as YYYY-MM-DD."),
        ("submitted_from=2027-03-02&submitted_to=2027-03-01", "on or after the first day"),
        ("submitted_from=1900-01-01", "between 2000 and 2100"),
        ("state=lost", "Not a valid choice"),
    ],
)
def test_bad_filters_are_said_next_to_the_field(shared, production, query, message):
    response = production.get(f"/staff/production/orders?{query}")
    assert response.status_code == 422
    assert message in _text(response)


# --- an order and its photos (R-85) -------------------------------------------------------------


def test_production_sees_the_holders_and_their_photos_never_cached(shared, production):
    order_id = _order(shared, quantities=(2, 1))
    page = _text(production.get(f"/staff/production/orders/{order_id}"))
    assert "製作 太郎0" in page and "製作 太郎1" in page
    with shared.app.app_context():
        holder_ids = [i.holder_id for i in db.session.get(CardOrder, order_id).items]
    url = f"/staff/production/orders/{order_id}/holders/{holder_ids[0]}/photo"
    assert f'src="{url}"' in page
    photo = production.get(url)
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.data.startswith(b"\xff\xd8")
    assert photo.headers["Cache-Control"] == "no-store"
    assert photo.headers["X-Content-Type-Options"] == "nosniff"
    # Another order's holder is not this order's: 404.
    other = _order(shared)
    with shared.app.app_context():
        other_holder = db.session.get(CardOrder, other).items[0].holder_id
    assert (
        production.get(f"/staff/production/orders/{order_id}/holders/{other_holder}/photo")
    ).status_code == 404


def test_a_draft_is_not_productions_to_see(shared, production):
    order_id = _order(shared, OrderState.DRAFT)
    assert production.get(f"/staff/production/orders/{order_id}").status_code == 404


def test_other_staff_may_not_work_orders(shared, fixed_clock):
    order_id = _order(shared)
    for kind in ("support", "billing"):
        client = _client(shared, kind)
        assert client.get("/staff/production/orders").status_code == 403
        assert client.get(f"/staff/production/orders/{order_id}").status_code == 403
        assert _step(client, order_id, "confirm", confirmed="yes").status_code == 403
    assert _get(shared, order_id).state == OrderState.SUBMITTED


# --- the steps (R-81, R-82) ---------------------------------------------------------------------


def _notices(shared, order_id: int, kind: str) -> list[OutboxEmail]:
    return [
        e for e in rows(shared.app, OutboxEmail, kind=kind) if f"IC-{order_id:06d}" in e.subject
    ]


def test_from_confirmation_to_delivery_each_step_asked_first_and_told(shared, production):
    """R-81: confirming sends 注文確認連絡 (the contract is formed); R-82: accepting sends
    注文受付連絡 (the window closes); shipping tells the carrier and tracking number."""
    order_id = _order(shared)
    page = _text(production.get(f"/staff/production/orders/{order_id}"))
    assert 'data-testid="step-confirm"' in page and "注文確認連絡" in page

    before = row_counts(shared.app)
    asked = _step(production, order_id, "confirm")
    assert asked.status_code == 200
    summary = _text(asked)
    assert "注文確認連絡" in summary and "the contract is formed" in summary
    assert not RULE_ID.search(summary)
    assert row_counts(shared.app) == before
    assert _step(production, order_id, "confirm", confirmed="edit").status_code == 200
    assert row_counts(shared.app) == before

    done = _step(production, order_id, "confirm", confirmed="yes")
    assert done.status_code == 302
    assert done.headers["Location"] == f"/staff/production/orders/{order_id}"
    order = _get(shared, order_id)
    assert order.state == OrderState.CONFIRMED and order.confirmed_at is not None
    (confirmation,) = {
        (e.subject, e.affects_contract) for e in _notices(shared, order_id, "card_order_confirmed")
    }
    assert confirmation[1] is True
    assert {e.to_address for e in _notices(shared, order_id, "card_order_confirmed")} == {
        "billing@alpha.example",  # the registration's operations manager
        "admin@alpha.example",
    }

    assert _step(production, order_id, "accept", confirmed="yes").status_code == 302
    assert _get(shared, order_id).state == OrderState.ACCEPTED
    assert _notices(shared, order_id, "card_order_accepted")
    assert _step(production, order_id, "start_production", confirmed="yes").status_code == 302

    bad = _step(production, order_id, "ship", carrier="", tracking_number="", confirmed="yes")
    assert bad.status_code == 422 and "This field is required." in _text(bad)
    bad = _step(
        production,
        order_id,
        "ship",
        carrier="ヤマト運輸",
        tracking_number="<script>",
        confirmed="yes",
    )
    assert bad.status_code == 422 and "letters, digits and hyphens" in _text(bad)
    assert _get(shared, order_id).state == OrderState.IN_PRODUCTION
    asked = _step(
        production, order_id, "ship", carrier="ヤマト運輸", tracking_number="１２３４－５６７８"
    )
    assert asked.status_code == 200 and 'value="1234-5678"' in _text(asked)
    shipped = _step(
        production,
        order_id,
        "ship",
        carrier="ヤマト運輸",
        tracking_number="1234-5678",
        confirmed="yes",
    )
    assert shipped.status_code == 302
    order = _get(shared, order_id)
    assert (order.state, order.carrier, order.tracking_number) == (
        OrderState.SHIPPED,
        "ヤマト運輸",
        "1234-5678",
    )
    (notice,) = {e.body for e in _notices(shared, order_id, "card_order_shipped")}
    assert "1234-5678" in notice and "ヤマト運輸" in notice
    assert _step(production, order_id, "deliver", confirmed="yes").status_code == 302
    assert _get(shared, order_id).state == OrderState.DELIVERED

    events = rows(shared.app, CardOrderEvent, order_id=order_id)
    assert [e.action for e in events] == [
        "confirm",
        "accept",
        "start_production",
        "ship",
        "deliver",
    ]
    assert {e.user_id for e in events} == {shared.world.ids["production"]}
    # Kept for the organisation under Notices.
    with shared.app.app_context():
        kinds = {n.kind for n in mail.notices_of(shared.world.org_a, limit=500)}
    assert {"card_order_confirmed", "card_order_accepted", "card_order_shipped"} <= kinds


def test_the_japanese_e_mails_name_the_order_confirmation_and_acceptance_as_the_terms_do(
    shared, production
):
    """R-81/R-82: the organisation's language is Japanese: the subjects say 注文確認連絡 and
    注文受付連絡 (the Japanese catalog carries them)."""
    order_id = _order(shared)
    _step(production, order_id, "confirm", confirmed="yes")
    _step(production, order_id, "accept", confirmed="yes")
    (confirmed,) = {e.subject for e in _notices(shared, order_id, "card_order_confirmed")}
    (accepted,) = {e.subject for e in _notices(shared, order_id, "card_order_accepted")}
    assert "注文確認連絡" in confirmed and "注文受付連絡" in accepted


def test_a_step_the_order_has_passed_is_refused_plainly(shared, production):
    order_id = _order(shared, OrderState.CANCELLED)
    before = row_counts(shared.app)
    response = _step(production, order_id, "accept", confirmed="yes")
    assert response.status_code == 409
    assert "The customer cancelled this order on March 1, 2027 10:00: it cannot be accepted." in (
        _text(response)
    )
    assert row_counts(shared.app) == before


# --- the proof sheet ------------------------------------------------------------------------------


def test_the_proof_sheet_has_a_card_per_card_ordered_and_is_never_stored(shared, production):
    order_id = _order(shared, OrderState.ACCEPTED, quantities=(3, 2))
    before = row_counts(shared.app)
    response = production.get(f"/staff/production/orders/{order_id}/proof.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    text = "".join(p.extract_text() for p in PdfReader(BytesIO(response.data)).pages)
    compact = text.replace(" ", "")
    assert compact.count("製作太郎0") == 3 and compact.count("製作太郎1") == 2
    assert f"IC-{order_id:06d}" in text and not RULE_ID.search(text)
    assert row_counts(shared.app) == before


# --- a cancellation and an acceptance that cross (R-82) ------------------------------------------


def test_r82_twenty_cancels_and_acceptances_at_once_leave_exactly_one(shared, fixed_clock):
    """Ten of A's administrator's browsers press "Cancel the order" and ten of production's
    press "Accept" on one confirmed order, all at once: the order ends cancelled or accepted,
    never both; one event and one notice of that step; every other request is told plainly
    what happened first (409) and changed nothing."""
    order_id = _order(shared, OrderState.CONFIRMED)
    admins = [_client(shared, "admin") for _ in range(10)]
    producers = [_client(shared, "production") for _ in range(10)]
    start = threading.Barrier(20)

    def cancel(client):
        start.wait()
        response = client.post(f"/id-cards/orders/{order_id}/cancel", data={"confirmed": "yes"})
        return "cancel", response.status_code, _text(response)

    def accept(client):
        start.wait()
        response = _step(client, order_id, "accept", confirmed="yes")
        return "accept", response.status_code, _text(response)

    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(cancel, c) for c in admins]
        futures += [pool.submit(accept, c) for c in producers]
        results = [f.result() for f in futures]

    winners = [r for r in results if r[1] == 302]
    losers = [r for r in results if r[1] != 302]
    assert len(winners) == 1, [r[:2] for r in results]
    assert {r[1] for r in losers} == {409}
    won = winners[0][0]
    order = _get(shared, order_id)
    assert order.state == (OrderState.CANCELLED if won == "cancel" else OrderState.ACCEPTED)
    events = rows(shared.app, CardOrderEvent, order_id=order_id)
    assert [e.action for e in events] == [won]
    assert len(_notices(shared, order_id, "card_order_cancelled")) == (2 if won == "cancel" else 0)
    assert len(_notices(shared, order_id, "card_order_accepted")) == (2 if won == "accept" else 0)
    with shared.app.app_context():
        notices = [
            n
            for n in mail.notices_of(shared.world.org_a, limit=500)
            if f"IC-{order_id:06d}" in n.subject
        ]
    assert len(notices) == 1
    for kind, _status, text in losers:
        if won == "accept" and kind == "cancel":
            assert "before your cancellation: it can no longer be cancelled." in text
        elif won == "cancel" and kind == "accept":
            assert "The customer cancelled this order on" in text
            assert "it cannot be accepted." in text
        else:
            assert "This was already done on" in text
        assert "Nothing was changed." in text
