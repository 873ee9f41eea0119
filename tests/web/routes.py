"""Routes of the app as the web tests call them: URLs with test ids, and form data."""

from __future__ import annotations

import itertools
from datetime import date

from flask import Flask, url_for

from tests.factories import PASSWORD, VIEW_AS_REASON, World, application_form

world_service_start = date(2026, 11, 5)  # W-1, as build_world makes it


def app_routes(app: Flask) -> set[tuple[str, str]]:
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def post_data(endpoint: str, world: World, actor: str, *, org: str = "a") -> dict[str, object]:
    """Valid-looking form data for each POST route, for org A (or B), without a CSRF token."""
    as_user = world.ids["admin"] if org == "a" else world.ids["other_admin"]
    forms: dict[str, dict[str, object]] = {
        "main.language": {"locale": "en", "next": "/contracts"},
        "main.leave": {},
        "auth.login": {"email": world.emails["admin"], "password": PASSWORD},
        "auth.logout": {},
        "account.password": {
            "current_password": "not the current password",
            "new_password": "a brand new passphrase",
            "confirm": "a brand new passphrase",
        },
        "partners.enter": {"purpose": "Plan change for the client"},
        "staff.onboard": application_form(
            world.ids["plan_small"], admin_email=f"first-admin-{actor}@gamma.example"
        ),
        "staff.view_as": {"as_user_id": as_user, "reason": VIEW_AS_REASON},
        # Partner companies, stopped before they change the shared world: a name that
        # exists already (422), an organisation already the partner's client (422), and a
        # withdrawal without `confirmed` (its confirmation page, 200).
        "staff.new_partner": {"name": "Sales Agent Co.", "kind": "sales_agent"},
        "staff.assign_client": {"organisation_id": world.org_a if org == "a" else world.org_b},
        "staff.withdraw_client": {},
        # Issue 14: an address in use (the sales agent's) is refused (422): nobody is invited.
        "staff.invite_partner_agent": {
            "name": f"Invited by {actor}",
            "email": world.emails["sales_agent"],
            "role": "administrator",
            "locale": "en",
        },
        # W-2 on either organisation's W-1 contract (the clock is at 2027-03-01).
        "contracts.confirm": {
            "kind": "cancellation",
            "on": "2027-04-20",
            "quote": world.ids.get(f"quote_{org}", ""),
        },
        "contracts.withdraw": {"confirmed": "yes"},  # as the confirmation page sends it
        "staff.record_usage": {"used_gb": "12.5", "measured_at": "2027-02-01T09:00"},
        "account.tokens": {"name": f"matrix {actor}"},
        "account.revoke_token": {},
        "invoices.access": {},
        "invoices.pay": {},
        # Valid, but without `confirmed`: billing staff get the confirmation page (200), so the
        # shared world keeps the invoice open and uncredited.
        "billing.record_payment": {
            "method": "bank_transfer",
            "received_on": "2027-02-27",
            "reference": f"Matrix {actor}",
        },
        "billing.issue_credit_note": {
            "amount": "1000",
            "tax_rate_percent": "10",
            "reason": f"Credited in the matrix by {actor}",
        },
        "billing.send_reminder": {},
        # Staff administrators only (none in this world); were others allowed, the registration
        # number is refused (422), so the shared world keeps its provider settings.
        "billing.provider": {
            "name_ja": "テスト提供者",
            "name_en": "Test Provider",
            "registration_number": "T123",
            "phone": "03-1234-5678",
            "bank_account_type": "ordinary",
        },
        "stripe_webhook.stripe_webhook": {},
        "staff.retry_mail": {},
        # An address without an account: the same answer, and nothing written.
        "auth.forgot_password": {"email": "nobody@alpha.example"},
        # Refused (422): the confirmation differs, so the link and the password stay.
        "auth.reset_password": {"new_password": "a brand new passphrase", "confirm": "other"},
        "auth.accept_invitation": {"new_password": "a brand new passphrase", "confirm": "x"},
        "users.invite": {
            "name": f"Invited by {actor}",
            "email": f"invited-by-{actor}@{org}.example",
            "role": "member",
            "locale": "en",
        },
        "users.resend_invitation": {},
        "users.remove": {},
        "account.misuse": {"details": f"Reported in the matrix by {actor}"},
        "security.mark_handled": {"note": f"Handled in the matrix by {actor}"},
        # Invalid on purpose (422 for those who may), so the shared world keeps its information.
        "organisation.information": {
            "legal_name": "",
            "billing_email": "not an e-mail",
            "postal_code": "12",
        },
        # Support and billing staff may not publish (403); were they allowed, an effective date
        # of today is refused (422), so the shared world gets no version from the matrix.
        "staff_terms.publish": {
            "service_id": "1",
            "title_ja": "利用規約",
            "title_en": "Terms",
            "body_ja": "本文",
            "body_en": "Text",
            "effective_on": "2027-03-01",
        },
        "terms.consent": {"agree": "y"},
        # Issue 10 (R-50..R-53). The customer's claim is for an open incident: refused (422)
        # for those who may file, so the shared world keeps no claim from the matrix.
        "sla.rotate_feeds": {},
        "sla.file_claim": {"incident_id": world.ids.get(f"open_incident_{org}", 0)},
        # Staff forms that tell customers or cannot be undone stop at their confirmation page
        # (200) without `confirmed`, so the matrix changes nothing.
        "staff_sla.new_incident": {**incident_form(world), "publish": "y"},
        "staff_sla.post_update": {
            "status": "resolved",
            "message_ja": "復旧しました。",
            "message_en": "Recovered.",
        },
        "staff_sla.correct_incident": {
            **incident_form(world, org),
            "reason": f"Corrected in the matrix by {actor}",
        },
        "staff_sla.new_maintenance": {
            "mode": "announce",
            "service_ids": [world.ids["service_image_works"]],
            "title_ja": "臨時メンテナンス",
            "title_en": "Extra maintenance",
            "planned_start": "2027-03-10T01:00",
            "planned_end": "2027-03-10T05:00",
        },
        "staff_sla.end_maintenance": {"actual_end": ""},
        "staff_sla.review_claim": {"decision": "approve"},
        "staff_sla.paper_claim": {"incident_id": "", "received_on": ""},
    }
    if endpoint in forms:
        return forms[endpoint]
    # Later features keep their form data with their matrix rows (tests/web/matrix_*.py).
    for part in matrix_parts():
        if (endpoint, "POST") in part.MATRIX:
            return part.post_data(endpoint, world, actor, org=org)
    raise KeyError(endpoint)


