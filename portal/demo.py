"""Demo data that shows the product: fictional companies, demo prices, contracts in every stage.

Dates are placed relative to the day the data is loaded, so that each stage (inside the
minimum term, renewed, inside the notice window, agency renewal due) is true on that day.
Loading twice changes nothing: everything is created in one transaction, only when absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.clock import TOKYO
from portal.domain import calendar
from portal.extensions import db
from portal.models import (
    Contract,
    ContractEvent,
    CustomerRole,
    Organisation,
    PartnerAssignment,
    PartnerCompany,
    PartnerKind,
    Plan,
    PriceList,
    Provider,
    SalesChannel,
    Service,
    StaffRole,
    UsageReading,
    UsageSource,
    User,
    UserKind,
)
from portal.services.auth import hash_password
from portal.services.organisations import open_contract

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed for the demo on purpose
ANCHOR = calendar.DEFAULT_ANCHOR_DAY


@dataclass(frozen=True)
class DemoLogin:
    email: str
    role: str


DEMO_LOGINS = (
    DemoLogin("admin@sakura-photo.example", "customer administrator (株式会社さくら写真館)"),
    DemoLogin("member@sakura-photo.example", "customer member (株式会社さくら写真館)"),
    DemoLogin("admin@aoba-design.example", "customer administrator (青葉デザイン株式会社)"),
    DemoLogin("admin@hokuto-print.example", "customer administrator (北斗印刷株式会社)"),
    DemoLogin("admin@minato-logi.example", "customer administrator (みなと物流株式会社)"),
    DemoLogin("agent@tokai-sales.example", "sales agent (東海システム販売株式会社)"),
    DemoLogin("agent@ekimae-it.example", "agency agent (駅前ITサービス合同会社)"),
    DemoLogin("support@imageworks-provider.example", "provider support staff"),
    DemoLogin("billing@imageworks-provider.example", "provider billing staff"),
)


def _anchor_for_term_ending_near(target: date, months: int) -> date:
    """The term anchor whose term of `months` billing months ends in target's billing month."""
    term_end = calendar.billing_month_of(target, ANCHOR).end
    return calendar.add_billing_months(term_end + timedelta(days=1), -months)


