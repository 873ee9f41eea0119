"""Every API error has one shape: {"error": {"code", "message", "field"}}."""

from __future__ import annotations

from flask import Response, jsonify
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from portal.domain.quotes import Refusal
from portal.services.requests import explain

# A refusal names the choice at fault as the pages call it; the API names the body's key.
REFUSAL_FIELDS = {"plan": "plan_id", "effective_on": "date", "termination_on": "date"}
# a pending request is a clash with the contract's state, not a wrong choice.
CONFLICT_REFUSALS = frozenset({"pending_request"})


class ApiError(Exception):
    """An answer other than success; `message` is user-facing, already translated."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def response(self) -> Response:
        response = jsonify(
            {"error": {"code": self.code, "message": self.message, "field": self.field}}
        )
        response.status_code = self.status
        response.headers.update(self.headers)
        return response


def refused(refusal: Refusal) -> ApiError:
    """A refusal by the rules: 422 with its code, or 409 when a request is already pending."""
    status = 409 if refusal.code in CONFLICT_REFUSALS else 422
    field = REFUSAL_FIELDS.get(refusal.field or "", refusal.field)
    return ApiError(status, refusal.code, explain(refusal), field=field)


def bad_request(message: str, *, field: str | None = None) -> ApiError:
    return ApiError(400, "bad_request", message, field=field)


def forbidden(message: str | None = None) -> ApiError:
    return ApiError(403, "forbidden", message or _("You may not do this."))


def not_found() -> ApiError:
    # Another organisation's id and a missing one answer alike, so ids reveal nothing.
    return ApiError(404, "not_found", _("There is nothing here, or you may not see it."))


def from_http_exception(exc: HTTPException) -> ApiError:
    """abort() in a shared loader or a parser, in the API's shape."""
    status = exc.code or 500
    if status == 404:
        return not_found()
    if status == 403:
        return forbidden()
    if status == 400:
        return bad_request(_("The request could not be understood."))
    if status == 405:
        allowed = ", ".join(sorted(getattr(exc, "valid_methods", None) or ()))
        return ApiError(
            405,
            "method_not_allowed",
            _("This address does not accept that method."),
            headers={"Allow": allowed} if allowed else None,
        )
    return ApiError(status, "error", exc.description or exc.name)
