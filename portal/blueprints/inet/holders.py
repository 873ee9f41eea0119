"""I-NET SERVICE: card holders and their photos, one by one or imported from a CSV and a ZIP
of photos (R-83, R-85).

Who: the organisation's own administrators (permissions.can_manage_card_holders). A page
without an id tells anyone else inside the portal that it is not for them (403); to them
every holder id is 404, like another organisation's (get_card_holder_or_404), so ids reveal
nothing. The back office has no such pages (404). An organisation without an open
registration sees its holders (and when their photos will be deleted) but adds and changes
nothing; it is pointed to the ID cards page to register.
"""

from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import login_required
from werkzeug.datastructures import FileStorage

from portal.blueprints.inet import bp
from portal.blueprints.inet.forms_holders import (
    EditHolderForm,
    HolderForm,
    ImportForm,
    ImportStepForm,
    PhotoForm,
    RemoveHolderForm,
)
from portal.blueprints.validators import show_error
from portal.domain.inet import MAX_PHOTO_BYTES, PHOTO_OUTPUT_SIZE
from portal.extensions import db
from portal.models import CardHolder
from portal.permissions import (
    Actor,
    can_manage_card_holders,
    can_see_card_photos,
    can_use_customer_portal,
    get_card_holder_or_404,
    has_inet,
)
from portal.services import card_holders, card_imports, photos
from portal.services.errors import NotAllowed, PortalError
from portal.services.inet_registrations import photos_delete_on
from portal.web import client_ip, current_actor

# The camera is this site's own, on the pages that take photos only (photo.js); everywhere
# else the portal's header keeps it off.
CAMERA_POLICY = "camera=(self), microphone=(), geolocation=(), payment=()"


def _holders_actor() -> Actor:
    actor = current_actor()
    if not can_use_customer_portal(actor):
        abort(404)
    if not can_manage_card_holders(actor):
        abort(403, _("Only the organisation's administrators see card holders."))
    return actor


def _holder(holder_id: int) -> tuple[Actor, CardHolder]:
    actor = current_actor()
    return actor, get_card_holder_or_404(holder_id, actor)


def _not_registered():
    return render_template(
        "inet/holders/not_registered.html", delete_on=photos_delete_on(current_actor_org())
    )


def current_actor_org() -> int:
    org_id = current_actor().organisation_id
    assert org_id is not None
    return org_id


def _read(upload: FileStorage | None, limit: int) -> bytes:
    """An uploaded file's bytes, never more than `limit` + 1 (the caller refuses those)."""
    if upload is None or not isinstance(upload, FileStorage):
        return b""
    return upload.stream.read(limit + 1)


# --- the list ------------------------------------------------------------------------------


@bp.get("/holders")
@login_required
def holders():
    actor = _holders_actor()
    search = request.args.get("q", "", type=str)
    page = request.args.get("page", 1, type=int) or 1
    listing = card_holders.holders_page(actor, search=search, page=page)
    return render_template(
        "inet/holders/index.html",
        listing=listing,
        registered=has_inet(actor),
        delete_on=photos_delete_on(current_actor_org()),
        photo_size=PHOTO_OUTPUT_SIZE,
    )


# --- one holder ----------------------------------------------------------------------------


def _photo_page(template: str, status: int = 200, **context):
    context.setdefault("photo_mb", MAX_PHOTO_BYTES // (1024 * 1024))
    response = make_response(render_template(template, **context), status)
    response.headers["Permissions-Policy"] = CAMERA_POLICY
    return response


@bp.route("/holders/new", methods=["GET", "POST"])
@login_required
def new_holder():
    actor = _holders_actor()
    form = HolderForm()
    if request.method == "GET" and not has_inet(actor):
        return _not_registered()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return _photo_page("inet/holders/new.html", status, form=form)
    details, problems = card_holders.clean(form.raw())
    assert details is not None, problems  # the form's validators said the same
    try:
        photo = None
        data = _read(form.photo.data, MAX_PHOTO_BYTES)
        if data:
            try:
                photo = photos.process(data, form.crop_box())
            except photos.PhotoError as exc:
                form.photo.errors = [str(exc)]
                return _photo_page("inet/holders/new.html", 422, form=form)
        holder = card_holders.add(actor, details, photo, ip=client_ip())
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc)
        return _photo_page("inet/holders/new.html", 409, form=form)
    db.session.commit()
    flash(_("%(name)s was added.", name=holder.name), "success")
    return redirect(url_for("inet.holders", q=holder.employee_number))