def load(today: date) -> bool:
    """Load the demo data; False when it was already there."""
    if db.session.scalar(sa.select(Provider.id)) is not None:
        return False
    password = hash_password(DEMO_PASSWORD)
    db.session.add(
        Provider(
            name_ja="株式会社イメージワークス・デモ",
            name_en="Image Works Demo K.K.",
            registration_number="T1234567890123",
            address="〒100-0005 東京都千代田区丸の内1-1-1（デモ）",
            phone="03-0000-0000",
        )
    )
    image_works = Service(
        code="image_works", name_ja="IMAGE WORKS", name_en="IMAGE WORKS", paid=True
    )
    inet = Service(code="inet", name_ja="I-NET SERVICE", name_en="I-NET SERVICE", paid=False)
    db.session.add_all([image_works, inet])
    prices = PriceList(
        service=image_works,
        version=1,
        effective_from=date(2026, 4, 1),
        change_fee=5_000,
        is_demo=True,
        note="デモ価格（実際の料金ではありません） / Demo prices, not the real price list",
    )
    plans = {
        code: Plan(
            price_list=prices,
            code=code,
            name_ja=name,
            name_en=name,
            capacity_gb=gb,
            monthly_fee=fee,
            minimum_months=months,
        )
        for code, name, gb, fee, months in (
            ("iw-50", "Standard 50 GB", 50, 30_000, 12),
            ("iw-100", "Standard 100 GB", 100, 50_000, 12),
            ("iw-300", "Business 300 GB", 300, 100_000, 12),
            ("iw-1000", "Enterprise 1 TB", 1000, 200_000, 24),
        )
    }
    db.session.add(prices)

    tokai = PartnerCompany(name="東海システム販売株式会社", kind=PartnerKind.SALES_AGENT)
    ekimae = PartnerCompany(name="駅前ITサービス合同会社", kind=PartnerKind.AGENCY)
    db.session.add_all([tokai, ekimae])

    def organisation(name: str, kana: str, domain: str, city: str, partner=None) -> Organisation:
        org = Organisation(
            legal_name=name,
            legal_name_kana=kana,
            postal_code="000-0000",
            address=f"{city}（デモ住所）",
            phone="03-0000-0000",
            billing_email=f"billing@{domain}",
            contract_contact_name="契約 担当",
            contract_contact_email=f"contract@{domain}",
            operations_contact_name="運用 担当",
            operations_contact_email=f"ops@{domain}",
            sales_channel=SalesChannel.DIRECT if partner is None else SalesChannel(partner.kind),
        )
        db.session.add(org)
        if partner is not None:
            db.session.add(PartnerAssignment(partner=partner, organisation=org))
        return org

    def user(email: str, name: str, **kind) -> User:
        created = User(email=email, name=name, password_hash=password, **kind)
        db.session.add(created)
        return created

    sakura = organisation(
        "株式会社さくら写真館", "サクラシャシンカン", "sakura-photo.example", "東京都世田谷区"
    )
    aoba = organisation(
        "青葉デザイン株式会社", "アオバデザイン", "aoba-design.example", "宮城県仙台市"
    )
    hokuto = organisation(
        "北斗印刷株式会社", "ホクトインサツ", "hokuto-print.example", "愛知県名古屋市", tokai
    )
    minato = organisation(
        "みなと物流株式会社", "ミナトブツリュウ", "minato-logi.example", "静岡県静岡市", ekimae
    )

    customer = {"kind": UserKind.CUSTOMER}
    admin = {**customer, "customer_role": CustomerRole.ADMINISTRATOR}
    user("admin@sakura-photo.example", "佐藤 花子", organisation=sakura, **admin)
    user(
        "member@sakura-photo.example",
        "鈴木 一郎",
        organisation=sakura,
        customer_role=CustomerRole.MEMBER,
        **customer,
    )
    user("admin@aoba-design.example", "Aoi Takahashi", organisation=aoba, locale="en", **admin)
    user("admin@hokuto-print.example", "田中 誠", organisation=hokuto, **admin)
    user("admin@minato-logi.example", "伊藤 美咲", organisation=minato, **admin)
    user("agent@tokai-sales.example", "渡辺 健", kind=UserKind.AGENT, partner=tokai)
    user("agent@ekimae-it.example", "山本 由美", kind=UserKind.AGENT, partner=ekimae)
    user(
        "support@imageworks-provider.example",
        "中村 サポート",
        kind=UserKind.STAFF,
        staff_role=StaffRole.SUPPORT,
    )
    user(
        "billing@imageworks-provider.example",
        "小林 経理",
        kind=UserKind.STAFF,
        staff_role=StaffRole.BILLING,
    )
    db.session.flush()

    def contract(org, plan_code, start, partner=None) -> Contract:
        created = open_contract(
            org, plans[plan_code], service_start=start, anchor_day=ANCHOR, partner=partner
        )
        db.session.flush()
        db.session.add(
            ContractEvent(
                contract=created,
                kind="created",
                effective_on=start,
                details={"plan": plan_code, "monthly_fee": plans[plan_code].monthly_fee},
            )
        )
        return created

    # Inside the minimum term: started about four months ago (the W-1 shape: lead-in days).
    sakura_start = today - timedelta(days=125)
    if calendar.is_anchor_day(sakura_start, ANCHOR):
        sakura_start -= timedelta(days=1)  # a start on the anchor day has no lead-in
    sakura_contract = contract(sakura, "iw-100", sakura_start)
    # Renewed: the 12-month minimum term ended about four months ago.
    renewed_anchor = calendar.add_billing_months(
        calendar.billing_month_of(today, ANCHOR).start, -16
    )
    aoba_contract = contract(aoba, "iw-300", renewed_anchor)
    # Inside the notice window: the last day for notice against renewal (E - 30 days, R-05)
    # is within the next 30 days, so E lies in the billing month that contains today + 30.
    notice_anchor = _anchor_for_term_ending_near(today + timedelta(days=30), 12)
    hokuto_contract = contract(hokuto, "iw-50", notice_anchor - timedelta(days=7), partner=tokai)
    # Agency contract near its renewal: its 6-month period ends with the current billing
    # month, within the next 30 days, so the renewal application is due.
    agency_anchor = _anchor_for_term_ending_near(today, 6)
    minato_contract = contract(minato, "iw-100", agency_anchor - timedelta(days=3), partner=ekimae)

    # usage as the service reported it just after midnight: one nearly full, one over its
    # capacity (the portal suggests the plan that fits), one that a cheaper plan would hold.
    measured_at = datetime.combine(today, time(0, 30), tzinfo=TOKYO)
    for measured, used in (
        (sakura_contract, "82.40"),
        (aoba_contract, "318.75"),
        (hokuto_contract, "21.00"),
        (minato_contract, "44.10"),
    ):
        db.session.add(
            UsageReading(
                contract=measured,
                used_gb=Decimal(used),
                measured_at=measured_at,
                source=UsageSource.API,
            )
        )
    return True


def issue_past_invoices(today: date) -> int:
    """Issue the invoices the demo contracts would have had up to today (R-41), so customers
    find a history of invoices; the monthly run goes on from there."""
    from portal.services.invoicing import issue_invoices

    starts = list(db.session.scalars(sa.select(Contract.service_start)))
    if not starts:
        return 0
    days = set(starts)
    month = calendar.billing_month_of(min(starts), ANCHOR)
    while month.start <= today:
        days.add(month.start)
        month = calendar.billing_month_of(month.end + timedelta(days=1), ANCHOR)
    return sum(issue_invoices(day).issued for day in sorted(d for d in days if d <= today))
