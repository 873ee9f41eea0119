"""frozen means frozen: no TRUNCATE of frozen tables, a PDF stored once with its hash

R-42 (and R-72/R-73 for the audit log, R-50..R-53 for incidents and claims): the row triggers
of 0001, 0003, 0005 and 0006 refuse UPDATE and DELETE of issued documents, but row triggers do
not fire on TRUNCATE. On PostgreSQL each frozen table gets a statement trigger BEFORE TRUNCATE
that refuses it (a TRUNCATE ... CASCADE from a referenced table fires it too). SQLite has no
TRUNCATE: its DELETE without WHERE fires the row triggers, which refuse it already.

A document's PDF and its SHA-256 are written together, in one UPDATE (or INSERT), only when
both were empty, and never changed afterwards: the PDF alone, the hash alone, a second PDF or
a hash of something else are refused (PostgreSQL checks the hash itself; SQLite, which has no
SHA-256 function, checks that it is one: 64 hex digits).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 10:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


# Every table a row trigger of an earlier migration freezes (refuses DELETE of):
# 0001 the audit log; 0003 invoices (and credit notes, kind 'credit_note'), their lines and
# payments; 0005 incidents, their versions and public updates, SLA claims, their events and
# credits; 0006 request documents (confirmations and withdrawals).
FROZEN_TABLES = [
    "audit_events",
    "invoices",
    "invoice_lines",
    "payments",
    "incidents",
    "incident_versions",
    "incident_updates",
    "sla_claims",
    "sla_claim_events",
    "sla_credits",
    "request_documents",
]
# The documents whose PDF is stored after the row (nullable pdf and pdf_sha256).
PDF_LATER = ["invoices", "sla_claims"]


def _postgres():
    return op.get_bind().dialect.name == "postgresql"


def _whole(row, postgres):
    """SQL: `row`'s PDF and hash are both there, and the hash is the PDF's."""
    if postgres:
        check = f"{row}.pdf_sha256 = encode(sha256({row}.pdf), 'hex')"
    else:
        check = f"length({row}.pdf_sha256) = 64 AND {row}.pdf_sha256 NOT GLOB '*[^0-9a-f]*'"
    return f"({row}.pdf IS NOT NULL AND {row}.pdf_sha256 IS NOT NULL AND {check})"


def _pdf_rules(postgres):
    """(name, table, event, condition that refuses) of each PDF trigger."""
    rules = []
    for table in PDF_LATER:
        never = f"(OLD.pdf IS NULL AND OLD.pdf_sha256 IS NULL AND {_whole('NEW', postgres)})"
        # Replaces 0003's/0005's {table}_pdf_once (which let the PDF alone be written while
        # the hash was still empty): once, together, from nothing.
        rules.append((f"{table}_pdf_once", table, "BEFORE UPDATE OF pdf, pdf_sha256", f"NOT {never}"))
        empty = "(NEW.pdf IS NULL AND NEW.pdf_sha256 IS NULL)"
        rules.append(
            (f"{table}_pdf_with_hash", table, "BEFORE INSERT", f"NOT ({empty} OR {_whole('NEW', postgres)})")
        )
    if postgres:
        # Both columns are NOT NULL and every column is frozen (0006); the hash is checked here.
        rules.append(
            ("request_documents_pdf_with_hash", "request_documents", "BEFORE INSERT", f"NOT {_whole('NEW', True)}")
        )
    return rules


def upgrade():
    postgres = _postgres()
    if postgres:
        op.execute(
            """
            CREATE FUNCTION frozen_never_truncated() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '% is frozen: never truncated', TG_TABLE_NAME;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            """
            CREATE FUNCTION pdf_stored_once() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION '%: a PDF is stored once, together with its SHA-256', TG_TABLE_NAME;
            END;
            $$ LANGUAGE plpgsql
            """
        )
        for table in FROZEN_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_never_truncated BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION frozen_never_truncated()"
            )
    # SQLite: no TRUNCATE statement; DELETE FROM a frozen table (with or without WHERE) fires
    # the row triggers *_never_deleted / audit_events_no_delete, which refuse it.
    for name, table, event, refuses in _pdf_rules(postgres):
        _drop_trigger(name, table, postgres)
        if postgres:
            op.execute(
                f"CREATE TRIGGER {name} {event} ON {table} FOR EACH ROW WHEN ({refuses}) "
                "EXECUTE FUNCTION pdf_stored_once()"
            )
        else:
            op.execute(
                f"CREATE TRIGGER {name} {event} ON {table} WHEN {refuses} "
                f"BEGIN SELECT RAISE(ABORT, '{table}: a PDF is stored once, with its SHA-256'); END"
            )


def downgrade():
    postgres = _postgres()
    for name, table, _event, _refuses in _pdf_rules(postgres):
        _drop_trigger(name, table, postgres)
    # 0003's and 0005's triggers as they were.
    if postgres:
        op.execute(
            "CREATE TRIGGER invoices_pdf_once BEFORE UPDATE OF pdf, pdf_sha256 ON invoices "
            "FOR EACH ROW WHEN (OLD.pdf_sha256 IS NOT NULL) "
            "EXECUTE FUNCTION issued_documents_frozen()"
        )
        op.execute(
            "CREATE TRIGGER sla_claims_pdf_once BEFORE UPDATE OF pdf, pdf_sha256 ON sla_claims "
            "FOR EACH ROW WHEN (OLD.pdf_sha256 IS NOT NULL) EXECUTE FUNCTION sla_records_frozen()"
        )
        for table in FROZEN_TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_never_truncated ON {table}")
        op.execute("DROP FUNCTION IF EXISTS pdf_stored_once()")
        op.execute("DROP FUNCTION IF EXISTS frozen_never_truncated()")
    else:
        op.execute(
            "CREATE TRIGGER invoices_pdf_once BEFORE UPDATE OF pdf, pdf_sha256 ON invoices "
            "WHEN OLD.pdf_sha256 IS NOT NULL "
            "BEGIN SELECT RAISE(ABORT, 'an invoice PDF is stored once'); END"
        )
        op.execute(
            "CREATE TRIGGER sla_claims_pdf_once BEFORE UPDATE OF pdf, pdf_sha256 ON sla_claims "
            "WHEN OLD.pdf_sha256 IS NOT NULL "
            "BEGIN SELECT RAISE(ABORT, 'sla_claims_pdf_once: frozen once written'); END"
        )


def _drop_trigger(name, table, postgres):
    op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
