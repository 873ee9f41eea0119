"""The permission matrix's rows for the partner applications routes (issue 14).

Joined into tests/web/test_permission_matrix.py: MATRIX (one expectation per actor kind, in
the order of tests.factories.ACTOR_KINDS, the partner administrator last), MAY_SEE_OTHER (what
each actor gets for org B's side object, when it is not what a nonexistent id gives),
post_data (form data for each POST route, for org A or B, without a CSRF token) and
extra_ids (the ids a route of this part takes, for org A's side or B's).

Nothing here changes the shared world: the application sent is refused (422, no company
name), and withdrawing, approving and refusing stop at their confirmation page (200), so the
pending applications made once by extra_ids stay pending.
"""

from __future__ import annotations

from datetime import date

from flask import Flask

from tests.factories import World
from tests.web.expect import LOGIN, Expected

# fmt: off
MATRIX: dict[tuple[str, str], tuple[Expected, ...]] = {
    #          anon    member  admin   o_adm   sales   o_sal   agncy   o_agc   suppt   viewg   billg   prodn   p_adm
    # agents of both kinds apply for new clients (inside a client's portal too, as for
    # their client list); nobody else finds these pages. The form sent is invalid: 422.
    ("partners.applications", "GET"):
        (LOGIN,  404,    404,    404,    200,    200,    200,    200,    404,    404,    404,    404,    200),
    ("partners.new_application", "GET"):
        (LOGIN,  404,    404,    404,    200,    200,    200,    200,    404,    404,    404,    404,    200),
    ("partners.new_application", "POST"):
        (LOGIN,  404,    404,    404,    422,    422,    422,    422,    404,    404,    404,    404,    422),
    # A's side: an application of A's sales agent company; only its agents find it (another
    # partner's, the agency's too, answers 404). Withdrawing stops at its confirmation page.
    ("partners.application", "GET"):
        (LOGIN,  404,    404,    404,    200,    404,    404,    404,    404,    404,    404,    404,    200),
    ("partners.withdraw_application", "POST"):
        (LOGIN,  404,    404,    404,    200,    404,    404,    404,    404,    404,    404,    404,    200),
    # The back office: every staff role looks; support staff (and staff administrators)
    # approve and refuse, each stopping at its confirmation page (200); 403 while viewing as
    # a customer.
    ("staff.partner_applications", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff.partner_application", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff.approve_application", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff.refuse_application", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
}
# fmt: on

MAY_SEE_OTHER: dict[tuple[str, str], dict[str, Expected]] = {
    # B's side: the other sales agent company's application, found by its own agent only.
    ("partners.application", "GET"): {"other_sales_agent": 200},
    ("partners.withdraw_application", "POST"): {"other_sales_agent": 200},
    # Staff see every partner's applications: "another partner's" is not a thing here.
    ("staff.partner_application", "GET"): {"support": 200, "billing": 200, "production": 200},
    ("staff.approve_application", "POST"): {"support": 200, "billing": 403, "production": 403},
    ("staff.refuse_application", "POST"): {"support": 200, "billing": 403, "production": 403},
}


def post_data(endpoint: str, world: World, actor: str, *, org: str = "a") -> dict[str, object]:
    forms: dict[str, dict[str, object]] = {
        # No company name: refused next to the field (422), nothing stored or e-mailed.
        "partners.new_application": {
            "legal_name": "",
            "legal_name_kana": "マトリクス",
            "postal_code": "100-0001",
            "address": "Chiyoda-ku, Tokyo",
            "phone": "03-1234-5678",
            "billing_email": f"billing-{actor}@{org}.example",
            "locale": "en",
            "admin_name": "Matrix Admin",
            "admin_email": f"matrix-{actor}@{org}.example",
            "plan_id": world.ids["plan_small"],
            "service_start": "2027-04-01",
        },
        # Without `confirmed`: the confirmation pages (200).
        "partners.withdraw_application": {},
        "staff.approve_application": {},
        "staff.refuse_application": {"reason": f"Refused in the matrix by {actor}"},
    }
    return forms[endpoint]


def extra_ids(app: Flask, world: World, endpoint: str, *, org: str = "a") -> dict[str, int]:
    """A pending application of A's sales agent company (org "a") or of the other sales agent
    company (org "b"), sent by its agent (made once per world)."""
    key = f"partner_application_{org}"
    if key not in world.ids:
        from portal.extensions import db
        from portal.models import PartnerApplication, User

        agent = "sales_agent" if org == "a" else "other_sales_agent"
        with app.app_context():
            user = db.session.get(User, world.ids[agent])
            application = PartnerApplication(
                partner_id=user.partner_id,
                submitted_by_id=user.id,
                legal_name=f"Matrix {org.upper()} K.K.",
                legal_name_kana="マトリクス",
                billing_email=f"billing@matrix-{org}.example",
                locale="en",
                admin_name="Matrix Admin",
                admin_email=f"admin@matrix-{org}.example",
                plan_id=world.ids["plan_small"],
                service_start=date(2027, 4, 1),
            )
            db.session.add(application)
            db.session.commit()
            world.ids[key] = application.id
    return {"application_id": world.ids[key]}
