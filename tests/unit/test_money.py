"""Rules R-13 and R-40 of RULES.md: whole yen, tax once per rate per invoice, rounded down."""

from hypothesis import given, settings
from hypothesis import strategies as st

from portal.domain.money import STANDARD_TAX_RATE_PERCENT, TaxSummary, tax_by_rate, tax_on

amounts = st.integers(min_value=0, max_value=10_000_000)
rates = st.sampled_from([0, 8, 10])
lines = st.lists(st.tuples(amounts, rates), max_size=30)


# --- examples ----------------------------------------------------------------------------


def test_r13_standard_rate_is_10_percent():
    """R-13: consumption tax is 10% unless the price list marks a charge otherwise."""
    assert STANDARD_TAX_RATE_PERCENT == 10


def test_w2_tax_on_the_shortfall():
    """W-2: ¥350,000 shortfall carries ¥35,000 tax."""
    assert tax_on(350_000, 10) == 35_000
    assert tax_by_rate([(350_000, 10)]) == (TaxSummary(10, 350_000, 35_000),)


def test_w3_tax_on_the_upgrade_charges():
    """W-3: ¥50,000 + ¥5,000 at 10%, taxed once: ¥5,500."""
    assert tax_by_rate([(50_000, 10), (5_000, 10)]) == (TaxSummary(10, 55_000, 5_500),)


def test_r13_tax_is_rounded_down():
    """R-13: tax is rounded down to whole yen."""
    assert tax_on(99, 10) == 9
    assert tax_on(109, 10) == 10
    assert tax_on(1, 8) == 0
    assert tax_on(0, 10) == 0
    assert tax_on(1_000, 0) == 0


def test_r13_r40_tax_once_per_rate_not_per_line():
    """R-13/R-40: three ¥99 lines are taxed on ¥297 (¥29), not line by line (3 × ¥9)."""
    assert tax_by_rate([(99, 10), (99, 10), (99, 10)]) == (TaxSummary(10, 297, 29),)
    assert sum(tax_on(99, 10) for _ in range(3)) == 27


def test_r40_one_summary_per_rate_highest_rate_first():
    """R-40: totals and tax per rate, each rate once."""
    assert tax_by_rate([(1_000, 8), (1_055, 10), (999, 8), (0, 0)]) == (
        TaxSummary(10, 1_055, 105),
        TaxSummary(8, 1_999, 159),
        TaxSummary(0, 0, 0),
    )


def test_r13_no_lines_no_tax():
    assert tax_by_rate([]) == ()


def test_r53_netted_credit_is_taxed_symmetrically():
    """R-53 (netting, as the money module documents it): a net credit's tax mirrors a charge's."""
    assert tax_on(-1_055, 10) == -105
    assert tax_by_rate([(1_000, 10), (-2_055, 10)]) == (TaxSummary(10, -1_055, -105),)


# --- properties --------------------------------------------------------------------------


@settings(max_examples=200)
@given(amounts, rates)
def test_r13_property_tax_on_is_floor(taxable, rate):
    """R-13: tax is floor(taxable × rate / 100), a whole number of yen, never negative."""
    tax = tax_on(taxable, rate)
    assert isinstance(tax, int)
    assert tax >= 0
    assert tax * 100 <= taxable * rate < (tax + 1) * 100


@settings(max_examples=200)
@given(amounts, rates)
def test_r53_property_credit_tax_mirrors_charge_tax(taxable, rate):
    """R-13/R-53: a netted negative sum is taxed like the positive one, with the sign flipped."""
    assert tax_on(-taxable, rate) == -tax_on(taxable, rate)


@settings(max_examples=200)
@given(lines)
def test_r13_r40_property_tax_once_per_rate_and_per_line_rounding_never_exceeds_it(items):
    """R-13/R-40: tax per rate = floor(sum at that rate × rate / 100); rounding each line instead
    never gives more, and loses less than one yen per line."""
    summaries = tax_by_rate(items)
    by_rate = {s.rate_percent: s for s in summaries}
    assert len(by_rate) == len(summaries)  # one summary per rate
    assert [s.rate_percent for s in summaries] == sorted(by_rate, reverse=True)
    assert set(by_rate) == {rate for _, rate in items}
    for rate, summary in by_rate.items():
        at_rate = [amount for amount, r in items if r == rate]
        assert summary.taxable == sum(at_rate)
        assert summary.tax == sum(at_rate) * rate // 100
        per_line = sum(amount * rate // 100 for amount in at_rate)
        assert per_line <= summary.tax
        assert summary.tax - per_line < max(len(at_rate), 1)
    assert sum(s.taxable for s in summaries) == sum(amount for amount, _ in items)
