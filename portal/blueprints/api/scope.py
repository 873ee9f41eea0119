"""What a token's user may load: their contracts (R-70, R-71) or, for staff, any contract.

Anything outside that answers 404 (through the shared loaders), so ids reveal nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.models import Contract
from portal.permissions import (
    Actor,
    contracts_visible,
    get_contract_for_staff_or_404,
    get_contract_or_404,
    is_staff,
)
from portal.services import contracts as contract_service


def contracts_of(actor: Actor) -> list[Contract]:
    """Customers: their organisation's; agents: their clients' (R-71); staff: every one."""
    query = sa.select(Contract) if is_staff(actor) else contracts_visible(actor)
    query = query.order_by(Contract.organisation_id, Contract.service_start, Contract.id)
    query = contract_service.with_plan_and_service(query).options(
        selectinload(Contract.organisation)  # each contract names its organisation
    )
    return list(db.session.scalars(query))


def contract_or_404(actor: Actor, contract_id: int) -> Contract:
    if is_staff(actor):
        return get_contract_for_staff_or_404(contract_id, actor)
    return get_contract_or_404(contract_id, actor)
