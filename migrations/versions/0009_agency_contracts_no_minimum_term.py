"""Agency contracts have no minimum term: pending requests lose the shortfall they were quoted

R-06 as now read (issue 14): IW 27(3) applies "regardless of article 4", and article 4 is
where the minimum term lives, so a contract through an agency owes no shortfall when it ends.
A cancellation or downgrade of such a contract confirmed before this reading and not yet
carried out still holds, in its stored quote, the shortfall the portal then quoted; the
monthly run would bill it. Those quotes are rewritten without it (and without a minimum term
for the downgrade's new contract, sold through the same agency). Requests already carried out
are history and stay as they are; their shortfall, if any, was billed on an issued invoice,
which only a credit note can correct (R-42).

The quote is rebuilt with the portal's own Quote type, so that its totals and tax are
computed as every other quote's are. The downgrade restores nothing: the rule was misread.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 17:20:00

"""
from dataclasses import replace

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    from portal.domain.quotes import ChargeKind, Quote, RequestKind

    conn = op.get_bind()
    requests = sa.table(
        "contract_requests",
        sa.column("id", sa.Integer),
        sa.column("contract_id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("status", sa.String),
        sa.column("quote", sa.JSON),
    )
    contracts = sa.table(
        "contracts",
        sa.column("id", sa.Integer),
        sa.column("sales_channel", sa.String),
        sa.column("anchor_day", sa.Integer),
    )
    pending = conn.execute(
        sa.select(requests.c.id, requests.c.quote, contracts.c.anchor_day)
        .join(contracts, contracts.c.id == requests.c.contract_id)
        .where(
            contracts.c.sales_channel == "agency",
            requests.c.status == "pending",
            requests.c.kind.in_(("cancellation", "downgrade")),
        )
    ).all()
    for request_id, stored, anchor_day in pending:
        quote = Quote.from_json(stored, anchor_day)
        charges = tuple(c for c in quote.charges if c.kind != ChargeKind.SHORTFALL)
        fixed = replace(
            quote,
            charges=charges,
            unexpired_months=0,
            minimum_term_end=None,
            invoice_month=quote.invoice_month if charges else None,
        )
        if quote.kind == RequestKind.DOWNGRADE:
            fixed = replace(fixed, new_minimum_term_end=None, new_minimum_months=None)
        if fixed == quote:
            continue
        conn.execute(
            requests.update().where(requests.c.id == request_id).values(quote=fixed.to_json())
        )


def downgrade():
    pass
