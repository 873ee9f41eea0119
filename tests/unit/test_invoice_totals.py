"""R-13/R-40: an invoice's tax is computed once per tax rate and rounded down, never per line;
R-03/R-41: which billing months a contract pays in advance."""

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from portal.domain import calendar
from portal.domain.invoices import Line, owes_monthly_fee, totals

amounts = st.integers(min_value=0, max_value=10_000_000)
rates = st.sampled_from([10, 8, 0])
lines = st.lists(
    st.builds(
        Line,
        kind=st.just("monthly_fee"),
        amount=amounts,
        tax_rate_percent=rates,
        description_ja=st.just("月額料金"),
        description_en=st.just("Monthly fee"),
    ),
    max_size=30,
)


@given(lines)
def test_r40_tax_is_rounded_once_per_rate_per_invoice(invoice_lines):
    """The tax of each rate is floor(sum of that rate's lines × rate / 100), and the invoice's
    tax is the sum over rates; rounding each line instead could only give less."""
    result = totals(invoice_lines)
    for rate in {line.tax_rate_percent for line in invoice_lines}:
        taxable = sum(line.amount for line in invoice_lines if line.tax_rate_percent == rate)
        (summary,) = [t for t in result.tax if t.rate_percent == rate]
        assert summary.taxable == taxable
        assert summary.tax == taxable * rate // 100
    per_line = sum(line.amount * line.tax_rate_percent // 100 for line in invoice_lines)
    assert per_line <= result.tax_total
    assert result.total == result.subtotal + result.tax_total
    assert result.subtotal == sum(line.amount for line in invoice_lines)


def test_r40_three_lines_of_99_yen_pay_29_yen_not_27():
    result = totals([Line("monthly_fee", 99, 10, "月額料金", "Monthly fee") for _ in range(3)])
    assert (result.subtotal, result.tax_total, result.total) == (297, 29, 326)


def test_w2_invoice_totals():
    """W-2 carried by the 2027-05 invoice with that month's fee: 400,000 + 40,000 tax."""
    result = totals(
        [
            Line("monthly_fee", 50_000, 10, "月額料金", "Monthly fee"),
            Line("shortfall", 350_000, 10, "最低利用期間の残存分", "Minimum-term shortfall"),
        ]
    )
    assert result.tax_summary() == [{"rate_percent": 10, "taxable": 400_000, "tax": 40_000}]
    assert result.total == 440_000


def test_r03_lead_in_days_carry_no_monthly_fee():
    """W-1: A = 2026-11-21; billing month 2026-11 (10-21..11-20) is not billed, 2026-12 is."""
    anchor = date(2026, 11, 21)
    november = calendar.billing_month_named(2026, 11)
    december = calendar.billing_month_named(2026, 12)
    assert not owes_monthly_fee(term_anchor=anchor, last_day=None, month=november)
    assert owes_monthly_fee(term_anchor=anchor, last_day=None, month=december)


@given(
    st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31)),
    st.integers(min_value=0, max_value=40),
)
def test_r41_a_contract_pays_exactly_the_months_inside_its_service(start, months):
    """From the term anchor up to a last day at a month end, each month is paid once."""
    anchor = calendar.term_anchor(start, 21)
    last_day = calendar.add_billing_months(anchor, months) - timedelta(days=1)
    paid = [
        m
        for n in range(-2, months + 3)
        if owes_monthly_fee(
            term_anchor=anchor,
            last_day=last_day,
            month=(m := calendar.billing_month_of(calendar.add_billing_months(anchor, n), 21)),
        )
    ]
    assert len(paid) == months
    assert all(anchor <= m.start and m.end <= last_day for m in paid)
