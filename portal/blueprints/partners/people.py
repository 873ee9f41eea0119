"""A partner company's people (issue 14, R-71, R-63): its administrators invite, re-invite and
remove the company's agents, and see which agent acted for which client. Routes of the
partners blueprint: anyone but an agent gets 404, an agent who is not an administrator 403.
The administrator remains an agent: these pages work inside a client's portal as the client
list does."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from wtforms import EmailField, HiddenField, SelectField, StringField
from wtforms.fields.choices import SelectChoice

from portal.blueprints.partners.views import bp
from portal.blueprints.validators import LANGUAGE_CHOICES, at_most, email, required, show_error
from portal.extensions import db
from portal.models import PartnerRole, User
from portal.paging import Page, page_number
from portal.permissions import (
    Actor,
    can_manage_partner_people,
    get_partner_agent_or_404,
    is_agent,
)
from portal.services import accounts
from portal.services import partner_people as people_service
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.web import client_ip, current_actor

ROLE_CHOICES = [
    SelectChoice(PartnerRole.AGENT.value, _l("Agent")),
    SelectChoice(PartnerRole.ADMINISTRATOR.value, _l("Administrator")),
]
MAX_ID_DIGITS = 9  # a filter value longer than this names nothing (and never reaches SQL)


class AgentInviteForm(FlaskForm):
    """A new agent or administrator of a partner company (also staff's form, R-71)."""

    name = StringField(
        _l("Name"), validators=[required(_l("Enter the person's name.")), at_most(100)]
    )
    email = EmailField(
        _l("E-mail address"),
        validators=[required(_l("Enter an e-mail address.")), email(), at_most(254)],
    )
    role = SelectField(
        _l("Role"), choices=ROLE_CHOICES, default=PartnerRole.AGENT.value, validate_choice=True
    )
    locale = SelectField(_l("Language of e-mails"), choices=LANGUAGE_CHOICES, default="ja")


class AgentActionForm(FlaskForm):
    """Re-sending an invitation needs nothing but the CSRF token."""


class RemoveAgentForm(FlaskForm):
    """Removing an agent cannot be undone: the confirmation page sends `confirmed` "yes"."""

    confirmed = HiddenField()


def _agent() -> Actor:
    actor = current_actor()
    if not is_agent(actor):
        abort(404)
    return actor


def _require_managing(actor: Actor) -> Actor:
    if not can_manage_partner_people(actor):
        abort(403, _("Only the company's administrators manage its agents."))
    return actor


def _managing_actor() -> Actor:
    return _require_managing(_agent())


def _people_page(
    actor: Actor, form: AgentInviteForm | None = None, *, error: str = "", status: int = 200
):
    return render_template(
        "partners/people.html",
        people=people_service.people_of(actor.user.partner),
        form=form or AgentInviteForm(formdata=None),
        action_form=AgentActionForm(),
        error=error,
    ), status


@bp.get("/people")
@login_required
def people():
    """The company's agents, their invitations and last sign-in, and the invitation form."""
    return _people_page(_managing_actor())


@bp.post("/people")
@login_required
def invite_agent():
    actor = _managing_actor()
    form = AgentInviteForm()
    if not form.validate_on_submit():
        return _people_page(actor, form, status=422)
    try:
        user = people_service.invite(
            actor,
            actor.user.partner,
            name=form.name.data,
            email=form.email.data,
            role=PartnerRole(form.role.data),
            locale=form.locale.data,
            ip=client_ip(),
        )
        db.session.commit()
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except PortalError as exc:
        db.session.rollback()
        show_error(form, exc, "email")
        return _people_page(actor, form, status=422)
    except IntegrityError:
        # The same address invited twice at once: the unique index on users.email takes one.
        db.session.rollback()
        form.email.errors.append(accounts.address_not_usable())
        return _people_page(actor, form, status=422)
    flash(
        _("%(email)s was invited and will receive a link to choose a password.", email=user.email),
        "success",
    )
    return redirect(url_for("partners.people"))


def _agent_to_change(user_id: int, form: FlaskForm) -> tuple[Actor, User]:
    """Load (another company's agent: 404), then authorize (403)."""
    actor = _agent()
    user = get_partner_agent_or_404(user_id, actor)
    _require_managing(actor)
    if not form.validate_on_submit():
        abort(400)
    return actor, user


@bp.post("/people/<int:user_id>/resend")
@login_required
def resend_agent_invitation(user_id: int):
    """A new invitation link; the earlier ones stop working."""
    actor, user = _agent_to_change(user_id, AgentActionForm())
    try:
        people_service.resend_invitation(actor, user, ip=client_ip())
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except Conflict as exc:
        db.session.rollback()
        return _people_page(actor, error=str(exc), status=409)
    db.session.commit()
    flash(_("A new invitation was sent to %(email)s.", email=user.email), "success")
    return redirect(url_for("partners.people"))


@bp.post("/people/<int:user_id>/remove")
@login_required
def remove_agent(user_id: int):
    """R-71/R-63: the agent can no longer sign in; their sessions and any entry into a client
    end at once. Asked once more first: a removal cannot be undone."""
    form = RemoveAgentForm()
    actor, user = _agent_to_change(user_id, form)
    if form.confirmed.data == "edit":
        return redirect(url_for("partners.people"))
    try:
        if form.confirmed.data != "yes":
            people_service.check_removal(actor, user)
            return _confirm_removal(form, user)
        entries_ended = people_service.remove(actor, user, ip=client_ip())
    except NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except Conflict as exc:
        db.session.rollback()
        return _people_page(actor, error=str(exc), status=409)
    db.session.commit()
    flash(_("%(name)s was removed and signed out everywhere.", name=user.name), "success")
    if entries_ended:
        flash(_("They were acting for a client and were let out at once."), "info")
    return redirect(url_for("partners.people"))


def _role_name(user: User) -> str:
    return _("Administrator") if user.partner_role == PartnerRole.ADMINISTRATOR else _("Agent")


def _confirm_removal(form: RemoveAgentForm, user: User):
    return render_template(
        "_confirm.html",
        form=form,
        action=url_for("partners.remove_agent", user_id=user.id),
        summary=[
            _(
                "Remove %(name)s (%(email)s, %(role)s).",
                name=user.name,
                email=user.email,
                role=_role_name(user),
            ),
            _(
                "They are signed out everywhere at once and can no longer sign in; if they are "
                "acting for a client now, they are let out; an invitation link they have stops "
                "working."
            ),
            _("What they did for clients stays on the record."),
            _("A removal cannot be undone, and this e-mail address cannot be invited again."),
        ],
        confirm_label=_("Remove"),
    )


# --- which agent acted for which client --------------------------------------------------------


def _chosen(name: str, allowed: set[int], message: str) -> tuple[int | None, str, str]:
    """A filter's id from the query string: (the id or None, the value as typed, an error).
    Anything that is not one of `allowed` (a word, NUL, a negative or huge number, another
    company's agent) is refused with the message, never looked up."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return None, "", ""
    shown = raw[:20]
    if not (raw.isascii() and raw.isdigit()) or len(raw.lstrip("0")) > MAX_ID_DIGITS:
        return None, shown, message
    value = int(raw)
    if value not in allowed:
        return None, shown, message
    return value, shown, ""


@bp.get("/activity")
@login_required
def activity():
    """R-71: which of the company's agents entered which client, when, and why, newest first;
    filtered by agent and by client, by page."""
    actor = _managing_actor()
    partner = actor.user.partner
    choices = people_service.activity_choices(partner)
    agent_id, agent_typed, agent_error = _chosen(
        "agent", {u.id for u in choices.agents}, _("Choose an agent from the list.")
    )
    client_id, client_typed, client_error = _chosen(
        "client", {o.id for o in choices.clients}, _("Choose a client from the list.")
    )
    if agent_error or client_error:
        found = Page([], 1, people_service.ACTIVITY_PER_PAGE, 0)
    else:
        found = people_service.activity(
            partner,
            agent_id=agent_id,
            organisation_id=client_id,
            page=page_number(request.args),
        )
    page = render_template(
        "partners/activity.html",
        entries=found,
        choices=choices,
        agent_id=agent_id,
        client_id=client_id,
        agent_error=agent_error,
        client_error=client_error,
        filtered=bool(agent_typed or client_typed),
    )
    return page, 422 if agent_error or client_error else 200
