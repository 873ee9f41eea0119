"""Partners manage their own people and sign up clients (issue 14, R-71)

- users.partner_role: every agent is an "agent" of its partner company; a partner's
  "administrator" also invites and removes the company's agents. Existing agents become
  plain agents; the one-kind CHECK now says that agents, and only agents, have a role.
- partner_applications: an agent's application for a new client, approved or refused by
  staff; one pending application per first administrator's address (a partial unique index).
- partner_companies: one partner per name whatever its case (a unique index on lower(name));
  names already repeated get their id appended first, so that the index can be built.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 19:11:00

"""
import re

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OLD_ONE_KIND = (
    "(kind = 'customer' AND organisation_id IS NOT NULL AND customer_role IS NOT NULL"
    " AND partner_id IS NULL AND staff_role IS NULL)"
    " OR (kind = 'agent' AND partner_id IS NOT NULL AND organisation_id IS NULL"
    " AND customer_role IS NULL AND staff_role IS NULL)"
    " OR (kind = 'staff' AND staff_role IS NOT NULL AND organisation_id IS NULL"
    " AND customer_role IS NULL AND partner_id IS NULL)"
)
NEW_ONE_KIND = (
    "(kind = 'customer' AND organisation_id IS NOT NULL AND customer_role IS NOT NULL"
    " AND partner_id IS NULL AND staff_role IS NULL AND partner_role IS NULL)"
    " OR (kind = 'agent' AND partner_id IS NOT NULL AND partner_role IS NOT NULL"
    " AND organisation_id IS NULL AND customer_role IS NULL AND staff_role IS NULL)"
    " OR (kind = 'staff' AND staff_role IS NOT NULL AND organisation_id IS NULL"
    " AND customer_role IS NULL AND partner_id IS NULL AND partner_role IS NULL)"
)
PARTNER_ROLE_COLUMN = (
    "partner_role VARCHAR(32) CONSTRAINT ck_users_partner_role"
    " CHECK (partner_role IN ('agent', 'administrator'))"
)


def _rewrite_users_sql(change):
    """SQLite cannot alter a CHECK constraint, and rebuilding `users` (a batch copy) would lose
    its other CHECKs: the table's text is rewritten in the schema, as 0007 does (SQLite's
    lang_altertable, "otheralter"). The rows are already valid under the new text."""
    bind = op.get_bind()
    sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'users'").scalar()
    new_sql = change(sql)
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'users'", (new_sql,)
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def _one_kind(old, new):
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE users DROP CONSTRAINT ck_users_one_kind")
        op.execute(f"ALTER TABLE users ADD CONSTRAINT ck_users_one_kind CHECK ({new})")
        return

    def change(sql):
        if old not in sql:
            raise RuntimeError("users: the one-kind CHECK constraint was not found")
        return sql.replace(old, new)

    _rewrite_users_sql(change)


def upgrade():
    op.create_table('partner_applications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('submitted_by_id', sa.Integer(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.Enum('pending', 'approved', 'refused', 'withdrawn', name='partner_application_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('legal_name', sa.String(length=200), nullable=False),
    sa.Column('legal_name_kana', sa.String(length=200), nullable=False),
    sa.Column('postal_code', sa.String(length=10), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('phone', sa.String(length=40), nullable=False),
    sa.Column('billing_email', sa.String(length=254), nullable=False),
    sa.Column('contract_contact_name', sa.String(length=100), nullable=False),
    sa.Column('contract_contact_email', sa.String(length=254), nullable=False),
    sa.Column('operations_contact_name', sa.String(length=100), nullable=False),
    sa.Column('operations_contact_email', sa.String(length=254), nullable=False),
    sa.Column('locale', sa.String(length=5), nullable=False),
    sa.Column('admin_name', sa.String(length=100), nullable=False),
    sa.Column('admin_email', sa.String(length=254), nullable=False),
    sa.Column('plan_id', sa.Integer(), nullable=False),
    sa.Column('service_start', sa.Date(), nullable=False),
    sa.Column('anchor_day', sa.Integer(), nullable=False),
    sa.Column('inet_application_contact_name', sa.String(length=100), nullable=False),
    sa.Column('inet_application_contact_email', sa.String(length=254), nullable=False),
    sa.Column('inet_operations_manager_name', sa.String(length=100), nullable=False),
    sa.Column('inet_operations_manager_email', sa.String(length=254), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('refusal_reason', sa.String(length=1000), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("(status = 'approved') = (organisation_id IS NOT NULL)", name=op.f('ck_partner_applications_approved_has_client')),
    sa.CheckConstraint("(status = 'pending') = (decided_at IS NULL)", name=op.f('ck_partner_applications_decided_unless_pending')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_partner_applications_decided_by_id_users')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_partner_applications_organisation_id_organisations')),
    sa.ForeignKeyConstraint(['partner_id'], ['partner_companies.id'], name=op.f('fk_partner_applications_partner_id_partner_companies')),
    sa.ForeignKeyConstraint(['plan_id'], ['plans.id'], name=op.f('fk_partner_applications_plan_id_plans')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['users.id'], name=op.f('fk_partner_applications_submitted_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_applications'))
    )
    with op.batch_alter_table('partner_applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_partner_applications_partner_id'), ['partner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_partner_applications_status'), ['status'], unique=False)
        batch_op.create_index('uq_partner_applications_pending_admin_email', ['admin_email'], unique=True, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))

    # Agents, and only agents, have a role in their partner company.
    op.execute(f"ALTER TABLE users ADD COLUMN {PARTNER_ROLE_COLUMN}")
    op.execute("UPDATE users SET partner_role = 'agent' WHERE kind = 'agent'")
    _one_kind(OLD_ONE_KIND, NEW_ONE_KIND)

    # One partner per name, whatever its case.
    op.execute(
        "UPDATE partner_companies SET name = name || ' (' || id || ')' WHERE id NOT IN"
        " (SELECT min(id) FROM partner_companies GROUP BY lower(name))"
    )
    op.create_index(
        'uq_partner_companies_name', 'partner_companies', [sa.text('lower(name)')], unique=True
    )


def downgrade():
    op.drop_index('uq_partner_companies_name', table_name='partner_companies')
    # The partner administrators become plain agents: nobody loses the sign-in.
    _one_kind(NEW_ONE_KIND, OLD_ONE_KIND)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE users DROP COLUMN partner_role")
    else:
        # SQLite drops no column a CHECK names: the column's own CHECK goes first.
        _rewrite_users_sql(
            lambda sql: re.sub(r"partner_role VARCHAR\(32\) CONSTRAINT.*?\)\)", "partner_role VARCHAR(32)", sql)
        )
        op.execute("ALTER TABLE users DROP COLUMN partner_role")

    with op.batch_alter_table('partner_applications', schema=None) as batch_op:
        batch_op.drop_index('uq_partner_applications_pending_admin_email', sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_index(batch_op.f('ix_partner_applications_status'))
        batch_op.drop_index(batch_op.f('ix_partner_applications_partner_id'))

    op.drop_table('partner_applications')
