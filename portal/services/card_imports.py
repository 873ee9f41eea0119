"""Importing card holders from a CSV and a ZIP of their photos (R-83, R-85).

Files as Japanese offices make them: UTF-8 with or without a BOM, or Shift_JIS (CP932) as
Excel saves "CSV"; a header row in Japanese or English; commas (or tabs). Each row is checked
as the one-holder form checks it (services/card_holders.py), its photo as an upload is
(services/photos.py). The import ADDS holders: an employee number already registered, or
twice in the file, is a problem of its row (existing holders are changed on their own page).

Three steps, each a request that any app server can answer:

1. `stage`: the files are checked as files (sizes, text encoding, header, number of rows, the
   ZIP's directory) and kept in `card_imports` (expired uploads are deleted on the way);
2. `preview`: every row with its problems; photos are decoded but nothing is stored;
3. `run`: all rows or none, in one transaction. Everything is checked again (another change
   may have registered a number since), the upload is claimed by a conditional UPDATE so that
   a double click or a second tab imports once, and the upload is deleted with the import.

Memory stays flat whatever the number of rows: photos are read from the ZIP and processed one
at a time, and holders are flushed in batches (benchmarks/inet_import.py measures it).
"""

from __future__ import annotations

import csv
import hashlib
import io
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import IntegrityError

from portal.clock import clock
from portal.domain.inet import MAX_PHOTO_BYTES
from portal.extensions import db
from portal.models import CardHolder
from portal.models.inet import CardImport
from portal.permissions import Actor
from portal.services import audit, card_holders, photos
from portal.services.card_holders import HolderDetails
from portal.services.errors import Conflict, PortalError
from portal.services.photo_storage import storage
from portal.transaction import begin_writing

MAX_CSV_BYTES = 2 * 1024 * 1024
MAX_ROWS = 2_000
# A ZIP of 2,000 phone photos at ~50 KB each after a phone's own compression is ~100 MB; the
# whole upload is held in memory twice at most (request, database row) on a 2-core server.
MAX_ZIP_BYTES = 100 * 1024 * 1024
MAX_ZIP_ENTRIES = 2_500  # files and folders
MAX_ZIP_UNCOMPRESSED = 400 * 1024 * 1024  # what the directory says all members unpack to
MAX_PHOTO_NAME = 255
STAGING_HOURS = 24
BATCH = 100  # holders flushed at once

# The columns, each with the header names accepted for it (compared without spaces, "_" or
# "-", in any width and case). Name and employee number are required.
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("氏名", "名前", "氏名漢字", "name", "fullname"),
    "name_kana": (
        "フリガナ",
        "ふりがな",
        "カナ",
        "氏名カナ",
        "氏名フリガナ",
        "kana",
        "namekana",
        "furigana",
    ),
    "employee_number": (
        "社員番号",
        "従業員番号",
        "社員コード",
        "社員no",
        "employeenumber",
        "employeeno",
        "employeeid",
        "employeecode",
    ),
    "department": ("部署", "部署名", "所属", "部門", "department", "dept"),
    "title": ("役職", "役職名", "肩書", "肩書き", "title", "jobtitle", "position"),
    "photo": ("写真", "写真ファイル", "写真ファイル名", "写真名", "photo", "photofile", "image"),
}
HEADERS_JA = {
    "name": "氏名",
    "name_kana": "フリガナ",
    "employee_number": "社員番号",
    "department": "部署",
    "title": "役職",
    "photo": "写真",
}
PHOTO_LABEL = _l("Photo")


class ImportRefused(PortalError):
    """A file the import cannot use at all (field: "csv_file" or "zip_file")."""


class AlreadyImported(Conflict):
    """The upload was imported (or cancelled, or expired) already."""


@dataclass
class RowProblem:
    field: str  # a key of COLUMNS, or "" for the row as a whole
    message: str


@dataclass
class PreviewRow:
    row: int  # as Excel numbers it: the header is row 1
    values: dict[str, str]
    photo: str
    problems: list[RowProblem] = field(default_factory=list)


