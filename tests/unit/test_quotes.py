"""Rules R-05, R-06, R-13, R-15, R-20..R-23 and R-30..R-32 of RULES.md: quotes for plan
changes, cancellation and renewal, as worked examples and as properties."""

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain import quotes
from portal.domain.calendar import (
    BillingMonth,
    Term,
    add_billing_months,
    billing_month_of,
    is_anchor_day,
    is_month_end,
    minimum_term_end,
    term_anchor,
)
from portal.domain.quotes import (
    CHANGE_LEAD_DAYS,
    MAX_MONTHS_AHEAD,
    TERMINATION_CHOICES,
    Charge,
    ChargeKind,
    ContractState,
    PlanTerms,
    PriceTerms,
    Quote,
    Refusal,
    RequestKind,
    invoice_month_for,
    quote,
    quote_agency_renewal,
    quote_cancellation,
    quote_downgrade,
    quote_non_renewal,
    quote_upgrade,
    suggested_plan,
    unexpired_months,
)

ONE_DAY = timedelta(days=1)

# --- the W-1 contract and its price list -------------------------------------------------

SERVICE = 1
OTHER_SERVICE = 2
SMALL, MEDIUM, LARGE, RETIRED, OTHER, NO_CAPACITY = 1, 2, 3, 4, 5, 6

PRICES = PriceTerms(
    change_fee=5_000,
    plans=(
        PlanTerms(SMALL, SERVICE, monthly_fee=30_000, minimum_months=6, capacity_gb=100),
        PlanTerms(MEDIUM, SERVICE, monthly_fee=50_000, minimum_months=12, capacity_gb=500),
        PlanTerms(LARGE, SERVICE, monthly_fee=100_000, minimum_months=12, capacity_gb=1_000),
        PlanTerms(
            RETIRED, SERVICE, monthly_fee=150_000, minimum_months=12, capacity_gb=2_000, sold=False
        ),
        PlanTerms(OTHER, OTHER_SERVICE, monthly_fee=200_000, minimum_months=12, capacity_gb=5_000),
        PlanTerms(NO_CAPACITY, SERVICE, monthly_fee=10_000, minimum_months=1, capacity_gb=None),
    ),
)

# W-1: S = 2026-11-05, anchor day 21, M = 12, on the ¥50,000 plan.
W1 = ContractState(
    service_id=SERVICE,
    plan_id=MEDIUM,
    monthly_fee=50_000,
    minimum_months=12,
    service_start=date(2026, 11, 5),
    anchor_day=21,
)
AGENCY = replace(W1, via_agency=True)
W2_NOTICE = date(2027, 3, 1)


def _ok(result: Quote | Refusal) -> Quote:
    assert isinstance(result, Quote), result
    return result


def _refused(result: Quote | Refusal, code: str, field: str | None = None) -> Refusal:
    assert isinstance(result, Refusal), result
    assert result.code == code
    assert result.field == field
    return result


# --- worked examples ---------------------------------------------------------------------


def test_w2_worked_example():
    """W-2 (R-30, R-31, R-13, R-32): notice 2027-03-01 on the W-1 contract."""
    q = _ok(quote_cancellation(W1, W2_NOTICE))
    assert q.kind == RequestKind.CANCELLATION
    assert q.effective_on == date(2027, 4, 20)
    assert q.termination_choices[0] == date(2027, 4, 20)
    assert q.minimum_term_end == date(2027, 11, 20)
    assert q.unexpired_months == 7  # 2027-04-21 .. 2027-11-20
    assert q.charges == (Charge(ChargeKind.SHORTFALL, 350_000, 10, months=7),)
    assert q.shortfall == 350_000
    assert q.subtotal == 350_000
    assert q.tax_total == 35_000
    assert q.total == 385_000
    assert q.invoice_month is not None
    assert q.invoice_month.name == "2027-05"
    assert q.invoice_month.start == date(2027, 4, 21)  # the invoice's issue date


def test_w3_worked_example():
    """W-3 (R-20, R-21, R-12): ¥50,000 → ¥100,000 plan, requested 2027-01-05 for 2027-01-15."""
    q = _ok(quote_upgrade(W1, PRICES, date(2027, 1, 5), LARGE, date(2027, 1, 15)))
    assert q.kind == RequestKind.UPGRADE
    assert q.effective_on == date(2027, 1, 15)
    assert q.earliest_effective_on == date(2027, 1, 15)
    assert q.target_plan_id == LARGE
    assert q.charge(ChargeKind.INITIAL_FEE_DIFFERENCE) == 50_000
    assert q.charge(ChargeKind.CHANGE_FEE) == 5_000
    assert q.subtotal == 55_000
    assert q.tax_total == 5_500
    assert q.total == 60_500
    assert q.shortfall == 0
    assert q.new_monthly_fee == 100_000
    assert q.new_fee_from == BillingMonth(2027, 2, date(2027, 1, 21), date(2027, 2, 20))
    assert q.new_fee_from.name == "2027-02"
    assert q.invoice_month == q.new_fee_from
    assert q.minimum_term_end == date(2027, 11, 20)  # R-21 reading: not restarted

    # One day earlier (or the request one day later) is inside the 10-day lead time.
    early = _refused(
        quote_upgrade(W1, PRICES, date(2027, 1, 5), LARGE, date(2027, 1, 14)),
        "inside_lead_time",
        "effective_on",
    )
    assert early.params == {"earliest": date(2027, 1, 15)}
    _refused(
        quote_upgrade(W1, PRICES, date(2027, 1, 6), LARGE, date(2027, 1, 15)),
        "inside_lead_time",
        "effective_on",
    )


