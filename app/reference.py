"""Reference data every database starts with: the packages and the loyalty tiers.

Numbers here are the program's defaults; a manager may change them later through the
catalog services, and history keeps what applied at the time (orders store their prices,
payouts their commission rate).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.ids import id_from_parts
from app.models import LoyaltyTier, Package

_REFERENCE_MS = 1_704_067_200_000  # 2024-01-01T00:00Z, the time part of reference ids


@dataclass(frozen=True)
class PackageSpec:
    code: str
    name: str
    rank: int
    max_stands: int
    sku_slots: int
    commission_rate: Decimal
    loyalty_multiplier: Decimal
    refill_cadence_days: int
    default_par: int
    activation_points: int
    description: str


@dataclass(frozen=True)
class TierSpec:
    code: str
    name: str
    rank: int
    threshold_points: int
    point_multiplier: Decimal
    perks: str


PACKAGES: tuple[PackageSpec, ...] = (
    PackageSpec(
        "starter",
        "Starter",
        1,
        1,
        12,
        Decimal("0.10"),
        Decimal("1.00"),
        14,
        6,
        100,
        "One stand, up to 12 products, refills every two weeks, 10% commission.",
    ),
    PackageSpec(
        "growth",
        "Growth",
        2,
        3,
        24,
        Decimal("0.12"),
        Decimal("1.25"),
        7,
        8,
        250,
        "Up to 3 stands, 24 products each, weekly refills, 12% commission, 1.25x loyalty points.",
    ),
    PackageSpec(
        "pro",
        "Pro",
        3,
        10,
        40,
        Decimal("0.15"),
        Decimal("1.50"),
        7,
        10,
        500,
        "Up to 10 stands, 40 products each, weekly refills, 15% commission, 1.5x loyalty points.",
    ),
)

TIERS: tuple[TierSpec, ...] = (
    TierSpec("bronze", "Bronze", 1, 0, Decimal("1.00"), "Program newsletter"),
    TierSpec("silver", "Silver", 2, 2_000, Decimal("1.10"), "Free seasonal display kit"),
    TierSpec("gold", "Gold", 3, 6_000, Decimal("1.25"), "Priority refills; quarterly bonus"),
    TierSpec(
        "platinum",
        "Platinum",
        4,
        15_000,
        Decimal("1.50"),
        "Priority refills; dedicated rep; early access to new products",
    ),
)


def reference_id(kind: str, code: str) -> str:
    """The id of a reference row, the same on every device: a UUIDv7 whose random bits come
    from the row's code, so two devices that seed separately agree when they sync."""
    digest = hashlib.sha256(f"{kind}:{code}".encode()).digest()
    return id_from_parts(_REFERENCE_MS, int.from_bytes(digest[:10], "big") & ((1 << 74) - 1))


def seed_reference_data(session: Session) -> None:
    """Insert any missing package or tier (idempotent). Runs inside the caller's transaction."""
    have = set(session.scalars(select(Package.code)))
    for p in PACKAGES:
        if p.code not in have:
            session.add(Package(id=reference_id("package", p.code), **p.__dict__))
    have = set(session.scalars(select(LoyaltyTier.code)))
    for t in TIERS:
        if t.code not in have:
            session.add(LoyaltyTier(id=reference_id("tier", t.code), **t.__dict__))
    session.flush()
