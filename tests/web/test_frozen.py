"""Frozen means frozen (R-42; R-72/R-73 for the audit log, R-50..R-53 for incidents and
claims): not even the tables' owner can TRUNCATE an issued document away, the application's
database role cannot TRUNCATE, ALTER or DISABLE TRIGGER at all, and a document's PDF is
stored once, together with its SHA-256.

Each test runs on both databases: where PostgreSQL has something SQLite lacks (TRUNCATE,
roles, a SHA-256 function), the SQLite run asserts SQLite's side of the same protection.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from portal import create_app
from portal.clock import clock
from portal.domain.quotes import RequestKind
from portal.domain.sla import IncidentKind
from portal.extensions import db
from portal.models import Contract, Incident, Invoice, OutboxEmail, SlaClaim, User
from portal.models.invoices import PaymentMethod
from portal.models.sla import UpdateStatus
from portal.payments import service as payments
from portal.permissions import Actor
from portal.services import claims as claim_service
from portal.services import incidents as incident_service
from portal.services import invoicing
from portal.services import requests as request_service
from tests.conftest import APP_ROLE, BASE_CONFIG
from tests.factories import build_world, row_counts, rows

# Every table an earlier migration's row triggers freeze (0001, 0003, 0005, 0006).
FROZEN_TABLES = {
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
}
TOKYO_10AM = 1  # UTC hour


def _at(day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, TOKYO_10AM, 0, tzinfo=UTC))


def _postgres(engine: sa.Engine) -> bool:
    return engine.dialect.name == "postgresql"


@pytest.fixture
def world(app):
    return build_world(app)


@pytest.fixture
def documents(app, world):
    """A row in every frozen table: W-1's invoices to 2027-02 (one paid), a cancellation with
    its confirmation, W-4's incident with its public update, the claim filed and approved,
    and its credit on the invoice of 2027-04."""
    with app.app_context():
        admin = Actor(db.session.get(User, world.ids["admin"]))
        support = Actor(db.session.get(User, world.ids["support"]))
        billing = Actor(db.session.get(User, world.ids["billing"]))
        for day in (date(2026, 11, 5), date(2026, 11, 21), date(2026, 12, 21), date(2027, 1, 21)):
            invoicing.issue_invoices(day)
        invoicing.issue_invoices(date(2027, 2, 21))
        first = db.session.scalar(sa.select(Invoice).order_by(Invoice.id).limit(1))
        payments.record_manual_payment(
            billing, first, method=PaymentMethod.BANK_TRANSFER, received_on=date(2027, 2, 1)
        )
        db.session.commit()

        incident = incident_service.record(
            support,
            incident_service.IncidentFacts(
                kind=IncidentKind.OUTAGE,
                title_ja="ストレージ障害",
                title_en="Storage outage",
                service_ids=(world.ids["service_image_works"],),
                started_at=datetime(2027, 2, 3, 0, 0, tzinfo=UTC),
                ended_at=datetime(2027, 2, 4, 6, 0, tzinfo=UTC),
                occurrence_announced_at=datetime(2027, 2, 3, 0, 20, tzinfo=UTC),
            ),
            update=incident_service.UpdateText(
                UpdateStatus.RESOLVED, "復旧しました。", "The service is back."
            ),
        )
        db.session.commit()
        contract = db.session.get(Contract, world.contract_a)
        claim = claim_service.file(admin, contract, db.session.get(Incident, incident.id))
        db.session.commit()
        claim_service.review(billing, claim, claim_service.Decision.APPROVE)
        db.session.commit()

        request_service.submit(
            admin,
            db.session.get(Contract, world.contract_a),
            request_service.Choice(RequestKind.CANCELLATION),
            ip="192.0.2.1",
        )
        db.session.commit()
    _at(date(2027, 3, 21))
    with app.app_context():
        invoicing.issue_invoices(date(2027, 3, 21))  # carries the claim's credit
    counts = row_counts(app)
    assert all(counts[table] for table in FROZEN_TABLES), counts
    return counts


def _frozen_by_row_triggers(conn: sa.Connection) -> set[str]:
    """The tables whose DELETE a row trigger refuses, read from the database itself."""
    if _postgres(conn.engine):
        # tgtype bits: 1 row, 8 delete (pg_trigger.h)
        found = conn.execute(
            sa.text(
                "SELECT tgrelid::regclass::text FROM pg_trigger"
                " WHERE NOT tgisinternal AND tgtype & 9 = 9"
            )
        )
    else:
        found = conn.execute(
            sa.text(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'"
                " AND sql LIKE '%BEFORE DELETE ON%'"
            )
        )
    return set(found.scalars())


def test_r42_frozen_tables_refuse_truncate_even_by_their_owner(app, documents, owner_database_url):
    """PostgreSQL: TRUNCATE (plain, CASCADE, or from a table they reference) fires no row
    trigger, so a statement trigger refuses it on every frozen table, whoever asks. SQLite
    has no TRUNCATE; its DELETE without WHERE fires the row triggers, which refuse it."""
    owner = sa.create_engine(owner_database_url)
    try:
        with owner.connect() as conn:
            assert _frozen_by_row_triggers(conn) == FROZEN_TABLES
            postgres = _postgres(owner)
            statements = [
                *(
                    f"TRUNCATE {t} CASCADE" if postgres else f"DELETE FROM {t}"  # noqa: S608
                    for t in sorted(FROZEN_TABLES)
                ),
                # invoices reference organisations: a cascade from there reaches them.
                "TRUNCATE organisations CASCADE" if postgres else "DELETE FROM invoices",
            ]
            for statement in statements:
                with pytest.raises(DatabaseError) as refused:
                    conn.execute(sa.text(statement))
                conn.rollback()
                expected = "never truncated" if postgres else "never.deleted|append-only|frozen"
                assert refused.match(expected), statement
    finally:
        owner.dispose()
    assert row_counts(app) == documents


def test_r42_the_applications_role_cannot_truncate_alter_or_disable_triggers(app, documents):
    """PostgreSQL: the application connects as a role that owns nothing (the tests too, as
    in production): TRUNCATE, ALTER TABLE, DISABLE TRIGGER, DROP TRIGGER, a new table of its
    own and the replica mode that skips triggers are all refused. SQLite has no roles: its
    DELETE and UPDATE through the application's connection are refused by the triggers, and
    production refuses to start on SQLite at all."""
    with app.app_context():
        engine = db.engine
        if _postgres(engine):
            with engine.connect() as conn:
                role = conn.execute(
                    sa.text(
                        "SELECT current_user, rolsuper, rolbypassrls, rolcreaterole"
                        " FROM pg_roles WHERE rolname = current_user"
                    )
                ).one()
                assert tuple(role) == (APP_ROLE, False, False, False)
                owned = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_class"
                        " WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)"
                    )
                ).scalar_one()
                assert owned == 0
            statements = [
                "TRUNCATE invoices CASCADE",
                "TRUNCATE audit_events",
                "ALTER TABLE invoices DISABLE TRIGGER ALL",
                "ALTER TABLE invoices DISABLE TRIGGER invoices_never_deleted",
                "ALTER TABLE audit_events DISABLE TRIGGER USER",
                "DROP TRIGGER invoices_frozen ON invoices",
                "ALTER TABLE invoices ADD COLUMN note text",
                "ALTER TABLE invoices RENAME TO invoices_old",
                "DROP TABLE invoice_lines",
                "CREATE TABLE mine (id int)",
                "SET session_replication_role = replica",
                "SET LOCAL session_replication_role = replica",
            ]
            expected = "permission denied|must be owner"
        else:
            statements = [
                "DELETE FROM invoices",
                "DELETE FROM audit_events",
                "UPDATE invoices SET total = 0, subtotal = 0, tax_total = 0",
            ]
            expected = "never.deleted|append-only|frozen"
        with engine.connect() as conn:
            for statement in statements:
                with pytest.raises(DatabaseError) as refused:
                    conn.execute(sa.text(statement))
                conn.rollback()
                assert refused.match(expected), statement
            # What the application needs it has: reading, writing, and ids from sequences.
            assert conn.execute(sa.text("SELECT count(*) FROM invoices")).scalar_one()
            conn.execute(
                sa.text("UPDATE organisations SET legal_name = legal_name WHERE id = :id"),
                {"id": 1},
            )
            conn.rollback()
        if not _postgres(engine):
            with pytest.raises(RuntimeError, match="PostgreSQL"):
                create_app(
                    {**BASE_CONFIG, "ENV_NAME": "production", "TESTING": False}
                    | {"SQLALCHEMY_DATABASE_URI": str(engine.url)}
                )
    assert row_counts(app) == documents


# --- the PDF and its hash, written together, once ---------------------------------------------


@pytest.fixture
def unrendered(app, world) -> int:
    """An issued invoice whose PDF is not rendered yet."""
    _at(date(2026, 11, 5))
    with app.app_context():
        invoicing.issue_invoices(date(2026, 11, 5))
        return db.session.scalar(sa.select(sa.func.min(Invoice.id)))


def _stored(app, invoice_id: int) -> tuple[bytes | None, str | None]:
    with app.app_context():
        return tuple(
            db.session.execute(
                sa.select(Invoice.pdf, Invoice.pdf_sha256).where(Invoice.id == invoice_id)
            ).one()
        )


def _refused(app, statement) -> str:
    with app.app_context():
        with pytest.raises(DatabaseError) as refused:
            db.session.execute(statement)
            db.session.flush()
        db.session.rollback()
        return str(refused.value)


def test_r42_a_pdf_without_its_hash_or_a_hash_without_its_pdf_is_refused(app, unrendered):
    content = b"%PDF-1.7 rendered\n%%EOF\n"
    digest = hashlib.sha256(content).hexdigest()
    this = sa.update(Invoice).where(Invoice.id == unrendered)
    for values in (
        {"pdf": content},
        {"pdf_sha256": digest},
        {"pdf": content, "pdf_sha256": "not a hash"},
        {"pdf": content, "pdf_sha256": None},
    ):
        assert "stored once" in _refused(app, this.values(**values)), values
    assert _stored(app, unrendered) == (None, None)
    with app.app_context():
        if _postgres(db.engine):
            # PostgreSQL checks the hash itself: the hash of another PDF is refused too.
            other = hashlib.sha256(b"%PDF-1.7 another\n").hexdigest()
            assert "stored once" in _refused(app, this.values(pdf=content, pdf_sha256=other))
        # Together, from nothing: stored.
        db.session.execute(this.values(pdf=content, pdf_sha256=digest))
        db.session.commit()
    assert _stored(app, unrendered) == (content, digest)


def test_r42_an_issued_document_is_never_inserted_with_a_pdf_but_no_hash(app, unrendered):
    with app.app_context():
        row = dict(
            db.session.execute(sa.select(Invoice.__table__).where(Invoice.id == unrendered))
            .mappings()
            .one()
        )
    del row["id"], row["pdf"], row["pdf_sha256"]
    copy = {**row, "number": "INV-99999999", "sequence": 99_999_999, "billing_month": "2099-01"}
    content = b"%PDF-1.7 forged\n%%EOF\n"
    insert = sa.insert(Invoice.__table__)
    assert "stored once" in _refused(app, insert.values(**copy, pdf=content, pdf_sha256=None))
    assert "stored once" in _refused(app, insert.values(**copy, pdf=None, pdf_sha256="0" * 64))
    with app.app_context():
        # The same row without a PDF, or with its PDF and hash, is what the database takes.
        db.session.execute(insert.values(**copy, pdf=None, pdf_sha256=None))
        db.session.rollback()
        digest = hashlib.sha256(content).hexdigest()
        db.session.execute(insert.values(**copy, pdf=content, pdf_sha256=digest))
        db.session.rollback()


def test_r42_a_stored_pdf_is_never_rewritten_nor_removed(app, documents):
    """Invoices and SLA claims alike: once stored, neither the PDF nor its hash changes."""
    with app.app_context():
        invoice = db.session.scalar(sa.select(Invoice).order_by(Invoice.id).limit(1))
        invoicing.pdf_of(invoice)
        invoice_id = invoice.id
    before = _stored(app, invoice_id)
    assert before[0] and before[1] == hashlib.sha256(before[0]).hexdigest()
    forged = b"%PDF-1.7 forged\n%%EOF\n"
    for model, key in ((Invoice, invoice_id), (SlaClaim, rows(app, SlaClaim)[0].id)):
        this = sa.update(model).where(model.id == key)
        for values in (
            {"pdf": forged, "pdf_sha256": hashlib.sha256(forged).hexdigest()},
            {"pdf": None, "pdf_sha256": None},
            {"pdf": forged},
            {"pdf_sha256": "0" * 64},
        ):
            assert "stored once" in _refused(app, this.values(**values)), (model, values)
    assert _stored(app, invoice_id) == before
    with app.app_context():
        (claim,) = db.session.execute(sa.select(SlaClaim.pdf, SlaClaim.pdf_sha256)).all()
    assert claim.pdf_sha256 == hashlib.sha256(claim.pdf).hexdigest()


def test_r42_concurrent_renders_store_each_pdf_once_and_each_is_reported_once(app, unrendered):
    """Two `issue-invoices` runs at once: each claims its own documents (issue 15: a batch is
    claimed with its rows locked, SQLite's write lock there), so every PDF is stored once, by
    one run, and the runs' counts add up to the PDFs. (A download that meets a run inside the
    renderer is tests/web/test_render_invoices.py's.)"""
    with app.app_context():
        pending = db.session.scalar(sa.select(sa.func.count()).where(Invoice.pdf_sha256.is_(None)))
    assert pending == 2  # W-1's contracts A and B, issued on 2026-11-05

    def run(_):
        with app.app_context():
            try:
                return invoicing.render_pending_pdfs()
            finally:
                db.session.remove()

    with ThreadPoolExecutor(2) as pool:
        reported = list(pool.map(run, range(2)))
    assert sum(reported) == pending, reported
    with app.app_context():
        stored = db.session.execute(sa.select(Invoice.pdf, Invoice.pdf_sha256)).all()
        assert all(hashlib.sha256(pdf).hexdigest() == digest for pdf, digest in stored)
    # each document announced once, by the run that stored it.
    assert len(rows(app, OutboxEmail, kind="invoice_issued")) == pending
