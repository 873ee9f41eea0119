"""Builders for test data: a small world with every kind of actor the permission rules know."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import (
    CustomerRole,
    Organisation,
    PartnerAssignment,
    PartnerCompany,
    PartnerKind,
    PartnerRole,
    Plan,
    PriceList,
    Provider,
    Service,
    StaffRole,
    User,
    UserKind,
)
from portal.services.auth import hash_password, start_session
from portal.services.organisations import open_contract

PASSWORD = "correct horse battery staple"
_HASH: dict[str, str] = {}


def password_hash() -> str:
    # Hashing once keeps the suite fast; argon2 is deliberately slow.
    if "h" not in _HASH:
        _HASH["h"] = hash_password(PASSWORD)
    return _HASH["h"]


def add_catalog() -> dict[str, Plan]:
    db.session.add(
        Provider(
            name_ja="テスト提供者",
            name_en="Test Provider",
            registration_number="T1234567890123",
            address="東京都千代田区丸の内1-1-1",
            phone="03-1234-5678",
            bank_name="テスト銀行",
            bank_branch="本店",
            bank_account_type="ordinary",
            bank_account_number="7654321",
            bank_account_holder_kana="テストテイキヨウシヤ",
        )
    )
    service = Service(code="image_works", name_ja="IMAGE WORKS", name_en="IMAGE WORKS")
    db.session.add(
        Service(code="inet", name_ja="I-NET SERVICE", name_en="I-NET SERVICE", paid=False)
    )
    prices = PriceList(
        service=service, version=1, effective_from=date(2026, 1, 1), change_fee=5_000
    )
    plans = {
        "small": Plan(
            price_list=prices,
            code="iw-50",
            name_ja="50GB",
            name_en="50 GB",
            capacity_gb=50,
            monthly_fee=50_000,
            minimum_months=12,
        ),
        "large": Plan(
            price_list=prices,
            code="iw-100",
            name_ja="100GB",
            name_en="100 GB",
            capacity_gb=100,
            monthly_fee=100_000,
            minimum_months=12,
        ),
    }
    db.session.add_all([service, prices, *plans.values()])
    return plans


def add_plan(
    app: Flask,
    world: World,
    *,
    code: str,
    fee: int,
    capacity: int,
    months: int = 12,
    sold: bool = True,
) -> int:
    """Another IMAGE WORKS plan in the world's price list; its id is kept as world.ids[code]."""
    with app.app_context():
        small = db.session.get(Plan, world.ids["plan_small"])
        plan = Plan(
            price_list_id=small.price_list_id,
            code=code,
            name_ja=f"{capacity}GB",
            name_en=f"{capacity} GB",
            capacity_gb=capacity,
            monthly_fee=fee,
            minimum_months=months,
            sold=sold,
        )
        db.session.add(plan)
        db.session.commit()
        world.ids[code] = plan.id
        return plan.id


# The world's organisations joined before any of their contracts started, so a terms
# version in force since then was announced to them (R-60: deemed consent by use).
JOINED = datetime(2024, 12, 1, 1, 0, tzinfo=UTC)


def add_organisation(name: str, domain: str) -> Organisation:
    org = Organisation(legal_name=name, billing_email=f"billing@{domain}", created_at=JOINED)
    db.session.add(org)
    return org


def add_user(email: str, name: str | None = None, **kind: object) -> User:
    user = User(
        email=email,
        name=name or email.split("@")[0],
        password_hash=password_hash(),
        locale="en",
        **kind,
    )
    db.session.add(user)
    return user


@dataclass
class World:
    """Two customer organisations (A and B) and one actor of every kind.

    - org A: administrator, member; contract_a sold via the sales agent "assigned" partner;
      also assigned to the agency "assigned" partner.
    - org B: administrator; contract_b, direct. Assigned to the "unassigned" partners
      (so those agents have a client, just not A).
    """

    org_a: int = 0
    org_b: int = 0
    contract_a: int = 0
    contract_b: int = 0
    emails: dict[str, str] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)


