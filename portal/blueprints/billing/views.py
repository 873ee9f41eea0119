"""The back office's invoices: search and CSV (R-42), one document with its payment and
credit notes (R-42, R-43), overdue invoices and payment reminders (R-33)."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.datastructures import MultiDict

from portal.blueprints.billing.forms import (
    CreditNoteForm,
    PaymentForm,
    ProviderForm,
    ReminderForm,
    SearchForm,
)
from portal.blueprints.validators import show_error
from portal.clock import clock
from portal.extensions import db, htmx
from portal.models import DocumentKind, Invoice
from portal.paging import page_number
from portal.payments import service as payments
from portal.permissions import (
    Actor,
    can_change_provider_settings,
    can_issue_credit_notes,
    can_manage_billing,
    can_search_invoices,
)
from portal.presentation import long_date, yen
from portal.services import billing, invoicing
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.web import back_office_actor, client_ip, current_actor

bp = Blueprint("billing", __name__, url_prefix="/staff")


def _back_office() -> Actor:
    """Staff in the back office; 403 while viewing as a customer (R-72), 404 for others."""
    actor = back_office_actor()
    if not can_search_invoices(actor):
        abort(404)
    return actor


def _document_or_404(invoice_id: int) -> Invoice:
    found = billing.document(invoice_id)
    if found is None:
        abort(404)
    return found


# --- search and CSV (R-42) ------------------------------------------------------------------


def _search_form() -> SearchForm:
    # Empty fields are left out, so that an empty box means "any" and is no error.
    given = MultiDict([(k, v) for k, v in request.args.items(multi=True) if v.strip()])
    return SearchForm(formdata=given)


def _criteria(form: SearchForm) -> billing.Criteria:
    return billing.Criteria(
        issued_from=form.issued_from.data,
        issued_to=form.issued_to.data,
        amount_min=form.amount_min.data,
        amount_max=form.amount_max.data,
        counterparty=(form.counterparty.data or "").strip(),
        kind=None if form.kind.data == "any" else DocumentKind(form.kind.data),
        status=None if form.status.data == "any" else form.status.data,
    )


def _filters(form: SearchForm) -> dict[str, str]:
    """The criteria as typed, as query parameters (for the CSV link and the other pages)."""
    typed = {
        name: (getattr(form, name)._value() or "").strip()
        for name in ("issued_from", "issued_to", "amount_min", "amount_max", "counterparty")
    }
    chosen = {name: getattr(form, name).data for name in ("kind", "status")}
    return {k: v for k, v in (typed | chosen).items() if v and v != "any"}


@bp.get("/invoices")
@login_required
def search():
    _back_office()
    form = _search_form()
    today = clock.today()
    valid = form.validate()
    # A history restore after a cache miss wants the whole page back.
    partial = bool(htmx) and not htmx.history_restore_request
    found = None
    if valid:
        found = billing.search(
            _criteria(form), today=today, page=page_number(request.args), per_page=billing.PER_PAGE
        )
    context = {
        "form": form,
        "found": found,
        "filters": _filters(form),
        "htmx_swap": partial,
        "days_overdue": lambda invoice: invoicing.days_overdue(invoice, today),
    }
    if partial:
        # htmx swaps only 2xx answers: the live search shows its field errors with a 200.
        response = make_response(render_template("billing/_search.html", **context))
    else:
        page_html = render_template("billing/search.html", **context)
        response = make_response(page_html, 200 if valid else 422)
    # The same address answers a fragment or a page: caches must tell them apart.
    response.vary.add("HX-Request")
    return response


@bp.get("/invoices.csv")
@login_required
def export():
    """The search's documents as CSV for Excel, streamed (R-42)."""
    _back_office()
    form = _search_form()
    today = clock.today()
    if not form.validate():
        context = {"form": form, "found": None, "filters": _filters(form), "htmx_swap": False}
        return render_template("billing/search.html", **context), 422
    chunks = billing.csv_chunks(_criteria(form), today=today)
    filename = f"invoices-{today:%Y%m%d}.csv"
    return Response(
        stream_with_context(chunks),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


# --- one document ---------------------------------------------------------------------------


def _detail_page(
    invoice: Invoice,
    *,
    payment_form: PaymentForm | None = None,
    credit_form: CreditNoteForm | None = None,
    reminder_error: str = "",
    status: int = 200,
):
    actor = current_actor()
    detail = billing.detail_of(invoice, today=clock.today())
    may_pay = can_manage_billing(actor) and detail.is_open
    may_credit = can_issue_credit_notes(actor) and detail.is_invoice and detail.remaining > 0
    if may_credit:
        credit_form = credit_form or CreditNoteForm(formdata=None)
        credit_form.tax_rate_percent.choices = [(r, f"{r}%") for r in detail.tax_rates]
    if may_pay and payment_form is None:
        payment_form = PaymentForm(formdata=None, received_on=clock.today())
    return render_template(
        "billing/detail.html",
        detail=detail,
        invoice=invoice,
        payment_form=payment_form if may_pay else None,
        # A refusal stays visible when the form is gone (e.g. paid in the meantime).
        payment_errors=payment_form.form_errors if payment_form else [],
        credit_form=credit_form if may_credit else None,
        may_remind=can_manage_billing(actor) and detail.days_overdue > 0,
        reminder_form=ReminderForm(formdata=None, back="detail"),
        reminder_error=reminder_error,
    ), status


@bp.get("/invoices/<int:invoice_id>")
@login_required
def detail(invoice_id: int):
    _back_office()
    return _detail_page(_document_or_404(invoice_id))


@bp.get("/invoices/<int:invoice_id>/pdf")
@login_required
def pdf(invoice_id: int):
    """R-42: the PDF exactly as stored at issue, byte for byte."""
    _back_office()
    invoice = _document_or_404(invoice_id)
    return Response(
        invoicing.pdf_of(invoice),
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{invoice.number}.pdf"'},
    )


def _confirmed(form: PaymentForm | CreditNoteForm) -> bool:
    """Recording a payment and issuing a credit note cannot be undone: the form is shown once
    more with what will happen, and sent again with `confirmed` "yes" (do it) or "edit"."""
    return form.confirmed.data == "yes"


def _editing(form: PaymentForm | CreditNoteForm) -> bool:
    return form.confirmed.data == "edit"


def _confirm(form, action: str, summary: list[str], confirm_label: str):
    return render_template(
        "_confirm.html",
        form=form,
        action=action,
        summary=summary,
        confirm_label=confirm_label,
    )


def _method_name(method: str) -> str:
    return _("Direct debit") if method == "direct_debit" else _("Bank transfer")


@bp.post("/invoices/<int:invoice_id>/payments")
@login_required
def record_payment(invoice_id: int):
    """R-43: billing staff record a bank transfer or a direct debit; an invoice is paid once."""
    actor = _back_office()
    invoice = _document_or_404(invoice_id)
    if not can_manage_billing(actor):
        abort(403)
    form = PaymentForm()
    if not form.validate_on_submit():
        return _detail_page(invoice, payment_form=form, status=422)
    if _editing(form):
        return _detail_page(invoice, payment_form=form)
    fields = {
        "method": form.method.data,
        "received_on": form.received_on.data,
        "reference": form.reference.data or "",
    }
    try:
        if not _confirmed(form):
            checked = payments.check_manual_payment(actor, invoice, **fields)
            summary = [
                _(
                    "Record a payment of %(amount)s by %(method)s for %(number)s (%(org)s), "
                    "received on %(date)s.",
                    amount=yen(checked.amount),
                    method=_method_name(checked.method),
                    number=invoice.number,
                    org=invoice.recipient_name,
                    date=long_date(checked.received_on),
                ),
                _("Reference: %(reference)s", reference=checked.reference),
                _("The invoice will be marked paid. A recorded payment cannot be undone."),
            ]
            return _confirm(
                form,
                url_for("billing.record_payment", invoice_id=invoice.id),
                summary,
                _("Record the payment"),
            )
        payments.record_manual_payment(actor, invoice, **fields, ip=client_ip())
        db.session.commit()
    except NotAllowed:
        db.session.rollback()
        abort(403)
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc)
        return _detail_page(
            invoice, payment_form=form, status=409 if isinstance(exc, Conflict) else 422
        )
    flash(_("The payment was recorded: %(number)s is paid.", number=invoice.number), "success")
    return redirect(url_for("billing.detail", invoice_id=invoice.id))


