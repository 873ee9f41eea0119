"""The language switch returns to the page being read, and only ever to a page a GET answers
(issue 11: after a POST it used to return to the POST-only address, a 405 page)."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient

from tests.factories import become

LANGUAGE_FORM = re.compile(
    r'<form method="post" action="/language" class="language-switch">.*?'
    r'name="next" value="([^"]*)"',
    re.DOTALL,
)


def offered_next(html: str) -> str:
    """The `next` the header's language switch will send."""
    found = LANGUAGE_FORM.search(html)
    assert found, "no language switch on the page"
    return found.group(1)


@pytest.fixture
def admin(shared) -> FlaskClient:
    client = shared.app.test_client()
    become(shared.app, client, shared.world, "admin")
    return client


def switch(client: FlaskClient, next_: str, **headers: str) -> str:
    response = client.post("/language", data={"locale": "ja", "next": next_}, headers=headers)
    assert response.status_code == 302
    return response.headers["Location"]


def test_the_switch_returns_to_the_page_being_read(shared, admin):
    contract = shared.world.contract_a
    page = admin.get(f"/contracts/{contract}/end?on=2027-05-20")
    assert page.status_code == 200
    assert offered_next(page.get_data(as_text=True)) == f"/contracts/{contract}/end?on=2027-05-20"
    assert switch(admin, f"/contracts/{contract}/end?on=2027-05-20") == (
        f"/contracts/{contract}/end?on=2027-05-20"
    )
    assert '<html lang="ja">' in admin.get(f"/contracts/{contract}").get_data(as_text=True)
    switch_back = admin.post("/language", data={"locale": "en", "next": "/contracts"})
    assert switch_back.headers["Location"] == "/contracts"


def test_after_a_post_the_switch_offers_the_page_the_form_was_on(shared, admin):
    """A form shown again at its POST-only address (here a refused request) offers the page
    the form was sent from; without a referrer, nothing, and the switch then goes home."""
    contract = shared.world.contract_a
    form_page = f"http://localhost/contracts/{contract}/end"
    refused = admin.post(
        f"/contracts/{contract}/requests",
        data={"kind": "cancellation", "on": "2000-01-01", "quote": "stale"},
        headers={"Referer": form_page},
    )
    assert refused.status_code >= 400
    assert offered_next(refused.get_data(as_text=True)) == f"/contracts/{contract}/end"

    refused = admin.post(
        f"/contracts/{contract}/requests", data={"kind": "cancellation", "on": "2000-01-01"}
    )
    assert offered_next(refused.get_data(as_text=True)) == ""
    assert switch(admin, "") == "/"


@pytest.mark.parametrize(
    "target",
    [
        "/logout",  # POST only: 405 to a GET
        "/contracts/1/requests",  # POST only
        "/no-such-page",
        "/static/css/portal.css",  # a file, not a page
        "/api/v1/contracts",  # JSON
        "/healthz",
        "https://elsewhere.example/contracts",
        "//elsewhere.example/contracts",
        "/\\elsewhere.example",
        "contracts",
    ],
)
def test_the_switch_never_goes_to_what_is_not_a_page_of_this_site(admin, target):
    assert switch(admin, target) == "/"
    # The referring page stands in when it is one.
    assert switch(admin, target, Referer="http://localhost/invoices?page=1") == "/invoices?page=1"
    assert switch(admin, target, Referer="http://elsewhere.example/invoices") == "/"
    assert switch(admin, target, Referer="http://localhost/logout") == "/"


def test_signed_out_the_switch_returns_to_the_sign_in_page(shared):
    client = shared.app.test_client()
    page = client.get("/login")
    assert offered_next(page.get_data(as_text=True)) == "/login"
    assert switch(client, "/login") == "/login"
    assert '<html lang="ja">' in client.get("/login").get_data(as_text=True)