# --- R-21 upgrade ------------------------------------------------------------------------


def test_r20_r21_upgrade_defaults_to_the_earliest_date():
    """R-20: without a chosen date the upgrade takes effect 10 days after the notice."""
    q = _ok(quote_upgrade(W1, PRICES, date(2027, 1, 5), LARGE))
    assert q.effective_on == date(2027, 1, 15)
    assert CHANGE_LEAD_DAYS == 10


def test_r21_upgrade_on_an_anchor_day_starts_the_new_fee_the_month_after():
    """R-21: effective on the first day of "2027-02", the new fee starts with "2027-03"."""
    q = _ok(quote_upgrade(W1, PRICES, date(2027, 1, 5), LARGE, date(2027, 1, 21)))
    assert q.new_fee_from.name == "2027-03"
    assert q.new_fee_from.start == date(2027, 1, 21) + timedelta(days=31)


# --- R-22 downgrade ----------------------------------------------------------------------


def test_r22_downgrade_quote_shows_every_amount_and_the_new_term():
    """R-22/R-32: shortfall, change fee, the lower plan's initial fee, the new contract's term."""
    q = _ok(quote_downgrade(W1, PRICES, W2_NOTICE, SMALL))
    assert q.kind == RequestKind.DOWNGRADE
    assert q.target_plan_id == SMALL
    assert q.effective_on == date(2027, 4, 20)
    assert q.unexpired_months == 7
    assert q.minimum_term_end == date(2027, 11, 20)
    assert set(q.charges) == {
        Charge(ChargeKind.SHORTFALL, 350_000, 10, months=7),
        Charge(ChargeKind.CHANGE_FEE, 5_000, 10),
        Charge(ChargeKind.INITIAL_FEE, 30_000, 10, on_new_contract=True),
    }
    assert len(q.charges) == 3
    assert q.subtotal == 385_000
    assert q.tax_total == 38_500
    assert q.total == 423_500
    assert q.invoice_month.name == "2027-05"
    # The new contract starts the day after the termination, an anchor day, so it is its A.
    assert q.new_service_start == date(2027, 4, 21)
    assert q.new_term_anchor == q.new_service_start
    assert q.new_minimum_months == 6
    assert q.new_minimum_term_end == date(2027, 10, 20)
    assert q.new_monthly_fee == 30_000


def test_r22_downgrade_after_the_minimum_term_has_no_shortfall():
    """R-22: outside the minimum term only the change fee and the new initial fee remain."""
    q = _ok(quote_downgrade(W1, PRICES, date(2027, 10, 1), SMALL))
    assert q.effective_on == date(2027, 11, 20)
    assert q.unexpired_months == 0
    assert q.shortfall == 0
    assert q.subtotal == 35_000
    assert q.new_service_start == date(2027, 11, 21)
    assert q.new_minimum_term_end == date(2028, 5, 20)


def test_r22_downgrade_at_a_later_chosen_month_end():
    q = _ok(quote_downgrade(W1, PRICES, W2_NOTICE, SMALL, date(2027, 6, 20)))
    assert q.effective_on == date(2027, 6, 20)
    assert q.unexpired_months == 5
    assert q.shortfall == 250_000
    assert q.new_term_anchor == date(2027, 6, 21)


# --- refusals ----------------------------------------------------------------------------


def test_r30_refused_termination_not_on_a_month_end():
    """R-30: the contract ends at the end of a billing month (the day before an anchor day)."""
    for result in (
        quote_cancellation(W1, W2_NOTICE, date(2027, 4, 30)),
        quote_downgrade(W1, PRICES, W2_NOTICE, SMALL, date(2027, 4, 21)),
    ):
        refusal = _refused(result, "not_month_end", "termination_on")
        assert refusal.params == {"earliest": date(2027, 4, 20)}


def test_r22_r30_refused_before_the_earliest_termination():
    """R-22/R-30: at least 30 days' notice; 2027-03-20 is a month end but too soon."""
    for result in (
        quote_cancellation(W1, W2_NOTICE, date(2027, 3, 20)),
        quote_downgrade(W1, PRICES, W2_NOTICE, SMALL, date(2027, 3, 20)),
    ):
        refusal = _refused(result, "termination_too_early", "termination_on")
        assert refusal.params == {"earliest": date(2027, 4, 20)}


def test_r21_r22_refused_wrong_direction():
    """R-21/R-22: an upgrade goes to a dearer plan, a downgrade to a cheaper one."""
    _refused(quote_downgrade(W1, PRICES, W2_NOTICE, LARGE), "not_a_downgrade", "plan")
    _refused(quote_upgrade(W1, PRICES, W2_NOTICE, SMALL), "not_an_upgrade", "plan")


def test_r21_r22_refused_same_plan():
    _refused(quote_upgrade(W1, PRICES, W2_NOTICE, MEDIUM), "same_plan", "plan")
    _refused(quote_downgrade(W1, PRICES, W2_NOTICE, MEDIUM), "same_plan", "plan")


def test_r10_refused_plan_of_another_service_or_unknown():
    """R-10: a plan belongs to a service; only the contract's service's plans are offered."""
    for plan_id in (OTHER, 999):
        _refused(quote_upgrade(W1, PRICES, W2_NOTICE, plan_id), "plan_not_offered", "plan")
        _refused(quote_downgrade(W1, PRICES, W2_NOTICE, plan_id), "plan_not_offered", "plan")
    _refused(quote_upgrade(W1, PRICES, W2_NOTICE, None), "plan_required", "plan")
    _refused(quote_downgrade(W1, PRICES, W2_NOTICE, None), "plan_required", "plan")


