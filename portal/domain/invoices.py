"""What an invoice carries and what it adds up to (R-03, R-11, R-13, R-40, R-41).

Pure functions: the monthly run (portal/services/invoicing.py) asks here whether a contract
owes a billing month's fee and what a set of lines totals, tax included.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import date
from typing import Any

from portal.domain import calendar
from portal.domain.money import TaxSummary, tax_by_rate, tax_on

INVOICE_ANCHOR_DAY = calendar.DEFAULT_ANCHOR_DAY  # invoices are issued on the 21st

CHARGE_NAMES = {
    # kind: (Japanese, English) — frozen into each issued line in both languages.
    "monthly_fee": ("月額料金", "Monthly fee"),
    "initial_fee": ("初期費用", "Initial fee"),
    "initial_fee_difference": (
        "初期費用差額（プラン変更）",
        "Initial fee difference (plan change)",
    ),
    "change_fee": ("変更手数料", "Change fee"),
    "shortfall": ("最低利用期間の残存分", "Minimum-term shortfall"),
    "credit": ("返還", "Credit"),
    "sla_credit": ("SLA補償の返還", "SLA compensation (credit)"),
}


@dataclass(frozen=True)
class Line:
    """One line of an invoice before it is issued."""

    kind: str
    amount: int
    tax_rate_percent: int
    description_ja: str
    description_en: str
    contract_id: int | None = None
    ledger_charge_id: int | None = None
    details: dict[str, Any] = dataclass_field(default_factory=dict)


@dataclass(frozen=True)
class Totals:
    subtotal: int
    tax: tuple[TaxSummary, ...]
    tax_total: int
    total: int
    returns: dict[int, int] = dataclass_field(default_factory=dict)  # per rate, R-53

    def tax_summary(self) -> list[dict[str, int]]:
        """R-40 per rate: the total and its tax. With returns (R-53) also what was charged and
        what was returned at that rate, and the tax effect of the returns: the tax is still
        computed once, on the total after returns, so charges' tax less the returns' tax
        effect is exactly the tax of the invoice."""
        rows = []
        for t in self.tax:
            row = {"rate_percent": t.rate_percent, "taxable": t.taxable, "tax": t.tax}
            returned = self.returns.get(t.rate_percent, 0)
            if returned:
                charged = t.taxable + returned
                charged_tax = tax_on(charged, t.rate_percent)
                row.update(
                    charges=charged,
                    charges_tax=charged_tax,
                    returns=returned,
                    returns_tax=charged_tax - t.tax,
                )
            rows.append(row)
        return rows


def totals(lines: Iterable[Line]) -> Totals:
    """R-13/R-40: the sum of the lines, and tax computed once per rate and rounded down.
    Credit lines (negative, R-53) are netted against the charges at their rate first."""
    lines = list(lines)
    tax = tax_by_rate((line.amount, line.tax_rate_percent) for line in lines)
    subtotal = sum(line.amount for line in lines)
    tax_total = sum(t.tax for t in tax)
    returns: dict[int, int] = {}
    for line in lines:
        if line.amount < 0:
            returns[line.tax_rate_percent] = returns.get(line.tax_rate_percent, 0) - line.amount
    return Totals(
        subtotal=subtotal, tax=tax, tax_total=tax_total, total=subtotal + tax_total, returns=returns
    )


def owes_monthly_fee(
    *, term_anchor: date, last_day: date | None, month: calendar.BillingMonth
) -> bool:
    """R-03/R-41: a contract pays a billing month in advance when the whole month is in its
    service: from its term anchor (lead-in days are covered by the initial fee) up to its last
    day, if one is set (an ending, or an agency period without a renewal application)."""
    return term_anchor <= month.start and (last_day is None or last_day >= month.end)


def period_text(month: calendar.BillingMonth) -> tuple[str, str]:
    """The billing month as a line shows it, in Japanese and in English."""
    ja = (
        f"{month.name}月度（{month.start.year}年{month.start.month}月{month.start.day}日～"
        f"{month.end.year}年{month.end.month}月{month.end.day}日）"
    )
    en = f"billing month {month.name} ({month.start.isoformat()} – {month.end.isoformat()})"
    return ja, en
