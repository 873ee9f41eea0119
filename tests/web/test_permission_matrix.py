"""THE permission matrix: every route of the app, every method, every kind of actor.

R-70 (customers see only their own organisation), R-71 (agents only their partner's
clients), R-72 (staff viewing as a customer are inside the customer's portal, not the back
office) and STYLE.md's tenancy rule (another organisation's id answers 404, not 403).

Requests target organisation A's objects (contract_a, org_a). A new route fails
test_every_route_is_in_the_matrix until someone decides, here, who may use it.
"""

from __future__ import annotations

from fnmatch import fnmatch
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.extensions import db
from portal.models import AccountEntry
from tests.factories import ACTOR_KINDS, World, become
from tests.web.expect import (  # noqa: E402
    CLIENT,
    CONTRACT,
    HOME,
    INVOICES,
    LOGIN,
    MAIL,
    ORG_A,
    OVERDUE,
    PORTAL,
    REQUEST,
    S_CON,
    SYSTEM,
    TOKENS,
    USERS,
    Expected,
    Redirect,
)
from tests.web.routes import (
    app_routes,
    clear_pending_requests,
    matrix_parts,
    post_data,
    route_ids,
    url_of,
)

# Columns, in the order of ACTOR_KINDS:
#   anon   = anonymous                          suppt = support staff (back office)
#   member = member of org A                    viewg = support staff viewing A as A's admin
#   admin  = administrator of org A             billg = billing staff
#   o_adm  = administrator of org B
#   sales / agncy = sales / agency agent assigned to A, inside A's portal
#   o_sal / o_agc = sales / agency agent of another partner, inside its own client B
#   prodn  = production staff (I-NET SERVICE card orders, R-85), in the back office
#   p_adm  = administrator of A's sales agent company (issue 14), inside A's portal: an agent
#            like `sales` everywhere, who also manages the company's agents
# fmt: off
MATRIX: dict[tuple[str, str], tuple[Expected, ...]] = {
    #          anon    member  admin   o_adm   sales   o_sal   agncy   o_agc   suppt   viewg   billg   prodn   p_adm
    ("static", "GET"):
        (200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200),
    ("main.healthz", "GET"):
        (200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200),
    # The home page of whoever is signed in: the customer's (also an agent inside a client's
    # portal and staff viewing as the customer), the agent's clients', the back office's.
    ("main.index", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200),
    # The language switch follows a local next (/contracts) for everyone.
    ("main.language", "POST"):
        (PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL, PORTAL),
    # Leaving: agents go back to their clients, viewing staff to the organisation's page.
    ("main.leave", "POST"):
        (LOGIN,  HOME,   HOME,   HOME,   CLIENT, CLIENT, CLIENT, CLIENT, HOME,   ORG_A,  HOME,   HOME, CLIENT),
    ("auth.login", "GET"):
        (200,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    # Anonymous signs in with A's administrator's password; the signed-in are sent home.
    ("auth.login", "POST"):
        (HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    ("auth.logout", "POST"):
        (LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN),
    # staff viewing as a customer never change credentials (403). The form sent has a
    # wrong current password, so everyone else reaches the service and gets 422.
    ("account.password", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    200,    403,    200,    200,    200),
    ("account.password", "POST"):
        (LOGIN,  422,    422,    422,    422,    422,    422,    422,    422,    403,    422,    422,    422),
    # The customer's portal: own organisation, entered client, viewed.
    ("contracts.home", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    404,    200,    404,    404,    200),
    ("contracts.detail", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    200,    404,    404,    200,    404,    404,    200),
    # the customer's administrators and the provider see access records; agents don't.
    ("contracts.access_records", "GET"):
        (LOGIN,  403,    200,    200,    403,    403,    403,    403,    404,    200,    404,    404,    403),
    # agents only. Entering A again while inside A is refused with a message (HOME).
    ("partners.clients", "GET"):
        (LOGIN,  404,    404,    404,    200,    200,    200,    200,    404,    404,    404,    404,    200),
    # The worklist as CSV (agencies' without amounts), for agents as the list itself.
    ("partners.clients_csv", "GET"):
        (LOGIN,  404,    404,    404,    200,    200,    200,    200,    404,    404,    404,    404,    200),
    ("partners.enter", "POST"):
        (LOGIN,  404,    404,    404,    HOME,   404,    HOME,   404,    404,    404,    404,    404,   HOME),
    # The back office: staff only; 403 while viewing as a customer; billing staff
    # may look but neither onboard nor view as a customer. Onboarding stops at its
    # confirmation page (200) without `confirmed`, so the matrix creates nothing.
    ("staff.organisations", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff.onboard", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff.onboard", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff.organisation", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff.view_as", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    PORTAL, 403,    403,    403,    404),
    ("staff.contract", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    # Partner companies: every back-office role looks; support staff (and staff
    # administrators) create them and assign or withdraw clients. The POSTs stop before they
    # change the shared world: a partner name that exists (422), A already the sales agent's
    # client (422), a withdrawal without `confirmed` (its confirmation page, 200).
    ("staff.partners", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff.new_partner", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff.new_partner", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    422,    403,    403,    403,    404),
    ("staff.partner", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff.assign_client", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    422,    403,    403,    403,    404),
    # Issue 14: inviting a partner's agent or administrator; the address sent is in use (422).
    ("staff.invite_partner_agent", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    422,    403,    403,    403,    404),
    ("staff.withdraw_client", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    # the provider's staff record usage (support and billing alike).
    ("staff.record_usage", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    S_CON,  403,    S_CON,  S_CON,    404),
    # Requests (R-20..R-32): whoever sees the contract sees quotes and requests (agencies
    # without amounts); administrators and agents confirm and withdraw; members and staff
    # viewing as the customer may not. "renew" is asked of A's agency contract.
    ("contracts.change", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    200,    404,    404,    200,    404,    404,    200),
    ("contracts.end", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    200,    404,    404,    200,    404,    404,    200),
    ("contracts.renew", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    200,    404,    404,    200,    404,    404,    200),
    ("contracts.confirm", "POST"):
        (LOGIN,  403,    REQUEST, 404,   REQUEST, 404,   REQUEST, 404,   404,    403,    404,    404, REQUEST),
    ("contracts.request_detail", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    200,    404,    404,    200,    404,    404,    200),
    ("contracts.request_pdf", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    200,    404,    404,    200,    404,    404,    200),
    # The withdrawal's own document, of a request withdrawn for the purpose.
    ("contracts.withdrawal_pdf", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    200,    404,    404,    200,    404,    404,    200),
    # Withdrawing asks first (a GET page), then the POST with confirmed=yes withdraws.
    ("contracts.withdraw_confirm", "GET"):
        (LOGIN,  403,    200,    404,    200,    404,    200,    404,    404,    403,    404,    404,    200),
    ("contracts.withdraw", "POST"):
        (LOGIN,  403,    CONTRACT, 404,  CONTRACT, 404,  CONTRACT, 404,  404,    403,    404,    404, CONTRACT),
    # API tokens are credentials: never while viewing as a customer; each user
    # revokes only its own (the token here is A's administrator's). A new token is shown on
    # the page its creation redirects to; revoking stops at its confirmation page (200).
    ("account.tokens", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    200,    403,    200,    200,    200),
    ("account.tokens", "POST"):
        (LOGIN,  TOKENS, TOKENS, TOKENS, TOKENS, TOKENS, TOKENS, TOKENS, TOKENS, 403,    TOKENS, TOKENS, TOKENS),
    ("account.revoke_token", "POST"):
        (LOGIN,  404,    200,    404,    404,    404,    404,    404,    404,    403,    404,    404,    404),
    # Invoices: administrators, sales agents and staff viewing as the customer see
    # them; members only when their administrator allows it (not in this world); agencies
    # never. Only the customer's administrators decide what members see.
    ("invoices.index", "GET"):
        (LOGIN,  403,    200,    200,    200,    200,    403,    403,    404,    200,    404,    404,    200),
    ("invoices.access", "POST"):
        (LOGIN,  403,    INVOICES, INVOICES, 403,  403,    403,    403,    404,    403,    404,    404,    403),
    ("invoices.detail", "GET"):
        (LOGIN,  403,    200,    404,    200,    404,    403,    403,    404,    200,    404,    404,    200),
    ("invoices.pdf", "GET"):
        (LOGIN,  403,    200,    404,    200,    404,    403,    403,    404,    200,    404,    404,    200),
    # administrators and sales agents pay (503 here: no Stripe in this world);
    # staff viewing as the customer may not.
    ("invoices.pay", "POST"):
        (LOGIN,  403,    503,    404,    503,    404,    403,    403,    404,    403,    404,    404,    503),
    ("invoices.paid", "GET"):
        (LOGIN,  403,    200,    404,    200,    404,    403,    403,    404,    200,    404,    404,    200),
    # The back office's documents (R-40..R-43): every staff role searches and reads; billing
    # staff record payments, issue credit notes and send reminders. A payment and a
    # credit note stop at their confirmation page (200) without `confirmed`.
    ("billing.search", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("billing.export", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("billing.overdue", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("billing.detail", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("billing.pdf", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("billing.record_payment", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    200,    403,    404),
    ("billing.issue_credit_note", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    200,    403,    404),
    ("billing.send_reminder", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    OVERDUE,    403,    404),
    # The issuer and its bank account: every staff role reads them; only staff
    # administrators (none in this world) change them.
    ("billing.provider", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("billing.provider", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    403,    403,    404),
    # Stripe's webhook trusts only its signature: without one, 400 for everyone.
    ("stripe_webhook.stripe_webhook", "POST"):
        (400,    400,    400,    400,    400,    400,    400,    400,    400,    400,    400,    400,    400),
    # The e-mail outbox: every back-office role sees it; support and staff
    # administrators put given-up e-mails back in the queue.
    ("staff.mail_queue", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff.retry_mail", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    MAIL,   403,    403,    403,    404),
    # links from e-mails are for signed-out browsers; whoever is signed in is sent home.
    # The new password sent differs from its confirmation (422), so the world stays as it was.
    ("auth.forgot_password", "GET"):
        (200,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    ("auth.forgot_password", "POST"):
        (LOGIN,  HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    ("auth.reset_password", "GET"):
        (200,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    ("auth.reset_password", "POST"):
        (422,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    ("auth.accept_invitation", "GET"):
        (200,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    ("auth.accept_invitation", "POST"):
        (422,    HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME,   HOME),
    # administrators manage their organisation's users; members and agents may
    # not; staff viewing as the customer see the list but change no login. The user
    # acted on is a fresh invitee of A; removing stops at its confirmation page (200).
    ("users.index", "GET"):
        (LOGIN,  403,    200,    200,    403,    403,    403,    403,    404,    200,    404,    404,    403),
    ("users.invite", "GET"):
        (LOGIN,  403,    200,    200,    403,    403,    403,    403,    404,    403,    404,    404,    403),
    ("users.invite", "POST"):
        (LOGIN,  403,    USERS,  USERS,  403,    403,    403,    403,    404,    403,    404,    404,    403),
    ("users.resend_invitation", "POST"):
        (LOGIN,  403,    USERS,  404,    403,    404,    403,    404,    404,    403,    404,    404,    403),
    ("users.remove", "POST"):
        (LOGIN,  403,    200,    404,    403,    404,    403,    404,    404,    403,    404,    404,    403),
    # every user reports misuse of their own account, and is signed out everywhere;
    # staff viewing as the customer are not the customer's user.
    ("account.misuse", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    200,    403,    200,    200,    200),
    ("account.misuse", "POST"):
        (LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  403,    LOGIN,  LOGIN,  LOGIN),
    # Every back-office role sees misuse reports; support staff record what was done (the
    # form stops at its confirmation page, 200).
    ("security.misuse_reports", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("security.mark_handled", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    # everyone inside the portal reads the registered information and its history;
    # administrators and agents of both kinds change it, members and staff viewing as
    # the customer may not. The form sent is invalid: 422 for those who may.
    ("organisation.information", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    404,    200,    404,    404,    200),
    ("organisation.information", "POST"):
        (LOGIN,  403,    422,    422,    422,    422,    422,    422,    404,    403,    404,    404,    422),
    ("organisation.history", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    404,    200,    404,    404,    200),
    # notices for administrators, sales agents and staff viewing; members and agencies
    # (notices carry fees, R-71) never. A's notice: B's people do not find it.
    ("organisation.notices", "GET"):
        (LOGIN,  403,    200,    200,    200,    200,    403,    403,    404,    200,    404,    404,    200),
    ("organisation.notice", "GET"):
        (LOGIN,  403,    200,    404,    200,    404,    403,    404,    404,    200,    404,    404,    200),
    # staff administrators publish terms (none in this world): support and billing
    # staff get 403, as while viewing as a customer.
    ("staff_terms.index", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    403,    403,    404),
    ("staff_terms.publish", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    403,    403,    404),
    ("staff_terms.publish", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    403,    403,    404),
    # Everyone inside the portal reads the terms, the consent history and its CSV.
    ("terms.index", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    404,    200,    404,    404,    200),
    ("terms.consents_csv", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    404,    200,    404,    404,    200),
    ("terms.version", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    404,    200,    404,    404,    200),
    # Only the customer's administrators consent: members, agents and staff viewing as
    # the customer get 403. B uses the same service, so B's administrator consents too.
    ("terms.consent", "POST"):
        (LOGIN,  403,    Redirect("/terms/*"), Redirect("/terms/*"),
                                 403,    403,    403,    403,    404,    403,    404,    404,    403),
    # Issue 10: System information: everyone inside the portal; an incident that
    # touched only A is found by A's people only. Only the customer's own administrators get
    # new feed addresses (an agent or viewing staff would end everyone's subscriptions).
    ("sla.system", "GET"):
        (LOGIN,  200,    200,    200,    200,    200,    200,    200,    404,    200,    404,    404,    200),
    ("sla.incident", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    200,    404,    404,    200,    404,    404,    200),
    ("sla.rotate_feeds", "GET"):
        (LOGIN,  403,    200,    200,    403,    403,    403,    403,    404,    403,    404,    404,    403),
    ("sla.rotate_feeds", "POST"):
        (LOGIN,  403,    SYSTEM, SYSTEM, 403,    403,    403,    403,    404,    403,    404,    404,    403),
    # The feeds' secret address is their key: anyone who has it reads them, signed in or not.
    ("sla.incident_feed", "GET"):
        (200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200),
    ("sla.maintenance_feed", "GET"):
        (200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200),
    # Claims: amounts, so never agencies; members and staff viewing read them;
    # administrators and sales agents file (the claim sent is for an open incident: 422).
    ("sla.claims", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    403,    403,    404,    200,    404,    404,    200),
    ("sla.new_claim", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    403,    403,    404,    200,    404,    404,    200),
    ("sla.file_claim", "POST"):
        (LOGIN,  403,    422,    404,    422,    404,    403,    403,    404,    403,    404,    404,    422),
    ("sla.claim", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    403,    403,    404,    200,    404,    404,    200),
    ("sla.claim_pdf", "GET"):
        (LOGIN,  200,    200,    404,    200,    404,    403,    403,    404,    200,    404,    404,    200),
    # The back office of the SLA: every staff role reads; support staff and staff
    # administrators record incidents and maintenance and claims received on paper (R-50,
    # R-52); billing staff and staff administrators review claims. The forms sent stop
    # at their confirmation page (200), or are refused (422), so nothing changes.
    ("staff_sla.incidents", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff_sla.new_incident", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff_sla.new_incident", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff_sla.incident", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff_sla.post_update", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff_sla.correct_incident", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff_sla.correct_incident", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff_sla.maintenance", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff_sla.new_maintenance", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff_sla.new_maintenance", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff_sla.maintenance_detail", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff_sla.end_maintenance", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    422,    403,    403,    403,    404),
    ("staff_sla.claims", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff_sla.claim", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff_sla.review_claim", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    403,    403,    200,    403,    404),
    ("staff_sla.claim_pdf", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    200,    200,    404),
    ("staff_sla.paper_claim", "GET"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    200,    403,    403,    403,    404),
    ("staff_sla.paper_claim", "POST"):
        (LOGIN,  404,    404,    404,    404,    404,    404,    404,    422,    403,    403,    403,    404),
}
# fmt: on

# Later features keep their rows in parts of their own (tests/web/matrix_*.py).
MATRIX_PARTS = matrix_parts()
for _part in MATRIX_PARTS:
    assert not MATRIX.keys() & _part.MATRIX.keys(), _part.__name__
    MATRIX.update(_part.MATRIX)

MISSING_ID = 987_654


def _request(client: FlaskClient, method: str, url: str, data: dict[str, object] | None):
    return client.open(url, method=method, data=data if method == "POST" else None)


def _check(
    response, expected: Expected, world: World, context: str, contract_id: int | None = None
) -> None:
    if isinstance(expected, Redirect):
        assert response.status_code == 302, f"{context}: {response.status_code}, expected 302"
        path = urlsplit(response.headers["Location"]).path
        target = expected.path.format(org_a=world.org_a, contract=contract_id)
        assert fnmatch(path, target), f"{context}: to {path}, expected {target}"
    else:
        assert response.status_code == expected, (
            f"{context}: {response.status_code}, expected {expected}"
        )


def test_every_route_is_in_the_matrix(shared):
    """A route without a matrix entry, or an entry for a route that is gone, fails here."""
    routes = app_routes(shared.app)
    assert routes - MATRIX.keys() == set(), "routes missing from MATRIX"
    assert MATRIX.keys() - routes == set(), "MATRIX names routes that no longer exist"
    for key, row in MATRIX.items():
        assert len(row) == len(ACTOR_KINDS), f"{key}: one expectation per actor kind"


# The cases run in classes: pytest-xdist (`--dist loadscope`) gives each class to one worker
# whole, so a worker builds the module's shared world once for a class, never per case.
CUSTOMERS = ACTOR_KINDS[:6]  # anonymous, member, administrators, sales agents
PARTNERS_AND_STAFF = ACTOR_KINDS[6:]


class TestCustomersAndSalesAgents:
    @pytest.mark.parametrize("actor", CUSTOMERS)
    @pytest.mark.parametrize(("endpoint", "method"), list(MATRIX))
    def test_permission_matrix(self, shared, fixed_clock, endpoint, method, actor):
        _permission_case(shared, endpoint, method, actor)


class TestAgenciesAndStaff:
    @pytest.mark.parametrize("actor", PARTNERS_AND_STAFF)
    @pytest.mark.parametrize(("endpoint", "method"), list(MATRIX))
    def test_permission_matrix(self, shared, fixed_clock, endpoint, method, actor):
        _permission_case(shared, endpoint, method, actor)


# A signed-in actor's session is opened once per module and app and reused by each case on a
# fresh client (signing in is a third of a case's time), except for the routes that change the
# session itself: those get a session of their own. A reused session that some route ended
# would make the next cases fail, never pass.
_SESSIONS: dict[tuple[int, str], str] = {}
OWN_SESSION = frozenset(
    {
        "auth.login",
        "auth.logout",
        "main.leave",
        "main.language",
        "staff.view_as",
        "partners.enter",
        "account.password",
        "account.misuse",  # a misuse report ends every session of the account
    }
)


def _client_as(app: Flask, world: World, actor: str, endpoint: str) -> FlaskClient:
    client = app.test_client()
    if actor == "anonymous":
        return client
    if endpoint in OWN_SESSION:
        # Entering a client (agents) or a view (staff) ends the user's other entries: the
        # session kept for the next cases is opened again after this one.
        _SESSIONS.pop((id(app), actor), None)
        become(app, client, world, actor)
        return client
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = _SESSIONS.get((id(app), actor))
    if cookie is None:
        become(app, client, world, actor)
        _SESSIONS[(id(app), actor)] = client.get_cookie(name).value
    else:
        client.set_cookie(name, cookie)
    return client


def _permission_case(shared, endpoint: str, method: str, actor: str) -> None:
    """R-70..R-73: what each actor gets from each route, with org A's objects."""
    app, world = shared.app, shared.world
    expected = MATRIX[(endpoint, method)][ACTOR_KINDS.index(actor)]
    client = _client_as(app, world, actor, endpoint)
    ids = route_ids(app, world, endpoint)
    url = url_of(app, endpoint, **ids)
    data = post_data(endpoint, world, actor) if method == "POST" else None
    try:
        response = _request(client, method, url, data)
    finally:
        clear_pending_requests(app, ids["contract_id"])  # leave the shared world as it was
    _check(response, expected, world, f"{actor} {method} {url}", ids["contract_id"])


# --- ids of another organisation reveal nothing ------------------------------------------

# Routes that take an id, with what each actor gets for org B's object (contract_b, org_b)
# when it may see it. Everyone else gets exactly what a nonexistent id gives: 404
# (anonymous is sent to sign in first; staff viewing as a customer get 403 from every
# back-office route whatever the id, R-72).
# Agents of B's partners are already inside B, so entering B again is refused with a
# message (HOME).
B_PEOPLE = ("other_admin", "other_sales_agent", "other_agency_agent")
SIGNED_IN = tuple(kind for kind in ACTOR_KINDS if kind != "anonymous")
CLAIMS = ("sla.claims", "sla.new_claim", "sla.file_claim", "sla.claim", "sla.claim_pdf")
FEEDS = ("sla.incident_feed", "sla.maintenance_feed")


def _b_claims(expected: Expected) -> dict[str, Expected]:
    return {"other_admin": expected, "other_sales_agent": expected, "other_agency_agent": 403}


MAY_SEE_OTHER: dict[tuple[str, str], dict[str, Expected]] = {
    ("contracts.detail", "GET"): {
        "other_admin": 200,
        "other_sales_agent": 200,
        "other_agency_agent": 200,
    },
    ("partners.enter", "POST"): {"other_sales_agent": HOME, "other_agency_agent": HOME},
    ("staff.organisation", "GET"): {"support": 200, "billing": 200},
    ("staff.view_as", "POST"): {"support": PORTAL, "billing": 403},
    ("staff.contract", "GET"): {"support": 200, "billing": 200},
    # Partner companies are nobody's organisation: B's partner (and B as its client) is there
    # for staff as A's is; the POSTs stop as in MATRIX.
    ("staff.partner", "GET"): {"support": 200, "billing": 200},
    ("staff.assign_client", "POST"): {"support": 422, "billing": 403},
    ("staff.invite_partner_agent", "POST"): {"support": 422, "billing": 403},
    ("staff.withdraw_client", "POST"): {"support": 200, "billing": 403},
    ("staff.record_usage", "POST"): {"support": S_CON, "billing": S_CON},
    ("contracts.change", "GET"): dict.fromkeys(B_PEOPLE, 200),
    ("contracts.end", "GET"): dict.fromkeys(B_PEOPLE, 200),
    # B's contract is direct: it has no renewal application, for B's people either.
    ("contracts.renew", "GET"): {},
    ("contracts.confirm", "POST"): dict.fromkeys(B_PEOPLE, REQUEST),
    ("contracts.request_detail", "GET"): dict.fromkeys(B_PEOPLE, 200),
    ("contracts.request_pdf", "GET"): dict.fromkeys(B_PEOPLE, 200),
    ("contracts.withdrawal_pdf", "GET"): dict.fromkeys(B_PEOPLE, 200),
    ("contracts.withdraw_confirm", "GET"): dict.fromkeys(B_PEOPLE, 200),
    ("contracts.withdraw", "POST"): dict.fromkeys(B_PEOPLE, CONTRACT),
    # The token here is B's administrator's own.
    ("account.revoke_token", "POST"): {"other_admin": 200, "support_viewing": 403},
    ("invoices.detail", "GET"): {"other_admin": 200, "other_sales_agent": 200},
    ("invoices.pdf", "GET"): {"other_admin": 200, "other_sales_agent": 200},
    ("invoices.pay", "POST"): {"other_admin": 503, "other_sales_agent": 503},
    ("invoices.paid", "GET"): {"other_admin": 200, "other_sales_agent": 200},
    # Staff see every organisation's documents: "another organisation" is not a thing here.
    ("billing.detail", "GET"): {"support": 200, "billing": 200},
    ("billing.pdf", "GET"): {"support": 200, "billing": 200},
    ("billing.record_payment", "POST"): {"support": 403, "billing": 200},
    ("billing.issue_credit_note", "POST"): {"support": 403, "billing": 200},
    ("billing.send_reminder", "POST"): {"support": 403, "billing": OVERDUE},
    # A link is not an organisation's: B's user's link works for a signed-out browser too.
    ("auth.reset_password", "GET"): {**dict.fromkeys(SIGNED_IN, HOME), "anonymous": 200},
    ("auth.reset_password", "POST"): {**dict.fromkeys(SIGNED_IN, HOME), "anonymous": 422},
    ("auth.accept_invitation", "GET"): {**dict.fromkeys(SIGNED_IN, HOME), "anonymous": 200},
    ("auth.accept_invitation", "POST"): {**dict.fromkeys(SIGNED_IN, HOME), "anonymous": 422},
    # B's invitee: B's administrator acts; B's agents find the user but may not act.
    ("users.resend_invitation", "POST"): {
        "other_admin": USERS,
        "other_sales_agent": 403,
        "other_agency_agent": 403,
    },
    ("users.remove", "POST"): {
        "other_admin": 200,
        "other_sales_agent": 403,
        "other_agency_agent": 403,
    },
    # Staff handle every organisation's reports: "another organisation" is not a thing here.
    ("security.mark_handled", "POST"): {"support": 200, "billing": 403},
    # B's notice: B's people find it, but B's agency may not read notices.
    ("organisation.notice", "GET"): {
        "other_admin": 200,
        "other_sales_agent": 200,
        "other_agency_agent": 403,
    },
    # A version belongs to a service, not to an organisation: "another organisation's" version
    # is one of a service the organisation has no live contract for, and answers 404. B's
    # contract is of the same service as A's, so the version asked for concerns B as much as A
    # and everyone inside either portal reads it; only administrators consent.
    ("terms.version", "GET"): dict.fromkeys(
        (
            "member",
            "admin",
            "other_admin",
            "sales_agent",
            "other_sales_agent",
            "agency_agent",
            "other_agency_agent",
            "support_viewing",
        ),
        200,
    ),
    ("terms.consent", "POST"): {
        "member": 403,
        "admin": Redirect("/terms/*"),
        "other_admin": Redirect("/terms/*"),
        "sales_agent": 403,
        "other_sales_agent": 403,
        "agency_agent": 403,
        "other_agency_agent": 403,
        "support_viewing": 403,
        "partner_admin": 403,
    },
    # Issue 10. An incident that touched only B: B's people see it (agencies too: no amounts).
    ("sla.incident", "GET"): dict.fromkeys(B_PEOPLE, 200),
    # B's feed address (B's number and B's secret) works for whoever holds it.
    ("sla.incident_feed", "GET"): dict.fromkeys(ACTOR_KINDS, 200),
    ("sla.maintenance_feed", "GET"): dict.fromkeys(ACTOR_KINDS, 200),
    # B's claims: B's administrator and sales agent; B's agency never sees an amount (403).
    ("sla.claims", "GET"): _b_claims(200),
    ("sla.new_claim", "GET"): _b_claims(200),
    ("sla.file_claim", "POST"): _b_claims(422),
    ("sla.claim", "GET"): _b_claims(200),
    ("sla.claim_pdf", "GET"): _b_claims(200),
    # Staff see every organisation's incidents and claims: "another organisation" is not a
    # thing here.
    ("staff_sla.incident", "GET"): {"support": 200, "billing": 200},
    ("staff_sla.post_update", "POST"): {"support": 200, "billing": 403},
    ("staff_sla.correct_incident", "GET"): {"support": 200, "billing": 403},
    ("staff_sla.correct_incident", "POST"): {"support": 200, "billing": 403},
    ("staff_sla.maintenance_detail", "GET"): {"support": 200, "billing": 200},
    ("staff_sla.end_maintenance", "POST"): {"support": 422, "billing": 403},
    ("staff_sla.claim", "GET"): {"support": 200, "billing": 200},
    ("staff_sla.review_claim", "POST"): {"support": 403, "billing": 200},
    ("staff_sla.claim_pdf", "GET"): {"support": 200, "billing": 200},
    ("staff_sla.paper_claim", "GET"): {"support": 200, "billing": 403},
    ("staff_sla.paper_claim", "POST"): {"support": 422, "billing": 403},
}


# Production staff see the back office as billing staff do, but neither record payments,
# credit, remind nor review claims: billing's answer, with 403 for billing's own actions.
_BILLING_ONLY = (
    "billing.record_payment",
    "billing.issue_credit_note",
    "billing.send_reminder",
    "staff_sla.review_claim",
)
for (_endpoint, _method), _row in MAY_SEE_OTHER.items():
    if "billing" in _row and "production" not in _row:
        _row["production"] = 403 if _endpoint in _BILLING_ONLY else _row["billing"]


for _part in MATRIX_PARTS:
    assert not MAY_SEE_OTHER.keys() & _part.MAY_SEE_OTHER.keys(), _part.__name__
    MAY_SEE_OTHER.update(_part.MAY_SEE_OTHER)


def _partner_admin_as_sales_agent(table: dict[tuple[str, str], dict[str, Expected]]) -> None:
    """The partner administrator is an agent of A's sales agent company inside A's portal: for
    B's objects it answers as that company's agent does, unless a row says otherwise."""
    for row in table.values():
        if "sales_agent" in row and "partner_admin" not in row:
            row["partner_admin"] = row["sales_agent"]


_partner_admin_as_sales_agent(MAY_SEE_OTHER)


def _refused(endpoint: str, actor: str) -> Expected:
    # an unknown link answers 404 to a signed-out browser; a signed-in one goes home.
    if endpoint in ("auth.reset_password", "auth.accept_invitation", "inet_public.verify"):
        return 404 if actor == "anonymous" else HOME
    if endpoint in FEEDS:
        return 404  # a wrong secret address is no address, signed in or not
    if actor == "anonymous":
        return LOGIN
    if actor == "support_viewing" and (
        endpoint.startswith(
            ("staff.", "billing.", "security.", "staff_sla.", "staff_inet.", "production.")
        )
        or endpoint == "account.revoke_token"
    ):
        return 403
    # Members (unless allowed) and agencies may see no invoice at all: 403 whatever the id.
    if endpoint.startswith("invoices.") and actor in (
        "member",
        "agency_agent",
        "other_agency_agent",
    ):
        return 403
    # Agencies may see no claim at all (amounts, R-71): 403 whatever the id.
    if endpoint in CLAIMS and actor in ("agency_agent", "other_agency_agent"):
        return 403
    return 404


def test_every_route_with_an_id_is_in_the_other_organisation_table(shared):
    """A new route that takes an id fails here until its row of MAY_SEE_OTHER is written."""
    with_ids = {
        (rule.endpoint, method)
        for rule in shared.app.url_map.iter_rules()
        if rule.arguments - {"filename"}  # static files have a name, not an id
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert with_ids == MAY_SEE_OTHER.keys()


class TestOtherOrganisationsIds:
    @pytest.mark.parametrize("actor", ACTOR_KINDS)
    @pytest.mark.parametrize(("endpoint", "method"), list(MAY_SEE_OTHER))
    def test_other_organisations_ids_answer_404(self, shared, fixed_clock, endpoint, method, actor):
        _other_case(shared, endpoint, method, actor, "other_organisation")


# A nonexistent id answers what `_refused` says, which depends on the kind of actor only
# through these: one actor of each kind (org B's people and billing staff answer as their
# counterparts do, and are in TestOtherOrganisationsIds with a real id).
NONEXISTENT_ACTORS = (
    "anonymous",
    "member",
    "admin",
    "sales_agent",
    "agency_agent",
    "support",
    "support_viewing",
    "production",
)


class TestNonexistentIds:
    @pytest.mark.parametrize("actor", NONEXISTENT_ACTORS)
    @pytest.mark.parametrize(("endpoint", "method"), list(MAY_SEE_OTHER))
    def test_other_organisations_ids_answer_404(self, shared, fixed_clock, endpoint, method, actor):
        _other_case(shared, endpoint, method, actor, "nonexistent")


def _other_case(shared, endpoint: str, method: str, actor: str, target: str) -> None:
    """R-70/R-71: org B's contract or organisation id answers as if it did not exist."""
    app, world = shared.app, shared.world
    if target == "other_organisation":
        ids = route_ids(app, world, endpoint, org="b")
        expected = MAY_SEE_OTHER[(endpoint, method)].get(actor, _refused(endpoint, actor))
    else:
        ids = dict.fromkeys(
            (
                "contract_id",
                "organisation_id",
                "request_id",
                "token_id",
                "invoice_id",
                "email_id",
                "version_id",
                "user_id",
                "report_id",
                "incident_id",
                "claim_id",
                "maintenance_id",
                "holder_id",
                "order_id",
                "partner_id",
                "application_id",
            ),
            MISSING_ID,
        )
        ids["token"] = "no-such-link"
        ids["feed_token"] = "no-such-feed"
        expected = _refused(endpoint, actor)
    client = _client_as(app, world, actor, endpoint)
    url = url_of(app, endpoint, **ids)
    data = post_data(endpoint, world, actor, org="b") if method == "POST" else None
    try:
        response = _request(client, method, url, data)
    finally:
        clear_pending_requests(app, world.contract_b)
    _check(response, expected, world, f"{actor} {method} {url}", ids["contract_id"])


def _entry_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(AccountEntry))


def test_matrix_actors_are_who_they_claim(shared, fixed_clock):
    """The matrix is only as good as its actors: check each is inside the portal it should be."""
    app, world = shared.app, shared.world
    inside = {
        "sales_agent": world.org_a,
        "agency_agent": world.org_a,
        "partner_admin": world.org_a,
        "other_sales_agent": world.org_b,
        "other_agency_agent": world.org_b,
        "support_viewing": world.org_a,
    }
    for actor in ACTOR_KINDS:
        client = app.test_client()
        before = _entry_count(app)
        become(app, client, world, actor)
        assert _entry_count(app) == before + (1 if actor in inside else 0), actor
        page = client.get("/contracts")
        if actor in inside:
            assert 'data-testid="entry-banner"' in page.get_data(as_text=True), actor
        with app.app_context():
            entry = db.session.scalar(db.select(AccountEntry).order_by(AccountEntry.id.desc()))
            if actor in inside:
                assert entry.organisation_id == inside[actor], actor
                assert entry.ended_at is None, actor


# --- the JSON API (/api/v1) ---------------------------------------------------------------
# Columns as above, but for the API a column is that actor's user calling with its own
# bearer token, never a signed-in cookie: anonymous sends no token (401), and the "viewing"
# column calls with the support staff's own token, since a token is never inside a
# customer's portal. Staff see any contract, as in the back office, but request nothing
# only staff record usage. The rows join MATRIX and MAY_SEE_OTHER after the
# page tests above took their parameters: the completeness tests see every route, and the
# API rows run below, with tokens and JSON bodies.
from tests.web.routes import (  # noqa: E402
    api_body,
    api_claim_incident,
    bearer,
    fresh_card_order,
    inet_world,
    make_api_tokens,
    pending_request,
    sla_claim,
)

# fmt: off
API_MATRIX: dict[tuple[str, str], tuple[Expected, ...]] = {
    #          anon    member  admin   o_adm   sales   o_sal   agncy   o_agc   suppt   viewg   billg   prodn   p_adm
    ("api.openapi", "GET"):
        (200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200),
    # Everyone lists what they may see (B's administrator and agents: B's contract).
    ("api.contracts", "GET"):
        (401,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200),
    ("api.contract", "GET"):
        (401,    200,    200,    404,    200,    404,    200,    404,    200,    200,    200,    200,    200),
    # Anyone who may see the contract may ask for a quote; it changes nothing.
    ("api.quote", "POST"):
        (401,    200,    200,    404,    200,    404,    200,    404,    200,    200,    200,    200,    200),
    ("api.requests", "GET"):
        (401,    200,    200,    404,    200,    404,    200,    404,    200,    200,    200,    200,    200),
    # administrators and agents request; members and staff may not.
    ("api.submit", "POST"):
        (401,    403,    201,    404,    201,    404,    201,    404,    403,    403,    403,    403,    201),
    ("api.request_detail", "GET"):
        (401,    200,    200,    404,    200,    404,    200,    404,    200,    200,    200,    200,    200),
    ("api.withdraw", "POST"):
        (401,    403,    200,    404,    200,    404,    200,    404,    403,    403,    403,    403,    200),
    ("api.usage", "POST"):
        (401,    403,    403,    404,    403,    404,    403,    404,    201,    201,    201,    201,    403),
    # Issue 10 (R-50..R-53). Incidents carry no amount: everyone lists those that touched
    # what they may see (staff: every incident).
    ("api.incidents", "GET"):
        (401,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200,    200),
    # Claims: whoever may see the contract reads them, as the pages let members; agencies
    # too, without any amount, as every other answer of the API. Administrators and
    # sales agents file; members, agencies and staff may not (R-52 reading, R-72).
    ("api.claims", "GET"):
        (401,    200,    200,    404,    200,    404,    200,    404,    200,    200,    200,    200,    200),
    ("api.file_claim", "POST"):
        (401,    403,    201,    404,    201,    404,    403,    404,    403,    403,    403,    403,    201),
    ("api.claim", "GET"):
        (401,    200,    200,    404,    200,    404,    200,    404,    200,    200,    200,    200,    200),
    # I-NET SERVICE: holders for the customer's own administrators (B's administrator
    # lists B's); orders for administrators (their organisation's), agents (those they placed:
    # none of A's) and production staff (every one); only administrators cancel, inside the
    # window (R-82; each actor cancels a fresh confirmed order of A's). Those who may see no
    # holder or order get 403 for the list and 404 for any id (ids reveal nothing).
    ("api.card_holders", "GET"):
        (401,    403,    200,    200,    403,    403,    403,    403,    403,    403,    403,    403,    403),
    ("api.card_holder", "GET"):
        (401,    404,    200,    404,    404,    404,    404,    404,    404,    404,    404,    404,    404),
    ("api.card_orders", "GET"):
        (401,    403,    200,    200,    200,    200,    200,    200,    403,    403,    403,    200,    200),
    ("api.card_order", "GET"):
        (401,    404,    200,    404,    404,    404,    404,    404,    404,    404,    404,    200,    404),
    ("api.cancel_card_order", "POST"):
        (401,    404,    200,    404,    404,    404,    404,    404,    404,    404,    404,    403,    404),
}
# fmt: on


def _seeing_b(people: Expected, staff: Expected) -> dict[str, Expected]:
    """For org B's contract (or a request of it): what B's administrator and agents get, and
    what staff get."""
    return {
        **dict.fromkeys(("other_admin", "other_sales_agent", "other_agency_agent"), people),
        **dict.fromkeys(("support", "support_viewing", "billing", "production"), staff),
    }


API_MAY_SEE_OTHER: dict[tuple[str, str], dict[str, Expected]] = {
    ("api.contract", "GET"): _seeing_b(200, 200),
    ("api.quote", "POST"): _seeing_b(200, 200),
    ("api.requests", "GET"): _seeing_b(200, 200),
    ("api.submit", "POST"): _seeing_b(201, 403),
    ("api.request_detail", "GET"): _seeing_b(200, 200),
    ("api.withdraw", "POST"): _seeing_b(200, 403),
    ("api.usage", "POST"): _seeing_b(403, 201),
    ("api.claims", "GET"): _seeing_b(200, 200),
    ("api.file_claim", "POST"): {**_seeing_b(201, 403), "other_agency_agent": 403},
    ("api.claim", "GET"): _seeing_b(200, 200),
    ("api.card_holder", "GET"): {"other_admin": 200},
    ("api.card_order", "GET"): {"other_admin": 200, "production": 200},
    ("api.cancel_card_order", "POST"): {"other_admin": 200, "production": 403},
}
_partner_admin_as_sales_agent(API_MAY_SEE_OTHER)
MATRIX.update(API_MATRIX)
MAY_SEE_OTHER.update(API_MAY_SEE_OTHER)


@pytest.fixture(scope="module")
def api_tokens(shared) -> dict[str, str]:
    return make_api_tokens(shared.app, shared.world)


def _call_api(shared, tokens, endpoint: str, method: str, actor: str, *, org: str, ids=None):
    """One API call as `actor`, on org A's or B's contract (or `ids`), from a clean state:
    nothing pending, a fresh pending request for the routes that take a request id, the
    organisation's claim for those that take a claim id, and an incident of the actor's own
    to claim for."""
    app, world = shared.app, shared.world
    contract_id = world.contract_a if org == "a" else world.contract_b
    admin = world.ids["admin" if org == "a" else "other_admin"]
    clear_pending_requests(app, contract_id)
    if ids is None:
        ids = {"contract_id": contract_id}
        arguments = next(iter(app.url_map.iter_rules(endpoint))).arguments
        if "request_id" in arguments:
            ids["request_id"] = pending_request(app, contract_id, admin)
        if "claim_id" in arguments:
            ids["claim_id"] = sla_claim(app, world, org)
        if "holder_id" in arguments:
            ids["holder_id"] = inet_world(app, world, org)["holder"]
        if endpoint == "api.cancel_card_order":
            ids["order_id"] = fresh_card_order(app, world, org)
        elif "order_id" in arguments:
            ids["order_id"] = inet_world(app, world, org)["order"]
    if endpoint == "api.file_claim":
        api_claim_incident(app, world, actor)
    url = url_of(app, endpoint, **ids)
    body = api_body(endpoint, world, actor, org=org) if method == "POST" else None
    try:
        response = app.test_client().open(
            url, method=method, json=body, headers=bearer(tokens, actor)
        )
    finally:
        clear_pending_requests(app, contract_id)  # leave the shared world as it was
    # Whatever the answer, it is JSON and never cached.
    assert response.is_json, f"{actor} {method} {url}: {response.content_type}"
    assert response.headers["Cache-Control"] == "no-store"
    return response, f"{actor} {method} {url}"


class TestApi:
    @pytest.mark.parametrize("actor", ACTOR_KINDS)
    @pytest.mark.parametrize(("endpoint", "method"), list(API_MATRIX))
    def test_api_permission_matrix(self, shared, fixed_clock, api_tokens, endpoint, method, actor):
        _api_case(shared, api_tokens, endpoint, method, actor)

    @pytest.mark.parametrize("target", ["other_organisation", "nonexistent"])
    @pytest.mark.parametrize("actor", ACTOR_KINDS)
    @pytest.mark.parametrize(("endpoint", "method"), list(API_MAY_SEE_OTHER))
    def test_api_other_organisations_ids_answer_404(
        self, shared, fixed_clock, api_tokens, endpoint, method, actor, target
    ):
        _api_other_case(shared, api_tokens, endpoint, method, actor, target)


def _api_case(shared, api_tokens, endpoint: str, method: str, actor: str) -> None:
    """R-70..R-72 through the API: what each actor's own token gets, with org A's objects."""
    expected = API_MATRIX[(endpoint, method)][ACTOR_KINDS.index(actor)]
    response, context = _call_api(shared, api_tokens, endpoint, method, actor, org="a")
    _check(response, expected, shared.world, context)


def _api_other_case(
    shared, api_tokens, endpoint: str, method: str, actor: str, target: str
) -> None:
    """R-70/R-71: through the API too, org B's ids answer as if they did not exist (404);
    without a token nothing is found out at all (401)."""
    refused = 401 if actor == "anonymous" else 404
    if target == "other_organisation":
        ids = None
        expected = API_MAY_SEE_OTHER[(endpoint, method)].get(actor, refused)
    else:
        ids = dict.fromkeys(
            ("contract_id", "request_id", "claim_id", "holder_id", "order_id"), MISSING_ID
        )
        expected = refused
    response, context = _call_api(shared, api_tokens, endpoint, method, actor, org="b", ids=ids)
    _check(response, expected, shared.world, context)
