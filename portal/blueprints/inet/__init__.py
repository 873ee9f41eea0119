"""I-NET SERVICE (R-80..R-85): the customer's pages, the public application, the back office's
registrations and the production queue. Four blueprints, one package; each module below adds
its routes to one of them."""

from flask import Blueprint

# The customer's portal: registration, card holders and photos, orders.
bp = Blueprint("inet", __name__, url_prefix="/id-cards")
# Anyone: the public application with e-mail verification.
public_bp = Blueprint("inet_public", __name__, url_prefix="/i-net")
# Support staff: registrations, onboarding and dormant registrations.
staff_bp = Blueprint("staff_inet", __name__, url_prefix="/staff/i-net")
# Production staff: the order queue, order steps and proof sheets.
production_bp = Blueprint("production", __name__, url_prefix="/staff/production")

BLUEPRINTS = (bp, public_bp, staff_bp, production_bp)


def load_routes() -> None:
    """Import the modules that add routes to the blueprints above."""
    from portal.blueprints.inet import (  # noqa: F401
        holders,
        orders,
        production,
        public,
        registration,
        staff,
    )
