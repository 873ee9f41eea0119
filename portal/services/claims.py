"""SLA claims: what an incident is worth to a contract, filing, review and credit
(R-51..R-53).

Nobody types an amount: the compensation is computed by the rules (portal/domain/sla.py) from
the incident's current version, the contract's fee in force that billing month, the
maintenance windows and what the month's other claims already take (the cap of F). A claim
keeps that computation and the version it rests on, and its PDF is rendered once and stored
with its SHA-256 (like invoices). Reviews approve as computed, approve less with a reason, or
reject with a reason; each step is told to the customer (R-61). Approved amounts are credited
on the next invoices (R-53, portal/services/invoicing.py).
"""

from __future__ import annotations

import enum
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.clock import clock
from portal.domain import calendar, sla
from portal.domain import invoices as invoice_rules
from portal.domain.sla import ClaimRefusal, CompensationKind
from portal.extensions import db
from portal.models import (
    ClaimChannel,
    ClaimStatus,
    Contract,
    Incident,
    IncidentVersion,
    Invoice,
    Provider,
    SlaClaim,
    SlaClaimEvent,
    SlaCredit,
)
from portal.paging import Page, paginate
from portal.permissions import (
    Actor,
    can_file_claims,
    can_record_paper_claims,
    can_review_claims,
)
from portal.presentation import (
    billing_month_name,
    incident_kind_name,
    long_date,
    tokyo_minute,
    yen,
)
from portal.services import audit, incidents, mail
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.transaction import begin_writing

MIN_REASON = 5
MAX_REASON = 1000
EARLIEST_RECEIVED = date(2000, 1, 1)


class ClaimRefused(PortalError):
    """The rules refuse the claim; `code` says why (for the API): not_touched,
    incident_open, before_end, window_closed or nothing_to_claim."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.code = code


class Decision(enum.StrEnum):
    APPROVE = "approve"  # as computed
    APPROVE_LOWER = "approve_lower"  # a lower amount, with a reason
    REJECT = "reject"  # with a reason


# --- computing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Computation:
    """A compensation as computed, live (before filing) or as a claim keeps it."""

    kind: sla.IncidentKind
    started_at: datetime
    ended_at: datetime
    billing_month: str
    monthly_fee: int
    total_minutes: int
    counted_minutes: int
    lines: tuple[dict, ...]
    subtotal: int
    cap_left: int
    amount: int
    claim_deadline: date

    @classmethod
    def of_assessment(cls, version: IncidentVersion, result: sla.Assessment) -> Computation:
        assert version.ended_at is not None
        return cls(
            kind=version.kind,
            started_at=version.started_at,
            ended_at=version.ended_at,
            billing_month=result.billing_month.name,
            monthly_fee=result.monthly_fee,
            total_minutes=result.total_minutes,
            counted_minutes=result.counted_minutes,
            lines=tuple(_line_json(line) for line in result.lines),
            subtotal=result.subtotal,
            cap_left=result.cap_left,
            amount=result.amount,
            claim_deadline=result.claim_deadline,
        )

    @classmethod
    def of_claim(cls, claim: SlaClaim) -> Computation:
        version = claim.incident_version
        assert version.ended_at is not None
        return cls(
            kind=version.kind,
            started_at=version.started_at,
            ended_at=version.ended_at,
            billing_month=claim.billing_month,
            monthly_fee=claim.monthly_fee,
            total_minutes=claim.total_minutes,
            counted_minutes=claim.counted_minutes,
            lines=tuple(claim.lines),
            subtotal=claim.subtotal,
            cap_left=claim.cap_left,
            amount=claim.computed_amount,
            claim_deadline=sla.claim_deadline(version.ended_at),
        )

    @property
    def capped(self) -> bool:
        return self.amount < self.subtotal


def _line_json(line: sla.CompensationLine) -> dict:
    return {
        "kind": line.kind.value,
        "amount": line.amount,
        "minutes": line.minutes,
        "late_occurrence": line.late_occurrence,
        "late_recovery": line.late_recovery,
    }


def assess(contract: Contract, version: IncidentVersion) -> sla.Assessment:
    """R-50/R-51: what an ended incident (this version) is worth to the contract now, the
    month's other claims taken into account (the cap of F)."""
    facts = incidents.contract_facts(contract)
    incident = incidents.facts_of(version)
    month = sla.billing_month_of_incident(incident, contract.anchor_day)
    fee = facts.monthly_fee_in(month) if contract.service.paid else 0
    assert version.ended_at is not None
    return sla.assess(
        incident,
        monthly_fee=fee,
        anchor_day=contract.anchor_day,
        windows=incidents.windows_for(contract.service_id, version.started_at, version.ended_at),
        already_this_month=_month_claimed(contract.id, month.name, version.incident_id),
    )


