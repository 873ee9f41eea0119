"""A customer's invoices and credit notes: list, read, download as issued (R-40..R-43)."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required

from portal.blueprints.invoices.forms import InvoiceAccessForm, PayForm
from portal.clock import clock
from portal.extensions import db
from portal.models import Invoice
from portal.paging import page_number
from portal.payments import gateway
from portal.payments import service as payments
from portal.payments.webhooks import WebhookRejected, handle_webhook
from portal.permissions import (
    Actor,
    can_pay_invoices,
    can_see_invoices,
    can_set_invoice_access,
    can_use_customer_portal,
    get_invoice_or_404,
)
from portal.services import audit, billing, invoicing
from portal.services.errors import NotAllowed, PortalError
from portal.web import CONTENT_SECURITY_POLICY, client_ip, current_actor

bp = Blueprint("invoices", __name__)
# Stripe calls this one with its signature, never with a cookie or a CSRF token.
webhook_bp = Blueprint("stripe_webhook", __name__)

# The payment page loads Stripe.js and its card frame from Stripe, and nothing else from
# another origin (every other page allows only our own origin).
STRIPE_CSP = (
    CONTENT_SECURITY_POLICY.replace(
        "script-src 'self'", "script-src 'self' https://js.stripe.com"
    ).replace("connect-src 'self'", "connect-src 'self' https://api.stripe.com")
    + "; frame-src https://js.stripe.com https://hooks.stripe.com"
)


def _invoice_actor() -> Actor:
    actor = current_actor()
    if not can_use_customer_portal(actor):
        abort(404)
    if not can_see_invoices(actor):
        abort(403, _("Invoices are shown to the customer's administrators and sales agents."))
    return actor


@bp.get("/invoices")
@login_required
def index():
    actor = _invoice_actor()
    documents = billing.documents_page(actor.organisation, page_number(request.args))
    # the outstanding total counts every open invoice, on this page or another.
    unpaid = billing.open_invoices_of(actor.organisation)
    listed = {d.id: d for d in [*documents, *unpaid]}
    dues = invoicing.amounts_due(listed.values())  # one amount due everywhere
    may_pay = can_pay_invoices(actor)
    form = InvoiceAccessForm(
        formdata=None, members_see_invoices=actor.organisation.members_see_invoices
    )
    return render_template(
        "invoices/index.html",
        documents=documents,
        dues=dues,
        outstanding=invoicing.outstanding(unpaid, dues, clock.today()),
        payable={d.id for d in documents if may_pay and payments.payable_by_card(d, dues[d.id])},
        access_form=form,
        may_set_access=can_set_invoice_access(actor),
    )


@bp.post("/invoices/access")
@login_required
def access():
    """R-70: an administrator lets members see invoices, or stops it."""
    actor = _invoice_actor()
    if not can_set_invoice_access(actor):
        abort(403)
    form = InvoiceAccessForm()
    if not form.validate_on_submit():
        abort(400)
    organisation = actor.organisation
    organisation.members_see_invoices = bool(form.members_see_invoices.data)
    audit.record(
        "organisation.invoice_access",
        actor=actor,
        ip=client_ip(),
        members_see_invoices=organisation.members_see_invoices,
    )
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect(url_for("invoices.index"))


@bp.get("/invoices/<int:invoice_id>")
@login_required
def detail(invoice_id: int):
    actor = _invoice_actor()
    invoice = get_invoice_or_404(invoice_id, actor)
    state = invoice.state
    due = invoicing.amount_due(invoice)  # the Pay button says it, never the total
    credit_notes = invoicing.credit_notes_of(invoice)
    return render_template(
        "invoices/detail.html",
        invoice=invoice,
        state=state,
        credit_notes=credit_notes,
        credited=sum(note.total for note in credit_notes),
        payment=invoicing.payment_of(invoice),
        amount_due=due,
        payable=invoicing.is_payable(invoice, due),
        bank=invoicing.transfer_account(invoice) if invoicing.is_payable(invoice, due) else None,
        issuer=invoicing.provider(),
        days_overdue=invoicing.days_overdue(invoice, clock.today()),
        may_pay=can_pay_invoices(actor) and payments.payable_by_card(invoice, due),
        pay_url=url_for("invoices.pay", invoice_id=invoice.id),
    )


@bp.post("/invoices/<int:invoice_id>/pay")
@login_required
def pay(invoice_id: int):
    """R-43: pay by card through Stripe. The invoice is marked paid by Stripe's signed
    webhook only, never by this page (staff viewing as the customer cannot pay, R-72)."""
    actor = _invoice_actor()
    invoice = get_invoice_or_404(invoice_id, actor)
    if not PayForm().validate_on_submit():
        abort(400)
    try:
        started = payments.start_card_payment(actor, invoice, ip=client_ip())
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except gateway.PaymentUnavailable as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return detail(invoice_id), 503
    except PortalError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return detail(invoice_id), 409
    response = Response(
        render_template(
            "invoices/pay.html",
            invoice=invoice,
            client_secret=started.client_secret,
            amount=started.amount,
            total=invoice.total,
            credited=invoicing.credited_so_far(invoice),
            publishable_key=current_app.config["STRIPE_PUBLISHABLE_KEY"],
            return_url=url_for("invoices.paid", invoice_id=invoice.id, _external=True),
        )
    )
    response.headers["Content-Security-Policy"] = STRIPE_CSP
    return response


@bp.get("/invoices/<int:invoice_id>/paid")
@login_required
def paid(invoice_id: int):
    """Where Stripe sends the customer back: paid once the webhook has arrived."""
    actor = _invoice_actor()
    invoice = get_invoice_or_404(invoice_id, actor)
    return render_template("invoices/paid.html", invoice=invoice, state=invoice.state)


@webhook_bp.post("/stripe/webhook")
def stripe_webhook():
    """R-43: Stripe's events, verified on the raw body; each applied once, in any order."""
    try:
        result = handle_webhook(
            request.get_data(),
            request.headers.get("Stripe-Signature"),
            current_app.config["STRIPE_WEBHOOK_SECRET"],
        )
    except WebhookRejected:
        db.session.rollback()
        return {"error": {"code": "bad_signature", "message": "not a signed Stripe event"}}, 400
    db.session.commit()
    return {"received": True, "outcome": result.outcome}


@bp.get("/invoices/<int:invoice_id>/pdf")
@login_required
def pdf(invoice_id: int):
    """R-42: the PDF exactly as stored at issue, byte for byte."""
    actor = _invoice_actor()
    invoice = get_invoice_or_404(invoice_id, actor)
    return pdf_response(invoice)


def pdf_response(invoice: Invoice) -> Response:
    content = invoicing.pdf_of(invoice)
    return Response(
        content,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{invoice.number}.pdf"',
            "X-Content-SHA256": invoicing.stored_sha256(invoice),
        },
    )
