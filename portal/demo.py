"""Demo data that shows the product: fictional companies, demo prices, contracts in every stage.

Dates are placed relative to the day the data is loaded, so that each stage (inside the
minimum term, renewed, inside the notice window, agency renewal due) is true on that day.
Loading twice changes nothing: everything is created in one transaction, only when absent.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.clock import TOKYO
from portal.domain import calendar
from portal.domain.inet import PHOTO_OUTPUT_SIZE, CardDesign, OrderState
from portal.domain.sla import IncidentKind
from portal.extensions import db
from portal.models import (
    CardHolder,
    CardOrder,
    CardOrderEvent,
    CardOrderItem,
    ConsentKind,
    Contract,
    ContractEvent,
    CustomerRole,
    Incident,
    IncidentUpdate,
    IncidentVersion,
    InetRegistration,
    Maintenance,
    Organisation,
    PartnerApplication,
    PartnerAssignment,
    PartnerCompany,
    PartnerKind,
    PartnerRole,
    Plan,
    PriceList,
    Provider,
    RegistrationChannel,
    SalesChannel,
    Service,
    StaffRole,
    TermsConsent,
    TermsVersion,
    UpdateStatus,
    UsageReading,
    UsageSource,
    User,
    UserKind,
    VersionChange,
)
from portal.services.auth import hash_password
from portal.services.organisations import open_contract
from portal.services.photo_storage import DatabasePhotoStorage, Photo

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
    DemoLogin(
        "admin@tokai-sales.example",
        "sales agent, partner administrator: manages its agents (東海システム販売株式会社)",
    ),
    DemoLogin("support@imageworks-provider.example", "provider support staff"),
    DemoLogin("billing@imageworks-provider.example", "provider billing staff"),
    DemoLogin(
        "admin@imageworks-provider.example", "provider staff administrator (publishes terms)"
    ),
    DemoLogin(
        "admin@hikari-kogyo.example", "customer administrator, ID cards only (ひかり工業株式会社)"
    ),
    DemoLogin("production@imageworks-provider.example", "provider production staff (ID cards)"),
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
            contact_email="billing@imageworks-provider.example",
            bank_name="デモ銀行",
            bank_branch="本店営業部",
            bank_account_type="ordinary",
            bank_account_number="1234567",
            bank_account_holder_kana="カ）イメージワークスデモ",
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
    administrators = {
        sakura: user("admin@sakura-photo.example", "佐藤 花子", organisation=sakura, **admin)
    }
    user(
        "member@sakura-photo.example",
        "鈴木 一郎",
        organisation=sakura,
        customer_role=CustomerRole.MEMBER,
        **customer,
    )
    administrators[aoba] = user(
        "admin@aoba-design.example", "Aoi Takahashi", organisation=aoba, locale="en", **admin
    )
    administrators[hokuto] = user(
        "admin@hokuto-print.example", "田中 誠", organisation=hokuto, **admin
    )
    administrators[minato] = user(
        "admin@minato-logi.example", "伊藤 美咲", organisation=minato, **admin
    )
    tokai_agent = user("agent@tokai-sales.example", "渡辺 健", kind=UserKind.AGENT, partner=tokai)
    user(
        "admin@tokai-sales.example",
        "加藤 大輔",
        kind=UserKind.AGENT,
        partner=tokai,
        partner_role=PartnerRole.ADMINISTRATOR,
    )
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
    staff_administrator = user(
        "admin@imageworks-provider.example",
        "高橋 管理者",
        kind=UserKind.STAFF,
        staff_role=StaffRole.ADMINISTRATOR,
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

    # the terms each organisation accepted on its application, and a new version of
    # IMAGE WORKS's terms announced for next month, so that the portal shows its banner.
    image_works_terms = _load_terms(today, image_works, inet, staff_administrator)
    for contract_ in (sakura_contract, aoba_contract, hokuto_contract, minato_contract):
        applied = datetime.combine(contract_.service_start - timedelta(days=14), time(10), TOKYO)
        db.session.add(
            TermsConsent(
                organisation_id=contract_.organisation_id,
                terms_version=image_works_terms,
                kind=ConsentKind.APPLICATION,
                user=administrators[contract_.organisation],
                consented_at=applied,
            )
        )

    # Issue 14: the sales agent applied for a new client two days ago; staff have yet to decide.
    db.session.add(
        PartnerApplication(
            partner=tokai,
            submitted_by=tokai_agent,
            submitted_at=datetime.combine(today - timedelta(days=2), time(15, 20), TOKYO),
            legal_name="株式会社しろくま食品",
            legal_name_kana="シロクマショクヒン",
            postal_code="460-0008",
            address="愛知県名古屋市中区栄3-1-1",
            phone="052-000-0000",
            billing_email="keiri@shirokuma-foods.example",
            contract_contact_name="木村 翔",
            contract_contact_email="kimura@shirokuma-foods.example",
            locale="ja",
            admin_name="木村 翔",
            admin_email="admin@shirokuma-foods.example",
            plan=plans["iw-50"],
            service_start=calendar.billing_month_of(today, ANCHOR).end + timedelta(days=1),
            anchor_day=ANCHOR,
        )
    )

    _load_sla(today, image_works, staff_administrator)
    _load_inet(today, inet, sakura, administrators[sakura], password)

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


def _load_inet(
    today: date, inet: Service, sakura: Organisation, sakura_admin: User, password: str
) -> None:
    """I-NET SERVICE (R-80..R-85): ひかり工業 uses only I-NET SERVICE (its navigation shows ID
    cards and no contracts), with ten card holders (placeholder photos drawn here, one holder
    still without a photo) and an order in every state; さくら写真館 has IMAGE WORKS and an
    I-NET registration; production staff work the order queue."""
    db.session.flush()
    inet_terms = db.session.scalar(
        sa.select(TermsVersion).where(TermsVersion.service_id == inet.id).limit(1)
    )
    hikari = Organisation(
        legal_name="ひかり工業株式会社",
        legal_name_kana="ヒカリコウギョウ",
        postal_code="000-0000",
        address="埼玉県さいたま市（デモ住所）",
        phone="048-000-0000",
        billing_email="office@hikari-kogyo.example",
        operations_contact_name="総務 担当",
        operations_contact_email="soumu@hikari-kogyo.example",
    )
    db.session.add(hikari)
    hikari_admin = User(
        email="admin@hikari-kogyo.example",
        name="森 由紀",
        password_hash=password,
        kind=UserKind.CUSTOMER,
        organisation=hikari,
        customer_role=CustomerRole.ADMINISTRATOR,
    )
    production = User(
        email="production@imageworks-provider.example",
        name="木村 製作",
        password_hash=password,
        kind=UserKind.STAFF,
        staff_role=StaffRole.PRODUCTION,
    )
    db.session.add_all([hikari_admin, production])
    db.session.flush()

    registered = datetime.combine(today - timedelta(days=200), time(10), TOKYO)
    registrations = {}
    for org, admin, channel in (
        (hikari, hikari_admin, RegistrationChannel.PUBLIC),
        (sakura, sakura_admin, RegistrationChannel.CUSTOMER),
    ):
        registrations[org.id] = InetRegistration(
            organisation=org,
            channel=channel,
            application_contact_name=admin.name,
            application_contact_email=admin.email,
            operations_manager_name="総務 担当",
            operations_manager_email=org.operations_contact_email or org.billing_email,
            terms_version=inet_terms,
            registered_at=registered,
            registered_by=admin,
        )
        db.session.add(
            TermsConsent(
                organisation_id=org.id,
                terms_version=inet_terms,
                kind=ConsentKind.APPLICATION,
                user=admin,
                consented_at=registered,
            )
        )
    db.session.add_all(registrations.values())
    db.session.flush()

    storage = DatabasePhotoStorage()
    holders = []
    for index, (name, kana, department, title) in enumerate(DEMO_CARD_HOLDERS):
        holder = CardHolder(
            organisation=hikari,
            name=name,
            name_kana=kana,
            employee_number=f"H{1001 + index}",
            department=department,
            title=title,
            created_by_id=hikari_admin.id,
            created_at=registered + timedelta(days=1),
        )
        db.session.add(holder)
        db.session.flush()
        if index < len(DEMO_CARD_HOLDERS) - 1:  # the newest joiner has no photo yet
            holder.photo_key = storage.put(
                hikari.id, Photo(placeholder_photo(index), *PHOTO_OUTPUT_SIZE)
            )
        holders.append(holder)

    # One order per state, oldest first; each step a day after the one before.
    steps = (
        (OrderState.SUBMITTED, "submit", "submitted_at"),
        (OrderState.CONFIRMED, "confirm", "confirmed_at"),
        (OrderState.ACCEPTED, "accept", "accepted_at"),
        (OrderState.IN_PRODUCTION, "start_production", "production_started_at"),
        (OrderState.SHIPPED, "ship", "shipped_at"),
        (OrderState.DELIVERED, "deliver", "delivered_at"),
    )
    endings = {
        OrderState.WITHDRAWN: (OrderState.SUBMITTED, "withdraw", "withdrawn_at"),
        OrderState.CANCELLED: (OrderState.CONFIRMED, "cancel", "cancelled_at"),
    }
    states = (
        OrderState.DELIVERED,
        OrderState.CANCELLED,
        OrderState.WITHDRAWN,
        OrderState.SHIPPED,
        OrderState.IN_PRODUCTION,
        OrderState.ACCEPTED,
        OrderState.CONFIRMED,
        OrderState.SUBMITTED,
        OrderState.DRAFT,
    )
    for number, state in enumerate(states):
        created = datetime.combine(today - timedelta(days=60 - 6 * number), time(9), TOKYO)
        order = CardOrder(
            organisation_id=hikari.id,
            registration=registrations[hikari.id],
            state=state,
            design=(CardDesign.STANDARD, CardDesign.NAVY)[number % 2],
            delivery_name="ひかり工業株式会社 総務部 森",
            delivery_postal_code="330-0000",
            delivery_address="埼玉県さいたま市浦和区（デモ住所）",
            delivery_phone="048-000-0000",
            placed_by=hikari_admin,
            created_at=created,
        )
        for holder in holders[number % 3 : number % 3 + 3]:
            if holder.photo_key is None:
                continue
            order.items.append(
                CardOrderItem(
                    holder=holder,
                    quantity=1 + (number == 0),
                    name=holder.name,
                    name_kana=holder.name_kana,
                    employee_number=holder.employee_number,
                    department=holder.department,
                    title=holder.title,
                )
            )
        db.session.add(order)
        path: tuple[tuple[OrderState, str, str], ...] = ()
        if state in endings:
            last, action, stamp = endings[state]
            path = steps[: [s[0] for s in steps].index(last) + 1] + ((state, action, stamp),)
        elif state != OrderState.DRAFT:
            path = steps[: [s[0] for s in steps].index(state) + 1]
        previous = OrderState.DRAFT
        for day, (target, action, stamp) in enumerate(path, start=1):
            at = created + timedelta(days=day)
            setattr(order, stamp, at)
            by = production if action in PRODUCTION_ACTIONS else hikari_admin
            order.events.append(
                CardOrderEvent(
                    action=action, from_state=previous, to_state=target, at=at, user_id=by.id
                )
            )
            previous = target
        if state in (OrderState.SHIPPED, OrderState.DELIVERED):
            order.carrier, order.tracking_number = "ヤマト運輸", f"4455-6677-{8800 + number}"


PRODUCTION_ACTIONS = frozenset({"confirm", "accept", "start_production", "ship", "deliver"})

DEMO_CARD_HOLDERS = (
    ("森 由紀", "モリ ユキ", "総務部", "部長"),
    ("石井 大輔", "イシイ ダイスケ", "製造部", "課長"),
    ("松本 彩", "マツモト アヤ", "製造部", ""),
    ("井上 翔太", "イノウエ ショウタ", "品質管理部", "主任"),
    ("木下 恵", "キノシタ メグミ", "営業部", ""),
    ("林 健一", "ハヤシ ケンイチ", "営業部", "係長"),
    ("清水 舞", "シミズ マイ", "経理部", ""),
    ("山口 拓也", "ヤマグチ タクヤ", "製造部", ""),
    ("岡田 里奈", "オカダ リナ", "総務部", ""),
    ("前田 陸", "マエダ リク", "製造部", ""),
)


@functools.lru_cache(maxsize=16)
def placeholder_photo(index: int) -> bytes:
    """A portrait placeholder drawn here (no downloaded images): a silhouette on a soft
    background, a different colour per index; 600 x 800 like every stored photo."""
    import io

    from PIL import Image, ImageDraw

    width, height = PHOTO_OUTPUT_SIZE
    palette = ((72, 110, 160), (150, 96, 82), (84, 130, 96), (120, 94, 150), (160, 130, 70))
    colour = palette[index % len(palette)]
    background = tuple(235 - (index * 7) % 20 for _ in range(3))
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.3, height * 0.16, width * 0.7, height * 0.52), fill=colour)
    draw.rounded_rectangle(
        (width * 0.14, height * 0.58, width * 0.86, height * 1.1), radius=120, fill=colour
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _load_sla(today: date, image_works: Service, publisher: User) -> None:
    """R-50..R-52: a past outage still claimable, shaped like W-4 (30 hours, recovery announced
    90 minutes late), with its public timeline; and extra maintenance announced for next week,
    beside the regular windows of the rule."""
    # A Wednesday two to three weeks back: its 30 hours stay clear of the Monday windows.
    start_day = today - timedelta(days=14)
    while start_day.weekday() != 2:
        start_day -= timedelta(days=1)
    started = datetime.combine(start_day, time(9, 0), TOKYO)
    ended = started + timedelta(hours=30)
    incident = Incident(created_by_id=publisher.id, created_at=started + timedelta(minutes=15))
    db.session.add(incident)
    db.session.flush()
    facts = {
        "incident_id": incident.id,
        "kind": IncidentKind.OUTAGE,
        "title_ja": "ストレージ障害によるサービス停止（デモ）",
        "title_en": "Service outage after a storage failure (demo)",
        "service_ids": [image_works.id],
        "plan_ids": [],
        "organisation_ids": [],
        "started_at": started,
        "occurrence_announced_at": started + timedelta(minutes=20),
        "created_by_id": publisher.id,
    }
    db.session.add_all(
        [
            IncidentVersion(
                **facts,
                version=1,
                ended_at=None,
                recovery_announced_at=None,
                change=VersionChange.RECORDED,
                created_at=started + timedelta(minutes=15),
            ),
            IncidentVersion(
                **facts,
                version=2,
                ended_at=ended,
                recovery_announced_at=ended + timedelta(minutes=90),
                change=VersionChange.RESOLVED,
                created_at=ended + timedelta(minutes=90),
            ),
        ]
    )
    incident.current_version = 2
    for offset, status, message_ja, message_en in (
        (
            timedelta(minutes=20),
            UpdateStatus.INVESTIGATING,
            "IMAGE WORKS にアクセスできない状態が発生しています。原因を調査しています。",
            "IMAGE WORKS cannot be reached. We are investigating the cause.",
        ),
        (
            timedelta(hours=4),
            UpdateStatus.IDENTIFIED,
            "ストレージ装置の故障が原因と判明しました。交換作業を行っています。",
            "A failed storage unit is the cause. We are replacing it.",
        ),
        (
            timedelta(hours=31, minutes=30),
            UpdateStatus.RESOLVED,
            "ストレージ装置を交換し、サービスは復旧しました。ご迷惑をおかけしました。",
            "The storage unit was replaced and the service is back. We apologise.",
        ),
    ):
        db.session.add(
            IncidentUpdate(
                incident_id=incident.id,
                status=status,
                message_ja=message_ja,
                message_en=message_en,
                posted_at=started + offset,
                posted_by_id=publisher.id,
            )
        )
    maintenance_day = today + timedelta(days=9)
    db.session.add(
        Maintenance(
            service_ids=[image_works.id],
            title_ja="ストレージ増設のための臨時メンテナンス（デモ）",
            title_en="Extra maintenance to add storage (demo)",
            announced_at=datetime.combine(today - timedelta(days=1), time(10), TOKYO),
            planned_start=datetime.combine(maintenance_day, time(1, 0), TOKYO),
            planned_end=datetime.combine(maintenance_day, time(5, 0), TOKYO),
            created_by_id=publisher.id,
        )
    )


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


# --- terms of service: short summaries of the real terms, marked as demo text ----------

_IW_NOTE_JA = "（デモ用の要約です。実際の利用規約ではありません。）"
_IW_NOTE_EN = "(A summary for the demo, not the actual terms of service.)"

IMAGE_WORKS_TERMS_JA = f"""IMAGE WORKS 利用規約
{_IW_NOTE_JA}

