from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField

from portal.blueprints.validators import at_most, required


class HandledForm(FlaskForm):
    note = TextAreaField(
        _l("What was done"),
        validators=[required(_l("Say what was done.")), at_most(2000)],
    )
