"""The documents of a request the customer keeps: its confirmation and its withdrawal (R-32).

Each is rendered once, when it happens (confirmed, withdrawn), in the organisation's language
(like invoices), stored with its SHA-256 in `request_documents` (frozen by triggers, migration
0006) and served byte for byte as stored (R-42's rule for documents a customer keeps). A
request confirmed before documents were stored gets its confirmation rendered and stored on
its first download, with the time it was received, so it reads as it would have then.

Agencies never see amounts (R-71). Their copy of a confirmation is a document of its own,
"agency_confirmation", without any amount: stored when the request is confirmed if an agency
acts for the organisation then, else on an agency's first download; it is proof of a notice
an agency may itself have filed, so it must not change between downloads either. A
withdrawal bills nothing and shows no amount, so one stored document serves everyone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from portal.documents.requests import RequestDocument as Document
from portal.documents.requests import render_request_pdf
from portal.extensions import db
from portal.models import (
    ContractRequest,
    PartnerAssignment,
    PartnerCompany,
    PartnerKind,
    Provider,
    RequestDocument,
    RequestStatus,
    User,
)
from portal.permissions import Actor, can_see_fees
from portal.transaction import begin_writing

CONFIRMATION = "confirmation"
AGENCY_CONFIRMATION = "agency_confirmation"  # the confirmation without amounts
WITHDRAWAL = "withdrawal"


@dataclass(frozen=True)
class StoredDocument:
    pdf: bytes
    sha256: str
    locale: str
    kind: str


# --- storing, when it happens --------------------------------------------------------------


def store_confirmation(request: ContractRequest) -> None:
    """R-32: the confirmation of a request just confirmed; the caller commits with it."""
    _store(request, CONFIRMATION)
    if _agency_acts_for(request.organisation_id):
        _store(request, AGENCY_CONFIRMATION)


def store_withdrawal(request: ContractRequest) -> None:
    """R-23: the withdrawal of a request just withdrawn; the caller commits with it."""
    _store(request, WITHDRAWAL)


# --- serving, as stored ----------------------------------------------------------------------


def confirmation_of(request: ContractRequest, actor: Actor) -> StoredDocument:
    """The confirmation as stored; the agency's copy for agencies (R-71). A confirmation not
    stored yet (a request confirmed before documents were stored) is stored now: the caller
    commits."""
    kind = CONFIRMATION if can_see_fees(actor) else AGENCY_CONFIRMATION
    return _stored(request.id, kind) or _store(request, kind)


def withdrawal_of(request: ContractRequest) -> StoredDocument | None:
    """The withdrawal as stored; None when the request was not withdrawn."""
    if request.status != RequestStatus.WITHDRAWN:
        return None
    return _stored(request.id, WITHDRAWAL) or _store(request, WITHDRAWAL)


def _stored(request_id: int, kind: str) -> StoredDocument | None:
    row = db.session.execute(
        sa.select(RequestDocument.pdf, RequestDocument.pdf_sha256, RequestDocument.locale).where(
            RequestDocument.request_id == request_id, RequestDocument.kind == kind
        )
    ).one_or_none()
    if row is None:
        return None
    return StoredDocument(row.pdf, row.pdf_sha256, row.locale, kind)


def _store(request: ContractRequest, kind: str) -> StoredDocument:
    """Render once and store; when another download stored it first, that one is served."""
    locale = request.organisation.locale if request.organisation.locale in ("ja", "en") else "ja"
    pdf = render_request_pdf(_document(request, kind, locale))
    digest = hashlib.sha256(pdf).hexdigest()
    begin_writing()  # SQLite: the savepoint must not be the transaction (portal/transaction.py)
    try:
        with db.session.begin_nested():
            db.session.add(
                RequestDocument(
                    request_id=request.id, kind=kind, locale=locale, pdf=pdf, pdf_sha256=digest
                )
            )
    except IntegrityError:
        # Stored by a download that got there first (unique request and kind): serve that.
        stored = _stored(request.id, kind)
        assert stored is not None
        return stored
    return StoredDocument(pdf, digest, locale, kind)


def _agency_acts_for(organisation_id: int) -> bool:
    """Whether an agency is assigned to the organisation (R-71), so will want its copy."""
    return bool(
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(PartnerAssignment)
            .join(PartnerCompany, PartnerCompany.id == PartnerAssignment.partner_id)
            .where(
                PartnerAssignment.organisation_id == organisation_id,
                PartnerCompany.kind == PartnerKind.AGENCY,
            )
        )
    )


def _agent(user: User | None) -> str | None:
    if user is None or user.partner is None:
        return None
    return f"{user.name} ({user.partner.name})"


def _document(request: ContractRequest, kind: str, locale: str) -> Document:
    provider = db.session.scalar(sa.select(Provider).limit(1))
    contract = request.contract
    withdrawn = kind == WITHDRAWAL
    requested_by = request.requested_by
    withdrawn_by = request.withdrawn_by
    # A document bears the time of what it records, however late it is rendered.
    recorded_at = request.withdrawn_at if withdrawn else request.requested_at
    return Document(
        locale=locale,
        is_confirmation=True,
        issued_at=recorded_at or request.requested_at,
        provider_name=provider.name(locale) if provider else "",
        provider_registration_number=provider.registration_number if provider else "",
        provider_address=provider.address if provider else "",
        organisation_name=contract.organisation.legal_name,
        contract_id=contract.id,
        service_name=contract.service.name(locale),
        current_plan_name=request.from_plan.name(locale),
        target_plan_name=request.target_plan.name(locale) if request.target_plan else None,
        requested_by=requested_by.name,
        quote=request.confirmed_quote(),
        reference=request.reference,
        acting_agent=_agent(requested_by),
        requested_from=request.requested_from or None,
        show_amounts=kind == CONFIRMATION,
        withdrawn_by=(withdrawn_by.name if withdrawn_by else "—") if withdrawn else None,
        withdrawing_agent=_agent(withdrawn_by) if withdrawn else None,
    )
