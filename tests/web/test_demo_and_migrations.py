"""The demo data keeps its promises on the day it is loaded; the migrations give the models."""

from __future__ import annotations

import re
import warnings
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from portal import demo
from portal.clock import TOKYO, clock
from portal.domain import calendar
from portal.domain.inet import OrderState
from portal.extensions import db
from portal.models import (
    CardHolder,
    CardOrder,
    Contract,
    CustomerRole,
    Organisation,
    PartnerKind,
    PartnerRole,
    PriceList,
    SalesChannel,
    StaffRole,
    User,
    UserKind,
)
from portal.services import claims, incidents, inet_registrations
from tests.conftest import PG_URL
from tests.factories import login, row_counts


def _contract_of(email_domain: str) -> Contract:
    """The one demo contract of the organisation whose billing address is at this domain."""
    organisation = db.session.scalar(
        sa.select(Organisation).where(Organisation.billing_email == f"billing@{email_domain}")
    )
    (contract,) = db.session.scalars(
        sa.select(Contract).where(Contract.organisation_id == organisation.id)
    )
    return contract


def _assert_stages(today: date) -> None:
    """What portal/demo.py promises about its contracts on the day it is loaded."""
    # Inside the minimum term, started about four months ago, with lead-in days (R-03).
    sakura = _contract_of("sakura-photo.example")
    cal = sakura.calendar(today)
    assert cal.in_minimum_term and cal.current_term.number == 0, today
    assert 110 <= (today - sakura.service_start).days <= 140, today
    assert sakura.service_start < cal.term_anchor <= today, today

    # Renewed: the minimum term ended about four months ago, the first renewal term runs.
    aoba = _contract_of("aoba-design.example")
    cal = aoba.calendar(today)
    assert cal.current_term.number == 1, today
    assert not cal.in_minimum_term
    assert 90 <= (today - cal.minimum_term_end).days <= 160, today

    # Inside the notice window: the last day for notice against renewal is within 30 days.
    hokuto = _contract_of("hokuto-print.example")
    cal = hokuto.calendar(today)
    assert cal.in_minimum_term and cal.term_anchor <= today, today
    assert 0 <= cal.days_to_notice_deadline <= 30, (today, cal.renewal_notice_deadline)
    assert hokuto.sales_channel == SalesChannel.SALES_AGENT

    # Agency contract near its renewal: the application is due within 30 days (R-06).
    minato = _contract_of("minato-logi.example")
    cal = minato.calendar(today)
    assert minato.sales_channel == SalesChannel.AGENCY and minato.agency_periods_granted == 1
    assert cal.term_anchor <= today, today
    assert cal.renewal_notice_deadline is None
    assert 0 <= cal.days_to_agency_renewal_due <= 30, (today, cal.agency_renewal_due)
    assert cal.agency_renewal_due == calendar.agency_period(cal.term_anchor, 0).end

    # R-52: a past outage shaped like W-4 that the administrator can still claim for, and
    # extra maintenance ahead beside the regular windows (R-50).
    now = datetime.combine(today, time(12), TOKYO)
    (option,) = claims.options_for(sakura, now, today)
    assert option.claimable and option.computation.amount == 2_083 + 1_666, today
    ahead = incidents.upcoming_maintenance(sakura.organisation_id, now)
    assert any(item.regular for item in ahead) and any(not item.regular for item in ahead)

    # I-NET SERVICE (R-80..R-85): an organisation with only a registration, holders with
    # photos made by the project (one still without), an order in every state.
    hikari = db.session.scalar(
        sa.select(Organisation).where(Organisation.legal_name == "ひかり工業株式会社")
    )
    assert inet_registrations.open_registration(hikari.id) is not None
    assert inet_registrations.open_registration(sakura.organisation_id) is not None
    states = set(
        db.session.scalars(sa.select(CardOrder.state).where(CardOrder.organisation_id == hikari.id))
    )
    assert states == set(OrderState)
    photos = [
        h.photo_key
        for h in db.session.scalars(
            sa.select(CardHolder).where(CardHolder.organisation_id == hikari.id)
        )
    ]
    assert len(photos) == 10 and sum(key is None for key in photos) == 1


def test_seed_demo_twice_changes_nothing_the_second_time(app):
    runner = app.test_cli_runner()

    first = runner.invoke(args=["portal", "seed-demo"])
    assert first.exit_code == 0, first.output
    assert "Demo data loaded, with" in first.output and "past invoice(s) (" in first.output
    assert row_counts(app)["invoices"] > 0  # the demo's history of invoices (R-41)
    counts = row_counts(app)
    # Each past invoice has its stored PDF and its notice, so Notices is not empty (R-61).
    assert counts["outbox_emails"] == counts["invoices"]
    # Four IMAGE WORKS customers, and one that uses only I-NET SERVICE (R-80).
    assert counts["organisations"] == 5 and counts["contracts"] == 4

    second = runner.invoke(args=["portal", "seed-demo"])

    assert second.exit_code == 0, second.output
    assert "nothing changed" in second.output
    assert row_counts(app) == counts


def test_the_demo_has_every_promised_stage_on_the_load_day(app):
    assert app.test_cli_runner().invoke(args=["portal", "seed-demo"]).exit_code == 0
    with app.app_context():
        _assert_stages(clock.today())
        assert all(p.is_demo for p in db.session.scalars(sa.select(PriceList)))


