"""Customer-facing wording (issue 11) on the pages and e-mails of accounts, users, terms,
organisation, notices, partners and the back office: no rule IDs (they belong in code and
tests), dates and times as people write them (2027年3月1日 10:00, March 1, 2027), and one word
for each thing (members are メンバー; "changed by" and "published by" are not 同意者)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from html import unescape
from pathlib import Path

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.models import Contract, OutboxEmail, StaffRole, TermsVersion, User, UserKind
from portal.services import mail
from tests.factories import add_user, build_world, rows, signed_in_client

STAFF_ADMIN = "admin@provider.example"
RULE_ID = re.compile(r"\bR-\d{2}\b")
MACHINE_DATE = re.compile(r"\b20\d\d[-/]\d\d[-/]\d\d\b")  # 2027-03-01, 2027/03/01
MONTH_FIRST = re.compile(r"月度\s*20\d\d")  # 月度 2026-12 instead of 2026年12月度
MY_EMAILS = (
    "email_changed",
    "information_changed",
    "invitation",
    "misuse_alert",
    "misuse_reported",
    "password_reset",
    "terms_published",
)


def _visible(page: str) -> str:
    """What a reader sees: the text without tags (and so without attributes and values)."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _in(app, client, path: str, locale: str, *, main: bool = False) -> str:
    """The page's visible text in `locale` (its main content only, with `main`)."""
    with client.session_transaction() as session:
        session["locale"] = locale
    response = client.get(path)
    assert response.status_code == 200, f"{path}: {response.status_code}"
    page = response.get_data(as_text=True)
    if main:
        page = re.search(r"<main\b.*?</main>", page, re.S)[0]
    return _visible(page)


@pytest.fixture
def world(app):
    """A world in which each page of these areas has something to show: a changed e-mail
    address, published terms consented to, an invitation, a token, a misuse report."""
    world = build_world(app)
    with app.app_context():
        add_user(
            STAFF_ADMIN, "Provider Admin", kind=UserKind.STAFF, staff_role=StaffRole.ADMINISTRATOR
        )
        db.session.get(User, world.ids["member"]).locale = "ja"
        world.ids["image_works"] = db.session.scalar(
            sa.select(Contract.service_id).where(Contract.id == world.contract_a)
        )
        db.session.commit()
    admin = signed_in_client(app, world.emails["admin"])
    information = admin.get("/organisation").get_data(as_text=True)
    based_on = unescape(re.search(r'name="based_on" type="hidden" value="([^"]*)"', information)[1])
    changed = admin.post(
        "/organisation",
        data={
            "legal_name": "Alpha K.K.",
            "billing_email": "invoices@alpha.example",
            "phone": "03-1111-2222",
            "locale": "ja",
            "based_on": based_on,
        },
    )
    assert changed.status_code == 302
    staff_admin = signed_in_client(app, STAFF_ADMIN)
    published = staff_admin.post(
        "/staff/terms/new",
        data={
            "service_id": world.ids["image_works"],
            "title_ja": "利用規約（改訂）",
            "title_en": "Terms (revised)",
            "body_ja": "第1条 適用",
            "body_en": "Art. 1 Scope",
            "effective_on": "2027-04-01",
            "confirmed": "yes",
        },
    )
    assert published.status_code == 302
    invited = admin.post(
        "/organisation/users/invite",
        data={"name": "New", "email": "new@alpha.example", "role": "member", "locale": "ja"},
    )
    assert invited.status_code == 302
    assert admin.post("/account/api-tokens", data={"name": "ERP"}).status_code == 302
    assert app.test_client().post("/password-reset", data={"email": world.emails["member"]})
    member = signed_in_client(app, world.emails["member"])
    assert member.post("/account/misuse", data={"details": "odd"}).status_code == 302
    return world


CUSTOMER_PAGES = (
    "/organisation",
    "/organisation/history",
    "/notices",
    "/terms",
    "/organisation/users",
    "/organisation/users/invite",
    "/account/password",
    "/account/api-tokens",
    "/account/misuse",
)
STAFF_PAGES = (
    "/staff/organisations",
    "/staff/organisations/{org_a}",
    "/staff/organisations/new",
    "/staff/terms",
    "/staff/terms/new",
    "/staff/mail",
    "/staff/misuse-reports",
)


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_no_rule_ids_and_dates_as_people_write_them_on_every_page(app, world, locale):
    (notice, *_) = rows(app, OutboxEmail, kind="information_changed")
    version_id = db_version_id(app)
    pages = [
        (world.emails["admin"], path)
        for path in (*CUSTOMER_PAGES, f"/notices/{notice.id}", f"/terms/{version_id}")
    ]
    pages += [(STAFF_ADMIN, path.format(org_a=world.org_a)) for path in STAFF_PAGES]
    pages += [(world.emails["sales_agent"], "/partner/clients")]
    clients: dict[str, object] = {}
    for email, path in pages:
        client = clients.get(email) or clients.setdefault(email, signed_in_client(app, email))
        text = _in(app, client, path, locale)
        assert not RULE_ID.search(text), f"{path}: {RULE_ID.search(text)[0]}"
        assert not MACHINE_DATE.search(text), f"{path}: {MACHINE_DATE.search(text)[0]}"
        assert not MONTH_FIRST.search(text), path
    anonymous = app.test_client()
    for path in ("/login", "/password-reset"):
        assert not RULE_ID.search(_in(app, anonymous, path, locale)), path


