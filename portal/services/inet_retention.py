"""R-83: card holders' photos are deleted one month after the customer's usage period ended.

`delete_expired_photos(today)` is the daily run (`flask portal delete-photos`). For each ended
registration whose deletion day has come, it claims the registration with a conditional UPDATE
(photos_deleted_at from NULL), so that of two runs at once exactly one deletes, then deletes
every photo of the organisation's card holders from the photo storage, sets their photo_key to
NULL and writes one PhotoDeletion per photo (its SHA-256, never the photo), all in one
transaction: the photos and the record of their deletion go together or not at all.

An organisation that registered again is using the service again: a registration's deletion is
due only while it is the organisation's latest registration. The older one then stays with
photos_deleted_at NULL and is skipped for good; the photos follow the newer registration (they
are deleted one month after it ends, if it does).

Applications from the public page that expired more than a week ago are deleted too (their
details are personal data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from portal.clock import clock
from portal.extensions import db
from portal.models import CardHolder, InetRegistration, PhotoDeletion, StoredPhoto
from portal.services import audit, mail
from portal.services.inet_registrations import delete_stale_applications
from portal.services.photo_storage import DatabasePhotoStorage, storage

RETENTION_REASON = "retention"


@dataclass
class RetentionSummary:
    registrations: int = 0  # registrations whose photos were deleted in this run
    photos: int = 0  # photos deleted
    skipped: int = 0  # claimed by a concurrent run, or registered again meanwhile
    applications: int = 0  # stale public applications deleted


def _is_latest():
    """No registration of the same organisation came after this one (R-83 reading: a new
    registration means the usage continues)."""
    newer = aliased(InetRegistration)
    return ~sa.exists().where(
        newer.organisation_id == InetRegistration.organisation_id,
        newer.id > InetRegistration.id,
    )


def due_registrations(today: date) -> list[int]:
    """Ended registrations whose photos are due for deletion on or before `today`."""
    return list(
        db.session.scalars(
            sa.select(InetRegistration.id)
            .where(
                InetRegistration.ended_at.is_not(None),
                InetRegistration.photos_delete_on <= today,
                InetRegistration.photos_deleted_at.is_(None),
                _is_latest(),
            )
            .order_by(InetRegistration.photos_delete_on, InetRegistration.id)
        )
    )


def delete_expired_photos(
    today: date, progress: Callable[[str], None] | None = None
) -> RetentionSummary:
    """R-83: delete the photos of every registration whose deletion day has come (safe to run
    twice, or twice at once), then the stale public applications."""
    summary = RetentionSummary()
    due = due_registrations(today)
    db.session.commit()
    for registration_id in due:
        deleted = _delete_for(registration_id)
        if deleted is None:
            summary.skipped += 1
            if progress:
                progress(f"registration {registration_id}: done by another run or registered again")
            continue
        summary.registrations += 1
        summary.photos += deleted
        if progress:
            progress(f"registration {registration_id}: {deleted} photo(s) deleted")
    summary.applications = delete_stale_applications(clock.now())
    db.session.commit()
    return summary


def _delete_for(registration_id: int) -> int | None:
    """Claim one registration and delete its organisation's photos in one transaction; None
    when another run claimed it first or the organisation registered again."""
    now = clock.now()
    try:
        claimed = db.session.execute(
            sa.update(InetRegistration)
            .where(
                InetRegistration.id == registration_id,
                InetRegistration.photos_deleted_at.is_(None),
                InetRegistration.ended_at.is_not(None),
                _is_latest(),
            )
            .values(photos_deleted_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            db.session.rollback()
            return None
        registration = db.session.get_one(InetRegistration, registration_id)
        db.session.refresh(registration)
        organisation_id = registration.organisation_id
        photos = storage()
        holders = list(
            db.session.scalars(
                sa.select(CardHolder)
                .where(
                    CardHolder.organisation_id == organisation_id,
                    CardHolder.photo_key.is_not(None),
                )
                .order_by(CardHolder.id)
            )
        )
        records = []
        for holder in holders:
            key = holder.photo_key
            assert key is not None
            records.append(
                PhotoDeletion(
                    organisation_id=organisation_id,
                    registration_id=registration_id,
                    holder_id=holder.id,
                    photo_sha256=photos.sha256(organisation_id, key) or "",
                    reason=RETENTION_REASON,
                    deleted_at=now,
                )
            )
        photos.delete(organisation_id, [h.photo_key for h in holders if h.photo_key])
        db.session.execute(
            sa.update(CardHolder)
            .where(CardHolder.organisation_id == organisation_id)
            .values(photo_key=None)
            .execution_options(synchronize_session=False)
        )
        if isinstance(photos, DatabasePhotoStorage):
            # Photos of the organisation that no holder points at (an upload never cropped):
            # they are the customer's photos too, and go with the rest.
            for photo_id, sha256 in db.session.execute(
                sa.select(StoredPhoto.id, StoredPhoto.sha256).where(
                    StoredPhoto.organisation_id == organisation_id
                )
            ):
                records.append(
                    PhotoDeletion(
                        organisation_id=organisation_id,
                        registration_id=registration_id,
                        photo_sha256=sha256,
                        reason=RETENTION_REASON,
                        deleted_at=now,
                    )
                )
                photos.delete(organisation_id, [str(photo_id)])
        db.session.add_all(records)
        audit.record(
            "inet_photos_deleted",
            organisation_id=organisation_id,
            subject=registration,
            photos=len(records),
            photos_delete_on=registration.photos_delete_on.isoformat()
            if registration.photos_delete_on
            else None,
        )
        if records:
            # the deletion announced when the registration ended, done.
            mail.notify_organisation(
                registration.organisation,
                "inet_photos_deleted",
                to=mail.contract_notice_addresses(registration.organisation),
                dedupe_key=f"inet_photos_deleted:{registration_id}",
                context={"registration": registration, "count": len(records)},
            )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return len(records)
