"""Forms of incidents, maintenance and SLA claims (R-50..R-53). Times are Tokyo time."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    Field,
    HiddenField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Optional, ValidationError
from wtforms.widgets import TextInput

from portal.blueprints.billing.forms import TokyoDateField, YenField
from portal.blueprints.validators import at_most, required
from portal.clock import TOKYO
from portal.domain.sla import IncidentKind
from portal.forms import FIRST_YEAR, LAST_YEAR
from portal.models import UpdateStatus
from portal.services.claims import Decision

KIND_LABELS = {
    IncidentKind.OUTAGE: _l("Outage"),
    IncidentKind.DATA_LOST: _l("Registered data lost"),
    IncidentKind.SECURITY_FAILURE: _l("Security failure"),
}
STATUS_LABELS = {
    UpdateStatus.INVESTIGATING: _l("Investigating"),
    UpdateStatus.IDENTIFIED: _l("Cause identified"),
    UpdateStatus.MONITORING: _l("Monitoring"),
    UpdateStatus.RESOLVED: _l("Resolved"),
}


class TokyoDateTimeField(DateTimeLocalField):
    """A date and time as a datetime-local input sends it, in Tokyo time (R-01); the value
    is an aware instant, and a year the portal cannot mean is refused here."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, format=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"], **kwargs)

    def process_formdata(self, valuelist: list[str]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("Enter a date and time as YYYY-MM-DD HH:MM.")) from None
        if self.data is None:
            return
        if not FIRST_YEAR <= self.data.year <= LAST_YEAR:
            self.data = None
            raise ValueError(_l("Enter a date between 2000 and 2100."))
        self.data = self.data.replace(tzinfo=TOKYO)

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        if isinstance(self.data, datetime):
            return self.data.astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M")
        return ""


class IdListField(Field):
    """Organisation numbers typed as a list: "12, 15 31" (at most 500)."""

    widget = TextInput()

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return ", ".join(str(i) for i in self.data or [])

    def process_formdata(self, valuelist: list[str]) -> None:
        text = (valuelist[0] if valuelist else "").replace(",", " ").replace("、", " ")
        parts = text.split()
        if len(parts) > 500 or not all(p.isascii() and p.isdigit() and len(p) < 10 for p in parts):
            self.data = []
            raise ValueError(_l("Enter organisation numbers separated by commas."))
        self.data = sorted({int(p) for p in parts})


def _choices(labels) -> list[SelectChoice]:
    return [SelectChoice(k.value, label) for k, label in labels.items()]


class IncidentFactsForm(FlaskForm):
    """What happened (R-50 reading): kind, scope, start and end to the minute, announcements."""

    kind = SelectField(_l("Kind"), choices=_choices(KIND_LABELS), validators=[required()])
    title_ja = StringField(_l("Title (Japanese)"), validators=[required(), at_most(200)])
    title_en = StringField(_l("Title (English)"), validators=[required(), at_most(200)])
    service_ids = SelectMultipleField(
        _l("Services affected"),
        coerce=int,
        validators=[InputRequired(_l("Choose the services affected."))],
    )
    plan_ids = SelectMultipleField(_l("Only these plans (none: all)"), coerce=int)
    organisation_ids = IdListField(_l("Only these organisations (numbers; empty: all)"))
    started_at = TokyoDateTimeField(_l("Began (Tokyo)"), validators=[required()])
    ended_at = TokyoDateTimeField(_l("Ended (Tokyo; empty while open)"), validators=[Optional()])
    occurrence_announced_at = TokyoDateTimeField(
        _l("Occurrence announced (Tokyo)"), validators=[Optional()]
    )
    recovery_announced_at = TokyoDateTimeField(
        _l("Recovery announced (Tokyo)"), validators=[Optional()]
    )
    confirmed = HiddenField()


class NewIncidentForm(IncidentFactsForm):
    publish = BooleanField(_l("Publish an update now (told to the affected customers)"))
    status = SelectField(_l("Status"), choices=_choices(STATUS_LABELS), default="investigating")
    message_ja = TextAreaField(_l("Message (Japanese)"), validators=[at_most(4000)])
    message_en = TextAreaField(_l("Message (English)"), validators=[at_most(4000)])

    def validate_message_ja(self, field: Field) -> None:
        if self.publish.data and not (field.data or "").strip():
            raise ValidationError(_l("This field is required."))

    def validate_message_en(self, field: Field) -> None:
        if self.publish.data and not (field.data or "").strip():
            raise ValidationError(_l("This field is required."))


class CorrectionForm(IncidentFactsForm):
    reason = TextAreaField(
        _l("Why (kept with the new version and shown with every claim on it)"),
        validators=[required(), at_most(1000)],
    )


class UpdateForm(FlaskForm):
    """A public update of the timeline (R-61)."""

    status = SelectField(_l("Status"), choices=_choices(STATUS_LABELS), validators=[required()])
    ended_at = TokyoDateTimeField(
        _l("Recovered at (Tokyo; for a resolved update)"), validators=[Optional()]
    )
    message_ja = TextAreaField(_l("Message (Japanese)"), validators=[required(), at_most(4000)])
    message_en = TextAreaField(_l("Message (English)"), validators=[required(), at_most(4000)])
    confirmed = HiddenField()


MAINTENANCE_MODES = [
    SelectChoice("announce", _l("Announce maintenance ahead (told to the customers now)")),
    SelectChoice("unannounced", _l("Record maintenance carried out without announcement")),
]


class MaintenanceForm(FlaskForm):
    mode = RadioField(_l("What"), choices=MAINTENANCE_MODES, default="announce")
    service_ids = SelectMultipleField(
        _l("Services"), coerce=int, validators=[InputRequired(_l("Choose the services affected."))]
    )
    title_ja = StringField(_l("Title (Japanese)"), validators=[required(), at_most(200)])
    title_en = StringField(_l("Title (English)"), validators=[required(), at_most(200)])
    planned_start = TokyoDateTimeField(_l("Start (Tokyo)"), validators=[required()])
    planned_end = TokyoDateTimeField(
        _l("End (Tokyo; for unannounced maintenance, when it ended)"), validators=[required()]
    )
    confirmed = HiddenField()


class MaintenanceEndForm(FlaskForm):
    actual_end = TokyoDateTimeField(_l("Actually ended (Tokyo)"), validators=[required()])


DECISIONS = [
    SelectChoice(Decision.APPROVE.value, _l("Approve as computed")),
    SelectChoice(Decision.APPROVE_LOWER.value, _l("Approve a lower amount")),
    SelectChoice(Decision.REJECT.value, _l("Reject")),
]


class ReviewForm(FlaskForm):
    decision = RadioField(_l("Decision"), choices=DECISIONS, validators=[required()])
    amount = YenField(_l("Lower amount (yen, tax excluded)"), validators=[Optional()])
    reason = TextAreaField(
        _l("Reason (told to the customer; needed unless approved as computed)"),
        validators=[at_most(1000)],
    )
    confirmed = HiddenField()


class FileClaimForm(FlaskForm):
    """Filing needs only the incident: the amount is the portal's, never typed (R-52)."""

    incident_id = IntegerField(validators=[required()])


class PaperClaimForm(FlaskForm):
    """A claim received by letter or telephone (R-52 reading)."""

    incident_id = SelectField(_l("Incident"), coerce=int, validators=[required()])
    received_on = TokyoDateField(_l("Received on"), validators=[required()])


class RotateFeedsForm(FlaskForm):
    """A new secret address for the feeds needs nothing but the CSRF token."""