@dataclass
class Preview:
    rows: list[PreviewRow]
    ignored_columns: list[str]
    photos: int  # rows with a photo

    @property
    def problems(self) -> int:
        return sum(len(r.problems) for r in self.rows)

    @property
    def rows_with_problems(self) -> int:
        return sum(1 for r in self.rows if r.problems)

    @property
    def ok(self) -> bool:
        return bool(self.rows) and self.problems == 0


# --- the files -----------------------------------------------------------------------------


def decode_csv(data: bytes) -> str:
    """The CSV's text: UTF-8 (with or without a BOM), else CP932 (Shift_JIS from Excel)."""
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportRefused(
            _("This is an Excel workbook, not a CSV file. In Excel, save it as CSV first."),
            field="csv_file",
        )
    if b"\x00" in data:
        raise ImportRefused(_unknown_encoding(), field="csv_file")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        encodings: tuple[str, ...] = ("utf-8",)
    else:
        encodings = ("utf-8", "cp932")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportRefused(_unknown_encoding(), field="csv_file")


def _unknown_encoding() -> str:
    return _(
        "The CSV file is neither UTF-8 nor Shift_JIS text. In Excel, save it as "
        '"CSV UTF-8" or "CSV".'
    )


def _header_key(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell).casefold()
    return "".join(c for c in text if c not in " \t_-・()（）")


_ALIASES = {alias.casefold(): column for column, names in COLUMNS.items() for alias in names}


@dataclass
class Table:
    columns: dict[str, int]  # column -> index in a row
    ignored: list[str]
    records: list[tuple[int, list[str]]]  # (row number, cells) of the non-empty data rows


def read_table(text: str) -> Table:
    """The CSV's header and rows (commas, or tabs when the header has tabs and no comma)."""
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error:
        raise ImportRefused(
            _("The CSV file could not be read: check its quotes."), field="csv_file"
        ) from None
    if not records or not any(cell.strip() for cell in records[0]):
        raise ImportRefused(_no_header(), field="csv_file")
    columns: dict[str, int] = {}
    ignored: list[str] = []
    for index, cell in enumerate(records[0]):
        column = _ALIASES.get(_header_key(cell))
        if column is None or column in columns:
            if cell.strip():
                ignored.append(cell.strip()[:40])
            continue
        columns[column] = index
    if "name" not in columns or "employee_number" not in columns:
        raise ImportRefused(_no_header(), field="csv_file")
    rows = [
        (number, cells)
        for number, cells in enumerate(records[1:], start=2)
        if any(cell.strip() for cell in cells)  # Excel leaves rows of empty cells
    ]
    if not rows:
        raise ImportRefused(_("The CSV file has no holders under its header."), field="csv_file")
    if len(rows) > MAX_ROWS:
        raise ImportRefused(
            _(
                "The CSV file has %(rows)d holders; import at most %(max)d at a time.",
                rows=len(rows),
                max=MAX_ROWS,
            ),
            field="csv_file",
        )
    return Table(columns=columns, ignored=ignored, records=rows)


def _no_header() -> str:
    return _(
        "The first row of the CSV must name the columns, with at least 氏名 (name) and "
        "社員番号 (employee_number)."
    )


def _member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its maker wrote it: a ZIP made on Japanese Windows stores names
    in CP932 without saying so (Python reads them as CP437)."""
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437", errors="replace")
    for encoding in ("utf-8", "cp932"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def _unsafe(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return (
        name.startswith(("/", "\\"))
        or (len(name) > 1 and name[1] == ":")  # C:\...
        or ".." in parts
        or "\x00" in name
    )


@dataclass
class PhotoArchive:
    """A ZIP's directory, checked before any member is read."""

    archive: zipfile.ZipFile
    members: dict[str, zipfile.ZipInfo]  # by name as written in the CSV

    def read(self, info: zipfile.ZipInfo) -> bytes:
        with self.archive.open(info) as member:
            return member.read(MAX_PHOTO_BYTES + 1)


