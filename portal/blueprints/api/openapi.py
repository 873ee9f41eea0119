"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json (public)."""

from __future__ import annotations

from typing import Any

from portal.blueprints.api.cursors import CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT
from portal.blueprints.api.serialize import CLAIM_KEYS_WITHOUT_AMOUNTS
from portal.domain.inet import CancelRefusal, CardDesign, OrderState
from portal.domain.quotes import ChargeKind, RequestKind
from portal.domain.sla import ClaimRefusal, CompensationKind, IncidentKind
from portal.models import (
    ClaimChannel,
    ClaimStatus,
    ContractStatus,
    RequestStatus,
    SalesChannel,
    UpdateStatus,
    UsageSource,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _response(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _nullable(kind: str, **more: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **more}


DATE = {"type": "string", "format": "date"}
NULLABLE_DATE = _nullable("string", format="date")
INSTANT = {"type": "string", "format": "date-time"}
NULLABLE_INSTANT = _nullable("string", format="date-time")
YEN = {"type": "integer", "minimum": 0, "description": "Japanese yen, tax excluded."}
BILLING_MONTH_NAME = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}
# Why an incident cannot be claimed for (R-52): the rules' refusals and a claim already filed.
CLAIM_REFUSALS = [r.value for r in ClaimRefusal] + ["already_claimed"]

AMOUNTS_NOTE = (
    "Users of agencies (取次店) never receive amounts (R-71): every property marked as an "
    "amount is left out of their responses."
)

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "field"],
                "properties": {
                    "code": {
                        "type": "string",
                        "description": (
                            "bad_request, unauthorized, invalid_token, forbidden, not_found, "
                            "unavailable, not_withdrawable, different_reading, invalid, "
                            "invalid_cursor, or the "
                            "code of a refusal by the contract rules (e.g. inside_lead_time, "
                            "not_month_end, not_a_downgrade, plan_not_offered, plan_not_sold, "
                            "contract_ended, notice_in_past, pending_request) or by the SLA "
                            "(not_touched, incident_open, before_end, window_closed, "
                            "nothing_to_claim, already_claimed), or not_cancellable for an "
                            "ID card order outside its cancellation window."
                        ),
                    },
                    "message": {
                        "type": "string",
                        "description": "For people, in the user's language or Accept-Language.",
                    },
                    "field": _nullable("string", description="The body's key at fault."),
                },
            }
        },
    },
    "Plan": {
        "type": "object",
        "required": ["id", "code", "name", "capacity_gb", "minimum_months"],
        "properties": {
            "id": {"type": "integer"},
            "code": {"type": "string"},
            "name": {"type": "string"},
            "capacity_gb": _nullable("integer"),
            "minimum_months": {"type": "integer"},
            "monthly_fee": {**YEN, "description": "Amount: the plan's monthly fee, tax excluded."},
        },
    },
    "Term": {
        "type": "object",
        "required": ["start", "end", "number"],
        "properties": {"start": DATE, "end": DATE, "number": {"type": "integer", "minimum": 0}},
    },
    "BillingMonth": {
        "type": "object",
        "required": ["name", "start", "end"],
        "properties": {
            "name": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
            "start": DATE,
            "end": DATE,
        },
    },
    "PendingRequest": {
        "type": "object",
        "required": ["id", "reference", "kind", "notice_on", "effective_on"],
        "properties": {
            "id": {"type": "integer"},
            "reference": {"type": "string"},
            "kind": {"type": "string", "enum": [k.value for k in RequestKind]},
            "notice_on": DATE,
            "effective_on": DATE,
        },
    },
    "Contract": {
        "type": "object",
        "description": "A contract and its calendar on today's Tokyo date. " + AMOUNTS_NOTE,
        "required": [
            "id",
            "organisation",
            "service",
            "plan",
            "status",
            "sales_channel",
            "minimum_months",
            "service_start",
            "anchor_day",
            "term_anchor",
            "minimum_term_end",
            "in_minimum_term",
            "current_term",
            "next_renewal_start",
            "renewal_notice_deadline",
            "days_to_notice_deadline",
            "agency_renewal_due",
            "days_to_agency_renewal_due",
            "ended_on",
            "pending_request",
            "request_kinds",
        ],
        "properties": {
            "id": {"type": "integer"},
            "organisation": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
            "service": {
                "type": "object",
                "required": ["code", "name"],
                "properties": {"code": {"type": "string"}, "name": {"type": "string"}},
            },
            "plan": _ref("Plan"),
            "monthly_fee": {**YEN, "description": "Amount: the fee as sold, tax excluded."},
            "status": {"type": "string", "enum": [s.value for s in ContractStatus]},
            "sales_channel": {"type": "string", "enum": [c.value for c in SalesChannel]},
            "minimum_months": {
                **_nullable("integer"),
                "description": "Null through an agency: no minimum term (R-06).",
            },
            "service_start": DATE,
            "anchor_day": {"type": "integer", "minimum": 1, "maximum": 28},
            "term_anchor": DATE,
            "minimum_term_end": {
                **NULLABLE_DATE,
                "description": "Null through an agency: no minimum term (R-06).",
            },
            "in_minimum_term": {"type": "boolean"},
            "agency_periods": {
                "type": "array",
                "items": _ref("Term"),
                "description": "Through an agency: the 6-month periods granted so far (R-06).",
            },
            "current_term": _ref("Term"),
            "next_renewal_start": {**NULLABLE_DATE, "description": "The renewal date (R-05)."},
            "renewal_notice_deadline": {
                **NULLABLE_DATE,
                "description": "The last day to give notice against the renewal (R-05).",
            },
            "days_to_notice_deadline": _nullable("integer"),
            "agency_renewal_due": {
                **NULLABLE_DATE,
                "description": "Agency contracts: the renewal application is due (R-06).",
            },
            "days_to_agency_renewal_due": _nullable("integer"),
            "ended_on": NULLABLE_DATE,
            "pending_request": {"oneOf": [_ref("PendingRequest"), {"type": "null"}]},
            "request_kinds": {
                "type": "array",
                "description": "The kinds of request the contract admits now.",
                "items": {"type": "string", "enum": [k.value for k in RequestKind]},
            },
        },
    },
    "ContractList": {
        "type": "object",
        "required": ["contracts", "next_cursor"],
        "properties": {
            "contracts": {
                "type": "array",
                "items": _ref("Contract"),
                "maxItems": MAX_LIMIT,
                "description": "By organisation, then service start, then id; `limit` at most.",
            },
            "next_cursor": _nullable(
                "string",
                pattern=CURSOR_PATTERN,
                description=(
                    "Send it as `cursor` for the contracts that follow; null when these are "
                    "the last."
                ),
            ),
        },
    },
    "ContractDetail": {
        "allOf": [
            _ref("Contract"),
            {
                "type": "object",
                "required": ["requests", "usage"],
                "properties": {
                    "requests": {"type": "array", "items": _ref("Request")},
                    "usage": _ref("Usage"),
                },
            },
        ]
    },
    "Charge": {
        "type": "object",
        "required": ["kind", "tax_rate_percent", "on_new_contract", "months"],
        "properties": {
            "kind": {"type": "string", "enum": [k.value for k in ChargeKind]},
            "amount": {**YEN, "description": "Amount."},
            "tax_rate_percent": {"type": "integer"},
            "on_new_contract": {"type": "boolean"},
            "months": _nullable("integer"),
        },
    },
    "TaxLine": {
        "type": "object",
        "required": ["rate_percent", "taxable", "tax"],
        "properties": {
            "rate_percent": {"type": "integer"},
            "taxable": YEN,
            "tax": YEN,
        },
    },
    "Quote": {
        "type": "object",
        "description": (
            "What a request will do and cost (R-32). `effective_on` is the day an upgrade "
            "takes effect, or the last day of the current contract. " + AMOUNTS_NOTE
        ),
        "required": [
            "kind",
            "notice_on",
            "effective_on",
            "charges",
            "invoice_month",
            "amounts_included",
            "target_plan",
        ],
        "properties": {
            "kind": {"type": "string", "enum": [k.value for k in RequestKind]},
            "notice_on": DATE,
            "effective_on": DATE,
            "charges": {"type": "array", "items": _ref("Charge")},
            "tax": {
                "type": "array",
                "items": _ref("TaxLine"),
                "description": "Amount: tax once per rate, rounded down (R-13).",
            },
            "subtotal": {**YEN, "description": "Amount."},
            "tax_total": {**YEN, "description": "Amount."},
            "total": {**YEN, "description": "Amount, tax included."},
            "invoice_month": {
                "oneOf": [_ref("BillingMonth"), {"type": "null"}],
                "description": "The billing month whose invoice carries the charges.",
            },
            "earliest_effective_on": NULLABLE_DATE,
            "target_plan_id": _nullable("integer"),
            "new_monthly_fee": {**_nullable("integer"), "description": "Amount."},
            "new_fee_from": {"oneOf": [_ref("BillingMonth"), {"type": "null"}]},
            "termination_choices": {"type": "array", "items": DATE},
            "unexpired_months": _nullable("integer"),
            "minimum_term_end": NULLABLE_DATE,
            "new_service_start": NULLABLE_DATE,
            "new_term_anchor": NULLABLE_DATE,
            "new_minimum_term_end": NULLABLE_DATE,
            "new_minimum_months": _nullable("integer"),
            "renewal_notice_deadline": NULLABLE_DATE,
            "next_period": {"oneOf": [_ref("Term"), {"type": "null"}]},
            "amounts_included": {"type": "boolean"},
            "current_plan": _ref("Plan"),
            "target_plan": {"oneOf": [_ref("Plan"), {"type": "null"}]},
        },
    },
    "Request": {
        "type": "object",
        "required": [
            "id",
            "reference",
            "contract_id",
            "kind",
            "status",
            "notice_on",
            "effective_on",
            "quote",
            "requested_at",
            "requested_by",
            "via_api",
            "withdrawn_at",
            "applied_at",
            "can_withdraw",
        ],
        "properties": {
            "id": {"type": "integer"},
            "reference": {"type": "string"},
            "contract_id": {"type": "integer"},
            "kind": {"type": "string", "enum": [k.value for k in RequestKind]},
            "status": {"type": "string", "enum": [s.value for s in RequestStatus]},
            "notice_on": DATE,
            "effective_on": DATE,
            "quote": _ref("Quote"),
            "requested_at": INSTANT,
            "requested_by": {
                "type": "object",
                "required": ["id", "name"],
                "properties": {"id": {"type": "integer"}, "name": {"type": "string"}},
            },
            "via_api": {"type": "boolean"},
            "withdrawn_at": NULLABLE_INSTANT,
            "applied_at": NULLABLE_INSTANT,
            "can_withdraw": {"type": "boolean"},
        },
    },
    "RequestList": {
        "type": "object",
        "required": ["requests"],
        "properties": {"requests": {"type": "array", "items": _ref("Request")}},
    },
    "UsageReading": {
        "type": "object",
        "required": ["id", "contract_id", "used_gb", "measured_at", "recorded_at", "source"],
        "properties": {
            "id": {"type": "integer"},
            "contract_id": {"type": "integer"},
            "used_gb": {"type": "string", "pattern": "^[0-9]+\\.[0-9]{2}$"},
            "measured_at": INSTANT,
            "recorded_at": INSTANT,
            "source": {"type": "string", "enum": [s.value for s in UsageSource]},
        },
    },
    "Usage": {
        "type": "object",
        "description": "R-15: storage used against the plan's capacity, and the plan that fits.",
        "required": ["latest", "capacity_gb", "percent", "over_capacity", "suggested_plan"],
        "properties": {
            "latest": {"oneOf": [_ref("UsageReading"), {"type": "null"}]},
            "capacity_gb": _nullable("integer"),
            "percent": _nullable("integer"),
            "over_capacity": {"type": "boolean"},
            "suggested_plan": {"oneOf": [_ref("Plan"), {"type": "null"}]},
        },
    },
    "IncidentSummary": {
        "type": "object",
        "description": (
            "An incident's current facts (R-50), to the minute; a correction is a new version. "
            "Incidents carry no amount."
        ),
        "required": [
            "id",
            "reference",
            "version",
            "kind",
            "title",
            "started_at",
            "ended_at",
            "occurrence_announced_at",
            "recovery_announced_at",
            "state",
        ],
        "properties": {
            "id": {"type": "integer"},
            "reference": {"type": "string", "pattern": "^INC-[0-9]{6,}$"},
            "version": {"type": "integer", "minimum": 1},
            "kind": {"type": "string", "enum": [k.value for k in IncidentKind]},
            "title": {"type": "string", "description": "In the user's language."},
            "started_at": INSTANT,
            "ended_at": {**NULLABLE_INSTANT, "description": "Null while the incident is open."},
            "occurrence_announced_at": NULLABLE_INSTANT,
            "recovery_announced_at": NULLABLE_INSTANT,
            "state": {"type": "string", "enum": ["open", "ended"]},
        },
    },
    "IncidentUpdate": {
        "type": "object",
        "required": ["status", "message", "posted_at"],
        "properties": {
            "status": {"type": "string", "enum": [s.value for s in UpdateStatus]},
            "message": {"type": "string", "description": "In the user's language."},
            "posted_at": INSTANT,
        },
    },
    "Incident": {
        "allOf": [
            _ref("IncidentSummary"),
            {
                "type": "object",
                "required": ["updates"],
                "properties": {
                    "contract_ids": {
                        "type": "array",
                        "items": {"type": "integer"},
                        "description": (
                            "The user's contracts the incident touched. Left out for staff, "
                            "who see every incident."
                        ),
                    },
                    "updates": {
                        "type": "array",
                        "items": _ref("IncidentUpdate"),
                        "description": "The public updates, newest first.",
                    },
                },
            },
        ]
    },
    "IncidentList": {
        "type": "object",
        "required": ["incidents"],
        "properties": {"incidents": {"type": "array", "items": _ref("Incident")}},
    },
    "CompensationLine": {
        "type": "object",
        "required": ["kind", "minutes", "late_occurrence", "late_recovery"],
        "properties": {
            "kind": {"type": "string", "enum": [k.value for k in CompensationKind]},
            "amount": {**YEN, "description": "Amount."},
            "minutes": {
                **_nullable("integer"),
                "description": "An outage's counted minutes.",
            },
            "late_occurrence": {"type": "boolean"},
            "late_recovery": {"type": "boolean"},
        },
    },
    "Compensation": {
        "type": "object",
        "description": (
            "What an incident is worth to a contract (R-51) and until when it can be claimed "
            "(R-52). F is the monthly fee in force in the billing month the incident started "
            "in; the total of a billing month never exceeds F. " + AMOUNTS_NOTE
        ),
        "required": [
            "billing_month",
            "total_minutes",
            "counted_minutes",
            "lines",
            "claim_deadline",
            "amounts_included",
        ],
        "properties": {
            "billing_month": BILLING_MONTH_NAME,
            "monthly_fee": {**YEN, "description": "Amount: F."},
            "total_minutes": {"type": "integer", "minimum": 0},
            "counted_minutes": {
                "type": "integer",
                "minimum": 0,
                "description": "Outside maintenance windows (R-50).",
            },
            "lines": {"type": "array", "items": _ref("CompensationLine")},
            "subtotal": {**YEN, "description": "Amount, before the billing month's cap."},
            "amount": {**YEN, "description": "Amount: the compensation."},
            "claim_deadline": {**DATE, "description": "The last day to claim (R-52)."},
            "reasoning": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Amount: how it was computed, line by line, in the user's language.",
            },
            "amounts_included": {"type": "boolean"},
        },
    },
    "ClaimOption": {
        "type": "object",
        "description": "An incident that touched the contract, and whether it can be claimed for.",
        "required": ["incident", "compensation", "claimable", "refusal", "claim_id"],
        "properties": {
            "incident": _ref("IncidentSummary"),
            "compensation": {
                "oneOf": [_ref("Compensation"), {"type": "null"}],
                "description": "Computed now; null while the incident is open.",
            },
            "claimable": {"type": "boolean"},
            "refusal": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string", "enum": CLAIM_REFUSALS},
                            "message": {"type": "string"},
                        },
                    },
                    {"type": "null"},
                ],
                "description": "Why it cannot be claimed for now; null when it can.",
            },
            "claim_id": {
                **_nullable("integer"),
                "description": "The claim already filed for it, if any.",
            },
        },
    },
    "ClaimInvoice": {
        "type": "object",
        "required": ["id", "number", "amount"],
        "properties": {
            "id": {"type": "integer"},
            "number": {"type": "string"},
            "amount": {**YEN, "description": "Amount: the part of the credit it carried."},
        },
    },
    "Claim": {
        "type": "object",
        "description": (
            "A claim (R-52) with the computation it keeps, the incident version it rests on, "
            "its review and the invoices that carried its credit (R-53). The review's reason "
            "and the invoices are left out with the amounts. " + AMOUNTS_NOTE
        ),
        # What every answer has, an agency's too (the serializer keeps exactly these for it).
        "required": [*CLAIM_KEYS_WITHOUT_AMOUNTS, "amounts_included"],
        "properties": {
            "id": {"type": "integer"},
            "number": {"type": "string", "pattern": "^SLA-[0-9]{6,}$"},
            "contract_id": {"type": "integer"},
            "incident_id": {"type": "integer"},
            "incident_version": {"type": "integer", "minimum": 1},
            "billing_month": BILLING_MONTH_NAME,
            "status": {"type": "string", "enum": [s.value for s in ClaimStatus]},
            "computed_amount": {**YEN, "description": "Amount."},
            "approved_amount": {**_nullable("integer"), "description": "Amount."},
            "credited_amount": {**YEN, "description": "Amount: deducted from invoices so far."},
            "claimed_on": {**DATE, "description": "The day the claim reached the provider."},
            "channel": {"type": "string", "enum": [c.value for c in ClaimChannel]},
            "filed_at": INSTANT,
            "reviewed_at": NULLABLE_INSTANT,
            "review_reason": {"type": "string", "description": "Left out with the amounts."},
            "compensation": _ref("Compensation"),
            "invoices": {
                "type": "array",
                "items": _ref("ClaimInvoice"),
                "description": "Left out with the amounts.",
            },
            "amounts_included": {"type": "boolean"},
        },
    },
    "ContractClaims": {
        "type": "object",
        "required": ["contract_id", "can_file", "incidents", "claims"],
        "properties": {
            "contract_id": {"type": "integer"},
            "can_file": {
                "type": "boolean",
                "description": "Whether the user may file claims (administrators, sales agents).",
            },
            "incidents": {
                "type": "array",
                "items": _ref("ClaimOption"),
                "description": "The incidents of the last 12 months that touched the contract.",
            },
            "claims": {"type": "array", "items": _ref("Claim"), "description": "Newest first."},
        },
    },
    # I-NET SERVICE: a free service, so nothing below is an amount.
    "Page": {
        "type": "object",
        "required": ["page", "per_page", "total", "next_page"],
        "properties": {
            "page": {"type": "integer", "minimum": 1},
            "per_page": {"type": "integer", "minimum": 1, "maximum": 200},
            "total": {"type": "integer", "minimum": 0},
            "next_page": _nullable("integer", description="The next page, if there is one."),
        },
    },
    "CardHolder": {
        "type": "object",
        "required": [
            "id",
            "name",
            "name_kana",
            "employee_number",
            "department",
            "title",
            "has_photo",
            "updated_at",
        ],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "name_kana": {"type": "string"},
            "employee_number": {"type": "string"},
            "department": {"type": "string"},
            "title": {"type": "string"},
            "has_photo": {
                "type": "boolean",
                "description": "Photos are never sent through the API; this says one is kept.",
            },
            "updated_at": {"type": "string", "format": "date-time"},
        },
    },
    "CardHolderList": {
        "allOf": [
            {"$ref": "#/components/schemas/Page"},
            {
                "type": "object",
                "required": ["holders"],
                "properties": {
                    "holders": {"type": "array", "items": _ref("CardHolder")},
                },
            },
        ]
    },
    "CardOrder": {
        "type": "object",
        "required": [
            "id",
            "number",
            "organisation_id",
            "state",
            "design",
            "cards",
            "created_at",
            "cancellable",
            "cancel_refusal",
        ],
        "properties": {
            "id": {"type": "integer"},
            "number": {"type": "string", "pattern": "^IC-[0-9]{6,}$"},
            "organisation_id": {"type": "integer"},
            "state": {"type": "string", "enum": [s.value for s in OrderState]},
            "design": {"type": "string", "enum": [d.value for d in CardDesign]},
            "cards": {"type": "integer", "minimum": 0},
            "created_at": {"type": "string", "format": "date-time"},
            **{
                stamp: _nullable("string", format="date-time")
                for stamp in (
                    "submitted_at",
                    "confirmed_at",
                    "accepted_at",
                    "production_started_at",
                    "shipped_at",
                    "delivered_at",
                    "withdrawn_at",
                    "cancelled_at",
                )
            },
            "carrier": _nullable("string"),
            "tracking_number": _nullable("string"),
            "cancellable": {
                "type": "boolean",
                "description": (
                    "True while the order is confirmed and not yet accepted: the window in "
                    "which the customer may cancel it (R-82)."
                ),
            },
            "cancel_refusal": {
                "type": ["string", "null"],
                "enum": [*(r.value for r in CancelRefusal), None],
                "description": "Why it cannot be cancelled now, when it cannot.",
            },
        },
    },
    "CardOrderItem": {
        "type": "object",
        "required": ["holder_id", "name", "employee_number", "quantity"],
        "properties": {
            "holder_id": _nullable("integer", description="Null once the holder was removed."),
            "name": {"type": "string"},
            "name_kana": {"type": "string"},
            "employee_number": {"type": "string"},
            "department": {"type": "string"},
            "title": {"type": "string"},
            "quantity": {"type": "integer", "minimum": 1},
        },
    },
    "CardOrderEvent": {
        "type": "object",
        "required": ["action", "from_state", "to_state", "at"],
        "properties": {
            "action": {"type": "string"},
            "from_state": _nullable("string"),
            "to_state": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
        },
    },
    "CardOrderDetail": {
        "allOf": [
            {"$ref": "#/components/schemas/CardOrder"},
            {
                "type": "object",
                "required": ["items", "events"],
                "properties": {
                    "items": {"type": "array", "items": _ref("CardOrderItem")},
                    "events": {"type": "array", "items": _ref("CardOrderEvent")},
                },
            },
        ]
    },
    "CardOrderList": {
        "allOf": [
            {"$ref": "#/components/schemas/Page"},
            {
                "type": "object",
                "required": ["orders"],
                "properties": {"orders": {"type": "array", "items": _ref("CardOrder")}},
            },
        ]
    },
    "QuoteBody": {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind"],
        "properties": {
            "kind": {"type": "string", "enum": [k.value for k in RequestKind]},
            "plan_id": {
                **_nullable("integer"),
                "description": "The new plan of an upgrade or downgrade.",
            },
            "date": {
                **NULLABLE_DATE,
                "description": (
                    "Upgrade: the day it takes effect (at least 10 days after the notice, "
                    "R-20). Downgrade and cancellation: the month end the contract ends on "
                    "(R-22, R-30). The earliest possible when absent."
                ),
            },
            "notice_on": {
                **NULLABLE_DATE,
                "description": "The day notice would be given: today when absent, never past.",
            },
        },
    },
    "RequestBody": {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind"],
        "description": "As QuoteBody; the notice date of a request is always today (R-20).",
        "properties": {
            "kind": {"type": "string", "enum": [k.value for k in RequestKind]},
            "plan_id": _nullable("integer"),
            "date": NULLABLE_DATE,
        },
    },
    "UsageBody": {
        "type": "object",
        "additionalProperties": False,
        "required": ["used_gb", "measured_at"],
        "properties": {
            "used_gb": {
                "type": ["string", "number"],
                "description": 'GB used, up to two decimals, e.g. "123.45".',
            },
            "measured_at": {
                **INSTANT,
                "description": "When the service measured it, with its time zone.",
            },
        },
    },
    "ClaimBody": {
        "type": "object",
        "additionalProperties": False,
        "required": ["incident_id"],
        "description": "The amount is computed by the portal, never sent.",
        "properties": {"incident_id": {"type": "integer"}},
    },
}

