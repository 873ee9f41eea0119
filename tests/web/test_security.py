"""Security headers, cookies, production settings and the append-only audit log."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.config import DEFAULT_SECRET_KEY
from portal.extensions import db
from portal.models import AuditEvent
from tests.factories import PASSWORD, become, build_world, login, sign_in, snapshot
from tests.web.routes import bearer, make_api_tokens

PRODUCTION = {
    "ENV_NAME": "production",
    "SECRET_KEY": "k7Qz0sV3pL9xW2mB6nR1tY8uE4iO5aSd",  # 32 characters
    "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://portal@db.internal/portal",
    "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
    "SESSION_COOKIE_SECURE": True,
    "CLOCK_NOW": "",
    "MAIL_TRANSPORT": "smtp",
    "BASE_URL": "https://portal.example.jp",
}


def _pages(app, world) -> list[tuple[str, str]]:
    """(actor, path) of the HTML pages each kind of actor sees, error pages included."""
    return [
        ("anonymous", "/login"),
        ("anonymous", "/no-such-page"),
        ("admin", "/contracts"),
        ("admin", f"/contracts/{world.contract_a}"),
        ("admin", "/access-records"),
        ("admin", "/account/password"),
        ("member", "/access-records"),  # 403 page
        ("sales_agent", "/partner/clients"),
        ("sales_agent", "/contracts"),
        ("support", "/staff/organisations"),
        ("support", f"/staff/organisations/{world.org_a}"),
        ("support", "/staff/organisations/new"),
        ("support", f"/staff/contracts/{world.contract_a}"),
        ("support_viewing", "/contracts"),
    ]


def _get_pages(app, world):
    clients = {}
    for actor, path in _pages(app, world):
        if actor not in clients:
            clients[actor] = app.test_client()
            become(app, clients[actor], world, actor)
        response = clients[actor].get(path)
        assert response.mimetype == "text/html", path
        yield actor, path, response


def test_pages_carry_the_security_headers(app):
    world = build_world(app)
    for actor, path, response in _get_pages(app, world):
        where = f"{actor} {path}"
        csp = response.headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'", where
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, where
        assert directives["frame-ancestors"] == "'none'", where
        assert response.headers["X-Frame-Options"] == "DENY", where
        assert response.headers["X-Content-Type-Options"] == "nosniff", where
        assert response.headers["Referrer-Policy"] in {
            "same-origin",
            "no-referrer",
            "strict-origin-when-cross-origin",
        }, where
        assert response.headers["Cache-Control"] == "no-store", where


class _InlineCode(HTMLParser):
    """Finds what a CSP without 'unsafe-inline' blocks: inline scripts, styles, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script":
            self._in_script = "src" not in names
        if tag == "style":
            self.found.append("<style>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=...>")
            if name in ("href", "src", "action") and (value or "").lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}=javascript:...>")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.found.append("inline <script>")


def test_pages_have_no_inline_code_that_the_policy_would_block(app):
    """The CSP forbids inline code; a page that relies on some is broken in the browser."""
    world = build_world(app)
    for actor, path, response in _get_pages(app, world):
        parser = _InlineCode()
        parser.feed(response.get_data(as_text=True))
        assert parser.found == [], f"{actor} {path}: {parser.found}"
        for url in re.findall(r'(?:src|href)="([^"]+)"', response.get_data(as_text=True)):
            assert url.startswith("/") or url.startswith("#"), f"{actor} {path}: {url}"


def _session_cookie(response) -> str:
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("portal_session=")]
    assert cookies, "no session cookie was set"
    return cookies[-1]


def test_session_cookie_is_httponly_and_samesite_lax(app, client):
    world = build_world(app)
    response = client.post("/login", data={"email": world.emails["admin"], "password": PASSWORD})
    cookie = _session_cookie(response)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP in development and tests


def test_session_cookie_is_secure_when_configured(make_app):
    app = make_app(SESSION_COOKIE_SECURE=True)
    world = build_world(app)
    client = app.test_client()
    response = client.post(
        "/login",
        data={"email": world.emails["admin"], "password": PASSWORD},
        base_url="https://localhost",
    )
    cookie = _session_cookie(response)
    assert "; Secure" in cookie
    assert "HttpOnly" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


# --- production settings --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"SECRET_KEY": DEFAULT_SECRET_KEY}, "PORTAL_SECRET_KEY"),
        ({"SECRET_KEY": "too-short-a-secret"}, "PORTAL_SECRET_KEY"),
        ({"SQLALCHEMY_DATABASE_URI": "sqlite:///portal.db"}, "PostgreSQL"),
        ({"RATELIMIT_STORAGE_URI": "memory://"}, "PORTAL_RATELIMIT_STORAGE_URL"),
        ({"CLOCK_NOW": "2027-03-01T01:00:00+00:00"}, "PORTAL_CLOCK_NOW"),
        ({"SESSION_COOKIE_SECURE": False}, "PORTAL_SECURE_COOKIES"),
        ({"MAIL_TRANSPORT": "file"}, "PORTAL_MAIL_TRANSPORT"),
        ({"BASE_URL": "http://127.0.0.1:5000"}, "PORTAL_BASE_URL"),
        # Issue 13: fail closed.
        ({"SECRET_KEY": "x" * 48}, "PORTAL_SECRET_KEY"),
        ({"SECRET_KEY": "ab" * 24}, "PORTAL_SECRET_KEY"),
        ({"RATELIMIT_STORAGE_URI": ""}, "PORTAL_RATELIMIT_STORAGE_URL"),
        ({"RATELIMIT_ENABLED": False}, "PORTAL_RATELIMIT_ENABLED"),
    ],
)
def test_production_refuses_settings_only_safe_on_a_laptop(override, complaint):
    with pytest.raises(RuntimeError, match=complaint):
        create_app({**PRODUCTION, **override})


