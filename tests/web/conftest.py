"""Fixtures of the web tests: one world shared by a module's many read-mostly requests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask

from portal import create_app
from portal.clock import clock
from portal.extensions import db
from tests.conftest import BASE_CONFIG, DEFAULT_NOW, PG_URL, empty_postgres
from tests.factories import World, build_world


@dataclass
class Shared:
    app: Flask
    world: World


@pytest.fixture(scope="module")
def shared(database_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One app and one world for a whole module (the permission matrix makes ~300 requests).

    Every case still gets a fresh test client and a fresh server-side session, so what one
    request changes (a sign-out, a left portal) never reaches another. The database is
    emptied afterwards, as the per-test fixture does.
    """
    if PG_URL:
        url = database_template
    else:
        path = tmp_path_factory.mktemp("shared") / "portal.sqlite"
        shutil.copyfile(database_template, path)
        url = f"sqlite:///{path}"
    clock.set(DEFAULT_NOW)
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
    try:
        yield Shared(app, build_world(app))
    finally:
        clock.set(None)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if PG_URL:
            empty_postgres(url)
