"""The daily run (`flask portal apply-due`): what is due is applied once, however often and
however concurrently it runs, and the charges land in the ledger (R-05, R-06, R-21..R-23,
R-30, R-31, R-41)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from portal.clock import clock
from portal.domain.quotes import RequestKind
from portal.extensions import db
from portal.models import (
    Contract,
    ContractEvent,
    ContractRequest,
    LedgerCharge,
    OutboxEmail,
    PartnerCompany,
    Plan,
    RequestStatus,
    User,
)
from portal.permissions import Actor
from portal.services import requests as request_service
from portal.services.apply import apply_due
from portal.services.organisations import open_contract
from tests.factories import add_plan, build_world, rows


@pytest.fixture
def world(app):
    return build_world(app)


def _at(day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC))  # 10:00 Tokyo


def _submit(
    app,
    world,
    kind: RequestKind,
    *,
    plan: str | None = None,
    on: date | None = None,
    contract_id: int | None = None,
    user: str = "admin",
) -> int:
    with app.app_context():
        actor = Actor(db.session.get(User, world.ids[user]))
        contract = db.session.get(Contract, contract_id or world.contract_a)
        request = request_service.submit(
            actor,
            contract,
            request_service.Choice(kind, world.ids[plan] if plan else None, on),
            ip="192.0.2.1",
        )
        db.session.commit()
        return request.id


def _run(app, day: date):
    _at(day)
    with app.app_context():
        return apply_due(day)


def _ledger(app, **where) -> list[tuple]:
    return sorted(
        (c.contract_id, c.kind.value, c.amount, c.tax_rate_percent, c.billing_month, c.bills_on)
        for c in rows(app, LedgerCharge, **where)
        if c.request_id is not None
    )


def _add_cheap_plan(app, world) -> None:
    add_plan(app, world, code="plan_cheap", fee=30_000, capacity=30, months=6)


def test_w3_upgrade_is_applied_on_its_date_and_charged_once(app, world):
    """W-3: requested 2027-01-05, effective 2027-01-15; ¥50,000 + ¥5,000 on invoice 2027-02."""
    _at(date(2027, 1, 5))
    request_id = _submit(app, world, RequestKind.UPGRADE, plan="plan_large", on=date(2027, 1, 15))

    assert _run(app, date(2027, 1, 14)).applied == {}  # not yet
    assert _run(app, date(2027, 1, 15)).applied == {"upgrade": 1}
    assert _run(app, date(2027, 1, 15)).applied == {}  # a second run applies nothing

    with app.app_context():
        contract = db.session.get(Contract, world.contract_a)
        assert contract.plan_id == world.ids["plan_large"]
        assert contract.monthly_fee == 100_000
        assert contract.minimum_months == 12  # R-21 reading: the minimum term does not restart
        request = db.session.get(ContractRequest, request_id)
        assert request.status == RequestStatus.APPLIED
        events = [(e.kind, e.effective_on) for e in contract.events]
        assert ("plan_changed", date(2027, 1, 15)) in events
    assert _ledger(app) == [
        (world.contract_a, "change_fee", 5_000, 10, "2027-02", date(2027, 1, 21)),
        (world.contract_a, "initial_fee_difference", 50_000, 10, "2027-02", date(2027, 1, 21)),
    ]


def test_w2_cancellation_ends_the_contract_after_its_last_day_with_the_shortfall(app, world):
    """W-2: notice 2027-03-01 ends the contract on 2027-04-20; ¥350,000 on invoice 2027-05."""
    _submit(app, world, RequestKind.CANCELLATION)
    assert _run(app, date(2027, 4, 20)).applied == {}  # the last day of service
    assert _run(app, date(2027, 4, 21)).applied == {"cancellation": 1}
    with app.app_context():
        contract = db.session.get(Contract, world.contract_a)
        assert (contract.status, contract.ended_on) == ("ended", date(2027, 4, 20))
    assert _ledger(app) == [
        (world.contract_a, "shortfall", 350_000, 10, "2027-05", date(2027, 4, 21)),
    ]
    (line,) = [c for c in rows(app, LedgerCharge) if c.kind == "shortfall"]
    assert line.months == 7
    # a notice that the contract ended, marked as such, written once for each address.
    applied = rows(app, OutboxEmail, kind="request_applied")
    assert applied and all(n.affects_contract and n.is_notice for n in applied)
    assert sorted(n.to_address for n in applied) == sorted(
        n.to_address for n in rows(app, OutboxEmail, kind="request_submitted")
    )
    _run(app, date(2027, 4, 22))
    assert len(rows(app, OutboxEmail, kind="request_applied")) == len(applied)


def test_a_downgrade_ends_the_contract_and_starts_the_lower_plan(app, world):
    """R-22: old contract ends 2027-04-20; the new one starts 2027-04-21 (its A) with M=6."""
    _add_cheap_plan(app, world)
    request_id = _submit(app, world, RequestKind.DOWNGRADE, plan="plan_cheap")
    assert _run(app, date(2027, 4, 21)).applied == {"downgrade": 1}
    with app.app_context():
        request = db.session.get(ContractRequest, request_id)
        old = db.session.get(Contract, world.contract_a)
        new = db.session.get(Contract, request.new_contract_id)
        assert (old.status, old.ended_on) == ("ended", date(2027, 4, 20))
        assert new.plan_id == world.ids["plan_cheap"]
        assert (new.service_start, new.anchor_day, new.monthly_fee) == (
            date(2027, 4, 21),
            21,
            30_000,
        )
        cal = new.calendar(date(2027, 4, 21))
        assert cal.term_anchor == date(2027, 4, 21)
        assert cal.minimum_term_end == date(2027, 10, 20)
        assert (new.sales_channel, new.partner_id) == (old.sales_channel, old.partner_id)
        new_id = new.id
    assert _ledger(app) == [
        (world.contract_a, "change_fee", 5_000, 10, "2027-05", date(2027, 4, 21)),
        (world.contract_a, "shortfall", 350_000, 10, "2027-05", date(2027, 4, 21)),
        (new_id, "initial_fee", 30_000, 10, "2027-05", date(2027, 4, 21)),
    ]
    assert _run(app, date(2027, 4, 22)).applied == {}
    assert len(rows(app, Contract)) == 3


def test_notice_against_renewal_ends_the_contract_at_the_term_end(app, world):
    """R-05: the W-1 contract stops at 2027-11-20 instead of renewing; nothing is charged."""
    _submit(app, world, RequestKind.NON_RENEWAL)
    summary = _run(app, date(2027, 11, 21))
    assert summary.applied == {"non_renewal": 1}
    assert summary.renewals == 1  # contract B renews; A does not
    with app.app_context():
        a = db.session.get(Contract, world.contract_a)
        assert (a.status, a.ended_on) == ("ended", date(2027, 11, 20))
    renewed = {(e.contract_id, e.effective_on) for e in rows(app, ContractEvent, kind="renewed")}
    assert renewed == {(world.contract_b, date(2027, 11, 21))}
    assert _ledger(app) == []


def test_renewals_are_recorded_once_however_often_the_run_goes(app, world):
    """R-05: each renewal that began is recorded once; a year later the next one too."""
    assert _run(app, date(2027, 11, 20)).renewals == 0
    assert _run(app, date(2027, 11, 21)).renewals == 2
    assert _run(app, date(2027, 11, 21)).renewals == 0
    assert _run(app, date(2028, 12, 1)).renewals == 2
    starts = sorted(e.effective_on for e in rows(app, ContractEvent, kind="renewed"))
    assert starts == [date(2027, 11, 21)] * 2 + [date(2028, 11, 21)] * 2


def _agency_contract(app, world) -> int:
    with app.app_context():
        agency = db.session.get(PartnerCompany, world.ids["agency_partner"])
        contract = open_contract(
            db.session.get(Contract, world.contract_a).organisation,
            db.session.get(Plan, world.ids["plan_small"]),
            service_start=date(2026, 11, 5),
            anchor_day=21,
            partner=agency,
        )
        db.session.commit()
        return contract.id


def test_an_agency_contract_without_a_renewal_application_ends_with_its_period(app, world):
    """R-06: period 0 is 2026-11-21 .. 2027-05-20; without an application it ends then."""
    contract_id = _agency_contract(app, world)
    assert _run(app, date(2027, 5, 20)).agency_expired == 0
    assert _run(app, date(2027, 5, 21)).agency_expired == 1
    assert _run(app, date(2027, 5, 22)).agency_expired == 0
    with app.app_context():
        contract = db.session.get(Contract, contract_id)
        assert (contract.status, contract.ended_on) == ("ended", date(2027, 5, 20))
    assert len(rows(app, ContractEvent, contract_id=contract_id, kind="ended")) == 1
    # the organisation is told, once, with a notice marked as ending a contract.
    notices = rows(app, OutboxEmail, kind="agency_contract_ended")
    assert notices and all(n.contract_id == contract_id and n.affects_contract for n in notices)
    assert len({n.to_address for n in notices}) == len(notices)
    assert all("May 20, 2027" in n.body or "2027年5月20日" in n.body for n in notices)


def test_an_agency_renewal_application_grants_the_next_period(app, world):
    """R-06: the application filed by the agency agent gives 2027-05-21 .. 2027-11-20."""
    contract_id = _agency_contract(app, world)
    _submit(app, world, RequestKind.AGENCY_RENEWAL, contract_id=contract_id, user="agency_agent")
    summary = _run(app, date(2027, 5, 21))
    assert summary.applied == {"agency_renewal": 1}
    assert summary.agency_expired == 0
    with app.app_context():
        contract = db.session.get(Contract, contract_id)
        assert contract.status == "active" and contract.agency_periods_granted == 2
        assert contract.calendar(date(2027, 5, 21)).agency_renewal_due == date(2027, 11, 20)
    assert _run(app, date(2027, 11, 21)).agency_expired == 1


def test_runs_at_once_apply_each_request_once(app, world):
    """Four runs at the same moment: one applies, the others find it done; one ledger set."""
    _add_cheap_plan(app, world)
    _submit(app, world, RequestKind.DOWNGRADE, plan="plan_cheap")
    _submit(app, world, RequestKind.CANCELLATION, contract_id=world.contract_b, user="other_admin")
    _at(date(2027, 4, 21))
    start = threading.Barrier(4)

    def run(_):
        with app.app_context():
            start.wait()
            summary = apply_due(date(2027, 4, 21))
            db.session.remove()
            return summary

    with ThreadPoolExecutor(4) as pool:
        summaries = list(pool.map(run, range(4)))
    applied = sum(sum(s.applied.values()) for s in summaries)
    assert applied == 2
    assert len(rows(app, Contract)) == 3  # one new contract from the downgrade
    kinds = sorted(c.kind.value for c in rows(app, LedgerCharge) if c.request_id is not None)
    assert kinds == ["change_fee", "initial_fee", "shortfall", "shortfall"]
    with app.app_context():
        statuses = db.session.scalars(sa.select(ContractRequest.status)).all()
    assert statuses == [RequestStatus.APPLIED] * 2


def test_the_command_prints_what_it_applied(app, world):
    _submit(app, world, RequestKind.CANCELLATION)
    _at(date(2027, 4, 21))
    result = app.test_cli_runner().invoke(args=["portal", "apply-due"])
    assert result.exit_code == 0, result.output
    assert "applied cancellation 1" in result.output
    again = app.test_cli_runner().invoke(args=["portal", "apply-due"])
    assert "applied none" in again.output


def test_onboarding_charges_the_initial_fee_on_the_first_invoice(app, world):
    """R-11/R-41: each contract's initial fee, once, on the invoice at its service start."""
    lines = [c for c in rows(app, LedgerCharge) if c.request_id is None]
    assert sorted((c.contract_id, c.kind.value, c.amount, c.bills_on) for c in lines) == [
        (world.contract_a, "initial_fee", 50_000, date(2026, 11, 5)),
        (world.contract_b, "initial_fee", 50_000, date(2026, 11, 5)),
    ]
    assert {c.billing_month for c in lines} == {"2026-11"}
