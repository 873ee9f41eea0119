"""Staff see what waits in the outbox and what was given up, and send it again (R-61)."""

from __future__ import annotations

from portal.clock import clock
from portal.extensions import db
from portal.models import AuditEvent, OutboxEmail
from tests.factories import build_world, rows, signed_in_client, snapshot
from tests.mail.test_outbox import _cancel


def _give_up(app, email_id: int) -> None:
    with app.app_context():
        email = db.session.get(OutboxEmail, email_id)
        email.attempts, email.failed_at = 16, clock.now()
        email.last_error = "SMTPRecipientsRefused: 550 no such mailbox"
        db.session.commit()


def test_staff_see_the_queue_and_support_sends_a_given_up_e_mail_again(app):
    world = build_world(app)
    emails = _cancel(app, world)
    _give_up(app, emails[0].id)
    support = signed_in_client(app, world.emails["support"])
    page = support.get("/staff/mail").get_data(as_text=True)
    assert f'data-testid="waiting">{len(emails) - 1}<' in page
    assert 'data-testid="given-up">1<' in page
    assert "550 no such mailbox" in page and emails[0].to_address in page

    response = support.post("/staff/mail/retry", data={"email_id": emails[0].id})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/mail"
    (again,) = rows(app, OutboxEmail, id=emails[0].id)
    assert again.failed_at is None and again.attempts == 0 and again.sent_at is None
    (event,) = rows(app, AuditEvent, action="mail.retried")
    assert event.user_id == world.ids["support"] and event.details["count"] == 1


def test_billing_staff_see_the_queue_but_do_not_resend(app):
    world = build_world(app)
    emails = _cancel(app, world)
    _give_up(app, emails[0].id)
    billing = signed_in_client(app, world.emails["billing"])
    page = billing.get("/staff/mail").get_data(as_text=True)
    assert "550 no such mailbox" in page and "/staff/mail/retry" not in page
    before = snapshot(app, skip=("user_sessions",))
    assert billing.post("/staff/mail/retry", data={}).status_code == 403
    assert snapshot(app, skip=("user_sessions",)) == before
