"""Card orders in the customer's portal (R-81, R-82, R-85 and the reading of the order's
states): a draft is checked and sent; a sent order is withdrawn until confirmed; a confirmed
order is cancelled by the customer's administrators only, after a confirmation page, until
it is accepted; once accepted the page says why it can no longer be cancelled. Agents place
and withdraw the orders they placed; staff viewing as the customer see orders without the
holders' names or photos.
"""

from __future__ import annotations

import itertools
import re

import pytest
import sqlalchemy as sa

from portal.domain.inet import OrderState
from portal.extensions import db
from portal.models import (
    AuditEvent,
    CardHolder,
    CardOrder,
    CardOrderEvent,
    CardOrderItem,
    InetRegistration,
    Organisation,
    OutboxEmail,
    User,
)
from portal.permissions import Actor
from portal.services import card_orders
from tests.factories import (
    add_card_holder,
    add_card_order,
    become,
    row_counts,
    rows,
)
from tests.web.routes import inet_world

RULE_ID = re.compile(r"\bR-\d\d\b")
_numbers = itertools.count(1)


@pytest.fixture
def admin(shared, fixed_clock):
    client = shared.app.test_client()
    become(shared.app, client, shared.world, "admin")
    return client


def _client(shared, kind: str):
    client = shared.app.test_client()
    become(shared.app, client, shared.world, kind)
    return client


def _holder(shared, *, photo: bool = True, name: str = "山田 太郎", org: str = "a") -> int:
    inet_world(shared.app, shared.world, org)
    with shared.app.app_context():
        organisation = db.session.get(Organisation, getattr(shared.world, f"org_{org}"))
        holder = add_card_holder(
            organisation, f"T-{org.upper()}-{next(_numbers):04d}", name=name, photo=photo
        )
        db.session.commit()
        return holder.id


def _order(
    shared, state: OrderState = OrderState.CONFIRMED, *, placed_by: str = "admin", holders=None
) -> int:
    """A fresh order of A's, moved straight to `state`, for one new holder (or those given)."""
    ids = inet_world(shared.app, shared.world, "a")
    holder_ids = holders or [_holder(shared)]
    with shared.app.app_context():
        order = add_card_order(
            db.session.get(InetRegistration, ids["registration"]),
            db.session.get(User, shared.world.ids[placed_by]),
            [db.session.get(CardHolder, h) for h in holder_ids],
            state=state,
        )
        db.session.commit()
        return order.id


def _get(shared, model, id_):
    with shared.app.app_context():
        found = db.session.get(model, id_)
        db.session.expunge(found)
        return found


def _text(response) -> str:
    return response.get_data(as_text=True)


def _form(holders: dict[int, int], **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "holder": [str(h) for h in holders],
        **{f"quantity_{h}": str(q) for h, q in holders.items()},
        "design": "navy",
        "delivery_name": "総務部 受付",
        "delivery_postal_code": "１００－０００１",  # full-width, as Japanese keyboards type it
        "delivery_address": "東京都千代田区千代田1-1",
        "delivery_phone": "03-1234-5678",
        "note": "受付に預けてください。",
    }
    data.update(overrides)
    return data


def _accept(shared, order_id: int) -> None:
    """Production staff accept the order (注文受付連絡), as the back office would."""
    with shared.app.test_request_context():
        production = Actor(db.session.get(User, shared.world.ids["production"]))
        card_orders.accept(production, db.session.get(CardOrder, order_id))
        db.session.commit()


# --- placing an order ---------------------------------------------------------------------------