def open_zip(data: bytes) -> PhotoArchive:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        raise ImportRefused(
            _("The ZIP file could not be read. Make it again from the folder of photos."),
            field="zip_file",
        ) from None
    if len(infos) > MAX_ZIP_ENTRIES:
        raise ImportRefused(
            _("The ZIP file holds more than %(max)d files.", max=MAX_ZIP_ENTRIES),
            field="zip_file",
        )
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = _member_name(info)
        if _unsafe(name):
            raise ImportRefused(
                _(
                    "The ZIP file contains a file with an unsafe path (%(name)s). Make the ZIP "
                    "again from the folder of photos.",
                    name=name[:100],
                ),
                field="zip_file",
            )
        if info.flag_bits & 0x1:
            raise ImportRefused(
                _("The ZIP file is protected by a password; make it again without one."),
                field="zip_file",
            )
        total += info.file_size
        if not info.is_dir():
            members[name] = info
    if total > MAX_ZIP_UNCOMPRESSED:
        raise ImportRefused(
            _(
                "The photos in the ZIP file unpack to more than %(mb)d MB.",
                mb=MAX_ZIP_UNCOMPRESSED // (1024 * 1024),
            ),
            field="zip_file",
        )
    return PhotoArchive(archive=archive, members=members)


# --- staging -------------------------------------------------------------------------------


def _digest(csv_bytes: bytes, zip_bytes: bytes | None) -> str:
    digest = hashlib.sha256(csv_bytes)
    digest.update(b"\x00zip\x00")
    digest.update(zip_bytes or b"")
    return digest.hexdigest()


def purge_expired(now: datetime | None = None) -> int:
    """Delete every upload older than STAGING_HOURS (imported or not)."""
    limit = (now or clock.now()) - timedelta(hours=STAGING_HOURS)
    result = db.session.execute(sa.delete(CardImport).where(CardImport.created_at < limit))
    return result.rowcount or 0


