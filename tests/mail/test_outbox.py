"""The e-mail outbox (R-61): written with the change that causes it, delivered by
`flask portal send-mail` over real SMTP (aiosmtpd on loopback), never lost, sent once."""

from __future__ import annotations

import threading
from datetime import timedelta
from email import message_from_bytes, policy
from email.header import decode_header, make_header

import pytest

from portal import mailer
from portal.clock import clock
from portal.extensions import db
from portal.models import ContractRequest, Organisation, OutboxEmail
from tests.factories import build_world, quote_form, rows, signed_in_client
from tests.smtp_server import SmtpSink

# W-2: cancellation at the 2027-04-20 month end, notified on 2027-03-01 (the fixed clock).


@pytest.fixture
def smtp():
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def world(app):
    return build_world(app)


def _deliver(app) -> mailer.Delivery:
    with app.app_context():
        return mailer.deliver_due(dict(app.config))


def _cancel(app, world) -> list[OutboxEmail]:
    """A customer administrator confirms W-2's cancellation: the change that causes e-mail."""
    admin = signed_in_client(app, world.emails["admin"])
    response = admin.post(
        f"/contracts/{world.contract_a}/requests", data=quote_form(app, world.contract_a)
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return rows(app, OutboxEmail)


def test_r61_e_mail_is_written_with_the_change_and_not_without_it(make_app, smtp):
    app = make_app(**smtp.config())
    world = build_world(app)
    emails = _cancel(app, world)
    (request,) = rows(app, ContractRequest)
    # To the registered address and each administrator, as a notice changing a contract.
    assert {e.to_address for e in emails} >= {world.emails["admin"]}
    assert all(e.kind == "request_submitted" and e.is_notice and e.affects_contract for e in emails)
    assert all(e.sent_at is None and e.attempts == 0 for e in emails)
    # A refused change (a second request while one is pending) writes no e-mail.
    admin = signed_in_client(app, world.emails["admin"])
    response = admin.post(
        f"/contracts/{world.contract_a}/requests",
        data={"kind": "cancellation", "on": "2027-04-20", "quote": "the quote shown before"},
    )
    assert response.status_code in (409, 422)
    assert len(rows(app, OutboxEmail)) == len(emails)
    assert request.id == rows(app, ContractRequest)[0].id


def test_with_the_smtp_server_down_nothing_is_lost_and_each_e_mail_arrives_once(make_app, smtp):
    """Issue 5's "done when": the server is stopped while a change is made; once it is back,
    every e-mail arrives exactly once."""
    app = make_app(**smtp.config())
    world = build_world(app)
    emails = _cancel(app, world)
    assert emails

    # The server is down: the attempt fails, is recorded, and the e-mail waits.
    result = _deliver(app)
    assert (result.sent, result.failed) == (0, 1)  # stops at the first refusal
    first = rows(app, OutboxEmail, id=emails[0].id)[0]
    assert first.attempts == 1 and first.sent_at is None and first.failed_at is None
    assert "Connection" in first.last_error or "refused" in first.last_error.lower()
    assert first.next_attempt_at == clock.now() + timedelta(minutes=1)
    others = [e for e in rows(app, OutboxEmail) if e.id != first.id]
    assert all(e.locked_until is None and e.attempts == 0 for e in others)  # given back

    # Back up. The failed one waits for its backoff; the others go at once.
    smtp.start()
    result = _deliver(app)
    assert result.sent == len(emails) - 1
    clock.set(clock.now() + timedelta(minutes=1))
    assert _deliver(app).sent == 1
    assert _deliver(app).sent == 0  # nothing more, however often it runs

    message_ids = sorted(m["Message-ID"] for m in smtp.messages)
    assert message_ids == sorted(e.message_id for e in emails)  # each exactly once
    assert all(e.sent_at is not None for e in rows(app, OutboxEmail))


def test_a_temporary_refusal_is_retried_with_growing_delays(make_app, smtp):
    app = make_app(**smtp.config(), MAIL_MAX_ATTEMPTS=3)
    world = build_world(app)
    _cancel(app, world)
    smtp.start()
    smtp.refusing = True
    delays = []
    for _ in range(3):
        before = clock.now()
        result = _deliver(app)
        email = rows(app, OutboxEmail)[0]
        delays.append(email.next_attempt_at - before)
        clock.set(email.next_attempt_at)
    # A refusal of one message does not stop the others being tried.
    assert result.sent == 0 and result.given_up == len(rows(app, OutboxEmail))
    email = rows(app, OutboxEmail)[0]
    assert email.attempts == 3
    assert delays[:2] == [timedelta(minutes=1), timedelta(minutes=2)]
    # The third failure was the last: given up, kept, shown to staff, retried on request.
    assert email.failed_at is not None and "451" in email.last_error
    smtp.refusing = False
    assert _deliver(app).sent == 0  # given up: not sent by later runs on their own
    with app.app_context():
        assert mailer.retry_failed([email.id]) == 1
        db.session.commit()
    assert _deliver(app).sent == 1
    assert [m["Message-ID"] for m in smtp.messages] == [email.message_id]


def test_retry_delays_double_up_to_six_hours():
    assert [mailer.retry_delay(n) for n in (1, 2, 3, 4)] == [
        timedelta(minutes=m) for m in (1, 2, 4, 8)
    ]
    assert mailer.retry_delay(12) == timedelta(hours=6)
    assert mailer.retry_delay(40) == timedelta(hours=6)


def test_four_workers_at_once_send_each_e_mail_once(make_app, smtp):
    app = make_app(**smtp.config())
    world = build_world(app)
    _cancel(app, world)
    ids = _enqueue_many(app, world, 30)
    total = len(rows(app, OutboxEmail))
    smtp.start()
    barrier = threading.Barrier(4)
    results: list[mailer.Delivery] = []

    def work() -> None:
        barrier.wait()
        results.append(_deliver(app))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 30
    assert sum(r.sent for r in results) == total
    assert len(smtp.messages) == total
    assert len({m["Message-ID"] for m in smtp.messages}) == total


def _enqueue_many(app, world, count: int, **options: object) -> list[int]:
    """`count` e-mails about the real request of _cancel (its withdrawal e-mail's text)."""
    from portal.services import mail

    with app.app_context():
        request = db.session.scalars(db.select(ContractRequest)).one()
        written = [
            mail.enqueue(
                "request_withdrawn",
                to=f"n{n}@alpha.example",
                locale="en",
                organisation_id=world.org_a,
                context={
                    "organisation": request.contract.organisation,
                    "request": request,
                    "contract": request.contract,
                    "kind_name": "Cancellation",
                    "withdrawn_by": "Alpha Admin",
                    "detail_url": "http://127.0.0.1:5000/contracts/1/requests/1?secret=s3cr3t",
                },
                **options,
            )
            for n in range(count)
        ]
        db.session.commit()
        return [email.id for email in written]


def test_japanese_subject_and_body_arrive_intact_in_the_recipients_language(make_app, smtp):
    app = make_app(**smtp.config())
    world = build_world(app)
    with app.app_context():
        db.session.get(Organisation, world.org_a).locale = "ja"
        db.session.commit()
    emails = _cancel(app, world)
    smtp.start()
    _deliver(app)
    message = smtp.to(emails[0].to_address)[0]
    # Stored, sent and received text are the same Japanese, properly encoded on the wire.
    assert str(make_header(decode_header(message["Subject"]))) == emails[0].subject
    assert "受け付けました" in emails[0].subject
    assert message.get_content_charset() == "utf-8"
    assert message.get_content() == emails[0].body
    assert "解約" in message.get_content()
    assert message["Content-Language"] == "ja"
    raw = message.as_bytes()
    assert raw.isascii() or b"=?utf-8?" in raw  # headers encoded (RFC 2047), not raw 8-bit


def test_a_secret_link_is_removed_from_the_stored_body_after_sending(make_app, smtp):
    app = make_app(**smtp.config())
    world = build_world(app)
    _cancel(app, world)
    (email_id,) = _enqueue_many(app, world, 1, sensitive=True)
    smtp.start()
    _deliver(app)
    (stored,) = rows(app, OutboxEmail, id=email_id)
    assert stored.body == mailer.REDACTED and stored.sent_at is not None
    assert "secret=s3cr3t" in smtp.to("n0@alpha.example")[0].get_content()
    # Ordinary notices keep their text: the organisation reads them later.
    assert all(e.body != mailer.REDACTED for e in rows(app, OutboxEmail) if e.id != email_id)


def test_on_the_embedded_default_e_mails_are_written_as_files_to_read(make_app, tmp_path):
    """No SMTP server needed in development: `send-mail` writes each e-mail as an .eml file."""
    app = make_app(MAIL_TRANSPORT="file", MAIL_FILE_DIR=str(tmp_path / "mail"))
    world = build_world(app)
    emails = _cancel(app, world)
    result = app.test_cli_runner().invoke(args=["portal", "send-mail"])
    assert result.exit_code == 0, result.output
    assert f"sent {len(emails)}" in result.output
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == len(emails)
    assert all(f.name.endswith("-request_submitted.eml") for f in files)
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["Subject"] == emails[0].subject
    assert (
        app.test_cli_runner()
        .invoke(args=["portal", "send-mail"])
        .output.startswith(clock.now().isoformat(timespec="seconds"))
    )
    assert len(list((tmp_path / "mail").glob("*.eml"))) == len(emails)  # not again
