"""Signing in and out, passwords (argon2) and server-side sessions (R-63)."""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy.orm import aliased, contains_eager
from zxcvbn import zxcvbn

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    AccountEntry,
    AuditEvent,
    Contract,
    InetRegistration,
    Organisation,
    OutboxEmail,
    User,
    UserKind,
    UserSession,
)
from portal.permissions import Actor, photos_kept
from portal.services import audit, mail
from portal.services.errors import NotAllowed, PortalError

MIN_PASSWORD_LENGTH = 12
# zxcvbn's score (0..4) below which a password is refused: 3 is "safely unguessable" for an
# online attack with throttling, and what its dictionaries of common and breached passwords,
# names, words and patterns (years, keyboard walks, repeats) say a person would try first.
MIN_PASSWORD_SCORE = 3
# Words of this portal that make a password easy to guess for anyone who knows where it is used.
PORTAL_WORDS = ("imageworks", "image works", "inet", "i-net", "portal", "contract", "keiyaku")
# zxcvbn's time grows with the length; nobody needs more to judge a password.
SCORED_PASSWORD_LENGTH = 100

# A session's last seen instant is written at most this often: a signed-in GET writes nothing.
LAST_SEEN_EVERY = timedelta(minutes=1)

SIGN_IN_FAILED = "sign_in.failed"
FAILURE_NOTICE = "sign_in_failures"  # the e-mail's kind
FAILURE_NOTICE_INTERVAL = timedelta(hours=1)  # at most one such e-mail per account
ATTEMPTED_EMAIL_LENGTH = 100  # an unknown address tried is recorded, cut to this length

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


def authenticate(email: str, password: str, *, ip: str = "") -> User | None:
    """The user of an e-mail address and password, or None. Each failure is on the record
    (never the password), and the owner of an account that sees repeated failures is told."""
    address = normalise_email(email)
    user = db.session.scalar(sa.select(User).where(User.email == address))
    if user is None:
        _verify(_DUMMY_HASH, password)
        tried = "".join(c for c in address if c.isprintable())[:ATTEMPTED_EMAIL_LENGTH]
        audit.record(SIGN_IN_FAILED, ip=ip, reason="unknown_email", email=tried)
        return None
    if not _verify(user.password_hash, password):
        audit.record(SIGN_IN_FAILED, user=user, ip=ip, reason="wrong_password")
        if user.active:
            _tell_owner_of_repeated_failures(user)
        return None
    if not user.active:
        audit.record(SIGN_IN_FAILED, user=user, ip=ip, reason="inactive")
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def _tell_owner_of_repeated_failures(user: User) -> None:
    """Issue 13: SIGN_IN_ALERT_FAILURES wrong passwords within SIGN_IN_ALERT_MINUTES, from any
    addresses, e-mail the account's owner, at most once an hour. The account stays open: the
    rate limit counts failures per account and address, so a stranger cannot lock it."""
    config = current_app.config
    now = clock.now()
    window = timedelta(minutes=config["SIGN_IN_ALERT_MINUTES"])
    failed = sa.select(AuditEvent).where(
        AuditEvent.user_id == user.id,
        AuditEvent.action == SIGN_IN_FAILED,
        AuditEvent.at > now - window,
    )
    count = db.session.scalar(sa.select(sa.func.count()).select_from(failed.subquery()))
    if not count or count < config["SIGN_IN_ALERT_FAILURES"]:
        return
    told = db.session.scalar(
        sa.select(OutboxEmail.id).where(
            OutboxEmail.user_id == user.id,
            OutboxEmail.kind == FAILURE_NOTICE,
            OutboxEmail.created_at > now - FAILURE_NOTICE_INTERVAL,
        )
    )
    if told is not None:
        return
    events = list(db.session.scalars(failed.order_by(AuditEvent.id.desc())))
    addresses = list(dict.fromkeys(e.ip for e in events if e.ip))
    mail.enqueue(
        FAILURE_NOTICE,
        to=user.email,
        locale=user.locale,
        context={
            "user": user,
            "failures": count,
            "minutes": config["SIGN_IN_ALERT_MINUTES"],
            "last_at": now,
            "addresses": addresses[:5],
            "more_addresses": max(0, len(addresses) - 5),
            "password_url": mail.absolute_url("account.password"),
        },
        organisation_id=user.organisation_id,
        user_id=user.id,
        # Two failures at once write one e-mail: the unique key of this hour decides.
        dedupe_key=f"{FAILURE_NOTICE}:{user.id}:{now:%Y%m%d%H}",
    )


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


@dataclass(frozen=True)
class SignedIn:
    """What every signed-in request needs, read in one statement (issue 15): the session, its
    user with the user's organisation and partner company, the open entry into a customer's
    portal (with that organisation and, for staff viewing, the customer user), and for the
    organisation acted in whether it holds contracts, an I-NET SERVICE registration, and terms
    it has not consented to yet (R-60: the banner is read in full only when there are)."""

    user_session: UserSession
    entry: AccountEntry | None
    contracts: bool
    inet: bool
    photos_kept: bool
    terms_pending: bool
    changed: bool  # something was written (last seen, an ending) that the caller commits