def build_world(app: Flask, *, service_start: date = date(2026, 11, 5)) -> World:
    """W-1's contract (start 2026-11-05, anchor 21, M=12) for org A; similar for org B."""
    world = World()
    with app.app_context():
        plans = add_catalog()
        a = add_organisation("Alpha K.K.", "alpha.example")
        b = add_organisation("Beta K.K.", "beta.example")
        sales = PartnerCompany(name="Sales Agent Co.", kind=PartnerKind.SALES_AGENT)
        agency = PartnerCompany(name="Agency Co.", kind=PartnerKind.AGENCY)
        other_sales = PartnerCompany(name="Other Sales Co.", kind=PartnerKind.SALES_AGENT)
        other_agency = PartnerCompany(name="Other Agency Co.", kind=PartnerKind.AGENCY)
        db.session.add_all([sales, agency, other_sales, other_agency])
        for partner, org in ((sales, a), (agency, a), (other_sales, b), (other_agency, b)):
            db.session.add(PartnerAssignment(partner=partner, organisation=org))
        customer = {"kind": UserKind.CUSTOMER}
        users = {
            "admin": add_user(
                "admin@alpha.example",
                organisation=a,
                customer_role=CustomerRole.ADMINISTRATOR,
                **customer,
            ),
            "member": add_user(
                "member@alpha.example",
                organisation=a,
                customer_role=CustomerRole.MEMBER,
                **customer,
            ),
            "other_admin": add_user(
                "admin@beta.example",
                organisation=b,
                customer_role=CustomerRole.ADMINISTRATOR,
                **customer,
            ),
            "sales_agent": add_user("agent@sales.example", kind=UserKind.AGENT, partner=sales),
            "agency_agent": add_user("agent@agency.example", kind=UserKind.AGENT, partner=agency),
            "partner_admin": add_user(
                "admin@sales.example",
                kind=UserKind.AGENT,
                partner=sales,
                partner_role=PartnerRole.ADMINISTRATOR,
            ),
            "other_sales_agent": add_user(
                "agent@othersales.example", kind=UserKind.AGENT, partner=other_sales
            ),
            "other_agency_agent": add_user(
                "agent@otheragency.example", kind=UserKind.AGENT, partner=other_agency
            ),
            "support": add_user(
                "support@provider.example", kind=UserKind.STAFF, staff_role=StaffRole.SUPPORT
            ),
            "billing": add_user(
                "billing@provider.example", kind=UserKind.STAFF, staff_role=StaffRole.BILLING
            ),
            "production": add_user(
                "production@provider.example",
                kind=UserKind.STAFF,
                staff_role=StaffRole.PRODUCTION,
            ),
        }
        contract_a = open_contract(
            a, plans["small"], service_start=service_start, anchor_day=21, partner=sales
        )
        contract_b = open_contract(
            b, plans["small"], service_start=service_start, anchor_day=21, partner=None
        )
        db.session.commit()
        world.org_a, world.org_b = a.id, b.id
        world.contract_a, world.contract_b = contract_a.id, contract_b.id
        world.emails = {k: u.email for k, u in users.items()}
        world.ids = {k: u.id for k, u in users.items()}
        world.ids["sales_partner"] = sales.id
        world.ids["agency_partner"] = agency.id
        world.ids["other_sales_partner"] = other_sales.id
        world.ids["other_agency_partner"] = other_agency.id
        world.ids["plan_small"] = plans["small"].id
        world.ids["plan_large"] = plans["large"].id
        world.ids["service_image_works"] = plans["small"].price_list.service_id
    return world


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


# --- signing in and acting as every kind of actor ----------------------------------------

# Every kind of actor the permission rules know (R-70..R-72), as the web tests name them.
ACTOR_KINDS = (
    "anonymous",
    "member",  # member of org A
    "admin",  # administrator of org A
    "other_admin",  # administrator of org B
    "sales_agent",  # sales agent assigned to A, inside A's portal
    "other_sales_agent",  # sales agent not assigned to A, inside its own client B
    "agency_agent",  # agency agent assigned to A, inside A's portal
    "other_agency_agent",  # agency agent not assigned to A, inside its own client B
    "support",  # support staff in the back office
    "support_viewing",  # support staff viewing A's portal as A's administrator
    "billing",  # billing staff
    "production",  # production staff (I-NET SERVICE card orders, R-85)
    "partner_admin",  # administrator of A's sales agent company, inside A's portal (issue 14)
)
VIEW_AS_REASON = "The customer asked us to check the renewal date on the phone."
_CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def sign_in(app: Flask, client: FlaskClient, email: str) -> str:
    """Sign a test client in without paying for an argon2 verify.

    Opens the server-side session exactly as POST /login does after the password check
    (auth.start_session) and puts its token in the client's session cookie, where
    Flask-Login keeps it. The sign-in itself is tested through POST /login in test_auth.
    """
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        assert user is not None, email
        token = start_session(user, ip="127.0.0.1", user_agent="tests").token
        db.session.commit()
    with client.session_transaction() as session:
        session["_user_id"] = token
        session["_fresh"] = True
    return token


def csrf_token(client: FlaskClient, path: str = "/account/password") -> str:
    """The CSRF token of the client's session, read from a page's form as a browser would."""
    page = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = _CSRF_INPUT.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def _with_token(client: FlaskClient, data: dict[str, object]) -> dict[str, object]:
    if client.application.config.get("WTF_CSRF_ENABLED"):
        return {**data, "csrf_token": csrf_token(client)}
    return data


