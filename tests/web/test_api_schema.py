"""Issue 13: the API answers every request Schemathesis makes from its own OpenAPI document,
valid or not, with no 5xx and within the document (status codes, JSON bodies, headers).

Schemathesis's pytest integration, against the WSGI app with the shared world: each operation
is called as organisation A's administrator (who may use every route but the staff-only
usage reading) and as support staff (who may record usage), each with a bounded number of
generated examples so that the test fits the suite.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import PositiveDataAcceptanceConfig

from portal.blueprints.api import openapi
from tests.web.routes import bearer, make_api_tokens

EXAMPLES = 15  # per operation and actor: 17 operations, about 500 calls in all


@pytest.fixture(scope="module")
def tokens(shared) -> dict[str, str]:
    TARGET.app = shared.app
    return make_api_tokens(shared.app, shared.world)


# The document the API serves at /api/v1/openapi.json (a test elsewhere checks they agree).
class _ModuleApp:
    """The WSGI app Schemathesis calls in-process: this module's app, once it is built."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


TARGET = _ModuleApp()
schema = schemathesis.openapi.from_dict(openapi.document())
schema.app = TARGET
schema.config.update(base_url="http://localhost/api/v1")
# A request the document allows may still be refused by a rule, with the documented 422 and
# the field it concerns (an incident that did not touch the contract, a date too late): the
# check that valid data is accepted counts that as an answer, not a failure.
schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
    expected_statuses=[*PositiveDataAcceptanceConfig().expected_statuses, "422"]
)

BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # the same examples on every run and machine
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@schema.parametrize()
@BOUNDED
def test_an_administrator_gets_an_answer_within_the_document_for_every_request(
    case, shared, tokens, fixed_clock
):
    case.call_and_validate(headers=bearer(tokens, "admin"))


@schema.parametrize()
@BOUNDED
def test_staff_get_an_answer_within_the_document_for_every_request(
    case, shared, tokens, fixed_clock
):
    case.call_and_validate(headers=bearer(tokens, "support"))