def db_version_id(app) -> int:
    (version,) = rows(app, TermsVersion)
    return version.id


def test_no_rule_ids_and_natural_dates_in_the_e_mails(app, world):
    emails = [e for e in rows(app, OutboxEmail) if e.kind in MY_EMAILS]
    assert {e.kind for e in emails} == set(MY_EMAILS)
    assert {e.locale for e in emails} == {"ja", "en"}
    texts = [(e.kind, e.locale, f"{e.subject}\n{e.body}") for e in emails]
    with app.test_request_context():
        contract = db.session.get(Contract, world.contract_a)
        for locale in ("ja", "en"):
            subject, body = mail.render(
                "agency_contract_ended",
                locale,
                {
                    "organisation": contract.organisation,
                    "contract": contract,
                    "last_day": date(2027, 5, 20),
                    "contract_url": "http://127.0.0.1:5000/contracts/1",
                },
            )
            texts.append(("agency_contract_ended", locale, f"{subject}\n{body}"))
    for kind, locale, text in texts:
        assert not RULE_ID.search(text), (kind, locale, text)
        assert not MACHINE_DATE.search(text), (kind, locale, text)
    by_kind = {(kind, locale): text for kind, locale, text in texts}
    assert "2027年4月1日" in by_kind[("terms_published", "ja")]
    assert "2027年5月20日" in by_kind[("agency_contract_ended", "ja")]
    assert "May 20, 2027" in by_kind[("agency_contract_ended", "en")]
    assert "2027年3月1日 10:00" in by_kind[("misuse_reported", "ja")]  # the member's language


def test_one_word_for_each_thing_in_japanese(app, world):
    """Members are メンバー everywhere; the columns of who changed and who published say so
    (同意者 names who consented, in the consent history only)."""
    admin = signed_in_client(app, world.emails["admin"])
    users = _in(app, admin, "/organisation/users", "ja")
    assert "メンバー" in users and "一般ユーザー" not in users
    history = _in(app, admin, "/organisation/history", "ja")
    assert "変更者" in history and "同意者" not in history
    staff = signed_in_client(app, STAFF_ADMIN)
    organisation = _in(app, staff, f"/staff/organisations/{world.org_a}", "ja")
    assert "メンバー" in organisation and "一般ユーザー" not in organisation
    assert "同意者" not in _in(app, staff, "/staff/terms", "ja")
    # One name for the company's name and reading, on the staff's form as on the customer's.
    onboarding = _in(app, staff, "/staff/organisations/new", "ja", main=True)
    information = _in(app, admin, "/organisation", "ja", main=True)
    for label in ("会社名", "会社名（フリガナ）", "書類とメールの言語"):
        assert label in onboarding and label in information, label
    assert "正式名称" not in onboarding and "表示言語" not in onboarding


def test_the_invitation_names_the_company_not_a_customer_record(app, world):
    """The invitee reads "会社名: Alpha K.K.", not the back office's 顧客情報."""
    (invitation,) = rows(app, OutboxEmail, kind="invitation")
    assert invitation.locale == "ja"
    assert "会社名: Alpha K.K." in invitation.body and "顧客情報" not in invitation.body


EMAIL_TEMPLATES = sorted(
    (Path(__file__).parents[2] / "portal" / "templates" / "email").glob("*.txt")
)
JINJA_COMMENT = re.compile(r"\{#.*?#\}", re.S)


@pytest.mark.parametrize("template", EMAIL_TEMPLATES, ids=lambda p: p.stem)
def test_no_e_mail_template_writes_a_rule_id_or_a_machine_date(template):
    """Every e-mail, the ones to come included: rule IDs only in template comments, and
    dates through the filters that write them as people do (long_date, minute), never as
    ISO dates or strftime patterns."""
    source = JINJA_COMMENT.sub("", template.read_text(encoding="utf-8"))
    assert not RULE_ID.search(source), template.name
    assert not re.search(r"isoformat|strftime|%Y|%m/%d", source), template.name


def test_the_partner_and_sign_in_e_mails_speak_both_languages_without_rule_ids(app, world):
    """Issue 13/14's e-mails: a partner assigned or withdrawn (R-71), failed sign-ins."""
    from portal.models import PartnerCompany  # noqa: PLC0415

    instant = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)
    with app.test_request_context():
        organisation = db.session.get(Contract, world.contract_a).organisation
        partner = db.session.get(PartnerCompany, world.ids["agency_partner"])
        user = db.session.get(User, world.ids["admin"])
        contexts = {
            "partner_assigned": {
                "organisation": organisation,
                "partner": partner,
                "changed_at": instant,
            },
            "partner_withdrawn": {
                "organisation": organisation,
                "partner": partner,
                "changed_at": instant,
            },
            "sign_in_failures": {
                "user": user,
                "failures": 5,
                "minutes": 15,
                "last_at": instant,
                "addresses": ["192.0.2.1"],
                "more_addresses": 0,
                "password_url": "http://127.0.0.1:5000/password-reset",
            },
        }
        for kind, context in contexts.items():
            texts = {
                locale: "\n".join(mail.render(kind, locale, context)) for locale in ("ja", "en")
            }
            for locale, text in texts.items():
                assert not RULE_ID.search(text), (kind, locale)
                assert not MACHINE_DATE.search(text), (kind, locale)
            assert "2027年3月1日 10:00" in texts["ja"], kind
            assert "March 1, 2027 10:00" in texts["en"], kind
            assert texts["ja"] != texts["en"], kind
