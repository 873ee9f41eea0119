"""The pure rules of I-NET SERVICE orders, photos and registrations (portal/domain/inet.py):
the order's states and who moves them (R-81, R-82 and the reading of the order's states), the
day photos are deleted (R-83) and when a registration is dormant (R-84)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.domain.inet import (
    CONTRACT_STATES,
    FINAL_STATES,
    PROGRESS,
    TRANSITIONS,
    CancelRefusal,
    OrderAction,
    OrderActor,
    OrderState,
    actions_for,
    cancel_window_open,
    dormant_since,
    is_dormant,
    may,
    photos_delete_on,
    why_not_cancellable,
)

ADMIN, AGENT, PRODUCTION = OrderActor.CUSTOMER_ADMIN, OrderActor.AGENT, OrderActor.PRODUCTION


# --- the order's states ------------------------------------------------------------------------


def test_the_happy_path_from_draft_to_delivered():
    """draft -> submitted (customer) -> confirmed (production, 注文確認連絡) -> accepted
    (production, 注文受付連絡) -> in production -> shipped -> delivered."""
    steps = [
        (OrderAction.SUBMIT, ADMIN),
        (OrderAction.CONFIRM, PRODUCTION),
        (OrderAction.ACCEPT, PRODUCTION),
        (OrderAction.START_PRODUCTION, PRODUCTION),
        (OrderAction.SHIP, PRODUCTION),
        (OrderAction.DELIVER, PRODUCTION),
    ]
    state = OrderState.DRAFT
    visited = []
    by_action = {t.action: t for t in TRANSITIONS}
    for action, actor in steps:
        assert may(action, state, actor), (action, state)
        state = by_action[action].target
        visited.append(state)
    assert tuple(visited) == PROGRESS
    assert state in FINAL_STATES


def test_r82_only_the_customers_administrator_cancels_and_only_while_confirmed():
    """R-82 reading: the customer cancels, in the portal, between confirmation and acceptance;
    agents and production staff never cancel a confirmed order for the customer."""
    for state in OrderState:
        assert may(OrderAction.CANCEL, state, ADMIN) is (state == OrderState.CONFIRMED)
        assert not may(OrderAction.CANCEL, state, AGENT)
        assert not may(OrderAction.CANCEL, state, PRODUCTION)
    assert [s for s in OrderState if cancel_window_open(s)] == [OrderState.CONFIRMED]


def test_a_submitted_order_is_withdrawn_by_whoever_may_place_it_but_a_confirmed_one_is_not():
    """A submitted order is not yet a contract (R-81): the customer or the agent who placed it
    takes it back; once confirmed, only cancelling (R-82) is left."""
    assert may(OrderAction.WITHDRAW, OrderState.SUBMITTED, ADMIN)
    assert may(OrderAction.WITHDRAW, OrderState.SUBMITTED, AGENT)
    assert not may(OrderAction.WITHDRAW, OrderState.SUBMITTED, PRODUCTION)
    assert not may(OrderAction.WITHDRAW, OrderState.CONFIRMED, ADMIN)
    assert actions_for(OrderState.CONFIRMED, ADMIN) == (OrderAction.CANCEL,)
    assert actions_for(OrderState.CONFIRMED, AGENT) == ()


def test_production_moves_the_order_on_and_customers_never_do():
    for action in (
        OrderAction.CONFIRM,
        OrderAction.ACCEPT,
        OrderAction.START_PRODUCTION,
        OrderAction.SHIP,
        OrderAction.DELIVER,
    ):
        for state in OrderState:
            assert not may(action, state, ADMIN)
            assert not may(action, state, AGENT)
    assert actions_for(OrderState.CONFIRMED, PRODUCTION) == (OrderAction.ACCEPT,)
    assert actions_for(OrderState.SUBMITTED, PRODUCTION) == (OrderAction.CONFIRM,)


def test_final_states_are_left_by_nothing_and_each_transition_has_one_source():
    for state in FINAL_STATES:
        for actor in OrderActor:
            assert actions_for(state, actor) == ()
    assert len({t.action for t in TRANSITIONS}) == len(TRANSITIONS)


def test_r81_the_contract_exists_from_confirmation_unless_cancelled():
    assert OrderState.SUBMITTED not in CONTRACT_STATES
    assert OrderState.CONFIRMED in CONTRACT_STATES
    assert OrderState.CANCELLED not in CONTRACT_STATES


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (OrderState.DRAFT, CancelRefusal.NOT_YET_CONFIRMED),
        (OrderState.SUBMITTED, CancelRefusal.NOT_YET_CONFIRMED),
        (OrderState.CONFIRMED, None),
        (OrderState.ACCEPTED, CancelRefusal.ACCEPTED),
        (OrderState.IN_PRODUCTION, CancelRefusal.ACCEPTED),
        (OrderState.SHIPPED, CancelRefusal.ACCEPTED),
        (OrderState.DELIVERED, CancelRefusal.ENDED),
        (OrderState.WITHDRAWN, CancelRefusal.ENDED),
        (OrderState.CANCELLED, CancelRefusal.ENDED),
    ],
)
def test_r82_why_an_order_cannot_be_cancelled(state, reason):
    assert why_not_cancellable(state) == reason


@given(st.sampled_from(list(OrderState)), st.sampled_from(list(OrderActor)))
def test_may_agrees_with_actions_for(state, actor):
    for action in OrderAction:
        assert may(action, state, actor) is (action in actions_for(state, actor))


# --- photos and dormant registrations (R-84) -------------------------------------------


@pytest.mark.parametrize(
    ("ended", "deleted"),
    [
        (date(2027, 3, 15), date(2027, 4, 15)),
        (date(2027, 1, 31), date(2027, 2, 28)),  # February has no 31st: its last day
        (date(2028, 1, 30), date(2028, 2, 29)),  # a leap year
        (date(2027, 12, 31), date(2028, 1, 31)),
    ],
)
def test_r83_photos_are_deleted_one_month_after_the_usage_period_ended(ended, deleted):
    assert photos_delete_on(ended) == deleted


def test_r84_a_registration_unused_for_three_years_is_dormant_from_that_day():
    last_used = date(2024, 5, 10)
    assert dormant_since(last_used) == date(2027, 5, 10)
    assert not is_dormant(last_used, date(2027, 5, 9))
    assert is_dormant(last_used, date(2027, 5, 10))


def test_r84_a_29_february_becomes_dormant_on_28_february():
    assert dormant_since(date(2024, 2, 29)) == date(2027, 2, 28)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)))
def test_deletion_and_dormancy_days_are_always_later(day):
    assert day + timedelta(days=27) < photos_delete_on(day) <= day + timedelta(days=31)
    assert 365 * 3 <= (dormant_since(day) - day).days <= 366 * 3
