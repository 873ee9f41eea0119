"""Test database, app and clock fixtures shared by every test.

The suite runs on SQLite by default and on PostgreSQL when PORTAL_TEST_DATABASE_URL is set.
The schema always comes from the Alembic migrations, never from create_all(), so that the
migrations are what is tested.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from portal import create_app
from portal.clock import clock
from portal.config import database_url
from portal.extensions import db

PG_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "")
# 2027-03-01 10:00 in Tokyo: the notice date of worked example W-2.
DEFAULT_NOW = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)

# The tests' PostgreSQL sessions do not wait for each commit to reach the disk: a test database
# is thrown away anyway, and the suite spends much of its time committing and truncating.
# Visibility, locks and constraints are unchanged, so every race test means what it says.
PG_ENGINE_OPTIONS = {"connect_args": {"options": "-c synchronous_commit=off"}} if PG_URL else {}


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_without_fsync(dbapi_connection, _record) -> None:
    """The tests' SQLite files are thrown away too: no fsync per commit (a tenth of a matrix
    case's time went to it). Locks and visibility are unchanged."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous = OFF")
        cursor.close()


_BUILDERS: dict[tuple, object] = {}
_compile_builder = Rule._compile_builder


def _compile_builder_once(self: Rule, append_unknown: bool = True):
    """Werkzeug compiles two URL builders per rule with Python's compiler: four fifths of
    create_app()'s 80 ms, paid again by every test's app. The builder is a plain function of
    the rule's parsed form (bound to the rule afterwards), so the tests keep one per form."""
    defaults = tuple(sorted((self.defaults or {}).items(), key=repr))
    key = (self.rule, tuple(self._trace), repr(defaults), append_unknown)
    if key not in _BUILDERS:
        _BUILDERS[key] = _compile_builder(self, append_unknown)
    return _BUILDERS[key]


Rule._compile_builder = _compile_builder_once  # type: ignore[method-assign]

BASE_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
    "WTF_CSRF_ENABLED": False,
    "RATELIMIT_ENABLED": False,
    "SERVER_NAME": None,
    # As in production (portal.config): no ping per checkout.
    "SQLALCHEMY_ENGINE_OPTIONS": {
        "pool_pre_ping": False,
        "pool_recycle": 1800,
        **PG_ENGINE_OPTIONS,
    },
}


def _worker_database(url: str) -> str:
    """Under pytest-xdist each worker has a PostgreSQL database of its own (the given name with
    the worker's id appended, created when missing), since each worker truncates after every
    test; SQLite databases are per-test files already."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    parsed = sa.engine.make_url(url)
    name = f"{parsed.database}_{worker}"
    # CREATE DATABASE from the server's maintenance database, which always exists.
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).scalar()
        if not found:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


# The application connects to PostgreSQL as in production (R-42; README, Production): as a
# role that owns nothing, with only the grants below, so that it cannot TRUNCATE, ALTER or
# DISABLE TRIGGER on a frozen table. The migrations and the cleanup after each test connect as
# the owner: the user of PORTAL_TEST_DATABASE_URL (postgres, a superuser). The role is
# cluster-wide, created when missing; each worker's database grants it the same.
APP_ROLE = os.environ.get("PORTAL_TEST_APP_ROLE", "portal_app")
APP_PASSWORD = "portal-app-test-password"  # noqa: S105 - a test role of a test server
_OWNER_URLS: dict[str, str] = {}  # the application's URL of a test database -> the owner's


def app_role_grants(role: str, owner: str) -> list[str]:
    """What the application needs and no more: the README's production SQL, here in tests."""
    dml, sequences = "SELECT, INSERT, UPDATE, DELETE", "USAGE, SELECT, UPDATE"
    future = f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT"
    return [
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",  # PostgreSQL before 15 granted it
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT {dml} ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT {sequences} ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"{future} {dml} ON TABLES TO {role}",
        f"{future} {sequences} ON SEQUENCES TO {role}",
    ]


def _ensure_app_role(conn: sa.Connection) -> None:
    """CREATE ROLE unless it exists; two workers creating it at once both go on."""
    found = conn.execute(
        sa.text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": APP_ROLE}
    ).scalar()
    if found:
        return
    try:
        conn.execute(
            sa.text(
                f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"
                f" NOREPLICATION NOBYPASSRLS PASSWORD '{APP_PASSWORD}'"
            )
        )
    except sa.exc.DBAPIError as exc:
        # duplicate_object, or unique_violation when the other CREATE ROLE was in flight
        if getattr(exc.orig, "sqlstate", None) not in ("42710", "23505"):
            raise


