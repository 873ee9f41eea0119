"""/api/v1: contracts with their calendar, quotes, requests, usage, incidents and SLA claims,
by bearer token.

Each view parses, loads (scoped: another organisation's id answers 404), asks permissions,
calls one service and commits once, like the pages. Errors are ApiError (errors.py).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from portal.blueprints.api import bodies, cursors, scope, serialize
from portal.blueprints.api.auth import api_view, current_api_actor
from portal.blueprints.api.errors import ApiError, forbidden, refused
from portal.blueprints.api.openapi import document
from portal.clock import clock
from portal.domain.quotes import Refusal
from portal.extensions import db
from portal.models import ClaimChannel, Incident, Plan, UsageSource
from portal.permissions import (
    can_file_claims,
    can_record_usage,
    can_request_changes,
    get_claim_or_404,
    get_request_or_404,
    is_staff,
)
from portal.services import claims as claim_service
from portal.services import incidents as incident_service
from portal.services import requests as request_service
from portal.services import usage as usage_service
from portal.services.claims import ClaimRefused
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.services.requests import RequestRefused
from portal.web import client_ip

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@bp.after_request
def _never_cached(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _locale() -> str:
    return str(get_locale())


@bp.get("/openapi.json")
@api_view(public=True)
def openapi():
    return document()


@bp.get("/contracts")
@api_view()
def contracts():
    """The contracts the user may see, `limit` at a time from `cursor` (cursors.py says why a
    cursor); `next_cursor` continues the list, null at its end."""
    actor = current_api_actor()
    limit, after = cursors.limit(), cursors.after()
    today = clock.today()
    found, last = scope.contracts_after(actor, after, limit)
    pending = request_service.pending_by_contract([c.id for c in found])
    return {
        "contracts": [
            serialize.contract(
                c, c.calendar(today), actor=actor, locale=_locale(), pending=pending.get(c.id)
            )
            for c in found
        ],
        "next_cursor": cursors.encode(last) if last is not None else None,
    }


@bp.get("/contracts/<int:contract_id>")
@api_view()
def contract(contract_id: int):
    actor = current_api_actor()
    found = scope.contract_or_404(actor, contract_id)
    data = serialize.contract(
        found,
        found.calendar(clock.today()),
        actor=actor,
        locale=_locale(),
        pending=request_service.pending_request(found),
    )
    data["requests"] = [
        serialize.request(r, actor=actor, locale=_locale())
        for r in request_service.requests_of(found)
    ]
    data["usage"] = serialize.usage(usage_service.view(found), actor=actor, locale=_locale())
    return data


@bp.post("/contracts/<int:contract_id>/quotes")
@api_view()
def quote(contract_id: int):
    """R-32: what a request would do and cost; anyone who may see the contract may ask."""
    actor = current_api_actor()
    found = scope.contract_or_404(actor, contract_id)
    body = bodies.json_object(bodies.QUOTE_FIELDS, required=frozenset({"kind"}))
    choice = bodies.choice(body)
    notice_on = bodies.optional_day(body, "notice_on")
    result = request_service.make_quote(found, choice, notice_on)
    if isinstance(result, Refusal):
        raise refused(result)
    target = db.session.get(Plan, result.target_plan_id) if result.target_plan_id else None
    return serialize.quote(
        result.to_json(), actor=actor, locale=_locale(), target_plan=target, current_plan=found.plan
    )


@bp.get("/contracts/<int:contract_id>/requests")
@api_view()
def requests(contract_id: int):
    actor = current_api_actor()
    found = scope.contract_or_404(actor, contract_id)
    return {
        "requests": [
            serialize.request(r, actor=actor, locale=_locale())
            for r in request_service.requests_of(found)
        ]
    }


@bp.post("/contracts/<int:contract_id>/requests")
@api_view()
def submit(contract_id: int):
    """R-20/R-32: the request is the written notice, given today; R-23: one pending at a time."""
    actor = current_api_actor()
    found = scope.contract_or_404(actor, contract_id)
    if not can_request_changes(actor):
        raise forbidden(_("You may see quotes but not make requests on this contract."))
    body = bodies.json_object(bodies.REQUEST_FIELDS, required=frozenset({"kind"}))
    choice = bodies.choice(body)
    try:
        created = request_service.submit(
            actor,
            found,
            choice,
            ip=client_ip(),
            user_agent=request.headers.get("User-Agent", ""),
            via_api=True,
        )
    except RequestRefused as exc:
        raise refused(exc.refusal) from exc
    except NotAllowed as exc:
        raise forbidden(str(exc)) from exc
    db.session.commit()
    location = url_for("api.request_detail", contract_id=found.id, request_id=created.id)
    return serialize.request(created, actor=actor, locale=_locale()), 201, {"Location": location}


@bp.get("/contracts/<int:contract_id>/requests/<int:request_id>")
@api_view()
def request_detail(contract_id: int, request_id: int):
    actor = current_api_actor()
    found = get_request_or_404(scope.contract_or_404(actor, contract_id), request_id)
    return serialize.request(found, actor=actor, locale=_locale())


@bp.post("/contracts/<int:contract_id>/requests/<int:request_id>/withdraw")
@api_view()
def withdraw(contract_id: int, request_id: int):
    """R-23: a pending request can be withdrawn before its effective date."""
    actor = current_api_actor()
    found = get_request_or_404(scope.contract_or_404(actor, contract_id), request_id)
    if not can_request_changes(actor):
        raise forbidden(_("You may not withdraw requests on this contract."))
    try:
        request_service.withdraw(actor, found, ip=client_ip())
    except NotAllowed as exc:
        raise forbidden(str(exc)) from exc
    except Conflict as exc:
        raise ApiError(409, "not_withdrawable", str(exc)) from exc
    db.session.commit()
    return serialize.request(found, actor=actor, locale=_locale())


@bp.post("/contracts/<int:contract_id>/usage")
@api_view()
def usage(contract_id: int):
    """R-15: the provider's systems report storage used; the same measurement is kept once."""
    actor = current_api_actor()
    found = scope.contract_or_404(actor, contract_id)
    if not can_record_usage(actor):
        raise forbidden()
    body = bodies.json_object(bodies.USAGE_FIELDS, required=frozenset({"used_gb", "measured_at"}))
    measured_at = bodies.instant(body, "measured_at")
    try:
        used_gb = usage_service.parse_used_gb(body["used_gb"])
        reading, created = usage_service.record(
            found, used_gb, measured_at, source=UsageSource.API, user=actor.user, ip=client_ip()
        )
    except usage_service.DifferentReading as exc:
        raise ApiError(409, "different_reading", str(exc), field=exc.field) from exc
    except PortalError as exc:
        raise ApiError(422, "invalid", str(exc), field=exc.field) from exc
    db.session.commit()
    return serialize.reading(reading), 201 if created else 200