@bp.post("/invoices/<int:invoice_id>/credit-notes")
@login_required
def issue_credit_note(invoice_id: int):
    """R-42: a correction is a new document (適格返還請求書) referencing the original."""
    actor = _back_office()
    invoice = _document_or_404(invoice_id)
    if not can_issue_credit_notes(actor):
        abort(403)
    form = CreditNoteForm()
    form.tax_rate_percent.choices = [
        (row["rate_percent"], f"{row['rate_percent']}%") for row in invoice.tax_summary
    ]
    if not form.validate_on_submit():
        return _detail_page(invoice, credit_form=form, status=422)
    if _editing(form):
        return _detail_page(invoice, credit_form=form)
    fields = {
        "amount": form.amount.data,
        "tax_rate_percent": form.tax_rate_percent.data,
        "reason": form.reason.data,
    }
    try:
        if not _confirmed(form):
            preview = invoicing.check_credit_note(actor, invoice, **fields)
            sums = preview.sums
            summary = [
                _(
                    "Issue a credit note for %(number)s (%(org)s): %(amount)s and "
                    "consumption tax %(tax)s at %(rate)d%%, %(total)s in all.",
                    number=invoice.number,
                    org=invoice.recipient_name,
                    amount=yen(sums.subtotal),
                    tax=yen(sums.tax_total),
                    rate=fields["tax_rate_percent"],
                    total=yen(sums.total),
                ),
                _("Reason: %(reason)s", reason=fields["reason"].strip()),
                _(
                    "Amount due on %(number)s afterwards: %(amount)s.",
                    number=invoice.number,
                    amount=yen(preview.amount_due_after),
                ),
                _(
                    "The customer is told by e-mail. An issued credit note never changes and "
                    "cannot be withdrawn."
                ),
            ]
            return _confirm(
                form,
                url_for("billing.issue_credit_note", invoice_id=invoice.id),
                summary,
                _("Issue the credit note"),
            )
        note = invoicing.issue_credit_note(actor, invoice, **fields, ip=client_ip())
        db.session.commit()
    except NotAllowed:
        db.session.rollback()
        abort(403)
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc)
        return _detail_page(invoice, credit_form=form, status=422)
    flash(_("Credit note %(number)s was issued.", number=note.number), "success")
    return redirect(url_for("billing.detail", invoice_id=note.id))


