"""Documents a customer downloads: the quote and confirmation of a request (R-32)."""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import gettext as _

from portal.clock import clock
from portal.documents.requests import RequestDocument, render_request_pdf
from portal.extensions import db
from portal.models import ContractRequest, Provider, RequestStatus
from portal.permissions import Actor, can_see_fees


def _status(request: ContractRequest) -> str:
    return {
        RequestStatus.PENDING: _("Pending"),
        RequestStatus.APPLIED: _("Applied"),
        RequestStatus.WITHDRAWN: _("Withdrawn"),
    }[request.status]


def request_pdf(request: ContractRequest, actor: Actor, locale: str) -> bytes:
    """The confirmed request as PDF, in `locale`; agencies get it without amounts (R-71)."""
    provider = db.session.scalar(sa.select(Provider).limit(1))
    contract = request.contract
    agent = request.requested_by if request.requested_by.partner_id else None
    return render_request_pdf(
        RequestDocument(
            locale=locale,
            is_confirmation=True,
            issued_at=clock.now(),
            provider_name=provider.name(locale) if provider else "",
            provider_registration_number=provider.registration_number if provider else "",
            provider_address=provider.address if provider else "",
            organisation_name=contract.organisation.legal_name,
            contract_id=contract.id,
            service_name=contract.service.name(locale),
            current_plan_name=request.from_plan.name(locale),
            target_plan_name=request.target_plan.name(locale) if request.target_plan else None,
            requested_by=request.requested_by.name,
            quote=request.confirmed_quote(),
            reference=request.reference,
            acting_agent=(
                f"{agent.name} ({agent.partner.name})" if agent and agent.partner else None
            ),
            requested_from=request.requested_from or None,
            status=_status(request),
            show_amounts=can_see_fees(actor),
        )
    )
