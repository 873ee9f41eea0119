"""Who calls the API: the user of a bearer token, never the browser's cookie session.

A cookie would let any page the user visits send requests in their name (CSRF); a token is
sent only by a program that holds it, so the API is exempt from the CSRF check.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, g, make_response, request
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from portal.blueprints.api.errors import ApiError, from_http_exception
from portal.extensions import db
from portal.models import User
from portal.permissions import Actor
from portal.services import api_tokens

REALM = 'Bearer realm="portal-api"'


def bearer_token() -> str | None:
    """The token of `Authorization: Bearer <token>`, if the header has that form."""
    scheme, _sep, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def api_locale(user: User | None) -> str:
    """The user's language; an Accept-Language header the portal can answer overrides it."""
    languages = current_app.config["LANGUAGES"]
    if request.headers.get("Accept-Language"):
        asked = request.accept_languages.best_match(languages)
        if asked:
            return asked
    if user is not None and user.locale in languages:
        return user.locale
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def current_api_actor() -> Actor:
    """The token's user, outside any customer's portal (a token is never inside a view)."""
    actor = g.get("api_actor")
    if actor is None:
        raise RuntimeError("current_api_actor() outside an authenticated API request")
    return actor


def _authenticate() -> tuple[User | None, ApiError | None]:
    plain = bearer_token()
    if plain is None:
        return None, ApiError(
            401,
            "unauthorized",
            _("Send your API token in the header Authorization: Bearer <token>."),
            headers={"WWW-Authenticate": REALM},
        )
    token = api_tokens.authenticate(plain)
    if token is None:
        return None, ApiError(
            401,
            "invalid_token",
            _("This API token is not valid or was revoked."),
            headers={"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
        )
    user = token.user
    # Its own transaction: the token's last use is kept even when the request is refused.
    db.session.commit()
    return user, None


def _run(view: Callable[..., Any], user: User | None, kwargs: dict[str, Any]) -> Response:
    if user is not None:
        g.api_actor = Actor(user)
    try:
        return make_response(view(**kwargs))
    except ApiError as exc:
        db.session.rollback()
        return exc.response()
    except HTTPException as exc:
        db.session.rollback()
        return from_http_exception(exc).response()


def api_view(*, public: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Authenticate by bearer token (unless public), answer in the user's language, and turn
    every refusal into the API's JSON error."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(**kwargs: Any) -> Response:
            g.api_actor = None
            user, error = (None, None) if public else _authenticate()
            locale = api_locale(user)
            with force_locale(locale):
                response = error.response() if error is not None else _run(view, user, kwargs)
            response.headers["Content-Language"] = locale
            return response

        return wrapper

    return decorate
