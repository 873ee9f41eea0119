"""THE permission matrix: every route of the app, every method, every kind of actor.

R-70 (customers see only their own organisation), R-71 (agents only their partner's
clients), R-72 (staff viewing as a customer are inside the customer's portal, not the back
office) and STYLE.md's tenancy rule (another organisation's id answers 404, not 403).

Requests target organisation A's objects (contract_a, org_a). A new route fails
test_every_route_is_in_the_matrix until someone decides, here, who may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import AccountEntry
from tests.factories import ACTOR_KINDS, World, become
from tests.web.routes import app_routes, post_data, url_of


@dataclass(frozen=True)
class Redirect:
    """A 302 to this path ("{org_a}" is filled in from the world)."""

    path: str


LOGIN = Redirect("/login")  # anonymous: sign in first (login_required)
HOME = Redirect("/")
PORTAL = Redirect("/contracts")  # the customer's portal
STAFF = Redirect("/staff/organisations")  # the back office
CLIENT = Redirect("/partner/clients")  # the agent's list of clients
ORG_A = Redirect("/staff/organisations/{org_a}")  # back to the organisation after viewing

Expected = int | Redirect

# Columns, in the order of ACTOR_KINDS:
#   anon   = anonymous                          suppt = support staff (back office)
#   member = member of org A                    viewg = support staff viewing A as A's admin
#   admin  = administrator of org A             billg = billing staff
#   o_adm  = administrator of org B
#   sales / agncy = sales / agency agent assigned to A, inside A's portal
#   o_sal / o_agc = sales / agency agent of another partner, inside its own client B
# fmt: off
MATRIX: dict[tuple[str, str], tuple[Expected, ...]] = {
    #          anon    member  admin   o_adm   sales   o_sal   agncy   o_agc   suppt   viewg   billg
    ("static", "GET"):
        (200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200),
    ("main.healthz", "GET"):
        (200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200),
    ("main.index", "GET"):
        (LOGIN,  PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, STAFF,  PORTAL, STAFF),
    # The language switch follows a local next (/contracts) for everyone.
    ("main.language", "POST"):
        (PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL),
    # Leaving: agents go back to their clients, viewing staff to the organisation's page.
    ("main.leave", "POST"):
        (LOGIN,  HOME,   HOME,   HOME,   CLIENT, CLIENT, CLIENT, CLIENT, HOME,   ORG_A,  HOME),
    ("auth.login", "GET"):
        (200,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    # Anonymous signs in with A's administrator's password; the signed-in are sent home.
    ("auth.login", "POST"):
        (HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    ("auth.logout", "POST"):
        (LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN),
    # staff viewing as a customer never change credentials (403). The form sent has a
    # wrong current password, so everyone else reaches the service and gets 422.
    ("account.password", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    200,    403,    200),
    ("account.password", "POST"):
        (LOGIN,  422,    422,    422,    422,    422,    422,    422,    422,    403,    422),
    # The customer's portal: own organisation, entered client, viewed.
    ("contracts.home", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    404,    200,    404),
    ("contracts.detail", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    200,    404,    404,    200,    404),
    # the customer's administrators and the provider see access records; agents don't.
    ("contracts.access_records", "GET"):
        (LOGIN,  403,    200,    200,    403,    403,    403,    403,    404,    200,    404),
    # agents only. Entering A again while inside A is refused with a message (HOME).
    ("partners.clients", "GET"):
        (LOGIN,  404,    404,    404,    200,    200,    200,    200,    404,    404,    404),
    ("partners.enter", "POST"):
        (LOGIN,  404,    404,    404,    HOME,   404,    HOME,   404,    404,    404,    404),
    # The back office: staff only; 403 while viewing as a customer; billing staff
    # may look but neither onboard nor view as a customer.
    ("staff.organisations", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200),
    ("staff.onboard", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403),
    ("staff.onboard", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    201,    403,    403),
    ("staff.organisation", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200),
    ("staff.view_as", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    PORTAL, 403,    403),
    ("staff.contract", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200),
}
# fmt: on

MISSING_ID = 987_654


def _request(client: FlaskClient, method: str, url: str, data: dict[str, object] | None):
    return client.open(url, method=method, data=data if method == "POST" else None)


def _check(response, expected: Expected, world: World, context: str) -> None:
    if isinstance(expected, Redirect):
        assert response.status_code == 302, f"{context}: {response.status_code}, expected 302"
        path = urlsplit(response.headers["Location"]).path
        assert path == expected.path.format(org_a=world.org_a), f"{context}: to {path}"
    else:
        assert response.status_code == expected, (
            f"{context}: {response.status_code}, expected {expected}"
        )


def test_every_route_is_in_the_matrix(shared):
    """A route without a matrix entry, or an entry for a route that is gone, fails here."""
    routes = app_routes(shared.app)
    assert routes - MATRIX.keys() == set(), "routes missing from MATRIX"
    assert MATRIX.keys() - routes == set(), "MATRIX names routes that no longer exist"
    for key, row in MATRIX.items():
        assert len(row) == len(ACTOR_KINDS), f"{key}: one expectation per actor kind"


@pytest.mark.parametrize("actor", ACTOR_KINDS)
@pytest.mark.parametrize(("endpoint", "method"), list(MATRIX))
def test_permission_matrix(shared, fixed_clock, endpoint, method, actor):
    """R-70..R-73: what each actor gets from each route, with org A's objects."""
    app, world = shared.app, shared.world
    expected = MATRIX[(endpoint, method)][ACTOR_KINDS.index(actor)]
    client = app.test_client()
    become(app, client, world, actor)
    url = url_of(app, endpoint, contract_id=world.contract_a, organisation_id=world.org_a)
    data = post_data(endpoint, world, actor) if method == "POST" else None
    _check(_request(client, method, url, data), expected, world, f"{actor} {method} {url}")