# --- incidents and SLA claims (R-50..R-53) ------------------------------------------------------


@bp.get("/incidents")
@api_view()
def incidents():
    """R-52: the incidents of the last 12 months (and those still open) that touched the
    contracts the user may see; staff see every incident. Incidents carry no amount, so
    agencies see them whole (R-71)."""
    actor = current_api_actor()
    now = clock.now()
    if is_staff(actor):
        since = now - timedelta(days=incident_service.HISTORY_DAYS)
        return {
            "incidents": [
                serialize.incident(view, locale=_locale(), contract_ids=None)
                for view in incident_service.all_for_staff()
                if view.is_open or view.version.ended_at >= since
            ]
        }
    return {
        "incidents": [
            serialize.incident(
                view, locale=_locale(), contract_ids=sorted(c.id for c in view.contracts)
            )
            for view in incident_service.for_contracts(scope.contracts_of(actor), now)
        ]
    }


@bp.get("/contracts/<int:contract_id>/claims")
@api_view()
def claims(contract_id: int):
    """R-52: the incidents that touched the contract, what each is worth and why, whether it
    can still be claimed for, and the contract's claims; agencies without amounts (R-71)."""
    actor = current_api_actor()
    found = scope.contract_or_404(actor, contract_id)
    options = claim_service.options_for(found, clock.now(), clock.today())
    return {
        "contract_id": found.id,
        "can_file": can_file_claims(actor),
        "incidents": [serialize.claim_option(o, actor=actor, locale=_locale()) for o in options],
        "claims": [serialize.claim(c, actor=actor) for c in claim_service.claims_of(found)],
    }


@bp.post("/contracts/<int:contract_id>/claims")
@api_view()
def file_claim(contract_id: int):
    """R-52: file a claim for an incident, with the amount computed now (never sent); one per
    contract and incident. Administrators and sales agents only (R-52 reading, R-71)."""
    actor = current_api_actor()
    found = scope.contract_or_404(actor, contract_id)
    if not can_file_claims(actor):
        raise forbidden(_("Only the customer's administrators and sales agents file claims."))
    body = bodies.json_object(bodies.CLAIM_FIELDS, required=frozenset({"incident_id"}))
    incident_id = bodies.record_id(body, "incident_id")
    incident = db.session.get(Incident, incident_id) if incident_id is not None else None
    if incident is None:
        # Answered as an incident that did not touch the contract, so that incident ids
        # reveal nothing: one that touched only others and one that does not exist are alike.
        raise ApiError(
            422,
            "not_touched",
            claim_service.refusal_message("not_touched"),
            field="incident_id",
        )
    try:
        created = claim_service.file(
            actor, found, incident, ip=client_ip(), channel=ClaimChannel.API
        )
    except ClaimRefused as exc:
        raise ApiError(422, exc.code, str(exc), field=exc.field or "incident_id") from exc
    except NotAllowed as exc:
        raise forbidden(str(exc)) from exc
    except Conflict as exc:
        raise ApiError(409, "already_claimed", str(exc), field="incident_id") from exc
    except PortalError as exc:
        raise ApiError(422, "invalid", str(exc), field=exc.field) from exc
    db.session.commit()
    location = url_for("api.claim", contract_id=found.id, claim_id=created.id)
    return serialize.claim(created, actor=actor), 201, {"Location": location}


@bp.get("/contracts/<int:contract_id>/claims/<int:claim_id>")
@api_view()
def claim(contract_id: int, claim_id: int):
    actor = current_api_actor()
    found = get_claim_or_404(scope.contract_or_404(actor, contract_id), claim_id)
    return serialize.claim(found, actor=actor)


# I-NET SERVICE's routes join this blueprint (cards.py imports `bp` from here).
from portal.blueprints.api import cards  # noqa: E402, F401
