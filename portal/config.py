"""Configuration: every value comes from the environment, with safe defaults for development."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_SECRET_KEY = "dev-only-insecure-secret-key"  # noqa: S105 - refused in production below
INSTANCE_DIR = Path(__file__).resolve().parent.parent / "instance"


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def database_url(url: str | None) -> str:
    """Normalise a database URL: plain postgres URLs use the psycopg 3 driver."""
    if not url:
        return f"sqlite:///{INSTANCE_DIR / 'portal.db'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Config:
    """Read once when the app is created, so that tests can set the environment first."""

    def __init__(self) -> None:
        env = os.environ
        self.ENV_NAME = env.get("PORTAL_ENV", "development")
        self.SECRET_KEY = env.get("PORTAL_SECRET_KEY", DEFAULT_SECRET_KEY)
        self.SQLALCHEMY_DATABASE_URI = database_url(env.get("PORTAL_DATABASE_URL"))
        # `flask db upgrade` connects here: the tables' owner, while the application connects
        # as a role that owns nothing (R-42; README, Production). Empty: the URL above.
        migration_url = env.get("PORTAL_MIGRATION_DATABASE_URL", "")
        self.MIGRATION_DATABASE_URI = database_url(migration_url) if migration_url else ""
        # No ping per checkout (issue 15: a round trip on every request). A connection is
        # replaced after half an hour instead, and one the server dropped fails one request
        # (503, portal.outage): SQLAlchemy then invalidates the whole pool, so the next request
        # of the process connects afresh.
        self.SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": False, "pool_recycle": 1800}
        if self.SQLALCHEMY_DATABASE_URI.startswith("postgresql"):
            # A database host that drops packets answers 503 within seconds, not after TCP's
            # own timeout (issue 13).
            self.SQLALCHEMY_ENGINE_OPTIONS["connect_args"] = {"connect_timeout": 10}
        # The database out of reach (issue 13): the send-mail worker backs off from the first
        # wait, doubling, up to the longest; scheduled commands wait at most this long to start.
        self.DB_RETRY_FIRST_SECONDS = float(env.get("PORTAL_DB_RETRY_FIRST_SECONDS", "1"))
        self.DB_RETRY_LONGEST_SECONDS = float(env.get("PORTAL_DB_RETRY_LONGEST_SECONDS", "60"))
        self.DB_WAIT_AT_START_SECONDS = float(env.get("PORTAL_DB_WAIT_AT_START_SECONDS", "60"))
        production = self.ENV_NAME == "production"

        # Cookies: the session cookie carries only a server-side session token.
        self.SESSION_COOKIE_SECURE = _bool("PORTAL_SECURE_COOKIES", production)
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        # `__Host-` in production: the browser takes the cookie only if Secure, Path=/ and without
        # Domain, so no sibling subdomain nor a plain-HTTP page can set or shadow it (issue 13).
        cookie_prefix = "__Host-" if production else ""
        self.SESSION_COOKIE_NAME = f"{cookie_prefix}portal_session"
        self.REMEMBER_COOKIE_NAME = f"{cookie_prefix}portal_remember"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.SESSION_IDLE_MINUTES = int(env.get("PORTAL_SESSION_IDLE_MINUTES", "120"))
        # A session ends this long after sign-in however busy it is (issue 13).
        self.SESSION_MAX_HOURS = int(env.get("PORTAL_SESSION_MAX_HOURS", "12"))
        # Reverse proxies in front of the portal whose X-Forwarded-For/-Proto/-Host are
        # believed (ProxyFix); 0 believes none, so no client can claim another's address.
        self.TRUSTED_PROXIES = int(env.get("PORTAL_TRUSTED_PROXIES", "0"))
        self.PREFERRED_URL_SCHEME = "https" if production else "http"

        # staff view a customer's portal for at most this long.
        self.VIEW_AS_MAX_MINUTES = int(env.get("PORTAL_VIEW_AS_MAX_MINUTES", "60"))

        self.WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
        self.RATELIMIT_STORAGE_URI = env.get("PORTAL_RATELIMIT_STORAGE_URL", "memory://")
        self.RATELIMIT_ENABLED = _bool("PORTAL_RATELIMIT_ENABLED", True)
        self.RATELIMIT_HEADERS_ENABLED = True
        self.LOGIN_RATE_LIMIT_PER_IP = env.get("PORTAL_LOGIN_LIMIT_PER_IP", "30 per 10 minutes")
        # Failed sign-ins per account from one address: a stranger elsewhere cannot lock the
        # owner out (issue 13). The owner is e-mailed when an account sees
        # SIGN_IN_ALERT_FAILURES failures within SIGN_IN_ALERT_MINUTES, from any addresses.
        self.LOGIN_RATE_LIMIT_PER_ACCOUNT_ADDRESS = env.get(
            "PORTAL_LOGIN_LIMIT_PER_ACCOUNT_ADDRESS", "10 per 10 minutes"
        )
        self.SIGN_IN_ALERT_FAILURES = int(env.get("PORTAL_SIGN_IN_ALERT_FAILURES", "5"))
        self.SIGN_IN_ALERT_MINUTES = int(env.get("PORTAL_SIGN_IN_ALERT_MINUTES", "15"))
        # The public I-NET SERVICE application page (e-mails a link: a spam vector if unbounded).
        self.INET_APPLICATION_RATE_LIMIT_PER_IP = env.get(
            "PORTAL_INET_APPLICATION_LIMIT_PER_IP", "10 per hour"
        )
        self.INET_APPLICATION_RATE_LIMIT_PER_ADDRESS = env.get(
            "PORTAL_INET_APPLICATION_LIMIT_PER_ADDRESS", "3 per hour"
        )

        self.BABEL_DEFAULT_LOCALE = "ja"
        self.BABEL_DEFAULT_TIMEZONE = "Asia/Tokyo"
        self.LANGUAGES = ("ja", "en")

        # Mail: e-mails wait in the outbox (outbox_emails) until `flask portal send-mail`
        # delivers them. "smtp" sends them; "file" (the development default) writes each as an
        # .eml file under MAIL_FILE_DIR, so a developer can read what would have been sent.
        self.MAIL_TRANSPORT = env.get("PORTAL_MAIL_TRANSPORT", "smtp" if production else "file")
        self.MAIL_FILE_DIR = env.get("PORTAL_MAIL_FILE_DIR", str(INSTANCE_DIR / "mail"))
        self.MAIL_SERVER = env.get("PORTAL_SMTP_HOST", "127.0.0.1")
        self.MAIL_PORT = int(env.get("PORTAL_SMTP_PORT", "25"))
        self.MAIL_USERNAME = env.get("PORTAL_SMTP_USER", "")
        self.MAIL_PASSWORD = env.get("PORTAL_SMTP_PASSWORD", "")
        self.MAIL_USE_TLS = _bool("PORTAL_SMTP_STARTTLS", False)
        self.MAIL_TIMEOUT_SECONDS = float(env.get("PORTAL_SMTP_TIMEOUT", "20"))
        self.MAIL_FROM = env.get("PORTAL_MAIL_FROM", "portal@example.invalid")
        # Retries back off from 1 minute, doubling, up to 6 hours; after the last attempt
        # the e-mail is marked failed and shown to staff (about 3 days with the default 16).
        self.MAIL_MAX_ATTEMPTS = int(env.get("PORTAL_MAIL_MAX_ATTEMPTS", "16"))
        # Where the provider's staff are alerted (misuse reports); empty: every active
        # support and administrator staff user.
        self.MAIL_STAFF_ALERTS_TO = env.get("PORTAL_STAFF_ALERTS_TO", "")
        # The address of the portal in links inside e-mails (the worker has no request).
        self.BASE_URL = env.get("PORTAL_BASE_URL", "http://127.0.0.1:5000")

        # Stripe (the invoicing issue uses these; the API base lets tests use a local server).
        self.STRIPE_SECRET_KEY = env.get("PORTAL_STRIPE_SECRET_KEY", "")
        self.STRIPE_PUBLISHABLE_KEY = env.get("PORTAL_STRIPE_PUBLISHABLE_KEY", "")
        self.STRIPE_WEBHOOK_SECRET = env.get("PORTAL_STRIPE_WEBHOOK_SECRET", "")
        self.STRIPE_API_BASE = env.get("PORTAL_STRIPE_API_BASE", "")

        # The largest request body read at all (413 beyond): an import of card holders' photos
        # (a ZIP of at most 100 MB with its CSV) is the largest thing anyone sends.
        self.MAX_CONTENT_LENGTH = 110 * 1024 * 1024
        # I-NET SERVICE photos: where they are stored. "database" (the default) keeps
        # them in the database, where a deletion is exact and atomic with its record.
        self.PHOTO_STORAGE = env.get("PORTAL_PHOTO_STORAGE", "database")

        # A fixed "now" for demos and browser tests (ISO 8601 instant); refused in production.
        self.CLOCK_NOW = env.get("PORTAL_CLOCK_NOW", "")

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if k.isupper()}


# The environments the portal knows. Anything else (a typo, "Production", "prod") refuses to
# start rather than run as development with its laptop defaults (fail closed, issue 13).
ENVIRONMENTS = ("development", "production")
# A secret of 32 characters drawn from fewer than this many different ones is not random
# (32 identical characters, "abab…"): a hex token of 32 has about 14.
MIN_SECRET_DISTINCT = 10


def check_production(config: Mapping[str, Any]) -> None:
    """Refuse to start with an unknown environment, or in production with settings that are
    only safe on a laptop."""
    if config["ENV_NAME"] not in ENVIRONMENTS:
        raise RuntimeError(
            f"Refusing to start: PORTAL_ENV={config['ENV_NAME']!r} is not one of "
            + ", ".join(ENVIRONMENTS)
        )
    if config["ENV_NAME"] != "production":
        return
    problems = []
    if config.get("PHOTO_STORAGE", "database") != "database":
        problems.append("PORTAL_PHOTO_STORAGE: only 'database' is available")
    secret = config["SECRET_KEY"]
    if (
        not secret
        or secret == DEFAULT_SECRET_KEY
        or len(secret) < 32
        or len(set(secret)) < MIN_SECRET_DISTINCT
    ):
        problems.append("PORTAL_SECRET_KEY must be set to a random value of 32+ characters")
    if config["CLOCK_NOW"]:
        problems.append("PORTAL_CLOCK_NOW must not be set in production")
    if not config.get("RATELIMIT_ENABLED", True):
        problems.append("PORTAL_RATELIMIT_ENABLED must not be turned off in production")
    storage = str(config["RATELIMIT_STORAGE_URI"] or "").strip()
    if not storage or storage.startswith("memory://"):
        problems.append("PORTAL_RATELIMIT_STORAGE_URL must name a shared store (e.g. redis://...)")
    if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        problems.append("PORTAL_DATABASE_URL must point at PostgreSQL in production")
    if not config["SESSION_COOKIE_SECURE"]:
        # The session cookie names a signed-in session: never send it over plain HTTP.
        problems.append("PORTAL_SECURE_COOKIES must not be turned off in production")
    if config["MAIL_TRANSPORT"] != "smtp":
        problems.append("PORTAL_MAIL_TRANSPORT must be smtp in production")
    if not str(config["BASE_URL"]).startswith("https://"):
        problems.append("PORTAL_BASE_URL must be the portal's https:// address in production")
    if problems:
        raise RuntimeError("Refusing to start in production: " + "; ".join(problems))
