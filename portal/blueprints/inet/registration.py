"""I-NET SERVICE: the customer's registration pages (issue 12). Placeholder routes: the
registration helper replaces them."""

from flask import abort

from portal.blueprints.inet import bp


@bp.get("/")
def home():
    abort(404)
