from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField

from portal.blueprints.validators import at_most

MAX_PURPOSE_LENGTH = 500


class EnterClientForm(FlaskForm):
    purpose = StringField(_l("Purpose (optional)"), validators=[at_most(MAX_PURPOSE_LENGTH)])