def _app_url(owner_url: str) -> str:
    url = sa.engine.make_url(owner_url).set(username=APP_ROLE, password=APP_PASSWORD)
    return url.render_as_string(hide_password=False)


_TABLES: dict[str, list[str]] = {}
_CLEANERS: dict[str, sa.Engine] = {}  # one connection per test database, kept for the session


def empty_postgres(url: str) -> None:
    """Empty a test database after a test (as the owner, whichever URL is given): DELETE from
    the tables that hold rows (one query finds them) and restart every sequence, so ids start
    at 1 as in a fresh database."""
    url = _OWNER_URLS.get(url, url)
    engine = _CLEANERS.get(url) or _CLEANERS.setdefault(
        url, sa.create_engine(url, pool_size=1, pool_pre_ping=True, **PG_ENGINE_OPTIONS)
    )
    with engine.begin() as conn:
        if url not in _TABLES:
            _TABLES[url] = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
        probe = " UNION ALL ".join(
            f"SELECT '{t}' WHERE EXISTS (SELECT 1 FROM {t})"  # noqa: S608 - our own table names
            for t in _TABLES[url]
        )
        used = list(conn.execute(sa.text(probe)).scalars())
        if used:
            # DELETE, not TRUNCATE: a test leaves a few rows, and TRUNCATE swaps every table's
            # and index's files (a fifth of a second per test); the frozen tables refuse
            # TRUNCATE anyway (migration 0008). The replica role skips the row triggers (the
            # frozen tables refuse DELETE) and foreign-key checks.
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            for table in used:
                conn.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608 - our own names
        conn.execute(
            sa.text(
                "SELECT setval(c.oid, 1, false) FROM pg_class c"
                " WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace"
            )
        )


def _migrate(url: str, migration_url: str = "") -> None:
    from flask_migrate import upgrade

    app = create_app(
        {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "MIGRATION_DATABASE_URI": migration_url}
    )
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database: a SQLite file to copy per test, or the PostgreSQL URL of the
    application's role (the owner's: owner_database_url)."""
    if PG_URL:
        owner_url = _worker_database(database_url(PG_URL))
        app_url = _app_url(owner_url)
        engine = sa.create_engine(owner_url, isolation_level="AUTOCOMMIT", **PG_ENGINE_OPTIONS)
        with engine.connect() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
            _ensure_app_role(conn)
            name = sa.engine.make_url(owner_url).database
            conn.execute(sa.text(f'GRANT CONNECT ON DATABASE "{name}" TO {APP_ROLE}'))
            # As in production: `flask db upgrade` takes the owner's URL from
            # MIGRATION_DATABASE_URI (the application's role could not create a table).
            _migrate(app_url, owner_url)
            owner = conn.execute(sa.text("SELECT current_user")).scalar_one()
            for statement in app_role_grants(APP_ROLE, owner):
                conn.execute(sa.text(statement))
        engine.dispose()
        _OWNER_URLS[app_url] = owner_url
        return app_url
    path = tmp_path_factory.mktemp("db") / "template.sqlite"
    _migrate(f"sqlite:///{path}")
    return str(path)


@pytest.fixture
def database_url_for_test(database_template: str, tmp_path: Path) -> Iterator[str]:
    if PG_URL:
        yield database_template
        empty_postgres(database_template)
    else:
        path = tmp_path / "portal.sqlite"
        shutil.copyfile(database_template, path)
        yield f"sqlite:///{path}"


@pytest.fixture
def owner_database_url(database_url_for_test: str) -> str:
    """This test's database as the owner of its tables (PostgreSQL: the user of
    PORTAL_TEST_DATABASE_URL; SQLite has no roles: the same file). For a test that must act as
    the migrations do, never for the application."""
    return _OWNER_URLS.get(database_url_for_test, database_url_for_test)


@pytest.fixture
def fixed_clock() -> Iterator[datetime]:
    """The portal clock fixed at DEFAULT_NOW; tests move it with clock.set()."""
    clock.set(DEFAULT_NOW)
    yield DEFAULT_NOW
    clock.set(None)


@pytest.fixture
def make_app(database_url_for_test: str, fixed_clock: datetime):
    """Build an app on this test's database, with config overrides."""
    apps: list[Flask] = []

    def build(**overrides: object) -> Flask:
        app = create_app(
            {**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url_for_test, **overrides}
        )
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app) -> Flask:
    """The app. No app context stays pushed: each request gets its own session, as in
    production; set up data inside `with app.app_context():`."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The permission matrix first: its classes are the suite's largest units of work, and a
    worker that takes them last (pytest-xdist hands out whole classes and modules in this
    order) would run alone for minutes at the end."""
    items.sort(key=lambda item: 0 if "test_permission_matrix.py" in item.nodeid else 1)
