from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length


class EnterClientForm(FlaskForm):
    purpose = StringField(_l("Purpose (optional)"), validators=[Length(max=500)])
