"""Signing in and out (R-63). Sessions live on the server; the cookie only names one."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user

from portal.blueprints.auth.forms import LoginForm, LogoutForm
from portal.extensions import db, limiter
from portal.services import auth
from portal.web import client_ip, end_browser_session, safe_next

bp = Blueprint("auth", __name__)


def _account_key() -> str:
    """Rate-limit attempts per account as well as per address."""
    return "login:" + auth.normalise_email(request.form.get("email", ""))[:254]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT_PER_IP"], methods=["POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT_PER_ACCOUNT"],
    methods=["POST"],
    key_func=_account_key,
)
def login():
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm(next=request.args.get("next", ""))
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 422 if form.is_submitted() else 200
    user = auth.authenticate(form.email.data, form.password.data)
    if user is None:
        db.session.commit()
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