@functools.cache
def _signed_in_statement() -> sa.Select:
    """Built once per process: building it costs more than running it (issue 15). The
    session's token and the Tokyo date are bound at each execution (:token, :today)."""
    from portal.services import terms  # terms imports this module's neighbours

    today = sa.bindparam("today", type_=sa.Date())

    entry_organisation = aliased(Organisation)
    as_user = aliased(User)
    acting_in = sa.case(
        (User.kind == UserKind.CUSTOMER, User.organisation_id),
        else_=AccountEntry.organisation_id,
    )
    contracts = sa.exists().where(Contract.organisation_id == acting_in)
    inet = sa.exists().where(
        InetRegistration.organisation_id == acting_in, InetRegistration.ended_at.is_(None)
    )
    return (
        sa.select(
            UserSession,
            AccountEntry,
            contracts.label("contracts"),
            inet.label("inet"),
            photos_kept(acting_in).label("photos_kept"),
            terms.pending_exists(acting_in, today, correlate=(User, AccountEntry)).label(
                "terms_pending"
            ),
        )
        .join(UserSession.user)
        .outerjoin(User.organisation)
        .outerjoin(User.partner)
        .outerjoin(
            AccountEntry,
            sa.and_(
                AccountEntry.user_session_id == UserSession.id, AccountEntry.ended_at.is_(None)
            ),
        )
        .outerjoin(AccountEntry.organisation.of_type(entry_organisation))
        .outerjoin(AccountEntry.as_user.of_type(as_user))
        .options(
            # Filled from this statement's own rows: nothing asks for them again.
            contains_eager(UserSession.user).contains_eager(User.organisation),
            contains_eager(UserSession.user).contains_eager(User.partner),
            contains_eager(AccountEntry.organisation.of_type(entry_organisation)),
            contains_eager(AccountEntry.as_user.of_type(as_user)),
        )
        .where(UserSession.token == sa.bindparam("token"), UserSession.ended_at.is_(None))
    )


class Ended:
    """load_session's answer for a session it has just ended (idle, lifetime): the caller
    commits, so that it stays ended."""


ENDED = Ended()


def load_session(
    token: str, idle: timedelta, lifetime: timedelta | None = None
) -> SignedIn | Ended | None:
    """The live session for a cookie's token, with what every request needs (SignedIn); an
    idle one, or one signed in longer ago than its lifetime (SESSION_MAX_HOURS unless given),
    is ended here. Last seen is written at most once a minute: most requests write nothing.

    The related rows come in the same statement, so the session's identity map answers
    `user.organisation`, `entry.organisation` and the like without asking again."""
    now = clock.now()
    row = db.session.execute(
        _signed_in_statement(), {"token": token, "today": clock.today()}
    ).first()
    if row is None:
        return None
    user_session: UserSession = row[0]
    user: User = user_session.user
    if not user.active:
        return None
    if lifetime is None:
        lifetime = timedelta(hours=current_app.config["SESSION_MAX_HOURS"])
    if now - user_session.created_at >= lifetime:
        # Issue 13: however busy, a session ends a fixed time after sign-in.
        end_sessions(user, reason="lifetime", only=user_session)
        return ENDED
    if now - user_session.last_seen_at > idle:
        end_sessions(user, reason="idle", only=user_session)
        return ENDED
    changed = now - user_session.last_seen_at > LAST_SEEN_EVERY
    if changed:
        user_session.last_seen_at = now
    return SignedIn(
        user_session,
        row.AccountEntry,
        contracts=bool(row.contracts),
        inet=bool(row.inet),
        photos_kept=bool(row.photos_kept),
        terms_pending=bool(row.terms_pending),
        changed=changed,
    )


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
    # Issue 13: common, breached and guessable passwords are refused, judged by zxcvbn's
    # dictionaries with the user's own name and address and the portal's words added.
    if zxcvbn(password[:SCORED_PASSWORD_LENGTH], _personal_words(user))["score"] < (
        MIN_PASSWORD_SCORE
    ):
        raise PortalError(
            _(
                "This password is too common or too easy to guess (a well-known password, a "
                "name, a word with a year or a pattern). Use a longer phrase of several "
                "unrelated words."
            ),
            field="new_password",
        )


def _personal_words(user: User | None) -> list[str]:
    """What an attacker who knows the user and this portal tries first."""
    words = list(PORTAL_WORDS)
    if user is None:
        return words
    email = user.email or ""
    local, _at, domain = email.partition("@")
    words += [email, local, *local.replace("_", ".").replace("-", ".").split(".")]
    words += domain.split(".")[:-1]
    for name in (user.name or "", user.organisation.legal_name if user.organisation else ""):
        parts = name.split()
        words += [name, *parts, "".join(parts), "".join(reversed(parts))]
    return [w for w in words if len(w) >= 3]  # "jp", "co": too short to be a guess