# --- ids of another organisation reveal nothing ------------------------------------------

# Routes that take an id, with what each actor gets for org B's object (contract_b, org_b)
# when it may see it. Everyone else gets exactly what a nonexistent id gives: 404
# (anonymous is sent to sign in first; staff viewing as a customer get 403 from every
# back-office route whatever the id, R-72).
# Agents of B's partners are already inside B, so entering B again is refused with a
# message (HOME).
MAY_SEE_OTHER: dict[tuple[str, str], dict[str, Expected]] = {
    ("contracts.detail", "GET"): {
        "other_admin": 200,
        "other_sales_agent": 200,
        "other_agency_agent": 200,
    },
    ("partners.enter", "POST"): {"other_sales_agent": HOME, "other_agency_agent": HOME},
    ("staff.organisation", "GET"): {"support": 200, "billing": 200},
    ("staff.view_as", "POST"): {"support": PORTAL, "billing": 403},
    ("staff.contract", "GET"): {"support": 200, "billing": 200},
}


def _refused(endpoint: str, actor: str) -> Expected:
    if actor == "anonymous":
        return LOGIN
    if actor == "support_viewing" and endpoint.startswith("staff."):
        return 403
    return 404


def test_every_route_with_an_id_is_in_the_other_organisation_table(shared):
    """A new route that takes an id fails here until its row of MAY_SEE_OTHER is written."""
    with_ids = {
        (rule.endpoint, method)
        for rule in shared.app.url_map.iter_rules()
        if rule.arguments - {"filename"}  # static files have a name, not an id
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert with_ids == MAY_SEE_OTHER.keys()


@pytest.mark.parametrize("target", ["other_organisation", "nonexistent"])
@pytest.mark.parametrize("actor", ACTOR_KINDS)
@pytest.mark.parametrize(("endpoint", "method"), list(MAY_SEE_OTHER))
def test_other_organisations_ids_answer_404(shared, fixed_clock, endpoint, method, actor, target):
    """R-70/R-71: org B's contract or organisation id answers as if it did not exist."""
    app, world = shared.app, shared.world
    if target == "other_organisation":
        ids = {"contract_id": world.contract_b, "organisation_id": world.org_b}
        expected = MAY_SEE_OTHER[(endpoint, method)].get(actor, _refused(endpoint, actor))
    else:
        ids = {"contract_id": MISSING_ID, "organisation_id": MISSING_ID}
        expected = _refused(endpoint, actor)
    client = app.test_client()
    become(app, client, world, actor)
    url = url_of(app, endpoint, **ids)
    data = post_data(endpoint, world, actor, org="b") if method == "POST" else None
    _check(_request(client, method, url, data), expected, world, f"{actor} {method} {url}")


def _entry_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(AccountEntry))


def test_matrix_actors_are_who_they_claim(shared, fixed_clock):
    """The matrix is only as good as its actors: check each is inside the portal it should be."""
    app, world = shared.app, shared.world
    inside = {
        "sales_agent": world.org_a,
        "agency_agent": world.org_a,
        "other_sales_agent": world.org_b,
        "other_agency_agent": world.org_b,
        "support_viewing": world.org_a,
    }
    for actor in ACTOR_KINDS:
        client = app.test_client()
        before = _entry_count(app)
        become(app, client, world, actor)
        assert _entry_count(app) == before + (1 if actor in inside else 0), actor
        page = client.get("/contracts")
        if actor in inside:
            assert 'data-testid="entry-banner"' in page.get_data(as_text=True), actor
        with app.app_context():
            entry = db.session.scalar(db.select(AccountEntry).order_by(AccountEntry.id.desc()))
            if actor in inside:
                assert entry.organisation_id == inside[actor], actor
                assert entry.ended_at is None, actor
