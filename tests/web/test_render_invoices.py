"""`flask portal render-invoices`: a month's PDFs in worker processes (issue 15, R-42, R-61).

Each worker claims its own batches of documents without a PDF (PostgreSQL: FOR NO KEY UPDATE
SKIP LOCKED; SQLite: the write lock), renders, stores and commits them; the conditional UPDATE
of migration 0008 stays the final guard. Every document gets one PDF whose SHA-256 is stored
with it, one e-mail to its billing address, and is counted by the one run that stored it; a
document that has its PDF already is never touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path

import pytest
import sqlalchemy as sa
from pypdf import PdfReader

from portal.clock import clock
from portal.extensions import db
from portal.models import Invoice, OutboxEmail
from portal.services import invoicing
from portal.services.apply import apply_due
from tests.conftest import PG_URL
from tests.factories import build_world, rows, signed_in_client

ROOT = Path(__file__).resolve().parents[2]
MONTHS = 19  # with the first invoices on 2026-11-05: 40 documents, more than a batch


def _at(day: date) -> None:
    clock.set(datetime(day.year, day.month, day.day, 1, 0, tzinfo=UTC))  # 10:00 Tokyo


@pytest.fixture
def world(app):
    return build_world(app)


@pytest.fixture
def pending(app, world) -> list[int]:
    """The ids of 40 issued documents without a PDF: contracts A and B's first invoices and
    their monthly invoices from 2026-11-21 on; the clock at 2028-06-21."""
    days = [date(2026, 11, 5)] + [
        date(2026 + (10 + m) // 12, (10 + m) % 12 + 1, 21) for m in range(MONTHS)
    ]
    for day in days:
        _at(day)
        with app.app_context():
            apply_due(day)
            invoicing.issue_invoices(day)
    with app.app_context():
        ids = list(db.session.scalars(sa.select(Invoice.id).order_by(Invoice.id)))
    assert len(ids) == 2 * len(days) > invoicing.PDF_BATCH
    return ids


def _stored(app) -> dict[int, tuple[bytes | None, str | None]]:
    with app.app_context():
        return {
            i: (pdf, digest)
            for i, pdf, digest in db.session.execute(
                sa.select(Invoice.id, Invoice.pdf, Invoice.pdf_sha256).order_by(Invoice.id)
            )
        }


def _announced(app) -> list[str]:
    """The dedupe keys of the invoice e-mails written (one per document and address)."""
    return sorted(e.dedupe_key for e in rows(app, OutboxEmail, kind="invoice_issued"))


def _reported(output: str) -> int:
    return int(re.search(r"^Rendered (\d+) PDF\(s\) in [\d.]+ s \([\d.]+ PDFs/s", output, re.M)[1])


def _text(pdf: bytes) -> str:
    return " ".join(" ".join(p.extract_text() for p in PdfReader(BytesIO(pdf)).pages).split())


def test_two_workers_store_every_pending_pdf_once_and_leave_a_stored_one_alone(app, world, pending):
    """R-42: with --workers 2 every document without a PDF gets one, with its SHA-256, and is
    announced once (R-61); the document whose PDF a customer downloaded before keeps it, byte
    for byte, and no second e-mail. The command reports what it stored, the time and the rate,
    and what each worker stored; the counts add up."""
    first = pending[0]
    with app.app_context():
        downloaded = invoicing.pdf_of(db.session.get(Invoice, first))
        db.session.commit()
    before = _stored(app)[first]
    assert before == (downloaded, hashlib.sha256(downloaded).hexdigest())

    result = app.test_cli_runner().invoke(args=["portal", "render-invoices", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "2 worker processes" in result.output
    assert _reported(result.output) == len(pending) - 1
    per_worker = [int(n) for n in re.findall(r"^worker \d: stored (\d+) PDF", result.output, re.M)]
    assert len(per_worker) == 2 and sum(per_worker) == len(pending) - 1

    stored = _stored(app)
    assert stored[first] == before  # never touched
    assert all(pdf and digest == hashlib.sha256(pdf).hexdigest() for pdf, digest in stored.values())
    assert _announced(app) == sorted(
        f"invoice_issued:{i}:{address}" for i, address in _billing_addresses(app).items()
    )

    # The customer downloads it as stored, and it reads as the invoice.
    admin = signed_in_client(app, world.emails["admin"])
    with app.app_context():
        last = db.session.scalars(
            sa.select(Invoice)
            .where(Invoice.organisation_id == world.org_a)
            .order_by(Invoice.id.desc())
            .limit(1)
        ).one()
        number = last.number
    response = admin.get(f"/invoices/{last.id}/pdf")
    assert response.status_code == 200
    assert response.data == stored[last.id][0]
    assert response.headers["X-Content-SHA256"] == stored[last.id][1]
    text = _text(response.data)
    assert number in text and "T1234567890123" in text

    again = app.test_cli_runner().invoke(args=["portal", "render-invoices", "--workers", "2"])
    assert again.exit_code == 0, again.output
    assert _reported(again.output) == 0
    assert _stored(app) == stored


def _billing_addresses(app) -> dict[int, str]:
    with app.app_context():
        return {
            invoice.id: invoice.organisation.billing_email
            for invoice in db.session.scalars(sa.select(Invoice))
        }


def test_two_runs_at_once_render_each_document_once_and_their_counts_add_up(
    app, pending, monkeypatch
):
    """Two runs side by side (as two workers or two servers), small batches, each render a
    little slow so that they interleave: each document is rendered once, by the run that
    claimed it, stored once and announced once, and the two counts add up."""
    from portal.documents import invoices as renderer

    render = renderer.render_invoice_pdf
    rendered: list[str] = []

    def slow_render(document):
        rendered.append(document.number)
        time.sleep(0.01)
        return render(document)

    monkeypatch.setattr(renderer, "render_invoice_pdf", slow_render)

    def run(_):
        with app.app_context():
            try:
                return invoicing.render_pending_pdfs(batch=3)
            finally:
                db.session.remove()

    with ThreadPoolExecutor(2) as pool:
        reported = list(pool.map(run, range(2)))
    assert sum(reported) == len(pending), reported
    assert len(rendered) == len(set(rendered)) == len(pending)
    stored = _stored(app)
    assert all(pdf and digest == hashlib.sha256(pdf).hexdigest() for pdf, digest in stored.values())
    assert len(set(_announced(app))) == len(_announced(app)) == len(pending)


def test_two_commands_at_once_store_each_pdf_once_and_their_counts_add_up(app, pending):
    """Two servers start render-invoices at the same moment, one with two workers: every
    document gets one PDF and one e-mail, and the two reports add up to the documents that
    waited."""
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "PORTAL_CLOCK_NOW": clock.now().isoformat(),
        "PORTAL_ENV": "development",
    }
    command = [sys.executable, "-m", "flask", "--app", "portal:create_app", "portal",
               "render-invoices", "--workers"]  # fmt: skip
    runs = [
        subprocess.Popen(  # noqa: S603 - our own command
            [*command, workers],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for workers in ("2", "1")
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, out + err
    reported = [_reported(out) for out, _err in outputs]
    assert sum(reported) == len(pending), reported
    stored = _stored(app)
    assert all(pdf and digest == hashlib.sha256(pdf).hexdigest() for pdf, digest in stored.values())
    assert len(set(_announced(app))) == len(_announced(app)) == len(pending)


def test_a_download_that_meets_the_run_in_the_renderer_gets_the_pdf_the_run_stored(
    app, pending, monkeypatch
):
    """R-42, the final guard: a customer opens a document's PDF while the run renders it (the
    download claims nothing); both render it, they meet; the run stores it and counts it, the
    download serves the stored PDF, and the document is announced once."""
    from portal.documents import invoices as renderer

    render = renderer.render_invoice_pdf
    target = pending[3]
    with app.app_context():
        number = db.session.get(Invoice, target).number
    met = threading.Barrier(2, timeout=30)

    def render_then_meet(document):
        pdf = render(document)
        if document.number == number:
            met.wait()
        return pdf

    monkeypatch.setattr(renderer, "render_invoice_pdf", render_then_meet)

    def run(which: str):
        with app.app_context():
            try:
                if which == "run":
                    return invoicing.render_pending_pdfs(batch=5)
                return invoicing.pdf_of(db.session.get(Invoice, target))
            finally:
                db.session.remove()

    with ThreadPoolExecutor(2) as pool:
        stored_by_run, served = pool.map(run, ["run", "download"])
    stored = _stored(app)
    assert stored_by_run == len(pending)  # the run stored every one, the target included
    assert served == stored[target][0]
    assert len(_announced(app)) == len(pending)


# Row locks: PostgreSQL only (SQLite locks the whole file). Defined only there, not skipped:
# CI counts a skipped test as a failure.
if PG_URL:

    def test_a_batch_held_by_another_worker_is_left_to_it_and_taken_when_that_worker_dies(
        app, pending
    ):
        """While another worker holds a batch (its claim's row locks), a run renders the rest and
        does not wait; when that worker dies (its transaction ends without a commit), the next run
        renders the batch it held."""
        held = pending[:5]
        engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
        with engine.connect() as other:
            other.begin()
            locked = other.execute(
                sa.select(Invoice.id)
                .where(Invoice.id.in_(held))
                .with_for_update(skip_locked=True, key_share=True)
            ).scalars()
            assert sorted(locked) == held
            with app.app_context():
                assert invoicing.render_pending_pdfs() == len(pending) - len(held)
            assert sorted(i for i, (pdf, _digest) in _stored(app).items() if pdf is None) == held
            other.rollback()  # the worker died: its locks go with its transaction
        engine.dispose()
        result = app.test_cli_runner().invoke(args=["portal", "render-invoices"])
        assert result.exit_code == 0, result.output
        assert _reported(result.output) == len(held)
        assert all(pdf for pdf, _digest in _stored(app).values())


def test_issue_invoices_renders_the_pdfs_of_what_it_issued(app, world):
    """R-41/R-42: the daily run issues the day's invoices, then stores their PDFs as
    render-invoices does, and says how many; --no-pdf leaves them to render-invoices."""
    _at(date(2026, 11, 5))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["portal", "issue-invoices", "--quiet", "--no-pdf"])
    assert result.exit_code == 0, result.output
    assert "issued 2 invoice(s)" in result.output and "Rendered" not in result.output
    assert all(pdf is None for pdf, _digest in _stored(app).values())

    _at(date(2026, 11, 21))
    result = runner.invoke(args=["portal", "issue-invoices", "--quiet", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert "issued 2 invoice(s)" in result.output
    # Four documents wait: fewer than a batch, so one process (this one) renders them.
    assert _reported(result.output) == 4 and "1 worker process)" in result.output
    stored = _stored(app)
    assert len(stored) == 4
    assert all(pdf and digest == hashlib.sha256(pdf).hexdigest() for pdf, digest in stored.values())