RESPONSES: dict[str, Any] = {
    "BadRequest": _json(_ref("Error"), "The body is not the JSON object described."),
    "Unauthorized": {
        **_json(_ref("Error"), "No API token, or one that is not valid or was revoked."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    },
    "Forbidden": _json(_ref("Error"), "The user may see the contract but not do this."),
    "NotFound": _json(
        _ref("Error"), "No such contract, request or claim, or one the user may not see."
    ),
    "Unavailable": {
        **_json(
            _ref("Error"),
            "The database is out of reach or busy for a moment (`code`: unavailable); try "
            "again after the seconds in Retry-After.",
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}},
    },
    "Refused": _json(_ref("Error"), "The contract rules refuse it; `code` says why."),
    "Conflict": _json(_ref("Error"), "It clashes with the contract's current state."),
}

PARAMETERS: dict[str, Any] = {
    "ContractId": {
        "name": "contract_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    },
    "RequestId": {
        "name": "request_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    },
    "HolderId": {
        "name": "holder_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647},
    },
    "OrderId": {
        "name": "order_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2147483647},
    },
    "ClaimId": {
        "name": "claim_id",
        "in": "path",
        "required": True,
        "schema": {"type": "integer"},
    },
}

_READ_ERRORS = {
    "401": _response("Unauthorized"),
    "404": _response("NotFound"),
    "503": _response("Unavailable"),
}


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    body: str | None = None,
    errors: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {**responses, **_READ_ERRORS, **(errors or {})},
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return operation


CONTRACT = [{"$ref": "#/components/parameters/ContractId"}]
PAGE = [
    {
        "name": "page",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1},
    },
    {
        "name": "per_page",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
    },
]
CONTRACT_PAGE = [
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "How many contracts at most.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "The `next_cursor` of the previous answer; left out for the first.",
        "schema": {"type": "string", "pattern": CURSOR_PATTERN, "maxLength": 64},
    },
]
REQUEST = [*CONTRACT, {"$ref": "#/components/parameters/RequestId"}]
CLAIM = [*CONTRACT, {"$ref": "#/components/parameters/ClaimId"}]

