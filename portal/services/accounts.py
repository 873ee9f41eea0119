"""Accounts (R-63): password reset and invitation by single-use e-mailed links, the users of
an organisation (R-70), and reports of suspected misuse.

A link carries a random token; only its SHA-256 is stored, so the table alone opens no
account. A token is spent by a conditional UPDATE, so two submissions of one link at once
set the password once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import selectinload

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    AccountToken,
    ApiToken,
    CustomerRole,
    MisuseReport,
    Organisation,
    PartnerRole,
    TokenPurpose,
    User,
    UserKind,
)
from portal.paging import Page, paginate
from portal.permissions import (
    Actor,
    can_handle_misuse_reports,
    can_manage_users,
    can_report_misuse,
)
from portal.services import audit, mail
from portal.services.auth import (
    check_password_strength,
    end_sessions,
    hash_password,
    normalise_email,
)
from portal.services.errors import Conflict, NotAllowed, PortalError
from portal.transaction import begin_writing

RESET_LIFETIME = timedelta(hours=1)
INVITATION_LIFETIME = timedelta(days=7)
MAX_MISUSE_DETAILS = 2000
MAX_HANDLING_NOTE = 2000


class TokenUnusable(PortalError):
    """The link is unknown, expired or already used (the page says so and offers a new one)."""

    def __init__(self, message: str, *, known: bool) -> None:
        super().__init__(message)
        self.known = known  # False: no such link at all (404); True: spent or expired (410)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _unusable_password_hash() -> str:
    """Not an argon2 hash: no password verifies against it until the invitee sets one."""
    return "!unusable:" + secrets.token_hex(16)


def _retire_tokens(user: User, purpose: TokenPurpose | None = None) -> None:
    """Earlier unused links of the user stop working (a new one was sent, or one was used)."""
    now = clock.now()
    query = sa.update(AccountToken).where(
        AccountToken.user_id == user.id,
        AccountToken.used_at.is_(None),
        AccountToken.expires_at > now,
    )
    if purpose is not None:
        query = query.where(AccountToken.purpose == purpose)
    db.session.execute(query.values(expires_at=now).execution_options(synchronize_session=False))


def _issue(
    user: User, purpose: TokenPurpose, lifetime: timedelta, created_by: User | None = None
) -> tuple[AccountToken, str]:
    _retire_tokens(user, purpose)
    plain = secrets.token_urlsafe(32)
    token = AccountToken(
        user_id=user.id,
        purpose=purpose,
        token_hash=_digest(plain),
        expires_at=clock.now() + lifetime,
        created_by_id=created_by.id if created_by else None,
    )
    db.session.add(token)
    db.session.flush()
    return token, plain


# --- password reset -----------------------------------------------------------------------


def request_password_reset(email: str, *, ip: str) -> None:
    """E-mail a reset link to an active user with this address; for any other address do
    nothing, so that the answer (the same page) tells nobody who has an account."""
    user = db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    if user is None or not user.active:
        return
    token, plain = _issue(user, TokenPurpose.PASSWORD_RESET, RESET_LIFETIME)
    mail.enqueue(
        "password_reset",
        to=user.email,
        locale=user.locale,
        context={
            "user": user,
            "link": mail.absolute_url("auth.reset_password", token=plain),
            "expires_at": token.expires_at,
            "lifetime_minutes": int(RESET_LIFETIME.total_seconds() // 60),
        },
        organisation_id=user.organisation_id,
        user_id=user.id,
        sensitive=True,
    )
    audit.record("password_reset.requested", user=user, ip=ip, subject=token)


def usable_token(plain: str, purpose: TokenPurpose) -> AccountToken:
    """The token of a link, while it may still be used; TokenUnusable otherwise."""
    token = db.session.scalar(
        sa.select(AccountToken).where(
            AccountToken.token_hash == _digest(plain), AccountToken.purpose == purpose
        )
    )
    if token is None:
        raise TokenUnusable(_("This link is not valid."), known=False)
    if token.used_at is not None:
        raise TokenUnusable(_("This link was already used."), known=True)
    if token.expires_at <= clock.now() or not token.user.active:
        raise TokenUnusable(_("This link has expired."), known=True)
    return token


def _spend(token: AccountToken) -> None:
    """Use the token once: the database lets exactly one of two submissions at once through."""
    now = clock.now()
    spent = db.session.execute(
        sa.update(AccountToken)
        .where(
            AccountToken.id == token.id,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if spent != 1:
        raise TokenUnusable(_("This link was already used."), known=True)
    db.session.expire(token)


def _set_password_by_token(plain: str, purpose: TokenPurpose, new_password: str) -> User:
    token = usable_token(plain, purpose)
    user = token.user
    check_password_strength(new_password, user)
    password_hash = hash_password(new_password)  # slow on purpose: before the write lock
    begin_writing()
    _spend(token)
    _retire_tokens(user)  # one password set: every other link of the user is spent too
    user.password_hash = password_hash
    user.password_changed_at = clock.now()
    user.must_change_password = False
    return user


def reset_password(plain: str, new_password: str, *, ip: str) -> User:
    """R-63: set a new password from a reset link and end every session of the account."""
    user = _set_password_by_token(plain, TokenPurpose.PASSWORD_RESET, new_password)
    ended = end_sessions(user, reason="password_reset")
    audit.record("password_reset.completed", user=user, ip=ip, sessions_ended=ended)
    return user


def accept_invitation(plain: str, new_password: str, *, ip: str) -> User:
    """The invitee chooses a password; then they sign in like everyone else."""
    user = _set_password_by_token(plain, TokenPurpose.INVITATION, new_password)
    audit.record("invitation.accepted", user=user, ip=ip)
    return user


# --- users of an organisation (R-70) -------------------------------------------------------


@dataclass(frozen=True)
class OrganisationUser:
    """A user with their invitation: an organisation's user, or a partner company's agent."""

    user: User
    invited_until: datetime | None  # a pending invitation: until when its link works
    invitation_expired: bool  # invited, never accepted, and the link has expired

    @property
    def invitation_pending(self) -> bool:
        return self.invited_until is not None or self.invitation_expired


def users_of(organisation: Organisation) -> list[OrganisationUser]:
    """The organisation's users (active first, administrators first) with their invitations."""
    return with_invitations(
        db.session.scalars(
            sa.select(User)
            .where(User.organisation_id == organisation.id)
            .order_by(User.active.desc(), User.customer_role, User.name, User.id)
        )
    )


