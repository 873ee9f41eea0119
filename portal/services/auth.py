"""Signing in and out, passwords (argon2) and server-side sessions (R-63)."""

from __future__ import annotations

import secrets
from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask_babel import gettext as _

from portal.clock import clock
from portal.extensions import db
from portal.models import AccountEntry, User, UserSession
from portal.permissions import Actor
from portal.services import audit
from portal.services.errors import NotAllowed, PortalError

MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
# Verified when the e-mail is unknown, so that a wrong address costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    return email.strip().lower()


def authenticate(email: str, password: str) -> User | None:
    user = db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))
    if user is None:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(user.password_hash, password) or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def start_session(user: User, *, ip: str, user_agent: str) -> UserSession:
    """A new server-side session; its token is what the session cookie carries."""
    user_session = UserSession(
        token=secrets.token_urlsafe(32), user=user, ip=ip, user_agent=user_agent[:300]
    )
    db.session.add(user_session)
    user.last_login_at = clock.now()
    db.session.flush()
    user.session_token = user_session.token
    audit.record("signed_in", user=user, ip=ip, session_id=user_session.id)
    return user_session


def load_session(token: str, idle: timedelta) -> UserSession | None:
    """The live session for a cookie's token; an idle one is ended here."""
    user_session = db.session.scalar(
        sa.select(UserSession).where(UserSession.token == token, UserSession.ended_at.is_(None))
    )
    if user_session is None or not user_session.user.active:
        return None
    now = clock.now()
    if now - user_session.last_seen_at > idle:
        end_sessions(user_session.user, reason="idle", only=user_session)
        return None
    if now - user_session.last_seen_at > timedelta(minutes=1):
        user_session.last_seen_at = now
    return user_session


def end_sessions(
    user: User,
    *,
    reason: str,
    only: UserSession | None = None,
    keep: UserSession | None = None,
) -> int:
    """End sessions of a user on the server (all, one, or all but one), with their entries."""
    query = sa.select(UserSession).where(
        UserSession.user_id == user.id, UserSession.ended_at.is_(None)
    )
    if only is not None:
        query = query.where(UserSession.id == only.id)
    if keep is not None:
        query = query.where(UserSession.id != keep.id)
    ended = 0
    now = clock.now()
    for user_session in db.session.scalars(query):
        user_session.ended_at = now
        user_session.ended_reason = reason
        for entry in db.session.scalars(
            sa.select(AccountEntry).where(
                AccountEntry.user_session_id == user_session.id, AccountEntry.ended_at.is_(None)
            )
        ):
            entry.ended_at = now
            entry.ended_reason = reason
            # the end of a view as customer carries both identities, like its start.
            audit.record("entry_ended", actor=Actor(user, entry), subject=entry, reason=reason)
        ended += 1
    return ended


def sign_out(user: User, *, ip: str) -> None:
    """Signing out ends every session of the user on the server, not only this browser's."""
    count = end_sessions(user, reason="signed_out")
    audit.record("signed_out", user=user, ip=ip, sessions_ended=count)


def change_password(
    actor_user: User,
    *,
    is_staff_view: bool,
    current_session: UserSession | None,
    current_password: str,
    new_password: str,
    ip: str,
) -> None:
    """Change the signed-in user's own password and end their other sessions."""
    if is_staff_view:
        # staff viewing as a customer never change credentials.
        raise NotAllowed(_("Credentials cannot be changed while viewing as a customer."))
    if not _verify(actor_user.password_hash, current_password):
        raise PortalError(_("The current password is not correct."), field="current_password")
    check_password_strength(new_password, actor_user)
    actor_user.password_hash = hash_password(new_password)
    actor_user.password_changed_at = clock.now()
    actor_user.must_change_password = False
    ended = end_sessions(actor_user, reason="password_changed", keep=current_session)
    audit.record("password_changed", user=actor_user, ip=ip, other_sessions_ended=ended)


def check_password_strength(password: str, user: User | None = None) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PortalError(
            _("Use at least %(n)d characters.", n=MIN_PASSWORD_LENGTH), field="new_password"
        )
    if user is not None and normalise_email(password) == user.email:
        raise PortalError(_("The password must not be your e-mail address."), field="new_password")
