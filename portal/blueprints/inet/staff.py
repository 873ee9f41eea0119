"""I-NET SERVICE: registrations in the back office (issue 12). Placeholder routes: the
registration helper replaces them."""

from flask import abort

from portal.blueprints.inet import staff_bp


@staff_bp.get("/registrations")
def registrations():
    abort(404)
