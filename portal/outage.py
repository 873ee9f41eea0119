"""The database out of reach for a while: what counts as that, and waiting it out.

Pages answer 503 while it lasts (portal.web), the `send-mail --loop` worker backs off and goes
on, and the scheduled commands wait a bounded time for it before they start (portal.cli). An
error that is not temporary (a missing table, a bad query) is none of these: it stays a bug.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from enum import Enum
from typing import Any

import sqlalchemy as sa

from portal.extensions import db

# The errors a database outage shows up as; outage_kind() tells which of them are one.
DATABASE_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError)

# PostgreSQL SQLSTATEs. Connection lost or refused: class 08, the server shutting down or
# starting (57P01..57P03), too many connections, the database missing (being restored).
_PG_UNREACHABLE_PREFIXES = ("08", "57P0")
_PG_UNREACHABLE = frozenset({"53300", "3D000"})
# Busy, worth another try: serialization failure and deadlock (class 40), a lock or statement
# timeout, the server short of resources (class 53).
_PG_BUSY_PREFIXES = ("40", "53")
_PG_BUSY = frozenset({"55P03", "57014"})
_SQLITE_UNREACHABLE = frozenset({"SQLITE_CANTOPEN", "SQLITE_NOTADB", "SQLITE_PERM"})
_SQLITE_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})


class Outage(Enum):
    UNREACHABLE = "unreachable"  # no connection, or it was lost
    BUSY = "busy"  # connected, but the database asked to try again (a lock, a timeout)


def outage_kind(exc: BaseException) -> Outage | None:
    """What a database error says about the database; None for an error that is a bug."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return None
    if exc.connection_invalidated or isinstance(exc, sa.exc.InterfaceError):
        return Outage.UNREACHABLE
    if not isinstance(exc, sa.exc.OperationalError):
        return None
    orig = exc.orig
    errorname = getattr(orig, "sqlite_errorname", None)
    if errorname is not None:
        if errorname in _SQLITE_BUSY:
            return Outage.BUSY
        if errorname in _SQLITE_UNREACHABLE or errorname.startswith("SQLITE_IOERR"):
            return Outage.UNREACHABLE
        return None  # e.g. "no such table": the schema, not the moment
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate is None:
        # psycopg's errors before a server answers (refused, timed out, closed) carry none.
        return Outage.UNREACHABLE if type(orig).__module__.startswith("psycopg") else None
    if sqlstate.startswith(_PG_UNREACHABLE_PREFIXES) or sqlstate in _PG_UNREACHABLE:
        return Outage.UNREACHABLE
    if sqlstate.startswith(_PG_BUSY_PREFIXES) or sqlstate in _PG_BUSY:
        return Outage.BUSY
    return None


def describe(exc: BaseException) -> str:
    """The driver's own words about it, on one line (for logs, never for pages)."""
    orig = getattr(exc, "orig", None) or exc
    words = " ".join(str(orig).split())
    return f"{type(orig).__name__}: {words}"[:300]


def forget_connection() -> None:
    """Roll back what the failed transaction left and drop the session, so that the next
    statement takes a fresh connection (a disconnect invalidated the pool: no ping needed)."""
    with suppress(sa.exc.SQLAlchemyError):
        db.session.rollback()
    with suppress(sa.exc.SQLAlchemyError):
        db.session.remove()


@dataclass
class Backoff:
    """Waits between tries: `first` seconds, doubling, at most `longest`."""

    first: float = 1.0
    longest: float = 60.0
    tries: int = 0

    @classmethod
    def from_config(cls, config: Any) -> Backoff:
        return cls(
            float(config.get("DB_RETRY_FIRST_SECONDS", 1.0)),
            float(config.get("DB_RETRY_LONGEST_SECONDS", 60.0)),
        )

    def next_wait(self) -> float:
        wait = min(self.first * 2**self.tries, self.longest)
        self.tries += 1
        return wait

    def reset(self) -> None:
        self.tries = 0
