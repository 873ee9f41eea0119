"""Forms of the card holders' pages (R-83, R-85). The text rules are the service's
(services/card_holders.py), so the form and the CSV import accept and refuse alike."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, StringField
from wtforms.validators import ValidationError

from portal.services import card_holders
from portal.services.photos import CropBox

MAX_CROP_COORDINATE = 100_000


class HolderText:
    """Refuse what card_holders.text_problem refuses, with its message."""

    field_flags = {}

    def __init__(self, name: str) -> None:
        self.name = name
        if card_holders.FIELDS[name][2]:
            self.field_flags = {"required": True}

    def __call__(self, form: Any, field: Any) -> None:
        problem = card_holders.text_problem(self.name, field.data or "")
        if problem:
            raise ValidationError(problem)


def _text(name: str, **render_kw: object) -> StringField:
    label, max_length, _required = card_holders.FIELDS[name]
    return StringField(
        label, validators=[HolderText(name)], render_kw={"maxlength": max_length, **render_kw}
    )


class CropFields:
    """The crop box the page's script fills in (photo.js), in the photo's own pixels; the
    server keeps it inside the photo and at 3:4 (services/photos.py). Without the script
    they stay empty and the photo is cropped about its centre."""

    crop_x = HiddenField()
    crop_y = HiddenField()
    crop_width = HiddenField()
    crop_height = HiddenField()

    def crop_box(self) -> CropBox | None:
        values = []
        for name in ("crop_x", "crop_y", "crop_width", "crop_height"):
            text = (getattr(self, name).data or "").strip()
            if not text.isdigit() or len(text) > 6 or int(text) > MAX_CROP_COORDINATE:
                return None
            values.append(int(text))
        return CropBox(*values)


def _photo_field(label: Any) -> FileField:
    # `accept` helps the browser's picker; the server decides by content, never by this.
    return FileField(label, render_kw={"accept": "image/jpeg,image/png", "data-photo-input": ""})


class HolderForm(CropFields, FlaskForm):
    name = _text("name", autocomplete="off")
    name_kana = _text("name_kana", autocomplete="off")
    employee_number = _text("employee_number", autocomplete="off")
    department = _text("department")
    title = _text("title")
    photo = _photo_field(_l("Photo (optional)"))

    def raw(self) -> dict[str, str]:
        return {name: getattr(self, name).data or "" for name in card_holders.FIELDS}


class EditHolderForm(FlaskForm):
    name = _text("name", autocomplete="off")
    name_kana = _text("name_kana", autocomplete="off")
    employee_number = _text("employee_number", autocomplete="off")
    department = _text("department")
    title = _text("title")

    def raw(self) -> dict[str, str]:
        return {name: getattr(self, name).data or "" for name in card_holders.FIELDS}


class PhotoForm(CropFields, FlaskForm):
    photo = _photo_field(_l("Photo"))


class RemoveHolderForm(FlaskForm):
    """Removing a holder deletes its photo: the confirmation page sends `confirmed` "yes"."""

    confirmed = HiddenField()


class ImportForm(FlaskForm):
    csv_file = FileField(_l("CSV file of holders"), render_kw={"accept": ".csv,.txt,text/csv"})
    zip_file = FileField(_l("ZIP file of photos (optional)"), render_kw={"accept": ".zip"})


class ImportStepForm(FlaskForm):
    """Importing or cancelling a previewed upload: which one."""

    staged = HiddenField()

    def staged_id(self) -> int | None:
        text = (self.staged.data or "").strip()
        return int(text) if text.isdigit() and len(text) < 12 else None
