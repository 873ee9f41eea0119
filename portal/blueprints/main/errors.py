"""Error pages: HTML for the browser, JSON for the API."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


_CODES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    429: "too_many_requests",
}


def _page(status: int, title: str, message: str):
    if _wants_json():
        # The API's one error shape (portal/blueprints/api/errors.py).
        error = {"code": _CODES.get(status, "error"), "message": message, "field": None}
        return {"error": error}, status
    return render_template("error.html", status=status, title=title, message=message), status


def register(app: Flask) -> None:
    @app.errorhandler(400)
    def bad_request(error):
        return _page(400, _("Bad request"), _("The request could not be understood."))

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _page(
            400,
            _("The form expired"),
            _("The form was too old or came from elsewhere. Go back, reload and try again."),
        )

    @app.errorhandler(403)
    def forbidden(error):
        description = getattr(error, "description", None)
        message = (
            description
            if isinstance(description, str) and not description.startswith("You don't have")
            else _("You may not do this.")
        )
        return _page(403, _("Not allowed"), message)

    @app.errorhandler(404)
    def not_found(error):
        return _page(404, _("Not found"), _("There is nothing here, or you may not see it."))

    @app.errorhandler(413)
    def too_large(error):
        return _page(
            413,
            _("Too large"),
            _(
                "What was sent is larger than the portal accepts (at most %(mb)d MB at once).",
                mb=app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024),
            ),
        )

    @app.errorhandler(405)
    def method_not_allowed(error):
        body, status = _page(405, _("Not allowed"), _("This address does not accept that method."))
        # RFC 9110: a 405 names the methods the address does accept.
        allowed = ", ".join(sorted(error.valid_methods or ()))
        return body, status, ({"Allow": allowed} if allowed else {})

    @app.errorhandler(429)
    def too_many(error):
        return _page(
            429,
            _("Too many attempts"),
            _("Too many attempts in a short time. Wait a few minutes and try again."),
        )