@bp.route("/holders/<int:holder_id>/edit", methods=["GET", "POST"])
@login_required
def edit_holder(holder_id: int):
    actor, holder = _holder(holder_id)
    form = EditHolderForm(obj=holder)
    if request.method == "GET" and not has_inet(actor):
        return _not_registered()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("inet/holders/edit.html", form=form, holder=holder), status
    details, _problems = card_holders.clean(form.raw())
    assert details is not None
    try:
        card_holders.update(actor, holder, details, ip=client_ip())
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        holder = get_card_holder_or_404(holder_id, actor)
        show_error(form, exc)
        return render_template("inet/holders/edit.html", form=form, holder=holder), 409
    db.session.commit()
    flash(_("The details of %(name)s were saved.", name=holder.name), "success")
    return redirect(url_for("inet.holders", q=holder.employee_number))


@bp.route("/holders/<int:holder_id>/photo/change", methods=["GET", "POST"])
@login_required
def change_photo(holder_id: int):
    actor, holder = _holder(holder_id)
    form = PhotoForm()
    if request.method == "GET" and not has_inet(actor):
        return _not_registered()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return _photo_page("inet/holders/photo.html", status, form=form, holder=holder)
    data = _read(form.photo.data, MAX_PHOTO_BYTES)
    try:
        if not data:
            raise photos.PhotoError(_("Choose a photo, or take one."), field="photo")
        photo = photos.process(data, form.crop_box())
        card_holders.set_photo(actor, holder, photo, ip=client_ip())
    except photos.PhotoError as exc:
        db.session.rollback()
        form.photo.errors = [str(exc)]
        return _photo_page("inet/holders/photo.html", 422, form=form, holder=holder)
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        holder = get_card_holder_or_404(holder_id, actor)
        form.form_errors.append(str(exc))
        return _photo_page("inet/holders/photo.html", 409, form=form, holder=holder)
    db.session.commit()
    flash(_("The photo of %(name)s was saved.", name=holder.name), "success")
    return redirect(url_for("inet.holders", q=holder.employee_number))


@bp.get("/holders/<int:holder_id>/photo")
@login_required
def holder_photo(holder_id: int):
    """The holder's photo, for the administrators' own pages: never cached, never sniffed,
    never a static file (R-83, R-85)."""
    actor, holder = _holder(holder_id)
    if not can_see_card_photos(actor):
        abort(404)
    content = card_holders.photo_bytes(holder)
    if content is None:
        abort(404)
    response = make_response(content)
    response.headers["Content-Type"] = "image/jpeg"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = "inline"
    return response


@bp.post("/holders/<int:holder_id>/removal")
@login_required
def remove_holder(holder_id: int):
    """Remove a holder and delete its photo, asked once more first (a removal is final)."""
    actor, holder = _holder(holder_id)
    form = RemoveHolderForm()
    if not form.validate_on_submit():
        abort(400)
    if form.confirmed.data == "edit":
        return redirect(url_for("inet.holders"))
    try:
        if form.confirmed.data != "yes":
            card_holders.check_removal(actor, holder)
            return _confirm_removal(form, holder)
        name = holder.name
        card_holders.remove(actor, holder, ip=client_ip())
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        return render_template(
            "inet/holders/refused.html", message=str(exc), title=_("Remove a card holder")
        ), 409
    db.session.commit()
    flash(_("%(name)s was removed and their photo deleted.", name=name), "success")
    return redirect(url_for("inet.holders"))


def _confirm_removal(form: RemoveHolderForm, holder: CardHolder):
    summary = [
        _(
            "Remove %(name)s (employee number %(number)s) from the card holders.",
            name=holder.name,
            number=holder.employee_number,
        ),
    ]
    if holder.photo_key:
        summary.append(_("Their photo is deleted at once; the deletion is recorded."))
    summary.append(
        _("Orders already sent keep the details they were sent with. This cannot be undone.")
    )
    return render_template(
        "_confirm.html",
        form=form,
        action=url_for("inet.remove_holder", holder_id=holder.id),
        summary=summary,
        confirm_label=_("Remove"),
    )


