"""Per-user tokens for /api/v1: shown once, kept only as a SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from flask_babel import gettext as _

from portal.clock import clock
from portal.extensions import db
from portal.models import ApiToken, User
from portal.permissions import Actor, can_manage_api_tokens
from portal.services import audit
from portal.services.errors import NotAllowed, PortalError
from portal.transaction import begin_writing

TOKEN_PREFIX = "ptk_"  # noqa: S105 (a marker, not a secret)
MAX_ACTIVE_TOKENS = 10
MAX_NAME_LENGTH = 100


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_of(user: User) -> list[ApiToken]:
    return list(
        db.session.scalars(
            sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        )
    )


def create(actor: Actor, name: str, *, ip: str) -> tuple[ApiToken, str]:
    """A new token for the actor's own user; the plain token is returned once, never stored."""
    if not can_manage_api_tokens(actor):
        raise NotAllowed(_("API tokens cannot be managed while viewing as a customer."))
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise PortalError(
            _("Name the token in 1 to %(max)d characters.", max=MAX_NAME_LENGTH), field="name"
        )
    # The cap holds under concurrency: creations for one user take turns (the user's row is
    # locked on PostgreSQL; SQLite's write lock is taken up front), and each counts what the
    # ones before it committed.
    begin_writing()
    db.session.execute(sa.select(User.id).where(User.id == actor.user.id).with_for_update())
    active = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(ApiToken)
        .where(ApiToken.user_id == actor.user.id, ApiToken.revoked_at.is_(None))
    )
    if active >= MAX_ACTIVE_TOKENS:
        raise PortalError(
            _("You have %(max)d active tokens; revoke one first.", max=MAX_ACTIVE_TOKENS),
            field="name",
        )
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=actor.user.id, name=name, token_hash=_digest(plain), prefix=plain[:12])
    db.session.add(token)
    db.session.flush()
    audit.record("api_token.created", actor=actor, subject=token, ip=ip, name=name)
    return token, plain


def revoke(actor: Actor, token: ApiToken, *, ip: str) -> None:
    if not can_manage_api_tokens(actor):
        raise NotAllowed(_("API tokens cannot be managed while viewing as a customer."))
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        audit.record("api_token.revoked", actor=actor, subject=token, ip=ip)


def get_own_or_none(actor: Actor, token_id: int) -> ApiToken | None:
    return db.session.scalar(
        sa.select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == actor.user.id)
    )


def authenticate(plain: str) -> ApiToken | None:
    """The active token for a bearer value, with an active user; None otherwise."""
    if not plain.startswith(TOKEN_PREFIX) or len(plain) > 200:
        return None
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.token_hash == _digest(plain)))
    if token is None or token.revoked_at is not None or not token.user.active:
        return None
    token.last_used_at = clock.now()
    return token