def with_invitations(found: Iterable[User]) -> list[OrganisationUser]:
    """The users, in their order, each with their pending or expired invitation."""
    users = list(found)
    latest = dict(
        db.session.execute(
            sa.select(AccountToken.user_id, sa.func.max(AccountToken.expires_at))
            .where(
                AccountToken.purpose == TokenPurpose.INVITATION,
                AccountToken.user_id.in_([u.id for u in users]),
            )
            .group_by(AccountToken.user_id)
        ).all()
    )
    now = clock.now()
    listed = []
    for user in users:
        expires = latest.get(user.id)
        pending = expires is not None and user.password_changed_at is None and user.active
        listed.append(
            OrganisationUser(
                user,
                invited_until=expires if pending and expires > now else None,
                invitation_expired=pending and expires <= now,
            )
        )
    return listed


def _invitation_email(user: User, plain: str, token: AccountToken, invited_by: User) -> None:
    """The invitation in the invitee's language: to the organisation's portal, or for an agent
    (no organisation of their own) to act for the partner company's clients (R-71)."""
    agent = user.kind == UserKind.AGENT
    mail.enqueue(
        "partner_agent_invitation" if agent else "invitation",
        to=user.email,
        locale=user.locale,
        context={
            "user": user,
            "organisation": user.organisation,
            "partner": user.partner,
            "administrator": agent and user.partner_role == PartnerRole.ADMINISTRATOR,
            "invited_by": invited_by.name,
            "link": mail.absolute_url("auth.accept_invitation", token=plain),
            "expires_at": token.expires_at,
        },
        organisation_id=user.organisation_id,
        user_id=user.id,
        sensitive=True,
    )


def address_for_new_user(email: str, *, ours: Callable[[User], bool]) -> str:
    """The address, normalised, when no user has it yet; else PortalError next to the field.
    A user of the inviter's own organisation (or company: `ours`) is named as such; whose any
    other address is (another customer's, an agent's, the provider's) is not the inviter's to
    learn (issue 13): one answer for every address not usable here."""
    address = normalise_email(email)
    holder = db.session.scalar(sa.select(User).where(User.email == address))
    if holder is not None and ours(holder):
        raise PortalError(_("A user with this e-mail address already exists."), field="email")
    if holder is not None:
        raise PortalError(address_not_usable(), field="email")
    return address


def address_not_usable() -> str:
    return _("This address cannot be used for a new user. Ask the person for another one.")