def incident_form(world: World, org: str | None = None) -> dict[str, object]:
    """The staff's incident form for W-4's outage (2027-02-03 09:00 - 2027-02-04 15:00 Tokyo,
    recovery announced 90 minutes late), for every organisation or only A's (or B's)."""
    return {
        "kind": "outage",
        "title_ja": "ストレージ障害",
        "title_en": "Storage outage",
        "service_ids": [world.ids["service_image_works"]],
        "organisation_ids": "" if org is None else str(getattr(world, f"org_{org}")),
        "started_at": "2027-02-03T09:00",
        "ended_at": "2027-02-04T15:00",
        "occurrence_announced_at": "2027-02-03T09:20",
        "recovery_announced_at": "2027-02-04T16:30",
        "status": "investigating",
        "message_ja": "調査中です。",
        "message_en": "Investigating.",
    }


def url_of(app: Flask, endpoint: str, **ids: int) -> str:
    """The URL of a route, with org A's objects (or the ids given) as its arguments."""
    (rule,) = app.url_map.iter_rules(endpoint)
    values = {"filename": "css/portal.css", **ids}
    missing = rule.arguments - values.keys()
    assert not missing, f"{endpoint}: no test value for {missing}; add one here"
    with app.test_request_context():
        return url_for(endpoint, **{k: values[k] for k in rule.arguments})


