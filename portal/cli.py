"""flask portal ...: demo data, bootstrap and scheduled jobs."""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import AppGroup

from portal.clock import clock
from portal.extensions import db
from portal.outage import DATABASE_ERRORS, Backoff, describe, forget_connection, outage_kind

if TYPE_CHECKING:
    from portal import mailer

portal_cli = AppGroup("portal", help="Contract portal commands.")


def _log_retry(exc: BaseException, wait: float) -> None:
    """One line per try while the database is out of reach (stderr, for the scheduler's log)."""
    click.echo(
        f"{clock.now().isoformat(timespec='seconds')}: database unavailable ({describe(exc)}); "
        f"trying again in {wait:g} s.",
        err=True,
    )


def _wait_for_database() -> None:
    """Before a scheduled job starts: wait, backing off, until the database answers, at most
    DB_WAIT_AT_START_SECONDS (a restart of the database at the job's hour is not a failure)."""
    config = current_app.config
    deadline = time.monotonic() + float(config.get("DB_WAIT_AT_START_SECONDS", 60.0))
    backoff = Backoff.from_config(config)
    while True:
        try:
            db.session.execute(sa.text("SELECT 1"))
            db.session.commit()
            return
        except DATABASE_ERRORS as exc:
            forget_connection()
            if outage_kind(exc) is None:
                raise
            wait = backoff.next_wait()
            if time.monotonic() + wait > deadline:
                raise
            _log_retry(exc, wait)
            time.sleep(wait)


