"""Where card holders' photos live (R-83, R-85): a small interface and its database backend.

The database is the default because every app server sees it and because a deletion there
is exact and atomic with its record: the photo row goes in the same transaction as the
holder's change or the retention record, or not at all. An object store can implement the
same three calls when the photos outgrow the database (its deletions then need an outbox of
their own to stay atomic with the records; see the README).

Photos are never under static/ and never in e-mails; they are served only by authorised
routes with `Cache-Control: no-store`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from flask import current_app

from portal.extensions import db
from portal.models import StoredPhoto


@dataclass(frozen=True)
class Photo:
    """A photo ready to store: the portal's own JPEG (see services/photos.py)."""

    content: bytes
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


class PhotoStorage(Protocol):
    def put(self, organisation_id: int, photo: Photo) -> str:
        """Store a photo; return its key. Part of the caller's transaction."""

    def get(self, organisation_id: int, key: str) -> bytes | None:
        """The photo's bytes, or None if the organisation has no photo under that key."""

    def sha256(self, organisation_id: int, key: str) -> str | None:
        """The photo's SHA-256 (for the record of its deletion), or None."""

    def delete(self, organisation_id: int, keys: list[str]) -> int:
        """Delete these photos of the organisation; return how many were there."""


class DatabasePhotoStorage:
    """Photos as rows of `stored_photos` (bytea on PostgreSQL, a blob on SQLite)."""

    def put(self, organisation_id: int, photo: Photo) -> str:
        row = StoredPhoto(
            organisation_id=organisation_id,
            content=photo.content,
            sha256=photo.sha256,
            byte_size=len(photo.content),
            width=photo.width,
            height=photo.height,
        )
        db.session.add(row)
        db.session.flush()
        return str(row.id)

    def get(self, organisation_id: int, key: str) -> bytes | None:
        photo_id = _id(key)
        if photo_id is None:
            return None
        return db.session.scalar(
            sa.select(StoredPhoto.content).where(
                StoredPhoto.id == photo_id, StoredPhoto.organisation_id == organisation_id
            )
        )

    def sha256(self, organisation_id: int, key: str) -> str | None:
        photo_id = _id(key)
        if photo_id is None:
            return None
        return db.session.scalar(
            sa.select(StoredPhoto.sha256).where(
                StoredPhoto.id == photo_id, StoredPhoto.organisation_id == organisation_id
            )
        )

    def delete(self, organisation_id: int, keys: list[str]) -> int:
        ids = [i for i in (_id(key) for key in keys) if i is not None]
        if not ids:
            return 0
        result = db.session.execute(
            sa.delete(StoredPhoto).where(
                StoredPhoto.organisation_id == organisation_id, StoredPhoto.id.in_(ids)
            )
        )
        return result.rowcount or 0


def _id(key: str) -> int | None:
    return int(key) if key.isdigit() and len(key) < 12 else None


_BACKENDS: dict[str, type] = {"database": DatabasePhotoStorage}


def storage() -> PhotoStorage:
    """The configured photo storage (PORTAL_PHOTO_STORAGE; "database" by default)."""
    name = current_app.config.get("PHOTO_STORAGE", "database")
    return _BACKENDS[name]()