第1条（適用）本規約は、本規約を承認の上で利用申込書を提出し、弊社が承諾したお客様に適用されます。
第3条（月度）本サービスの月度は21日に始まり、翌月20日までを1か月とします。
第4条（利用期間）利用開始日の後に最初に来る21日から最低利用月数を経過するまで利用できます。期間満了の30日前までに申入れがない場合、同一条件で1年間延長されます。
第5条（アカウント情報）お客様はログインIDとパスワードを管理し、第三者による不正使用が判明した場合は直ちに弊社に通知します。
第6条（料金）初期費用はご利用容量の月額利用料1か月分相当とし、月額利用料は価格表のとおりとします。
第8条（申込内容の変更）変更は10日前までの書面による申入れにより行えます。変更には規定の変更手数料がかかります。
第15条（通知）弊社からの通知は、お客様が届け出た電子メールアドレス宛てに発信した時に到達したものとみなします。
第16条（お客様からの解除）お客様は30日前までに書面で通知することにより、本サービスの利用を終了できます。
第19条（本規約の改訂）弊社は本規約を改訂できるものとし、改訂する場合は事前にお客様に改訂内容を通知します。
第21条（お客様情報の変更）お客様の情報に変更が生じた場合、すみやかに弊社に届け出るものとします。
第27条（付則）販売代理店および取次店は弊社の代理人ではありません。"""  # noqa: E501

IMAGE_WORKS_TERMS_EN = f"""IMAGE WORKS Terms of Service
{_IW_NOTE_EN}

