"""All models, imported here so that Alembic and the app see every table."""

from portal.models.accounts import AccountToken, MisuseReport, TokenPurpose
from portal.models.audit import AccountEntry, AuditEvent, EntryKind
from portal.models.base import Base
from portal.models.catalog import Plan, PriceList, Provider, Service
from portal.models.contracts import Contract, ContractEvent, ContractStatus
from portal.models.invoices import (
    DocumentCounter,
    DocumentKind,
    Invoice,
    InvoiceLine,
    InvoiceState,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    PaymentReminder,
    StripeCustomer,
    StripeEvent,
)
from portal.models.notices import OutboxEmail
from portal.models.organisations import (
    Organisation,
    OrganisationChange,
    PartnerAssignment,
    PartnerCompany,
    PartnerKind,
    SalesChannel,
)
from portal.models.requests import (
    ApiToken,
    ContractRequest,
    LedgerCharge,
    RequestStatus,
    UsageReading,
    UsageSource,
)
from portal.models.terms import ConsentKind, TermsConsent, TermsVersion
from portal.models.users import CustomerRole, StaffRole, User, UserKind, UserSession

__all__ = [
    "DocumentCounter",
    "DocumentKind",
    "Invoice",
    "InvoiceLine",
    "InvoiceState",
    "InvoiceStatus",
    "Payment",
    "PaymentMethod",
    "PaymentReminder",
    "StripeCustomer",
    "StripeEvent",
    "ApiToken",
    "ContractRequest",
    "LedgerCharge",
    "AccountToken",
    "ConsentKind",
    "MisuseReport",
    "OrganisationChange",
    "OutboxEmail",
    "TermsConsent",
    "TermsVersion",
    "TokenPurpose",
    "RequestStatus",
    "UsageReading",
    "UsageSource",
    "AccountEntry",
    "AuditEvent",
    "Base",
    "Contract",
    "ContractEvent",
    "ContractStatus",
    "CustomerRole",
    "EntryKind",
    "Organisation",
    "PartnerAssignment",
    "PartnerCompany",
    "PartnerKind",
    "Plan",
    "PriceList",
    "Provider",
    "SalesChannel",
    "Service",
    "StaffRole",
    "User",
    "UserKind",
    "UserSession",
]
