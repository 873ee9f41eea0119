"""The permission matrix's rows for I-NET SERVICE registration routes (issue 12).

Joined into tests/web/test_permission_matrix.py: MATRIX (one expectation per actor kind, in
the order of tests.factories.ACTOR_KINDS, production staff last), MAY_SEE_OTHER (what each
actor gets for org B's object, when it is not what a nonexistent id gives) and post_data
(form data for each POST route, for org A or B, without a CSRF token).
"""

from __future__ import annotations

from tests.factories import World
from tests.web.expect import Expected

# fmt: off
MATRIX: dict[tuple[str, str], tuple[Expected, ...]] = {
    #          anon    member  admin   o_adm   sales   o_sal   agncy   o_agc   suppt   viewg   billg   prodn
}
# fmt: on

MAY_SEE_OTHER: dict[tuple[str, str], dict[str, Expected]] = {}


def post_data(endpoint: str, world: World, actor: str, *, org: str = "a") -> dict[str, object]:
    forms: dict[str, dict[str, object]] = {}
    return forms[endpoint]