Art. 1 (Scope) These terms apply to customers who accepted them, submitted the application form and were accepted by us.
Art. 3 (Billing month) A month of the service starts on the 21st and runs to the 20th of the next month.
Art. 4 (Term) The service may be used from the first 21st after the start date until the minimum number of months has passed. Unless either party gives notice 30 days before the term ends, it is extended for one year on the same conditions.
Art. 5 (Account information) The customer keeps its login IDs and passwords safe and tells us at once when it finds they were misused.
Art. 6 (Fees) The initial fee equals one monthly fee of the plan; monthly fees are as in the price list.
Art. 8 (Changes to the application) Changes are made by written notice 10 days in advance, for the stated change fee.
Art. 15 (Notices) Our notices count as delivered when sent to the e-mail address the customer registered.
Art. 16 (Cancellation by the customer) The customer may end the service by written notice 30 days in advance.
Art. 19 (Changes to these terms) We may revise these terms and notify the customer of the revision in advance.
Art. 21 (Changes to customer information) The customer reports changes to its information to us without delay.
Art. 27 (Supplementary) Sales agents and agencies are not our representatives."""  # noqa: E501

# Version 2: revisions announced 30 days ahead by e-mail and in the portal; deemed consent.
IMAGE_WORKS_TERMS_2_JA = f"""IMAGE WORKS 利用規約
{_IW_NOTE_JA}

