"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json (public)."""

from __future__ import annotations

from typing import Any

from portal.domain.quotes import ChargeKind, RequestKind
from portal.models import ContractStatus, RequestStatus, SalesChannel, UsageSource


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
                            "not_withdrawable, different_reading, invalid, or the code of a "
                            "refusal by the contract rules (e.g. inside_lead_time, "
                            "not_month_end, not_a_downgrade, plan_not_offered, plan_not_sold, "
                            "contract_ended, notice_in_past, pending_request)."
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
            "minimum_months": {"type": "integer"},
            "service_start": DATE,
            "anchor_day": {"type": "integer", "minimum": 1, "maximum": 28},
            "term_anchor": DATE,
            "minimum_term_end": DATE,
            "in_minimum_term": {"type": "boolean"},
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
        "required": ["contracts"],
        "properties": {"contracts": {"type": "array", "items": _ref("Contract")}},
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
}

RESPONSES: dict[str, Any] = {
    "BadRequest": _json(_ref("Error"), "The body is not the JSON object described."),
    "Unauthorized": {
        **_json(_ref("Error"), "No API token, or one that is not valid or was revoked."),
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    },
    "Forbidden": _json(_ref("Error"), "The user may see the contract but not do this."),
    "NotFound": _json(_ref("Error"), "No such contract or request, or one the user may not see."),
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
}

_READ_ERRORS = {"401": _response("Unauthorized"), "404": _response("NotFound")}


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    body: str | None = None,
    errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {**responses, **_READ_ERRORS, **(errors or {})},
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return operation


CONTRACT = [{"$ref": "#/components/parameters/ContractId"}]
REQUEST = [*CONTRACT, {"$ref": "#/components/parameters/RequestId"}]

PATHS: dict[str, Any] = {
    "/contracts": {
        "get": {
            "operationId": "listContracts",
            "summary": "The contracts the token's user may see, with their calendars.",
            "responses": {
                "200": _json(_ref("ContractList"), "The contracts."),
                "401": _response("Unauthorized"),
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
            errors={"400": _response("BadRequest"), "422": _response("Refused")},
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
                "Contracts of IMAGE WORKS with their calendar, quotes and requests, and usage. "
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