def database_job(*, wait: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A command that is run unattended: it waits for the database to be reachable before it
    starts (with `wait`), and when the database drops out while it runs it stops with one
    clear line and exit status 1, never a traceback nor a summary of work it did not finish.
    What it committed stays; each job is safe to run again (nothing is done twice)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = False
            try:
                if wait:
                    _wait_for_database()
                started = True
                return command(*args, **kwargs)
            except DATABASE_ERRORS as exc:
                if outage_kind(exc) is None:
                    raise
                forget_connection()
                if not started:
                    what = "the database could not be reached"
                elif wait:  # it answered before the job started
                    what = "the database connection was lost while the job ran"
                else:
                    what = "the database could not be reached or the connection was lost"
                raise click.ClickException(
                    f"{what} ({describe(exc)}). What was saved before stays saved and nothing "
                    "is done twice: run the command again."
                ) from None

        return wrapper

    return decorate


@portal_cli.command("seed-demo")
@database_job(wait=False)
def seed_demo() -> None:
    """Load the demo data (safe to run again: a second load changes nothing)."""
    from portal import demo

    loaded = demo.load(clock.today())
    db.session.commit()
    if loaded:
        issued = demo.issue_past_invoices(clock.today())
        from portal.services.invoicing import render_pending_pdfs

        rendered = render_pending_pdfs()  # each announced by e-mail to the billing address
        click.echo(f"Demo data loaded, with {issued} past invoice(s) ({rendered} PDFs).")
    else:
        click.echo("Demo data already present; nothing changed.")


@portal_cli.command("demo-logins")
def demo_logins() -> None:
    """Print the demo logins."""
    from portal import demo

    click.echo(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
    for login in demo.DEMO_LOGINS:
        click.echo(f"  {login.email:40} {login.role}")


@portal_cli.command("create-staff")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option(
    "--role",
    type=click.Choice(["support", "billing", "administrator", "production"]),
    default="administrator",
)
@click.password_option()
@database_job(wait=False)
def create_staff(email: str, name: str, role: str, password: str) -> None:
    """Create a provider staff user (the first one, on a new installation)."""
    from portal.models import StaffRole, User, UserKind
    from portal.services.auth import check_password_strength, hash_password, normalise_email
    from portal.services.errors import PortalError

    try:
        check_password_strength(password)
    except PortalError as exc:
        raise click.ClickException(str(exc)) from None
    email = normalise_email(email)
    if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise click.ClickException(f"{email} exists already")
    db.session.add(
        User(
            email=email,
            name=name,
            password_hash=hash_password(password),
            kind=UserKind.STAFF,
            staff_role=StaffRole(role),
        )
    )
    db.session.commit()
    click.echo(f"Created {role} staff user {email}.")


@portal_cli.command("end-expired-entries")
@database_job()
def end_expired_entries() -> None:
    """Scheduled (every few minutes): end staff views past their time limit (R-72)."""
    from portal.models import AccountEntry
    from portal.permissions import Actor
    from portal.services import entries
    from portal.transaction import begin_writing

    # On SQLite a concurrent run waits here, then finds these ended (PostgreSQL: SKIP LOCKED).
    begin_writing()
    expired = db.session.scalars(
        sa.select(AccountEntry)
        .where(AccountEntry.ended_at.is_(None), AccountEntry.expires_at <= clock.now())
        .with_for_update(skip_locked=True)
    ).all()
    ended = [e for e in expired if entries.stop(Actor(e.user, e), reason="expired") is not None]
    db.session.commit()
    click.echo(f"Ended {len(ended)} expired view(s) as customer.")


@portal_cli.command("apply-due")
@click.option("--quiet", is_flag=True, help="Print only the summary.")
@database_job()
def apply_due(quiet: bool) -> None:
    """Scheduled (daily, after midnight Tokyo): apply due requests, record renewals, end lapsed
    agency contracts.

    Safe to run twice, or twice at once: each request is applied exactly once (R-05, R-06,
    R-21..R-23, R-30, R-31).
    """
    from portal.services.apply import apply_due as run

    today = clock.today()
    summary = run(today, progress=None if quiet else click.echo)
    applied = ", ".join(f"{k} {n}" for k, n in sorted(summary.applied.items())) or "none"
    click.echo(
        f"{today.isoformat()}: applied {applied}; renewals recorded {summary.renewals}; "
        f"agency contracts ended {summary.agency_expired}; "
        f"left to a concurrent run {summary.skipped}."
    )


@portal_cli.command("issue-invoices")
@click.option("--quiet", is_flag=True, help="Print only the summary.")
@click.option("--no-pdf", is_flag=True, help="Issue only; leave the PDFs to render-invoices.")
@database_job()
def issue_invoices(quiet: bool, no_pdf: bool) -> None:
    """Scheduled (daily, after apply-due): issue the invoices due today (R-41), then render
    their PDFs once (R-42). Safe to run twice, or twice at once: nothing is issued twice."""
    from portal.services import invoicing
    from portal.services.apply import apply_due

    today = clock.today()
    echo = None if quiet else click.echo
    apply_due(today)  # charges due today reach the ledger before the invoices read it
    summary = invoicing.issue_invoices(today, progress=echo)
    click.echo(
        f"{today.isoformat()}: billing month {summary.billing_month}: issued {summary.issued} "
        f"invoice(s), {summary.lines} line(s), total ¥{summary.total:,}; "
        f"already issued {summary.skipped}."
    )
    if not no_pdf:
        rendered = invoicing.render_pending_pdfs(progress=echo)
        click.echo(f"Rendered {rendered} PDF(s).")


@portal_cli.command("render-invoices")
@database_job()
def render_invoices() -> None:
    """Render and store the PDF of every issued document that has none yet (R-42)."""
    from portal.services import invoicing

    click.echo(f"Rendered {invoicing.render_pending_pdfs(progress=click.echo)} PDF(s).")


@portal_cli.command("send-mail")
@click.option("--loop", is_flag=True, help="Keep running: deliver, then wait, then again.")
@click.option("--interval", default=15.0, show_default=True, help="Seconds between passes.")
def send_mail(loop: bool, interval: float) -> None:
    """Deliver the e-mails waiting in the outbox (R-61), with retries and backoff.

    Run it every minute from the scheduler, or once as a worker with --loop. Safe to run
    several at once: each e-mail is claimed by one worker and sent once. The worker outlives
    the database: while it is out of reach it waits (DB_RETRY_FIRST_SECONDS, doubling up to
    DB_RETRY_LONGEST_SECONDS) and goes on when it is back. SIGTERM stops it once the pass in
    hand is done.
    """
    if not loop:
        database_job()(_deliver_once)()
        return
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    run_mail_worker(interval, stop)


def run_mail_worker(interval: float, stop: threading.Event) -> None:
    """The `send-mail --loop` worker, in an app context, until `stop` is set."""
    backoff = Backoff.from_config(current_app.config)
    while not stop.is_set():
        _report_delivery(_deliver_until_done(backoff, stop))
        db.session.remove()
        stop.wait(interval)


def _deliver_once() -> None:
    from portal import mailer

    result = mailer.Delivery()
    try:
        mailer.deliver_due(dict(current_app.config), result=result)
    finally:
        _report_delivery(result)  # what it did, also when the database dropped out midway


def _report_delivery(result: mailer.Delivery) -> None:
    click.echo(
        f"{clock.now().isoformat(timespec='seconds')}: sent {result.sent}, "
        f"failed {result.failed} (will retry), given up {result.given_up}."
    )


def _deliver_until_done(backoff: Backoff, stop: threading.Event) -> mailer.Delivery:
    """One pass of the worker; when the database drops out, roll back, wait, reconnect and go
    on with the same pass (what the server took meanwhile is marked sent, counted once).
    Stopped while waiting, it returns what the pass did so far."""
    from portal import mailer

    result = mailer.Delivery()
    while True:
        try:
            mailer.deliver_due(dict(current_app.config), result=result)
        except DATABASE_ERRORS as exc:
            forget_connection()
            if outage_kind(exc) is None:
                raise
            wait = backoff.next_wait()
            _log_retry(exc, wait)
            if stop.wait(wait):
                return result
            continue
        backoff.reset()
        return result


@portal_cli.command("delete-photos")
@click.option("--quiet", is_flag=True, help="Print only the summary.")
@database_job()
def delete_photos(quiet: bool) -> None:
    """Scheduled (daily, after midnight Tokyo): delete the card holders' photos of I-NET
    SERVICE registrations that ended a month ago or more, recording each deletion (R-83), and
    public applications that expired more than a week ago. Safe to run twice, or twice at
    once: each registration is claimed by one run."""
    from portal.services.inet_retention import delete_expired_photos

    today = clock.today()
    summary = delete_expired_photos(today, progress=None if quiet else click.echo)
    click.echo(
        f"{today.isoformat()}: photos deleted {summary.photos} of "
        f"{summary.registrations} ended registration(s); left to a concurrent run or "
        f"registered again {summary.skipped}; expired applications deleted "
        f"{summary.applications}."
    )


def register(app: Flask) -> None:
    app.cli.add_command(portal_cli)
