"""Home routing, the language switch, leaving a customer's portal, health check."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.exceptions import HTTPException

from portal.blueprints.main.forms import LanguageForm, LeaveForm
from portal.blueprints.terms.views import pending_terms
from portal.clock import clock
from portal.extensions import db
from portal.models import EntryKind
from portal.permissions import can_use_customer_portal, is_agent, is_staff
from portal.services import entries, home
from portal.web import client_ip, current_actor, safe_next

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    """The home page: what needs doing, for the kind of user signed in."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    actor = current_actor()
    today, now = clock.today(), clock.now()
    if can_use_customer_portal(actor):
        found = home.for_customer(actor, today=today, now=now, outstanding_terms=pending_terms())
        return render_template("main/home_customer.html", home=found)
    if is_staff(actor):
        return render_template("main/home_staff.html", home=home.for_staff(today))
    if is_agent(actor):
        query = home.search_text(request.args.get("q"))
        error = ""
        if len(query) > home.MAX_SEARCH:
            error = _("Use at most %(max)d characters.", max=home.MAX_SEARCH)
        found = home.for_agent(actor, today=today, now=now, query="" if error else query)
        page = render_template("main/home_agent.html", home=found, q=query, error=error)
        return page, 422 if error else 200
    abort(404)


@bp.post("/language")
def language():
    """Switch the language and go back to the page being read: its address if a GET answers
    it on this site, else the page the switch was used on if that is one, else home. A page
    reached by a POST (a form shown again with its errors) is never returned to (it is 405)."""
    form = LanguageForm()
    if form.validate_on_submit():
        session["locale"] = form.locale.data
        if current_user.is_authenticated and not current_actor().is_staff_view:
            current_user.locale = form.locale.data
            db.session.commit()
    target = readable_page(form.next.data) or readable_page(_referrer_path())
    return redirect(target or url_for("main.index"))


# Addresses a GET answers that are not pages to read (files, JSON, the health check).
_NOT_PAGES = {"static", "main.healthz"}


def readable_page(target: str | None) -> str | None:
    """`target` if it is a path on this site that the URL map answers for GET with a page,
    else None; the language switch returns only to such a page."""
    path = safe_next(target, "")
    if not path:
        return None
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        endpoint, _args = adapter.match(urlsplit(path).path, method="GET")
    except HTTPException:  # no such page, not a GET (405), or a redirect to another address
        return None
    if endpoint in _NOT_PAGES or endpoint.startswith("api."):
        return None
    return path


def _referrer_path() -> str | None:
    """The referring address as a path on this site (Referrer-Policy: same-origin)."""
    if not request.referrer:
        return None
    parts = urlsplit(request.referrer)
    if parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


@bp.post("/leave")
@login_required
def leave():
    """Stop viewing as the customer (staff) or stop acting for a client (agent)."""
    actor = current_actor()
    form = LeaveForm()
    if actor.entry is None or not form.validate_on_submit():
        return redirect(url_for("main.index"))
    entry = entries.stop(actor, reason="stopped", ip=client_ip())
    db.session.commit()
    if entry is not None and entry.kind == EntryKind.STAFF_VIEW:
        flash(_("You stopped viewing as the customer."), "info")
        return redirect(url_for("staff.organisation", organisation_id=entry.organisation_id))
    flash(_("You left the client's portal."), "info")
    return redirect(url_for("partners.clients"))


@bp.get("/healthz")
def healthz():
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}, 200, {"Cache-Control": "no-store"}


@bp.app_context_processor
def _header_forms():
    """What the header's forms (language switch, sign-out, leave) carry besides their CSRF
    token, which the template writes with Flask-WTF's csrf_token(): building two FlaskForms
    for every page cost a tenth of a signed-in page (issue 15). Nothing here reads the
    request's body (it may be why an error page is shown, e.g. one too large to read: 413)."""
    return {
        # The page being read: this address for a GET; after a POST, the page the form was on.
        "language_next": readable_page(
            request.full_path.rstrip("?") if request.method == "GET" else None
        )
        or readable_page(_referrer_path())
        or "",
    }
