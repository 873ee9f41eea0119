"""What a token's user may load: their contracts (R-70, R-71) or, for staff, any contract.

Anything outside that answers 404 (through the shared loaders), so ids reveal nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from portal.blueprints.api.cursors import ContractKey
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


def _listed(actor: Actor) -> sa.Select[tuple[Contract]]:
    """Customers: their organisation's; agents: their clients' (R-71); staff: every one; by
    organisation, service start and id (the order the cursor of cursors.py follows)."""
    query = sa.select(Contract) if is_staff(actor) else contracts_visible(actor)
    query = query.order_by(Contract.organisation_id, Contract.service_start, Contract.id)
    return contract_service.with_plan_and_service(query).options(
        selectinload(Contract.organisation)  # each contract names its organisation
    )


def contracts_of(actor: Actor) -> list[Contract]:
    return list(db.session.scalars(_listed(actor)))


def contracts_after(
    actor: Actor, after: ContractKey | None, limit: int
) -> tuple[list[Contract], ContractKey | None]:
    """Up to `limit` contracts after the position `after` (from the start when None), and the
    position of the last one when more follow (None at the end): one statement, no OFFSET."""
    query = _listed(actor)
    if after is not None:
        org, start = Contract.organisation_id, Contract.service_start
        query = query.where(
            sa.or_(
                org > after.organisation_id,
                sa.and_(
                    org == after.organisation_id,
                    sa.or_(
                        start > after.service_start,
                        sa.and_(start == after.service_start, Contract.id > after.contract_id),
                    ),
                ),
            )
        )
    found = list(db.session.scalars(query.limit(limit + 1)))
    if len(found) <= limit:
        return found, None
    last = found[limit - 1]
    return found[:limit], ContractKey(last.organisation_id, last.service_start, last.id)


def contract_or_404(actor: Actor, contract_id: int) -> Contract:
    if is_staff(actor):
        return get_contract_for_staff_or_404(contract_id, actor)
    return get_contract_or_404(contract_id, actor)