# --- importing -----------------------------------------------------------------------------


@bp.route("/holders/import", methods=["GET", "POST"])
@login_required
def import_holders():
    actor = _holders_actor()
    form = ImportForm()
    if request.method == "GET" and not has_inet(actor):
        return _not_registered()
    context = {
        "form": form,
        "limits": _limits(),
        "headers": card_imports.HEADERS_JA,
    }
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("inet/holders/import.html", **context), status
    csv_upload, zip_upload = form.csv_file.data, form.zip_file.data
    try:
        csv_bytes = _read(csv_upload, card_imports.MAX_CSV_BYTES)
        zip_bytes = _read(zip_upload, card_imports.MAX_ZIP_BYTES) or None
        staged = card_imports.stage(
            actor,
            csv_name=getattr(csv_upload, "filename", "") or "",
            csv_bytes=csv_bytes,
            zip_name=getattr(zip_upload, "filename", "") or "",
            zip_bytes=zip_bytes,
            ip=client_ip(),
        )
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc)
        return render_template("inet/holders/import.html", **context), 422
    db.session.commit()
    return redirect(url_for("inet.import_preview", staged=staged.id))


def _limits() -> dict[str, int]:
    return {
        "rows": card_imports.MAX_ROWS,
        "csv_mb": card_imports.MAX_CSV_BYTES // (1024 * 1024),
        "zip_mb": card_imports.MAX_ZIP_BYTES // (1024 * 1024),
        "photo_mb": MAX_PHOTO_BYTES // (1024 * 1024),
    }


def _staged_id(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() and len(text) < 12 else None


def _gone(endpoint: str):
    flash(_("This upload was already imported, cancelled, or has expired."), "warning")
    return redirect(url_for(endpoint))


@bp.get("/holders/import/preview")
@login_required
def import_preview():
    """Every row with its problems; "Import" only when there are none (all rows or none)."""
    actor = _holders_actor()
    staged = card_imports.get_staged(actor, _staged_id(request.args.get("staged")))
    if staged is None:
        return _gone("inet.import_holders")
    if not has_inet(actor):
        return _not_registered()
    result = card_imports.preview(actor, staged)
    db.session.rollback()  # a preview stores nothing
    return _preview_page(staged, result)


def _preview_page(staged, result, *, error: str | None = None, status: int = 200):
    form = ImportStepForm(staged=str(staged.id))
    return render_template(
        "inet/holders/preview.html",
        staged=staged,
        preview=result,
        form=form,
        error=error,
        expires_at=card_imports.expires_at(staged),
    ), status


@bp.post("/holders/import/run")
@login_required
def run_import():
    actor = _holders_actor()
    form = ImportStepForm()
    if not form.validate_on_submit():
        abort(400)
    staged = card_imports.get_staged(actor, form.staged_id())
    if staged is None:
        return _gone("inet.holders")
    try:
        count = card_imports.run(actor, staged, ip=client_ip())
    except card_imports.StillProblems as exc:
        db.session.rollback()
        staged = card_imports.get_staged(actor, form.staged_id())
        if staged is None:
            return _gone("inet.holders")
        return _preview_page(staged, exc.preview, error=str(exc), status=409)
    except card_imports.AlreadyImported:
        db.session.rollback()
        return _gone("inet.holders")
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        staged = card_imports.get_staged(actor, form.staged_id())
        if staged is None:
            return _gone("inet.holders")
        return _preview_page(
            staged, card_imports.preview(actor, staged), error=str(exc), status=409
        )
    db.session.commit()
    flash(
        ngettext("%(num)d card holder was imported.", "%(num)d card holders were imported.", count),
        "success",
    )
    return redirect(url_for("inet.holders"))


@bp.post("/holders/import/cancel")
@login_required
def cancel_import():
    actor = _holders_actor()
    form = ImportStepForm()
    if not form.validate_on_submit():
        abort(400)
    staged = card_imports.get_staged(actor, form.staged_id())
    if staged is None:
        return _gone("inet.holders")
    card_imports.cancel(actor, staged, ip=client_ip())
    db.session.commit()
    flash(_("The upload was deleted; nothing was imported."), "info")
    return redirect(url_for("inet.holders"))
