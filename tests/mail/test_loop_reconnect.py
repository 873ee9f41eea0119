"""`flask portal send-mail --loop` outlives its database connection (issue 13, item 6): cut
while an e-mail is in the SMTP server's hands, it rolls back, backs off, reconnects and goes
on; the e-mail the server took is marked sent (not sent again), the ones queued after the cut
go out, and the counts it prints are the rows it marked sent.

The worker runs in a thread of its own (what `send-mail --loop` runs until SIGTERM). The cut is
real: pg_terminate_backend on PostgreSQL; on SQLite, where there is no connection to cut, the
database locked by another connection for longer than the worker's lock wait."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from portal.cli import run_mail_worker
from portal.models import OutboxEmail
from tests.db_faults import is_postgres, terminate_backends
from tests.factories import build_world, rows
from tests.mail.test_outbox import _cancel, _enqueue_many
from tests.smtp_server import SmtpSink, _Handler

PASS_LINE = re.compile(r"^\S+: sent (\d+), failed (\d+) \(will retry\), given up (\d+)\.$")


class _Holding(_Handler):
    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        if not self.sink.release.is_set():
            self.sink.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.sink.release.wait, 60)
        return await super().handle_DATA(server, session, envelope)


class HoldingSink(SmtpSink):
    """The suite's SMTP server, holding the first message at DATA until released: the moment
    the worker waits for the server with a database transaction open."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()

    def start(self) -> HoldingSink:
        self._controller = Controller(_Holding(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self


@pytest.fixture
def smtp():
    sink = HoldingSink()
    yield sink
    sink.release.set()
    sink.stop()


def _settings(url: str) -> dict[str, object]:
    """Backoff cut short for the test; on SQLite, its wait for a lock too, so that the lock
    below is a fault, not a pause."""
    settings: dict[str, object] = {"DB_RETRY_FIRST_SECONDS": 0.1, "DB_RETRY_LONGEST_SECONDS": 0.4}
    if not is_postgres(url):
        settings["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "pool_pre_ping": True,
            "connect_args": {"timeout": 0.3},
        }
    return settings


class Worker(threading.Thread):
    def __init__(self, app) -> None:
        super().__init__()
        self.app = app
        self.stop = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            with self.app.app_context():
                run_mail_worker(0.05, self.stop)
        except BaseException as exc:  # noqa: BLE001 - the worker dying is what is tested
            self.failure = exc


@contextlib.contextmanager
def _database_cut(url: str) -> Iterator[None]:
    """The fault, for as long as the block runs."""
    if is_postgres(url):
        assert terminate_backends(url) >= 1  # the worker's connection, in its transaction
        yield
        return
    connection = sqlite3.connect(sa.engine.make_url(url).database, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    try:
        yield
        time.sleep(1.0)  # the worker tries, and fails, a few times meanwhile
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def _wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_send_mail_loop_survives_a_dropped_database_connection(
    make_app, database_url_for_test, smtp, capsys
):
    app = make_app(**smtp.config(), **_settings(database_url_for_test))
    world = build_world(app)
    before = _cancel(app, world)
    smtp.start()
    worker = Worker(app)
    worker.start()
    try:
        assert smtp.holding.wait(60), "the worker sent nothing"
        with _database_cut(database_url_for_test):
            smtp.release.set()  # the server takes the e-mail; marking it sent fails
        after = _enqueue_many(app, world, 3)  # queued after the cut
        total = len(before) + len(after)
        _wait_for(lambda: worker.failure or all(e.sent_at for e in rows(app, OutboxEmail)))
    finally:
        worker.stop.set()
        worker.join(60)
    out, err = capsys.readouterr()
    assert worker.failure is None, repr(worker.failure)
    assert len(rows(app, OutboxEmail)) == total
    retries = [line for line in err.splitlines() if "database unavailable" in line]
    assert retries, err
    assert all(line.endswith(" s.") and "trying again in" in line for line in retries)
    # Every e-mail arrived once, the one in the server's hands during the cut included.
    assert sorted(m["Message-ID"] for m in smtp.messages) == sorted(
        e.message_id for e in rows(app, OutboxEmail)
    )
    assert all(e.attempts == 1 and e.locked_until is None for e in rows(app, OutboxEmail))
    # The passes' counts add up to what was sent: each e-mail counted once.
    passes = [PASS_LINE.match(line) for line in out.splitlines()]
    assert passes and all(passes), out
    assert sum(int(p.group(1)) for p in passes if p) == total


def test_send_mail_once_that_loses_its_database_midway_stops_with_one_line_and_true_counts(
    make_app, database_url_for_test, smtp
):
    """Run once by the scheduler, it does not wait out a cut in the middle: it says what it did
    (the e-mail the server took could not be marked sent: not counted) and stops with one line
    and exit status 1; the next run goes on."""
    app = make_app(**smtp.config(), **_settings(database_url_for_test))
    world = build_world(app)
    _cancel(app, world)
    smtp.start()
    results = []
    run = threading.Thread(
        target=lambda: results.append(app.test_cli_runner().invoke(args=["portal", "send-mail"]))
    )
    run.start()
    assert smtp.holding.wait(60), "nothing was sent"
    with _database_cut(database_url_for_test):
        smtp.release.set()
        run.join(60)
    (result,) = results
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    (summary,) = result.stdout.splitlines()
    assert PASS_LINE.match(summary) and " sent 0, " in summary
    (error,) = result.stderr.splitlines()
    assert error.startswith("Error: the database connection was lost while the job ran (")
    assert error.endswith("nothing is done twice: run the command again.")
