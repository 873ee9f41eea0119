"""The permission matrix's rows for I-NET SERVICE registration routes (issue 12).

Joined into tests/web/test_permission_matrix.py: MATRIX (one expectation per actor kind, in
the order of tests.factories.ACTOR_KINDS, production staff last), MAY_SEE_OTHER (what each
actor gets for org B's object, when it is not what a nonexistent id gives) and post_data
(form data for each POST route, for org A or B, without a CSRF token).

Every answer here is the same whether or not the shared world has registered A and B yet
(other parts' routes register them): forms are refused (422) before the registration is
looked up, ending stops at its confirmation page (200), and staff's cancelling of a dormant
registration finds none (409: A's and B's are open and used, or there is none).
"""

from __future__ import annotations

from tests.factories import ACTOR_KINDS, World
from tests.web.expect import HOME, LOGIN, Expected

# fmt: off
MATRIX: dict[tuple[str, str], tuple[Expected, ...]] = {
    #          anon    member  admin   o_adm   sales   o_sal   agncy   o_agc   suppt   viewg   billg   prodn   p_adm
    # administrators, agents inside a client's portal and staff viewing as the
    # customer see the registration page (or the application); members get 403.
    ("inet.home", "GET"):
        (LOGIN,  403,    200,    200,    200,    200,    200,    200,    404,    200,    404,    404,    200),
    # Administrators and agents of both kinds apply and change the contacts; staff
    # viewing as the customer may not. The form sent is invalid: 422 for those who may.
    ("inet.apply", "POST"):
        (LOGIN,  403,    422,    422,    422,    422,    422,    422,    404,    403,    404,    404,    422),
    ("inet.contacts", "POST"):
        (LOGIN,  403,    422,    422,    422,    422,    422,    422,    404,    403,    404,    404,    422),
    # Only the customer's own administrators end it; the form sent stops at the confirmation.
    ("inet.end", "POST"):
        (LOGIN,  403,    200,    200,    403,    403,    403,    403,    404,    403,    404,    404,    403),
    # The public application is for signed-out browsers; whoever is signed in is sent home.
    # The application sent lacks the consent (422), so nothing is stored or e-mailed.
    ("inet_public.apply", "GET"):
        (200,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    ("inet_public.apply", "POST"):
        (422,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    ("inet_public.sent", "GET"):
        (200,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    # The e-mailed link (here: a password reset's token, which is no application's): 404 for
    # a signed-out browser, home for the signed-in.
    ("inet_public.verify", "GET"):
        (404,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    ("inet_public.verify", "POST"):
        (404,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    # The back office: every staff role reads; support staff (and staff
    # administrators) register and cancel dormant registrations. Registering sends an invalid
    # form (422); cancelling finds no dormant registration (409).
    ("staff_inet.registrations", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff_inet.organisation", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff_inet.register", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    422,    403,    403,    403,    404),
    ("staff_inet.cancel", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    409,    403,    403,    403,    404),
}
# fmt: on

_SIGNED_IN = tuple(kind for kind in ACTOR_KINDS if kind != "anonymous")

MAY_SEE_OTHER: dict[tuple[str, str], dict[str, Expected]] = {
    # A link is not an organisation's: B's user's token is no application's either.
    ("inet_public.verify", "GET"): {**dict.fromkeys(_SIGNED_IN, HOME), "anonymous": 404},
    ("inet_public.verify", "POST"): {**dict.fromkeys(_SIGNED_IN, HOME), "anonymous": 404},
    # Staff see every organisation's registration: "another organisation" is not a thing here.
    # Staff viewing as a customer get 403 from the back office whatever the id.
    ("staff_inet.organisation", "GET"): {
        "support": 200,
        "billing": 200,
        "production": 200,
        "support_viewing": 403,
    },
    ("staff_inet.register", "POST"): {
        "support": 422,
        "billing": 403,
        "production": 403,
        "support_viewing": 403,
    },
    ("staff_inet.cancel", "POST"): {
        "support": 409,
        "billing": 403,
        "production": 403,
        "support_viewing": 403,
    },
}


def post_data(endpoint: str, world: World, actor: str, *, org: str = "a") -> dict[str, object]:
    contacts = {
        "application_contact_name": f"Matrix {actor}",
        "application_contact_email": "not an e-mail",
        "operations_manager_name": "Operations",
        "operations_manager_email": f"ops-{actor}@{org}.example",
    }
    forms: dict[str, dict[str, object]] = {
        "inet.apply": {**contacts, "consent": "y"},
        "inet.contacts": contacts,
        "inet.end": {},  # no `confirmed`: the confirmation page
        "inet_public.apply": {
            "legal_name": "Matrix K.K.",
            "legal_name_kana": "マトリクス",
            "postal_code": "100-0001",
            "address": "Chiyoda-ku, Tokyo",
            "phone": "03-1234-5678",
            **contacts,
            "admin_name": "Matrix Admin",
            "admin_email": f"matrix-{actor}@{org}.example",
            "locale": "en",
        },
        "inet_public.verify": {"new_password": "a brand new passphrase", "confirm": "other"},
        "staff_inet.register": contacts,
        "staff_inet.cancel": {},
    }
    return forms[endpoint]
