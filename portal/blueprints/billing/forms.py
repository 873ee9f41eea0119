import re
import unicodedata

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, Field, HiddenField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional, ValidationError
from wtforms.widgets import TextInput

from portal.blueprints.validators import at_most, email, required
from portal.services.billing import STATUSES

MAX_YEN = 1_000_000_000  # far above any invoice, far below the database's integer range
# Whether anything was typed; a value typed but unreadable keeps its own message.
_given = InputRequired(_l("This field is required."))


def _halfwidth(text: str) -> str:
    """Full-width digits and signs as typed with a Japanese IME (１２，０００ → 12,000)."""
    return unicodedata.normalize("NFKC", text).strip()


class YenField(Field):
    """Whole yen as people write it: 55000, 55,000, ¥55,000 or 55,000円 (R-13)."""

    widget = TextInput()

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("render_kw", {"inputmode": "numeric", "autocomplete": "off"})
        super().__init__(label, validators, **kwargs)

    def _value(self) -> str:
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else str(self.data)

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        digits = _halfwidth(valuelist[0])
        for sign in (",", "¥", "円", " "):
            digits = digits.replace(sign, "")
        if not digits.isascii() or not digits.isdigit():
            self.data = None
            raise ValueError(_l("Enter an amount in whole yen, e.g. 55000."))
        # Bounded before it reaches a query: amounts are integer columns (issue 13).
        if len(digits) > len(str(MAX_YEN)) or int(digits) > MAX_YEN:
            self.data = None
            raise ValueError(_l("Enter an amount of at most ¥1,000,000,000."))
        self.data = int(digits)


class TokyoDateField(DateField):
    """A date as YYYY-MM-DD (what date inputs send) or YYYY/MM/DD, with our own message."""

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, format=["%Y-%m-%d", "%Y/%m/%d"], **kwargs)

    def process_formdata(self, valuelist: list[str]) -> None:
        try:
            super().process_formdata([_halfwidth(v) for v in valuelist])
        except ValueError:
            raise ValueError(_l("Enter a date as YYYY-MM-DD.")) from None


KIND_CHOICES = [
    SelectChoice("any", _l("Invoices and credit notes")),
    SelectChoice("invoice", _l("Invoices")),
    SelectChoice("credit_note", _l("Credit notes")),
]
STATUS_LABELS = {
    "open": _l("Open"),
    "overdue": _l("Overdue"),
    "paid": _l("Paid"),
    "credited": _l("Credited"),
}
STATUS_CHOICES = [SelectChoice("any", _l("Any status"))] + [
    SelectChoice(s, STATUS_LABELS[s]) for s in STATUSES
]


class SearchForm(FlaskForm):
    """R-42: issued documents by date, amount and counterparty, alone or combined (a GET)."""

    class Meta:
        csrf = False  # a search changes nothing

    issued_from = TokyoDateField(_l("Issued from"), validators=[Optional()])
    issued_to = TokyoDateField(_l("Issued to"), validators=[Optional()])
    amount_min = YenField(
        _l("Total from (yen, tax included)"),
        validators=[Optional()],
    )
    amount_max = YenField(
        _l("Total to (yen, tax included)"),
        validators=[Optional()],
    )
    counterparty = StringField(_l("Counterparty (part of the name)"), validators=[at_most(200)])
    kind = SelectField(_l("Kind"), choices=KIND_CHOICES, default="any")
    status = SelectField(_l("Status"), choices=STATUS_CHOICES, default="any")

    def validate_issued_to(self, field: TokyoDateField) -> None:
        if field.data and self.issued_from.data and field.data < self.issued_from.data:
            raise ValidationError(_l("The end date is before the start date."))

    def validate_amount_max(self, field: YenField) -> None:
        if (
            field.data is not None
            and self.amount_min.data is not None
            and field.data < self.amount_min.data
        ):
            raise ValidationError(_l("The upper amount is below the lower amount."))


METHOD_CHOICES = [
    SelectChoice("bank_transfer", _l("Bank transfer")),
    SelectChoice("direct_debit", _l("Direct debit")),
]


class PaymentForm(FlaskForm):
    """R-43: a bank transfer or a direct debit, entered by billing staff."""

    method = SelectField(_l("Paid by"), choices=METHOD_CHOICES)
    received_on = TokyoDateField(_l("Received on"), validators=[_given])
    reference = StringField(
        _l("Reference (bank statement, payer name)"), validators=[required(), at_most(200)]
    )
    # The confirmation step sends the form again with "yes" (record it) or "edit".
    confirmed = HiddenField()