# --- the provider's settings (R-40, R-44) -----------------------------------------------------


def _provider_page(form: ProviderForm, *, status: int = 200):
    actor = current_actor()
    return render_template(
        "billing/provider.html",
        provider=invoicing.provider(),
        form=form if can_change_provider_settings(actor) else None,
        labels={name: form[name].label.text for name in billing.PROVIDER_FIELDS},
        history=billing.provider_history(),
    ), status


@bp.route("/provider", methods=["GET", "POST"])
@login_required
def provider():
    """The issuer's name, registration number, contact and bank account, printed on every
    invoice issued from now on (R-40, R-44); issued invoices keep theirs (R-42)."""
    actor = _back_office()
    if request.method == "GET":
        return _provider_page(ProviderForm(formdata=None, obj=invoicing.provider()))
    if not can_change_provider_settings(actor):
        abort(403, _("Only staff administrators change the provider's settings."))
    form = ProviderForm()
    if not form.validate_on_submit():
        return _provider_page(form, status=422)
    try:
        changes = billing.change_provider(
            actor,
            {name: getattr(form, name).data for name in billing.PROVIDER_FIELDS},
            ip=client_ip(),
        )
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc)
        return _provider_page(form, status=422)
    if changes:
        flash(
            _(
                "The provider's settings were saved. Invoices issued from now on carry them; "
                "invoices already issued keep theirs."
            ),
            "success",
        )
    else:
        flash(_("Nothing was changed."), "info")
    return redirect(url_for("billing.provider"))


# --- overdue invoices and reminders (R-33) ---------------------------------------------------


def _overdue_page(*, error: str = "", status: int = 200):
    actor = current_actor()
    return render_template(
        "billing/overdue.html",
        rows=billing.overdue_page(clock.today(), page_number(request.args)),
        may_remind=can_manage_billing(actor),
        reminder_form=ReminderForm(formdata=None),
        error=error,
        days_after_reminder=billing.DAYS_AFTER_REMINDER,
    ), status


@bp.get("/invoices/overdue")
@login_required
def overdue():
    _back_office()
    return _overdue_page()


@bp.post("/invoices/<int:invoice_id>/reminders")
@login_required
def send_reminder(invoice_id: int):
    """R-33: a payment reminder for today, its e-mail queued for the customer."""
    actor = _back_office()
    invoice = _document_or_404(invoice_id)
    if not can_manage_billing(actor):
        abort(403)
    form = ReminderForm()
    back_to_detail = form.back.data == "detail"
    if not form.validate_on_submit():
        abort(400)
    try:
        billing.send_reminder(actor, invoice, today=clock.today(), ip=client_ip())
        db.session.commit()
    except NotAllowed:
        db.session.rollback()
        abort(403)
    except PortalError as exc:
        db.session.rollback()
        message = _("%(number)s: %(error)s", number=invoice.number, error=str(exc))
        if back_to_detail:
            return _detail_page(_document_or_404(invoice_id), reminder_error=message, status=409)
        return _overdue_page(error=message, status=409)
    flash(
        _(
            "A payment reminder for %(number)s was recorded; the e-mail goes out shortly.",
            number=invoice.number,
        ),
        "success",
    )
    if back_to_detail:
        return redirect(url_for("billing.detail", invoice_id=invoice.id))
    page = page_number(request.args)  # back to the page of the list the reminder was sent from
    return redirect(url_for("billing.overdue", page=page if page > 1 else None))
