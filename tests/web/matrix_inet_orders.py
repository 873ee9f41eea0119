"""The permission matrix's rows for I-NET SERVICE orders routes (issue 12).

Joined into tests/web/test_permission_matrix.py: MATRIX (one expectation per actor kind, in
the order of tests.factories.ACTOR_KINDS, production staff last), MAY_SEE_OTHER (what each
actor gets for org B's object, when it is not what a nonexistent id gives) and post_data
(form data for each POST route, for org A or B, without a CSRF token).

The order is A's (or B's) confirmed order, placed by its administrator (tests/web/routes.py,
inet_world): the cancel window is open (R-82). Nothing here changes it: the cancellation and
production's steps stop at their confirmation page (200) without `confirmed`; sending,
changing and withdrawing are refused for a confirmed order (409); a new order without
holders is refused (422).
"""

from __future__ import annotations

from tests.factories import World
from tests.web.expect import LOGIN, Expected

# fmt: off
MATRIX: dict[tuple[str, str], tuple[Expected, ...]] = {
    #          anon    member  admin   o_adm   sales   o_sal   agncy   o_agc   suppt   viewg   billg   prodn   p_adm
    # the order list for administrators, agents (the orders they placed) and staff
    # viewing as the customer (without holders' names or photos); not members.
    ("inet.orders", "GET"):
        (LOGIN,  403,    200,    200,    200,    200,    200,    200,    404,    200,    404,    404,    200),
    # Administrators and agents for a client place orders; staff viewing never.
    ("inet.new_order", "GET"):
        (LOGIN,  403,    200,    200,    200,    200,    200,    200,    404,    403,    404,    404,    200),
    ("inet.new_order", "POST"):
        (LOGIN,  403,    422,    422,    422,    422,    422,    422,    404,    403,    404,    404,    422),
    # A's order was placed by A's administrator: A's agents do not find it.
    ("inet.order", "GET"):
        (LOGIN,  404,    200,    404,    404,    404,    404,    404,    404,    200,    404,    404,    404),
    # A confirmed order is no draft: it is neither changed, sent again nor withdrawn (409).
    ("inet.edit_order", "GET"):
        (LOGIN,  404,    409,    404,    404,    404,    404,    404,    404,    403,    404,    404,    404),
    ("inet.edit_order", "POST"):
        (LOGIN,  404,    409,    404,    404,    404,    404,    404,    404,    403,    404,    404,    404),
    ("inet.submit_order", "POST"):
        (LOGIN,  404,    409,    404,    404,    404,    404,    404,    404,    403,    404,    404,    404),
    ("inet.withdraw_order", "GET"):
        (LOGIN,  404,    409,    404,    404,    404,    404,    404,    404,    403,    404,    404,    404),
    ("inet.withdraw_order", "POST"):
        (LOGIN,  404,    409,    404,    404,    404,    404,    404,    404,    403,    404,    404,    404),
    # only the customer's own administrators cancel, after a confirmation page.
    ("inet.cancel_order", "GET"):
        (LOGIN,  404,    200,    404,    404,    404,    404,    404,    404,    403,    404,    404,    404),
    ("inet.cancel_order", "POST"):
        (LOGIN,  404,    200,    404,    404,    404,    404,    404,    404,    403,    404,    404,    404),
    # The production back office: production staff only; other staff 403, staff
    # viewing as a customer 403, customers and agents 404.
    ("production.queue", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    403,    200,    404),
    ("production.order", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    403,    200,    404),
    ("production.photo", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    403,    200,    404),
    ("production.proof_sheet", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    403,    200,    404),
    # Accepting e-mails the customer: it stops at its confirmation page (200).
    ("production.step", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    403,    200,    404),
}
# fmt: on

_B_ADMIN = "other_admin"
# Staff see every organisation's orders in the back office: "another organisation" is not a
# thing there; staff viewing A's portal get 403 from the back office whatever the id.
_BACK_OFFICE = {"support": 403, "billing": 403, "support_viewing": 403, "production": 200}

MAY_SEE_OTHER: dict[tuple[str, str], dict[str, Expected]] = {
    # B's order, placed by B's administrator: B's administrator alone finds it; B's agents
    # placed none of B's orders.
    ("inet.order", "GET"): {_B_ADMIN: 200},
    ("inet.edit_order", "GET"): {_B_ADMIN: 409},
    ("inet.edit_order", "POST"): {_B_ADMIN: 409},
    ("inet.submit_order", "POST"): {_B_ADMIN: 409},
    ("inet.withdraw_order", "GET"): {_B_ADMIN: 409},
    ("inet.withdraw_order", "POST"): {_B_ADMIN: 409},
    ("inet.cancel_order", "GET"): {_B_ADMIN: 200},
    ("inet.cancel_order", "POST"): {_B_ADMIN: 200},
    ("production.order", "GET"): _BACK_OFFICE,
    ("production.photo", "GET"): _BACK_OFFICE,
    ("production.proof_sheet", "GET"): _BACK_OFFICE,
    ("production.step", "POST"): _BACK_OFFICE,
}


def post_data(endpoint: str, world: World, actor: str, *, org: str = "a") -> dict[str, object]:
    forms: dict[str, dict[str, object]] = {
        # No holder ticked and no design: refused next to the fields (422), nothing stored.
        "inet.new_order": {},
        "inet.edit_order": {},
        "inet.submit_order": {"confirmed": "yes"},
        "inet.withdraw_order": {},
        # Without `confirmed`: the confirmation page (200); the order stays confirmed.
        "inet.cancel_order": {},
        "production.step": {"action": "accept"},
    }
    return forms[endpoint]