def test_r10_refused_plan_no_longer_sold():
    _refused(quote_upgrade(W1, PRICES, W2_NOTICE, RETIRED), "plan_not_sold", "plan")


def _every_kind(state: ContractState, notice_on: date) -> list[Quote | Refusal]:
    return [
        quote_upgrade(state, PRICES, notice_on, LARGE),
        quote_downgrade(state, PRICES, notice_on, SMALL),
        quote_cancellation(state, notice_on),
        quote_non_renewal(state, notice_on),
        quote_agency_renewal(replace(state, via_agency=True), notice_on),
    ]


def test_r23_refused_second_pending_request():
    """R-23: one pending request per contract at a time."""
    for result in _every_kind(replace(W1, has_pending_request=True), W2_NOTICE):
        _refused(result, "pending_request")


def test_r23_refused_on_an_ended_contract():
    ended = replace(W1, ended_on=date(2027, 2, 20))
    for result in _every_kind(ended, W2_NOTICE):
        refusal = _refused(result, "contract_ended")
        assert refusal.params == {"ended_on": date(2027, 2, 20)}


def test_r20_r30_refused_too_far_ahead():
    """A request dated more than MAX_MONTHS_AHEAD months ahead is refused (typo guard)."""
    assert MAX_MONTHS_AHEAD == 24
    too_far = _refused(
        quote_upgrade(W1, PRICES, W2_NOTICE, LARGE, date(2029, 3, 2)),
        "too_far_ahead",
        "effective_on",
    )
    assert too_far.params == {"months": 24}
    _ok(quote_upgrade(W1, PRICES, W2_NOTICE, LARGE, date(2029, 3, 1)))
    _refused(
        quote_cancellation(W1, W2_NOTICE, date(2029, 3, 20)), "too_far_ahead", "termination_on"
    )
    _refused(
        quote_downgrade(W1, PRICES, W2_NOTICE, SMALL, date(2029, 3, 20)),
        "too_far_ahead",
        "termination_on",
    )
    _ok(quote_cancellation(W1, W2_NOTICE, date(2029, 2, 20)))


# --- R-31 cancellation -------------------------------------------------------------------


def test_r31_cancellation_after_the_minimum_term_has_no_shortfall_and_no_invoice():
    """R-31: no shortfall after the minimum term (renewed terms included); nothing to invoice."""
    for notice, termination in [
        (date(2027, 10, 1), date(2027, 11, 20)),  # exactly at E
        (date(2027, 11, 1), date(2027, 12, 20)),  # first renewed term
        (date(2029, 6, 1), date(2029, 7, 20)),  # third renewed term
    ]:
        q = _ok(quote_cancellation(W1, notice))
        assert q.effective_on == termination
        assert q.unexpired_months == 0
        assert q.charges == ()
        assert (q.shortfall, q.subtotal, q.tax_total, q.total) == (0, 0, 0, 0)
        assert q.tax == ()
        assert q.invoice_month is None


def test_r31_cancellation_at_a_chosen_later_month_end():
    q = _ok(quote_cancellation(W1, W2_NOTICE, date(2027, 8, 20)))
    assert q.unexpired_months == 3
    assert q.total == 165_000
    assert q.invoice_month.name == "2027-09"


def test_r30_termination_choices_are_consecutive_month_ends():
    q = _ok(quote_cancellation(W1, W2_NOTICE))
    assert len(q.termination_choices) == TERMINATION_CHOICES
    assert q.termination_choices[:3] == (date(2027, 4, 20), date(2027, 5, 20), date(2027, 6, 20))


def test_r31_termination_before_service_start_owes_at_most_the_minimum_term():
    """R-03/R-04/R-31: the lead-in before A is not part of the minimum term, so a contract ended
    before its service has even started owes M months, never more (was 13 of 12)."""
    q = _ok(quote_cancellation(W1, date(2026, 9, 1)))
    assert q.effective_on == date(2026, 10, 20)
    assert q.unexpired_months == 12
    assert q.shortfall == 12 * 50_000
    assert unexpired_months(date(2027, 11, 20), date(2026, 10, 20), date(2026, 11, 21)) == 12
    assert unexpired_months(date(2027, 11, 20), date(2026, 11, 20), date(2026, 11, 21)) == 12


def test_r06_agency_contract_cannot_be_ended_after_its_last_period():
    """R-06: the agency contract ends with its last granted period; later dates are refused."""
    q = _ok(quote_cancellation(AGENCY, W2_NOTICE))
    assert q.effective_on == date(2027, 4, 20)
    assert q.termination_choices == (date(2027, 4, 20), date(2027, 5, 20))
    refusal = _refused(
        quote_cancellation(AGENCY, W2_NOTICE, date(2027, 6, 20)),
        "after_contract_end",
        "termination_on",
    )
    assert refusal.params == {"last_day": date(2027, 5, 20)}


def test_r06_r31_an_agency_contract_is_cancelled_without_a_shortfall():
    """R-06 reading: IW 27(3) applies regardless of article 4 (the minimum term), so ending an
    agency contract owes no shortfall. The issue's case: a ¥25,000 contract whose only period
    ends 2027-05-20, cancelled on 2027-02-20 for 2027-03-20, was quoted 7 months (¥192,500
    with tax); it owes nothing, and a downgrade owes only its change and initial fees."""
    state = replace(AGENCY, monthly_fee=25_000, plan_id=SMALL)
    q = _ok(quote_cancellation(state, date(2027, 2, 18)))
    assert q.effective_on == date(2027, 3, 20)
    assert (q.minimum_term_end, q.unexpired_months, q.shortfall, q.charges) == (None, 0, 0, ())
    assert q.invoice_month is None
    assert quotes.cheaper_end(state, date(2027, 2, 18), q.effective_on) is None

    down = _ok(quote_downgrade(AGENCY, PRICES, W2_NOTICE, SMALL))
    assert down.shortfall == 0
    assert {c.kind for c in down.charges} == {ChargeKind.CHANGE_FEE, ChargeKind.INITIAL_FEE}
    # The direct contract of W-2 still owes its shortfall (7 months at ¥50,000).
    assert _ok(quote_cancellation(W1, W2_NOTICE)).shortfall == 7 * 50_000