def add_invitee(user: User, *, invited_by: User) -> User:
    """A new named user (R-63) without a password: they choose their own from the e-mailed
    link. Two invitations of one address at once: the unique index on users.email lets one
    through (the caller catches IntegrityError)."""
    user.password_hash = _unusable_password_hash()
    db.session.add(user)
    db.session.flush()
    token, plain = _issue(user, TokenPurpose.INVITATION, INVITATION_LIFETIME, invited_by)
    _invitation_email(user, plain, token, invited_by)
    return user


def invite(
    actor: Actor,
    *,
    name: str,
    email: str,
    role: CustomerRole,
    locale: str,
    ip: str,
) -> User:
    """R-70: an administrator adds a named user (R-63), who sets their own password from the
    e-mailed link. A duplicate address is refused next to the field; two at once are left to
    the unique index (the view answers the same)."""
    if not can_manage_users(actor):
        raise NotAllowed(_("Only the organisation's administrators manage its users."))
    address = address_for_new_user(
        email, ours=lambda holder: holder.organisation_id == actor.organisation_id
    )
    user = User(
        email=address,
        name=name.strip(),
        locale=locale,
        kind=UserKind.CUSTOMER,
        organisation_id=actor.organisation_id,
        customer_role=role,
        active=True,
    )
    add_invitee(user, invited_by=actor.user)
    audit.record("user.invited", actor=actor, subject=user, ip=ip, email=address, role=role.value)
    return user


def invite_first_administrator(user: User, *, invited_by: User) -> AccountToken:
    """Onboarding (R-63): the new organisation's first administrator chooses their own
    password from an e-mailed invitation; nobody at the provider ever knows it."""
    user.password_hash = _unusable_password_hash()
    token, plain = _issue(user, TokenPurpose.INVITATION, INVITATION_LIFETIME, invited_by)
    _invitation_email(user, plain, token, invited_by)
    return token


def resend_invitation(actor: Actor, user: User, *, ip: str) -> None:
    """A new link for an invitee who has not set a password yet; earlier links stop working."""
    if not can_manage_users(actor):
        raise NotAllowed(_("Only the organisation's administrators manage its users."))
    reissue_invitation(user, invited_by=actor.user)
    audit.record("user.invitation_resent", actor=actor, subject=user, ip=ip)


def reissue_invitation(user: User, *, invited_by: User) -> None:
    """A new invitation link by e-mail, while the invitee has not set a password; the caller
    decided who may send it, and records it."""
    if not user.active:
        raise Conflict(_("This user was removed."))
    (listed,) = with_invitations([user])
    if user.password_changed_at is not None or not listed.invitation_pending:
        # Accepted, or never invited (a user given a password otherwise): no link to renew.
        raise Conflict(_("This user already accepted the invitation."))
    token, plain = _issue(user, TokenPurpose.INVITATION, INVITATION_LIFETIME, invited_by)
    _invitation_email(user, plain, token, invited_by)


def check_removal(actor: Actor, user: User) -> None:
    """What refuses a removal, asked before the administrator confirms it (remove_user asks
    again under the lock)."""
    if not can_manage_users(actor):
        raise NotAllowed(_("Only the organisation's administrators manage its users."))
    if user.id == actor.user.id:
        raise Conflict(_("You cannot remove yourself."))
    if not user.active:
        raise Conflict(_("This user was already removed."))
    if user.customer_role == CustomerRole.ADMINISTRATOR and not _other_administrators(user):
        raise Conflict(_("The organisation needs at least one administrator."))


def _other_administrators(user: User) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(User)
        .where(
            User.organisation_id == user.organisation_id,
            User.customer_role == CustomerRole.ADMINISTRATOR,
            User.active.is_(True),
            User.id != user.id,
        )
    )


def remove_user(actor: Actor, user: User, *, ip: str) -> int:
    """R-70/R-63: the user can no longer sign in, and every session of theirs ends now.

    The organisation always keeps an active administrator: the check runs under the
    organisation's row lock (SQLite: the database's write lock), so two administrators
    removing each other at once leave one of them.
    """
    if not can_manage_users(actor):
        raise NotAllowed(_("Only the organisation's administrators manage its users."))
    if user.id == actor.user.id:
        raise Conflict(_("You cannot remove yourself."))
    begin_writing()
    db.session.execute(
        sa.select(Organisation.id).where(Organisation.id == user.organisation_id).with_for_update()
    )
    db.session.refresh(actor.user)
    db.session.refresh(user)
    if not actor.user.active:
        raise NotAllowed(_("Only the organisation's administrators manage its users."))
    check_removal(actor, user)
    ended = deactivate(user)
    audit.record("user.removed", actor=actor, subject=user, ip=ip, sessions_ended=ended)
    return ended


