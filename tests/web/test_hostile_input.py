"""Issue 13: no 500 on any input. Every page route of the permission matrix is called by an
actor who may use it, with hostile values: each form field in turn (the others as the
matrix sends them) set to a NUL byte, an over-long text, a year the portal cannot mean and a
number beyond the database's integers; every GET with hostile query parameters. Whatever
the answer (the form again with a message, a refusal, a redirect), it is never a 5xx.

The API gets the same treatment from Schemathesis (test_api_schema.py).
"""

from __future__ import annotations

import pytest

from tests.factories import ACTOR_KINDS
from tests.web.expect import LOGIN
from tests.web.routes import clear_pending_requests, post_data, route_ids, url_of
from tests.web.test_permission_matrix import MATRIX, _client_as

# Who calls each route: the first of these whom the matrix lets in.
CALLERS = ("admin", "support", "billing", "production", "sales_agent", "anonymous")
HOSTILE_VALUES = {
    "nul": "a\x00b",
    "long": "x" * 6000,
    "year 1": "0001-01-01",
    "huge number": "9" * 30,
}
HOSTILE_QUERY = {
    name: value
    for name in (
        "q",
        "page",
        "state",
        "status",
        "kind",
        "next",
        "staged",
        "service_id",
        "issued_from",
        "issued_to",
        "amount_min",
        "amount_max",
        "counterparty",
        "submitted_from",
        "submitted_to",
    )
    for value in ["\x00" + "9" * 30]
}


def _caller(endpoint: str, method: str) -> str | None:
    row = MATRIX[(endpoint, method)]
    for actor in CALLERS:
        expected = row[ACTOR_KINDS.index(actor)]
        if expected not in (403, 404) and (actor == "anonymous" or expected != LOGIN):
            return actor
    return None


def _routes(method: str) -> list[tuple[str, str]]:
    return sorted(
        (endpoint, actor)
        for (endpoint, m) in MATRIX
        if m == method
        and not endpoint.startswith(("api.", "static", "stripe_webhook."))
        and (actor := _caller(endpoint, m)) is not None
    )


def _no_server_error(response, endpoint: str, method: str, actor: str) -> bool:
    """No 5xx, but the one the matrix expects anyway (card payments not set up: 503)."""
    expected = MATRIX[(endpoint, method)][ACTOR_KINDS.index(actor)]
    return response.status_code < 500 or response.status_code == expected


def _call(shared, endpoint: str, actor: str, method: str, data=None, query=None):
    app, world = shared.app, shared.world
    client = _client_as(app, world, actor, endpoint)
    ids = route_ids(app, world, endpoint)
    try:
        return client.open(
            url_of(app, endpoint, **ids), method=method, data=data, query_string=query
        )
    finally:
        clear_pending_requests(app, ids["contract_id"])


class TestForms:
    @pytest.mark.parametrize(("endpoint", "actor"), _routes("POST"))
    def test_no_form_value_makes_a_server_error(self, shared, fixed_clock, endpoint, actor):
        base = post_data(endpoint, shared.world, actor)
        for field, value in base.items():
            if not isinstance(value, str | int):
                continue
            for kind, hostile in HOSTILE_VALUES.items():
                response = _call(shared, endpoint, actor, "POST", data={**base, field: hostile})
                assert _no_server_error(response, endpoint, "POST", actor), (
                    f"{actor} {endpoint} {field}={kind}: {response.status_code}"
                )
        # A form without fields (a button) still gets a stray hostile one.
        response = _call(shared, endpoint, actor, "POST", data={**base, "x": "\x00"})
        assert _no_server_error(response, endpoint, "POST", actor), f"{actor} {endpoint}"


class TestQueries:
    @pytest.mark.parametrize(("endpoint", "actor"), _routes("GET"))
    def test_no_query_value_makes_a_server_error(self, shared, fixed_clock, endpoint, actor):
        for query in (HOSTILE_QUERY, {name: "0001-01-01" for name in HOSTILE_QUERY}):
            response = _call(shared, endpoint, actor, "GET", query=query)
            assert _no_server_error(response, endpoint, "GET", actor), f"{actor} {endpoint}"