def _month_claimed(contract_id: int, billing_month: str, incident_id: int) -> int:
    """What the billing month's other claims of the contract take of its cap: filed ones as
    computed, approved ones as approved, rejected ones nothing."""
    taken = sa.case(
        (SlaClaim.status == ClaimStatus.APPROVED, SlaClaim.approved_amount),
        (SlaClaim.status == ClaimStatus.FILED, SlaClaim.computed_amount),
        else_=0,
    )
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(taken), 0)).where(
                SlaClaim.contract_id == contract_id,
                SlaClaim.billing_month == billing_month,
                SlaClaim.incident_id != incident_id,
            )
        )
        or 0
    )


@dataclass
class Option:
    """One incident as a contract's claims page shows it."""

    incident: Incident
    version: IncidentVersion
    computation: Computation | None  # None while the incident is open
    refusal: str | None  # why it cannot be claimed now (ClaimRefusal or "already_claimed")
    claim: SlaClaim | None

    @property
    def claimable(self) -> bool:
        return self.refusal is None


def options_for(contract: Contract, now: datetime, today: date) -> list[Option]:
    """R-52: the incidents of the last 12 months that touched the contract, with what each
    is worth, whether it can still be claimed, and the claim if one was filed."""
    claims = {c.incident_id: c for c in claims_of(contract)}
    options = []
    for view in incidents.for_contracts([contract], now):
        claim = claims.get(view.incident.id)
        if view.is_open:
            options.append(Option(view.incident, view.version, None, ClaimRefusal.OPEN, claim))
            continue
        computation = Computation.of_assessment(view.version, assess(contract, view.version))
        refusal = _refusal(view.version, computation, claim, today)
        options.append(Option(view.incident, view.version, computation, refusal, claim))
    return options


def _refusal(
    version: IncidentVersion, computation: Computation, claim: SlaClaim | None, on: date
) -> str | None:
    if claim is not None:
        return "already_claimed"
    refusal = sla.claim_refusal(incidents.facts_of(version), on)
    if refusal is not None:
        return refusal.value
    if computation.amount <= 0:
        return ClaimRefusal.NOTHING_TO_CLAIM.value
    return None


def refusal_message(code: str, computation: Computation | None = None) -> str:
    """What each refusal says to the customer."""
    if code == ClaimRefusal.OPEN:
        return _("The incident has not ended yet. It can be claimed for once it has.")
    if code == ClaimRefusal.BEFORE_END:
        return _("A claim for an incident is made after it ended.")
    if code == ClaimRefusal.WINDOW_CLOSED and computation is not None:
        return _(
            "The time to claim for this incident ended on %(date)s.",
            date=long_date(computation.claim_deadline),
        )
    if code == ClaimRefusal.WINDOW_CLOSED:
        return _("The time to claim for this incident has ended.")
    if code == ClaimRefusal.NOTHING_TO_CLAIM:
        return _("This incident earns no compensation for this contract.")
    if code == "already_claimed":
        return _("A claim for this incident on this contract was already filed.")
    if code == "not_touched":
        return _("This incident did not affect this contract.")
    return code