def test_the_demo_stages_hold_whatever_the_load_day(app, monkeypatch):
    """Every day of three months (a February, 30- and 31-day months, every offset to the
    anchor day): the stages are placed relative to the load day, so each must hold."""
    monkeypatch.setattr(demo, "hash_password", lambda password: "$argon2id$not-used")
    day, last = date(2027, 1, 1), date(2027, 3, 31)
    # The stages are date arithmetic, the same on either database: every day on SQLite; on
    # PostgreSQL (each load a few hundred round trips) every third day checks the storing.
    step = timedelta(days=3 if PG_URL else 1)
    with app.app_context():
        while day <= last:
            assert demo.load(day)
            _assert_stages(day)
            db.session.rollback()
            day += step


ROLE_OF = {
    "customer administrator": {"kind": UserKind.CUSTOMER, "role": CustomerRole.ADMINISTRATOR},
    "customer member": {"kind": UserKind.CUSTOMER, "role": CustomerRole.MEMBER},
    "sales agent": {"kind": UserKind.AGENT, "role": PartnerKind.SALES_AGENT},
    "agency agent": {"kind": UserKind.AGENT, "role": PartnerKind.AGENCY},
    "provider support staff": {"kind": UserKind.STAFF, "role": StaffRole.SUPPORT},
    "provider billing staff": {"kind": UserKind.STAFF, "role": StaffRole.BILLING},
    "provider staff administrator": {"kind": UserKind.STAFF, "role": StaffRole.ADMINISTRATOR},
    "provider production staff": {"kind": UserKind.STAFF, "role": StaffRole.PRODUCTION},
}


def test_the_printed_demo_logins_are_who_they_say(app, client):
    assert app.test_cli_runner().invoke(args=["portal", "seed-demo"]).exit_code == 0
    with app.app_context():
        for demo_login in demo.DEMO_LOGINS:
            user = db.session.scalar(sa.select(User).where(User.email == demo_login.email))
            assert user is not None, demo_login.email
            described = next(r for r in ROLE_OF if demo_login.role.startswith(r))
            role = {
                UserKind.CUSTOMER: user.customer_role,
                UserKind.AGENT: user.partner.kind if user.partner else None,
                UserKind.STAFF: user.staff_role,
            }[user.kind]
            assert {"kind": user.kind, "role": role} == ROLE_OF[described], demo_login.email
            # Issue 14: the partner administrator is named so.
            assert (user.partner_role == PartnerRole.ADMINISTRATOR) == (
                "partner administrator" in demo_login.role
            ), demo_login.email
            if user.organisation is not None:
                assert user.organisation.legal_name in demo_login.role
    login(client, demo.DEMO_LOGINS[0].email, demo.DEMO_PASSWORD)
    assert client.get("/contracts").status_code == 200


def test_the_navigation_shows_what_the_organisation_has(app):
    """R-80: ひかり工業 has only I-NET SERVICE: its navigation offers ID cards and no
    contracts; さくら写真館 has both; 青葉デザイン has only IMAGE WORKS."""
    assert app.test_cli_runner().invoke(args=["portal", "seed-demo"]).exit_code == 0
    expected = {
        "admin@hikari-kogyo.example": (False, True),
        "admin@sakura-photo.example": (True, True),
        "admin@aoba-design.example": (True, False),
    }
    for email, (contracts, id_cards) in expected.items():
        client = app.test_client()
        login(client, email, demo.DEMO_PASSWORD)
        nav = client.get("/").get_data(as_text=True).split('class="nav-main"')[1]
        # The top level of the navigation, without its menus (the Organisation menu offers
        # the I-NET SERVICE application to those without a registration).
        nav = re.sub(r"<details.*?</details>", "", nav.split("</nav>")[0], flags=re.S)
        assert ('href="/contracts"' in nav) == contracts, email
        assert ('href="/id-cards/"' in nav) == id_cards, email


# --- migrations -----------------------------------------------------------------------------


def test_the_migrations_give_exactly_the_models_schema(app):
    """The test database was built by `flask db upgrade`; autogenerate finds nothing to add."""
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "compare_server_default": True},
        )
        with warnings.catch_warnings():
            # SQLite's dialect reflects no expression index; the one on lower(name) of partner
            # companies is looked up by name below instead.
            warnings.filterwarnings(
                "ignore", message=".*expression-based index", category=sa.exc.SAWarning
            )
            assert compare_metadata(context, db.metadata) == []
        tables = set(sa.inspect(connection).get_table_names())
        if connection.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'index' AND name = :name"
        else:
            query = "SELECT indexname FROM pg_indexes WHERE indexname = :name"
        found = connection.execute(sa.text(query), {"name": "uq_partner_companies_name"})
        assert found.scalar() == "uq_partner_companies_name"
    assert {t.name for t in db.metadata.sorted_tables} | {"alembic_version"} == tables


def test_the_migrations_have_one_head_and_the_database_is_at_it(app):
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config()
        heads = ScriptDirectory.from_config(config).get_heads()
        with db.engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    assert len(heads) == 1
    assert tuple(current) == tuple(heads)