# --- R-05 notice against renewal ---------------------------------------------------------


def test_r05_notice_against_renewal_until_the_deadline():
    """R-05/W-1: the deadline for the term ending 2027-11-20 is 2027-10-21."""
    q = _ok(quote_non_renewal(W1, date(2027, 10, 21)))
    assert q.kind == RequestKind.NON_RENEWAL
    assert q.effective_on == date(2027, 11, 20)
    assert q.renewal_notice_deadline == date(2027, 10, 21)
    assert q.minimum_term_end == date(2027, 11, 20)
    assert q.unexpired_months == 0
    assert q.charges == ()
    assert q.total == 0
    assert q.invoice_month is None
    assert _ok(quote_non_renewal(W1, W2_NOTICE)).effective_on == date(2027, 11, 20)


def test_r05_notice_against_renewal_after_the_deadline_names_the_next_term_end():
    """R-05/W-1: on 2027-10-22 the contract will renew; the next term ends 2028-11-20."""
    refusal = _refused(quote_non_renewal(W1, date(2027, 10, 22)), "renewal_deadline_passed")
    assert refusal.params == {
        "deadline": date(2027, 10, 21),
        "term_end": date(2027, 11, 20),
        "next_term_end": date(2028, 11, 20),
        "next_deadline": date(2028, 10, 21),
    }


def test_r05_notice_against_renewal_in_a_renewed_term():
    q = _ok(quote_non_renewal(W1, date(2027, 11, 21)))
    assert q.effective_on == date(2028, 11, 20)
    assert q.renewal_notice_deadline == date(2028, 10, 21)


def test_r05_r06_notice_against_renewal_refused_for_agency_contracts():
    """R-06: agency contracts do not auto-renew, so there is nothing to give notice against."""
    _refused(quote_non_renewal(AGENCY, W2_NOTICE), "agency_contract_no_renewal")


# --- R-06 agency renewal application -----------------------------------------------------


def test_r06_agency_renewal_gives_the_next_six_month_period():
    q = _ok(quote_agency_renewal(AGENCY, W2_NOTICE))
    assert q.kind == RequestKind.AGENCY_RENEWAL
    assert q.next_period == Term(date(2027, 5, 21), date(2027, 11, 20), 1)
    assert q.effective_on == date(2027, 5, 21)
    assert q.charges == ()
    assert q.total == 0

    second = _ok(quote_agency_renewal(replace(AGENCY, agency_periods_granted=2), W2_NOTICE))
    assert second.next_period == Term(date(2027, 11, 21), date(2028, 5, 20), 2)

    last_day = _ok(quote_agency_renewal(AGENCY, date(2027, 5, 20)))
    assert last_day.next_period.start == date(2027, 5, 21)


def test_r06_agency_renewal_refused_for_direct_contracts():
    _refused(quote_agency_renewal(W1, W2_NOTICE), "not_an_agency_contract")


def test_r06_agency_renewal_refused_after_the_last_granted_period_ended():
    """R-06: no application before the period ended: the contract ended with it."""
    refusal = _refused(quote_agency_renewal(AGENCY, date(2027, 5, 21)), "contract_ended")
    assert refusal.params == {"ended_on": date(2027, 5, 20)}
    granted_two = replace(AGENCY, agency_periods_granted=2)
    _refused(quote_agency_renewal(granted_two, date(2027, 11, 21)), "contract_ended")


# --- R-15 suggested plan -----------------------------------------------------------------


def test_r15_suggested_plan_is_the_cheapest_on_sale_that_holds_the_usage():
    assert suggested_plan(PRICES.plans, 50).id == SMALL
    assert suggested_plan(PRICES.plans, 100).id == SMALL  # exactly at capacity fits
    assert suggested_plan(PRICES.plans, 100.5).id == MEDIUM
    assert suggested_plan(PRICES.plans, 501).id == LARGE
    # RETIRED (2,000 GB) is not sold and OTHER belongs to another service's list in practice.
    service_plans = tuple(p for p in PRICES.plans if p.service_id == SERVICE)
    assert suggested_plan(service_plans, 1_500) is None
    assert suggested_plan((), 1) is None


def test_r15_suggested_plan_tie_on_fee_takes_the_smaller_capacity():
    plans = (
        PlanTerms(1, SERVICE, monthly_fee=10_000, minimum_months=1, capacity_gb=300),
        PlanTerms(2, SERVICE, monthly_fee=10_000, minimum_months=1, capacity_gb=200),
    )
    assert suggested_plan(plans, 150).id == 2


# --- dispatch and storage ----------------------------------------------------------------


def _quotes_of_every_kind() -> list[Quote]:
    return [
        _ok(quote_upgrade(W1, PRICES, date(2027, 1, 5), LARGE, date(2027, 1, 15))),
        _ok(quote_downgrade(W1, PRICES, W2_NOTICE, SMALL)),
        _ok(quote_cancellation(W1, W2_NOTICE)),
        _ok(quote_cancellation(W1, date(2028, 1, 10))),  # no charges, no invoice
        _ok(quote_non_renewal(W1, W2_NOTICE)),
        _ok(quote_agency_renewal(replace(AGENCY, agency_periods_granted=2), W2_NOTICE)),
    ]


