"""Request plumbing: who is acting, locale, security headers, the record of entries."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from wtforms import Field
from wtforms.meta import DefaultMeta

from portal import forms
from portal.extensions import db, login_manager
from portal.models import User, UserSession
from portal.outage import DATABASE_ERRORS, Outage, describe, forget_connection, outage_kind
from portal.permissions import Actor, Holdings, is_staff, remember_holdings
from portal.services import audit, auth, entries

# R-72 banner and htmx need our own script only; nothing from another origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def client_ip() -> str:
    return request.remote_addr or ""


def current_actor() -> Actor:
    """The actor of this request; views behind login_required always have one."""
    actor = g.get("actor")
    if actor is None:
        raise RuntimeError("current_actor() outside an authenticated request")
    return actor


def back_office_actor() -> Actor:
    """Staff in the back office: 403 while viewing as a customer (R-72), 404 for anyone else
    (the back office does not exist for customers and agents)."""
    actor = current_actor()
    if actor.is_staff_view:
        abort(403, _("Stop viewing as the customer first."))
    if not is_staff(actor):
        abort(404)
    return actor


def current_session() -> UserSession | None:
    return g.get("user_session")


def safe_next(target: str | None, fallback: str) -> str:
    """No open redirect after login: only a path on this site."""
    if not target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    if "\\" in target or any(ord(c) < 32 for c in target):
        return fallback
    return target


def select_locale() -> str:
    """The language switch wins, then the user's setting (remembered in the session while the
    database is out of reach), then the browser; Japanese default."""
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # a command (create-staff, send-mail): no browser to ask
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = session.get("locale")
    if chosen in languages:
        return chosen
    user = g.get("actor").user if g.get("actor") else None
    if user is not None and user.locale in languages:
        return user.locale
    # The user's setting as last seen: the 503 page has no database to read it from.
    if session.get("user_locale") in languages:
        return session["user_locale"]
    return (
        request.accept_languages.best_match(languages) or current_app.config["BABEL_DEFAULT_LOCALE"]
    )


@login_manager.user_loader
def _load_user(token: str) -> User | None:
    """The session's user, with what the rest of the request needs, in one statement; a
    commit only when something was written (last seen once a minute, an ending)."""
    idle = timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    signed_in = auth.load_session(token, idle)
    if isinstance(signed_in, auth.Ended):
        db.session.commit()  # an idle session ended on the way stays ended
        return None
    if signed_in is None:
        return None
    if signed_in.changed:
        db.session.commit()
    g.user_session = signed_in.user_session
    g.signed_in = signed_in
    user = signed_in.user_session.user
    user.session_token = signed_in.user_session.token
    return user


def _load_actor() -> Response | None:
    g.actor = None
    # The API authenticates by bearer token only: a browser's cookie must not act there (CSRF),
    # nor drag an API call into a view as customer or a forced password change.
    if request.endpoint == "static" or request.blueprint == "api":
        return None
    if not current_user.is_authenticated:
        return None
    signed_in: auth.SignedIn = g.signed_in
    entry = signed_in.entry
    actor = Actor(current_user._get_current_object(), entry)  # type: ignore[attr-defined]
    if entry is not None and entries.is_expired(entry):
        # a view as customer lasts at most the configured time, then ends by itself.
        entries.stop(actor, reason="expired", ip=client_ip())
        db.session.commit()
        actor = Actor(actor.user)
        flash(_("Your time viewing as the customer ended."), "info")
        g.actor = actor
        # Nothing meant for the customer's portal runs under the staff member's own account.
        if request.endpoint not in {"staff.organisation", "auth.logout", "main.language"}:
            target = url_for("staff.organisation", organisation_id=entry.organisation_id)
            return redirect(target, 302 if request.method == "GET" else 303)
    g.actor = actor
    if actor.organisation_id is not None:
        # Read with the session (issue 15): the navigation's holdings and whether the terms
        # banner has anything to say need no statement of their own.
        remember_holdings(
            actor,
            Holdings(signed_in.contracts, signed_in.inet, photos_kept=signed_in.photos_kept),
        )
        if not signed_in.terms_pending:
            g.pending_terms = []
    if session.get("user_locale") != actor.user.locale:
        session["user_locale"] = actor.user.locale  # for select_locale while the database is down
    if (
        actor.user.must_change_password
        and not actor.is_staff_view
        # Reporting misuse must work for an account whose password is not its owner's.
        and request.endpoint
        not in {"account.password", "account.misuse", "auth.logout", "main.language"}
    ):
        return redirect(url_for("account.password"))
    return None


def _record_entry_request(response: Response) -> Response:
    """R-72: while someone is inside a customer's portal, every request is on the record."""
    actor = g.get("actor")
    if actor is None or actor.entry is None or request.endpoint in (None, "static"):
        return response
    if actor.entry.ended_at is not None:
        return response
    try:
        audit.record(
            "request",
            actor=actor,
            ip=client_ip(),
            method=request.method,
            path=request.path,
            endpoint=request.endpoint,
            status=response.status_code,
        )
        db.session.commit()
    except DATABASE_ERRORS as exc:
        if outage_kind(exc) is None:
            raise
        # A page unrecorded is a page not shown: the database answers again soon.
        return _security_headers(database_unavailable(exc))
    return response


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
    )
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if current_app.config["SESSION_COOKIE_SECURE"]:
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=63072000; includeSubDomains"
        )
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def end_browser_session() -> None:
    """A fresh session (nothing of the old one survives, but the chosen language)."""
    locale = session.get("locale")
    logout_user()
    session.clear()
    if locale:
        session["locale"] = locale


