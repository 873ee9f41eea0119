"""The database out of reach (issue 13, item 6): pages answer 503 with a clear page in the
reader's language, the API its JSON 503, both with Retry-After; never a 500; and the portal
recovers by itself when the database is back. Real faults on both backends (tests/db_faults)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from portal.clock import clock
from portal.extensions import db
from portal.models import User
from portal.outage import Outage, outage_kind
from tests.db_faults import DatabaseSwitch, is_postgres, terminate_backends, unreachable_url
from tests.factories import build_world, signed_in_client
from tests.smtp_server import free_port
from tests.web.routes import bearer, make_api_tokens

API = "/api/v1"
UNREACHABLE_EN = "The portal cannot reach its database at the moment."
BUSY_EN = "The portal is busy at the moment."


@pytest.fixture
def switch(database_url_for_test):
    found = DatabaseSwitch(database_url_for_test)
    yield found
    found.close()


@pytest.fixture
def portal(make_app, switch):
    """An app on the switchable database, with a world, an administrator signed in and tokens;
    500s come back as responses (not raised), as in production."""
    app = make_app(SQLALCHEMY_DATABASE_URI=switch.url, PROPAGATE_EXCEPTIONS=False)
    switch.apps.append(app)
    world = build_world(app)
    tokens = make_api_tokens(app, world)
    return app, world, tokens


def _assert_unavailable_page(response, lang: str) -> str:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert f'<html lang="{lang}">' in page
    assert 'data-testid="unavailable"' in page
    assert "Traceback" not in page and "OperationalError" not in page
    return page


def test_pages_and_api_answer_503_while_the_database_is_down_and_recover_by_themselves(
    portal, switch
):
    app, world, tokens = portal
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == world.emails["admin"]))
        user.locale = "en"
        db.session.commit()
    admin = signed_in_client(app, world.emails["admin"])
    stranger = app.test_client()
    assert admin.get("/").status_code == 200  # the user's language is remembered on the way
    assert app.test_client().get(f"{API}/contracts", headers=bearer(tokens, "admin")).is_json

    switch.down()
    # The signed-in user's own language (English), though the database holding it is gone.
    page = _assert_unavailable_page(admin.get("/"), "en")
    assert UNREACHABLE_EN in page and "Temporarily unavailable" in page
    assert 'href="/"' in page  # "Try again": the page that was asked for
    # Someone unknown: the browser's language, Japanese by default.
    assert UNREACHABLE_EN in _assert_unavailable_page(
        stranger.get("/healthz", headers={"Accept-Language": "en"}), "en"
    )
    _assert_unavailable_page(stranger.get("/healthz"), "ja")
    # The API: its one error shape, as JSON, whatever the client accepts.
    response = app.test_client().get(
        f"{API}/contracts", headers={**bearer(tokens, "admin"), "Accept": "text/html"}
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == "unavailable" and error["field"] is None
    assert error["message"]

    switch.up()
    # No restart: the same app and the same signed-in browser go on.
    response = admin.get("/")
    assert response.status_code == 200
    assert 'data-testid="unavailable"' not in response.get_data(as_text=True)
    response = app.test_client().get(f"{API}/contracts", headers=bearer(tokens, "admin"))
    assert response.status_code == 200 and "contracts" in response.get_json()


def test_an_app_started_without_its_database_answers_503(make_app, tmp_path):
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    url = unreachable_url(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path)
    down = make_app(SQLALCHEMY_DATABASE_URI=url, PROPAGATE_EXCEPTIONS=False)
    client = down.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "a-session-token"  # a returning visitor: the database is asked
    _assert_unavailable_page(client.get("/", headers={"Accept-Language": "en"}), "en")
    response = down.test_client().get(
        f"{API}/contracts", headers={"Authorization": "Bearer ptk_" + "x" * 43}
    )
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "unavailable"


def _cut(switch, url: str) -> None:
    """One fault: every connection cut (PostgreSQL), or the file out of reach for a moment
    (SQLite)."""
    if is_postgres(url):
        terminate_backends(url)
        time.sleep(0.02)
    else:
        switch.down()
        time.sleep(0.03)
        switch.up()
        time.sleep(0.03)


def test_no_500_while_connections_are_cut_under_load_and_all_succeed_afterwards(
    portal, switch, database_url_for_test
):
    app, world, tokens = portal
    browsers = [signed_in_client(app, world.emails[k]) for k in ("admin", "member")]
    header = bearer(tokens, "admin")
    seen: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def browse(n: int) -> None:
        client = browsers[n % 2] if n < 2 else app.test_client()
        while not stop.is_set():
            try:
                if n < 2:
                    response = client.get("/")
                else:
                    response = client.get(f"{API}/contracts", headers=header)
            except BaseException as exc:  # noqa: BLE001 - a crash is what this test looks for
                errors.append(exc)
                return
            seen.append(response.status_code)

    threads = [threading.Thread(target=browse, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    try:
        while seen.count(503) < 3 and time.monotonic() < deadline:
            _cut(switch, database_url_for_test)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not errors, errors
    assert set(seen) <= {200, 503}, sorted(set(seen))
    assert seen.count(503) >= 3  # the faults did hit requests in flight
    # Afterwards every request succeeds again, on the same app.
    assert [b.get("/").status_code for b in browsers] == [200, 200]
    assert app.test_client().get(f"{API}/contracts", headers=header).status_code == 200


def test_a_busy_database_answers_503_without_saying_it_is_unreachable(
    make_app, database_url_for_test
):
    """A lock held too long is a moment's wait (503, Retry-After 5), not an outage."""
    url = database_url_for_test
    # Waits for a lock cut short: a fifth of a second (PostgreSQL's lock_timeout, SQLite's
    # busy timeout).
    wait = {"options": "-c lock_timeout=200ms"} if is_postgres(url) else {"timeout": 0.2}
    app = make_app(
        PROPAGATE_EXCEPTIONS=False,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_recycle": 1800, "connect_args": wait},
    )
    world = build_world(app)
    admin = signed_in_client(app, world.emails["admin"])
    with _table_locked(url):
        response = admin.get("/", headers={"Accept-Language": "en"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    page = response.get_data(as_text=True)
    assert BUSY_EN in page and UNREACHABLE_EN not in page
    assert admin.get("/").status_code == 200


@contextlib.contextmanager
def _table_locked(url: str) -> Iterator[None]:
    """Another session holds the signed-in sessions' table (PostgreSQL) or the whole
    database (SQLite) exclusively."""
    if is_postgres(url):
        holder = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with holder.begin() as conn:
            conn.execute(sa.text("LOCK TABLE user_sessions IN ACCESS EXCLUSIVE MODE"))
            yield
        holder.dispose()
        return
    connection = sqlite3.connect(sa.engine.make_url(url).database, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def test_database_errors_are_told_apart(tmp_path):
    """What counts as the database out of reach, busy, or neither (a bug stays a 500)."""
    closed = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x")
    with pytest.raises(sa.exc.OperationalError) as refused:
        closed.connect()
    assert outage_kind(refused.value) is Outage.UNREACHABLE
    assert isinstance(refused.value.orig, psycopg.OperationalError)

    (tmp_path / "dir").mkdir()
    with pytest.raises(sa.exc.OperationalError) as cannot_open:
        sa.create_engine(f"sqlite:///{tmp_path / 'dir'}").connect()
    assert outage_kind(cannot_open.value) is Outage.UNREACHABLE

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.sqlite'}", connect_args={"timeout": 0})
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    holder = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sa.exc.OperationalError) as locked, engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM t"))
    holder.execute("ROLLBACK")
    assert outage_kind(locked.value) is Outage.BUSY

    with pytest.raises(sa.exc.OperationalError) as no_table, engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM missing"))
    assert outage_kind(no_table.value) is None
    with pytest.raises(sa.exc.IntegrityError) as duplicate, engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO t (id) VALUES (1), (1)"))
    assert outage_kind(duplicate.value) is None
    engine.dispose()


# --- the scheduled commands ---------------------------------------------------------------

SCHEDULED = (
    ["end-expired-entries"],
    ["apply-due", "--quiet"],
    ["issue-invoices", "--quiet"],
    ["render-invoices"],
    ["delete-photos", "--quiet"],
    ["send-mail"],
)
QUICK_RETRIES = {"DB_RETRY_FIRST_SECONDS": 0.1, "DB_RETRY_LONGEST_SECONDS": 0.2}


@pytest.mark.parametrize("command", SCHEDULED, ids=lambda c: c[0])
def test_a_scheduled_command_without_its_database_stops_with_one_clear_line(
    make_app, tmp_path, command
):
    app = make_app()
    url = unreachable_url(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path)
    down = make_app(SQLALCHEMY_DATABASE_URI=url, DB_WAIT_AT_START_SECONDS=0.5, **QUICK_RETRIES)
    result = down.test_cli_runner().invoke(args=["portal", *command])
    assert result.exit_code == 1
    assert result.stdout == ""  # no summary of work it did not do
    errors = result.stderr.splitlines()
    assert errors[-1].startswith("Error: the database could not be reached (")
    assert errors[-1].endswith("run the command again.")
    # It waited, saying so on one line each time, before giving up.
    assert len(errors) >= 3 and all("trying again in" in line for line in errors[:-1])
    assert "Traceback" not in result.output


def test_a_scheduled_command_waits_for_the_database_to_come_back_then_does_its_work(
    make_app, switch, tmp_path
):
    app = make_app(
        SQLALCHEMY_DATABASE_URI=switch.url,
        MAIL_TRANSPORT="file",
        MAIL_FILE_DIR=str(tmp_path / "mail"),
        **QUICK_RETRIES,
    )
    switch.apps.append(app)
    world = build_world(app)
    queued = 3
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == world.emails["admin"]))
        for _n in range(queued):
            _queue_mail(user)
        db.session.commit()
    switch.down()
    threading.Timer(0.5, switch.up).start()
    result = app.test_cli_runner().invoke(args=["portal", "send-mail"])
    assert result.exit_code == 0, result.output
    assert "database unavailable" in result.stderr
    assert f"sent {queued}, failed 0" in result.stdout
    assert len(list((tmp_path / "mail").glob("*.eml"))) == queued


def _queue_mail(user: User) -> None:
    from portal.services import mail

    mail.enqueue(
        "password_reset",
        to=user.email,
        locale="en",
        context={
            "user": user,
            "link": "http://127.0.0.1:5000/reset",
            "expires_at": clock.now(),
            "lifetime_minutes": 30,
        },
    )
