"""The permission matrix's rows for I-NET SERVICE holders routes (issue 12).

Joined into tests/web/test_permission_matrix.py: MATRIX (one expectation per actor kind, in
the order of tests.factories.ACTOR_KINDS, production staff last), MAY_SEE_OTHER (what each
actor gets for org B's object, when it is not what a nonexistent id gives) and post_data
(form data for each POST route, for org A or B, without a CSRF token).

R-85: card holders and their photos are for the organisation's own administrators only. A
page without an id tells anyone else inside the portal that it is not for them (403: members,
agents, staff viewing as the customer); to them every holder id is 404, like another
organisation's, so ids reveal nothing. The back office has no holder pages (404). The world's
holder (route_ids' holder_id) is on a confirmed order, so its removal is refused (409); the
forms sent are refused (422) or change nothing (the same details), so the world stays as it
was. Imports are named by a form field or query (`staged`), not the path: without one, the
preview sends back to the upload page and importing or cancelling back to the list.
"""

from __future__ import annotations

from tests.factories import World
from tests.web.expect import LOGIN, Expected, Redirect

HOLDERS = Redirect("/id-cards/holders")
UPLOAD = Redirect("/id-cards/holders/import")

# fmt: off
MATRIX: dict[tuple[str, str], tuple[Expected, ...]] = {
    #          anon    member  admin   o_adm   sales   o_sal   agncy   o_agc   suppt   viewg   billg   prodn   p_adm
    ("inet.holders", "GET"):
        (LOGIN,  403,    200,    200,    403,    403,    403,    403,    404,    403,    404,    404,    403),
    ("inet.new_holder", "GET"):
        (LOGIN,  403,    200,    200,    403,    403,    403,    403,    404,    403,    404,    404,    403),
    # The name sent is a formula: refused (422) for those who may add.
    ("inet.new_holder", "POST"):
        (LOGIN,  403,    422,    422,    403,    403,    403,    403,    404,    403,    404,    404,    403),
    ("inet.edit_holder", "GET"):
        (LOGIN,  404,    200,    404,    404,    404,    404,    404,    404,    404,    404,    404,    404),
    # The holder's own details sent again: saved, nothing changed.
    ("inet.edit_holder", "POST"):
        (LOGIN,  404,    HOLDERS, 404,   404,    404,    404,    404,    404,    404,    404,    404,    404),
    ("inet.change_photo", "GET"):
        (LOGIN,  404,    200,    404,    404,    404,    404,    404,    404,    404,    404,    404,    404),
    # No photo sent: refused (422).
    ("inet.change_photo", "POST"):
        (LOGIN,  404,    422,    404,    404,    404,    404,    404,    404,    404,    404,    404,    404),
    ("inet.holder_photo", "GET"):
        (LOGIN,  404,    200,    404,    404,    404,    404,    404,    404,    404,    404,    404,    404),
    ("inet.remove_holder", "POST"):
        (LOGIN,  404,    409,    404,    404,    404,    404,    404,    404,    404,    404,    404,    404),
    ("inet.import_holders", "GET"):
        (LOGIN,  403,    200,    200,    403,    403,    403,    403,    404,    403,    404,    404,    403),
    # No CSV sent: refused (422), nothing kept.
    ("inet.import_holders", "POST"):
        (LOGIN,  403,    422,    422,    403,    403,    403,    403,    404,    403,    404,    404,    403),
    ("inet.import_preview", "GET"):
        (LOGIN,  403,    UPLOAD, UPLOAD, 403,    403,    403,    403,    404,    403,    404,    404,    403),
    ("inet.run_import", "POST"):
        (LOGIN,  403,    HOLDERS, HOLDERS, 403,  403,    403,    403,    404,    403,    404,    404,    403),
    ("inet.cancel_import", "POST"):
        (LOGIN,  403,    HOLDERS, HOLDERS, 403,  403,    403,    403,    404,    403,    404,    404,    403),
}
# fmt: on

# B's holder: B's administrator gets what A's gets for A's (B's holder is on B's confirmed
# order too); everyone else what a nonexistent id gives.
MAY_SEE_OTHER: dict[tuple[str, str], dict[str, Expected]] = {
    ("inet.edit_holder", "GET"): {"other_admin": 200},
    ("inet.edit_holder", "POST"): {"other_admin": HOLDERS},
    ("inet.change_photo", "GET"): {"other_admin": 200},
    ("inet.change_photo", "POST"): {"other_admin": 422},
    ("inet.holder_photo", "GET"): {"other_admin": 200},
    ("inet.remove_holder", "POST"): {"other_admin": 409},
}


def post_data(endpoint: str, world: World, actor: str, *, org: str = "a") -> dict[str, object]:
    # The world's holder as tests.web.routes.inet_world and tests.factories.add_card_holder
    # make it.
    holder = {
        "name": "山田 太郎",
        "name_kana": "ヤマダ タロウ",
        "employee_number": f"E-{org.upper()}-001",
        "department": "総務部",
        "title": "課長",
    }
    forms: dict[str, dict[str, object]] = {
        "inet.new_holder": {
            **holder,
            "name": '=HYPERLINK("http://evil.example")',
            "employee_number": f"M-{actor}",
        },
        "inet.edit_holder": holder,
        "inet.change_photo": {},
        "inet.remove_holder": {},
        "inet.import_holders": {},
        "inet.run_import": {},
        "inet.cancel_import": {},
    }
    return forms[endpoint]
