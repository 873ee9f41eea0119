from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField

from portal.blueprints.validators import at_most, required


class HandledForm(FlaskForm):
    note = TextAreaField(
        _l("What was done"),
        validators=[required(_l("Say what was done.")), at_most(2000)],
    )
    # A report is handled once and its note never changes: the confirmation page sends the
    # form again with "yes" (record it) or "edit" (show the form again, as typed).
    confirmed = HiddenField()
