"""Signing in and out, and passwords from e-mailed links (R-63). Sessions live on the server;
the cookie only names one."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user
from sqlalchemy.exc import SQLAlchemyError

from portal.blueprints.auth.forms import (
    LoginForm,
    LogoutForm,
    NewPasswordForm,
    PasswordResetRequestForm,
)
from portal.blueprints.validators import show_error
from portal.extensions import db, limiter
from portal.models import TokenPurpose, UserKind
from portal.services import accounts, audit, auth
from portal.services.errors import PortalError
from portal.web import client_ip, end_browser_session, safe_next

bp = Blueprint("auth", __name__)


def _account_and_address_key() -> str:
    """Failed sign-ins are counted per account and client address together (issue 13): a
    stranger's failures elsewhere never lock the owner out. The per-address limit stays."""
    email = auth.normalise_email(request.form.get("email", ""))[:254]
    return f"login:{email}|{client_ip()}"


def _sign_in_failed(_response: Response) -> bool:
    return bool(g.get("sign_in_failed"))


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT_PER_IP"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_PER_ACCOUNT_ADDRESS"],
    methods=["POST"],
    key_func=_account_and_address_key,
    deduct_when=_sign_in_failed,
)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 422 if form.is_submitted() else 200
    user = auth.authenticate(form.email.data, form.password.data, ip=client_ip())
    if user is None:
        g.sign_in_failed = True
        db.session.commit()  # the failure is on the record, and its e-mail in the outbox
        form.password.errors.append(_("The e-mail address or the password is not correct."))
        return render_template("auth/login.html", form=form), 422
    target = safe_next(form.next.data, url_for("main.index"))
    end_browser_session()  # a fresh session id at sign-in: no session fixation
    auth.start_session(user, ip=client_ip(), user_agent=request.headers.get("User-Agent", ""))
    db.session.commit()
    login_user(user)
    return redirect(target)


@bp.post("/logout")
@login_required
def logout():
    form = LogoutForm()
    if form.validate_on_submit():
        auth.sign_out(current_user._get_current_object(), ip=client_ip())
        db.session.commit()
        end_browser_session()
        flash(_("You signed out. Your sessions on other devices were ended too."), "info")
    return redirect(url_for("auth.login"))


# --- passwords from e-mailed links (R-63) ---------------------------------------------------


def _reset_key() -> str:
    """Rate-limit reset requests per address as well as per client address."""
    return "reset:" + auth.normalise_email(request.form.get("email", ""))[:254]


def _signed_in_elsewhere():
    """Links are for a signed-out browser: whoever is signed in here is not the link's user."""
    flash(_("You are signed in. Sign out first to use this link."), "info")
    return redirect(url_for("main.index"))


@bp.route("/password-reset", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config.get("PASSWORD_RESET_RATE_LIMIT_PER_IP", "20 per hour"),
    methods=["POST"],
)
@limiter.limit(
    lambda: current_app.config.get("PASSWORD_RESET_RATE_LIMIT_PER_ACCOUNT", "5 per hour"),
    methods=["POST"],
    key_func=_reset_key,
)
def forgot_password():
    """Ask for a reset link. The answer is the same whether the address has an account."""
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = PasswordResetRequestForm()
    if not form.validate_on_submit():
        status = 422 if form.is_submitted() else 200
        return render_template("auth/forgot_password.html", form=form), status
    accounts.request_password_reset(form.email.data, ip=client_ip())
    db.session.commit()
    flash(
        _(
            "If an account uses this address, a link to choose a new password is on its way. "
            "It works once, for %(minutes)d minutes.",
            minutes=int(accounts.RESET_LIFETIME.total_seconds() // 60),
        ),
        "info",
    )
    return redirect(url_for("auth.login"))


def _link_unusable(exc: accounts.TokenUnusable, purpose: TokenPurpose):
    page = render_template("auth/link_unusable.html", message=str(exc), purpose=purpose.value)
    return page, 410 if exc.known else 404


def _password_from_link(token: str, purpose: TokenPurpose, template: str):
    if current_user.is_authenticated:
        return _signed_in_elsewhere()
    try:
        found = accounts.usable_token(token, purpose)
    except accounts.TokenUnusable as exc:
        return _link_unusable(exc, purpose)
    form = NewPasswordForm()

    def page(status: int):
        return render_template(
            template,
            form=form,
            user=found.user,
            expires_at=found.expires_at,
            min_password_length=auth.MIN_PASSWORD_LENGTH,
        ), status

    if not form.validate_on_submit():
        return page(422 if form.is_submitted() else 200)
    reset = purpose == TokenPurpose.PASSWORD_RESET
    use = accounts.reset_password if reset else accounts.accept_invitation
    try:
        user = use(token, form.new_password.data, ip=client_ip())
    except accounts.TokenUnusable as exc:
        db.session.rollback()  # the other of two submissions at once
        return _link_unusable(exc, purpose)
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "new_password")
        return page(422)
    db.session.commit()
    if reset:
        flash(
            _("Your password was changed and every session of your account was ended. Sign in."),
            "success",
        )
    else:
        flash(_("Your password is set. Sign in to start."), "success")
        if user.kind == UserKind.AGENT:
            # An invited agent (issue 14) starts from the company's clients after signing in.
            return redirect(url_for("auth.login", next=url_for("partners.clients")))
    return redirect(url_for("auth.login"))


@bp.route("/password-reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    """R-63: a new password from a single-use link; every session of the account ends."""
    return _password_from_link(token, TokenPurpose.PASSWORD_RESET, "auth/reset_password.html")


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    """An invited user (R-70) chooses their password once, then signs in like everyone."""
    return _password_from_link(token, TokenPurpose.INVITATION, "auth/accept_invitation.html")


# --- refused authorizations on the record (issue 13) ----------------------------------------


@bp.after_app_request
def _record_refusal(response: Response) -> Response:
    """A signed-in user (or an API token's user) refused with 403 is on the record, with the
    client's address. The refused request's own unsaved changes are dropped first: only the
    event is written."""
    if response.status_code != 403:
        return response
    actor = g.get("actor") or g.get("api_actor")
    # Inside a customer's portal every request, a refused one too, is on the record already
    # with its status (R-72, web._record_entry_request).
    if actor is None or actor.entry is not None:
        return response
    try:
        db.session.rollback()
        audit.record(
            "authorization.refused",
            actor=actor,
            ip=client_ip(),
            method=request.method,
            path=request.path[:300],
            endpoint=request.endpoint or "",
        )
        db.session.commit()
    except SQLAlchemyError:
        db.session.rollback()
        current_app.logger.exception("could not record a refused authorization")
    return response
