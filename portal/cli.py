"""flask portal ...: demo data, bootstrap and scheduled jobs."""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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

MAX_RENDER_WORKERS = 64  # render-invoices --workers


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
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_RENDER_WORKERS),
    help="Processes that render the PDFs, as for render-invoices.",
)
@database_job()
def issue_invoices(quiet: bool, no_pdf: bool, workers: int | None) -> None:
    """Scheduled (daily, after apply-due): issue the invoices due today (R-41), then render
    their PDFs once (R-42) as render-invoices does (on the 21st, a month's invoices: one
    process per core). Safe to run twice, or twice at once: nothing is issued twice."""
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
        click.echo(render_pdfs(workers, progress=echo).summary())


@portal_cli.command("render-invoices")
@click.option(
    "--workers",
    type=click.IntRange(1, MAX_RENDER_WORKERS),
    help="Worker processes [default: one per core; 1 on SQLite, whose writes take turns "
    "anyway]. Never more than the documents waiting need (a batch each).",
)
@click.option("--quiet", is_flag=True, help="Print only the summary.")
@database_job()
def render_invoices(workers: int | None, quiet: bool) -> None:
    """Render and store the PDF of every issued document that has none yet (R-42), in worker
    processes that each claim their own batches of documents.

    Safe to run on several servers at once, and again after a failure: a batch is claimed,
    rendered and committed in one transaction, so no document is rendered twice or gets two
    PDFs, and a worker that stops leaves its batch to the others. Prints the PDFs this run
    stored, the time and the rate.
    """
    click.echo(render_pdfs(workers, progress=None if quiet else click.echo).summary())


# --- rendering PDFs in worker processes ----------------------------------------------------


@dataclass
class RenderRun:
    """What a rendering run stored: in all, and each worker process (in-process: one)."""

    stored: int = 0
    seconds: float = 0.0
    per_worker: list[int] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        workers = len(self.per_worker)
        return (
            f"Rendered {self.stored} PDF(s) in {self.seconds:.1f} s ({self.rate:.1f} PDFs/s, "
            f"{workers} worker process{'es' if workers != 1 else ''})."
        )


def default_render_workers() -> int:
    """One per core; one on SQLite, where writes take turns (a file lock) anyway."""
    if db.engine.dialect.name == "sqlite":
        return 1
    return os.cpu_count() or 1


def render_pdfs(
    workers: int | None = None, *, progress: Callable[[str], None] | None = None
) -> RenderRun:
    """Render the PDFs of the documents without one (R-42) in `workers` processes, or in
    this one when one is enough; within an app context. Each worker is a fresh process (never a
    fork of one whose engine has connected: `_worker_context`) with an app of its own on the
    same configuration and clock, running `invoicing.render_pending_pdfs`, which claims its own
    batches. The count is of the PDFs committed by this run; a worker that fails makes the
    command fail (ClickException) once the others are done."""
    from portal.models import Invoice
    from portal.services import invoicing

    started = time.perf_counter()
    wanted = workers or default_render_workers()
    if wanted > 1 and not _shareable_database():
        wanted = 1
    if wanted > 1:
        pending = db.session.scalar(
            sa.select(sa.func.count()).select_from(Invoice).where(Invoice.pdf_sha256.is_(None))
        )
        db.session.commit()
        wanted = max(1, min(wanted, -(-(pending or 0) // invoicing.PDF_BATCH)))
    if wanted == 1:
        stored = invoicing.render_pending_pdfs(progress=progress)
        return RenderRun(stored, time.perf_counter() - started, [stored])
    return _render_in_processes(wanted, started, progress)


def _shareable_database() -> bool:
    """Whether other processes can open this database (an in-memory SQLite cannot)."""
    url = db.engine.url
    return url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:")


def _render_in_processes(
    workers: int, started: float, progress: Callable[[str], None] | None
) -> RenderRun:
    context = _worker_context()
    config = _worker_config()
    messages = context.Queue()
    processes = [
        context.Process(
            target=_render_worker, args=(config, n, messages), name=f"render-invoices-{n}"
        )
        for n in range(workers)
    ]
    db.session.remove()  # nothing of this process's connection goes to the workers
    for process in processes:
        process.start()
    run = RenderRun(per_worker=[0] * workers)
    ended: dict[int, str | None] = {}  # worker -> None (done) or what stopped it
    outage = ""
    while True:
        try:
            kind, n, value = messages.get(timeout=0.5)
        except queue.Empty:
            if all(not p.is_alive() for p in processes):
                break  # their last messages were flushed before they exited: read them
            continue
        if kind == "stored":
            before, run.stored = run.stored, run.stored + value
            run.per_worker[n] += value
            if progress and run.stored // 500 > before // 500:
                progress(f"{run.stored} PDFs rendered")
        elif kind == "done":
            ended[n] = None
        elif kind == "outage":
            ended[n], outage = value, value
        else:  # "failed": a bug, its traceback already on stderr
            ended[n] = value
    for process in processes:
        process.join()
    run.seconds = time.perf_counter() - started
    if progress:
        for n, count in enumerate(run.per_worker):
            progress(f"worker {n + 1}: stored {count} PDF(s)")
    if outage:
        raise click.ClickException(
            f"the database connection was lost while the job ran ({outage}). What was saved "
            "before stays saved and nothing is done twice: run the command again."
        )
    failed = [
        f"worker {n + 1}: {ended.get(n) or f'stopped with exit code {p.exitcode}'}"
        for n, p in enumerate(processes)
        if n not in ended or ended[n] is not None
    ]
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {workers} rendering workers failed ({'; '.join(failed)}); "
            f"{run.stored} PDF(s) were stored and stay stored: run the command again."
        )
    return run


def _worker_context() -> multiprocessing.context.BaseContext:
    """Fresh processes, never a fork of this one (its engine has connected): a fork server
    where there is one (a new interpreter that imports the portal's modules once, the ones
    this process has loaded, and forks each worker from there: a worker starts in a fraction
    of a second instead of importing everything again), else spawn (e.g. on Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    loaded = {name for name in sys.modules if name == "portal" or name.startswith("portal.")}
    context.set_forkserver_preload(sorted(loaded | {"portal.documents.invoices"}))
    return context


def _worker_config() -> dict[str, Any]:
    """This app's configuration for a worker's app: every value that can be sent to another
    process (all of a real configuration), and the portal clock when it is fixed."""
    config = {}
    for key, value in current_app.config.items():
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001, S112 - a value that cannot travel stays here
            continue
        config[key] = value
    if clock.is_fixed:
        config["CLOCK_NOW"] = clock.now().isoformat()
    return config


def _render_worker(config: dict[str, Any], number: int, messages: Any) -> None:
    """A worker process: its own app and engine, rendering until no document is left; it
    reports each committed batch, then "done" (or what stopped it) last."""
    from portal import create_app
    from portal.services import invoicing

    app = create_app(config)
    with app.app_context():
        try:
            invoicing.render_pending_pdfs(
                committed=lambda stored: messages.put(("stored", number, stored))
            )
        except DATABASE_ERRORS as exc:
            if outage_kind(exc) is None:
                messages.put(("failed", number, describe(exc)))
                raise
            messages.put(("outage", number, describe(exc)))
            forget_connection()
            sys.exit(1)
        except BaseException as exc:
            messages.put(("failed", number, f"{type(exc).__name__}: {exc}"[:300]))
            raise
        finally:
            db.session.remove()
            db.engine.dispose()
        messages.put(("done", number, None))


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