# --- the JSON API (/api/v1): every actor's user with its own bearer token ----------------
# Imported here, with the block, so that this block is all the API adds to this file.
import sqlalchemy as sa  # noqa: E402

from portal.clock import clock  # noqa: E402
from portal.domain.quotes import RequestKind  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Contract, ContractRequest, RequestStatus, User  # noqa: E402
from portal.permissions import Actor  # noqa: E402
from portal.services import api_tokens  # noqa: E402
from portal.services import requests as request_service  # noqa: E402
from portal.services.requests import Choice  # noqa: E402
from tests.factories import ACTOR_KINDS  # noqa: E402

# Whose token each actor kind calls the API with. A token is never inside a customer's
# portal, so staff "viewing as a customer" call with the support staff's own token.
API_TOKEN_OWNER = {
    **{kind: kind for kind in ACTOR_KINDS if kind != "anonymous"},
    "support_viewing": "support",
}


def make_api_tokens(app: Flask, world: World) -> dict[str, str]:
    """One API token per user of the world, by actor kind (anonymous has none)."""
    plain: dict[str, str] = {}
    with app.app_context():
        for owner in sorted(set(API_TOKEN_OWNER.values())):
            user = db.session.get(User, world.ids[owner])
            _token, plain[owner] = api_tokens.create(Actor(user), "tests", ip="127.0.0.1")
        db.session.commit()
    return {kind: plain[owner] for kind, owner in API_TOKEN_OWNER.items()}


def bearer(tokens: dict[str, str], actor: str) -> dict[str, str]:
    token = tokens.get(actor)
    return {"Authorization": f"Bearer {token}"} if token else {}


def api_body(endpoint: str, world: World, actor: str, *, org: str = "a") -> dict[str, object]:
    """A valid JSON body for each API POST, for org A (or B); each actor's usage reading is
    measured at its own time, so every one is new."""
    day = ACTOR_KINDS.index(actor) + (1 if org == "a" else 15)
    bodies: dict[str, dict[str, object]] = {
        "api.quote": {"kind": "cancellation"},
        "api.submit": {"kind": "cancellation"},
        "api.withdraw": {},
        "api.usage": {"used_gb": "12.34", "measured_at": f"2027-02-{day:02d}T09:00:00+09:00"},
        # The actor's own incident (made by api_claim_incident first): a contract takes one
        # claim per incident, so each actor who may file gets 201, not another's 409.
        "api.file_claim": {"incident_id": world.ids.get(f"api_claim_incident_{actor}", 0)},
        "api.cancel_card_order": {},
    }
    return bodies[endpoint]


def api_claim_incident(app: Flask, world: World, actor: str) -> int:
    """An ended outage of IMAGE WORKS on 2026-12-10, 10:00-12:00 Tokyo, touching every
    contract of the service (A's and B's), its occurrence announced 90 minutes late: ¥1,666
    for W-1's contracts (R-51), claimable until 2027-03-10 (R-52). Made once per actor kind;
    its billing month (2026-12) is no other test's, so the month's cap is never reached."""
    key = f"api_claim_incident_{actor}"
    if key not in world.ids:
        from datetime import datetime

        from portal.clock import TOKYO
        from portal.domain.sla import IncidentKind
        from portal.models import Service
        from portal.services import incidents
        from portal.services.incidents import IncidentFacts

        with app.test_request_context():
            service_id = db.session.scalar(
                sa.select(Service.id).where(Service.code == "image_works")
            )
            support = Actor(db.session.get(User, world.ids["support"]))
            facts = IncidentFacts(
                kind=IncidentKind.OUTAGE,
                title_ja="API障害",
                title_en="API outage",
                service_ids=(service_id,),
                started_at=datetime(2026, 12, 10, 10, 0, tzinfo=TOKYO),
                ended_at=datetime(2026, 12, 10, 12, 0, tzinfo=TOKYO),
                occurrence_announced_at=datetime(2026, 12, 10, 11, 30, tzinfo=TOKYO),
                recovery_announced_at=datetime(2026, 12, 10, 12, 10, tzinfo=TOKYO),
            )
            world.ids[key] = incidents.record(support, facts).id
            db.session.commit()
    return world.ids[key]


