"""I-NET SERVICE: the production queue (issue 12). Placeholder routes: the orders helper
replaces them."""

from flask import abort

from portal.blueprints.inet import production_bp


@production_bp.get("/orders")
def queue():
    abort(404)