def explain(computation: Computation) -> list[str]:
    """The reasoning, line by line, in the current language (pages, PDF, API)."""
    fee = yen(computation.monthly_fee)
    start, end = tokyo_minute(computation.started_at), tokyo_minute(computation.ended_at)
    counted = f"{computation.counted_minutes:,}"
    lines = []
    earned = {line["kind"]: line for line in computation.lines}
    if computation.kind == sla.IncidentKind.OUTAGE:
        inside = computation.total_minutes - computation.counted_minutes
        note = (
            _(
                " (%(minutes)s minutes inside maintenance windows do not count)",
                minutes=f"{inside:,}",
            )
            if inside
            else ""
        )
        if CompensationKind.OUTAGE in earned:
            lines.append(
                _(
                    "Outage %(start)s – %(end)s: %(counted)s minutes counted%(note)s; "
                    "%(fee)s × %(counted)s / 43,200 = %(amount)s",
                    start=start,
                    end=end,
                    counted=counted,
                    note=note,
                    fee=fee,
                    amount=yen(earned[CompensationKind.OUTAGE]["amount"]),
                )
            )
        else:
            lines.append(
                _(
                    "Outage %(start)s – %(end)s: %(counted)s minutes counted%(note)s, not over "
                    "24 hours: nothing for the downtime.",
                    start=start,
                    end=end,
                    counted=counted,
                    note=note,
                )
            )
    if CompensationKind.DATA_LOST in earned:
        lines.append(
            _(
                "Registered data lost and not restored (%(start)s): one monthly fee, %(amount)s",
                start=start,
                amount=yen(earned[CompensationKind.DATA_LOST]["amount"]),
            )
        )
    if CompensationKind.SECURITY_FAILURE in earned:
        lines.append(
            _(
                "Failure of the security obligations (%(start)s): %(fee)s / 30 = %(amount)s",
                start=start,
                fee=fee,
                amount=yen(earned[CompensationKind.SECURITY_FAILURE]["amount"]),
            )
        )
    late = earned.get(CompensationKind.LATE_ANNOUNCEMENT)
    if late:
        if late["late_occurrence"] and late["late_recovery"]:
            what = _("Occurrence and recovery not announced within 60 minutes")
        elif late["late_occurrence"]:
            what = _("Occurrence not announced within 60 minutes")
        else:
            what = _("Recovery not announced within 60 minutes")
        lines.append(
            _("%(what)s: %(fee)s / 30 = %(amount)s", what=what, fee=fee, amount=yen(late["amount"]))
        )
    if computation.capped:
        lines.append(
            _(
                "At most one monthly fee per billing month (%(fee)s for %(month)s); other claims "
                "of that month already take %(taken)s, so %(amount)s is left.",
                fee=fee,
                month=billing_month_name(computation.billing_month),
                taken=yen(computation.monthly_fee - computation.cap_left),
                amount=yen(computation.amount),
            )
        )
    return lines


# --- reading -----------------------------------------------------------------------------------


def claims_of(contract: Contract) -> list[SlaClaim]:
    return list(
        db.session.scalars(
            sa.select(SlaClaim)
            .where(SlaClaim.contract_id == contract.id)
            .options(selectinload(SlaClaim.incident_version))
            .order_by(SlaClaim.id.desc())
        )
    )


CLAIMS_PER_PAGE = 50


def claims_for_staff(status: ClaimStatus | None = None, *, page: int = 1) -> Page[SlaClaim]:
    """The claims (of one status, or all), the latest filed first, by page (issue 15)."""
    query = (
        sa.select(SlaClaim)
        .options(selectinload(SlaClaim.organisation), selectinload(SlaClaim.incident_version))
        .order_by(SlaClaim.filed_at.desc(), SlaClaim.id.desc())
    )
    if status is not None:
        query = query.where(SlaClaim.status == status)
    return paginate(query, page, CLAIMS_PER_PAGE)


def claims_of_incident(incident: Incident) -> list[SlaClaim]:
    return list(
        db.session.scalars(
            sa.select(SlaClaim)
            .where(SlaClaim.incident_id == incident.id)
            .options(selectinload(SlaClaim.organisation), selectinload(SlaClaim.incident_version))
            .order_by(SlaClaim.id)
        )
    )


def invoices_of(claim: SlaClaim) -> list[tuple[Invoice, int]]:
    """R-53: the invoices that carried the claim's credit, with the amount each carried."""
    return [
        (credit.invoice, credit.amount)
        for credit in db.session.scalars(
            sa.select(SlaCredit).where(SlaCredit.claim_id == claim.id).order_by(SlaCredit.id)
        )
    ]


# --- filing ------------------------------------------------------------------------------------