class CreditNoteForm(FlaskForm):
    """R-42: a correction is a new document referencing the original."""

    amount = YenField(_l("Amount (yen, tax excluded)"), validators=[_given])
    tax_rate_percent = SelectField(_l("Tax rate"), coerce=int)
    reason = TextAreaField(
        _l("Reason (printed on the credit note)"),
        validators=[
            required(),
            Length(min=5, max=1000, message=_l("Give the reason in 5 to 1000 characters.")),
        ],
    )
    confirmed = HiddenField()


class ReminderForm(FlaskForm):
    """R-33: only the CSRF token, and which page to return to."""

    back = HiddenField(default="overdue")


# --- the provider's settings (R-40, R-44) ------------------------------------------------------

ACCOUNT_TYPE_CHOICES = [
    SelectChoice("ordinary", _l("Ordinary account")),  # 普通
    SelectChoice("current", _l("Current account")),  # 当座
]
_HALFWIDTH_KANA = re.compile("[\uff61-\uff9f]+")
# What a bank registers as an account holder (全銀): katakana, capitals, digits, a few signs.
_HOLDER_KANA = re.compile(r"[\u30a1-\u30fa\u30fc A-Z0-9().,\-/‐「」]+")
_PHONE = re.compile(r"\+?[0-9][0-9\-() ]{4,38}[0-9]")


def _stripped(value: str | None) -> str:
    return (value or "").strip()


def _digits_as_typed(value: str | None) -> str:
    """Full-width digits and signs typed with a Japanese IME, as half-width."""
    return _halfwidth(value or "")


def _fullwidth_kana(value: str | None) -> str:
    """Half-width katakana (ｶﾌﾞｼｷｶﾞｲｼｬ) as full-width (カブシキガイシャ); the rest as typed."""
    return _HALFWIDTH_KANA.sub(lambda m: unicodedata.normalize("NFKC", m.group()), _stripped(value))


class ProviderForm(FlaskForm):
    """The issuer's settings: printed on every invoice issued from now on (R-40, R-44)."""

    name_ja = StringField(
        _l("Name (Japanese)"), filters=[_stripped], validators=[required(), at_most(200)]
    )
    name_en = StringField(
        _l("Name (English)"), filters=[_stripped], validators=[required(), at_most(200)]
    )
    registration_number = StringField(
        _l("Registration number (T and 13 digits)"),
        filters=[lambda v: _digits_as_typed(v).upper().replace(" ", "")],
        validators=[required()],
    )
    address = StringField(_l("Address"), filters=[_stripped], validators=[at_most(300)])
    phone = StringField(
        _l("Phone"), filters=[_digits_as_typed], validators=[required(), at_most(40)]
    )
    contact_email = StringField(
        _l("Contact e-mail address"),
        filters=[_stripped],
        validators=[Optional(), email(), at_most(254)],
    )
    bank_name = StringField(_l("Bank"), filters=[_stripped], validators=[at_most(100)])
    bank_branch = StringField(_l("Branch"), filters=[_stripped], validators=[at_most(100)])
    bank_account_type = SelectField(
        _l("Account type"), choices=ACCOUNT_TYPE_CHOICES, default="ordinary"
    )
    bank_account_number = StringField(
        _l("Account number (7 digits)"), filters=[_digits_as_typed], validators=[at_most(20)]
    )
    bank_account_holder_kana = StringField(
        _l("Account holder (katakana)"), filters=[_fullwidth_kana], validators=[at_most(100)]
    )

    def validate_registration_number(self, field: StringField) -> None:
        if not re.fullmatch(r"T\d{13}", field.data or ""):
            raise ValidationError(_l("Enter T and the 13 digits, e.g. T1234567890123."))

    def validate_phone(self, field: StringField) -> None:
        if field.data and not _PHONE.fullmatch(field.data):
            raise ValidationError(_l("Enter a phone number, e.g. 03-1234-5678."))

    def validate_bank_account_number(self, field: StringField) -> None:
        if field.data and not re.fullmatch(r"\d{7}", field.data):
            raise ValidationError(_l("Enter the account number in 7 digits."))

    def validate_bank_account_holder_kana(self, field: StringField) -> None:
        if field.data and not _HOLDER_KANA.fullmatch(unicodedata.normalize("NFKC", field.data)):
            raise ValidationError(
                _l("Write the account holder in katakana, as the bank registers it.")
            )
