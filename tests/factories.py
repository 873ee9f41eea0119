"""Builders for test data: a small world with every kind of actor the permission rules know."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import (
    Contract,
    CustomerRole,
    Organisation,
    PartnerAssignment,
    PartnerCompany,
    PartnerKind,
    Plan,
    PriceList,
    Provider,
    Service,
    StaffRole,
    User,
    UserKind,
)
from portal.services.auth import hash_password
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
            name_ja="テスト提供者", name_en="Test Provider", registration_number="T1234567890123"
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


def add_organisation(name: str, domain: str) -> Organisation:
    org = Organisation(legal_name=name, billing_email=f"billing@{domain}")
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
    return world


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> None:
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def contract_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(Contract))