def file(
    actor: Actor,
    contract: Contract,
    incident: Incident,
    *,
    ip: str = "",
    channel: ClaimChannel = ClaimChannel.PORTAL,
    received_on: date | None = None,
) -> SlaClaim:
    """R-52: file a claim for an incident on a contract, with the amount computed now; the
    caller commits. One per contract and incident, whatever races (a unique constraint, and
    the contract's row locked while the month's cap is read)."""
    if channel == ClaimChannel.PAPER:
        if not can_record_paper_claims(actor):
            raise NotAllowed(_("Only support staff and staff administrators record claims."))
    elif not can_file_claims(actor):
        raise NotAllowed(_("Only the customer's administrators and sales agents file claims."))
    today = clock.today()
    claimed_on = received_on or today
    if not EARLIEST_RECEIVED <= claimed_on <= today:
        raise PortalError(_("Enter a date between 2000 and today."), field="received_on")
    _lock(contract)
    version = incidents.current_version(incident)
    if not incidents.touched(version, contract):
        raise ClaimRefused("not_touched", refusal_message("not_touched"), field="incident_id")
    if _existing(contract, incident) is not None:
        raise Conflict(refusal_message("already_claimed"))
    refusal = sla.claim_refusal(incidents.facts_of(version), claimed_on)
    computation = (
        Computation.of_assessment(version, assess(contract, version))
        if refusal != ClaimRefusal.OPEN
        else None
    )
    if refusal is not None:
        field = "received_on" if channel == ClaimChannel.PAPER else "incident_id"
        raise ClaimRefused(refusal.value, refusal_message(refusal.value, computation), field=field)
    assert computation is not None
    if computation.amount <= 0:
        code = ClaimRefusal.NOTHING_TO_CLAIM.value
        raise ClaimRefused(code, refusal_message(code), field="incident_id")
    claim = SlaClaim(
        contract_id=contract.id,
        organisation_id=contract.organisation_id,
        incident_id=incident.id,
        incident_version_id=version.id,
        billing_month=computation.billing_month,
        monthly_fee=computation.monthly_fee,
        total_minutes=computation.total_minutes,
        counted_minutes=computation.counted_minutes,
        lines=list(computation.lines),
        subtotal=computation.subtotal,
        cap_left=computation.cap_left,
        computed_amount=computation.amount,
        tax_rate_percent=contract.plan.tax_rate_percent,
        claimed_on=claimed_on,
        channel=channel,
        filed_by_id=actor.user.id,
        entry_id=actor.entry.id if actor.entry else None,
        filed_from=ip[:64],
        locale=_locale(contract),
    )
    try:
        with db.session.begin_nested():
            db.session.add(claim)
    except IntegrityError as exc:
        raise Conflict(refusal_message("already_claimed")) from exc
    db.session.add(
        SlaClaimEvent(
            claim_id=claim.id, kind="filed", user_id=actor.user.id, amount=claim.computed_amount
        )
    )
    db.session.flush()
    _store_pdf(claim)
    audit.record(
        "claim.filed",
        actor=actor,
        organisation_id=contract.organisation_id,
        subject=claim,
        ip=ip,
        contract_id=contract.id,
        incident_id=incident.id,
        version=version.version,
        amount=claim.computed_amount,
        channel=channel.value,
    )
    _notify(claim, "claim_filed")
    return claim


def _lock(contract: Contract) -> None:
    """Take the contract's row lock (PostgreSQL; SQLite's write lock on SQLite), so that two
    claims of one billing month never both take the month's last yen of its cap."""
    begin_writing()
    db.session.execute(sa.select(Contract.id).where(Contract.id == contract.id).with_for_update())


def _existing(contract: Contract, incident: Incident) -> SlaClaim | None:
    return db.session.scalar(
        sa.select(SlaClaim).where(
            SlaClaim.contract_id == contract.id, SlaClaim.incident_id == incident.id
        )
    )


def _locale(contract: Contract) -> str:
    locale = contract.organisation.locale
    return locale if locale in ("ja", "en") else "ja"


# --- review ------------------------------------------------------------------------------------