def test_an_administrator_puts_a_draft_together_checks_it_and_sends_it(shared, admin):
    """The draft keeps what was chosen (quantities, design, delivery); sending it copies the
    holders' details, records who sent it and e-mails a receipt kept under Notices (R-61);
    it is not yet a contract (R-81)."""
    first, second = _holder(shared, name="佐藤 花子"), _holder(shared, name="鈴木 次郎")
    page = _text(admin.get("/id-cards/orders/new"))
    assert 'value="Alpha K.K."' in page  # the delivery starts from the registered information
    assert f'id="holder-{first}"' in page and 'for="quantity-' in page
    main = page.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    assert "¥" not in main and "yen" not in main.lower()  # free of charge

    response = admin.post("/id-cards/orders/new", data=_form({first: 2, second: 1}))
    assert response.status_code == 302
    location = response.headers["Location"]
    order_id = int(location.rsplit("/", 1)[1])
    draft = _get(shared, CardOrder, order_id)
    assert draft.state == OrderState.DRAFT
    assert (draft.design, draft.delivery_postal_code) == ("navy", "100-0001")
    assert [
        (i.holder_id, i.quantity) for i in rows(shared.app, CardOrderItem, order_id=order_id)
    ] == [
        (first, 2),
        (second, 1),
    ]

    page = _text(admin.get(location))
    assert 'data-testid="send-order"' in page and "nothing has been sent" in page
    assert not rows(shared.app, OutboxEmail, kind="card_order_submitted")

    # The holder's name changed after the draft was made: the card is printed as sent.
    with shared.app.app_context():
        db.session.get(CardHolder, first).name = "佐藤 花子（旧姓 田中）"
        db.session.commit()
    sent = admin.post(f"/id-cards/orders/{order_id}/submit", data={"confirmed": "yes"})
    assert sent.status_code == 302 and sent.headers["Location"] == location
    order = _get(shared, CardOrder, order_id)
    assert order.state == OrderState.SUBMITTED and order.submitted_at is not None
    items = rows(shared.app, CardOrderItem, order_id=order_id)
    assert items[0].name == "佐藤 花子（旧姓 田中）"
    (event,) = rows(shared.app, CardOrderEvent, order_id=order_id, action="submit")
    assert (event.from_state, event.to_state) == (OrderState.DRAFT, OrderState.SUBMITTED)
    assert event.user_id == shared.world.ids["admin"]
    receipts = rows(shared.app, OutboxEmail, kind="card_order_submitted")
    assert {e.to_address for e in receipts} == {"billing@alpha.example", "admin@alpha.example"}
    assert all(e.is_notice and e.organisation_id == shared.world.org_a for e in receipts)
    assert "IC-" in receipts[0].subject and not RULE_ID.search(receipts[0].body)
    assert "佐藤" not in receipts[0].body  # no holder's name in an e-mail
    assert rows(shared.app, AuditEvent, action="card_order.submit")

    page = _text(admin.get(location))
    assert "We have your order" in page and 'data-testid="withdraw-order"' in page


def test_a_holder_without_a_photo_cannot_be_sent_and_is_named(shared, admin):
    with_photo, without = _holder(shared), _holder(shared, photo=False, name="写真 なし子")
    response = admin.post("/id-cards/orders/new", data=_form({with_photo: 1, without: 1}))
    order_id = int(response.headers["Location"].rsplit("/", 1)[1])
    page = _text(admin.get(response.headers["Location"]))
    assert "Add a photo for: 写真 なし子" in page
    assert 'data-testid="send-order"' not in page

    refused = admin.post(f"/id-cards/orders/{order_id}/submit", data={"confirmed": "yes"})
    assert refused.status_code == 422
    assert "写真 なし子" in _text(refused)
    assert _get(shared, CardOrder, order_id).state == OrderState.DRAFT


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"delivery_postal_code": "12-34"}, "Enter a postal code like 100-0001."),
        ({"delivery_name": "総務部\x00"}, "Remove the control characters"),
        ({"delivery_phone": "call me"}, "Enter a phone number like 03-1234-5678."),
        ({"delivery_address": "東" * 301}, "Use at most 300 characters."),
        ({"note": "x" * 501}, "Use at most 500 characters."),
        ({"design": "gold"}, "Not a valid choice"),
        ({"holder": []}, "Choose at least one card holder."),
        ({"holder": ["abc"]}, "Choose card holders from the list."),
        ({"holder": [str(i) for i in range(1, 503)]}, "at most 500 card holders"),
        ({"holder": ["999999999"]}, "no longer registered"),
        ("quantity", "between 1 and 10 cards"),
        ("other_organisation", "no longer registered"),
    ],
)
def test_bad_input_is_refused_next_to_the_field_and_nothing_is_stored(
    shared, admin, change, message
):
    holder = _holder(shared)
    data = _form({holder: 1})
    if change == "quantity":
        data[f"quantity_{holder}"] = "11"
    elif change == "other_organisation":
        data = _form({_holder(shared, org="b"): 1})
    else:
        data.update(change)
    before = row_counts(shared.app)
    response = admin.post("/id-cards/orders/new", data=data)
    assert response.status_code == 422
    assert message in _text(response)
    assert row_counts(shared.app) == before


