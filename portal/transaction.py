"""Making a savepoint safe on SQLite."""

from __future__ import annotations

from portal.extensions import db


def begin_writing() -> None:
    """Open the database transaction for writing before a savepoint is taken.

    pysqlite (Python < 3.12) sends no BEGIN before a SAVEPOINT, so a savepoint taken first
    opens the transaction itself and its RELEASE commits everything at once: a later
    rollback would then undo nothing. BEGIN IMMEDIATE also takes SQLite's write lock up front,
    so concurrent writers wait their turn instead of failing on a lock upgrade. PostgreSQL
    needs nothing here.
    """
    connection = db.session.connection()
    if connection.dialect.name != "sqlite":
        return
    if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN IMMEDIATE")