def clear_pending_requests(app: Flask, contract_id: int) -> None:
    """No pending request on the contract (as if withdrawn), so one may be submitted."""
    with app.app_context():
        db.session.execute(
            sa.update(ContractRequest)
            .where(
                ContractRequest.contract_id == contract_id,
                ContractRequest.status == RequestStatus.PENDING,
            )
            .values(status=RequestStatus.WITHDRAWN, withdrawn_at=clock.now())
        )
        db.session.commit()


def pending_request(app: Flask, contract_id: int, user_id: int) -> int:
    """A fresh pending cancellation of the contract, confirmed by `user_id` (its admin)."""
    clear_pending_requests(app, contract_id)
    with app.app_context():
        user = db.session.get(User, user_id)
        contract = db.session.get(Contract, contract_id)
        created = request_service.submit(
            Actor(user), contract, Choice(RequestKind.CANCELLATION), ip="127.0.0.1"
        )
        db.session.commit()
        return created.id


def withdrawn_request(app: Flask, request_id: int, user_id: int) -> None:
    """The request withdrawn by `user_id` (its admin), with its withdrawal document (R-23)."""
    with app.app_context():
        found = db.session.get(ContractRequest, request_id)
        request_service.withdraw(Actor(db.session.get(User, user_id)), found, ip="127.0.0.1")
        db.session.commit()


# --- page routes that need more than a contract or an organisation ---------------------------


def matrix_parts() -> tuple:
    """The permission matrix's parts (tests/web/matrix_*.py), each with its own rows."""
    from tests.web import (
        matrix_inet_holders,
        matrix_inet_orders,
        matrix_inet_registration,
        matrix_partner_applications,
        matrix_partner_people,
    )

    return (
        matrix_inet_registration,
        matrix_inet_holders,
        matrix_inet_orders,
        matrix_partner_applications,
        matrix_partner_people,
    )


def route_ids(app: Flask, world: World, endpoint: str, *, org: str = "a") -> dict[str, int]:
    """The ids for a page route on org A's (or B's) objects, from a clean state: nothing
    pending on the contract, and a fresh pending request for routes that take a request id.
    Call `clear_pending_requests` afterwards to leave the world as it was."""
    contract_id = world.contract_a if org == "a" else world.contract_b
    admin = "admin" if org == "a" else "other_admin"
    if endpoint == "contracts.renew" and org == "a":
        contract_id = agency_contract(app, world)  # only agency contracts renew so
    ids = {
        "contract_id": contract_id,
        "organisation_id": world.org_a if org == "a" else world.org_b,
    }
    clear_pending_requests(app, contract_id)
    arguments = next(iter(app.url_map.iter_rules(endpoint))).arguments
    if "request_id" in arguments:
        ids["request_id"] = pending_request(app, contract_id, world.ids[admin])
    if endpoint == "contracts.withdrawal_pdf":
        withdrawn_request(app, ids["request_id"], world.ids[admin])
    if "token_id" in arguments:
        ids["token_id"] = own_token(app, world, admin)
    if "invoice_id" in arguments:
        ids["invoice_id"] = first_invoice(app, world, org)
    if "user_id" in arguments:
        ids["user_id"] = invitee(app, world, org)
    if "report_id" in arguments:
        ids["report_id"] = misuse_report(app, world, org)
    if "token" in arguments:
        ids["token"] = emailed_token(app, world, endpoint, org)
        ids["invoice_id"] = first_invoice(app, world, org)
    if "email_id" in arguments:
        ids["email_id"] = first_notice(app, world, org)
    if "version_id" in arguments:
        ids["version_id"] = upcoming_terms(app, world)
    if "incident_id" in arguments:
        ids["incident_id"] = sla_incident(app, world, org)
    if "claim_id" in arguments:
        ids["claim_id"] = sla_claim(app, world, org)
    if "maintenance_id" in arguments:
        ids["maintenance_id"] = sla_maintenance(app, world)
    if "feed_token" in arguments:
        ids["feed_token"] = feed_token(app, ids["organisation_id"])
    if "partner_id" in arguments:
        # A's sales agent company (A is its client); B's is another sales agent company.
        ids["partner_id"] = world.ids["sales_partner" if org == "a" else "other_sales_partner"]
    if endpoint == "sla.file_claim":
        sla_incident(app, world, org, open_=True)
    if endpoint == "contracts.confirm":
        # The fingerprint of the W-2 cancellation quote the page showed, per contract.
        from tests.factories import quote_form

        world.ids[f"quote_{org}"] = quote_form(app, contract_id)["quote"]
    if "holder_id" in arguments:
        ids["holder_id"] = inet_world(app, world, org)["holder"]
    if "order_id" in arguments:
        ids["order_id"] = inet_world(app, world, org)["order"]
    for part in matrix_parts():
        if any(key[0] == endpoint for key in part.MATRIX) and hasattr(part, "extra_ids"):
            ids.update(part.extra_ids(app, world, endpoint, org=org))
    return ids