def test_an_administrator_changes_a_draft_but_not_a_sent_order(shared, admin):
    holder, other = _holder(shared), _holder(shared)
    response = admin.post("/id-cards/orders/new", data=_form({holder: 1}))
    location = response.headers["Location"]
    order_id = int(location.rsplit("/", 1)[1])
    assert admin.get(f"{location}/edit").status_code == 200
    changed = admin.post(f"{location}/edit", data=_form({other: 3}, design="visitor"))
    assert changed.status_code == 302
    assert [
        (i.holder_id, i.quantity) for i in rows(shared.app, CardOrderItem, order_id=order_id)
    ] == [(other, 3)]
    admin.post(f"{location}/submit", data={"confirmed": "yes"})
    refused = admin.post(f"{location}/edit", data=_form({holder: 1}))
    assert refused.status_code == 409
    assert "can no longer be changed" in _text(refused)


def test_a_draft_is_discarded_after_a_confirmation_and_nothing_is_e_mailed(shared, admin):
    response = admin.post("/id-cards/orders/new", data=_form({_holder(shared): 1}))
    location = response.headers["Location"]
    confirm = admin.get(f"{location}/withdraw")
    assert confirm.status_code == 200 and "Discard the draft" in _text(confirm)
    assert admin.post(f"{location}/withdraw", data={}).status_code == 200  # asked again
    done = admin.post(f"{location}/withdraw", data={"confirmed": "yes"})
    assert done.status_code == 302
    order = _get(shared, CardOrder, int(location.rsplit("/", 1)[1]))
    assert order.state == OrderState.WITHDRAWN and order.submitted_at is None
    assert not [e for e in rows(shared.app, OutboxEmail) if str(order.id) in e.subject]


def test_a_sent_order_is_withdrawn_after_a_confirmation_until_it_is_confirmed(shared, admin):
    order_id = _order(shared, OrderState.SUBMITTED)
    url = f"/id-cards/orders/{order_id}/withdraw"
    page = admin.get(url)
    assert page.status_code == 200
    assert 'data-testid="confirm-summary"' in _text(page)
    assert "no contract was formed" in _text(page)
    back = admin.post(url, data={"confirmed": "edit"})
    assert back.status_code == 302 and _get(shared, CardOrder, order_id).state == "submitted"
    assert admin.post(url, data={"confirmed": "yes"}).status_code == 302
    assert _get(shared, CardOrder, order_id).state == OrderState.WITHDRAWN
    (notice,) = {
        e.subject
        for e in rows(shared.app, OutboxEmail, kind="card_order_withdrawn")
        if f"IC-{order_id:06d}" in e.subject
    }
    assert "取り下げ" in notice  # in the organisation's language (Japanese)

    confirmed = _order(shared, OrderState.CONFIRMED)
    refused = admin.get(f"/id-cards/orders/{confirmed}/withdraw")
    assert refused.status_code == 409
    assert "You can cancel it until it is accepted." in _text(refused)


# --- cancelling (R-82) -----------------------------------------------------------------------


