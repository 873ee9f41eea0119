"""Terms of service (R-60): staff publish versions; customers read them, see what changed,
consent, and keep their consent history. Deemed consent is recorded on first use."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import login_required
from wtforms.fields.choices import SelectChoice

from portal.blueprints.terms.forms import ConsentForm, PublishTermsForm
from portal.blueprints.validators import show_error
from portal.clock import clock
from portal.extensions import db
from portal.models import Service, TermsVersion
from portal.permissions import (
    Actor,
    can_consent_to_terms,
    can_publish_terms,
    can_read_terms,
    get_terms_version_or_404,
    use_counts_as_consent,
)
from portal.presentation import long_date
from portal.services import terms
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.web import back_office_actor, client_ip, current_actor

bp = Blueprint("terms", __name__)
staff_bp = Blueprint("staff_terms", __name__)


# --- every request: the banner and deemed consent ----------------------------------------------


def pending_terms() -> list[TermsVersion]:
    """Versions in force or to come that the organisation of this request has not consented
    to (R-60); asked once per request, for the banner and for deemed consent."""
    if "pending_terms" not in g:
        actor = g.get("actor")
        organisation_id = actor.organisation_id if actor is not None else None
        g.pending_terms = (
            terms.outstanding(organisation_id, clock.today()) if organisation_id else []
        )
    return g.pending_terms


@bp.app_context_processor
def _banner() -> dict[str, object]:
    return {"pending_terms": pending_terms}


@bp.before_app_request
def _record_use() -> None:
    """R-60 (IN 16(2)): the organisation's first use on or after a version's effective date
    is deemed consent, by the customer user whose request it is; never an agent's or viewing
    staff's (R-71, R-72). Committed at once: the use happened whatever the page answers."""
    actor = g.get("actor")
    if actor is None or request.endpoint in (None, "static") or not use_counts_as_consent(actor):
        return
    today = clock.today()
    due = [v for v in pending_terms() if v.effective_on <= today]
    if not due:
        return
    made = terms.record_deemed_consent(actor.user, due, ip=client_ip())
    if not made:
        return  # a version in force when the organisation joined waits for explicit consent
    consented = {c.terms_version_id for c in made}
    g.pending_terms = [v for v in g.pending_terms if v.id not in consented]
    db.session.commit()


# --- the customer's portal ---------------------------------------------------------------------


def _reader() -> Actor:
    actor = current_actor()
    if not can_read_terms(actor):
        abort(404)
    return actor


@bp.get("/terms")
@login_required
def index():
    actor = _reader()
    organisation_id = actor.organisation_id
    assert organisation_id is not None
    return render_template(
        "terms/index.html",
        services=terms.terms_of(organisation_id, clock.today()),
        consents=terms.consents_by_version(organisation_id),
        history=terms.history(organisation_id),
        kind_label=terms.kind_label,
    )


@bp.get("/terms/consents.csv")
@login_required
def consents_csv():
    """The consent history for Excel (UTF-8 with a BOM), like the other CSV downloads."""
    actor = _reader()
    assert actor.organisation_id is not None
    body = terms.history_csv(actor.organisation_id, str(get_locale()))
    filename = f"terms-consents-{clock.today():%Y%m%d}.csv"
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _version_page(version: TermsVersion, form: ConsentForm | None = None, status: int = 200):
    actor = current_actor()
    assert actor.organisation_id is not None
    locale = str(get_locale())
    previous = terms.previous_of(version)
    consent = terms.consent_of(actor.organisation_id, version.id)
    state = terms.status_of(version, clock.today())
    may_consent = can_consent_to_terms(actor) and consent is None and state != "superseded"
    return render_template(
        "terms/version.html",
        version=version,
        previous=previous,
        changes=terms.changes(previous.body(locale), version.body(locale)) if previous else [],
        consent=consent,
        state=state,
        form=(form or ConsentForm(formdata=None)) if may_consent else None,
        form_errors=form.form_errors if form is not None else [],
        kind_label=terms.kind_label,
    ), status


@bp.get("/terms/<int:version_id>")
@login_required
def version(version_id: int):
    actor = _reader()
    return _version_page(get_terms_version_or_404(version_id, actor))