def fresh_card_order(app: Flask, world: World, org: str) -> int:
    """A new confirmed order of org A's (or B's) holder, placed by its administrator: for a
    route that cancels, so that each call finds the window open (R-82)."""
    from portal.models import CardHolder, InetRegistration
    from tests.factories import add_card_order

    ids = inet_world(app, world, org)
    with app.app_context():
        admin = db.session.get(User, world.ids["admin" if org == "a" else "other_admin"])
        order = add_card_order(
            db.session.get(InetRegistration, ids["registration"]),
            admin,
            [db.session.get(CardHolder, ids["holder"])],
        )
        db.session.commit()
        return order.id


def inet_world(app: Flask, world: World, org: str) -> dict[str, int]:
    """Org A's (or B's) I-NET SERVICE: an open registration, a card holder with a photo and
    an order for its card placed by the organisation's administrator, confirmed (the cancel
    window open, R-82). Made once; routes that move the order stop at their confirmation
    page, so it stays confirmed."""
    key = f"inet_{org}"
    if f"{key}_order" not in world.ids:
        from portal.models import Organisation
        from tests.factories import add_card_holder, add_card_order, add_inet_registration

        with app.app_context():
            organisation = db.session.get(Organisation, getattr(world, f"org_{org}"))
            registration = add_inet_registration(organisation)
            holder = add_card_holder(organisation, f"E-{org.upper()}-001")
            admin = db.session.get(User, world.ids["admin" if org == "a" else "other_admin"])
            order = add_card_order(registration, admin, [holder])
            db.session.commit()
            world.ids[f"{key}_registration"] = registration.id
            world.ids[f"{key}_holder"] = holder.id
            world.ids[f"{key}_order"] = order.id
    return {
        "registration": world.ids[f"{key}_registration"],
        "holder": world.ids[f"{key}_holder"],
        "order": world.ids[f"{key}_order"],
    }


def first_invoice(app: Flask, world: World, org: str) -> int:
    """The first invoice of org A (or B): the initial fee at service start (made once)."""
    key = f"invoice_{org}"
    if key not in world.ids:
        from portal.clock import clock as portal_clock
        from portal.models import Invoice
        from portal.services.invoicing import issue_invoices

        with app.app_context():
            issue_invoices(world_service_start)
            for organisation_id, invoice_id in db.session.execute(
                sa.select(Invoice.organisation_id, Invoice.id)
            ):
                world.ids[f"invoice_{'a' if organisation_id == world.org_a else 'b'}"] = invoice_id
        assert portal_clock.is_fixed
    return world.ids[key]