def deactivate(user: User, *, reason: str = "user_removed") -> int:
    """The user can no longer sign in: their unused links stop working and every session of
    theirs ends now, with any entry into a customer's portal made in it. Returns how many
    sessions ended."""
    user.active = False
    _retire_tokens(user)
    return end_sessions(user, reason=reason)


# --- suspected misuse (R-63) ----------------------------------------------------------------


def report_misuse(actor: Actor, details: str, *, ip: str, user_agent: str) -> MisuseReport:
    """R-63: every session of the account ends at once, the provider's staff are alerted at
    once, and the user gets a confirmation."""
    if not can_report_misuse(actor):
        raise NotAllowed(_("Misuse is reported by the account's own user."))
    details = details.strip()
    if len(details) > MAX_MISUSE_DETAILS:
        raise PortalError(
            _("Use at most %(max)d characters.", max=MAX_MISUSE_DETAILS), field="details"
        )
    user = actor.user
    report = MisuseReport(
        user_id=user.id,
        organisation_id=user.organisation_id,
        details=details,
        ip=ip[:64],
        user_agent=user_agent[:300],
    )
    db.session.add(report)
    db.session.flush()
    report.sessions_ended = end_sessions(user, reason="misuse_reported")
    # API tokens are the account's other way in: a suspected misuse stops them too.
    tokens_revoked = db.session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    audit.record(
        "misuse.reported",
        user=user,
        subject=report,
        ip=ip,
        sessions_ended=report.sessions_ended,
        api_tokens_revoked=tokens_revoked,
    )
    context = {
        "report": report,
        "user": user,
        "organisation": user.organisation,
        "partner": user.partner,
        "reports_url": mail.absolute_url("security.misuse_reports"),
    }
    mail.alert_staff("misuse_alert", context)
    mail.enqueue(
        "misuse_reported",
        to=user.email,
        locale=user.locale,
        context={
            **context,
            "reset_url": mail.absolute_url("auth.forgot_password"),
        },
        organisation_id=user.organisation_id,
        user_id=user.id,
    )
    return report


MISUSE_REPORTS_PER_PAGE = 50


def misuse_reports(*, page: int = 1) -> Page[MisuseReport]:
    """For staff: unhandled reports first, newest first; by page (issue 15)."""
    query = (
        sa.select(MisuseReport)
        .options(
            selectinload(MisuseReport.user).selectinload(User.organisation),
            selectinload(MisuseReport.user).selectinload(User.partner),
        )
        .order_by(
            sa.case((MisuseReport.handled_at.is_(None), 0), else_=1),
            MisuseReport.reported_at.desc(),
            MisuseReport.id.desc(),
        )
    )
    return paginate(query, page, MISUSE_REPORTS_PER_PAGE)


def check_handling(actor: Actor, report: MisuseReport, note: str) -> None:
    """What refuses marking a report handled, asked before staff confirm it (mark_handled
    asks again, and the database decides between two at once)."""
    if not can_handle_misuse_reports(actor):
        raise NotAllowed(_("Only support staff handle misuse reports."))
    note = note.strip()
    if not note:
        raise PortalError(_("Say what was done."), field="note")
    if len(note) > MAX_HANDLING_NOTE:
        raise PortalError(_("Use at most %(max)d characters.", max=MAX_HANDLING_NOTE), field="note")
    if report.handled_at is not None:
        raise Conflict(_("This report was already handled."))


def mark_handled(actor: Actor, report: MisuseReport, note: str, *, ip: str) -> None:
    """Support staff record what they did; a report is handled once."""
    check_handling(actor, report, note)
    begin_writing()
    handled = db.session.execute(
        sa.update(MisuseReport)
        .where(MisuseReport.id == report.id, MisuseReport.handled_at.is_(None))
        .values(handled_at=clock.now(), handled_by_id=actor.user.id, handling_note=note.strip())
        .execution_options(synchronize_session=False)
    ).rowcount
    if handled != 1:
        raise Conflict(_("This report was already handled."))
    db.session.expire(report)
    audit.record("misuse.handled", actor=actor, subject=report, ip=ip)