def _render_field(meta: DefaultMeta, field: Field, render_kw: dict) -> str:
    """How every form field is written, so that each page is valid HTML (issue 11):

    - the hidden CSRF token carries no id: nothing labels it, and with WTForms' id="csrf_token"
      a page of several forms (the header's language switch and sign-out among them) repeats
      an id;
    - a single <select> is marked required only when its first option is an empty
      placeholder, as HTML asks; one whose first option is a value always sends one, and the
      server checks it anyway.
    """
    if field.type == "CSRFTokenField":
        render_kw = {**render_kw, "id": False}
    elif field.type == "SelectField" and field.flags.required and "required" not in render_kw:
        first = next(iter(field.iter_choices()), None)
        if first is None or str(first[0]) != "" or field.has_groups():
            render_kw = {**render_kw, "required": False}
    return DefaultMeta.render_field(meta, field, render_kw)


# Seconds a client is asked to wait before it tries again (Retry-After).
RETRY_AFTER = {Outage.UNREACHABLE: 30, Outage.BUSY: 5}


def database_unavailable(exc: Exception) -> Response:
    """503 while the database is out of reach or busy: a page in the reader's language (from
    the session or the browser: the user's setting is in the database), or under /api the
    API's JSON error, with Retry-After. Nothing of the failed transaction is kept."""
    kind = outage_kind(exc)
    if kind is None:
        raise exc
    forget_connection()
    current_app.logger.warning(
        "%s %s: database %s (%s)", request.method, request.path, kind.value, describe(exc)
    )
    # The page's header must not ask the database again (who is signed in, terms banners).
    g.actor = None
    g.pending_terms = []
    g._login_user = login_manager.anonymous_user()  # Flask-Login's cache of current_user
    if kind is Outage.BUSY:
        message = _("The portal is busy at the moment. Try again in a few seconds.")
    else:
        message = _(
            "The portal cannot reach its database at the moment. It usually comes back within "
            "a few minutes: try again shortly."
        )
    headers = {"Retry-After": str(RETRY_AFTER[kind])}
    if request.path == "/api" or request.path.startswith("/api/"):
        error = {"code": "unavailable", "message": message, "field": None}
        response = jsonify({"error": error})  # the API's one error shape
        response.status_code = 503
        response.headers.update(headers)
        return response
    page = render_template(
        "unavailable.html",
        title=_("Temporarily unavailable"),
        message=message,
        again=safe_next(request.full_path.rstrip("?"), "") if request.method == "GET" else None,
    )
    return Response(page, 503, headers)


def _end_transaction(_error: BaseException | None) -> None:
    """The request's transaction ends with its app context (a GET commits nothing, issue 15:
    its reads end with a rollback here). A connection the server dropped since the page's
    last statement is thrown away, not raised after the answer was made."""
    try:
        db.session.remove()
    except DATABASE_ERRORS as exc:
        if outage_kind(exc) is None:
            raise
        forget_connection()


def register_request_hooks(app: Flask) -> None:
    # Every form of the portal is a FlaskForm: one hook writes all their fields (see above).
    FlaskForm.Meta.render_field = _render_field  # type: ignore[method-assign]
    forms.install()  # ... and one bounds every field's input (issue 13)
    app.before_request(_load_actor)
    app.after_request(_record_entry_request)
    app.after_request(_security_headers)
    # Runs before Flask-SQLAlchemy's own teardown (registered earlier), which then has nothing
    # left to close.
    app.teardown_appcontext(_end_transaction)
    for error in DATABASE_ERRORS:
        app.register_error_handler(error, database_unavailable)
