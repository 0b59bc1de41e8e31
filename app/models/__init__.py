"""All tables of the domain. Importing this package registers them on ``Base.metadata``."""

from app.models.auth import ApiDevice, ApiToken, ApiUser, IdempotencyRecord
from app.models.base import Base
from app.models.catalog import LoyaltyTier, Package, Product
from app.models.changelog import ChangeLog, LocalDevice
from app.models.enums import (
    DiscrepancyStatus,
    InsightStatus,
    LocationType,
    LoyaltyKind,
    MovementKind,
    OpStatus,
    OrderKind,
    PartnerStatus,
    PaymentMethod,
    PayoutStatus,
    RefillAction,
    RefillStatus,
    Role,
    Severity,
    SnapshotSource,
    StandStatus,
)
from app.models.expansion import CandidateSource, CandidateStatus, ExpansionCandidate
from app.models.insights import AIInsight, StandAIInsight
from app.models.inventory import (
    InventoryMovement,
    StandInventory,
    StandInventorySnapshot,
    StandInventorySnapshotLine,
)
from app.models.loyalty import Payout, StandLoyaltyLedger
from app.models.partners import StandLocation, StandPartner
from app.models.refills import (
    RefillDiscrepancy,
    StandRefillEvent,
    StandRefillOrder,
    StandRefillOrderItem,
)
from app.models.sales import StandOrder, StandOrderItem
from app.models.sync import (
    SyncDeadLetter,
    SyncDevice,
    SyncFieldHistory,
    SyncReceivedOp,
    SyncRefresh,
    SyncReview,
    SyncState,
)

__all__ = [
    "AIInsight",
    "ApiDevice",
    "ApiToken",
    "ApiUser",
    "Base",
    "CandidateSource",
    "CandidateStatus",
    "ChangeLog",
    "DiscrepancyStatus",
    "ExpansionCandidate",
    "IdempotencyRecord",
    "InsightStatus",
    "InventoryMovement",
    "LocalDevice",
    "LocationType",
    "LoyaltyKind",
    "LoyaltyTier",
    "MovementKind",
    "OpStatus",
    "OrderKind",
    "Package",
    "PartnerStatus",
    "PaymentMethod",
    "Payout",
    "PayoutStatus",
    "Product",
    "RefillAction",
    "RefillDiscrepancy",
    "RefillStatus",
    "Role",
    "Severity",
    "SnapshotSource",
    "StandAIInsight",
    "StandInventory",
    "StandInventorySnapshot",
    "StandInventorySnapshotLine",
    "StandLocation",
    "StandLoyaltyLedger",
    "StandOrder",
    "StandOrderItem",
    "StandPartner",
    "StandRefillEvent",
    "StandRefillOrder",
    "StandRefillOrderItem",
    "StandStatus",
    "SyncDeadLetter",
    "SyncDevice",
    "SyncFieldHistory",
    "SyncReceivedOp",
    "SyncRefresh",
    "SyncReview",
    "SyncState",
]
