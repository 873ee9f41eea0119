"""The permission matrix's rows for the partner people routes (issue 14).

Joined into tests/web/test_permission_matrix.py: MATRIX (one expectation per actor kind, in
the order of tests.factories.ACTOR_KINDS, the partner administrator last), MAY_SEE_OTHER (what
each actor gets for org B's side object, when it is not what a nonexistent id gives),
post_data (form data for each POST route, for org A or B, without a CSRF token) and
extra_ids (the ids a route of this part takes, for org A's side or B's).

Nothing here changes the shared world but an invitation e-mail: inviting names an address in
use (422), removing stops at its confirmation page (200), and the invitee whose invitation is
sent again (302) is made once per world by extra_ids, an agent of A's sales agent company (A's
side) or of the other sales agent company (B's side).
"""

from __future__ import annotations

from flask import Flask

from tests.factories import World
from tests.web.expect import LOGIN, Expected, Redirect

PEOPLE = Redirect("/partner/people")

# fmt: off
MATRIX: dict[tuple[str, str], tuple[Expected, ...]] = {
    #          anon    member  admin   o_adm   sales   o_sal   agncy   o_agc   suppt   viewg   billg   prodn   p_adm
    # a partner company's administrators manage its agents (inside a client's portal
    # too, as their client list); its other agents get 403; nobody else finds these pages.
    ("partners.people", "GET"):
        (LOGIN,  404,    404,    404,    403,    403,    403,    403,    404,    404,    404,    404,    200),
    ("partners.invite_agent", "POST"):
        (LOGIN,  404,    404,    404,    403,    403,    403,    403,    404,    404,    404,    404,    422),
    ("partners.activity", "GET"):
        (LOGIN,  404,    404,    404,    403,    403,    403,    403,    404,    404,    404,    404,    200),
    # A's side: an invitee of A's sales agent company. Its agents find him but only its
    # administrator acts; the agency's and the other partners' agents get 404 (another
    # company's agent). Removing stops at its confirmation page.
    ("partners.resend_agent_invitation", "POST"):
        (LOGIN,  404,    404,    404,    403,    404,    404,    404,    404,    404,    404,    404,    PEOPLE),
    ("partners.remove_agent", "POST"):
        (LOGIN,  404,    404,    404,    403,    404,    404,    404,    404,    404,    404,    404,    200),
}
# fmt: on

MAY_SEE_OTHER: dict[tuple[str, str], dict[str, Expected]] = {
    # B's side: an invitee of the other sales agent company, found by its own agent (who is
    # no administrator: 403); A's partner administrator gets 404 like everyone else.
    ("partners.resend_agent_invitation", "POST"): {"other_sales_agent": 403, "partner_admin": 404},
    ("partners.remove_agent", "POST"): {"other_sales_agent": 403, "partner_admin": 404},
}


def post_data(endpoint: str, world: World, actor: str, *, org: str = "a") -> dict[str, object]:
    forms: dict[str, dict[str, object]] = {
        # An address in use (the sales agent's): refused next to the field (422), nothing made.
        "partners.invite_agent": {
            "name": f"Invited by {actor}",
            "email": world.emails["sales_agent"],
            "role": "agent",
            "locale": "en",
        },
        "partners.resend_agent_invitation": {},
        "partners.remove_agent": {},  # no `confirmed`: the confirmation page
    }
    return forms[endpoint]


def extra_ids(app: Flask, world: World, endpoint: str, *, org: str = "a") -> dict[str, int]:
    """An invitee of A's sales agent company (org "a") or of the other sales agent company
    (org "b"), invited by the provider's support staff (made once per world)."""
    if not endpoint.startswith(("partners.resend_agent", "partners.remove_agent")):
        return {}
    key = f"partner_invitee_{org}"
    if key not in world.ids:
        from portal.extensions import db
        from portal.models import PartnerCompany, PartnerRole, User
        from portal.permissions import Actor
        from portal.services import partner_people

        partner_id = world.ids["sales_partner" if org == "a" else "other_sales_partner"]
        with app.test_request_context():
            invitee = partner_people.invite(
                Actor(db.session.get(User, world.ids["support"])),
                db.session.get(PartnerCompany, partner_id),
                name=f"Matrix invitee {org.upper()}",
                email=f"invitee@matrix-{org}.partner.example",
                role=PartnerRole.AGENT,
                locale="en",
            )
            db.session.commit()
            world.ids[key] = invitee.id
    return {"user_id": world.ids[key]}
