"""All models, imported here so that Alembic and the app see every table."""

from portal.models.audit import AccountEntry, AuditEvent, EntryKind
from portal.models.base import Base
from portal.models.catalog import Plan, PriceList, Provider, Service
from portal.models.contracts import Contract, ContractEvent, ContractStatus
from portal.models.organisations import (
    Organisation,
    PartnerAssignment,
    PartnerCompany,
    PartnerKind,
    SalesChannel,
)
from portal.models.requests import (
    ApiToken,
    ContractRequest,
    LedgerCharge,
    PendingNotice,
    RequestStatus,
    UsageReading,
    UsageSource,
)
from portal.models.users import CustomerRole, StaffRole, User, UserKind, UserSession

__all__ = [
    "ApiToken",
    "ContractRequest",
    "LedgerCharge",
    "PendingNotice",
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