第1条（適用）本規約は、本規約を承認の上で利用申込書を提出し、弊社が承諾したお客様に適用されます。
第3条（月度）本サービスの月度は21日に始まり、翌月20日までを1か月とします。
第4条（利用期間）利用開始日の後に最初に来る21日から最低利用月数を経過するまで利用できます。期間満了の30日前までに申入れがない場合、同一条件で1年間延長されます。
第5条（アカウント情報）お客様はログインIDとパスワードを管理し、第三者による不正使用が判明した場合は直ちに弊社に通知します。
第6条（料金）初期費用はご利用容量の月額利用料1か月分相当とし、月額利用料は価格表のとおりとします。
第8条（申込内容の変更）変更は10日前までの書面による申入れにより行えます。変更には規定の変更手数料がかかります。
第15条（通知）弊社からの通知は、お客様が届け出た電子メールアドレス宛てに発信した時に到達したものとみなします。通知はポータルにも掲載します。
第16条（お客様からの解除）お客様は30日前までに書面で通知することにより、本サービスの利用を終了できます。
第19条（本規約の改訂）弊社は本規約を改訂できるものとし、改訂する場合は効力発生日の30日前までに、改訂内容と効力発生日をお客様の契約担当者および運用担当者に電子メールとポータルで通知します。
第19条の2（みなし同意）効力発生日以降にお客様が本サービスを利用したときは、改訂後の規約に同意したものとみなします。
第21条（お客様情報の変更）お客様の情報に変更が生じた場合、すみやかに弊社に届け出るものとします。
第27条（付則）販売代理店および取次店は弊社の代理人ではありません。"""  # noqa: E501

IMAGE_WORKS_TERMS_2_EN = f"""IMAGE WORKS Terms of Service
{_IW_NOTE_EN}

