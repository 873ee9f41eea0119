"""Routes of the app as the web tests call them: URLs with test ids, and form data."""

from __future__ import annotations

from flask import Flask, url_for

from tests.factories import PASSWORD, VIEW_AS_REASON, World, application_form


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
    }
    return forms[endpoint]


def url_of(app: Flask, endpoint: str, **ids: int) -> str:
    """The URL of a route, with org A's objects (or the ids given) as its arguments."""
    (rule,) = app.url_map.iter_rules(endpoint)
    values = {"filename": "css/portal.css", **ids}
    missing = rule.arguments - values.keys()
    assert not missing, f"{endpoint}: no test value for {missing}; add one here"
    with app.test_request_context():
        return url_for(endpoint, **{k: values[k] for k in rule.arguments})