def test_quote_dispatches_to_each_kind():
    notice = date(2027, 1, 5)
    assert quote(RequestKind.UPGRADE, W1, PRICES, notice, plan_id=LARGE) == quote_upgrade(
        W1, PRICES, notice, LARGE
    )
    assert quote(
        RequestKind.DOWNGRADE, W1, PRICES, notice, plan_id=SMALL, effective_on=date(2027, 6, 20)
    ) == quote_downgrade(W1, PRICES, notice, SMALL, date(2027, 6, 20))
    assert quote(RequestKind.CANCELLATION, W1, PRICES, notice) == quote_cancellation(W1, notice)
    assert quote(RequestKind.NON_RENEWAL, W1, PRICES, notice) == quote_non_renewal(W1, notice)
    assert quote(RequestKind.AGENCY_RENEWAL, AGENCY, PRICES, notice) == quote_agency_renewal(
        AGENCY, notice
    )


@pytest.mark.parametrize("q", _quotes_of_every_kind(), ids=lambda q: q.kind.value)
def test_r32_quote_json_round_trip(q):
    """R-32: a confirmed request keeps the quote the customer saw, every field of it."""
    data = q.to_json()
    assert data["kind"] == q.kind.value
    assert (data["subtotal"], data["tax_total"], data["total"]) == (
        q.subtotal,
        q.tax_total,
        q.total,
    )
    back = Quote.from_json(data, W1.anchor_day)
    assert back == q
    assert back.to_json() == data


def test_r32_quote_json_round_trip_covers_every_kind():
    assert {q.kind for q in _quotes_of_every_kind()} == set(RequestKind)


def test_r06_stored_agency_quote_without_period_number_still_loads():
    """Quotes stored before the period number was kept load with number 0."""
    data = _ok(quote_agency_renewal(AGENCY, W2_NOTICE)).to_json()
    del data["next_period"]["number"]
    assert Quote.from_json(data, 21).next_period == Term(date(2027, 5, 21), date(2027, 11, 20), 0)


# --- properties --------------------------------------------------------------------------

anchor_days = st.integers(min_value=1, max_value=28)
service_starts = st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31))
fees = st.integers(min_value=0, max_value=10_000_000)
minimum_months = st.integers(min_value=1, max_value=60)
tax_rates = st.sampled_from([10, 10, 8, 0])
change_fees = st.integers(min_value=0, max_value=100_000)
# Notice dates from shortly before the service start to far into renewed terms.
notice_offsets = st.integers(min_value=-90, max_value=365 * 8)


@st.composite
def contracts(draw, *, via_agency: bool = False) -> ContractState:
    granted = draw(st.integers(min_value=1, max_value=12)) if via_agency else None
    return ContractState(
        service_id=SERVICE,
        plan_id=MEDIUM,
        monthly_fee=draw(fees),
        minimum_months=draw(minimum_months),
        service_start=draw(service_starts),
        anchor_day=draw(anchor_days),
        tax_rate_percent=draw(tax_rates),
        via_agency=via_agency,
        agency_periods_granted=granted,
    )


@st.composite
def plan_changes(draw) -> tuple[ContractState, PriceTerms, date, int]:
    """A contract, a price list with a cheaper and a dearer plan, a notice date, a kind."""
    state = draw(contracts(via_agency=draw(st.booleans())))
    low, high = sorted(draw(st.lists(fees, min_size=2, max_size=2, unique=True)))
    upgrade = draw(st.booleans())
    fee = low if upgrade else high
    state = replace(state, monthly_fee=fee)
    target = high if upgrade else low
    prices = PriceTerms(
        change_fee=draw(change_fees),
        change_fee_tax_rate_percent=draw(tax_rates),
        plans=(
            PlanTerms(MEDIUM, SERVICE, fee, state.minimum_months, 500),
            PlanTerms(
                LARGE if upgrade else SMALL,
                SERVICE,
                target,
                draw(minimum_months),
                1_000 if upgrade else 100,
                tax_rate_percent=draw(tax_rates),
            ),
        ),
    )
    notice = state.service_start + timedelta(days=draw(notice_offsets))
    return state, prices, notice, (LARGE if upgrade else SMALL)


def _month_end_after(day: date, anchor_day: int, months: int) -> date:
    """The month end `months` billing months after the one ending on/after `day`."""
    end = billing_month_of(day, anchor_day).end
    return add_billing_months(end + ONE_DAY, months) - ONE_DAY


def _minimum_term_months_after(state: ContractState, termination_on: date) -> int:
    """Oracle for R-31: the billing months of the minimum term that start after the termination."""
    anchor = term_anchor(state.service_start, state.anchor_day)
    starts = (add_billing_months(anchor, n) for n in range(state.minimum_months))
    return sum(1 for start in starts if start > termination_on)


def _ended_before(state: ContractState, notice: date, result: Quote | Refusal) -> bool:
    """R-06: an agency contract past its last granted period refuses every request."""
    if state.last_day is None or notice <= state.last_day:
        return False
    refusal = _refused(result, "contract_ended")
    assert refusal.params == {"ended_on": state.last_day}
    return True


def _assert_nothing_negative(q: Quote) -> None:
    assert all(c.amount >= 0 for c in q.charges)
    assert all(c.months is None or c.months >= 0 for c in q.charges)
    assert all(t.taxable >= 0 and t.tax >= 0 for t in q.tax)
    assert q.subtotal >= 0
    assert q.tax_total >= 0
    assert q.total >= 0
    assert q.unexpired_months is None or q.unexpired_months >= 0