def stage(
    actor: Actor,
    *,
    csv_name: str,
    csv_bytes: bytes,
    zip_name: str = "",
    zip_bytes: bytes | None = None,
    ip: str = "",
) -> CardImport:
    """Check the files as files and keep them for the preview and the import."""
    card_holders._require(actor)
    card_holders._require_registered(actor)
    if not csv_bytes:
        raise ImportRefused(_("Choose the CSV file of holders."), field="csv_file")
    if len(csv_bytes) > MAX_CSV_BYTES:
        raise ImportRefused(
            _("The CSV file is too large (max %(mb)d MB).", mb=MAX_CSV_BYTES // (1024 * 1024)),
            field="csv_file",
        )
    read_table(decode_csv(csv_bytes))
    if zip_bytes is not None and len(zip_bytes) == 0:
        zip_bytes = None
    if zip_bytes is not None:
        if len(zip_bytes) > MAX_ZIP_BYTES:
            raise ImportRefused(too_large_zip(), field="zip_file")
        open_zip(zip_bytes)
    purge_expired()
    staged = CardImport(
        organisation_id=actor.organisation_id,
        created_by_id=actor.user.id,
        csv_name=(csv_name or "")[:255],
        csv=csv_bytes,
        zip_name=(zip_name or "")[:255] if zip_bytes is not None else "",
        zip=zip_bytes,
        sha256=_digest(csv_bytes, zip_bytes),
    )
    db.session.add(staged)
    db.session.flush()
    audit.record("card_holders_import_uploaded", actor=actor, subject=staged, ip=ip)
    return staged


def too_large_zip() -> str:
    return _("The ZIP file is too large (max %(mb)d MB).", mb=MAX_ZIP_BYTES // (1024 * 1024))


def get_staged(actor: Actor, import_id: int | None) -> CardImport | None:
    """The organisation's upload waiting for its import, or None (another organisation's,
    imported, cancelled or expired: all the same)."""
    if import_id is None or actor.organisation_id is None:
        return None
    limit = clock.now() - timedelta(hours=STAGING_HOURS)
    return db.session.scalar(
        sa.select(CardImport).where(
            CardImport.id == import_id,
            CardImport.organisation_id == actor.organisation_id,
            CardImport.consumed_at.is_(None),
            CardImport.created_at >= limit,
        )
    )


def expires_at(staged: CardImport) -> datetime:
    return staged.created_at + timedelta(hours=STAGING_HOURS)


def cancel(actor: Actor, staged: CardImport, *, ip: str = "") -> None:
    card_holders._require(actor)
    db.session.execute(
        sa.delete(CardImport).where(
            CardImport.id == staged.id, CardImport.organisation_id == actor.organisation_id
        )
    )
    audit.record("card_holders_import_cancelled", actor=actor, ip=ip, import_id=staged.id)


# --- checking the rows ---------------------------------------------------------------------


@dataclass
class _Row:
    preview: PreviewRow
    details: HolderDetails | None
    member: zipfile.ZipInfo | None


def _rows(actor: Actor, staged: CardImport) -> tuple[Preview, list[_Row], PhotoArchive | None]:
    """Every row checked but for the photos' pixels (text, duplicates, ZIP members)."""
    table = read_table(decode_csv(staged.csv))
    archive = open_zip(staged.zip) if staged.zip is not None else None
    rows: list[_Row] = []
    for number, cells in table.records:
        raw = {
            column: (cells[index] if index < len(cells) else "")
            for column, index in table.columns.items()
        }
        details, problems = card_holders.clean(raw)
        values = {f: card_holders.normalise(f, raw.get(f, "")) for f in card_holders.FIELDS}
        photo_name = (raw.get("photo") or "").strip(" \t\u3000")
        preview = PreviewRow(
            row=number,
            values=values,
            photo=photo_name[:MAX_PHOTO_NAME],
            problems=[RowProblem(f, m) for f, m in problems.items()],
        )
        member = _photo_member(preview, archive, raw.get("photo") or "")
        rows.append(_Row(preview=preview, details=details, member=member))
    _duplicates(actor, rows)
    preview = Preview(
        rows=[r.preview for r in rows],
        ignored_columns=table.ignored,
        photos=sum(1 for r in rows if r.preview.photo),
    )
    if archive is not None and "photo" not in table.columns:
        preview.rows[0].problems.append(
            RowProblem(
                "photo",
                _("A ZIP of photos was given, but the CSV has no 写真 (photo) column."),
            )
        )
    return preview, rows, archive


def _photo_member(
    preview: PreviewRow, archive: PhotoArchive | None, typed: str
) -> zipfile.ZipInfo | None:
    name = preview.photo
    if not name:
        return None
    if "\x00" in typed or len(typed) > MAX_PHOTO_NAME:
        preview.problems.append(RowProblem("photo", _("This photo name cannot be used.")))
        return None
    if typed.lstrip(" \t\u3000").startswith(tuple("=+-@＝＋－＠")):
        preview.problems.append(
            RowProblem(
                "photo",
                _(
                    "%(field)s cannot start with = + - or @ (a spreadsheet would run it as a "
                    "formula).",
                    field=PHOTO_LABEL,
                ),
            )
        )
        return None
    if archive is None:
        preview.problems.append(
            RowProblem("photo", _("%(name)s: upload the ZIP of photos with the CSV.", name=name))
        )
        return None
    info = archive.members.get(name)
    if info is None:
        elsewhere = sorted(n for n in archive.members if n.rsplit("/", 1)[-1] == name)
        if elsewhere:
            message = _(
                "%(name)s is not in the ZIP file under that name; it has %(path)s. Write "
                "that name in the CSV.",
                name=name,
                path=elsewhere[0],
            )
        else:
            message = _("%(name)s is not in the ZIP file.", name=name)
        preview.problems.append(RowProblem("photo", message))
        return None
    if info.file_size > MAX_PHOTO_BYTES:
        preview.problems.append(RowProblem("photo", photos.too_large_message()))
        return None
    return info


def _duplicates(actor: Actor, rows: list[_Row]) -> None:
    """An employee number twice in the file, or already registered: a problem of its row."""
    first_row: dict[str, int] = {}
    for row in rows:
        if row.details is None:
            continue
        number = row.details.employee_number
        if number in first_row:
            row.preview.problems.append(
                RowProblem(
                    "employee_number",
                    _(
                        "Employee number %(number)s is also on row %(row)d.",
                        number=number,
                        row=first_row[number],
                    ),
                )
            )
        else:
            first_row[number] = row.preview.row
    numbers = list(first_row)
    existing: dict[str, str] = {}
    for start in range(0, len(numbers), 500):
        existing.update(
            (number, name)
            for number, name in db.session.execute(
                sa.select(CardHolder.employee_number, CardHolder.name).where(
                    CardHolder.organisation_id == actor.organisation_id,
                    CardHolder.employee_number.in_(numbers[start : start + 500]),
                )
            )
        )
    for row in rows:
        if row.details is not None and row.details.employee_number in existing:
            number = row.details.employee_number
            row.preview.problems.append(
                RowProblem(
                    "employee_number",
                    _(
                        "Employee number %(number)s is already registered for %(name)s.",
                        number=number,
                        name=existing[number],
                    ),
                )
            )


def _photo_data(archive: PhotoArchive, row: _Row) -> bytes | None:
    assert row.member is not None
    try:
        data = archive.read(row.member)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError):
        row.preview.problems.append(
            RowProblem(
                "photo",
                _("%(name)s could not be read from the ZIP file.", name=row.preview.photo),
            )
        )
        return None
    if len(data) > MAX_PHOTO_BYTES:
        row.preview.problems.append(RowProblem("photo", photos.too_large_message()))
        return None
    return data


def _each_photo(archive: PhotoArchive | None, rows: list[_Row]) -> Iterator[tuple[_Row, bytes]]:
    """The rows' photos, read one at a time (never all in memory)."""
    if archive is None:
        return
    for row in rows:
        if row.member is None:
            continue
        data = _photo_data(archive, row)
        if data is not None:
            yield row, data


def preview(actor: Actor, staged: CardImport) -> Preview:
    """Every row with its problems; the photos are decoded, nothing is stored."""
    card_holders._require(actor)
    result, rows, archive = _rows(actor, staged)
    for row, data in _each_photo(archive, rows):
        try:
            photos.check(data)
        except photos.PhotoError as exc:
            row.preview.problems.append(RowProblem("photo", f"{row.preview.photo}: {exc}"))
    return result


class StillProblems(PortalError):
    """The import found problems (something changed since the preview): nothing imported."""

    def __init__(self, message: str, result: Preview) -> None:
        super().__init__(message)
        self.preview = result


def run(actor: Actor, staged: CardImport, *, ip: str = "") -> int:
    """Import every row or none; return how many holders were added. The upload is claimed
    first, so a second request for it (a double click, another tab) is refused."""
    card_holders._require(actor)
    registration = card_holders._require_registered(actor)
    begin_writing()  # SQLite: take the write lock before the claim
    claimed = db.session.execute(
        sa.update(CardImport)
        .where(
            CardImport.id == staged.id,
            CardImport.organisation_id == actor.organisation_id,
            CardImport.consumed_at.is_(None),
        )
        .values(consumed_at=clock.now())
    )
    if claimed.rowcount != 1:
        raise AlreadyImported(_already_imported())
    result, rows, archive = _rows(actor, staged)
    org_id = actor.organisation_id
    assert org_id is not None
    store = storage()
    keys: dict[int, str] = {}
    if result.problems == 0:
        for row, data in _each_photo(archive, rows):
            try:
                photo = photos.process(data)
            except photos.PhotoError as exc:
                row.preview.problems.append(RowProblem("photo", f"{row.preview.photo}: {exc}"))
                continue
            if result.problems == 0:
                keys[row.preview.row] = store.put(org_id, photo)
    if result.problems:
        raise StillProblems(
            _("Something changed since the preview; nothing was imported. Check the rows."),
            result,
        )
    pending = 0
    for row in rows:
        assert row.details is not None
        db.session.add(
            CardHolder(
                organisation_id=org_id,
                created_by_id=actor.user.id,
                photo_key=keys.get(row.preview.row),
                **vars(row.details),
            )
        )
        pending += 1
        if pending == BATCH:
            _flush()
            pending = 0
    _flush()
    db.session.execute(sa.delete(CardImport).where(CardImport.id == staged.id))
    audit.record(
        "card_holders_imported",
        actor=actor,
        organisation_id=org_id,
        ip=ip,
        holders=len(rows),
        photos=len(keys),
        registration_id=registration.id,
        sha256=staged.sha256,
    )
    return len(rows)


def _flush() -> None:
    try:
        db.session.flush()
    except IntegrityError:
        raise Conflict(
            _(
                "An employee number in the file was registered at the same time by another "
                "change; nothing was imported. Upload the file again."
            )
        ) from None


def _already_imported() -> str:
    return _("This upload was already imported, cancelled, or has expired.")
