"""R-83: card holders' photos are deleted one month after the usage period ended, from the
photo storage and the database, each deletion on the record (never the photo); the customer's
administrators saw the date beforehand. With the clock moved."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.clock import clock
from portal.extensions import db
from portal.models import (
    AuditEvent,
    CardHolder,
    InetApplication,
    InetRegistration,
    Organisation,
    OutboxEmail,
    PhotoDeletion,
    StoredPhoto,
    TermsVersion,
)
from portal.services.inet_retention import delete_expired_photos
from tests.factories import (
    add_card_holder,
    add_inet_registration,
    build_world,
    rows,
    signed_in_client,
)
from tests.web.test_inet_registration import add_inet_terms, page_text

ENDED_ON = date(2027, 3, 1)  # the clock's day: the administrator ends the use
DELETE_ON = date(2027, 4, 1)  # one month later


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo


@pytest.fixture
def world(app):
    """A with an open registration and two holders with photos (and one without); B the
    same, still registered."""
    world = build_world(app)
    add_inet_terms(app)
    with app.app_context():
        for name, org_id in (("a", world.org_a), ("b", world.org_b)):
            organisation = db.session.get(Organisation, org_id)
            registration = add_inet_registration(organisation)
            holders = [
                add_card_holder(organisation, f"E-{name}-1"),
                add_card_holder(organisation, f"E-{name}-2"),
                add_card_holder(organisation, f"E-{name}-3", photo=False),
            ]
            world.ids[f"registration_{name}"] = registration.id
            world.ids[f"holders_{name}"] = [h.id for h in holders]
        db.session.commit()
    return world


def end_as_administrator(app, world) -> None:
    admin = signed_in_client(app, world.emails["admin"])
    assert admin.post("/id-cards/end", data={"confirmed": "yes"}).status_code == 302


def photos_of(app, organisation_id: int) -> list[StoredPhoto]:
    return rows(app, StoredPhoto, organisation_id=organisation_id)


def run(app, day: date):
    clock.set(noon(day))
    with app.app_context():
        return delete_expired_photos(day)


def test_photos_are_deleted_one_month_after_the_registration_ended(app, world):
    """R-83: ended 2027-03-01; photos still there on 2027-03-31, gone on 2027-04-01, with one
    PhotoDeletion per photo (SHA-256, reason retention), the holders' photos unset, the
    registration marked, a notice; B's photos untouched. The administrators saw the date."""
    end_as_administrator(app, world)
    admin = signed_in_client(app, world.emails["admin"])
    assert "Will be deleted on April 1, 2027" in page_text(admin.get("/id-cards/"))
    before = photos_of(app, world.org_a)
    assert len(before) == 2
    digests = sorted(hashlib.sha256(p.content).hexdigest() for p in before)

    summary = run(app, DELETE_ON - timedelta(days=1))
    assert (summary.registrations, summary.photos) == (0, 0)
    assert len(photos_of(app, world.org_a)) == 2

    summary = run(app, DELETE_ON)
    assert (summary.registrations, summary.photos) == (1, 2)
    assert photos_of(app, world.org_a) == []
    holders = rows(app, CardHolder, organisation_id=world.org_a)
    assert [h.photo_key for h in holders] == [None, None, None]
    assert [h.name for h in holders] == ["山田 太郎"] * 3  # R-83 deletes the photos only
    deletions = rows(app, PhotoDeletion, organisation_id=world.org_a)
    assert sorted(d.photo_sha256 for d in deletions) == digests
    assert {d.reason for d in deletions} == {"retention"}
    assert {d.registration_id for d in deletions} == {world.ids["registration_a"]}
    assert sorted(d.holder_id for d in deletions) == world.ids["holders_a"][:2]
    (registration,) = rows(app, InetRegistration, organisation_id=world.org_a)
    assert registration.photos_deleted_at is not None
    assert rows(app, OutboxEmail, kind="inet_photos_deleted")
    assert rows(app, AuditEvent, action="inet_photos_deleted")
    assert len(photos_of(app, world.org_b)) == 2  # another organisation's stay
    # The page says they went.
    admin = signed_in_client(app, world.emails["admin"])  # a month on: a new session
    assert "Deleted on April 1, 2027" in page_text(admin.get("/id-cards/"))

    # Idempotent: the next run, and a later one, delete and record nothing more.
    for day in (DELETE_ON, DELETE_ON + timedelta(days=5)):
        summary = run(app, day)
        assert (summary.registrations, summary.photos) == (0, 0)
    assert len(rows(app, PhotoDeletion)) == 2