def agency_contract(app: Flask, world: World) -> int:
    """A contract of org A sold through the assigned agency (made once per world)."""
    if "agency_contract_a" not in world.ids:
        from portal.models import Organisation, PartnerCompany, Plan
        from portal.services.organisations import open_contract

        with app.app_context():
            contract = open_contract(
                db.session.get(Organisation, world.org_a),
                db.session.get(Plan, world.ids["plan_small"]),
                service_start=world_service_start,
                anchor_day=21,
                partner=db.session.get(PartnerCompany, world.ids["agency_partner"]),
            )
            db.session.commit()
            world.ids["agency_contract_a"] = contract.id
    return world.ids["agency_contract_a"]


def own_token(app: Flask, world: World, owner: str) -> int:
    """An API token of one user (made once per world), for the revoke route."""
    key = f"token_of_{owner}"
    if key not in world.ids:
        with app.app_context():
            user = db.session.get(User, world.ids[owner])
            token, _plain = api_tokens.create(Actor(user), "revocable", ip="127.0.0.1")
            db.session.commit()
            world.ids[key] = token.id
    return world.ids[key]


def first_notice(app: Flask, world: World, org: str) -> int:
    """A notice to org A (or B) about a changed phone number (made once per world, R-61)."""
    key = f"notice_{org}"
    if key not in world.ids:
        from portal.models import Organisation
        from portal.services import mail
        from portal.services.information import FieldChange

        with app.test_request_context():
            for name in ("a", "b"):
                organisation = db.session.get(Organisation, getattr(world, f"org_{name}"))
                (notice,) = mail.notify_organisation(
                    organisation,
                    "information_changed",
                    context={
                        "changes": [FieldChange("phone", "03-5555-6666", "03-1111-2222")],
                        "changed_by": "Admin",
                        "changed_at": clock.now(),
                    },
                )
                db.session.flush()
                world.ids[f"notice_{name}"] = notice.id
            db.session.commit()
    return world.ids[key]


def upcoming_terms(app: Flask, world: World) -> int:
    """Version 1 of IMAGE WORKS's terms, the service of both A's and B's contracts, taking
    effect after the fixed clock's day (made once per world): nobody's use deems consent."""
    if "terms_version" not in world.ids:
        from portal.models import Service, TermsVersion

        with app.app_context():
            service = db.session.scalar(sa.select(Service).where(Service.code == "image_works"))
            version = TermsVersion(
                service=service,
                version=1,
                title_ja="IMAGE WORKS 利用規約",
                title_en="IMAGE WORKS Terms of Service",
                body_ja="第1条 本規約は本サービスに適用されます。",
                body_en="Art. 1 These terms apply to the service.",
                effective_on=date(2027, 4, 1),
            )
            db.session.add(version)
            db.session.commit()
            world.ids["terms_version"] = version.id
    return world.ids["terms_version"]


# --- issue 5: accounts (R-63) ---------------------------------------------------------------

_invitees = itertools.count(1)


def invitee(app: Flask, world: World, org: str) -> int:
    """A fresh user invited by A's (or B's) administrator, to re-invite or remove."""
    from portal.models import CustomerRole
    from portal.services import accounts

    admin = world.ids["admin" if org == "a" else "other_admin"]
    with app.test_request_context():
        user = accounts.invite(
            Actor(db.session.get(User, admin)),
            name="Invitee",
            email=f"invitee-{next(_invitees)}@{org}.example",
            role=CustomerRole.MEMBER,
            locale="en",
            ip="127.0.0.1",
        )
        db.session.commit()
        return user.id


def emailed_token(app: Flask, world: World, endpoint: str, org: str) -> str:
    """The token of a fresh link e-mailed to a user of A (or B): a password reset for its
    member (B: administrator), or a new invitee's invitation."""
    import re

    from portal.models import OutboxEmail
    from portal.services import accounts

    if endpoint == "auth.accept_invitation":
        user_id, kind, route = invitee(app, world, org), "invitation", "invitation"
    else:
        user_id = world.ids["member" if org == "a" else "other_admin"]
        kind, route = "password_reset", "password-reset"
        with app.test_request_context():
            accounts.request_password_reset(db.session.get(User, user_id).email, ip="127.0.0.1")
            db.session.commit()
    with app.app_context():
        body = db.session.scalar(
            sa.select(OutboxEmail.body)
            .where(OutboxEmail.user_id == user_id, OutboxEmail.kind == kind)
            .order_by(OutboxEmail.id.desc())
        )
    match = re.search(rf"/{route}/(\S+)", body or "")
    assert match, body
    return match.group(1)