def review(
    actor: Actor,
    claim: SlaClaim,
    decision: Decision,
    *,
    amount: int | None = None,
    reason: str = "",
    ip: str = "",
) -> SlaClaim:
    """R-52 reading: approve as computed, approve a lower amount with a reason, or reject
    with a reason; once. The customer is told (R-61)."""
    if not can_review_claims(actor):
        raise NotAllowed(_("Only billing staff and staff administrators review claims."))
    approved, reason = check_review(claim, decision, amount=amount, reason=reason)
    status = ClaimStatus.REJECTED if decision == Decision.REJECT else ClaimStatus.APPROVED
    now = clock.now()
    done = db.session.execute(
        sa.update(SlaClaim)
        .where(SlaClaim.id == claim.id, SlaClaim.status == ClaimStatus.FILED)
        .values(
            status=status,
            approved_amount=approved,
            reviewed_at=now,
            reviewed_by_id=actor.user.id,
            review_reason=reason,
        )
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(_("This claim was reviewed already."))
    db.session.refresh(claim)
    db.session.add(
        SlaClaimEvent(
            claim_id=claim.id,
            kind=status.value,
            user_id=actor.user.id,
            amount=approved,
            reason=reason,
        )
    )
    audit.record(
        f"claim.{status.value}",
        actor=actor,
        organisation_id=claim.organisation_id,
        subject=claim,
        ip=ip,
        amount=approved,
        computed=claim.computed_amount,
        reason=reason,
    )
    _notify(claim, "claim_reviewed")
    return claim


def check_review(
    claim: SlaClaim, decision: Decision, *, amount: int | None = None, reason: str | None = ""
) -> tuple[int | None, str]:
    """The amount a decision approves (None: rejected) and its reason, or why it cannot be."""
    reason = (reason or "").strip()
    if "\x00" in reason or len(reason) > MAX_REASON:
        raise PortalError(_("Use at most %(max)d characters.", max=MAX_REASON), field="reason")
    if decision != Decision.APPROVE and len(reason) < MIN_REASON:
        raise PortalError(
            _("Give the reason in %(min)d to %(max)d characters.", min=MIN_REASON, max=MAX_REASON),
            field="reason",
        )
    if decision == Decision.REJECT:
        return None, reason
    if decision == Decision.APPROVE:
        return claim.computed_amount, reason
    if amount is None or not 0 < amount < claim.computed_amount:
        raise PortalError(
            _(
                "Enter an amount above zero and below the computed %(amount)s.",
                amount=yen(claim.computed_amount),
            ),
            field="amount",
        )
    return amount, reason


def review_summary(claim: SlaClaim, decision: Decision, amount: int | None) -> str:
    """What a review will do, for the confirmation page."""
    if decision == Decision.REJECT:
        return _("Reject %(number)s and tell the customer why.", number=claim.number)
    approved = claim.computed_amount if decision == Decision.APPROVE else amount
    return _(
        "Approve %(number)s for %(amount)s (tax excluded), deducted from the customer's next "
        "invoice, and tell the customer.",
        number=claim.number,
        amount=yen(approved),
    )


def _notify(claim: SlaClaim, kind: str) -> None:
    """R-61: the claim and each step of its review are told to the customer's registered
    address and administrators, in its language, and kept under Notices."""
    organisation = claim.organisation
    mail.notify_organisation(
        organisation,
        kind,
        to=mail.contract_notice_addresses(organisation),
        contract_id=claim.contract_id,
        dedupe_key=f"{kind}:{claim.id}",
        context={
            "claim": claim,
            "contract": claim.contract,
            "version": claim.incident_version,
            "claim_url": mail.absolute_url(
                "sla.claim", contract_id=claim.contract_id, claim_id=claim.id
            ),
        },
    )


# --- the document (R-52: a claim the customer keeps) -------------------------------------------


def pdf_of(claim: SlaClaim) -> bytes:
    """The stored PDF, byte for byte; rendered and stored now if it never was."""
    stored = db.session.execute(
        sa.select(SlaClaim.pdf, SlaClaim.pdf_sha256).where(SlaClaim.id == claim.id)
    ).one()
    if stored.pdf_sha256 is not None:
        return stored.pdf
    pdf = _store_pdf(claim)
    db.session.commit()
    return pdf


def stored_sha256(claim: SlaClaim) -> str:
    return db.session.scalar(sa.select(SlaClaim.pdf_sha256).where(SlaClaim.id == claim.id)) or ""


def _store_pdf(claim: SlaClaim) -> bytes:
    from portal.documents.claims import claim_document, render_claim_pdf

    provider = db.session.scalar(sa.select(Provider).limit(1))
    with force_locale(claim.locale):
        document = claim_document(claim, provider, explain(Computation.of_claim(claim)))
    pdf = render_claim_pdf(document)
    # the PDF and its hash in one statement, only while there is none (migration 0008).
    stored = db.session.execute(
        sa.update(SlaClaim)
        .where(SlaClaim.id == claim.id, SlaClaim.pdf.is_(None), SlaClaim.pdf_sha256.is_(None))
        .values(pdf=pdf, pdf_sha256=hashlib.sha256(pdf).hexdigest())
        .execution_options(synchronize_session=False)
    )
    if stored.rowcount != 1:  # type: ignore[attr-defined]
        # Another download stored it first: serve what is stored, byte for byte.
        return db.session.execute(
            sa.select(SlaClaim.pdf).where(SlaClaim.id == claim.id)
        ).scalar_one()
    return pdf


# --- credit on the next invoice (R-53) ---------------------------------------------------------


def credit_lines(
    organisation_ids: list[int], charges: dict[int, list[invoice_rules.Line]]
) -> dict[int, list[invoice_rules.Line]]:
    """R-53: each organisation's approved, uncredited claims as credit lines of its next
    invoice, oldest approval first. An invoice never goes below zero: a rate's credits take
    at most what the invoice charges at that rate; what is left waits for the next invoice."""
    if not organisation_ids:
        return {}
    approved = db.session.scalars(
        sa.select(SlaClaim)
        .where(
            SlaClaim.organisation_id.in_(organisation_ids),
            SlaClaim.status == ClaimStatus.APPROVED,
            SlaClaim.credited_amount < SlaClaim.approved_amount,
        )
        .options(selectinload(SlaClaim.incident_version))
        .order_by(SlaClaim.organisation_id, SlaClaim.reviewed_at, SlaClaim.id)
    )
    lines: dict[int, list[invoice_rules.Line]] = defaultdict(list)
    available: dict[int, dict[int, int]] = {}
    for claim in approved:
        org = claim.organisation_id
        if org not in available:
            available[org] = defaultdict(int)
            for line in charges.get(org, []):
                available[org][line.tax_rate_percent] += line.amount
        room = available[org][claim.tax_rate_percent]
        amount = min(claim.uncredited, room)
        if amount <= 0:
            continue
        available[org][claim.tax_rate_percent] -= amount
        lines[org].append(_credit_line(claim, amount))
    return lines


def _credit_line(claim: SlaClaim, amount: int) -> invoice_rules.Line:
    """The credit as a line in both languages, frozen at issue, with the items of a return
    invoice: the transaction returned on (the billing month), what, and the amount."""
    version = claim.incident_version
    name_ja, name_en = invoice_rules.CHARGE_NAMES["sla_credit"]
    year, month_number = (int(part) for part in claim.billing_month.split("-"))
    month = calendar.billing_month_named(year, month_number, claim.contract.anchor_day)
    texts = {}
    for locale in ("ja", "en"):
        with force_locale(locale):
            texts[locale] = _(
                "%(name)s: claim %(number)s, %(incident)s %(start)s, contract no. %(contract)s",
                name=name_ja if locale == "ja" else name_en,
                number=claim.number,
                incident=incident_kind_name(version.kind),
                start=tokyo_minute(version.started_at),
                contract=claim.contract_id,
            )
    return invoice_rules.Line(
        kind="sla_credit",
        amount=-amount,
        tax_rate_percent=claim.tax_rate_percent,
        description_ja=texts["ja"][:300],
        description_en=texts["en"][:300],
        contract_id=claim.contract_id,
        details={
            "claim_id": claim.id,
            "claim": claim.number,
            "billing_month": claim.billing_month,
            "period_start": month.start.isoformat(),
            "period_end": month.end.isoformat(),
        },
    )


def record_credits(invoice_id: int, lines: list[invoice_rules.Line], now: datetime) -> None:
    """R-53: the credits an invoice carries, each once: the claim's credited amount grows by a
    conditional update that never passes its approved amount (and a check constraint)."""
    for line in lines:
        if line.kind != "sla_credit":
            continue
        claim_id, amount = int(line.details["claim_id"]), -line.amount
        moved = db.session.execute(
            sa.update(SlaClaim)
            .where(
                SlaClaim.id == claim_id,
                SlaClaim.status == ClaimStatus.APPROVED,
                SlaClaim.credited_amount + amount <= SlaClaim.approved_amount,
            )
            .values(credited_amount=SlaClaim.credited_amount + amount)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount != 1:  # type: ignore[attr-defined]
            raise RuntimeError(f"claim {claim_id} cannot take a credit of {amount}")
        db.session.execute(
            sa.insert(SlaCredit).values(
                claim_id=claim_id,
                invoice_id=invoice_id,
                amount=amount,
                tax_rate_percent=line.tax_rate_percent,
                created_at=now,
            )
        )
        db.session.execute(
            sa.insert(SlaClaimEvent).values(
                claim_id=claim_id,
                kind="credited",
                at=now,
                amount=amount,
                invoice_id=invoice_id,
                reason="",
            )
        )
