"""Closed vocabularies of the domain, stored as their string values."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    REP = "rep"
    PARTNER = "partner"


class PartnerStatus(StrEnum):
    LEAD = "lead"
    ONBOARDING = "onboarding"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ENDED = "ended"


class StandStatus(StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    PAUSED = "paused"
    REMOVED = "removed"


class LocationType(StrEnum):
    CONVENIENCE = "convenience"
    SUPERMARKET = "supermarket"
    PHARMACY = "pharmacy"
    CAFE = "cafe"
    GAS_STATION = "gas_station"
    KIOSK = "kiosk"
    OFFICE = "office"
    GYM = "gym"


class MovementKind(StrEnum):
    SALE = "sale"
    SALE_VOID = "sale_void"
    REFILL_DELIVERY = "refill_delivery"
    REFILL_CORRECTION = "refill_correction"
    COUNT_ADJUSTMENT = "count_adjustment"
    RETURN = "return"
    WRITE_OFF = "write_off"


class PaymentMethod(StrEnum):
    CASH = "cash"
    QR = "qr"
    CARD = "card"


class OrderKind(StrEnum):
    SALE = "sale"
    VOID = "void"


class SnapshotSource(StrEnum):
    COUNT = "count"
    INVENTORY_OS = "inventory_os"


class RefillStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    DELIVERED = "delivered"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class RefillAction(StrEnum):
    REQUEST = "request"
    APPROVE = "approve"
    SCHEDULE = "schedule"
    DELIVER = "deliver"
    CONFIRM = "confirm"
    REJECT = "reject"
    CANCEL = "cancel"


class DiscrepancyStatus(StrEnum):
    OPEN = "open"
    ACCEPTED_RECEIVED = "accepted_received"
    KEPT_DELIVERED = "kept_delivered"


class LoyaltyKind(StrEnum):
    EARN = "earn"
    ACTIVATION = "activation"
    BONUS = "bonus"
    REDEEM = "redeem"
    EXPIRE = "expire"
    ADJUST = "adjust"


class PayoutStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    PAID = "paid"


class InsightStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    DISMISSED = "dismissed"
    DONE = "done"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class OpStatus(StrEnum):
    """Where a change-log op stands with the server."""

    PENDING = "pending"
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