def _assert_totals(q: Quote) -> None:
    """R-13: tax once per rate, rounded down; total = subtotal + tax."""
    rates = {c.tax_rate_percent for c in q.charges}
    expected = sum(
        sum(c.amount for c in q.charges if c.tax_rate_percent == r) * r // 100 for r in rates
    )
    assert q.tax_total == expected
    assert sum(c.amount * c.tax_rate_percent // 100 for c in q.charges) <= q.tax_total
    assert q.subtotal == sum(c.amount for c in q.charges)
    assert q.total == q.subtotal + q.tax_total


def _assert_invoice_month(q: Quote, anchor_day: int) -> None:
    """R-23/R-41: the first billing month that starts after the effective date."""
    if not q.charges:
        return
    month = q.invoice_month
    assert month is not None
    assert is_anchor_day(month.start, anchor_day)
    assert month.start > q.effective_on
    day = q.effective_on + ONE_DAY
    while day < month.start:
        assert not is_anchor_day(day, anchor_day)
        day += ONE_DAY
    assert month == billing_month_of(month.start, anchor_day)
    assert month == invoice_month_for(q.effective_on, anchor_day)


def _assert_every_quote_invariant(q: Quote, state: ContractState) -> None:
    _assert_nothing_negative(q)
    _assert_totals(q)
    _assert_invoice_month(q, state.anchor_day)
    assert Quote.from_json(q.to_json(), state.anchor_day) == q


@settings(max_examples=120)
# Up to 20 billing months after the earliest stays inside MAX_MONTHS_AHEAD.
@given(contracts(), notice_offsets, st.integers(min_value=0, max_value=20))
def test_r22_r31_property_shortfall_is_whole_monthly_fees_and_zero_after_minimum_term(
    state, offset, later
):
    """R-22/R-31: the shortfall is monthly fee × the minimum term's months left after the
    termination (at most M), and nothing once the termination is on/after E, renewed terms
    included."""
    notice = state.service_start + timedelta(days=offset)
    earliest = _ok(quote_cancellation(state, notice)).effective_on
    termination = add_billing_months(earliest + ONE_DAY, later) - ONE_DAY
    q = _ok(quote_cancellation(state, notice, termination))
    months = q.unexpired_months
    assert months == _minimum_term_months_after(state, termination)
    assert 0 <= months <= state.minimum_months
    assert q.shortfall == state.monthly_fee * months
    if termination >= state.minimum_term_end:
        assert months == 0
        assert q.charges == ()
        assert q.invoice_month is None
    else:
        assert months > 0
        assert q.charges == (
            Charge(ChargeKind.SHORTFALL, q.shortfall, state.tax_rate_percent, months=months),
        )
    _assert_every_quote_invariant(q, state)


@settings(max_examples=120)
@given(plan_changes(), st.integers(min_value=-5, max_value=800), st.booleans())
def test_r20_r21_property_upgrade_effective_at_least_10_days_after_notice(change, offset, choose):
    """R-20/R-21: an upgrade takes effect no sooner than notice + 10 days (the earliest when not
    chosen); it charges the initial-fee difference and the change fee; the new fee starts with
    the billing month after the effective date."""
    state, prices, notice, target = change
    if _ended_before(state, notice, quote_upgrade(state, prices, notice, target)):
        return
    plan = prices.plan(target)
    floor = notice + timedelta(days=CHANGE_LEAD_DAYS)
    chosen = floor + timedelta(days=offset) if choose else None
    result = quote_upgrade(state, prices, notice, target, chosen)
    if target == SMALL:
        _refused(result, "not_an_upgrade", "plan")
        return
    if isinstance(result, Refusal):
        if result.code == "no_upgrade_date":
            # the contract ends before the lead time has run, so no date can be chosen.
            assert result.field is None
            assert result.params["earliest"] == max(floor, state.service_start)
            assert result.params["last_day"] == state.last_day < result.params["earliest"]
            return
        assert result.field == "effective_on"
        if result.code == "inside_lead_time":
            assert chosen is not None
            assert chosen < result.params["earliest"]
            assert result.params["earliest"] >= floor
        else:
            assert result.code in {"too_far_ahead", "after_contract_end"}
        return
    q = result
    assert q.effective_on >= floor
    assert q.effective_on >= state.service_start
    assert q.earliest_effective_on == max(floor, state.service_start)
    if chosen is None:
        assert q.effective_on == q.earliest_effective_on
    else:
        assert q.effective_on == chosen
    assert q.charge(ChargeKind.INITIAL_FEE_DIFFERENCE) == plan.monthly_fee - state.monthly_fee > 0
    assert q.charge(ChargeKind.CHANGE_FEE) == prices.change_fee
    assert q.shortfall == 0
    assert q.new_monthly_fee == plan.monthly_fee
    assert q.new_fee_from == q.invoice_month
    assert q.new_fee_from.start > q.effective_on
    assert q.minimum_term_end == state.minimum_term_end
    _assert_every_quote_invariant(q, state)


@settings(max_examples=120)
@given(plan_changes(), st.integers(min_value=-40, max_value=120), st.booleans())
def test_r22_r30_property_termination_is_a_month_end_at_least_30_days_ahead(change, offset, choose):
    """R-22/R-30: cancellation and downgrade end the contract at a month end (the day before an
    anchor day) ≥ notice + 30 days: the earliest such when none is chosen; any other date is
    refused with the reason."""
    state, prices, notice, target = change
    if _ended_before(state, notice, quote_cancellation(state, notice)):
        return
    floor = notice + timedelta(days=30)
    earliest = floor
    while not is_month_end(earliest, state.anchor_day):
        earliest += ONE_DAY
    chosen = floor + timedelta(days=offset) if choose else None
    results = [("no_termination_date", quote_cancellation(state, notice, chosen))]
    if target == SMALL:
        results.append(
            ("no_downgrade_date", quote_downgrade(state, prices, notice, target, chosen))
        )
    else:
        _refused(quote_downgrade(state, prices, notice, target, chosen), "not_a_downgrade", "plan")
    for dead_end, result in results:
        if isinstance(result, Refusal):
            if result.code == dead_end:
                # the contract ends before the earliest month end: no date at all.
                assert result.field is None
                assert result.params == {"last_day": state.last_day, "earliest": earliest}
                assert state.last_day < earliest
                continue
            assert result.field == "termination_on"
            if chosen is not None and not is_month_end(chosen, state.anchor_day):
                assert result.code == "not_month_end"
            elif chosen is not None and chosen < floor:
                assert result.code == "termination_too_early"
            else:
                assert result.code == "after_contract_end"  # agency contract's last period
                assert state.last_day < (chosen or earliest)
            continue
        q = result
        assert is_month_end(q.effective_on, state.anchor_day)
        assert q.effective_on >= floor
        assert q.effective_on == (chosen or earliest)
        assert q.termination_choices[0] == earliest
        assert all(is_month_end(d, state.anchor_day) for d in q.termination_choices)
        assert list(q.termination_choices) == sorted(set(q.termination_choices))
        assert q.minimum_term_end == state.minimum_term_end
        if q.kind == RequestKind.DOWNGRADE:
            # the new contract starts the next day, which is its own term anchor.
            assert q.new_service_start == q.effective_on + ONE_DAY
            assert q.new_term_anchor == q.new_service_start
            assert is_anchor_day(q.new_term_anchor, state.anchor_day)
            if state.via_agency:
                # R-06 reading: the new contract is through the agency too: no minimum term.
                assert (q.new_minimum_term_end, q.new_minimum_months) == (None, None)
            else:
                assert q.new_minimum_term_end == minimum_term_end(
                    q.new_term_anchor, q.new_minimum_months
                )
            assert q.charge(ChargeKind.INITIAL_FEE) == prices.plan(target).monthly_fee
            assert q.charge(ChargeKind.CHANGE_FEE) == prices.change_fee
            assert q.shortfall == state.monthly_fee * q.unexpired_months
            assert q.invoice_month is not None
        if state.via_agency:
            # R-06 reading: no minimum term, so never a shortfall.
            assert (q.minimum_term_end, q.unexpired_months, q.shortfall) == (None, 0, 0)
        _assert_every_quote_invariant(q, state)


@settings(max_examples=100)
@given(contracts(), notice_offsets)
def test_r05_property_notice_against_renewal_ends_the_current_term(state, offset):
    """R-05: accepted up to 30 days before the current term's end, taking effect on it;
    afterwards refused, naming the next term's end 12 billing months later."""
    notice = state.service_start + timedelta(days=offset)
    result = quote_non_renewal(state, notice)
    if isinstance(result, Refusal):
        assert result.code == "renewal_deadline_passed"
        assert notice > result.params["deadline"]
        assert result.params["deadline"] == result.params["term_end"] - timedelta(days=30)
        assert notice <= result.params["term_end"]
        assert result.params["next_term_end"] == _month_end_after(
            result.params["term_end"] + ONE_DAY, state.anchor_day, 11
        )
        return
    q = result
    assert q.effective_on - q.renewal_notice_deadline == timedelta(days=30)
    assert notice <= q.renewal_notice_deadline
    assert q.effective_on >= state.minimum_term_end
    assert is_month_end(q.effective_on, state.anchor_day)
    assert q.charges == ()
    _assert_every_quote_invariant(q, state)


@settings(max_examples=100)
@given(contracts(via_agency=True), notice_offsets)
def test_r06_property_agency_renewal_is_the_period_after_the_last_granted(state, offset):
    """R-06: the application is for the 6 billing months after the last granted period, and
    only while that period has not ended."""
    notice = state.service_start + timedelta(days=offset)
    result = quote_agency_renewal(state, notice)
    last = state.last_day
    if notice > last:
        _refused(result, "contract_ended")
        return
    q = _ok(result)
    assert q.next_period.start == last + ONE_DAY == q.effective_on
    assert q.next_period.number == state.agency_periods_granted
    assert q.next_period.end == add_billing_months(q.next_period.start, 6) - ONE_DAY
    _assert_every_quote_invariant(q, state)


# --- which kind of plan change (R-21, R-22) ---------------------------------------------------


@given(st.integers(1, 10**7), st.integers(1, 10**7))
def test_r21_r22_the_plan_chosen_decides_upgrade_or_downgrade(current, target):
    kind = quotes.change_kind(current, target)
    assert kind == (RequestKind.DOWNGRADE if target < current else RequestKind.UPGRADE)


def test_r21_no_plan_chosen_yet_is_treated_as_an_upgrade():
    assert quotes.change_kind(50_000, None) == RequestKind.UPGRADE


# --- dead ends: the contract ends before any date is possible (R-06 with) ----


def test_r06_r30_a_contract_ending_within_30_days_has_no_termination_date():
    """The agency contract of W-1 ends on 2027-05-20 (its first period) without an application.
    On 2027-05-01 the earliest end by notice is 2027-06-20: no date can be chosen at all, which
    is a refusal of its own (no field to correct), not "choose a date up to 2027-05-20"."""
    notice = date(2027, 5, 1)
    expected = {"last_day": date(2027, 5, 20), "earliest": date(2027, 6, 20)}
    for result, code in (
        (quote_cancellation(AGENCY, notice), "no_termination_date"),
        (quote_cancellation(AGENCY, notice, date(2027, 6, 20)), "no_termination_date"),
        (quote_downgrade(AGENCY, PRICES, notice, SMALL), "no_downgrade_date"),
    ):
        refusal = _refused(result, code)
        assert refusal.field is None and refusal.params == expected
        assert code in quotes.DEAD_ENDS
    # The last day for a 30 days' notice to 2027-05-20 was 2027-04-20.
    assert _ok(quote_cancellation(AGENCY, date(2027, 4, 20))).effective_on == date(2027, 5, 20)


def test_r06_r20_an_upgrade_has_no_date_once_the_contract_ends_within_10_days():
    assert _ok(quote_upgrade(AGENCY, PRICES, date(2027, 5, 10), LARGE)).effective_on == date(
        2027, 5, 20
    )
    refusal = _refused(quote_upgrade(AGENCY, PRICES, date(2027, 5, 11), LARGE), "no_upgrade_date")
    assert refusal.field is None
    assert refusal.params == {"last_day": date(2027, 5, 20), "earliest": date(2027, 5, 21)}


# --- the change page starts from the likely upgrade (R-21, R-15) --------------------------------

SAME_SERVICE = tuple(p for p in PRICES.plans if p.service_id == SERVICE)


@pytest.mark.parametrize(
    ("current", "used_gb", "expected"),
    [
        (MEDIUM, None, LARGE),  # the cheapest dearer plan on sale (not the retired one)
        (SMALL, None, MEDIUM),
        (SMALL, 80.0, MEDIUM),  # within its 100 GB: still the cheapest dearer plan
        (SMALL, 700.0, LARGE),  # over capacity: the cheapest dearer plan that holds 700 GB
        (SMALL, 5_000.0, MEDIUM),  # no plan holds it: the cheapest dearer one
        (LARGE, None, None),  # nothing dearer on sale: nothing is chosen
        (NO_CAPACITY, 50.0, SMALL),
    ],
)
def test_r21_r15_the_likely_upgrade(current, used_gb, expected):
    plan = PRICES.plan(current)
    found = quotes.likely_upgrade(plan.monthly_fee, plan.capacity_gb, SAME_SERVICE, used_gb)
    assert (found.id if found else None) == expected


@given(
    st.integers(min_value=0, max_value=300_000),
    st.one_of(st.none(), st.integers(min_value=1, max_value=3_000)),
    st.one_of(st.none(), st.floats(min_value=0, max_value=10_000)),
)
def test_r22_property_a_downgrade_is_never_the_likely_upgrade(fee, capacity, used_gb):
    found = quotes.likely_upgrade(fee, capacity, SAME_SERVICE, used_gb)
    dearer = [p for p in SAME_SERVICE if p.sold and p.monthly_fee > fee]
    assert (found is None) == (not dearer)
    assert found is None or (found.sold and found.monthly_fee > fee)


# --- a later month end that costs less (R-22, R-31) ---------------------------------------------


def test_r31_ending_when_the_minimum_term_ends_owes_no_shortfall():
    """W-2: ending on 2027-04-20 owes 7 months (¥350,000); ending on E = 2027-11-20 owes none,
    7 billing months later (whose monthly fees are billed as usual)."""
    found = quotes.cheaper_end(W1, W2_NOTICE, date(2027, 4, 20))
    assert found == quotes.CheaperEnd(date(2027, 11, 20), shortfall=0, months_later=7)
    assert _ok(quote_cancellation(W1, W2_NOTICE, found.termination_on)).shortfall == 0
    assert quotes.cheaper_end(W1, W2_NOTICE, date(2027, 10, 20)).months_later == 1
    # Nothing is cheaper than ending on or after E.
    assert quotes.cheaper_end(W1, W2_NOTICE, date(2027, 11, 20)) is None
    assert quotes.cheaper_end(W1, W2_NOTICE, date(2027, 12, 20)) is None


def test_r06_r31_no_later_end_is_pointed_out_that_cannot_be_chosen():
    # The agency contract ends on 2027-05-20, before E.
    assert quotes.cheaper_end(AGENCY, W2_NOTICE, date(2027, 4, 20)) is None
    # A 36-month minimum term ends beyond MAX_MONTHS_AHEAD of the notice.
    long_term = replace(W1, minimum_months=36)
    assert long_term.minimum_term_end == date(2029, 11, 20)
    assert quotes.cheaper_end(long_term, W2_NOTICE, date(2027, 4, 20)) is None


@settings(max_examples=100)
@given(contracts(), notice_offsets, st.integers(min_value=0, max_value=11))
def test_r31_property_the_later_end_owes_no_shortfall_and_can_be_chosen(state, offset, later):
    notice = state.service_start + timedelta(days=offset)
    termination = _ok(quote_cancellation(state, notice)).termination_choices[later]
    chosen = _ok(quote_cancellation(state, notice, termination))
    found = quotes.cheaper_end(state, notice, termination)
    if found is None:
        assert chosen.shortfall == 0 or state.minimum_term_end > _latest(notice)
        return
    assert chosen.unexpired_months > 0
    assert found.termination_on == state.minimum_term_end > termination
    at_end = _ok(quote_cancellation(state, notice, found.termination_on))
    assert at_end.shortfall == found.shortfall == 0
    assert found.months_later == unexpired_months(found.termination_on, termination)


def _latest(notice: date) -> date:
    return add_billing_months(date(notice.year, notice.month, min(notice.day, 28)), 24)
