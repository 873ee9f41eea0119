"""An organisation's incident feed (Atom) and maintenance calendar (iCalendar), behind a
secret address that feed readers and calendars can subscribe to without signing in.

The address carries an HMAC of the organisation's feed nonce made with the app's secret key,
so the database alone does not reveal it and no token is stored. An administrator rotates the
nonce to end every subscription (a new address); rotating the app's secret key also does.
Each feed shows that organisation's data only (the incidents that touched its contracts, the
maintenance of the services it uses), in its language, and never an amount.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import icalendar
import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from portal.clock import clock
from portal.extensions import db
from portal.models import Organisation, OrganisationFeed, Provider
from portal.permissions import Actor, can_rotate_feeds
from portal.presentation import tokyo_minute
from portal.services import audit, incidents, mail
from portal.services.errors import NotAllowed

ATOM = "http://www.w3.org/2005/Atom"
CALENDAR_PAST_DAYS = 92
CALENDAR_AHEAD_DAYS = 183
TOKEN_BYTES = 24


def _nonce(organisation_id: int) -> str:
    found = db.session.scalar(
        sa.select(OrganisationFeed.nonce).where(OrganisationFeed.organisation_id == organisation_id)
    )
    return found or ""


def token_for(organisation_id: int, nonce: str | None = None) -> str:
    """The secret part of the organisation's feed addresses."""
    nonce = _nonce(organisation_id) if nonce is None else nonce
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"feeds:{organisation_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:TOKEN_BYTES]).decode().rstrip("=")


def verify(organisation_id: int, token: str) -> bool:
    if len(token) > 64:
        return False
    return hmac.compare_digest(token_for(organisation_id).encode(), token.encode())


def addresses(organisation_id: int) -> dict[str, str]:
    token = token_for(organisation_id)
    return {
        "atom": mail.absolute_url(
            "sla.incident_feed", organisation_id=organisation_id, feed_token=token
        ),
        "ics": mail.absolute_url(
            "sla.maintenance_feed", organisation_id=organisation_id, feed_token=token
        ),
    }


def rotate(actor: Actor, organisation: Organisation, *, ip: str = "") -> None:
    """A new secret address; the old one answers 404 from now on."""
    if not can_rotate_feeds(actor):
        raise NotAllowed(_("Only the customer's administrators change the feed addresses."))
    feed = db.session.get(OrganisationFeed, organisation.id)
    if feed is None:
        feed = OrganisationFeed(organisation_id=organisation.id)
        db.session.add(feed)
    feed.nonce = secrets.token_hex(16)
    feed.rotated_at = clock.now()
    feed.rotated_by_id = actor.user.id
    audit.record("feeds.rotated", actor=actor, organisation_id=organisation.id, ip=ip)


def _host() -> str:
    return urlsplit(current_app.config["BASE_URL"]).hostname or "portal.invalid"


def _locale(organisation: Organisation) -> str:
    return organisation.locale if organisation.locale in ("ja", "en") else "ja"


def _atom_time(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def incident_feed(organisation: Organisation) -> bytes:
    """Atom (RFC 4287): the incidents of the last 12 months that touched the organisation's
    contracts, each with its timeline, newest first."""
    locale = _locale(organisation)
    now = clock.now()
    views = incidents.for_organisation(organisation.id, now)
    provider = db.session.scalar(sa.select(Provider).limit(1))
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed", {"xml:lang": locale})
    with force_locale(locale):
        _sub(feed, "id", f"tag:{_host()},2026:incidents:{organisation.id}")
        _sub(feed, "title", _("Incidents: %(org)s", org=organisation.legal_name))
        updated = max([_last_change(v) for v in views], default=organisation.created_at or now)
        _sub(feed, "updated", _atom_time(updated))
        author = _sub(feed, "author")
        _sub(author, "name", provider.name(locale) if provider else _("Contract portal"))
        ET.SubElement(
            feed, f"{{{ATOM}}}link", {"rel": "alternate", "href": mail.absolute_url("sla.system")}
        )
        for view in views:
            version = view.version
            entry = _sub(feed, "entry")
            _sub(entry, "id", f"tag:{_host()},2026:incident:{view.incident.id}")
            state = _("Ongoing") if view.is_open else _("Ended")
            _sub(entry, "title", f"[{state}] {version.title(locale)}")
            _sub(entry, "updated", _atom_time(_last_change(view)))
            _sub(entry, "published", _atom_time(view.incident.created_at))
            ET.SubElement(
                entry,
                f"{{{ATOM}}}link",
                {
                    "rel": "alternate",
                    "href": mail.absolute_url("sla.incident", incident_id=view.incident.id),
                },
            )
            ended = tokyo_minute(version.ended_at) if version.ended_at else _("not yet")
            lines = [
                f"{_('Began')}: {tokyo_minute(version.started_at)}",
                f"{_('Ended')}: {ended}",
                "",
            ]
            for update in view.updates:
                lines.append(f"{tokyo_minute(update.posted_at)} {update.message(locale)}")
            _sub(entry, "content", "\n".join(lines), type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _last_change(view: incidents.IncidentView) -> datetime:
    times = [view.version.created_at, *(u.posted_at for u in view.incident.updates)]
    return max(times)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attributes)
    if text is not None:
        element.text = text
    return element


def maintenance_calendar(organisation: Organisation) -> bytes:
    """iCalendar (RFC 5545): the maintenance windows of the services the organisation uses,
    from three months back to six months ahead, in UTC (every calendar shows local time)."""
    locale = _locale(organisation)
    now = clock.now()
    items = incidents.maintenance_for(
        _services_of(organisation.id),
        now - timedelta(days=CALENDAR_PAST_DAYS),
        now + timedelta(days=CALENDAR_AHEAD_DAYS),
    )
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Contract portal//Maintenance//" + locale.upper())
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    with force_locale(locale):
        calendar.add("x-wr-calname", _("Maintenance: %(org)s", org=organisation.legal_name))
        for item in items:
            event = icalendar.Event()
            event.add("uid", f"{item.uid}@{_host()}")
            # Stable, so a calendar sees no change where there is none.
            stamp = item.maintenance.created_at if item.maintenance else item.start
            event.add("dtstamp", stamp.astimezone(UTC))
            event.add("dtstart", item.start.astimezone(UTC))
            event.add("dtend", item.end.astimezone(UTC))
            event.add("summary", item.title(locale))
            event.add(
                "description",
                _("The service cannot be used during maintenance."),
            )
            event.add("status", "CONFIRMED")
            event.add("transp", "OPAQUE")
            calendar.add_component(event)
    return calendar.to_ical()


def _services_of(organisation_id: int) -> set[int]:
    from portal.models import Contract, ContractStatus

    return set(
        db.session.scalars(
            sa.select(Contract.service_id).where(
                Contract.organisation_id == organisation_id,
                Contract.status == ContractStatus.ACTIVE,
            )
        )
    )