def test_r82_inside_the_window_cancel_asks_first_then_cancels_and_tells_the_customer(shared, admin):
    order_id = _order(shared)
    page = _text(admin.get(f"/id-cards/orders/{order_id}"))
    assert f'href="/id-cards/orders/{order_id}/cancel"' in page
    assert f'action="/id-cards/orders/{order_id}/cancel"' not in page  # never in one click
    confirm = admin.get(f"/id-cards/orders/{order_id}/cancel")
    assert confirm.status_code == 200
    assert "until we accept it" in _text(confirm) and not RULE_ID.search(_text(confirm))
    before = row_counts(shared.app)
    assert admin.post(f"/id-cards/orders/{order_id}/cancel", data={}).status_code == 200
    assert (
        admin.post(f"/id-cards/orders/{order_id}/cancel", data={"confirmed": "edit"}).status_code
        == 302
    )
    assert row_counts(shared.app) == before

    done = admin.post(f"/id-cards/orders/{order_id}/cancel", data={"confirmed": "yes"})
    assert done.status_code == 302
    order = _get(shared, CardOrder, order_id)
    assert order.state == OrderState.CANCELLED and order.cancelled_at is not None
    (event,) = rows(shared.app, CardOrderEvent, order_id=order_id, action="cancel")
    assert (event.from_state, event.to_state) == (OrderState.CONFIRMED, OrderState.CANCELLED)
    notices = [
        e
        for e in rows(shared.app, OutboxEmail, kind="card_order_cancelled")
        if f"IC-{order_id:06d}" in e.subject
    ]
    assert notices and all(e.affects_contract and e.is_notice for e in notices)
    assert "cancelled on" in _text(admin.get(f"/id-cards/orders/{order_id}"))

    again = admin.post(f"/id-cards/orders/{order_id}/cancel", data={"confirmed": "yes"})
    assert again.status_code == 409 and "Nothing was changed" in _text(again)


def test_r82_once_accepted_the_page_says_why_it_can_no_longer_be_cancelled(shared, admin):
    order_id = _order(shared, OrderState.ACCEPTED)
    page = _text(admin.get(f"/id-cards/orders/{order_id}"))
    assert 'data-testid="cancel-order"' not in page
    why = re.search(r'data-testid="why-not-cancellable">(.*?)</p>', page, re.S).group(1)
    assert "only between its confirmation and its acceptance" in why
    assert "March 1, 2027 10:00" in why and not RULE_ID.search(why)
    before = row_counts(shared.app)
    for response in (
        admin.get(f"/id-cards/orders/{order_id}/cancel"),
        admin.post(f"/id-cards/orders/{order_id}/cancel", data={"confirmed": "yes"}),
    ):
        assert response.status_code == 409
        assert (
            "This order was accepted on March 1, 2027 10:00, before your cancellation: it can "
            "no longer be cancelled." in _text(response)
        )
    assert row_counts(shared.app) == before


def test_r82_an_acceptance_that_got_there_while_the_page_was_open_wins_and_is_named(shared, admin):
    """The confirmation page was shown inside the window; production accepted before the
    administrator pressed the button: 409, the plain message, and nothing changed."""
    order_id = _order(shared)
    assert admin.get(f"/id-cards/orders/{order_id}/cancel").status_code == 200
    _accept(shared, order_id)
    before = row_counts(shared.app)
    response = admin.post(f"/id-cards/orders/{order_id}/cancel", data={"confirmed": "yes"})
    assert response.status_code == 409
    assert "before your cancellation: it can no longer be cancelled." in _text(response)
    assert row_counts(shared.app) == before
    assert _get(shared, CardOrder, order_id).state == OrderState.ACCEPTED


# --- who sees and does what (R-71, R-72, R-85) ----------------------------------------------