Art. 1 (Scope) These terms apply to customers who accepted them, submitted the application form and were accepted by us.
Art. 3 (Billing month) A month of the service starts on the 21st and runs to the 20th of the next month.
Art. 4 (Term) The service may be used from the first 21st after the start date until the minimum number of months has passed. Unless either party gives notice 30 days before the term ends, it is extended for one year on the same conditions.
Art. 5 (Account information) The customer keeps its login IDs and passwords safe and tells us at once when it finds they were misused.
Art. 6 (Fees) The initial fee equals one monthly fee of the plan; monthly fees are as in the price list.
Art. 8 (Changes to the application) Changes are made by written notice 10 days in advance, for the stated change fee.
Art. 15 (Notices) Our notices count as delivered when sent to the e-mail address the customer registered. We also show them in the portal.
Art. 16 (Cancellation by the customer) The customer may end the service by written notice 30 days in advance.
Art. 19 (Changes to these terms) We may revise these terms. We tell the customer's contract and operations contacts of the revision and its effective date by e-mail and in the portal at least 30 days before it takes effect.
Art. 19-2 (Deemed consent) Using the service on or after the effective date counts as consent to the revised terms.
Art. 21 (Changes to customer information) The customer reports changes to its information to us without delay.
Art. 27 (Supplementary) Sales agents and agencies are not our representatives."""  # noqa: E501

INET_TERMS_JA = """I-NET SERVICE 利用規約
（デモ用の要約です。実際の利用規約ではありません。）

