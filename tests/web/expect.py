"""What a route answers in the permission matrix: a status, or a redirect to a path.

Shared by tests/web/test_permission_matrix.py and the matrix parts of later features
(tests/web/matrix_*.py), which add their rows to the same tables.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Redirect:
    """A 302 to this path: "{org_a}" and "{contract}" are filled in from the request made,
    "*" stands for an id made by the request itself."""

    path: str


LOGIN = Redirect("/login")  # anonymous: sign in first (login_required)
HOME = Redirect("/")
PORTAL = Redirect("/contracts")  # the customer's portal
STAFF = Redirect("/staff/organisations")  # the back office
CLIENT = Redirect("/partner/clients")  # the agent's list of clients
ORG_A = Redirect("/staff/organisations/{org_a}")  # back to the organisation after viewing
CONTRACT = Redirect("/contracts/{contract}")  # back to the contract (after a withdrawal)
REQUEST = Redirect("/contracts/{contract}/requests/*")  # the confirmed request's page
S_CON = Redirect("/staff/contracts/{contract}")  # back to the staff's contract page
TOKENS = Redirect("/account/api-tokens")
INVOICES = Redirect("/invoices")
OVERDUE = Redirect("/staff/invoices/overdue")
MAIL = Redirect("/staff/mail")
USERS = Redirect("/organisation/users")
SYSTEM = Redirect("/system")

Expected = int | Redirect