def misuse_report(app: Flask, world: World, org: str) -> int:
    """A fresh, unhandled misuse report by A's (or B's) administrator."""
    from portal.models import MisuseReport

    admin = "admin" if org == "a" else "other_admin"
    with app.app_context():
        report = MisuseReport(
            user_id=world.ids[admin],
            organisation_id=world.org_a if org == "a" else world.org_b,
            details="Matrix",
        )
        db.session.add(report)
        db.session.commit()
        return report.id


# --- issue 10: incidents, maintenance, SLA claims (R-50..R-53) ---------------------------------


def sla_incident(app: Flask, world: World, org: str, *, open_: bool = False) -> int:
    """W-4's outage (or, open_, one still under way), touching only A's (or B's) contracts
    (made once per world and organisation)."""
    from portal.services import incidents
    from portal.services.incidents import IncidentFacts

    key = f"{'open_' if open_ else ''}incident_{org}"
    if key not in world.ids:
        from datetime import datetime

        from portal.clock import TOKYO
        from portal.domain.sla import IncidentKind

        with app.test_request_context():
            support = Actor(db.session.get(User, world.ids["support"]))
            started = datetime(2027, 2, 28 if open_ else 3, 9, 0, tzinfo=TOKYO)
            facts = IncidentFacts(
                kind=IncidentKind.OUTAGE,
                title_ja="ストレージ障害",
                title_en="Storage outage",
                service_ids=(world.ids["service_image_works"],),
                organisation_ids=(getattr(world, f"org_{org}"),),
                started_at=started,
                ended_at=None if open_ else datetime(2027, 2, 4, 15, 0, tzinfo=TOKYO),
                occurrence_announced_at=started,
                recovery_announced_at=(
                    None if open_ else datetime(2027, 2, 4, 16, 30, tzinfo=TOKYO)
                ),
            )
            world.ids[key] = incidents.record(support, facts).id
            db.session.commit()
    return world.ids[key]


def sla_claim(app: Flask, world: World, org: str) -> int:
    """A's (or B's) administrator's claim on W-4's outage (made once per world)."""
    key = f"claim_{org}"
    if key not in world.ids:
        from portal.models import Incident
        from portal.services import claims

        incident_id = sla_incident(app, world, org)
        with app.test_request_context():
            admin = Actor(db.session.get(User, world.ids["admin" if org == "a" else "other_admin"]))
            contract = db.session.get(Contract, getattr(world, f"contract_{org}"))
            claim = claims.file(admin, contract, db.session.get(Incident, incident_id))
            db.session.commit()
            world.ids[key] = claim.id
    return world.ids[key]


def sla_maintenance(app: Flask, world: World) -> int:
    """Extra maintenance announced for 2027-03-10 (made once per world)."""
    if "maintenance" not in world.ids:
        from datetime import datetime

        from portal.clock import TOKYO
        from portal.services import incidents

        with app.test_request_context():
            support = Actor(db.session.get(User, world.ids["support"]))
            created = incidents.announce_maintenance(
                support,
                incidents.MaintenanceFacts(
                    service_ids=(world.ids["service_image_works"],),
                    title_ja="臨時メンテナンス",
                    title_en="Extra maintenance",
                    planned_start=datetime(2027, 3, 10, 1, 0, tzinfo=TOKYO),
                    planned_end=datetime(2027, 3, 10, 5, 0, tzinfo=TOKYO),
                ),
            )
            db.session.commit()
            world.ids["maintenance"] = created.id
    return world.ids["maintenance"]


def feed_token(app: Flask, organisation_id: int) -> str:
    """The secret of an organisation's feed addresses as it is now."""
    from portal.services import feeds

    with app.app_context():
        return feeds.token_for(organisation_id)