1. 適用：本規約は I-NET SERVICE を利用するお客様に適用されます。本サービスを利用された場合、本規約に同意したものとみなします。
2. 提供されるサービス：IDカードおよびIDカード関連製品を発注するための発注システムを提供します。撮影・アップロードされた顔写真は利用期間終了後1か月間保管されます。
3. 費用：本サービスの利用に費用はかかりません。インターネット接続の通信費はお客様の負担とします。
5. ID・パスワードの管理：お客様は登録したIDおよびパスワードを第三者に使用させず、厳重に管理するものとします。
13. 通知：弊社からの通知は、WEBサイトへの掲載または登録された電子メールアドレス宛ての発信をもって到達したものとみなします。
16. 本利用規約の変更：弊社は効力発生時期を定め、変更の内容と効力発生時期を事前にお申込みご担当者様または運用管理者様へ通知して本規約を変更できます。効力発生日以降に本サービスを利用したときは、変更に同意したものとみなします。"""  # noqa: E501

INET_TERMS_EN = """I-NET SERVICE Terms of Service
(A summary for the demo, not the actual terms of service.)

1. Scope: These terms apply to customers who use I-NET SERVICE. Using the service counts as consent to these terms.
2. The service: An ordering system for ID cards and related products. Photos taken and uploaded are kept for one month after the service ends.
3. Fees: The service is free of charge. The customer pays its own internet connection.
5. IDs and passwords: The customer lets no third party use its IDs and passwords and keeps them safe.
13. Notices: Our notices count as delivered when shown on the website or sent to the registered e-mail address.
16. Changes to these terms: We may change these terms by telling the applicant's contact or the operations manager in advance what changes and when it takes effect. Using the service on or after that date counts as consent to the change."""  # noqa: E501


def _load_terms(today: date, image_works: Service, inet: Service, publisher: User) -> TermsVersion:
    """Version 1 of each service's terms, in force well before every demo contract, and
    IMAGE WORKS's version 2, announced two days ago to take effect in about a month."""

    def at(day: date) -> datetime:
        return datetime.combine(day, time(10), TOKYO)

    first_day = date(today.year - 2, 4, 1)
    image_works_1 = TermsVersion(
        service=image_works,
        version=1,
        title_ja="IMAGE WORKS 利用規約",
        title_en="IMAGE WORKS Terms of Service",
        body_ja=IMAGE_WORKS_TERMS_JA,
        body_en=IMAGE_WORKS_TERMS_EN,
        effective_on=first_day,
        published_at=at(first_day - timedelta(days=30)),
        published_by=publisher,
    )
    inet_1 = TermsVersion(
        service=inet,
        version=1,
        title_ja="I-NET SERVICE 利用規約",
        title_en="I-NET SERVICE Terms of Service",
        body_ja=INET_TERMS_JA,
        body_en=INET_TERMS_EN,
        effective_on=first_day,
        published_at=at(first_day - timedelta(days=30)),
        published_by=publisher,
    )
    image_works_2 = TermsVersion(
        service=image_works,
        version=2,
        title_ja="IMAGE WORKS 利用規約（改訂：規約改訂の通知とみなし同意）",
        title_en="IMAGE WORKS Terms of Service (revised: notice of revisions, deemed consent)",
        body_ja=IMAGE_WORKS_TERMS_2_JA,
        body_en=IMAGE_WORKS_TERMS_2_EN,
        effective_on=today + timedelta(days=30),
        published_at=at(today - timedelta(days=2)),
        published_by=publisher,
    )
    db.session.add_all([image_works_1, inet_1, image_works_2])
    return image_works_1