def test_a_cancelled_dormant_registration_loses_its_photos_too(app, world):
    """R-83 reading: cancelled under R-84, the usage period ends as well."""
    with app.app_context():
        registration = db.session.get(InetRegistration, world.ids["registration_b"])
        registration.ended_at, registration.ended_on = clock.now(), ENDED_ON
        registration.end_reason = "dormant"
        registration.photos_delete_on = DELETE_ON
        db.session.commit()
    summary = run(app, DELETE_ON + timedelta(days=3))  # a run missed for a few days
    assert summary.photos == 2
    assert photos_of(app, world.org_b) == []


def test_registering_again_before_the_day_keeps_the_photos(app, world):
    """A new registration means the usage continues: nothing is deleted for the old one,
    which stays unmarked and is skipped; if the new one ends, its own date decides."""
    end_as_administrator(app, world)
    clock.set(noon(date(2027, 3, 20)))
    with app.app_context():
        add_inet_registration(db.session.get(Organisation, world.org_a))
        db.session.commit()
    summary = run(app, DELETE_ON)
    assert (summary.registrations, summary.photos) == (0, 0)
    assert len(photos_of(app, world.org_a)) == 2
    old = next(r for r in rows(app, InetRegistration, organisation_id=world.org_a) if r.ended_at)
    assert old.photos_deleted_at is None
    # The new registration ends on 2027-05-10: the photos go on 2027-06-10, not before.
    with app.app_context():
        new = db.session.scalar(
            sa.select(InetRegistration).where(
                InetRegistration.organisation_id == world.org_a,
                InetRegistration.ended_at.is_(None),
            )
        )
        new.ended_at, new.ended_on = noon(date(2027, 5, 10)), date(2027, 5, 10)
        new.photos_delete_on = date(2027, 6, 10)
        db.session.commit()
        new_id = new.id
    assert run(app, date(2027, 6, 9)).photos == 0
    assert len(photos_of(app, world.org_a)) == 2
    assert run(app, date(2027, 6, 10)).photos == 2
    assert {d.registration_id for d in rows(app, PhotoDeletion)} == {new_id}


def test_an_uncropped_upload_goes_with_the_rest(app, world):
    """Every photo of the organisation is the customer's: one no holder points at too."""
    from portal.services.photo_storage import DatabasePhotoStorage, Photo
    from tests.factories import sample_jpeg

    with app.app_context():
        DatabasePhotoStorage().put(world.org_a, Photo(sample_jpeg(), 600, 800))
        db.session.commit()
    end_as_administrator(app, world)
    assert run(app, DELETE_ON).photos == 3
    assert photos_of(app, world.org_a) == []
    assert len(rows(app, PhotoDeletion, organisation_id=world.org_a)) == 3


def test_the_daily_command_prints_what_it_did_and_deletes_stale_applications(app, world):
    """`flask portal delete-photos`: the photos due, and public applications that expired
    more than a week ago (personal data); younger ones stay."""
    end_as_administrator(app, world)
    with app.app_context():
        version_id = db.session.scalar(sa.select(TermsVersion.id))
        for n, expired_days_ago in enumerate((8, 6)):
            db.session.add(
                InetApplication(
                    email=f"x{n}@gamma.example",
                    token_sha256=f"{n:064d}",
                    details={"legal_name": "Gamma"},
                    terms_version_id=version_id,
                    expires_at=noon(DELETE_ON) - timedelta(days=expired_days_ago),
                )
            )
        db.session.commit()
    clock.set(noon(DELETE_ON))
    result = app.test_cli_runner().invoke(args=["portal", "delete-photos"])
    assert result.exit_code == 0, result.output
    assert "2027-04-01: photos deleted 2 of 1 ended registration(s)" in result.output
    assert "expired applications deleted 1" in result.output
    assert [a.email for a in rows(app, InetApplication)] == ["x1@gamma.example"]
    again = app.test_cli_runner().invoke(args=["portal", "delete-photos", "--quiet"])
    assert "photos deleted 0 of 0" in again.output