def test_agents_place_and_withdraw_their_own_orders_but_never_cancel_one(shared):
    """R-82 reading / R-85: an agent inside the client's portal orders for it and sees the
    orders it placed (with the holders' names, without photos); cancelling is the customer's."""
    agent = _client(shared, "sales_agent")
    holder = _holder(shared, name="代理 注文子")
    response = agent.post("/id-cards/orders/new", data=_form({holder: 1}))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert agent.post(f"{location}/submit", data={"confirmed": "yes"}).status_code == 302
    order_id = int(location.rsplit("/", 1)[1])
    assert _get(shared, CardOrder, order_id).placed_by_id == shared.world.ids["sales_agent"]
    (event,) = rows(shared.app, CardOrderEvent, order_id=order_id, action="submit")
    assert event.entry_id is not None  # who acted, and inside which entry

    listing = _text(agent.get("/id-cards/orders"))
    assert f"IC-{order_id:06d}" in listing
    admins_order = _order(shared)
    assert f"IC-{admins_order:06d}" not in listing
    assert agent.get(f"/id-cards/orders/{admins_order}").status_code == 404

    page = _text(agent.get(location))
    assert "代理 注文子" in page and "photo-thumb" not in page

    with shared.app.app_context():  # production confirms the agent's order
        db.session.execute(
            sa.update(CardOrder)
            .where(CardOrder.id == order_id)
            .values(state=OrderState.CONFIRMED, confirmed_at=CardOrder.submitted_at)
        )
        db.session.commit()
    page = _text(agent.get(location))
    assert 'data-testid="cancel-order"' not in page
    assert "Only the organisation's own administrators can cancel it" in page
    assert agent.get(f"{location}/cancel").status_code == 403
    assert agent.post(f"{location}/cancel", data={"confirmed": "yes"}).status_code == 403
    assert _get(shared, CardOrder, order_id).state == OrderState.CONFIRMED


def test_r85_staff_viewing_as_the_customer_see_orders_without_names_or_photos(shared):
    holder = _holder(shared, name="秘密 保護子")
    order_id = _order(shared, holders=[holder])
    viewing = _client(shared, "support_viewing")
    assert f"IC-{order_id:06d}" in _text(viewing.get("/id-cards/orders"))
    page = _text(viewing.get(f"/id-cards/orders/{order_id}"))
    assert "秘密 保護子" not in page and "photo-thumb" not in page
    assert "Card holder 1" in page
    assert 'data-testid="cancel-order"' not in page
    assert viewing.get(f"/id-cards/orders/{order_id}/cancel").status_code == 403
    assert viewing.get("/id-cards/orders/new").status_code == 403


def test_r85_the_administrator_sees_names_and_members_see_no_orders(shared, admin):
    holder = _holder(shared, name="管理 見える")
    order_id = _order(shared, holders=[holder])
    page = _text(admin.get(f"/id-cards/orders/{order_id}"))
    assert "管理 見える" in page
    assert f'src="/id-cards/holders/{holder}/photo"' in page  # served by the holders' route
    member = _client(shared, "member")
    assert member.get("/id-cards/orders").status_code == 403
    assert member.get(f"/id-cards/orders/{order_id}").status_code == 404


def test_the_list_shows_state_cards_and_dates_a_page_at_a_time(shared, admin):
    order_id = _order(shared, OrderState.SHIPPED)
    listing = _text(admin.get("/id-cards/orders"))
    row = re.search(rf"IC-{order_id:06d}.*?</tr>", listing, re.S).group(0)
    assert 'data-state="shipped"' in row and "Shipped" in row
    assert "March 1, 2027 10:00" in row
    with shared.app.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count()).where(CardOrder.organisation_id == shared.world.org_a)
        )
    assert count > card_orders.PAGE_SIZE or "Older page" not in listing
    # A page past the end is empty, never an error; a silly page number is bounded.
    assert admin.get("/id-cards/orders?page=99999999999").status_code == 200


def test_a_shipped_order_shows_its_carrier_and_tracking_number(shared, admin):
    order_id = _order(shared, OrderState.SHIPPED)
    page = _text(admin.get(f"/id-cards/orders/{order_id}"))
    shipment = re.search(r'data-testid="shipment">(.*?)</dl>', page, re.S).group(1)
    assert "ヤマト運輸" in shipment and "1234-5678-9012" in shipment
