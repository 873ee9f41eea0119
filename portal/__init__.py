"""The contract portal: create_app() builds it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter

from portal.config import Config, check_production


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(Config().as_dict())
    if config:
        app.config.update(config)
    check_production(app.config)

    register_proxy(app)
    register_extensions(app)
    register_clock(app)
    register_blueprints(app)
    register_templates(app)
    register_errors(app)
    register_cli(app)
    return app


def register_proxy(app: Flask) -> None:
    """Behind reverse proxies the client's address, scheme and host come from their
    X-Forwarded-* headers, believed for exactly TRUSTED_PROXIES hops and never by default
    (issue 13): rate limits, the audit log and notices then see the real client."""
    hops = int(app.config.get("TRUSTED_PROXIES") or 0)
    if hops < 0:
        raise RuntimeError("Refusing to start: PORTAL_TRUSTED_PROXIES must be 0 or more")
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def register_extensions(app: Flask) -> None:
    from flask_babel import lazy_gettext as _l

    from portal import web
    from portal.extensions import babel, csrf, db, htmx, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    login_manager.init_app(app)
    # The actor is known before the CSRF check, so a refused form still shows the banner and
    # is on the record while someone is inside a customer's portal.
    web.register_request_hooks(app)
    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=web.select_locale, timezone_selector=lambda: "Asia/Tokyo")
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to continue.")
    login_manager.session_protection = None  # sessions are server-side (see web._load_user)


def register_clock(app: Flask) -> None:
    from portal.clock import clock

    if app.config.get("CLOCK_NOW"):
        clock.set(datetime.fromisoformat(app.config["CLOCK_NOW"]))


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` ids: a number larger than the database can hold (PostgreSQL's integer is
    32-bit) names nothing, so it is read as id 0, which no row has: the view answers 404 as
    for any missing id, and no out-of-range value reaches a query. (A converter maximum made
    no rule match, and Werkzeug then answered a POST with 405, since the address's GET rule
    had matched the path.)"""

    def to_python(self, value: str) -> int:
        number = super().to_python(value)
        return number if number <= MAX_DATABASE_ID else 0


MAX_DATABASE_ID = 2**31 - 1


def register_blueprints(app: Flask) -> None:
    app.url_map.converters["int"] = DatabaseIdConverter
    from portal.blueprints.account.views import bp as account_bp
    from portal.blueprints.api.views import bp as api_bp
    from portal.blueprints.auth.views import bp as auth_bp
    from portal.blueprints.billing.views import bp as billing_bp
    from portal.blueprints.contracts.views import bp as contracts_bp
    from portal.blueprints.inet import BLUEPRINTS as inet_blueprints
    from portal.blueprints.inet import load_routes as load_inet_routes
    from portal.blueprints.invoices.views import bp as invoices_bp
    from portal.blueprints.invoices.views import webhook_bp
    from portal.blueprints.main.views import bp as main_bp
    from portal.blueprints.organisation.views import bp as organisation_bp
    from portal.blueprints.partners.views import bp as partners_bp
    from portal.blueprints.security.views import bp as security_bp
    from portal.blueprints.sla.staff import bp as staff_sla_bp
    from portal.blueprints.sla.views import bp as sla_bp
    from portal.blueprints.staff.views import bp as staff_bp
    from portal.blueprints.terms.views import bp as terms_bp
    from portal.blueprints.terms.views import staff_bp as staff_terms_bp
    from portal.blueprints.users.views import bp as users_bp
    from portal.extensions import csrf

    for bp in (
        main_bp,
        auth_bp,
        account_bp,
        contracts_bp,
        invoices_bp,
        organisation_bp,
        partners_bp,
        staff_bp,
        billing_bp,
        terms_bp,
        staff_terms_bp,
        users_bp,
        security_bp,
        sla_bp,
        staff_sla_bp,
        api_bp,
    ):
        app.register_blueprint(bp)
    load_inet_routes()
    for bp in inet_blueprints:
        app.register_blueprint(bp)
    # The API authenticates by bearer token, never by cookie: no forged form can ride on it.
    csrf.exempt(api_bp)
    app.register_blueprint(webhook_bp)
    csrf.exempt(webhook_bp)


def register_templates(app: Flask) -> None:
    from portal import presentation

    presentation.register(app)


def register_errors(app: Flask) -> None:
    from portal.blueprints.main.errors import register

    register(app)


def register_cli(app: Flask) -> None:
    from portal.cli import register

    register(app)