def enter_client(client: FlaskClient, organisation_id: int, purpose: str = "") -> None:
    """R-71: an agent enters an assigned client's portal."""
    response = client.post(
        f"/partner/clients/{organisation_id}/enter", data=_with_token(client, {"purpose": purpose})
    )
    assert response.status_code == 302, response.status_code
    assert response.headers["Location"] == "/contracts", response.headers["Location"]


def view_as(
    client: FlaskClient, organisation_id: int, as_user_id: int, reason: str = VIEW_AS_REASON
) -> None:
    """R-72: support staff start viewing a customer's portal as one of its users."""
    response = client.post(
        f"/staff/organisations/{organisation_id}/view-as",
        data=_with_token(client, {"as_user_id": as_user_id, "reason": reason}),
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    assert response.headers["Location"] == "/contracts", response.headers["Location"]


def become(app: Flask, client: FlaskClient, world: World, kind: str) -> None:
    """Make a fresh test client into one actor of ACTOR_KINDS (see World for who is who)."""
    if kind == "anonymous":
        return
    if kind == "support_viewing":
        sign_in(app, client, world.emails["support"])
        view_as(client, world.org_a, world.ids["admin"])
        return
    sign_in(app, client, world.emails[kind])
    if kind in ("sales_agent", "agency_agent", "partner_admin"):
        enter_client(client, world.org_a)
    elif kind in ("other_sales_agent", "other_agency_agent"):
        enter_client(client, world.org_b)


# --- more data ----------------------------------------------------------------------------


def add_contract(
    app: Flask,
    organisation_id: int,
    *,
    service_start: date,
    anchor_day: int = 21,
    plan: str = "iw-50",
    partner_id: int | None = None,
) -> int:
    """One more contract, opened as onboarding opens them (price of the plan, R-06 periods)."""
    with app.app_context():
        organisation = db.session.get(Organisation, organisation_id)
        found = db.session.scalar(sa.select(Plan).where(Plan.code == plan))
        partner = db.session.get(PartnerCompany, partner_id) if partner_id else None
        contract = open_contract(
            organisation, found, service_start=service_start, anchor_day=anchor_day, partner=partner
        )
        db.session.commit()
        return contract.id


def application_form(plan_id: int, /, **overrides: object) -> dict[str, object]:
    """The onboarding form (利用申込書) as a browser sends it: every field, empty ones too."""
    form: dict[str, object] = {
        "legal_name": "Gamma K.K.",
        "legal_name_kana": "ガンマ",
        "postal_code": "100-0001",
        "address": "Chiyoda-ku, Tokyo",
        "phone": "03-5555-6666",
        "billing_email": "billing@gamma.example",
        "contract_contact_name": "",
        "contract_contact_email": "",
        "operations_contact_name": "",
        "operations_contact_email": "",
        "locale": "en",
        "admin_name": "Gamma Admin",
        "admin_email": "admin@gamma.example",
        "plan_id": plan_id,
        "service_start": "2027-03-05",
        "anchor_day": 21,
        "partner_id": 0,
    }
    form.update(overrides)
    return form


def _changes(table: sa.Table) -> sa.Select:
    """A table's rows but the record of a refusal itself (issue 13: each 403 is audited), so
    that "a refused request changed nothing" still means it."""
    query = sa.select(table)
    if table.name == "audit_events":
        query = query.where(table.c.action != "authorization.refused")
    return query


def row_counts(app: Flask) -> dict[str, int]:
    """Rows per table, to show that a refused request created nothing."""
    with app.app_context():
        return {
            table.name: db.session.scalar(
                sa.select(sa.func.count()).select_from(_changes(table).subquery())
            )
            for table in db.metadata.sorted_tables
        }


def snapshot(app: Flask, *, skip: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every row of every table (but `skip`), to show that a request changed nothing."""
    with app.app_context():
        rows = {}
        for table in db.metadata.sorted_tables:
            if table.name in skip:
                continue
            query = _changes(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in db.session.execute(query)]
        return rows


def signed_in_client(app: Flask, email: str) -> FlaskClient:
    """A fresh browser with `email` signed in."""
    client = app.test_client()
    sign_in(app, client, email)
    return client


def rows(app: Flask, model: type, **where: object) -> list:
    """All rows of a model (optionally filtered), detached for reading after the context."""
    with app.app_context():
        found = list(db.session.scalars(db.select(model).filter_by(**where).order_by(model.id)))
        db.session.expunge_all()
        return found


# --- I-NET SERVICE (issue 12) ---------------------------------------------------------------


def sample_jpeg(
    width: int = 600, height: int = 800, color: tuple[int, int, int] = (90, 120, 160)
) -> bytes:
    """A real JPEG made here (no downloaded images): a plain face-shaped placeholder."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (235, 238, 242))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.3, height * 0.18, width * 0.7, height * 0.55), fill=color)  # a head
    draw.rectangle((width * 0.18, height * 0.6, width * 0.82, height), fill=color)  # shoulders
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def add_inet_registration(organisation: Organisation, **overrides: object):
    """An open I-NET SERVICE registration (staff onboarding), free (R-80)."""
    from portal.models import InetRegistration, RegistrationChannel

    values: dict[str, object] = {
        "organisation": organisation,
        "channel": RegistrationChannel.STAFF,
        "application_contact_name": "Hanako Sato",
        "application_contact_email": organisation.billing_email,
        "operations_manager_name": "Taro Suzuki",
        "operations_manager_email": organisation.billing_email,
        **overrides,
    }
    registration = InetRegistration(**values)
    db.session.add(registration)
    db.session.flush()
    return registration


def add_card_holder(
    organisation: Organisation,
    employee_number: str,
    *,
    name: str = "山田 太郎",
    photo: bool = True,
    **overrides: object,
):
    """A card holder with (by default) a stored photo of the portal's own making."""
    from portal.models import CardHolder
    from portal.services.photo_storage import DatabasePhotoStorage, Photo

    holder = CardHolder(
        organisation=organisation,
        name=name,
        name_kana=overrides.pop("name_kana", "ヤマダ タロウ"),
        employee_number=employee_number,
        department=overrides.pop("department", "総務部"),
        title=overrides.pop("title", "課長"),
        **overrides,
    )
    db.session.add(holder)
    db.session.flush()
    if photo:
        holder.photo_key = DatabasePhotoStorage().put(
            organisation.id, Photo(sample_jpeg(), 600, 800)
        )
    return holder


def add_card_order(
    registration, placed_by: User, holders: list, *, state=None, **overrides: object
):
    """An order for one card per holder, moved straight to `state` (default: confirmed, the
    cancel window open, R-82), its timestamps set as the steps would have set them."""
    from portal.clock import clock
    from portal.domain.inet import PROGRESS, CardDesign, OrderState
    from portal.models import CardOrder, CardOrderItem

    state = state or OrderState.CONFIRMED
    now = clock.now()
    order = CardOrder(
        organisation_id=registration.organisation_id,
        registration=registration,
        state=state,
        design=overrides.pop("design", CardDesign.STANDARD),
        delivery_name=overrides.pop("delivery_name", "総務部 佐藤"),
        delivery_postal_code=overrides.pop("delivery_postal_code", "100-0001"),
        delivery_address=overrides.pop("delivery_address", "東京都千代田区千代田1-1"),
        delivery_phone=overrides.pop("delivery_phone", "03-1234-5678"),
        placed_by=placed_by,
        **overrides,
    )
    stamps = {
        OrderState.SUBMITTED: "submitted_at",
        OrderState.CONFIRMED: "confirmed_at",
        OrderState.ACCEPTED: "accepted_at",
        OrderState.IN_PRODUCTION: "production_started_at",
        OrderState.SHIPPED: "shipped_at",
        OrderState.DELIVERED: "delivered_at",
    }
    if state in PROGRESS:
        for step in PROGRESS[: PROGRESS.index(state) + 1]:
            setattr(order, stamps[step], now)
    elif state == OrderState.WITHDRAWN:
        order.submitted_at = order.withdrawn_at = now
    elif state == OrderState.CANCELLED:
        order.submitted_at = order.confirmed_at = order.cancelled_at = now
    if state == OrderState.SHIPPED or state == OrderState.DELIVERED:
        order.carrier, order.tracking_number = "ヤマト運輸", "1234-5678-9012"
    for holder in holders:
        order.items.append(
            CardOrderItem(
                holder=holder,
                quantity=1,
                name=holder.name,
                name_kana=holder.name_kana,
                employee_number=holder.employee_number,
                department=holder.department,
                title=holder.title,
            )
        )
    db.session.add(order)
    db.session.flush()
    return order


def quote_form(
    app: Flask,
    contract_id: int,
    kind: str = "cancellation",
    on: str = "2027-04-20",
    plan: int | None = None,
) -> dict[str, object]:
    """The confirm form of a quote as its page sends it: the choice and the quote's fingerprint
    (R-32; never the total, R-71). Made with the portal's own quote of that choice now."""
    from portal.domain.quotes import Quote
    from portal.models import Contract
    from portal.services import requests as request_service

    with app.test_request_context():
        contract = db.session.get(Contract, contract_id)
        choice = request_service.parse_choice(kind, str(plan or ""), on)
        quote = request_service.make_quote(contract, choice)
        assert isinstance(quote, Quote), quote
        fingerprint = request_service.quote_fingerprint(quote)
    return {"kind": kind, "on": on, "plan": plan or "", "quote": fingerprint}
