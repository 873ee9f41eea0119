"""Real database faults for the reliability tests, on PostgreSQL and on SQLite alike.

- PostgreSQL: the app reaches the server through a TCP relay on loopback; stopping the relay
  is the database going away for this app only (its connections cut, new ones refused),
  starting it again on the same port is the database coming back. `terminate_backends` cuts
  every connection to the test database the way an administrator or a failover does.
- SQLite: the apps open the database through a symbolic link, pointed at a directory while
  the database is "down", so that no connection can be opened; the apps' pooled connections
  are closed (engine disposed), as a restarted database server would close them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from portal.extensions import db
from tests.smtp_server import free_port


def is_postgres(url: str) -> bool:
    return url.startswith("postgresql")


class TcpRelay:
    """Forwards loopback connections on `port` to (host, target_port)."""

    def __init__(self, host: str, target_port: int, port: int | None = None) -> None:
        self.host, self.target_port = host, target_port
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpRelay:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection((self.host, self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class DatabaseSwitch:
    """Takes the database of a test away and brings it back, for the apps built on `url`.

    For PostgreSQL, `url` is the test database's; build the apps on `switch.url` (the relay's).
    """

    def __init__(self, url: str) -> None:
        self.real_url = url
        self.relay: TcpRelay | None = None
        if is_postgres(url):
            parsed = sa.engine.make_url(url)
            self.relay = TcpRelay(parsed.host or "127.0.0.1", parsed.port or 5432).start()
            self.url = parsed.set(host="127.0.0.1", port=self.relay.port).render_as_string(
                hide_password=False
            )
        else:
            # The apps open the file through a symbolic link, which is swapped atomically for
            # one to a directory: no connection can ever find the path missing (SQLite would
            # create an empty database there).
            real = Path(sa.engine.make_url(url).database or "")
            self.link = real.with_name("switched.sqlite")
            self._point(self.link, real)
            self.real_file = real
            self.nowhere = real.with_name("not-a-database")
            self.nowhere.mkdir(exist_ok=True)
            self.url = f"sqlite:///{self.link}"
        self.apps: list[Flask] = []

    @staticmethod
    def _point(link: Path, target: Path) -> None:
        staged = link.with_name(link.name + ".new")
        staged.unlink(missing_ok=True)
        staged.symlink_to(target)
        os.replace(staged, link)

    def down(self) -> None:
        if self.relay is not None:
            self.relay.stop()
            return
        self._point(self.link, self.nowhere)
        for app in self.apps:
            with app.app_context():
                db.engine.dispose()

    def up(self) -> None:
        if self.relay is not None:
            self.relay.start()
            return
        self._point(self.link, self.real_file)

    def close(self) -> None:
        if self.relay is not None:
            self.relay.stop()


def terminate_backends(url: str) -> int:
    """PostgreSQL: end every other connection of the app's role to the test database
    (pg_terminate_backend), as an administrator or a failover would."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        " AND usename = current_user"  # the app's role may end only its own
                    )
                ).all()
            )
    finally:
        engine.dispose()


def unreachable_url(url: str, tmp_path: Path) -> str:
    """A database URL of the same kind where no database can be opened: a closed port, or a
    directory where the SQLite file should be."""
    if is_postgres(url):
        return sa.engine.make_url(url).set(port=free_port()).render_as_string(hide_password=False)
    directory = tmp_path / "not-a-database"
    directory.mkdir(exist_ok=True)
    return f"sqlite:///{directory}"
