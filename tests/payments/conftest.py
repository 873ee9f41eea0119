"""Payment fixtures: a local fake Stripe (localstripe), an app pointed at it, issued invoices,
actors, and webhook deliveries signed as Stripe signs them.

Nothing here reaches the real Stripe: the portal's API base is the local server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import stripe
from flask import Flask

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    DocumentKind,
    Invoice,
    InvoiceState,
    InvoiceStatus,
    Organisation,
    User,
)
from portal.payments.webhooks import WebhookResult, handle_webhook
from portal.permissions import Actor
from portal.services.auth import start_session
from portal.services.entries import start_agent_entry, start_staff_view
from tests.factories import VIEW_AS_REASON, World, build_world

SECRET_KEY = "sk_test_portal"
BROWSER_KEY = "sk_test_browser"  # the test's own calls, standing in for Stripe.js
WEBHOOK_SECRET = "whsec_test_portal_webhook_secret"
SERVER_SCRIPT = Path(__file__).with_name("localstripe_server.py")
START_TIMEOUT = 30.0


@dataclass
class StripeServer:
    url: str

    def _request(self, method: str, path: str, key: str | None = None) -> Any:
        request = urllib.request.Request(self.url + path, method=method)  # noqa: S310
        if key:
            request.add_header("Authorization", f"Bearer {key}")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local
            body = response.read()
        return json.loads(body) if body else None

    def reset(self) -> None:
        self._request("DELETE", "/_config/test/state")

    def posts(self, api_key: str = SECRET_KEY) -> list[tuple[str, str]]:
        """(path, idempotency key) of every POST made with `api_key`, in order."""
        log = self._request("GET", "/_config/test/requests")
        return [(p["path"], p["idempotency_key"]) for p in log if p["api_key"] == api_key]

    def browser(self) -> stripe.StripeClient:
        """A client standing in for the customer's browser (Stripe.js)."""
        return stripe.StripeClient(
            BROWSER_KEY, base_addresses={"api": self.url}, max_network_retries=0
        )

    def pay_with_card(self, intent_id: str, card: str = "pm_card_visa") -> str:
        """The customer enters a test card and confirms; returns the intent's status."""
        client = self.browser()
        client.v1.payment_intents.update(intent_id, params={"payment_method": card})
        try:
            return client.v1.payment_intents.confirm(intent_id).status
        except stripe.CardError:
            return "declined"

    def event_for(self, intent_id: str, event_type: str = "payment_intent.succeeded") -> bytes:
        """The event the fake Stripe made for the intent, as the raw body it would send."""
        events = self._request("GET", f"/v1/events?type={event_type}", key=BROWSER_KEY)
        (event,) = [e for e in events["data"] if e["data"]["object"]["id"] == intent_id]
        return json.dumps(event, indent=2).encode()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def stripe_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StripeServer]:
    """localstripe on 127.0.0.1 for the whole session; the tests fail if it cannot start."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("localstripe") / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own script
            [sys.executable, str(SERVER_SCRIPT), str(port)], stdout=log, stderr=log
        )
    server = StripeServer(url=f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"localstripe exited at start:\n{log_path.read_text()}")
            try:
                server.reset()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"localstripe did not answer:\n{log_path.read_text()}")
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def stripe_server(stripe_server_process: StripeServer) -> StripeServer:
    """The fake Stripe, emptied for this test (our ids restart with each test's database)."""
    stripe_server_process.reset()
    return stripe_server_process


@pytest.fixture
def app(make_app, stripe_server: StripeServer) -> Flask:
    return make_app(
        BABEL_DEFAULT_LOCALE="en",  # the tests read the services' messages in English
        STRIPE_SECRET_KEY=SECRET_KEY,
        STRIPE_PUBLISHABLE_KEY="pk_test_portal",
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        STRIPE_API_BASE=stripe_server.url,
    )


@pytest.fixture
def world(app: Flask) -> World:
    return build_world(app)


# --- issued invoices ------------------------------------------------------------------------


def issue_invoice(
    app: Flask,
    organisation_id: int,
    *,
    billing_month: str = "2027-03",
    subtotal: int = 405_000,
    tax_total: int = 40_500,
    status: InvoiceStatus = InvoiceStatus.OPEN,
) -> int:
    """An issued invoice as the issuing run leaves it (frozen rows plus an open state)."""
    year, month = (int(part) for part in billing_month.split("-"))
    start = date(year, month, 1)
    end = date(year + month // 12, month % 12 + 1, 1) - date.resolution
    with app.app_context():
        organisation = db.session.get_one(Organisation, organisation_id)
        sequence = (db.session.scalar(sa.select(sa.func.max(Invoice.sequence))) or 0) + 1
        invoice = Invoice(
            kind=DocumentKind.INVOICE,
            sequence=sequence,
            number=f"INV-{sequence:08d}",
            organisation_id=organisation.id,
            billing_month=billing_month,
            period_start=start,
            period_end=end,
            issued_on=start,
            due_on=end,
            locale="ja",
            recipient_name=organisation.legal_name,
            provider_name="テスト提供者",
            provider_registration_number="T1234567890123",
            subtotal=subtotal,
            tax_total=tax_total,
            total=subtotal + tax_total,
            tax_summary=[{"rate_percent": 10, "taxable": subtotal, "tax": tax_total}],
        )
        invoice.state = InvoiceState(
            status=status, paid_at=clock.now() if status == InvoiceStatus.PAID else None
        )
        db.session.add(invoice)
        db.session.commit()
        return invoice.id


@pytest.fixture
def invoice_id(app: Flask, world: World) -> int:
    """Org A's invoice for March 2027: 405,000 + tax 40,500 = 445,500 yen."""
    return issue_invoice(app, world.org_a)


# --- actors ----------------------------------------------------------------------------------


def actor(world: World, kind: str) -> Actor:
    """One actor of tests.factories.ACTOR_KINDS, inside an app context (entries are stored)."""
    if kind == "support_viewing":
        support = db.session.get_one(User, world.ids["support"])
        entry = start_staff_view(
            Actor(support),
            db.session.get_one(Organisation, world.org_a),
            as_user=db.session.get_one(User, world.ids["admin"]),
            reason=VIEW_AS_REASON,
            user_session=start_session(support, ip="127.0.0.1", user_agent="tests"),
            max_minutes=60,
            ip="127.0.0.1",
        )
        return Actor(support, entry)
    user = db.session.get_one(User, world.ids[kind])
    if kind in ("sales_agent", "agency_agent"):
        entry = start_agent_entry(
            Actor(user),
            world.org_a,
            purpose="",
            user_session=start_session(user, ip="127.0.0.1", user_agent="tests"),
            ip="127.0.0.1",
        )
        return Actor(user, entry)
    return Actor(user)


# --- webhook deliveries ------------------------------------------------------------------------


def signature(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header: t=<unix time>,v1=HMAC-SHA256(secret, "<t>.<raw body>")."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def intent_event(
    app: Flask,
    invoice_id: int,
    *,
    event_type: str = "payment_intent.succeeded",
    event_id: str = "evt_test_1",
    intent_id: str = "pi_test_1",
    amount: int | None = None,
    currency: str = "jpy",
    metadata: dict[str, str] | None = None,
) -> bytes:
    """A PaymentIntent event for the invoice, shaped as Stripe sends it."""
    with app.app_context():
        invoice = db.session.get_one(Invoice, invoice_id)
        total, number, organisation_id = invoice.total, invoice.number, invoice.organisation_id
    amount = total if amount is None else amount
    succeeded = event_type == "payment_intent.succeeded"
    intent = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if succeeded else 0,
        "currency": currency,
        "status": "succeeded" if succeeded else "requires_payment_method",
        "metadata": metadata
        if metadata is not None
        else {
            "invoice_id": str(invoice_id),
            "invoice_number": number,
            "organisation_id": str(organisation_id),
        },
        "last_payment_error": None
        if succeeded
        else {"code": "card_declined", "message": "Your card was declined."},
    }
    event = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "created": int(clock.now().timestamp()),
        "livemode": False,
        "data": {"object": intent},
    }
    return json.dumps(event).encode()


def deliver(app: Flask, payload: bytes, header: str | None = None) -> WebhookResult:
    """What the view does: verify and apply the raw body, then commit once."""
    with app.app_context():
        header = signature(payload) if header is None else header
        result = handle_webhook(payload, header, app.config["STRIPE_WEBHOOK_SECRET"])
        db.session.commit()
        return result


def stored(app: Flask, model: type) -> list:
    """Every row of a model, by primary key, detached (for models without an `id`)."""
    with app.app_context():
        key = sa.inspect(model).primary_key
        found = list(db.session.scalars(sa.select(model).order_by(*key)))
        db.session.expunge_all()
        return found
