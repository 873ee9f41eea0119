"""Whole yen and consumption tax (R-13, R-40).

Amounts are integers of yen, tax excluded. Tax is computed once per tax rate over the sum of
the lines at that rate and rounded down, never per line.
"""

from collections.abc import Iterable
from dataclasses import dataclass

STANDARD_TAX_RATE_PERCENT = 10


@dataclass(frozen=True)
class TaxSummary:
    """R-40: the lines at one tax rate, their total and the tax on it."""

    rate_percent: int
    taxable: int
    tax: int


def tax_on(taxable: int, rate_percent: int) -> int:
    """R-13: consumption tax on a sum at one rate, rounded down to whole yen."""
    if taxable < 0:
        # Floor division would round a negative sum away from zero; credits are
        # netted against charges at the same rate before this is called.
        return -((-taxable * rate_percent) // 100)
    return taxable * rate_percent // 100


def tax_by_rate(lines: Iterable[tuple[int, int]]) -> tuple[TaxSummary, ...]:
    """R-13/R-40: `(amount, rate_percent)` lines grouped per rate, taxed once per rate."""
    totals: dict[int, int] = {}
    for amount, rate in lines:
        totals[rate] = totals.get(rate, 0) + amount
    return tuple(
        TaxSummary(rate_percent=rate, taxable=taxable, tax=tax_on(taxable, rate))
        for rate, taxable in sorted(totals.items(), reverse=True)
    )