@bp.post("/terms/<int:version_id>/consent")
@login_required
def consent(version_id: int):
    actor = _reader()
    version = get_terms_version_or_404(version_id, actor)
    if not can_consent_to_terms(actor):
        abort(403, _("Only the customer's administrators may consent to the terms."))
    form = ConsentForm()
    if not form.validate_on_submit():
        return _version_page(version, form, 422)
    try:
        _consent, made = terms.consent(actor, version, ip=client_ip())
    except NotAllowed as exc:
        abort(403, str(exc))
    except Conflict as exc:
        form.form_errors.append(str(exc))
        return _version_page(version, form, 409)
    db.session.commit()
    if made:
        flash(_("Thank you. Your consent to these terms was recorded."), "success")
    else:
        flash(_("Your organisation had already consented to this version."), "info")
    return redirect(url_for("terms.version", version_id=version.id))


# --- the back office ---------------------------------------------------------------------------


def _publisher() -> Actor:
    actor = back_office_actor()
    if not can_publish_terms(actor):
        abort(403, _("Only staff administrators may publish terms."))
    return actor


@staff_bp.get("/staff/terms", endpoint="index")
@login_required
def staff_index():
    _publisher()
    return render_template(
        "terms/staff_index.html", services=terms.versions_by_service(), today=clock.today()
    )


def _publish_form() -> PublishTermsForm:
    form = PublishTermsForm()
    locale = str(get_locale())
    services = db.session.scalars(db.select(Service).order_by(Service.id))
    form.service_id.choices = [SelectChoice(s.id, s.name(locale)) for s in services]
    return form


@staff_bp.route("/staff/terms/new", methods=["GET", "POST"])
@login_required
def publish():
    actor = _publisher()
    form = _publish_form()
    earliest = terms.earliest_effective_date(clock.today())
    if request.method == "GET":
        # Start from the service's latest text, so that staff edit rather than retype it.
        latest = terms.latest_version(request.args.get("service_id", 0, type=int))
        if latest is not None:
            form.service_id.data = latest.service_id
            for name in ("title_ja", "title_en", "body_ja", "body_en"):
                getattr(form, name).data = getattr(latest, name)
    page = {"form": form, "earliest": earliest}
    if not form.validate_on_submit():
        return render_template("terms/staff_new.html", **page), 422 if form.is_submitted() else 200
    if form.confirmed.data == "edit":
        return render_template("terms/staff_new.html", **page)
    draft = terms.Draft(
        service_id=form.service_id.data,
        title_ja=form.title_ja.data,
        title_en=form.title_en.data,
        body_ja=form.body_ja.data,
        body_en=form.body_en.data,
        effective_on=form.effective_on.data,
    )
    try:
        if form.confirmed.data != "yes":
            return _confirm_publishing(form, draft, terms.check_draft(actor, draft))
        version = terms.publish(actor, draft, ip=client_ip())
        told = terms.notify_published(version)
    except NotAllowed as exc:
        abort(403, str(exc))
    except Conflict as exc:
        db.session.rollback()
        show_error(form, exc)
        return render_template("terms/staff_new.html", **page), 409
    except PortalError as exc:
        show_error(form, exc)
        return render_template("terms/staff_new.html", **page), 422
    db.session.commit()
    flash(
        _(
            "Version %(version)s of the terms of %(service)s was published; %(count)d "
            "organisation(s) are told by e-mail.",
            version=version.version,
            service=version.service.name(str(get_locale())),
            count=told,
        ),
        "success",
    )
    return redirect(url_for("staff_terms.index"))


def _confirm_publishing(form: PublishTermsForm, draft: terms.Draft, preview: terms.Preview):
    locale = str(get_locale())
    title = draft.title_ja if locale == "ja" else draft.title_en
    return render_template(
        "_confirm.html",
        form=form,
        action=url_for("staff_terms.publish"),
        summary=[
            _(
                "Publish version %(version)s of the terms of %(service)s, “%(title)s”, taking "
                "effect on %(date)s.",
                version=preview.version,
                service=preview.service.name(locale),
                title=title.strip(),
                date=long_date(draft.effective_on),
            ),
            ngettext(
                "%(num)d organisation uses the service: it is told by e-mail at once and sees "
                "a banner in the portal until it consents.",
                "%(num)d organisations use the service: each is told by e-mail at once and "
                "sees a banner in the portal until it consents.",
                preview.organisations_told,
            ),
            _("A published text cannot be changed or withdrawn; a correction is a new version."),
        ],
        confirm_label=_("Publish"),
    )