@pytest.mark.parametrize("name", ["Production", "prod", "staging", ""])
def test_an_unknown_environment_refuses_to_start(monkeypatch, name):
    """Issue 13: PORTAL_ENV=Production ran as development (default secret, no Secure cookie,
    file mail); an unknown name now stops the portal at once."""
    monkeypatch.setenv("PORTAL_ENV", name)
    with pytest.raises(RuntimeError, match="PORTAL_ENV"):
        create_app()


def test_a_hex_secret_of_32_characters_is_random_enough():
    assert create_app({**PRODUCTION, "SECRET_KEY": "9f86d081884c7d659a2feaa0c55ad015"})


def test_production_refuses_the_default_secret():
    with pytest.raises(RuntimeError, match="Refusing to start in production"):
        create_app({"ENV_NAME": "production", "SECRET_KEY": DEFAULT_SECRET_KEY})


def test_production_starts_with_proper_settings():
    app = create_app(PRODUCTION)
    assert app.config["ENV_NAME"] == "production"


def test_production_settings_from_the_environment(monkeypatch):
    """As deployed: PORTAL_* variables only; cookies are Secure and URLs https by default."""
    monkeypatch.setenv("PORTAL_ENV", "production")
    monkeypatch.setenv("PORTAL_SECRET_KEY", PRODUCTION["SECRET_KEY"])
    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgres://portal@db.internal/portal")
    monkeypatch.setenv("PORTAL_RATELIMIT_STORAGE_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.delenv("PORTAL_CLOCK_NOW", raising=False)
    monkeypatch.delenv("PORTAL_SECURE_COOKIES", raising=False)
    monkeypatch.delenv("PORTAL_MAIL_TRANSPORT", raising=False)
    monkeypatch.setenv("PORTAL_BASE_URL", "https://portal.example.jp")

    app = create_app()

    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["PREFERRED_URL_SCHEME"] == "https"
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql+psycopg://")
    assert app.config["MAIL_TRANSPORT"] == "smtp"  # never the development file transport
    monkeypatch.setenv("PORTAL_SECRET_KEY", DEFAULT_SECRET_KEY)
    with pytest.raises(RuntimeError, match="PORTAL_SECRET_KEY"):
        create_app()


# --- the audit log ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_events SET action = 'tampered'", "DELETE FROM audit_events"],
)
def test_the_audit_log_is_append_only_in_the_database(app, client, statement):
    """R-72/R-73: not even a direct SQL statement rewrites or removes the record."""
    world = build_world(app)
    login(client, world.emails["admin"])  # writes "signed_in"
    with app.app_context():
        before = [(e.id, e.action) for e in db.session.scalars(sa.select(AuditEvent))]
        assert before
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            db.session.execute(sa.text(statement))
            db.session.flush()
        db.session.rollback()
        after = [(e.id, e.action) for e in db.session.scalars(sa.select(AuditEvent))]
    assert after == before


def test_a_body_larger_than_the_portal_accepts_is_refused_plainly(make_app):
    """Nothing reads an oversized body: 413 with a page that says so, nothing stored."""
    app = make_app(MAX_CONTENT_LENGTH=4096)
    world = build_world(app)
    client = app.test_client()
    sign_in(app, client, world.emails["admin"])
    before = snapshot(app)
    big = {"csv": (io.BytesIO(b"x" * 10_000), "holders.csv")}
    page = client.post("/id-cards/holders/import", data=big, content_type="multipart/form-data")
    assert page.status_code == 413 and "text/html" in page.content_type
    assert "4096" not in page.get_data(as_text=True)  # said in megabytes, as people read it
    assert snapshot(app) == before


def test_a_405_names_the_methods_the_address_accepts(app):
    """Issue 13 (RFC 9110): 405 answers carried no Allow header, on pages and under /api."""
    client = app.test_client()
    page = client.delete("/login")
    assert page.status_code == 405 and set(page.headers["Allow"].split(", ")) >= {"GET", "POST"}
    api = client.put("/api/v1/openapi.json")
    assert api.status_code == 405 and api.is_json
    assert "GET" in api.headers["Allow"].split(", ")


# --- bounded input (issue 13) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"kind": "cancel\\u0000lation"}', "kind"),
        ("[" * 100_000 + "]" * 100_000, None),
        ('{"kind": "' + "x" * 300 + '"}', "kind"),
    ],
    ids=["nul", "deep", "long"],
)
def test_the_api_bounds_its_json_bodies(app, body, field):
    """Issue 13: 100,000-deep JSON was a 500 (an HTML page); a NUL in a string reached the
    database. Every answer is a JSON 400 naming the field when there is one."""
    world = build_world(app)
    tokens = make_api_tokens(app, world)
    response = app.test_client().post(
        f"/api/v1/contracts/{world.contract_a}/quotes",
        data=body,
        content_type="application/json",
        headers=bearer(tokens, "admin"),
    )
    assert response.status_code == 400 and response.is_json
    assert response.get_json()["error"]["field"] == field