PATHS: dict[str, Any] = {
    "/contracts": {
        "get": {
            "operationId": "listContracts",
            "summary": "The contracts the token's user may see, with their calendars.",
            "description": (
                "By cursor: the first `limit` contracts, and `next_cursor` to send as `cursor` "
                "for the next ones, until it is null. Every contract that exists for the whole "
                "walk comes exactly once, even when contracts are added meanwhile."
            ),
            "parameters": CONTRACT_PAGE,
            "responses": {
                "200": _json(_ref("ContractList"), "The contracts."),
                "400": _json(
                    _ref("Error"),
                    "`limit` is not a whole number from 1 to 100, or `cursor` is not one "
                    "(`field` says which).",
                ),
                "401": _response("Unauthorized"),
                "422": _json(
                    _ref("Error"),
                    "invalid_cursor: `cursor` is not a next_cursor this list gave.",
                ),
            },
        }
    },
    "/contracts/{contract_id}": {
        "parameters": CONTRACT,
        "get": _operation(
            "getContract",
            "One contract, its requests and its latest usage with the plan that fits.",
            {"200": _json(_ref("ContractDetail"), "The contract.")},
        ),
    },
    "/contracts/{contract_id}/quotes": {
        "parameters": CONTRACT,
        "post": _operation(
            "quote",
            "What a request would do and cost; changes nothing.",
            {"200": _json(_ref("Quote"), "The quote.")},
            body="QuoteBody",
            errors={
                "400": _response("BadRequest"),
                "409": _json(_ref("Error"), "A request is already pending (R-23)."),
                "422": _response("Refused"),
            },
        ),
    },
    "/contracts/{contract_id}/requests": {
        "parameters": CONTRACT,
        "get": _operation(
            "listRequests",
            "The contract's requests, newest first.",
            {"200": _json(_ref("RequestList"), "The requests.")},
        ),
        "post": _operation(
            "submitRequest",
            "Confirm a request: the written notice, given today (R-20, R-32).",
            {
                "201": {
                    **_json(_ref("Request"), "The request, recorded."),
                    "headers": {
                        "Location": {
                            "schema": {"type": "string"},
                            "description": "The request's address.",
                        }
                    },
                }
            },
            body="RequestBody",
            errors={
                "400": _response("BadRequest"),
                "403": _response("Forbidden"),
                "409": _json(_ref("Error"), "A request is already pending (R-23)."),
                "422": _response("Refused"),
            },
        ),
    },
    "/contracts/{contract_id}/requests/{request_id}": {
        "parameters": REQUEST,
        "get": _operation(
            "getRequest", "One request.", {"200": _json(_ref("Request"), "The request.")}
        ),
    },
    "/contracts/{contract_id}/requests/{request_id}/withdraw": {
        "parameters": REQUEST,
        "post": _operation(
            "withdrawRequest",
            "Withdraw a pending request before its effective date (R-23).",
            {"200": _json(_ref("Request"), "The request, withdrawn.")},
            errors={"403": _response("Forbidden"), "409": _response("Conflict")},
        ),
    },
    "/contracts/{contract_id}/usage": {
        "parameters": CONTRACT,
        "post": _operation(
            "recordUsage",
            "Report storage used (the provider's systems, with a staff token; R-15).",
            {
                "201": _json(_ref("UsageReading"), "The reading, kept."),
                "200": _json(_ref("UsageReading"), "The same measurement, already kept."),
            },
            body="UsageBody",
            errors={
                "400": _response("BadRequest"),
                "403": _response("Forbidden"),
                "409": _json(_ref("Error"), "Another value is kept for that measurement time."),
                "422": _json(_ref("Error"), "A value or time the portal cannot keep."),
            },
        ),
    },
    "/incidents": {
        "get": {
            "operationId": "listIncidents",
            "summary": (
                "The incidents of the last 12 months, and those still open, that touched the "
                "contracts the token's user may see (staff: every incident), with their updates."
            ),
            "responses": {
                "200": _json(_ref("IncidentList"), "The incidents, newest first."),
                "401": _response("Unauthorized"),
            },
        }
    },
    "/contracts/{contract_id}/claims": {
        "parameters": CONTRACT,
        "get": _operation(
            "listClaims",
            "The incidents that touched the contract with the compensation each is worth now "
            "and why, and the contract's claims (R-51, R-52).",
            {"200": _json(_ref("ContractClaims"), "The incidents and claims.")},
        ),
        "post": _operation(
            "fileClaim",
            "File a claim for an incident, with the compensation computed now (R-52).",
            {
                "201": {
                    **_json(_ref("Claim"), "The claim, filed."),
                    "headers": {
                        "Location": {
                            "schema": {"type": "string"},
                            "description": "The claim's address.",
                        }
                    },
                }
            },
            body="ClaimBody",
            errors={
                "400": _response("BadRequest"),
                "403": _response("Forbidden"),
                "409": _json(
                    _ref("Error"),
                    "A claim for this incident on this contract was already filed "
                    "(already_claimed).",
                ),
                "422": _json(
                    _ref("Error"),
                    "The incident cannot be claimed for: not_touched (it did not touch the "
                    "contract, or there is no such incident), incident_open, before_end, "
                    "window_closed or nothing_to_claim; `field` is incident_id.",
                ),
            },
        ),
    },
    "/contracts/{contract_id}/claims/{claim_id}": {
        "parameters": CLAIM,
        "get": _operation("getClaim", "One claim.", {"200": _json(_ref("Claim"), "The claim.")}),
    },
    "/card-holders": {
        "get": _operation(
            "listCardHolders",
            "The organisation's card holders (its own administrators only), by page.",
            {"200": _json(_ref("CardHolderList"), "The card holders.")},
            parameters=PAGE,
            errors={"400": _response("BadRequest"), "403": _response("Forbidden")},
        ),
    },
    "/card-holders/{holder_id}": {
        "parameters": [{"$ref": "#/components/parameters/HolderId"}],
        "get": _operation(
            "getCardHolder",
            "One card holder.",
            {"200": _json(_ref("CardHolder"), "The card holder.")},
        ),
    },
    "/card-orders": {
        "get": _operation(
            "listCardOrders",
            "ID card orders and where each is, newest first, by page: the organisation's "
            "(administrators), those the agent placed, or every one (production staff).",
            {"200": _json(_ref("CardOrderList"), "The orders.")},
            parameters=[
                *PAGE,
                {
                    "name": "state",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string", "enum": [s.value for s in OrderState]},
                },
            ],
            errors={"400": _response("BadRequest"), "403": _response("Forbidden")},
        ),
    },
    "/card-orders/{order_id}": {
        "parameters": [{"$ref": "#/components/parameters/OrderId"}],
        "get": _operation(
            "getCardOrder",
            "One order with its cards and its history.",
            {"200": _json(_ref("CardOrderDetail"), "The order.")},
        ),
    },
    "/card-orders/{order_id}/cancel": {
        "parameters": [{"$ref": "#/components/parameters/OrderId"}],
        "post": _operation(
            "cancelCardOrder",
            "Cancel a confirmed order before it is accepted (the customer's administrators; "
            "R-82). No body.",
            {"200": _json(_ref("CardOrderDetail"), "The order, cancelled.")},
            errors={
                "403": _response("Forbidden"),
                "409": _json(
                    _ref("Error"),
                    "not_cancellable: the order is not in its cancellation window (not yet "
                    "confirmed, already accepted, or ended); the message says which.",
                ),
            },
        ),
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document.",
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Contract portal API",
            "version": "1",
            "description": (
                "Contracts of IMAGE WORKS with their calendar, quotes and requests, usage, "
                "the incidents that touched them and SLA claims; I-NET SERVICE's card holders "
                "and ID card orders with their state, and cancelling an order in its window. "
                "Authenticate with a personal API token: `Authorization: Bearer <token>`. "
                "Messages are in the user's language unless Accept-Language asks for another "
                "(ja, en). Dates are Tokyo business dates (R-01); instants carry their offset. "
                + AMOUNTS_NOTE
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal API token (ptk_…), made on the account page.",
                }
            },
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "parameters": PARAMETERS,
        },
    }
